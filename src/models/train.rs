//! Minibatch training: SGD with momentum or Adam, per-layer L2 weight decay, seeded shuffling.

use super::Mlp;
use super::mlp::{Gradients, weighted_sq_norm};
use crate::classifier::ClassifierExt;
use crate::classifier::{Classifier, softmax_cross_entropy};
use crate::error::{Error, Result};
use crate::validate;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Zip};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

/// The update rule.
#[derive(Clone, Copy, Debug, PartialEq)]
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
pub struct TrainConfig {
    epochs: usize,
    batch_size: usize,
    learning_rate: f64,
    lr_decay: f64,
    warmup_epochs: f64,
    optimizer: Optimizer,
    weight_decay: WeightDecay,
    seed: u64,
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

    /// Per-layer weight decay `λ_l >= 0` (one value per layer, checked against the model when
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
}

fn check_decay(lambdas: &[f64]) -> Result<()> {
    for &l in lambdas {
        validate::non_negative("weight decay", l)?;
    }
    Ok(())
}

/// What the epoch callback sees after each epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochInfo {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Total number of epochs.
    pub epochs: usize,
    /// Mean data loss over the epoch's minibatches (each measured before its update),
    /// weighted by batch size.
    pub loss: f64,
    /// `loss` plus the weight-decay penalty `Σ_l (λ_l/2)‖W_l‖²` at the end of the epoch.
    pub objective: f64,
    /// Learning rate of this epoch (during a warm-up, the first batches use a fraction of it).
    pub learning_rate: f64,
    /// Wall-clock time of this epoch.
    pub elapsed: Duration,
}

/// The history of a training run.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    /// One entry per completed epoch.
    pub epochs: Vec<EpochInfo>,
    /// Total wall-clock time.
    pub elapsed: Duration,
}

/// Trains `mlp` to minimise the mean softmax cross-entropy of `inputs` (`[n, input_dim]`)
/// against `labels` plus the weight-decay penalty (see [`TrainConfig`]), by minibatch
/// gradient descent with a fresh seeded shuffle every epoch. `callback` runs after every
/// epoch with that epoch's statistics and the current model (e.g. to print test error).
///
/// Deterministic for a fixed model, data and config. The forward and backward passes are
/// batched matrix products.
///
/// Errors before touching the model on bad inputs (shape, non-finite values, labels out of
/// range, per-layer decay of the wrong length). If the loss or a parameter becomes
/// non-finite during an epoch, the model is restored to the state at the end of the last
/// completed epoch and [`Error::ModelNonFinite`] is returned.
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
pub fn train(
    mlp: &mut Mlp,
    inputs: ArrayView2<'_, f64>,
    labels: &[usize],
    config: &TrainConfig,
    callback: impl FnMut(&EpochInfo, &Mlp),
) -> Result<TrainReport> {
    mlp.check_labels(inputs.nrows(), labels)?;
    let mut loss = |rows: &[usize], z: ArrayView2<'_, f64>, mut dz: ArrayViewMut2<'_, f64>| {
        let n = rows.len() as f64;
        let mut total = 0.0;
        for ((zr, mut gr), &i) in z.rows().into_iter().zip(dz.rows_mut()).zip(rows) {
            total += softmax_cross_entropy(zr, labels[i], gr.view_mut());
            gr.mapv_inplace(|v| v / n);
        }
        total / n
    };
    train_with_loss(mlp, inputs, config, &mut loss, callback)
}

/// A custom minibatch loss for [`train_with_loss`]: receives the indices (rows of `inputs`) of
/// the batch, the model's outputs on those rows (`[batch, outputs]`, in the same order), writes
/// `dloss/doutputs` into the third argument (overwrite every entry) and returns the loss
/// (normally a mean over the batch).
pub type BatchLoss<'a> =
    &'a mut dyn FnMut(&[usize], ArrayView2<'_, f64>, ArrayViewMut2<'_, f64>) -> f64;

/// The trainer behind [`train`], for any differentiable loss of the outputs — e.g. the squared
/// reconstruction error of an autoencoder (`outputs` vs `inputs[rows]`). Same shuffling,
/// updates, weight decay, callbacks and error handling as [`train`].
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
pub fn train_with_loss(
    mlp: &mut Mlp,
    inputs: ArrayView2<'_, f64>,
    config: &TrainConfig,
    loss: BatchLoss<'_>,
    mut callback: impl FnMut(&EpochInfo, &Mlp),
) -> Result<TrainReport> {
    mlp.check_inputs(inputs)?;
    let n = inputs.nrows();
    if n == 0 {
        return Err(Error::InvalidConfig("training on an empty data set".into()));
    }
    let lambdas = config.weight_decay.per_layer(mlp.layers().len())?;
    let bs = config.batch_size.min(n);
    let d = mlp.input_dim();
    let start = Instant::now();

    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..n).collect();
    let mut batch = Array2::<f64>::zeros((bs, d));
    let mut buf = vec![0.0; mlp.scratch_len(bs)];
    let mut grads = Gradients::zeros_like(mlp);
    let mut state = OptState::new(mlp, config.optimizer);
    let mut lr = config.learning_rate;
    let mut step = 0usize;
    let warmup = (config.warmup_epochs * n.div_ceil(bs) as f64).ceil() as usize;
    let mut history = Vec::with_capacity(config.epochs);

    for epoch in 1..=config.epochs {
        let t0 = Instant::now();
        let snapshot = mlp.clone();
        order.shuffle(&mut rng);
        let mut total = 0.0;
        for (b, rows) in order.chunks(bs).enumerate() {
            let m = rows.len();
            let mut xb = batch.slice_mut(ndarray::s![..m, ..]);
            for (mut dst, &i) in xb.rows_mut().into_iter().zip(rows) {
                dst.assign(&inputs.row(i));
            }
            let mut seed = |z: ArrayView2<'_, f64>, dz: ArrayViewMut2<'_, f64>| loss(rows, z, dz);
            let l = mlp.forward_backward(
                xb.view(),
                &mut buf[..mlp.scratch_len(m)],
                &mut seed,
                Some(&mut grads),
                None,
            );
            if !l.is_finite() {
                *mlp = snapshot;
                return Err(diverged(epoch, b, "loss"));
            }
            total += l * m as f64;
            let step_lr = if step < warmup {
                lr * (step + 1) as f64 / warmup as f64
            } else {
                lr
            };
            step += 1;
            state.step(mlp, &mut grads, &lambdas, step_lr);
        }
        let finite = mlp.layers().iter().all(|l| {
            l.weight.iter().all(|v| v.is_finite()) && l.bias.iter().all(|v| v.is_finite())
        });
        if !finite {
            *mlp = snapshot;
            return Err(diverged(epoch, order.len().div_ceil(bs) - 1, "parameters"));
        }
        let mean = total / n as f64;
        let info = EpochInfo {
            epoch,
            epochs: config.epochs,
            loss: mean,
            objective: mean + 0.5 * weighted_sq_norm(mlp, &lambdas),
            learning_rate: lr,
            elapsed: t0.elapsed(),
        };
        callback(&info, mlp);
        history.push(info);
        lr *= config.lr_decay;
    }
    Ok(TrainReport {
        epochs: history,
        elapsed: start.elapsed(),
    })
}

fn diverged(epoch: usize, batch: usize, what: &str) -> Error {
    Error::ModelNonFinite {
        what: format!(
            "training {what} at epoch {epoch}, batch {batch} (the model was restored to the end of epoch {})",
            epoch - 1
        ),
    }
}

/// Optimizer state: one buffer pair per parameter tensor.
struct OptState {
    kind: Optimizer,
    /// Momentum / first moment.
    m: Gradients,
    /// Second moment (Adam only).
    v: Gradients,
    t: i32,
}

impl OptState {
    fn new(mlp: &Mlp, kind: Optimizer) -> Self {
        OptState {
            kind,
            m: Gradients::zeros_like(mlp),
            v: Gradients::zeros_like(mlp),
            t: 0,
        }
    }

    fn step(&mut self, mlp: &mut Mlp, g: &mut Gradients, lambdas: &[f64], lr: f64) {
        self.t = self.t.saturating_add(1);
        let layers = mlp.layers_mut();
        for (l, layer) in layers.iter_mut().enumerate() {
            if lambdas[l] != 0.0 {
                g.weights[l].scaled_add(lambdas[l], &layer.weight);
            }
            match self.kind {
                Optimizer::Sgd { momentum } => {
                    sgd(
                        &mut layer.weight,
                        &mut self.m.weights[l],
                        &g.weights[l],
                        momentum,
                        lr,
                    );
                    sgd(
                        &mut layer.bias,
                        &mut self.m.biases[l],
                        &g.biases[l],
                        momentum,
                        lr,
                    );
                }
                Optimizer::Adam {
                    beta1,
                    beta2,
                    epsilon,
                } => {
                    let c1 = 1.0 - beta1.powi(self.t);
                    let c2 = 1.0 - beta2.powi(self.t);
                    let h = AdamStep {
                        beta1,
                        beta2,
                        epsilon,
                        step: lr / c1,
                        c2_sqrt: c2.sqrt(),
                    };
                    h.apply(
                        &mut layer.weight,
                        &mut self.m.weights[l],
                        &mut self.v.weights[l],
                        &g.weights[l],
                    );
                    h.apply(
                        &mut layer.bias,
                        &mut self.m.biases[l],
                        &mut self.v.biases[l],
                        &g.biases[l],
                    );
                }
            }
        }
    }
}

fn sgd<D: ndarray::Dimension>(
    p: &mut ndarray::Array<f64, D>,
    v: &mut ndarray::Array<f64, D>,
    g: &ndarray::Array<f64, D>,
    momentum: f64,
    lr: f64,
) {
    Zip::from(p).and(v).and(g).for_each(|p, v, &g| {
        *v = momentum * *v - lr * g;
        *p += *v;
    });
}

struct AdamStep {
    beta1: f64,
    beta2: f64,
    epsilon: f64,
    /// `η / (1 − β₁ᵗ)`.
    step: f64,
    /// `√(1 − β₂ᵗ)`.
    c2_sqrt: f64,
}

impl AdamStep {
    fn apply<D: ndarray::Dimension>(
        &self,
        p: &mut ndarray::Array<f64, D>,
        m: &mut ndarray::Array<f64, D>,
        v: &mut ndarray::Array<f64, D>,
        g: &ndarray::Array<f64, D>,
    ) {
        let (b1, b2) = (self.beta1, self.beta2);
        Zip::from(p).and(m).and(v).and(g).for_each(|p, m, v, &g| {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            // m̂ / (√v̂ + ε) with m̂ = m / c1, √v̂ = √v / √c2.
            *p -= self.step * *m / (v.sqrt() / self.c2_sqrt + self.epsilon);
        });
    }
}
