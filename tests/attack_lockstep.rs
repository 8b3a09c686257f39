//! `attack_batch_lockstep` against the per-row `attack_batch` on an MNIST-trained
//! FC100-100-10: the same successes, distortions and evaluation counts to the solver's
//! tolerance (the batched matrix product rounds differently from the one-row dot products,
//! see the function's documentation), results independent of the thread count and the batch
//! size (exactly), and bad rows / failing models isolated to their own slots.

#[path = "mnist_mlp/mod.rs"]
mod mnist_mlp;

use intriguing::analysis::Crown;
use intriguing::attack::{
    AttackConfig, AttackLoss, AttackResult, DEFAULT_LOCKSTEP_BATCH, LabelBound, Target,
    attack_batch, attack_batch_lockstep,
};
use intriguing::classifier::{Classifier, ClassifierExt, LogitsLoss};
use intriguing::models::Mlp;
use intriguing::optim::Bounds;
use intriguing::{Error, Result};
use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut2, s};
use std::sync::{Arc, OnceLock};

struct Fixture {
    mlp: Mlp,
    images: Array2<f64>,
    preds: Vec<usize>,
}

/// FC100-100-10, the preset's recipe shortened to 1 epoch on 10 000 images; 24 test images.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let (mlp, mnist) = mnist_mlp::brief_fc100(10_000, 24, 3, 1);
        let images = mnist.test_images.slice(s![..24, ..]).to_owned();
        let preds = mlp.predict_batch(images.view()).unwrap();
        Fixture { mlp, images, preds }
    })
}

fn targets(kind: usize) -> Vec<Target> {
    fixture()
        .preds
        .iter()
        .map(|&p| match kind {
            0 => Target::Label((p + 3) % 10),
            1 => Target::Untargeted { true_label: p },
            _ => Target::Nearest { true_label: p },
        })
        .collect()
}

fn ok(v: Vec<Result<AttackResult>>) -> Vec<AttackResult> {
    v.into_iter().map(|r| r.expect("a valid row")).collect()
}

/// Per-row vs lockstep on the same rows: same success per row; the distortions agree to
/// 1e-3 relative on the median row and 2% on every row that took the same number of
/// evaluations... the c searches are discrete, so a last-bit difference can flip one
/// success/failure decision of a run; the totals must agree closely.
fn compare(kind: usize, cfg: &AttackConfig) {
    let f = fixture();
    let t = targets(kind);
    let per_row = ok(attack_batch(&f.mlp, f.images.view(), &t, cfg, 1).unwrap());
    let lock =
        ok(
            attack_batch_lockstep(&f.mlp, f.images.view(), &t, cfg, 1, DEFAULT_LOCKSTEP_BATCH)
                .unwrap(),
        );
    let (mut identical, mut rel) = (0usize, Vec::new());
    let (mut ea, mut eb) = (0usize, 0usize);
    let (mut pa, mut pb) = (0usize, 0usize);
    for (a, b) in per_row.iter().zip(&lock) {
        assert_eq!(a.success(), b.success(), "kind {kind}: {a:?} vs {b:?}");
        assert_eq!(a.original_label, b.original_label);
        identical += usize::from(a == b);
        ea += a.gradient_evaluations;
        eb += b.gradient_evaluations;
        pa += a.predictions;
        pb += b.predictions;
        if let (Some(la), Some(lb)) = (a.l2(), b.l2()) {
            rel.push((la - lb).abs() / la.max(1e-12));
            // Every lockstep adversarial is verified by the test too.
            let adv = b.adversarial.as_ref().unwrap();
            let label = f.mlp.predict(adv.input.view()).unwrap();
            assert!(b.target.is_reached_by(label));
            assert!(adv.input.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }
    rel.sort_by(f64::total_cmp);
    let median = rel[rel.len() / 2];
    let mean_a: f64 = per_row.iter().filter_map(|r| r.l2()).sum::<f64>();
    let mean_b: f64 = lock.iter().filter_map(|r| r.l2()).sum::<f64>();
    eprintln!(
        "kind {kind}: {identical}/{} rows identical, median rel Δl2 {median:.2e}, max {:.2e}, \
         Σl2 {mean_a:.6} vs {mean_b:.6}, evaluations {ea} vs {eb}, predictions {pa} vs {pb}",
        lock.len(),
        rel[rel.len() - 1]
    );
    assert!(rel.len() >= 20, "most rows must succeed: {}", rel.len());
    assert!(
        median <= 1e-3,
        "median relative distortion difference {median}"
    );
    assert!(
        (mean_a - mean_b).abs() <= 0.01 * mean_a,
        "total distortion {mean_a} vs {mean_b}"
    );
    assert!(
        (ea as f64 - eb as f64).abs() <= 0.05 * ea as f64,
        "gradient evaluations {ea} vs {eb}"
    );
    if cfg.loss() == AttackLoss::CrossEntropy {
        // The searches agree to the last decision: the same runs, verifications and
        // refinement rounds (whose predictions lockstep batches across rows).
        assert_eq!(ea, eb, "gradient evaluations");
        assert_eq!(pa, pb, "predictions");
        assert!(rel[rel.len() - 1] <= 1e-12, "largest relative difference");
    }
}

#[test]
fn lockstep_agrees_with_per_row_targeted() {
    compare(0, &AttackConfig::default());
}

#[test]
fn lockstep_agrees_with_per_row_untargeted() {
    compare(1, &AttackConfig::default());
}

#[test]
fn lockstep_agrees_with_per_row_nearest() {
    compare(2, &AttackConfig::default());
}

/// The Carlini–Wagner margin loss: lockstep evaluates the loss the objective is configured
/// with (a cross-entropy pass would give other distortions and evaluation counts).
#[test]
fn lockstep_agrees_with_per_row_margin_loss() {
    let cfg = AttackConfig::default()
        .with_loss(AttackLoss::Margin { kappa: 0.0 })
        .unwrap();
    compare(0, &cfg);
    compare(1, &cfg);
}

/// Nearest with the exact label pruning by a CROWN bound (all 9 labels as candidates, so
/// that labels get pruned): lockstep prunes the same way as the per-row search — the same
/// agreement, the same number of labels searched, and fewer labels than without the bound.
#[test]
fn lockstep_prunes_nearest_labels_like_per_row() {
    let f = fixture();
    let crown: Arc<dyn LabelBound> = Arc::new(Crown::from_mlp(&f.mlp).unwrap());
    let all = AttackConfig::default().with_nearest_candidates(9).unwrap();
    let bounded = all.clone().with_label_bound(crown);
    compare(2, &bounded);
    let t = targets(2);
    let searched = |cfg: &AttackConfig, lockstep: bool| -> usize {
        let res = if lockstep {
            attack_batch_lockstep(&f.mlp, f.images.view(), &t, cfg, 1, DEFAULT_LOCKSTEP_BATCH)
        } else {
            attack_batch(&f.mlp, f.images.view(), &t, cfg, 1)
        };
        ok(res.unwrap()).iter().map(|r| r.labels_searched).sum()
    };
    let (per_row, lock, unbounded) = (
        searched(&bounded, false),
        searched(&bounded, true),
        searched(&all, true),
    );
    eprintln!("labels searched: per row {per_row}, lockstep {lock}, without the bound {unbounded}");
    assert_eq!(per_row, lock);
    assert_eq!(unbounded, 9 * t.len());
    assert!(lock < unbounded, "{lock} vs {unbounded}");
}

/// A label bound that fails gives an `Err` in the rows that ask it, in both paths alike.
#[test]
fn a_failing_label_bound_is_the_rows_error() {
    #[derive(Debug)]
    struct Failing;
    impl LabelBound for Failing {
        fn unreachable_within(
            &self,
            _: ArrayView1<'_, f64>,
            _: usize,
            _: f64,
            _: &Bounds,
        ) -> Result<Vec<bool>> {
            Err(Error::InvalidConfig("no bound here".into()))
        }
    }
    let f = fixture();
    let cfg = AttackConfig::default().with_label_bound(Arc::new(Failing));
    let t = targets(2);
    let lock = attack_batch_lockstep(&f.mlp, f.images.view(), &t, &cfg, 1, DEFAULT_LOCKSTEP_BATCH)
        .unwrap();
    let per_row = attack_batch(&f.mlp, f.images.view(), &t, &cfg, 1).unwrap();
    for (a, b) in per_row.iter().zip(&lock) {
        assert_eq!(a.is_err(), b.is_err(), "{a:?} vs {b:?}");
        if let Err(e) = b {
            assert!(matches!(e, Error::InvalidConfig(_)), "{e:?}");
        }
    }
    assert!(lock.iter().any(|r| r.is_err()));
}

#[test]
fn lockstep_is_independent_of_threads_and_batch_size() {
    let f = fixture();
    let cfg = AttackConfig::default();
    for kind in [0, 2] {
        let t = targets(kind);
        let base = ok(attack_batch_lockstep(&f.mlp, f.images.view(), &t, &cfg, 1, 256).unwrap());
        for (threads, batch) in [(2, 256), (3, 5), (1, 1), (2, 2)] {
            let other =
                ok(
                    attack_batch_lockstep(&f.mlp, f.images.view(), &t, &cfg, threads, batch)
                        .unwrap(),
                );
            assert!(
                base == other,
                "kind {kind}: threads {threads}, batch {batch} changed a result"
            );
        }
    }
}

/// FC100-100-10 that panics on any batch containing a row whose first pixel is 0.5 and
/// errors on any batch containing a row whose second pixel is 0.5.
struct Fragile<'a>(&'a Mlp);

impl Classifier for Fragile<'_> {
    fn input_dim(&self) -> usize {
        self.0.input_dim()
    }
    fn num_classes(&self) -> usize {
        self.0.num_classes()
    }
    fn logits_into(&self, x: ArrayView2<'_, f64>, out: ArrayViewMut2<'_, f64>) -> Result<()> {
        self.0.logits_into(x, out)
    }
    fn loss_gradient_into(
        &self,
        x: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        grad: ArrayViewMut2<'_, f64>,
    ) -> Result<f64> {
        if x.rows().into_iter().any(|r| r[0] == 0.5) {
            panic!("fragile model");
        }
        if x.rows().into_iter().any(|r| r[1] == 0.5) {
            return Err(Error::DataFormat("fragile model error".into()));
        }
        self.0.loss_gradient_into(x, seed, grad)
    }
}

#[test]
fn bad_rows_and_failing_models_stay_in_their_slots() {
    let f = fixture();
    let cfg = AttackConfig::default();
    let mut images = f.images.slice(s![..6, ..]).to_owned();
    images[[1, 0]] = f64::NAN; // invalid input
    images[[2, 0]] = 0.5; // the model panics on it
    images[[3, 1]] = 0.5; // the model errors on it
    let t: Vec<Target> = f.preds[..6]
        .iter()
        .map(|&p| Target::Untargeted { true_label: p })
        .collect();
    let model = Fragile(&f.mlp);
    let res = attack_batch_lockstep(&model, images.view(), &t, &cfg, 1, 256).unwrap();
    assert!(
        matches!(res[1], Err(Error::NonFinite { .. })),
        "{:?}",
        res[1]
    );
    assert!(
        matches!(&res[2], Err(Error::ModelPanicked { row: 2, message }) if message == "fragile model"),
        "{:?}",
        res[2]
    );
    let r3 = res[3].as_ref().expect("a model error is a failed result");
    assert!(!r3.success(), "{r3:?}");
    // The healthy rows are what they are without the bad ones.
    let alone =
        attack_batch_lockstep(&f.mlp, images.slice(s![4..6, ..]), &t[4..6], &cfg, 1, 256).unwrap();
    for (a, b) in [
        (&res[0], None),
        (&res[4], Some(&alone[0])),
        (&res[5], Some(&alone[1])),
    ] {
        let a = a.as_ref().expect("healthy row");
        assert!(a.success());
        if let Some(b) = b {
            assert!(a == b.as_ref().unwrap());
        }
    }
    // An absurd batch size allocates no more than the rows need (no abort), same results.
    let huge = attack_batch_lockstep(
        &f.mlp,
        images.slice(s![4..6, ..]),
        &t[4..6],
        &cfg,
        1,
        usize::MAX,
    )
    .unwrap();
    for (a, b) in huge.iter().zip(&alone) {
        assert!(a.as_ref().unwrap() == b.as_ref().unwrap());
    }
    // Whole-batch argument errors.
    assert!(attack_batch_lockstep(&f.mlp, images.view(), &t[..2], &cfg, 1, 8).is_err());
    assert!(matches!(
        attack_batch_lockstep(&f.mlp, images.view(), &t, &cfg, 0, 8),
        Err(Error::InvalidParameter {
            name: "threads",
            ..
        })
    ));
    assert!(matches!(
        attack_batch_lockstep(&f.mlp, images.view(), &t, &cfg, 1, 0),
        Err(Error::InvalidParameter {
            name: "max_batch",
            ..
        })
    ));
}

/// FC100-100-10 whose predictions (`logits_into`, the verification's call) fail on any batch
/// with a row predicted `label` (an error, or a panic with `panics`) or of more than
/// `max_rows` rows (an error; counted in `refused`); its loss gradients work.
struct Refuses<'a> {
    mlp: &'a Mlp,
    label: usize,
    panics: bool,
    max_rows: usize,
    refused: std::sync::atomic::AtomicUsize,
}

impl<'a> Refuses<'a> {
    /// Refuses the batches with a row predicted `label`.
    fn label(mlp: &'a Mlp, label: usize, panics: bool) -> Self {
        Refuses {
            mlp,
            label,
            panics,
            max_rows: usize::MAX,
            refused: Default::default(),
        }
    }

    /// Refuses the batches of more than `max_rows` rows.
    fn rows_over(mlp: &'a Mlp, max_rows: usize) -> Self {
        Refuses {
            max_rows,
            ..Self::label(mlp, usize::MAX, false)
        }
    }
}

impl Classifier for Refuses<'_> {
    fn input_dim(&self) -> usize {
        self.mlp.input_dim()
    }
    fn num_classes(&self) -> usize {
        self.mlp.num_classes()
    }
    fn logits_into(&self, x: ArrayView2<'_, f64>, mut out: ArrayViewMut2<'_, f64>) -> Result<()> {
        if x.nrows() > self.max_rows {
            self.refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(Error::DataFormat("too many rows".into()));
        }
        self.mlp.logits_into(x, out.view_mut())?;
        let threes = out
            .rows()
            .into_iter()
            .any(|z| intriguing::classifier::argmax(z) == self.label);
        match (threes, self.panics) {
            (false, _) => Ok(()),
            (true, false) => Err(Error::DataFormat("refused label".into())),
            (true, true) => panic!("refused label"),
        }
    }
    fn loss_gradient_into(
        &self,
        x: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        grad: ArrayViewMut2<'_, f64>,
    ) -> Result<f64> {
        self.mlp.loss_gradient_into(x, seed, grad)
    }
}

/// The verifications and the boundary refinements are batched across rows in lockstep: a
/// prediction that fails on one row's point (an error: the point is not verified, or the
/// refinement ends; a panic: the row's error) fails that row's prediction only, as on the
/// per-row path; the other rows' results are exactly those they have without the failing
/// rows. Without refinement and with it (3 rounds of 8 points, whose points between the
/// clean input and an adversarial may be predicted 3 on any row; in batches of 2 rows, a
/// pass then holds one row's round).
#[test]
fn a_failing_verification_fails_its_row_only() {
    for (cfg, max_batch) in [
        (AttackConfig::default().with_refinement(0, 1).unwrap(), 256),
        (AttackConfig::default(), 256),
        (AttackConfig::default(), 2),
    ] {
        failing_predictions_fail_their_rows_only(&cfg, max_batch);
    }
}

fn failing_predictions_fail_their_rows_only(cfg: &AttackConfig, max_batch: usize) {
    let f = fixture();
    let keep: Vec<usize> = (0..f.preds.len())
        .filter(|&i| f.preds[i] != 3)
        .take(8)
        .collect();
    let images = f.images.select(ndarray::Axis(0), &keep);
    let t: Vec<Target> = keep
        .iter()
        .enumerate()
        .map(|(j, &i)| {
            let p = f.preds[i];
            let other = if (p + 1) % 10 == 3 {
                (p + 2) % 10
            } else {
                (p + 1) % 10
            };
            Target::Label(if j % 2 == 0 { 3 } else { other })
        })
        .collect();
    let odd: Vec<usize> = (1..keep.len()).step_by(2).collect();
    let odd_images = images.select(ndarray::Axis(0), &odd);
    let odd_t: Vec<Target> = odd.iter().map(|&j| t[j]).collect();
    let plain = attack_batch(&f.mlp, images.view(), &t, cfg, 1).unwrap();
    for panics in [false, true] {
        let model = Refuses::label(&f.mlp, 3, panics);
        let lock = attack_batch_lockstep(&model, images.view(), &t, cfg, 1, max_batch).unwrap();
        let alone =
            attack_batch_lockstep(&model, odd_images.view(), &odd_t, cfg, 1, max_batch).unwrap();
        let per_row = attack_batch(&model, images.view(), &t, cfg, 1).unwrap();
        let mut odd_successes = 0;
        for (j, ((l, p), q)) in lock.iter().zip(&per_row).zip(&plain).enumerate() {
            let q = q.as_ref().unwrap();
            assert!(q.success(), "row {j}: {q:?}");
            if j % 2 == 1 {
                // The same result as without the failing rows (an error too, when one of
                // its own points is predicted 3).
                match (l, &alone[j / 2]) {
                    (Ok(a), Ok(b)) => assert!(a == b, "row {j}"),
                    (
                        Err(Error::ModelPanicked { row: a, message }),
                        Err(Error::ModelPanicked { row: b, message: m }),
                    ) => assert!(*a == j && *b == j / 2 && message == m, "row {j}"),
                    other => panic!("row {j}: {other:?}"),
                }
                assert_eq!(
                    l.as_ref().map(|r| r.success()).ok(),
                    p.as_ref().map(|r| r.success()).ok(),
                    "row {j}"
                );
                odd_successes += usize::from(l.as_ref().is_ok_and(|r| r.success()));
            } else if panics {
                for r in [l, p] {
                    assert!(
                        matches!(r, Err(Error::ModelPanicked { row, message }) if *row == j && message == "refused label"),
                        "row {j}: {r:?}"
                    );
                }
            } else {
                // Every point that reaches 3 fails its verification: no success on either
                // path, where the plain model succeeds.
                for r in [l, p] {
                    let r = r.as_ref().unwrap();
                    assert!(!r.success(), "row {j}: {r:?}");
                    assert!(r.predictions > 0 && r.gradient_evaluations > 0);
                }
            }
        }
        // Rows whose batches held failing rows still succeed.
        assert!(odd_successes >= 2, "{odd_successes}");
    }
}

/// The clean predictions of the rows that join a lockstep batch are made together: one that
/// fails (an error or a panic of the model's prediction) is that row's error, as on the
/// per-row path, and the other rows' results are exactly those they have without it.
#[test]
fn a_failing_clean_prediction_fails_its_row_only() {
    let f = fixture();
    let cfg = AttackConfig::default();
    // The first row's prediction is refused; three rows predicted otherwise.
    let bad = f.preds[0];
    let others: Vec<usize> = (0..f.preds.len())
        .filter(|&i| f.preds[i] != bad)
        .take(3)
        .collect();
    let rows: Vec<usize> = std::iter::once(0).chain(others.iter().copied()).collect();
    let images = f.images.select(ndarray::Axis(0), &rows);
    let other_images = f.images.select(ndarray::Axis(0), &others);
    let t: Vec<Target> = rows
        .iter()
        .map(|&i| Target::Untargeted {
            true_label: f.preds[i],
        })
        .collect();
    for panics in [false, true] {
        let model = Refuses::label(&f.mlp, bad, panics);
        let lock = attack_batch_lockstep(&model, images.view(), &t, &cfg, 1, 256).unwrap();
        let per_row = attack_batch(&model, images.view(), &t, &cfg, 1).unwrap();
        let alone =
            attack_batch_lockstep(&model, other_images.view(), &t[1..], &cfg, 1, 256).unwrap();
        for r in [&lock[0], &per_row[0]] {
            match (r, panics) {
                (Err(Error::DataFormat(m)), false) => assert_eq!(m, "refused label"),
                (Err(Error::ModelPanicked { row: 0, message }), true) => {
                    assert_eq!(message, "refused label")
                }
                other => panic!("row 0: {other:?}"),
            }
        }
        for j in 1..rows.len() {
            match (&lock[j], &alone[j - 1]) {
                (Ok(a), Ok(b)) => assert!(a == b, "row {j}"),
                (
                    Err(Error::ModelPanicked { row: a, message }),
                    Err(Error::ModelPanicked { row: b, message: m }),
                ) => assert!(*a == j && *b == j - 1 && message == m, "row {j}"),
                other => panic!("row {j}: {other:?}"),
            }
        }
    }
}

/// A prediction pass that fails as a whole (here: more rows than the model takes) is made
/// again row by row — each row's point to verify, or its refinement round's 8 points — so
/// that every row gets the predictions it would get in a pass that works: the results are
/// exactly those on the model that takes any batch (the clean predictions of the joining
/// rows likewise, each row then predicting alone).
#[test]
fn a_failing_prediction_pass_is_made_again_row_by_row() {
    let f = fixture();
    let cfg = AttackConfig::default();
    for kind in [0, 2] {
        let t = targets(kind);
        let plain = ok(attack_batch_lockstep(&f.mlp, f.images.view(), &t, &cfg, 1, 256).unwrap());
        let model = Refuses::rows_over(&f.mlp, 8);
        let lock = ok(attack_batch_lockstep(&model, f.images.view(), &t, &cfg, 1, 256).unwrap());
        let refused = model.refused.into_inner();
        // The joining rows' pass, and passes of verifications or of two rows' rounds.
        assert!(refused > 1, "kind {kind}: {refused} passes refused");
        for (j, (a, b)) in plain.iter().zip(&lock).enumerate() {
            assert!(a == b, "kind {kind}, row {j}: {a:?} vs {b:?}");
        }
    }
}

/// The attack in lockstep on `F32Gradients` (the loss gradients in f32, the predictions the
/// f64 model's): the same successes as on the f64 model, the total distortion within 1e-4
/// relative and the gradient evaluations within 2%, every adversarial re-classified by the
/// f64 model here.
#[test]
fn f32_gradients_attack_as_well_as_the_f64_model() {
    let f = fixture();
    let cfg = AttackConfig::default();
    for kind in [0, 2] {
        let t = targets(kind);
        let f64s = ok(attack_batch_lockstep(&f.mlp, f.images.view(), &t, &cfg, 1, 256).unwrap());
        let fast = intriguing::models::F32Gradients::new(&f.mlp);
        let f32s = ok(attack_batch_lockstep(&fast, f.images.view(), &t, &cfg, 1, 256).unwrap());
        let (mut la, mut lb, mut ea, mut eb) = (0.0, 0.0, 0usize, 0usize);
        for (j, (a, b)) in f64s.iter().zip(&f32s).enumerate() {
            assert_eq!(a.success(), b.success(), "kind {kind}, row {j}");
            ea += a.gradient_evaluations;
            eb += b.gradient_evaluations;
            if let (Some(x), Some(y)) = (a.l2(), b.l2()) {
                la += x;
                lb += y;
                let adv = b.adversarial.as_ref().unwrap();
                let label = f.mlp.predict(adv.input.view()).unwrap();
                assert!(b.target.is_reached_by(label), "kind {kind}, row {j}");
                assert!(adv.input.iter().all(|v| (0.0..=1.0).contains(v)));
            }
        }
        eprintln!("kind {kind}: Σl2 {la:.9} vs {lb:.9}, evaluations {ea} vs {eb}");
        assert!(
            la > 0.0 && (la - lb).abs() <= 1e-4 * la,
            "kind {kind}: {la} vs {lb}"
        );
        assert!(
            (ea as f64 - eb as f64).abs() <= 0.02 * ea as f64,
            "kind {kind}: {ea} vs {eb}"
        );
    }
}

/// FC100-100-10 whose predictions of points on lines (the boundary refinement's rounds)
/// always fail.
struct NoLines<'a>(&'a Mlp);

impl Classifier for NoLines<'_> {
    fn input_dim(&self) -> usize {
        self.0.input_dim()
    }
    fn num_classes(&self) -> usize {
        self.0.num_classes()
    }
    fn logits_into(&self, x: ArrayView2<'_, f64>, out: ArrayViewMut2<'_, f64>) -> Result<()> {
        self.0.logits_into(x, out)
    }
    fn loss_gradient_into(
        &self,
        x: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        grad: ArrayViewMut2<'_, f64>,
    ) -> Result<f64> {
        self.0.loss_gradient_into(x, seed, grad)
    }
    fn logits_on_lines_into(
        &self,
        _: ArrayView2<'_, f64>,
        _: ArrayView2<'_, f64>,
        _: &[(usize, f64)],
        _: ArrayViewMut2<'_, f64>,
    ) -> Result<()> {
        Err(Error::DataFormat("no lines".into()))
    }
}

/// A model whose line predictions fail: each search's refinement ends at its first round
/// (on lockstep, after the pass and then the row alone failed) and no row fails: every
/// result equals the one without refinement on the plain model, on both paths, but for the
/// refinement's counted predictions (one round per refined search).
#[test]
fn failing_line_predictions_end_the_refinement_only() {
    let f = fixture();
    let cfg = AttackConfig::default();
    let (rounds, points) = cfg.refinement();
    assert!(rounds > 0);
    let unrefined = cfg.clone().with_refinement(0, points).unwrap();
    let model = NoLines(&f.mlp);
    for kind in [0, 2] {
        let t = targets(kind);
        let x = f.images.view();
        for lockstep in [false, true] {
            let run = |m: &dyn Classifier, c: &AttackConfig| {
                ok(if lockstep {
                    attack_batch_lockstep(m, x, &t, c, 1, 256).unwrap()
                } else {
                    attack_batch(m, x, &t, c, 1).unwrap()
                })
            };
            let want = run(&f.mlp, &unrefined);
            let got = run(&model, &cfg);
            let refined = run(&f.mlp, &cfg);
            let mut moved = 0;
            for (j, ((a, b), r)) in want.iter().zip(&got).zip(&refined).enumerate() {
                let extra = b.predictions - a.predictions;
                assert!(
                    extra % points == 0 && extra > 0,
                    "row {j}: {extra} more predictions"
                );
                let mut b = b.clone();
                b.predictions = a.predictions;
                assert!(
                    *a == b,
                    "kind {kind}, lockstep {lockstep}, row {j}: {a:?} vs {b:?}"
                );
                moved += usize::from(r.adversarial != a.adversarial);
            }
            // The refinement does move points on the plain model (else this test is empty).
            assert!(moved > 0, "kind {kind}, lockstep {lockstep}");
        }
    }
}
