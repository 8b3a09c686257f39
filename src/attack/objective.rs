//! [`AttackObjective`]: `c·pen(x' − x) + loss(x', goal)` for one fixed c, value and gradient
//! from one forward + backward pass of the model.

use super::config::{AttackConfig, AttackLoss, Penalty};
use super::result::Target;
use crate::classifier::ClassifierExt;
use crate::classifier::{Classifier, argmax, logsumexp, softmax_cross_entropy};
use crate::error::{Error, Result};
use crate::optim::{Bounds, Objective};
use crate::validate;
use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};
use std::cell::RefCell;

/// What one objective aims at (the single-objective kinds of [`Target`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Goal {
    /// Exactly this label (loss: softmax cross-entropy of the label).
    Label(usize),
    /// Any label but this one (loss: `−log Σ_{j≠y} softmax_j(z) = LSE(z) − LSE(z without y)`,
    /// bounded below by 0, unlike `−CE(z, y)`).
    AnyBut(usize),
}

impl Goal {
    /// True when a prediction `label` satisfies the goal.
    pub fn is_reached(self, label: usize) -> bool {
        match self {
            Goal::Label(l) => label == l,
            Goal::AnyBut(y) => label != y,
        }
    }

    /// The label inside the goal (the target, or the label to avoid), for range checks.
    pub(crate) fn named_label(self) -> usize {
        match self {
            Goal::Label(l) | Goal::AnyBut(l) => l,
        }
    }

    /// The goal of a single-objective target; `None` for [`Target::Nearest`].
    pub(crate) fn of(target: Target) -> Option<Goal> {
        match target {
            Target::Label(l) => Some(Goal::Label(l)),
            Target::Untargeted { true_label } => Some(Goal::AnyBut(true_label)),
            Target::Nearest { .. } => None,
        }
    }

    /// The goal of a single-objective target; [`Error::InvalidParameter`] (name `"target"`)
    /// for [`Target::Nearest`].
    pub(crate) fn single(target: Target) -> Result<Goal> {
        Goal::of(target).ok_or_else(|| {
            Error::parameter(
                "target",
                format!("{target:?}"),
                "Target::Label or Target::Untargeted (Nearest searches one objective per label)",
            )
        })
    }

    /// The goal as a [`Target`].
    pub(crate) fn target(self) -> Target {
        match self {
            Goal::Label(l) => Target::Label(l),
            Goal::AnyBut(y) => Target::Untargeted { true_label: y },
        }
    }

    /// The loss `kind` at one logits row for this goal, its gradient written into `grad`:
    /// [`Goal::loss`] for cross-entropy, else the Carlini–Wagner margin (see
    /// [`AttackLoss::Margin`]).
    pub fn loss_with(
        self,
        kind: AttackLoss,
        z: ArrayView1<'_, f64>,
        mut grad: ArrayViewMut1<'_, f64>,
    ) -> f64 {
        let AttackLoss::Margin { kappa } = kind else {
            return self.loss(z, grad);
        };
        // The best label other than `l`.
        let l = self.named_label();
        let mut other = usize::from(l == 0);
        for (j, &v) in z.iter().enumerate() {
            if j != l && v > z[other] {
                other = j;
            }
        }
        grad.fill(0.0);
        let m = match self {
            Goal::Label(t) => z[other] - z[t],
            Goal::AnyBut(y) => z[y] - z[other],
        };
        if m <= -kappa {
            return -kappa;
        }
        let (up, down) = match self {
            Goal::Label(t) => (other, t),
            Goal::AnyBut(y) => (y, other),
        };
        grad[up] = 1.0;
        grad[down] = -1.0;
        m
    }

    /// The goal's cross-entropy loss at one logits row, its gradient written into `grad`.
    pub fn loss(self, z: ArrayView1<'_, f64>, mut grad: ArrayViewMut1<'_, f64>) -> f64 {
        match self {
            Goal::Label(l) => softmax_cross_entropy(z, l, grad),
            Goal::AnyBut(y) => {
                let lse_all = logsumexp(z);
                let mut m = f64::NEG_INFINITY;
                for (j, &v) in z.iter().enumerate() {
                    if j != y {
                        m = m.max(v);
                    }
                }
                let mut s = 0.0;
                for (j, &v) in z.iter().enumerate() {
                    if j != y {
                        s += (v - m).exp();
                    }
                }
                let lse_rest = m + s.ln();
                for (j, (g, &v)) in grad.iter_mut().zip(z.iter()).enumerate() {
                    let p = (v - lse_all).exp();
                    *g = if j == y { p } else { p - (v - lse_rest).exp() };
                }
                // ≥ 0 mathematically; clamp rounding noise.
                (lse_all - lse_rest).max(0.0)
            }
        }
    }
}

impl AttackLoss {
    /// This loss at one logits row `z` for `target` ([`Target::Label`] or
    /// [`Target::Untargeted`]), its gradient with respect to `z` written into `grad` (the
    /// function the attack objective adds to `c·pen(r)`).
    ///
    /// Errors: [`Error::InvalidParameter`] for [`Target::Nearest`] (one objective per label)
    /// and [`Error::ShapeMismatch`] when `grad` and `z` differ in length or a label is not
    /// below `z.len()` ([`Error::LabelOutOfRange`]).
    ///
    /// ```
    /// use intriguing::attack::{AttackLoss, Target};
    /// use ndarray::{array, Array1};
    /// let z = array![0.3, 1.2, -0.5];
    /// let mut g = Array1::zeros(3);
    /// // Carlini–Wagner margin, target 0: max_{j≠0} z_j − z_0 = 0.9.
    /// let v = AttackLoss::Margin { kappa: 0.5 }.evaluate(Target::Label(0), z.view(), g.view_mut())?;
    /// assert!((v - 0.9).abs() < 1e-15);
    /// assert_eq!(g, array![-1.0, 1.0, 0.0]);
    /// # Ok::<(), intriguing::Error>(())
    /// ```
    pub fn evaluate(
        self,
        target: Target,
        z: ArrayView1<'_, f64>,
        grad: ArrayViewMut1<'_, f64>,
    ) -> Result<f64> {
        let goal = Goal::single(target)?;
        if grad.len() != z.len() {
            return Err(Error::shape("loss gradient", z.len(), grad.len()));
        }
        let l = goal.named_label();
        if l >= z.len() {
            return Err(Error::LabelOutOfRange {
                label: l,
                num_classes: z.len(),
            });
        }
        Ok(goal.loss_with(self, z, grad))
    }
}

/// The best goal-reaching point seen among evaluations (not yet re-verified).
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    pub x: Vec<f64>,
    pub l2sq: f64,
    pub label: usize,
    pub c: f64,
    pub fresh: bool,
}

#[derive(Debug)]
struct Scratch {
    input: Array2<f64>,
    grad: Array2<f64>,
    evaluations: usize,
    non_finite: usize,
    tracked: Tracked,
}

/// The attack objective for a fixed c:
/// `F(x') = c · pen(x' − x) + loss(f(x'), goal)`, optimised over `x'` inside the box.
///
/// Each evaluation is one forward and one backward pass through
/// [`Classifier::loss_gradient_into`] on a preallocated one-row buffer: no allocation per
/// evaluation in the objective itself. Every evaluated point whose logits already reach the
/// goal is remembered if it is closer to `x` than the best seen so far, so a run whose final
/// point fails can still yield an adversarial example (which the search re-verifies).
///
/// It implements [`optim::Objective`](crate::optim::Objective): a model error is returned as
/// `Err` (the solver stops and hands it back), non-finite logits or gradients give a NaN
/// value (the solver shrinks its step). With the `argmin` feature,
#[cfg_attr(
    feature = "argmin",
    doc = "[`optim::argmin_compat::BoxedProblem`](crate::optim::argmin_compat) runs it through"
)]
#[cfg_attr(
    not(feature = "argmin"),
    doc = "`optim::argmin_compat::BoxedProblem` runs it through"
)]
/// argmin's unconstrained solvers inside the box.
///
/// # Examples
///
/// ```
/// use intriguing::attack::{AttackConfig, AttackObjective, Target};
/// use intriguing::classifier::{Classifier, LogitsLoss};
/// use intriguing::optim::Objective;
/// use intriguing::Result;
/// use ndarray::{array, Array2, ArrayView2, ArrayViewMut2};
///
/// struct Linear(Array2<f64>); // logits = W x
/// impl Classifier for Linear {
///     fn input_dim(&self) -> usize { self.0.ncols() }
///     fn num_classes(&self) -> usize { self.0.nrows() }
///     fn logits_into(&self, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) -> Result<()> {
///         out.assign(&x.dot(&self.0.t()));
///         Ok(())
///     }
///     fn loss_gradient_into(&self, x: ArrayView2<f64>, seed: LogitsLoss<'_>,
///                           mut grad: ArrayViewMut2<f64>) -> Result<f64> {
///         let z = x.dot(&self.0.t());
///         let mut dz = Array2::zeros(z.raw_dim());
///         let loss = seed(z.view(), dz.view_mut());
///         grad.assign(&dz.dot(&self.0));
///         Ok(loss)
///     }
/// }
/// let model = Linear(array![[1.0, 0.0], [0.0, 1.0]]);
/// let x = array![0.8, 0.2];
/// let cfg = AttackConfig::default();
/// let mut obj = AttackObjective::new(&model, x.view(), Target::Label(1), 0.5, &cfg)?;
/// let mut g = [0.0; 2];
/// let f = obj.value_gradient(&[0.8, 0.2], &mut g)?; // r = 0: only the loss
/// assert!((f - (1.0 + 0.6f64.exp()).ln()).abs() < 1e-9);
/// # Ok::<(), intriguing::Error>(())
/// ```
pub struct AttackObjective<'m, C: Classifier + ?Sized> {
    model: &'m C,
    x0: Vec<f64>,
    goal: Goal,
    c: f64,
    penalty: Penalty,
    loss: AttackLoss,
    delta: f64,
    bounds: Bounds,
    scratch: RefCell<Scratch>,
}

impl<C: Classifier + ?Sized> std::fmt::Debug for AttackObjective<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttackObjective")
            .field("dim", &self.x0.len())
            .field("target", &self.goal.target())
            .field("c", &self.c)
            .field("penalty", &self.penalty)
            .finish_non_exhaustive()
    }
}

impl<'m, C: Classifier + ?Sized> AttackObjective<'m, C> {
    /// The objective around the clean input `x` (finite, of the model's input length, inside
    /// the configured box) for `target` and penalty weight `c ≥ 0`.
    ///
    /// `target` is [`Target::Label`] or [`Target::Untargeted`]; [`Target::Nearest`] is one
    /// objective per label and gives `InvalidParameter { name: "target", .. }`.
    pub fn new(
        model: &'m C,
        x: ArrayView1<'_, f64>,
        target: Target,
        c: f64,
        config: &AttackConfig,
    ) -> Result<Self> {
        let goal = Goal::single(target)?;
        super::validate_input(model, x, config)?;
        model.check_label(goal.named_label())?;
        Self::new_unchecked(model, x, goal, c, config)
    }

    /// [`new`](Self::new) for an input and goal the caller has validated.
    pub(crate) fn new_unchecked(
        model: &'m C,
        x: ArrayView1<'_, f64>,
        goal: Goal,
        c: f64,
        config: &AttackConfig,
    ) -> Result<Self> {
        let n = x.len();
        let mut obj = AttackObjective {
            model,
            x0: x.to_vec(),
            goal,
            c: 1.0,
            penalty: config.penalty,
            loss: config.loss,
            delta: config.smoothing,
            bounds: config.bounds.clone(),
            scratch: RefCell::new(Scratch {
                input: Array2::zeros((1, n)),
                grad: Array2::zeros((1, n)),
                evaluations: 0,
                non_finite: 0,
                tracked: Tracked {
                    x: vec![0.0; n],
                    l2sq: f64::INFINITY,
                    label: 0,
                    c: 0.0,
                    fresh: false,
                },
            }),
        };
        obj.set_c(c)?;
        Ok(obj)
    }

    /// The penalty weight c.
    pub fn c(&self) -> f64 {
        self.c
    }

    /// Sets the penalty weight (finite, ≥ 0; 0 leaves only the loss).
    pub fn set_c(&mut self, c: f64) -> Result<()> {
        validate::non_negative("c", c)?;
        self.c = c;
        Ok(())
    }

    /// What the objective aims at ([`Target::Label`] or [`Target::Untargeted`]).
    pub fn target(&self) -> Target {
        self.goal.target()
    }

    /// Changes the target (resets the remembered best point); errors as [`new`](Self::new).
    pub fn set_target(&mut self, target: Target) -> Result<()> {
        let goal = Goal::single(target)?;
        self.model.check_label(goal.named_label())?;
        self.set_goal(goal);
        Ok(())
    }

    pub(crate) fn goal(&self) -> Goal {
        self.goal
    }

    /// Changes the goal (checked by the caller) and resets the remembered best point.
    pub(crate) fn set_goal(&mut self, goal: Goal) {
        self.goal = goal;
        self.reset_tracking(f64::INFINITY);
    }

    /// The model.
    pub fn model(&self) -> &'m C {
        self.model
    }

    /// The clean input.
    pub fn origin(&self) -> &[f64] {
        &self.x0
    }

    /// Number of value + gradient evaluations so far.
    pub fn evaluations(&self) -> usize {
        self.scratch.borrow().evaluations
    }

    /// Number of evaluations at which the model returned an error or non-finite values.
    pub fn non_finite_evaluations(&self) -> usize {
        self.scratch.borrow().non_finite
    }

    /// Only points strictly closer than `sqrt(l2sq)` are remembered from now on.
    pub(crate) fn reset_tracking(&mut self, l2sq: f64) {
        let t = &mut self.scratch.get_mut().tracked;
        t.l2sq = l2sq;
        t.fresh = false;
    }

    pub(crate) fn tracked(&mut self) -> &mut Tracked {
        &mut self.scratch.get_mut().tracked
    }

    /// The penalty `pen(r)` for `‖r‖² = s` and the factor `k` with `∇pen = k · r`.
    fn penalty_of(&self, s: f64) -> (f64, f64) {
        match self.penalty {
            Penalty::L2 => {
                let root = (s + self.delta * self.delta).sqrt();
                (root - self.delta, 1.0 / root)
            }
            Penalty::SquaredL2 => (s, 2.0),
        }
    }

    /// Loss, gradient of the loss and goal check at `x`, into `scratch`; returns the loss and
    /// the predicted label, `Ok(None)` when the model returned non-finite values, `Err` when
    /// it returned an error.
    fn eval_into(&self, s: &mut Scratch, x: &[f64]) -> Result<Option<(f64, usize)>> {
        s.evaluations += 1;
        for (d, &v) in s.input.iter_mut().zip(x) {
            *d = v;
        }
        let goal = self.goal;
        let kind = self.loss;
        let mut label = 0usize;
        let mut bad_shape = None;
        let mut seed = |z: ArrayView2<'_, f64>, mut dz: ArrayViewMut2<'_, f64>| -> f64 {
            crate::classifier::crate_callback(|| {
                // The crate relies on one row of at least `named_label + 1` logits, and a gradient
                // view of the same shape: anything else is the model's contract broken.
                if z.nrows() != 1 || dz.dim() != z.dim() || goal.named_label() >= z.ncols() {
                    bad_shape = Some((z.dim(), dz.dim()));
                    return f64::NAN;
                }
                let zr = z.row(0);
                label = argmax(zr);
                if zr.iter().any(|v| !v.is_finite()) {
                    dz.fill(0.0);
                    return f64::NAN;
                }
                goal.loss_with(kind, zr, dz.row_mut(0))
            })
        };
        let res = crate::classifier::model_call(|| {
            self.model
                .loss_gradient_into(s.input.view(), &mut seed, s.grad.view_mut())
        });
        if let Some((z, dz)) = bad_shape {
            s.non_finite += 1;
            return Err(Error::ModelContract {
                model: std::any::type_name::<C>(),
                what: format!(
                    "loss callback given logits {z:?} and gradient {dz:?} for one input row"
                ),
            });
        }
        match res {
            Ok(loss) if loss.is_finite() && s.grad.iter().all(|g| g.is_finite()) => {
                Ok(Some((loss, label)))
            }
            Ok(_) => {
                s.non_finite += 1;
                Ok(None)
            }
            Err(e) => {
                s.non_finite += 1;
                Err(e)
            }
        }
    }

    fn value_gradient_impl(&self, s: &mut Scratch, x: &[f64], grad: &mut [f64]) -> Result<f64> {
        let Some((loss, label)) = self.eval_into(s, x)? else {
            grad.fill(0.0);
            return Ok(f64::NAN);
        };
        let Scratch {
            grad: lg, tracked, ..
        } = s;
        let lg = lg.as_slice().expect("a standard-layout one-row buffer");
        Ok(self.combine(tracked, x, loss, label, lg, grad))
    }

    /// `c·pen + loss` and its gradient `∇loss + c∇pen` at `x` from the model's loss, label
    /// and loss gradient there; remembers `x` when it reaches the goal and is the closest so
    /// far.
    fn combine(
        &self,
        tracked: &mut Tracked,
        x: &[f64],
        loss: f64,
        label: usize,
        lg: &[f64],
        grad: &mut [f64],
    ) -> f64 {
        let mut l2sq = 0.0;
        for (&xi, &oi) in x.iter().zip(&self.x0) {
            let r = xi - oi;
            l2sq += r * r;
        }
        let (pen, k) = self.penalty_of(l2sq);
        let ck = self.c * k;
        for (((g, &lg), &xi), &oi) in grad.iter_mut().zip(lg).zip(x).zip(&self.x0) {
            *g = lg + ck * (xi - oi);
        }
        if self.goal.is_reached(label)
            && l2sq < tracked.l2sq
            && x.iter().all(|v| v.is_finite())
            && self.bounds.contains(x)
        {
            tracked.x.copy_from_slice(x);
            tracked.l2sq = l2sq;
            tracked.label = label;
            tracked.c = self.c;
            tracked.fresh = true;
        }
        self.c * pen + loss
    }

    /// One evaluation at `x` whose model pass was done elsewhere (a batched pass over many
    /// objectives): `model` is what that pass gave for this row — `Ok((loss, label))` with
    /// the loss gradient row `lg`, or the model's error. Counts and classifies it exactly as
    /// [`value_gradient`](Objective::value_gradient) does, and returns the same value.
    pub(crate) fn complete_evaluation(
        &self,
        x: &[f64],
        model: Result<(f64, usize)>,
        lg: &[f64],
        grad: &mut [f64],
    ) -> Result<f64> {
        let mut s = self.scratch.borrow_mut();
        s.evaluations += 1;
        let (loss, label) = match model {
            Ok((loss, label)) if loss.is_finite() && lg.iter().all(|g| g.is_finite()) => {
                (loss, label)
            }
            Ok(_) => {
                s.non_finite += 1;
                grad.fill(0.0);
                return Ok(f64::NAN);
            }
            Err(e) => {
                s.non_finite += 1;
                return Err(e);
            }
        };
        Ok(self.combine(&mut s.tracked, x, loss, label, lg, grad))
    }
}

impl<C: Classifier + ?Sized> Objective for AttackObjective<'_, C> {
    fn dim(&self) -> usize {
        self.x0.len()
    }

    fn value_gradient(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
        if x.len() != self.x0.len() {
            return Err(Error::shape(
                "attack objective point",
                self.x0.len(),
                x.len(),
            ));
        }
        if grad.len() != self.x0.len() {
            return Err(Error::shape(
                "attack objective gradient",
                self.x0.len(),
                grad.len(),
            ));
        }
        let mut s = self.scratch.borrow_mut();
        self.value_gradient_impl(&mut s, x, grad)
    }
}
