//! The one trainer: minibatches, SGD with momentum or Adam, per-layer L2 weight decay,
//! learning-rate schedules, seeded shuffling — for every [`Sequential`] model and any loss
//! ([`TrainLoss`]).

use super::Sequential;
use super::layer::Module;
use super::sequential::mean_cross_entropy;
use crate::classifier::{Classifier, ClassifierExt};
use crate::error::{Error, Result};
use crate::validate;
use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut2, s};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

/// The update rule.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Optimizer {
    /// Heavy-ball SGD: `v ← μ v − η g`, `θ ← θ + v`.
    Sgd {
        /// `μ` in `[0, 1)`; 0 is plain SGD.
        momentum: f64,
    },
    /// Adam (Kingma & Ba 2015) with bias correction: `m ← β₁m + (1−β₁)g`,
    /// `v ← β₂v + (1−β₂)g²`, `θ ← θ − η m̂ / (√v̂ + ε)`.
    Adam {
        /// `β₁` in `[0, 1)`.
        beta1: f64,
        /// `β₂` in `[0, 1)`.
        beta2: f64,
        /// `ε > 0`.
        epsilon: f64,
    },
}

impl Optimizer {
    /// Adam with the usual `β₁ = 0.9`, `β₂ = 0.999`, `ε = 1e-8`.
    pub const ADAM: Optimizer = Optimizer::Adam {
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-8,
    };

    fn validate(&self) -> Result<()> {
        match *self {
            Optimizer::Sgd { momentum } => {
                validate::in_unit_interval_open_right("SGD momentum", momentum)?;
            }
            Optimizer::Adam {
                beta1,
                beta2,
                epsilon,
            } => {
                validate::in_unit_interval_open_right("Adam beta1", beta1)?;
                validate::in_unit_interval_open_right("Adam beta2", beta2)?;
                validate::positive("Adam epsilon", epsilon)?;
            }
        }
        Ok(())
    }
}

/// Per-layer L2 weight decay.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum WeightDecay {
    /// The same `λ` for every layer.
    Uniform(f64),
    /// `λ_l` for layer `l`; the length must equal the number of layers.
    PerLayer(Vec<f64>),
}

impl WeightDecay {
    /// The `λ_l` of each of `n_layers` layers.
    pub fn per_layer(&self, n_layers: usize) -> Result<Vec<f64>> {
        match self {
            WeightDecay::Uniform(l) => Ok(vec![*l; n_layers]),
            WeightDecay::PerLayer(v) if v.len() == n_layers => Ok(v.clone()),
            WeightDecay::PerLayer(v) => Err(Error::shape(
                "per-layer weight decay",
                format!("{n_layers} values (one per layer)"),
                v.len(),
            )),
        }
    }
}

/// Training hyper-parameters. Build with [`TrainConfig::new`] (or a preset) and the validating
/// `with_*` setters.
///
/// **Weight decay convention.** Training minimises
/// `mean_i CE(x_i, y_i) + Σ_l (λ_l / 2) ‖W_l‖²_F`: the gradient of the penalty is `λ_l W_l`,
/// as with PyTorch's `weight_decay=λ` (coupled L2, also under Adam). Biases are not decayed.
///
/// # Examples
///
/// ```
/// use intriguing::models::{Optimizer, TrainConfig};
/// let cfg = TrainConfig::new()
///     .with_epochs(5)?
///     .with_batch_size(100)?
///     .with_learning_rate(0.1)?
///     .with_optimizer(Optimizer::Sgd { momentum: 0.9 })?
///     .with_weight_decay(vec![1e-5, 1e-5, 1e-6])?
///     .with_seed(7);
/// assert_eq!(cfg.epochs(), 5);
/// assert!(TrainConfig::new().with_learning_rate(-1.0).is_err());
/// # Ok::<(), intriguing::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "TrainConfigRepr")
)]
pub struct TrainConfig {
    epochs: usize,
    batch_size: usize,
    learning_rate: f64,
    lr_decay: f64,
    warmup_epochs: f64,
    optimizer: Optimizer,
    weight_decay: WeightDecay,
    seed: u64,
    drop_last: bool,
}

/// The fields of a serialised [`TrainConfig`], checked by its setters on the way in.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainConfigRepr {
    epochs: usize,
    batch_size: usize,
    learning_rate: f64,
    lr_decay: f64,
    warmup_epochs: f64,
    optimizer: Optimizer,
    weight_decay: WeightDecay,
    seed: u64,
    drop_last: bool,
}

#[cfg(feature = "serde")]
impl TryFrom<TrainConfigRepr> for TrainConfig {
    type Error = Error;
    fn try_from(r: TrainConfigRepr) -> Result<Self> {
        let cfg = TrainConfig::new()
            .with_epochs(r.epochs)?
            .with_batch_size(r.batch_size)?
            .with_learning_rate(r.learning_rate)?
            .with_lr_decay(r.lr_decay)?
            .with_warmup_epochs(r.warmup_epochs)?
            .with_optimizer(r.optimizer)?
            .with_seed(r.seed)
            .with_drop_last(r.drop_last);
        match r.weight_decay {
            WeightDecay::Uniform(l) => cfg.with_uniform_weight_decay(l),
            WeightDecay::PerLayer(v) => cfg.with_weight_decay(v),
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl TrainConfig {
    /// Defaults: 10 epochs, batches of 100, Adam with learning rate 1e-3, no learning-rate
    /// decay, no weight decay, seed 0.
    pub fn new() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 100,
            learning_rate: 1e-3,
            lr_decay: 1.0,
            warmup_epochs: 0.0,
            optimizer: Optimizer::ADAM,
            weight_decay: WeightDecay::Uniform(0.0),
            seed: 0,
            drop_last: false,
        }
    }

    /// Number of passes over the training set (`>= 1`).
    pub fn with_epochs(mut self, epochs: usize) -> Result<Self> {
        self.epochs = validate::at_least_one("epochs", epochs)?;
        Ok(self)
    }

    /// Examples per minibatch (`>= 1`; the last batch of an epoch may be smaller).
    pub fn with_batch_size(mut self, batch_size: usize) -> Result<Self> {
        self.batch_size = validate::at_least_one("batch size", batch_size)?;
        Ok(self)
    }

    /// Step size `η > 0` of the first epoch.
    pub fn with_learning_rate(mut self, learning_rate: f64) -> Result<Self> {
        self.learning_rate = validate::positive("learning rate", learning_rate)?;
        Ok(self)
    }

    /// Multiplies the learning rate by `factor` in `(0, 1]` after every epoch (1 = constant).
    pub fn with_lr_decay(mut self, factor: f64) -> Result<Self> {
        if !(factor > 0.0 && factor <= 1.0) {
            return Err(Error::InvalidConfig(format!(
                "learning-rate decay factor must lie in (0, 1], got {factor}"
            )));
        }
        self.lr_decay = factor;
        Ok(self)
    }

    /// Linear learning-rate warm-up over the first `epochs` epochs (fractions allowed): with
    /// `W = ⌈epochs · batches per epoch⌉`, batch `t` (0-based, counted from the start of
    /// training) uses `η · min(1, (t + 1) / W)`. 0 (the default) disables it. A warm-up keeps
    /// large steps from saturating sigmoid units while the loss surface is still steep (see
    /// `docs/models.md`).
    pub fn with_warmup_epochs(mut self, epochs: f64) -> Result<Self> {
        self.warmup_epochs = validate::non_negative("warm-up epochs", epochs)?;
        Ok(self)
    }

    /// The update rule.
    pub fn with_optimizer(mut self, optimizer: Optimizer) -> Result<Self> {
        optimizer.validate()?;
        self.optimizer = optimizer;
        Ok(self)
    }

    /// SGD with momentum `μ` in `[0, 1)`.
    pub fn with_momentum(self, momentum: f64) -> Result<Self> {
        self.with_optimizer(Optimizer::Sgd { momentum })
    }

    /// Per-layer weight decay `λ_l >= 0` (one value per layer *with parameters* — every layer
    /// of an MLP; the convolutions and dense layers of a CNN — checked against the model when
    /// training starts). See the type's documentation for the convention.
    pub fn with_weight_decay(mut self, lambdas: Vec<f64>) -> Result<Self> {
        check_decay(&lambdas)?;
        self.weight_decay = WeightDecay::PerLayer(lambdas);
        Ok(self)
    }

    /// The same weight decay `λ >= 0` for every layer.
    pub fn with_uniform_weight_decay(mut self, lambda: f64) -> Result<Self> {
        check_decay(&[lambda])?;
        self.weight_decay = WeightDecay::Uniform(lambda);
        Ok(self)
    }

    /// Skip the last minibatch of an epoch when it is smaller than the batch size (PyTorch's
    /// `DataLoader(drop_last=True)`; for losses such as a sparsity penalty whose batch
    /// statistics get noisy on a ragged batch). Off by default.
    pub fn with_drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Seed of the per-epoch shuffling (`ChaCha8Rng`).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Number of epochs.
    pub fn epochs(&self) -> usize {
        self.epochs
    }
    /// Minibatch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }
    /// Initial learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.learning_rate
    }
    /// Per-epoch learning-rate factor.
    pub fn lr_decay(&self) -> f64 {
        self.lr_decay
    }
    /// Warm-up length in epochs.
    pub fn warmup_epochs(&self) -> f64 {
        self.warmup_epochs
    }
    /// The update rule.
    pub fn optimizer(&self) -> Optimizer {
        self.optimizer
    }
    /// The weight decay.
    pub fn weight_decay(&self) -> &WeightDecay {
        &self.weight_decay
    }
    /// The shuffling seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Whether a ragged last minibatch is skipped.
    pub fn drop_last(&self) -> bool {
        self.drop_last
    }
}

fn check_decay(lambdas: &[f64]) -> Result<()> {
    for &l in lambdas {
        validate::non_negative("weight decay", l)?;
    }
    Ok(())
}

/// What the epoch callback sees after each epoch.
///
/// With the `serde` feature it serialises (to save a training log); it does not deserialise,
/// because the metric names are `&'static str` chosen by the loss.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct EpochInfo {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Total number of epochs.
    pub epochs: usize,
    /// Mean data loss over the epoch's minibatches (each measured before its update),
    /// weighted by the rows each batch's loss stands for (its training rows, plus any rows a
    /// [`TrainLoss`] appended or reported through [`ExtraTerm::rows`]).
    pub loss: f64,
    /// `loss` plus the weight-decay penalty `Σ_l (λ_l/2)‖W_l‖²` at the end of the epoch.
    pub objective: f64,
    /// Learning rate of this epoch (during a warm-up, the first batches use a fraction of it).
    pub learning_rate: f64,
    /// Wall-clock time of this epoch.
    pub elapsed: Duration,
    /// Named figures of the epoch reported by the loss ([`TrainLoss::epoch_metrics`]), e.g.
    /// the sparse autoencoder's reconstruction term and mean code activation. Empty for
    /// cross-entropy.
    pub metrics: Vec<(&'static str, f64)>,
}

impl EpochInfo {
    /// The value of the metric `name` ([`metrics`](Self::metrics)), if the loss reported it.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.iter().find(|(n, _)| *n == name).map(|m| m.1)
    }
}

/// The history of a training run.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TrainReport {
    /// One entry per completed epoch.
    pub epochs: Vec<EpochInfo>,
    /// Total wall-clock time.
    pub elapsed: Duration,
}

/// Where [`fit`] is when it calls [`TrainLoss::begin_batch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchInfo<'a> {
    /// The batch's training rows (indices into the inputs), as [`TrainLoss::loss`] gets them.
    pub rows: &'a [usize],
    /// 1-based epoch number.
    pub epoch: usize,
    /// 0-based minibatch index within the epoch (skipped ragged batches keep their index).
    pub batch: usize,
    /// 0-based optimizer step since the start of training (the number of updates so far).
    pub step: usize,
}

/// The rows a [`TrainLoss`] may append to a minibatch in [`TrainLoss::begin_batch`]: room for
/// [`TrainLoss::max_extra_rows`] rows of the model's input width, filled in order.
pub struct ExtraRows<'a> {
    rows: ArrayViewMut2<'a, f64>,
    len: usize,
}

impl ExtraRows<'_> {
    /// Appends one input row after the batch's training rows (and the rows pushed before).
    /// Errors when the row's width is not the model's input width or when
    /// [`TrainLoss::max_extra_rows`] rows were already pushed.
    pub fn push(&mut self, row: ArrayView1<'_, f64>) -> Result<()> {
        if row.len() != self.rows.ncols() {
            return Err(Error::shape(
                "extra batch row",
                self.rows.ncols(),
                row.len(),
            ));
        }
        if self.len == self.rows.nrows() {
            return Err(Error::InvalidConfig(format!(
                "more extra batch rows than the loss's max_extra_rows ({})",
                self.rows.nrows()
            )));
        }
        self.rows.row_mut(self.len).assign(&row);
        self.len += 1;
        Ok(())
    }

    /// Rows pushed so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A term a [`TrainLoss`] computes on its own after the model's backward pass
/// ([`TrainLoss::extra_term`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ExtraTerm {
    /// Its value, added to the batch's loss.
    pub value: f64,
    /// How many rows it stands for in the epoch's weighted mean loss ([`EpochInfo::loss`]).
    pub rows: usize,
}

/// A training loss for [`fit`]: a loss of the model's outputs on a minibatch, and optionally
/// penalties on the outputs of hidden layers (e.g. a sparsity penalty on an autoencoder's
/// code). Weight decay is not part of it: the trainer adds it ([`TrainConfig`]).
///
/// The per-batch hooks let a loss change the batch itself (all default to nothing): before
/// each minibatch [`begin_batch`](Self::begin_batch) sees the model as it is and may update
/// the loss's own state from it (e.g. regenerate a pool of adversarial examples) and append
/// rows to the batch; after the backward pass [`extra_term`](Self::extra_term) may add a term
/// computed elsewhere (e.g. rows fed through the tail of a split model) to the parameter
/// gradient; after each epoch [`epoch_metrics`](Self::epoch_metrics) reports named figures.
/// Adversarial training (`experiments::adversarial_train`, feature `paper`) is such a loss.
pub trait TrainLoss<L: Module> {
    /// The loss of the model's `outputs` on the rows `rows` of the training inputs (same
    /// order), followed by the rows appended by [`begin_batch`](Self::begin_batch) (so
    /// `outputs` has `rows.len() + appended` rows): writes `dloss/doutputs` into `d_outputs`
    /// (every entry) and returns the loss (normally a mean over the batch).
    fn loss(
        &mut self,
        rows: &[usize],
        outputs: ArrayView2<'_, f64>,
        d_outputs: ArrayViewMut2<'_, f64>,
    ) -> f64;

    /// A penalty on the output `h` of layer `layer` (called for every layer, last to first,
    /// during the backward pass): adds its gradient into `d_h` (which already holds the
    /// gradient of everything after the layer) and returns its value. The default is none.
    fn activity(
        &mut self,
        _layer: usize,
        _rows: &[usize],
        _h: ArrayView2<'_, f64>,
        _d_h: ArrayViewMut2<'_, f64>,
    ) -> f64 {
        0.0
    }

    /// The most rows [`begin_batch`](Self::begin_batch) appends to one batch (asked once,
    /// when training starts). The default is 0.
    fn max_extra_rows(&self) -> usize {
        0
    }

    /// Called before each minibatch with the model as it is before the batch's update; may
    /// append input rows to the batch through `extra`. An error stops training (the model is
    /// restored to the end of the last completed epoch). The default does nothing.
    fn begin_batch(
        &mut self,
        _batch: &BatchInfo<'_>,
        _model: &Sequential<L>,
        _extra: &mut ExtraRows<'_>,
    ) -> Result<()> {
        Ok(())
    }

    /// Called after the batch's backward pass (`grads` holds the parameter gradient of
    /// [`loss`](Self::loss) and [`activity`](Self::activity), flat layout of
    /// [`Sequential::parameters`]): may add the gradient of a further term into `grads` and
    /// returns it. The default is none.
    fn extra_term(&mut self, _model: &Sequential<L>, _grads: &mut [f64]) -> Result<ExtraTerm> {
        Ok(ExtraTerm::default())
    }

    /// Called at the end of each epoch: appends the epoch's named figures to `metrics`
    /// (reported in [`EpochInfo::metrics`]). The default reports none.
    fn epoch_metrics(&mut self, _metrics: &mut Vec<(&'static str, f64)>) {}
}

/// The mean softmax cross-entropy against `labels` (indexed by training row).
struct CrossEntropy<'a>(&'a [usize]);

impl<L: Module> TrainLoss<L> for CrossEntropy<'_> {
    fn loss(&mut self, rows: &[usize], z: ArrayView2<'_, f64>, dz: ArrayViewMut2<'_, f64>) -> f64 {
        mean_cross_entropy(z, dz, |k| self.0[rows[k]])
    }
}

/// A custom minibatch loss for [`train_with_loss`]: receives the indices (rows of `inputs`) of
/// the batch, the model's outputs on those rows (`[batch, outputs]`, in the same order), writes
/// `dloss/doutputs` into the third argument (overwrite every entry) and returns the loss
/// (normally a mean over the batch).
pub type BatchLoss<'a> =
    &'a mut dyn FnMut(&[usize], ArrayView2<'_, f64>, ArrayViewMut2<'_, f64>) -> f64;

struct OutputLoss<'a>(BatchLoss<'a>);

impl<L: Module> TrainLoss<L> for OutputLoss<'_> {
    fn loss(&mut self, rows: &[usize], z: ArrayView2<'_, f64>, dz: ArrayViewMut2<'_, f64>) -> f64 {
        (self.0)(rows, z, dz)
    }
}

/// Trains `model` to minimise the mean softmax cross-entropy of `inputs` (`[n, input_dim]`)
/// against `labels` plus the weight-decay penalty (see [`TrainConfig`]): [`fit`] with the
/// cross-entropy loss. `callback` runs after every epoch with that epoch's statistics and the
/// current model (e.g. to print test error).
///
/// # Examples
///
/// ```
/// use intriguing::{Classifier, ClassifierExt};
/// use intriguing::models::{train, Activation, Mlp, TrainConfig};
/// use ndarray::array;
///
/// // XOR with one tanh hidden layer.
/// let x = array![[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
/// let y = [0, 1, 1, 0];
/// let mut mlp = Mlp::random(&[2, 8, 2], Activation::Tanh, 1)?;
/// let cfg = TrainConfig::new().with_epochs(500)?.with_batch_size(4)?.with_learning_rate(0.05)?;
/// let report = train(&mut mlp, x.view(), &y, &cfg, |_, _| {})?;
/// assert_eq!(report.epochs.len(), 500);
/// assert_eq!(mlp.error_rate(x.view(), &y)?, 0.0);
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn train<L: Module>(
    model: &mut Sequential<L>,
    inputs: ArrayView2<'_, f64>,
    labels: &[usize],
    config: &TrainConfig,
    callback: impl FnMut(&EpochInfo, &Sequential<L>),
) -> Result<TrainReport> {
    model.check_labels(inputs.nrows(), labels)?;
    fit(model, inputs, config, &mut CrossEntropy(labels), callback)
}

/// [`fit`] with a loss of the outputs only, given as a closure — e.g. the squared
/// reconstruction error of an autoencoder (`outputs` vs `inputs[rows]`).
///
/// # Examples
///
/// ```
/// use intriguing::models::{train_with_loss, Activation, Mlp, TrainConfig};
/// use ndarray::{array, ArrayView2, ArrayViewMut2};
///
/// // A 2-1-2 linear autoencoder of points on a line learns to reconstruct them.
/// let x = array![[1.0, 2.0], [-1.0, -2.0], [0.5, 1.0], [2.0, 4.0]];
/// let mut ae = Mlp::random_with(&[2, 1, 2], |_| Activation::Identity, 3)?;
/// let mut mse = |rows: &[usize], out: ArrayView2<'_, f64>, mut d: ArrayViewMut2<'_, f64>| {
///     let mut total = 0.0;
///     for (k, &i) in rows.iter().enumerate() {
///         for j in 0..2 {
///             let r = out[[k, j]] - x[[i, j]];
///             total += r * r / rows.len() as f64;
///             d[[k, j]] = 2.0 * r / rows.len() as f64;
///         }
///     }
///     total
/// };
/// let cfg = TrainConfig::new().with_epochs(300)?.with_batch_size(4)?.with_learning_rate(0.02)?;
/// let report = train_with_loss(&mut ae, x.view(), &cfg, &mut mse, |_, _| {})?;
/// assert!(report.epochs.last().unwrap().loss < 1e-3);
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn train_with_loss<L: Module>(
    model: &mut Sequential<L>,
    inputs: ArrayView2<'_, f64>,
    config: &TrainConfig,
    loss: BatchLoss<'_>,
    callback: impl FnMut(&EpochInfo, &Sequential<L>),
) -> Result<TrainReport> {
    fit(model, inputs, config, &mut OutputLoss(loss), callback)
}

/// The training loop behind [`train`], [`train_with_loss`], the CNN's and the sparse
/// autoencoder's training: for each epoch a fresh shuffle from
/// `ChaCha8Rng::seed_from_u64(config.seed())`, then for each minibatch
/// [`TrainLoss::begin_batch`] (which may append rows to the batch), one batched forward and
/// backward pass of `loss`, [`TrainLoss::extra_term`], the weight-decay gradient `λ_l W_l`
/// added to every weight (not the biases), and one optimizer step at the scheduled learning
/// rate; after each epoch [`TrainLoss::epoch_metrics`] and `callback`.
///
/// Deterministic for a fixed model, data and config, whatever the number of threads (nothing
/// runs in parallel). Errors before touching the model on bad inputs (shape, non-finite
/// values, per-layer decay of the wrong length, an empty set). If the loss or a parameter
/// becomes non-finite during an epoch, the model is restored to the state at the end of the
/// last completed epoch and [`Error::ModelNonFinite`] is returned; an error of a
/// [`TrainLoss`] hook also restores that state and is returned as it is.
///
/// # Examples
///
/// Least squares `y = 2x − 1` with one linear unit, as a [`TrainLoss`] that also reports its
/// epoch's mean squared error through [`TrainLoss::epoch_metrics`]:
///
/// ```
/// use intriguing::models::{fit, Activation, Dense, Mlp, TrainConfig, TrainLoss};
/// use ndarray::{array, Array2, ArrayView2, ArrayViewMut2};
///
/// struct Mse { y: Vec<f64>, sum: f64, rows: usize }
/// impl TrainLoss<Dense> for Mse {
///     fn loss(&mut self, rows: &[usize], out: ArrayView2<'_, f64>, mut d: ArrayViewMut2<'_, f64>) -> f64 {
///         let n = rows.len() as f64;
///         let mut total = 0.0;
///         for (k, &i) in rows.iter().enumerate() {
///             let r = out[[k, 0]] - self.y[i];
///             total += r * r / n;
///             d[[k, 0]] = 2.0 * r / n;
///         }
///         self.sum += total * n;
///         self.rows += rows.len();
///         total
///     }
///     fn epoch_metrics(&mut self, metrics: &mut Vec<(&'static str, f64)>) {
///         metrics.push(("mse", self.sum / self.rows as f64));
///         (self.sum, self.rows) = (0.0, 0);
///     }
/// }
///
/// let x = Array2::from_shape_fn((8, 1), |(i, _)| i as f64 / 8.0);
/// let mut loss = Mse { y: x.iter().map(|v| 2.0 * v - 1.0).collect(), sum: 0.0, rows: 0 };
/// let mut model = Mlp::new(vec![Dense::new(array![[0.0]], array![0.0], Activation::Identity)?])?;
/// let cfg = TrainConfig::new().with_epochs(200)?.with_batch_size(4)?.with_learning_rate(0.1)?;
/// let report = fit(&mut model, x.view(), &cfg, &mut loss, |_, _| {})?;
/// let last = report.epochs.last().unwrap();
/// assert!(last.metric("mse").unwrap() < 1e-6);
/// let w = &model.layers()[0];
/// assert!((w.weight[[0, 0]] - 2.0).abs() < 1e-2 && (w.bias[0] + 1.0).abs() < 1e-2);
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn fit<L: Module>(
    model: &mut Sequential<L>,
    inputs: ArrayView2<'_, f64>,
    config: &TrainConfig,
    loss: &mut dyn TrainLoss<L>,
    mut callback: impl FnMut(&EpochInfo, &Sequential<L>),
) -> Result<TrainReport> {
    model.check_inputs(inputs)?;
    let n = inputs.nrows();
    if n == 0 {
        return Err(Error::InvalidConfig("training on an empty data set".into()));
    }
    let decayed: Vec<usize> = model.parameterised_layers().collect();
    let per_layer = config.weight_decay.per_layer(decayed.len())?;
    let mut lambdas = vec![0.0; model.layers().len()];
    for (&l, &lam) in decayed.iter().zip(&per_layer) {
        lambdas[l] = lam;
    }
    let bs = config.batch_size.min(n);
    let d = model.input_dim();
    let start = Instant::now();

    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..n).collect();
    let extra_cap = loss.max_extra_rows();
    let mut batch = Array2::<f64>::zeros((bs + extra_cap, d));
    let mut buf = vec![0.0; model.scratch_len(bs + extra_cap)];
    let mut grads = vec![0.0; model.num_parameters()];
    let mut state = OptState::new(model.num_parameters(), config.optimizer);
    let mut lr = config.learning_rate;
    let mut step = 0usize;
    let batches_per_epoch = if config.drop_last {
        n / bs
    } else {
        n.div_ceil(bs)
    };
    let warmup = (config.warmup_epochs * batches_per_epoch as f64).ceil() as usize;
    let mut history = Vec::with_capacity(config.epochs);

    for epoch in 1..=config.epochs {
        let t0 = Instant::now();
        let snapshot = model.clone();
        order.shuffle(&mut rng);
        let (mut total, mut seen) = (0.0, 0usize);
        for (b, rows) in order.chunks(bs).enumerate() {
            let m = rows.len();
            if config.drop_last && m < bs {
                continue;
            }
            let info = BatchInfo {
                rows,
                epoch,
                batch: b,
                step,
            };
            let mut extra = ExtraRows {
                rows: batch.slice_mut(s![m..m + extra_cap, ..]),
                len: 0,
            };
            if let Err(e) = loss.begin_batch(&info, model, &mut extra) {
                *model = snapshot;
                return Err(e);
            }
            let rows_in = m + extra.len;
            let mut xb = batch.slice_mut(s![..m, ..]);
            for (mut dst, &i) in xb.rows_mut().into_iter().zip(rows) {
                dst.assign(&inputs.row(i));
            }
            let l = {
                // The backward pass asks the output loss first, then each layer's activity
                // penalty: one `&mut` at a time.
                let cell = std::cell::RefCell::new(&mut *loss);
                let mut out = |z: ArrayView2<'_, f64>, dz: ArrayViewMut2<'_, f64>| {
                    cell.borrow_mut().loss(rows, z, dz)
                };
                let mut act = |l: usize, h: ArrayView2<'_, f64>, dh: ArrayViewMut2<'_, f64>| {
                    cell.borrow_mut().activity(l, rows, h, dh)
                };
                model.forward_backward(
                    batch.slice(s![..rows_in, ..]),
                    &mut buf[..model.scratch_len(rows_in)],
                    &mut out,
                    Some(grads.as_mut_slice()),
                    None,
                    Some(&mut act),
                )
            };
            let term = match loss.extra_term(model, &mut grads) {
                Ok(t) => t,
                Err(e) => {
                    *model = snapshot;
                    return Err(e);
                }
            };
            let l = l + term.value;
            if !l.is_finite() {
                *model = snapshot;
                return Err(diverged(epoch, b, "loss"));
            }
            let weight = rows_in + term.rows;
            total += l * weight as f64;
            seen += weight;
            let step_lr = if step < warmup {
                lr * (step + 1) as f64 / warmup as f64
            } else {
                lr
            };
            step += 1;
            state.step(model, &mut grads, &lambdas, step_lr);
        }
        if !model.parameters_finite() {
            *model = snapshot;
            return Err(diverged(
                epoch,
                batches_per_epoch.saturating_sub(1),
                "parameters",
            ));
        }
        let mean = total / seen.max(1) as f64;
        let mut metrics = Vec::new();
        loss.epoch_metrics(&mut metrics);
        let info = EpochInfo {
            epoch,
            epochs: config.epochs,
            loss: mean,
            objective: mean + 0.5 * weighted_sq_norm(model, &lambdas),
            learning_rate: lr,
            elapsed: t0.elapsed(),
            metrics,
        };
        callback(&info, model);
        history.push(info);
        lr *= config.lr_decay;
    }
    Ok(TrainReport {
        epochs: history,
        elapsed: start.elapsed(),
    })
}

/// `Σ_l λ_l ‖W_l‖²_F` over the weights (not the biases).
fn weighted_sq_norm<L: Module>(model: &Sequential<L>, lambdas: &[f64]) -> f64 {
    model
        .layers()
        .iter()
        .zip(lambdas)
        .filter(|(_, lam)| **lam != 0.0)
        .map(|(l, &lam)| lam * l.params().0.iter().map(|w| w * w).sum::<f64>())
        .sum()
}

fn diverged(epoch: usize, batch: usize, what: &str) -> Error {
    Error::ModelNonFinite {
        what: format!(
            "training {what} at epoch {epoch}, batch {batch} (the model was restored to the end of epoch {})",
            epoch - 1
        ),
    }
}

/// Optimizer state over the flat parameter layout.
struct OptState {
    kind: Optimizer,
    /// Momentum / first moment.
    m: Vec<f64>,
    /// Second moment (Adam only).
    v: Vec<f64>,
    t: i32,
}

impl OptState {
    fn new(n: usize, kind: Optimizer) -> Self {
        let v = match kind {
            Optimizer::Adam { .. } => vec![0.0; n],
            Optimizer::Sgd { .. } => Vec::new(),
        };
        OptState {
            kind,
            m: vec![0.0; n],
            v,
            t: 0,
        }
    }

    /// Adds the weight decay to `g` and updates every parameter of `model`.
    fn step<L: Module>(
        &mut self,
        model: &mut Sequential<L>,
        g: &mut [f64],
        lambdas: &[f64],
        lr: f64,
    ) {
        self.t = self.t.saturating_add(1);
        let t = self.t;
        let kind = self.kind;
        let (m, v) = (&mut self.m, &mut self.v);
        model.for_each_param_mut(|l, start, w, b| {
            let (gw, rest) = g[start..].split_at_mut(w.len());
            let gb = &mut rest[..b.len()];
            if lambdas[l] != 0.0 {
                gw.iter_mut()
                    .zip(w.iter())
                    .for_each(|(g, &w)| *g += lambdas[l] * w);
            }
            let bstart = start + w.len();
            for (p, g, s) in [(w, &*gw, start), (b, &*gb, bstart)] {
                let range = s..s + p.len();
                match kind {
                    Optimizer::Sgd { momentum } => sgd(p, &mut m[range], g, momentum, lr),
                    Optimizer::Adam {
                        beta1,
                        beta2,
                        epsilon,
                    } => adam(
                        p,
                        &mut m[range.clone()],
                        &mut v[range],
                        g,
                        [beta1, beta2, epsilon],
                        lr,
                        t,
                    ),
                }
            }
        });
    }
}

/// Heavy-ball SGD: `v ← μ v − η g`, `θ ← θ + v`.
fn sgd(p: &mut [f64], v: &mut [f64], g: &[f64], momentum: f64, lr: f64) {
    for ((p, v), &g) in p.iter_mut().zip(v).zip(g) {
        *v = momentum * *v - lr * g;
        *p += *v;
    }
}

/// Adam (Kingma & Ba 2015) step `t` (1-based) with bias correction:
/// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `θ ← θ − η m̂ / (√v̂ + ε)` with
/// `m̂ = m / (1 − β₁ᵗ)`, `√v̂ = √v / √(1 − β₂ᵗ)`.
fn adam(
    p: &mut [f64],
    m: &mut [f64],
    v: &mut [f64],
    g: &[f64],
    [b1, b2, eps]: [f64; 3],
    lr: f64,
    t: i32,
) {
    let step = lr / (1.0 - b1.powi(t));
    let c2_sqrt = (1.0 - b2.powi(t)).sqrt();
    for (((p, m), v), &g) in p.iter_mut().zip(m).zip(v).zip(g) {
        *m = b1 * *m + (1.0 - b1) * g;
        *v = b2 * *v + (1.0 - b2) * g * g;
        *p -= step * *m / (v.sqrt() / c2_sqrt + eps);
    }
}
