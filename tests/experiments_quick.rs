//! The quick mode of the paper's MNIST experiments, end to end through the library, with the
//! qualitative results that must hold:
//!
//! - every attacked example is turned (verified here by re-classifying it) or reported as
//!   failed with a reason;
//! - the diagonal of the transfer tables is 100 %;
//! - Gaussian noise of stddev 0.1 turns far fewer examples than adversarial examples of
//!   smaller RMS distortion;
//! - FC10(1) needs more distortion than FC10(1e-4) (the paper's ordering);
//! - the trained-weights cache round-trips.
//!
//! The models are trained once per test binary (`OnceLock`), on 10 000 / 5 000 images for a
//! few epochs.

use intriguing::data::{Mnist, subset};
use intriguing::experiments::{
    AdversarialSet, ExperimentConfig, ExperimentData, NamedModel, Scale, Table1Row, TrainedModel,
    cross_training_models, gaussian_noise_set, linear_min_rms, magnify_set, table1, table1_models,
    table1_sample, table3, train_or_load, transfer_table,
};
use intriguing::{Classifier, ClassifierExt};
use std::sync::OnceLock;

struct Quick {
    cfg: ExperimentConfig,
    data: ExperimentData,
    models: Vec<TrainedModel>,
    rows: Vec<Table1Row>,
    sets: Vec<AdversarialSet>,
}

fn quick() -> &'static Quick {
    static Q: OnceLock<Quick> = OnceLock::new();
    Q.get_or_init(|| {
        let mut cfg = ExperimentConfig::quick();
        cfg.cache_dir = None; // hermetic: always train
        cfg.samples = 20;
        let data = ExperimentData::new(
            Mnist::load(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/mnist")).unwrap(),
            Scale::Quick,
            cfg.seed,
        )
        .unwrap();
        let models: Vec<TrainedModel> = table1_models()
            .iter()
            .map(|s| train_or_load(s, &data, &cfg, &mut |_| {}).unwrap())
            .collect();
        let (rows, sets) = table1(&models, &data, &cfg, &mut |_| {}).unwrap();
        Quick {
            cfg,
            data,
            models,
            rows,
            sets,
        }
    })
}

fn named(models: &[TrainedModel]) -> Vec<NamedModel<'_>> {
    models
        .iter()
        .map(|m| NamedModel {
            name: &m.spec.name,
            model: &m.model,
        })
        .collect()
}

/// Each adversarial example is in the box and misclassified by its source model; the counts
/// add up to the sample; failures carry a reason.
fn check_turned(set: &AdversarialSet, model: &dyn Classifier, row: Option<&Table1Row>) {
    assert!(
        set.inputs.iter().all(|v| (0.0..=1.0).contains(v)),
        "{}",
        set.source
    );
    let pred = model.predict_batch(set.inputs.view()).unwrap();
    for (i, (p, l)) in pred.iter().zip(&set.labels).enumerate() {
        assert_ne!(p, l, "{}: example {i} not turned", set.source);
    }
    for (idx, reason) in &set.failures {
        assert!(
            !reason.trim().is_empty(),
            "{}: failure #{idx} without reason",
            set.source
        );
    }
    if let Some(r) = row {
        assert_eq!(
            r.succeeded + r.failures.len() + r.misclassified,
            r.sampled,
            "{}",
            r.model
        );
        // The quick models are easy to attack: nearly everything must be turned.
        assert!(
            r.failures.len() * 10 <= r.sampled,
            "{}: {:?}",
            r.model,
            r.failures
        );
        assert!(r.succeeded > 0, "{}", r.model);
    }
}

#[test]
fn table1_every_attacked_example_is_turned() {
    let q = quick();
    assert_eq!(q.rows.len(), 6);
    for ((row, set), m) in q.rows.iter().zip(&q.sets).zip(&q.models) {
        check_turned(set, &m.model, Some(row));
        assert!(row.mean_rms > 0.0 && row.mean_rms < 0.3, "{row:?}");
        assert!(row.test_error < 0.35, "{row:?}");
    }
}

#[test]
fn attack_is_never_below_and_close_to_the_exact_optimum_of_linear_models() {
    let q = quick();
    for (row, set) in q.rows.iter().zip(&q.sets).take(3) {
        let m = &q
            .models
            .iter()
            .find(|m| m.spec.name == row.model)
            .unwrap()
            .model;
        // Per example: no verified adversarial example can beat the exact optimum.
        for (i, (x, &l)) in set
            .originals
            .rows()
            .into_iter()
            .zip(&set.labels)
            .enumerate()
        {
            let exact = linear_min_rms(m, x, l).unwrap();
            assert!(
                set.rms[i] >= exact * (1.0 - 1e-6),
                "{}: example {i} RMS {} below the exact optimum {exact}",
                row.model,
                set.rms[i]
            );
        }
        let exact = row.linear_bound_rms.unwrap();
        assert!(row.mean_rms >= exact * (1.0 - 1e-6), "{row:?}");
    }
    // With a peaked softmax (weak weight decay) the paper's cross-entropy formulation is
    // nearly exact; with FC10(1)'s flat softmax it is measurably above the optimum (see
    // docs/reproduction.md), so only FC10(1e-4) is held to 5 %.
    let r = &q.rows[0];
    assert_eq!(r.model, "FC10(1e-4)");
    assert!(r.mean_rms <= 1.05 * r.linear_bound_rms.unwrap(), "{r:?}");
}

#[test]
fn fc10_with_strong_decay_needs_more_distortion() {
    let q = quick();
    let rms = |name: &str| q.rows.iter().find(|r| r.model == name).unwrap().mean_rms;
    assert!(
        rms("FC10(1)") > rms("FC10(1e-4)"),
        "FC10(1) {} vs FC10(1e-4) {}",
        rms("FC10(1)"),
        rms("FC10(1e-4)")
    );
    // And the strongly regularised model is the worse classifier, as in the paper.
    let err = |name: &str| q.rows.iter().find(|r| r.model == name).unwrap().test_error;
    assert!(err("FC10(1)") > err("FC10(1e-4)"));
}

#[test]
fn transfer_diagonal_is_total_and_noise_is_weak() {
    let q = quick();
    let models = named(&q.models);
    let sample = table1_sample(&q.data, &q.cfg).unwrap();
    let (x, y) = subset(
        q.data.mnist.train_images.view(),
        &q.data.mnist.train_labels,
        &sample,
    )
    .unwrap();
    let noise = gaussian_noise_set(x.view(), &y, 0.1, 11).unwrap();
    let mut sets = q.sets.clone();
    sets.push(noise.clone());
    let t = transfer_table(&sets, &models).unwrap();
    for i in 0..models.len() {
        assert_eq!(t.rates[i][i], 1.0, "diagonal {}", t.sources[i]);
    }
    // Noise σ = 0.1 on the images each model classifies correctly, against adversarial
    // examples of smaller RMS distortion from the same model.
    let mut compared = 0;
    for (m, set) in q.models.iter().zip(&q.sets) {
        if set.mean_rms() >= noise.mean_rms() {
            continue;
        }
        compared += 1;
        let clean = m.model.predict_batch(x.view()).unwrap();
        let noisy = m.model.predict_batch(noise.inputs.view()).unwrap();
        let correct: Vec<usize> = (0..y.len()).filter(|&i| clean[i] == y[i]).collect();
        let flipped = correct.iter().filter(|&&i| noisy[i] != y[i]).count();
        let rate = flipped as f64 / correct.len() as f64;
        assert!(
            rate <= 0.25,
            "{}: noise (RMS {:.3}) flips {:.0}% of correct examples; adversarial RMS {:.3} flips 100%",
            m.spec.name,
            noise.mean_rms(),
            100.0 * rate,
            set.mean_rms()
        );
    }
    assert!(
        compared >= 3,
        "too few models with adversarial RMS below the noise's"
    );
}

#[test]
fn cross_training_tables_and_magnified_examples() {
    let q = quick();
    let models: Vec<TrainedModel> = cross_training_models()
        .iter()
        .map(|s| train_or_load(s, &q.data, &q.cfg, &mut |_| {}).unwrap())
        .collect();
    // P1 and P2 are disjoint halves.
    let p1 = q.data.indices(intriguing::experiments::TrainingSet::P1);
    let p2 = q.data.indices(intriguing::experiments::TrainingSet::P2);
    assert!(p1.iter().all(|i| !p2.contains(i)));
    let (rows, sets) = table3(&models, &q.data, &q.cfg, &mut |_| {}).unwrap();
    for ((r, s), m) in rows.iter().zip(&sets).zip(&models) {
        check_turned(s, &m.model, Some(r));
    }
    let nm = named(&models);
    let upper = transfer_table(&sets, &nm).unwrap();
    for i in 0..3 {
        assert_eq!(upper.rates[i][i], 1.0);
    }
    let magnified: Vec<AdversarialSet> =
        sets.iter().map(|s| magnify_set(s, 0.1).unwrap()).collect();
    for (s, m) in sets.iter().zip(&magnified) {
        // Minimum distortions are below 0.1 RMS here, so magnifying increases them; clipping
        // to the box can only reduce the RMS below 0.1.
        assert!(s.mean_rms() < 0.1);
        assert!(m.mean_rms() > s.mean_rms() && m.mean_rms() <= 0.1 + 1e-12);
    }
    let lower = transfer_table(&magnified, &nm).unwrap();
    // Larger distortion along the same directions transfers at least as often on average.
    let off = |t: &intriguing::experiments::TransferTable| -> f64 {
        let mut s = 0.0;
        for i in 0..3 {
            for j in 0..3 {
                if i != j {
                    s += t.rates[i][j];
                }
            }
        }
        s / 6.0
    };
    assert!(
        off(&lower) >= off(&upper),
        "{:?} vs {:?}",
        lower.rates,
        upper.rates
    );
}

#[test]
fn weights_cache_round_trips() {
    let q = quick();
    let dir = std::env::temp_dir().join(format!("intriguing-cache-test-{}", std::process::id()));
    let mut cfg = q.cfg.clone();
    cfg.cache_dir = Some(dir.clone());
    let spec = &table1_models()[0];
    let a = train_or_load(spec, &q.data, &cfg, &mut |_| {}).unwrap();
    let b = train_or_load(spec, &q.data, &cfg, &mut |_| {}).unwrap();
    assert!(!a.from_cache && b.from_cache);
    assert_eq!(a.model, b.model);
    assert_eq!(a.model, q.models[0].model); // deterministic training
    std::fs::remove_dir_all(&dir).unwrap();
}
