//! The paper's fully connected MNIST models with measured training recipes.

use super::{Activation, Mlp, Optimizer, TrainConfig};
use crate::error::{Error, Result};
use crate::validate;
use std::fmt;
use std::str::FromStr;

/// The fully connected MNIST models of Szegedy et al. (2014), Tables 1–3.
///
/// Every model maps 784 pixels to 10 logits; hidden layers are sigmoid. The weight decay
/// follows the paper (convention in [`TrainConfig`]); the optimizer settings are ours, chosen
/// by measurement (see `docs/models.md`).
///
/// | preset | layers | weight decay λ per layer |
/// |---|---|---|
/// | `Fc10(λ)` | 784→10 (softmax regression) | λ |
/// | `Fc100_100_10` | 784→100→100→10 | 1e-5, 1e-5, 1e-6 |
/// | `Fc200_200_10` | 784→200→200→10 | 1e-5, 1e-5, 1e-6 |
/// | `Fc500_150_10` | 784→500→150→10 | 1e-5, 1e-5, 1e-6 |
/// | `Fc123_456_10` | 784→123→456→10 | 1e-5, 1e-5, 1e-6 |
///
/// # Examples
///
/// ```
/// use intriguing::models::Preset;
/// let (mlp, cfg) = Preset::Fc100_100_10.build(42)?;
/// assert_eq!(mlp.sizes(), vec![784, 100, 100, 10]);
/// assert_eq!(Preset::Fc10(1e-4).to_string(), "FC10(0.0001)");
/// assert_eq!(Preset::Fc10(1e-4).paper_name(), "FC10(1e-4)");
/// assert_eq!(Preset::Fc10(1.0).paper_name(), "FC10(1)");
/// assert_eq!(Preset::Fc100_100_10.quick_train_config(0)?.epochs(), Preset::QUICK_EPOCHS);
/// assert_eq!("FC200-200-10".parse::<Preset>()?, Preset::Fc200_200_10);
/// assert_eq!("fc10(1e-2)".parse::<Preset>()?, Preset::Fc10(1e-2));
/// # let _ = cfg;
/// # Ok::<(), intriguing::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Preset {
    /// Softmax regression 784→10 with weight decay `λ` (the paper uses 1e-4, 1e-2 and 1).
    Fc10(f64),
    /// Two sigmoid hidden layers of 100 units.
    Fc100_100_10,
    /// Two sigmoid hidden layers of 200 units.
    Fc200_200_10,
    /// Sigmoid hidden layers of 500 and 150 units.
    Fc500_150_10,
    /// Sigmoid hidden layers of 123 and 456 units (the paper's cross-model experiment).
    Fc123_456_10,
}

impl Preset {
    /// Every preset, with the paper's three FC10 decays.
    pub const ALL: [Preset; 7] = [
        Preset::Fc10(1e-4),
        Preset::Fc10(1e-2),
        Preset::Fc10(1.0),
        Preset::Fc100_100_10,
        Preset::Fc200_200_10,
        Preset::Fc500_150_10,
        Preset::Fc123_456_10,
    ];

    /// Layer sizes `[784, ..., 10]`.
    pub fn sizes(&self) -> Vec<usize> {
        match self {
            Preset::Fc10(_) => vec![784, 10],
            Preset::Fc100_100_10 => vec![784, 100, 100, 10],
            Preset::Fc200_200_10 => vec![784, 200, 200, 10],
            Preset::Fc500_150_10 => vec![784, 500, 150, 10],
            Preset::Fc123_456_10 => vec![784, 123, 456, 10],
        }
    }

    /// The per-layer weight decay.
    pub fn weight_decay(&self) -> Vec<f64> {
        match self {
            Preset::Fc10(l) => vec![*l],
            _ => vec![1e-5, 1e-5, 1e-6],
        }
    }

    /// A freshly initialised model (Glorot uniform, seeded).
    pub fn model(&self, seed: u64) -> Result<Mlp> {
        Mlp::random(&self.sizes(), Activation::Sigmoid, seed)
    }

    /// The training recipe, found by measurement (`docs/models.md`): batches of 100 and a
    /// learning rate multiplied by a constant factor after every epoch; for the hidden-layer
    /// models SGD with momentum 0.9 from η = 1 (×0.8 per epoch, 15 epochs, the first epoch
    /// a linear warm-up), for FC10 Adam
    /// from η = 2e-3 (×0.7 per epoch, 5 epochs); the paper's weight decay; shuffling seeded
    /// by `seed`.
    pub fn train_config(&self, seed: u64) -> Result<TrainConfig> {
        if let Preset::Fc10(l) = self {
            validate::non_negative("FC10 weight decay", *l)?;
        }
        let base = TrainConfig::new().with_batch_size(100)?;
        let cfg = match self {
            Preset::Fc10(_) => base
                .with_epochs(5)?
                .with_optimizer(Optimizer::ADAM)?
                .with_learning_rate(2e-3)?
                .with_lr_decay(0.7)?,
            _ => base
                .with_epochs(15)?
                .with_optimizer(Optimizer::Sgd { momentum: 0.9 })?
                .with_learning_rate(1.0)?
                .with_lr_decay(0.8)?
                .with_warmup_epochs(1.0)?,
        };
        Ok(cfg.with_weight_decay(self.weight_decay())?.with_seed(seed))
    }

    /// Epochs of [`quick_train_config`](Self::quick_train_config).
    pub const QUICK_EPOCHS: usize = 5;

    /// The short recipe of the paper reproduction's quick mode (small subsets, minutes): FC10
    /// as [`train_config`](Self::train_config) (already 5 epochs); the hidden-layer models
    /// 5 epochs of Adam from η = 2e-3 (×0.8 per epoch), the paper's weight decay. Quick runs
    /// have few minibatch steps: large-step SGD can leave the wider sigmoid nets on their
    /// initial plateau (with an earlier recipe, SGD η = 0.5, FC200-200-10 stayed at chance
    /// level after 5 epochs of 10 000 images); Adam gets them off it within the first epoch.
    pub fn quick_train_config(&self, seed: u64) -> Result<TrainConfig> {
        let cfg = self.train_config(seed)?;
        match self {
            Preset::Fc10(_) => Ok(cfg),
            _ => cfg
                .with_epochs(Self::QUICK_EPOCHS)?
                .with_optimizer(Optimizer::ADAM)?
                .with_learning_rate(2e-3)?
                .with_lr_decay(0.8),
        }
    }

    /// The name in the paper's tables: `FC10(1e-4)`, `FC10(1e-2)`, `FC10(1)` (the decay as
    /// the paper writes it), `FC100-100-10`, ... ([`Display`](fmt::Display) prints the decay
    /// as a plain number, `FC10(0.0001)`, which [`FromStr`] reads back).
    pub fn paper_name(&self) -> String {
        match self {
            Preset::Fc10(l) if *l == 1.0 => "FC10(1)".into(),
            Preset::Fc10(l) => format!("FC10({l:e})"),
            other => other.to_string(),
        }
    }

    /// [`model`](Self::model) and [`train_config`](Self::train_config) from one seed.
    pub fn build(&self, seed: u64) -> Result<(Mlp, TrainConfig)> {
        let cfg = self.train_config(seed)?;
        Ok((self.model(seed)?, cfg))
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Preset::Fc10(l) => write!(f, "FC10({l})"),
            Preset::Fc100_100_10 => f.write_str("FC100-100-10"),
            Preset::Fc200_200_10 => f.write_str("FC200-200-10"),
            Preset::Fc500_150_10 => f.write_str("FC500-150-10"),
            Preset::Fc123_456_10 => f.write_str("FC123-456-10"),
        }
    }
}

impl FromStr for Preset {
    type Err = Error;

    /// Parses the paper's names, case-insensitively: `FC10(1e-4)`, `FC100-100-10`, ...
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_uppercase();
        let p = match t.as_str() {
            "FC100-100-10" => Preset::Fc100_100_10,
            "FC200-200-10" => Preset::Fc200_200_10,
            "FC500-150-10" => Preset::Fc500_150_10,
            "FC123-456-10" => Preset::Fc123_456_10,
            _ => {
                let lam = t
                    .strip_prefix("FC10(")
                    .and_then(|r| r.strip_suffix(')'))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|l| l.is_finite() && *l >= 0.0)
                    .ok_or_else(|| {
                        Error::InvalidConfig(format!(
                            "unknown preset {s:?} (expected FC10(λ), FC100-100-10, \
                             FC200-200-10, FC500-150-10 or FC123-456-10)"
                        ))
                    })?;
                Preset::Fc10(lam)
            }
        };
        Ok(p)
    }
}
