//! The MLP's input and weight gradients against central finite differences, for every
//! activation, and the batched (matrix-product) path against the single-row path.
#![allow(clippy::needless_range_loop)] // index loops mirror the formulas

use intriguing::ClassifierExt;
use intriguing::classifier::{
    LogitsLoss, check_gradient, check_gradient_fn, softmax_cross_entropy,
    softmax_cross_entropy_batch,
};
use intriguing::models::{Activation, Dense, Mlp};
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
        assert!((grads.biases[0][o] - r[o]).abs() < 1e-14);
        for j in 0..3 {
            assert!((grads.weights[0][[o, j]] - r[o] * x[j]).abs() < 1e-14);
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
