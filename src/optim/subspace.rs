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

/// A list compacted without branches (each candidate written at the end, the length advanced
/// when it is kept), in a buffer that keeps its full length so that no iteration re-zeroes it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Compact<T> {
    buf: Vec<T>,
    len: usize,
}

impl<T: Copy + Default> Compact<T> {
    /// Empties the list, for at most `n` candidates.
    #[inline]
    fn reset(&mut self, n: usize) {
        if self.buf.len() != n {
            self.buf.clear();
            self.buf.resize(n, T::default());
        }
        self.len = 0;
    }

    /// Writes `v` at the end; keeps it when `keep`.
    #[inline]
    fn offer(&mut self, v: T, keep: bool) {
        self.buf[self.len] = v;
        self.len += usize::from(keep);
    }

    /// The kept entries.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[T] {
        &self.buf[..self.len]
    }

    /// The number of kept entries.
    #[inline]
    fn len(&self) -> usize {
        self.len
    }
}

/// Scratch buffers for the subspace step.
#[derive(Debug, Clone, Default)]
pub(crate) struct SubspaceScratch {
    /// Indices of the free variables.
    pub(crate) free: Compact<usize>,
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
    /// The products of the pairs over the fixed variables, kept from one iteration to the
    /// next (see [`FixedGram`]).
    pub(crate) gram: FixedGram,
}

/// `Σ_{i fixed} w_i w_iᵀ` of the subspace step, by blocks and slot-indexed: for the slots
/// `a`, `b` of the memory, `yy[a][b] = Σ y_a[i] y_b[i]`, `sy[a][b] = Σ s_a[i] y_b[i]`,
/// `ss[a][b] = Σ s_a[i] s_b[i]` over the variables `i` that were fixed at the last Cauchy
/// point (`fixed`), for the pairs whose stamps are in `stamps`.
///
/// From one iteration to the next the fixed set changes in a few variables and one pair
/// enters the memory, so the sums are updated (`O(m²)` per variable that entered or left the
/// set, `O(m · |fixed|)` for the new pair) instead of being rebuilt (`O(m² · |fixed|)`), as
/// `formk` of the L-BFGS-B code does (Byrd, Lu, Nocedal & Zhu 1995; Zhu, Byrd, Lu & Nocedal
/// 1997). They are rebuilt from scratch when the updates since the last rebuild would outnumber
/// the fixed variables, which bounds both the cost and the accumulated rounding.
#[derive(Debug, Clone, Default)]
pub(crate) struct FixedGram {
    /// Membership of the set the sums run over, per variable.
    fixed: Vec<bool>,
    /// The fixed variables of the current iteration.
    list: Compact<usize>,
    /// The variables that entered (`+1`) or left (`−1`) the set this iteration.
    changed: Compact<(usize, f64)>,
    /// Per slot, the stamp of the pair the sums hold (0: none).
    stamps: Vec<u64>,
    /// Slot-indexed `cap × cap` sums.
    yy: Vec<f64>,
    sy: Vec<f64>,
    ss: Vec<f64>,
    /// Variables added or removed since the last rebuild.
    updates: usize,
    /// Scratch: the current slots, and which of them the sums hold.
    slots: Vec<usize>,
    held: Vec<bool>,
    /// Scratch: `y_a[i]`, `s_a[i]` over the held slots.
    vy: Vec<f64>,
    vs: Vec<f64>,
}

impl FixedGram {
    /// Brings the sums to the variables fixed at `xc` (not strictly inside their bounds) and
    /// the current pairs of `mem`.
    fn update(&mut self, mem: &Memory, lower: &[f64], upper: &[f64], xc: &[f64]) {
        let n = mem.n;
        let cap = mem.cap();
        if self.fixed.len() != n || self.stamps.len() != cap {
            self.fixed.clear();
            self.fixed.resize(n, false);
            self.stamps.clear();
            self.stamps.resize(cap, 0);
            for v in [&mut self.yy, &mut self.sy, &mut self.ss] {
                v.clear();
                v.resize(cap * cap, 0.0);
            }
            self.updates = 0;
        }
        // The new fixed set, and how it differs from the one the sums run over (written
        // without branches: whether a variable is fixed is unpredictable).
        self.list.reset(n);
        self.changed.reset(n);
        for i in 0..n {
            let now_fixed = !((lower[i] < xc[i]) & (xc[i] < upper[i]));
            self.list.offer(i, now_fixed);
            self.changed.offer(
                (i, if now_fixed { 1.0 } else { -1.0 }),
                now_fixed != self.fixed[i],
            );
            self.fixed[i] = now_fixed;
        }
        self.slots.clear();
        self.held.clear();
        for k in 0..mem.len {
            let j = mem.slot(k);
            self.slots.push(j);
            // Every pair in the memory has a nonzero stamp, so a 0 (none) never matches.
            self.held.push(self.stamps[j] == mem.stamp(j));
        }
        let any_held = self.held.iter().any(|&h| h);
        if !any_held || self.updates + self.changed.len() > self.list.len() {
            // Rebuild: every current pair from scratch.
            self.held.iter_mut().for_each(|h| *h = false);
            self.updates = 0;
        } else {
            self.updates += self.changed.len();
            self.apply_changes(mem);
        }
        // The pairs the sums do not hold yet: their rows against every current pair.
        for a in 0..self.slots.len() {
            if self.held[a] {
                continue;
            }
            let p = self.slots[a];
            let (sp, yp) = (mem.s(p), mem.y(p));
            for b in 0..self.slots.len() {
                if b != a && !self.held[b] {
                    continue;
                }
                let q = self.slots[b];
                let (sq, yq) = (mem.s(q), mem.y(q));
                let (mut yy, mut spyq, mut sqyp, mut ss) = (0.0, 0.0, 0.0, 0.0);
                for &i in self.list.as_slice() {
                    yy += yp[i] * yq[i];
                    spyq += sp[i] * yq[i];
                    sqyp += sq[i] * yp[i];
                    ss += sp[i] * sq[i];
                }
                self.yy[p * cap + q] = yy;
                self.yy[q * cap + p] = yy;
                self.ss[p * cap + q] = ss;
                self.ss[q * cap + p] = ss;
                self.sy[p * cap + q] = spyq;
                self.sy[q * cap + p] = sqyp;
            }
            self.held[a] = true;
            self.stamps[p] = mem.stamp(p);
        }
    }

    /// Adds (or removes) the variables that entered (or left) the fixed set to the sums of
    /// the held pairs.
    fn apply_changes(&mut self, mem: &Memory) {
        let cap = mem.cap();
        let k = self.slots.len();
        self.vy.resize(k, 0.0);
        self.vs.resize(k, 0.0);
        for &(i, sign) in self.changed.as_slice() {
            for a in 0..k {
                let (vy, vs) = if self.held[a] {
                    let j = self.slots[a];
                    (mem.y(j)[i], mem.s(j)[i])
                } else {
                    (0.0, 0.0)
                };
                self.vy[a] = sign * vy;
                self.vs[a] = sign * vs;
            }
            for a in 0..k {
                if !self.held[a] {
                    continue;
                }
                let p = self.slots[a];
                let (ya, sa) = (mem.y(p)[i], mem.s(p)[i]);
                let row = p * cap;
                for b in 0..k {
                    let q = self.slots[b];
                    self.yy[row + q] += ya * self.vy[b];
                    self.sy[row + q] += sa * self.vy[b];
                    self.ss[row + q] += sa * self.vs[b];
                }
            }
        }
    }

    /// `a = WᵀW − Σ_{i fixed} w_i w_iᵀ` (`2len × 2len`, chronological, row-major), `W = [Y θS]`.
    fn assemble(&self, mem: &Memory, a: &mut [f64]) {
        let l = mem.len;
        let k2 = 2 * l;
        let cap = mem.cap();
        let t = mem.theta;
        mem.wtw(a);
        for i in 0..l {
            let p = self.slots[i];
            for j in 0..l {
                let q = self.slots[j];
                a[i * k2 + j] -= self.yy[p * cap + q];
                a[i * k2 + l + j] -= t * self.sy[q * cap + p];
                a[(l + i) * k2 + j] -= t * self.sy[p * cap + q];
                a[(l + i) * k2 + l + j] -= t * t * self.ss[p * cap + q];
            }
        }
    }
}

impl SubspaceScratch {
    pub(crate) fn resize(&mut self, n: usize, m: usize) {
        if self.r.len() != n {
            self.r.resize(n, 0.0);
            self.wz.resize(n, 0.0);
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
    // The free set, compacted without branches (whether a variable is free is unpredictable).
    sc.free.reset(n);
    for i in 0..n {
        sc.free.offer(i, (lower[i] < xc[i]) & (xc[i] < upper[i]));
    }
    if sc.free.len() == 0 {
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
    for &i in sc.free.as_slice() {
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
        // A = WᵀZZᵀW: over the free set, or WᵀW minus the sums over the fixed set (kept
        // from the last iteration), whichever set is smaller.
        let a = &mut sc.a[..k2 * k2];
        let nfree = sc.free.len();
        if nfree <= n / 2 {
            a.iter_mut().for_each(|v| *v = 0.0);
            for &i in sc.free.as_slice() {
                mem.w_row(i, &mut sc.wi[..k2]);
                add_outer(a, &sc.wi[..k2], 1.0);
            }
            mirror_upper(a, k2);
        } else {
            sc.gram.update(mem, lower, upper, xc);
            sc.gram.assemble(mem, a);
        }
        // N = I − (1/θ) M A. Row i of M A accumulates the rows of A scaled by M[i, k], in
        // the order k = 0, 1, …: each entry is the same sum in the same order as a dot
        // product of row i of M with column j of A, but the inner loop runs along a row of
        // A (contiguous, in SIMD lanes).
        let nm = &mut sc.nmat[..k2 * k2];
        for (i, row) in nm.chunks_exact_mut(k2).enumerate() {
            row.iter_mut().for_each(|v| *v = 0.0);
            for (&mik, ak) in mmat[i * k2..(i + 1) * k2].iter().zip(a.chunks_exact(k2)) {
                for (r, &akj) in row.iter_mut().zip(ak) {
                    *r += mik * akj;
                }
            }
            for (j, r) in row.iter_mut().enumerate() {
                *r = if i == j { 1.0 } else { 0.0 } - *r / theta;
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
    for &i in sc.free.as_slice() {
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
    for &i in sc.free.as_slice() {
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
    for &i in sc.free.as_slice() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `WᵀZZᵀW` from the kept sums over the fixed set equals the sum over the free rows
    /// computed directly, through admissions (with the memory full and wrapping), a cleared
    /// memory, fixed sets that change a little and a lot, and the rebuild.
    #[test]
    fn kept_sums_match_the_direct_product() {
        let (n, m) = (23, 3);
        let mut mem = Memory::default();
        mem.reset_for(n, m, true);
        let mut gram = FixedGram::default();
        let (lower, upper) = (vec![0.0; n], vec![1.0; n]);
        let mut xc = vec![0.5; n];
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut incremental = 0;
        for step in 0..60 {
            if step == 31 {
                mem.clear();
            }
            // A pair with sᵀy > 0: y = D s with D positive.
            let s: Vec<f64> = (0..n).map(|_| next() - 0.5).collect();
            let y: Vec<f64> = s.iter().map(|v| v * (0.5 + next())).collect();
            let (ss, yy) = mem.spare_mut();
            ss.copy_from_slice(&s);
            yy.copy_from_slice(&y);
            assert!(mem.admit());
            // Move a few variables (every tenth step, most of them) between free and fixed;
            // more fixed than free (the branch the sums serve).
            let moves = if step % 10 == 0 { n } else { 3 };
            for _ in 0..moves {
                let i = (next() * n as f64) as usize % n;
                xc[i] = if next() < 0.65 { 0.0 } else { 0.5 };
            }
            let free: Vec<usize> = (0..n).filter(|&i| xc[i] > 0.0 && xc[i] < 1.0).collect();
            let k2 = 2 * mem.len;
            let mut direct = vec![0.0; k2 * k2];
            let mut wi = vec![0.0; k2];
            for &i in &free {
                mem.w_row(i, &mut wi);
                add_outer(&mut direct, &wi, 1.0);
            }
            mirror_upper(&mut direct, k2);
            let mut kept = vec![0.0; k2 * k2];
            gram.update(&mem, &lower, &upper, &xc);
            gram.assemble(&mem, &mut kept);
            incremental += usize::from(gram.updates > 0);
            let scale = direct.iter().fold(1.0f64, |a, v| a.max(v.abs()));
            for (k, (a, b)) in kept.iter().zip(&direct).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-12 * scale,
                    "step {step}, entry {k}: kept {a} vs direct {b}"
                );
            }
        }
        // Most steps updated the sums rather than rebuilding them.
        assert!(incremental > 30, "{incremental} incremental steps");
    }
}
