//! Central finite-difference gradient checking.

use super::{Classifier, softmax_cross_entropy};
use crate::classifier::ClassifierExt;
use crate::error::{Error, Result, check_finite};
use crate::validate;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis, s};

/// What [`check_gradient`], [`check_gradient_batch`] and [`check_gradient_fn`] found.
///
/// # How small is small enough
///
/// The central difference `(f(x + h) − f(x − h)) / 2h` errs by a truncation term
/// `h²·|f'''|/6` and a rounding term `≈ ε_f·|f|/h`, where `ε_f` is the relative error of one
/// evaluation of `f` (`f64`'s `ε ≈ 2.2e-16` times what the operations of a forward pass
/// accumulate: 1e-15 to 1e-13 for a network's loss). Both are absolute errors;
/// [`max_rel_error`](Self::max_rel_error) divides them by the size of the gradient, floored
/// at `1e-3` of the row's largest component, so the worst coordinate is one whose derivative is
/// near that floor and a *correct* gradient shows about
///
/// ```text
/// (h²·|f'''|/6 + ε_f·|f|/h) / (1e-3 · max_i |∂f/∂x_i|)
/// ```
///
/// With `h = 1e-5`, a loss of order 1 and input gradients of order 0.1 the rounding term
/// alone is `1e-14 / 1e-5 / 1e-4 = 1e-5`. Measured on random tanh, sigmoid and ReLU MLPs
/// (784-100-10 and 784-100-100-10, five MNIST test images each, three rows per check;
/// `cargo test --release --test classifier_gradcheck -- --nocapture`): 2e-8 to 4e-6 at
/// `h = 1e-5` and `1e-4`, up to 6e-5 at `h = 1e-6` (rounding grows ×10 per ÷10 in `h`); a
/// hand-written network that evaluates its loss less carefully reaches 1e-5 and more at
/// `h = 1e-5`. The 1e-8 region belongs to nearly linear functions. A wrong backward pass — a
/// missing factor, a transposed matrix, a row's gradient taken from another row — gives 0.1
/// to 1.
///
/// **Pass at `max_rel_error < 1e-3`**: over an order of magnitude above what round-off
/// produced in those measurements, two below what a bug produces. Between 1e-3 and 1e-1,
/// retry with `h` ×10 and ÷10 before drawing conclusions: rounding error falls with a larger
/// `h`, truncation error with a smaller one, a bug stays put. Piecewise-linear models (ReLU,
/// max-pooling) need a small `h`: a step that crosses a kink is no derivative (the ReLU
/// 784-100-100-10 above gives 0.59 at `h = 1e-3`). Models whose input gradients are small next
/// to their loss (sigmoid MLPs on MNIST) are in the rounding regime: `1e-4` is sharper there.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GradCheckReport {
    /// The worst relative error over all rows and coordinates:
    /// `|a_i - n_i| / max(|a_i|, |n_i|, 1e-3 · max_j max(|a_j|, |n_j|), 1e-300)`, where `a` is
    /// the analytic and `n` the numeric gradient of one row and `j` runs over that row. The
    /// floor keeps coordinates whose true derivative is ~0 from dominating through
    /// finite-difference round-off. See [the type's docs](GradCheckReport) for the threshold to use.
    pub max_rel_error: f64,
    /// The worst absolute error `max_i |a_i - n_i|`.
    pub max_abs_error: f64,
    /// The row where the worst relative error occurred (0 for [`check_gradient_fn`]).
    pub worst_row: usize,
    /// The coordinate (within [`worst_row`](Self::worst_row)) where the worst relative error
    /// occurred.
    pub worst_index: usize,
    /// The analytic gradient, one row per checked input (`[rows, dim]`; one row for
    /// [`check_gradient_fn`]).
    pub analytic: Array2<f64>,
    /// The central finite-difference gradient, same shape as `analytic`.
    pub numeric: Array2<f64>,
}

/// Compares the gradient `analytic` of `f` at `x` with central differences of step `h`
/// (relative to `max(1, |x_i|)`).
///
/// Useful for any gradient, e.g. a model's weight gradients. See [`GradCheckReport`] for how
/// to choose `h` and the pass threshold.
///
/// # Examples
///
/// ```
/// use intriguing::classifier::check_gradient_fn;
/// use ndarray::array;
/// let x = array![1.0, 2.0];
/// let grad = array![2.0 * 1.0, 3.0 * 4.0]; // d/dx of x0² + x1³
/// let r = check_gradient_fn(|v| v[0] * v[0] + v[1].powi(3), x.view(), grad.view(), 1e-5)?;
/// assert!(r.max_rel_error < 1e-8); // a cubic: truncation h²·f'''/6 ≈ 1e-10, tiny round-off
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
    Ok(compare(
        analytic.insert_axis(Axis(0)).to_owned(),
        numeric.insert_axis(Axis(0)),
    ))
}

/// Per-row relative comparison (see [`GradCheckReport::max_rel_error`]).
fn compare(analytic: Array2<f64>, numeric: Array2<f64>) -> GradCheckReport {
    let (mut worst, mut worst_row, mut worst_index, mut max_abs) = (0.0f64, 0, 0, 0.0f64);
    for (r, (a_row, n_row)) in analytic.rows().into_iter().zip(numeric.rows()).enumerate() {
        let scale = a_row
            .iter()
            .chain(n_row.iter())
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let floor = (1e-3 * scale).max(1e-300);
        for (i, (a, n)) in a_row.iter().zip(n_row.iter()).enumerate() {
            let abs = (a - n).abs();
            let rel = abs / a.abs().max(n.abs()).max(floor);
            max_abs = max_abs.max(abs);
            if rel > worst {
                worst = rel;
                worst_row = r;
                worst_index = i;
            }
        }
    }
    GradCheckReport {
        max_rel_error: worst,
        max_abs_error: max_abs,
        worst_row,
        worst_index,
        analytic,
        numeric,
    }
}

/// Checks a [`Classifier`]'s input gradient of the softmax cross-entropy against `label` at
/// `x`, by central differences of step `h`.
///
/// Call it when you implement [`Classifier`] for your own model. The gradient is computed the
/// way the attacks use it, in a batch: `x` is row 0 of a three-row batch whose other rows are
/// `x` against the label `(label + 1) mod k` and `x` with its coordinates reversed against
/// `(label + 2) mod k`; every row is checked against its own finite differences
/// ([`check_gradient_batch`]). A backward pass that mixes rows — e.g. copies row 0's gradient
/// to every row — therefore fails here although row 0 alone is right. The report's
/// `worst_row` says which row failed.
///
/// A correct backward pass gives `max_rel_error` from about 1e-9 to a few 1e-5 (round-off,
/// see [`GradCheckReport`]), a wrong one 0.1 to 1: pass at `< 1e-3`. `h = 1e-5` suits
/// gradients of order 0.1 to 1; for models whose input gradients are small next to the loss
/// (sigmoid MLPs on MNIST: 1e-3 to 1e-4) the round-off term dominates and `h = 1e-4` is
/// sharper.
///
/// # Examples
///
/// ```
/// use intriguing::classifier::check_gradient;
/// use intriguing::models::{Activation, Mlp};
/// use ndarray::Array1;
///
/// let mlp = Mlp::random(&[784, 100, 10], Activation::Sigmoid, 0)?;
/// let x = Array1::from_shape_fn(784, |i| (i % 17) as f64 / 16.0);
/// let report = check_gradient(&mlp, x.view(), 3, 1e-4)?;
/// assert!(report.max_rel_error < 1e-3, "{report:?}");
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn check_gradient<C: Classifier + ?Sized>(
    model: &C,
    x: ArrayView1<'_, f64>,
    label: usize,
    h: f64,
) -> Result<GradCheckReport> {
    model.check_label(label)?;
    let k = model.num_classes();
    let mut batch = Array2::zeros((3, x.len()));
    batch.row_mut(0).assign(&x);
    batch.row_mut(1).assign(&x);
    batch.row_mut(2).assign(&x.slice(s![..;-1]));
    let labels = [label, (label + 1) % k, (label + 2) % k];
    check_gradient_batch(model, batch.view(), &labels, h)
}

/// Checks a [`Classifier`]'s input gradients of the softmax cross-entropy of a whole batch:
/// row `i` of `inputs` against `labels[i]`, the analytic gradients from one
/// [`loss_gradient`](crate::classifier::ClassifierExt::loss_gradient) call on the batch (loss = the sum over rows),
/// the numeric ones by central differences of each row's own loss (step `h` relative to
/// `max(1, |x|)`, the perturbed rows evaluated in batches of 64 through
/// [`ClassifierExt::logits`](crate::classifier::ClassifierExt::logits)).
///
/// Row `i`'s loss depends on row `i` only, so each row's analytic gradient must match its own
/// finite differences: a backward pass that leaks one row into another fails. Threshold:
/// `max_rel_error < 1e-3` (see [`GradCheckReport`]).
///
/// # Examples
///
/// ```
/// use intriguing::classifier::check_gradient_batch;
/// use intriguing::models::{Activation, Mlp};
/// use ndarray::Array2;
///
/// let mlp = Mlp::random(&[20, 16, 4], Activation::Tanh, 1)?;
/// let x = Array2::from_shape_fn((5, 20), |(i, j)| ((3 * i + j) % 7) as f64 / 7.0);
/// let report = check_gradient_batch(&mlp, x.view(), &[0, 1, 2, 3, 0], 1e-5)?;
/// assert!(report.max_rel_error < 1e-3, "row {}: {report:?}", report.worst_row);
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn check_gradient_batch<C: Classifier + ?Sized>(
    model: &C,
    inputs: ArrayView2<'_, f64>,
    labels: &[usize],
    h: f64,
) -> Result<GradCheckReport> {
    if labels.len() != inputs.nrows() {
        return Err(Error::shape("labels", inputs.nrows(), labels.len()));
    }
    for &l in labels {
        model.check_label(l)?;
    }
    validate::positive("finite-difference step", h)?;
    model.check_inputs(inputs)?;
    if inputs.nrows() == 0 {
        return Err(Error::InvalidConfig(
            "gradient check of an empty batch".into(),
        ));
    }
    let mut seed = |z: ArrayView2<'_, f64>, mut dz: ArrayViewMut2<'_, f64>| {
        let mut total = 0.0;
        for (i, &l) in labels.iter().enumerate() {
            total += softmax_cross_entropy(z.row(i), l, dz.row_mut(i));
        }
        total
    };
    let (_, analytic) = model.loss_gradient(inputs, &mut seed)?;

    // Perturbed copies of one row: CHUNK coordinates, 2·CHUNK rows per logits call.
    const CHUNK: usize = 32;
    let d = inputs.ncols();
    let mut numeric = Array2::zeros(inputs.raw_dim());
    let mut block = Array2::zeros((2 * CHUNK.min(d), d));
    let mut tmp = Array1::zeros(model.num_classes());
    let mut steps = [0.0; CHUNK];
    for (r, (x, &label)) in inputs.rows().into_iter().zip(labels).enumerate() {
        for j0 in (0..d).step_by(CHUNK) {
            let m = CHUNK.min(d - j0);
            for (c, step) in steps.iter_mut().take(m).enumerate() {
                let j = j0 + c;
                *step = h * x[j].abs().max(1.0);
                for (sign, row) in [(1.0, 2 * c), (-1.0, 2 * c + 1)] {
                    let mut v = block.row_mut(row);
                    v.assign(&x);
                    v[j] = x[j] + sign * *step;
                }
            }
            let z = model.logits(block.slice(s![..2 * m, ..]))?;
            for (c, step) in steps.iter().take(m).enumerate() {
                let fp = softmax_cross_entropy(z.row(2 * c), label, tmp.view_mut());
                let fm = softmax_cross_entropy(z.row(2 * c + 1), label, tmp.view_mut());
                numeric[[r, j0 + c]] = (fp - fm) / (2.0 * step);
            }
        }
    }
    check_finite(numeric.iter(), "finite-difference gradient")?;
    Ok(compare(analytic, numeric))
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

    /// `tanh(x)·Wᵀ` with a correct backward pass, or one that copies row 0's gradient to
    /// every row of the batch (right for a single row, wrong for any batch).
    struct TanhNet {
        w: Array2<f64>,
        copy_row0: bool,
    }

    impl Classifier for TanhNet {
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
            out.assign(&x.mapv(f64::tanh).dot(&self.w.t()));
            Ok(())
        }
        fn loss_gradient_into(
            &self,
            x: ArrayView2<'_, f64>,
            seed: LogitsLoss<'_>,
            mut grad: ArrayViewMut2<'_, f64>,
        ) -> Result<f64> {
            let t = x.mapv(f64::tanh);
            let z = t.dot(&self.w.t());
            let mut dz = Array2::zeros(z.raw_dim());
            let loss = seed(z.view(), dz.view_mut());
            grad.assign(&(dz.dot(&self.w) * t.mapv(|v| 1.0 - v * v)));
            if self.copy_row0 {
                let row0 = grad.row(0).to_owned();
                for mut r in grad.rows_mut() {
                    r.assign(&row0);
                }
            }
            Ok(loss)
        }
    }

    fn tanh_net(copy_row0: bool) -> TanhNet {
        // 10 classes × 50 inputs, deterministic weights of order 1.
        let w = Array2::from_shape_fn((10, 50), |(i, j)| {
            ((i * 37 + j * 11) % 23) as f64 / 11.5 - 1.0
        });
        TanhNet { w, copy_row0 }
    }

    fn probe_input() -> Array1<f64> {
        Array1::from_shape_fn(50, |j| ((j * 7) % 13) as f64 / 13.0)
    }

    #[test]
    fn a_correct_tanh_net_passes_at_the_documented_threshold() {
        let m = tanh_net(false);
        let x = probe_input();
        for label in [0, 4, 9] {
            let r = check_gradient(&m, x.view(), label, 1e-5).unwrap();
            assert_eq!(r.analytic.nrows(), 3);
            assert!(r.max_rel_error < 1e-3, "label {label}: {r:?}");
        }
    }

    #[test]
    fn a_model_copying_row_0s_gradient_to_every_row_fails() {
        let bad = tanh_net(true);
        let x = probe_input();
        // A one-row check cannot see the bug ...
        let one = check_gradient_batch(&bad, x.view().insert_axis(Axis(0)), &[3], 1e-5).unwrap();
        assert!(one.max_rel_error < 1e-3, "{one:?}");
        // ... the three-row check of `check_gradient` does, on a row other than 0.
        let r = check_gradient(&bad, x.view(), 3, 1e-5).unwrap();
        assert!(r.max_rel_error > 0.1, "{r:?}");
        assert_ne!(r.worst_row, 0);
        // And so does any batch of distinct rows.
        let batch = Array2::from_shape_fn((4, 50), |(i, j)| ((i * 5 + j * 3) % 11) as f64 / 11.0);
        let r = check_gradient_batch(&bad, batch.view(), &[3, 3, 3, 3], 1e-5).unwrap();
        assert!(r.max_rel_error > 0.1, "{r:?}");
        let good =
            check_gradient_batch(&tanh_net(false), batch.view(), &[3, 3, 3, 3], 1e-5).unwrap();
        assert!(good.max_rel_error < 1e-3, "{good:?}");
    }

    #[test]
    fn batch_check_rejects_mismatched_labels_and_empty_batches() {
        let m = tanh_net(false);
        let x = Array2::zeros((2, 50));
        assert!(matches!(
            check_gradient_batch(&m, x.view(), &[0], 1e-5),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            check_gradient_batch(&m, x.view(), &[0, 10], 1e-5),
            Err(Error::LabelOutOfRange { label: 10, .. })
        ));
        assert!(matches!(
            check_gradient_batch(&m, Array2::zeros((0, 50)).view(), &[], 1e-5),
            Err(Error::InvalidConfig(_))
        ));
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
            Err(Error::InvalidParameter {
                name: "finite-difference step",
                ..
            })
        ));
    }
}
