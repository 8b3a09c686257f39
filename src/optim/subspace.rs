//! Subspace minimisation over the free variables (Byrd, Lu, Nocedal & Zhu 1995, Section 5.1,
//! the direct primal method).
//!
//! With `Z` the columns of the identity for the variables that are free at the Cauchy point
//! `x^c`, the reduced gradient of the model at `x^c` is
//! `r^c = Zᵀ(g + θ(x^c − x) − W M c)` (eq. (5.4)), and the unconstrained minimiser of the
//! model over the free subspace is `x^c + Z d^u` with `d^u = −B̂⁻¹ r^c`, where
//! `B̂ = Zᵀ B Z = θ I − ZᵀW M WᵀZ`. By Sherman–Morrison–Woodbury (eq. (5.10)–(5.11)):
//!
//! `d^u = −(1/θ) r^c − (1/θ²) ZᵀW (I − (1/θ) M WᵀZ ZᵀW)⁻¹ M WᵀZ r^c`,
//!
//! which needs only a `2m × 2m` solve (LU with partial pivoting here). The step is then
//! projected into the box, `x̄ = P(x^c + Z d^u)`; if that does not give a descent direction
//! `(x̄ − x)ᵀ g < 0` we fall back to the paper's truncation (eq. (5.8)): the largest
//! `α* ≤ 1` keeping `x^c + α* Z d^u` feasible (the projection variant is the one advocated by
//! Morales & Nocedal 2011, with this check as safeguard).

use super::dense::{lu, lu_solve, matvec};
use super::memory::Memory;

/// Scratch buffers for the subspace step.
#[derive(Debug, Clone, Default)]
pub(crate) struct SubspaceScratch {
    /// Indices of the free variables.
    pub(crate) free: Vec<usize>,
    /// Reduced gradient, full length, zero off the free set.
    pub(crate) r: Vec<f64>,
    /// `W z`, full length.
    pub(crate) wz: Vec<f64>,
    /// 2m vectors.
    pub(crate) mc: Vec<f64>,
    pub(crate) u: Vec<f64>,
    pub(crate) v: Vec<f64>,
    pub(crate) wi: Vec<f64>,
    /// 2m × 2m matrices: `A = WᵀZZᵀW`, `N`.
    pub(crate) a: Vec<f64>,
    pub(crate) nmat: Vec<f64>,
    pub(crate) piv: Vec<usize>,
}

impl SubspaceScratch {
    pub(crate) fn resize(&mut self, n: usize, m: usize) {
        if self.r.len() != n {
            self.r.resize(n, 0.0);
            self.wz.resize(n, 0.0);
            self.free.clear();
            self.free.reserve(n);
        }
        for v in [&mut self.mc, &mut self.u, &mut self.v, &mut self.wi] {
            if v.len() != 2 * m {
                v.resize(2 * m, 0.0);
            }
        }
        if self.a.len() != 4 * m * m {
            self.a.resize(4 * m * m, 0.0);
            self.nmat.resize(4 * m * m, 0.0);
        }
        if self.piv.len() != 2 * m {
            self.piv.resize(2 * m, 0);
        }
    }
}

/// Writes `x̄` (the subspace minimiser, projected) into `xbar`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn subspace_step(
    x: &[f64],
    g: &[f64],
    lower: &[f64],
    upper: &[f64],
    mem: &Memory,
    xc: &[f64],
    c: &[f64],
    xbar: &mut [f64],
    sc: &mut SubspaceScratch,
) {
    let n = x.len();
    let l = mem.len;
    let k2 = 2 * l;
    let theta = mem.theta;
    xbar.copy_from_slice(xc);
    sc.free.clear();
    for i in 0..n {
        if lower[i] < xc[i] && xc[i] < upper[i] {
            sc.free.push(i);
        }
    }
    if sc.free.is_empty() {
        return;
    }
    let mmat = &mem.mmat[..k2 * k2];
    // M c.
    matvec(mmat, k2, &c[..k2], &mut sc.mc[..k2]);
    // Reduced gradient r^c (eq. (5.4)); zero off the free set. W (M c) is formed column by
    // column (contiguous sweeps) into wz.
    if k2 > 0 {
        mem.w_times(&sc.mc[..k2], &mut sc.wz);
    }
    sc.r.iter_mut().for_each(|v| *v = 0.0);
    for &i in &sc.free {
        let mut ri = g[i] + theta * (xc[i] - x[i]);
        if k2 > 0 {
            ri -= sc.wz[i];
        }
        sc.r[i] = ri;
    }
    // d^u accumulates in wz: start with −r/θ.
    let mut solved = false;
    if k2 > 0 {
        // u = WᵀZ r (r is zero off F); v = M u.
        mem.wt_times(&sc.r, &mut sc.u[..k2]);
        matvec(mmat, k2, &sc.u[..k2], &mut sc.v[..k2]);
        // A = WᵀZZᵀW: over the free set, or WᵀW minus the fixed rows, whichever is cheaper.
        let a = &mut sc.a[..k2 * k2];
        let nfree = sc.free.len();
        if nfree <= n / 2 {
            a.iter_mut().for_each(|v| *v = 0.0);
            for &i in &sc.free {
                mem.w_row(i, &mut sc.wi[..k2]);
                add_outer(a, &sc.wi[..k2], 1.0);
            }
        } else {
            mem.wtw(a);
            let mut fi = 0;
            for i in 0..n {
                if fi < nfree && sc.free[fi] == i {
                    fi += 1;
                    continue;
                }
                mem.w_row(i, &mut sc.wi[..k2]);
                add_outer(a, &sc.wi[..k2], -1.0);
            }
        }
        mirror_upper(a, k2);
        // N = I − (1/θ) M A.
        let nm = &mut sc.nmat[..k2 * k2];
        for i in 0..k2 {
            for j in 0..k2 {
                let mut s = 0.0;
                for k in 0..k2 {
                    s += mmat[i * k2 + k] * a[k * k2 + j];
                }
                nm[i * k2 + j] = if i == j { 1.0 } else { 0.0 } - s / theta;
            }
        }
        if lu(nm, k2, &mut sc.piv[..k2]) {
            lu_solve(nm, k2, &sc.piv[..k2], &mut sc.v[..k2]);
            if sc.v[..k2].iter().all(|v| v.is_finite()) {
                solved = true;
            }
        }
    }
    // d^u = −r/θ − (1/θ²) W z (z = N⁻¹ M WᵀZ r), on F.
    if solved {
        mem.w_times(&sc.v[..k2], &mut sc.wz);
    }
    let inv_t = 1.0 / theta;
    let inv_t2 = inv_t * inv_t;
    // Projected step, and the descent check.
    let mut slope = 0.0;
    for i in 0..n {
        slope += g[i] * (xc[i] - x[i]);
    }
    let slope_c = slope;
    for &i in &sc.free {
        let du = if solved {
            -inv_t * sc.r[i] - inv_t2 * sc.wz[i]
        } else {
            -inv_t * sc.r[i]
        };
        sc.r[i] = du; // keep d^u for the fallback
        let xi = (xc[i] + du).clamp(lower[i], upper[i]);
        slope += g[i] * (xi - xc[i]);
        xbar[i] = xi;
    }
    if slope < 0.0 && slope.is_finite() {
        return;
    }
    // Fallback: truncated step x^c + α* d^u with the largest feasible α* ≤ 1.
    let mut alpha: f64 = 1.0;
    for &i in &sc.free {
        let du = sc.r[i];
        if du > 0.0 {
            alpha = alpha.min((upper[i] - xc[i]) / du);
        } else if du < 0.0 {
            alpha = alpha.min((lower[i] - xc[i]) / du);
        }
    }
    let alpha = if alpha.is_finite() {
        alpha.max(0.0)
    } else {
        0.0
    };
    let mut slope_t = slope_c;
    for &i in &sc.free {
        let xi = (xc[i] + alpha * sc.r[i]).clamp(lower[i], upper[i]);
        slope_t += g[i] * (xi - xc[i]);
        xbar[i] = xi;
    }
    if !(slope_t < 0.0) || !slope_t.is_finite() {
        // Keep the Cauchy point, which is a descent point whenever the projected gradient
        // is nonzero.
        xbar.copy_from_slice(xc);
    }
}

/// `a += sign · w wᵀ` on the upper triangle (`j ≥ i`); see [`mirror_upper`].
#[inline]
fn add_outer(a: &mut [f64], w: &[f64], sign: f64) {
    let k = w.len();
    for i in 0..k {
        let wi = sign * w[i];
        if wi != 0.0 {
            let row = &mut a[i * k + i..(i + 1) * k];
            for (r, wj) in row.iter_mut().zip(&w[i..]) {
                *r += wi * wj;
            }
        }
    }
}

/// Copies the upper triangle of a `k × k` matrix into its lower triangle.
fn mirror_upper(a: &mut [f64], k: usize) {
    for i in 0..k {
        for j in 0..i {
            a[i * k + j] = a[j * k + i];
        }
    }
}
