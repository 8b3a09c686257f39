//! No allocation inside the iteration loop: with a counting global allocator, a solve that
//! reuses a sized `Workspace` allocates exactly once (the returned `Solution::x`), whatever
//! the number of iterations, for L-BFGS and for L-BFGS-B.
//!
//! One test function only: the allocator counter is global to this binary.
#![allow(clippy::needless_range_loop)]

use intriguing::optim::{Bounds, FnObjective, Lbfgsb, Workspace};
use std::ops::ControlFlow;

mod counting_alloc;
use counting_alloc::allocations;

fn ext_rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
    let mut f = 0.0;
    for k in 0..x.len() / 2 {
        let (a, b) = (x[2 * k], x[2 * k + 1]);
        let t = b - a * a;
        f += 100.0 * t * t + (1.0 - a) * (1.0 - a);
        g[2 * k] = -400.0 * a * t - 2.0 * (1.0 - a);
        g[2 * k + 1] = 200.0 * t;
    }
    f
}

#[test]
fn solves_with_a_sized_workspace_allocate_only_the_result() {
    let n = 784;
    let x0: Vec<f64> = (0..n)
        .map(|i| if i % 2 == 0 { -1.2 } else { 1.0 })
        .collect();
    let x0b: Vec<f64> = (0..n)
        .map(|i| 0.3 + 0.4 * ((i as f64) * 0.37).sin())
        .collect();
    let free = Lbfgsb::new();
    // The attack's setting: [0, 1] box on 784 variables (the box cuts the optimum (1, 1) off
    // for half of the coordinates so that bounds are active).
    let lower = vec![0.0; n];
    let upper: Vec<f64> = (0..n).map(|i| if i % 4 == 1 { 0.5 } else { 1.0 }).collect();
    let boxed = Lbfgsb::new().with_bounds(Bounds::new(lower, upper).unwrap());
    let mut ws = Workspace::new(n, 10);
    for (solver, start) in [(&free, &x0), (&boxed, &x0b)] {
        let mut obj = FnObjective::new(n, ext_rosenbrock);
        // Warm-up solve (sizes everything), then the counted one.
        solver
            .minimize_with(&mut obj, start, &mut ws, |_| ControlFlow::Continue(()))
            .unwrap();
        let before = allocations();
        let sol = solver
            .minimize_with(&mut obj, start, &mut ws, |_| ControlFlow::Continue(()))
            .unwrap();
        let after = allocations();
        assert!(sol.iterations > 20, "the run must iterate: {sol:?}");
        assert_eq!(
            after - before,
            1,
            "{} iterations, {} evaluations: only Solution::x may allocate",
            sol.iterations,
            sol.evaluations
        );
    }
}
