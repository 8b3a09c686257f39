//! Bad input, non-finite models and batch isolation / determinism.

mod attack_models;

use attack_models::{ErrOutside, Linear, NanOutside, PanicsOnRow};
use intriguing::Error;
use intriguing::attack::{
    AttackConfig, AttackObjective, FailureReason, Target, attack_batch, find_minimal_perturbation,
};
use intriguing::error::Shape;
use intriguing::optim::{Bounds, Lbfgsb, Objective};
use ndarray::{Array1, Array2, array};
use std::sync::atomic::AtomicUsize;

fn model() -> Linear {
    Linear::two_class(array![1.0, -1.0, 0.5], -0.2)
}

#[test]
fn invalid_inputs_are_typed_errors() {
    let m = model();
    let cfg = AttackConfig::default();
    let t = Target::Label(1);
    let e = find_minimal_perturbation(&m, array![f64::NAN, 0.1, 0.1].view(), t, &cfg);
    assert!(matches!(e, Err(Error::NonFinite { index: 0, .. })), "{e:?}");
    let e = find_minimal_perturbation(&m, array![0.1, f64::INFINITY, 0.1].view(), t, &cfg);
    assert!(matches!(e, Err(Error::NonFinite { index: 1, .. })), "{e:?}");
    let e = find_minimal_perturbation(&m, array![0.1, 0.1].view(), t, &cfg);
    assert!(matches!(e, Err(Error::ShapeMismatch { .. })), "{e:?}");
    let e = find_minimal_perturbation(&m, array![0.1, 1.5, 0.1].view(), t, &cfg);
    assert!(
        matches!(e, Err(Error::OutOfBounds { index: 1, .. })),
        "{e:?}"
    );
    let e = find_minimal_perturbation(&m, array![0.1, 0.1, 0.1].view(), Target::Label(2), &cfg);
    assert!(
        matches!(e, Err(Error::LabelOutOfRange { label: 2, .. })),
        "{e:?}"
    );
    let e = find_minimal_perturbation(
        &m,
        array![0.1, 0.1, 0.1].view(),
        Target::Nearest { true_label: 7 },
        &cfg,
    );
    assert!(
        matches!(e, Err(Error::LabelOutOfRange { label: 7, .. })),
        "{e:?}"
    );
    // Per-coordinate box of the wrong length.
    let cfg2 =
        AttackConfig::default().with_bounds(Bounds::new(vec![0.0; 2], vec![1.0; 2]).unwrap());
    let e = find_minimal_perturbation(&m, array![0.1, 0.1, 0.1].view(), t, &cfg2);
    assert!(matches!(e, Err(Error::ShapeMismatch { .. })), "{e:?}");
}

/// The parameter name of an `InvalidParameter` error (panics on anything else).
fn bad<T: std::fmt::Debug>(r: Result<T, Error>) -> &'static str {
    match r {
        Err(Error::InvalidParameter { name, value, .. }) => {
            assert!(!value.is_empty());
            name
        }
        other => panic!("expected InvalidParameter, got {other:?}"),
    }
}

#[test]
fn each_bad_setting_is_an_invalid_parameter_naming_it() {
    let c = AttackConfig::default;
    assert_eq!(bad(c().with_initial_c(0.0)), "initial_c");
    assert_eq!(bad(c().with_initial_c(-1.0)), "initial_c");
    assert_eq!(bad(c().with_initial_c(f64::NAN)), "initial_c");
    assert_eq!(bad(c().with_auto_initial_c(0.0)), "initial_c_factor");
    assert_eq!(bad(c().with_relative_tolerance(0.0)), "relative_tolerance");
    assert_eq!(bad(c().with_relative_tolerance(-0.1)), "relative_tolerance");
    assert_eq!(bad(c().with_tolerances(0.0, 1e-9)), "pgtol");
    assert_eq!(bad(c().with_tolerances(1e-6, -1.0)), "ftol");
    assert_eq!(bad(c().with_bisection_ftol(Some(0.0))), "bisection_ftol");
    assert_eq!(
        bad(c().with_bisection_ftol(Some(f64::NAN))),
        "bisection_ftol"
    );
    assert_eq!(bad(c().with_growth(1.0)), "growth");
    assert_eq!(bad(c().with_growth(f64::INFINITY)), "growth");
    assert_eq!(bad(c().with_smoothing(0.0)), "smoothing");
    assert_eq!(bad(c().with_max_iterations(0)), "max_iterations");
    assert_eq!(bad(c().with_max_evaluations(0)), "max_evaluations");
    assert_eq!(bad(c().with_max_bracket_steps(0)), "max_bracket_steps");
    assert_eq!(bad(c().with_memory(0)), "memory");
    assert_eq!(bad(c().with_nearest_candidates(0)), "nearest_candidates");
    assert_eq!(bad(c().with_nearest_pruning(-0.1)), "nearest_pruning");
    assert_eq!(bad(c().with_nearest_pruning(f64::NAN)), "nearest_pruning");
    assert_eq!(bad(c().with_refinement(2, 0)), "refinement_points");
    let bounded = Lbfgsb::new().with_bounds(Bounds::interval(0.0, 1.0).unwrap());
    assert_eq!(bad(c().with_solver(bounded)), "solver");
    // The box: typed interval errors.
    assert!(matches!(
        c().with_box(1.0, 0.0),
        Err(Error::EmptyInterval { index: 0, lower, upper }) if lower == 1.0 && upper == 0.0
    ));
    assert!(matches!(
        c().with_box(f64::NAN, 1.0),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        Bounds::new(vec![0.0, 0.0], vec![1.0]),
        Err(Error::ShapeMismatch {
            expected: Shape::Len(2),
            found: Shape::Len(1),
            ..
        })
    ));
    assert!(matches!(
        Bounds::new(vec![0.0, 2.0], vec![1.0, 1.0]),
        Err(Error::EmptyInterval { index: 1, .. })
    ));
    // And the accepted edges.
    assert!(c().with_nearest_pruning(f64::INFINITY).is_ok());
    assert!(c().with_initial_c(0.5).is_ok());
    assert!(c().with_bisection_ftol(None).is_ok());
}

#[test]
fn every_setting_reads_back_and_setters_commute() {
    let a = AttackConfig::default()
        .with_bisection_ftol(Some(1e-7))
        .unwrap()
        .with_tolerances(1e-5, 1e-2)
        .unwrap()
        .with_box(-1.0, 2.0)
        .unwrap()
        .with_memory(4)
        .unwrap();
    let b = AttackConfig::default()
        .with_memory(4)
        .unwrap()
        .with_box(-1.0, 2.0)
        .unwrap()
        .with_tolerances(1e-5, 1e-2)
        .unwrap()
        .with_bisection_ftol(Some(1e-7))
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.bisection_ftol(), Some(1e-7));
    assert_eq!(a.solver().ftol(), 1e-2);
    assert_eq!(a.solver().pgtol(), 1e-5);
    assert_eq!(a.solver().memory(), 4);
    assert_eq!(a.bisection_solver().ftol(), 1e-7);
    assert_eq!(a.bisection_solver().memory(), 4);
    assert_eq!(a.solver().bounds(), Some(a.bounds()));
    assert_eq!(a.bisection_solver().bounds(), Some(a.bounds()));
    assert_eq!(a.bounds().as_interval(), Some((-1.0, 2.0)));
    let none = a.clone().with_bisection_ftol(None).unwrap();
    assert_eq!(none.bisection_solver().ftol(), 1e-2);
    let d = AttackConfig::default();
    assert_eq!(
        (d.solver().max_iterations(), d.solver().max_evaluations()),
        (60, 100)
    );
    assert_eq!(
        (d.growth(), d.max_bracket_steps(), d.bisection_steps()),
        (2.0, 12, 3)
    );
    assert_eq!(d.relative_tolerance(), 0.1);
    assert_eq!(d.refinement(), (3, 8));
    assert_eq!((d.nearest_candidates(), d.nearest_pruning()), (5, 0.1));
    assert_eq!(d.bisection_ftol(), Some(1e-4));
}

#[test]
fn a_model_error_reaches_the_result_as_that_error() {
    // Errors (not NaN) everywhere but in a tiny ball around x that does not reach class 1.
    let x = array![0.1, 0.5, 0.1];
    let m = ErrOutside {
        inner: model(),
        center: x.clone(),
        radius: 1e-3,
    };
    let res = find_minimal_perturbation(&m, x.view(), Target::Label(1), &AttackConfig::default())
        .unwrap();
    assert!(!res.success());
    match &res.failure {
        Some(FailureReason::ModelFailure(msg)) => {
            assert!(msg.contains(ErrOutside::MESSAGE), "{msg}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_objective_returns_the_model_error_and_refuses_nearest() {
    let x = array![0.1, 0.5, 0.1];
    let m = ErrOutside {
        inner: model(),
        center: x.clone(),
        radius: 1e-3,
    };
    let cfg = AttackConfig::default();
    let mut obj = AttackObjective::new(&m, x.view(), Target::Label(1), 1.0, &cfg).unwrap();
    let mut g = [0.0; 3];
    assert!(
        obj.value_gradient(&[0.1, 0.5, 0.1], &mut g)
            .unwrap()
            .is_finite()
    );
    match obj.value_gradient(&[0.5, 0.5, 0.5], &mut g) {
        Err(Error::DataFormat(m)) => assert_eq!(m, ErrOutside::MESSAGE),
        other => panic!("{other:?}"),
    }
    // The solver hands the error back unchanged.
    let r = cfg.solver().minimize(&mut obj, &[0.9, 0.1, 0.9]);
    assert!(matches!(r, Err(Error::DataFormat(_))), "{r:?}");
    let near = AttackObjective::new(&m, x.view(), Target::Nearest { true_label: 0 }, 1.0, &cfg);
    assert_eq!(bad(near), "target");
}

#[test]
fn model_with_nan_logits_at_the_input_is_an_error() {
    let m = NanOutside {
        inner: model(),
        center: array![5.0, 5.0, 5.0],
        radius: 0.0,
    };
    let e = find_minimal_perturbation(
        &m,
        array![0.1, 0.1, 0.1].view(),
        Target::Label(1),
        &AttackConfig::default(),
    );
    assert!(matches!(e, Err(Error::ModelNonFinite { .. })), "{e:?}");
}

#[test]
fn model_with_nan_away_from_the_input_fails_cleanly() {
    // Finite only in a tiny ball around x that does not reach class 1.
    let x = array![0.1, 0.5, 0.1];
    let m = NanOutside {
        inner: model(),
        center: x.clone(),
        radius: 1e-3,
    };
    let res = find_minimal_perturbation(&m, x.view(), Target::Label(1), &AttackConfig::default())
        .unwrap();
    assert!(!res.success());
    assert!(
        matches!(
            res.failure,
            Some(FailureReason::ModelFailure(_)) | Some(FailureReason::NotReached)
        ),
        "{res:?}"
    );
}

fn batch_fixture() -> (Linear, Array2<f64>, Vec<Target>) {
    let mut w = Array2::zeros((3, 6));
    for k in 0..3 {
        for i in 0..6 {
            w[[k, i]] = ((k * 7 + i * 3) % 5) as f64 - 2.0 + 0.1 * k as f64;
        }
    }
    let m = Linear {
        w,
        b: array![0.1, -0.2, 0.05],
    };
    let rows = 9;
    let mut x = Array2::zeros((rows, 6));
    for r in 0..rows {
        for i in 0..6 {
            x[[r, i]] = 0.2 + 0.6 * (((r * 5 + i * 11) % 13) as f64 / 13.0);
        }
    }
    let preds = intriguing::ClassifierExt::predict_batch(&m, x.view()).unwrap();
    let targets: Vec<Target> = preds
        .iter()
        .enumerate()
        .map(|(r, &y)| match r % 3 {
            0 => Target::Label((y + 1) % 3),
            1 => Target::Untargeted { true_label: y },
            _ => Target::Nearest { true_label: y },
        })
        .collect();
    (m, x, targets)
}

#[test]
fn batch_results_are_identical_whatever_the_thread_count() {
    let (m, x, targets) = batch_fixture();
    let cfg = AttackConfig::default();
    let one = attack_batch(&m, x.view(), &targets, &cfg, 1).unwrap();
    let two = attack_batch(&m, x.view(), &targets, &cfg, 2).unwrap();
    let five = attack_batch(&m, x.view(), &targets, &cfg, 5).unwrap();
    assert_eq!(one.len(), 9);
    for (i, ((a, b), c)) in one.iter().zip(&two).zip(&five).enumerate() {
        let (a, b, c) = (
            a.as_ref().unwrap(),
            b.as_ref().unwrap(),
            c.as_ref().unwrap(),
        );
        assert!(a.success(), "row {i}: {a:?}");
        assert_eq!(a, b, "row {i}");
        assert_eq!(a, c, "row {i}");
        // Same as the single-input call.
        let single = find_minimal_perturbation(&m, x.row(i), targets[i], &cfg).unwrap();
        assert_eq!(a, &single, "row {i}");
    }
}

#[test]
fn one_bad_row_does_not_affect_the_others() {
    let (m, mut x, mut targets) = batch_fixture();
    x[[2, 3]] = f64::NAN;
    x[[4, 0]] = 7.0; // outside [0, 1]
    targets[6] = Target::Label(9);
    let res = attack_batch(&m, x.view(), &targets, &AttackConfig::default(), 2).unwrap();
    assert!(matches!(res[2], Err(Error::NonFinite { .. })));
    assert!(matches!(res[4], Err(Error::OutOfBounds { .. })));
    assert!(matches!(res[6], Err(Error::LabelOutOfRange { .. })));
    for i in [0, 1, 3, 5, 7, 8] {
        assert!(res[i].as_ref().unwrap().success(), "row {i}");
    }
    // Whole-batch argument errors.
    assert!(attack_batch(&m, x.view(), &targets[..3], &AttackConfig::default(), 2).is_err());
    assert!(attack_batch(&m, x.view(), &targets, &AttackConfig::default(), 0).is_err());
}

#[test]
fn a_panicking_model_loses_only_its_row() {
    let (m, mut x, targets) = batch_fixture();
    x[[3, 0]] = 0.123456;
    let pm = PanicsOnRow {
        inner: m,
        trigger: 0.123456,
        calls: AtomicUsize::new(0),
    };
    let res = attack_batch(&pm, x.view(), &targets, &AttackConfig::default(), 2).unwrap();
    assert!(
        matches!(&res[3], Err(Error::ModelPanicked { row: 3, .. })),
        "{:?}",
        res[3]
    );
    for (i, r) in res.iter().enumerate() {
        if i != 3 {
            assert!(r.as_ref().unwrap().success(), "row {i}");
        }
    }
}

#[test]
fn empty_batch_is_empty() {
    let m = model();
    let x = Array2::<f64>::zeros((0, 3));
    let res = attack_batch(&m, x.view(), &[], &AttackConfig::default(), 3).unwrap();
    assert!(res.is_empty());
    let _ = Array1::<f64>::zeros(0);
}
