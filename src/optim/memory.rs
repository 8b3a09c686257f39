//! The limited-memory BFGS matrix: the last `m` correction pairs `s_k = x_{k+1} − x_k`,
//! `y_k = g_{k+1} − g_k`, used two ways:
//!
//! - by the two-loop recursion (Nocedal 1980; Nocedal & Wright, Algorithm 7.4) for the
//!   unconstrained inverse-Hessian product `H g` with `H_0 = γ I`, `γ = sᵀy / yᵀy`;
//! - by the compact representation of Byrd, Nocedal & Schnabel (1994) used in L-BFGS-B
//!   (Byrd, Lu, Nocedal & Zhu 1995, eqs. (3.2)–(3.4)):
//!   `B = θ I − W M Wᵀ`, `W = [Y  θS]` (n × 2m), `θ = yᵀy / sᵀy` of the newest pair, and
//!   `M = [[−D, Lᵀ], [L, θ SᵀS]]⁻¹`, with `D = diag(s_iᵀ y_i)` and `L` the strictly lower
//!   triangle of `SᵀY` (`L_ij = s_iᵀ y_j`, `i > j`).
//!
//! Storage: `m + 1` slots of length `n` for `s` and for `y` (slot-major, each vector
//! contiguous). A new pair is written into the spare slot and only then admitted, so a
//! pair rejected by the curvature test costs no copy. The inner products `SᵀY`, `SᵀS`,
//! `YᵀY` are kept slot-indexed and updated with `O(m n)` work per admitted pair.

use super::dense::{axpy, axpy_dot, cholesky, cholesky_solve, dot, dot2, dot4};

#[derive(Debug, Clone, Default)]
pub(crate) struct Memory {
    pub(crate) n: usize,
    /// Maximum number of pairs.
    pub(crate) m: usize,
    /// `m + 1` slots.
    cap: usize,
    s: Vec<f64>,
    y: Vec<f64>,
    /// Slot of the oldest pair.
    head: usize,
    /// Number of pairs held.
    pub(crate) len: usize,
    /// Slot-indexed `cap × cap` products: `sty[i * cap + j] = s_iᵀ y_j`.
    sty: Vec<f64>,
    sts: Vec<f64>,
    yty: Vec<f64>,
    /// `θ` (inverse of the two-loop `γ`).
    pub(crate) theta: f64,
    /// Whether `SᵀS`, `YᵀY` and the off-diagonal `SᵀY` are maintained (bounded solver).
    full_products: bool,
    /// The chronological `2len × 2len` middle matrix `M`, valid after [`Memory::form_m`].
    pub(crate) mmat: Vec<f64>,
    // Scratch for forming M.
    sc: Vec<f64>,
    e: Vec<f64>,
    col: Vec<f64>,
    // Two-loop scratch.
    alpha: Vec<f64>,
    /// Per slot, the number of the admission that wrote the pair now held there (0: none);
    /// lets a cache of products over the pairs (the subspace step's `WᵀZZᵀW`) tell which
    /// of its rows are stale.
    stamps: Vec<u64>,
    /// Admissions so far (never reset, so a stamp is never reused).
    admissions: u64,
}

impl Memory {
    /// Sizes the buffers (allocates only when `n` or `m` grew) and empties the memory.
    pub(crate) fn reset_for(&mut self, n: usize, m: usize, full_products: bool) {
        let cap = m + 1;
        if self.n != n || self.m != m {
            self.s.clear();
            self.s.resize(cap * n, 0.0);
            self.y.clear();
            self.y.resize(cap * n, 0.0);
            for v in [&mut self.sty, &mut self.sts, &mut self.yty] {
                v.clear();
                v.resize(cap * cap, 0.0);
            }
            self.mmat.clear();
            self.mmat.resize(4 * m * m, 0.0);
            self.sc.clear();
            self.sc.resize(m * m, 0.0);
            self.e.clear();
            self.e.resize(m * m, 0.0);
            self.col.clear();
            self.col.resize(m, 0.0);
            self.alpha.clear();
            self.alpha.resize(cap, 0.0);
            self.stamps.clear();
            self.stamps.resize(cap, 0);
        }
        self.n = n;
        self.m = m;
        self.cap = cap;
        self.full_products = full_products;
        self.clear();
    }

    /// Forgets all pairs (keeps the buffers).
    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
        self.theta = 1.0;
    }

    /// Slot of the `k`-th oldest pair (`k < len`).
    #[inline]
    pub(crate) fn slot(&self, k: usize) -> usize {
        (self.head + k) % self.cap
    }

    /// The spare slot the next pair is written into.
    #[inline]
    fn spare(&self) -> usize {
        (self.head + self.len) % self.cap
    }

    /// Number of slots (`m + 1`).
    #[inline]
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// The stamp of the pair in slot `j`: distinct for every admitted pair.
    #[inline]
    pub(crate) fn stamp(&self, j: usize) -> u64 {
        self.stamps[j]
    }

    /// `s` of slot `j`.
    #[inline]
    pub(crate) fn s(&self, j: usize) -> &[f64] {
        &self.s[j * self.n..(j + 1) * self.n]
    }

    /// `y` of slot `j`.
    #[inline]
    pub(crate) fn y(&self, j: usize) -> &[f64] {
        &self.y[j * self.n..(j + 1) * self.n]
    }

    /// `(s, y)` of the spare slot, for the caller to fill.
    pub(crate) fn spare_mut(&mut self) -> (&mut [f64], &mut [f64]) {
        let j = self.spare();
        let n = self.n;
        (
            &mut self.s[j * n..(j + 1) * n],
            &mut self.y[j * n..(j + 1) * n],
        )
    }

    /// [`admit_with`](Self::admit_with), computing the products itself.
    #[cfg(test)]
    pub(crate) fn admit(&mut self) -> bool {
        let q = self.spare();
        let (sy, ss, yy) = {
            let s = self.s(q);
            let y = self.y(q);
            (dot(s, y), dot(s, s), dot(y, y))
        };
        self.admit_products(sy, ss, yy)
    }

    /// Admits the pair in the spare slot if it passes the curvature test
    /// `sᵀy > ε ‖s‖ ‖y‖` (ε = machine epsilon). Returns whether it was admitted.
    fn admit_products(&mut self, sy: f64, ss: f64, yy: f64) -> bool {
        let q = self.spare();
        if !(sy > f64::EPSILON * (ss * yy).sqrt()) || !sy.is_finite() || !yy.is_finite() {
            return false;
        }
        if self.len == self.m {
            self.head = (self.head + 1) % self.cap;
            self.len -= 1;
        }
        let cap = self.cap;
        self.sty[q * cap + q] = sy;
        self.sts[q * cap + q] = ss;
        self.yty[q * cap + q] = yy;
        if self.full_products {
            for k in 0..self.len {
                let j = self.slot(k);
                let (sq, yq, sj, yj) = (self.s(q), self.y(q), self.s(j), self.y(j));
                let (a, b, c, d) = dot4(sq, yq, sj, yj);
                self.sty[q * cap + j] = a;
                self.sty[j * cap + q] = b;
                self.sts[q * cap + j] = c;
                self.sts[j * cap + q] = c;
                self.yty[q * cap + j] = d;
                self.yty[j * cap + q] = d;
            }
        }
        self.len += 1;
        self.admissions += 1;
        self.stamps[q] = self.admissions;
        self.theta = yy / sy;
        true
    }

    /// `s_iᵀ y_j` for chronological indices.
    #[inline]
    pub(crate) fn sty(&self, i: usize, j: usize) -> f64 {
        self.sty[self.slot(i) * self.cap + self.slot(j)]
    }
    /// `s_iᵀ s_j` for chronological indices.
    #[inline]
    pub(crate) fn sts(&self, i: usize, j: usize) -> f64 {
        self.sts[self.slot(i) * self.cap + self.slot(j)]
    }
    /// `y_iᵀ y_j` for chronological indices.
    #[inline]
    pub(crate) fn yty(&self, i: usize, j: usize) -> f64 {
        self.yty[self.slot(i) * self.cap + self.slot(j)]
    }

    /// Two-loop recursion: overwrites `q` (holding `v` on entry) with `H v`. Each loop fuses
    /// the update of `q` with the next inner product, so `q` is swept once per pair and loop.
    pub(crate) fn two_loop(&mut self, q: &mut [f64]) {
        let len = self.len;
        if len == 0 {
            return;
        }
        let n = self.n;
        let cap = self.cap;
        let rho = |j: usize, sty: &[f64]| 1.0 / sty[j * cap + j];
        // First loop, newest to oldest: α_k = ρ_k s_kᵀq, q ← q − α_k y_k.
        let mut j = self.slot(len - 1);
        let mut sq = dot(&self.s[j * n..(j + 1) * n], q);
        for k in (0..len).rev() {
            let a = rho(j, &self.sty) * sq;
            self.alpha[k] = a;
            let y = &self.y[j * n..(j + 1) * n];
            if k > 0 {
                let jn = self.slot(k - 1);
                sq = axpy_dot(-a, y, q, &self.s[jn * n..(jn + 1) * n]);
                j = jn;
            } else {
                axpy(-a, y, q);
            }
        }
        // Scaling H_0 = γ I, fused with the first inner product of the second loop.
        let gamma = 1.0 / self.theta;
        let j0 = self.slot(0);
        let mut yq = 0.0;
        {
            let y0 = &self.y[j0 * n..(j0 + 1) * n];
            for (qi, yi) in q.iter_mut().zip(y0) {
                *qi *= gamma;
                yq += yi * *qi;
            }
        }
        // Second loop, oldest to newest: β = ρ_k y_kᵀr, r ← r + (α_k − β) s_k.
        let mut j = j0;
        for k in 0..len {
            let b = rho(j, &self.sty) * yq;
            let coef = self.alpha[k] - b;
            let s = &self.s[j * n..(j + 1) * n];
            if k + 1 < len {
                let jn = self.slot(k + 1);
                yq = axpy_dot(coef, s, q, &self.y[jn * n..(jn + 1) * n]);
                j = jn;
            } else {
                axpy(coef, s, q);
            }
        }
    }

    /// Admits the pair in the spare slot (see `admit_products`) given `sᵀy`, `sᵀs`, `yᵀy`
    /// computed by the caller.
    pub(crate) fn admit_with(&mut self, sy: f64, ss: f64, yy: f64) -> bool {
        self.admit_products(sy, ss, yy)
    }

    /// Forms the chronological middle matrix `M` (`2len × 2len`, row-major in `mmat`) by
    /// block elimination: with the Schur complement `C = θ SᵀS + L D⁻¹ Lᵀ` (symmetric positive
    /// definite, factorised by Cholesky as in the paper's eq. (3.5)–(3.6)),
    /// `M = [[−D⁻¹ + D⁻¹ Lᵀ C⁻¹ L D⁻¹, D⁻¹ Lᵀ C⁻¹], [C⁻¹ L D⁻¹, C⁻¹]]`.
    /// Returns `false` if `C` is not numerically positive definite.
    pub(crate) fn form_m(&mut self) -> bool {
        let l = self.len;
        let theta = self.theta;
        // C = θ SᵀS + L D⁻¹ Lᵀ:  (L D⁻¹ Lᵀ)_ij = Σ_{k < min(i,j)} L_ik L_jk / D_k.
        for i in 0..l {
            for j in 0..=i {
                let mut v = theta * self.sts(i, j);
                for k in 0..j {
                    v += self.sty(i, k) * self.sty(j, k) / self.sty(k, k);
                }
                self.sc[i * l + j] = v;
                self.sc[j * l + i] = v;
            }
        }
        if !cholesky(&mut self.sc[..l * l], l) {
            return false;
        }
        // E = C⁻¹ L D⁻¹ (column by column), stored row-major in e.
        for j in 0..l {
            let dj = self.sty(j, j);
            for i in 0..l {
                self.col[i] = if i > j { self.sty(i, j) / dj } else { 0.0 };
            }
            cholesky_solve(&self.sc[..l * l], l, &mut self.col[..l]);
            for i in 0..l {
                self.e[i * l + j] = self.col[i];
            }
        }
        let k2 = 2 * l;
        let mm = &mut self.mmat;
        // Bottom-right: C⁻¹.
        for j in 0..l {
            for i in 0..l {
                self.col[i] = if i == j { 1.0 } else { 0.0 };
            }
            cholesky_solve(&self.sc[..l * l], l, &mut self.col[..l]);
            for i in 0..l {
                mm[(l + i) * k2 + (l + j)] = self.col[i];
            }
        }
        // Off-diagonal blocks: bottom-left E, top-right Eᵀ.
        for i in 0..l {
            for j in 0..l {
                let v = self.e[i * l + j];
                mm[(l + i) * k2 + j] = v;
                mm[j * k2 + (l + i)] = v;
            }
        }
        // Top-left: −D⁻¹ + D⁻¹ Lᵀ E.
        let (head, cap) = (self.head, self.cap);
        let slot = |k: usize| (head + k) % cap;
        for i in 0..l {
            let di = self.sty[slot(i) * cap + slot(i)];
            for j in 0..l {
                let mut v = 0.0;
                // (Lᵀ E)_ij = Σ_k L_ki E_kj, L_ki nonzero for k > i.
                for k in i + 1..l {
                    v += self.sty[slot(k) * cap + slot(i)] * self.e[k * l + j];
                }
                v /= di;
                if i == j {
                    v -= 1.0 / di;
                }
                mm[i * k2 + j] = v;
            }
        }
        true
    }

    /// Row `i` of `W = [Y  θS]` (chronological), written into `w[..2len]`.
    #[inline]
    pub(crate) fn w_row(&self, i: usize, w: &mut [f64]) {
        let l = self.len;
        let n = self.n;
        for k in 0..l {
            let j = self.slot(k);
            w[k] = self.y[j * n + i];
            w[l + k] = self.theta * self.s[j * n + i];
        }
    }

    /// `out = Wᵀ v` (`2len` entries).
    pub(crate) fn wt_times(&self, v: &[f64], out: &mut [f64]) {
        let l = self.len;
        for k in 0..l {
            let j = self.slot(k);
            let (a, b) = dot2(self.y(j), self.s(j), v);
            out[k] = a;
            out[l + k] = self.theta * b;
        }
    }

    /// `out = W z` (`n` entries) for `z` of length `2len`, by contiguous column sweeps.
    pub(crate) fn w_times(&self, z: &[f64], out: &mut [f64]) {
        let l = self.len;
        out.iter_mut().for_each(|v| *v = 0.0);
        for k in 0..l {
            let j = self.slot(k);
            let (a, b) = (z[k], self.theta * z[l + k]);
            for ((o, y), s) in out.iter_mut().zip(self.y(j)).zip(self.s(j)) {
                *o += a * y + b * s;
            }
        }
    }

    /// `WᵀW` (`2len × 2len`, row-major into `out`) from the maintained inner products:
    /// `[[YᵀY, θ YᵀS], [θ SᵀY, θ² SᵀS]]`.
    pub(crate) fn wtw(&self, out: &mut [f64]) {
        let l = self.len;
        let k2 = 2 * l;
        let t = self.theta;
        for i in 0..l {
            for j in 0..l {
                out[i * k2 + j] = self.yty(i, j);
                out[i * k2 + l + j] = t * self.sty(j, i);
                out[(l + i) * k2 + j] = t * self.sty(i, j);
                out[(l + i) * k2 + l + j] = t * t * self.sts(i, j);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::dense::matvec;

    /// Dense BFGS recursion `B_{k+1} = B_k − B s sᵀ B / sᵀBs + y yᵀ / yᵀs` from `B_0 = θ I`
    /// must equal the compact form `θ I − W M Wᵀ`; and the two-loop `H g` must solve `B x = g`.
    #[test]
    fn compact_form_and_two_loop_match_dense_bfgs() {
        let n = 5;
        let m = 3;
        let mut mem = Memory::default();
        mem.reset_for(n, m, true);
        // Pairs from a convex quadratic with Hessian A (so sᵀy > 0), 5 pairs → wraps.
        let a = |i: usize, j: usize| {
            if i == j {
                3.0 + i as f64
            } else {
                0.3 / (1.0 + (i as f64 - j as f64).abs())
            }
        };
        let mut pairs = Vec::new();
        for p in 0..5 {
            let s: Vec<f64> = (0..n).map(|i| ((p * 7 + i * 3) as f64).sin()).collect();
            let y: Vec<f64> = (0..n)
                .map(|i| (0..n).map(|j| a(i, j) * s[j]).sum())
                .collect();
            let (ss, yy) = mem.spare_mut();
            ss.copy_from_slice(&s);
            yy.copy_from_slice(&y);
            assert!(mem.admit());
            pairs.push((s, y));
        }
        assert_eq!(mem.len, m);
        let theta = mem.theta;
        let kept = &pairs[pairs.len() - m..];
        let mut b = vec![0.0; n * n];
        for i in 0..n {
            b[i * n + i] = theta;
        }
        for (s, y) in kept {
            let mut bs = vec![0.0; n];
            matvec(&b, n, s, &mut bs);
            let sbs: f64 = s.iter().zip(&bs).map(|(a, b)| a * b).sum();
            let ys: f64 = s.iter().zip(y).map(|(a, b)| a * b).sum();
            for i in 0..n {
                for j in 0..n {
                    b[i * n + j] += -bs[i] * bs[j] / sbs + y[i] * y[j] / ys;
                }
            }
        }
        assert!(mem.form_m());
        let k2 = 2 * mem.len;
        let mut wi = vec![0.0; k2];
        let mut wj = vec![0.0; k2];
        let mut mw = vec![0.0; k2];
        for i in 0..n {
            mem.w_row(i, &mut wi);
            matvec(&mem.mmat[..k2 * k2], k2, &wi, &mut mw);
            for j in 0..n {
                mem.w_row(j, &mut wj);
                let wmw: f64 = mw.iter().zip(&wj).map(|(a, b)| a * b).sum();
                let compact = if i == j { theta } else { 0.0 } - wmw;
                assert!(
                    (compact - b[i * n + j]).abs() < 1e-10 * (1.0 + b[i * n + j].abs()),
                    "B[{i},{j}]: compact {compact} vs dense {}",
                    b[i * n + j]
                );
            }
        }
        // Two-loop: H g with H = B⁻¹.
        let g: Vec<f64> = (0..n).map(|i| 1.0 - 0.4 * i as f64).collect();
        let mut q = g.clone();
        mem.two_loop(&mut q);
        let mut bq = vec![0.0; n];
        matvec(&b, n, &q, &mut bq);
        for i in 0..n {
            assert!((bq[i] - g[i]).abs() < 1e-10, "{bq:?} vs {g:?}");
        }
        // WᵀW from maintained products equals the explicit one.
        let mut wtw = vec![0.0; k2 * k2];
        mem.wtw(&mut wtw);
        for r in 0..k2 {
            for c in 0..k2 {
                let mut v = 0.0;
                for i in 0..n {
                    mem.w_row(i, &mut wi);
                    v += wi[r] * wi[c];
                }
                assert!((wtw[r * k2 + c] - v).abs() < 1e-10);
            }
        }
    }

    #[test]
    fn curvature_test_rejects_nonpositive_pairs() {
        let mut mem = Memory::default();
        mem.reset_for(2, 2, false);
        let (s, y) = mem.spare_mut();
        s.copy_from_slice(&[1.0, 0.0]);
        y.copy_from_slice(&[-1.0, 0.0]);
        assert!(!mem.admit());
        assert_eq!(mem.len, 0);
    }
}
