//! A sequential convolutional network (LeNet-style) implementing
//! [`Classifier`], with its own minibatch SGD-with-momentum trainer.
//!
//! # Examples
//!
//! ```
//! use intriguing::models::cnn::Cnn;
//! use intriguing::{Classifier, ClassifierExt};
//! use ndarray::Array2;
//! let net = Cnn::lenet(6, 16, 120, 7)?; // conv5×5·6 → pool → conv5×5·16 → pool → 120 → 10
//! assert_eq!((net.input_dim(), net.num_classes()), (784, 10));
//! let logits = net.logits(Array2::<f64>::zeros((2, 784)).view())?;
//! assert_eq!(logits.shape(), &[2, 10]);
//! # Ok::<(), intriguing::Error>(())
//! ```

use super::conv::{Conv2d, MaxPool2d};
use crate::classifier::ClassifierExt;
use crate::classifier::{Classifier, LogitsLoss, softmax_cross_entropy_batch};
use crate::error::{Error, Result, check_finite};
use crate::validate;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis, s};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// A fully connected layer without activation: `y = x Wᵀ + b`, `W` `[out, in]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    /// `[out, in]` (PyTorch `nn.Linear` layout).
    pub weight: Array2<f64>,
    /// `[out]`.
    pub bias: Array1<f64>,
}

impl Linear {
    /// He-normal weights (`std = sqrt(2 / in)`), zero bias.
    pub fn random(inputs: usize, outputs: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut w = vec![0.0; inputs * outputs];
        crate::analysis::spectral::fill_gaussian(&mut w, &mut rng);
        let std = (2.0 / inputs.max(1) as f64).sqrt();
        w.iter_mut().for_each(|v| *v *= std);
        Self {
            weight: Array2::from_shape_vec((outputs, inputs), w).expect("shape"),
            bias: Array1::zeros(outputs),
        }
    }
}

/// One layer of a [`Cnn`].
#[derive(Debug, Clone, PartialEq)]
pub enum CnnLayer {
    /// A convolution.
    Conv2d(Conv2d),
    /// Max-pooling.
    MaxPool2d(MaxPool2d),
    /// Element-wise `max(0, x)`.
    Relu,
    /// A fully connected layer on the flattened `C×H×W` representation.
    Linear(Linear),
}

impl CnnLayer {
    /// Short kind name: `conv`, `maxpool`, `relu`, `linear`.
    pub fn kind(&self) -> &'static str {
        match self {
            CnnLayer::Conv2d(_) => "conv",
            CnnLayer::MaxPool2d(_) => "maxpool",
            CnnLayer::Relu => "relu",
            CnnLayer::Linear(_) => "linear",
        }
    }

    fn out_dim(&self, in_dim: usize) -> Result<usize> {
        let check = |need: usize| {
            if need != in_dim {
                Err(Error::shape(
                    format!("Cnn {} layer input", self.kind()),
                    need,
                    in_dim,
                ))
            } else {
                Ok(())
            }
        };
        match self {
            CnnLayer::Conv2d(c) => {
                check(c.input_dim())?;
                Ok(c.output_dim())
            }
            CnnLayer::MaxPool2d(p) => {
                check(p.input_dim())?;
                Ok(p.output_dim())
            }
            CnnLayer::Relu => Ok(in_dim),
            CnnLayer::Linear(l) => {
                check(l.weight.ncols())?;
                if l.bias.len() != l.weight.nrows() {
                    return Err(Error::shape(
                        "Cnn linear bias",
                        l.weight.nrows(),
                        l.bias.len(),
                    ));
                }
                check_finite(l.weight.iter(), "Cnn linear weight")?;
                check_finite(l.bias.iter(), "Cnn linear bias")?;
                Ok(l.weight.nrows())
            }
        }
    }
}

/// A sequential network of [`CnnLayer`]s on flat `C×H×W` rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Cnn {
    layers: Vec<CnnLayer>,
    input_dim: usize,
    num_classes: usize,
    dims: Vec<usize>,
}

/// What the forward pass keeps for the backward pass.
enum Aux {
    None,
    Cols(Array2<f64>),
    Argmax(Vec<u32>),
}

/// Gradients of the parameters of one layer (`None` for parameter-free layers): weight as
/// `[out, fan_in]` and bias.
pub type ParamGrad = Option<(Array2<f64>, Array1<f64>)>;

impl Cnn {
    /// A network from its layers; the input dimension is that of the first layer (which must
    /// be a convolution, pooling or linear layer) and every layer's input must match the
    /// previous output.
    pub fn new(layers: Vec<CnnLayer>) -> Result<Self> {
        let input_dim = match layers.first() {
            Some(CnnLayer::Conv2d(c)) => c.input_dim(),
            Some(CnnLayer::MaxPool2d(p)) => p.input_dim(),
            Some(CnnLayer::Linear(l)) => l.weight.ncols(),
            Some(CnnLayer::Relu) | None => {
                return Err(Error::InvalidConfig(
                    "a Cnn must start with a conv, pooling or linear layer".into(),
                ));
            }
        };
        let mut dims = vec![input_dim];
        for l in &layers {
            let d = l.out_dim(*dims.last().expect("non-empty"))?;
            dims.push(d);
        }
        let num_classes = *dims.last().expect("non-empty");
        if num_classes < 2 {
            return Err(Error::InvalidConfig(
                "a Cnn needs at least 2 outputs".into(),
            ));
        }
        Ok(Self {
            layers,
            input_dim,
            num_classes,
            dims,
        })
    }

    /// A LeNet-style MNIST model (`1×28×28` inputs, 10 classes): conv 5×5 × `c1` → ReLU →
    /// max-pool 2 → conv 5×5 × `c2` → ReLU → max-pool 2 → linear `16·c2 → hidden` → ReLU →
    /// linear `hidden → 10`. `(6, 16, 120)` is LeNet-5's width, `(20, 50, 500)` Caffe's
    /// LeNet. He-normal initialisation from `seed`.
    pub fn lenet(c1: usize, c2: usize, hidden: usize, seed: u64) -> Result<Self> {
        if c1 == 0 || c2 == 0 || hidden == 0 {
            return Err(Error::InvalidConfig("LeNet widths must be >= 1".into()));
        }
        let conv1 = Conv2d::random((1, 28, 28), c1, 5, 1, 0, seed)?;
        let pool1 = MaxPool2d::new(conv1.output_shape(), 2, 2)?;
        let conv2 = Conv2d::random(pool1.output_shape(), c2, 5, 1, 0, seed.wrapping_add(1))?;
        let pool2 = MaxPool2d::new(conv2.output_shape(), 2, 2)?;
        let flat = pool2.output_dim();
        Self::new(vec![
            CnnLayer::Conv2d(conv1),
            CnnLayer::Relu,
            CnnLayer::MaxPool2d(pool1),
            CnnLayer::Conv2d(conv2),
            CnnLayer::Relu,
            CnnLayer::MaxPool2d(pool2),
            CnnLayer::Linear(Linear::random(flat, hidden, seed.wrapping_add(2))),
            CnnLayer::Relu,
            CnnLayer::Linear(Linear::random(hidden, 10, seed.wrapping_add(3))),
        ])
    }

    /// The layers.
    pub fn layers(&self) -> &[CnnLayer] {
        &self.layers
    }

    /// The width of the representation after each layer (`dims()[0]` is the input).
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The representation after layer `layer_index` (0-based; the last index gives the
    /// logits) of a batch.
    pub fn hidden_representation(
        &self,
        inputs: ArrayView2<'_, f64>,
        layer_index: usize,
    ) -> Result<Array2<f64>> {
        self.check_inputs(inputs)?;
        if layer_index >= self.layers.len() {
            return Err(Error::InvalidConfig(format!(
                "layer index {layer_index} out of range for a Cnn with {} layers",
                self.layers.len()
            )));
        }
        let mut h = inputs.to_owned();
        for l in &self.layers[..=layer_index] {
            h = Self::layer_forward(l, h.view()).0;
        }
        Ok(h)
    }

    fn layer_forward(l: &CnnLayer, x: ArrayView2<'_, f64>) -> (Array2<f64>, Aux) {
        match l {
            CnnLayer::Conv2d(c) => {
                let (y, cols) = c.forward_with_cols(x);
                (y, Aux::Cols(cols))
            }
            CnnLayer::MaxPool2d(p) => {
                let (y, a) = p.forward_with_argmax(x);
                (y, Aux::Argmax(a))
            }
            CnnLayer::Relu => (x.mapv(|v| v.max(0.0)), Aux::None),
            CnnLayer::Linear(lin) => {
                let mut y = x.dot(&lin.weight.t());
                y += &lin.bias;
                (y, Aux::None)
            }
        }
    }

    /// Forward pass keeping every layer's input.
    fn forward_cached(&self, x: ArrayView2<'_, f64>) -> (Vec<Array2<f64>>, Vec<Aux>) {
        let mut acts = Vec::with_capacity(self.layers.len() + 1);
        let mut aux = Vec::with_capacity(self.layers.len());
        acts.push(x.to_owned());
        for l in &self.layers {
            let (y, a) = Self::layer_forward(l, acts.last().expect("non-empty").view());
            acts.push(y);
            aux.push(a);
        }
        (acts, aux)
    }

    /// Backward pass from `dlogits`; returns the input gradient and, when `params`, the
    /// parameter gradients of every layer.
    fn backward(
        &self,
        acts: &[Array2<f64>],
        aux: &[Aux],
        dlogits: Array2<f64>,
        params: bool,
    ) -> (Array2<f64>, Vec<ParamGrad>) {
        let mut g = dlogits;
        let mut grads: Vec<ParamGrad> = vec![None; self.layers.len()];
        for (i, l) in self.layers.iter().enumerate().rev() {
            // The input gradient of the first layer is not needed for training.
            let need_input = i > 0 || !params;
            g = match (l, &aux[i]) {
                (CnnLayer::Conv2d(c), Aux::Cols(cols)) => {
                    if params {
                        let (dx, dw, db) = c.backward_full(g.view(), cols, need_input);
                        grads[i] = Some((dw, db));
                        dx.unwrap_or_default()
                    } else {
                        c.backward_input_unchecked(g.view())
                    }
                }
                (CnnLayer::MaxPool2d(p), Aux::Argmax(a)) => p.backward(g.view(), a),
                (CnnLayer::Relu, _) => {
                    let mut g = g;
                    g.zip_mut_with(&acts[i + 1], |d, &y| {
                        if y <= 0.0 {
                            *d = 0.0
                        }
                    });
                    g
                }
                (CnnLayer::Linear(lin), _) => {
                    if params {
                        grads[i] = Some((g.t().dot(&acts[i]), g.sum_axis(Axis(0))));
                    }
                    g.dot(&lin.weight)
                }
                _ => unreachable!("aux matches its layer"),
            };
        }
        (g, grads)
    }

    /// Number of trainable parameters.
    pub fn num_parameters(&self) -> usize {
        self.layers
            .iter()
            .map(|l| match l {
                CnnLayer::Conv2d(c) => c.weight().len() + c.bias().len(),
                CnnLayer::Linear(l) => l.weight.len() + l.bias.len(),
                _ => 0,
            })
            .sum()
    }

    /// All parameters flattened (per layer: weight row-major, then bias).
    pub fn parameters(&self) -> Array1<f64> {
        let mut v = Vec::with_capacity(self.num_parameters());
        for l in &self.layers {
            match l {
                CnnLayer::Conv2d(c) => {
                    v.extend(c.weight().iter());
                    v.extend(c.bias().iter());
                }
                CnnLayer::Linear(l) => {
                    v.extend(l.weight.iter());
                    v.extend(l.bias.iter());
                }
                _ => {}
            }
        }
        Array1::from(v)
    }

    /// Sets all parameters from the layout of [`parameters`](Cnn::parameters).
    pub fn set_parameters(&mut self, p: ArrayView1<'_, f64>) -> Result<()> {
        if p.len() != self.num_parameters() {
            return Err(Error::shape(
                "Cnn parameters",
                self.num_parameters(),
                p.len(),
            ));
        }
        check_finite(p.iter(), "Cnn parameters")?;
        let mut it = p.iter();
        for l in &mut self.layers {
            match l {
                CnnLayer::Conv2d(c) => {
                    c.weight_mut()
                        .iter_mut()
                        .for_each(|w| *w = *it.next().expect("len"));
                    c.bias_mut()
                        .iter_mut()
                        .for_each(|w| *w = *it.next().expect("len"));
                }
                CnnLayer::Linear(l) => {
                    l.weight
                        .iter_mut()
                        .for_each(|w| *w = *it.next().expect("len"));
                    l.bias
                        .iter_mut()
                        .for_each(|w| *w = *it.next().expect("len"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Mean softmax cross-entropy of a batch and its gradient with respect to
    /// [`parameters`](Cnn::parameters) (same layout).
    pub fn loss_parameter_gradient(
        &self,
        inputs: ArrayView2<'_, f64>,
        labels: &[usize],
    ) -> Result<(f64, Array1<f64>)> {
        self.check_inputs(inputs)?;
        if labels.len() != inputs.nrows() {
            return Err(Error::shape("labels", inputs.nrows(), labels.len()));
        }
        for &l in labels {
            self.check_label(l)?;
        }
        let (loss, grads) = self.loss_grads(inputs, labels);
        let mut v = Vec::with_capacity(self.num_parameters());
        for (w, b) in grads.into_iter().flatten() {
            v.extend(w.iter());
            v.extend(b.iter());
        }
        Ok((loss, Array1::from(v)))
    }

    fn loss_grads(&self, inputs: ArrayView2<'_, f64>, labels: &[usize]) -> (f64, Vec<ParamGrad>) {
        let (acts, aux) = self.forward_cached(inputs);
        let z = acts.last().expect("non-empty");
        let mut dz = Array2::zeros(z.raw_dim());
        let loss = softmax_cross_entropy_batch(z.view(), labels, dz.view_mut());
        let (_, grads) = self.backward(&acts, &aux, dz, true);
        (loss, grads)
    }
}

impl Classifier for Cnn {
    fn input_dim(&self) -> usize {
        self.input_dim
    }
    fn num_classes(&self) -> usize {
        self.num_classes
    }
    fn logits_into(
        &self,
        inputs: ArrayView2<'_, f64>,
        mut out: ArrayViewMut2<'_, f64>,
    ) -> Result<()> {
        let mut h = inputs.to_owned();
        for l in &self.layers {
            h = Self::layer_forward(l, h.view()).0;
        }
        out.assign(&h);
        Ok(())
    }
    fn loss_gradient_into(
        &self,
        inputs: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        mut grad: ArrayViewMut2<'_, f64>,
    ) -> Result<f64> {
        let (acts, aux) = self.forward_cached(inputs);
        let z = acts.last().expect("non-empty");
        let mut dz = Array2::zeros(z.raw_dim());
        let loss = seed(z.view(), dz.view_mut());
        let (g, _) = self.backward(&acts, &aux, dz, false);
        grad.assign(&g);
        Ok(loss)
    }
}

/// Settings of [`train_cnn`]: minibatch SGD with momentum and L2 weight decay.
#[derive(Debug, Clone, PartialEq)]
pub struct CnnTrainConfig {
    epochs: usize,
    batch_size: usize,
    learning_rate: f64,
    momentum: f64,
    weight_decay: f64,
    seed: u64,
}

impl Default for CnnTrainConfig {
    fn default() -> Self {
        Self {
            epochs: 1,
            batch_size: 64,
            learning_rate: 0.05,
            momentum: 0.9,
            weight_decay: 0.0,
            seed: 0,
        }
    }
}

impl CnnTrainConfig {
    /// Defaults: 1 epoch, batch 64, learning rate 0.05, momentum 0.9, no weight decay.
    pub fn new() -> Self {
        Self::default()
    }
    /// Passes over the data (>= 1).
    pub fn with_epochs(mut self, epochs: usize) -> Result<Self> {
        self.epochs = validate::at_least_one("epochs", epochs)?;
        Ok(self)
    }
    /// Minibatch size (>= 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Result<Self> {
        self.batch_size = validate::at_least_one("batch_size", batch_size)?;
        Ok(self)
    }
    /// Step size (> 0).
    pub fn with_learning_rate(mut self, lr: f64) -> Result<Self> {
        self.learning_rate = validate::positive("learning rate", lr)?;
        Ok(self)
    }
    /// Momentum in `[0, 1)`.
    pub fn with_momentum(mut self, m: f64) -> Result<Self> {
        self.momentum = validate::in_unit_interval_open_right("momentum", m)?;
        Ok(self)
    }
    /// L2 weight decay on the weights (not biases), `>= 0`.
    pub fn with_weight_decay(mut self, wd: f64) -> Result<Self> {
        self.weight_decay = validate::non_negative("weight decay", wd)?;
        Ok(self)
    }
    /// Seed of the shuffling.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// What [`train_cnn`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct CnnTrainReport {
    /// Mean minibatch loss of each epoch.
    pub epoch_losses: Vec<f64>,
    /// Wall-clock seconds of the whole run.
    pub seconds: f64,
}

/// Trains `net` on `inputs` `[n, input_dim]` with `labels` by minibatch SGD with momentum
/// (`v ← μv − η(g + λw)`, `w ← w + v`). Calls `epoch_callback(epoch, mean_loss)` after each
/// epoch. On a non-finite loss or gradient (divergence) the parameters are restored to their
/// state at the start of that epoch and [`Error::ModelNonFinite`] is returned.
pub fn train_cnn(
    net: &mut Cnn,
    inputs: ArrayView2<'_, f64>,
    labels: &[usize],
    config: &CnnTrainConfig,
    mut epoch_callback: impl FnMut(usize, f64),
) -> Result<CnnTrainReport> {
    net.check_inputs(inputs)?;
    if labels.len() != inputs.nrows() || labels.is_empty() {
        return Err(Error::shape("labels", inputs.nrows(), labels.len()));
    }
    for &l in labels {
        net.check_label(l)?;
    }
    let start = std::time::Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..inputs.nrows()).collect();
    let mut velocity: Vec<ParamGrad> = net
        .layers
        .iter()
        .map(|l| match l {
            CnnLayer::Conv2d(c) => Some((
                Array2::zeros((c.weight().dim().0, c.weight().len() / c.weight().dim().0)),
                Array1::zeros(c.bias().len()),
            )),
            CnnLayer::Linear(l) => Some((
                Array2::zeros(l.weight.raw_dim()),
                Array1::zeros(l.bias.len()),
            )),
            _ => None,
        })
        .collect();
    let d = inputs.ncols();
    let mut batch = Array2::zeros((config.batch_size, d));
    let mut batch_labels = Vec::with_capacity(config.batch_size);
    let mut epoch_losses = Vec::with_capacity(config.epochs);
    let (lr, mu, wd) = (config.learning_rate, config.momentum, config.weight_decay);
    for epoch in 0..config.epochs {
        let snapshot = net.parameters();
        order.shuffle(&mut rng);
        let (mut total, mut count) = (0.0, 0usize);
        for chunk in order.chunks(config.batch_size) {
            let m = chunk.len();
            batch_labels.clear();
            for (r, &i) in chunk.iter().enumerate() {
                batch.row_mut(r).assign(&inputs.row(i));
                batch_labels.push(labels[i]);
            }
            let (loss, grads) = net.loss_grads(batch.slice(s![..m, ..]), &batch_labels);
            if !loss.is_finite() {
                net.set_parameters(snapshot.view())?;
                return Err(Error::ModelNonFinite {
                    what: format!("training loss in epoch {epoch}"),
                });
            }
            let finite = grads
                .iter()
                .flatten()
                .all(|(w, b)| w.iter().all(|v| v.is_finite()) && b.iter().all(|v| v.is_finite()));
            if !finite {
                net.set_parameters(snapshot.view())?;
                return Err(Error::ModelNonFinite {
                    what: format!("parameter gradient in epoch {epoch}"),
                });
            }
            total += loss;
            count += 1;
            for ((layer, vel), grad) in net.layers.iter_mut().zip(&mut velocity).zip(grads) {
                let (Some((vw, vb)), Some((gw, gb))) = (vel.as_mut(), grad) else {
                    continue;
                };
                match layer {
                    CnnLayer::Conv2d(c) => {
                        let shape = (vw.nrows(), vw.ncols());
                        let mut w2 = c
                            .weight_mut()
                            .into_shape_with_order(shape)
                            .expect("contiguous");
                        step(&mut w2, vw, &gw, lr, mu, wd);
                        let mut b = c.bias_mut();
                        step_bias(&mut b, vb, &gb, lr, mu);
                    }
                    CnnLayer::Linear(l) => {
                        step(&mut l.weight.view_mut(), vw, &gw, lr, mu, wd);
                        step_bias(&mut l.bias.view_mut(), vb, &gb, lr, mu);
                    }
                    _ => {}
                }
            }
        }
        let mean = total / count.max(1) as f64;
        epoch_losses.push(mean);
        epoch_callback(epoch, mean);
    }
    Ok(CnnTrainReport {
        epoch_losses,
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn step(
    w: &mut ndarray::ArrayViewMut2<'_, f64>,
    v: &mut Array2<f64>,
    g: &Array2<f64>,
    lr: f64,
    mu: f64,
    wd: f64,
) {
    ndarray::Zip::from(w).and(v).and(g).for_each(|w, v, &g| {
        *v = mu * *v - lr * (g + wd * *w);
        *w += *v;
    });
}

fn step_bias(
    b: &mut ndarray::ArrayViewMut1<'_, f64>,
    v: &mut Array1<f64>,
    g: &Array1<f64>,
    lr: f64,
    mu: f64,
) {
    ndarray::Zip::from(b).and(v).and(g).for_each(|b, v, &g| {
        *v = mu * *v - lr * g;
        *b += *v;
    });
}
