//! Certified lower bounds against the exact hyperplane distance of linear models, against the
//! distortions the attack (`find_minimal_perturbation`) finds, and against an independent
//! line search along the logit-difference gradient; LeNet training on an MNIST subset.

use intriguing::analysis::{Certifier, LayerwiseLipschitz, PowerIterationConfig};
use intriguing::attack::{AttackConfig, Target, find_minimal_perturbation};
use intriguing::data::Mnist;
use intriguing::models::cnn::Cnn;
use intriguing::models::{Activation, Mlp, Optimizer, TrainConfig, train};
use intriguing::{Classifier, ClassifierExt};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, s};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::sync::OnceLock;

struct Fixture {
    data: Mnist,
    linear: Mlp,
    sigmoid: Mlp,
    relu: Mlp,
    lenet: Cnn,
    lenet_test_error: f64,
}

/// Plain minibatch SGD on an MLP (a test-local trainer: independent of models::train).
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

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let data = Mnist::load(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/mnist"))
            .unwrap()
            .take(4000, 1000)
            .unwrap();
        let (x, y) = (data.train_images.view(), &data.train_labels[..]);
        let mut linear = Mlp::random(&[784, 10], Activation::Identity, 1).unwrap();
        sgd(&mut linear, x, y, 3, 0.1, 1);
        let mut sigmoid = Mlp::random(&[784, 40, 10], Activation::Sigmoid, 2).unwrap();
        sgd(&mut sigmoid, x, y, 4, 0.5, 2);
        let mut relu = Mlp::random(&[784, 40, 30, 10], Activation::Relu, 3).unwrap();
        sgd(&mut relu, x, y, 3, 0.1, 3);
        let mut lenet = Cnn::lenet(6, 16, 64, 4).unwrap();
        let cfg = TrainConfig::new()
            .with_optimizer(Optimizer::Sgd { momentum: 0.9 })
            .unwrap()
            .with_epochs(2)
            .unwrap()
            .with_batch_size(32)
            .unwrap()
            .with_learning_rate(0.02)
            .unwrap()
            .with_seed(4);
        train(&mut lenet, x, y, &cfg, |_, _| {}).unwrap();
        let lenet_test_error = lenet
            .error_rate(data.test_images.view(), &data.test_labels)
            .unwrap();
        Fixture {
            data,
            linear,
            sigmoid,
            relu,
            lenet,
            lenet_test_error,
        }
    })
}

#[test]
fn lenet_trains_to_a_sensible_accuracy() {
    let f = fixture();
    // 2 epochs on 4000 examples: well below the 90% error of chance.
    assert!(
        f.lenet_test_error < 0.08,
        "LeNet test error {}",
        f.lenet_test_error
    );
}

#[test]
fn linear_model_bound_is_the_exact_hyperplane_distance() {
    let f = fixture();
    let cfg = PowerIterationConfig::default();
    let cert = Certifier::new(&f.linear, &cfg).unwrap();
    assert!((cert.penultimate_lipschitz() - 1.0).abs() < 1e-8);
    let (w, b) = f.linear.logit_layer().unwrap();
    let x = f.data.test_images.slice(s![..200, ..]);
    let labels = &f.data.test_labels[..200];
    let bounds = cert.lower_bounds(&f.linear, x, labels).unwrap();
    for (i, cb) in bounds.iter().enumerate() {
        let y = cb.label;
        let z = w.dot(&x.row(i)) + b;
        for j in (0..10).filter(|&j| j != y) {
            let d = (&w.row(y) - &w.row(j)).mapv(|v| v * v).sum().sqrt();
            let exact = ((z[y] - z[j]) / d).max(0.0);
            let got = cb.per_class[j];
            assert!(
                (got - exact).abs() <= 1e-8 * exact.max(1e-12),
                "example {i}, class {j}: {got} vs closed form {exact}"
            );
            // Tight: stepping just past the bound along (w_j − w_y) reaches class j.
            if exact > 0.0 {
                let dir = (&w.row(j) - &w.row(y)) / d;
                let xp = &x.row(i) + &(&dir * (exact * (1.0 + 1e-6)));
                let zp = w.dot(&xp) + b;
                assert!(zp[j] >= zp[y]);
            }
        }
        assert_eq!(cb.per_class[y], f64::INFINITY);
        // ‖w_y − w_j‖ ≤ √2‖W‖: the row-difference bound is never below the naive one.
        assert!(cb.untargeted_naive <= cb.untargeted * (1.0 + 1e-12));
    }
}

/// Gradient of z_y − z_j at x.
fn margin_gradient(
    model: &dyn Classifier,
    x: ArrayView1<'_, f64>,
    y: usize,
    j: usize,
) -> Array1<f64> {
    let x2 = x.insert_axis(ndarray::Axis(0));
    let mut seed = |z: ArrayView2<'_, f64>, mut dz: ArrayViewMut2<'_, f64>| {
        dz.fill(0.0);
        dz[[0, y]] = 1.0;
        dz[[0, j]] = -1.0;
        z[[0, y]] - z[[0, j]]
    };
    model
        .loss_gradient(x2, &mut seed)
        .unwrap()
        .1
        .row(0)
        .to_owned()
}

/// An independent upper bound: the shortest step along −∇(z_y − z_j) (any j, no box) that
/// changes the prediction, by doubling then bisection. `None` if nothing flips within 50.
fn line_search_upper_bound(
    model: &dyn Classifier,
    x: ArrayView1<'_, f64>,
    y: usize,
) -> Option<f64> {
    let mut best: Option<f64> = None;
    for j in (0..model.num_classes()).filter(|&j| j != y) {
        let g = margin_gradient(model, x, y, j);
        let n = g.dot(&g).sqrt();
        if n == 0.0 {
            continue;
        }
        let d = -&g / n;
        let flips = |t: f64| model.predict((&x + &(&d * t)).view()).unwrap() != y;
        let mut hi = 0.01;
        while !flips(hi) && hi < 50.0 {
            hi *= 2.0;
        }
        if !flips(hi) {
            continue;
        }
        let mut lo = 0.0;
        for _ in 0..40 {
            let mid = 0.5 * (lo + hi);
            if flips(mid) { hi = mid } else { lo = mid }
        }
        best = Some(best.map_or(hi, |b: f64| b.min(hi)));
    }
    best
}

fn check_model<M: LayerwiseLipschitz>(
    name: &str,
    model: &M,
    n_line: usize,
    n_attack: usize,
) -> (usize, usize) {
    let f = fixture();
    let cert = Certifier::new(model, &PowerIterationConfig::default()).unwrap();
    let x = f.data.test_images.slice(s![..n_line, ..]);
    let labels = &f.data.test_labels[..n_line];
    let bounds = cert.lower_bounds(model, x, labels).unwrap();
    let (mut line_checked, mut attack_checked) = (0, 0);
    let attack_cfg = AttackConfig::default();
    for (i, cb) in bounds.iter().enumerate() {
        if cb.predicted != cb.label {
            assert_eq!(
                cb.untargeted, 0.0,
                "{name}: misclassified example {i} must get 0"
            );
            continue;
        }
        assert!(cb.untargeted > 0.0);
        if let Some(ub) = line_search_upper_bound(model, x.row(i), cb.label) {
            assert!(
                cb.untargeted <= ub,
                "{name} example {i}: lower {} > line-search upper {ub}",
                cb.untargeted
            );
            line_checked += 1;
        }
        if attack_checked < n_attack {
            let r = find_minimal_perturbation(
                model,
                x.row(i),
                Target::Untargeted {
                    true_label: cb.label,
                },
                &attack_cfg,
            )
            .unwrap();
            if let Some(adv) = r.adversarial {
                // The adversarial reached class adv.label, so z_label ≥ z_y there: the bound
                // for that very class must not exceed the distortion.
                assert!(
                    cb.per_class[adv.label] <= adv.l2,
                    "{name} example {i}: lower bound {} for class {} > attack distortion {}",
                    cb.per_class[adv.label],
                    adv.label,
                    adv.l2
                );
                assert!(cb.untargeted <= adv.l2);
                attack_checked += 1;
            }
        }
    }
    (line_checked, attack_checked)
}

#[test]
fn bounds_never_exceed_found_distortions_linear() {
    let (l, a) = check_model("linear", &fixture().linear, 100, 20);
    assert!(l >= 80 && a >= 15, "{l} {a}");
}

#[test]
fn bounds_never_exceed_found_distortions_sigmoid_mlp() {
    let (l, a) = check_model("sigmoid", &fixture().sigmoid, 100, 20);
    assert!(l >= 80 && a >= 15, "{l} {a}");
}

#[test]
fn bounds_never_exceed_found_distortions_relu_mlp() {
    let (l, a) = check_model("relu", &fixture().relu, 100, 20);
    assert!(l >= 80 && a >= 15, "{l} {a}");
}

#[test]
fn bounds_never_exceed_found_distortions_lenet() {
    let (l, a) = check_model("lenet", &fixture().lenet, 40, 4);
    assert!(l >= 30 && a >= 3, "{l} {a}");
}

#[test]
fn certifier_errors() {
    let f = fixture();
    let cert = Certifier::new(&f.sigmoid, &PowerIterationConfig::default()).unwrap();
    let x = Array2::<f64>::zeros((2, 784));
    assert!(cert.lower_bounds(&f.sigmoid, x.view(), &[0]).is_err());
    assert!(cert.lower_bounds(&f.sigmoid, x.view(), &[0, 10]).is_err());
    assert!(
        cert.lower_bounds(
            &f.sigmoid,
            Array2::from_elem((1, 784), f64::NAN).view(),
            &[0]
        )
        .is_err()
    );
    // A model whose last layer has an activation cannot be certified this way.
    let mut layers = f.sigmoid.layers().to_vec();
    layers.last_mut().unwrap().activation = Activation::Sigmoid;
    let squashed = Mlp::new(layers).unwrap();
    assert!(Certifier::new(&squashed, &PowerIterationConfig::default()).is_err());
}

#[test]
fn distortion_brackets_pair_bounds_with_the_attack() {
    use intriguing::analysis::distortion_brackets;
    let f = fixture();
    let cert = Certifier::new(&f.relu, &PowerIterationConfig::default()).unwrap();
    let x = f.data.test_images.slice(s![..12, ..]);
    let y = &f.data.test_labels[..12];
    let b = distortion_brackets(&f.relu, &cert, x, y, &AttackConfig::default()).unwrap();
    assert_eq!(b.len(), 12);
    let pred = f.relu.predict_batch(x).unwrap();
    let mut succeeded = 0;
    for (i, br) in b.iter().enumerate() {
        assert_eq!(br.label, y[i]);
        if pred[i] != y[i] {
            // Already misclassified: both ends of the bracket are 0.
            assert_eq!(br.certified.untargeted, 0.0);
            assert_eq!(br.upper, Some(0.0));
            continue;
        }
        if let Some(u) = br.upper {
            succeeded += 1;
            let ratio = br.ratio().unwrap();
            assert!(ratio > 0.0 && ratio <= 1.0, "{ratio}");
            assert!(br.certified.per_class[br.reached.unwrap()] <= u);
            let xn = x.row(i).dot(&x.row(i)).sqrt();
            assert!((br.relative.unwrap() - u / xn).abs() < 1e-12);
        }
    }
    assert!(succeeded >= 8);
}
