//! Central finite-difference gradient checking.

use super::{Classifier, softmax_cross_entropy};
use crate::classifier::ClassifierExt;
use crate::error::{Error, Result, check_finite};
use crate::validate;
use ndarray::{Array1, ArrayView1};

/// What [`check_gradient`] and [`check_gradient_fn`] found.
#[derive(Debug, Clone)]
pub struct GradCheckReport {
    /// The worst relative error over all coordinates:
    /// `|a_i - n_i| / max(|a_i|, |n_i|, 1e-3 · max_j max(|a_j|, |n_j|), 1e-300)`, where `a` is
    /// the analytic and `n` the numeric gradient. The floor keeps coordinates whose true
    /// derivative is ~0 from dominating through finite-difference round-off.
    pub max_rel_error: f64,
    /// The worst absolute error `max_i |a_i - n_i|`.
    pub max_abs_error: f64,
    /// The coordinate where the worst relative error occurred.
    pub worst_index: usize,
    /// The analytic gradient.
    pub analytic: Array1<f64>,
    /// The central finite-difference gradient.
    pub numeric: Array1<f64>,
}

/// Compares the gradient `analytic` of `f` at `x` with central differences of step `h`
/// (relative to `max(1, |x_i|)`).
///
/// Useful for any gradient, e.g. a model's weight gradients.
///
/// # Examples
///
/// ```
/// use intriguing::classifier::check_gradient_fn;
/// use ndarray::array;
/// let x = array![1.0, 2.0];
/// let grad = array![2.0 * 1.0, 3.0 * 4.0]; // d/dx of x0² + x1³
/// let r = check_gradient_fn(|v| v[0] * v[0] + v[1].powi(3), x.view(), grad.view(), 1e-5)?;
/// assert!(r.max_rel_error < 1e-8);
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn check_gradient_fn(
    mut f: impl FnMut(ArrayView1<'_, f64>) -> f64,
    x: ArrayView1<'_, f64>,
    analytic: ArrayView1<'_, f64>,
    h: f64,
) -> Result<GradCheckReport> {
    if analytic.len() != x.len() {
        return Err(Error::shape("analytic gradient", x.len(), analytic.len()));
    }
    validate::positive("finite-difference step", h)?;
    check_finite(x.iter(), "gradient check point")?;
    check_finite(analytic.iter(), "analytic gradient")?;
    let mut xp = x.to_owned();
    let mut numeric = Array1::zeros(x.len());
    for i in 0..x.len() {
        let xi = x[i];
        let step = h * xi.abs().max(1.0);
        xp[i] = xi + step;
        let fp = f(xp.view());
        xp[i] = xi - step;
        let fm = f(xp.view());
        xp[i] = xi;
        numeric[i] = (fp - fm) / (2.0 * step);
    }
    check_finite(numeric.iter(), "finite-difference gradient")?;
    let scale = analytic
        .iter()
        .chain(numeric.iter())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let floor = (1e-3 * scale).max(1e-300);
    let (mut worst, mut worst_index, mut max_abs) = (0.0f64, 0, 0.0f64);
    for (i, (a, n)) in analytic.iter().zip(numeric.iter()).enumerate() {
        let abs = (a - n).abs();
        let rel = abs / a.abs().max(n.abs()).max(floor);
        max_abs = max_abs.max(abs);
        if rel > worst {
            worst = rel;
            worst_index = i;
        }
    }
    Ok(GradCheckReport {
        max_rel_error: worst,
        max_abs_error: max_abs,
        worst_index,
        analytic: analytic.to_owned(),
        numeric,
    })
}

/// Checks a [`Classifier`]'s input gradient of the softmax cross-entropy against `label` at
/// `x`, by central differences of step `h`.
///
/// Call it when you implement [`Classifier`] for your own model: a correct backward pass gives
/// `max_rel_error` around 1e-8 or below; a wrong one gives errors of order 1.
///
/// Choosing `h`: the central difference errs by about `ε·|f|/h` (round-off, ε ≈ 2.2e-16) plus
/// `h²·|f'''|/6` (truncation). 1e-5 suits gradients of order 1; for models whose input
/// gradients are small next to the loss (sigmoid MLPs on MNIST: 1e-3 to 1e-4), the round-off
/// term dominates and 1e-4 gives the sharper check.
pub fn check_gradient<C: Classifier + ?Sized>(
    model: &C,
    x: ArrayView1<'_, f64>,
    label: usize,
    h: f64,
) -> Result<GradCheckReport> {
    model.check_label(label)?;
    let x2 = x
        .to_shape((1, x.len()))
        .map_err(|e| Error::shape("input", "1-D", e))?;
    model.check_inputs(x2.view())?;
    let (_, analytic) = model.cross_entropy_gradient(x, label)?;
    let mut tmp = Array1::zeros(model.num_classes());
    let mut failed = None;
    let f = |v: ArrayView1<'_, f64>| -> f64 {
        let v2 = v.insert_axis(ndarray::Axis(0));
        match model.logits(v2) {
            Ok(z) => softmax_cross_entropy(z.row(0), label, tmp.view_mut()),
            Err(e) => {
                failed.get_or_insert(e);
                f64::NAN
            }
        }
    };
    let report = check_gradient_fn(f, x, analytic.view(), h);
    if let Some(e) = failed {
        return Err(e);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classifier::LogitsLoss;
    use ndarray::{Array2, ArrayView2, ArrayViewMut2, array};

    /// Logits = W x, with a deliberately wrong backward pass when `bug` is set.
    struct Linear {
        w: Array2<f64>,
        bug: bool,
    }

    impl Classifier for Linear {
        fn input_dim(&self) -> usize {
            self.w.ncols()
        }
        fn num_classes(&self) -> usize {
            self.w.nrows()
        }
        fn logits_into(
            &self,
            x: ArrayView2<'_, f64>,
            mut out: ArrayViewMut2<'_, f64>,
        ) -> Result<()> {
            out.assign(&x.dot(&self.w.t()));
            Ok(())
        }
        fn loss_gradient_into(
            &self,
            x: ArrayView2<'_, f64>,
            seed: LogitsLoss<'_>,
            mut grad: ArrayViewMut2<'_, f64>,
        ) -> Result<f64> {
            let z = x.dot(&self.w.t());
            let mut dz = Array2::zeros(z.raw_dim());
            let loss = seed(z.view(), dz.view_mut());
            let w = if self.bug {
                self.w.t().to_owned()
            } else {
                self.w.clone()
            };
            grad.assign(&dz.dot(&w.slice(ndarray::s![.., ..x.ncols()])));
            Ok(loss)
        }
    }

    #[test]
    fn accepts_a_correct_gradient_and_catches_a_wrong_one() {
        let w = array![[1.0, -2.0], [0.5, 0.25]];
        let x = array![0.3, -0.7];
        let good = check_gradient(
            &Linear {
                w: w.clone(),
                bug: false,
            },
            x.view(),
            0,
            1e-5,
        )
        .unwrap();
        assert!(good.max_rel_error < 1e-8, "{good:?}");
        let bad = check_gradient(&Linear { w, bug: true }, x.view(), 0, 1e-5).unwrap();
        assert!(bad.max_rel_error > 0.1, "{bad:?}");
    }

    #[test]
    fn rejects_bad_arguments() {
        let m = Linear {
            w: array![[1.0, 0.0], [0.0, 1.0]],
            bug: false,
        };
        assert!(matches!(
            check_gradient(&m, array![0.0, 1.0].view(), 2, 1e-5),
            Err(Error::LabelOutOfRange {
                label: 2,
                num_classes: 2
            })
        ));
        assert!(matches!(
            check_gradient(&m, array![0.0, 1.0, 2.0].view(), 0, 1e-5),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            check_gradient(&m, array![f64::NAN, 1.0].view(), 0, 1e-5),
            Err(Error::NonFinite { .. })
        ));
        assert!(matches!(
            check_gradient(&m, array![0.0, 1.0].view(), 0, -1.0),
            Err(Error::InvalidConfig(_))
        ));
    }
}
