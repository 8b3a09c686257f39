//! Operator norms: power iteration against closed forms (matrices built from known singular
//! values), against LAPACK's SVD (feature `linalg`), and its error handling.

use intriguing::Error;
use intriguing::analysis::{PowerIterationConfig, power_iteration, spectral_norm};
use ndarray::{Array1, Array2, array};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn gaussian(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((rows, cols), |_| {
        // Box–Muller, independent of the crate's sampler.
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    })
}

/// Orthonormal columns by modified Gram–Schmidt (twice, for accuracy).
fn orthonormal(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut q = gaussian(rows, cols, seed);
    for _ in 0..2 {
        for j in 0..cols {
            for i in 0..j {
                let d = q.column(i).dot(&q.column(j));
                let ci = q.column(i).to_owned();
                q.column_mut(j).scaled_add(-d, &ci);
            }
            let n = q.column(j).dot(&q.column(j)).sqrt();
            q.column_mut(j).mapv_inplace(|v| v / n);
        }
    }
    q
}

/// `U diag(s) Vᵀ` with random orthonormal `U` `[m, r]`, `V` `[n, r]`.
fn with_singular_values(m: usize, n: usize, s: &[f64], seed: u64) -> Array2<f64> {
    let r = s.len();
    let u = orthonormal(m, r, seed);
    let v = orthonormal(n, r, seed + 1000);
    let us = &u * &Array1::from(s.to_vec());
    us.dot(&v.t())
}

#[test]
fn known_singular_values_are_recovered() {
    let cfg = PowerIterationConfig::default();
    for (m, n, seed) in [(100, 784, 1), (784, 100, 2), (10, 100, 3), (50, 50, 4)] {
        let r = m.min(n).min(20);
        let s: Vec<f64> = (0..r).map(|i| 3.0 * 0.9f64.powi(i as i32)).collect();
        let w = with_singular_values(m, n, &s, seed);
        let est = spectral_norm(w.view(), &cfg).unwrap();
        assert!(est.converged, "{m}x{n}: {est:?}");
        assert!(
            (est.value - 3.0).abs() <= 1e-10 * 3.0,
            "{m}x{n}: {} vs 3 after {} its",
            est.value,
            est.iterations
        );
        // The Rayleigh quotient approaches from below (up to rounding).
        assert!(est.value <= 3.0 * (1.0 + 1e-14));
    }
}

#[test]
fn close_top_singular_values_still_converge_to_the_largest() {
    // Relative gap 1e-3: the plateau a change-only rule could stop on.
    let s = [2.0, 2.0 * (1.0 - 1e-3), 1.0, 0.5];
    let w = with_singular_values(60, 40, &s, 7);
    let est = spectral_norm(w.view(), &PowerIterationConfig::default()).unwrap();
    assert!(est.converged);
    assert!((est.value - 2.0).abs() <= 1e-9 * 2.0, "{est:?}");
    // A loose change-only rule stops far earlier and is less accurate: the residual test
    // is what forces the extra iterations.
    let loose = PowerIterationConfig::default()
        .with_tol(1e-6)
        .unwrap()
        .with_residual_tol(0.5)
        .unwrap();
    let early = spectral_norm(w.view(), &loose).unwrap();
    assert!(early.iterations < est.iterations);
}

#[test]
fn repeated_top_singular_value_is_fine() {
    let s = [1.5, 1.5, 1.5, 0.2];
    let w = with_singular_values(30, 20, &s, 9);
    let est = spectral_norm(w.view(), &PowerIterationConfig::default()).unwrap();
    assert!(est.converged && (est.value - 1.5).abs() < 1e-12, "{est:?}");
}

#[test]
fn closed_forms_rank_one_diagonal_and_zero() {
    let cfg = PowerIterationConfig::default();
    // Rank one: σ = ‖u‖‖v‖.
    let u = array![1.0, -2.0, 2.0];
    let v = array![3.0, 4.0];
    let w = u
        .clone()
        .insert_axis(ndarray::Axis(1))
        .dot(&v.insert_axis(ndarray::Axis(0)));
    let est = spectral_norm(w.view(), &cfg).unwrap();
    assert!((est.value - 15.0).abs() < 1e-12, "{est:?}");
    // Diagonal with negative entries.
    let d = array![[0.5, 0.0, 0.0], [0.0, -4.0, 0.0]];
    assert!((spectral_norm(d.view(), &cfg).unwrap().value - 4.0).abs() < 1e-12);
    // Zero matrix.
    let z = Array2::<f64>::zeros((4, 6));
    let est = spectral_norm(z.view(), &cfg).unwrap();
    assert_eq!(est.value, 0.0);
    assert!(est.converged);
}

#[test]
fn operator_form_matches_dense_form() {
    let w = gaussian(30, 70, 11);
    let cfg = PowerIterationConfig::default();
    let dense = spectral_norm(w.view(), &cfg).unwrap();
    let op = power_iteration(
        70,
        |v, mut out| {
            out.assign(&w.t().dot(&w.dot(&v)));
            Ok(())
        },
        &cfg,
    )
    .unwrap();
    assert!((dense.value - op.value).abs() <= 1e-10 * dense.value);
}

#[test]
fn deterministic_for_a_seed() {
    let w = gaussian(40, 30, 12);
    let cfg = PowerIterationConfig::default().with_seed(99);
    let a = spectral_norm(w.view(), &cfg).unwrap();
    let b = spectral_norm(w.view(), &cfg).unwrap();
    assert_eq!(a, b);
}

#[test]
fn errors_instead_of_panics() {
    let cfg = PowerIterationConfig::default();
    let mut w = gaussian(5, 5, 13);
    w[[2, 3]] = f64::NAN;
    assert!(matches!(
        spectral_norm(w.view(), &cfg),
        Err(Error::NonFinite { .. })
    ));
    let e = Array2::<f64>::zeros((0, 3));
    assert!(matches!(
        spectral_norm(e.view(), &cfg),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(PowerIterationConfig::default().with_tol(0.0).is_err());
    assert!(PowerIterationConfig::default().with_tol(f64::NAN).is_err());
    assert!(
        PowerIterationConfig::default()
            .with_residual_tol(1.5)
            .is_err()
    );
    assert!(
        PowerIterationConfig::default()
            .with_max_iterations(0)
            .is_err()
    );
    // An operator returning NaN.
    let r = power_iteration(
        3,
        |_, mut out| {
            out.fill(f64::NAN);
            Ok(())
        },
        &cfg,
    );
    assert!(matches!(r, Err(Error::NonFinite { .. })));
    // Iteration cap: an honest "not converged", not an error.
    let w = with_singular_values(20, 20, &[1.0, 0.999, 0.5], 14);
    let capped = PowerIterationConfig::default()
        .with_max_iterations(3)
        .unwrap();
    let est = spectral_norm(w.view(), &capped).unwrap();
    assert!(!est.converged && est.iterations == 3 && est.value <= 1.0 + 1e-12);
}

#[cfg(feature = "linalg")]
#[test]
fn power_iteration_agrees_with_lapack_svd() {
    use intriguing::analysis::spectral_norm_svd;
    let cfg = PowerIterationConfig::default();
    for (m, n, seed) in [
        (100, 784, 21),
        (784, 100, 22),
        (10, 100, 23),
        (200, 200, 24),
        (1, 17, 25),
    ] {
        let w = gaussian(m, n, seed);
        let exact = spectral_norm_svd(w.view()).unwrap();
        let est = spectral_norm(w.view(), &cfg).unwrap();
        assert!(est.converged, "{m}x{n}");
        let rel = (est.value - exact).abs() / exact;
        assert!(
            rel <= 1e-8,
            "{m}x{n}: power {} vs svd {exact}: rel {rel:e}",
            est.value
        );
        let la = intriguing::analysis::lanczos(
            n,
            |v, mut out| {
                out.assign(&w.t().dot(&w.dot(&v)));
                Ok(())
            },
            &cfg,
        )
        .unwrap();
        let rel = (la.value - exact).abs() / exact;
        assert!(
            la.converged && rel <= 1e-8,
            "{m}x{n}: lanczos {} vs svd {exact}",
            la.value
        );
    }
    // Also on a structured matrix with a small relative gap (1e-2).
    let w = with_singular_values(80, 60, &[1.0, 0.99, 0.5], 26);
    let exact = spectral_norm_svd(w.view()).unwrap();
    let est = spectral_norm(w.view(), &cfg).unwrap();
    assert!((est.value - exact).abs() <= 1e-8 * exact);
    let mut bad = w.clone();
    bad[[0, 0]] = f64::INFINITY;
    assert!(spectral_norm_svd(bad.view()).is_err());
}

mod reports {
    use intriguing::analysis::{PowerIterationConfig, lipschitz_report, spectral_norm};
    use intriguing::models::cnn::Cnn;
    use intriguing::models::{Activation, Mlp};
    use intriguing::{Classifier, ClassifierExt};
    use ndarray::{Array2, Axis};
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn mlp_report_rows_are_the_layer_norms_and_activation_constants() {
        let cfg = PowerIterationConfig::default();
        for (act, c) in [
            (Activation::Sigmoid, 0.25),
            (Activation::Tanh, 1.0),
            (Activation::Relu, 1.0),
        ] {
            let mlp = Mlp::random(&[20, 15, 12, 5], act, 3).unwrap();
            let rep = lipschitz_report(&mlp, &cfg).unwrap();
            assert_eq!(rep.layers.len(), 3);
            let mut acc = 1.0;
            for (row, d) in rep.layers.iter().zip(mlp.layers()) {
                let want = spectral_norm(d.weight.view(), &cfg).unwrap().value;
                assert_eq!(row.operator_norm, want);
                acc *= want * row.activation_constant;
                assert!((row.cumulative - acc).abs() <= 1e-12 * acc);
            }
            assert_eq!(rep.layers[0].activation_constant, c);
            assert_eq!(rep.layers[1].activation_constant, c);
            assert_eq!(rep.layers[2].activation_constant, 1.0);
            assert_eq!(rep.layers[0].after, act.name());
            let prev = rep.layers[1].cumulative;
            assert!((rep.penultimate() - prev).abs() <= 1e-15 * prev);
        }
    }

    /// The upper bound must dominate every observed difference quotient
    /// ‖f(x) − f(x')‖ / ‖x − x'‖, including along the worst direction found by a few
    /// gradient-ascent steps on that quotient for nearby pairs.
    fn check_dominates(model: &dyn Classifier, bound: f64, dim: usize, seed: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut worst = 0.0f64;
        for _ in 0..200 {
            let x = Array2::from_shape_fn((1, dim), |_| rng.random::<f64>());
            let scale = if rng.random::<f64>() < 0.5 { 1e-3 } else { 0.3 };
            let d = Array2::from_shape_fn((1, dim), |_| scale * (rng.random::<f64>() - 0.5));
            let zx = model.logits(x.view()).unwrap();
            let zy = model.logits((&x + &d).view()).unwrap();
            let q = (&zx - &zy).mapv(|v| v * v).sum().sqrt() / d.mapv(|v| v * v).sum().sqrt();
            worst = worst.max(q);
        }
        // The input gradient of (z_i − z_j)·u for unit u is a lower bound on the Lipschitz
        // constant too: ‖∇⟨u, z⟩‖ ≤ L.
        for _ in 0..50 {
            let x = Array2::from_shape_fn((1, dim), |_| rng.random::<f64>());
            let k = model.num_classes();
            let u: Vec<f64> = (0..k).map(|_| rng.random::<f64>() - 0.5).collect();
            let n = u.iter().map(|v| v * v).sum::<f64>().sqrt();
            let mut seed = |z: ndarray::ArrayView2<'_, f64>,
                            mut dz: ndarray::ArrayViewMut2<'_, f64>| {
                for j in 0..k {
                    dz[[0, j]] = u[j] / n;
                }
                z.row(0).iter().zip(&u).map(|(a, b)| a * b / n).sum()
            };
            let (_, g) = model.loss_gradient(x.view(), &mut seed).unwrap();
            worst = worst.max(g.index_axis(Axis(0), 0).mapv(|v| v * v).sum().sqrt());
        }
        assert!(worst > 0.0);
        assert!(worst <= bound, "observed {worst} > bound {bound}");
    }

    #[test]
    fn upper_bound_dominates_observed_difference_quotients() {
        let cfg = PowerIterationConfig::default();
        for (i, act) in [Activation::Sigmoid, Activation::Tanh, Activation::Relu]
            .into_iter()
            .enumerate()
        {
            let mlp = Mlp::random(&[30, 20, 10], act, 10 + i as u64).unwrap();
            let bound = lipschitz_report(&mlp, &cfg).unwrap().total();
            check_dominates(&mlp, bound, 30, i as u64);
        }
        // A linear model and a LeNet-style CNN.
        let lin = Mlp::random(&[30, 10], Activation::Identity, 20).unwrap();
        let bound = lipschitz_report(&lin, &cfg).unwrap().total();
        check_dominates(&lin, bound, 30, 5);
        let cnn = Cnn::lenet(3, 4, 16, 21).unwrap();
        let bound = lipschitz_report(&cnn, &cfg).unwrap().total();
        check_dominates(&cnn, bound, 784, 6);
    }
}

mod lanczos_tests {
    use super::{gaussian, with_singular_values};
    use intriguing::analysis::{PowerIterationConfig, lanczos, power_iteration, spectral_norm};
    use ndarray::Array2;

    fn gram_of(
        w: &Array2<f64>,
    ) -> impl FnMut(
        ndarray::ArrayView1<'_, f64>,
        ndarray::ArrayViewMut1<'_, f64>,
    ) -> intriguing::Result<()>
    + '_ {
        move |v, mut out| {
            out.assign(&w.t().dot(&w.dot(&v)));
            Ok(())
        }
    }

    #[test]
    fn lanczos_recovers_known_and_clustered_singular_values() {
        let cfg = PowerIterationConfig::default();
        // Well separated, clustered (gap 1e-4) and repeated tops; small and large dims.
        let cases: [(usize, usize, Vec<f64>); 4] = [
            (100, 80, (0..20).map(|i| 3.0 * 0.9f64.powi(i)).collect()),
            (
                120,
                90,
                vec![2.0, 2.0 * (1.0 - 1e-4), 2.0 * (1.0 - 2e-4), 1.0],
            ),
            (40, 30, vec![1.5, 1.5, 1.5, 0.2]),
            (5, 3, vec![4.0, 1.0, 0.5]),
        ];
        for (i, (m, n, s)) in cases.iter().enumerate() {
            let w = with_singular_values(*m, *n, s, 40 + i as u64);
            let r = lanczos(*n, gram_of(&w), &cfg).unwrap();
            assert!(r.converged, "case {i}: {r:?}");
            assert!(
                (r.value - s[0]).abs() <= 1e-9 * s[0],
                "case {i}: {} vs {}",
                r.value,
                s[0]
            );
            assert!(r.value <= s[0] * (1.0 + 1e-13));
        }
    }

    #[test]
    fn lanczos_agrees_with_power_iteration_and_needs_fewer_applications() {
        let cfg = PowerIterationConfig::default();
        let w = gaussian(300, 200, 50);
        let p = power_iteration(200, gram_of(&w), &cfg).unwrap();
        let l = lanczos(200, gram_of(&w), &cfg).unwrap();
        assert!(p.converged && l.converged);
        assert!(
            (p.value - l.value).abs() <= 1e-10 * p.value,
            "{} vs {}",
            p.value,
            l.value
        );
        assert!(
            l.iterations < p.iterations,
            "{} vs {}",
            l.iterations,
            p.iterations
        );
        let d = spectral_norm(w.view(), &cfg).unwrap();
        assert_eq!(d.value, p.value);
    }

    #[test]
    fn lanczos_edge_cases() {
        let cfg = PowerIterationConfig::default();
        // 1-D and zero operators.
        let r = lanczos(
            1,
            |v, mut out| {
                out[0] = 9.0 * v[0];
                Ok(())
            },
            &cfg,
        )
        .unwrap();
        assert!(r.converged && (r.value - 3.0).abs() < 1e-14);
        let z = lanczos(
            7,
            |_, mut out| {
                out.fill(0.0);
                Ok(())
            },
            &cfg,
        )
        .unwrap();
        assert_eq!(z.value, 0.0);
        assert!(lanczos(0, |_, _| Ok(()), &cfg).is_err());
        let nan = lanczos(
            4,
            |_, mut out| {
                out.fill(f64::NAN);
                Ok(())
            },
            &cfg,
        );
        assert!(nan.is_err());
        // Iteration cap: not converged, still a lower estimate.
        let w = with_singular_values(200, 150, &[1.0, 1.0 - 1e-9, 0.999, 0.5], 60);
        let capped = PowerIterationConfig::default()
            .with_max_iterations(5)
            .unwrap();
        let r = lanczos(150, gram_of(&w), &capped).unwrap();
        assert!(r.iterations <= 6 && r.value <= 1.0 + 1e-12);
    }
}

/// Issue 13: huge and tiny matrices are scaled by a power of two before the Gram products,
/// so 1e±200 and 1e±300 entries neither overflow (an error) nor underflow (a false 0).
#[test]
fn extreme_magnitudes_give_the_scaled_norm() {
    let cfg = PowerIterationConfig::default();
    // [[3, 0], [4, 0]] has σ₁ = 5; [[2, 1], [1, 2]] has σ₁ = 3.
    for (base, sigma) in [
        (ndarray::array![[3.0, 0.0], [4.0, 0.0]], 5.0),
        (ndarray::array![[2.0, 1.0], [1.0, 2.0]], 3.0),
    ] {
        for s in [1e200, 1e-200, 1e300, 1e-300, 1e-310, 1e307] {
            let w = &base * s;
            let r = spectral_norm(w.view(), &cfg).unwrap();
            let want = sigma * s;
            assert!(r.converged, "{s}");
            assert!(
                (r.value - want).abs() <= 1e-12 * want,
                "scale {s}: {} vs {want}",
                r.value
            );
        }
    }
    // Scaling by a power of two is exact: the result is bit-identical up to the factor.
    let w = ndarray::array![[0.3, -1.7, 0.2], [0.9, 0.4, -0.6]];
    let a = spectral_norm(w.view(), &cfg).unwrap();
    let b = spectral_norm((&w * 2f64.powi(600)).view(), &cfg).unwrap();
    assert_eq!(a.value * 2f64.powi(600), b.value);
    assert_eq!(a.iterations, b.iterations);
}
