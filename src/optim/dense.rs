//! Small dense linear algebra on row-major slices (the 2m × 2m matrices of the compact
//! representation). Written here so that the solver needs no LAPACK; nothing allocates.

/// Dot product of two equal-length slices.
#[inline]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    // Four independent accumulators: lets the compiler vectorise and shortens the
    // dependency chain (the order of summation is fixed, so results are deterministic).
    let n = a.len();
    let chunks = n / 4;
    let (mut s0, mut s1, mut s2, mut s3) = (0.0, 0.0, 0.0, 0.0);
    for k in 0..chunks {
        let i = 4 * k;
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    let mut s = (s0 + s1) + (s2 + s3);
    for i in 4 * chunks..n {
        s += a[i] * b[i];
    }
    s
}

/// `y += a * x`.
#[inline]
pub(crate) fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    debug_assert_eq!(x.len(), y.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// `out = A v` for a `k × k` row-major `A`.
pub(crate) fn matvec(a: &[f64], k: usize, v: &[f64], out: &mut [f64]) {
    for i in 0..k {
        out[i] = dot(&a[i * k..i * k + k], &v[..k]);
    }
}

/// In-place Cholesky factorisation `A = J Jᵀ` of a symmetric positive definite `k × k`
/// row-major matrix; the lower triangle is overwritten by `J`. Returns `false` when a pivot
/// is not positive (the matrix is not numerically positive definite).
pub(crate) fn cholesky(a: &mut [f64], k: usize) -> bool {
    for j in 0..k {
        let mut d = a[j * k + j];
        for p in 0..j {
            d -= a[j * k + p] * a[j * k + p];
        }
        if !(d > 0.0) || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * k + j] = d;
        for i in j + 1..k {
            let mut s = a[i * k + j];
            for p in 0..j {
                s -= a[i * k + p] * a[j * k + p];
            }
            a[i * k + j] = s / d;
        }
    }
    true
}

/// Solves `J Jᵀ x = b` in place given the Cholesky factor from [`cholesky`].
pub(crate) fn cholesky_solve(l: &[f64], k: usize, b: &mut [f64]) {
    for i in 0..k {
        let mut s = b[i];
        for p in 0..i {
            s -= l[i * k + p] * b[p];
        }
        b[i] = s / l[i * k + i];
    }
    for i in (0..k).rev() {
        let mut s = b[i];
        for p in i + 1..k {
            s -= l[p * k + i] * b[p];
        }
        b[i] = s / l[i * k + i];
    }
}

/// In-place LU factorisation with partial pivoting of a `k × k` row-major matrix
/// (`P A = L U`, unit lower `L` below the diagonal, `U` on and above). Returns `false` on a
/// zero or non-finite pivot.
pub(crate) fn lu(a: &mut [f64], k: usize, piv: &mut [usize]) -> bool {
    for j in 0..k {
        let mut p = j;
        let mut best = a[j * k + j].abs();
        for i in j + 1..k {
            let v = a[i * k + j].abs();
            if v > best {
                best = v;
                p = i;
            }
        }
        piv[j] = p;
        if !(best > 0.0) || !best.is_finite() {
            return false;
        }
        if p != j {
            for c in 0..k {
                a.swap(j * k + c, p * k + c);
            }
        }
        let d = a[j * k + j];
        for i in j + 1..k {
            let f = a[i * k + j] / d;
            a[i * k + j] = f;
            if f != 0.0 {
                for c in j + 1..k {
                    a[i * k + c] -= f * a[j * k + c];
                }
            }
        }
    }
    true
}

/// Solves `A x = b` in place given the factors from [`lu`].
pub(crate) fn lu_solve(a: &[f64], k: usize, piv: &[usize], b: &mut [f64]) {
    for j in 0..k {
        b.swap(j, piv[j]);
    }
    for i in 0..k {
        let mut s = b[i];
        for p in 0..i {
            s -= a[i * k + p] * b[p];
        }
        b[i] = s;
    }
    for i in (0..k).rev() {
        let mut s = b[i];
        for p in i + 1..k {
            s -= a[i * k + p] * b[p];
        }
        b[i] = s / a[i * k + i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_spd_system() {
        // A = [[4, 2, 0.4], [2, 5, 1], [0.4, 1, 3]], x = [1, -2, 0.5]
        let a0 = [4.0, 2.0, 0.4, 2.0, 5.0, 1.0, 0.4, 1.0, 3.0];
        let x = [1.0, -2.0, 0.5];
        let mut b = [0.0; 3];
        matvec(&a0, 3, &x, &mut b);
        let mut a = a0;
        assert!(cholesky(&mut a, 3));
        cholesky_solve(&a, 3, &mut b);
        for i in 0..3 {
            assert!((b[i] - x[i]).abs() < 1e-12, "{b:?}");
        }
        let mut not_pd = [1.0, 2.0, 2.0, 1.0];
        assert!(!cholesky(&mut not_pd, 2));
    }

    #[test]
    fn lu_solves_nonsymmetric_system_needing_pivoting() {
        let a0 = [0.0, 2.0, 1.0, 1.0, 1.0, -1.0, 3.0, -2.0, 0.5];
        let x = [0.3, -1.5, 2.0];
        let mut b = [0.0; 3];
        matvec(&a0, 3, &x, &mut b);
        let mut a = a0;
        let mut piv = [0; 3];
        assert!(lu(&mut a, 3, &mut piv));
        lu_solve(&a, 3, &piv, &mut b);
        for i in 0..3 {
            assert!((b[i] - x[i]).abs() < 1e-12, "{b:?}");
        }
        let mut singular = [1.0, 2.0, 2.0, 4.0];
        assert!(!lu(&mut singular, 2, &mut piv));
    }

    #[test]
    fn dot_matches_naive_sum() {
        let a: Vec<f64> = (0..13).map(|i| i as f64 * 0.5 - 2.0).collect();
        let b: Vec<f64> = (0..13).map(|i| (i as f64).sin()).collect();
        let naive: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-12);
    }
}
