//! The paper's AE400-10: a single-layer sparse autoencoder with a softmax classifier on its
//! code, stacked into one [`Mlp`] so that the whole model is a
//! [`Classifier`](crate::Classifier) attacked end to end.
//!
//! # Model
//!
//! - Encoder `h = σ(x W₁ᵀ + b₁)` (sigmoid, `W₁` `[hidden, input]`).
//! - Decoder `x̂ = σ(h W₂ᵀ + b₂)` (sigmoid output, **untied** weights `W₂` `[input, hidden]`:
//!   pixels live in `[0, 1]` like the sigmoid's range; untied weights are the classic
//!   sparse-autoencoder formulation of Ng's UFLDL notes, which the paper's AE400-10 follows).
//! - Loss on a minibatch of `n` rows, with `ρ̂_j = (1/n) Σᵢ h_ij` the mean activation of unit j:
//!
//!   `J = 1/(2n) Σᵢ ‖x̂ᵢ − xᵢ‖² + β Σ_j KL(ρ ‖ ρ̂_j) + λ/2 (‖W₁‖² + ‖W₂‖²)`,
//!
//!   `KL(ρ‖ρ̂) = ρ log(ρ/ρ̂) + (1 − ρ) log((1 − ρ)/(1 − ρ̂))`.
//!
//! Training is minibatch Adam on `J` (batched matrix products, one forward and one backward
//! pass per minibatch), unsupervised. A softmax layer (weight decay λ = 1e-6 in the paper) is
//! then trained on the codes `h` of the training set by minibatch Adam on the mean
//! cross-entropy + λ/2 ‖W‖². [`SparseAutoencoder::stack`] turns encoder + softmax into the
//! [`Mlp`] `[input → hidden sigmoid → classes identity]`.
//!
//! # Examples
//!
//! ```
//! use intriguing::{Classifier, ClassifierExt};
//! use intriguing::models::autoencoder::{SparseAutoencoder, SparseAeConfig, SoftmaxConfig};
//! use ndarray::Array2;
//!
//! // Six 4-pixel "images" of two classes.
//! let x = Array2::from_shape_fn((6, 4), |(i, j)| if (i % 2 == 0) == (j < 2) { 0.9 } else { 0.1 });
//! let y: Vec<usize> = (0..6).map(|i| i % 2).collect();
//! let cfg = SparseAeConfig::default().with_hidden(3)?.with_epochs(5)?.with_batch_size(3)?;
//! let mut ae = SparseAutoencoder::random(4, 3, 0)?;
//! ae.train(x.view(), &cfg, |_| {})?;
//! let softmax = ae.train_softmax(x.view(), &y, 2, &SoftmaxConfig::default().with_epochs(200)?)?;
//! let model = ae.stack(softmax)?;
//! assert_eq!(model.sizes(), vec![4, 3, 2]);
//! assert_eq!(model.error_rate(x.view(), &y)?, 0.0);
//! # Ok::<(), intriguing::Error>(())
//! ```

use super::{Activation, Dense, Mlp};
use crate::classifier::softmax_cross_entropy;
use crate::error::{Error, Result, check_finite};
use crate::validate::{at_least_one, in_open_unit_interval, non_negative, positive};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, s};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Settings of [`SparseAutoencoder::train`]. Build with [`Default`] and the validating
/// `with_*` setters.
#[derive(Clone, Debug, PartialEq)]
pub struct SparseAeConfig {
    hidden: usize,
    rho: f64,
    beta: f64,
    weight_decay: f64,
    epochs: usize,
    batch_size: usize,
    learning_rate: f64,
    seed: u64,
}

impl Default for SparseAeConfig {
    /// 400 hidden units, ρ = 0.05, β = 3, λ = 3e-3 (UFLDL's MNIST values), 10 epochs of
    /// minibatches of 100, Adam learning rate 3e-3, seed 0.
    fn default() -> Self {
        SparseAeConfig {
            hidden: 400,
            rho: 0.05,
            beta: 3.0,
            weight_decay: 3e-3,
            epochs: 10,
            batch_size: 100,
            learning_rate: 3e-3,
            seed: 0,
        }
    }
}

impl SparseAeConfig {
    /// Number of code units (≥ 1).
    pub fn with_hidden(mut self, n: usize) -> Result<Self> {
        at_least_one("hidden units", n)?;
        self.hidden = n;
        Ok(self)
    }
    /// Target mean activation ρ in (0, 1).
    pub fn with_rho(mut self, rho: f64) -> Result<Self> {
        self.rho = in_open_unit_interval("rho", rho)?;
        Ok(self)
    }
    /// Weight β ≥ 0 of the KL sparsity penalty.
    pub fn with_beta(mut self, beta: f64) -> Result<Self> {
        non_negative("beta", beta)?;
        self.beta = beta;
        Ok(self)
    }
    /// Weight decay λ ≥ 0 on both weight matrices (not on biases).
    pub fn with_weight_decay(mut self, lambda: f64) -> Result<Self> {
        non_negative("weight decay", lambda)?;
        self.weight_decay = lambda;
        Ok(self)
    }
    /// Number of passes over the data (≥ 1).
    pub fn with_epochs(mut self, n: usize) -> Result<Self> {
        at_least_one("epochs", n)?;
        self.epochs = n;
        Ok(self)
    }
    /// Minibatch size (≥ 1).
    pub fn with_batch_size(mut self, n: usize) -> Result<Self> {
        at_least_one("batch size", n)?;
        self.batch_size = n;
        Ok(self)
    }
    /// Adam step size (> 0).
    pub fn with_learning_rate(mut self, lr: f64) -> Result<Self> {
        positive("learning rate", lr)?;
        self.learning_rate = lr;
        Ok(self)
    }
    /// Seed of the shuffling.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Number of code units.
    pub fn hidden(&self) -> usize {
        self.hidden
    }
    /// Number of epochs.
    pub fn epochs(&self) -> usize {
        self.epochs
    }
    /// The [`SparseLoss`] these settings define.
    pub fn loss(&self) -> SparseLoss {
        SparseLoss {
            rho: self.rho,
            beta: self.beta,
            weight_decay: self.weight_decay,
        }
    }
}

/// The terms of the sparse-autoencoder objective (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SparseLoss {
    /// Target mean activation ρ in (0, 1).
    pub rho: f64,
    /// Weight β of the KL sparsity penalty.
    pub beta: f64,
    /// Weight decay λ on both weight matrices.
    pub weight_decay: f64,
}

/// Settings of [`SparseAutoencoder::train_softmax`].
#[derive(Clone, Debug, PartialEq)]
pub struct SoftmaxConfig {
    weight_decay: f64,
    epochs: usize,
    batch_size: usize,
    learning_rate: f64,
    seed: u64,
}

impl Default for SoftmaxConfig {
    /// The paper's λ = 1e-6, 30 epochs of minibatches of 100, Adam learning rate 1e-2, seed 0.
    fn default() -> Self {
        SoftmaxConfig {
            weight_decay: 1e-6,
            epochs: 30,
            batch_size: 100,
            learning_rate: 1e-2,
            seed: 0,
        }
    }
}

impl SoftmaxConfig {
    /// Weight decay λ ≥ 0 (the loss is mean cross-entropy + λ/2 ‖W‖²).
    pub fn with_weight_decay(mut self, lambda: f64) -> Result<Self> {
        non_negative("weight decay", lambda)?;
        self.weight_decay = lambda;
        Ok(self)
    }
    /// Number of passes over the data (≥ 1).
    pub fn with_epochs(mut self, n: usize) -> Result<Self> {
        at_least_one("epochs", n)?;
        self.epochs = n;
        Ok(self)
    }
    /// Minibatch size (≥ 1).
    pub fn with_batch_size(mut self, n: usize) -> Result<Self> {
        at_least_one("batch size", n)?;
        self.batch_size = n;
        Ok(self)
    }
    /// Adam step size (> 0).
    pub fn with_learning_rate(mut self, lr: f64) -> Result<Self> {
        positive("learning rate", lr)?;
        self.learning_rate = lr;
        Ok(self)
    }
    /// Seed of the shuffling.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// Progress of one epoch of [`SparseAutoencoder::train`].
#[derive(Clone, Debug, PartialEq)]
pub struct AeEpoch {
    /// 0-based epoch index.
    pub epoch: usize,
    /// Mean over the epoch's minibatches of the full objective `J`.
    pub loss: f64,
    /// Mean over the epoch's minibatches of the reconstruction term `1/(2n) Σ ‖x̂ − x‖²`.
    pub reconstruction: f64,
    /// Mean code activation over the epoch (to compare with ρ).
    pub mean_activation: f64,
}

/// Gradients of the sparse-autoencoder objective.
#[derive(Clone, Debug, PartialEq)]
pub struct AeGradients {
    /// `dJ/dW₁` `[hidden, input]`.
    pub encoder_weight: Array2<f64>,
    /// `dJ/db₁` `[hidden]`.
    pub encoder_bias: Array1<f64>,
    /// `dJ/dW₂` `[input, hidden]`.
    pub decoder_weight: Array2<f64>,
    /// `dJ/db₂` `[input]`.
    pub decoder_bias: Array1<f64>,
}

impl AeGradients {
    /// All entries in the order of [`SparseAutoencoder::parameters`].
    pub fn to_flat(&self) -> Array1<f64> {
        self.encoder_weight
            .iter()
            .chain(&self.encoder_bias)
            .chain(&self.decoder_weight)
            .chain(&self.decoder_bias)
            .copied()
            .collect()
    }
}

/// A one-hidden-layer sparse autoencoder with sigmoid encoder and sigmoid decoder (untied
/// weights). See the [module docs](self).
#[derive(Clone, Debug, PartialEq)]
pub struct SparseAutoencoder {
    encoder: Dense,
    decoder: Dense,
}

fn sigmoid(x: f64) -> f64 {
    Activation::Sigmoid.apply(x)
}

/// `out = x Wᵀ + b`, then sigmoid.
fn affine_sigmoid(x: ArrayView2<'_, f64>, layer: &Dense, out: &mut Array2<f64>) {
    out.assign(&layer.bias);
    general_mat_mul(1.0, &x, &layer.weight.t(), 1.0, out);
    out.mapv_inplace(sigmoid);
}

/// Work buffers for one minibatch.
struct AeBuffers {
    h: Array2<f64>,
    xhat: Array2<f64>,
    d3: Array2<f64>,
    d2: Array2<f64>,
    rho_hat: Array1<f64>,
    dkl: Array1<f64>,
}

impl AeBuffers {
    fn new(n: usize, input: usize, hidden: usize) -> Self {
        AeBuffers {
            h: Array2::zeros((n, hidden)),
            xhat: Array2::zeros((n, input)),
            d3: Array2::zeros((n, input)),
            d2: Array2::zeros((n, hidden)),
            rho_hat: Array1::zeros(hidden),
            dkl: Array1::zeros(hidden),
        }
    }
}

/// Terms of one evaluation.
struct AeTerms {
    loss: f64,
    reconstruction: f64,
    mean_activation: f64,
}

impl SparseAutoencoder {
    /// An autoencoder `input → hidden → input` with Glorot-uniform weights and zero biases,
    /// drawn from `ChaCha8Rng::seed_from_u64(seed)`.
    pub fn random(input: usize, hidden: usize, seed: u64) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Ok(SparseAutoencoder {
            encoder: Dense::glorot(input, hidden, Activation::Sigmoid, &mut rng)?,
            decoder: Dense::glorot(hidden, input, Activation::Sigmoid, &mut rng)?,
        })
    }

    /// An autoencoder from its two layers. Both must be sigmoid, the encoder `[hidden, input]`,
    /// the decoder `[input, hidden]`.
    pub fn new(encoder: Dense, decoder: Dense) -> Result<Self> {
        let enc = Dense::new(encoder.weight, encoder.bias, encoder.activation)?;
        let dec = Dense::new(decoder.weight, decoder.bias, decoder.activation)?;
        if enc.activation != Activation::Sigmoid || dec.activation != Activation::Sigmoid {
            return Err(Error::InvalidConfig(
                "both autoencoder layers must use the sigmoid activation".into(),
            ));
        }
        if dec.in_dim() != enc.out_dim() || dec.out_dim() != enc.in_dim() {
            return Err(Error::shape(
                "decoder weight",
                format!("[{}, {}]", enc.in_dim(), enc.out_dim()),
                format!("{:?}", dec.weight.shape()),
            ));
        }
        Ok(SparseAutoencoder {
            encoder: enc,
            decoder: dec,
        })
    }

    /// The encoder layer (`[hidden, input]`, sigmoid).
    pub fn encoder(&self) -> &Dense {
        &self.encoder
    }

    /// The decoder layer (`[input, hidden]`, sigmoid).
    pub fn decoder(&self) -> &Dense {
        &self.decoder
    }

    /// Input dimension.
    pub fn input_dim(&self) -> usize {
        self.encoder.in_dim()
    }

    /// Number of code units.
    pub fn hidden_dim(&self) -> usize {
        self.encoder.out_dim()
    }

    fn check(&self, x: ArrayView2<'_, f64>) -> Result<()> {
        if x.ncols() != self.input_dim() {
            return Err(Error::shape(
                "autoencoder inputs",
                format!("[n, {}]", self.input_dim()),
                format!("{:?}", x.shape()),
            ));
        }
        if x.nrows() == 0 {
            return Err(Error::InvalidConfig("autoencoder on an empty batch".into()));
        }
        check_finite(x.iter(), "autoencoder inputs")
    }

    /// The codes `σ(x W₁ᵀ + b₁)` of a batch, `[n, hidden]`.
    pub fn encode(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        self.check(x)?;
        let mut h = Array2::zeros((x.nrows(), self.hidden_dim()));
        for (xc, mut hc) in x
            .axis_chunks_iter(Axis(0), 1024)
            .zip(h.axis_chunks_iter_mut(Axis(0), 1024))
        {
            let mut tmp = Array2::zeros((xc.nrows(), self.hidden_dim()));
            affine_sigmoid(xc, &self.encoder, &mut tmp);
            hc.assign(&tmp);
        }
        Ok(h)
    }

    /// The reconstructions `x̂` of a batch, `[n, input]`.
    pub fn reconstruct(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        let h = self.encode(x)?;
        let mut xhat = Array2::zeros((x.nrows(), self.input_dim()));
        affine_sigmoid(h.view(), &self.decoder, &mut xhat);
        Ok(xhat)
    }

    /// All parameters as one vector: `W₁` (row-major), `b₁`, `W₂`, `b₂`.
    pub fn parameters(&self) -> Array1<f64> {
        self.encoder
            .weight
            .iter()
            .chain(&self.encoder.bias)
            .chain(&self.decoder.weight)
            .chain(&self.decoder.bias)
            .copied()
            .collect()
    }

    /// Sets all parameters from a vector laid out as [`SparseAutoencoder::parameters`]. Errors
    /// (model unchanged) on a wrong length or non-finite values.
    pub fn set_parameters(&mut self, flat: ArrayView1<'_, f64>) -> Result<()> {
        let total = self.parameters().len();
        if flat.len() != total {
            return Err(Error::shape("autoencoder parameters", total, flat.len()));
        }
        check_finite(flat.iter(), "autoencoder parameters")?;
        let mut it = flat.iter();
        for v in self
            .encoder
            .weight
            .iter_mut()
            .chain(self.encoder.bias.iter_mut())
            .chain(self.decoder.weight.iter_mut())
            .chain(self.decoder.bias.iter_mut())
        {
            *v = *it.next().expect("length checked");
        }
        Ok(())
    }

    /// Forward + backward on one batch into `buf` and `grads` (gradients overwritten).
    fn forward_backward(
        &self,
        x: ArrayView2<'_, f64>,
        loss: &SparseLoss,
        buf: &mut AeBuffers,
        grads: &mut AeGradients,
    ) -> AeTerms {
        let n = x.nrows() as f64;
        affine_sigmoid(x, &self.encoder, &mut buf.h);
        affine_sigmoid(buf.h.view(), &self.decoder, &mut buf.xhat);
        // Reconstruction term and δ₃ = (x̂ − x) ⊙ x̂(1 − x̂) / n.
        let mut rec = 0.0;
        ndarray::Zip::from(&mut buf.d3)
            .and(&buf.xhat)
            .and(x)
            .for_each(|d, &xh, &xi| {
                let e = xh - xi;
                rec += e * e;
                *d = e * xh * (1.0 - xh) / n;
            });
        rec /= 2.0 * n;
        // Sparsity.
        let rho = loss.rho;
        column_sums(&buf.h, &mut buf.rho_hat);
        buf.rho_hat.mapv_inplace(|v| v / n);
        let eps = 1e-12;
        let mut kl = 0.0;
        for (d, &r) in buf.dkl.iter_mut().zip(&buf.rho_hat) {
            let r = r.clamp(eps, 1.0 - eps);
            kl += rho * (rho / r).ln() + (1.0 - rho) * ((1.0 - rho) / (1.0 - r)).ln();
            *d = loss.beta * (-rho / r + (1.0 - rho) / (1.0 - r)) / n;
        }
        let wd = 0.5
            * loss.weight_decay
            * (self.encoder.weight.iter().map(|w| w * w).sum::<f64>()
                + self.decoder.weight.iter().map(|w| w * w).sum::<f64>());
        // Decoder gradients.
        grads.decoder_weight.assign(&self.decoder.weight);
        general_mat_mul(
            1.0,
            &buf.d3.t(),
            &buf.h,
            loss.weight_decay,
            &mut grads.decoder_weight,
        );
        column_sums(&buf.d3, &mut grads.decoder_bias);
        // δ₂ = (δ₃ W₂ + dKL) ⊙ h(1 − h).
        general_mat_mul(1.0, &buf.d3, &self.decoder.weight, 0.0, &mut buf.d2);
        ndarray::Zip::from(buf.d2.rows_mut())
            .and(buf.h.rows())
            .for_each(|mut d, h| {
                ndarray::Zip::from(&mut d)
                    .and(&h)
                    .and(&buf.dkl)
                    .for_each(|d, &h, &s| *d = (*d + s) * h * (1.0 - h));
            });
        grads.encoder_weight.assign(&self.encoder.weight);
        general_mat_mul(
            1.0,
            &buf.d2.t(),
            &x,
            loss.weight_decay,
            &mut grads.encoder_weight,
        );
        column_sums(&buf.d2, &mut grads.encoder_bias);
        AeTerms {
            loss: rec + loss.beta * kl + wd,
            reconstruction: rec,
            mean_activation: buf.rho_hat.mean().unwrap_or(0.0),
        }
    }

    fn zero_gradients(&self) -> AeGradients {
        AeGradients {
            encoder_weight: Array2::zeros(self.encoder.weight.raw_dim()),
            encoder_bias: Array1::zeros(self.encoder.bias.len()),
            decoder_weight: Array2::zeros(self.decoder.weight.raw_dim()),
            decoder_bias: Array1::zeros(self.decoder.bias.len()),
        }
    }

    /// The objective `J` on the batch `x` and its gradients with respect to every parameter.
    pub fn loss_gradients(
        &self,
        x: ArrayView2<'_, f64>,
        loss: &SparseLoss,
    ) -> Result<(f64, AeGradients)> {
        self.check(x)?;
        let mut buf = AeBuffers::new(x.nrows(), self.input_dim(), self.hidden_dim());
        let mut g = self.zero_gradients();
        let t = self.forward_backward(x, loss, &mut buf, &mut g);
        if !t.loss.is_finite() {
            return Err(Error::ModelNonFinite {
                what: "autoencoder loss".into(),
            });
        }
        Ok((t.loss, g))
    }

    /// The objective `J` on the batch `x`.
    pub fn loss(&self, x: ArrayView2<'_, f64>, loss: &SparseLoss) -> Result<f64> {
        Ok(self.loss_gradients(x, loss)?.0)
    }

    /// Trains the autoencoder on the rows of `x` (unsupervised) by minibatch Adam, calling
    /// `on_epoch` after every epoch. Returns the per-epoch progress. Errors if the number of
    /// code units of `cfg` differs from the model's, or on non-finite data or a diverging
    /// loss (the model is then left at its last finite state).
    pub fn train(
        &mut self,
        x: ArrayView2<'_, f64>,
        cfg: &SparseAeConfig,
        mut on_epoch: impl FnMut(&AeEpoch),
    ) -> Result<Vec<AeEpoch>> {
        self.check(x)?;
        if cfg.hidden != self.hidden_dim() {
            return Err(Error::InvalidConfig(format!(
                "config has {} hidden units, the autoencoder {}",
                cfg.hidden,
                self.hidden_dim()
            )));
        }
        let loss = cfg.loss();
        let n = x.nrows();
        let bs = cfg.batch_size.min(n);
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut order: Vec<usize> = (0..n).collect();
        let mut batch = Array2::zeros((bs, self.input_dim()));
        let mut buf = AeBuffers::new(bs, self.input_dim(), self.hidden_dim());
        let mut g = self.zero_gradients();
        let np = self.parameters().len();
        let mut adam = Adam::new(np, cfg.learning_rate);
        let mut flat_g = vec![0.0; np];
        let mut history = Vec::with_capacity(cfg.epochs);
        for epoch in 0..cfg.epochs {
            order.shuffle(&mut rng);
            let (mut sum_loss, mut sum_rec, mut sum_act, mut batches) = (0.0, 0.0, 0.0, 0usize);
            for chunk in order.chunks(bs) {
                let xb = if chunk.len() == bs {
                    for (mut row, &i) in batch.rows_mut().into_iter().zip(chunk) {
                        row.assign(&x.row(i));
                    }
                    batch.view()
                } else {
                    // Drop the ragged last minibatch: its sparsity estimate is noisier.
                    continue;
                };
                let t = self.forward_backward(xb, &loss, &mut buf, &mut g);
                if !t.loss.is_finite() {
                    return Err(Error::ModelNonFinite {
                        what: format!("autoencoder loss in epoch {epoch}"),
                    });
                }
                for (d, s) in flat_g.iter_mut().zip(
                    g.encoder_weight
                        .iter()
                        .chain(&g.encoder_bias)
                        .chain(&g.decoder_weight)
                        .chain(&g.decoder_bias),
                ) {
                    *d = *s;
                }
                let params = self
                    .encoder
                    .weight
                    .iter_mut()
                    .chain(self.encoder.bias.iter_mut())
                    .chain(self.decoder.weight.iter_mut())
                    .chain(self.decoder.bias.iter_mut());
                adam.step(params, &flat_g);
                sum_loss += t.loss;
                sum_rec += t.reconstruction;
                sum_act += t.mean_activation;
                batches += 1;
            }
            let b = batches.max(1) as f64;
            let e = AeEpoch {
                epoch,
                loss: sum_loss / b,
                reconstruction: sum_rec / b,
                mean_activation: sum_act / b,
            };
            on_epoch(&e);
            history.push(e);
        }
        Ok(history)
    }

    /// Trains a softmax layer `[classes, hidden]` (identity activation: it outputs logits) on
    /// the codes of `x` by minibatch Adam on mean cross-entropy + λ/2 ‖W‖² (λ from `cfg`; the
    /// bias is not decayed).
    pub fn train_softmax(
        &self,
        x: ArrayView2<'_, f64>,
        labels: &[usize],
        classes: usize,
        cfg: &SoftmaxConfig,
    ) -> Result<Dense> {
        let codes = self.encode(x)?;
        train_softmax_layer(codes.view(), labels, classes, cfg)
    }

    /// The classifier `[input → hidden (sigmoid, the encoder) → classes (identity, softmax)]`
    /// as one [`Mlp`]. Errors if `softmax` does not take `hidden` inputs.
    pub fn stack(&self, softmax: Dense) -> Result<Mlp> {
        if softmax.in_dim() != self.hidden_dim() {
            return Err(Error::shape(
                "softmax weight",
                format!("[classes, {}]", self.hidden_dim()),
                format!("{:?}", softmax.weight.shape()),
            ));
        }
        Mlp::new(vec![self.encoder.clone(), softmax])
    }
}

/// Trains a softmax-regression layer on fixed features (see
/// [`SparseAutoencoder::train_softmax`]).
pub fn train_softmax_layer(
    features: ArrayView2<'_, f64>,
    labels: &[usize],
    classes: usize,
    cfg: &SoftmaxConfig,
) -> Result<Dense> {
    if labels.len() != features.nrows() {
        return Err(Error::shape("labels", features.nrows(), labels.len()));
    }
    if features.nrows() == 0 || classes == 0 {
        return Err(Error::InvalidConfig(
            "softmax training needs data and at least one class".into(),
        ));
    }
    if let Some(&l) = labels.iter().find(|&&l| l >= classes) {
        return Err(Error::LabelOutOfRange {
            label: l,
            num_classes: classes,
        });
    }
    check_finite(features.iter(), "softmax features")?;
    let (n, d) = features.dim();
    let mut w = Array2::<f64>::zeros((classes, d));
    let mut b = Array1::<f64>::zeros(classes);
    let bs = cfg.batch_size.min(n);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut order: Vec<usize> = (0..n).collect();
    let mut adam = Adam::new(classes * d + classes, cfg.learning_rate);
    let mut xb = Array2::zeros((bs, d));
    let mut z = Array2::zeros((bs, classes));
    let mut dz = Array2::zeros((bs, classes));
    let mut gw = Array2::zeros((classes, d));
    let mut gb = Array1::zeros(classes);
    let mut flat = vec![0.0; classes * d + classes];
    for epoch in 0..cfg.epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(bs) {
            let m = chunk.len();
            for (mut row, &i) in xb.rows_mut().into_iter().zip(chunk) {
                row.assign(&features.row(i));
            }
            let xv = xb.slice(s![..m, ..]);
            let mut zv = z.slice_mut(s![..m, ..]);
            zv.assign(&b);
            general_mat_mul(1.0, &xv, &w.t(), 1.0, &mut zv);
            let mut loss = 0.0;
            for ((zr, mut gr), &i) in zv.rows().into_iter().zip(dz.rows_mut()).zip(chunk) {
                loss += softmax_cross_entropy(zr, labels[i], gr.view_mut());
                gr.mapv_inplace(|v| v / m as f64);
            }
            if !loss.is_finite() {
                return Err(Error::ModelNonFinite {
                    what: format!("softmax loss in epoch {epoch}"),
                });
            }
            let dzv = dz.slice(s![..m, ..]);
            gw.assign(&w);
            general_mat_mul(1.0, &dzv.t(), &xv, cfg.weight_decay, &mut gw);
            column_sums(&dzv, &mut gb);
            for (f, v) in flat.iter_mut().zip(gw.iter().chain(&gb)) {
                *f = *v;
            }
            adam.step(w.iter_mut().chain(b.iter_mut()), &flat);
        }
    }
    Dense::new(w, b, Activation::Identity)
}

/// `out[j] = Σᵢ a[i, j]` without allocating.
fn column_sums<S: ndarray::Data<Elem = f64>>(
    a: &ndarray::ArrayBase<S, ndarray::Ix2>,
    out: &mut Array1<f64>,
) {
    out.fill(0.0);
    for row in a.rows() {
        *out += &row;
    }
}

/// A plain Adam optimizer (β₁ = 0.9, β₂ = 0.999, ε = 1e-8) over a flat parameter list.
struct Adam {
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
    lr: f64,
}

impl Adam {
    fn new(n: usize, lr: f64) -> Self {
        Adam {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
            lr,
        }
    }

    fn step<'a>(&mut self, params: impl Iterator<Item = &'a mut f64>, grad: &[f64]) {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        self.t += 1;
        let c1 = 1.0 - B1.powi(self.t);
        let c2 = 1.0 - B2.powi(self.t);
        for (((p, &g), m), v) in params
            .zip(grad)
            .zip(self.m.iter_mut())
            .zip(self.v.iter_mut())
        {
            *m = B1 * *m + (1.0 - B1) * g;
            *v = B2 * *v + (1.0 - B2) * g * g;
            *p -= self.lr * (*m / c1) / ((*v / c2).sqrt() + 1e-8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classifier::check_gradient_fn;

    fn data(n: usize, d: usize) -> Array2<f64> {
        Array2::from_shape_fn((n, d), |(i, j)| ((i * 7 + j * 3) % 11) as f64 / 10.0)
    }

    #[test]
    fn gradients_match_finite_differences() {
        let ae = SparseAutoencoder::random(6, 4, 3).unwrap();
        let x = data(5, 6);
        let loss = SparseLoss {
            rho: 0.1,
            beta: 3.0,
            weight_decay: 1e-2,
        };
        let (_, g) = ae.loss_gradients(x.view(), &loss).unwrap();
        let p0 = ae.parameters();
        let mut probe = ae.clone();
        let rep = check_gradient_fn(
            |p| {
                probe.set_parameters(p).unwrap();
                probe.loss(x.view(), &loss).unwrap()
            },
            p0.view(),
            g.to_flat().view(),
            1e-6,
        )
        .unwrap();
        assert!(rep.max_rel_error < 1e-6, "{rep:?}");
    }

    #[test]
    fn sparsity_term_alone_is_zero_at_target() {
        // With zero weights and biases chosen so that every code unit outputs ρ, the KL term
        // vanishes; the objective is then the reconstruction error alone.
        let mut ae = SparseAutoencoder::random(3, 2, 0).unwrap();
        let rho: f64 = 0.2;
        let mut p = Array1::zeros(ae.parameters().len());
        // Encoder biases: logit(ρ).
        p[6] = (rho / (1.0 - rho)).ln();
        p[7] = (rho / (1.0 - rho)).ln();
        ae.set_parameters(p.view()).unwrap();
        let x = Array2::from_elem((4, 3), 0.5);
        let loss = SparseLoss {
            rho,
            beta: 10.0,
            weight_decay: 0.0,
        };
        // Decoder output σ(0) = 0.5 = x: zero reconstruction error.
        assert!(ae.loss(x.view(), &loss).unwrap().abs() < 1e-12);
    }

    #[test]
    fn rejects_bad_input() {
        let ae = SparseAutoencoder::random(3, 2, 0).unwrap();
        let loss = SparseAeConfig::default().loss();
        assert!(ae.loss(Array2::zeros((2, 4)).view(), &loss).is_err());
        let mut x = Array2::zeros((2, 3));
        x[[1, 1]] = f64::NAN;
        assert!(matches!(
            ae.loss(x.view(), &loss),
            Err(Error::NonFinite { .. })
        ));
        assert!(SparseAeConfig::default().with_rho(1.5).is_err());
        assert!(
            ae.stack(
                Dense::new(
                    Array2::zeros((2, 3)),
                    Array1::zeros(2),
                    Activation::Identity
                )
                .unwrap()
            )
            .is_err()
        );
    }

    #[test]
    fn softmax_layer_learns_a_separable_problem() {
        let x = data(40, 5);
        let y: Vec<usize> = x
            .rows()
            .into_iter()
            .map(|r| usize::from(r[0] > 0.45))
            .collect();
        let layer = train_softmax_layer(
            x.view(),
            &y,
            2,
            &SoftmaxConfig::default()
                .with_epochs(300)
                .unwrap()
                .with_batch_size(10)
                .unwrap(),
        )
        .unwrap();
        let mlp = Mlp::new(vec![layer]).unwrap();
        use crate::ClassifierExt;
        assert_eq!(mlp.error_rate(x.view(), &y).unwrap(), 0.0);
    }
}
