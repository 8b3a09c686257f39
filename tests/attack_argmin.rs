//! The attack objective for a fixed c through argmin 0.11's L-BFGS (feature `argmin`), via
//! `optim::argmin_compat::ToArgmin`: argmin's quasi-Newton solvers have no bounds, so the box
//! is kept by the tanh change of variables. Checked against the closed form, against this
//! crate's L-BFGS-B (an independent method for the constrained optimum), pixel by pixel
//! against the box, and for one objective evaluation per argmin cost + gradient pair.
#![cfg(feature = "argmin")]

mod attack_models;

use argmin::core::{Executor, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use attack_models::Linear;
use intriguing::attack::{AttackConfig, AttackObjective, Penalty, Target};
use intriguing::classifier::Classifier;
use intriguing::optim::argmin_compat::ToArgmin;
use intriguing::optim::{Bounds, Lbfgsb, Objective};
use ndarray::Array1;

/// Runs argmin's L-BFGS (m = 7) on `obj` inside `bounds` from `x0`; returns the point in the
/// objective's coordinates, the number of objective evaluations, and argmin's (cost,
/// gradient) call counts.
fn argmin_in_box<O: Objective>(
    obj: O,
    bounds: &Bounds,
    x0: &[f64],
    iters: u64,
) -> (Vec<f64>, usize, (u64, u64)) {
    let problem = ToArgmin::in_box(obj, bounds).unwrap();
    let w0 = problem.param_of(x0);
    let solver: LBFGS<_, Vec<f64>, Vec<f64>, f64> = LBFGS::new(MoreThuenteLineSearch::new(), 7)
        .with_tolerance_grad(1e-12)
        .unwrap()
        .with_tolerance_cost(0.0)
        .unwrap();
    let res = Executor::new(problem, solver)
        .configure(|s| s.param(w0).max_iters(iters))
        .run()
        .unwrap();
    let w = res.state().get_best_param().unwrap().clone();
    let counts = (
        res.problem.counts.get("cost_count").copied().unwrap_or(0),
        res.problem
            .counts
            .get("gradient_count")
            .copied()
            .unwrap_or(0),
    );
    let p = res.problem.problem.as_ref().unwrap();
    (p.point_of(&w), p.evaluations(), counts)
}

#[test]
fn argmin_in_tanh_space_matches_the_closed_form_inside_the_box() {
    let n = 8;
    let w = Array1::from_iter((0..n).map(|i| ((i * 37 % 11) as f64 - 5.0) / 5.0));
    let x = Array1::from_iter((0..n).map(|i| 0.4 + 0.02 * i as f64));
    let s0 = -0.5;
    let b = s0 - w.dot(&x);
    let model = Linear::two_class(w.clone(), b);
    let wn = w.dot(&w).sqrt();
    let c = 0.45 * wn;
    // Closed form: r = t ŵ with c = σ(−s) ‖w‖, s = s0 + t ‖w‖ (an interior point of [0, 1]).
    let q = c / wn;
    let t = (((1.0 - q) / q).ln() - s0) / wn;
    let expected = &x + &(&w * (t / wn));
    assert!(
        expected.iter().all(|v| (0.01..0.99).contains(v)),
        "{expected}"
    );

    let cfg = AttackConfig::default()
        .with_penalty(Penalty::L2)
        .with_smoothing(1e-9)
        .unwrap();
    let obj = AttackObjective::new(&model, x.view(), Target::Label(1), c, &cfg).unwrap();
    let (best, evals, (costs, grads)) =
        argmin_in_box(obj, cfg.bounds(), x.as_slice().unwrap(), 300);
    for (a, e) in best.iter().zip(&expected) {
        assert!((a - e).abs() < 1e-6, "argmin {a} vs closed form {e}");
    }
    // One evaluation per (cost, gradient) pair at a point: never more than the larger
    // count, and fewer than the two together.
    assert!(
        evals as u64 <= costs.max(grads),
        "{evals} vs {costs} + {grads}"
    );
    assert!(
        (evals as u64) < costs + grads,
        "{evals} vs {costs} + {grads}"
    );
}

#[test]
fn argmin_in_tanh_space_matches_the_squared_penalty_closed_form() {
    let n = 6;
    let w = Array1::from_iter((0..n).map(|i| ((i * 29 % 7) as f64 - 3.0) / 3.0));
    let x = Array1::from_elem(n, 0.5);
    let s0 = -1.0;
    let b = s0 - w.dot(&x);
    let model = Linear::two_class(w.clone(), b);
    let wn = w.dot(&w).sqrt();
    let c = 1.0;
    // Closed form up to a scalar: r = t ŵ with 2 c t = σ(−s) ‖w‖, s = s0 + t ‖w‖; the left
    // side grows and the right side falls with t, so bisect.
    let h = |t: f64| 2.0 * c * t - wn / (1.0 + (s0 + t * wn).exp());
    let (mut lo, mut hi) = (0.0, 100.0);
    for _ in 0..200 {
        let m = 0.5 * (lo + hi);
        if h(m) < 0.0 { lo = m } else { hi = m }
    }
    let expected = &x + &(&w * (lo / wn));
    assert!(
        expected.iter().all(|v| (0.01..0.99).contains(v)),
        "{expected}"
    );
    let cfg = AttackConfig::default(); // squared L2
    let obj = AttackObjective::new(&model, x.view(), Target::Label(1), c, &cfg).unwrap();
    let (best, _, _) = argmin_in_box(obj, cfg.bounds(), x.as_slice().unwrap(), 300);
    for (a, e) in best.iter().zip(&expected) {
        assert!((a - e).abs() < 1e-6, "argmin {a} vs closed form {e}");
    }
}

/// A 784-pixel linear model whose fixed-c optimum lies far outside `[0, 1]` for most
/// pixels when the box is ignored (the failure the issue reports): every pixel of argmin's
/// result must lie in the box, and the constrained optimum must agree with this crate's
/// L-BFGS-B.
#[test]
fn every_pixel_of_argmins_result_lies_in_the_box() {
    let n = 784;
    let w = Array1::from_iter((0..n).map(|i| if (i * 7919) % 3 == 0 { 1.0 } else { -0.7 }));
    // Inside the box (argmin's Moré–Thuente can stall on a start exactly on a bound, where
    // the tanh map is flat to 1e-12: see `ToArgmin::in_box`).
    // Near the bound the loss pushes each pixel towards (w > 0: up, w < 0: down).
    let x = Array1::from_iter((0..n).map(|i| {
        let d = 0.01 + 0.03 * ((i * 31) % 17) as f64 / 16.0;
        if w[i] > 0.0 { 1.0 - d } else { d }
    }));
    let b = -2.0 - w.dot(&x) / 1.0; // class 0 at x, far from the boundary
    let model = Linear::two_class(w.clone(), b);
    assert_eq!(model.num_classes(), 2);
    let cfg = AttackConfig::default(); // box [0, 1], squared L2
    let c = 1e-3; // a weak penalty: the loss pulls x far along w
    let x0 = x.as_slice().unwrap();

    // Ignoring the box (plain ToArgmin::new) leaves it: the reason for the change of variables.
    let obj = AttackObjective::new(&model, x.view(), Target::Label(1), c, &cfg).unwrap();
    let solver: LBFGS<_, Vec<f64>, Vec<f64>, f64> = LBFGS::new(MoreThuenteLineSearch::new(), 7);
    let res = Executor::new(ToArgmin::new(obj), solver)
        .configure(|s| s.param(x0.to_vec()).max_iters(100))
        .run()
        .unwrap();
    let free = res.state().get_best_param().unwrap();
    let outside = free.iter().filter(|v| !(0.0..=1.0).contains(*v)).count();
    assert!(outside >= 20, "{outside} pixels outside without the box");

    // In tanh space: every pixel inside.
    let obj = AttackObjective::new(&model, x.view(), Target::Label(1), c, &cfg).unwrap();
    let (boxed, _, _) = argmin_in_box(obj, cfg.bounds(), x0, 500);
    assert_eq!(boxed.len(), n);
    for (i, v) in boxed.iter().enumerate() {
        assert!((0.0..=1.0).contains(v), "pixel {i} = {v} outside [0, 1]");
    }

    // The same constrained optimum as L-BFGS-B (which keeps the box exactly).
    let mut ours = AttackObjective::new(&model, x.view(), Target::Label(1), c, &cfg).unwrap();
    let sol = Lbfgsb::new()
        .with_bounds(cfg.bounds().clone())
        .with_pgtol(1e-10)
        .unwrap()
        .with_ftol(0.0)
        .unwrap()
        .minimize(&mut ours, x0)
        .unwrap();
    let mut g = vec![0.0; n];
    let f_argmin = ours.value_gradient(&boxed, &mut g).unwrap();
    assert!(
        (f_argmin - sol.value).abs() <= 1e-6 * sol.value.abs().max(1.0),
        "argmin {f_argmin} vs L-BFGS-B {}",
        sol.value
    );
    let max_dx = boxed
        .iter()
        .zip(&sol.x)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(max_dx < 1e-3, "max |Δx| = {max_dx}");
}

#[test]
fn an_unbounded_box_is_a_typed_refusal() {
    let model = Linear::two_class(Array1::from_elem(3, 1.0), -1.0);
    let x = Array1::from_elem(3, 0.1);
    let cfg = AttackConfig::default();
    let obj = AttackObjective::new(&model, x.view(), Target::Label(1), 1.0, &cfg).unwrap();
    let r = ToArgmin::in_box(obj, &Bounds::interval(0.0, f64::INFINITY).unwrap());
    assert!(matches!(
        r,
        Err(intriguing::Error::InvalidParameter { name: "bounds", .. })
    ));
    let obj = AttackObjective::new(&model, x.view(), Target::Label(1), 1.0, &cfg).unwrap();
    let r = ToArgmin::in_box(obj, &Bounds::uniform(2, 0.0, 1.0).unwrap());
    assert!(matches!(r, Err(intriguing::Error::ShapeMismatch { .. })));
}
