//! The paper's MNIST experiments as reusable, seeded pieces: the model registry with a cache
//! of trained weights, Table 1 (errors and minimum distortion), the transfer tables (Table 2
//! cross-model, Tables 3–4 cross-training-set with magnified examples), adversarial training,
//! Markdown writers and Figure-5-style PNG grids.
//!
//! Behind the non-default `paper` feature: a crate depending on `intriguing` for the attack does
//! not compile or see the reproduction. The repository's `reproduce` example drives these
//! pieces (`cargo run --release --features paper --example reproduce -- all --quick`) and
//! copies the tables into the repository's docs; that part lives in the example.
//!
//! Nothing here prints: long-running functions take a [`Progress`] callback that receives
//! [`Event`]s (epoch lines, attack progress with an ETA, cache hits).
//!
//! # Examples
//!
//! Gaussian-noise rows and the transfer table on a toy model (no training, no attack):
//!
//! ```
//! use intriguing::experiments::{gaussian_noise_set, transfer_table, NamedModel};
//! use intriguing::models::{Activation, Mlp};
//! use ndarray::Array2;
//!
//! let model = Mlp::random(&[4, 3], Activation::Identity, 0)?;
//! let x = Array2::from_elem((5, 4), 0.5);
//! let labels = vec![0; 5];
//! let noise = gaussian_noise_set(x.view(), &labels, 0.1, 7)?;
//! assert!((noise.mean_rms() - 0.1).abs() < 0.05);
//! let models = [NamedModel { name: "toy", model: &model }];
//! let table = transfer_table(&[noise], &models)?;
//! assert_eq!(table.rates.len(), 1);
//! # Ok::<(), intriguing::Error>(())
//! ```

mod advtrain;
mod figures;
mod paper;
mod recipes;
mod report;
mod sample;
mod scale;
mod table1;
mod transfer;

pub use advtrain::{
    ADV_HEADLINE, ADV_STUDY, AdvEval, AdvStudyRow, AdvTrainConfig, AdvTrainStats, PoolSpec,
    PoolTarget, adversarial_train, advstudy_markdown, advtrain_eval, advtrain_markdown,
    advtrain_row, parse_recipe,
};
pub use figures::write_figure_png;
pub use paper::{
    PAPER_TABLE4_NOISE_RANGE, PAPER_TRANSFER, PaperValue, paper_cell, paper_value,
    transfer_markdown_with_paper,
};
pub use recipes::{
    ModelKind, ModelSpec, TrainedModel, TrainingSet, cross_training_models, table1_models,
    train_or_load,
};
pub use report::{table1_markdown, transfer_markdown};
pub use sample::{
    AdversarialSet, ExperimentData, gaussian_noise_set, magnify, magnify_set, paper_split,
    seeded_sample,
};
pub use scale::{
    AffineInput, InputConvention, ScaleCase, ScaleRow, scale_cases, scale_markdown, scale_study,
};
pub use table1::{
    Table1Row, attack_set, linear_min_perturbation, linear_min_rms, table1, table1_sample, table3,
};
pub use transfer::{TransferTable, transfer_table, transfer_table_on_correct};

use crate::Classifier;
use crate::attack::AttackConfig;
use crate::error::Result;
use crate::validate;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Size of a run: `Quick` trains on small subsets for few epochs and attacks few examples
/// (minutes); `Full` follows the documented recipes on the whole data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scale {
    /// Small subsets, few epochs, few attacked examples.
    Quick,
    /// The full recipes.
    Full,
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scale::Quick => "quick",
            Scale::Full => "full",
        })
    }
}

/// A progress report from a long-running experiment function.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A stage begins (free text).
    Stage(String),
    /// A training epoch of `model` finished.
    Epoch {
        /// The model being trained.
        model: String,
        /// 1-based epoch.
        epoch: usize,
        /// Number of epochs.
        epochs: usize,
        /// Mean training loss of the epoch.
        loss: f64,
        /// Wall time of the epoch.
        elapsed: Duration,
    },
    /// Trained weights were read from the cache instead of training.
    CacheHit {
        /// The model.
        model: String,
        /// The cache file.
        path: PathBuf,
    },
    /// Attack progress on a batch.
    Attack {
        /// What is attacked (a model name).
        model: String,
        /// Examples done.
        done: usize,
        /// Examples in the batch.
        total: usize,
        /// Failures so far.
        failed: usize,
        /// Time since the batch started.
        elapsed: Duration,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Stage(s) => write!(f, "== {s}"),
            Event::Epoch {
                model,
                epoch,
                epochs,
                loss,
                elapsed,
            } => write!(
                f,
                "  [{model}] epoch {epoch}/{epochs}: loss {loss:.5} ({:.1} s)",
                elapsed.as_secs_f64()
            ),
            Event::CacheHit { model, path } => {
                write!(f, "  [{model}] loaded from cache {}", path.display())
            }
            Event::Attack {
                model,
                done,
                total,
                failed,
                elapsed,
            } => {
                let secs = elapsed.as_secs_f64();
                let eta = if *done > 0 {
                    secs / *done as f64 * (total - done) as f64
                } else {
                    f64::NAN
                };
                write!(
                    f,
                    "  [{model}] attacked {done}/{total} ({failed} failed), {secs:.0} s, ETA {eta:.0} s"
                )
            }
        }
    }
}

/// The progress callback taken by long-running functions (`&mut |_| {}` to ignore).
pub type Progress<'a> = &'a mut dyn FnMut(&Event);

/// A model with the name it has in the tables.
#[derive(Clone, Copy)]
pub struct NamedModel<'a> {
    /// Name in the tables (e.g. `"FC100-100-10"`).
    pub name: &'a str,
    /// The model.
    pub model: &'a dyn Classifier,
}

impl fmt::Debug for NamedModel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedModel")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Settings shared by the experiments.
#[derive(Clone, Debug)]
pub struct ExperimentConfig {
    /// Quick or full recipes.
    pub scale: Scale,
    /// Seed of everything random (splits, samples, initialisation, shuffling, noise).
    pub seed: u64,
    /// Examples attacked per model (Table 1) and per source model (Tables 3–4).
    pub samples: usize,
    /// Worker threads for the attacks (results do not depend on it).
    pub threads: usize,
    /// Where trained weights are cached (`None`: no cache).
    pub cache_dir: Option<PathBuf>,
    /// The attack settings.
    pub attack: AttackConfig,
}

impl ExperimentConfig {
    /// Quick mode: 20 examples per model, cache in [`default_cache_dir`], seed 0, two
    /// threads, and the default attack except that [`Target::Nearest`] searches **all**
    /// wrong labels (`with_nearest_candidates(usize::MAX)`; the attack's pruning of labels
    /// far behind after bracketing stays on), as the paper's "smallest over all wrong
    /// labels" asks.
    ///
    /// [`Target::Nearest`]: crate::attack::Target::Nearest
    pub fn quick() -> Self {
        ExperimentConfig {
            scale: Scale::Quick,
            seed: 0,
            samples: 20,
            threads: 2,
            cache_dir: Some(default_cache_dir()),
            attack: AttackConfig::default()
                .with_nearest_candidates(usize::MAX)
                .expect("usize::MAX candidates is valid"),
        }
    }

    /// Full mode: 1 000 examples per model, otherwise as [`quick`](Self::quick).
    pub fn full() -> Self {
        ExperimentConfig {
            scale: Scale::Full,
            samples: 1000,
            ..Self::quick()
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        validate::at_least_one("samples", self.samples)?;
        validate::at_least_one("threads", self.threads)?;
        Ok(())
    }
}

/// `intriguing-cache/` under `$CARGO_TARGET_DIR` when that environment variable is set, else
/// under `./target` relative to the current directory (the examples' rule for every output).
/// Set [`ExperimentConfig::cache_dir`] to put the cache anywhere else.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("intriguing-cache")
}
