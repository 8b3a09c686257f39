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
