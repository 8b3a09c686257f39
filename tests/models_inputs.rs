//! Bad inputs to every public function of `models` that takes data: a typed error, no panic,
//! and nothing changed.

use intriguing::ClassifierExt;
use intriguing::models::{
    Activation, Dense, Mlp, Optimizer, Preset, TrainConfig, WeightDecay, train,
};
use intriguing::{Classifier, Error};
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, array};

fn mlp() -> Mlp {
    Mlp::random(&[4, 3, 2], Activation::Sigmoid, 1).unwrap()
}

#[test]
fn constructors_reject_malformed_layers() {
    fn shape<T>(r: intriguing::Result<T>) -> bool {
        matches!(r, Err(Error::ShapeMismatch { .. }))
    }
    assert!(shape(Dense::new(
        Array2::zeros((3, 2)),
        Array1::zeros(2),
        Activation::Relu
    )));
    assert!(shape(Dense::new(
        Array2::zeros((0, 2)),
        Array1::zeros(0),
        Activation::Relu
    )));
    assert!(matches!(
        Dense::new(array![[f64::NAN]], array![0.0], Activation::Relu),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(Mlp::new(vec![]), Err(Error::InvalidConfig(_))));
    let a = Dense::new(Array2::zeros((3, 2)), Array1::zeros(3), Activation::Tanh).unwrap();
    let b = Dense::new(
        Array2::zeros((2, 4)),
        Array1::zeros(2),
        Activation::Identity,
    )
    .unwrap();
    assert!(shape(Mlp::new(vec![a.clone(), b])));
    // Public fields can be set to anything: Mlp::new re-validates.
    let mut bad = a;
    bad.bias = Array1::zeros(7);
    assert!(shape(Mlp::new(vec![bad])));
    for sizes in [&[][..], &[4][..], &[4, 0, 2][..], &[0, 2][..]] {
        assert!(matches!(
            Mlp::random(sizes, Activation::Relu, 0),
            Err(Error::InvalidConfig(_))
        ));
    }
}

#[test]
fn evaluation_rejects_bad_inputs() {
    let m = mlp();
    assert!(matches!(
        m.logits(Array2::zeros((2, 5)).view()),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        m.logits(array![[0.0, f64::INFINITY, 0.0, 0.0]].view()),
        Err(Error::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        m.cross_entropy_gradient(array![0.0, 0.0, 0.0, 0.0].view(), 2),
        Err(Error::LabelOutOfRange {
            label: 2,
            num_classes: 2
        })
    ));
    assert!(matches!(
        m.error_rate(Array2::zeros((2, 4)).view(), &[0]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        m.hidden_representation(Array2::zeros((1, 4)).view(), 2),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        m.hidden_representation(array![[0.0, 0.0, f64::NAN, 0.0]].view(), 0),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        m.gradients(Array2::zeros((2, 4)).view(), &[0, 5]),
        Err(Error::LabelOutOfRange { .. })
    ));
    assert!(matches!(
        m.gradients(Array2::zeros((0, 4)).view(), &[]),
        Err(Error::InvalidConfig(_))
    ));
    // The raw trait methods check shapes too (they are public), instead of panicking.
    let mut out = Array2::zeros((2, 3));
    assert!(matches!(
        m.logits_into(Array2::zeros((2, 4)).view(), out.view_mut()),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut seed = |_: ArrayView2<'_, f64>, mut d: ArrayViewMut2<'_, f64>| {
        d.fill(0.0);
        0.0
    };
    let mut g = Array2::zeros((1, 3));
    assert!(matches!(
        m.loss_gradient_into(Array2::zeros((1, 4)).view(), &mut seed, g.view_mut()),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        m.loss_gradient_into(Array2::zeros((1, 3)).view(), &mut seed, g.view_mut()),
        Err(Error::ShapeMismatch { .. })
    ));
    // Empty batches are fine (not an error, not a panic), strided views too.
    assert_eq!(
        m.logits(Array2::zeros((0, 4)).view()).unwrap().shape(),
        &[0, 2]
    );
    let mut g0 = Array2::zeros((0, 4));
    m.loss_gradient_into(Array2::zeros((0, 4)).view(), &mut seed, g0.view_mut())
        .unwrap();
    let wide = Array2::from_shape_fn((3, 8), |(i, j)| (i + j) as f64 / 10.0);
    let strided = wide.slice(ndarray::s![.., ..;2]);
    assert_eq!(
        m.logits(strided).unwrap(),
        m.logits(strided.to_owned().view()).unwrap()
    );
    let mut gs = Array2::zeros((4, 3));
    let mut seed2 = |z: ArrayView2<'_, f64>, mut d: ArrayViewMut2<'_, f64>| {
        d.assign(&z);
        0.0
    };
    m.loss_gradient_into(
        strided.slice(ndarray::s![..1, ..]),
        &mut seed2,
        gs.view_mut()
            .reversed_axes()
            .slice_mut(ndarray::s![..1, ..]),
    )
    .unwrap();
    let (_, gc) = m
        .loss_gradient(
            strided.slice(ndarray::s![..1, ..]).to_owned().view(),
            &mut seed2,
        )
        .unwrap();
    assert_eq!(gs.column(0), gc.row(0));
    // Parameters: wrong length or NaN leave the model unchanged.
    let mut m2 = m.clone();
    assert!(matches!(
        m2.set_parameters(Array1::zeros(3).view()),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut p = m.parameters();
    p[5] = f64::NAN;
    assert!(matches!(
        m2.set_parameters(p.view()),
        Err(Error::NonFinite { index: 5, .. })
    ));
    assert_eq!(m2, m);
}

#[test]
fn a_model_that_overflows_is_reported() {
    // Finite weights whose logits overflow to infinity.
    let big = Dense::new(array![[1e300, 1e300]], array![0.0], Activation::Identity).unwrap();
    let m = Mlp::new(vec![big]).unwrap();
    assert!(matches!(
        m.logits(array![[1e10, 1e10]].view()),
        Err(Error::ModelNonFinite { .. })
    ));
    assert!(matches!(
        m.gradients(array![[1e10, 1e10]].view(), &[0]),
        Err(Error::ModelNonFinite { .. })
    ));
}

#[test]
fn training_rejects_bad_inputs_and_leaves_the_model_alone() {
    let x = Array2::from_shape_fn((6, 4), |(i, j)| ((i + j) % 3) as f64 / 3.0);
    let y = [0, 1, 0, 1, 1, 0];
    let cfg = TrainConfig::new().with_epochs(2).unwrap();
    let m0 = mlp();
    let mut m = m0.clone();
    let check = |r: intriguing::Result<_>, ok: fn(&Error) -> bool| {
        let e = r.expect_err("must fail");
        assert!(ok(&e), "{e:?}");
    };
    check(
        train(&mut m, Array2::zeros((6, 5)).view(), &y, &cfg, |_, _| {}),
        |e| matches!(e, Error::ShapeMismatch { .. }),
    );
    check(train(&mut m, x.view(), &y[..5], &cfg, |_, _| {}), |e| {
        matches!(e, Error::ShapeMismatch { .. })
    });
    check(
        train(&mut m, x.view(), &[0, 1, 0, 1, 1, 2], &cfg, |_, _| {}),
        |e| matches!(e, Error::LabelOutOfRange { label: 2, .. }),
    );
    let mut xn = x.clone();
    xn[[3, 2]] = f64::NAN;
    check(train(&mut m, xn.view(), &y, &cfg, |_, _| {}), |e| {
        matches!(e, Error::NonFinite { .. })
    });
    check(
        train(&mut m, Array2::zeros((0, 4)).view(), &[], &cfg, |_, _| {}),
        |e| matches!(e, Error::InvalidConfig(_)),
    );
    let three = cfg.clone().with_weight_decay(vec![0.0, 0.0, 0.0]).unwrap();
    check(train(&mut m, x.view(), &y, &three, |_, _| {}), |e| {
        matches!(e, Error::ShapeMismatch { .. })
    });
    assert_eq!(m, m0);
}

#[test]
fn configs_validate_their_settings() {
    let c = TrainConfig::new();
    assert!(c.clone().with_epochs(0).is_err());
    assert!(c.clone().with_batch_size(0).is_err());
    for lr in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(c.clone().with_learning_rate(lr).is_err());
    }
    for d in [0.0, 1.5, f64::NAN] {
        assert!(c.clone().with_lr_decay(d).is_err());
    }
    for m in [-0.1, 1.0, f64::NAN] {
        assert!(c.clone().with_momentum(m).is_err());
    }
    assert!(
        c.clone()
            .with_optimizer(Optimizer::Adam {
                beta1: 0.9,
                beta2: 1.0,
                epsilon: 1e-8
            })
            .is_err()
    );
    assert!(
        c.clone()
            .with_optimizer(Optimizer::Adam {
                beta1: 0.9,
                beta2: 0.99,
                epsilon: 0.0
            })
            .is_err()
    );
    assert!(c.clone().with_weight_decay(vec![1e-5, -1.0]).is_err());
    assert!(c.clone().with_uniform_weight_decay(f64::NAN).is_err());
    assert_eq!(
        WeightDecay::Uniform(0.5).per_layer(3).unwrap(),
        vec![0.5; 3]
    );
    assert!(matches!(
        Preset::Fc10(-1.0).build(0),
        Err(Error::InvalidParameter {
            name: "FC10 weight decay",
            ..
        })
    ));
    for bad in ["FC10", "FC10(-1)", "FC10(nan)", "FC100-100", ""] {
        assert!(
            matches!(bad.parse::<Preset>(), Err(Error::InvalidConfig(_))),
            "{bad}"
        );
    }
    for p in Preset::ALL {
        assert_eq!(p.to_string().parse::<Preset>().unwrap(), p);
        let (m, cfg) = p.build(3).unwrap();
        assert_eq!(m.sizes(), p.sizes());
        assert_eq!(
            cfg.weight_decay().per_layer(m.layers().len()).unwrap(),
            p.weight_decay()
        );
    }
}
