//! The ε-bounded gradient attacks: FGSM (Goodfellow, Shlens & Szegedy 2015) and PGD (Madry et
//! al. 2018), in L∞ and L2. See [`fgsm`](super::fgsm) and [`pgd`](super::pgd).

use super::deepfool::sign;
use super::result::Adversarial;
use super::rows::{
    Norm, RowResult, ce_seed, check_batch, clip_into, gather, head_mut, logits_checked, row_rng,
    run_rows, verify_rows, vjp,
};
use crate::classifier::{Classifier, argmax};
use crate::error::{Error, Result};
use crate::optim::Bounds;
use crate::validate;
use ndarray::{Array2, ArrayView2, ArrayViewMut1};
use rand::RngExt;

/// `ε` finite and `≥ 0`.
fn check_eps(eps: f64) -> Result<f64> {
    validate::non_negative("epsilon", eps)
}

fn uniform_box() -> Bounds {
    Bounds::unit_interval()
}

/// Settings of [`fgsm`]: the norm and the box.
///
/// ```
/// use intriguing::attack::{FgsmConfig, Norm};
/// let cfg = FgsmConfig::default().with_norm(Norm::L2).with_box(-1.0, 1.0)?;
/// assert!(FgsmConfig::default().with_box(1.0, 0.0).is_err());
/// # let _ = cfg;
/// # Ok::<(), intriguing::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FgsmConfig {
    norm: Norm,
    domain: Bounds,
}

impl Default for FgsmConfig {
    /// L∞ (the paper's sign step), box `[0, 1]`.
    fn default() -> Self {
        FgsmConfig {
            norm: Norm::Linf,
            domain: uniform_box(),
        }
    }
}

impl FgsmConfig {
    /// L∞: the step `ε·sign(∇)`; L2: `ε·∇/‖∇‖₂` (the "fast gradient method").
    pub fn with_norm(mut self, norm: Norm) -> Self {
        self.norm = norm;
        self
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
    /// The norm.
    pub fn norm(&self) -> Norm {
        self.norm
    }
    /// The box.
    pub fn bounds(&self) -> &Bounds {
        &self.domain
    }
}

/// The PGD step size.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StepSize {
    /// `α = factor · ε`.
    Relative(f64),
    /// A fixed `α`.
    Absolute(f64),
}

/// Settings of [`pgd`].
///
/// ```
/// use intriguing::attack::{PgdConfig, Norm};
/// let cfg = PgdConfig::default()
///     .with_norm(Norm::L2)
///     .with_steps(100)?
///     .with_relative_step(0.05)?
///     .with_seed(7);
/// assert!(PgdConfig::default().with_steps(0).is_err());
/// assert!(PgdConfig::default().with_step_size(-1.0).is_err());
/// # let _ = cfg;
/// # Ok::<(), intriguing::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "PgdConfigRepr")
)]
pub struct PgdConfig {
    norm: Norm,
    steps: usize,
    step: Option<StepSize>,
    random_start: bool,
    seed: u64,
    early_stop: bool,
    domain: Bounds,
}

/// The fields of a serialised [`PgdConfig`], checked by its setters on the way in.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PgdConfigRepr {
    norm: Norm,
    steps: usize,
    step: Option<StepSize>,
    random_start: bool,
    seed: u64,
    early_stop: bool,
    domain: Bounds,
}

#[cfg(feature = "serde")]
impl TryFrom<PgdConfigRepr> for PgdConfig {
    type Error = crate::Error;
    fn try_from(r: PgdConfigRepr) -> Result<Self> {
        let cfg = PgdConfig::default()
            .with_norm(r.norm)
            .with_steps(r.steps)?
            .with_random_start(r.random_start)
            .with_seed(r.seed)
            .with_early_stop(r.early_stop)
            .with_bounds(r.domain);
        Ok(match r.step {
            None => cfg,
            Some(StepSize::Relative(f)) => cfg.with_relative_step(f)?,
            Some(StepSize::Absolute(a)) => cfg.with_step_size(a)?,
        })
    }
}

impl Default for PgdConfig {
    /// L∞, 40 steps of `α = 2.5 ε / steps` (Madry et al.'s rule), random start on, seed 0,
    /// early stop on, box `[0, 1]`.
    fn default() -> Self {
        PgdConfig {
            norm: Norm::Linf,
            steps: 40,
            step: None,
            random_start: true,
            seed: 0,
            early_stop: true,
            domain: uniform_box(),
        }
    }
}

impl PgdConfig {
    /// L∞: steps `α·sign(∇)`, projection onto `‖δ‖∞ ≤ ε`; L2: steps `α·∇/‖∇‖₂`, projection
    /// onto `‖δ‖₂ ≤ ε`.
    pub fn with_norm(mut self, norm: Norm) -> Self {
        self.norm = norm;
        self
    }
    /// Number of gradient steps (≥ 1).
    pub fn with_steps(mut self, n: usize) -> Result<Self> {
        self.steps = validate::at_least_one("steps", n)?;
        Ok(self)
    }
    /// `α = factor · ε` (factor > 0; default `2.5 / steps`).
    pub fn with_relative_step(mut self, factor: f64) -> Result<Self> {
        self.step = Some(StepSize::Relative(validate::positive(
            "relative step size",
            factor,
        )?));
        Ok(self)
    }
    /// A fixed step `α > 0`.
    pub fn with_step_size(mut self, alpha: f64) -> Result<Self> {
        self.step = Some(StepSize::Absolute(validate::positive("step size", alpha)?));
        Ok(self)
    }
    /// Start from a uniform random point of the ε-ball (clipped into the box) instead of
    /// the clean input.
    pub fn with_random_start(mut self, on: bool) -> Self {
        self.random_start = on;
        self
    }
    /// Seed of the random starts (each row draws from its own stream, keyed by its index).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Stop a row at the first iterate that is misclassified (true, default) or run every
    /// step and return the last misclassified iterate (false).
    pub fn with_early_stop(mut self, on: bool) -> Self {
        self.early_stop = on;
        self
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
    /// The norm.
    pub fn norm(&self) -> Norm {
        self.norm
    }
    /// The number of steps.
    pub fn steps(&self) -> usize {
        self.steps
    }
    /// The step size `α` for a given ε.
    pub fn step_size(&self, eps: f64) -> f64 {
        match self.step {
            None => 2.5 * eps / self.steps as f64,
            Some(StepSize::Relative(f)) => f * eps,
            Some(StepSize::Absolute(a)) => a,
        }
    }
    /// The box.
    pub fn bounds(&self) -> &Bounds {
        &self.domain
    }
}

/// Writes the unit ascent direction of `g` in `norm` into `g` (sign for L∞, `g/‖g‖₂` for L2;
/// zero stays zero).
fn ascent_direction(norm: Norm, mut g: ArrayViewMut1<'_, f64>) {
    match norm {
        Norm::Linf => g.mapv_inplace(sign),
        Norm::L2 => {
            let n = g.iter().map(|v| v * v).sum::<f64>().sqrt();
            if n > 0.0 {
                g.mapv_inplace(|v| v / n);
            }
        }
    }
}

/// Projects `x` onto `{‖x − x0‖ ≤ ε}` and then clips it into the box. Clipping only moves a
/// coordinate towards `x0`'s side (`x0` is inside the box), so the result stays in the ball.
fn project(norm: Norm, eps: f64, domain: &Bounds, x: &mut [f64], x0: &[f64]) {
    match norm {
        Norm::Linf => {
            for (v, &o) in x.iter_mut().zip(x0) {
                *v = v.clamp(o - eps, o + eps);
            }
        }
        Norm::L2 => {
            let d = x
                .iter()
                .zip(x0)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt();
            if d > eps {
                let f = eps / d;
                for (v, &o) in x.iter_mut().zip(x0) {
                    *v = o + (*v - o) * f;
                }
            }
        }
    }
    clip_into(domain, x);
}

/// FGSM: one step `x + ε·sign(∇ₓ CE(x, y))` (L∞) or `x + ε·∇/‖∇‖₂` (L2), clipped into the box,
/// for every row of `inputs` with its true label — the ε-bounded question "is there an
/// adversarial within ε?" answered by the fastest attack.
///
/// Each row's [`RowResult::success`] is the answer for that row, re-verified: the stepped
/// point is re-classified (≠ label), finite, inside the box and within ε. A misclassified
/// clean input is a success with `r = 0` (as in foolbox). One gradient row and one or two
/// prediction rows per input.
///
/// Errors: ε negative, NaN or infinite ([`Error::InvalidParameter`]); the rest as for
/// [`deepfool`](super::deepfool) (per-row `Err` for bad rows and model failures).
///
/// # Examples
///
/// On a linear model FGSM is the sign step (closed form):
///
/// ```
/// use intriguing::attack::{fgsm, FgsmConfig};
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
/// let model = Linear(array![[1.0, -1.0], [-1.0, 1.0]]); // class 1 iff x₁ > x₀
/// let inputs = array![[0.6, 0.5], [0.9, 0.1]];
/// let res = fgsm(&model, inputs.view(), &[0, 0], 0.1, &FgsmConfig::default(), 1)?;
/// let r0 = res[0].as_ref().unwrap();
/// assert!(r0.success());                                   // 0.6 − 0.1 < 0.5 + 0.1
/// assert_eq!(r0.last_iterate, array![0.5, 0.6]);           // x + ε·sign(w₁ − w₀)
/// assert!(!res[1].as_ref().unwrap().success());            // 0.8 > 0.2: not within 0.1
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn fgsm<C: Classifier + ?Sized>(
    model: &C,
    inputs: ArrayView2<'_, f64>,
    labels: &[usize],
    eps: f64,
    config: &FgsmConfig,
    threads: usize,
) -> Result<Vec<Result<RowResult>>> {
    let eps = check_eps(eps)?;
    check_batch(model, inputs, labels, &config.domain, threads)?;
    let norm = config.norm;
    let domain = &config.domain;
    Ok(run_rows(model, inputs, labels, domain, threads, |rows| {
        let m = rows.len();
        let k = model.num_classes();
        let x0 = gather(inputs, rows);
        let ys: Vec<usize> = rows.iter().map(|&i| labels[i]).collect();
        let mut z = Array2::zeros((m, k));
        let mut g = Array2::zeros((m, inputs.ncols()));
        vjp(
            model,
            x0.view(),
            |i, z, dz| ce_seed(z, ys[i], dz),
            z.view_mut(),
            g.view_mut(),
        )?;
        let pred0: Vec<usize> = z.rows().into_iter().map(argmax).collect();
        let mut x = x0.clone();
        for i in 0..m {
            if pred0[i] == ys[i] {
                let mut gi = g.row_mut(i);
                ascent_direction(norm, gi.view_mut());
                let mut xi = x.row_mut(i);
                xi.scaled_add(eps, &gi);
                if let (Some(xs), Some(os)) = (xi.as_slice_mut(), x0.row(i).to_slice()) {
                    project(norm, eps, domain, xs, os);
                }
            }
        }
        finish(
            model,
            &x0,
            &x,
            &ys,
            &pred0,
            domain,
            norm,
            eps,
            &vec![1; m],
            &vec![0; m],
            &(0..m)
                .map(|i| usize::from(pred0[i] == ys[i]))
                .collect::<Vec<_>>(),
        )
    }))
}

/// PGD: projected gradient ascent on the cross-entropy of the true label inside the ε-ball
/// (∩ the box), from a seeded random start — the ε-bounded question "is there an adversarial
/// within ε?" answered by a strong first-order attack (Madry et al. 2018).
///
/// Per step (`α` = [`PgdConfig::step_size`]): L∞ `x ← Π(x + α·sign(∇))`, L2
/// `x ← Π(x + α·∇/‖∇‖₂)`, `Π` the projection onto the ε-ball followed by clipping into the box
/// (clipping keeps the point in the ball). The random start is uniform in the L∞ cube, or
/// uniform in the L2 ball (Gaussian direction, radius `ε·u^{1/n}`), then clipped; each row
/// draws from its own ChaCha8 stream (seed, row index), so the results do not depend on the
/// thread count. [`RowResult::success`] is re-verified (re-classified, finite, in the box,
/// within ε); a misclassified clean input is a success with `r = 0`.
///
/// Errors: ε negative, NaN or infinite; otherwise as [`fgsm`].
///
/// # Examples
///
/// ```
/// use intriguing::attack::{pgd, PgdConfig};
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
/// let model = Linear(array![[1.0, -1.0], [-1.0, 1.0]]);
/// let inputs = array![[0.6, 0.5]];
/// let cfg = PgdConfig::default().with_seed(1);
/// let res = pgd(&model, inputs.view(), &[0], 0.1, &cfg, 1)?;
/// let row = res[0].as_ref().unwrap();
/// assert!(row.success() && row.adversarial.as_ref().unwrap().linf <= 0.1);
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn pgd<C: Classifier + ?Sized>(
    model: &C,
    inputs: ArrayView2<'_, f64>,
    labels: &[usize],
    eps: f64,
    config: &PgdConfig,
    threads: usize,
) -> Result<Vec<Result<RowResult>>> {
    let eps = check_eps(eps)?;
    check_batch(model, inputs, labels, &config.domain, threads)?;
    let alpha = config.step_size(eps);
    if !alpha.is_finite() {
        return Err(Error::parameter("PGD step size", alpha, "finite"));
    }
    let domain = &config.domain;
    Ok(run_rows(model, inputs, labels, domain, threads, |rows| {
        pgd_chunk(model, inputs, labels, rows, eps, alpha, config)
    }))
}

fn pgd_chunk<C: Classifier + ?Sized>(
    model: &C,
    inputs: ArrayView2<'_, f64>,
    labels: &[usize],
    rows: &[usize],
    eps: f64,
    alpha: f64,
    cfg: &PgdConfig,
) -> Result<Vec<RowResult>> {
    let (m, n, k) = (rows.len(), inputs.ncols(), model.num_classes());
    let norm = cfg.norm;
    let domain = &cfg.domain;
    let x0 = gather(inputs, rows);
    let ys: Vec<usize> = rows.iter().map(|&i| labels[i]).collect();
    let mut z = Array2::zeros((m, k));
    logits_checked(model, x0.view(), z.view_mut())?;
    let pred0: Vec<usize> = z.rows().into_iter().map(argmax).collect();
    let mut x = x0.clone();
    let mut iterations = vec![0usize; m];
    let mut grad_evals = vec![0usize; m];
    let mut predictions = vec![1usize; m];
    // Rows still stepping; a row whose clean input is misclassified never steps.
    let mut running: Vec<bool> = (0..m).map(|i| pred0[i] == ys[i]).collect();
    // The last misclassified iterate of each row (without early stop).
    let mut hit = x0.clone();
    let mut has_hit = vec![false; m];
    if cfg.random_start && eps > 0.0 {
        for (i, &row) in rows.iter().enumerate() {
            if !running[i] {
                continue;
            }
            let mut rng = row_rng(cfg.seed, row);
            let mut xi = x.row_mut(i);
            match norm {
                Norm::Linf => {
                    for v in xi.iter_mut() {
                        *v += eps * (2.0 * rng.random::<f64>() - 1.0);
                    }
                }
                Norm::L2 => {
                    let mut d = vec![0.0; n];
                    for pair in d.chunks_mut(2) {
                        // Box–Muller.
                        let u1: f64 = 1.0 - rng.random::<f64>();
                        let u2: f64 = rng.random::<f64>();
                        let rad = (-2.0 * u1.ln()).sqrt();
                        let th = std::f64::consts::TAU * u2;
                        pair[0] = rad * th.cos();
                        if pair.len() > 1 {
                            pair[1] = rad * th.sin();
                        }
                    }
                    let dn = d.iter().map(|v| v * v).sum::<f64>().sqrt();
                    let radius = eps * rng.random::<f64>().powf(1.0 / n as f64);
                    if dn > 0.0 {
                        for (v, di) in xi.iter_mut().zip(&d) {
                            *v += radius * di / dn;
                        }
                    }
                }
            }
            if let (Some(xs), Some(os)) = (xi.as_slice_mut(), x0.row(i).to_slice()) {
                project(norm, eps, domain, xs, os);
            }
        }
    }
    let mut act: Vec<usize> = Vec::with_capacity(m);
    let mut buf = Array2::<f64>::zeros((m, n));
    let mut g = Array2::<f64>::zeros((m, n));
    let mut zb = Array2::<f64>::zeros((m, k));
    for _ in 0..cfg.steps {
        act.clear();
        act.extend((0..m).filter(|&i| running[i]));
        if act.is_empty() {
            break;
        }
        for (a, &i) in act.iter().enumerate() {
            buf.row_mut(a).assign(&x.row(i));
        }
        let na = act.len();
        {
            let act = &act;
            let ys = &ys;
            vjp(
                model,
                buf.slice(ndarray::s![..na, ..]),
                |a, z, dz| ce_seed(z, ys[act[a]], dz),
                head_mut(&mut zb, na),
                head_mut(&mut g, na),
            )?;
        }
        for (a, &i) in act.iter().enumerate() {
            grad_evals[i] += 1;
            if argmax(zb.row(a)) != ys[i] {
                hit.row_mut(i).assign(&x.row(i));
                has_hit[i] = true;
                if cfg.early_stop {
                    running[i] = false;
                    continue;
                }
            }
            iterations[i] += 1;
            let mut gi = g.row_mut(a);
            ascent_direction(norm, gi.view_mut());
            let mut xi = x.row_mut(i);
            xi.scaled_add(alpha, &gi);
            if let (Some(xs), Some(os)) = (xi.as_slice_mut(), x0.row(i).to_slice()) {
                project(norm, eps, domain, xs, os);
            }
        }
    }
    // The last iterate of rows that stepped to the end: one prediction.
    let pending: Vec<usize> = (0..m).filter(|&i| running[i]).collect();
    if !pending.is_empty() {
        let xp = gather(x.view(), &pending);
        let mut zp = Array2::zeros((pending.len(), k));
        logits_checked(model, xp.view(), zp.view_mut())?;
        for (a, &i) in pending.iter().enumerate() {
            predictions[i] += 1;
            if argmax(zp.row(a)) != ys[i] {
                hit.row_mut(i).assign(&x.row(i));
                has_hit[i] = true;
            }
        }
    }
    // The candidate of each row: its last misclassified iterate, else the last iterate.
    let mut cand = x.clone();
    for (i, &h) in has_hit.iter().enumerate() {
        if h {
            cand.row_mut(i).assign(&hit.row(i));
        }
    }
    let mut out = finish(
        model,
        &x0,
        &cand,
        &ys,
        &pred0,
        domain,
        norm,
        eps,
        &grad_evals,
        &predictions,
        &iterations,
    )?;
    for (o, i) in out.iter_mut().zip(0..m) {
        o.last_iterate = x.row(i).to_owned();
    }
    Ok(out)
}

/// Verifies the candidates (rows whose clean input is misclassified are successes with
/// `r = 0`) and assembles the results.
#[allow(clippy::too_many_arguments)]
fn finish<C: Classifier + ?Sized>(
    model: &C,
    x0: &Array2<f64>,
    cand: &Array2<f64>,
    ys: &[usize],
    pred0: &[usize],
    domain: &Bounds,
    norm: Norm,
    eps: f64,
    grad_evals: &[usize],
    predictions: &[usize],
    iterations: &[usize],
) -> Result<Vec<RowResult>> {
    let m = ys.len();
    let v = verify_rows(model, cand.view(), x0.view(), ys, domain, Some((norm, eps)))?;
    Ok((0..m)
        .map(|i| {
            let already = pred0[i] != ys[i];
            let origin = x0.row(i).to_vec();
            let adversarial = if already {
                Some(Adversarial::new(
                    x0.row(i).to_owned(),
                    &origin,
                    pred0[i],
                    None,
                ))
            } else {
                v[i].map(|l| Adversarial::new(cand.row(i).to_owned(), &origin, l, None))
            };
            RowResult {
                label: ys[i],
                original_label: pred0[i],
                adversarial,
                already_adversarial: already,
                last_iterate: cand.row(i).to_owned(),
                iterations: iterations[i],
                gradient_evaluations: grad_evals[i],
                predictions: predictions[i] + 1,
            }
        })
        .collect())
}
