//! Adversarial training with a pool of adversarial examples (the paper's Section 4.2).

use super::recipes::{ModelKind, TrainedModel, TrainingSet};
use super::sample::{ExperimentData, seeded_sample};
use super::table1::{attack_rows, attack_set};
use super::{Event, ExperimentConfig, Progress, Scale};
use crate::ClassifierExt;
use crate::attack::{AttackConfig, Target};
use crate::data::subset;
use crate::error::{Error, Result};
use crate::models::{Mlp, train};
use ndarray::{Array2, s};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Settings of [`adversarial_training`].
#[derive(Clone, Debug)]
pub struct AdvTrainConfig {
    /// Total epochs (the same budget as the plain model's recipe by default).
    pub epochs: usize,
    /// Clean epochs before the first pool is generated.
    pub warmup_epochs: usize,
    /// The pool is (partly) regenerated every this many epochs.
    pub regenerate_every: usize,
    /// Maximum number of adversarial examples in the pool.
    pub pool_size: usize,
    /// Share of the pool replaced at each regeneration once it is full, in `(0, 1]`.
    pub regenerate_fraction: f64,
    /// The attack that makes pool examples ([`Target::Untargeted`], cheap settings).
    pub pool_attack: AttackConfig,
    /// Test images attacked ([`Target::Nearest`], the run's attack settings) on both models
    /// to compare their minimum distortion (0: skip).
    pub eval_samples: usize,
}

impl AdvTrainConfig {
    /// The settings for a run at `scale`: full — 15 epochs (3 clean), pool of 3 000 (5 % of
    /// the training set) half regenerated every 3 epochs, 200 test images attacked; quick —
    /// 5 epochs (1 clean), pool of 100 half regenerated every epoch, 10 test images. The
    /// epochs equal the plain FC100-100-10 recipe's (15 full, 5 quick), so both models get
    /// the same number of passes over the clean images.
    /// The pool attack uses 2 bisection steps and 40 L-BFGS-B iterations per run.
    pub fn for_scale(scale: Scale) -> Result<Self> {
        let pool_attack = AttackConfig::default()
            .with_bisection_steps(2)?
            .with_max_iterations(40)?;
        Ok(match scale {
            Scale::Full => AdvTrainConfig {
                epochs: 15,
                warmup_epochs: 3,
                regenerate_every: 3,
                pool_size: 3000,
                regenerate_fraction: 0.5,
                pool_attack,
                eval_samples: 200,
            },
            Scale::Quick => AdvTrainConfig {
                epochs: super::recipes::QUICK_EPOCHS,
                warmup_epochs: 1,
                regenerate_every: 1,
                pool_size: 100,
                regenerate_fraction: 0.5,
                pool_attack,
                eval_samples: 10,
            },
        })
    }

    fn validate(&self) -> Result<()> {
        if self.epochs == 0
            || self.regenerate_every == 0
            || self.pool_size == 0
            || self.warmup_epochs >= self.epochs
            || !(self.regenerate_fraction > 0.0 && self.regenerate_fraction <= 1.0)
        {
            return Err(Error::InvalidConfig(format!(
                "adversarial training: need epochs > warmup_epochs, regenerate_every >= 1, \
                 pool_size >= 1, regenerate_fraction in (0, 1]; got {self:?}"
            )));
        }
        Ok(())
    }
}

/// The outcome of [`adversarial_training`] beside the plain model.
#[derive(Clone, Debug)]
pub struct AdvTrainReport {
    /// The adversarially trained model.
    pub model: Mlp,
    /// Its epochs.
    pub epochs: usize,
    /// Its test error.
    pub test_error: f64,
    /// Its mean minimum RMS distortion on the evaluation sample of test images.
    pub mean_rms: f64,
    /// (successful, failed) evaluation attacks on it.
    pub attacked: (usize, usize),
    /// The plain model's epochs.
    pub plain_epochs: usize,
    /// The plain model's test error.
    pub plain_test_error: f64,
    /// The plain model's mean minimum RMS distortion on the same test images.
    pub plain_mean_rms: f64,
    /// (successful, failed) evaluation attacks on the plain model.
    pub plain_attacked: (usize, usize),
    /// Adversarial examples generated over the run.
    pub generated: usize,
    /// Pool attacks that failed.
    pub generation_failures: usize,
    /// Pool capacity.
    pub pool_capacity: usize,
    /// Clean training images.
    pub train_size: usize,
}

/// Trains the architecture of `plain` (a preset model trained on the whole training set)
/// from the same initialisation with a pool of adversarial examples mixed into the training
/// set: after `warmup_epochs` clean epochs, and then every `regenerate_every` epochs,
/// adversarial examples of randomly chosen training images are made on the *current* model
/// (untargeted attack) and added to the pool with their true labels — once the pool is full,
/// a random `regenerate_fraction` of it is replaced. Each period trains on the clean images
/// plus the pool, continuing the plain recipe's learning-rate schedule (the optimizer state
/// restarts at every period). Then both models' test errors and minimum distortions on
/// `eval_samples` seeded test images are measured.
pub fn adversarial_training(
    plain: &TrainedModel,
    data: &ExperimentData,
    cfg: &ExperimentConfig,
    adv: &AdvTrainConfig,
    progress: Progress<'_>,
) -> Result<AdvTrainReport> {
    adv.validate()?;
    cfg.validate()?;
    let preset = match plain.spec.kind {
        ModelKind::Preset(p) if plain.spec.training_set == TrainingSet::Full => p,
        _ => {
            return Err(Error::InvalidConfig(
                "adversarial training needs a preset model trained on the whole training set"
                    .into(),
            ));
        }
    };
    let base = plain
        .spec
        .train_config(cfg.scale, cfg.seed)?
        .expect("presets have a train config");
    let seed = plain.spec.model_seed(cfg.seed);
    let mut model = preset.model(seed)?;
    let (x, y) = data.training_set(TrainingSet::Full)?;
    let n = y.len();
    let d = x.ncols();
    // Clean images followed by the pool slots.
    let mut big = Array2::<f64>::zeros((n + adv.pool_size, d));
    big.slice_mut(s![..n, ..]).assign(&x);
    let mut labels = y.clone();
    labels.resize(n + adv.pool_size, 0);
    let mut filled = 0usize;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xad7);
    let (mut generated, mut gen_failures) = (0usize, 0usize);
    let mut epoch = 0usize;
    let mut period = 0u64;
    while epoch < adv.epochs {
        let len = if epoch < adv.warmup_epochs {
            adv.warmup_epochs - epoch
        } else {
            // Regenerate (part of) the pool on the current model: fill it the first time,
            // then replace a random `regenerate_fraction` of it (empty slots first).
            let want = if filled == 0 {
                adv.pool_size
            } else {
                ((adv.pool_size as f64 * adv.regenerate_fraction).ceil() as usize)
                    .clamp(1, adv.pool_size)
            };
            progress(&Event::Stage(format!(
                "adversarial training: making {want} pool examples after epoch {epoch}"
            )));
            // Attack more images than needed: misclassified ones and failures are dropped.
            let ask = (want + want / 10 + 1).min(n);
            let pick = seeded_sample(n, ask, rng.random::<u64>())?;
            let (px, py) = subset(x.view(), &y, &pick)?;
            let set = attack_rows(
                "pool",
                &model,
                px.view(),
                &py,
                &pick,
                &adv.pool_attack,
                cfg.threads,
                &|l| Target::Untargeted { true_label: l },
                progress,
            )?;
            gen_failures += set.failures.len();
            let m = set.len().min(want);
            generated += m;
            let mut slots: Vec<usize> = (filled..adv.pool_size).collect();
            if slots.len() < m {
                let mut used: Vec<usize> = (0..filled).collect();
                used.shuffle(&mut rng);
                slots.extend(used);
            }
            slots.truncate(m);
            filled = filled.max(slots.iter().map(|&s| s + 1).max().unwrap_or(0));
            for (k, &slot) in slots.iter().enumerate() {
                big.row_mut(n + slot).assign(&set.inputs.row(k));
                labels[n + slot] = set.labels[k];
            }
            adv.regenerate_every.min(adv.epochs - epoch)
        };
        let lr = base.learning_rate() * base.lr_decay().powi(epoch as i32);
        let tc = base
            .clone()
            .with_epochs(len)?
            .with_learning_rate(lr)?
            .with_seed(seed.wrapping_add(period));
        let rows = n + filled;
        let offset = epoch;
        let epochs_total = adv.epochs;
        train(
            &mut model,
            big.slice(s![..rows, ..]),
            &labels[..rows],
            &tc,
            |e, _| {
                progress(&Event::Epoch {
                    model: "FC100-100-10 adversarial".into(),
                    epoch: offset + e.epoch,
                    epochs: epochs_total,
                    loss: e.loss,
                    elapsed: e.elapsed,
                })
            },
        )?;
        epoch += len;
        period += 1;
    }
    let test_error = model.error_rate(data.mnist.test_images.view(), &data.mnist.test_labels)?;
    let (mut mean_rms, mut plain_mean_rms) = (f64::NAN, f64::NAN);
    let (mut attacked, mut plain_attacked) = ((0, 0), (0, 0));
    if adv.eval_samples > 0 {
        let nt = data.mnist.test_labels.len();
        let pick = seeded_sample(nt, adv.eval_samples.min(nt), cfg.seed ^ 0xe7a1)?;
        let (tx, ty) = subset(
            data.mnist.test_images.view(),
            &data.mnist.test_labels,
            &pick,
        )?;
        for (name, m, out_rms, out_att) in [
            (
                "FC100-100-10 adversarial",
                &model,
                &mut mean_rms,
                &mut attacked,
            ),
            (
                "FC100-100-10 plain",
                &plain.model,
                &mut plain_mean_rms,
                &mut plain_attacked,
            ),
        ] {
            progress(&Event::Stage(format!(
                "adversarial training: attacking {name} on {} test images",
                pick.len()
            )));
            let set = attack_set(
                name,
                m,
                tx.view(),
                &ty,
                &pick,
                &cfg.attack,
                cfg.threads,
                progress,
            )?;
            *out_rms = set.mean_rms();
            *out_att = (set.len(), set.failures.len());
        }
    }
    Ok(AdvTrainReport {
        model,
        epochs: adv.epochs,
        test_error,
        mean_rms,
        attacked,
        plain_epochs: base.epochs(),
        plain_test_error: plain.test_error,
        plain_mean_rms,
        plain_attacked,
        generated,
        generation_failures: gen_failures,
        pool_capacity: adv.pool_size,
        train_size: n,
    })
}
