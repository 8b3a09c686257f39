//! The paper's AE400-10: a single-layer sparse autoencoder with a softmax classifier on its
//! code, stacked into one [`Mlp`] so that the whole model is a
//! [`Classifier`] attacked end to end.
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
//! The autoencoder is the [`Mlp`] `[input → hidden sigmoid → input sigmoid]` and `J` is a
//! [`TrainLoss`] ([`SparseObjective`]: reconstruction on the outputs, the KL penalty on the
//! hidden layer's output) plugged into the crate's one trainer ([`fit`]) with
//! minibatch Adam and per-layer weight decay λ on both weights; unsupervised. A softmax layer
//! (weight decay λ = 1e-6 in the paper) is then trained on the codes `h` of the training set
//! by the same trainer ([`train`], Adam, mean cross-entropy + λ/2 ‖W‖²).
//! [`SparseAutoencoder::stack`] turns encoder + softmax into the [`Mlp`]
//! `[input → hidden sigmoid → classes identity]`.
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

use super::layer::Module;
use super::train::{TrainLoss, fit, train};
use super::{Activation, Dense, EpochInfo, Gradients, Mlp, Optimizer, TrainConfig, TrainReport};
use crate::classifier::{Classifier, ClassifierExt};
use crate::error::{Error, Result, check_finite};
use crate::validate::{at_least_one, in_open_unit_interval, non_negative};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2};

/// `with_epochs`, `with_batch_size`, `with_learning_rate`, `with_seed` of a config that holds
/// a `training: TrainConfig`: shorthands for the trainer's own setters.
macro_rules! training_shorthands {
    ($t:ty) => {
        impl $t {
            /// Shorthand for the trainer's [`TrainConfig::with_epochs`].
            pub fn with_epochs(mut self, n: usize) -> Result<Self> {
                self.training = self.training.with_epochs(n)?;
                Ok(self)
            }
            /// Shorthand for the trainer's [`TrainConfig::with_batch_size`].
            pub fn with_batch_size(mut self, n: usize) -> Result<Self> {
                self.training = self.training.with_batch_size(n)?;
                Ok(self)
            }
            /// Shorthand for the trainer's [`TrainConfig::with_learning_rate`].
            pub fn with_learning_rate(mut self, lr: f64) -> Result<Self> {
                self.training = self.training.with_learning_rate(lr)?;
                Ok(self)
            }
            /// Shorthand for the trainer's [`TrainConfig::with_seed`].
            pub fn with_seed(mut self, seed: u64) -> Self {
                self.training = self.training.with_seed(seed);
                self
            }
        }
    };
}

training_shorthands!(SparseAeConfig);
training_shorthands!(SoftmaxConfig);

/// Settings of [`SparseAutoencoder::train`]: the code width, the terms of `J`
/// ([`SparseLoss`]) and the trainer's settings ([`TrainConfig`]). Build with [`Default`] and
/// the validating `with_*` setters.
#[derive(Clone, Debug, PartialEq)]
pub struct SparseAeConfig {
    hidden: usize,
    loss: SparseLoss,
    training: TrainConfig,
}

impl Default for SparseAeConfig {
    /// 400 hidden units, ρ = 0.05, β = 3, λ = 3e-3 (UFLDL's MNIST values), 10 epochs of
    /// minibatches of 100 (a ragged last one skipped), Adam learning rate 3e-3, seed 0.
    fn default() -> Self {
        SparseAeConfig {
            hidden: 400,
            loss: SparseLoss {
                rho: 0.05,
                beta: 3.0,
                weight_decay: 3e-3,
            },
            training: adam_defaults(10, 100, 3e-3).with_drop_last(true),
        }
    }
}

impl SparseAeConfig {
    /// Number of code units (≥ 1).
    pub fn with_hidden(mut self, n: usize) -> Result<Self> {
        self.hidden = at_least_one("hidden units", n)?;
        Ok(self)
    }
    /// Target mean activation ρ in (0, 1).
    pub fn with_rho(mut self, rho: f64) -> Result<Self> {
        self.loss.rho = in_open_unit_interval("rho", rho)?;
        Ok(self)
    }
    /// Weight β ≥ 0 of the KL sparsity penalty.
    pub fn with_beta(mut self, beta: f64) -> Result<Self> {
        self.loss.beta = non_negative("beta", beta)?;
        Ok(self)
    }
    /// Weight decay λ ≥ 0 on both weight matrices (not on biases).
    pub fn with_weight_decay(mut self, lambda: f64) -> Result<Self> {
        self.loss.weight_decay = non_negative("weight decay", lambda)?;
        Ok(self)
    }
    /// The trainer's settings (epochs, batches, optimizer, learning rate, seed). Its weight
    /// decay is ignored: λ comes from [`with_weight_decay`](Self::with_weight_decay).
    pub fn with_training(mut self, training: TrainConfig) -> Self {
        self.training = training;
        self
    }
    /// Number of code units.
    pub fn hidden(&self) -> usize {
        self.hidden
    }
    /// Number of epochs.
    pub fn epochs(&self) -> usize {
        self.training.epochs()
    }
    /// The trainer's settings.
    pub fn training(&self) -> &TrainConfig {
        &self.training
    }
    /// The [`SparseLoss`] these settings define.
    pub fn loss(&self) -> SparseLoss {
        self.loss
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

/// Settings of [`SparseAutoencoder::train_softmax`]: the weight decay λ and the trainer's
/// settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SoftmaxConfig {
    weight_decay: f64,
    training: TrainConfig,
}

impl Default for SoftmaxConfig {
    /// The paper's λ = 1e-6, 30 epochs of minibatches of 100, Adam learning rate 1e-2, seed 0.
    fn default() -> Self {
        SoftmaxConfig {
            weight_decay: 1e-6,
            training: adam_defaults(30, 100, 1e-2),
        }
    }
}

impl SoftmaxConfig {
    /// Weight decay λ ≥ 0 (the loss is mean cross-entropy + λ/2 ‖W‖²).
    pub fn with_weight_decay(mut self, lambda: f64) -> Result<Self> {
        self.weight_decay = non_negative("weight decay", lambda)?;
        Ok(self)
    }
    /// The trainer's settings. Its weight decay is ignored: λ comes from
    /// [`with_weight_decay`](Self::with_weight_decay).
    pub fn with_training(mut self, training: TrainConfig) -> Self {
        self.training = training;
        self
    }
}

/// The sparse-autoencoder objective on the training rows `x` as a [`TrainLoss`]: the
/// reconstruction term `1/(2n) Σ ‖x̂ − x‖²` on the outputs and `β Σ_j KL(ρ ‖ ρ̂_j)` on the code
/// (layer 0). The weight decay is the trainer's.
///
/// Its epoch metrics ([`EpochInfo::metrics`]) are the epoch's means over its rows of the
/// reconstruction term (`"reconstruction"`), of the sparsity term `β Σ_j KL(ρ ‖ ρ̂_j)`
/// (`"sparsity"`) and of the mean code activation `mean_j ρ̂_j` (`"mean_activation"`, to
/// compare with ρ).
pub struct SparseObjective<'a> {
    x: ArrayView2<'a, f64>,
    loss: SparseLoss,
    rho_hat: Vec<f64>,
    /// Row-weighted sums over the epoch: reconstruction, sparsity, mean activation; rows.
    epoch_sums: [f64; 3],
    epoch_rows: usize,
}

impl<'a> SparseObjective<'a> {
    /// The objective for the training inputs `x` (the targets are the inputs).
    pub fn new(x: ArrayView2<'a, f64>, loss: SparseLoss) -> Self {
        SparseObjective {
            x,
            loss,
            rho_hat: Vec::new(),
            epoch_sums: [0.0; 3],
            epoch_rows: 0,
        }
    }
}

impl TrainLoss<Dense> for SparseObjective<'_> {
    fn loss(
        &mut self,
        rows: &[usize],
        out: ArrayView2<'_, f64>,
        mut d: ArrayViewMut2<'_, f64>,
    ) -> f64 {
        let n = rows.len() as f64;
        let mut rec = 0.0;
        for ((o, mut dr), &i) in out.rows().into_iter().zip(d.rows_mut()).zip(rows) {
            for ((&xh, dv), &xi) in o.iter().zip(dr.iter_mut()).zip(self.x.row(i)) {
                let e = xh - xi;
                rec += e * e;
                *dv = e / n;
            }
        }
        let rec = rec / (2.0 * n);
        self.epoch_sums[0] += rec * n;
        self.epoch_rows += rows.len();
        rec
    }

    fn activity(
        &mut self,
        layer: usize,
        rows: &[usize],
        h: ArrayView2<'_, f64>,
        mut dh: ArrayViewMut2<'_, f64>,
    ) -> f64 {
        if layer != 0 {
            return 0.0;
        }
        let n = rows.len() as f64;
        let (rho, beta) = (self.loss.rho, self.loss.beta);
        self.rho_hat.clear();
        self.rho_hat.resize(h.ncols(), 0.0);
        for row in h.rows() {
            self.rho_hat.iter_mut().zip(row).for_each(|(r, &v)| *r += v);
        }
        // Σ_ij h_ij / hidden = n · (the batch's mean activation): weighted by its rows.
        self.epoch_sums[2] += self.rho_hat.iter().sum::<f64>() / self.rho_hat.len().max(1) as f64;
        if beta == 0.0 {
            return 0.0;
        }
        let eps = 1e-12;
        let mut kl = 0.0;
        for r in &mut self.rho_hat {
            let rh = (*r / n).clamp(eps, 1.0 - eps);
            kl += rho * (rho / rh).ln() + (1.0 - rho) * ((1.0 - rho) / (1.0 - rh)).ln();
            // dJ/dh_ij = β (−ρ/ρ̂_j + (1 − ρ)/(1 − ρ̂_j)) / n, the same for every row.
            *r = beta * (-rho / rh + (1.0 - rho) / (1.0 - rh)) / n;
        }
        for mut row in dh.rows_mut() {
            row.iter_mut()
                .zip(&self.rho_hat)
                .for_each(|(d, &s)| *d += s);
        }
        self.epoch_sums[1] += beta * kl * n;
        beta * kl
    }

    fn epoch_metrics(&mut self, metrics: &mut Vec<(&'static str, f64)>) {
        let rows = self.epoch_rows.max(1) as f64;
        let [rec, sparsity, act] = self.epoch_sums;
        metrics.extend([
            ("reconstruction", rec / rows),
            ("sparsity", sparsity / rows),
            ("mean_activation", act / rows),
        ]);
        self.epoch_sums = [0.0; 3];
        self.epoch_rows = 0;
    }
}

/// A one-hidden-layer sparse autoencoder with sigmoid encoder and sigmoid decoder (untied
/// weights): the [`Mlp`] `[input → hidden → input]`. See the [module docs](self).
#[derive(Clone, Debug, PartialEq)]
pub struct SparseAutoencoder {
    net: Mlp,
}

impl SparseAutoencoder {
    /// An autoencoder `input → hidden → input` with Glorot-uniform weights and zero biases,
    /// drawn from `ChaCha8Rng::seed_from_u64(seed)` (encoder first).
    pub fn random(input: usize, hidden: usize, seed: u64) -> Result<Self> {
        Ok(SparseAutoencoder {
            net: Mlp::random_with(&[input, hidden, input], |_| Activation::Sigmoid, seed)?,
        })
    }

    /// An autoencoder from its two layers. Both must be sigmoid, the encoder `[hidden, input]`,
    /// the decoder `[input, hidden]`.
    pub fn new(encoder: Dense, decoder: Dense) -> Result<Self> {
        if encoder.activation != Activation::Sigmoid || decoder.activation != Activation::Sigmoid {
            return Err(Error::InvalidConfig(
                "both autoencoder layers must use the sigmoid activation".into(),
            ));
        }
        if decoder.out_dim() != encoder.in_dim() {
            return Err(Error::shape(
                "decoder weight",
                format!("[{}, {}]", encoder.in_dim(), encoder.out_dim()),
                format!("{:?}", decoder.weight.shape()),
            ));
        }
        Ok(SparseAutoencoder {
            net: Mlp::new(vec![encoder, decoder])?,
        })
    }

    /// The encoder layer (`[hidden, input]`, sigmoid).
    pub fn encoder(&self) -> &Dense {
        &self.net.layers()[0]
    }

    /// The decoder layer (`[input, hidden]`, sigmoid).
    pub fn decoder(&self) -> &Dense {
        &self.net.layers()[1]
    }

    /// The autoencoder as an [`Mlp`] (its outputs are the reconstructions).
    pub fn as_mlp(&self) -> &Mlp {
        &self.net
    }

    /// Input dimension.
    pub fn input_dim(&self) -> usize {
        self.net.input_dim()
    }

    /// Number of code units.
    pub fn hidden_dim(&self) -> usize {
        self.encoder().out_dim()
    }

    fn check(&self, x: ArrayView2<'_, f64>) -> Result<()> {
        self.net.check_inputs(x)?;
        if x.nrows() == 0 {
            return Err(Error::InvalidConfig("autoencoder on an empty batch".into()));
        }
        Ok(())
    }

    /// The codes `σ(x W₁ᵀ + b₁)` of a batch, `[n, hidden]`.
    pub fn encode(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        self.check(x)?;
        self.net.hidden_representation(x, 0)
    }

    /// The reconstructions `x̂` of a batch, `[n, input]`.
    pub fn reconstruct(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        self.check(x)?;
        self.net.logits(x)
    }

    /// All parameters as one vector: `W₁` (row-major), `b₁`, `W₂`, `b₂`.
    pub fn parameters(&self) -> Array1<f64> {
        self.net.parameters()
    }

    /// Sets all parameters from a vector laid out as [`SparseAutoencoder::parameters`]. Errors
    /// (model unchanged) on a wrong length or non-finite values.
    pub fn set_parameters(&mut self, flat: ArrayView1<'_, f64>) -> Result<()> {
        self.net.set_parameters(flat)
    }

    /// The objective `J` (weight decay included) on the batch `x` and its gradient with respect
    /// to every parameter (layout of [`parameters`](Self::parameters)).
    pub fn loss_gradients(
        &self,
        x: ArrayView2<'_, f64>,
        loss: &SparseLoss,
    ) -> Result<(f64, Gradients)> {
        self.check(x)?;
        let rows: Vec<usize> = (0..x.nrows()).collect();
        let mut obj = SparseObjective::new(x, *loss);
        let cell = std::cell::RefCell::new(&mut obj);
        let mut out = |z: ArrayView2<'_, f64>, dz: ArrayViewMut2<'_, f64>| {
            cell.borrow_mut().loss(&rows, z, dz)
        };
        let (mut j, g) = self
            .net
            .gradients_with_activity(x, &mut out, &mut |l, h, dh| {
                cell.borrow_mut().activity(l, &rows, h, dh)
            })?;
        let mut flat = g.to_flat();
        let lam = loss.weight_decay;
        for ((s, w, _), layer) in self.net.spans().into_iter().zip(self.net.layers()) {
            let ws = layer.params().0;
            j += 0.5 * lam * ws.iter().map(|v| v * v).sum::<f64>();
            flat.slice_mut(ndarray::s![s..s + w])
                .iter_mut()
                .zip(ws.iter())
                .for_each(|(g, &v)| *g += lam * v);
        }
        if !j.is_finite() {
            return Err(Error::ModelNonFinite {
                what: "autoencoder loss".into(),
            });
        }
        Ok((j, Gradients::from_flat(flat, self.net.spans())))
    }

    /// The objective `J` on the batch `x`.
    pub fn loss(&self, x: ArrayView2<'_, f64>, loss: &SparseLoss) -> Result<f64> {
        Ok(self.loss_gradients(x, loss)?.0)
    }

    /// Trains the autoencoder on the rows of `x` (unsupervised) with the crate's trainer
    /// ([`fit`]) on [`SparseObjective`], calling `on_epoch` after every epoch
    /// (1-based [`EpochInfo`]: `loss` is the mean of reconstruction + sparsity, `objective` adds
    /// the weight decay, and the metrics `"reconstruction"`, `"sparsity"` and
    /// `"mean_activation"` split it up; see [`SparseObjective`]). Errors if the number of code units of `cfg` differs from the
    /// model's, or on non-finite data or a diverging loss (the model is then restored to its
    /// last finite epoch).
    pub fn train(
        &mut self,
        x: ArrayView2<'_, f64>,
        cfg: &SparseAeConfig,
        mut on_epoch: impl FnMut(&EpochInfo),
    ) -> Result<TrainReport> {
        self.check(x)?;
        if cfg.hidden != self.hidden_dim() {
            return Err(Error::InvalidConfig(format!(
                "config has {} hidden units, the autoencoder {}",
                cfg.hidden,
                self.hidden_dim()
            )));
        }
        let lam = cfg.loss.weight_decay;
        let training = cfg.training.clone().with_uniform_weight_decay(lam)?;
        let mut obj = SparseObjective::new(x, cfg.loss);
        fit(&mut self.net, x, &training, &mut obj, |e, _| on_epoch(e))
    }

    /// Trains a softmax layer `[classes, hidden]` (identity activation: it outputs logits) on
    /// the codes of `x` (see [`train_softmax_layer`]).
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
        Mlp::new(vec![self.encoder().clone(), softmax])
    }
}

/// Trains a softmax-regression layer (zero initialisation) on fixed features with the crate's
/// trainer ([`train`]): mean cross-entropy + λ/2 ‖W‖² (the bias not decayed).
pub fn train_softmax_layer(
    features: ArrayView2<'_, f64>,
    labels: &[usize],
    classes: usize,
    cfg: &SoftmaxConfig,
) -> Result<Dense> {
    if features.nrows() == 0 || classes == 0 || features.ncols() == 0 {
        return Err(Error::InvalidConfig(
            "softmax training needs data and at least one class".into(),
        ));
    }
    check_finite(features.iter(), "softmax features")?;
    let d = features.ncols();
    super::init::checked_len("softmax weight", &[classes, d])?;
    let layer = Dense::new(
        Array2::zeros((classes, d)),
        Array1::zeros(classes),
        Activation::Identity,
    )?;
    let mut model = Mlp::new(vec![layer])?;
    let training = cfg
        .training
        .clone()
        .with_uniform_weight_decay(cfg.weight_decay)?;
    train(&mut model, features, labels, &training, |_, _| {})?;
    Ok(model.into_layers().pop().expect("one layer"))
}

/// The paper's Adam training settings (`epochs` of minibatches of `batch_size`, learning rate
/// `lr`): constants that the setters accept.
fn adam_defaults(epochs: usize, batch_size: usize, lr: f64) -> TrainConfig {
    TrainConfig::new()
        .with_epochs(epochs)
        .and_then(|c| c.with_batch_size(batch_size))
        .and_then(|c| c.with_learning_rate(lr))
        .and_then(|c| c.with_optimizer(Optimizer::ADAM))
        .expect("valid defaults")
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
            g.as_flat(),
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
        use crate::classifier::ClassifierExt;
        assert_eq!(mlp.error_rate(x.view(), &y).unwrap(), 0.0);
    }
}
