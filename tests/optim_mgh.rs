//! The Moré–Garbow–Hillstrom (1981) unconstrained problems, solved by our L-BFGS (no bounds)
//! and by L-BFGS-B with infinite bounds and with loose finite bounds that do not bind,
//! each compared with the minimum value published in MGH (1981).
#![allow(clippy::needless_range_loop)]

mod optim_problems;

use intriguing::optim::{Bounds, FnObjective, Lbfgsb, Solution};
use optim_problems::{Problem, mgh_set};

fn solve(p: &Problem, solver: &Lbfgsb) -> Solution {
    let mut obj = FnObjective::new(p.n(), |x: &[f64], g: &mut [f64]| (p.fg)(x, g));
    solver.minimize(&mut obj, &p.x0).unwrap()
}

fn tight() -> Lbfgsb {
    Lbfgsb::new()
        .with_pgtol(1e-10)
        .unwrap()
        .with_ftol(0.0)
        .unwrap()
        .with_max_iterations(20_000)
        .unwrap()
        .with_max_evaluations(40_000)
        .unwrap()
}

/// Published values have 6 significant digits: accept `|f − f*| ≤ 1e-5 |f*| + 1e-8`.
fn reached(p: &Problem, f: f64) -> bool {
    p.minima
        .iter()
        .any(|&m| (f - m).abs() <= 1e-5 * m.abs() + 1e-8)
}

#[test]
fn problem_gradients_match_finite_differences() {
    for p in mgh_set() {
        let n = p.n().min(40);
        // Perturb the start so that no coordinate sits at a symmetric point.
        let x: Vec<f64> =
            p.x0.iter()
                .enumerate()
                .map(|(i, v)| v + 0.01 * ((i as f64) * 0.7 + 0.3).sin())
                .collect();
        let mut g = vec![0.0; p.n()];
        let f = (p.fg)(&x, &mut g);
        let mut gd = vec![0.0; p.n()];
        for j in 0..n {
            let h = 1e-6 * x[j].abs().max(1.0);
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[j] += h;
            xm[j] -= h;
            let fd = ((p.fg)(&xp, &mut gd) - (p.fg)(&xm, &mut gd)) / (2.0 * h);
            let scale = g[j].abs().max(fd.abs()).max(1.0);
            // Truncation error O(h²) plus the rounding error of the difference, ~ ε |f| / h.
            let tol = 1e-5 * scale + 10.0 * f64::EPSILON * f.abs() / h;
            assert!(
                (fd - g[j]).abs() <= tol,
                "{}: d/dx{j} analytic {} vs central difference {fd}",
                p.name,
                g[j]
            );
        }
    }
}

/// Solves every MGH problem with the solver `solver_for` gives it, prints one line each, and
/// fails listing every problem that did not reach a published minimum.
fn assert_all_reach_published_minima(solver_for: impl Fn(&Problem) -> Lbfgsb) {
    let mut failures = Vec::new();
    for p in mgh_set() {
        let solver = solver_for(&p);
        let sol = solve(&p, &solver);
        println!(
            "{:<42} n={:<5} f={:<14.6e} pg={:<10.2e} it={:<5} ev={:<5} {:?}",
            p.name,
            p.n(),
            sol.value,
            sol.pg_norm,
            sol.iterations,
            sol.evaluations,
            sol.termination
        );
        if !reached(&p, sol.value) {
            failures.push(format!(
                "{}: f = {:e} ({:?})",
                p.name, sol.value, sol.termination
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "not at a published minimum:\n{}",
        failures.join("\n")
    );
}

#[test]
fn lbfgs_reaches_published_minima() {
    assert_all_reach_published_minima(|_| tight());
}

#[test]
fn lbfgsb_with_nonbinding_bounds_reaches_published_minima() {
    assert_all_reach_published_minima(|p| {
        // Infinite bounds on half the coordinates, loose finite ones elsewhere, so that
        // the L-BFGS-B machinery (Cauchy point, subspace step) runs but no bound binds at
        // the solution. Brown badly scaled needs x1 = 1e6; Bard's second minimum is at
        // infinity, so its bounds are infinite.
        let n = p.n();
        let big = 1e7;
        let lower: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 0 { f64::NEG_INFINITY } else { -big })
            .collect();
        let upper: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 0 { big } else { f64::INFINITY })
            .collect();
        tight().with_bounds(Bounds::new(lower, upper).unwrap())
    });
}

#[test]
fn rosenbrock_minimiser_and_default_tolerances() {
    let p = &mgh_set()[0];
    let sol = solve(p, &Lbfgsb::new());
    assert!(sol.converged(), "{:?}", sol.termination);
    assert!(
        (sol.x[0] - 1.0).abs() < 1e-4 && (sol.x[1] - 1.0).abs() < 1e-4,
        "{:?}",
        sol.x
    );
}

#[test]
fn beale_and_brown_badly_scaled_minimisers() {
    let set = mgh_set();
    let beale = set.iter().find(|p| p.name.contains("Beale")).unwrap();
    let sol = solve(beale, &tight());
    assert!(
        (sol.x[0] - 3.0).abs() < 1e-5 && (sol.x[1] - 0.5).abs() < 1e-5,
        "{:?}",
        sol.x
    );
    let brown = set.iter().find(|p| p.name.contains("Brown badly")).unwrap();
    let sol = solve(brown, &tight());
    assert!(
        (sol.x[0] - 1e6).abs() < 1e-3 && (sol.x[1] - 2e-6).abs() < 1e-12,
        "{:?}",
        sol.x
    );
}
