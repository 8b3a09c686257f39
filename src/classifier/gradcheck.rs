//! Central finite-difference gradient checking.

use super::{Classifier, softmax_cross_entropy};
use crate::error::{Error, Result, check_finite};
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
    if !(h.is_finite() && h > 0.0) {
        return Err(Error::InvalidConfig(format!(
            "finite-difference step must be > 0, got {h}"
        )));
    }
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
/// `x`, by central differences of step `h` (1e-5 is a good default in `f64`).
///
/// Call it when you implement [`Classifier`] for your own model: a correct backward pass gives
/// `max_rel_error` around 1e-8 or below; a wrong one gives errors of order 1.
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
