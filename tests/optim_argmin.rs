//! Our L-BFGS against argmin 0.11's `LBFGS` + `MoreThuenteLineSearch` (m = 10 for both) on
//! the unconstrained MGH set: the same minimum, and the evaluation counts side by side.
//!
//! Stopping rules made comparable: argmin stops when ‖∇f‖₂ < √ε ≈ 1.5e-8 (its default);
//! ours when ‖∇f‖∞ ≤ √ε / √n, which implies ‖∇f‖₂ ≤ √ε (so ours is at least as strict).
//! Ours has its function-decrease test disabled (`ftol = 0`); argmin keeps its default
//! `tol_cost = ε` (absolute change of f): with `tol_cost = 0` argmin's run on
//! Freudenstein–Roth does not come back.
//! Print the table with `cargo test --release --test optim_argmin -- --nocapture`.
#![allow(clippy::needless_range_loop)]

mod optim_problems;

use argmin::core::{CostFunction, Error as ArgminError, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use intriguing::optim::{FnObjective, Lbfgsb};
use optim_problems::{Problem, mgh_set};
use std::cell::Cell;
use std::rc::Rc;

/// argmin's default gradient tolerance, √ε.
const TOL_GRAD: f64 = 1.4901161193847656e-8;

struct ArgminProblem<'a> {
    p: &'a Problem,
    costs: Rc<Cell<usize>>,
    grads: Rc<Cell<usize>>,
}

impl CostFunction for ArgminProblem<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, x: &Vec<f64>) -> Result<f64, ArgminError> {
        self.costs.set(self.costs.get() + 1);
        let mut g = vec![0.0; x.len()];
        Ok((self.p.fg)(x, &mut g))
    }
}

impl Gradient for ArgminProblem<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, x: &Vec<f64>) -> Result<Vec<f64>, ArgminError> {
        self.grads.set(self.grads.get() + 1);
        let mut g = vec![0.0; x.len()];
        (self.p.fg)(x, &mut g);
        Ok(g)
    }
}

struct Run {
    value: f64,
    iterations: u64,
    /// (cost calls, gradient calls); ours evaluates both in one call.
    evals: (usize, usize),
    ok: bool,
}

fn run_argmin(p: &Problem) -> Run {
    let costs = Rc::new(Cell::new(0));
    let grads = Rc::new(Cell::new(0));
    let prob = ArgminProblem {
        p,
        costs: costs.clone(),
        grads: grads.clone(),
    };
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10)
        .with_tolerance_grad(TOL_GRAD)
        .unwrap();
    let res = Executor::new(prob, solver)
        .configure(|s| s.param(p.x0.clone()).max_iters(20_000))
        .run();
    match res {
        Ok(r) => {
            let it = r.state.get_iter();
            let value = r.state.get_best_cost();
            Run {
                value,
                iterations: it,
                evals: (costs.get(), grads.get()),
                ok: true,
            }
        }
        Err(_) => Run {
            value: f64::NAN,
            iterations: 0,
            evals: (0, 0),
            ok: false,
        },
    }
}

fn run_ours(p: &Problem) -> Run {
    let solver = Lbfgsb::new()
        .with_pgtol(TOL_GRAD / (p.n() as f64).sqrt())
        .unwrap()
        .with_ftol(0.0)
        .unwrap()
        .with_max_iterations(20_000)
        .unwrap()
        .with_max_evaluations(40_000)
        .unwrap();
    let mut obj = FnObjective::new(p.n(), |x: &[f64], g: &mut [f64]| (p.fg)(x, g));
    let sol = solver.minimize(&mut obj, &p.x0).unwrap();
    Run {
        value: sol.value,
        iterations: sol.iterations as u64,
        evals: (sol.evaluations, sol.evaluations),
        ok: sol.value.is_finite(),
    }
}

/// Agreement of two final values.
fn same_value(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()) + 1e-8
}

fn at_published(p: &Problem, f: f64) -> bool {
    p.minima
        .iter()
        .any(|&m| (f - m).abs() <= 1e-4 * m.abs() + 1e-8)
}

#[test]
fn same_minima_as_argmin_and_evaluation_counts() {
    println!(
        "| problem | n | f (ours) | f (argmin) | evals ours (f+g) | argmin cost / grad calls | iters ours / argmin |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut ours_total = 0usize;
    let mut theirs_total = 0usize;
    let mut compared = 0usize;
    let mut failures = Vec::new();
    for p in mgh_set() {
        let o = run_ours(&p);
        let a = run_argmin(&p);
        println!(
            "| {} | {} | {:.6e} | {} | {} | {} | {} / {} |",
            p.name,
            p.n(),
            o.value,
            if a.ok {
                format!("{:.6e}", a.value)
            } else {
                "error".into()
            },
            o.evals.0,
            if a.ok {
                format!("{} / {}", a.evals.0, a.evals.1)
            } else {
                "-".into()
            },
            o.iterations,
            a.iterations
        );
        if !at_published(&p, o.value) {
            failures.push(format!(
                "{}: ours f = {:e} not at a published minimum",
                p.name, o.value
            ));
        }
        // Where argmin ends at a published minimum too, both must agree on the value, unless
        // the problem has several published minima and the two runs picked different ones.
        if a.ok && at_published(&p, a.value) {
            let same_basin = p.minima.iter().any(|&m| {
                same_value(o.value, m) == same_value(a.value, m) && same_value(a.value, m)
            });
            if same_basin && !same_value(o.value, a.value) {
                failures.push(format!(
                    "{}: ours {:e} vs argmin {:e}",
                    p.name, o.value, a.value
                ));
            }
            ours_total += o.evals.0;
            theirs_total += a.evals.0.max(a.evals.1);
            compared += 1;
        }
    }
    println!(
        "\ntotal over the {compared} problems both solve: ours {ours_total} evaluations, argmin {theirs_total} (max of cost / gradient calls per problem)"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared >= 15, "argmin solved only {compared} problems");
}

#[test]
fn extended_rosenbrock_not_more_evaluations_than_argmin() {
    // The benchmark problem (benches/optim.rs): extended Rosenbrock at n = 2, 100, 1000.
    for n in [2usize, 100, 1000] {
        let p = Problem {
            name: "ext rosenbrock",
            x0: optim_problems::ext_rosenbrock_x0(n),
            minima: vec![0.0],
            fg: Box::new(optim_problems::ext_rosenbrock_fg),
        };
        let o = run_ours(&p);
        let a = run_argmin(&p);
        println!(
            "n = {n}: ours {} evaluations (f = {:e}), argmin {} cost + {} gradient calls (f = {:e})",
            o.evals.0, o.value, a.evals.0, a.evals.1, a.value
        );
        assert!(a.ok && at_published(&p, o.value) && at_published(&p, a.value));
        assert!(o.evals.0 <= a.evals.0.max(a.evals.1), "n = {n}");
    }
}

/// The adapters of feature `argmin`: argmin's L-BFGS on our objective and ours on an argmin
/// problem reach the same minimum.
#[cfg(feature = "argmin")]
#[test]
fn argmin_compat_adapters_round_trip() {
    use intriguing::optim::argmin_compat::{FromArgmin, ToArgmin};
    let set = mgh_set();
    let wood = set.iter().find(|p| p.name.contains("Wood")).unwrap();
    // Ours on an argmin problem.
    let prob = ArgminProblem {
        p: wood,
        costs: Rc::new(Cell::new(0)),
        grads: Rc::new(Cell::new(0)),
    };
    let mut obj = FromArgmin::new(prob, wood.n());
    // ftol = 0: with the default relative-decrease test the run stops on Wood's plateau
    // near f ≈ 7.88 (as scipy's factr test would).
    let sol = Lbfgsb::new()
        .with_pgtol(1e-9)
        .unwrap()
        .with_ftol(0.0)
        .unwrap()
        .minimize(&mut obj, &wood.x0)
        .unwrap();
    assert!(sol.value < 1e-12, "{sol:?}");
    // argmin's L-BFGS on our objective.
    let ours = FnObjective::new(wood.n(), |x: &[f64], g: &mut [f64]| (wood.fg)(x, g));
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10);
    let res = Executor::new(ToArgmin::new(ours), solver)
        .configure(|s| s.param(wood.x0.clone()).max_iters(1000))
        .run()
        .unwrap();
    assert!(res.state.get_best_cost() < 1e-10);
    // One evaluation of ours per argmin (cost, gradient) pair at a point.
    let evals = res.problem.problem.as_ref().unwrap().evaluations() as u64;
    let cost = res.problem.counts.get("cost_count").copied().unwrap_or(0);
    let grad = res
        .problem
        .counts
        .get("gradient_count")
        .copied()
        .unwrap_or(0);
    assert!(
        evals <= cost.max(grad) && evals < cost + grad,
        "{evals}: {cost} + {grad}"
    );
}

/// An argmin problem that fails: our solver returns the failure as `Error::Argmin`.
#[cfg(feature = "argmin")]
#[test]
fn an_argmin_error_is_returned_by_our_solver() {
    use intriguing::optim::argmin_compat::FromArgmin;
    struct Fails;
    impl CostFunction for Fails {
        type Param = Vec<f64>;
        type Output = f64;
        fn cost(&self, _: &Vec<f64>) -> Result<f64, ArgminError> {
            Err(ArgminError::msg("no cost today"))
        }
    }
    impl Gradient for Fails {
        type Param = Vec<f64>;
        type Gradient = Vec<f64>;
        fn gradient(&self, x: &Vec<f64>) -> Result<Vec<f64>, ArgminError> {
            Ok(vec![0.0; x.len()])
        }
    }
    let r = Lbfgsb::new().minimize(&mut FromArgmin::new(Fails, 2), &[0.0, 0.0]);
    match r {
        Err(intriguing::Error::Argmin(m)) => assert!(m.contains("no cost today"), "{m}"),
        other => panic!("{other:?}"),
    }
}
