//! The box-constrained minimal-perturbation attack of Szegedy et al. (2014), §4.1.
//!
//! For a classifier `f`, an input `x` and a target label `l`, the paper looks for the
//! smallest `r` with `f(x + r) = l` and `x + r` inside the box `[0, 1]ⁿ`. The exact problem
//! is hard; the paper approximates it by minimising, for a penalty weight `c > 0`,
//!
//! ```text
//!     c · |r| + loss_f(x + r, l)    subject to  x + r ∈ [lower, upper]ⁿ
//! ```
//!
//! with box-constrained L-BFGS ([`optim::Lbfgsb`](crate::optim::Lbfgsb)), and searching
//! over `c`. Large `c` favours small `r` and eventually fails to reach `l`; so the smallest
//! distortion comes from the **largest** `c` whose run still succeeds (the paper's "minimum
//! c" wording is inverted).
//!
//! # How the search works
//!
//! - The optimisation variable is `x' = x + r` itself; the box is the solver's bounds (the
//!   box is never enforced by clipping afterwards), the penalty is on `x' − x`.
//! - Penalty ([`Penalty`]): the paper's `|r|` = `‖r‖₂`, smoothed at 0 as
//!   `sqrt(‖r‖² + δ²) − δ` (δ = 1e-6 by default), or `‖r‖₂²` (the default, chosen by
//!   measurement: the same distortion for fewer gradient evaluations, see `docs/attack.md`).
//! - After the search, the best point is pulled back towards `x` along the segment from `x`
//!   (batched predictions only, [`AttackConfig::with_refinement`]): the cross-entropy loss
//!   makes every run overshoot the decision boundary slightly.
//! - c search: from an initial c (estimated from `‖∇loss(x)‖`, see [`InitialC`]), grow or
//!   shrink c geometrically until a success and a failure bracket it, then bisect in log space
//!   until `c_fail / c_success ≤ 1 + tol` or the step budget is spent. Each run starts from
//!   the solution of the best successful run so far (warm start), or of the latest failure.
//! - Every point the optimizer evaluates whose logits already reach the target is
//!   remembered if it is the closest so far, so a run whose end point fails can still
//!   contribute. The best verified point over **all** runs is returned, never just the last.
//! - A candidate counts only after verification (one place, used for every candidate): the
//!   model is re-evaluated at `x + r`, the arg-max must satisfy the target, and `x + r` must be
//!   finite and inside the box.
//!
//! # Targets ([`Target`])
//!
//! [`Target`] is the one public notion of what an attack aims at; [`AttackObjective`] takes
//! its single-objective kinds.
//!
//! - `Label(l)`: softmax cross-entropy of `l` (the paper).
//! - `Untargeted { true_label: y }`: any label but `y`, with the loss
//!   `−log Σ_{j≠y} softmax_j(z) = LSE(z) − LSE(z without y) ≥ 0` (bounded below, unlike
//!   `−CE(z, y)`).
//! - `Nearest { true_label: y }`: the smallest perturbation over all labels `≠ y` (one
//!   targeted search per label; the paper's "minimum distortion"). Labels are ranked by the
//!   linearised distance `(z_y − z_l) / ‖∇(z_y − z_l)‖` and the most promising ones searched
//!   ([`AttackConfig::with_nearest_candidates`]: 5 by default, `usize::MAX` for all); a
//!   label more than 10% behind the best after bracketing skips its bisection
//!   ([`AttackConfig::with_nearest_pruning`]).
//!
//! # The minimal-perturbation family
//!
//! Beside the paper's attack, on the same [`Classifier`] trait and batch-first: [`deepfool`]
//! (Moosavi-Dezfooli et al. 2016, L2/L∞, minimal perturbation), [`fgsm`] (Goodfellow et al.
//! 2015) and [`pgd`] (Madry et al. 2018) for the ε-bounded question, with one [`RowResult`]
//! per row (success flag, re-verified adversarial, work counters); robust accuracy against ε
//! from minimal distortions ([`MinimalDistortions`]) or per ε ([`bounded_accuracy_curve`]).
//! The c search's loss can be the Carlini–Wagner margin ([`AttackLoss::Margin`]).
//!
//! # Many rows
//!
//! [`attack_batch`] runs the rows independently on worker threads;
//! [`attack_batch_lockstep`] runs the same searches with the rows in lockstep, evaluating the
//! model once per step on every row that waits for an evaluation (a matrix–matrix product
//! instead of one matrix–vector product per row), and the predictions that verify and refine
//! the rows' points in batched passes too: 2.7× faster than per row on FC500-150-10, 1.2× on
//! FC100-100-10 (256 rows, one thread, `docs/attack.md`).
//!
//! # Bad input
//!
//! NaN/Inf in `x`, a wrong length, `x` outside the box, a label out of range and invalid
//! settings are typed [`crate::Error`] values; a model that returns NaN or errors during the
//! search gives a failed [`AttackResult`] with [`FailureReason::ModelFailure`] (or keeps the
//! success verified before). [`attack_batch`] and [`attack_batch_lockstep`] isolate rows
//! from each other.

mod batch;
mod config;
mod deepfool;
mod gradient;
mod label_bound;
mod lockstep;
mod objective;
mod result;
mod robust;
mod rows;
mod search;

pub use batch::{
    BatchOptions, BatchProgress, ProgressFn, attack_batch, attack_batch_with, default_threads,
};
pub use config::{AttackConfig, AttackLoss, InitialC, MAX_REFINEMENT_POINTS, Penalty};
pub use label_bound::LabelBound;
pub use lockstep::{DEFAULT_LOCKSTEP_BATCH, attack_batch_lockstep};
pub use objective::AttackObjective;
pub use result::{Adversarial, AttackResult, CBracket, FailureReason, Target};

pub use deepfool::{DeepFoolConfig, deepfool};
pub use gradient::{FgsmConfig, PgdConfig, StepSize, fgsm, pgd};
pub use robust::{BoundedAttack, MinimalDistortions, bounded_accuracy_curve};
pub use rows::{Norm, RowResult};

use crate::classifier::ClassifierExt;
use crate::classifier::{Classifier, argmax};
use crate::error::{Error, Result, check_finite};
use ndarray::ArrayView1;

/// Checks `x` against the model (length, finite) and the box; the model has ≥ 2 classes.
/// Called once per attack.
pub(crate) fn validate_input<C: Classifier + ?Sized>(
    model: &C,
    x: ArrayView1<'_, f64>,
    config: &AttackConfig,
) -> Result<()> {
    let n = model.input_dim();
    if x.len() != n {
        return Err(Error::shape("attack input", n, x.len()));
    }
    if model.num_classes() < 2 {
        return Err(Error::parameter(
            "model num_classes",
            model.num_classes(),
            ">= 2 for an attack",
        ));
    }
    check_finite(x.iter(), "attack input")?;
    config.bounds.check_fits(n, "attack box")?;
    match x.as_slice() {
        Some(xs) => config.bounds.check_contains(xs),
        None => config.bounds.check_contains(&x.to_vec()),
    }
}

/// Finds a small perturbation `r` such that `model(x + r)` satisfies `target` and `x + r`
/// lies in the configured box — the paper's box-constrained L-BFGS attack with a c search.
///
/// Works for any [`Classifier`], generic or `&dyn`. Returns `Err` for invalid input (wrong
/// length, NaN/Inf, `x` outside the box, label out of range, a model returning NaN logits at
/// `x`); a search that finds nothing returns `Ok` with `success() == false` and the reason.
/// When `x` already satisfies the target, the result is a success with `r = 0` and
/// `already_adversarial = true`.
///
/// # Examples
///
/// A linear two-class model `z₁ − z₀ = w·x + b`: the minimal L2 perturbation has the
/// closed form `|w·x + b| / ‖w‖`.
///
/// ```
/// use intriguing::attack::{find_minimal_perturbation, AttackConfig, Target};
/// use intriguing::classifier::{Classifier, ClassifierExt, LogitsLoss};
/// use intriguing::Result;
/// use ndarray::{array, Array1, Array2, ArrayView2, ArrayViewMut2};
///
/// struct TwoClass { w: Array1<f64>, b: f64 } // logits (0, w·x + b)
/// impl Classifier for TwoClass {
///     fn input_dim(&self) -> usize { self.w.len() }
///     fn num_classes(&self) -> usize { 2 }
///     fn logits_into(&self, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) -> Result<()> {
///         for (i, row) in x.rows().into_iter().enumerate() {
///             out[[i, 0]] = 0.0;
///             out[[i, 1]] = row.dot(&self.w) + self.b;
///         }
///         Ok(())
///     }
///     fn loss_gradient_into(&self, x: ArrayView2<f64>, seed: LogitsLoss<'_>,
///                           mut grad: ArrayViewMut2<f64>) -> Result<f64> {
///         let mut z = Array2::zeros((x.nrows(), 2));
///         self.logits_into(x, z.view_mut())?;
///         let mut dz = Array2::zeros((x.nrows(), 2));
///         let loss = seed(z.view(), dz.view_mut());
///         for (i, mut g) in grad.rows_mut().into_iter().enumerate() {
///             g.assign(&(&self.w * dz[[i, 1]]));
///         }
///         Ok(loss)
///     }
/// }
///
/// let model = TwoClass { w: array![0.6, -0.8, 0.0], b: 0.1 };
/// let x = array![0.2, 0.6, 0.5];                           // w·x + b = −0.26: class 0
/// let result = find_minimal_perturbation(&model, x.view(), Target::Label(1),
///                                        &AttackConfig::default())?;
/// let adv = result.adversarial.as_ref().expect("reachable");
/// assert_eq!(model.predict(adv.input.view())?, 1);
/// let exact = 0.26 / 1.0;                                  // |w·x + b| / ‖w‖
/// assert!(adv.l2 >= exact * (1.0 - 1e-9) && adv.l2 <= exact * 1.01, "{}", adv.l2);
/// # Ok::<(), intriguing::Error>(())
/// ```
///
/// The three modes on a small random MLP: a given label ([`Target::Label`]), any other
/// label ([`Target::Untargeted`]), and the smallest perturbation over all labels
/// ([`Target::Nearest`], one targeted search per label):
///
/// ```
/// use intriguing::attack::{find_minimal_perturbation, AttackConfig, Target};
/// use intriguing::models::{Activation, Mlp};
/// use intriguing::ClassifierExt;
/// use ndarray::Array1;
///
/// let model = Mlp::random(&[20, 16, 4], Activation::Tanh, 7)?;
/// let x = Array1::from_shape_fn(20, |i| (i % 5) as f64 / 4.0);
/// let y = model.predict(x.view())?;
/// let cfg = AttackConfig::default();
///
/// let other = (y + 1) % 4;
/// let targeted = find_minimal_perturbation(&model, x.view(), Target::Label(other), &cfg)?;
/// let untargeted =
///     find_minimal_perturbation(&model, x.view(), Target::Untargeted { true_label: y }, &cfg)?;
/// let nearest =
///     find_minimal_perturbation(&model, x.view(), Target::Nearest { true_label: y }, &cfg)?;
///
/// for r in [&targeted, &untargeted, &nearest] {
///     let adv = r.adversarial.as_ref().expect("a random MLP is easy to fool");
///     assert!(r.target.is_reached_by(model.predict(adv.input.view())?)); // re-verified
///     println!("{:?}: label {} -> {}, ‖r‖₂ = {:.4}, {} gradient evaluations",
///              r.target, y, adv.label, adv.l2, r.gradient_evaluations);
/// }
/// assert_eq!(targeted.adversarial_label(), Some(other));
/// assert_ne!(nearest.adversarial_label(), Some(y));
/// // Nearest searches every label (4 classes: at most 3 targeted searches), so it costs more
/// // than one targeted search.
/// assert!(nearest.gradient_evaluations > targeted.gradient_evaluations);
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn find_minimal_perturbation<C: Classifier + ?Sized>(
    model: &C,
    x: ArrayView1<'_, f64>,
    target: Target,
    config: &AttackConfig,
) -> Result<AttackResult> {
    match clean_prediction(model, x, target, config)? {
        Clean::AlreadyReached(result) => Ok(*result),
        Clean::Attack(original_label) => {
            search::run_attack(model, x, target, original_label, config)
        }
    }
}

/// What the clean input needs: nothing (it already satisfies the target) or an attack.
pub(crate) enum Clean {
    AlreadyReached(Box<AttackResult>),
    Attack(usize),
}

/// Validates `x` and the target's label, classifies `x` (one prediction) and returns the
/// result when `x` already satisfies the target.
pub(crate) fn clean_prediction<C: Classifier + ?Sized>(
    model: &C,
    x: ArrayView1<'_, f64>,
    target: Target,
    config: &AttackConfig,
) -> Result<Clean> {
    clean_prediction_given(model, x, target, config, None)
}

/// [`clean_prediction`] with the prediction of `x` already made, when `predicted` is `Some`
/// (the lockstep driver predicts the rows that join a batch together); the same checks.
pub(crate) fn clean_prediction_given<C: Classifier + ?Sized>(
    model: &C,
    x: ArrayView1<'_, f64>,
    target: Target,
    config: &AttackConfig,
    predicted: Option<usize>,
) -> Result<Clean> {
    validate_input(model, x, config)?;
    model.check_label(target.named_label())?;
    let original_label = match predicted {
        Some(label) => label,
        None => {
            let xs = x
                .to_shape((1, x.len()))
                .map_err(|e| Error::shape("attack input", "1-D", e))?;
            argmax(model.logits(xs.view())?.row(0))
        }
    };
    if target.is_reached_by(original_label) {
        return Ok(Clean::AlreadyReached(Box::new(AttackResult {
            target,
            original_label,
            adversarial: Some(Adversarial::new(
                x.to_owned(),
                &x.to_vec(),
                original_label,
                None,
            )),
            failure: None,
            already_adversarial: true,
            c_bracket: CBracket::default(),
            runs: 0,
            gradient_evaluations: 0,
            predictions: 1,
            labels_searched: 0,
        })));
    }
    Ok(Clean::Attack(original_label))
}
