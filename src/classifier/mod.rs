//! The [`Classifier`] trait, losses on logits, and a finite-difference gradient checker.
//!
//! Any differentiable model over `f64` inputs can be attacked by `intriguing` once it
//! implements [`Classifier`]: four required methods — input dimension, number of classes,
//! batch logits, and one forward + one backward pass that returns the gradient of a loss on
//! the logits ([`LogitsLoss`]) with respect to the inputs. Everything else (validated `logits`,
//! `predict`, `error_rate`, ...) comes with [`ClassifierExt`].
//!
//! # Examples
//!
//! A foreign model — a plain struct holding a weight matrix — in about twenty lines,
//! validated with the gradient checker:
//!
//! ```
//! use intriguing::classifier::{check_gradient, Classifier, ClassifierExt, LogitsLoss};
//! use intriguing::Result;
//! use ndarray::{array, Array2, ArrayView2, ArrayViewMut2};
//!
//! /// Logits = tanh(x) · Wᵀ.
//! struct TanhLinear { w: Array2<f64> } // [classes, inputs]
//!
//! impl Classifier for TanhLinear {
//!     fn input_dim(&self) -> usize { self.w.ncols() }
//!     fn num_classes(&self) -> usize { self.w.nrows() }
//!     fn logits_into(&self, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) -> Result<()> {
//!         out.assign(&x.mapv(f64::tanh).dot(&self.w.t()));
//!         Ok(())
//!     }
//!     fn loss_gradient_into(&self, x: ArrayView2<f64>, seed: LogitsLoss<'_>,
//!                           mut grad: ArrayViewMut2<f64>) -> Result<f64> {
//!         let h = x.mapv(f64::tanh);
//!         let z = h.dot(&self.w.t());                  // one forward pass
//!         let mut dz = Array2::zeros(z.raw_dim());
//!         let loss = seed(z.view(), dz.view_mut());    // dloss/dlogits from that same pass
//!         let dh = dz.dot(&self.w);                    // one backward pass
//!         grad.assign(&(&dh * &h.mapv(|t| 1.0 - t * t)));
//!         Ok(loss)
//!     }
//! }
//!
//! let model = TanhLinear { w: array![[1.0, -2.0, 0.5], [0.3, 0.7, -1.1]] };
//! let report = check_gradient(&model, array![0.2, -0.4, 0.9].view(), 1, 1e-5)?;
//! assert!(report.max_rel_error < 1e-6, "{report:?}");
//! assert_eq!(model.predict(array![0.2, -0.4, 0.9].view())?, 0);
//! # Ok::<(), intriguing::Error>(())
//! ```

mod gradcheck;
mod loss;

pub use gradcheck::{GradCheckReport, check_gradient, check_gradient_batch, check_gradient_fn};
pub use loss::{
    log_softmax_into, logsumexp, softmax_cross_entropy, softmax_cross_entropy_batch, softmax_into,
};

use crate::error::{Error, Result, Shape, check_finite};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2};

/// A loss on logits, the seed of one vector-Jacobian product: called once with the logits of
/// the current forward pass (`[n, num_classes]`) and a buffer of the same shape, it returns
/// the loss and writes `dloss/dlogits` into every entry of the buffer (whose initial contents
/// are unspecified).
pub type LogitsLoss<'a> = &'a mut dyn FnMut(ArrayView2<'_, f64>, ArrayViewMut2<'_, f64>) -> f64;

/// The former name of [`LogitsLoss`].
#[deprecated(note = "renamed to `LogitsLoss`")]
pub type LossSeed<'a> = LogitsLoss<'a>;

/// A differentiable classifier over `f64` inputs: the four methods an implementor writes,
/// and one provided method a model may override for speed
/// ([`logits_on_lines_into`](Classifier::logits_on_lines_into)).
///
/// The trait is object safe: `&dyn Classifier` and `Vec<Box<dyn Classifier>>` work.
/// Batches are rows: inputs are `[n, input_dim]`, logits `[n, num_classes]`. The validating
/// and convenience methods (`logits`, `predict`, `check_inputs`, ...) live in
/// [`ClassifierExt`], implemented for every `Classifier` and not overridable.
///
/// The two computational methods receive inputs whose shape the caller has already
/// checked (the [`ClassifierExt`] methods do the checking); they should not panic on any
/// finite input.
pub trait Classifier: Send + Sync {
    /// Length of one input row.
    fn input_dim(&self) -> usize;

    /// Number of classes (length of one logits row).
    fn num_classes(&self) -> usize;

    /// Writes the logits of a batch into `out` (`[n, num_classes]`).
    fn logits_into(&self, inputs: ArrayView2<'_, f64>, out: ArrayViewMut2<'_, f64>) -> Result<()>;

    /// One forward and one backward pass: computes the logits of `inputs`, calls `loss` once
    /// on those logits for the loss value and `dloss/dlogits`, and writes `dloss/dinputs`
    /// into `grad` (`[n, input_dim]`). Returns the value `loss` returned.
    fn loss_gradient_into(
        &self,
        inputs: ArrayView2<'_, f64>,
        loss: LogitsLoss<'_>,
        grad: ArrayViewMut2<'_, f64>,
    ) -> Result<f64>;

    /// The logits of points on lines (`[points.len(), num_classes]` into `out`): row `j` is
    /// the logits of `origins.row(i) + t · directions.row(i)` for `(i, t) = points[j]`
    /// (`origins` and `directions` `[lines, input_dim]`). The attack's boundary refinement
    /// predicts its points this way, several points on each line from a clean input.
    ///
    /// Provided: the default forms the points and calls
    /// [`logits_into`](Classifier::logits_into). A model whose first layer is affine can map
    /// each line's origin and direction once instead of every point (the crate's
    /// [`Sequential`](crate::models::Sequential) models whose first layer is
    /// [`Dense`](crate::models::Dense) do); an override must equal the default up to
    /// rounding. [`ClassifierExt::logits_on_lines`] checks the lines ([`check_lines`]) and
    /// that the inputs are finite; the default checks the lines again, so that a direct call
    /// with a bad line index is an error rather than a panic.
    fn logits_on_lines_into(
        &self,
        origins: ArrayView2<'_, f64>,
        directions: ArrayView2<'_, f64>,
        points: &[(usize, f64)],
        out: ArrayViewMut2<'_, f64>,
    ) -> Result<()> {
        check_lines(origins, directions, points, self.input_dim())?;
        let x = points_on_lines(origins, directions, points);
        self.logits_into(x.view(), out)
    }
}

/// Checks the lines of [`Classifier::logits_on_lines_into`]: `origins` `[lines, input_dim]`,
/// `directions` of the same shape, and every point's line `< lines`
/// ([`Error::ShapeMismatch`], [`Error::InvalidConfig`]).
pub fn check_lines(
    origins: ArrayView2<'_, f64>,
    directions: ArrayView2<'_, f64>,
    points: &[(usize, f64)],
    input_dim: usize,
) -> Result<()> {
    if origins.ncols() != input_dim {
        return Err(Error::ShapeMismatch {
            context: "line origins".into(),
            expected: Shape::Dims(vec![None, Some(input_dim)]),
            found: Shape::from(origins.shape()),
        });
    }
    if directions.dim() != origins.dim() {
        return Err(Error::ShapeMismatch {
            context: "line directions".into(),
            expected: Shape::from(origins.shape()),
            found: Shape::from(directions.shape()),
        });
    }
    let lines = origins.nrows();
    match points.iter().find(|(i, _)| *i >= lines) {
        Some(&(i, _)) => Err(Error::InvalidConfig(format!(
            "a point on line {i} of {lines} lines"
        ))),
        None => Ok(()),
    }
}

/// The points `origins.row(i) + t · directions.row(i)`, `(i, t)` in `points`, as rows.
pub(crate) fn points_on_lines(
    origins: ArrayView2<'_, f64>,
    directions: ArrayView2<'_, f64>,
    points: &[(usize, f64)],
) -> Array2<f64> {
    let mut x = Array2::zeros((points.len(), origins.ncols()));
    for (mut row, &(i, t)) in x.rows_mut().into_iter().zip(points) {
        for ((v, &o), &d) in row.iter_mut().zip(origins.row(i)).zip(directions.row(i)) {
            *v = o + t * d;
        }
    }
    x
}

/// Validation and convenience methods of every [`Classifier`] (blanket-implemented, so an
/// implementor cannot override the checks the attack relies on). In scope through
/// `use intriguing::prelude::*` or `use intriguing::ClassifierExt`.
pub trait ClassifierExt: Classifier {
    /// Checks that `inputs` is `[n, input_dim]` and finite.
    fn check_inputs(&self, inputs: ArrayView2<'_, f64>) -> Result<()> {
        if inputs.ncols() != self.input_dim() {
            return Err(Error::ShapeMismatch {
                context: "classifier inputs".into(),
                expected: Shape::Dims(vec![None, Some(self.input_dim())]),
                found: Shape::from(inputs.shape()),
            });
        }
        check_finite(inputs.iter(), "classifier inputs")
    }

    /// Checks that `label < num_classes`.
    fn check_label(&self, label: usize) -> Result<()> {
        if label >= self.num_classes() {
            return Err(Error::LabelOutOfRange {
                label,
                num_classes: self.num_classes(),
            });
        }
        Ok(())
    }

    /// Logits of a batch (`[n, num_classes]`), with inputs and outputs validated.
    fn logits(&self, inputs: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        self.check_inputs(inputs)?;
        let mut out = Array2::zeros((inputs.nrows(), self.num_classes()));
        model_call(|| self.logits_into(inputs, out.view_mut()))?;
        if out.iter().any(|v| !v.is_finite()) {
            return Err(Error::ModelNonFinite {
                what: "logits".into(),
            });
        }
        Ok(out)
    }

    /// Validated [`logits_on_lines_into`](Classifier::logits_on_lines_into): the logits of
    /// the points `origins.row(i) + t · directions.row(i)`, `(i, t)` in `points`
    /// (`[points.len(), num_classes]`). `origins` and `directions` must be
    /// `[lines, input_dim]` and finite, every `i < lines` and every `t` finite.
    ///
    /// ```
    /// use intriguing::ClassifierExt;
    /// use intriguing::models::{Activation, Mlp};
    /// use ndarray::array;
    ///
    /// let mlp = Mlp::random(&[3, 4, 2], Activation::Tanh, 7)?;
    /// let origins = array![[0.1, 0.2, 0.3]];
    /// let directions = array![[0.5, -0.5, 1.0]];
    /// let z = mlp.logits_on_lines(origins.view(), directions.view(), &[(0, 0.0), (0, 0.5)])?;
    /// // The same as the logits of the points themselves, up to rounding.
    /// let points = array![[0.1, 0.2, 0.3], [0.35, -0.05, 0.8]];
    /// let direct = mlp.logits(points.view())?;
    /// assert!((&z - &direct).iter().all(|d| d.abs() < 1e-12));
    /// assert!(mlp.logits_on_lines(origins.view(), directions.view(), &[(1, 0.0)]).is_err());
    /// # Ok::<(), intriguing::Error>(())
    /// ```
    fn logits_on_lines(
        &self,
        origins: ArrayView2<'_, f64>,
        directions: ArrayView2<'_, f64>,
        points: &[(usize, f64)],
    ) -> Result<Array2<f64>> {
        check_lines(origins, directions, points, self.input_dim())?;
        check_finite(origins.iter(), "line origins")?;
        check_finite(directions.iter(), "line directions")?;
        check_finite(points.iter().map(|(_, t)| t), "line parameters")?;
        let mut out = Array2::zeros((points.len(), self.num_classes()));
        model_call(|| self.logits_on_lines_into(origins, directions, points, out.view_mut()))?;
        if out.iter().any(|v| !v.is_finite()) {
            return Err(Error::ModelNonFinite {
                what: "logits".into(),
            });
        }
        Ok(out)
    }

    /// Logits of one input.
    fn logits_one(&self, x: ArrayView1<'_, f64>) -> Result<Array1<f64>> {
        let x2 = x
            .to_shape((1, x.len()))
            .map_err(|e| Error::shape("input", "1-D", e))?;
        Ok(self.logits(x2.view())?.row(0).to_owned())
    }

    /// Predicted class of one input (arg-max of the logits; the lowest index wins ties).
    fn predict(&self, x: ArrayView1<'_, f64>) -> Result<usize> {
        Ok(argmax(self.logits_one(x)?.view()))
    }

    /// Predicted classes of a batch.
    fn predict_batch(&self, inputs: ArrayView2<'_, f64>) -> Result<Vec<usize>> {
        let logits = self.logits(inputs)?;
        Ok(logits.rows().into_iter().map(argmax).collect())
    }

    /// Class probabilities (softmax of the logits) of a batch.
    fn probabilities(&self, inputs: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        let mut p = self.logits(inputs)?;
        for mut row in p.rows_mut() {
            let z = row.to_owned();
            softmax_into(z.view(), row.view_mut());
        }
        Ok(p)
    }

    /// Fraction of rows whose prediction differs from `labels`.
    fn error_rate(&self, inputs: ArrayView2<'_, f64>, labels: &[usize]) -> Result<f64> {
        if labels.len() != inputs.nrows() {
            return Err(Error::shape("labels", inputs.nrows(), labels.len()));
        }
        if labels.is_empty() {
            return Err(Error::InvalidConfig(
                "error_rate of an empty data set".into(),
            ));
        }
        for &l in labels {
            self.check_label(l)?;
        }
        let pred = self.predict_batch(inputs)?;
        let wrong = pred.iter().zip(labels).filter(|(p, l)| p != l).count();
        Ok(wrong as f64 / labels.len() as f64)
    }

    /// Validated [`loss_gradient_into`](Classifier::loss_gradient_into) that allocates the
    /// gradient: returns `(loss, dloss/dinputs)`.
    fn loss_gradient(
        &self,
        inputs: ArrayView2<'_, f64>,
        loss: LogitsLoss<'_>,
    ) -> Result<(f64, Array2<f64>)> {
        self.check_inputs(inputs)?;
        let mut grad = Array2::zeros(inputs.raw_dim());
        let value = model_call(|| self.loss_gradient_into(inputs, loss, grad.view_mut()))?;
        if !value.is_finite() || grad.iter().any(|v| !v.is_finite()) {
            return Err(Error::ModelNonFinite {
                what: "loss gradient".into(),
            });
        }
        Ok((value, grad))
    }

    /// Softmax cross-entropy of one input against `label`, and its gradient with respect to
    /// the input.
    fn cross_entropy_gradient(
        &self,
        x: ArrayView1<'_, f64>,
        label: usize,
    ) -> Result<(f64, Array1<f64>)> {
        self.check_label(label)?;
        let x2 = x
            .to_shape((1, x.len()))
            .map_err(|e| Error::shape("input", "1-D", e))?;
        let mut loss = |z: ArrayView2<'_, f64>, mut dz: ArrayViewMut2<'_, f64>| {
            softmax_cross_entropy(z.row(0), label, dz.row_mut(0))
        };
        let (value, g) = self.loss_gradient(x2.view(), &mut loss)?;
        Ok((value, g.row(0).to_owned()))
    }
}

impl<C: Classifier + ?Sized> ClassifierExt for C {}

/// Who a panic unwinding on this thread belongs to, recorded by the innermost guard it
/// unwinds through (see [`model_call`] and [`crate_callback`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PanicOwner {
    /// No guard saw the panic: it started in the crate outside any model call.
    Crate,
    /// It unwound out of a call into the model (and not out of a crate callback inside it).
    Model,
    /// It started in a crate callback (a `LogitsLoss`) the model was calling.
    CrateCallback,
}

thread_local! {
    /// The owner of the panic unwinding on this thread, set by the innermost guard.
    static PANIC_OWNER: std::cell::Cell<Option<PanicOwner>> = const { std::cell::Cell::new(None) };
}

/// Records, during unwinding, `owner` as the panic's owner unless an inner guard already did.
struct OwnerGuard(PanicOwner);

impl Drop for OwnerGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            PANIC_OWNER.with(|f| {
                if f.get().is_none() {
                    f.set(Some(self.0));
                }
            });
        }
    }
}

/// Runs `f` (a call into a model) so that a panic unwinding out of it is recorded as the
/// model's (see [`take_panic_owner`]), unless it started in a [`crate_callback`] inside it.
pub(crate) fn model_call<R>(f: impl FnOnce() -> R) -> R {
    let _guard = OwnerGuard(PanicOwner::Model);
    f()
}

/// Runs `f` (crate code the model calls back, e.g. the body of a `LogitsLoss`) so that a
/// panic starting in it is recorded as the crate's, not the model's.
pub(crate) fn crate_callback<R>(f: impl FnOnce() -> R) -> R {
    let _guard = OwnerGuard(PanicOwner::CrateCallback);
    f()
}

/// The owner of the last panic caught on this thread since the previous call (clears it):
/// [`PanicOwner::Crate`] when no guard saw it. Call it once before the guarded work too, so
/// that a stale mark from an earlier caught panic is not reused.
pub(crate) fn take_panic_owner() -> PanicOwner {
    PANIC_OWNER
        .with(|f| f.replace(None))
        .unwrap_or(PanicOwner::Crate)
}

/// The batch-row error for a caught panic: [`Error::ModelPanicked`] when it came out of the
/// model, [`Error::Internal`] (a bug in this crate) otherwise.
pub(crate) fn panic_error(row: usize, payload: Box<dyn std::any::Any + Send>) -> Error {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    match take_panic_owner() {
        PanicOwner::Model => Error::ModelPanicked { row, message },
        PanicOwner::Crate | PanicOwner::CrateCallback => Error::Internal { row, message },
    }
}

/// Index of the largest entry (the first one on ties; NaN entries are never chosen unless all
/// are NaN, in which case 0).
pub fn argmax(v: ArrayView1<'_, f64>) -> usize {
    let mut best = 0;
    let mut best_v = f64::NEG_INFINITY;
    for (i, &x) in v.iter().enumerate() {
        if x > best_v {
            best_v = x;
            best = i;
        }
    }
    best
}

/// Forwards the required methods through a pointer type.
macro_rules! forward_classifier {
    ($($ty:ty),*) => {$(
        impl<C: Classifier + ?Sized> Classifier for $ty {
            fn input_dim(&self) -> usize {
                (**self).input_dim()
            }
            fn num_classes(&self) -> usize {
                (**self).num_classes()
            }
            fn logits_into(
                &self,
                inputs: ArrayView2<'_, f64>,
                out: ArrayViewMut2<'_, f64>,
            ) -> Result<()> {
                (**self).logits_into(inputs, out)
            }
            fn loss_gradient_into(
                &self,
                inputs: ArrayView2<'_, f64>,
                loss: LogitsLoss<'_>,
                grad: ArrayViewMut2<'_, f64>,
            ) -> Result<f64> {
                (**self).loss_gradient_into(inputs, loss, grad)
            }
            fn logits_on_lines_into(
                &self,
                origins: ArrayView2<'_, f64>,
                directions: ArrayView2<'_, f64>,
                points: &[(usize, f64)],
                out: ArrayViewMut2<'_, f64>,
            ) -> Result<()> {
                (**self).logits_on_lines_into(origins, directions, points, out)
            }
        }
    )*};
}

forward_classifier!(&C, Box<C>, std::sync::Arc<C>);
