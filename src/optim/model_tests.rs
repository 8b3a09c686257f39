//! Unit tests of the Cauchy point and the subspace step against dense brute force: the
//! compact form is expanded into an explicit `B`, the piecewise-quadratic model along the
//! projected gradient path is minimised segment by segment, and the reduced Newton system is
//! solved densely.

use super::cauchy::{CauchyScratch, cauchy_point};
use super::dense::{lu, lu_solve};
use super::memory::Memory;
use super::subspace::{SubspaceScratch, subspace_step};

/// Deterministic pseudo-random numbers in [-1, 1).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

struct Setup {
    n: usize,
    mem: Memory,
    b: Vec<f64>,
    x: Vec<f64>,
    g: Vec<f64>,
    lower: Vec<f64>,
    upper: Vec<f64>,
}

fn setup(seed: u64, n: usize, m: usize, pairs: usize) -> Setup {
    let mut r = Lcg(seed);
    let mut mem = Memory::default();
    mem.reset_for(n, m, true);
    // Pairs from a random SPD Hessian A = QᵀQ + I, so that sᵀy > 0.
    let q: Vec<f64> = (0..n * n).map(|_| r.next()).collect();
    let a = |i: usize, j: usize| {
        (0..n).map(|k| q[k * n + i] * q[k * n + j]).sum::<f64>() + if i == j { 1.0 } else { 0.0 }
    };
    for _ in 0..pairs {
        let s: Vec<f64> = (0..n).map(|_| r.next()).collect();
        let y: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|j| a(i, j) * s[j]).sum())
            .collect();
        let (ss, yy) = mem.spare_mut();
        ss.copy_from_slice(&s);
        yy.copy_from_slice(&y);
        assert!(mem.admit());
    }
    if mem.len > 0 {
        assert!(mem.form_m());
    }
    let x: Vec<f64> = (0..n).map(|_| r.next()).collect();
    let g: Vec<f64> = (0..n).map(|_| 3.0 * r.next()).collect();
    let mut lower = Vec::new();
    let mut upper = Vec::new();
    for i in 0..n {
        let kind = (r.next() * 4.0 + 4.0) as usize % 5;
        let (l, u) = match kind {
            0 => (x[i], x[i] + 0.5), // at the lower bound
            1 => (x[i] - 0.3, x[i]), // at the upper bound
            2 => (f64::NEG_INFINITY, f64::INFINITY),
            3 => (x[i] - 0.05, x[i] + 0.08), // tight box
            _ => (x[i] - 1.0, x[i] + 0.7),
        };
        lower.push(l);
        upper.push(u);
    }
    with_dense_b(mem, x, g, lower, upper)
}

/// The setup of a given memory, point, gradient and box, with its dense `B = θI − W M Wᵀ`.
fn with_dense_b(mem: Memory, x: Vec<f64>, g: Vec<f64>, lower: Vec<f64>, upper: Vec<f64>) -> Setup {
    let n = x.len();
    let k2 = 2 * mem.len;
    let mut b = vec![0.0; n * n];
    let mut wi = vec![0.0; k2];
    let mut wj = vec![0.0; k2];
    for i in 0..n {
        mem.w_row(i, &mut wi);
        for j in 0..n {
            mem.w_row(j, &mut wj);
            let mut v = 0.0;
            for p in 0..k2 {
                for qq in 0..k2 {
                    v += wi[p] * mem.mmat[p * k2 + qq] * wj[qq];
                }
            }
            b[i * n + j] = if i == j { mem.theta } else { 0.0 } - v;
        }
    }
    Setup {
        n,
        mem,
        b,
        x,
        g,
        lower,
        upper,
    }
}

fn bx(s: &Setup, v: &[f64]) -> Vec<f64> {
    (0..s.n)
        .map(|i| (0..s.n).map(|j| s.b[i * s.n + j] * v[j]).sum())
        .collect()
}

/// First local minimiser of m(z) = gᵀz + ½ zᵀBz along z(t) = P(x − t g) − x, by walking the
/// segments between sorted breakpoints with dense B; and its `t` along the path.
fn brute_cauchy_t(s: &Setup) -> (Vec<f64>, f64) {
    let n = s.n;
    let tb: Vec<f64> = (0..n)
        .map(|i| {
            if s.g[i] < 0.0 {
                (s.x[i] - s.upper[i]) / s.g[i]
            } else if s.g[i] > 0.0 {
                (s.x[i] - s.lower[i]) / s.g[i]
            } else {
                f64::INFINITY
            }
        })
        .collect();
    let mut ts: Vec<f64> = tb
        .iter()
        .copied()
        .filter(|t| *t > 0.0 && t.is_finite())
        .collect();
    ts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    ts.push(f64::INFINITY);
    let path = |t: f64| -> Vec<f64> {
        (0..n)
            .map(|i| (s.x[i] - t * s.g[i]).clamp(s.lower[i], s.upper[i]) - s.x[i])
            .collect()
    };
    let mut t0 = 0.0;
    for &t1 in &ts {
        let z0 = path(t0);
        // Direction on this segment: −g on coordinates not yet at a bound.
        // (decided by the breakpoints, not by comparing rounded positions with the bounds).
        let d: Vec<f64> = (0..n)
            .map(|i| if tb[i] > t0 { -s.g[i] } else { 0.0 })
            .collect();
        let bz = bx(s, &z0);
        let bd = bx(s, &d);
        let f1: f64 = (0..n).map(|i| s.g[i] * d[i] + bz[i] * d[i]).sum();
        let f2: f64 = (0..n).map(|i| d[i] * bd[i]).sum();
        if f1 >= 0.0 {
            return (z0.iter().zip(&s.x).map(|(z, x)| x + z).collect(), t0);
        }
        let tstar = t0 - f1 / f2;
        if f2 > 0.0 && tstar < t1 {
            let point = (0..n)
                .map(|i| s.x[i] + z0[i] + (tstar - t0) * d[i])
                .collect();
            return (point, tstar);
        }
        t0 = t1;
    }
    unreachable!("the model is bounded below along the path")
}

/// The number of breakpoints in `(4 t₁, t]`, `t₁` the minimiser on the first segment: when
/// positive, the Cauchy point's partial heap (the breakpoints up to `4 t₁`) runs empty and the
/// other breakpoints are heaped.
fn breakpoints_beyond_the_partial_heap(s: &Setup, t: f64) -> usize {
    let n = s.n;
    let tb: Vec<f64> = (0..n)
        .map(|i| {
            let num = if s.g[i] < 0.0 {
                s.x[i] - s.upper[i]
            } else {
                s.x[i] - s.lower[i]
            };
            if s.g[i] != 0.0 {
                num / s.g[i]
            } else {
                f64::INFINITY
            }
        })
        .collect();
    let d: Vec<f64> = (0..n)
        .map(|i| if tb[i] > 0.0 { -s.g[i] } else { 0.0 })
        .collect();
    let dtd: f64 = d.iter().map(|v| v * v).sum();
    let f2: f64 = d.iter().zip(bx(s, &d)).map(|(a, b)| a * b).sum();
    let t1 = dtd / f2;
    tb.iter().filter(|&&b| b > 4.0 * t1 && b <= t).count()
}

#[test]
fn cauchy_point_matches_dense_brute_force() {
    let mut compared = 0;
    let mut with_free = 0;
    for seed in 0..200u64 {
        let pairs = (seed % 6) as usize; // 0 (steepest descent) to 5 pairs, m = 4 wraps
        let mut s = setup(seed + 1, 7, 4, pairs);
        let mut xc = vec![0.0; s.n];
        let mut c = vec![0.0; 8];
        let mut sc = CauchyScratch::default();
        sc.resize(s.n, 4);
        cauchy_point(
            &s.x, &s.g, &s.lower, &s.upper, &s.mem, &mut xc, &mut c, &mut sc,
        );
        let (want, _) = brute_cauchy_t(&s);
        for i in 0..s.n {
            assert!(
                (xc[i] - want[i]).abs() < 1e-9,
                "seed {seed}: x^c[{i}] = {} vs brute force {}",
                xc[i],
                want[i]
            );
        }
        // c = Wᵀ(x^c − x).
        let k2 = 2 * s.mem.len;
        let z: Vec<f64> = (0..s.n).map(|i| xc[i] - s.x[i]).collect();
        let mut wtz = vec![0.0; k2];
        s.mem.wt_times(&z, &mut wtz);
        for k in 0..k2 {
            assert!(
                (c[k] - wtz[k]).abs() < 1e-9 * (1.0 + wtz[k].abs()),
                "seed {seed}: c"
            );
        }

        // Subspace step: dense reduced Newton system on the free set at x^c.
        let mut xbar = vec![0.0; s.n];
        let mut ss = SubspaceScratch::default();
        ss.resize(s.n, 4);
        subspace_step(
            &s.x, &s.g, &s.lower, &s.upper, &s.mem, &xc, &c, &mut xbar, &mut ss,
        );
        let free: Vec<usize> = (0..s.n)
            .filter(|&i| s.lower[i] < xc[i] && xc[i] < s.upper[i])
            .collect();
        let t = free.len();
        let bz = bx(&s, &z);
        let mut a = vec![0.0; t * t];
        let mut rhs = vec![0.0; t];
        for (p, &i) in free.iter().enumerate() {
            rhs[p] = -(s.g[i] + bz[i]);
            for (q, &j) in free.iter().enumerate() {
                a[p * t + q] = s.b[i * s.n + j];
            }
        }
        let mut piv = vec![0; t];
        if t > 0 {
            assert!(lu(&mut a, t, &mut piv));
            lu_solve(&a, t, &piv, &mut rhs);
        }
        let mut projected = xc.clone();
        for (p, &i) in free.iter().enumerate() {
            projected[i] = (xc[i] + rhs[p]).clamp(s.lower[i], s.upper[i]);
        }
        let descent: f64 = (0..s.n).map(|i| s.g[i] * (projected[i] - s.x[i])).sum();
        if t > 0 {
            with_free += 1;
        }
        if descent < 0.0 {
            compared += 1;
            for i in 0..s.n {
                assert!(
                    (xbar[i] - projected[i]).abs() < 1e-8,
                    "seed {seed}: x̄[{i}] = {} vs dense {}",
                    xbar[i],
                    projected[i]
                );
            }
        }
        // Whatever branch was taken, x̄ is feasible and a descent point.
        let slope: f64 = (0..s.n).map(|i| s.g[i] * (xbar[i] - s.x[i])).sum();
        assert!(slope < 0.0, "seed {seed}");
        for i in 0..s.n {
            assert!(s.lower[i] <= xbar[i] && xbar[i] <= s.upper[i]);
        }
        s.mem.clear();
    }
    // The comparisons must not be vacuous.
    assert!(
        with_free > 150 && compared > 150,
        "{with_free} with free variables, {compared} compared"
    );
}

/// A Cauchy point that passes breakpoints beyond `4 t₁`: one stiff coordinate (curvature
/// 1000 through the pair `(e₀, 1000 e₀)`) hits its bound almost at once, after which the
/// soft ones, coupled through a second pair, move on past their own breakpoints. Against the
/// dense brute force, `x^c` and `c = Wᵀ(x^c − x)`.
#[test]
fn cauchy_point_past_the_partial_heap_matches_brute_force() {
    for (k, far) in [
        (0usize, [0.05, 0.1, 0.15, 0.2]),
        (1, [0.02, 0.04, 0.3, 3.0]),
    ] {
        let n = 6;
        let mut mem = Memory::default();
        mem.reset_for(n, 4, true);
        // y = A s with A = 1000 on e₀ and I + 0.4·(ones) on the other five coordinates.
        let soft = [0.0, 1.0, 0.5, -0.3, 0.2, 0.7];
        for s_new in [[1.0, 0.0, 0.0, 0.0, 0.0, 0.0], soft] {
            let sum: f64 = s_new[1..].iter().sum();
            let (s, y) = mem.spare_mut();
            s.copy_from_slice(&s_new);
            y[0] = 1000.0 * s_new[0];
            for i in 1..n {
                y[i] = s_new[i] + 0.4 * sum;
            }
            assert!(mem.admit());
        }
        assert!(mem.form_m());
        let x = vec![0.25; n];
        let g = vec![-1.0; n];
        let lower = vec![f64::NEG_INFINITY; n];
        // Breakpoints t_i = (u_i − x_i) / 1: 0.001 for the stiff coordinate, then `far`; the
        // last coordinate is unbounded.
        let mut upper = vec![f64::INFINITY; n];
        upper[0] = 0.25 + 0.001;
        for (u, t) in upper[1..5].iter_mut().zip(far) {
            *u = 0.25 + t;
        }
        let s = with_dense_b(mem, x, g, lower, upper);
        let (want, t) = brute_cauchy_t(&s);
        assert!(
            breakpoints_beyond_the_partial_heap(&s, t) >= 2,
            "case {k}: t = {t}"
        );
        let mut xc = vec![0.0; n];
        let mut c = vec![0.0; 8];
        let mut sc = CauchyScratch::default();
        sc.resize(n, 4);
        cauchy_point(
            &s.x, &s.g, &s.lower, &s.upper, &s.mem, &mut xc, &mut c, &mut sc,
        );
        for i in 0..n {
            assert!(
                (xc[i] - want[i]).abs() < 1e-12,
                "case {k}: x^c[{i}] = {} vs brute force {}",
                xc[i],
                want[i]
            );
        }
        let k2 = 2 * s.mem.len;
        let z: Vec<f64> = (0..n).map(|i| xc[i] - s.x[i]).collect();
        let mut wtz = vec![0.0; k2];
        s.mem.wt_times(&z, &mut wtz);
        for j in 0..k2 {
            assert!(
                (c[j] - wtz[j]).abs() < 1e-12 * (1.0 + wtz[j].abs()),
                "case {k}: c[{j}] = {} vs {}",
                c[j],
                wtz[j]
            );
        }
    }
}
