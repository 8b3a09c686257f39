//! The one layer abstraction ([`Module`]) and the layer enum of convolutional networks
//! ([`Layer`]).
//!
//! Names follow PyTorch / candle / tch: a *module* maps a batch to a batch; a
//! [`Sequential`](super::Sequential) chains modules. Every module works on flat rows (a
//! `C×H×W` image is a row of `C·H·W` values, channel first as PyTorch's `NCHW`), so
//! [`Flatten`](Layer::Flatten) only marks where a PyTorch model flattens.

use super::Activation;
use super::conv::{Conv2d, MaxPool2d};
use super::mlp::Dense;
use crate::error::{Error, Result};
use ndarray::{Array, Array1, ArrayView2, ArrayViewMut2, Dimension};

/// A differentiable layer on batches of flat rows: one forward, one backward (input gradient
/// and parameter gradient), and its parameters as two flat slices.
///
/// The methods taking a `work` slice are the allocation-free kernels a
/// [`Sequential`](super::Sequential) calls with scratch memory it owns; they assume the shapes
/// the container checked when it was built.
pub trait Module: Clone + std::fmt::Debug + PartialEq + Send + Sync {
    /// Short kind name (`dense`, `conv`, `maxpool`, `flatten`, or the activation's name).
    fn kind(&self) -> &'static str;

    /// The input width this layer requires, if it fixes one (`None` for element-wise layers).
    fn in_dim(&self) -> Option<usize>;

    /// The output width for inputs of width `in_dim`, or an error if the layer cannot take
    /// that width.
    fn out_dim(&self, in_dim: usize) -> Result<usize>;

    /// Checks the layer's own invariants (shapes, finite values) and puts its parameters in
    /// standard (row-major, contiguous) layout. The default, for parameter-free layers, checks
    /// nothing.
    fn prepare(&mut self) -> Result<()> {
        Ok(())
    }

    /// The parameters as `(weight, bias)`, each row-major. The default, for parameter-free
    /// layers, is two empty slices.
    fn params(&self) -> (&[f64], &[f64]) {
        (&[], &[])
    }

    /// The shape of the weight (`[out, in]` for a dense layer, PyTorch's `[C_out, C_in, kh, kw]`
    /// for a convolution; empty for parameter-free layers).
    fn weight_shape(&self) -> Vec<usize> {
        Vec::new()
    }

    /// Mutable [`params`](Module::params) (two empty slices by default).
    fn params_mut(&mut self) -> (&mut [f64], &mut [f64]) {
        (&mut [], &mut [])
    }

    /// Scratch `f64`s [`forward`](Module::forward) and [`backward`](Module::backward) need for
    /// a batch of `n` rows.
    fn work_len(&self, _n: usize) -> usize {
        0
    }

    /// `y = layer(x)` for a batch (`y` is overwritten).
    fn forward(&self, x: ArrayView2<'_, f64>, y: ArrayViewMut2<'_, f64>, work: &mut [f64]);

    /// The outputs at points on lines, for a layer that is affine before an element-wise
    /// activation: `ends` holds `2 L` rows, line `i`'s origin `o_i` in row `2i` and its
    /// direction `d_i` in row `2i + 1`; row `j` of `y` becomes `layer(o_i + t d_i)` for
    /// `(i, t) = points[j]`, computed as `act(A o_i + b + t A d_i)` from one pass over the
    /// `2 L` rows (instead of one per point). Equal to [`forward`](Module::forward) of the
    /// formed points up to rounding. Returns `false`, leaving `y` untouched, when the layer
    /// does not do this (the default; the container then forms the points); `work` holds
    /// [`lines_work_len`](Module::lines_work_len)`(L)` entries.
    fn forward_lines(
        &self,
        _ends: ArrayView2<'_, f64>,
        _points: &[(usize, f64)],
        _y: ArrayViewMut2<'_, f64>,
        _work: &mut [f64],
    ) -> bool {
        false
    }

    /// Scratch `f64`s [`forward_lines`](Module::forward_lines) needs for `lines` lines.
    fn lines_work_len(&self, _lines: usize) -> usize {
        0
    }

    /// The backward pass at input `x` with output `y`: `dy` holds `dloss/dy` on entry (the
    /// layer may overwrite it); writes `dloss/dx` into `dx` and the parameter gradients
    /// (layout of [`params`](Module::params)) into `grads`, each when asked for (overwritten).
    fn backward(
        &self,
        x: ArrayView2<'_, f64>,
        y: ArrayView2<'_, f64>,
        dy: ArrayViewMut2<'_, f64>,
        dx: Option<ArrayViewMut2<'_, f64>>,
        grads: Option<(&mut [f64], &mut [f64])>,
        work: &mut [f64],
    );
}

/// An activation as a layer of its own (after a convolution, or after a dense layer whose own
/// activation is the identity).
impl Module for Activation {
    fn kind(&self) -> &'static str {
        self.name()
    }
    fn in_dim(&self) -> Option<usize> {
        None
    }
    fn out_dim(&self, in_dim: usize) -> Result<usize> {
        Ok(in_dim)
    }
    fn forward(&self, x: ArrayView2<'_, f64>, mut y: ArrayViewMut2<'_, f64>, _: &mut [f64]) {
        y.assign(&x);
        self.apply_inplace(y);
    }
    fn backward(
        &self,
        _x: ArrayView2<'_, f64>,
        y: ArrayView2<'_, f64>,
        mut dy: ArrayViewMut2<'_, f64>,
        dx: Option<ArrayViewMut2<'_, f64>>,
        _grads: Option<(&mut [f64], &mut [f64])>,
        _: &mut [f64],
    ) {
        if let Some(mut dx) = dx {
            self.backprop_inplace(dy.view_mut(), y);
            dx.assign(&dy);
        }
    }
}

/// One layer of a convolutional [`Cnn`](super::cnn::Cnn) (a [`Sequential`](super::Sequential)
/// of `Layer`s).
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// A fully connected layer (with its own activation, often the identity).
    Dense(Dense),
    /// A 2-D convolution (PyTorch `nn.Conv2d`).
    Conv2d(Conv2d),
    /// Max-pooling (PyTorch `nn.MaxPool2d`).
    MaxPool2d(MaxPool2d),
    /// An element-wise activation.
    Activation(Activation),
    /// PyTorch's `nn.Flatten`: rows are already flat, so the identity.
    Flatten,
}

impl Layer {
    /// The element-wise ReLU layer.
    pub const RELU: Layer = Layer::Activation(Activation::Relu);
}

macro_rules! dispatch {
    ($self:expr, $l:ident => $e:expr, flatten => $f:expr) => {
        match $self {
            Layer::Dense($l) => $e,
            Layer::Conv2d($l) => $e,
            Layer::MaxPool2d($l) => $e,
            Layer::Activation($l) => $e,
            Layer::Flatten => $f,
        }
    };
}

impl Module for Layer {
    fn kind(&self) -> &'static str {
        dispatch!(self, l => Module::kind(l), flatten => "flatten")
    }
    fn in_dim(&self) -> Option<usize> {
        dispatch!(self, l => Module::in_dim(l), flatten => None)
    }
    fn out_dim(&self, in_dim: usize) -> Result<usize> {
        dispatch!(self, l => Module::out_dim(l, in_dim), flatten => Ok(in_dim))
    }
    fn prepare(&mut self) -> Result<()> {
        dispatch!(self, l => Module::prepare(l), flatten => Ok(()))
    }
    fn params(&self) -> (&[f64], &[f64]) {
        dispatch!(self, l => Module::params(l), flatten => (&[], &[]))
    }
    fn params_mut(&mut self) -> (&mut [f64], &mut [f64]) {
        dispatch!(self, l => Module::params_mut(l), flatten => (&mut [], &mut []))
    }
    fn weight_shape(&self) -> Vec<usize> {
        dispatch!(self, l => Module::weight_shape(l), flatten => Vec::new())
    }
    fn work_len(&self, n: usize) -> usize {
        dispatch!(self, l => Module::work_len(l, n), flatten => 0)
    }
    fn forward(&self, x: ArrayView2<'_, f64>, mut y: ArrayViewMut2<'_, f64>, work: &mut [f64]) {
        dispatch!(self, l => Module::forward(l, x, y, work), flatten => y.assign(&x))
    }
    fn forward_lines(
        &self,
        ends: ArrayView2<'_, f64>,
        points: &[(usize, f64)],
        y: ArrayViewMut2<'_, f64>,
        work: &mut [f64],
    ) -> bool {
        match self {
            Layer::Dense(l) => l.forward_lines(ends, points, y, work),
            _ => false,
        }
    }
    fn lines_work_len(&self, lines: usize) -> usize {
        match self {
            Layer::Dense(l) => l.lines_work_len(lines),
            _ => 0,
        }
    }
    fn backward(
        &self,
        x: ArrayView2<'_, f64>,
        y: ArrayView2<'_, f64>,
        dy: ArrayViewMut2<'_, f64>,
        dx: Option<ArrayViewMut2<'_, f64>>,
        grads: Option<(&mut [f64], &mut [f64])>,
        work: &mut [f64],
    ) {
        dispatch!(self, l => Module::backward(l, x, y, dy, dx, grads, work), flatten => {
            if let Some(mut dx) = dx {
                dx.assign(&dy);
            }
        })
    }
}

/// [`Module::out_dim`] of a layer that takes exactly `need` inputs and gives `out` outputs.
pub(crate) fn fixed_width(kind: &str, need: usize, got: usize, out: usize) -> Result<usize> {
    if got != need {
        return Err(Error::shape(format!("{kind} layer input"), need, got));
    }
    Ok(out)
}

/// `(weight, bias)` of a layer whose arrays [`Module::prepare`] (or its constructor) put in
/// standard layout.
///
/// # Panics
/// If either array is not in standard layout: the layer's fields were replaced after
/// construction without calling [`Module::prepare`].
pub(crate) fn std_params<'a, D: Dimension>(
    weight: &'a Array<f64, D>,
    bias: &'a Array1<f64>,
) -> (&'a [f64], &'a [f64]) {
    const WHY: &str = "standard layout (constructor or Module::prepare)";
    (weight.as_slice().expect(WHY), bias.as_slice().expect(WHY))
}

/// Mutable [`std_params`].
pub(crate) fn std_params_mut<'a, D: Dimension>(
    weight: &'a mut Array<f64, D>,
    bias: &'a mut Array1<f64>,
) -> (&'a mut [f64], &'a mut [f64]) {
    const WHY: &str = "standard layout (constructor or Module::prepare)";
    (
        weight.as_slice_mut().expect(WHY),
        bias.as_slice_mut().expect(WHY),
    )
}
