//! Small dense linear algebra on row-major slices (the 2m × 2m matrices of the compact
//! representation). Written here so that the solver needs no LAPACK; nothing allocates.

/// Dot product of two equal-length slices.
///
/// Eight independent accumulators over `chunks_exact(8)`: no bounds checks in the loop, and
/// the compiler packs the lanes into SIMD registers. The summation order is fixed, so the
/// result is deterministic.
#[inline]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let mut acc = [0.0f64; 8];
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// `(aᵀv, bᵀv)` in one sweep.
#[inline]
pub(crate) fn dot2(a: &[f64], b: &[f64], v: &[f64]) -> (f64, f64) {
    let (mut p, mut q) = ([0.0f64; 4], [0.0f64; 4]);
    let (ca, cb, cv) = (a.chunks_exact(4), b.chunks_exact(4), v.chunks_exact(4));
    let (ra, rb, rv) = (ca.remainder(), cb.remainder(), cv.remainder());
    for ((x, y), z) in ca.zip(cb).zip(cv) {
        for j in 0..4 {
            p[j] += x[j] * z[j];
            q[j] += y[j] * z[j];
        }
    }
    let (mut s, mut t) = ((p[0] + p[2]) + (p[1] + p[3]), (q[0] + q[2]) + (q[1] + q[3]));
    for ((x, y), z) in ra.iter().zip(rb).zip(rv) {
        s += x * z;
        t += y * z;
    }
    (s, t)
}

/// `(s_qᵀy_j, s_jᵀy_q, s_qᵀs_j, y_qᵀy_j)` in one sweep over the four vectors.
#[inline]
pub(crate) fn dot4(sq: &[f64], yq: &[f64], sj: &[f64], yj: &[f64]) -> (f64, f64, f64, f64) {
    let mut acc = [[0.0f64; 4]; 4];
    let (c1, c2, c3, c4) = (
        sq.chunks_exact(4),
        yq.chunks_exact(4),
        sj.chunks_exact(4),
        yj.chunks_exact(4),
    );
    let (r1, r2, r3, r4) = (
        c1.remainder(),
        c2.remainder(),
        c3.remainder(),
        c4.remainder(),
    );
    for (((a, b), c), d) in c1.zip(c2).zip(c3).zip(c4) {
        for j in 0..4 {
            acc[0][j] += a[j] * d[j];
            acc[1][j] += c[j] * b[j];
            acc[2][j] += a[j] * c[j];
            acc[3][j] += b[j] * d[j];
        }
    }
    let mut out = [0.0f64; 4];
    for (o, a) in out.iter_mut().zip(&acc) {
        *o = (a[0] + a[2]) + (a[1] + a[3]);
    }
    for (((a, b), c), d) in r1.iter().zip(r2).zip(r3).zip(r4) {
        out[0] += a * d;
        out[1] += c * b;
        out[2] += a * c;
        out[3] += b * d;
    }
    (out[0], out[1], out[2], out[3])
}

/// `y += a * x`.
#[inline]
pub(crate) fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    debug_assert_eq!(x.len(), y.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// `y += a * x`, returning `zᵀy` of the updated `y` in the same pass (one sweep over `y`
/// instead of two in the two-loop recursion).
#[inline]
pub(crate) fn axpy_dot(a: f64, x: &[f64], y: &mut [f64], z: &[f64]) -> f64 {
    debug_assert!(x.len() == y.len() && z.len() == y.len());
    let cx = x.chunks_exact(8);
    let cz = z.chunks_exact(8);
    let (rx, rz) = (cx.remainder(), cz.remainder());
    let mut cy = y.chunks_exact_mut(8);
    let mut acc = [0.0f64; 8];
    for ((xv, yv), zv) in cx.zip(&mut cy).zip(cz) {
        for j in 0..8 {
            yv[j] += a * xv[j];
            acc[j] += zv[j] * yv[j];
        }
    }
    let ry = cy.into_remainder();
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for ((xv, yv), zv) in rx.iter().zip(ry.iter_mut()).zip(rz) {
        *yv += a * xv;
        s += zv * *yv;
    }
    s
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
    fn dot_and_axpy_dot_match_naive_loops() {
        for n in [0usize, 1, 7, 8, 13, 64, 101] {
            let a: Vec<f64> = (0..n).map(|i| i as f64 * 0.5 - 2.0).collect();
            let b: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
            let naive: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() < 1e-12);
            let mut y = b.clone();
            let z: Vec<f64> = (0..n).map(|i| (i as f64 * 0.3).cos()).collect();
            let got = axpy_dot(-0.7, &a, &mut y, &z);
            let y_naive: Vec<f64> = (0..n).map(|i| b[i] - 0.7 * a[i]).collect();
            assert_eq!(y, y_naive);
            let want: f64 = z.iter().zip(&y_naive).map(|(p, q)| p * q).sum();
            assert!((got - want).abs() < 1e-12);
            let (p, q) = dot2(&a, &b, &z);
            let pz: f64 = a.iter().zip(&z).map(|(u, v)| u * v).sum();
            let qz: f64 = b.iter().zip(&z).map(|(u, v)| u * v).sum();
            assert!((p - pz).abs() < 1e-12 && (q - qz).abs() < 1e-12);
            let d4 = dot4(&a, &b, &z, &y);
            let naive = |u: &[f64], v: &[f64]| -> f64 { u.iter().zip(v).map(|(p, q)| p * q).sum() };
            let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * (1.0 + y.abs());
            assert!(close(d4.0, naive(&a, &y)));
            assert!(close(d4.1, naive(&z, &b)));
            assert!(close(d4.2, naive(&a, &z)));
            assert!(close(d4.3, naive(&b, &y)));
        }
    }
}
