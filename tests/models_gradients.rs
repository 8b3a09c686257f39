//! The MLP's input and weight gradients against central finite differences, for every
//! activation, and the batched (matrix-product) path against the single-row path.
#![allow(clippy::needless_range_loop)] // index loops mirror the formulas

use intriguing::classifier::{
    LogitsLoss, check_gradient, check_gradient_fn, softmax_cross_entropy,
    softmax_cross_entropy_batch,
};
use intriguing::models::{Activation, Dense, Mlp};
use intriguing::{Classifier, ClassifierExt};
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, array};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Central-difference step: balances round-off (~ε·loss/h) against truncation (~h²·f'''); the
/// sigmoid-output network has input gradients of order 1e-4, which makes 1e-5 round-off bound.
const H: f64 = 3e-4;

fn random_inputs(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((n, d), || rng.random_range(0.0..1.0))
}

/// An MLP whose every layer (the output layer too, when `act_last`) uses `act`, with non-zero
/// biases so that no pre-activation sits exactly at the ReLU kink.
fn mlp_with(sizes: &[usize], act: Activation, act_last: bool, seed: u64) -> Mlp {
    let n = sizes.len() - 1;
    let mlp = Mlp::random_with(
        sizes,
        |i| {
            if i + 1 == n && !act_last {
                Activation::Identity
            } else {
                act
            }
        },
        seed,
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xb1a5);
    let layers = mlp
        .into_layers()
        .into_iter()
        .map(|l| {
            let bias = Array1::from_shape_simple_fn(l.out_dim(), || rng.random_range(-0.5..0.5));
            Dense::new(l.weight, bias, l.activation).unwrap()
        })
        .collect();
    Mlp::new(layers).unwrap()
}

#[test]
fn input_gradient_matches_finite_differences_for_every_activation() {
    let x = random_inputs(1, 784, 1);
    for act in Activation::ALL {
        for act_last in [false, true] {
            let mlp = mlp_with(&[784, 100, 100, 10], act, act_last, 7);
            for label in [0, 3, 9] {
                let r = check_gradient(&mlp, x.row(0), label, H).unwrap();
                assert!(
                    r.max_rel_error < 1e-6,
                    "{act} (last layer too: {act_last}), label {label}: {r:?}"
                );
                assert!(r.analytic.iter().any(|&g| g != 0.0));
            }
        }
    }
}

#[test]
fn weight_gradients_match_finite_differences_for_every_activation() {
    let x = random_inputs(5, 6, 2);
    let labels = [0, 2, 1, 2, 0];
    for act in Activation::ALL {
        for act_last in [false, true] {
            let mlp = mlp_with(&[6, 5, 4, 3], act, act_last, 11);
            let (loss, grads) = mlp.gradients(x.view(), &labels).unwrap();
            let mut z = Array2::zeros((5, 3));
            let direct = softmax_cross_entropy_batch(
                mlp.logits(x.view()).unwrap().view(),
                &labels,
                z.view_mut(),
            );
            assert!((loss - direct).abs() < 1e-14);
            let mut probe = mlp.clone();
            let f = |p: ndarray::ArrayView1<'_, f64>| {
                probe.set_parameters(p).unwrap();
                let z = probe.logits(x.view()).unwrap();
                let mut g = Array2::zeros(z.raw_dim());
                softmax_cross_entropy_batch(z.view(), &labels, g.view_mut())
            };
            let flat = grads.to_flat();
            assert_eq!(flat.len(), mlp.num_parameters());
            let r = check_gradient_fn(f, mlp.parameters().view(), flat.view(), 1e-5).unwrap();
            assert!(r.max_rel_error < 1e-6, "{act} (last: {act_last}): {r:?}");
        }
    }
}

#[test]
fn batched_path_agrees_with_single_rows() {
    let mlp = mlp_with(&[20, 16, 12, 5], Activation::Tanh, false, 3);
    let x = random_inputs(37, 20, 4);
    let labels: Vec<usize> = (0..37).map(|i| i % 5).collect();
    // Logits: one batched call against 37 single-row calls.
    let z = mlp.logits(x.view()).unwrap();
    for i in 0..37 {
        let zi = mlp.logits_one(x.row(i)).unwrap();
        for c in 0..5 {
            assert!((z[[i, c]] - zi[c]).abs() < 1e-12);
        }
    }
    // Input gradient of the summed loss: batched against per row.
    let mut seed = |z: ArrayView2<'_, f64>, mut dz: ArrayViewMut2<'_, f64>| {
        let mut total = 0.0;
        for (i, (zr, gr)) in z.rows().into_iter().zip(dz.rows_mut()).enumerate() {
            total += softmax_cross_entropy(zr, labels[i], gr);
        }
        total
    };
    let (loss, g) = mlp.loss_gradient(x.view(), &mut seed).unwrap();
    let mut total = 0.0;
    for i in 0..37 {
        let (li, gi) = mlp.cross_entropy_gradient(x.row(i), labels[i]).unwrap();
        total += li;
        for j in 0..20 {
            assert!((g[[i, j]] - gi[j]).abs() < 1e-12);
        }
    }
    assert!((loss - total).abs() < 1e-10);
}

#[test]
fn closed_form_single_layer() {
    // Softmax regression: d CE / dx = Wᵀ (softmax(Wx + b) - e_y); d CE / dW = (p - e_y) xᵀ.
    let w = array![[1.0, -2.0, 0.5], [0.3, 0.7, -1.1]];
    let b = array![0.1, -0.2];
    let mlp = Mlp::new(vec![
        Dense::new(w.clone(), b.clone(), Activation::Identity).unwrap(),
    ])
    .unwrap();
    let x = array![0.2, -0.4, 0.9];
    let z = w.dot(&x) + &b;
    let p = z.mapv(f64::exp) / z.mapv(f64::exp).sum();
    let mut r = p.clone();
    r[1] -= 1.0;
    let (loss, g) = mlp.cross_entropy_gradient(x.view(), 1).unwrap();
    assert!((loss + p[1].ln()).abs() < 1e-14);
    let expect = w.t().dot(&r);
    for j in 0..3 {
        assert!((g[j] - expect[j]).abs() < 1e-14);
    }
    let (_, grads) = mlp
        .gradients(x.view().insert_axis(ndarray::Axis(0)), &[1])
        .unwrap();
    for o in 0..2 {
        assert!((grads.bias(0)[o] - r[o]).abs() < 1e-14);
        for j in 0..3 {
            assert!((grads.weight(0)[[o, j]] - r[o] * x[j]).abs() < 1e-14);
        }
    }
}

#[test]
fn re_entrant_seed_does_not_panic() {
    // A seed that itself evaluates the model (uses the thread's scratch while it is borrowed).
    let mlp = Mlp::random(&[4, 3, 2], Activation::Sigmoid, 5).unwrap();
    let inner = mlp.clone();
    let x = random_inputs(1, 4, 6);
    let mut seed = |z: ArrayView2<'_, f64>, mut dz: ArrayViewMut2<'_, f64>| {
        let (l, _) = inner.cross_entropy_gradient(x.row(0), 1).unwrap();
        dz.fill(0.0);
        dz[[0, 0]] = 1.0;
        z[[0, 0]] + 0.0 * l
    };
    let seed: LogitsLoss<'_> = &mut seed;
    let (loss, g) = mlp.loss_gradient(x.view(), seed).unwrap();
    assert!(loss.is_finite() && g.iter().all(|v| v.is_finite()));
}

/// A network with every layer kind: convolutions (zero and circular padding, stride 2),
/// activations as layers (sigmoid, tanh, ReLU), max-pooling, flatten, and dense layers with
/// and without their own activation.
fn every_layer_kind(seed: u64) -> intriguing::models::cnn::Cnn {
    use intriguing::models::Layer;
    use intriguing::models::conv::{Conv2d, MaxPool2d, PaddingMode};
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut w4 = |shape: (usize, usize, usize, usize)| {
        ndarray::Array4::from_shape_simple_fn(shape, || rng.random_range(-0.6..0.6))
    };
    let conv1 = Conv2d::new(
        w4((3, 2, 3, 3)),
        array![0.1, -0.2, 0.05],
        (2, 7, 7),
        1,
        1,
        PaddingMode::Zeros,
    )
    .unwrap();
    let conv2 = Conv2d::new(
        w4((2, 3, 3, 3)),
        array![0.02, -0.03],
        (3, 7, 7),
        2,
        1,
        PaddingMode::Circular,
    )
    .unwrap();
    let pool = MaxPool2d::new(conv2.output_shape(), 2, 1).unwrap();
    let flat = pool.output_dim();
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 1);
    let dense = |i: usize, o: usize, a: Activation, rng: &mut ChaCha8Rng| {
        let w = Array2::from_shape_simple_fn((o, i), || rng.random_range(-0.5..0.5));
        let b = Array1::from_shape_simple_fn(o, || rng.random_range(-0.3..0.3));
        Dense::new(w, b, a).unwrap()
    };
    intriguing::models::cnn::Cnn::new(vec![
        Layer::Conv2d(conv1),
        Layer::Activation(Activation::Tanh),
        Layer::Conv2d(conv2),
        Layer::Activation(Activation::Sigmoid),
        Layer::MaxPool2d(pool),
        Layer::Flatten,
        Layer::Dense(dense(flat, 6, Activation::Identity, &mut rng)),
        Layer::RELU,
        Layer::Dense(dense(6, 4, Activation::Tanh, &mut rng)),
        Layer::Dense(dense(4, 3, Activation::Identity, &mut rng)),
    ])
    .unwrap()
}

#[test]
fn every_layer_kind_has_input_and_parameter_gradients_matching_finite_differences() {
    let net = every_layer_kind(31);
    assert_eq!((net.input_dim(), net.num_classes()), (98, 3));
    let x = random_inputs(3, 98, 32);
    let labels = [2, 0, 1];
    // Input gradient (the attack's path), one row at a time.
    for (i, &label) in labels.iter().enumerate() {
        let r = check_gradient(&net, x.row(i), label, 1e-5).unwrap();
        assert!(r.max_rel_error < 1e-6, "input gradient, row {i}: {r:?}");
    }
    // Parameter gradient (the trainer's path) of the batch.
    let (loss, g) = net.gradients(x.view(), &labels).unwrap();
    let mut probe = net.clone();
    let f = |p: ndarray::ArrayView1<'_, f64>| {
        probe.set_parameters(p).unwrap();
        let z = probe.logits(x.view()).unwrap();
        let mut dz = Array2::zeros(z.raw_dim());
        softmax_cross_entropy_batch(z.view(), &labels, dz.view_mut())
    };
    // Gradients here are 1e-5..1e-2: with h = 1e-5 the round-off (~1e-16 · loss / h ≈ 1e-11)
    // and the truncation (~h² ≈ 1e-10) stay far below both bounds.
    let r = check_gradient_fn(f, net.parameters().view(), g.as_flat(), 1e-5).unwrap();
    assert!(
        r.max_rel_error < 1e-5 && r.max_abs_error < 1e-9,
        "parameter gradient: {:?}",
        (r.max_rel_error, r.max_abs_error, r.worst_index)
    );
    assert!(loss.is_finite());
    // Every parameterised layer gets a non-zero gradient, and the views agree with the flat one.
    for l in [0, 2, 6, 8, 9] {
        assert!(g.weight(l).iter().any(|&v| v != 0.0), "layer {l}");
        assert!(g.bias(l).iter().any(|&v| v != 0.0), "layer {l}");
    }
    assert!(g.weight(1).is_empty() && g.bias(4).is_empty());
}

#[test]
fn any_weight_layout_works() {
    use intriguing::models::conv::{Conv2d, PaddingMode};
    // A convolution from a permuted (non-standard layout) array equals the standard one.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let hwio = ndarray::Array4::from_shape_simple_fn((3, 3, 2, 4), || rng.random_range(-1.0..1.0));
    let oihw = hwio.view().permuted_axes([3, 2, 0, 1]);
    assert!(!oihw.is_standard_layout());
    let b = Array1::zeros(4);
    let a = Conv2d::new(
        oihw.to_owned(),
        b.clone(),
        (2, 5, 5),
        1,
        0,
        PaddingMode::Zeros,
    )
    .unwrap();
    let std = oihw.as_standard_layout().into_owned();
    let s = Conv2d::new(std, b, (2, 5, 5), 1, 0, PaddingMode::Zeros).unwrap();
    let x = random_inputs(2, 50, 6);
    assert_eq!(a.forward(x.view()).unwrap(), s.forward(x.view()).unwrap());
    // A dense layer from a transposed view, inside an MLP.
    let w = Array2::from_shape_fn((3, 5), |(i, j)| (i * 5 + j) as f64 / 10.0);
    let wt = w.t().as_standard_layout().into_owned(); // [5, 3], row-major
    let fortran = wt.reversed_axes(); // [3, 5], column-major
    assert!(!fortran.is_standard_layout());
    // On its own, too: the constructor stores it row-major, so its parameter view is `w`'s.
    let alone = Dense::new(fortran.clone(), Array1::zeros(3), Activation::Tanh).unwrap();
    assert_eq!(
        intriguing::models::Module::params(&alone).0,
        w.as_slice().unwrap()
    );
    let m1 = Mlp::new(vec![
        Dense::new(fortran, Array1::zeros(3), Activation::Tanh).unwrap(),
    ])
    .unwrap();
    let m2 = Mlp::new(vec![
        Dense::new(w, Array1::zeros(3), Activation::Tanh).unwrap(),
    ])
    .unwrap();
    let x = random_inputs(4, 5, 7);
    assert_eq!(m1.logits(x.view()).unwrap(), m2.logits(x.view()).unwrap());
    assert_eq!(m1.parameters(), m2.parameters());
}

#[test]
fn absurd_sizes_are_typed_errors() {
    use intriguing::Error;
    use intriguing::models::conv::{Conv2d, MaxPool2d};
    assert!(matches!(
        Mlp::random(&[usize::MAX, 2], Activation::Relu, 0),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        Mlp::random(&[1 << 20, 1 << 20, 2], Activation::Relu, 0),
        Err(Error::InvalidConfig(_))
    ));
    assert!(Conv2d::random((usize::MAX, 2, 2), 2, 1, 1, 0, 0).is_err());
    assert!(Conv2d::random((1, 1 << 40, 1 << 40), 1, 1, 1, 0, 0).is_err());
    assert!(Conv2d::random((1, 8, 8), usize::MAX, 3, 1, 0, 0).is_err());
    assert!(Conv2d::random((1, 8, 8), 1, 3, 1, usize::MAX, 0).is_err());
    assert!(MaxPool2d::new((usize::MAX, 4, 4), 2, 2).is_err());
    assert!(intriguing::models::cnn::Cnn::lenet(usize::MAX, 2, 2, 0).is_err());
    assert!(intriguing::models::cnn::Cnn::lenet(2, 2, usize::MAX, 0).is_err());
}
