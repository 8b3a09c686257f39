//! DeepFool (Moosavi-Dezfooli et al. 2016): see [`deepfool`](super::deepfool).
use super::result::Adversarial;
use super::rows::{
    Norm, RowResult, check_batch, clip_into, gather, head_mut, logits_checked, run_rows,
    verify_rows, vjp,
};
use crate::classifier::{Classifier, argmax};
use crate::error::Result;
use crate::optim::Bounds;
use crate::validate;
use ndarray::{Array2, ArrayView2};

/// Settings of [`deepfool`].
///
/// ```
/// use intriguing::attack::{DeepFoolConfig, Norm};
/// let cfg = DeepFoolConfig::default()
///     .with_norm(Norm::Linf)
///     .with_overshoot(0.05)?
///     .with_max_iterations(20)?;
/// assert!(DeepFoolConfig::default().with_overshoot(f64::NAN).is_err());
/// assert!(DeepFoolConfig::default().with_max_iterations(0).is_err());
/// # let _ = cfg;
/// # Ok::<(), intriguing::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "DeepFoolConfigRepr")
)]
pub struct DeepFoolConfig {
    norm: Norm,
    overshoot: f64,
    max_iterations: usize,
    candidates: usize,
    domain: Bounds,
    box_masking: bool,
}

/// The fields of a serialised [`DeepFoolConfig`], checked by its setters on the way in.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeepFoolConfigRepr {
    norm: Norm,
    overshoot: f64,
    max_iterations: usize,
    candidates: usize,
    domain: Bounds,
    box_masking: bool,
}

#[cfg(feature = "serde")]
impl TryFrom<DeepFoolConfigRepr> for DeepFoolConfig {
    type Error = crate::Error;
    fn try_from(r: DeepFoolConfigRepr) -> Result<Self> {
        Ok(DeepFoolConfig::default()
            .with_norm(r.norm)
            .with_overshoot(r.overshoot)?
            .with_max_iterations(r.max_iterations)?
            .with_candidates(r.candidates)?
            .with_bounds(r.domain)
            .with_box_masking(r.box_masking))
    }
}

impl Default for DeepFoolConfig {
    /// L2, overshoot η = 0.02 (the paper's), at most 50 iterations, every class a candidate,
    /// box `[0, 1]` with box masking on.
    fn default() -> Self {
        DeepFoolConfig {
            norm: Norm::L2,
            overshoot: 0.02,
            max_iterations: 50,
            candidates: usize::MAX,
            domain: Bounds::unit_interval(),
            box_masking: true,
        }
    }
}

impl DeepFoolConfig {
    /// The norm the perturbation is minimised in.
    pub fn with_norm(mut self, norm: Norm) -> Self {
        self.norm = norm;
        self
    }
    /// The overshoot η ≥ 0 (finite): iterates are `x₀ + (1 + η) r̂`. With η = 0 a linear
    /// model's iterate lands exactly on the decision boundary, where the label is a tie.
    pub fn with_overshoot(mut self, eta: f64) -> Result<Self> {
        self.overshoot = validate::non_negative("overshoot", eta)?;
        Ok(self)
    }
    /// Maximum number of linearisation steps per row (≥ 1).
    pub fn with_max_iterations(mut self, n: usize) -> Result<Self> {
        self.max_iterations = validate::at_least_one("max_iterations", n)?;
        Ok(self)
    }
    /// Only the `k` classes with the largest clean logits (besides the true one) are
    /// candidates (≥ 1; the paper uses 10 on ImageNet; default: every class).
    pub fn with_candidates(mut self, k: usize) -> Result<Self> {
        self.candidates = validate::at_least_one("candidates", k)?;
        Ok(self)
    }
    /// The same box `[lower, upper]` for every coordinate.
    pub fn with_box(mut self, lower: f64, upper: f64) -> Result<Self> {
        self.domain = Bounds::interval(lower, upper)?;
        Ok(self)
    }
    /// Any box (e.g. per-coordinate [`Bounds::new`]; its length is checked against the
    /// model at attack time).
    pub fn with_bounds(mut self, bounds: Bounds) -> Self {
        self.domain = bounds;
        self
    }
    /// Remove from each linearised step the coordinates at a bound whose gradient points out
    /// of the box (default true); false: clipping only.
    pub fn with_box_masking(mut self, on: bool) -> Self {
        self.box_masking = on;
        self
    }
    /// The norm.
    pub fn norm(&self) -> Norm {
        self.norm
    }
    /// The overshoot η.
    pub fn overshoot(&self) -> f64 {
        self.overshoot
    }
    /// The box.
    pub fn bounds(&self) -> &Bounds {
        &self.domain
    }
}

/// DeepFool on every row of `inputs` (`[n, input_dim]`) with its true label, on `threads`
/// worker threads: DeepFool (Moosavi-Dezfooli, Fawzi & Frossard, CVPR 2016, arXiv:1511.04599): a fast
/// minimal-perturbation attack by iterated linearisation, in L2 and L∞, multi-class.
///
/// # The algorithm (the paper's Algorithm 2, with §3.3 for the L∞ norm)
///
/// Let `ŷ` be the true label (the clean input is classified as `ŷ`; a misclassified input is
/// returned at once with `r = 0`). At the current iterate `x_i`, for every candidate class
/// `k ≠ ŷ`,
///
/// ```text
///     w'_k = ∇f_k(x_i) − ∇f_ŷ(x_i),     f'_k = f_k(x_i) − f_ŷ(x_i)   (< 0 while not fooled)
///     l̂    = argmin_k |f'_k| / ‖w'_k‖_q           (q = 2 for L2, q = 1 for L∞)
///     r_i  = |f'_l̂| / ‖w'_l̂‖₂² · w'_l̂             (L2)
///     r_i  = |f'_l̂| / ‖w'_l̂‖₁ · sign(w'_l̂)        (L∞)
/// ```
///
/// — the exact minimal step onto the nearest linearised decision boundary — and the total
/// perturbation `r̂ = Σ r_i` grows, `x_{i+1} = x₀ + r̂`, until the label changes. The paper
/// multiplies the final `r̂` by `1 + η` (overshoot, η = 0.02); here the label is checked after
/// every step at the overshot point `x₀ + (1 + η) r̂`, which is the point returned (for η = 0
/// this is exactly Algorithm 2). All `w'_k` of a row come from one batched forward + backward
/// call over `K − 1` copies of the row (each with seed `e_k − e_ŷ`), the check from one
/// batched forward pass.
///
/// # The box
///
/// The paper has no box. Here every iterate `x₀ + r̂` is **clipped** into the box (and `r̂`
/// replaced by the clipped perturbation, so the linearisation point is always feasible), and so
/// is the checked point `x₀ + (1 + η) r̂`.
/// By default the linearisation also respects the box
/// ([`DeepFoolConfig::with_box_masking`]): a coordinate at its bound whose gradient points
/// out of the box is removed from `w'_k` (norm and direction), so the step is the minimal one
/// on the face the iterate lies on — on MNIST, where most pixels sit at 0, this takes fewer
/// iterations to cross the boundary than clipping alone.
///
/// # Examples
///
/// ```
/// use intriguing::attack::{deepfool, DeepFoolConfig, Norm};
/// # use intriguing::classifier::{Classifier, LossSeed};
/// # use intriguing::Result;
/// # use ndarray::{array, Array2, ArrayView2, ArrayViewMut2};
/// # struct Linear(Array2<f64>);
/// # impl Classifier for Linear {
/// #     fn input_dim(&self) -> usize { self.0.ncols() }
/// #     fn num_classes(&self) -> usize { self.0.nrows() }
/// #     fn logits_into(&self, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) -> Result<()> {
/// #         out.assign(&x.dot(&self.0.t())); Ok(())
/// #     }
/// #     fn loss_gradient_into(&self, x: ArrayView2<f64>, seed: LossSeed<'_>,
/// #                           mut grad: ArrayViewMut2<f64>) -> Result<f64> {
/// #         let z = x.dot(&self.0.t());
/// #         let mut dz = Array2::zeros(z.raw_dim());
/// #         let loss = seed(z.view(), dz.view_mut());
/// #         grad.assign(&dz.dot(&self.0)); Ok(loss)
/// #     }
/// # }
/// // Two classes, z₁ − z₀ = 2(x₁ − x₀): the boundary is x₀ = x₁.
/// let model = Linear(array![[1.0, -1.0], [-1.0, 1.0]]);
/// let inputs = array![[0.7, 0.3]];                  // class 0, distance 0.4/√2 to the boundary
/// let results = deepfool(&model, inputs.view(), &[0], &DeepFoolConfig::default(), 1)?;
/// let row = results[0].as_ref().unwrap();
/// let adv = row.adversarial.as_ref().expect("fooled");
/// assert_eq!(adv.label, 1);
/// assert_eq!(row.iterations, 1);                    // exact in one step for a linear model
/// let exact = 0.4 / 2f64.sqrt();
/// assert!((row.distortion(Norm::L2).unwrap() - 1.02 * exact).abs() < 1e-12);
/// # Ok::<(), intriguing::Error>(())
/// ```
///
/// # Errors
///
/// A row's result is `Ok` with a verified adversarial (or none, when `max_iterations` did not
/// suffice or the linearisation got stuck at the box), or `Err` for that row alone: NaN/Inf
/// ([`Error::NonFinite`](crate::Error::NonFinite)), a point outside the box ([`Error::OutOfBounds`](crate::Error::OutOfBounds)), a label out of
/// range ([`Error::LabelOutOfRange`](crate::Error::LabelOutOfRange)), a model returning NaN ([`Error::ModelNonFinite`](crate::Error::ModelNonFinite)), an
/// error or panicking ([`Error::ModelPanicked`](crate::Error::ModelPanicked)). The outer `Err` is for the whole batch: a
/// wrong number of columns or labels, an invalid box, `threads == 0`. The results are the same
/// whatever the thread count.
pub fn deepfool<C: Classifier + ?Sized>(
    model: &C,
    inputs: ArrayView2<'_, f64>,
    labels: &[usize],
    config: &DeepFoolConfig,
    threads: usize,
) -> Result<Vec<Result<RowResult>>> {
    check_batch(model, inputs, labels, &config.domain, threads)?;
    Ok(run_rows(
        model,
        inputs,
        labels,
        &config.domain,
        threads,
        |rows| deepfool_chunk(model, inputs, labels, rows, config),
    ))
}

fn deepfool_chunk<C: Classifier + ?Sized>(
    model: &C,
    inputs: ArrayView2<'_, f64>,
    labels: &[usize],
    rows: &[usize],
    cfg: &DeepFoolConfig,
) -> Result<Vec<RowResult>> {
    let m = rows.len();
    let n = inputs.ncols();
    let k_all = model.num_classes();
    let x0 = gather(inputs, rows);
    let ys: Vec<usize> = rows.iter().map(|&i| labels[i]).collect();
    let mut z0 = Array2::zeros((m, k_all));
    logits_checked(model, x0.view(), z0.view_mut())?;
    let pred0: Vec<usize> = z0.rows().into_iter().map(argmax).collect();

    // Candidate classes per row: the `candidates` largest clean logits besides y.
    let kc = cfg.candidates.min(k_all - 1);
    let mut cands = vec![0usize; m * kc];
    for i in 0..m {
        let y = ys[i];
        let mut order: Vec<usize> = (0..k_all).filter(|&k| k != y).collect();
        order.sort_by(|&a, &b| z0[[i, b]].total_cmp(&z0[[i, a]]).then(a.cmp(&b)));
        cands[i * kc..(i + 1) * kc].copy_from_slice(&order[..kc]);
    }

    let mut x = x0.clone();
    let mut xo = x0.clone();
    let mut r_tot = Array2::<f64>::zeros((m, n));
    let mut iterations = vec![0usize; m];
    let mut grad_evals = vec![0usize; m];
    let mut predictions = vec![1usize; m];
    // 0: running, 1: fooled at x, 2: stuck / out of iterations.
    let mut state: Vec<u8> = (0..m).map(|i| u8::from(pred0[i] != ys[i])).collect();
    let already: Vec<bool> = state.iter().map(|&s| s == 1).collect();

    let mut stack = Array2::<f64>::zeros((m * kc, n));
    let mut sgrad = Array2::<f64>::zeros((m * kc, n));
    let mut slogits = Array2::<f64>::zeros((m * kc, k_all));
    let mut active: Vec<usize> = Vec::with_capacity(m);
    let mut dist = vec![0.0f64; kc];
    let scale = 1.0 + cfg.overshoot;

    for _ in 0..cfg.max_iterations {
        active.clear();
        active.extend((0..m).filter(|&i| state[i] == 0));
        if active.is_empty() {
            break;
        }
        let rows_n = active.len() * kc;
        for (a, &i) in active.iter().enumerate() {
            for c in 0..kc {
                stack.row_mut(a * kc + c).assign(&x.row(i));
            }
        }
        {
            let cands = &cands;
            let ys = &ys;
            let active = &active;
            vjp(
                model,
                stack.slice(ndarray::s![..rows_n, ..]),
                |r, _z, mut dz| {
                    let (a, c) = (r / kc, r % kc);
                    let i = active[a];
                    dz.fill(0.0);
                    dz[cands[i * kc + c]] = 1.0;
                    dz[ys[i]] -= 1.0;
                },
                head_mut(&mut slogits, rows_n),
                head_mut(&mut sgrad, rows_n),
            )?;
        }
        for (a, &i) in active.iter().enumerate() {
            grad_evals[i] += kc;
            let y = ys[i];
            iterations[i] += 1;
            // The nearest linearised boundary.
            let xi = x.row(i);
            for (c, d) in dist.iter_mut().enumerate() {
                let w = sgrad.row(a * kc + c);
                let f = slogits[[a * kc + c, cands[i * kc + c]]] - slogits[[a * kc + c, y]];
                let mut q = 0.0;
                for (j, (&wj, &xj)) in w.iter().zip(xi.iter()).enumerate() {
                    if cfg.box_masking && blocked(&cfg.domain, j, xj, wj) {
                        continue;
                    }
                    q += match cfg.norm {
                        Norm::L2 => wj * wj,
                        Norm::Linf => wj.abs(),
                    };
                }
                let qn = match cfg.norm {
                    Norm::L2 => q.sqrt(),
                    Norm::Linf => q,
                };
                *d = if qn > 0.0 && qn.is_finite() {
                    f.abs() / qn
                } else {
                    f64::INFINITY
                };
            }
            let mut best = 0;
            for c in 1..kc {
                if dist[c] < dist[best] {
                    best = c;
                }
            }
            if !dist[best].is_finite() {
                state[i] = 2;
                continue;
            }
            let w = sgrad.row(a * kc + best);
            let f = (slogits[[a * kc + best, cands[i * kc + best]]] - slogits[[a * kc + best, y]])
                .abs();
            let (mut q, mut q2) = (0.0, 0.0);
            for (j, (&wj, &xj)) in w.iter().zip(xi.iter()).enumerate() {
                if cfg.box_masking && blocked(&cfg.domain, j, xj, wj) {
                    continue;
                }
                q += wj.abs();
                q2 += wj * wj;
            }
            let coef = match cfg.norm {
                Norm::L2 => f / q2,
                Norm::Linf => f / q,
            };
            let mut rt = r_tot.row_mut(i);
            let mut xr = x.row_mut(i);
            let x0r = x0.row(i);
            for j in 0..n {
                let wj = w[j];
                if cfg.box_masking && blocked(&cfg.domain, j, xr[j], wj) {
                    continue;
                }
                rt[j] += match cfg.norm {
                    Norm::L2 => coef * wj,
                    Norm::Linf => coef * sign(wj),
                };
            }
            // The linearisation point x₀ + r̂ (clipped; r̂ := the clipped perturbation) and
            // the checked point x₀ + (1 + η) r̂ (clipped).
            for j in 0..n {
                xr[j] = x0r[j] + rt[j];
            }
            if let Some(xs) = xr.as_slice_mut() {
                clip_into(&cfg.domain, xs);
            }
            let mut xor = xo.row_mut(i);
            for j in 0..n {
                rt[j] = xr[j] - x0r[j];
                xor[j] = x0r[j] + scale * rt[j];
            }
            if let Some(xs) = xor.as_slice_mut() {
                clip_into(&cfg.domain, xs);
            }
        }
        // Check the overshot points: one batched forward pass.
        for (a, &i) in active.iter().enumerate() {
            stack.row_mut(a).assign(&xo.row(i));
        }
        let na = active.len();
        logits_checked(
            model,
            stack.slice(ndarray::s![..na, ..]),
            head_mut(&mut slogits, na),
        )?;
        for (a, &i) in active.iter().enumerate() {
            if state[i] != 0 {
                continue;
            }
            predictions[i] += 1;
            if argmax(slogits.row(a)) != ys[i] {
                state[i] = 1;
            }
        }
    }
    // Rows still running after the last step: out of iterations.
    for st in state.iter_mut() {
        if *st == 0 {
            *st = 2;
        }
    }
    // Re-verify every claimed success with a fresh forward pass.
    let fooled: Vec<usize> = (0..m).filter(|&i| state[i] == 1).collect();
    let mut verified = vec![None; m];
    if !fooled.is_empty() {
        let xc = gather(xo.view(), &fooled);
        let xorig = gather(x0.view(), &fooled);
        let yl: Vec<usize> = fooled.iter().map(|&i| ys[i]).collect();
        let v = verify_rows(model, xc.view(), xorig.view(), &yl, &cfg.domain, None)?;
        for (a, &i) in fooled.iter().enumerate() {
            predictions[i] += 1;
            verified[i] = v[a];
        }
    }
    Ok((0..m)
        .map(|i| {
            let origin = x0.row(i).to_vec();
            RowResult {
                label: ys[i],
                original_label: pred0[i],
                adversarial: verified[i]
                    .map(|label| Adversarial::new(xo.row(i).to_owned(), &origin, label, None)),
                already_adversarial: already[i],
                last_iterate: xo.row(i).to_owned(),
                iterations: iterations[i],
                gradient_evaluations: grad_evals[i],
                predictions: predictions[i],
            }
        })
        .collect())
}

/// `+1`, `−1` or `0` (unlike `f64::signum`, which is `1` at `0`).
#[inline]
pub(crate) fn sign(w: f64) -> f64 {
    if w > 0.0 {
        1.0
    } else if w < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// A coordinate at its bound whose (ascent) direction `w` points out of the box.
#[inline]
fn blocked(domain: &Bounds, j: usize, x: f64, w: f64) -> bool {
    let (lo, hi) = domain.interval_at(j);
    (x >= hi && w > 0.0) || (x <= lo && w < 0.0)
}
