//! Exact pruning of `Target::Nearest` by a certified label bound
//! (`AttackConfig::with_label_bound`, implemented by `analysis::Crown`): the result (label
//! and distortion) is identical to the search of every label without the bound, on MNIST-
//! trained and toy models, with fewer labels searched; a bogus bound changes results (so the
//! comparison can fail).

use intriguing::analysis::Crown;
use intriguing::attack::{
    AttackConfig, AttackResult, LabelBound, Target, find_minimal_perturbation,
};
use intriguing::data::Mnist;
use intriguing::models::{Activation, Mlp};
use intriguing::optim::Bounds;
use intriguing::{ClassifierExt, Result};
use ndarray::{Array2, ArrayView1, ArrayView2};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

fn sgd(mlp: &mut Mlp, x: ArrayView2<'_, f64>, y: &[usize], epochs: usize, lr: f64, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..y.len()).collect();
    for _ in 0..epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(50) {
            let xb = x.select(ndarray::Axis(0), chunk);
            let yb: Vec<usize> = chunk.iter().map(|&i| y[i]).collect();
            let (_, g) = mlp.gradients(xb.view(), &yb).unwrap();
            let p = mlp.parameters() - &(g.to_flat() * lr);
            mlp.set_parameters(p.view()).unwrap();
        }
    }
}

/// Claims every label unreachable at any radius (unsound).
struct Bogus;

impl LabelBound for Bogus {
    fn unreachable_within(
        &self,
        x: ArrayView1<'_, f64>,
        _true_label: usize,
        _radius: f64,
        _bounds: &Bounds,
    ) -> Result<Vec<bool>> {
        Ok(vec![true; x.len().max(10)])
    }
}

fn nearest(mlp: &Mlp, x: ArrayView1<'_, f64>, y: usize, cfg: &AttackConfig) -> AttackResult {
    find_minimal_perturbation(mlp, x, Target::Nearest { true_label: y }, cfg).unwrap()
}

fn key(r: &AttackResult) -> Option<(usize, u64)> {
    r.adversarial.as_ref().map(|a| (a.label, a.l2.to_bits()))
}

/// Compares, per input, the pruned and unpruned all-label searches; returns the labels
/// searched (unpruned, pruned) and how often the bogus bound changed the result.
fn compare(mlp: &Mlp, xs: ArrayView2<'_, f64>, base: &AttackConfig) -> (usize, usize, usize) {
    let crown: Arc<dyn LabelBound> = Arc::new(Crown::from_mlp(mlp).unwrap());
    let all = base.clone().with_nearest_candidates(usize::MAX).unwrap();
    let pruned = all.clone().with_label_bound(crown.clone());
    let bogus = all.clone().with_label_bound(Arc::new(Bogus));
    let (mut n_all, mut n_pruned, mut changed) = (0, 0, 0);
    let preds = mlp.predict_batch(xs).unwrap();
    for (x, &y) in xs.outer_iter().zip(&preds) {
        let a = nearest(mlp, x, y, &all);
        let p = nearest(mlp, x, y, &pruned);
        assert!(a.success(), "the unpruned search found no adversarial");
        assert_eq!(key(&a), key(&p), "pruning changed the result");
        assert!(p.labels_searched <= a.labels_searched);
        assert!(p.runs <= a.runs);
        n_all += a.labels_searched;
        n_pruned += p.labels_searched;
        let b = nearest(mlp, x, y, &bogus);
        assert_eq!(b.labels_searched, 1);
        if key(&b) != key(&a) {
            changed += 1;
        }
        // The default candidates (5 labels) with the bound: identical to them without it.
        let d = nearest(mlp, x, y, base);
        let dp = nearest(mlp, x, y, &base.clone().with_label_bound(crown.clone()));
        assert_eq!(key(&d), key(&dp));
    }
    (n_all, n_pruned, changed)
}

#[test]
fn crown_pruning_is_exact_on_mnist_models() {
    let data = Mnist::load(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/mnist"))
        .unwrap()
        .take(1000, 30)
        .unwrap();
    let (x, y) = (data.train_images.view(), &data.train_labels[..]);
    let mut sigmoid = Mlp::random(&[784, 30, 10], Activation::Sigmoid, 7).unwrap();
    sgd(&mut sigmoid, x, y, 3, 0.5, 7);
    let mut relu = Mlp::random(&[784, 20, 10], Activation::Relu, 8).unwrap();
    sgd(&mut relu, x, y, 3, 0.1, 8);
    let xs = data.test_images.slice(ndarray::s![..30, ..]);
    let cfg = AttackConfig::default();
    let mut changed_total = 0;
    for (name, mlp) in [("sigmoid", &sigmoid), ("relu", &relu)] {
        let (n_all, n_pruned, changed) = compare(mlp, xs, &cfg);
        eprintln!("{name}: labels searched {n_all} -> {n_pruned}, bogus changed {changed}");
        assert!(n_pruned < n_all, "{name}: nothing pruned");
        changed_total += changed;
    }
    // The first-ranked label is not always the nearest: skipping the others changes results.
    assert!(changed_total > 0, "the bogus bound changed nothing");
}

#[test]
fn crown_pruning_is_exact_on_toy_models_and_other_boxes() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let xs = Array2::from_shape_fn((12, 6), |_| rng.random_range(0.2..0.8));
    let (mut n_all, mut n_pruned, mut changed) = (0, 0, 0);
    for (seed, act) in [
        (1, Activation::Tanh),
        (2, Activation::Sigmoid),
        (3, Activation::Relu),
    ] {
        let mut mlp = Mlp::random(&[6, 12, 5], act, seed).unwrap();
        // Larger weights: the labels' distances differ more.
        let p = mlp.parameters() * 3.0;
        mlp.set_parameters(p.view()).unwrap();
        // The unit box (CROWN uses it) and a wider one (CROWN falls back to the ball).
        for cfg in [
            AttackConfig::default(),
            AttackConfig::default().with_box(-1.0, 2.0).unwrap(),
        ] {
            let (a, p, c) = compare(&mlp, xs.view(), &cfg);
            n_all += a;
            n_pruned += p;
            changed += c;
        }
    }
    eprintln!("toy: labels searched {n_all} -> {n_pruned}, bogus changed {changed}");
    assert!(n_pruned < n_all);
    assert!(changed > 0);
}
