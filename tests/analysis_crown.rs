//! Soundness of the CROWN certified radii: exhaustive grids of the input ball on small
//! networks (2–3 inputs, each activation), the exact hyperplane distance of linear models,
//! and, on MNIST-trained models, the distortions found by targeted attacks (every class) and
//! an independent box-projected line search.

use intriguing::analysis::{Certifier, Crown, CrownConfig, PowerIterationConfig};
use intriguing::attack::{AttackConfig, Target, find_minimal_perturbation};
use intriguing::data::Mnist;
use intriguing::models::cnn::Cnn;
use intriguing::models::{Activation, Mlp};
use intriguing::{Classifier, ClassifierExt};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, array};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::OnceLock;

/// All points of a `steps`-per-axis grid of `[0, 1]^d` (d = 2 or 3).
fn grid(d: usize, steps: usize) -> Vec<Vec<f64>> {
    let pts: Vec<f64> = (0..=steps).map(|i| i as f64 / steps as f64).collect();
    let mut out = vec![vec![]];
    for _ in 0..d {
        out = out
            .into_iter()
            .flat_map(|p| {
                pts.iter().map(move |&v| {
                    let mut q = p.clone();
                    q.push(v);
                    q
                })
            })
            .collect();
    }
    out
}

fn dist(a: &[f64], b: ArrayView1<'_, f64>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(p, q)| (p - q) * (p - q))
        .sum::<f64>()
        .sqrt()
}

/// Small random networks, every activation: no grid point inside the certified radius
/// changes the label, the margin lower bounds never exceed the sampled margins, and the
/// radius is a sizeable fraction of the grid's minimal flipping distance.
#[test]
fn small_networks_against_exhaustive_grids() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut checked = 0;
    let mut ratios = Vec::new();
    for act in [Activation::Sigmoid, Activation::Tanh, Activation::Relu] {
        for (d, sizes, steps) in [
            (2, vec![2, 6, 3], 300),
            (2, vec![2, 5, 4, 3], 300),
            (3, vec![3, 5, 4, 3], 45),
        ] {
            for seed in 0..6u64 {
                let mut mlp = Mlp::random(&sizes, act, seed * 31 + d as u64).unwrap();
                // Larger weights than Glorot's make the decision regions more curved.
                let p = mlp.parameters() * 3.0;
                mlp.set_parameters(p.view()).unwrap();
                let crown = Crown::from_mlp(&mlp).unwrap();
                let pts = grid(d, steps);
                let flat: Vec<f64> = pts.iter().flatten().copied().collect();
                let xs = Array2::from_shape_vec((pts.len(), d), flat).unwrap();
                let z = mlp.logits(xs.view()).unwrap();
                let preds = mlp.predict_batch(xs.view()).unwrap();
                for _ in 0..3 {
                    let x0 = Array1::from_shape_fn(d, |_| rng.random_range(0.05..0.95));
                    let y = crown.predict(x0.view()).unwrap();
                    let cfg = CrownConfig::new().with_per_class(true);
                    let c = crown.certify(x0.view(), y, &cfg).unwrap();
                    // Exhaustive: the closest grid point with another label (and per class).
                    let mut nearest = f64::INFINITY;
                    let mut nearest_class = [f64::INFINITY; 3];
                    for (i, p) in pts.iter().enumerate() {
                        if preds[i] != y {
                            let r = dist(p, x0.view());
                            nearest = nearest.min(r);
                            nearest_class[preds[i]] = nearest_class[preds[i]].min(r);
                            assert!(
                                r > c.untargeted,
                                "{act} {sizes:?} seed {seed}: grid point {p:?} at {r} flips \
                                 inside the certified radius {}",
                                c.untargeted
                            );
                        }
                    }
                    let pc = c.per_class.as_ref().unwrap();
                    for j in 0..3 {
                        assert!(pc[j] >= c.untargeted);
                        assert!(
                            pc[j] < nearest_class[j]
                                || (pc[j].is_infinite() && nearest_class[j].is_infinite()),
                            "{act} class {j}: {} ≥ {}",
                            pc[j],
                            nearest_class[j]
                        );
                    }
                    // Margin lower bounds at the certified radius and at twice it.
                    for eps in [c.untargeted.min(2.0), (2.0 * c.untargeted).min(2.0)] {
                        let lb = crown.margin_lower_bounds(x0.view(), y, eps, &cfg).unwrap();
                        for (i, p) in pts.iter().enumerate() {
                            if dist(p, x0.view()) <= eps {
                                for j in (0..3).filter(|&j| j != y) {
                                    let m = z[[i, y]] - z[[i, j]];
                                    assert!(
                                        lb[j] <= m + 1e-12,
                                        "{act}: bound {} > margin {m}",
                                        lb[j]
                                    );
                                }
                            }
                        }
                    }
                    if nearest.is_finite() {
                        assert!(c.untargeted > 0.0);
                        ratios.push(c.untargeted / nearest);
                    }
                    checked += 1;
                }
            }
        }
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    assert!(checked == 162 && median > 0.3, "{checked} {median}");
}

/// A linear model: the certified radius (ball only) is the exact hyperplane distance
/// `min_j (z_y − z_j) / ‖w_y − w_j‖` to 1e-9 relative, and with the box it is at least that.
#[test]
fn linear_model_reproduces_the_hyperplane_distance() {
    let mlp = Mlp::random(&[20, 5], Activation::Identity, 3).unwrap();
    let crown = Crown::from_mlp(&mlp).unwrap();
    let w = &mlp.layers()[0].weight;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let cfg = CrownConfig::new()
        .with_box(false)
        .with_rtol(1e-12)
        .unwrap()
        .with_per_class(true);
    for _ in 0..50 {
        let x = Array1::from_shape_fn(20, |_| rng.random_range(0.0..1.0));
        let z = mlp.logits(x.view().insert_axis(ndarray::Axis(0))).unwrap();
        let y = crown.predict(x.view()).unwrap();
        let c = crown.certify(x.view(), y, &cfg).unwrap();
        let pc = c.per_class.unwrap();
        let mut exact_min = f64::INFINITY;
        for j in (0..5).filter(|&j| j != y) {
            let dw = &w.row(y) - &w.row(j);
            let exact = (z[[0, y]] - z[[0, j]]) / dw.dot(&dw).sqrt();
            exact_min = exact_min.min(exact);
            assert!(
                (pc[j] - exact).abs() <= 1e-9 * exact && pc[j] <= exact,
                "{} vs {exact}",
                pc[j]
            );
        }
        assert!((c.untargeted - exact_min).abs() <= 1e-9 * exact_min);
        assert!(c.untargeted <= exact_min);
        let boxed = crown
            .certify(x.view(), y, &CrownConfig::new().with_rtol(1e-9).unwrap())
            .unwrap();
        assert!(boxed.untargeted >= exact_min * (1.0 - 1e-8));
    }
}

/// The certifier's own forward pass equals the models' logits (MLP and LeNet).
#[test]
fn forward_matches_the_models() {
    let mlp = Mlp::random(&[30, 12, 7, 4], Activation::Tanh, 5).unwrap();
    let crown = Crown::from_mlp(&mlp).unwrap();
    let x = Array2::from_shape_fn((3, 30), |(i, j)| ((i * 7 + j) % 11) as f64 / 10.0);
    let z = mlp.logits(x.view()).unwrap();
    for i in 0..3 {
        let c = crown.logits(x.row(i)).unwrap();
        for j in 0..4 {
            assert!((c[j] - z[[i, j]]).abs() <= 1e-12 * (1.0 + z[[i, j]].abs()));
        }
    }
    let net = Cnn::lenet(3, 4, 16, 2).unwrap();
    let crown = Crown::from_cnn(&net).unwrap();
    let x = Array2::from_shape_fn((2, 784), |(i, j)| ((i * 13 + j * 7) % 17) as f64 / 16.0);
    let z = net.logits(x.view()).unwrap();
    for i in 0..2 {
        let c = crown.logits(x.row(i)).unwrap();
        for j in 0..10 {
            assert!((c[j] - z[[i, j]]).abs() <= 1e-10 * (1.0 + z[[i, j]].abs()));
        }
    }
}

#[test]
fn errors_are_typed() {
    let mlp = Mlp::random(&[4, 3, 2], Activation::Relu, 1).unwrap();
    let crown = Crown::from_mlp(&mlp).unwrap();
    let cfg = CrownConfig::new();
    let x = array![0.1, 0.2, 0.3, 0.4];
    assert!(matches!(
        crown.certify(array![0.1, 0.2].view(), 0, &cfg),
        Err(intriguing::Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        crown.certify(x.view(), 2, &cfg),
        Err(intriguing::Error::LabelOutOfRange { .. })
    ));
    assert!(matches!(
        crown.certify(array![0.1, f64::NAN, 0.3, 0.4].view(), 0, &cfg),
        Err(intriguing::Error::NonFinite { .. })
    ));
    assert!(matches!(
        crown.certify(array![0.1, 1.5, 0.3, 0.4].view(), 0, &cfg),
        Err(intriguing::Error::OutOfBounds { .. })
    ));
    // Without the box, a point outside [0, 1] is fine.
    assert!(
        crown
            .certify(
                array![0.1, 1.5, 0.3, 0.4].view(),
                0,
                &cfg.clone().with_box(false)
            )
            .is_ok()
    );
    assert!(crown.margin_lower_bounds(x.view(), 0, -1.0, &cfg).is_err());
    assert!(
        crown
            .margin_lower_bounds(x.view(), 0, f64::NAN, &cfg)
            .is_err()
    );
    assert!(CrownConfig::new().with_rtol(0.0).is_err());
    assert!(CrownConfig::new().with_max_evaluations(0).is_err());
    let mut layers = mlp.layers().to_vec();
    layers.last_mut().unwrap().activation = Activation::Sigmoid;
    assert!(Crown::from_mlp(&Mlp::new(layers).unwrap()).is_err());
    // A misclassified input gets 0.
    let y = crown.predict(x.view()).unwrap();
    let c = crown.certify(x.view(), 1 - y, &cfg).unwrap();
    assert_eq!(c.untargeted, 0.0);
}

struct Fixture {
    data: Mnist,
    sigmoid: Mlp,
    tanh: Mlp,
    relu: Mlp,
    lenet: Cnn,
}

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
            .take(3000, 1000)
            .unwrap();
        let (x, y) = (data.train_images.view(), &data.train_labels[..]);
        let mut sigmoid = Mlp::random(&[784, 40, 20, 10], Activation::Sigmoid, 2).unwrap();
        sgd(&mut sigmoid, x, y, 4, 0.5, 2);
        let mut tanh = Mlp::random(&[784, 30, 10], Activation::Tanh, 3).unwrap();
        sgd(&mut tanh, x, y, 3, 0.1, 3);
        let mut relu = Mlp::random(&[784, 40, 30, 10], Activation::Relu, 4).unwrap();
        sgd(&mut relu, x, y, 3, 0.1, 4);
        let mut lenet = Cnn::lenet(3, 6, 24, 5).unwrap();
        let cfg = intriguing::models::TrainConfig::new()
            .with_momentum(0.9)
            .unwrap()
            .with_epochs(2)
            .unwrap()
            .with_batch_size(32)
            .unwrap()
            .with_learning_rate(0.02)
            .unwrap()
            .with_seed(5);
        intriguing::models::train(&mut lenet, x, y, &cfg, |_, _| {}).unwrap();
        Fixture {
            data,
            sigmoid,
            tanh,
            relu,
            lenet,
        }
    })
}

/// Upper bound on the box-constrained minimal distortion: the shortest step along
/// −∇(z_y − z_j), projected on the box, that changes the prediction (any j).
fn projected_line_search(model: &dyn Classifier, x: ArrayView1<'_, f64>, y: usize) -> f64 {
    let mut best = f64::INFINITY;
    for j in (0..model.num_classes()).filter(|&j| j != y) {
        let x2 = x.insert_axis(ndarray::Axis(0));
        let mut seed = |z: ArrayView2<'_, f64>, mut dz: ArrayViewMut2<'_, f64>| {
            dz.fill(0.0);
            dz[[0, y]] = 1.0;
            dz[[0, j]] = -1.0;
            z[[0, y]] - z[[0, j]]
        };
        let g = model
            .loss_gradient(x2, &mut seed)
            .unwrap()
            .1
            .row(0)
            .to_owned();
        let n = g.dot(&g).sqrt();
        if n == 0.0 {
            continue;
        }
        let point = |t: f64| (&x - &(&g * (t / n))).mapv(|v| v.clamp(0.0, 1.0));
        let flips = |t: f64| model.predict(point(t).view()).unwrap() != y;
        let mut hi = 0.01;
        while !flips(hi) && hi < 60.0 {
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
        let p = point(hi);
        best = best.min((&p - &x).dot(&(&p - &x)).sqrt());
    }
    best
}

/// On trained models: per-class certified radii never exceed the targeted attack's
/// distortion to that class, the untargeted one never exceeds the Nearest attack's nor the
/// projected line search; the radius is far above the Lipschitz bound for the deep models.
fn check_trained<M: Classifier + intriguing::analysis::LayerwiseLipschitz>(
    name: &str,
    model: &M,
    crown: &Crown,
    n_images: usize,
    n_targeted: usize,
    all_classes: bool,
) -> (usize, f64) {
    let f = fixture();
    let cert = Certifier::new(model, &PowerIterationConfig::default()).unwrap();
    let cfg = CrownConfig::new().with_per_class(true);
    let attack = AttackConfig::default();
    let mut compared = 0;
    let mut ratios = Vec::new();
    let mut classes_seen = [false; 10];
    let mut lip_ratios = Vec::new();
    for i in 0..n_images {
        let x = f.data.test_images.row(i);
        let y = f.data.test_labels[i];
        let c = crown.certify(x, y, &cfg).unwrap();
        if c.predicted != y {
            assert_eq!(c.untargeted, 0.0);
            continue;
        }
        assert!(c.untargeted > 0.0, "{name} {i}");
        let pc = c.per_class.as_ref().unwrap();
        let lip = cert
            .lower_bounds(model, x.insert_axis(ndarray::Axis(0)), &[y])
            .unwrap();
        lip_ratios.push(c.untargeted / lip[0].untargeted);
        let ls = projected_line_search(model, x, y);
        assert!(
            c.untargeted <= ls,
            "{name} {i}: {} > line search {ls}",
            c.untargeted
        );
        if i < n_targeted {
            for j in (0..10).filter(|&j| j != y) {
                let r = find_minimal_perturbation(model, x, Target::Label(j), &attack).unwrap();
                if let Some(adv) = r.adversarial {
                    assert!(
                        pc[j] <= adv.l2,
                        "{name} {i}: certified {} against class {j} > attack {}",
                        pc[j],
                        adv.l2
                    );
                    compared += 1;
                }
            }
        } else {
            let r = find_minimal_perturbation(model, x, Target::Nearest { true_label: y }, &attack)
                .unwrap();
            if let Some(adv) = r.adversarial {
                assert!(
                    c.untargeted <= adv.l2 && pc[adv.label] <= adv.l2,
                    "{name} {i}"
                );
                ratios.push(c.untargeted / adv.l2);
                compared += 1;
            }
        }
        classes_seen[y] = true;
    }
    assert!(
        !all_classes || classes_seen.iter().all(|&s| s),
        "{name}: every class"
    );
    lip_ratios.sort_by(f64::total_cmp);
    eprintln!(
        "{name}: {compared} comparisons, median CROWN / Lipschitz bound {:.1}",
        lip_ratios[lip_ratios.len() / 2]
    );
    ratios.sort_by(f64::total_cmp);
    (
        compared,
        ratios.get(ratios.len() / 2).copied().unwrap_or(0.0),
    )
}

#[test]
fn trained_sigmoid_mlp_never_exceeds_attacks() {
    let f = fixture();
    let crown = Crown::from_mlp(&f.sigmoid).unwrap();
    let (n, med) = check_trained("sigmoid", &f.sigmoid, &crown, 150, 20, true);
    assert!(n >= 200 && med > 0.2, "{n} {med}");
}

#[test]
fn trained_tanh_mlp_never_exceeds_attacks() {
    let f = fixture();
    let crown = Crown::from_mlp(&f.tanh).unwrap();
    let (n, med) = check_trained("tanh", &f.tanh, &crown, 150, 20, true);
    assert!(n >= 200 && med > 0.2, "{n} {med}");
}

#[test]
fn trained_relu_mlp_never_exceeds_attacks() {
    let f = fixture();
    let crown = Crown::from_mlp(&f.relu).unwrap();
    let (n, med) = check_trained("relu", &f.relu, &crown, 150, 20, true);
    assert!(n >= 200 && med > 0.1, "{n} {med}");
}

#[test]
fn trained_lenet_never_exceeds_attacks() {
    let f = fixture();
    let crown = Crown::from_cnn(&f.lenet).unwrap();
    let (n, med) = check_trained("lenet", &f.lenet, &crown, 30, 2, false);
    assert!(n >= 20 && med > 0.0, "{n} {med}");
}
