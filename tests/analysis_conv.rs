//! Conv2d / MaxPool2d / Cnn: forward against direct loops, adjointness, finite-difference
//! input and weight gradients; the Fourier bound against power iteration on the explicit
//! operator and against the closed form of 1×1 convolutions.

use intriguing::ClassifierExt;
use intriguing::analysis::{
    PowerIterationConfig, conv_fourier_bound, conv_operator_norm, conv_operator_norm_lanczos,
    lipschitz_report, spectral_norm,
};
use intriguing::classifier::{check_gradient, check_gradient_fn, softmax_cross_entropy_batch};
use intriguing::models::cnn::{Cnn, CnnLayer};
use intriguing::models::conv::{Conv2d, MaxPool2d, PaddingMode};
use intriguing::models::{Activation, Dense, Optimizer, TrainConfig, train};
use ndarray::{Array1, Array2, Array4, Axis};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn uniform(n: usize, lo: f64, hi: f64, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| lo + (hi - lo) * rng.random::<f64>())
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn random_conv(
    c_in: usize,
    c_out: usize,
    k: usize,
    hw: (usize, usize),
    stride: usize,
    pad: usize,
    mode: PaddingMode,
    seed: u64,
) -> Conv2d {
    let w = Array4::from_shape_vec(
        (c_out, c_in, k, k),
        uniform(c_out * c_in * k * k, -1.0, 1.0, seed),
    )
    .unwrap();
    let b = Array1::from(uniform(c_out, -0.5, 0.5, seed + 1));
    Conv2d::new(w, b, (c_in, hw.0, hw.1), stride, pad, mode).unwrap()
}

/// The textbook definition, written independently of the im2col path.
fn direct_conv(conv: &Conv2d, x: &[f64]) -> Vec<f64> {
    let w = conv.weight();
    let (c_out, c_in, kh, kw) = w.dim();
    let (_, h, wd) = conv.input_shape();
    let (_, ho, wo) = conv.output_shape();
    let (s, p) = (conv.stride() as isize, conv.padding() as isize);
    let mut y = vec![0.0; c_out * ho * wo];
    for o in 0..c_out {
        for i in 0..ho {
            for j in 0..wo {
                let mut acc = conv.bias()[o];
                for c in 0..c_in {
                    for a in 0..kh {
                        for b in 0..kw {
                            let mut r = i as isize * s + a as isize - p;
                            let mut q = j as isize * s + b as isize - p;
                            match conv.padding_mode() {
                                PaddingMode::Zeros => {
                                    if r < 0 || q < 0 || r >= h as isize || q >= wd as isize {
                                        continue;
                                    }
                                }
                                PaddingMode::Circular => {
                                    r = r.rem_euclid(h as isize);
                                    q = q.rem_euclid(wd as isize);
                                }
                            }
                            acc += w[[o, c, a, b]] * x[(c * h + r as usize) * wd + q as usize];
                        }
                    }
                }
                y[(o * ho + i) * wo + j] = acc;
            }
        }
    }
    y
}

#[test]
fn conv_forward_matches_direct_loops() {
    let cases = [
        (1, 3, 5, (12, 12), 1, 0, PaddingMode::Zeros),
        (2, 3, 3, (9, 7), 2, 1, PaddingMode::Zeros),
        (3, 2, 4, (8, 8), 3, 2, PaddingMode::Zeros),
        (2, 4, 3, (6, 6), 1, 1, PaddingMode::Circular),
        (2, 2, 5, (10, 8), 2, 2, PaddingMode::Circular),
    ];
    for (i, &(ci, co, k, hw, s, p, mode)) in cases.iter().enumerate() {
        let conv = random_conv(ci, co, k, hw, s, p, mode, 10 + i as u64);
        let n = 3;
        let x = Array2::from_shape_vec(
            (n, conv.input_dim()),
            uniform(n * conv.input_dim(), -1.0, 1.0, 50 + i as u64),
        )
        .unwrap();
        let y = conv.forward(x.view()).unwrap();
        for b in 0..n {
            let want = direct_conv(&conv, x.row(b).as_slice().unwrap());
            for (a, w) in y.row(b).iter().zip(&want) {
                assert!((a - w).abs() < 1e-12, "case {i}: {a} vs {w}");
            }
        }
    }
}

#[test]
fn conv_backward_is_the_adjoint() {
    // ⟨conv(x) − b, y⟩ = ⟨x, convᵀ y⟩ for random x, y.
    for (i, &(s, p, mode)) in [
        (1, 0, PaddingMode::Zeros),
        (2, 1, PaddingMode::Zeros),
        (1, 1, PaddingMode::Circular),
    ]
    .iter()
    .enumerate()
    {
        let conv = random_conv(3, 4, 3, (7, 9), s, p, mode, 70 + i as u64);
        let x = Array1::from(uniform(conv.input_dim(), -1.0, 1.0, 80 + i as u64));
        let y = Array2::from_shape_vec(
            (1, conv.output_dim()),
            uniform(conv.output_dim(), -1.0, 1.0, 90 + i as u64),
        )
        .unwrap();
        let lhs = conv.apply_linear(x.view()).unwrap().dot(&y.row(0));
        let rhs = x.dot(&conv.backward_input(y.view()).unwrap().row(0));
        assert!(
            (lhs - rhs).abs() < 1e-11 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
    }
}

#[test]
fn maxpool_forward_and_lipschitz_constant() {
    let pool = MaxPool2d::new((2, 4, 4), 2, 2).unwrap();
    let x =
        Array2::from_shape_vec((1, 32), (0..32).map(|v| ((v * 7) % 11) as f64).collect()).unwrap();
    let y = pool.forward(x.view()).unwrap();
    // Direct maxima.
    for c in 0..2 {
        for i in 0..2 {
            for j in 0..2 {
                let mut m = f64::NEG_INFINITY;
                for a in 0..2 {
                    for b in 0..2 {
                        m = m.max(x[[0, (c * 4 + 2 * i + a) * 4 + 2 * j + b]]);
                    }
                }
                assert_eq!(y[[0, (c * 2 + i) * 2 + j]], m);
            }
        }
    }
    assert_eq!(pool.lipschitz_constant(), 1.0);
    assert_eq!(
        MaxPool2d::new((1, 5, 5), 3, 1)
            .unwrap()
            .lipschitz_constant(),
        3.0
    );
    assert!(MaxPool2d::new((1, 2, 2), 3, 1).is_err());
    assert!(MaxPool2d::new((1, 4, 4), 2, 0).is_err());
}

fn small_cnn(seed: u64) -> Cnn {
    let conv1 = random_conv(1, 3, 3, (8, 8), 1, 1, PaddingMode::Zeros, seed);
    let pool = MaxPool2d::new(conv1.output_shape(), 2, 2).unwrap();
    let conv2 = random_conv(
        3,
        4,
        3,
        pool.output_shape().1.pow(1).pipe(|h| (h, h)),
        2,
        0,
        PaddingMode::Zeros,
        seed + 1,
    );
    let flat = conv2.output_dim();
    Cnn::new(vec![
        CnnLayer::Conv2d(conv1),
        CnnLayer::RELU,
        CnnLayer::MaxPool2d(pool),
        CnnLayer::Conv2d(conv2),
        CnnLayer::RELU,
        CnnLayer::Dense(linear(flat, 5, seed + 2)),
    ])
    .unwrap()
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl Pipe for usize {}

#[test]
fn cnn_input_gradient_matches_finite_differences() {
    for seed in 0..4 {
        let net = small_cnn(100 + seed);
        let x = Array1::from(uniform(64, 0.0, 1.0, 200 + seed));
        let r = check_gradient(&net, x.view(), (seed % 5) as usize, 1e-6).unwrap();
        assert!(r.max_rel_error < 1e-6, "seed {seed}: {r:?}");
    }
    let lenet = Cnn::lenet(3, 4, 16, 5).unwrap();
    let x = Array1::from(uniform(784, 0.0, 1.0, 300));
    let r = check_gradient(&lenet, x.view(), 7, 1e-6).unwrap();
    // Looser: with 784 inputs a few central differences straddle ReLU kinks.
    assert!(r.max_rel_error < 1e-5, "lenet: {}", r.max_rel_error);
}

#[test]
fn cnn_parameter_gradient_matches_finite_differences() {
    let net = small_cnn(400);
    let n = 4;
    let x = Array2::from_shape_vec((n, 64), uniform(n * 64, 0.0, 1.0, 401)).unwrap();
    let labels = [0, 3, 4, 1];
    let (loss, g) = net.gradients(x.view(), &labels).unwrap();
    let g = g.to_flat();
    let p0 = net.parameters();
    assert_eq!(g.len(), p0.len());
    let mut probe = net.clone();
    let f = |p: ndarray::ArrayView1<'_, f64>| {
        probe.set_parameters(p).unwrap();
        let z = probe.logits(x.view()).unwrap();
        let mut dz = Array2::zeros(z.raw_dim());
        softmax_cross_entropy_batch(z.view(), &labels, dz.view_mut())
    };
    let r = check_gradient_fn(f, p0.view(), g.view(), 1e-6).unwrap();
    assert!(r.max_rel_error < 1e-6, "{r:?}");
    assert!(loss.is_finite());
}

#[test]
fn layer_errors_instead_of_panics() {
    let w = Array4::zeros((2, 1, 3, 3));
    assert!(
        Conv2d::new(
            w.clone(),
            Array1::zeros(3),
            (1, 5, 5),
            1,
            0,
            PaddingMode::Zeros
        )
        .is_err()
    );
    assert!(
        Conv2d::new(
            w.clone(),
            Array1::zeros(2),
            (2, 5, 5),
            1,
            0,
            PaddingMode::Zeros
        )
        .is_err()
    );
    assert!(
        Conv2d::new(
            w.clone(),
            Array1::zeros(2),
            (1, 5, 5),
            0,
            0,
            PaddingMode::Zeros
        )
        .is_err()
    );
    assert!(
        Conv2d::new(
            w.clone(),
            Array1::zeros(2),
            (1, 2, 2),
            1,
            0,
            PaddingMode::Zeros
        )
        .is_err()
    );
    assert!(
        Conv2d::new(
            w.clone(),
            Array1::zeros(2),
            (1, 5, 5),
            1,
            2,
            PaddingMode::Circular
        )
        .is_err()
    );
    let mut bad = w.clone();
    bad[[0, 0, 0, 0]] = f64::NAN;
    assert!(Conv2d::new(bad, Array1::zeros(2), (1, 5, 5), 1, 0, PaddingMode::Zeros).is_err());
    let conv = Conv2d::new(w, Array1::zeros(2), (1, 5, 5), 1, 0, PaddingMode::Zeros).unwrap();
    assert!(conv.forward(Array2::zeros((1, 24)).view()).is_err());
    assert!(conv.backward_input(Array2::zeros((1, 3)).view()).is_err());
    // Mismatched layer chain.
    let c = random_conv(1, 2, 3, (6, 6), 1, 0, PaddingMode::Zeros, 1);
    assert!(Cnn::new(vec![CnnLayer::Conv2d(c), CnnLayer::Dense(linear(7, 3, 0))]).is_err());
    assert!(Cnn::new(vec![CnnLayer::RELU]).is_err());
    let net = small_cnn(5);
    assert!(
        net.logits(Array2::from_elem((1, 64), f64::NAN).view())
            .is_err()
    );
    assert!(net.logits(Array2::zeros((1, 63)).view()).is_err());
    assert!(
        net.gradients(Array2::zeros((2, 64)).view(), &[0, 9])
            .is_err()
    );
    assert!(
        net.hidden_representation(Array2::zeros((2, 64)).view(), 99)
            .is_err()
    );
}

#[test]
fn fourier_bound_equals_operator_norm_for_circular_convolutions() {
    let cfg = PowerIterationConfig::default();
    // (c_in, c_out, k, hw, stride, pad)
    let cases = [
        (1, 1, 3, (8, 8), 1, 1),
        (2, 3, 3, (10, 10), 1, 1),
        (3, 2, 5, (8, 12), 1, 2),
        (2, 3, 3, (8, 8), 2, 1),
        (1, 2, 5, (12, 12), 2, 2),
    ];
    for (i, &(ci, co, k, hw, s, p)) in cases.iter().enumerate() {
        let conv = random_conv(ci, co, k, hw, s, p, PaddingMode::Circular, 500 + i as u64);
        let fb = conv_fourier_bound(&conv).unwrap();
        assert!(fb.exact, "case {i}");
        let pi = conv_operator_norm(&conv, &cfg).unwrap();
        assert!(pi.converged, "case {i}");
        let rel = (fb.value - pi.value).abs() / fb.value;
        assert!(
            rel < 1e-8,
            "case {i}: fourier {} vs power {} (rel {rel:e})",
            fb.value,
            pi.value
        );
        let la = conv_operator_norm_lanczos(&conv, &cfg).unwrap();
        assert!(la.converged, "case {i}");
        assert!(
            (fb.value - la.value).abs() < 1e-8 * fb.value,
            "case {i}: lanczos {}",
            la.value
        );
    }
}

#[test]
fn fourier_bound_bounds_zero_padded_and_strided_convolutions() {
    let cfg = PowerIterationConfig::default();
    let cases = [
        (1, 6, 5, (28, 28), 1, 0),
        (6, 16, 5, (12, 12), 1, 0),
        (2, 3, 3, (9, 9), 2, 1),
        (3, 4, 4, (11, 10), 3, 1),
        (2, 2, 3, (7, 7), 1, 1),
    ];
    for (i, &(ci, co, k, hw, s, p)) in cases.iter().enumerate() {
        let conv = random_conv(ci, co, k, hw, s, p, PaddingMode::Zeros, 600 + i as u64);
        let fb = conv_fourier_bound(&conv).unwrap();
        assert!(!fb.exact);
        let pi = conv_operator_norm(&conv, &cfg).unwrap();
        assert!(
            pi.value <= fb.value * (1.0 + 1e-12),
            "case {i}: power {} > fourier {}",
            pi.value,
            fb.value
        );
        let la = conv_operator_norm_lanczos(&conv, &cfg).unwrap();
        assert!(
            la.converged && la.value <= fb.value * (1.0 + 1e-12),
            "case {i}: {la:?}"
        );
        // Both are Rayleigh quotients from below: the converged one is the larger.
        assert!(
            la.value >= pi.value * (1.0 - 1e-9),
            "case {i}: {} < {}",
            la.value,
            pi.value
        );
        if pi.converged {
            assert!((la.value - pi.value).abs() <= 1e-8 * la.value, "case {i}");
        }
        // And not absurdly loose on these sizes.
        assert!(
            pi.value >= 0.3 * fb.value,
            "case {i}: {} vs {}",
            pi.value,
            fb.value
        );
    }
    // Circular with a stride that does not divide the grid: the unstrided bound.
    let conv = random_conv(2, 2, 3, (9, 9), 2, 1, PaddingMode::Circular, 700);
    let fb = conv_fourier_bound(&conv).unwrap();
    assert_eq!(fb.stride_used, 1);
    let pi = conv_operator_norm(&conv, &cfg).unwrap();
    assert!(pi.value <= fb.value * (1.0 + 1e-12));
}

#[test]
fn one_by_one_convolution_has_the_channel_matrix_norm() {
    // A 1×1 convolution is the channel-mixing matrix applied at every pixel: its operator
    // norm is that matrix's largest singular value, on any grid and with zero padding 0.
    let conv = random_conv(5, 3, 1, (6, 7), 1, 0, PaddingMode::Zeros, 800);
    let m = conv
        .weight()
        .index_axis(Axis(3), 0)
        .index_axis(Axis(2), 0)
        .to_owned();
    let want = spectral_norm(m.view(), &PowerIterationConfig::default())
        .unwrap()
        .value;
    let fb = conv_fourier_bound(&conv).unwrap();
    assert!(
        (fb.value - want).abs() < 1e-10 * want,
        "{} vs {want}",
        fb.value
    );
    let pi = conv_operator_norm(&conv, &PowerIterationConfig::default()).unwrap();
    assert!((pi.value - want).abs() < 1e-10 * want);
}

#[test]
fn lenet_report_is_consistent() {
    let net = Cnn::lenet(6, 16, 120, 3).unwrap();
    let rep = lipschitz_report(&net, &PowerIterationConfig::default()).unwrap();
    let names: Vec<_> = rep.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["conv1", "conv2", "fc1", "fc2"]);
    assert_eq!(rep.layers[0].after, "relu, maxpool 2/2");
    assert_eq!(rep.layers[2].after, "relu");
    assert_eq!(rep.layers[3].after, "");
    let mut acc = 1.0;
    for l in &rep.layers {
        assert!(l.converged, "{l:?}");
        if let Some(fb) = l.fourier_bound {
            assert!(l.operator_norm <= fb * (1.0 + 1e-12));
            assert_eq!(l.bound, fb);
        } else {
            assert!(l.converged, "{l:?}");
            assert_eq!(l.bound, l.operator_norm);
        }
        acc *= l.bound * l.activation_constant;
        assert!((l.cumulative - acc).abs() <= 1e-12 * acc);
    }
    assert_eq!(rep.total(), acc);
    let md = rep.to_markdown();
    assert_eq!(md.lines().count(), 2 + 4);
}

#[test]
fn cnn_training_is_deterministic_reduces_the_loss_and_validates() {
    // 4 classes of 8×8 images told apart by which quadrant is bright.
    let n = 64;
    let mut x = Array2::from_shape_vec((n, 64), uniform(n * 64, 0.0, 0.3, 900)).unwrap();
    let labels: Vec<usize> = (0..n).map(|i| i % 4).collect();
    for (i, &l) in labels.iter().enumerate() {
        let (r0, c0) = ((l / 2) * 4, (l % 2) * 4);
        for r in r0..r0 + 4 {
            for c in c0..c0 + 4 {
                x[[i, r * 8 + c]] += 0.7;
            }
        }
    }
    let make = || {
        let conv = random_conv(1, 3, 3, (8, 8), 1, 1, PaddingMode::Zeros, 901);
        let pool = MaxPool2d::new(conv.output_shape(), 2, 2).unwrap();
        let flat = pool.output_dim();
        Cnn::new(vec![
            CnnLayer::Conv2d(conv),
            CnnLayer::RELU,
            CnnLayer::MaxPool2d(pool),
            CnnLayer::Dense(linear(flat, 4, 902)),
        ])
        .unwrap()
    };
    let cfg = TrainConfig::new()
        .with_optimizer(Optimizer::Sgd { momentum: 0.9 })
        .unwrap()
        .with_epochs(15)
        .unwrap()
        .with_batch_size(8)
        .unwrap()
        .with_learning_rate(0.05)
        .unwrap()
        .with_seed(3);
    let (mut a, mut b) = (make(), make());
    let ra = train(&mut a, x.view(), &labels, &cfg, |_, _| {}).unwrap();
    let rb = train(&mut b, x.view(), &labels, &cfg, |_, _| {}).unwrap();
    assert_eq!(a.parameters(), b.parameters());
    let (la, lb): (Vec<f64>, Vec<f64>) = (
        ra.epochs.iter().map(|e| e.loss).collect(),
        rb.epochs.iter().map(|e| e.loss).collect(),
    );
    assert_eq!(la, lb);
    assert!(la[14] < 0.3 * la[0], "{la:?}");
    assert_eq!(a.error_rate(x.view(), &labels).unwrap(), 0.0);
    // Validation: nothing trained on bad input.
    let before = a.parameters();
    assert!(train(&mut a, x.view(), &labels[..10], &cfg, |_, _| {}).is_err());
    assert!(train(&mut a, x.view(), &vec![4; n], &cfg, |_, _| {}).is_err());
    let mut bad = x.clone();
    bad[[3, 3]] = f64::NAN;
    assert!(train(&mut a, bad.view(), &labels, &cfg, |_, _| {}).is_err());
    assert_eq!(a.parameters(), before);
    assert!(TrainConfig::new().with_epochs(0).is_err());
    assert!(TrainConfig::new().with_batch_size(0).is_err());
    assert!(TrainConfig::new().with_learning_rate(-1.0).is_err());
    assert!(TrainConfig::new().with_momentum(1.0).is_err());
    assert!(
        TrainConfig::new()
            .with_uniform_weight_decay(f64::NAN)
            .is_err()
    );
    // A diverging learning rate ends in an error, not in NaN parameters.
    let mut c = make();
    let start = c.parameters();
    let wild = cfg.clone().with_learning_rate(1e300).unwrap();
    let r = train(&mut c, x.view(), &labels, &wild, |_, _| {});
    assert!(
        matches!(r, Err(intriguing::Error::ModelNonFinite { .. })),
        "{r:?}"
    );
    // Restored to the start of the failing epoch (the first one here).
    assert_eq!(c.parameters(), start);
}

/// A dense layer without activation, He-normal from `seed`.
fn linear(inputs: usize, outputs: usize, seed: u64) -> Dense {
    Dense::he_normal(
        inputs,
        outputs,
        Activation::Identity,
        &mut ChaCha8Rng::seed_from_u64(seed),
    )
    .unwrap()
}
