//! The attack on an FC100-100-10 trained (briefly) on MNIST: 100 test images, several
//! targets each; every adversarial is re-checked here, independently of the attack's own
//! verification.

#[path = "mnist_mlp/mod.rs"]
mod mnist_mlp;

use intriguing::ClassifierExt;
use intriguing::attack::{AttackConfig, Penalty, Target, attack_batch};
use intriguing::models::Mlp;
use ndarray::{Array2, s};
use std::sync::OnceLock;

struct Fixture {
    mlp: Mlp,
    test_images: Array2<f64>,
    test_labels: Vec<usize>,
}

/// FC100-100-10 with the preset's recipe, shortened to 3 epochs on 20 000 images.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let (mlp, mnist) = mnist_mlp::brief_fc100(20_000, 100, 7, 3);
        Fixture {
            mlp,
            test_images: mnist.test_images,
            test_labels: mnist.test_labels,
        }
    })
}

fn check_all(targets_of: impl Fn(usize, usize) -> Target, config: &AttackConfig) -> Vec<f64> {
    let f = fixture();
    let x = f.test_images.slice(s![..100, ..]);
    let preds = f.mlp.predict_batch(x).unwrap();
    let err = preds
        .iter()
        .zip(&f.test_labels)
        .filter(|(p, l)| p != l)
        .count();
    assert!(
        err <= 15,
        "the briefly trained model should mostly be right ({err}/100 wrong)"
    );
    let targets: Vec<Target> = preds
        .iter()
        .enumerate()
        .map(|(i, &p)| targets_of(i, p))
        .collect();
    let results = attack_batch(&f.mlp, x, &targets, config, 2).unwrap();
    let mut rms = Vec::new();
    for (i, (res, t)) in results.iter().zip(&targets).enumerate() {
        let res = res.as_ref().unwrap_or_else(|e| panic!("row {i}: {e}"));
        let adv = res
            .adversarial
            .as_ref()
            .unwrap_or_else(|| panic!("row {i}: {res:?}"));
        assert!(
            adv.input.iter().all(|v| (0.0..=1.0).contains(v)),
            "row {i} leaves [0, 1]"
        );
        let pred = f.mlp.predict(adv.input.view()).unwrap();
        assert!(
            t.is_reached_by(pred),
            "row {i}: {t:?} but re-classified as {pred}"
        );
        let r = &adv.input - &x.row(i);
        let l2 = r.dot(&r).sqrt();
        assert!((l2 - adv.l2).abs() < 1e-12);
        assert!((adv.rms - l2 / 28.0).abs() < 1e-12);
        rms.push(adv.rms);
    }
    rms
}

#[test]
fn every_image_reaches_each_of_three_targets() {
    for shift in [1, 4, 7] {
        let rms = check_all(
            |_, p| Target::Label((p + shift) % 10),
            &AttackConfig::default(),
        );
        let mean = rms.iter().sum::<f64>() / rms.len() as f64;
        assert!(mean > 0.0 && mean < 0.2, "mean RMS {mean}");
    }
}

#[test]
fn l2_penalty_also_reaches_every_target() {
    let cfg = AttackConfig::default().with_penalty(Penalty::L2);
    check_all(|i, p| Target::Label((p + 1 + i % 9) % 10), &cfg);
}

#[test]
fn nearest_is_no_larger_than_any_single_target_and_untargeted_succeeds() {
    let cfg = AttackConfig::default();
    let all = cfg
        .clone()
        .with_nearest_candidates(usize::MAX)
        .unwrap()
        .with_nearest_pruning(f64::INFINITY)
        .unwrap();
    let f = fixture();
    let near = check_all(|_, p| Target::Nearest { true_label: p }, &all);
    // The default searches only the 5 labels with the smallest linearised distance, and
    // prunes labels 10% behind after bracketing.
    let near3 = check_all(|_, p| Target::Nearest { true_label: p }, &cfg);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        mean(&near3) <= 1.02 * mean(&near),
        "{} vs {}",
        mean(&near3),
        mean(&near)
    );
    check_all(|_, p| Target::Untargeted { true_label: p }, &cfg);
    // Nearest searches every label; for a handful of images, compare with each label.
    for (i, &near_i) in near.iter().enumerate().take(5) {
        let x = f.test_images.row(i);
        let p = f.mlp.predict(x).unwrap();
        for l in (0..10).filter(|&l| l != p) {
            let r =
                intriguing::attack::find_minimal_perturbation(&f.mlp, x, Target::Label(l), &cfg)
                    .unwrap();
            let rms = r.rms().unwrap();
            assert!(
                near_i <= rms * 1.05,
                "image {i}: nearest {near_i} > label {l} {rms}"
            );
        }
    }
}
