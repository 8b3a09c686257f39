//! Small hand-written classifiers shared by the attack tests (`#[path]`-included; this file
//! itself has no tests).
#![allow(dead_code)]

use intriguing::Result;
use intriguing::classifier::{Classifier, LogitsLoss};
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Affine model: logits = W x + b, W `[classes, inputs]`.
#[derive(Debug, Clone)]
pub struct Linear {
    pub w: Array2<f64>,
    pub b: Array1<f64>,
}

impl Linear {
    /// Two classes with logits `(0, w·x + b)`: class 1 iff `w·x + b > 0`.
    pub fn two_class(w: Array1<f64>, b: f64) -> Self {
        let n = w.len();
        let mut wm = Array2::zeros((2, n));
        wm.row_mut(1).assign(&w);
        Linear {
            w: wm,
            b: ndarray::array![0.0, b],
        }
    }
}

impl Classifier for Linear {
    fn input_dim(&self) -> usize {
        self.w.ncols()
    }
    fn num_classes(&self) -> usize {
        self.w.nrows()
    }
    fn logits_into(&self, x: ArrayView2<'_, f64>, mut out: ArrayViewMut2<'_, f64>) -> Result<()> {
        out.assign(&(x.dot(&self.w.t()) + &self.b));
        Ok(())
    }
    fn loss_gradient_into(
        &self,
        x: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        mut grad: ArrayViewMut2<'_, f64>,
    ) -> Result<f64> {
        let z = x.dot(&self.w.t()) + &self.b;
        let mut dz = Array2::zeros(z.raw_dim());
        let loss = seed(z.view(), dz.view_mut());
        grad.assign(&dz.dot(&self.w));
        Ok(loss)
    }
}

/// A linear model that returns NaN logits once the input leaves a ball around a point
/// (or everywhere, with radius 0), to test non-finite model output.
pub struct NanOutside {
    pub inner: Linear,
    pub center: Array1<f64>,
    pub radius: f64,
}

impl NanOutside {
    fn is_outside(&self, x: ArrayView2<'_, f64>) -> bool {
        x.rows().into_iter().any(|r| {
            let d: f64 = r
                .iter()
                .zip(&self.center)
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            d.sqrt() > self.radius
        })
    }
}

impl Classifier for NanOutside {
    fn input_dim(&self) -> usize {
        self.inner.input_dim()
    }
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }
    fn logits_into(&self, x: ArrayView2<'_, f64>, mut out: ArrayViewMut2<'_, f64>) -> Result<()> {
        self.inner.logits_into(x, out.view_mut())?;
        if self.is_outside(x) {
            out.fill(f64::NAN);
        }
        Ok(())
    }
    fn loss_gradient_into(
        &self,
        x: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        mut grad: ArrayViewMut2<'_, f64>,
    ) -> Result<f64> {
        if self.is_outside(x) {
            grad.fill(f64::NAN);
            return Ok(f64::NAN);
        }
        self.inner.loss_gradient_into(x, seed, grad)
    }
}

/// A linear model that returns an error (not NaN) once the input leaves a ball around a
/// point, to test that a model error reaches the caller as that error.
pub struct ErrOutside {
    pub inner: Linear,
    pub center: Array1<f64>,
    pub radius: f64,
}

impl ErrOutside {
    pub const MESSAGE: &'static str = "ErrOutside: input left the ball";
    fn check(&self, x: ArrayView2<'_, f64>) -> Result<()> {
        let outside = NanOutside {
            inner: Linear {
                w: self.inner.w.clone(),
                b: self.inner.b.clone(),
            },
            center: self.center.clone(),
            radius: self.radius,
        }
        .is_outside(x);
        if outside {
            Err(intriguing::Error::DataFormat(Self::MESSAGE.into()))
        } else {
            Ok(())
        }
    }
}

impl Classifier for ErrOutside {
    fn input_dim(&self) -> usize {
        self.inner.input_dim()
    }
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }
    fn logits_into(&self, x: ArrayView2<'_, f64>, out: ArrayViewMut2<'_, f64>) -> Result<()> {
        self.check(x)?;
        self.inner.logits_into(x, out)
    }
    fn loss_gradient_into(
        &self,
        x: ArrayView2<'_, f64>,
        loss: LogitsLoss<'_>,
        grad: ArrayViewMut2<'_, f64>,
    ) -> Result<f64> {
        self.check(x)?;
        self.inner.loss_gradient_into(x, loss, grad)
    }
}

/// A model that panics on its `k`-th gradient call (counting from 1), for batch isolation.
pub struct PanicsOnRow {
    pub inner: Linear,
    /// Panics when the first input coordinate equals this value.
    pub trigger: f64,
    pub calls: AtomicUsize,
}

impl Classifier for PanicsOnRow {
    fn input_dim(&self) -> usize {
        self.inner.input_dim()
    }
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }
    fn logits_into(&self, x: ArrayView2<'_, f64>, out: ArrayViewMut2<'_, f64>) -> Result<()> {
        self.inner.logits_into(x, out)
    }
    fn loss_gradient_into(
        &self,
        x: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        grad: ArrayViewMut2<'_, f64>,
    ) -> Result<f64> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if x.rows().into_iter().any(|r| r[0] == self.trigger) {
            panic!("deliberate test panic");
        }
        self.inner.loss_gradient_into(x, seed, grad)
    }
}
