//! The candle adapter (feature `candle`): gradients against finite differences and against the
//! crate's own MLP with the same weights, attacks, non-finite and failing models, batches.

use intriguing::Error;
use intriguing::attack::{
    AttackConfig, FailureReason, Target, attack_batch, find_minimal_perturbation,
};
use intriguing::classifier::{
    Classifier, ClassifierExt, check_gradient, softmax_cross_entropy_batch,
};
use intriguing::models::candle::candle_core::{self, DType, Device, Module, Tensor};
use intriguing::models::candle::{CandleClassifier, candle_nn};
use intriguing::models::{Activation, Mlp};
use ndarray::{Array2, ArrayView2, ArrayViewMut2};

/// An MLP in candle: `Linear` layers with sigmoid between them (the crate's `Mlp` with
/// sigmoid hidden layers and identity output). `Sequential` holds `Box<dyn Module>` (not
/// `Send`), so a plain struct it is.
struct CandleMlp {
    layers: Vec<candle_nn::Linear>,
}

impl Module for CandleMlp {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward(&h)?;
            if i + 1 < self.layers.len() {
                h = candle_nn::ops::sigmoid(&h)?;
            }
        }
        Ok(h)
    }
}

/// The same weights as `mlp`, read by candle's `VarBuilder` from the crate's safetensors file
/// (`layers.{i}.weight` `[out, in]`, `layers.{i}.bias`: PyTorch's `nn.Linear` layout).
fn candle_twin(mlp: &Mlp, dtype: DType) -> CandleClassifier<CandleMlp> {
    let dev = Device::Cpu;
    let vb = candle_nn::VarBuilder::from_buffered_safetensors(
        mlp.to_safetensors_bytes().unwrap(),
        dtype,
        &dev,
    )
    .unwrap();
    let sizes = mlp.sizes();
    let layers = (0..sizes.len() - 1)
        .map(|i| candle_nn::linear(sizes[i], sizes[i + 1], vb.pp(format!("layers.{i}"))).unwrap())
        .collect();
    CandleClassifier::new(CandleMlp { layers }, &[sizes[0]], dtype, &dev).unwrap()
}

/// Deterministic pseudo-random points in `[0, 1]^d` (a 64-bit LCG).
fn points(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    Array2::from_shape_simple_fn((n, d), || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    })
}

fn max_abs_diff(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> f64 {
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
}

fn max_abs(a: ArrayView2<'_, f64>) -> f64 {
    a.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

/// (logits error, gradient error) of the candle twin against the native MLP, relative to the
/// largest entry of the native values.
fn twin_errors(dtype: DType) -> (f64, f64) {
    let mlp = Mlp::random(&[784, 100, 100, 10], Activation::Sigmoid, 7).unwrap();
    let twin = candle_twin(&mlp, dtype);
    assert_eq!((twin.input_dim(), twin.num_classes()), (784, 10));
    let x = points(6, 784, 1);
    let (zn, zc) = (
        mlp.logits(x.view()).unwrap(),
        twin.logits(x.view()).unwrap(),
    );
    let labels = [0, 3, 5, 7, 9, 1];
    let mut seed = |z: ArrayView2<'_, f64>, dz: ArrayViewMut2<'_, f64>| {
        softmax_cross_entropy_batch(z, &labels, dz)
    };
    let (ln, gn) = mlp.loss_gradient(x.view(), &mut seed).unwrap();
    let (lc, gc) = twin.loss_gradient(x.view(), &mut seed).unwrap();
    assert!((ln - lc).abs() <= 1e-6 * ln.abs(), "{ln} vs {lc}");
    (
        max_abs_diff(zn.view(), zc.view()) / max_abs(zn.view()),
        max_abs_diff(gn.view(), gc.view()) / max_abs(gn.view()),
    )
}

#[test]
fn f64_twin_matches_native_mlp_to_1e12() {
    let (ez, eg) = twin_errors(DType::F64);
    assert!(
        ez < 1e-12 && eg < 1e-12,
        "logits {ez:.2e}, gradient {eg:.2e}"
    );
}

#[test]
fn f32_twin_matches_native_mlp_to_1e6() {
    let (ez, eg) = twin_errors(DType::F32);
    assert!(ez < 1e-6 && eg < 1e-6, "logits {ez:.2e}, gradient {eg:.2e}");
    // And it is an f32 model: the difference is not zero.
    assert!(ez > 1e-12, "{ez:.2e}");
}

/// Deterministic weights in `[-scale, scale]` as a tensor of `dtype`.
fn weights(shape: &[usize], scale: f64, seed: u64, dtype: DType) -> Tensor {
    let n = shape.iter().product();
    let v: Vec<f64> = points(1, n, seed)
        .iter()
        .map(|u| scale * (2.0 * u - 1.0))
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
        .and_then(|t| t.to_dtype(dtype))
        .unwrap()
}

/// A small CNN (conv 3×3 → tanh → 2×2 average pool → linear) on 1×8×8 images, in `dtype`,
/// with the same weights whatever the dtype.
fn small_cnn(dtype: DType) -> CandleClassifier<impl Module + Send + Sync> {
    let conv = candle_nn::Conv2d::new(
        weights(&[4, 1, 3, 3], 0.6, 31, dtype),
        Some(weights(&[4], 0.2, 32, dtype)),
        Default::default(),
    );
    let fc = candle_nn::Linear::new(
        weights(&[3, 4 * 3 * 3], 0.8, 33, dtype),
        Some(weights(&[3], 0.2, 34, dtype)),
    );
    let net = move |x: &Tensor| -> candle_core::Result<Tensor> {
        let h = conv.forward(x)?.tanh()?.avg_pool2d(2)?;
        fc.forward(&h.flatten_from(1)?)
    };
    CandleClassifier::new(net, &[1, 8, 8], dtype, &Device::Cpu).unwrap()
}

#[test]
fn cnn_gradient_matches_finite_differences() {
    let x = points(1, 64, 3);
    // f64: the backward pass is exact to round-off.
    let cnn = small_cnn(DType::F64);
    assert_eq!(cnn.num_classes(), 3);
    for label in 0..3 {
        let r = check_gradient(&cnn, x.row(0), label, 1e-5).unwrap();
        assert!(r.max_rel_error < 1e-7, "f64, label {label}: {r:?}");
    }
    // f32: central differences of an f32 loss cannot resolve its gradient much better than
    // ~1e-2 (round-off ~1e-7 / h against an O(h²) truncation; measured 1.0e-2 at h = 3e-2,
    // 0.2 at h = 1e-3), so the f32 gradient is checked against the f64 one of the same
    // weights instead: equal to f32 precision.
    let cnn32 = small_cnn(DType::F32);
    for label in 0..3 {
        let (_, g64) = cnn.cross_entropy_gradient(x.row(0), label).unwrap();
        let (_, g32) = cnn32.cross_entropy_gradient(x.row(0), label).unwrap();
        let scale = g64.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = g64
            .iter()
            .zip(&g32)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            err < 1e-5 * scale,
            "label {label}: {err:.2e} of {scale:.2e}"
        );
        assert!(err > 0.0, "an f32 model rounds");
    }
}

#[test]
fn mlp_gradient_matches_finite_differences() {
    let mlp = Mlp::random(&[20, 8, 4], Activation::Sigmoid, 5).unwrap();
    let twin = candle_twin(&mlp, DType::F64);
    let x = points(1, 20, 4);
    let r = check_gradient(&twin, x.row(0), 2, 1e-5).unwrap();
    assert!(r.max_rel_error < 1e-7, "{r:?}");
}

#[test]
fn chunked_logits_equal_one_pass() {
    let mlp = Mlp::random(&[30, 10, 5], Activation::Sigmoid, 9).unwrap();
    let one = candle_twin(&mlp, DType::F64);
    let chunked = candle_twin(&mlp, DType::F64).with_chunk_rows(2).unwrap();
    let x = points(7, 30, 5);
    assert_eq!(
        one.logits(x.view()).unwrap(),
        chunked.logits(x.view()).unwrap()
    );
    assert!(candle_twin(&mlp, DType::F64).with_chunk_rows(0).is_err());
}

/// Every target mode on candle models (f64 and f32): successes, re-verified with the native
/// model of the same weights (an independent evaluation), inside the box, and with the
/// distortion the native attack finds.
#[test]
fn attacks_on_a_candle_model_return_verified_adversarials() {
    let mlp = Mlp::random(&[784, 100, 100, 10], Activation::Sigmoid, 7).unwrap();
    let (t64, t32) = (candle_twin(&mlp, DType::F64), candle_twin(&mlp, DType::F32));
    let cfg = AttackConfig::default();
    let x = points(2, 784, 11);
    for row in x.rows() {
        let z = mlp.logits_one(row).unwrap();
        let y = mlp.predict(row).unwrap();
        assert_eq!(t32.predict(row).unwrap(), y);
        // The runner-up class (this untrained net reaches only some labels inside the box).
        let runner_up = (0..10)
            .filter(|&l| l != y)
            .max_by(|&a, &b| z[a].total_cmp(&z[b]))
            .unwrap();
        for target in [
            Target::Label(runner_up),
            Target::Untargeted { true_label: y },
            Target::Nearest { true_label: y },
        ] {
            let native = find_minimal_perturbation(&mlp, row, target, &cfg).unwrap();
            let l2 = native
                .l2()
                .unwrap_or_else(|| panic!("native {target:?}: {native:?}"));
            for (model, tol) in [(&t64, 1e-6), (&t32, 1e-2)] {
                let res = find_minimal_perturbation(model, row, target, &cfg).unwrap();
                let adv = res.adversarial.as_ref();
                let adv = adv.unwrap_or_else(|| panic!("{:?} {target:?}: {res:?}", model.dtype()));
                assert!(adv.l2 > 0.0, "{target:?}");
                assert!(adv.input.iter().all(|v| (0.0..=1.0).contains(v)));
                assert!(target.is_reached_by(model.predict(adv.input.view()).unwrap()));
                // f32 and f64 evaluations of the same weights agree on the label unless the
                // point sits within f32 round-off of the boundary; the refinement stops
                // short of it by far more than that.
                assert!(
                    target.is_reached_by(mlp.predict(adv.input.view()).unwrap()),
                    "{:?} {target:?}: the native model disagrees",
                    model.dtype()
                );
                assert!(
                    (adv.l2 - l2).abs() <= tol * l2,
                    "{:?} {target:?}: {} vs native {l2}",
                    model.dtype(),
                    adv.l2
                );
            }
        }
    }
}

#[test]
fn batches_are_thread_count_independent() {
    let mlp = Mlp::random(&[784, 100, 100, 10], Activation::Sigmoid, 7).unwrap();
    let twin = candle_twin(&mlp, DType::F32);
    let x = points(4, 784, 21);
    let y = twin.predict_batch(x.view()).unwrap();
    let targets: Vec<Target> = y
        .iter()
        .enumerate()
        .map(|(i, &l)| match i % 2 {
            0 => Target::Label((l + 3) % 10),
            _ => Target::Untargeted { true_label: l },
        })
        .collect();
    let cfg = AttackConfig::default();
    let one = attack_batch(&twin, x.view(), &targets, &cfg, 1).unwrap();
    let two = attack_batch(&twin, x.view(), &targets, &cfg, 2).unwrap();
    for (a, b) in one.iter().zip(&two) {
        let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
        assert!(a.success());
        assert_eq!(a, b);
    }
}

/// logits = x · w, times NaN where the first input exceeds `nan_above`.
fn nan_model(nan_above: f64) -> CandleClassifier<impl Module + Send + Sync> {
    let dev = Device::Cpu;
    let w = Tensor::new(&[[1.0f32, -1.0], [-1.0, 1.0], [0.5, 0.0]], &dev).unwrap();
    let net = move |x: &Tensor| -> candle_core::Result<Tensor> {
        let z = x.matmul(&w)?;
        let first = x.narrow(1, 0, 1)?;
        let bad = first.gt(nan_above)?; // u8: 1 where NaN is wanted
        // z + bad · NaN would be NaN everywhere (0 · NaN = NaN): select instead.
        let nan = z.ones_like()?.affine(f64::NAN, 0.0)?;
        bad.broadcast_as(z.shape())?.where_cond(&nan, &z)
    };
    CandleClassifier::new(net, &[3], DType::F32, &dev).unwrap()
}

#[test]
fn nan_from_the_model_is_a_typed_failure() {
    let m = nan_model(0.5);
    let good = ndarray::array![[0.2, 0.4, 0.1]];
    let bad = ndarray::array![[0.9, 0.4, 0.1]];
    assert!(m.logits(good.view()).is_ok());
    let e = m.logits(bad.view());
    assert!(matches!(e, Err(Error::ModelNonFinite { .. })), "{e:?}");
    let e = m.cross_entropy_gradient(bad.row(0), 0);
    assert!(matches!(e, Err(Error::ModelNonFinite { .. })), "{e:?}");
    // An attack starting at a NaN point: a typed error.
    let cfg = AttackConfig::default();
    let e = find_minimal_perturbation(&m, bad.row(0), Target::Label(1), &cfg);
    assert!(matches!(e, Err(Error::ModelNonFinite { .. })), "{e:?}");
    // An attack that only meets NaN on its way: a failed result naming the model, or a
    // success verified on finite logits.
    let m = nan_model(0.25);
    let x = ndarray::array![0.2, 0.6, 0.1]; // class 1; class 0 needs x0 > x1 (NaN region)
    // (Class 0 is reachable inside the finite region, e.g. at (0.25, 0, 1), but the search
    // steps into the NaN region on its way.)
    let res = find_minimal_perturbation(&m, x.view(), Target::Label(0), &cfg).unwrap();
    match &res.adversarial {
        Some(adv) => {
            assert!(adv.input[0] <= 0.25);
            assert_eq!(m.predict(adv.input.view()).unwrap(), 0);
        }
        None => assert!(
            matches!(
                res.failure,
                Some(FailureReason::ModelFailure(_) | FailureReason::NotReached)
            ),
            "{res:?}"
        ),
    }
}

#[test]
fn candle_errors_and_bad_models_are_typed() {
    let dev = Device::Cpu;
    // Logits of the wrong rank at construction.
    let e = CandleClassifier::new(|x: &Tensor| x.sum_all(), &[3], DType::F32, &dev);
    assert!(matches!(e, Err(Error::ShapeMismatch { .. })), "{e:?}");
    // A model that rejects the input shape: candle's own error.
    let w = Tensor::zeros((5, 2), DType::F32, &dev).unwrap();
    let e = CandleClassifier::new(move |x: &Tensor| x.matmul(&w), &[3], DType::F32, &dev);
    assert!(matches!(e, Err(Error::Candle(_))), "{e:?}");
    // Bad settings.
    let id = |x: &Tensor| Ok(x.clone());
    assert!(matches!(
        CandleClassifier::new(id, &[], DType::F32, &dev),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        CandleClassifier::new(id, &[2, 0], DType::F32, &dev),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        CandleClassifier::new(id, &[2], DType::U8, &dev),
        Err(Error::InvalidConfig(_))
    ));
    // A model whose batch output loses rows: a shape error, not a panic.
    let first_row = |x: &Tensor| x.narrow(0, 0, 1);
    let m = CandleClassifier::new(first_row, &[2], DType::F64, &dev).unwrap();
    let e = m.logits(ndarray::array![[0.1, 0.2], [0.3, 0.4]].view());
    assert!(matches!(e, Err(Error::ShapeMismatch { .. })), "{e:?}");
}

#[test]
fn a_panicking_candle_model_is_isolated_in_its_row() {
    let dev = Device::Cpu;
    // The third input has zero weight: the attack never moves it, and it marks the row whose
    // evaluation panics.
    let w = Tensor::new(&[[1.0f64, -1.0], [-1.0, 1.0], [0.0, 0.0]], &dev).unwrap();
    let net = move |x: &Tensor| -> candle_core::Result<Tensor> {
        let v = x.flatten_all()?.to_vec1::<f64>()?;
        if v.chunks(3).any(|r| r[2] > 0.5) {
            panic!("model panics on this input");
        }
        x.matmul(&w)
    };
    let m = CandleClassifier::new(net, &[3], DType::F64, &dev).unwrap();
    let inputs = ndarray::array![[0.6, 0.3, 0.1], [0.6, 0.3, 0.9], [0.55, 0.5, 0.1]];
    let targets = [Target::Label(1); 3];
    let cfg = AttackConfig::default();
    for threads in [1, 2] {
        let res = attack_batch(&m, inputs.view(), &targets, &cfg, threads).unwrap();
        assert!(res[0].as_ref().unwrap().success());
        assert!(
            matches!(res[1], Err(Error::ModelPanicked { row: 1, .. })),
            "{:?}",
            res[1]
        );
        assert!(res[2].as_ref().unwrap().success());
    }
}
