//! The `serde` feature: configs, results and reports survive a JSON round trip unchanged
//! (floats bit for bit, infinities included), a deserialised config behaves exactly like the
//! original, and a JSON config that the validating setters would refuse is refused when
//! deserialised, with the setter's message.
#![cfg(feature = "serde")]

use intriguing::analysis::{
    Certifier, CrownConfig, PowerIterationConfig, distortion_brackets, lipschitz_report,
    spectral_norm,
};
use intriguing::attack::{
    AttackConfig, AttackLoss, AttackResult, DeepFoolConfig, FailureReason, FgsmConfig,
    MinimalDistortions, Norm, Penalty, PgdConfig, RowResult, Target, attack_batch, deepfool,
    find_minimal_perturbation,
};
use intriguing::classifier::check_gradient_batch;
use intriguing::models::{Activation, Mlp, Optimizer, TrainConfig, TrainReport, train};
use intriguing::optim::{Bounds, Lbfgsb};
use intriguing::{ClassifierExt, Error};
use ndarray::{Array1, Array2};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// JSON and back.
fn roundtrip<T: Serialize + DeserializeOwned>(v: &T) -> T {
    let json = serde_json::to_string(v).expect("serialise");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("deserialise {json}: {e}"))
}

fn assert_roundtrip<T: Serialize + DeserializeOwned + PartialEq + Debug>(v: &T) {
    assert_eq!(&roundtrip(v), v);
}

/// `v` as a JSON value, with `edit` applied, deserialised again: the error message.
fn edited_error<T: Serialize + DeserializeOwned + Debug>(
    v: &T,
    edit: impl FnOnce(&mut serde_json::Value),
) -> String {
    let mut json = serde_json::to_value(v).expect("serialise");
    edit(&mut json);
    match serde_json::from_value::<T>(json.clone()) {
        Ok(t) => panic!("{json} was accepted as {t:?}"),
        Err(e) => e.to_string(),
    }
}

/// The message of the setter's error, to compare with the deserialiser's.
fn message(e: Error) -> String {
    e.to_string()
}

fn model() -> Mlp {
    Mlp::random(&[12, 8, 4], Activation::Tanh, 3).unwrap()
}

fn inputs(n: usize) -> Array2<f64> {
    Array2::from_shape_fn((n, 12), |(i, j)| ((i * 5 + j * 7) % 11) as f64 / 10.0)
}

fn custom_attack_config() -> AttackConfig {
    AttackConfig::default()
        .with_bounds(
            Bounds::new(
                vec![0.0, f64::NEG_INFINITY, -0.5],
                vec![1.0, 2.0, f64::INFINITY],
            )
            .unwrap(),
        )
        .with_penalty(Penalty::L2)
        .with_loss(AttackLoss::Margin { kappa: 0.25 })
        .unwrap()
        .with_smoothing(1e-5)
        .unwrap()
        .with_initial_c(0.3)
        .unwrap()
        .with_growth(3.0)
        .unwrap()
        .with_bisection_steps(5)
        .unwrap()
        .with_bisection_ftol(None)
        .unwrap()
        .with_nearest_pruning(f64::INFINITY)
        .unwrap()
        .with_refinement(2, 5)
        .unwrap()
        .with_warm_start(false)
        .with_memory(7)
        .unwrap()
}

#[test]
fn attack_config_roundtrips_with_infinite_values_and_keeps_its_solvers_in_step() {
    for cfg in [AttackConfig::default(), custom_attack_config()] {
        let back = roundtrip(&cfg);
        assert_eq!(back, cfg);
        // The derived solvers are rebuilt from the settings, box included.
        assert_eq!(back.solver().bounds(), Some(back.bounds()));
        assert_eq!(
            back.bisection_solver().ftol(),
            cfg.bisection_solver().ftol()
        );
    }
    let json = serde_json::to_string(&custom_attack_config()).unwrap();
    assert!(json.contains(r#""nearest_pruning":"inf""#), "{json}");
    assert!(json.contains(r#""-inf""#), "{json}");
}

#[test]
fn a_deserialised_attack_config_gives_the_same_attack() {
    let m = model();
    let x = inputs(1).row(0).to_owned();
    let label = m.predict(x.view()).unwrap();
    let cfg = AttackConfig::default().with_bisection_steps(4).unwrap();
    let back = roundtrip(&cfg);
    let target = Target::Nearest { true_label: label };
    let a = find_minimal_perturbation(&m, x.view(), target, &cfg).unwrap();
    let b = find_minimal_perturbation(&m, x.view(), target, &back).unwrap();
    assert!(a.success());
    assert_eq!(a, b);
}

#[test]
fn attack_config_deserialisation_validates_like_the_setters() {
    let cfg = AttackConfig::default();
    let set = |k: &'static str, v: serde_json::Value| {
        move |j: &mut serde_json::Value| {
            j[k] = v;
        }
    };
    let e = edited_error(&cfg, set("growth", 0.5.into()));
    assert_eq!(e, message(cfg.clone().with_growth(0.5).unwrap_err()));
    let e = edited_error(&cfg, set("max_bracket_steps", 0.into()));
    assert_eq!(
        e,
        message(cfg.clone().with_max_bracket_steps(0).unwrap_err())
    );
    let e = edited_error(&cfg, set("smoothing", (-1.0).into()));
    assert_eq!(e, message(cfg.clone().with_smoothing(-1.0).unwrap_err()));
    let e = edited_error(&cfg, set("nearest_pruning", (-0.1).into()));
    assert_eq!(
        e,
        message(cfg.clone().with_nearest_pruning(-0.1).unwrap_err())
    );
    let e = edited_error(&cfg, set("refinement_points", 0.into()));
    assert_eq!(e, message(cfg.clone().with_refinement(1, 0).unwrap_err()));
    let e = edited_error(&cfg, |j| {
        j["loss"] = serde_json::json!({"Margin": {"kappa": -1.0}})
    });
    let setter = cfg.clone().with_loss(AttackLoss::Margin { kappa: -1.0 });
    assert_eq!(e, message(setter.unwrap_err()));
    let e = edited_error(&cfg, |j| j["initial_c"] = serde_json::json!({"Fixed": 0.0}));
    assert_eq!(e, message(cfg.clone().with_initial_c(0.0).unwrap_err()));
    // The solver's own settings are checked by the solver's setters.
    let e = edited_error(&cfg, |j| j["solver"]["memory"] = 0.into());
    assert_eq!(e, message(Lbfgsb::new().with_memory(0).unwrap_err()));
    // A solver with a box of its own is refused as `with_solver` refuses it.
    let boxed = Lbfgsb::new().with_bounds(Bounds::interval(0.0, 1.0).unwrap());
    let e = edited_error(&cfg, |j| {
        j["solver"] = serde_json::to_value(&boxed).unwrap()
    });
    assert_eq!(e, message(cfg.clone().with_solver(boxed).unwrap_err()));
    // An empty box.
    let e = edited_error(&cfg, |j| {
        j["bounds"] = serde_json::json!({"interval": {"lower": 1.0, "upper": 0.0}})
    });
    assert_eq!(e, message(Bounds::interval(1.0, 0.0).unwrap_err()));
    // A misspelt setting is not silently dropped.
    let e = edited_error(&cfg, set("grwoth", 2.0.into()));
    assert!(e.contains("unknown field `grwoth`"), "{e}");
}

#[test]
fn bounds_and_solver_deserialisation_validate() {
    let unit = Bounds::interval(0.0, 1.0).unwrap();
    assert_roundtrip(&unit);
    let per = Bounds::new(vec![f64::NEG_INFINITY, 0.1], vec![0.3, f64::INFINITY]).unwrap();
    assert_roundtrip(&per);
    let e = edited_error(&per, |j| {
        j["per_coordinate"]["upper"] = serde_json::json!([0.3]);
    });
    assert_eq!(
        e,
        message(Bounds::new(vec![0.0, 0.1], vec![0.3]).unwrap_err())
    );
    let e = edited_error(&per, |j| j["per_coordinate"]["lower"][1] = "inf".into());
    let setter = Bounds::new(
        vec![f64::NEG_INFINITY, f64::INFINITY],
        vec![0.3, f64::INFINITY],
    );
    assert_eq!(e, message(setter.unwrap_err()));
    let e = edited_error(&per, |j| j["per_coordinate"]["lower"][1] = "NaN".into());
    assert_eq!(
        e,
        message(Bounds::new(vec![0.0, f64::NAN], vec![1.0, 1.0]).unwrap_err())
    );

    let solver = Lbfgsb::new()
        .with_memory(4)
        .unwrap()
        .with_line_search(1e-3, 0.5, 9)
        .unwrap()
        .with_bounds(per);
    assert_roundtrip(&solver);
    let e = edited_error(&solver, |j| j["line_search"]["c2"] = 1e-4.into());
    assert_eq!(
        e,
        message(Lbfgsb::new().with_line_search(1e-3, 1e-4, 9).unwrap_err())
    );
    let e = edited_error(&solver, |j| j["ftol"] = (-1.0).into());
    assert_eq!(e, message(Lbfgsb::new().with_ftol(-1.0).unwrap_err()));
}

#[test]
fn family_configs_roundtrip_and_validate() {
    let fgsm = FgsmConfig::default()
        .with_norm(Norm::L2)
        .with_box(-1.0, 1.0)
        .unwrap();
    assert_roundtrip(&fgsm);
    let e = edited_error(&fgsm, |j| {
        j["domain"] = serde_json::json!({"interval": {"lower": 2.0, "upper": 1.0}})
    });
    assert_eq!(
        e,
        message(FgsmConfig::default().with_box(2.0, 1.0).unwrap_err())
    );

    let pgd = PgdConfig::default()
        .with_steps(7)
        .unwrap()
        .with_relative_step(0.2)
        .unwrap()
        .with_seed(11)
        .with_random_start(false);
    assert_roundtrip(&pgd);
    assert_roundtrip(&PgdConfig::default().with_step_size(0.01).unwrap());
    let e = edited_error(&pgd, |j| j["steps"] = 0.into());
    assert_eq!(e, message(PgdConfig::default().with_steps(0).unwrap_err()));
    let e = edited_error(&pgd, |j| j["step"] = serde_json::json!({"Absolute": -0.5}));
    assert_eq!(
        e,
        message(PgdConfig::default().with_step_size(-0.5).unwrap_err())
    );

    let df = DeepFoolConfig::default()
        .with_norm(Norm::Linf)
        .with_overshoot(0.05)
        .unwrap()
        .with_candidates(3)
        .unwrap();
    assert_roundtrip(&df);
    assert_roundtrip(&DeepFoolConfig::default()); // candidates = usize::MAX
    let e = edited_error(&df, |j| j["overshoot"] = (-0.1).into());
    assert_eq!(
        e,
        message(DeepFoolConfig::default().with_overshoot(-0.1).unwrap_err())
    );
    let e = edited_error(&df, |j| j["max_iterations"] = 0.into());
    assert_eq!(
        e,
        message(
            DeepFoolConfig::default()
                .with_max_iterations(0)
                .unwrap_err()
        )
    );

    let d = MinimalDistortions::new(&[Some(0.5), None, Some(0.0)]).unwrap();
    assert_roundtrip(&d);
    let e = edited_error(&d, |j| j["sorted"][0] = (-1.0).into());
    assert!(e.contains("minimal distortion -1"), "{e}");
    let e = edited_error(&d, |j| j["rows"] = 1.into());
    assert!(e.contains("2 distortions for 1 rows"), "{e}");
}

#[test]
fn training_and_analysis_configs_roundtrip_and_validate() {
    let t = TrainConfig::new()
        .with_epochs(3)
        .unwrap()
        .with_momentum(0.9)
        .unwrap()
        .with_weight_decay(vec![1e-4, 0.0])
        .unwrap()
        .with_warmup_epochs(0.5)
        .unwrap();
    assert_roundtrip(&t);
    assert_roundtrip(&TrainConfig::new().with_uniform_weight_decay(1e-3).unwrap());
    let e = edited_error(&t, |j| j["epochs"] = 0.into());
    assert_eq!(e, message(TrainConfig::new().with_epochs(0).unwrap_err()));
    let e = edited_error(&t, |j| j["lr_decay"] = 1.5.into());
    assert_eq!(
        e,
        message(TrainConfig::new().with_lr_decay(1.5).unwrap_err())
    );
    let e = edited_error(&t, |j| {
        j["optimizer"] = serde_json::json!({"Sgd": {"momentum": 1.0}});
    });
    let setter = TrainConfig::new().with_optimizer(Optimizer::Sgd { momentum: 1.0 });
    assert_eq!(e, message(setter.unwrap_err()));
    let e = edited_error(&t, |j| {
        j["weight_decay"] = serde_json::json!({"PerLayer": [-1.0]})
    });
    assert_eq!(
        e,
        message(
            TrainConfig::new()
                .with_weight_decay(vec![-1.0])
                .unwrap_err()
        )
    );

    let p = PowerIterationConfig::new()
        .with_tol(1e-9)
        .unwrap()
        .with_seed(5);
    assert_roundtrip(&p);
    let e = edited_error(&p, |j| j["tol"] = 0.0.into());
    assert_eq!(
        e,
        message(PowerIterationConfig::new().with_tol(0.0).unwrap_err())
    );

    let c = CrownConfig::new()
        .with_per_class(true)
        .with_max_evaluations(9)
        .unwrap();
    assert_roundtrip(&c);
    let e = edited_error(&c, |j| j["rtol"] = 1.0.into());
    assert_eq!(e, message(CrownConfig::new().with_rtol(1.0).unwrap_err()));
}

#[test]
fn attack_results_roundtrip() {
    let m = model();
    let x = inputs(6);
    let labels = m.predict_batch(x.view()).unwrap();
    let targets: Vec<Target> = labels
        .iter()
        .enumerate()
        .map(|(i, &y)| match i % 3 {
            0 => Target::Label((y + 1) % 4),
            1 => Target::Untargeted { true_label: y },
            _ => Target::Nearest { true_label: y },
        })
        .collect();
    let results: Vec<AttackResult> =
        attack_batch(&m, x.view(), &targets, &AttackConfig::default(), 2)
            .unwrap()
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
    assert!(results.iter().all(AttackResult::success));
    assert_roundtrip(&results);

    // A failed one (a box that is the point x itself) and each failure reason.
    let point = x.row(0).to_vec();
    let weak = AttackConfig::default().with_bounds(Bounds::new(point.clone(), point).unwrap());
    let target = Target::Label((labels[0] + 1) % 4);
    let failed = find_minimal_perturbation(&m, x.row(0), target, &weak).unwrap();
    assert_eq!(failed.failure, Some(FailureReason::NotReached));
    assert_roundtrip(&failed);
    for reason in [
        FailureReason::NotReached,
        FailureReason::ModelFailure("NaN logits".into()),
        FailureReason::Optimizer("bad start".into()),
    ] {
        assert_roundtrip(&reason);
    }

    let rows: Vec<RowResult> = deepfool(&m, x.view(), &labels, &DeepFoolConfig::default(), 1)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_roundtrip(&rows);
}

#[test]
fn training_and_analysis_reports_roundtrip() {
    let mut m = model();
    let x = inputs(8);
    let y = [0, 1, 2, 3, 0, 1, 2, 3];
    let cfg = TrainConfig::new()
        .with_epochs(3)
        .unwrap()
        .with_batch_size(4)
        .unwrap();
    let report: TrainReport = train(&mut m, x.view(), &y, &cfg, |_, _| {}).unwrap();
    // Serialise only (metric names are `&'static str`): every epoch's figures, exactly.
    let json = serde_json::to_value(&report).unwrap();
    let epochs = json["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 3);
    for (e, info) in epochs.iter().zip(&report.epochs) {
        assert_eq!(e["epoch"].as_u64(), Some(info.epoch as u64));
        assert_eq!(e["loss"].as_f64(), Some(info.loss));
        assert_eq!(e["learning_rate"].as_f64(), Some(info.learning_rate));
        assert_eq!(
            e["metrics"].as_array().map(Vec::len),
            Some(info.metrics.len())
        );
    }

    let power = PowerIterationConfig::default();
    let cert = Certifier::new(&m, &power).unwrap();
    let brackets = distortion_brackets(&m, &cert, x.view(), &y, &AttackConfig::default()).unwrap();
    // The certified bound against the reference label itself is +∞ and survives JSON.
    assert_eq!(brackets[0].certified.per_class[y[0]], f64::INFINITY);
    assert_roundtrip(&brackets);

    let crown = intriguing::analysis::Crown::from_mlp(&m).unwrap();
    let c = crown
        .certify(x.row(0), y[0], &CrownConfig::new().with_per_class(true))
        .unwrap();
    assert_roundtrip(&c);

    let w = Array2::from_shape_fn((3, 5), |(i, j)| (i as f64 - j as f64).sin());
    assert_roundtrip(&spectral_norm(w.view(), &power).unwrap());
    assert_roundtrip(&lipschitz_report(&m, &power).unwrap());

    // GradCheckReport has no PartialEq: compare its fields.
    let g = check_gradient_batch(&m, x.view(), &y, 1e-5).unwrap();
    let back = roundtrip(&g);
    assert_eq!(back.max_rel_error.to_bits(), g.max_rel_error.to_bits());
    assert_eq!(
        (back.worst_row, back.worst_index),
        (g.worst_row, g.worst_index)
    );
    assert_eq!(back.analytic, g.analytic);
    assert_eq!(back.numeric, g.numeric);
    let _: Array1<f64> = back.analytic.row(0).to_owned();
}

#[cfg(feature = "paper")]
#[test]
fn experiment_rows_roundtrip_with_nan_means() {
    use intriguing::experiments::Table1Row;
    // A row without successes has NaN means; JSON has no NaN, the helper writes "NaN".
    let row = Table1Row {
        model: "FC10(1e-4)".into(),
        train_error: 0.1,
        test_error: 0.12,
        sampled: 3,
        misclassified: 3,
        succeeded: 0,
        failures: vec!["target not reached".into()],
        mean_rms: f64::NAN,
        median_rms: f64::NAN,
        linear_bound_rms: None,
    };
    let json = serde_json::to_string(&row).unwrap();
    assert!(json.contains(r#""mean_rms":"NaN""#), "{json}");
    let back: Table1Row = serde_json::from_str(&json).unwrap();
    assert!(back.mean_rms.is_nan() && back.median_rms.is_nan());
    assert_eq!((back.model, back.failures), (row.model, row.failures));
}
