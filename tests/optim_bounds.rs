//! L-BFGS-B on bounded problems with known solutions (some on the boundary), random
//! box-constrained convex quadratics checked against KKT and an independent projected-gradient
//! solver, degenerate cases, typed errors, budgets and the observer.
#![allow(clippy::needless_range_loop)]

use intriguing::Error;
use intriguing::optim::{Bounds, FnObjective, IterationInfo, Lbfgsb, Termination, Workspace};
use proptest::prelude::*;
use std::ops::ControlFlow;

fn rosen(x: &[f64], g: &mut [f64]) -> f64 {
    let (a, b) = (1.0 - x[0], x[1] - x[0] * x[0]);
    g[0] = -2.0 * a - 400.0 * x[0] * b;
    g[1] = 200.0 * b;
    a * a + 100.0 * b * b
}

fn tight() -> Lbfgsb {
    Lbfgsb::new()
        .with_pgtol(1e-10)
        .unwrap()
        .with_ftol(0.0)
        .unwrap()
}

/// Runs `solver` and checks that every point the objective sees lies in `bounds`.
fn solve_in_box(
    solver: &Lbfgsb,
    bounds: &Bounds,
    x0: &[f64],
    mut fg: impl FnMut(&[f64], &mut [f64]) -> f64,
) -> (intriguing::optim::Solution, usize) {
    let mut outside = 0usize;
    let mut obj = FnObjective::new(x0.len(), |x: &[f64], g: &mut [f64]| {
        if !bounds.contains(x) {
            outside += 1;
        }
        fg(x, g)
    });
    let sol = solver.minimize(&mut obj, x0).unwrap();
    (sol, outside)
}

#[test]
fn scipy_lbfgsb_bounds_case() {
    // scipy.optimize TestLBFGSBBounds: f = (x1² + x2²)/2, x1 >= 1, start (0, -1),
    // solution (1, 0).
    let b = Bounds::new(
        vec![1.0, f64::NEG_INFINITY],
        vec![f64::INFINITY, f64::INFINITY],
    )
    .unwrap();
    let solver = Lbfgsb::new().with_bounds(b.clone());
    let (sol, outside) = solve_in_box(&solver, &b, &[0.0, -1.0], |x, g| {
        g[0] = x[0];
        g[1] = x[1];
        0.5 * (x[0] * x[0] + x[1] * x[1])
    });
    assert_eq!(outside, 0);
    assert!(sol.converged(), "{:?}", sol.termination);
    assert!(
        (sol.x[0] - 1.0).abs() < 1e-6 && sol.x[1].abs() < 1e-6,
        "{:?}",
        sol.x
    );
}

#[test]
fn rosenbrock_with_optimum_on_one_bound() {
    // Box [-2, 0.5] × [-2, 2]: f(0.5, y) = 0.25 + 100 (y − 0.25)², and ∂f/∂x < 0 there, so
    // the solution is (0.5, 0.25) with f = 0.25 and the bound on x active.
    let b = Bounds::new(vec![-2.0, -2.0], vec![0.5, 2.0]).unwrap();
    let solver = tight().with_bounds(b.clone());
    let (sol, outside) = solve_in_box(&solver, &b, &[-1.2, 1.0], rosen);
    assert_eq!(outside, 0);
    assert_eq!(sol.x[0], 0.5);
    assert!((sol.x[1] - 0.25).abs() < 1e-8, "{:?}", sol.x);
    assert!((sol.value - 0.25).abs() < 1e-12);
    let mut g = [0.0; 2];
    rosen(&sol.x, &mut g);
    assert!(
        g[0] < 0.0,
        "multiplier sign: ∂f/∂x must push against the upper bound"
    );
}

#[test]
fn rosenbrock_with_optimum_at_a_corner_and_on_an_edge() {
    // Box [-2, 0.5] × [-2, 0.1]: with y = 0.1 active, the minimiser in x solves
    // h(x) = −2(1 − x) − 400 x (0.1 − x²) = 0 on [-2, 0.5] (h(0.5) = 29 > 0, so x < 0.5).
    let b = Bounds::new(vec![-2.0, -2.0], vec![0.5, 0.1]).unwrap();
    let solver = tight().with_bounds(b.clone());
    let (sol, outside) = solve_in_box(&solver, &b, &[-1.2, 1.0], rosen);
    assert_eq!(outside, 0);
    assert_eq!(sol.x[1], 0.1);
    // Independent 1-D solution by bisection on h over [0, 0.5] (h(0) = -2 < 0).
    let h = |x: f64| -2.0 * (1.0 - x) - 400.0 * x * (0.1 - x * x);
    let (mut lo, mut hi) = (0.0, 0.5);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if h(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    assert!(
        (sol.x[0] - lo).abs() < 1e-7,
        "{} vs bisection {lo}",
        sol.x[0]
    );
    // Box [-2, -1] × [2, 3]: the minimiser lies on the edge y = 2 (∂f/∂y > 0 there) with x
    // interior; checked by KKT (projected gradient) and against a grid search.
    let b = Bounds::new(vec![-2.0, 2.0], vec![-1.0, 3.0]).unwrap();
    let solver = tight().with_bounds(b.clone());
    let (sol, outside) = solve_in_box(&solver, &b, &[-1.5, 2.5], rosen);
    assert_eq!(outside, 0);
    assert_eq!(sol.x[1], 2.0);
    let mut g = [0.0; 2];
    rosen(&sol.x, &mut g);
    assert!(b.projected_gradient_norm(&sol.x, &g) < 1e-6);
    let mut best = f64::INFINITY;
    for i in 0..=2000 {
        for j in 0..=200 {
            let p = [-2.0 + i as f64 / 2000.0, 2.0 + j as f64 / 200.0];
            best = best.min(rosen(&p, &mut g));
        }
    }
    assert!(sol.value <= best + 1e-9, "{} vs grid {best}", sol.value);
}

#[test]
fn separable_quadratic_solution_is_the_clamped_centre() {
    let n = 50;
    let a: Vec<f64> = (0..n).map(|i| 3.0 * ((i as f64) * 1.3).sin()).collect();
    let w: Vec<f64> = (0..n).map(|i| 0.5 + i as f64).collect(); // condition number 100
    let lower = vec![-1.0; n];
    let upper: Vec<f64> = (0..n)
        .map(|i| if i % 3 == 0 { f64::INFINITY } else { 1.5 })
        .collect();
    let b = Bounds::new(lower, upper).unwrap();
    let solver = tight().with_bounds(b.clone());
    let (sol, outside) = solve_in_box(&solver, &b, &vec![0.0; n], |x, g| {
        let mut f = 0.0;
        for i in 0..x.len() {
            let d = x[i] - a[i];
            f += 0.5 * w[i] * d * d;
            g[i] = w[i] * d;
        }
        f
    });
    assert_eq!(outside, 0);
    assert!(sol.converged());
    // Near the solution the decrease falls below the rounding of f (≈ ε |f|), which limits
    // the attainable accuracy in x to ≈ sqrt(ε |f| / w).
    for i in 0..n {
        let (lo, hi) = b.interval_at(i);
        let expect = a[i].clamp(lo, hi);
        assert!(
            (sol.x[i] - expect).abs() < 1e-7,
            "x[{i}] = {} vs {expect}",
            sol.x[i]
        );
    }
}

/// Dense SPD quadratic `½ xᵀAx + bᵀx` for the property test.
#[derive(Debug, Clone)]
struct Quad {
    n: usize,
    a: Vec<f64>,
    b: Vec<f64>,
}

impl Quad {
    fn fg(&self, x: &[f64], g: &mut [f64]) -> f64 {
        let n = self.n;
        let mut f = 0.0;
        for i in 0..n {
            let mut ax = 0.0;
            for j in 0..n {
                ax += self.a[i * n + j] * x[j];
            }
            g[i] = ax + self.b[i];
            f += 0.5 * x[i] * ax + self.b[i] * x[i];
        }
        f
    }
}

/// Independent reference: projected gradient with step 1/L, L = ‖A‖_F ≥ λ_max. For a
/// strongly convex quadratic (λ_min ≥ 0.1) it converges linearly at rate 1 − λ_min / L.
fn projected_gradient(q: &Quad, bounds: &Bounds, iters: usize) -> Vec<f64> {
    let n = q.n;
    let l: f64 = q.a.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut x = vec![0.0; n];
    bounds.project(&mut x);
    let mut g = vec![0.0; n];
    for _ in 0..iters {
        q.fg(&x, &mut g);
        for i in 0..n {
            x[i] -= g[i] / l;
        }
        bounds.project(&mut x);
    }
    x
}

fn quad_strategy() -> impl Strategy<Value = (Quad, Bounds, Vec<f64>)> {
    (1usize..=12).prop_flat_map(|n| {
        (
            prop::collection::vec(-1.0f64..1.0, n * n),
            prop::collection::vec(-3.0f64..3.0, n),
            prop::collection::vec((-2.0f64..0.5, 0.0f64..3.0, 0u8..10), n),
            prop::collection::vec(-4.0f64..4.0, n),
        )
            .prop_map(move |(bm, b, boxes, x0)| {
                // A = BᵀB + 0.1 I (SPD, condition number ≤ ~ 10 n + 1).
                let mut a = vec![0.0; n * n];
                for i in 0..n {
                    for j in 0..n {
                        let mut s = 0.0;
                        for k in 0..n {
                            s += bm[k * n + i] * bm[k * n + j];
                        }
                        a[i * n + j] = s + if i == j { 0.1 } else { 0.0 };
                    }
                }
                let mut lower = Vec::with_capacity(n);
                let mut upper = Vec::with_capacity(n);
                for &(l, w, kind) in &boxes {
                    match kind {
                        0 => {
                            lower.push(l);
                            upper.push(l); // fixed variable
                        }
                        1 => {
                            lower.push(f64::NEG_INFINITY);
                            upper.push(l + w);
                        }
                        2 => {
                            lower.push(l);
                            upper.push(f64::INFINITY);
                        }
                        3 => {
                            lower.push(f64::NEG_INFINITY);
                            upper.push(f64::INFINITY);
                        }
                        _ => {
                            lower.push(l);
                            upper.push(l + w);
                        }
                    }
                }
                (Quad { n, a, b }, Bounds::new(lower, upper).unwrap(), x0)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every evaluated point stays in the box, the observed values never increase, and the
    /// final point satisfies KKT (projected gradient ≈ 0) and matches the solution of the
    /// same strictly convex problem by plain projected gradient.
    #[test]
    fn random_box_constrained_quadratics((q, bounds, x0) in quad_strategy()) {
        let solver = Lbfgsb::new()
            .with_pgtol(1e-9).unwrap()
            .with_ftol(0.0).unwrap()
            .with_memory(5).unwrap()
            .with_bounds(bounds.clone());
        let mut outside = 0usize;
        let mut obj = FnObjective::new(q.n, |x: &[f64], g: &mut [f64]| {
            if !bounds.contains(x) { outside += 1; }
            q.fg(x, g)
        });
        let mut values = Vec::new();
        let mut ws = Workspace::default();
        let sol = solver
            .minimize_with(&mut obj, &x0, &mut ws, |info: &IterationInfo| {
                values.push(info.value);
                ControlFlow::Continue(())
            })
            .unwrap();
        prop_assert_eq!(outside, 0);
        prop_assert!(bounds.contains(&sol.x));
        for w in values.windows(2) {
            prop_assert!(w[1] <= w[0], "value increased: {:?}", w);
        }
        let mut g = vec![0.0; q.n];
        q.fg(&sol.x, &mut g);
        let pg = bounds.projected_gradient_norm(&sol.x, &g);
        prop_assert!(pg <= 1e-6 * sol.value.abs().max(1.0),
            "projected gradient {pg}, {:?}", sol.termination);
        let reference = projected_gradient(&q, &bounds, 30_000);
        for i in 0..q.n {
            // λ_min ≥ 0.1 turns the gradient bound into a distance bound: ‖x − x*‖ ≤ pg-ish / 0.1.
            prop_assert!((sol.x[i] - reference[i]).abs() < 1e-5,
                "x[{i}] = {} vs projected gradient {}", sol.x[i], reference[i]);
        }
    }
}

#[test]
fn one_variable_free_and_bounded() {
    let f = |x: &[f64], g: &mut [f64]| {
        g[0] = 2.0 * (x[0] - 2.0);
        (x[0] - 2.0).powi(2)
    };
    let sol = Lbfgsb::new()
        .minimize(&mut FnObjective::new(1, f), &[-7.0])
        .unwrap();
    assert!(sol.converged());
    assert!((sol.x[0] - 2.0).abs() < 1e-8);
    let b = Bounds::uniform(1, -1.0, 1.0).unwrap();
    let sol = Lbfgsb::new()
        .with_bounds(b)
        .minimize(&mut FnObjective::new(1, f), &[-0.5])
        .unwrap();
    assert_eq!(sol.termination, Termination::GradientTolerance);
    assert_eq!(sol.x, vec![1.0]);
}

#[test]
fn all_variables_fixed() {
    let b = Bounds::new(vec![1.0, -2.0, 0.5], vec![1.0, -2.0, 0.5]).unwrap();
    let mut evals = 0;
    let mut obj = FnObjective::new(3, |x: &[f64], g: &mut [f64]| {
        evals += 1;
        g.iter_mut().zip(x).for_each(|(g, x)| *g = 2.0 * x);
        x.iter().map(|v| v * v).sum()
    });
    let sol = Lbfgsb::new()
        .with_bounds(b)
        .minimize(&mut obj, &[0.0, 0.0, 0.0])
        .unwrap();
    assert_eq!(sol.x, vec![1.0, -2.0, 0.5]);
    assert_eq!(sol.termination, Termination::GradientTolerance);
    assert_eq!((sol.iterations, sol.evaluations, evals), (0, 1, 1));
    assert_eq!(sol.pg_norm, 0.0);
}

#[test]
fn start_at_the_optimum() {
    let mut obj = FnObjective::new(2, rosen);
    let sol = Lbfgsb::new().minimize(&mut obj, &[1.0, 1.0]).unwrap();
    assert_eq!(sol.termination, Termination::GradientTolerance);
    assert_eq!((sol.iterations, sol.evaluations), (0, 1));
    assert_eq!(sol.x, vec![1.0, 1.0]);
    assert_eq!(sol.value, 0.0);
}

/// `f(x) = −Σ ln x_i − Σ ln(0.6 − x_i)` is NaN outside (0, 0.6)ⁿ; the minimiser is 0.3.
/// The first step from x0 moves one unit and lands in the NaN region; the line search must
/// shrink back instead of failing.
fn barrier(x: &[f64], g: &mut [f64]) -> f64 {
    let mut f = 0.0;
    for i in 0..x.len() {
        f += -x[i].ln() - (0.6 - x[i]).ln();
        g[i] = -1.0 / x[i] + 1.0 / (0.6 - x[i]);
    }
    f
}

#[test]
fn nan_away_from_the_start_shrinks_the_step() {
    let mut nan_seen = 0;
    let mut obj = FnObjective::new(2, |x: &[f64], g: &mut [f64]| {
        let f = barrier(x, g);
        if f.is_nan() {
            nan_seen += 1;
        }
        f
    });
    let sol = Lbfgsb::new().minimize(&mut obj, &[0.05, 0.5]).unwrap();
    assert!(nan_seen > 0, "the test must actually reach the NaN region");
    assert!(sol.converged(), "{:?}", sol.termination);
    assert!(
        (sol.x[0] - 0.3).abs() < 1e-5 && (sol.x[1] - 0.3).abs() < 1e-5,
        "{:?}",
        sol.x
    );
    // Same with the attack's box [0, 1]: NaN inside the box too.
    let b = Bounds::uniform(2, 0.0, 1.0).unwrap();
    let sol = Lbfgsb::new()
        .with_bounds(b)
        .minimize(&mut FnObjective::new(2, barrier), &[0.05, 0.5])
        .unwrap();
    assert!(sol.converged(), "{:?}", sol.termination);
    assert!(
        (sol.x[0] - 0.3).abs() < 1e-5 && (sol.x[1] - 0.3).abs() < 1e-5,
        "{:?}",
        sol.x
    );
}

#[test]
fn nan_cliff_without_interior_minimum_keeps_the_best_point() {
    // f = −x on x < 1, NaN beyond: no minimiser; the run must end cleanly with a finite
    // best point inside the finite region.
    let mut obj = FnObjective::new(1, |x: &[f64], g: &mut [f64]| {
        g[0] = -1.0;
        if x[0] < 1.0 { -x[0] } else { f64::NAN }
    });
    let sol = Lbfgsb::new().minimize(&mut obj, &[0.0]).unwrap();
    assert!(
        sol.value.is_finite() && sol.x[0] < 1.0 && sol.value < 0.0,
        "{sol:?}"
    );
    assert!(!sol.converged());
}

#[test]
fn nonfinite_start_is_reported_not_an_error() {
    let mut obj = FnObjective::new(2, barrier);
    let sol = Lbfgsb::new().minimize(&mut obj, &[-1.0, 0.3]).unwrap();
    assert_eq!(sol.termination, Termination::NonFiniteStart);
    assert_eq!(sol.x, vec![-1.0, 0.3]);
    assert_eq!(sol.evaluations, 1);
}

#[test]
fn start_outside_the_box_is_projected() {
    let b = Bounds::uniform(3, -1.0, 1.0).unwrap();
    let mut first: Option<Vec<f64>> = None;
    let mut obj = FnObjective::new(3, |x: &[f64], g: &mut [f64]| {
        if first.is_none() {
            first = Some(x.to_vec());
        }
        g.iter_mut().zip(x).for_each(|(g, x)| *g = 2.0 * (x - 0.25));
        x.iter().map(|v| (v - 0.25).powi(2)).sum()
    });
    let sol = Lbfgsb::new()
        .with_bounds(b)
        .minimize(&mut obj, &[5.0, -3.0, 0.5])
        .unwrap();
    assert_eq!(first.unwrap(), vec![1.0, -1.0, 0.5]);
    assert!(sol.x.iter().all(|v| (v - 0.25).abs() < 1e-8));
}

#[test]
fn invalid_input_is_a_typed_error() {
    let mut obj = FnObjective::new(2, rosen);
    let s = Lbfgsb::new();
    assert!(matches!(
        s.minimize(&mut obj, &[1.0]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        s.minimize(&mut obj, &[1.0, f64::NAN]),
        Err(Error::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        s.minimize(&mut obj, &[f64::INFINITY, 0.0]),
        Err(Error::NonFinite { index: 0, .. })
    ));
    let s3 = Lbfgsb::new().with_bounds(Bounds::uniform(3, 0.0, 1.0).unwrap());
    assert!(matches!(
        s3.minimize(&mut obj, &[0.5, 0.5]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        Bounds::new(vec![0.0, 2.0], vec![1.0, 1.0]),
        Err(Error::EmptyInterval { index: 1, lower, upper }) if lower == 2.0 && upper == 1.0
    ));
    assert!(matches!(
        Bounds::new(vec![0.0], vec![1.0, 1.0]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        Bounds::new(vec![0.0, f64::NAN], vec![1.0, 1.0]),
        Err(Error::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        Bounds::new(vec![f64::INFINITY], vec![f64::INFINITY]),
        Err(Error::EmptyInterval { index: 0, .. })
    ));
    assert!(Lbfgsb::new().with_memory(0).is_err());
    assert!(Lbfgsb::new().with_max_iterations(0).is_err());
    assert!(Lbfgsb::new().with_max_evaluations(0).is_err());
    assert!(Lbfgsb::new().with_pgtol(-1.0).is_err());
    assert!(Lbfgsb::new().with_pgtol(f64::NAN).is_err());
    assert!(Lbfgsb::new().with_ftol(-1e-3).is_err());
    assert!(Lbfgsb::new().with_line_search(0.9, 0.1, 20).is_err());
    assert!(Lbfgsb::new().with_line_search(0.0, 0.9, 20).is_err());
    assert!(Lbfgsb::new().with_line_search(1e-4, 1.0, 20).is_err());
    assert!(Lbfgsb::new().with_line_search(1e-4, 0.9, 0).is_err());
    let ok = Lbfgsb::new().with_line_search(1e-3, 0.5, 7).unwrap();
    assert_eq!(
        (
            ok.line_search().c1,
            ok.line_search().c2,
            ok.line_search().max_trials
        ),
        (1e-3, 0.5, 7)
    );
}

#[test]
fn budgets_and_observer_stop() {
    let x0 = [-1.2, 1.0];
    let s = Lbfgsb::new().with_max_iterations(3).unwrap();
    let sol = s.minimize(&mut FnObjective::new(2, rosen), &x0).unwrap();
    assert_eq!(
        (sol.termination, sol.iterations),
        (Termination::MaxIterations, 3)
    );
    for budget in 1..12 {
        let mut calls = 0;
        let mut obj = FnObjective::new(2, |x: &[f64], g: &mut [f64]| {
            calls += 1;
            rosen(x, g)
        });
        let s = Lbfgsb::new().with_max_evaluations(budget).unwrap();
        let sol = s.minimize(&mut obj, &x0).unwrap();
        assert!(
            calls <= budget && sol.evaluations == calls,
            "{calls} > {budget}"
        );
        assert_eq!(sol.termination, Termination::MaxEvaluations);
        // The reported value is the objective at the reported point.
        let mut g = [0.0; 2];
        assert_eq!(rosen(&sol.x, &mut g), sol.value);
    }
    let mut seen = Vec::new();
    let sol = Lbfgsb::new()
        .minimize_with(
            &mut FnObjective::new(2, rosen),
            &x0,
            &mut Workspace::default(),
            |info| {
                seen.push(info.iteration);
                if info.iteration == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )
        .unwrap();
    assert_eq!(sol.termination, Termination::ObserverStopped);
    assert_eq!((sol.iterations, seen), (2, vec![1, 2]));
}

#[test]
fn workspace_reuse_across_sizes_gives_identical_results() {
    let b10 = Bounds::uniform(10, -0.5, 0.8).unwrap();
    let s10 = Lbfgsb::new().with_bounds(b10);
    let s2 = Lbfgsb::new();
    let ext = |x: &[f64], g: &mut [f64]| {
        let mut f = 0.0;
        for k in 0..x.len() / 2 {
            let (a, b) = (x[2 * k], x[2 * k + 1]);
            f += 100.0 * (b - a * a).powi(2) + (1.0 - a).powi(2);
            g[2 * k] = -400.0 * a * (b - a * a) - 2.0 * (1.0 - a);
            g[2 * k + 1] = 200.0 * (b - a * a);
        }
        f
    };
    let x10: Vec<f64> = (0..10).map(|i| 0.1 * i as f64 - 0.4).collect();
    let fresh10 = s10.minimize(&mut FnObjective::new(10, ext), &x10).unwrap();
    let fresh2 = s2
        .minimize(&mut FnObjective::new(2, ext), &[-1.2, 1.0])
        .unwrap();
    let mut ws = Workspace::new(10, 10);
    for _ in 0..2 {
        let a = s10
            .minimize_with(&mut FnObjective::new(10, ext), &x10, &mut ws, |_| {
                ControlFlow::Continue(())
            })
            .unwrap();
        let b = s2
            .minimize_with(&mut FnObjective::new(2, ext), &[-1.2, 1.0], &mut ws, |_| {
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(a.x, fresh10.x);
        assert_eq!(a.evaluations, fresh10.evaluations);
        assert_eq!(b.x, fresh2.x);
        assert_eq!(b.evaluations, fresh2.evaluations);
    }
    assert!(fresh10.converged());
}

/// The attack's usage pattern: n = 784, box [0, 1], many small-budget solves with one reused
/// workspace over a range of penalty weights c. Every solve stays in the box, never ends above
/// its start value, equals a fresh-workspace solve bit for bit, and the converged ones meet
/// KKT.
#[test]
fn attack_like_repeated_small_budget_solves() {
    let n = 784;
    let w: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.37).sin()).collect();
    let x_img: Vec<f64> = (0..n)
        .map(|i| (0.5 + 0.6 * ((i as f64) * 0.11).cos()).clamp(0.0, 1.0))
        .collect();
    let bounds = Bounds::uniform(n, 0.0, 1.0).unwrap();
    // f(x) = c/2 ‖x − x_img‖² + softplus(0.1 wᵀx): a smooth stand-in for c|r|² + loss.
    let fg = |c: f64, x: &[f64], g: &mut [f64]| {
        let z: f64 = 0.1 * x.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
        let sig = 1.0 / (1.0 + (-z).exp());
        let mut f = if z > 30.0 { z } else { z.exp().ln_1p() };
        for i in 0..x.len() {
            let d = x[i] - x_img[i];
            f += 0.5 * c * d * d;
            g[i] = c * d + 0.1 * sig * w[i];
        }
        f
    };
    let mut ws = Workspace::new(n, 10);
    let mut g = vec![0.0; n];
    for k in 0..200 {
        let c = 10f64.powf(-3.0 + 4.0 * (k as f64) / 199.0);
        let budget = 5 + k % 20;
        let solver = Lbfgsb::new()
            .with_bounds(bounds.clone())
            .with_max_iterations(budget)
            .unwrap();
        let mut outside = 0;
        let mut obj = FnObjective::new(n, |x: &[f64], g: &mut [f64]| {
            if !bounds.contains(x) {
                outside += 1;
            }
            fg(c, x, g)
        });
        let sol = solver
            .minimize_with(&mut obj, &x_img, &mut ws, |_| ControlFlow::Continue(()))
            .unwrap();
        assert_eq!(outside, 0);
        assert!(sol.iterations <= budget);
        let f0 = fg(c, &x_img, &mut g);
        assert!(sol.value <= f0);
        let fresh = solver
            .minimize(
                &mut FnObjective::new(n, |x: &[f64], g: &mut [f64]| fg(c, x, g)),
                &x_img,
            )
            .unwrap();
        assert_eq!(sol.x, fresh.x);
        assert_eq!(sol.evaluations, fresh.evaluations);
        if sol.termination == Termination::GradientTolerance {
            fg(c, &sol.x, &mut g);
            assert!(bounds.projected_gradient_norm(&sol.x, &g) <= 1e-5);
        }
    }
}
