//! The generalized Cauchy point (Byrd, Lu, Nocedal & Zhu 1995, Section 4, Algorithm CP).
//!
//! Along the projected steepest-descent path `x(t) = P(x − t g)` the quadratic model
//! `m(x) = f + gᵀ(x − x_k) + ½ (x − x_k)ᵀ B (x − x_k)` is piecewise quadratic with breakpoints
//! `t_i` (eq. (4.1)). The algorithm visits the breakpoints in increasing order (a binary heap,
//! as the paper suggests), keeping the first and second directional derivatives `f'`, `f''`
//! of the current segment up to date with `O(m²)` work per breakpoint through the compact
//! form `B = θ I − W M Wᵀ` (eqs. (4.4)–(4.12)), and stops at the first local minimiser of the
//! model along the path. Output: the Cauchy point `x^c` and `c = Wᵀ(x^c − x)`, which the
//! subspace minimisation needs.

use super::dense::{dot, matvec};
use super::memory::Memory;

/// Scratch buffers for the Cauchy point.
#[derive(Debug, Clone, Default)]
pub(crate) struct CauchyScratch {
    /// Steepest-descent direction with passed / fixed coordinates zeroed.
    pub(crate) d: Vec<f64>,
    /// Min-heap of `(t_i, i)` over the coordinates with a finite breakpoint.
    pub(crate) heap: Vec<(f64, usize)>,
    /// 2m vectors: `p = Wᵀd`, `w_b`, `M w_b`.
    pub(crate) p: Vec<f64>,
    pub(crate) wb: Vec<f64>,
    pub(crate) mwb: Vec<f64>,
    pub(crate) mp: Vec<f64>,
}

impl CauchyScratch {
    pub(crate) fn resize(&mut self, n: usize, m: usize) {
        if self.d.len() != n {
            self.d.resize(n, 0.0);
            self.heap.clear();
            self.heap.reserve(n);
        }
        for v in [&mut self.p, &mut self.wb, &mut self.mwb, &mut self.mp] {
            if v.len() != 2 * m {
                v.resize(2 * m, 0.0);
            }
        }
    }
}

/// Restores the min-heap order below `i`. Each entry carries its key (`(t_i, i)`), so a
/// comparison reads no other array.
#[inline]
fn sift_down(heap: &mut [(f64, usize)], mut i: usize) {
    let n = heap.len();
    loop {
        let l = 2 * i + 1;
        if l >= n {
            break;
        }
        let r = l + 1;
        let c = if r < n && heap[r].0 < heap[l].0 { r } else { l };
        if heap[c].0 < heap[i].0 {
            heap.swap(i, c);
            i = c;
        } else {
            break;
        }
    }
}

/// Computes the generalized Cauchy point into `xc` and `c = Wᵀ(x^c − x)` into `c[..2len]`.
/// `mem.mmat` must hold `M` for the current pairs (any content when `mem.len == 0`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn cauchy_point(
    x: &[f64],
    g: &[f64],
    lower: &[f64],
    upper: &[f64],
    mem: &Memory,
    xc: &mut [f64],
    c: &mut [f64],
    sc: &mut CauchyScratch,
) {
    let n = x.len();
    let k2 = 2 * mem.len;
    let theta = mem.theta;
    let mmat = &mem.mmat[..k2 * k2];
    let mut dtd = 0.0;
    let mut moving = 0usize;
    // Breakpoints, eq. (4.1), and the initial direction d = −g on the coordinates that move.
    // (Written without branches: the signs of g and which coordinates move are
    // unpredictable. Same values as the branches `g < 0`, `g > 0`, else ∞.)
    sc.heap.resize(n, (0.0, 0));
    let mut len = 0;
    for i in 0..n {
        let gi = g[i];
        let num = if gi < 0.0 {
            x[i] - upper[i]
        } else {
            x[i] - lower[i]
        };
        let ti = if (gi < 0.0) | (gi > 0.0) {
            num / gi
        } else {
            f64::INFINITY
        };
        let moves = ti > 0.0;
        sc.d[i] = if moves { -gi } else { 0.0 };
        dtd += if moves { gi * gi } else { 0.0 };
        moving += usize::from(moves);
        sc.heap[len] = (ti, i);
        len += usize::from(moves & (ti < f64::INFINITY));
        xc[i] = x[i];
    }
    sc.heap.truncate(len);
    c[..k2].iter_mut().for_each(|v| *v = 0.0);
    if dtd == 0.0 {
        return;
    }
    // p = Wᵀ d; f' = −dᵀd; f'' = θ dᵀd − pᵀ M p (eq. (4.9)–(4.10) at t = 0).
    mem.wt_times(&sc.d, &mut sc.p[..k2]);
    matvec(mmat, k2, &sc.p[..k2], &mut sc.mp[..k2]);
    let mut f1 = -dtd;
    let f2_org = theta * dtd - dot(&sc.p[..k2], &sc.mp[..k2]);
    let mut f2 = f2_org.max(f64::EPSILON * theta * dtd);
    let mut dtmin = -f1 / f2;
    let mut told = 0.0;
    // A partial heap: only the breakpoints up to 4× the first segment's minimiser go into
    // it (the others, moved behind them, are heaped only if every one of those is passed).
    // The breakpoints still leave in increasing order; in the MNIST attacks the heap holds
    // ≈ 60 of ≈ 480 breakpoints, and ≈ 20–24 are passed (docs/attack.md).
    let len = sc.heap.len();
    let tau = 4.0 * dtmin;
    let mut low = 0;
    for i in 0..len {
        let below = sc.heap[i].0 <= tau;
        sc.heap.swap(i, low);
        low += usize::from(below);
    }
    let mut rest = low..len;
    for i in (0..low / 2).rev() {
        sift_down(&mut sc.heap[..low], i);
    }
    let mut hlen = low;
    loop {
        if hlen == 0 {
            if rest.is_empty() {
                break;
            }
            // Every breakpoint up to τ passed: the rest become the heap.
            let k = rest.len();
            sc.heap.copy_within(rest, 0);
            rest = 0..0;
            for i in (0..k / 2).rev() {
                sift_down(&mut sc.heap[..k], i);
            }
            hlen = k;
        }
        let (tb, b) = sc.heap[0];
        let dt = tb - told;
        if dtmin < dt {
            break;
        }
        // Pop b.
        hlen -= 1;
        sc.heap.swap(0, hlen);
        sift_down(&mut sc.heap[..hlen], 0);
        // Move to breakpoint b: x_b hits its bound.
        let gb = g[b];
        let xcb = if sc.d[b] > 0.0 { upper[b] } else { lower[b] };
        let zb = xcb - x[b];
        xc[b] = xcb;
        // c ← c + Δt p
        for k in 0..k2 {
            c[k] += dt * sc.p[k];
        }
        mem.w_row(b, &mut sc.wb[..k2]);
        matvec(mmat, k2, &sc.wb[..k2], &mut sc.mwb[..k2]);
        let wmc = dot(&sc.mwb[..k2], &c[..k2]);
        let wmp = dot(&sc.mwb[..k2], &sc.p[..k2]);
        let wmw = dot(&sc.mwb[..k2], &sc.wb[..k2]);
        // Eq. (4.11)–(4.12) (with d_b = −g_b).
        f1 += dt * f2 + gb * gb + theta * gb * zb - gb * wmc;
        f2 += -theta * gb * gb - 2.0 * gb * wmp - gb * gb * wmw;
        f2 = f2.max(f64::EPSILON * f2_org.abs().max(f64::MIN_POSITIVE));
        // p ← p + g_b w_b; d_b ← 0.
        for k in 0..k2 {
            sc.p[k] += gb * sc.wb[k];
        }
        sc.d[b] = 0.0;
        moving -= 1;
        told = tb;
        if f1 >= 0.0 || moving == 0 {
            dtmin = 0.0;
            break;
        }
        dtmin = -f1 / f2;
    }
    let dtmin = dtmin.max(0.0);
    let tfinal = told + dtmin;
    for i in 0..n {
        let moved = (x[i] + tfinal * sc.d[i]).clamp(lower[i], upper[i]);
        xc[i] = if sc.d[i] != 0.0 { moved } else { xc[i] };
    }
    for k in 0..k2 {
        c[k] += dtmin * sc.p[k];
    }
}
