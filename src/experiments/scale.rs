//! The distortion-scale study: the paper's FC10(λ) models (and FC100-100-10) trained and
//! attacked under several input conventions, to find which one reproduces both the paper's
//! errors and its minimum distortions.
//!
//! Our minimum distortions (pixels in `[0, 1]`) are about half the paper's, and so is the
//! exact box-constrained optimum of our FC10(λ) models, with the same factor for the three
//! λ. A convention is an affine map of the pixels `x' = a ⊙ x + b` applied before training
//! and attacking; the box becomes `[b, a + b]` and the RMS distortion measured in the
//! convention's units is `sqrt(Σ r_i'² / n)` with `r' = a ⊙ r`. The same weight decay λ
//! penalises a different function in every convention (a model on `2x − 1` needs half the
//! weights of one on `x`), so errors and distortions both change — the study measures them.

use super::recipes::TrainingSet;
use super::sample::ExperimentData;
use super::table1::{attack_set, linear_min_perturbation, table1_sample};
use super::{Event, ExperimentConfig, Progress, Scale};
use crate::classifier::ClassifierExt;
use crate::data::subset;
use crate::error::{Error, Result};
use crate::models::{Mlp, Preset, train};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use std::fmt;

/// How pixels (stored in `[0, 1]`) are presented to the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum InputConvention {
    /// `x` in `[0, 1]` (ours).
    Unit,
    /// `2x − 1` in `[−1, 1]`.
    Symmetric,
    /// `255 x` in `[0, 255]` (raw bytes).
    Bytes,
    /// `(x − μ) / σ` with the mean and standard deviation of all training pixels.
    GlobalStandardised,
    /// `(x_i − μ_i) / σ_i` per pixel over the training images (σ_i = 0 is replaced by 1,
    /// as scikit-learn's `StandardScaler` does).
    PixelStandardised,
}

impl InputConvention {
    /// Every convention, ours first.
    pub const ALL: [InputConvention; 5] = [
        InputConvention::Unit,
        InputConvention::Symmetric,
        InputConvention::GlobalStandardised,
        InputConvention::PixelStandardised,
        InputConvention::Bytes,
    ];

    /// The affine map of this convention, fitted (for the standardisations) on `train`.
    pub fn fit(self, train: ArrayView2<'_, f64>) -> Result<AffineInput> {
        let d = train.ncols();
        if train.nrows() == 0 || d == 0 {
            return Err(Error::InvalidConfig(
                "fitting an input convention on an empty set".into(),
            ));
        }
        let (scale, shift) = match self {
            InputConvention::Unit => (Array1::ones(d), Array1::zeros(d)),
            InputConvention::Symmetric => (Array1::from_elem(d, 2.0), Array1::from_elem(d, -1.0)),
            InputConvention::Bytes => (Array1::from_elem(d, 255.0), Array1::zeros(d)),
            InputConvention::GlobalStandardised => {
                let n = train.len() as f64;
                let mu = train.sum() / n;
                let var = train.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / n;
                let sd = var.sqrt();
                if sd.is_nan() || sd <= 0.0 {
                    return Err(Error::InvalidConfig("constant training pixels".into()));
                }
                (
                    Array1::from_elem(d, 1.0 / sd),
                    Array1::from_elem(d, -mu / sd),
                )
            }
            InputConvention::PixelStandardised => {
                let mu = train.mean_axis(Axis(0)).expect("non-empty");
                let sd = train.std_axis(Axis(0), 0.0);
                let sd = sd.mapv(|s| if s > 0.0 { s } else { 1.0 });
                (sd.mapv(|s| 1.0 / s), -&mu / &sd)
            }
        };
        Ok(AffineInput { scale, shift })
    }
}

impl fmt::Display for InputConvention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputConvention::Unit => "[0, 1] (ours)",
            InputConvention::Symmetric => "[−1, 1]",
            InputConvention::Bytes => "[0, 255]",
            InputConvention::GlobalStandardised => "standardised (global μ, σ)",
            InputConvention::PixelStandardised => "standardised per pixel",
        })
    }
}

/// `x' = scale ⊙ x + shift` (per coordinate, `scale > 0`).
#[derive(Clone, Debug, PartialEq)]
pub struct AffineInput {
    /// `a`.
    pub scale: Array1<f64>,
    /// `b`.
    pub shift: Array1<f64>,
}

impl AffineInput {
    /// The images of a batch under the map.
    pub fn apply(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let mut out = x.to_owned();
        for mut row in out.rows_mut() {
            row *= &self.scale;
            row += &self.shift;
        }
        out
    }

    /// The image of the pixel box `[0, 1]ⁿ`: `([b], [a + b])`.
    pub fn bounds(&self) -> (Vec<f64>, Vec<f64>) {
        (self.shift.to_vec(), (&self.scale + &self.shift).to_vec())
    }

    /// RMS of a perturbation given in the convention's units, converted to pixel (`[0, 1]`)
    /// units: `sqrt(Σ (r_i' / a_i)² / n)`.
    pub fn unit_rms(&self, r: ndarray::ArrayView1<'_, f64>) -> f64 {
        let n = r.len().max(1) as f64;
        (r.iter()
            .zip(&self.scale)
            .map(|(v, a)| (v / a) * (v / a))
            .sum::<f64>()
            / n)
            .sqrt()
    }
}

fn rms(r: ndarray::ArrayView1<'_, f64>) -> f64 {
    (r.iter().map(|v| v * v).sum::<f64>() / r.len().max(1) as f64).sqrt()
}

/// One row of the scale study.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleRow {
    /// The input convention.
    pub convention: InputConvention,
    /// The model (`FC10(1e-4)`, ...).
    pub model: String,
    /// Training error.
    pub train_error: f64,
    /// Test error.
    pub test_error: f64,
    /// Sample images the model classifies correctly (those the distortions average over).
    pub correct: usize,
    /// Mean exact minimum RMS distortion in the convention's units (single-layer models).
    pub exact_native: Option<f64>,
    /// The same perturbations' RMS in pixel (`[0, 1]`) units.
    pub exact_unit: Option<f64>,
    /// Mean RMS distortion found by the attack ([`Target::Nearest`](crate::attack::Target),
    /// the run's settings, the convention's box) on the first `attack_samples` images, in
    /// the convention's units.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64"))]
    pub attack_native: f64,
    /// The attack's perturbations in pixel units.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64"))]
    pub attack_unit: f64,
    /// (successful, failed) attacks.
    pub attacked: (usize, usize),
    /// Mean over the attacked examples of (attack distortion / exact minimum) per example
    /// (single-layer models): the attack's tightness in this convention.
    pub attack_over_exact: Option<f64>,
    /// The decay multiplier of the case.
    pub decay_factor: f64,
}

/// One model of the study: a preset under a convention, its weight decay multiplied by
/// `decay_factor` (1: the paper's λ in our convention `mean CE + λ/2 ‖W‖²`).
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleCase {
    /// The input convention.
    pub convention: InputConvention,
    /// The model's name in the table.
    pub name: String,
    /// Architecture and recipe.
    pub preset: Preset,
    /// Multiplies every λ_l.
    pub decay_factor: f64,
}

/// A convention's fitted map and the transformed training, test and sample images.
type Prepared = (
    InputConvention,
    AffineInput,
    Array2<f64>,
    Array2<f64>,
    Array2<f64>,
);

/// The study's cases: the paper's three FC10(λ) and FC100-100-10 under every convention;
/// then the FC10 models in `[−1, 1]` with the decay multiplied by 2 and by 4. (With factor
/// 4, a model of `2x − 1` is exactly our `[0, 1]` model reparametrised — `W' = W/2`, the
/// bias absorbing the shift, biases not decayed — so its errors are ours up to the
/// optimizer's path, and its distortions in `[−1, 1]` units are exactly twice ours.)
/// FC100-100-10 is trained with Adam (η = 2e-3, ×0.8 per epoch, 15 epochs) in every
/// convention, since the SGD recipe's step size was tuned for `[0, 1]`.
pub fn scale_cases(with_hidden: bool) -> Vec<ScaleCase> {
    let fc10 = [
        ("FC10(1e-4)", Preset::Fc10(1e-4)),
        ("FC10(1e-2)", Preset::Fc10(1e-2)),
        ("FC10(1)", Preset::Fc10(1.0)),
    ];
    let case = |convention, name: &str, preset, decay_factor| ScaleCase {
        convention,
        name: name.to_string(),
        preset,
        decay_factor,
    };
    let mut v = Vec::new();
    for conv in InputConvention::ALL {
        for (name, p) in fc10 {
            v.push(case(conv, name, p, 1.0));
        }
        if with_hidden {
            v.push(case(conv, "FC100-100-10", Preset::Fc100_100_10, 1.0));
        }
    }
    for factor in [2.0, 4.0] {
        for (name, p) in fc10 {
            v.push(case(InputConvention::Symmetric, name, p, factor));
        }
    }
    v
}

/// Trains every case (the preset's recipe and seed, FC100-100-10 with Adam — see
/// [`scale_cases`]; quick mode: at most 5 epochs) on the run's training set and measures
/// its errors, the exact minimum distortion over the correctly classified images of the
/// Table 1 sample (single-layer models) and the attack's distortion on the first
/// `attack_samples` images of that sample, in the convention's units and in pixel units.
pub fn scale_study(
    cases: &[ScaleCase],
    data: &ExperimentData,
    cfg: &ExperimentConfig,
    attack_samples: usize,
    progress: Progress<'_>,
) -> Result<Vec<ScaleRow>> {
    cfg.validate()?;
    let (x, y) = data.training_set(TrainingSet::Full)?;
    let pick = table1_sample(data, cfg)?;
    let (sx, sy) = subset(
        data.mnist.train_images.view(),
        &data.mnist.train_labels,
        &pick,
    )?;
    let mut rows = Vec::new();
    let mut last: Option<Prepared> = None;
    for c in cases {
        if last.as_ref().is_none_or(|l| l.0 != c.convention) {
            let map = c.convention.fit(x.view())?;
            let xt = map.apply(x.view());
            let tt = map.apply(data.mnist.test_images.view());
            let st = map.apply(sx.view());
            last = Some((c.convention, map, xt, tt, st));
        }
        let (conv, map, xt, tt, st) = last.as_ref().expect("set above");
        let (lower, upper) = map.bounds();
        progress(&Event::Stage(format!(
            "scale study: {} in {conv}, decay ×{}",
            c.name, c.decay_factor
        )));
        let seed =
            super::recipes::ModelSpec::preset(c.preset, TrainingSet::Full).model_seed(cfg.seed);
        let (mut model, mut tc) = c.preset.build(seed)?;
        if !matches!(c.preset, Preset::Fc10(_)) {
            tc = tc
                .with_optimizer(crate::models::Optimizer::ADAM)?
                .with_learning_rate(2e-3)?
                .with_lr_decay(0.8)?
                .with_warmup_epochs(0.0)?;
        }
        let decay: Vec<f64> = c
            .preset
            .weight_decay()
            .iter()
            .map(|l| l * c.decay_factor)
            .collect();
        tc = tc.with_weight_decay(decay)?;
        if cfg.scale == Scale::Quick {
            tc = tc.clone().with_epochs(tc.epochs().min(5))?;
        }
        let label = format!("{} {conv}", c.name);
        train(&mut model, xt.view(), &y, &tc, |e, _| {
            progress(&Event::Epoch {
                model: label.clone(),
                epoch: e.epoch,
                epochs: e.epochs,
                loss: e.loss,
                elapsed: e.elapsed,
            })
        })?;
        let mut row = measure(
            *conv,
            &c.name,
            &model,
            map,
            (xt.view(), &y),
            (tt.view(), &data.mnist.test_labels),
            (st.view(), &sy, &pick),
            (&lower, &upper),
            cfg,
            attack_samples,
            progress,
        )?;
        row.decay_factor = c.decay_factor;
        rows.push(row);
    }
    Ok(rows)
}

#[allow(clippy::too_many_arguments)]
fn measure(
    conv: InputConvention,
    name: &str,
    model: &Mlp,
    map: &AffineInput,
    train_set: (ArrayView2<'_, f64>, &[usize]),
    test_set: (ArrayView2<'_, f64>, &[usize]),
    sample: (ArrayView2<'_, f64>, &[usize], &[usize]),
    bounds: (&[f64], &[f64]),
    cfg: &ExperimentConfig,
    attack_samples: usize,
    progress: Progress<'_>,
) -> Result<ScaleRow> {
    let train_error = model.error_rate(train_set.0, train_set.1)?;
    let test_error = model.error_rate(test_set.0, test_set.1)?;
    let (sx, sy, pick) = sample;
    let pred = model.predict_batch(sx)?;
    let correct: Vec<usize> = (0..sy.len()).filter(|&i| pred[i] == sy[i]).collect();
    let (mut native, mut unit, mut count) = (0.0, 0.0, 0usize);
    let single = model.layers().len() == 1;
    if single {
        for &i in &correct {
            if let Some(r) = linear_min_perturbation(model, sx.row(i), sy[i], bounds.0, bounds.1) {
                native += rms(r.view());
                unit += map.unit_rms(r.view());
                count += 1;
            }
        }
    }
    let k = attack_samples.min(sy.len());
    let attack = cfg.attack.clone().with_bounds(crate::optim::Bounds::new(
        bounds.0.to_vec(),
        bounds.1.to_vec(),
    )?);
    let set = attack_set(
        name,
        model,
        sx.slice(ndarray::s![..k, ..]),
        &sy[..k],
        &pick[..k],
        &attack,
        cfg.threads,
        progress,
    )?;
    let (mut an, mut au) = (0.0, 0.0);
    let (mut ratio, mut nr) = (0.0, 0usize);
    for ((a, o), &l) in set
        .inputs
        .rows()
        .into_iter()
        .zip(set.originals.rows())
        .zip(&set.labels)
    {
        let r = &a - &o;
        let this = rms(r.view());
        an += this;
        au += map.unit_rms(r.view());
        if single && let Some(e) = linear_min_perturbation(model, o, l, bounds.0, bounds.1) {
            let e = rms(e.view());
            if e > 0.0 {
                ratio += this / e;
                nr += 1;
            }
        }
    }
    let ns = set.len().max(1) as f64;
    let empty = set.is_empty();
    Ok(ScaleRow {
        convention: conv,
        model: name.to_string(),
        train_error,
        test_error,
        correct: correct.len(),
        exact_native: (single && count > 0).then(|| native / count as f64),
        exact_unit: (single && count > 0).then(|| unit / count as f64),
        attack_native: if empty { f64::NAN } else { an / ns },
        attack_unit: if empty { f64::NAN } else { au / ns },
        attacked: (set.len(), set.failures.len()),
        attack_over_exact: (nr > 0).then(|| ratio / nr as f64),
        decay_factor: 1.0,
    })
}

/// The scale study as Markdown, the paper's Table 1 values beside every row.
pub fn scale_markdown(rows: &[ScaleRow]) -> String {
    use std::fmt::Write;
    let mut s = String::from(
        "| Convention | Model | Decay | Train error | Test error | Exact min. RMS, convention units | Exact, [0, 1] units | Attack RMS, convention units | Attack, [0, 1] units | Attack / exact (same images) | Attacked (ok / failed) | Paper test error | Paper distortion | Paper / exact (convention units) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let opt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.4}"));
    for r in rows {
        let paper = super::report::PAPER_TABLE1.iter().find(|p| p.0 == r.model);
        let (pt, pd) = paper.map_or(("–".into(), "–".into()), |p| {
            (format!("{}%", p.2), format!("{}", p.3))
        });
        let ratio = match (paper, r.exact_native) {
            (Some(p), Some(e)) if e > 0.0 => format!("{:.2}", p.3 / e),
            (Some(p), None) if r.attack_native > 0.0 => {
                format!("({:.2} vs attack)", p.3 / r.attack_native)
            }
            _ => "–".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2}% | {:.2}% | {} | {} | {:.4} | {:.4} | {} | {} / {} | {pt} | {pd} | {ratio} |",
            r.convention,
            r.model,
            if r.decay_factor == 1.0 {
                "λ".to_string()
            } else {
                format!("{}λ", r.decay_factor)
            },
            100.0 * r.train_error,
            100.0 * r.test_error,
            opt(r.exact_native),
            opt(r.exact_unit),
            r.attack_native,
            r.attack_unit,
            r.attack_over_exact
                .map_or("–".to_string(), |v| format!("{v:.3}")),
            r.attacked.0,
            r.attacked.1,
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn conventions_map_the_box_and_convert_distortions_back() {
        let train = array![[0.0, 0.2], [1.0, 0.6]];
        for conv in InputConvention::ALL {
            let map = conv.fit(train.view()).unwrap();
            let (lo, hi) = map.bounds();
            let img = map.apply(array![[0.0, 0.0], [1.0, 1.0]].view());
            for i in 0..2 {
                assert!((img[[0, i]] - lo[i]).abs() < 1e-12 && (img[[1, i]] - hi[i]).abs() < 1e-12);
            }
            // A pixel-unit perturbation r maps to a ⊙ r; unit_rms undoes it.
            let r = array![0.3, -0.1];
            let back = map.unit_rms((&r * &map.scale).view());
            assert!((back - rms(r.view())).abs() < 1e-12, "{conv}");
        }
        // Per-pixel standardisation: mean 0 and std 1 per column on the fitted set.
        let map = InputConvention::PixelStandardised
            .fit(train.view())
            .unwrap();
        let t = map.apply(train.view());
        assert!(
            t.mean_axis(Axis(0))
                .unwrap()
                .iter()
                .all(|m| m.abs() < 1e-12)
        );
        assert!(
            t.std_axis(Axis(0), 0.0)
                .iter()
                .all(|s| (s - 1.0).abs() < 1e-12)
        );
        // [−1, 1]: the RMS of the same perturbation doubles.
        let map = InputConvention::Symmetric.fit(train.view()).unwrap();
        assert_eq!(map.apply(array![[0.25, 0.5]].view()), array![[-0.5, 0.0]]);
    }
}
