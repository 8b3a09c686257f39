//! Dense layers and the multilayer perceptron.

use super::init::{checked_len, glorot_uniform};
use super::layer::{Module, fixed_width, std_params, std_params_mut};
use super::{Activation, Sequential};
use crate::classifier::ClassifierExt;
use crate::error::{Error, Result, check_finite};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// One fully connected layer: `y = f(x Wᵀ + b)` for a batch `x` of rows.
///
/// The weight follows the PyTorch `nn.Linear` convention: `weight` is `[out, in]`, `bias` is
/// `[out]`. The fields are public for reading (e.g. spectral norms of `weight`); an [`Mlp`]
/// validates them when it is built.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    /// `[out, in]`.
    pub weight: Array2<f64>,
    /// `[out]`.
    pub bias: Array1<f64>,
    /// Applied after the affine map.
    pub activation: Activation,
}

impl Dense {
    /// A layer from its weight `[out, in]`, bias `[out]` and activation. Errors on mismatched
    /// shapes, an empty dimension or non-finite values.
    pub fn new(weight: Array2<f64>, bias: Array1<f64>, activation: Activation) -> Result<Self> {
        let mut d = Dense {
            weight,
            bias,
            activation,
        };
        // Checks the shapes and stores any layout (a transposed view's copy, say) row-major.
        Module::prepare(&mut d)?;
        Ok(d)
    }

    /// A layer with Glorot/Xavier-uniform weights (`U(-a, a)`, `a = √(6 / (in + out))`) and zero
    /// bias, drawn from `rng`.
    pub fn glorot(
        in_dim: usize,
        out_dim: usize,
        activation: Activation,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self> {
        if in_dim == 0 || out_dim == 0 {
            return Err(Error::InvalidConfig(format!(
                "layer dimensions must be positive, got {in_dim} -> {out_dim}"
            )));
        }
        let len = checked_len("dense layer weight", &[out_dim, in_dim])?;
        let w = glorot_uniform(len, in_dim, out_dim, rng);
        let weight = Array2::from_shape_vec((out_dim, in_dim), w).expect("length out · in");
        Ok(Dense {
            weight,
            bias: Array1::zeros(out_dim),
            activation,
        })
    }

    /// A layer with He-normal weights `N(0, 2 / in)` (for ReLU networks) and zero bias, drawn
    /// from `rng`.
    pub fn he_normal(
        in_dim: usize,
        out_dim: usize,
        activation: Activation,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self> {
        let len = checked_len("dense layer weight", &[out_dim, in_dim])?;
        let w = super::init::he_normal(len, in_dim, rng);
        Dense::new(
            Array2::from_shape_vec((out_dim, in_dim), w).expect("length out · in"),
            Array1::zeros(out_dim),
            activation,
        )
    }

    /// Input dimension (`weight.ncols()`).
    pub fn in_dim(&self) -> usize {
        self.weight.ncols()
    }

    /// Output dimension (`weight.nrows()`).
    pub fn out_dim(&self) -> usize {
        self.weight.nrows()
    }

    fn validate(&self, ctx: &str) -> Result<()> {
        if self.weight.is_empty() {
            return Err(Error::shape(
                format!("{ctx} weight"),
                "[out > 0, in > 0]",
                format!("{:?}", self.weight.shape()),
            ));
        }
        if self.bias.len() != self.out_dim() {
            return Err(Error::shape(
                format!("{ctx} bias"),
                format!("[{}]", self.out_dim()),
                format!("{:?}", self.bias.shape()),
            ));
        }
        check_finite(self.weight.iter(), &format!("{ctx} weight"))?;
        check_finite(self.bias.iter(), &format!("{ctx} bias"))
    }
}

/// `out = x Wᵀ + b` (`x` `[n, in]`, `W` `[out, in]`, `out` `[n, out]`).
fn affine(x: ArrayView2<'_, f64>, layer: &Dense, mut out: ArrayViewMut2<'_, f64>) {
    if x.nrows() == 1 {
        let xr = x.row(0);
        for (o, (w, &b)) in out
            .row_mut(0)
            .iter_mut()
            .zip(layer.weight.rows().into_iter().zip(&layer.bias))
        {
            *o = b + w.dot(&xr);
        }
    } else {
        out.assign(&layer.bias);
        general_mat_mul(1.0, &x, &layer.weight.t(), 1.0, &mut out);
    }
}

/// `out = delta W` (`delta` `[n, out]`, `W` `[out, in]`, `out` `[n, in]`).
fn back_through(delta: ArrayView2<'_, f64>, w: &Array2<f64>, mut out: ArrayViewMut2<'_, f64>) {
    if delta.nrows() == 1 {
        let mut o = out.row_mut(0);
        o.fill(0.0);
        for (&d, wr) in delta.row(0).iter().zip(w.rows()) {
            if d != 0.0 {
                o.scaled_add(d, &wr);
            }
        }
    } else {
        general_mat_mul(1.0, &delta, w, 0.0, &mut out);
    }
}

impl Module for Dense {
    fn kind(&self) -> &'static str {
        "dense"
    }
    fn in_dim(&self) -> Option<usize> {
        Some(self.weight.ncols())
    }
    fn out_dim(&self, in_dim: usize) -> Result<usize> {
        fixed_width("dense", self.weight.ncols(), in_dim, self.weight.nrows())
    }
    fn prepare(&mut self) -> Result<()> {
        self.validate("dense layer")?;
        if !self.weight.is_standard_layout() {
            self.weight = self.weight.as_standard_layout().into_owned();
        }
        if !self.bias.is_standard_layout() {
            self.bias = self.bias.as_standard_layout().into_owned();
        }
        Ok(())
    }
    fn params(&self) -> (&[f64], &[f64]) {
        std_params(&self.weight, &self.bias)
    }
    fn weight_shape(&self) -> Vec<usize> {
        self.weight.shape().to_vec()
    }
    fn params_mut(&mut self) -> (&mut [f64], &mut [f64]) {
        std_params_mut(&mut self.weight, &mut self.bias)
    }
    fn forward(&self, x: ArrayView2<'_, f64>, mut y: ArrayViewMut2<'_, f64>, _: &mut [f64]) {
        affine(x, self, y.view_mut());
        self.activation.apply_inplace(y);
    }
    fn forward_lines(
        &self,
        ends: ArrayView2<'_, f64>,
        points: &[(usize, f64)],
        mut y: ArrayViewMut2<'_, f64>,
        work: &mut [f64],
    ) -> bool {
        let out = self.out_dim();
        // `A o_i` and `A d_i` for every line: one matrix product over the 2L rows (at least
        // two, so always the product's route).
        let mut mapped =
            ArrayViewMut2::from_shape((ends.nrows(), out), &mut work[..ends.nrows() * out])
                .expect("work sized by lines_work_len");
        general_mat_mul(1.0, &ends, &self.weight.t(), 0.0, &mut mapped);
        for (mut row, &(i, t)) in y.rows_mut().into_iter().zip(points) {
            let (o, d) = (mapped.row(2 * i), mapped.row(2 * i + 1));
            for (((v, &b), &oi), &di) in row.iter_mut().zip(&self.bias).zip(o).zip(d) {
                *v = b + oi + t * di;
            }
        }
        self.activation.apply_inplace(y);
        true
    }
    fn lines_work_len(&self, lines: usize) -> usize {
        2 * lines * self.out_dim()
    }
    fn backward(
        &self,
        x: ArrayView2<'_, f64>,
        y: ArrayView2<'_, f64>,
        mut dy: ArrayViewMut2<'_, f64>,
        dx: Option<ArrayViewMut2<'_, f64>>,
        grads: Option<(&mut [f64], &mut [f64])>,
        _: &mut [f64],
    ) {
        self.activation.backprop_inplace(dy.view_mut(), y);
        if let Some((gw, gb)) = grads {
            let mut gw = ArrayViewMut2::from_shape(self.weight.raw_dim(), gw)
                .expect("gradient slice sized like the weight");
            general_mat_mul(1.0, &dy.t(), &x, 0.0, &mut gw);
            gb.fill(0.0);
            for row in dy.rows() {
                gb.iter_mut().zip(row).for_each(|(g, &d)| *g += d);
            }
        }
        if let Some(dx) = dx {
            back_through(dy.view(), &self.weight, dx);
        }
    }
}

/// A multilayer perceptron: a [`Sequential`] chain of [`Dense`] layers. The output of the
/// last layer is the logits; the softmax lives in the loss.
///
/// # Examples
///
/// ```
/// use intriguing::{Classifier, ClassifierExt};
/// use intriguing::classifier::check_gradient;
/// use intriguing::models::{Activation, Mlp};
/// use ndarray::Array1;
///
/// let mlp = Mlp::random(&[784, 100, 100, 10], Activation::Sigmoid, 42)?;
/// assert_eq!((mlp.input_dim(), mlp.num_classes()), (784, 10));
/// let x = Array1::from_shape_fn(784, |i| (i % 17) as f64 / 17.0);
/// let label = mlp.predict(x.view())?;
/// assert!(label < 10);
/// // Input gradients of a fresh sigmoid net are ~1e-3: a step of 1e-4 keeps the
/// // finite-difference round-off (~1e-16 · loss / h) well below them.
/// let report = check_gradient(&mlp, x.view(), 3, 1e-4)?;
/// assert!(report.max_rel_error < 1e-6, "{report:?}");
/// # Ok::<(), intriguing::Error>(())
/// ```
pub type Mlp = Sequential<Dense>;

impl Sequential<Dense> {
    /// A randomly initialised MLP with layer sizes `sizes` (`[input, hidden..., classes]`):
    /// hidden layers use `hidden`, the last layer is [`Activation::Identity`]. Weights are
    /// Glorot/Xavier uniform, biases zero, drawn from `ChaCha8Rng::seed_from_u64(seed)`.
    pub fn random(sizes: &[usize], hidden: Activation, seed: u64) -> Result<Self> {
        let last = sizes.len().saturating_sub(2);
        Self::random_with(
            sizes,
            |i| {
                if i == last {
                    Activation::Identity
                } else {
                    hidden
                }
            },
            seed,
        )
    }

    /// Like [`Mlp::random`] with the activation of every layer, the last one included, given by
    /// `activation(i)` for `i` in `0..sizes.len() - 1`.
    pub fn random_with(
        sizes: &[usize],
        mut activation: impl FnMut(usize) -> Activation,
        seed: u64,
    ) -> Result<Self> {
        if sizes.len() < 2 {
            return Err(Error::InvalidConfig(format!(
                "an MLP needs at least [input, classes] sizes, got {sizes:?}"
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let layers = (0..sizes.len() - 1)
            .map(|i| Dense::glorot(sizes[i], sizes[i + 1], activation(i), &mut rng))
            .collect::<Result<Vec<_>>>()?;
        Self::new(layers)
    }

    /// `[input, out_0, out_1, ..., classes]`.
    pub fn sizes(&self) -> Vec<usize> {
        self.dims().to_vec()
    }

    /// The activation of each layer.
    pub fn activations(&self) -> Vec<Activation> {
        self.layers().iter().map(|l| l.activation).collect()
    }

    /// Output of the last layer (the logits) for a batch, validated: same as
    /// [`ClassifierExt::logits`](crate::classifier::ClassifierExt::logits).
    pub fn forward(&self, inputs: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        self.logits(inputs)
    }
}
