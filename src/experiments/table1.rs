//! Table 1: training and test error, and the average minimum distortion needed to
//! misclassify a seeded sample of training images.

use super::recipes::{TrainedModel, TrainingSet};
use super::sample::{AdversarialSet, ExperimentData, median, seeded_sample};
use super::{Event, ExperimentConfig, Progress};
use crate::Classifier;
use crate::attack::{AttackConfig, Target, attack_batch};
use crate::classifier::ClassifierExt;
use crate::data::subset;
use crate::error::{Error, Result};
use crate::models::{Activation, Mlp};
use ndarray::{Array2, ArrayView1, ArrayView2};
use std::time::Instant;

/// One row of Table 1.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Table1Row {
    /// Model name.
    pub model: String,
    /// Error on its training set.
    pub train_error: f64,
    /// Error on the test set.
    pub test_error: f64,
    /// Sampled training images.
    pub sampled: usize,
    /// Of those, already misclassified by the model (not attacked, distortion 0, left out of
    /// the averages).
    pub misclassified: usize,
    /// Attacks that found a verified adversarial example.
    pub succeeded: usize,
    /// Attacks that failed, with their reasons.
    pub failures: Vec<String>,
    /// Mean RMS distortion `sqrt(Σ r_i² / n)` over the successes (the paper's measure).
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64"))]
    pub mean_rms: f64,
    /// Median RMS distortion over the successes.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64"))]
    pub median_rms: f64,
    /// For a single-layer (softmax-regression) model: the mean, over the same successes, of
    /// the exact minimum RMS distortion inside the box (see [`linear_min_rms`]) — what a
    /// perfect attack would reach, to check the attack's tightness. `None` for other models.
    pub linear_bound_rms: Option<f64>,
}

/// The exact minimum RMS distortion that changes the prediction of a single-layer model
/// `z = W x + b` at `x` away from `label`, with `x + r` kept in the box `[0, 1]ⁿ` — the
/// optimum the attack approximates, in closed form up to a scalar bisection, to check the
/// attack's tightness.
///
/// For each wrong label `j`, with `d = w_label − w_j` and margin `m = z_label − z_j`, the
/// smallest `‖r‖` with `d·r ≤ −m` and `−x ≤ r ≤ 1 − x` is (KKT of a separable strictly
/// convex problem) `r(t) = clip(−t d, −x, 1 − x)` for the smallest `t ≥ 0` with
/// `d·r(t) ≤ −m`; `d·r(t)` is non-increasing in `t`, so `t` is found by bisection. The
/// result is the minimum over `j` (labels that cannot be reached inside the box are
/// skipped). Returns `None` when `mlp` is not a single identity layer, `label` is out of
/// range, or no label is reachable; `Some(0)` when `x` is already misclassified.
///
/// # Examples
///
/// ```
/// use intriguing::experiments::linear_min_rms;
/// use intriguing::models::{Activation, Dense, Mlp};
/// use ndarray::array;
/// // z0 = x0, z1 = x1 at x = (0.6, 0.2): without the box the nearest point of the boundary
/// // x0 = x1 is (0.4, 0.4), inside the box: r = (−0.2, 0.2), RMS 0.2.
/// let w = array![[1.0, 0.0], [0.0, 1.0]];
/// let mlp = Mlp::new(vec![Dense::new(w, array![0.0, 0.0], Activation::Identity)?])?;
/// let r = linear_min_rms(&mlp, array![0.6, 0.2].view(), 0).unwrap();
/// assert!((r - 0.2).abs() < 1e-9);
/// // z0 = x0 − x1 + 1, z1 = 0 at x = (0.5, 1.0): x1 cannot rise above 1, so only x0
/// // moves, by −0.5: RMS 0.5/√2 (without the box: r = (−0.25, 0.25), RMS 0.25).
/// let w = array![[1.0, -1.0], [0.0, 0.0]];
/// let mlp = Mlp::new(vec![Dense::new(w, array![1.0, 0.0], Activation::Identity)?])?;
/// let r = linear_min_rms(&mlp, array![0.5, 1.0].view(), 0).unwrap();
/// assert!((r - 0.5 / 2f64.sqrt()).abs() < 1e-9, "{r}");
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn linear_min_rms(mlp: &Mlp, x: ArrayView1<'_, f64>, label: usize) -> Option<f64> {
    let n = x.len();
    let lower = vec![0.0; n];
    let upper = vec![1.0; n];
    let r = linear_min_perturbation(mlp, x, label, &lower, &upper)?;
    Some((r.iter().map(|v| v * v).sum::<f64>() / n.max(1) as f64).sqrt())
}

/// [`linear_min_rms`] in a per-coordinate box `[lower_i, upper_i]` (e.g. the image of the
/// pixel box `[0, 1]` under an input normalisation), returning the minimum-norm
/// perturbation `r` itself. `None` as for [`linear_min_rms`], or when the bounds' lengths
/// differ from the input's; a zero vector when `x` is already misclassified.
///
/// # Examples
///
/// ```
/// use intriguing::experiments::linear_min_perturbation;
/// use intriguing::models::{Activation, Dense, Mlp};
/// use ndarray::array;
/// // The first example of `linear_min_rms` in the box [−1, 1]² at the image of (0.6, 0.2)
/// // under x ↦ 2x − 1: the boundary x0 = x1 is reached at r = (−0.4, 0.4).
/// let w = array![[1.0, 0.0], [0.0, 1.0]];
/// let mlp = Mlp::new(vec![Dense::new(w, array![0.0, 0.0], Activation::Identity)?])?;
/// let r = linear_min_perturbation(&mlp, array![0.2, -0.6].view(), 0, &[-1.0; 2], &[1.0; 2])
///     .unwrap();
/// assert!((r[0] + 0.4).abs() < 1e-9 && (r[1] - 0.4).abs() < 1e-9, "{r}");
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn linear_min_perturbation(
    mlp: &Mlp,
    x: ArrayView1<'_, f64>,
    label: usize,
    lower: &[f64],
    upper: &[f64],
) -> Option<ndarray::Array1<f64>> {
    let [layer] = mlp.layers() else {
        return None;
    };
    let n = x.len();
    if layer.activation != Activation::Identity
        || label >= layer.out_dim()
        || n != layer.in_dim()
        || lower.len() != n
        || upper.len() != n
    {
        return None;
    }
    let z = layer.weight.dot(&x) + &layer.bias;
    let wy = layer.weight.row(label);
    let mut best = f64::INFINITY;
    let mut best_r = None;
    let mut d = vec![0.0; n];
    let clip = |t: f64, d: &[f64], i: usize| (-t * d[i]).clamp(lower[i] - x[i], upper[i] - x[i]);
    let r_of = |t: f64, d: &[f64]| -> (f64, f64) {
        // (d·r(t), ‖r(t)‖²)
        let (mut dot, mut sq) = (0.0, 0.0);
        for i in 0..n {
            let r = clip(t, d, i);
            dot += d[i] * r;
            sq += r * r;
        }
        (dot, sq)
    };
    for j in 0..layer.out_dim() {
        if j == label {
            continue;
        }
        let m = z[label] - z[j];
        if m <= 0.0 {
            return Some(ndarray::Array1::zeros(n));
        }
        for (di, (a, b)) in d.iter_mut().zip(wy.iter().zip(layer.weight.row(j))) {
            *di = a - b;
        }
        // Reachable inside the box at all?
        let (dot_inf, _) = r_of(f64::MAX / 4.0, &d);
        if dot_inf > -m {
            continue;
        }
        let (mut lo, mut hi) = (0.0, 1.0);
        while r_of(hi, &d).0 > -m {
            hi *= 2.0;
        }
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if r_of(mid, &d).0 > -m {
                lo = mid;
            } else {
                hi = mid;
            }
            if hi - lo <= 1e-15 * hi {
                break;
            }
        }
        let sq = r_of(hi, &d).1;
        if sq < best {
            best = sq;
            best_r = Some(ndarray::Array1::from_shape_fn(n, |i| clip(hi, &d, i)));
        }
    }
    best_r
}

/// Attacks every row of `images` that `model` classifies correctly with
/// [`Target::Nearest`] (the smallest distortion over all wrong labels), in chunks on
/// `threads` threads, reporting progress after each chunk. Rows the model already
/// misclassifies are counted in `skipped_misclassified`; failed attacks go to `failures`
/// with their reason. `indices` names each row (its index in the data set).
#[allow(clippy::too_many_arguments)]
pub fn attack_set(
    name: &str,
    model: &dyn Classifier,
    images: ArrayView2<'_, f64>,
    labels: &[usize],
    indices: &[usize],
    attack: &AttackConfig,
    threads: usize,
    progress: Progress<'_>,
) -> Result<AdversarialSet> {
    attack_rows(
        name,
        model,
        images,
        labels,
        indices,
        attack,
        threads,
        &|l| Target::Nearest { true_label: l },
        progress,
    )
}

/// [`attack_set`] with the target of each row given by `target(true_label)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attack_rows(
    name: &str,
    model: &dyn Classifier,
    images: ArrayView2<'_, f64>,
    labels: &[usize],
    indices: &[usize],
    attack: &AttackConfig,
    threads: usize,
    target: &dyn Fn(usize) -> Target,
    progress: Progress<'_>,
) -> Result<AdversarialSet> {
    if labels.len() != images.nrows() || indices.len() != images.nrows() {
        return Err(Error::shape(
            "labels / indices",
            images.nrows(),
            format!("{} / {}", labels.len(), indices.len()),
        ));
    }
    let pred = model.predict_batch(images)?;
    let correct: Vec<usize> = (0..labels.len())
        .filter(|&i| pred[i] == labels[i])
        .collect();
    let skipped = labels.len() - correct.len();
    let (x, y) = subset(images, labels, &correct)?;
    let targets: Vec<Target> = y.iter().map(|&l| target(l)).collect();
    let chunk = (threads * 4).max(1);
    let start = Instant::now();
    let mut adv_rows = Vec::new();
    let mut orig_rows = Vec::new();
    let mut out_labels = Vec::new();
    let mut out_indices = Vec::new();
    let mut failures = Vec::new();
    let total = y.len();
    let mut done = 0;
    while done < total {
        let end = (done + chunk).min(total);
        let xs = x.slice(ndarray::s![done..end, ..]);
        let results = attack_batch(model, xs, &targets[done..end], attack, threads)?;
        for (k, r) in results.into_iter().enumerate() {
            let row = done + k;
            let idx = indices[correct[row]];
            match r {
                Ok(res) => match (&res.adversarial, &res.failure) {
                    (Some(a), _) => {
                        adv_rows.push(a.input.clone());
                        orig_rows.push(x.row(row).to_owned());
                        out_labels.push(y[row]);
                        out_indices.push(idx);
                    }
                    (None, Some(f)) => failures.push((idx, f.to_string())),
                    (None, None) => failures.push((idx, "no result and no reason".into())),
                },
                Err(e) => failures.push((idx, format!("error: {e}"))),
            }
        }
        done = end;
        progress(&Event::Attack {
            model: name.to_string(),
            done,
            total,
            failed: failures.len(),
            elapsed: start.elapsed(),
        });
    }
    let d = images.ncols();
    let stack = |rows: &[ndarray::Array1<f64>]| -> Array2<f64> {
        let mut a = Array2::zeros((rows.len(), d));
        for (mut r, v) in a.rows_mut().into_iter().zip(rows) {
            r.assign(v);
        }
        a
    };
    let mut set = AdversarialSet::from_parts(
        name.to_string(),
        stack(&orig_rows),
        stack(&adv_rows),
        out_labels,
        out_indices,
    );
    set.failures = failures;
    set.skipped_misclassified = skipped;
    Ok(set)
}

/// The rows of `mnist.train_images` that Table 1 attacks: `cfg.samples` (at most the
/// training-set size) drawn from the run's training set, seeded by `cfg.seed`.
pub fn table1_sample(data: &ExperimentData, cfg: &ExperimentConfig) -> Result<Vec<usize>> {
    let pool = data.indices(TrainingSet::Full);
    let k = cfg.samples.min(pool.len());
    Ok(seeded_sample(pool.len(), k, cfg.seed ^ 0x7431)?
        .into_iter()
        .map(|i| pool[i])
        .collect())
}

/// Table 1 for `models` (trained on the whole training set): the same seeded sample of
/// `cfg.samples` training images (drawn from the run's training set with seed `cfg.seed`)
/// is attacked on every model. Returns the rows and the adversarial sets (reused by the
/// cross-model table).
pub fn table1(
    models: &[TrainedModel],
    data: &ExperimentData,
    cfg: &ExperimentConfig,
    progress: Progress<'_>,
) -> Result<(Vec<Table1Row>, Vec<AdversarialSet>)> {
    cfg.validate()?;
    let pick = table1_sample(data, cfg)?;
    let (x, y) = subset(
        data.mnist.train_images.view(),
        &data.mnist.train_labels,
        &pick,
    )?;
    distortion_table(models, x.view(), &y, &pick, "training", cfg, progress)
}

/// Table 3 (the models of the cross-training-set experiment): like [`table1`], but the
/// attacked sample is `cfg.samples` seeded *test* images, as in the paper's Section 4.2.
pub fn table3(
    models: &[TrainedModel],
    data: &ExperimentData,
    cfg: &ExperimentConfig,
    progress: Progress<'_>,
) -> Result<(Vec<Table1Row>, Vec<AdversarialSet>)> {
    cfg.validate()?;
    let n = data.mnist.test_labels.len();
    let pick = seeded_sample(n, cfg.samples.min(n), cfg.seed ^ 0x7433)?;
    let (x, y) = subset(
        data.mnist.test_images.view(),
        &data.mnist.test_labels,
        &pick,
    )?;
    distortion_table(models, x.view(), &y, &pick, "test", cfg, progress)
}

fn linear_bound(mlp: &Mlp, set: &AdversarialSet) -> Option<f64> {
    if set.is_empty() {
        return None;
    }
    let mut sum = 0.0;
    for (x, &l) in set.originals.rows().into_iter().zip(&set.labels) {
        sum += linear_min_rms(mlp, x, l)?;
    }
    Some(sum / set.len() as f64)
}

fn distortion_table(
    models: &[TrainedModel],
    x: ArrayView2<'_, f64>,
    y: &[usize],
    pick: &[usize],
    what: &str,
    cfg: &ExperimentConfig,
    progress: Progress<'_>,
) -> Result<(Vec<Table1Row>, Vec<AdversarialSet>)> {
    let k = y.len();
    let mut rows = Vec::new();
    let mut sets = Vec::new();
    for m in models {
        progress(&Event::Stage(format!(
            "attacking {} on {k} {what} images",
            m.spec.name
        )));
        let set = attack_set(
            &m.spec.name,
            &m.model,
            x,
            y,
            pick,
            &cfg.attack,
            cfg.threads,
            progress,
        )?;
        rows.push(Table1Row {
            model: m.spec.name.clone(),
            train_error: m.train_error,
            test_error: m.test_error,
            sampled: k,
            misclassified: set.skipped_misclassified,
            succeeded: set.len(),
            failures: set
                .failures
                .iter()
                .map(|(i, r)| format!("#{i}: {r}"))
                .collect(),
            mean_rms: set.mean_rms(),
            median_rms: median(&set.rms),
            linear_bound_rms: linear_bound(&m.model, &set),
        });
        sets.push(set);
    }
    Ok((rows, sets))
}
