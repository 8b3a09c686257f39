//! Training: the update rules and weight-decay convention against closed forms, determinism,
//! divergence handling, and the paper's models on the full MNIST (release profile: a few
//! seconds per FC100-100-10 epoch on one core).
#![allow(clippy::needless_range_loop)] // index loops mirror the formulas

use intriguing::ClassifierExt;
use intriguing::data::Mnist;
use intriguing::models::autoencoder::{SparseAeConfig, SparseAutoencoder};
use intriguing::models::{
    Activation, BatchInfo, Dense, EpochInfo, ExtraRows, ExtraTerm, Mlp, Optimizer, Preset,
    TrainConfig, TrainLoss, fit, train, train_with_loss,
};
use intriguing::{Error, classifier::softmax_cross_entropy};
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::OnceLock;

fn mnist() -> &'static Mnist {
    static M: OnceLock<Mnist> = OnceLock::new();
    M.get_or_init(|| {
        Mnist::load(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/mnist"))
            .expect("bundled MNIST")
    })
}

fn toy(n: usize, d: usize, classes: usize, seed: u64) -> (Array2<f64>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_simple_fn((n, d), || rng.random_range(-1.0..1.0));
    let y = (0..n).map(|i| i % classes).collect();
    (x, y)
}

#[test]
fn fc10_reaches_below_9_percent_test_error() {
    let m = mnist();
    let (mut mlp, cfg) = Preset::Fc10(1e-4).build(1).unwrap();
    let cfg = cfg.with_epochs(3).unwrap();
    let mut losses = Vec::new();
    train(
        &mut mlp,
        m.train_images.view(),
        &m.train_labels,
        &cfg,
        |i, _| losses.push(i.loss),
    )
    .unwrap();
    let err = mlp
        .error_rate(m.test_images.view(), &m.test_labels)
        .unwrap();
    eprintln!(
        "FC10(1e-4), 3 epochs: test error {:.2}%, losses {losses:?}",
        100.0 * err
    );
    assert!(err < 0.09, "test error {err}");
    assert!(losses.windows(2).all(|w| w[1] < w[0]));
}

#[test]
fn fc100_100_10_reaches_below_3_percent_test_error() {
    let m = mnist();
    let (mut mlp, cfg) = Preset::Fc100_100_10.build(0).unwrap();
    let cfg = cfg.with_epochs(5).unwrap();
    let report = train(
        &mut mlp,
        m.train_images.view(),
        &m.train_labels,
        &cfg,
        |_, _| {},
    )
    .unwrap();
    let err = mlp
        .error_rate(m.test_images.view(), &m.test_labels)
        .unwrap();
    eprintln!(
        "FC100-100-10, 5 epochs: test error {:.2}% in {:.2?}",
        100.0 * err,
        report.elapsed
    );
    assert!(err < 0.03, "test error {err}");
    // Learning rate decays by the configured factor.
    let lrs: Vec<f64> = report.epochs.iter().map(|e| e.learning_rate).collect();
    assert!((lrs[4] - 0.8f64.powi(4)).abs() < 1e-12, "{lrs:?}");
}

#[test]
fn one_sgd_step_is_w_minus_lr_times_gradient_plus_lambda_w() {
    // Full-batch step with momentum 0: θ' = θ − η (∇ mean CE + λ W) (biases undecayed).
    let (x, y) = toy(12, 5, 3, 1);
    let mlp0 = Mlp::random(&[5, 4, 3], Activation::Tanh, 2).unwrap();
    let (lr, lam) = (0.3, [0.1, 0.02]);
    let cfg = TrainConfig::new()
        .with_epochs(1)
        .unwrap()
        .with_batch_size(12)
        .unwrap()
        .with_learning_rate(lr)
        .unwrap()
        .with_momentum(0.0)
        .unwrap()
        .with_weight_decay(lam.to_vec())
        .unwrap();
    let (loss0, g) = mlp0.gradients(x.view(), &y).unwrap();
    let mut mlp = mlp0.clone();
    let mut seen = None;
    train(&mut mlp, x.view(), &y, &cfg, |i: &EpochInfo, _| {
        seen = Some(i.clone())
    })
    .unwrap();
    for l in 0..2 {
        let w0 = &mlp0.layers()[l].weight;
        let expect_w = w0 - &((&g.weight(l) + &(w0 * lam[l])) * lr);
        let expect_b = &mlp0.layers()[l].bias - &(&g.bias(l) * lr);
        assert!(
            (&mlp.layers()[l].weight - &expect_w)
                .iter()
                .all(|d| d.abs() < 1e-14)
        );
        assert!(
            (&mlp.layers()[l].bias - &expect_b)
                .iter()
                .all(|d| d.abs() < 1e-14)
        );
    }
    // The epoch's loss is the data loss before the step; the objective adds Σ λ/2 ‖W‖² after.
    let info = seen.unwrap();
    assert!((info.loss - loss0).abs() < 1e-14);
    let penalty: f64 = (0..2)
        .map(|l| 0.5 * lam[l] * mlp.layers()[l].weight.iter().map(|w| w * w).sum::<f64>())
        .sum();
    assert!((info.objective - info.loss - penalty).abs() < 1e-14);
}

#[test]
fn warm_up_scales_the_first_steps_linearly() {
    // Full batch (one step per epoch), warm-up over 4 epochs: steps use η/4, 2η/4, ...
    let (x, y) = toy(10, 4, 2, 5);
    let mlp0 = Mlp::random(&[4, 2], Activation::Identity, 6).unwrap();
    let cfg = TrainConfig::new()
        .with_epochs(2)
        .unwrap()
        .with_batch_size(10)
        .unwrap()
        .with_learning_rate(0.4)
        .unwrap()
        .with_momentum(0.0)
        .unwrap()
        .with_warmup_epochs(4.0)
        .unwrap();
    let mut m = mlp0.clone();
    train(&mut m, x.view(), &y, &cfg, |_, _| {}).unwrap();
    let mut expect = mlp0.clone();
    for lr in [0.1, 0.2] {
        let (_, g) = expect.gradients(x.view(), &y).unwrap();
        let p = expect.parameters() - &(g.to_flat() * lr);
        expect.set_parameters(p.view()).unwrap();
    }
    assert!(
        (m.parameters() - expect.parameters())
            .iter()
            .all(|d| d.abs() < 1e-14)
    );
    assert!(TrainConfig::new().with_warmup_epochs(-1.0).is_err());
    assert!(TrainConfig::new().with_warmup_epochs(f64::NAN).is_err());
}

#[test]
fn momentum_and_adam_steps_match_their_closed_forms() {
    let (x, y) = toy(8, 3, 2, 3);
    let mlp0 = Mlp::random(&[3, 2], Activation::Identity, 4).unwrap();
    let one_batch = |opt: Optimizer, epochs: usize| {
        TrainConfig::new()
            .with_epochs(epochs)
            .unwrap()
            .with_batch_size(8)
            .unwrap()
            .with_learning_rate(0.1)
            .unwrap()
            .with_optimizer(opt)
            .unwrap()
    };
    // Adam's first step moves each parameter by −η g / (|g| + ε): bias-corrected m̂ = g,
    // v̂ = g².
    let (_, g) = mlp0.gradients(x.view(), &y).unwrap();
    let mut m = mlp0.clone();
    train(
        &mut m,
        x.view(),
        &y,
        &one_batch(Optimizer::ADAM, 1),
        |_, _| {},
    )
    .unwrap();
    let step = &m.layers()[0].weight - &mlp0.layers()[0].weight;
    for (s, g) in step.iter().zip(g.weight(0).iter()) {
        assert!((s + 0.1 * g / (g.abs() + 1e-8)).abs() < 1e-12, "{s} vs {g}");
    }
    // Two heavy-ball steps: v1 = −η g0, θ1 = θ0 + v1; v2 = μ v1 − η g1, θ2 = θ1 + v2.
    let mu = 0.9;
    let mut m = mlp0.clone();
    train(
        &mut m,
        x.view(),
        &y,
        &one_batch(Optimizer::Sgd { momentum: mu }, 2),
        |_, _| {},
    )
    .unwrap();
    let mut th1 = mlp0.clone();
    let v1 = g.to_flat() * -0.1;
    th1.set_parameters((mlp0.parameters() + &v1).view())
        .unwrap();
    let (_, g1) = th1.gradients(x.view(), &y).unwrap();
    let v2 = &v1 * mu - &(g1.to_flat() * 0.1);
    let expect = th1.parameters() + v2;
    assert!((m.parameters() - expect).iter().all(|d| d.abs() < 1e-14));
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let m = mnist().take(2000, 0).unwrap();
    let run = |seed: u64| {
        let (mut mlp, cfg) = Preset::Fc100_100_10.build(seed).unwrap();
        let cfg = cfg.with_epochs(2).unwrap();
        train(
            &mut mlp,
            m.train_images.view(),
            &m.train_labels,
            &cfg,
            |_, _| {},
        )
        .unwrap();
        mlp
    };
    let a = run(5);
    assert_eq!(a, run(5));
    let b = run(6);
    assert_ne!(a.parameters(), b.parameters());
    // Same initialisation, different shuffling seed: different result too.
    let (mut c, cfg) = Preset::Fc100_100_10.build(5).unwrap();
    let cfg = cfg.with_epochs(2).unwrap().with_seed(99);
    train(
        &mut c,
        m.train_images.view(),
        &m.train_labels,
        &cfg,
        |_, _| {},
    )
    .unwrap();
    assert_ne!(a.parameters(), c.parameters());
}

#[test]
fn divergence_is_an_error_and_restores_the_last_good_epoch() {
    let (x, y) = toy(50, 6, 3, 7);
    let mlp0 = Mlp::random(&[6, 8, 3], Activation::Relu, 8).unwrap();
    // A sane first run of 2 epochs gives the reference "last good" state.
    let sane = TrainConfig::new()
        .with_epochs(2)
        .unwrap()
        .with_batch_size(10)
        .unwrap();
    let mut good = mlp0.clone();
    train(&mut good, x.view(), &y, &sane, |_, _| {}).unwrap();
    // An absurd loss from epoch 3 on: the model of epoch 2 is kept.
    let mut epoch = 0;
    let mut calls = 0usize;
    let mut loss = |rows: &[usize], z: ArrayView2<'_, f64>, mut dz: ArrayViewMut2<'_, f64>| {
        calls += 1;
        let mut total = 0.0;
        for ((zr, mut gr), &i) in z.rows().into_iter().zip(dz.rows_mut()).zip(rows) {
            total += softmax_cross_entropy(zr, y[i], gr.view_mut());
            gr.mapv_inplace(|v| v / rows.len() as f64);
        }
        // 5 batches per epoch: the 12th call is in epoch 3.
        if calls == 12 {
            f64::NAN
        } else {
            total / rows.len() as f64
        }
    };
    let mut m = mlp0.clone();
    let r = train_with_loss(
        &mut m,
        x.view(),
        &sane.clone().with_epochs(5).unwrap(),
        &mut loss,
        |i, _| epoch = i.epoch,
    );
    match r {
        Err(Error::ModelNonFinite { what }) => assert!(what.contains("epoch 3"), "{what}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(epoch, 2);
    assert_eq!(m, good);
    // A learning rate that blows the weights up: error, model finite and unchanged.
    let mut m = mlp0.clone();
    let wild = sane
        .with_momentum(0.0)
        .unwrap()
        .with_learning_rate(1e300)
        .unwrap();
    assert!(matches!(
        train(&mut m, x.view(), &y, &wild, |_, _| {}),
        Err(Error::ModelNonFinite { .. })
    ));
    assert_eq!(m, mlp0);
}

/// Cross-entropy of `z` against `label(k)`, summed and divided by `div`.
fn ce_over(
    z: ArrayView2<'_, f64>,
    mut dz: ArrayViewMut2<'_, f64>,
    label: impl Fn(usize) -> usize,
    div: f64,
) -> f64 {
    let mut total = 0.0;
    for (k, (zr, mut gr)) in z.rows().into_iter().zip(dz.rows_mut()).enumerate() {
        total += softmax_cross_entropy(zr, label(k), gr.view_mut());
        gr.mapv_inplace(|v| v / div);
    }
    total / div
}

/// Appends every training row of the batch a second time: the mean cross-entropy over the
/// doubled batch is the plain mean, so training must follow plain `train`.
struct Doubled<'a> {
    x: ArrayView2<'a, f64>,
    y: &'a [usize],
    cap: usize,
    seen: Vec<(usize, usize, usize)>,
}

impl TrainLoss<Dense> for Doubled<'_> {
    fn loss(&mut self, rows: &[usize], z: ArrayView2<'_, f64>, dz: ArrayViewMut2<'_, f64>) -> f64 {
        assert_eq!(z.nrows(), 2 * rows.len());
        let m = rows.len();
        ce_over(z, dz, |k| self.y[rows[k % m]], z.nrows() as f64)
    }
    fn max_extra_rows(&self) -> usize {
        self.cap
    }
    fn begin_batch(
        &mut self,
        b: &BatchInfo<'_>,
        _model: &Mlp,
        extra: &mut ExtraRows<'_>,
    ) -> intriguing::Result<()> {
        self.seen.push((b.epoch, b.batch, b.step));
        for &i in b.rows {
            extra.push(self.x.row(i))?;
        }
        Ok(())
    }
}

/// Half of the mean cross-entropy through the batch (`loss`), the other half added by
/// `extra_term` from `Sequential::gradients` (an independent code path) on the same rows.
struct Halves<'a> {
    x: ArrayView2<'a, f64>,
    y: &'a [usize],
    rows: Vec<usize>,
}

impl TrainLoss<Dense> for Halves<'_> {
    fn loss(&mut self, rows: &[usize], z: ArrayView2<'_, f64>, dz: ArrayViewMut2<'_, f64>) -> f64 {
        self.rows = rows.to_vec();
        ce_over(z, dz, |k| self.y[rows[k]], 2.0 * rows.len() as f64)
    }
    fn extra_term(&mut self, model: &Mlp, grads: &mut [f64]) -> intriguing::Result<ExtraTerm> {
        let xb = Array2::from_shape_fn((self.rows.len(), self.x.ncols()), |(k, j)| {
            self.x[[self.rows[k], j]]
        });
        let yb: Vec<usize> = self.rows.iter().map(|&i| self.y[i]).collect();
        let (l, g) = model.gradients(xb.view(), &yb)?;
        for (a, b) in grads.iter_mut().zip(g.as_flat()) {
            *a += 0.5 * b;
        }
        Ok(ExtraTerm {
            value: 0.5 * l,
            rows: 0,
        })
    }
}

fn max_param_diff(a: &Mlp, b: &Mlp) -> f64 {
    (&a.parameters() - &b.parameters())
        .iter()
        .fold(0.0, |m, d| m.max(d.abs()))
}

#[test]
fn per_batch_hooks_appended_rows_and_extra_terms_follow_plain_training() {
    let (x, y) = toy(23, 4, 3, 11);
    let mlp0 = Mlp::random(&[4, 6, 3], Activation::Sigmoid, 12).unwrap();
    let cfg = TrainConfig::new()
        .with_epochs(4)
        .unwrap()
        .with_batch_size(5)
        .unwrap()
        .with_momentum(0.9)
        .unwrap()
        .with_learning_rate(0.2)
        .unwrap()
        .with_uniform_weight_decay(1e-3)
        .unwrap();
    let mut plain = mlp0.clone();
    let r0 = train(&mut plain, x.view(), &y, &cfg, |_, _| {}).unwrap();

    let mut doubled = mlp0.clone();
    let mut loss = Doubled {
        x: x.view(),
        y: &y,
        cap: 5,
        seen: Vec::new(),
    };
    let r1 = fit(&mut doubled, x.view(), &cfg, &mut loss, |_, _| {}).unwrap();
    assert!(max_param_diff(&plain, &doubled) < 1e-12);
    // 5 batches per epoch (the last of 3 rows), counted as BatchInfo says.
    assert_eq!(loss.seen.len(), 20);
    assert_eq!(loss.seen[7], (2, 2, 7));
    for (a, b) in r0.epochs.iter().zip(&r1.epochs) {
        assert!((a.loss - b.loss).abs() < 1e-12, "{} vs {}", a.loss, b.loss);
    }

    let mut halves = mlp0.clone();
    let mut loss = Halves {
        x: x.view(),
        y: &y,
        rows: Vec::new(),
    };
    let r2 = fit(&mut halves, x.view(), &cfg, &mut loss, |_, _| {}).unwrap();
    assert!(max_param_diff(&plain, &halves) < 1e-12);
    for (a, b) in r0.epochs.iter().zip(&r2.epochs) {
        assert!((a.loss - b.loss).abs() < 1e-12);
    }
    // Training moved the weights, so the comparisons above are not vacuous.
    assert!(max_param_diff(&plain, &mlp0) > 1e-3);
}

#[test]
fn a_hook_error_stops_training_and_restores_the_last_epoch() {
    let (x, y) = toy(20, 4, 3, 13);
    let mlp0 = Mlp::random(&[4, 5, 3], Activation::Tanh, 14).unwrap();
    let cfg = TrainConfig::new()
        .with_epochs(3)
        .unwrap()
        .with_batch_size(10)
        .unwrap();
    // Room for 4 extra rows, but the batch asks for 10: the push fails in the first batch.
    let mut m = mlp0.clone();
    let mut loss = Doubled {
        x: x.view(),
        y: &y,
        cap: 4,
        seen: Vec::new(),
    };
    match fit(&mut m, x.view(), &cfg, &mut loss, |_, _| {}) {
        Err(Error::InvalidConfig(msg)) => assert!(msg.contains("max_extra_rows (4)"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(m, mlp0);
}

#[test]
fn the_autoencoder_reports_its_reconstruction_and_activation_per_epoch() {
    let (x, _) = toy(40, 6, 2, 15);
    let x = x.mapv(|v| 0.5 + 0.4 * v);
    let cfg = SparseAeConfig::default()
        .with_hidden(3)
        .unwrap()
        .with_epochs(3)
        .unwrap()
        .with_batch_size(10)
        .unwrap();
    let mut ae = SparseAutoencoder::random(6, 3, 16).unwrap();
    let mut infos = Vec::new();
    let report = ae.train(x.view(), &cfg, |e| infos.push(e.clone())).unwrap();
    assert_eq!(infos.len(), 3);
    assert_eq!(report.epochs, infos);
    for e in &infos {
        let rec = e.metric("reconstruction").unwrap();
        let sparsity = e.metric("sparsity").unwrap();
        let act = e.metric("mean_activation").unwrap();
        // loss = reconstruction + sparsity, each an epoch mean over the same rows.
        assert!((e.loss - rec - sparsity).abs() < 1e-12 * e.loss.abs().max(1.0));
        assert!(rec > 0.0 && sparsity >= 0.0 && (0.0..=1.0).contains(&act));
    }
    // Against the codes and reconstructions computed directly: one full batch, so the
    // epoch's figures are those of the initial weights (β = 0: no sparsity term).
    let cfg = cfg
        .with_beta(0.0)
        .unwrap()
        .with_epochs(1)
        .unwrap()
        .with_batch_size(40)
        .unwrap();
    let mut ae = SparseAutoencoder::random(6, 3, 17).unwrap();
    let codes = ae.encode(x.view()).unwrap();
    let recon = ae.reconstruct(x.view()).unwrap();
    let mut info = None;
    ae.train(x.view(), &cfg, |e| info = Some(e.clone()))
        .unwrap();
    let info = info.unwrap();
    let want_act = codes.mean().unwrap();
    let want_rec = (&recon - &x).mapv(|v| v * v).sum() / (2.0 * 40.0);
    assert!((info.metric("mean_activation").unwrap() - want_act).abs() < 1e-12);
    assert!((info.metric("reconstruction").unwrap() - want_rec).abs() < 1e-12);
    assert_eq!(info.metric("sparsity"), Some(0.0));
    assert_eq!(info.metric("no such metric"), None);
}
