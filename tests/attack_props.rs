//! Property layer (issue 13): any setting a caller can write, over the whole `usize` / `f64`
//! range, and small models with adversarial behaviour, give a typed error or a verified
//! result within a bounded number of model evaluations (counted, not timed).

mod attack_models;

use attack_models::Linear;
use intriguing::Error;
use intriguing::attack::{AttackConfig, Target, find_minimal_perturbation};
use intriguing::classifier::{Classifier, ClassifierExt, LogitsLoss};
use intriguing::optim::{FnObjective, Lbfgsb};
use ndarray::{Array2, ArrayView2, ArrayViewMut2, array};
use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Evaluation cap: a run past it panics in the model, which fails the property.
const CAP: usize = 3_000_000;

fn any_usize() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        Just(1),
        Just(2),
        Just(usize::MAX),
        Just(1 << 20),
        0usize..64,
        any::<usize>(),
    ]
}

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(1.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MIN_POSITIVE / 8.0),
        Just(f64::MAX),
        Just(1e-300),
        Just(f64::EPSILON / 4.0),
        -10.0..10.0f64,
        any::<f64>(),
    ]
}

/// What the model does wrong.
#[derive(Debug, Clone, Copy)]
enum Bad {
    Fine,
    NanEvery(usize),
    ErrEvery(usize),
    PanicAt(usize),
    ZeroRows,
    UnstableClasses,
    Huge,
}

fn any_bad() -> impl Strategy<Value = Bad> {
    prop_oneof![
        Just(Bad::Fine),
        (1usize..5).prop_map(Bad::NanEvery),
        (1usize..5).prop_map(Bad::ErrEvery),
        (0usize..30).prop_map(Bad::PanicAt),
        Just(Bad::ZeroRows),
        Just(Bad::UnstableClasses),
        Just(Bad::Huge),
    ]
}

struct Adversarial {
    inner: Linear,
    bad: Bad,
    calls: AtomicUsize,
}

impl Adversarial {
    /// Counts a call; `Some(k)` is the call number.
    fn tick(&self, rows: usize) -> usize {
        let k = self.calls.fetch_add(rows.max(1), Ordering::Relaxed);
        assert!(k <= CAP, "more than {CAP} model evaluations");
        k
    }
}

impl Classifier for Adversarial {
    fn input_dim(&self) -> usize {
        3
    }
    fn num_classes(&self) -> usize {
        match self.bad {
            Bad::UnstableClasses => 2 + self.calls.fetch_add(1, Ordering::Relaxed) % 2,
            _ => 3,
        }
    }
    fn logits_into(
        &self,
        x: ArrayView2<'_, f64>,
        mut out: ArrayViewMut2<'_, f64>,
    ) -> intriguing::Result<()> {
        let k = self.tick(x.nrows());
        let z = x.dot(&self.inner.w.t()) + &self.inner.b;
        let c = out.ncols().min(3);
        out.fill(0.0);
        out.slice_mut(ndarray::s![.., ..c])
            .assign(&z.slice(ndarray::s![.., ..c]));
        match self.bad {
            Bad::NanEvery(p) if k.is_multiple_of(p) => out.fill(f64::NAN),
            Bad::ErrEvery(p) if k.is_multiple_of(p) => {
                return Err(Error::DataFormat("down".into()));
            }
            Bad::PanicAt(p) if k == p => panic!("model panic"),
            Bad::Huge => out.mapv_inplace(|v| v * 1e300),
            _ => {}
        }
        Ok(())
    }
    fn loss_gradient_into(
        &self,
        x: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        mut grad: ArrayViewMut2<'_, f64>,
    ) -> intriguing::Result<f64> {
        let k = self.tick(x.nrows());
        match self.bad {
            Bad::NanEvery(p) if k.is_multiple_of(p) => {
                grad.fill(f64::NAN);
                return Ok(f64::NAN);
            }
            Bad::ErrEvery(p) if k.is_multiple_of(p) => {
                return Err(Error::DataFormat("down".into()));
            }
            Bad::PanicAt(p) if k == p => panic!("model panic"),
            Bad::ZeroRows => {
                let z = Array2::<f64>::zeros((0, 3));
                let mut dz = Array2::<f64>::zeros((0, 3));
                return Ok(seed(z.view(), dz.view_mut()));
            }
            _ => {}
        }
        let scale = if matches!(self.bad, Bad::Huge) {
            1e300
        } else {
            1.0
        };
        let z = (x.dot(&self.inner.w.t()) + &self.inner.b) * scale;
        let mut dz = Array2::zeros(z.raw_dim());
        let loss = seed(z.view(), dz.view_mut());
        grad.assign(&(dz.dot(&self.inner.w) * scale));
        Ok(loss)
    }
}

fn model(bad: Bad) -> Adversarial {
    Adversarial {
        inner: Linear {
            w: array![[0.0, 0.0, 0.0], [1.0, -1.0, 0.5], [-1.0, 1.0, 0.0]],
            b: array![0.0, -0.2, -0.9],
        },
        bad,
        calls: AtomicUsize::new(0),
    }
}

/// Applies one setter by index; an `Err` must be an `InvalidParameter`.
fn apply(cfg: AttackConfig, which: u8, u: usize, v: f64) -> Option<AttackConfig> {
    let r = match which % 12 {
        0 => cfg.with_memory(u),
        1 => cfg.with_refinement(u, u.wrapping_add(1)),
        2 => cfg.with_refinement(u % 1000, u),
        3 => cfg.with_max_bracket_steps(u),
        4 => cfg.with_bisection_steps(u),
        5 => cfg.with_relative_tolerance(v),
        6 => cfg.with_smoothing(v),
        7 => cfg.with_initial_c(v),
        8 => cfg.with_growth(v).map(|c| {
            // Near-1 growth is a legitimate but slow request (≈ 1500 / log2(growth) runs):
            // keep its bracket budget small so the property stays within its bound.
            c.with_max_bracket_steps(40).unwrap()
        }),
        9 => cfg.with_max_evaluations(u.min(1000)),
        10 => cfg.with_tolerances(v, v.abs()),
        _ => cfg.with_nearest_pruning(v),
    };
    match r {
        Ok(c) => Some(c),
        Err(Error::InvalidParameter { .. }) => None,
        Err(e) => panic!("setter error not typed as InvalidParameter: {e:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn settings_and_bad_models_give_typed_errors_or_verified_results(
        setters in proptest::collection::vec((any::<u8>(), any_usize(), any_f64()), 0..4),
        bad in any_bad(),
        target in 0usize..4,
        x in proptest::collection::vec(0.0..1.0f64, 3),
    ) {
        let mut cfg = AttackConfig::default();
        for (w, u, v) in setters {
            if let Some(c) = apply(cfg.clone(), w, u, v) {
                cfg = c;
            }
        }
        let m = model(bad);
        let target = match target {
            0 => Target::Label(1),
            1 => Target::Label(2),
            2 => Target::Untargeted { true_label: 0 },
            _ => Target::Nearest { true_label: 0 },
        };
        let x = ndarray::Array1::from(x);
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            find_minimal_perturbation(&m, x.view(), target, &cfg)
        }));
        match out {
            Err(p) => {
                let msg = p.downcast_ref::<&str>().map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_default();
                // Only the model's own panic may escape.
                prop_assert!(matches!(bad, Bad::PanicAt(_)) && msg == "model panic", "{msg}");
            }
            Ok(Err(_)) => {}
            Ok(Ok(r)) => {
                if let Some(a) = &r.adversarial {
                    // Verified: finite, in the box, re-classified by a fresh, well-behaved model.
                    prop_assert!(a.input.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
                    let clean = model(Bad::Fine);
                    let label = clean.predict(a.input.view()).unwrap();
                    if matches!(bad, Bad::Fine | Bad::Huge) {
                        prop_assert!(target.is_reached_by(label), "{target:?} {label}");
                    }
                }
            }
        }
    }

    #[test]
    fn solver_settings_give_typed_errors_or_bounded_runs(
        mem in any_usize(), iters in any_usize(), evals in any_usize(),
        pgtol in any_f64(), ftol in any_f64(), c1 in any_f64(), c2 in any_f64(),
        trials in any_usize(), n in 1usize..6,
    ) {
        let s = Lbfgsb::new();
        let s = match s.clone().with_memory(mem) { Ok(s) => s, Err(Error::InvalidParameter { .. }) => s, Err(e) => panic!("{e:?}") };
        let s = match s.clone().with_max_iterations(iters) { Ok(s) => s, Err(Error::InvalidParameter { .. }) => s, Err(e) => panic!("{e:?}") };
        let s = match s.clone().with_max_evaluations(evals.min(10_000)) { Ok(s) => s, Err(Error::InvalidParameter { .. }) => s, Err(e) => panic!("{e:?}") };
        let s = match s.clone().with_pgtol(pgtol) { Ok(s) => s, Err(Error::InvalidParameter { .. }) => s, Err(e) => panic!("{e:?}") };
        let s = match s.clone().with_ftol(ftol) { Ok(s) => s, Err(Error::InvalidParameter { .. }) => s, Err(e) => panic!("{e:?}") };
        let s = match s.clone().with_line_search(c1, c2, trials.min(1000)) { Ok(s) => s, Err(Error::InvalidParameter { .. }) => s, Err(e) => panic!("{e:?}") };
        let mut calls = 0usize;
        // Unbounded below in x₀: only the evaluation budget stops it.
        let mut obj = FnObjective::new(n, |x: &[f64], g: &mut [f64]| {
            calls += 1;
            let mut f = -x[0];
            g[0] = -1.0;
            for i in 1..x.len() { f += x[i] * x[i]; g[i] = 2.0 * x[i]; }
            f
        });
        // (value, evaluations) after each completed iteration.
        let mut seen = Vec::new();
        let mut ws = intriguing::optim::Workspace::new(n, s.memory());
        let sol = s
            .minimize_with(&mut obj, &vec![0.5; n], &mut ws, |i| {
                seen.push((i.value, i.evaluations));
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
        prop_assert!(sol.evaluations <= s.max_evaluations());
        if sol.termination == intriguing::optim::Termination::FunctionTolerance {
            // Claimed only after a completed iteration whose relative decrease passed the
            // test, with no evaluation after it.
            let f0 = -0.5 + 0.25 * (n - 1) as f64;
            let k = seen.len();
            prop_assert!(k >= 1);
            let f_old = if k >= 2 { seen[k - 2].0 } else { f0 };
            let (f, at) = seen[k - 1];
            prop_assert_eq!(at, sol.evaluations);
            prop_assert!(f_old - f <= s.ftol() * f_old.abs().max(f.abs()).max(1.0), "{f_old} -> {f}");
        }
    }
}
