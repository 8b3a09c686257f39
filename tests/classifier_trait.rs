//! The `Classifier` trait's provided methods: object safety, validation and typed errors.

use intriguing::ClassifierExt;
use intriguing::classifier::{LogitsLoss, argmax, softmax_cross_entropy};
use intriguing::{Classifier, Error, Result};
use ndarray::{Array2, ArrayView2, ArrayViewMut2, array};
use std::sync::Arc;

/// Logits = x · Wᵀ + b; `poison` makes the model return NaN logits for inputs whose first
/// coordinate exceeds it.
struct Affine {
    w: Array2<f64>,
    b: ndarray::Array1<f64>,
    poison: Option<f64>,
}

impl Classifier for Affine {
    fn input_dim(&self) -> usize {
        self.w.ncols()
    }
    fn num_classes(&self) -> usize {
        self.w.nrows()
    }
    fn logits_into(&self, x: ArrayView2<'_, f64>, mut out: ArrayViewMut2<'_, f64>) -> Result<()> {
        out.assign(&(x.dot(&self.w.t()) + &self.b));
        if let Some(p) = self.poison {
            for (xr, mut zr) in x.rows().into_iter().zip(out.rows_mut()) {
                if xr[0] > p {
                    zr.fill(f64::NAN);
                }
            }
        }
        Ok(())
    }
    fn loss_gradient_into(
        &self,
        x: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        mut grad: ArrayViewMut2<'_, f64>,
    ) -> Result<f64> {
        let mut z = Array2::zeros((x.nrows(), self.num_classes()));
        self.logits_into(x, z.view_mut())?;
        let mut dz = Array2::zeros(z.raw_dim());
        let loss = seed(z.view(), dz.view_mut());
        grad.assign(&dz.dot(&self.w));
        Ok(loss)
    }
}

fn model(poison: Option<f64>) -> Affine {
    Affine {
        w: array![[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        b: array![0.0, 0.0, 0.5],
        poison,
    }
}

#[test]
fn works_through_dyn_box_and_arc() {
    let models: Vec<Box<dyn Classifier>> = vec![Box::new(model(None)), Box::new(model(None))];
    let x = array![[2.0, 1.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 0.0]];
    for m in &models {
        assert_eq!(m.predict_batch(x.view()).unwrap(), vec![0, 1, 2]);
    }
    let arc: Arc<dyn Classifier> = Arc::new(model(None));
    let r: &dyn Classifier = &*arc;
    assert_eq!(r.predict(x.row(1)).unwrap(), 1);
    assert_eq!(arc.error_rate(x.view(), &[0, 1, 1]).unwrap(), 1.0 / 3.0);
}

#[test]
fn probabilities_are_a_softmax() {
    let m = model(None);
    let p = m.probabilities(array![[1.0, 2.0, 3.0]].view()).unwrap();
    let z = [1.0f64, 2.0, 3.5];
    let s: f64 = z.iter().map(|v| v.exp()).sum();
    for k in 0..3 {
        assert!((p[[0, k]] - z[k].exp() / s).abs() < 1e-15);
    }
}

#[test]
fn cross_entropy_gradient_matches_closed_form() {
    // For an affine model the input gradient of CE is Wᵀ(softmax(z) − e_l).
    let m = model(None);
    let x = array![0.2, -0.1, 0.4];
    let (loss, g) = m.cross_entropy_gradient(x.view(), 1).unwrap();
    let z = array![0.2, -0.1, 0.9];
    let mut dz = ndarray::Array1::zeros(3);
    let expect = softmax_cross_entropy(z.view(), 1, dz.view_mut());
    assert!((loss - expect).abs() < 1e-15);
    for k in 0..3 {
        assert!((g[k] - dz[k]).abs() < 1e-15);
    }
}

#[test]
fn bad_inputs_are_typed_errors() {
    let m = model(None);
    assert!(matches!(
        m.predict(array![1.0, 2.0].view()),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        m.logits(array![[1.0, f64::INFINITY, 0.0]].view()),
        Err(Error::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        m.cross_entropy_gradient(array![1.0, 2.0, 3.0].view(), 3),
        Err(Error::LabelOutOfRange {
            label: 3,
            num_classes: 3
        })
    ));
    assert!(matches!(
        m.error_rate(array![[1.0, 2.0, 3.0]].view(), &[0, 1]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        m.error_rate(array![[1.0, 2.0, 3.0]].view(), &[7]),
        Err(Error::LabelOutOfRange { .. })
    ));
    assert!(matches!(
        m.error_rate(Array2::zeros((0, 3)).view(), &[]),
        Err(Error::InvalidConfig(_))
    ));
}

#[test]
fn a_model_returning_nan_is_reported_not_propagated() {
    let m = model(Some(0.5));
    assert_eq!(m.predict(array![0.1, 0.0, 0.0].view()).unwrap(), 2);
    assert!(matches!(
        m.predict(array![0.9, 0.0, 0.0].view()),
        Err(Error::ModelNonFinite { .. })
    ));
    assert!(matches!(
        m.cross_entropy_gradient(array![0.9, 0.0, 0.0].view(), 0),
        Err(Error::ModelNonFinite { .. })
    ));
}

#[test]
fn argmax_takes_the_first_of_ties_and_skips_nan() {
    assert_eq!(argmax(array![1.0, 3.0, 3.0].view()), 1);
    assert_eq!(argmax(array![f64::NAN, 0.5, 0.1].view()), 1);
    assert_eq!(argmax(array![f64::NAN, f64::NAN].view()), 0);
}

/// The points `origins.row(i) + t · directions.row(i)` formed by hand (the independent
/// computation the lines method must agree with).
fn formed(origins: &Array2<f64>, directions: &Array2<f64>, points: &[(usize, f64)]) -> Array2<f64> {
    let mut x = Array2::zeros((points.len(), origins.ncols()));
    for (j, &(i, t)) in points.iter().enumerate() {
        let p = &origins.row(i) + &(&directions.row(i) * t);
        x.row_mut(j).assign(&p);
    }
    x
}

/// Lines through a deterministic pseudo-random pattern: `lines` origins in [0, 1] and
/// directions in [-0.5, 0.5], and `per_line` points on each, interleaved across lines.
fn lines_case(
    n: usize,
    lines: usize,
    per_line: usize,
) -> (Array2<f64>, Array2<f64>, Vec<(usize, f64)>) {
    let o = Array2::from_shape_fn((lines, n), |(i, j)| ((i * 31 + j * 17) % 23) as f64 / 22.0);
    let d = Array2::from_shape_fn((lines, n), |(i, j)| {
        ((i * 7 + j * 13) % 19) as f64 / 18.0 - 0.5
    });
    let points = (0..per_line)
        .flat_map(|k| {
            (0..lines)
                .rev()
                .map(move |i| (i, (k as f64 + 0.5) / per_line as f64))
        })
        .collect();
    (o, d, points)
}

/// The provided method (a foreign model's default): exactly the logits of the formed points,
/// also through `&dyn`, `Box` and `Arc`.
#[test]
fn logits_on_lines_default_is_the_logits_of_the_points() {
    let (o, d, points) = lines_case(3, 4, 5);
    let m = model(None);
    let want = m.logits(formed(&o, &d, &points).view()).unwrap();
    assert_eq!(
        m.logits_on_lines(o.view(), d.view(), &points).unwrap(),
        want
    );
    let dynm: Box<dyn Classifier> = Box::new(model(None));
    assert_eq!(
        dynm.logits_on_lines(o.view(), d.view(), &points).unwrap(),
        want
    );
    let arc = Arc::new(model(None));
    assert_eq!(
        arc.logits_on_lines(o.view(), d.view(), &points).unwrap(),
        want
    );
    assert_eq!(
        m.logits_on_lines(o.view(), d.view(), &[]).unwrap().dim(),
        (0, 3)
    );
}

/// The crate's models map each line once through a dense first layer: the same logits as
/// the formed points to rounding, for every activation, a one-layer model, a dense-first
/// `Sequential<Layer>`, more points than one chunk (512), and a convolutional first layer
/// (which forms the points: exactly equal); `F32Gradients` gives its f64 model's.
#[test]
fn models_map_lines_as_they_map_the_points() {
    use intriguing::models::cnn::Cnn;
    use intriguing::models::{Activation, F32Gradients, Layer, Mlp, Sequential};
    let close = |a: &Array2<f64>, b: &Array2<f64>, what: &str| {
        assert_eq!(a.dim(), b.dim(), "{what}");
        let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let err = a
            .iter()
            .zip(b)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
        assert!(err <= 1e-12 * scale, "{what}: {err} (scale {scale})");
    };
    // Non-zero biases (`random` starts them at zero).
    let biased = |mut m: Mlp| {
        let p = m.parameters();
        let p = ndarray::Array1::from_shape_fn(p.len(), |i| p[i] + ((i % 11) as f64 - 5.0) / 20.0);
        m.set_parameters(p.view()).unwrap();
        m
    };
    for act in Activation::ALL {
        let mlp = biased(Mlp::random(&[20, 16, 12, 5], act, 3).unwrap());
        for (lines, per_line) in [(1, 1), (1, 8), (5, 3), (3, 200)] {
            let (o, d, points) = lines_case(20, lines, per_line);
            let got = mlp.logits_on_lines(o.view(), d.view(), &points).unwrap();
            let want = mlp.logits(formed(&o, &d, &points).view()).unwrap();
            close(&got, &want, &format!("{act:?}, {lines} × {per_line}"));
            let fast = F32Gradients::new(&mlp);
            assert_eq!(
                fast.logits_on_lines(o.view(), d.view(), &points).unwrap(),
                got
            );
        }
    }
    let (o, d, points) = lines_case(20, 3, 4);
    let one = biased(Mlp::random(&[20, 5], Activation::Identity, 4).unwrap());
    let want = one.logits(formed(&o, &d, &points).view()).unwrap();
    close(
        &one.logits_on_lines(o.view(), d.view(), &points).unwrap(),
        &want,
        "one layer",
    );
    let layers = Mlp::random(&[20, 9, 4], Activation::Tanh, 5)
        .unwrap()
        .into_layers();
    let seq = Sequential::new(vec![
        Layer::Dense(layers[0].clone()),
        Layer::RELU,
        Layer::Dense(layers[1].clone()),
    ])
    .unwrap();
    let want = seq.logits(formed(&o, &d, &points).view()).unwrap();
    close(
        &seq.logits_on_lines(o.view(), d.view(), &points).unwrap(),
        &want,
        "layers",
    );
    let cnn = Cnn::lenet(2, 3, 10, 6).unwrap();
    let (o, d, points) = lines_case(784, 2, 3);
    let want = cnn.logits(formed(&o, &d, &points).view()).unwrap();
    assert_eq!(
        cnn.logits_on_lines(o.view(), d.view(), &points).unwrap(),
        want
    );
}

/// Bad lines are typed errors, on the default and on the crate's models.
#[test]
fn logits_on_lines_bad_arguments_are_typed_errors() {
    use intriguing::models::{Activation, Mlp};
    let mlp = Mlp::random(&[3, 4, 3], Activation::Sigmoid, 1).unwrap();
    let affine = model(None);
    let models: [&dyn Classifier; 2] = [&mlp, &affine];
    let (o, d) = (array![[0.1, 0.2, 0.3]], array![[1.0, 0.0, -1.0]]);
    for m in models {
        assert!(matches!(
            m.logits_on_lines(o.view(), d.view(), &[(0, 0.5), (1, 0.5)]),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            m.logits_on_lines(o.view(), array![[1.0, 0.0]].view(), &[(0, 0.5)]),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            m.logits_on_lines(
                array![[0.1, 0.2]].view(),
                array![[1.0, 0.0]].view(),
                &[(0, 0.5)]
            ),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            m.logits_on_lines(o.view(), array![[1.0, f64::NAN, 0.0]].view(), &[(0, 0.5)]),
            Err(Error::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            m.logits_on_lines(o.view(), d.view(), &[(0, 0.5), (0, f64::INFINITY)]),
            Err(Error::NonFinite { index: 1, .. })
        ));
    }
    // NaN logits at one point of a line: the model's failure, not NaN labels.
    let poisoned = model(Some(0.5));
    assert!(matches!(
        poisoned.logits_on_lines(o.view(), d.view(), &[(0, 0.1), (0, 0.9)]),
        Err(Error::ModelNonFinite { .. })
    ));
    // The unchecked method checks its lines too, on the default and the crate's models.
    let mut out = Array2::zeros((1, 3));
    for m in models {
        assert!(matches!(
            m.logits_on_lines_into(o.view(), d.view(), &[(2, 0.5)], out.view_mut()),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            m.logits_on_lines_into(o.view(), array![[1.0]].view(), &[(0, 0.5)], out.view_mut()),
            Err(Error::ShapeMismatch { .. })
        ));
    }
    assert!(matches!(
        mlp.logits_on_lines_into(o.view(), d.view(), &[(0, 0.5), (0, 0.1)], out.view_mut()),
        Err(Error::ShapeMismatch { .. })
    ));
}
