//! The attack objective for a fixed c through argmin's `CostFunction` / `Gradient`
//! (feature `argmin`), solved with argmin's L-BFGS and compared with the closed form and
//! with this crate's L-BFGS-B.
#![cfg(feature = "argmin")]

mod attack_models;

use argmin::core::{CostFunction, Executor, Gradient};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use attack_models::Linear;
use intriguing::attack::{AttackConfig, AttackObjective, Goal, Penalty};
use intriguing::optim::{Lbfgsb, Objective};
use ndarray::Array1;

#[test]
fn argmin_lbfgs_solves_the_fixed_c_objective() {
    let n = 8;
    let w = Array1::from_iter((0..n).map(|i| ((i * 37 % 11) as f64 - 5.0) / 5.0));
    let x = Array1::from_iter((0..n).map(|i| 0.4 + 0.02 * i as f64));
    let s0 = -0.5;
    let b = s0 - w.dot(&x);
    let model = Linear::two_class(w.clone(), b);
    let wn = w.dot(&w).sqrt();
    let c = 0.3 * wn;
    // Closed form: r = t ŵ with c = σ(−s) ‖w‖, s = s0 + t ‖w‖.
    let q = c / wn;
    let t = (((1.0 - q) / q).ln() - s0) / wn;
    let expected = &x + &(&w * (t / wn));

    let cfg = AttackConfig::default()
        .with_penalty(Penalty::L2)
        .with_smoothing(1e-9)
        .unwrap();
    let obj = AttackObjective::new(&model, x.view(), Goal::Label(1), c, &cfg).unwrap();

    // Gradient consistency of the argmin interface with the native one.
    let p: Vec<f64> = x.iter().map(|v| v + 0.01).collect();
    let g = obj.gradient(&p).unwrap();
    let f = obj.cost(&p).unwrap();
    let mut g2 = vec![0.0; n];
    let mut obj2 = AttackObjective::new(&model, x.view(), Goal::Label(1), c, &cfg).unwrap();
    let f2 = obj2.value_gradient(&p, &mut g2);
    assert_eq!(f, f2);
    assert_eq!(g, g2);
    assert!(obj.cost(&vec![0.0; 3]).is_err());

    let ls = MoreThuenteLineSearch::new();
    let solver: LBFGS<_, Vec<f64>, Vec<f64>, f64> =
        LBFGS::new(ls, 7).with_tolerance_grad(1e-10).unwrap();
    let res = Executor::new(obj, solver)
        .configure(|s| s.param(x.to_vec()).max_iters(200))
        .run()
        .unwrap();
    let best = res.state.best_param.clone().unwrap();
    for (a, e) in best.iter().zip(&expected) {
        assert!((a - e).abs() < 1e-6, "argmin {a} vs closed form {e}");
    }

    // This crate's L-BFGS-B (box [-10, 10], inactive here) agrees.
    let sol = Lbfgsb::new()
        .with_bounds(intriguing::optim::Bounds::uniform(n, -10.0, 10.0).unwrap())
        .unwrap()
        .with_pgtol(1e-12)
        .unwrap()
        .minimize(&mut obj2, x.as_slice().unwrap())
        .unwrap();
    for (a, e) in sol.x.iter().zip(&expected) {
        assert!((a - e).abs() < 1e-6, "lbfgsb {a} vs closed form {e}");
    }
}

#[test]
fn argmin_lbfgs_solves_the_squared_penalty_objective() {
    let n = 6;
    let w = Array1::from_iter((0..n).map(|i| ((i * 29 % 7) as f64 - 3.0) / 3.0));
    let x = Array1::from_elem(n, 0.5);
    let s0 = -1.0;
    let b = s0 - w.dot(&x);
    let model = Linear::two_class(w.clone(), b);
    let wn = w.dot(&w).sqrt();
    let c = 0.2;
    // Closed form up to a scalar: r = t ŵ with 2 c t = σ(−s) ‖w‖, s = s0 + t ‖w‖; the left
    // side grows and the right side falls with t, so bisect.
    let h = |t: f64| 2.0 * c * t - wn / (1.0 + (s0 + t * wn).exp());
    let (mut lo, mut hi) = (0.0, 100.0);
    for _ in 0..200 {
        let m = 0.5 * (lo + hi);
        if h(m) < 0.0 { lo = m } else { hi = m }
    }
    let expected = &x + &(&w * (lo / wn));
    let cfg = AttackConfig::default(); // squared L2
    let obj = AttackObjective::new(&model, x.view(), Goal::Label(1), c, &cfg).unwrap();
    let solver: LBFGS<_, Vec<f64>, Vec<f64>, f64> = LBFGS::new(MoreThuenteLineSearch::new(), 5)
        .with_tolerance_grad(1e-10)
        .unwrap();
    let res = Executor::new(obj, solver)
        .configure(|s| s.param(x.to_vec()).max_iters(200))
        .run()
        .unwrap();
    let best = res.state.best_param.clone().unwrap();
    for (a, e) in best.iter().zip(&expected) {
        assert!((a - e).abs() < 1e-6, "argmin {a} vs closed form {e}");
    }
}
