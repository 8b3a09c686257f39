//! Dense layers and the multilayer perceptron.

use super::Activation;
use crate::classifier::ClassifierExt;
use crate::classifier::{Classifier, LogitsLoss, softmax_cross_entropy};
use crate::error::{Error, Result, check_finite};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;

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
        let d = Dense {
            weight,
            bias,
            activation,
        };
        d.validate("dense layer")?;
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
        let a = (6.0 / (in_dim + out_dim) as f64).sqrt();
        let weight = Array2::from_shape_simple_fn((out_dim, in_dim), || rng.random_range(-a..a));
        Ok(Dense {
            weight,
            bias: Array1::zeros(out_dim),
            activation,
        })
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

/// Gradients of a loss with respect to every weight and bias of an [`Mlp`], in layer order.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradients {
    /// `dloss/dW_l`, each `[out, in]`.
    pub weights: Vec<Array2<f64>>,
    /// `dloss/db_l`, each `[out]`.
    pub biases: Vec<Array1<f64>>,
}

impl Gradients {
    /// Zero gradients shaped like `mlp`'s parameters.
    pub fn zeros_like(mlp: &Mlp) -> Self {
        Gradients {
            weights: mlp
                .layers
                .iter()
                .map(|l| Array2::zeros(l.weight.raw_dim()))
                .collect(),
            biases: mlp
                .layers
                .iter()
                .map(|l| Array1::zeros(l.out_dim()))
                .collect(),
        }
    }

    /// All entries in the order of [`Mlp::parameters`]: per layer, the weight row-major, then
    /// the bias.
    pub fn to_flat(&self) -> Array1<f64> {
        let mut v = Vec::new();
        for (w, b) in self.weights.iter().zip(&self.biases) {
            v.extend(w.iter());
            v.extend(b.iter());
        }
        Array1::from(v)
    }
}

/// A multilayer perceptron: a chain of [`Dense`] layers. The output of the last layer is the
/// logits; the softmax lives in the loss.
///
/// `Mlp` implements [`Classifier`]. Its
/// [`loss_gradient_into`](Classifier::loss_gradient_into) does not allocate in steady state
/// (scratch memory is kept per thread), so attacks can call it in their inner loop.
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
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    layers: Vec<Dense>,
    sum_out: usize,
    max_out: usize,
}

/// Rows per chunk when evaluating logits of a large batch (bounds the scratch memory).
const CHUNK_ROWS: usize = 512;

thread_local! {
    static SCRATCH: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on a per-thread scratch slice of length `len` (grown as needed, never shrunk). If
/// the thread's scratch is already in use (a re-entrant call from a loss seed), a fresh buffer
/// is used instead.
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < len {
                v.resize(len, 0.0);
            }
            f(&mut v[..len])
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// A `[rows, cols]` view of the first `rows * cols` entries of `buf`.
fn view_mut(buf: &mut [f64], rows: usize, cols: usize) -> ArrayViewMut2<'_, f64> {
    ArrayViewMut2::from_shape((rows, cols), &mut buf[..rows * cols])
        .expect("scratch buffer sized by construction")
}

fn view(buf: &[f64], rows: usize, cols: usize) -> ArrayView2<'_, f64> {
    ArrayView2::from_shape((rows, cols), &buf[..rows * cols])
        .expect("scratch buffer sized by construction")
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

impl Mlp {
    /// An MLP from its layers. Errors if there are no layers, a layer is malformed, or
    /// consecutive dimensions do not chain (`layers[i].out_dim() == layers[i+1].in_dim()`).
    ///
    /// # Examples
    ///
    /// ```
    /// use intriguing::models::{Activation, Dense, Mlp};
    /// use ndarray::{array, Array1};
    /// let layer = Dense::new(array![[1.0, -1.0], [0.5, 2.0]], Array1::zeros(2), Activation::Identity)?;
    /// let mlp = Mlp::new(vec![layer])?;
    /// assert_eq!(mlp.sizes(), vec![2, 2]);
    /// # Ok::<(), intriguing::Error>(())
    /// ```
    pub fn new(layers: Vec<Dense>) -> Result<Self> {
        if layers.is_empty() {
            return Err(Error::InvalidConfig(
                "an MLP needs at least one layer".into(),
            ));
        }
        for (i, l) in layers.iter().enumerate() {
            l.validate(&format!("layer {i}"))?;
            if i > 0 && layers[i - 1].out_dim() != l.in_dim() {
                return Err(Error::shape(
                    format!("layer {i} weight"),
                    format!(
                        "[_, {}] (the output size of layer {})",
                        layers[i - 1].out_dim(),
                        i - 1
                    ),
                    format!("{:?}", l.weight.shape()),
                ));
            }
        }
        let sum_out = layers.iter().map(Dense::out_dim).sum();
        let max_out = layers.iter().map(Dense::out_dim).max().unwrap_or(0);
        Ok(Mlp {
            layers,
            sum_out,
            max_out,
        })
    }

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
        let n_layers = sizes.len() - 1;
        let mut layers = Vec::with_capacity(n_layers);
        for i in 0..n_layers {
            layers.push(Dense::glorot(
                sizes[i],
                sizes[i + 1],
                activation(i),
                &mut rng,
            )?);
        }
        Self::new(layers)
    }

    /// The layers, input side first.
    pub fn layers(&self) -> &[Dense] {
        &self.layers
    }

    /// Consumes the MLP and returns its layers.
    pub fn into_layers(self) -> Vec<Dense> {
        self.layers
    }

    /// `[input, out_0, out_1, ..., classes]`.
    pub fn sizes(&self) -> Vec<usize> {
        std::iter::once(self.layers[0].in_dim())
            .chain(self.layers.iter().map(Dense::out_dim))
            .collect()
    }

    /// The activation of each layer.
    pub fn activations(&self) -> Vec<Activation> {
        self.layers.iter().map(|l| l.activation).collect()
    }

    /// Number of weights and biases.
    pub fn num_parameters(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.weight.len() + l.bias.len())
            .sum()
    }

    /// All weights and biases as one vector: per layer, the weight row-major, then the bias.
    pub fn parameters(&self) -> Array1<f64> {
        let mut v = Vec::with_capacity(self.num_parameters());
        for l in &self.layers {
            v.extend(l.weight.iter());
            v.extend(l.bias.iter());
        }
        Array1::from(v)
    }

    /// Sets all weights and biases from a vector laid out as [`Mlp::parameters`]. Errors (and
    /// leaves the model unchanged) on a wrong length or non-finite values.
    pub fn set_parameters(&mut self, flat: ArrayView1<'_, f64>) -> Result<()> {
        if flat.len() != self.num_parameters() {
            return Err(Error::shape(
                "MLP parameters",
                self.num_parameters(),
                flat.len(),
            ));
        }
        check_finite(flat.iter(), "MLP parameters")?;
        let mut it = flat.iter();
        for l in &mut self.layers {
            l.weight.iter_mut().zip(&mut it).for_each(|(w, &v)| *w = v);
            l.bias.iter_mut().zip(&mut it).for_each(|(b, &v)| *b = v);
        }
        Ok(())
    }

    pub(crate) fn layers_mut(&mut self) -> &mut [Dense] {
        &mut self.layers
    }

    /// Output of the last layer (the logits) for a batch, validated: same as
    /// [`Classifier::logits`].
    pub fn forward(&self, inputs: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        self.logits(inputs)
    }

    /// The post-activation output of layer `layer` (0 = the first hidden layer; the last index,
    /// `layers().len() - 1`, gives the logits) for a batch of inputs: `[n, layers()[layer].out_dim()]`.
    ///
    /// # Examples
    ///
    /// ```
    /// use intriguing::models::{Activation, Mlp};
    /// use ndarray::Array2;
    /// let mlp = Mlp::random(&[4, 3, 2], Activation::Sigmoid, 1)?;
    /// let h = mlp.hidden_representation(Array2::zeros((5, 4)).view(), 0)?;
    /// assert_eq!(h.shape(), &[5, 3]);
    /// assert!(h.iter().all(|&v| v == 0.5)); // sigmoid of a zero bias
    /// # Ok::<(), intriguing::Error>(())
    /// ```
    pub fn hidden_representation(
        &self,
        inputs: ArrayView2<'_, f64>,
        layer: usize,
    ) -> Result<Array2<f64>> {
        if layer >= self.layers.len() {
            return Err(Error::InvalidConfig(format!(
                "layer index {layer} out of range for an MLP with {} layers",
                self.layers.len()
            )));
        }
        self.check_inputs(inputs)?;
        let mut h = inputs.to_owned();
        for l in &self.layers[..=layer] {
            let mut next = Array2::zeros((h.nrows(), l.out_dim()));
            affine(h.view(), l, next.view_mut());
            l.activation.apply_inplace(next.view_mut());
            h = next;
        }
        if h.iter().any(|v| !v.is_finite()) {
            return Err(Error::ModelNonFinite {
                what: format!("hidden representation of layer {layer}"),
            });
        }
        Ok(h)
    }

    /// Mean softmax cross-entropy of a batch against `labels` (no weight decay), with its
    /// gradients with respect to every weight and bias.
    pub fn gradients(
        &self,
        inputs: ArrayView2<'_, f64>,
        labels: &[usize],
    ) -> Result<(f64, Gradients)> {
        self.check_labels(inputs.nrows(), labels)?;
        let n = inputs.nrows() as f64;
        let mut seed = |z: ArrayView2<'_, f64>, mut dz: ArrayViewMut2<'_, f64>| {
            let mut total = 0.0;
            for ((zr, mut gr), &l) in z.rows().into_iter().zip(dz.rows_mut()).zip(labels) {
                total += softmax_cross_entropy(zr, l, gr.view_mut());
                gr.mapv_inplace(|v| v / n);
            }
            total / n
        };
        self.gradients_with(inputs, &mut seed)
    }

    /// Gradients of any loss of the last layer's output: `seed` receives the outputs
    /// `[n, classes]` of one forward pass, writes `dloss/doutputs` into its second argument and
    /// returns the loss. Returns the loss and its gradients with respect to the parameters.
    ///
    /// This is how a custom loss (e.g. an autoencoder's reconstruction error) is trained.
    pub fn gradients_with(
        &self,
        inputs: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
    ) -> Result<(f64, Gradients)> {
        self.check_inputs(inputs)?;
        if inputs.nrows() == 0 {
            return Err(Error::InvalidConfig("gradients of an empty batch".into()));
        }
        let mut grads = Gradients::zeros_like(self);
        let mut buf = vec![0.0; self.scratch_len(inputs.nrows())];
        let loss = self.forward_backward(inputs, &mut buf, seed, Some(&mut grads), None);
        if !loss.is_finite()
            || grads
                .weights
                .iter()
                .flat_map(|w| w.iter())
                .chain(grads.biases.iter().flat_map(|b| b.iter()))
                .any(|v| !v.is_finite())
        {
            return Err(Error::ModelNonFinite {
                what: "loss or parameter gradient".into(),
            });
        }
        Ok((loss, grads))
    }

    pub(crate) fn check_labels(&self, n: usize, labels: &[usize]) -> Result<()> {
        if labels.len() != n {
            return Err(Error::shape("labels", n, labels.len()));
        }
        labels.iter().try_for_each(|&l| self.check_label(l))
    }

    /// Scratch length for a batch of `n` rows: all activations, then two delta buffers.
    pub(crate) fn scratch_len(&self, n: usize) -> usize {
        n * (self.sum_out + 2 * self.max_out)
    }

    /// Forward pass of `x` into the activation part of `acts` (layer outputs back to back).
    fn forward_buf(&self, x: ArrayView2<'_, f64>, acts: &mut [f64]) {
        let n = x.nrows();
        let mut off = 0;
        let mut prev_off = 0;
        for (l, layer) in self.layers.iter().enumerate() {
            let (done, rest) = acts.split_at_mut(off);
            let mut cur = view_mut(rest, n, layer.out_dim());
            let prev = if l == 0 {
                x.view()
            } else {
                view(&done[prev_off..], n, layer.in_dim())
            };
            affine(prev, layer, cur.view_mut());
            layer.activation.apply_inplace(cur);
            prev_off = off;
            off += n * layer.out_dim();
        }
    }

    /// One forward and one backward pass on the scratch `buf` (length
    /// [`scratch_len`](Self::scratch_len)`(n)`): asks `seed` for `dloss/doutputs`, then writes
    /// parameter gradients into `grads` (if given; overwritten) and the input gradient into
    /// `input_grad` (if given). Returns the seed's loss.
    pub(crate) fn forward_backward(
        &self,
        x: ArrayView2<'_, f64>,
        buf: &mut [f64],
        seed: LogitsLoss<'_>,
        mut grads: Option<&mut Gradients>,
        input_grad: Option<ArrayViewMut2<'_, f64>>,
    ) -> f64 {
        let n = x.nrows();
        let (acts, rest) = buf.split_at_mut(n * self.sum_out);
        let (mut da, rest) = rest.split_at_mut(n * self.max_out);
        let mut db = &mut rest[..n * self.max_out];
        self.forward_buf(x, acts);

        let n_layers = self.layers.len();
        // Offsets of every layer's output in `acts`.
        let mut off = n * (self.sum_out - self.layers[n_layers - 1].out_dim());
        let last = &self.layers[n_layers - 1];
        let loss = seed(
            view(&acts[off..], n, last.out_dim()),
            view_mut(da, n, last.out_dim()),
        );
        let mut input_grad = input_grad;
        for l in (0..n_layers).rev() {
            let layer = &self.layers[l];
            let out_dim = layer.out_dim();
            let y = view(&acts[off..], n, out_dim);
            let mut delta = view_mut(da, n, out_dim);
            layer.activation.backprop_inplace(delta.view_mut(), y);
            let prev_off = if l > 0 { off - n * layer.in_dim() } else { 0 };
            let prev = if l == 0 {
                x.view()
            } else {
                view(&acts[prev_off..], n, layer.in_dim())
            };
            if let Some(g) = grads.as_deref_mut() {
                general_mat_mul(1.0, &delta.t(), &prev, 0.0, &mut g.weights[l]);
                let gb = &mut g.biases[l];
                gb.fill(0.0);
                for row in delta.rows() {
                    *gb += &row;
                }
            }
            if l > 0 {
                back_through(delta.view(), &layer.weight, view_mut(db, n, layer.in_dim()));
                std::mem::swap(&mut da, &mut db);
                off = prev_off;
            } else if let Some(ig) = input_grad.take() {
                back_through(delta.view(), &layer.weight, ig);
            }
        }
        loss
    }
}

impl Classifier for Mlp {
    fn input_dim(&self) -> usize {
        self.layers[0].in_dim()
    }

    fn num_classes(&self) -> usize {
        self.layers[self.layers.len() - 1].out_dim()
    }

    fn logits_into(
        &self,
        inputs: ArrayView2<'_, f64>,
        mut out: ArrayViewMut2<'_, f64>,
    ) -> Result<()> {
        self.check_shapes(inputs, out.view(), "logits output", self.num_classes())?;
        let classes = self.num_classes();
        let last_off = self.sum_out - classes;
        for (xc, mut oc) in inputs
            .axis_chunks_iter(Axis(0), CHUNK_ROWS)
            .zip(out.axis_chunks_iter_mut(Axis(0), CHUNK_ROWS))
        {
            let n = xc.nrows();
            with_scratch(n * self.sum_out, |acts| {
                self.forward_buf(xc, acts);
                oc.assign(&view(&acts[n * last_off..], n, classes));
            });
        }
        Ok(())
    }

    fn loss_gradient_into(
        &self,
        inputs: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        grad: ArrayViewMut2<'_, f64>,
    ) -> Result<f64> {
        self.check_shapes(inputs, grad.view(), "input gradient", self.input_dim())?;
        let n = inputs.nrows();
        Ok(with_scratch(self.scratch_len(n), |buf| {
            self.forward_backward(inputs, buf, seed, None, Some(grad))
        }))
    }
}

impl Mlp {
    fn check_shapes(
        &self,
        inputs: ArrayView2<'_, f64>,
        out: ArrayView2<'_, f64>,
        what: &str,
        cols: usize,
    ) -> Result<()> {
        if inputs.ncols() != self.input_dim() {
            return Err(Error::shape(
                "MLP inputs",
                format!("[n, {}]", self.input_dim()),
                format!("{:?}", inputs.shape()),
            ));
        }
        if out.dim() != (inputs.nrows(), cols) {
            return Err(Error::shape(
                what,
                format!("[{}, {cols}]", inputs.nrows()),
                format!("{:?}", out.shape()),
            ));
        }
        Ok(())
    }
}

/// Sum of squared weights (not biases) of every layer, weighted: `Σ_l λ_l ‖W_l‖²_F`.
pub(crate) fn weighted_sq_norm(mlp: &Mlp, lambdas: &[f64]) -> f64 {
    mlp.layers
        .iter()
        .zip(lambdas)
        .filter(|(_, lam)| **lam != 0.0)
        .map(|(l, &lam)| lam * l.weight.iter().map(|w| w * w).sum::<f64>())
        .sum()
}
