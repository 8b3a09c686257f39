//! DeepFool, FGSM, PGD and the robust-accuracy curves on affine models, against closed forms;
//! bad input as typed errors.

#[path = "attack_models/mod.rs"]
mod attack_models;

use attack_models::{Linear, NanOutside, PanicsOnRow};
use intriguing::Error;
use intriguing::attack::{
    BoundedAttack, DeepFoolConfig, FgsmConfig, MinimalDistortions, Norm, PgdConfig, RowResult,
    bounded_accuracy_curve, deepfool, fgsm, pgd,
};
use intriguing::optim::Bounds;
use ndarray::{Array1, Array2, ArrayView1, array};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::AtomicUsize;

fn ok(r: &intriguing::Result<RowResult>) -> &RowResult {
    r.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

fn random_linear(classes: usize, dim: usize, seed: u64) -> Linear {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Linear {
        w: Array2::from_shape_simple_fn((classes, dim), || rng.random_range(-1.0..1.0)),
        b: Array1::from_shape_simple_fn(classes, || rng.random_range(-0.2..0.2)),
    }
}

fn logits(m: &Linear, x: ArrayView1<'_, f64>) -> Array1<f64> {
    m.w.dot(&x) + &m.b
}

fn argmax(v: &Array1<f64>) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

/// Closed form for an affine model without an active box: the distance to the nearest
/// pairwise boundary `min_k |z_k − z_y| / ‖w_k − w_y‖_q` and the minimising class.
fn nearest_boundary(m: &Linear, x: ArrayView1<'_, f64>, y: usize, q: Norm) -> (f64, usize) {
    let z = logits(m, x);
    (0..m.w.nrows())
        .filter(|&k| k != y)
        .map(|k| {
            let w = &m.w.row(k) - &m.w.row(y);
            let qn = match q {
                Norm::L2 => w.dot(&w).sqrt(),
                Norm::Linf => w.iter().map(|v| v.abs()).sum(),
            };
            ((z[k] - z[y]).abs() / qn, k)
        })
        .fold((f64::INFINITY, 0), |a, b| if b.0 < a.0 { b } else { a })
}

#[test]
fn deepfool_is_exact_in_one_step_for_a_two_class_linear_model() {
    let m = Linear::two_class(array![0.6, -0.8, 0.0], 0.1);
    let x = array![[0.2, 0.6, 0.5]]; // w·x + b = −0.26: class 0, distance 0.26 (‖w‖ = 1)
    let cfg = DeepFoolConfig::default()
        .with_box(-10.0, 10.0)
        .unwrap()
        .with_overshoot(0.0)
        .unwrap()
        .with_max_iterations(1)
        .unwrap();
    let res = deepfool(&m, x.view(), &[0], &cfg, 1).unwrap();
    let r = ok(&res[0]);
    assert_eq!(r.iterations, 1);
    // x − f/‖w‖² · w with f = −0.26: exactly onto the hyperplane.
    let expected = array![0.2 + 0.26 * 0.6, 0.6 - 0.26 * 0.8, 0.5];
    for (a, b) in r.last_iterate.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-12, "{} vs {expected}", r.last_iterate);
    }
    let f = r.last_iterate.dot(&array![0.6, -0.8, 0.0]) + 0.1;
    assert!(f.abs() < 1e-12, "on the boundary: {f}");

    // With an overshoot the same single step crosses: ‖r‖ = (1 + η) · 0.26.
    let cfg = cfg.with_overshoot(1e-6).unwrap();
    let res = deepfool(&m, x.view(), &[0], &cfg, 1).unwrap();
    let r = ok(&res[0]);
    let adv = r.adversarial.as_ref().expect("crosses");
    assert_eq!((r.iterations, adv.label), (1, 1));
    assert!((adv.l2 - 0.26 * (1.0 + 1e-6)).abs() < 1e-12, "{}", adv.l2);
}

#[test]
fn deepfool_multiclass_affine_matches_the_nearest_boundary_in_l2_and_linf() {
    let m = random_linear(5, 8, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let x = Array2::from_shape_simple_fn((30, 8), || rng.random_range(-1.0..1.0));
    let labels: Vec<usize> = x
        .rows()
        .into_iter()
        .map(|r| argmax(&logits(&m, r)))
        .collect();
    for norm in [Norm::L2, Norm::Linf] {
        let eta = 1e-4;
        let cfg = DeepFoolConfig::default()
            .with_norm(norm)
            .with_box(-1e3, 1e3)
            .unwrap()
            .with_overshoot(eta)
            .unwrap();
        let res = deepfool(&m, x.view(), &labels, &cfg, 2).unwrap();
        for (i, r) in res.iter().enumerate() {
            let r = ok(r);
            let (d, k) = nearest_boundary(&m, x.row(i), labels[i], norm);
            let adv = r.adversarial.as_ref().expect("affine: always reachable");
            assert_eq!(r.iterations, 1, "row {i}: one step for an affine model");
            assert_eq!(adv.label, k, "row {i}");
            let got = norm.of(adv.perturbation.view());
            assert!(
                (got - (1.0 + eta) * d).abs() < 1e-9 * d.max(1.0),
                "row {i} {norm:?}: {got} vs {d}"
            );
            // Independent re-check of the verification.
            assert_eq!(argmax(&logits(&m, adv.input.view())), k);
        }
    }
}

#[test]
fn deepfool_respects_the_box_and_masking_finds_the_face_step() {
    // w = (1, 1), b = −1.5; x = (1, 0.2): f = −0.3, the ascent direction w points out of the
    // box in coordinate 0. On the face x₀ = 1 the exact step is (0, 0.3).
    let m = Linear::two_class(array![1.0, 1.0], -1.5);
    let x = array![[1.0, 0.2]];
    let cfg = DeepFoolConfig::default().with_overshoot(1e-6).unwrap();
    let masked = deepfool(&m, x.view(), &[0], &cfg, 1).unwrap();
    let r = ok(&masked[0]);
    let adv = r.adversarial.as_ref().unwrap();
    assert_eq!(r.iterations, 1);
    assert!((adv.perturbation[0]).abs() == 0.0);
    assert!((adv.perturbation[1] - 0.3 * (1.0 + 1e-6)).abs() < 1e-12);

    // Clipping alone: each step loses the blocked half, the gap to the boundary halves per
    // step and the 2 % overshoot crosses it after a few steps.
    let plain = DeepFoolConfig::default().with_box_masking(false);
    let clipped = deepfool(&m, x.view(), &[0], &plain, 1).unwrap();
    let r2 = ok(&clipped[0]);
    let adv2 = r2
        .adversarial
        .as_ref()
        .expect("clipping alone also gets there");
    assert!(r2.iterations > 1, "clipping wastes the first step");
    assert!(adv2.input.iter().all(|v| (0.0..=1.0).contains(v)));
    assert_eq!(adv2.input[0], 1.0);
    assert!(adv2.l2 >= 0.3, "0.3 is the minimum inside the box");
}

#[test]
fn deepfool_returns_misclassified_inputs_at_zero() {
    let m = Linear::two_class(array![1.0, 0.0], 0.0);
    let x = array![[0.5, 0.5]]; // class 1
    let res = deepfool(&m, x.view(), &[0], &DeepFoolConfig::default(), 1).unwrap();
    let r = ok(&res[0]);
    assert!(r.already_adversarial && r.success());
    assert_eq!((r.iterations, r.gradient_evaluations), (0, 0));
    assert_eq!(r.distortion(Norm::L2), Some(0.0));
}

#[test]
fn fgsm_on_a_linear_model_is_the_sign_step() {
    let m = random_linear(4, 6, 9);
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let x = Array2::from_shape_simple_fn((20, 6), || rng.random_range(0.3..0.7));
    let labels: Vec<usize> = x
        .rows()
        .into_iter()
        .map(|r| argmax(&logits(&m, r)))
        .collect();
    let eps = 0.05;
    for norm in [Norm::Linf, Norm::L2] {
        let cfg = FgsmConfig::default().with_norm(norm);
        let res = fgsm(&m, x.view(), &labels, eps, &cfg, 1).unwrap();
        for (i, r) in res.iter().enumerate() {
            let r = ok(r);
            // ∇ₓ CE = Σ_j (p_j − [j = y]) w_j, computed here independently.
            let z = logits(&m, x.row(i));
            let mx = z.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            let e = z.mapv(|v| (v - mx).exp());
            let p = &e / e.sum();
            let mut g = Array1::<f64>::zeros(6);
            for j in 0..4 {
                let c = p[j] - f64::from(u8::from(j == labels[i]));
                g.scaled_add(c, &m.w.row(j));
            }
            let step = match norm {
                Norm::Linf => g.mapv(|v| eps * v.signum()),
                Norm::L2 => &g * (eps / g.dot(&g).sqrt()),
            };
            let expected = &x.row(i) + &step; // inside [0, 1]: no clipping
            for (a, b) in r.last_iterate.iter().zip(&expected) {
                assert!((a - b).abs() < 1e-12, "row {i} {norm:?}");
            }
            let fooled = argmax(&logits(&m, expected.view())) != labels[i];
            assert_eq!(r.success(), fooled, "row {i} {norm:?}");
            assert_eq!(r.gradient_evaluations, 1);
        }
    }
}

#[test]
fn pgd_with_a_large_epsilon_reaches_the_corner_sign_w_points_to() {
    let w = array![0.5, -1.0, 2.0, -0.3];
    let m = Linear::two_class(w.clone(), -2.0);
    let x = array![[0.5, 0.5, 0.5, 0.5]]; // w·x + b = −1.4: class 0
    let corner = w.mapv(|v| if v > 0.0 { 1.0 } else { 0.0 });
    for norm in [Norm::Linf, Norm::L2] {
        for random_start in [false, true] {
            let cfg = PgdConfig::default()
                .with_norm(norm)
                .with_early_stop(false)
                .with_random_start(random_start)
                .with_seed(5);
            let res = pgd(&m, x.view(), &[0], 10.0, &cfg, 1).unwrap();
            let r = ok(&res[0]);
            assert_eq!(r.last_iterate, corner, "{norm:?} start {random_start}");
            assert!(r.success());
            assert_eq!(r.adversarial.as_ref().unwrap().input, corner);
            assert_eq!(r.iterations, 40);
        }
    }
}

#[test]
fn pgd_stays_within_epsilon_and_is_deterministic_whatever_the_threads() {
    let m = random_linear(3, 10, 21);
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    let x = Array2::from_shape_simple_fn((70, 10), || rng.random_range(0.0..1.0));
    let labels: Vec<usize> = x
        .rows()
        .into_iter()
        .map(|r| argmax(&logits(&m, r)))
        .collect();
    for norm in [Norm::Linf, Norm::L2] {
        let eps = 0.08;
        let cfg = PgdConfig::default()
            .with_norm(norm)
            .with_seed(3)
            .with_early_stop(false);
        let a = pgd(&m, x.view(), &labels, eps, &cfg, 1).unwrap();
        let b = pgd(&m, x.view(), &labels, eps, &cfg, 3).unwrap();
        // One tiny step: the last iterate is (almost) the random start.
        let short = cfg
            .clone()
            .with_steps(1)
            .unwrap()
            .with_relative_step(1e-3)
            .unwrap();
        let c = pgd(&m, x.view(), &labels, eps, &short.clone().with_seed(4), 2).unwrap();
        let d = pgd(&m, x.view(), &labels, eps, &short, 2).unwrap();
        let mut successes = 0;
        let mut differ = 0;
        for i in 0..70 {
            let (ra, rb, rc, rd) = (ok(&a[i]), ok(&b[i]), ok(&c[i]), ok(&d[i]));
            assert_eq!(ra, rb, "row {i}: thread count changed the result");
            if rd.last_iterate != rc.last_iterate {
                differ += 1;
            }
            assert!(norm.of((&ra.last_iterate - &x.row(i)).view()) <= eps * (1.0 + 1e-12));
            assert!(ra.last_iterate.iter().all(|v| (0.0..=1.0).contains(v)));
            if let Some(adv) = &ra.adversarial {
                successes += 1;
                assert!(norm.of(adv.perturbation.view()) <= eps * (1.0 + 1e-12));
                assert_ne!(argmax(&logits(&m, adv.input.view())), labels[i]);
            }
        }
        assert!(differ > 60, "another seed, other random starts ({differ})");
        assert!(successes > 0 && successes < 70, "{norm:?}: {successes}");
    }
}

#[test]
fn robust_curves_agree_with_the_closed_form_on_a_two_class_linear_model() {
    // For a two-class affine model with an inactive box, the minimal L∞ distortion is
    // |f| / ‖w‖₁ and FGSM (the sign step) is optimal: the FGSM curve, the DeepFool-L∞ curve and
    // the closed form agree at every ε away from the distortions themselves.
    let w = array![0.4, -0.7, 0.2, 0.9];
    let m = Linear::two_class(w.clone(), 0.05);
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let x = Array2::from_shape_simple_fn((60, 4), || rng.random_range(-0.5..0.5));
    let labels: Vec<usize> = (0..60).map(|i| i % 2).collect(); // half misclassified
    let w1: f64 = w.iter().map(|v| v.abs()).sum();
    let exact: Vec<Option<f64>> = (0..60)
        .map(|i| {
            let f = w.dot(&x.row(i)) + 0.05;
            let pred = usize::from(f > 0.0);
            Some(if pred != labels[i] { 0.0 } else { f.abs() / w1 })
        })
        .collect();
    let exact = MinimalDistortions::new(&exact).unwrap();
    let grid: Vec<f64> = (0..25).map(|k| 0.013 * k as f64 + 0.0005).collect();
    let fgsm_cfg = FgsmConfig::default().with_box(-10.0, 10.0).unwrap();
    let fg = bounded_accuracy_curve(
        &m,
        x.view(),
        &labels,
        &BoundedAttack::Fgsm(fgsm_cfg),
        &grid,
        2,
    )
    .unwrap();
    let df_cfg = DeepFoolConfig::default()
        .with_norm(Norm::Linf)
        .with_box(-10.0, 10.0)
        .unwrap()
        .with_overshoot(1e-9)
        .unwrap();
    let df: Vec<RowResult> = deepfool(&m, x.view(), &labels, &df_cfg, 1)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let df = MinimalDistortions::from_rows(&df, Norm::Linf).unwrap();
    assert_eq!(fg, exact.curve(&grid).unwrap());
    assert_eq!(df.curve(&grid).unwrap(), exact.curve(&grid).unwrap());
    assert!((exact.accuracy(0.0) - 0.5).abs() < 0.2); // sanity: the labels are mixed
    assert!(exact.accuracy(10.0) == 0.0);
}

// ---- bad input ---------------------------------------------------------------------------

#[test]
fn bad_rows_are_typed_errors_in_their_own_slot() {
    let m = Linear::two_class(array![1.0, -1.0], 0.0);
    let x = array![[0.7, 0.3], [f64::NAN, 0.1], [1.5, 0.2], [0.6, 0.4]];
    let labels = [0, 0, 0, 7];
    let df = deepfool(&m, x.view(), &labels, &DeepFoolConfig::default(), 2).unwrap();
    let fg = fgsm(&m, x.view(), &labels, 0.1, &FgsmConfig::default(), 2).unwrap();
    let pg = pgd(&m, x.view(), &labels, 0.1, &PgdConfig::default(), 2).unwrap();
    for res in [&df, &fg, &pg] {
        assert!(res[0].is_ok());
        assert!(matches!(res[1], Err(Error::NonFinite { index: 0, .. })));
        assert!(matches!(res[2], Err(Error::OutOfBounds { index: 0, .. })));
        assert!(matches!(
            res[3],
            Err(Error::LabelOutOfRange {
                label: 7,
                num_classes: 2
            })
        ));
    }
}

#[test]
fn bad_batches_and_parameters_are_typed_errors() {
    let m = Linear::two_class(array![1.0, -1.0], 0.0);
    let x = array![[0.7, 0.3]];
    let df = DeepFoolConfig::default();
    assert!(matches!(
        deepfool(&m, array![[0.1, 0.2, 0.3]].view(), &[0], &df, 1),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        deepfool(&m, x.view(), &[0, 1], &df, 1),
        Err(Error::ShapeMismatch { .. })
    ));
    // Invalid settings: the error names the parameter (a configuration error, not a shape,
    // data or model error).
    fn names<T: std::fmt::Debug>(r: intriguing::Result<T>, name: &str) {
        match r {
            Err(
                e @ (Error::ShapeMismatch { .. }
                | Error::NonFinite { .. }
                | Error::OutOfBounds { .. }
                | Error::LabelOutOfRange { .. }
                | Error::ModelNonFinite { .. }
                | Error::ModelPanicked { .. }),
            ) => panic!("{name}: not a parameter error: {e}"),
            Err(e) => assert!(e.to_string().contains(name), "{e}"),
            Ok(v) => panic!("{name}: accepted: {v:?}"),
        }
    }
    names(deepfool(&m, x.view(), &[0], &df, 0), "threads");
    for eps in [-0.1, f64::NAN, f64::INFINITY] {
        names(
            fgsm(&m, x.view(), &[0], eps, &FgsmConfig::default(), 1),
            "epsilon",
        );
        names(
            pgd(&m, x.view(), &[0], eps, &PgdConfig::default(), 1),
            "epsilon",
        );
    }
    names(PgdConfig::default().with_steps(0), "steps");
    names(DeepFoolConfig::default().with_overshoot(-0.1), "overshoot");
    names(
        DeepFoolConfig::default().with_max_iterations(0),
        "max_iterations",
    );
    assert!(PgdConfig::default().with_steps(0).is_err());
    assert!(PgdConfig::default().with_relative_step(f64::NAN).is_err());
    assert!(DeepFoolConfig::default().with_overshoot(-0.1).is_err());
    assert!(DeepFoolConfig::default().with_max_iterations(0).is_err());
    assert!(DeepFoolConfig::default().with_candidates(0).is_err());
    assert!(DeepFoolConfig::default().with_box(f64::NAN, 1.0).is_err());
    assert!(FgsmConfig::default().with_box(1.0, 0.0).is_err());
    assert!(matches!(
        Bounds::new(vec![0.0], vec![1.0, 1.0]),
        Err(Error::ShapeMismatch { .. })
    ));
    // Per-coordinate bounds of the wrong length for the model.
    let cfg =
        DeepFoolConfig::default().with_bounds(Bounds::new(vec![0.0; 3], vec![1.0; 3]).unwrap());
    assert!(matches!(
        deepfool(&m, x.view(), &[0], &cfg, 1),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        MinimalDistortions::new(&[Some(f64::NAN)]),
        Err(Error::NonFinite { .. })
    ));
    assert!(MinimalDistortions::new(&[]).is_err());
    let d = MinimalDistortions::new(&[Some(1.0)]).unwrap();
    assert!(d.curve(&[-1.0]).is_err());
}

#[test]
fn a_model_returning_nan_or_panicking_fails_only_its_rows() {
    let inner = Linear::two_class(array![1.0, -1.0], 0.0);
    let nan = NanOutside {
        inner: inner.clone(),
        center: array![0.0, 0.0],
        radius: 0.0,
    };
    let x = array![[0.3, 0.7], [0.4, 0.6]];
    for res in [
        deepfool(&nan, x.view(), &[0, 0], &DeepFoolConfig::default(), 1).unwrap(),
        fgsm(&nan, x.view(), &[0, 0], 0.1, &FgsmConfig::default(), 1).unwrap(),
        pgd(&nan, x.view(), &[0, 0], 0.1, &PgdConfig::default(), 1).unwrap(),
    ] {
        for r in &res {
            assert!(matches!(r, Err(Error::ModelNonFinite { .. })), "{r:?}");
        }
    }
    // Panics on gradient rows whose first coordinate is 0.6: row 1 only.
    let panicky = PanicsOnRow {
        inner,
        trigger: 0.6,
        calls: AtomicUsize::new(0),
    };
    let x = array![[0.3, 0.7], [0.6, 0.9], [0.1, 0.8]]; // class 0 (x₀ < x₁)
    let cfg = PgdConfig::default().with_random_start(false);
    for res in [
        deepfool(&panicky, x.view(), &[0; 3], &DeepFoolConfig::default(), 2).unwrap(),
        fgsm(&panicky, x.view(), &[0; 3], 0.5, &FgsmConfig::default(), 1).unwrap(),
        pgd(&panicky, x.view(), &[0; 3], 0.5, &cfg, 1).unwrap(),
    ] {
        assert!(res[0].as_ref().unwrap().success());
        assert!(
            matches!(res[1], Err(Error::ModelPanicked { row: 1, .. })),
            "{:?}",
            res[1]
        );
        assert!(res[2].is_ok());
    }
}

#[test]
fn carlini_wagner_margin_loss_closed_forms_and_a_linear_attack() {
    use intriguing::attack::{AttackConfig, AttackLoss, Target, find_minimal_perturbation};
    let z = array![0.3, 1.2, -0.5];
    let margin = AttackLoss::Margin { kappa: 0.5 };
    let mut g = Array1::zeros(3);
    // Targeted t = 0: max_{j≠0} z_j − z_0 = 0.9, gradient e₁ − e₀.
    let v = margin
        .evaluate(Target::Label(0), z.view(), g.view_mut())
        .unwrap();
    assert!((v - 0.9).abs() < 1e-15);
    assert_eq!(g, array![-1.0, 1.0, 0.0]);
    // Untargeted y = 1: z_1 − max_{j≠1} z_j = 0.9, gradient e₁ − e₀.
    let v = margin
        .evaluate(Target::Untargeted { true_label: 1 }, z.view(), g.view_mut())
        .unwrap();
    assert!((v - 0.9).abs() < 1e-15);
    assert_eq!(g, array![-1.0, 1.0, 0.0]);
    // Reached by more than κ: the loss is flat at −κ.
    let v = margin
        .evaluate(Target::Label(1), z.view(), g.view_mut())
        .unwrap();
    assert_eq!((v, g.clone()), (-0.5, array![0.0, 0.0, 0.0]));
    // Cross-entropy is unchanged through loss_with.
    let mut g2 = Array1::zeros(3);
    let ce = intriguing::classifier::softmax_cross_entropy(z.view(), 2, g2.view_mut());
    let ce2 = AttackLoss::CrossEntropy
        .evaluate(Target::Label(2), z.view(), g.view_mut())
        .unwrap();
    assert_eq!((ce, g2), (ce2, g.clone()));
    assert!(
        AttackConfig::default()
            .with_loss(AttackLoss::Margin { kappa: -1.0 })
            .is_err()
    );
    assert!(
        AttackConfig::default()
            .with_loss(AttackLoss::Margin { kappa: f64::NAN })
            .is_err()
    );

    // The paper's attack with the margin loss on a two-class linear model: the closed form
    // |w·x + b| / ‖w‖ = 0.26 from above, within 1 %.
    let m = Linear::two_class(array![0.6, -0.8, 0.0], 0.1);
    let x = array![0.2, 0.6, 0.5];
    for kappa in [0.0, 0.01] {
        let cfg = AttackConfig::default()
            .with_loss(AttackLoss::Margin { kappa })
            .unwrap();
        let r = find_minimal_perturbation(&m, x.view(), Target::Label(1), &cfg).unwrap();
        let adv = r.adversarial.as_ref().expect("reachable");
        assert_eq!(argmax(&logits(&m, adv.input.view())), 1);
        assert!(
            adv.l2 >= 0.26 * (1.0 - 1e-9) && adv.l2 <= 0.26 * 1.01,
            "κ {kappa}: {}",
            adv.l2
        );
    }
}
