//! The paper's runs (which model on which training set, under which name in the tables), the
//! AE400-10 recipe, and the weights cache. The FC models' architectures, names and recipes —
//! full and quick — are [`Preset`]'s (`models/presets.rs`), the one place they are defined.

use super::sample::ExperimentData;
use super::{Event, ExperimentConfig, Progress, Scale};
use crate::ClassifierExt;
use crate::error::{Error, Result};
use crate::models::autoencoder::{SoftmaxConfig, SparseAeConfig, SparseAutoencoder};
use crate::models::{Mlp, Optimizer, Preset, TrainConfig, train};
use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

/// Which training images a model sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrainingSet {
    /// The whole training set (quick mode: a seeded subset of 10 000).
    Full,
    /// The first half of the paper's split (quick mode: 5 000 of it).
    P1,
    /// The second half (quick mode: 5 000 of it).
    P2,
}

impl fmt::Display for TrainingSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrainingSet::Full => "train",
            TrainingSet::P1 => "P1",
            TrainingSet::P2 => "P2",
        })
    }
}

/// The architecture and training recipe of a model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ModelKind {
    /// A fully connected model of the models module ([`Preset`]), trained by [`train`].
    /// Full mode: the preset's [`TrainConfig`] unchanged (architecture, sigmoid, the
    /// paper's weight decay; FC10: Adam, 5 epochs; hidden-layer models: SGD with momentum,
    /// 15 epochs). Quick mode: 5 epochs; hidden-layer models with Adam (η = 2e-3, ×0.8 per
    /// epoch).
    Preset(Preset),
    /// AE400-10: a sparse autoencoder (784 → 400 sigmoid) trained unsupervised, a softmax
    /// (λ = 1e-6) trained on its codes, stacked into one [`Mlp`] and fine-tuned end to end
    /// ([`ModelSpec::finetune_config`]). Full recipe: 10 AE epochs, 30 softmax epochs
    /// ([`SparseAeConfig::default`], [`SoftmaxConfig::default`]), 5 fine-tuning epochs;
    /// quick: 3, 20 and 1.
    Autoencoder,
}

/// A model of the paper: its name in the tables, architecture/recipe, and training set.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// Name in the tables, e.g. `"FC10(1e-4)"`, `"FC100-100-10'"`.
    pub name: String,
    /// Architecture and recipe.
    pub kind: ModelKind,
    /// Training images.
    pub training_set: TrainingSet,
}

impl ModelSpec {
    /// A preset trained on `set`, named as in the paper.
    pub fn preset(p: Preset, set: TrainingSet) -> Self {
        ModelSpec {
            name: p.paper_name(),
            kind: ModelKind::Preset(p),
            training_set: set,
        }
    }

    /// AE400-10 on the whole training set.
    pub fn autoencoder() -> Self {
        ModelSpec {
            name: "AE400-10".into(),
            kind: ModelKind::Autoencoder,
            training_set: TrainingSet::Full,
        }
    }

    /// The same spec under another name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The seed of this model's initialisation and shuffling: the run's seed mixed with the
    /// name (so that FC100-100-10 and FC100-100-10' differ in more than their data).
    pub fn model_seed(&self, seed: u64) -> u64 {
        // FNV-1a over the name, then mixed with the run seed.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    /// The [`TrainConfig`] of a preset model at `scale` (`None` for the autoencoder):
    /// [`Preset::train_config`] in full mode, [`Preset::quick_train_config`] in quick mode.
    pub fn train_config(&self, scale: Scale, seed: u64) -> Result<Option<TrainConfig>> {
        match self.kind {
            ModelKind::Preset(p) => {
                let s = self.model_seed(seed);
                Ok(Some(match scale {
                    Scale::Full => p.train_config(s)?,
                    Scale::Quick => p.quick_train_config(s)?,
                }))
            }
            ModelKind::Autoencoder => Ok(None),
        }
    }

    /// The autoencoder and softmax settings at `scale`.
    pub fn autoencoder_configs(
        &self,
        scale: Scale,
        seed: u64,
    ) -> Result<(SparseAeConfig, SoftmaxConfig)> {
        let s = self.model_seed(seed);
        let ae = SparseAeConfig::default().with_seed(s);
        let sm = SoftmaxConfig::default().with_seed(s);
        Ok(match scale {
            Scale::Full => (ae, sm),
            Scale::Quick => (ae.with_epochs(3)?, sm.with_epochs(20)?),
        })
    }

    /// A fingerprint of everything that determines the trained weights (recipe, scale,
    /// seed, training set); part of the cache file name.
    pub fn fingerprint(&self, scale: Scale, seed: u64) -> Result<String> {
        let mut recipe = match self.kind {
            ModelKind::Preset(_) => format!("{:?}", self.train_config(scale, seed)?),
            ModelKind::Autoencoder => format!("{:?}", self.autoencoder_configs(scale, seed)?),
        };
        if let Some(ft) = self.finetune_config(scale, seed)? {
            recipe.push_str(&format!("|finetune {ft:?}"));
        }
        Ok(self.hash_recipe(scale, seed, &recipe))
    }

    fn hash_recipe(&self, scale: Scale, seed: u64, recipe: &str) -> String {
        let text = format!(
            "v1|{}|{:?}|{}|{scale}|{seed}|{recipe}",
            self.name, self.kind, self.training_set
        );
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// The end-to-end fine-tuning of the AE400-10 stack after the softmax (`None` for other
    /// models): Adam η = 1e-3 ×0.7 per epoch, λ = 1e-6 on both layers, 5 epochs (quick: 1).
    pub fn finetune_config(&self, scale: Scale, seed: u64) -> Result<Option<TrainConfig>> {
        if self.kind != ModelKind::Autoencoder {
            return Ok(None);
        }
        let epochs = match scale {
            Scale::Full => 5,
            Scale::Quick => 1,
        };
        Ok(Some(
            TrainConfig::new()
                .with_epochs(epochs)?
                .with_batch_size(100)?
                .with_optimizer(Optimizer::ADAM)?
                .with_learning_rate(1e-3)?
                .with_lr_decay(0.7)?
                .with_weight_decay(vec![1e-6, 1e-6])?
                .with_seed(self.model_seed(seed) ^ 0xf1),
        ))
    }

    /// Cache file of the AE400-10 stack before fine-tuning (pre-trained autoencoder +
    /// softmax), so that a change of the fine-tuning recipe does not retrain the autoencoder.
    fn pretrain_cache_path(
        &self,
        dir: &std::path::Path,
        scale: Scale,
        seed: u64,
    ) -> Result<PathBuf> {
        let recipe = format!("{:?}", self.autoencoder_configs(scale, seed)?);
        Ok(dir.join(format!(
            "{}-{}-{scale}-seed{seed}-{}.safetensors",
            self.safe_name(),
            self.training_set,
            self.hash_recipe(scale, seed, &recipe)
        )))
    }

    fn safe_name(&self) -> String {
        self.name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    /// The cache file of this model under `dir`.
    pub fn cache_path(&self, dir: &std::path::Path, scale: Scale, seed: u64) -> Result<PathBuf> {
        Ok(dir.join(format!(
            "{}-{}-{scale}-seed{seed}-{}.safetensors",
            self.safe_name(),
            self.training_set,
            self.fingerprint(scale, seed)?
        )))
    }
}

/// The six models of Table 1: FC10(1e-4), FC10(1e-2), FC10(1), FC100-100-10, FC200-200-10,
/// AE400-10, all on the whole training set.
pub fn table1_models() -> Vec<ModelSpec> {
    vec![
        ModelSpec::preset(Preset::Fc10(1e-4), TrainingSet::Full),
        ModelSpec::preset(Preset::Fc10(1e-2), TrainingSet::Full),
        ModelSpec::preset(Preset::Fc10(1.0), TrainingSet::Full),
        ModelSpec::preset(Preset::Fc100_100_10, TrainingSet::Full),
        ModelSpec::preset(Preset::Fc200_200_10, TrainingSet::Full),
        ModelSpec::autoencoder(),
    ]
}

/// The three models of Tables 3–4: FC100-100-10 and FC123-456-10 on P1, FC100-100-10' on P2.
pub fn cross_training_models() -> Vec<ModelSpec> {
    vec![
        ModelSpec::preset(Preset::Fc100_100_10, TrainingSet::P1),
        ModelSpec::preset(Preset::Fc123_456_10, TrainingSet::P1),
        ModelSpec::preset(Preset::Fc100_100_10, TrainingSet::P2).named("FC100-100-10'"),
    ]
}

/// A trained model with its errors.
#[derive(Clone, Debug)]
pub struct TrainedModel {
    /// What it is.
    pub spec: ModelSpec,
    /// The weights.
    pub model: Mlp,
    /// Error on its own training set.
    pub train_error: f64,
    /// Error on the 10 000 test images.
    pub test_error: f64,
    /// True when the weights came from the cache.
    pub from_cache: bool,
    /// Training time in seconds (0 when cached).
    pub train_seconds: f64,
}

/// Trains the model of `spec` on its training set at the run's scale and seed — or loads it
/// from `cfg.cache_dir` when a file with the same [fingerprint](ModelSpec::fingerprint)
/// exists — and measures its training and test error. Newly trained weights are written to
/// the cache (a failed write is not an error: the model is returned anyway).
pub fn train_or_load(
    spec: &ModelSpec,
    data: &ExperimentData,
    cfg: &ExperimentConfig,
    progress: Progress<'_>,
) -> Result<TrainedModel> {
    if data.scale != cfg.scale || data.seed != cfg.seed {
        return Err(Error::InvalidConfig(
            "ExperimentData was built for another scale or seed than the config".into(),
        ));
    }
    let (x, y) = data.training_set(spec.training_set)?;
    let cache = match &cfg.cache_dir {
        Some(dir) => Some(spec.cache_path(dir, cfg.scale, cfg.seed)?),
        None => None,
    };
    let mut from_cache = false;
    let mut model = None;
    if let Some(path) = &cache
        && path.exists()
        && let Ok(m) = Mlp::load_safetensors(path)
    {
        progress(&Event::CacheHit {
            model: spec.name.clone(),
            path: path.clone(),
        });
        from_cache = true;
        model = Some(m);
    }
    let start = Instant::now();
    let model = match model {
        Some(m) => m,
        None => {
            progress(&Event::Stage(format!(
                "training {} on {} ({} images, {} mode)",
                spec.name,
                spec.training_set,
                y.len(),
                cfg.scale
            )));
            let m = train_fresh(spec, x.view(), &y, cfg, progress)?;
            if let Some(path) = &cache {
                if let Some(dir) = path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let _ = m.save_safetensors(path);
            }
            m
        }
    };
    let train_seconds = if from_cache {
        0.0
    } else {
        start.elapsed().as_secs_f64()
    };
    let train_error = model.error_rate(x.view(), &y)?;
    let test_error = model.error_rate(data.mnist.test_images.view(), &data.mnist.test_labels)?;
    Ok(TrainedModel {
        spec: spec.clone(),
        model,
        train_error,
        test_error,
        from_cache,
        train_seconds,
    })
}

fn train_fresh(
    spec: &ModelSpec,
    x: ndarray::ArrayView2<'_, f64>,
    y: &[usize],
    cfg: &ExperimentConfig,
    progress: Progress<'_>,
) -> Result<Mlp> {
    let seed = spec.model_seed(cfg.seed);
    match spec.kind {
        ModelKind::Preset(p) => {
            let mut mlp = p.model(seed)?;
            let tc = spec
                .train_config(cfg.scale, cfg.seed)?
                .expect("presets have a train config");
            train(&mut mlp, x, y, &tc, |e, _| {
                progress(&Event::Epoch {
                    model: spec.name.clone(),
                    epoch: e.epoch,
                    epochs: e.epochs,
                    loss: e.loss,
                    elapsed: e.elapsed,
                })
            })?;
            Ok(mlp)
        }
        ModelKind::Autoencoder => {
            let pre_path = match &cfg.cache_dir {
                Some(dir) => Some(spec.pretrain_cache_path(dir, cfg.scale, cfg.seed)?),
                None => None,
            };
            let cached = pre_path
                .as_ref()
                .filter(|p| p.exists())
                .and_then(|p| Mlp::load_safetensors(p).ok());
            let mut stack = match cached {
                Some(m) => {
                    progress(&Event::CacheHit {
                        model: format!("{} (pre-trained)", spec.name),
                        path: pre_path.clone().expect("cached implies a path"),
                    });
                    m
                }
                None => {
                    let m = pretrain_autoencoder(spec, x, y, cfg, seed, progress)?;
                    if let Some(p) = &pre_path {
                        if let Some(dir) = p.parent() {
                            let _ = std::fs::create_dir_all(dir);
                        }
                        let _ = m.save_safetensors(p);
                    }
                    m
                }
            };
            if let Some(ft) = spec.finetune_config(cfg.scale, cfg.seed)? {
                progress(&Event::Stage(format!(
                    "fine-tuning {} end to end ({} epochs)",
                    spec.name,
                    ft.epochs()
                )));
                train(&mut stack, x, y, &ft, |e, _| {
                    progress(&Event::Epoch {
                        model: format!("{} fine-tuning", spec.name),
                        epoch: e.epoch,
                        epochs: e.epochs,
                        loss: e.loss,
                        elapsed: e.elapsed,
                    })
                })?;
            }
            Ok(stack)
        }
    }
}

/// Sparse autoencoder (unsupervised), then the softmax on its codes, stacked.
fn pretrain_autoencoder(
    spec: &ModelSpec,
    x: ndarray::ArrayView2<'_, f64>,
    y: &[usize],
    cfg: &ExperimentConfig,
    seed: u64,
    progress: Progress<'_>,
) -> Result<Mlp> {
    let (ae_cfg, sm_cfg) = spec.autoencoder_configs(cfg.scale, cfg.seed)?;
    let mut ae = SparseAutoencoder::random(x.ncols(), ae_cfg.hidden(), seed)?;
    let epochs = ae_cfg.epochs();
    let mut last = Instant::now();
    ae.train(x, &ae_cfg, |e| {
        progress(&Event::Epoch {
            model: format!("{} autoencoder", spec.name),
            epoch: e.epoch,
            epochs,
            loss: e.loss,
            elapsed: last.elapsed(),
        });
        last = Instant::now();
    })?;
    progress(&Event::Stage(format!(
        "training the softmax of {} on the codes",
        spec.name
    )));
    let softmax = ae.train_softmax(x, y, 10, &sm_cfg)?;
    ae.stack(softmax)
}
