//! The reverse-communication [`Stepper`] against [`Lbfgsb::minimize`]: for the same
//! settings, start and function, the same sequence of evaluated points, the same final
//! point and value (bit for bit), the same iteration and evaluation counts and the same
//! termination — on the MGH problems (free and boxed), random box-constrained quadratics,
//! NaN regions, spent budgets; and no allocation per iteration.
#![allow(clippy::needless_range_loop)]

mod optim_problems;

use intriguing::optim::{Bounds, FnObjective, Lbfgsb, Request, Solution, Stepper, Termination};
use optim_problems::mgh_set;
use proptest::prelude::*;

/// `minimize`, recording every evaluated point.
fn by_minimize(
    solver: &Lbfgsb,
    x0: &[f64],
    fg: &dyn Fn(&[f64], &mut [f64]) -> f64,
) -> (Solution, Vec<Vec<f64>>) {
    let mut seen = Vec::new();
    let mut obj = FnObjective::new(x0.len(), |x: &[f64], g: &mut [f64]| {
        seen.push(x.to_vec());
        fg(x, g)
    });
    let sol = solver.minimize(&mut obj, x0).unwrap();
    (sol, seen)
}

/// The stepper driven by hand (both `tell` forms, alternating), recording every point.
fn by_stepper(
    stepper: &mut Stepper,
    solver: &Lbfgsb,
    x0: &[f64],
    fg: &dyn Fn(&[f64], &mut [f64]) -> f64,
) -> (Solution, Vec<Vec<f64>>) {
    let mut seen = Vec::new();
    let mut req = stepper.start(solver, x0).unwrap();
    let mut g = vec![0.0; x0.len()];
    loop {
        match req {
            Request::Evaluate => {
                let k = seen.len();
                seen.push(stepper.point().to_vec());
                if k % 2 == 0 {
                    let f = fg(stepper.point(), &mut g);
                    req = stepper.tell(f, &g).unwrap();
                } else {
                    let (x, gbuf) = stepper.point_and_gradient();
                    let f = fg(x, gbuf);
                    req = stepper.tell_in_place(f).unwrap();
                }
            }
            Request::Done(sol) => return (sol, seen),
        }
    }
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn assert_identical(a: &(Solution, Vec<Vec<f64>>), b: &(Solution, Vec<Vec<f64>>), what: &str) {
    let ((sa, pa), (sb, pb)) = (a, b);
    assert_eq!(bits(&sa.x), bits(&sb.x), "{what}: x");
    assert_eq!(sa.value.to_bits(), sb.value.to_bits(), "{what}: value");
    assert_eq!(sa.pg_norm.to_bits(), sb.pg_norm.to_bits(), "{what}: pg");
    assert_eq!(sa.iterations, sb.iterations, "{what}: iterations");
    assert_eq!(sa.evaluations, sb.evaluations, "{what}: evaluations");
    assert_eq!(sa.termination, sb.termination, "{what}: termination");
    assert_eq!(pa.len(), pb.len(), "{what}: evaluated points");
    for (k, (x, y)) in pa.iter().zip(pb).enumerate() {
        assert_eq!(bits(x), bits(y), "{what}: evaluated point {k}");
    }
    assert_eq!(sa.evaluations, pa.len(), "{what}: count = points");
}

#[test]
fn mgh_problems_free_and_boxed_give_identical_runs() {
    let mut stepper = Stepper::new(); // reused across sizes on purpose
    let mut checked = 0;
    for p in mgh_set() {
        let n = p.n();
        // A box that binds: each coordinate within 0.3 of the start on one side.
        let lower: Vec<f64> = p.x0.iter().map(|v| v - 0.3 - v.abs()).collect();
        let upper: Vec<f64> = p.x0.iter().map(|v| v + 0.3).collect();
        let solvers = [
            Lbfgsb::new()
                .with_pgtol(1e-10)
                .unwrap()
                .with_ftol(0.0)
                .unwrap(),
            Lbfgsb::new(),
            Lbfgsb::new()
                .with_memory(3)
                .unwrap()
                .with_bounds(Bounds::new(lower, upper).unwrap()),
            Lbfgsb::new()
                .with_max_evaluations(7)
                .unwrap()
                .with_bounds(Bounds::uniform(n, -10.0, 10.0).unwrap()),
            Lbfgsb::new().with_max_iterations(3).unwrap(),
        ];
        for (k, solver) in solvers.iter().enumerate() {
            let a = by_minimize(solver, &p.x0, &*p.fg);
            let b = by_stepper(&mut stepper, solver, &p.x0, &*p.fg);
            assert_identical(&a, &b, &format!("{} solver {k}", p.name));
            checked += 1;
        }
    }
    assert!(checked >= 5 * 15, "{checked}");
}

/// `f(x) = −Σ ln x_i − Σ ln(0.6 − x_i)`: NaN outside (0, 0.6)ⁿ, so line searches shrink.
fn barrier(x: &[f64], g: &mut [f64]) -> f64 {
    let mut f = 0.0;
    for i in 0..x.len() {
        f += -x[i].ln() - (0.6 - x[i]).ln();
        g[i] = -1.0 / x[i] + 1.0 / (0.6 - x[i]);
    }
    f
}

#[test]
fn nan_regions_nonfinite_start_and_budgets_give_identical_runs() {
    let mut stepper = Stepper::new();
    let boxed = Lbfgsb::new().with_bounds(Bounds::interval(0.0, 1.0).unwrap());
    let cases: [(&Lbfgsb, Vec<f64>); 3] = [
        (&Lbfgsb::new(), vec![0.05, 0.5]),
        (&boxed, vec![0.05, 0.5]),
        (&Lbfgsb::new(), vec![-1.0, 0.3]), // non-finite start
    ];
    let mut nan_seen = false;
    for (k, (solver, x0)) in cases.iter().enumerate() {
        let a = by_minimize(solver, x0, &barrier);
        let b = by_stepper(&mut stepper, solver, x0, &barrier);
        nan_seen |=
            a.1.iter()
                .any(|x| x.iter().any(|v| !(0.0 < *v && *v < 0.6)));
        assert_identical(&a, &b, &format!("barrier case {k}"));
    }
    assert!(nan_seen, "the NaN region must actually be visited");
    let last = by_stepper(&mut stepper, &Lbfgsb::new(), &[-1.0, 0.3], &barrier);
    assert_eq!(last.0.termination, Termination::NonFiniteStart);
    // Telling an idle stepper is an error, not a panic.
    assert!(stepper.tell_in_place(0.0).is_err());
    // So is a gradient of the wrong length; the run goes on afterwards.
    stepper.start(&Lbfgsb::new(), &[0.1, 0.2]).unwrap();
    assert!(stepper.tell(1.0, &[0.0]).is_err());
    assert!(stepper.tell(1.0, &[0.0, 0.0]).is_ok());
}

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

fn quad_strategy() -> impl Strategy<Value = (Quad, Bounds, Vec<f64>)> {
    (1usize..=12).prop_flat_map(|n| {
        (
            prop::collection::vec(-1.0f64..1.0, n * n),
            prop::collection::vec(-3.0f64..3.0, n),
            prop::collection::vec((-2.0f64..0.5, 0.0f64..3.0, 0u8..10), n),
            prop::collection::vec(-4.0f64..4.0, n),
        )
            .prop_map(move |(bm, b, boxes, x0)| {
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
                let (mut lower, mut upper) = (Vec::new(), Vec::new());
                for &(l, w, kind) in &boxes {
                    let (lo, hi) = match kind {
                        0 => (l, l),
                        1 => (f64::NEG_INFINITY, l + w),
                        2 => (l, f64::INFINITY),
                        3 => (f64::NEG_INFINITY, f64::INFINITY),
                        _ => (l, l + w),
                    };
                    lower.push(lo);
                    upper.push(hi);
                }
                (Quad { n, a, b }, Bounds::new(lower, upper).unwrap(), x0)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The bounded property-test cases of `tests/optim_bounds.rs`: identical runs.
    #[test]
    fn random_box_constrained_quadratics_give_identical_runs((q, bounds, x0) in quad_strategy()) {
        let solver = Lbfgsb::new()
            .with_pgtol(1e-9).unwrap()
            .with_ftol(0.0).unwrap()
            .with_memory(5).unwrap()
            .with_bounds(bounds);
        let f = |x: &[f64], g: &mut [f64]| q.fg(x, g);
        let a = by_minimize(&solver, &x0, &f);
        let b = by_stepper(&mut Stepper::new(), &solver, &x0, &f);
        prop_assert!(a.0.evaluations > 0);
        assert_identical(&a, &b, "quadratic");
    }
}
