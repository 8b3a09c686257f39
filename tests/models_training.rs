//! Training: the update rules and weight-decay convention against closed forms, determinism,
//! divergence handling, and the paper's models on the full MNIST (release profile: a few
//! seconds per FC100-100-10 epoch on one core).
#![allow(clippy::needless_range_loop)] // index loops mirror the formulas

use intriguing::ClassifierExt;
use intriguing::data::Mnist;
use intriguing::models::{
    Activation, EpochInfo, Mlp, Optimizer, Preset, TrainConfig, train, train_with_loss,
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
