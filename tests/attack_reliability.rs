//! Issue 13's examples, one test each: sizes that overflow, budgets that could hang, models
//! that break their shape contract, outcomes that must say what happened, messages.

mod attack_models;

use attack_models::Linear;
use intriguing::Error;
use intriguing::attack::{
    AttackConfig, DEFAULT_LOCKSTEP_BATCH, FailureReason, Target, attack_batch,
    attack_batch_lockstep, find_minimal_perturbation,
};
use intriguing::classifier::{Classifier, ClassifierExt, LogitsLoss};
use intriguing::optim::{Bounds, FnObjective, Lbfgsb, Termination};
use ndarray::{Array2, ArrayView2, ArrayViewMut2, array};
use std::sync::atomic::{AtomicUsize, Ordering};

fn name_of<T: std::fmt::Debug>(r: Result<T, Error>) -> &'static str {
    match r {
        Err(Error::InvalidParameter { name, .. }) => name,
        other => panic!("expected InvalidParameter, got {other:?}"),
    }
}

/// Class 1 iff x₀ − x₁ + 0.5·x₂ > 0.2.
fn linear() -> Linear {
    Linear::two_class(array![1.0, -1.0, 0.5], -0.2)
}

/// A model that counts its evaluations (rows) and panics past a cap, so that a hang shows
/// up as a failed test with a count instead of a test that never ends.
struct Counted<M> {
    inner: M,
    rows: AtomicUsize,
    cap: usize,
}

impl<M> Counted<M> {
    fn new(inner: M, cap: usize) -> Self {
        Counted {
            inner,
            rows: AtomicUsize::new(0),
            cap,
        }
    }
    fn count(&self, rows: usize) {
        let n = self.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        assert!(n <= self.cap, "more than {} model evaluations", self.cap);
    }
}

impl<M: Classifier> Classifier for Counted<M> {
    fn input_dim(&self) -> usize {
        self.inner.input_dim()
    }
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }
    fn logits_into(
        &self,
        x: ArrayView2<'_, f64>,
        out: ArrayViewMut2<'_, f64>,
    ) -> intriguing::Result<()> {
        self.count(x.nrows());
        self.inner.logits_into(x, out)
    }
    fn loss_gradient_into(
        &self,
        x: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        grad: ArrayViewMut2<'_, f64>,
    ) -> intriguing::Result<f64> {
        self.count(x.nrows());
        self.inner.loss_gradient_into(x, seed, grad)
    }
}

#[test]
fn absurd_sizes_are_typed_errors() {
    let c = AttackConfig::default;
    assert_eq!(name_of(c().with_memory(usize::MAX)), "memory");
    assert_eq!(name_of(c().with_memory(1 << 20)), "memory");
    assert_eq!(name_of(Lbfgsb::new().with_memory(usize::MAX)), "memory");
    assert!(c().with_memory(intriguing::optim::MAX_MEMORY).is_ok());
    assert_eq!(
        name_of(c().with_refinement(1, usize::MAX)),
        "refinement_points"
    );
    assert!(c().with_refinement(usize::MAX, 8).is_ok());
    // memory · n past the cap: refused at solve time, before any allocation or evaluation.
    let solver = Lbfgsb::new().with_memory(1024).unwrap();
    let n = (intriguing::optim::MAX_HISTORY_ENTRIES / 1024) + 1;
    let mut calls = 0;
    let mut obj = FnObjective::new(n, |_: &[f64], _: &mut [f64]| {
        calls += 1;
        0.0
    });
    let r = solver.minimize(&mut obj, &vec![0.0; n]);
    assert_eq!(name_of(r), "memory");
    assert_eq!(calls, 0);
}

#[test]
fn smoothing_whose_square_under_or_overflows_is_rejected() {
    let c = AttackConfig::default;
    assert_eq!(name_of(c().with_smoothing(1e-200)), "smoothing");
    assert_eq!(name_of(c().with_smoothing(1e308)), "smoothing");
    assert_eq!(
        name_of(c().with_smoothing(f64::MIN_POSITIVE / 4.0)),
        "smoothing"
    );
    assert!(c().with_smoothing(1e-150).is_ok());
    assert!(c().with_smoothing(1e150).is_ok());
}

#[test]
fn unreachable_target_with_unbounded_bracketing_stops_when_c_stops_moving() {
    // Class 1 needs x₀ − x₁ > 10: impossible in [0, 1]³.
    let m = Counted::new(Linear::two_class(array![1.0, -1.0, 0.0], -10.0), 2_000_000);
    let cfg = AttackConfig::default()
        .with_max_bracket_steps(usize::MAX)
        .unwrap()
        .with_refinement(usize::MAX, 8)
        .unwrap();
    let r = find_minimal_perturbation(&m, array![0.1, 0.9, 0.5].view(), Target::Label(1), &cfg)
        .unwrap();
    assert!(!r.success());
    assert_eq!(r.failure, Some(FailureReason::CExhausted));
    // c halves from its first value down to 0: about 1100 runs, not unbounded.
    assert!(r.runs > 1000 && r.runs < 1200, "{} runs", r.runs);
}

#[test]
fn tolerance_below_epsilon_and_unbounded_bisection_stop_when_the_bracket_collapses() {
    let m = Counted::new(linear(), 200_000);
    let cfg = AttackConfig::default()
        .with_relative_tolerance(1e-300)
        .unwrap()
        .with_bisection_steps(usize::MAX)
        .unwrap()
        .with_refinement(usize::MAX, 1)
        .unwrap();
    let x = array![0.1, 0.6, 0.2];
    let r = find_minimal_perturbation(&m, x.view(), Target::Label(1), &cfg).unwrap();
    let adv = r.adversarial.as_ref().expect("reachable target");
    assert_eq!(m.predict(adv.input.view()).unwrap(), 1);
    let b = r.c_bracket;
    let (cs, cf) = (b.success.unwrap(), b.failure.unwrap());
    // Bisection went on until no float lies strictly between the bracket's geometric mean
    // and its ends.
    let mid = (cs * cf).sqrt();
    assert!(
        !(mid > cs && mid < cf),
        "bracket [{cs}, {cf}] could still shrink"
    );
    // The distortion matches the closed form: distance to the hyperplane w·x = 0.2.
    let w = array![1.0, -1.0, 0.5];
    let d = (0.2 - w.dot(&x)) / w.dot(&w).sqrt();
    assert!(
        adv.l2 >= d * (1.0 - 1e-9) && adv.l2 < d * 1.01,
        "{} vs {d}",
        adv.l2
    );
}

/// Calls the loss callback with a 0-row logits view.
struct ZeroRowSeed(Linear);

impl Classifier for ZeroRowSeed {
    fn input_dim(&self) -> usize {
        self.0.input_dim()
    }
    fn num_classes(&self) -> usize {
        2
    }
    fn logits_into(
        &self,
        x: ArrayView2<'_, f64>,
        out: ArrayViewMut2<'_, f64>,
    ) -> intriguing::Result<()> {
        self.0.logits_into(x, out)
    }
    fn loss_gradient_into(
        &self,
        _x: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        _grad: ArrayViewMut2<'_, f64>,
    ) -> intriguing::Result<f64> {
        let z = Array2::<f64>::zeros((0, 2));
        let mut dz = Array2::<f64>::zeros((0, 2));
        Ok(seed(z.view(), dz.view_mut()))
    }
}

/// `num_classes()` grows by one at every call.
struct UnstableClasses {
    inner: Linear,
    calls: AtomicUsize,
}

impl Classifier for UnstableClasses {
    fn input_dim(&self) -> usize {
        self.inner.input_dim()
    }
    fn num_classes(&self) -> usize {
        2 + self.calls.fetch_add(1, Ordering::Relaxed) % 3
    }
    fn logits_into(
        &self,
        x: ArrayView2<'_, f64>,
        mut out: ArrayViewMut2<'_, f64>,
    ) -> intriguing::Result<()> {
        let z = x.dot(&self.inner.w.t()) + &self.inner.b;
        out.fill(-1.0);
        let k = out.ncols().min(2);
        out.slice_mut(ndarray::s![.., ..k])
            .assign(&z.slice(ndarray::s![.., ..k]));
        Ok(())
    }
    fn loss_gradient_into(
        &self,
        x: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        grad: ArrayViewMut2<'_, f64>,
    ) -> intriguing::Result<f64> {
        self.inner.loss_gradient_into(x, seed, grad)
    }
}

#[test]
fn a_model_breaking_its_shape_contract_is_an_error_naming_it() {
    let x = array![0.1, 0.6, 0.2];
    let cfg = AttackConfig::default();
    for target in [Target::Label(1), Target::Nearest { true_label: 0 }] {
        let r = find_minimal_perturbation(&ZeroRowSeed(linear()), x.view(), target, &cfg);
        match r {
            Ok(res) => match res.failure {
                Some(FailureReason::ModelFailure(m)) => assert!(m.contains("ZeroRowSeed"), "{m}"),
                other => panic!("{other:?}"),
            },
            Err(Error::ModelContract { model, .. }) => assert!(model.contains("ZeroRowSeed")),
            Err(e) => panic!("{e:?}"),
        }
    }
    for _ in 0..3 {
        let m = UnstableClasses {
            inner: Linear {
                w: array![[0.0, 0.0, 0.0], [1.0, -1.0, 0.5], [0.0, 0.0, 0.0]],
                b: array![0.0, -0.2, 0.0],
            },
            calls: AtomicUsize::new(0),
        };
        // Any typed outcome; what matters is that the crate does not panic.
        let _ = find_minimal_perturbation(&m, x.view(), Target::Nearest { true_label: 0 }, &cfg);
        let _ = find_minimal_perturbation(&m, x.view(), Target::Label(1), &cfg);
    }
}

/// Finite logits only at exactly `x`; NaN (or an error) anywhere else.
struct OnlyAt {
    inner: Linear,
    x: Vec<f64>,
    error: bool,
}

impl OnlyAt {
    fn check(&self, x: ArrayView2<'_, f64>) -> Option<intriguing::Result<()>> {
        if x.rows().into_iter().all(|r| r.iter().eq(self.x.iter())) {
            None
        } else if self.error {
            Some(Err(Error::DataFormat("model offline".into())))
        } else {
            Some(Ok(()))
        }
    }
}

impl Classifier for OnlyAt {
    fn input_dim(&self) -> usize {
        self.inner.input_dim()
    }
    fn num_classes(&self) -> usize {
        2
    }
    fn logits_into(
        &self,
        x: ArrayView2<'_, f64>,
        mut out: ArrayViewMut2<'_, f64>,
    ) -> intriguing::Result<()> {
        match self.check(x) {
            None => self.inner.logits_into(x, out),
            Some(Err(e)) => Err(e),
            Some(Ok(())) => {
                out.fill(f64::NAN);
                Ok(())
            }
        }
    }
    fn loss_gradient_into(
        &self,
        x: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        mut grad: ArrayViewMut2<'_, f64>,
    ) -> intriguing::Result<f64> {
        match self.check(x) {
            None => self.inner.loss_gradient_into(x, seed, grad),
            Some(Err(e)) => Err(e),
            Some(Ok(())) => {
                grad.fill(f64::NAN);
                Ok(f64::NAN)
            }
        }
    }
}

#[test]
fn a_model_failing_everywhere_but_x_is_a_model_failure() {
    let x = vec![0.1, 0.6, 0.2];
    for error in [false, true] {
        let m = OnlyAt {
            inner: linear(),
            x: x.clone(),
            error,
        };
        let r = find_minimal_perturbation(
            &m,
            ndarray::ArrayView1::from(&x),
            Target::Label(1),
            &AttackConfig::default(),
        )
        .unwrap();
        assert!(!r.success());
        assert!(
            matches!(r.failure, Some(FailureReason::ModelFailure(_))),
            "error={error}: {:?}",
            r.failure
        );
        // The lockstep path classifies it the same way.
        let xs = Array2::from_shape_vec((1, 3), x.clone()).unwrap();
        let lock = attack_batch_lockstep(
            &m,
            xs.view(),
            &[Target::Label(1)],
            &AttackConfig::default(),
            1,
            DEFAULT_LOCKSTEP_BATCH,
        )
        .unwrap();
        let l = lock[0].as_ref().expect("a failed result, not an error");
        assert_eq!(l.failure, r.failure, "error={error}");
        assert!(!l.success());
    }
}

/// A model that panics in every evaluation.
struct Panics;

impl Classifier for Panics {
    fn input_dim(&self) -> usize {
        2
    }
    fn num_classes(&self) -> usize {
        2
    }
    fn logits_into(
        &self,
        _: ArrayView2<'_, f64>,
        _: ArrayViewMut2<'_, f64>,
    ) -> intriguing::Result<()> {
        panic!("model bug")
    }
    fn loss_gradient_into(
        &self,
        _: ArrayView2<'_, f64>,
        _: LogitsLoss<'_>,
        _: ArrayViewMut2<'_, f64>,
    ) -> intriguing::Result<f64> {
        panic!("model bug")
    }
}

/// A panic unwinding out of a model call is `ModelPanicked` (the crate's own panics, which
/// no caller input should provoke, are `Error::Internal`).
#[test]
fn panics_in_the_model_are_model_panicked() {
    let r = attack_batch(
        &Panics,
        array![[0.2, 0.3]].view(),
        &[Target::Label(1)],
        &AttackConfig::default(),
        1,
    )
    .unwrap();
    assert!(
        matches!(&r[0], Err(Error::ModelPanicked { row: 0, message }) if message == "model bug"),
        "{:?}",
        r[0]
    );
}

#[test]
fn optimizer_cut_off_by_the_budget_does_not_claim_convergence() {
    // Unbounded below: f(x) = −exp(x), the line search always extrapolates.
    for budget in 1..40 {
        let mut obj = FnObjective::new(1, |x: &[f64], g: &mut [f64]| {
            g[0] = -x[0].exp();
            -x[0].exp()
        });
        let sol = Lbfgsb::new()
            .with_max_evaluations(budget)
            .unwrap()
            .minimize(&mut obj, &[0.0])
            .unwrap();
        if sol.termination == Termination::MaxEvaluations {
            assert!(!sol.converged());
        }
        assert!(sol.evaluations <= budget);
        assert_ne!(
            sol.termination,
            Termination::FunctionTolerance,
            "budget {budget}: {sol:?}"
        );
    }
}

#[test]
fn messages_are_short_and_grammatical() {
    let b = Bounds::interval(0.0, 1.0).unwrap();
    let e = b.check_contains(&[-1e-300]).unwrap_err();
    let msg = e.to_string();
    assert!(msg.len() < 80, "{msg}");
    assert!(msg.contains("-1e-300"), "{msg}");
    let e = Error::ModelNonFinite {
        what: "logits".into(),
    };
    assert_eq!(e.to_string(), "the model returned non-finite logits");
}

/// `num_classes()` is 3 at the first call, then cycles through 0, 1, 2, 5.
struct Shifting {
    calls: AtomicUsize,
}

impl Classifier for Shifting {
    fn input_dim(&self) -> usize {
        3
    }
    fn num_classes(&self) -> usize {
        match self.calls.fetch_add(1, Ordering::Relaxed) {
            0 => 3,
            k => [0, 1, 2, 5][k % 4],
        }
    }
    fn logits_into(
        &self,
        x: ArrayView2<'_, f64>,
        mut out: ArrayViewMut2<'_, f64>,
    ) -> intriguing::Result<()> {
        for (mut o, xi) in out.rows_mut().into_iter().zip(x.rows()) {
            for (j, v) in o.iter_mut().enumerate() {
                *v = xi[j % 3];
            }
        }
        Ok(())
    }
    fn loss_gradient_into(
        &self,
        x: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        mut grad: ArrayViewMut2<'_, f64>,
    ) -> intriguing::Result<f64> {
        let k = self.num_classes();
        let mut z = Array2::zeros((x.nrows(), k));
        self.logits_into(x, z.view_mut())?;
        let mut dz = Array2::zeros((x.nrows(), k));
        let v = seed(z.view(), dz.view_mut());
        grad.fill(0.0);
        for (mut g, d) in grad.rows_mut().into_iter().zip(dz.rows()) {
            for (j, dj) in d.iter().enumerate() {
                g[j % 3] += dj;
            }
        }
        Ok(v)
    }
}

/// The row-wise attacks (DeepFool, FGSM, PGD) on models that break their shape contract:
/// one typed error per row, never a panic and never an error blaming the crate.
#[test]
fn row_attacks_on_contract_breaking_models_give_typed_errors() {
    use intriguing::attack::{
        DeepFoolConfig, FgsmConfig, PgdConfig, RowResult, deepfool, fgsm, pgd,
    };
    let x = Array2::from_shape_fn((5, 3), |(i, j)| 0.1 + 0.15 * ((i + j) % 5) as f64);
    let labels = [0usize, 1, 0, 1, 0];
    let check = |what: &str, out: intriguing::Result<Vec<intriguing::Result<RowResult>>>| {
        let rows = match out {
            Ok(rows) => rows,
            Err(e) => {
                assert!(!matches!(e, Error::Internal { .. }), "{what}: {e:?}");
                return;
            }
        };
        for r in rows {
            if let Err(e) = r {
                assert!(
                    !matches!(e, Error::Internal { .. } | Error::ModelPanicked { .. }),
                    "{what}: {e:?}"
                );
            }
        }
    };
    for threads in [1, 2] {
        let zero = ZeroRowSeed(linear());
        check(
            "deepfool zero-row",
            deepfool(
                &zero,
                x.view(),
                &labels,
                &DeepFoolConfig::default(),
                threads,
            ),
        );
        check(
            "fgsm zero-row",
            fgsm(
                &zero,
                x.view(),
                &labels,
                0.1,
                &FgsmConfig::default(),
                threads,
            ),
        );
        check(
            "pgd zero-row",
            pgd(
                &zero,
                x.view(),
                &labels,
                0.1,
                &PgdConfig::default(),
                threads,
            ),
        );
        for _ in 0..4 {
            let s = Shifting {
                calls: AtomicUsize::new(0),
            };
            check(
                "deepfool shifting",
                deepfool(&s, x.view(), &labels, &DeepFoolConfig::default(), threads),
            );
            let s = Shifting {
                calls: AtomicUsize::new(0),
            };
            check(
                "fgsm shifting",
                fgsm(&s, x.view(), &labels, 0.1, &FgsmConfig::default(), threads),
            );
            let s = Shifting {
                calls: AtomicUsize::new(0),
            };
            check(
                "pgd shifting",
                pgd(&s, x.view(), &labels, 0.1, &PgdConfig::default(), threads),
            );
            let s = Shifting {
                calls: AtomicUsize::new(0),
            };
            let t = [
                Target::Nearest { true_label: 0 },
                Target::Label(1),
                Target::Label(2),
            ];
            let r = attack_batch(
                &s,
                x.view(),
                &t.repeat(2)[..5],
                &AttackConfig::default(),
                threads,
            );
            match r {
                Ok(rows) => {
                    for r in rows {
                        if let Err(e) = r {
                            assert!(
                                !matches!(e, Error::Internal { .. } | Error::ModelPanicked { .. }),
                                "attack_batch shifting: {e:?}"
                            );
                        }
                    }
                }
                Err(e) => assert!(!matches!(e, Error::Internal { .. }), "{e:?}"),
            }
        }
    }
}
