//! [`AttackConfig`]: the box, the penalty, the c search and the solver settings.

use super::label_bound::{LabelBound, SharedLabelBound};
use crate::error::{Error, Result};
use crate::optim::{Bounds, Lbfgsb};
use crate::validate::{at_least_one, greater_than_one, non_negative_or_infinite, positive};
use std::sync::Arc;

/// Largest number of points per boundary-refinement round
/// ([`AttackConfig::with_refinement`]); a round predicts them in one batch of
/// `points × input_dim` numbers.
pub const MAX_REFINEMENT_POINTS: usize = 4096;

/// The distortion penalty `pen(r)` in the attack objective `c·pen(r) + loss(x + r)`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Penalty {
    /// The paper's `|r|`, the Euclidean norm, smoothed at `r = 0` as
    /// `sqrt(‖r‖² + δ²) − δ` (δ = [`AttackConfig::smoothing`]).
    L2,
    /// The squared Euclidean norm `‖r‖²`.
    SquaredL2,
}

/// The classification loss in the attack objective `c·pen(r) + loss(x + r)`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AttackLoss {
    /// Softmax cross-entropy of the target label (the paper's); untargeted, the bounded
    /// `LSE(z) − LSE(z without y)`.
    CrossEntropy,
    /// The margin loss of Carlini & Wagner (2017) on the logits `z`: targeted (label `t`)
    /// `max(max_{j≠t} z_j − z_t, −κ)`, untargeted (true label `y`)
    /// `max(z_y − max_{j≠y} z_j, −κ)`. It stops pushing once the target leads by κ, so the
    /// optimum does not overshoot the decision boundary by more than κ in logit units.
    Margin {
        /// Confidence κ ≥ 0 (finite).
        kappa: f64,
    },
}

/// How the first c of the search is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum InitialC {
    /// A fixed value (> 0).
    Fixed(f64),
    /// Estimated from the loss gradient at the clean input (one gradient evaluation):
    /// for the [`Penalty::L2`] penalty the stationarity condition `c = ‖∇loss(x + r)‖` at the
    /// optimum gives `c₀ = factor · ‖∇loss(x)‖`; for [`Penalty::SquaredL2`] (`2c‖r‖ =
    /// ‖∇loss‖`) the distance is first estimated by one linearised step,
    /// `d₀ = loss(x) / ‖∇loss(x)‖`, and `c₀ = factor · ‖∇loss(x)‖ / (2 d₀)`.
    Auto {
        /// Multiplier of the estimate (> 0).
        factor: f64,
    },
}

/// Settings of [`find_minimal_perturbation`](super::find_minimal_perturbation).
///
/// Build with [`AttackConfig::default`] and the validating `with_*` setters; every setting
/// has a getter of the same name. Each setter changes only its own setting, so the order of
/// the calls does not matter. The box is one [`Bounds`]; the two L-BFGS-B solvers (the
/// bracketing runs' and the bisection runs', which differ only in `ftol`) are built by the
/// setters, once, not per attack.
///
/// ```
/// use intriguing::attack::{AttackConfig, Penalty};
/// use intriguing::Error;
/// let cfg = AttackConfig::default()
///     .with_penalty(Penalty::SquaredL2)
///     .with_bisection_steps(6)?
///     .with_box(-1.0, 1.0)?;
/// assert_eq!(cfg.bisection_steps(), 6);
/// assert_eq!(cfg.bounds().interval_at(0), (-1.0, 1.0));
/// assert_eq!(cfg.solver().bounds(), Some(cfg.bounds()));
/// assert!(matches!(
///     AttackConfig::default().with_growth(0.5),
///     Err(Error::InvalidParameter { name: "growth", .. })
/// ));
/// # Ok::<(), intriguing::Error>(())
/// ```
///
/// With the `serde` feature it serialises its settings (the solver's without the box, which
/// is `bounds`), and deserialising goes through the validating setters above: a JSON config
/// with, say, `"growth": 0.5` is refused with the setter's message. A
/// [`label_bound`](Self::label_bound) is code, not a setting: it is not serialised, and a
/// deserialised config has none (set it again with [`with_label_bound`](Self::with_label_bound)).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "AttackConfigRepr", into = "AttackConfigRepr")
)]
pub struct AttackConfig {
    pub(crate) bounds: Bounds,
    pub(crate) penalty: Penalty,
    pub(crate) loss: AttackLoss,
    pub(crate) smoothing: f64,
    pub(crate) initial_c: InitialC,
    pub(crate) growth: f64,
    pub(crate) max_bracket_steps: usize,
    pub(crate) bisection_steps: usize,
    pub(crate) rel_tol: f64,
    /// The bracketing runs' solver (its bounds are `bounds`).
    pub(crate) solver: Lbfgsb,
    /// `None`: the bisection runs use `solver`'s ftol.
    pub(crate) bisection_ftol: Option<f64>,
    /// `solver` with the bisection runs' ftol (derived, kept in step by the setters).
    pub(crate) bisection_solver: Lbfgsb,
    pub(crate) warm_start: bool,
    pub(crate) nearest_candidates: usize,
    pub(crate) nearest_prune_margin: f64,
    pub(crate) refine_rounds: usize,
    pub(crate) refine_points: usize,
    pub(crate) label_bound: Option<SharedLabelBound>,
}

/// The settings of a serialised [`AttackConfig`], checked by its setters on the way in.
#[cfg(feature = "serde")]
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AttackConfigRepr {
    bounds: Bounds,
    penalty: Penalty,
    loss: AttackLoss,
    smoothing: f64,
    initial_c: InitialC,
    growth: f64,
    max_bracket_steps: usize,
    bisection_steps: usize,
    relative_tolerance: f64,
    /// Without bounds (the box is `bounds`).
    solver: Lbfgsb,
    bisection_ftol: Option<f64>,
    warm_start: bool,
    nearest_candidates: usize,
    #[serde(with = "crate::serde_f64")]
    nearest_pruning: f64,
    refinement_rounds: usize,
    refinement_points: usize,
}

#[cfg(feature = "serde")]
impl From<AttackConfig> for AttackConfigRepr {
    fn from(c: AttackConfig) -> Self {
        AttackConfigRepr {
            bounds: c.bounds,
            penalty: c.penalty,
            loss: c.loss,
            smoothing: c.smoothing,
            initial_c: c.initial_c,
            growth: c.growth,
            max_bracket_steps: c.max_bracket_steps,
            bisection_steps: c.bisection_steps,
            relative_tolerance: c.rel_tol,
            solver: c.solver.without_bounds(),
            bisection_ftol: c.bisection_ftol,
            warm_start: c.warm_start,
            nearest_candidates: c.nearest_candidates,
            nearest_pruning: c.nearest_prune_margin,
            refinement_rounds: c.refine_rounds,
            refinement_points: c.refine_points,
        }
    }
}

#[cfg(feature = "serde")]
impl TryFrom<AttackConfigRepr> for AttackConfig {
    type Error = Error;
    fn try_from(r: AttackConfigRepr) -> Result<Self> {
        let cfg = AttackConfig::default()
            .with_bounds(r.bounds)
            .with_penalty(r.penalty)
            .with_loss(r.loss)?
            .with_smoothing(r.smoothing)?;
        let cfg = match r.initial_c {
            InitialC::Fixed(c) => cfg.with_initial_c(c)?,
            InitialC::Auto { factor } => cfg.with_auto_initial_c(factor)?,
        };
        cfg.with_growth(r.growth)?
            .with_max_bracket_steps(r.max_bracket_steps)?
            .with_bisection_steps(r.bisection_steps)?
            .with_relative_tolerance(r.relative_tolerance)?
            .with_solver(r.solver)?
            .with_bisection_ftol(r.bisection_ftol)?
            .with_warm_start(r.warm_start)
            .with_nearest_candidates(r.nearest_candidates)?
            .with_nearest_pruning(r.nearest_pruning)?
            .with_refinement(r.refinement_rounds, r.refinement_points)
    }
}

impl Default for AttackConfig {
    /// Box `[0, 1]`, [`Penalty::SquaredL2`] (chosen by measurement, `docs/attack.md`; the
    /// L2 penalty's smoothing δ = 1e-6), `InitialC::Auto { factor: 1.0 }`,
    /// growth ×2, up to 12 bracketing runs, up to 3 bisection runs or c-ratio ≤ 1.1,
    /// 60 iterations / 100 evaluations per L-BFGS-B run (m = 10, pgtol 1e-6, ftol 1e-3 while
    /// bracketing, 1e-4 for the bisection runs),
    /// warm starts on, the 5 most promising labels searched for
    /// [`Target::Nearest`](super::Target::Nearest) with pruning margin 0.1,
    /// boundary refinement with 3 rounds of 8 points.
    fn default() -> Self {
        let solver = Lbfgsb::new()
            .with_memory_unchecked(10)
            .with_budget_unchecked(60, 100)
            .with_tolerances_unchecked(1e-6, 1e-3);
        AttackConfig {
            bounds: Bounds::unit_interval(),
            penalty: Penalty::SquaredL2,
            loss: AttackLoss::CrossEntropy,
            smoothing: 1e-6,
            initial_c: InitialC::Auto { factor: 1.0 },
            growth: 2.0,
            max_bracket_steps: 12,
            bisection_steps: 3,
            rel_tol: 0.1,
            bisection_solver: solver.clone(),
            solver,
            bisection_ftol: Some(1e-4),
            warm_start: true,
            nearest_candidates: 5,
            nearest_prune_margin: 0.1,
            refine_rounds: 3,
            refine_points: 8,
            label_bound: None,
        }
        .sync()
    }
}

impl AttackConfig {
    /// Rebuilds the two solvers from the box and the solver settings.
    fn sync(mut self) -> Self {
        self.solver = self.solver.with_bounds(self.bounds.clone());
        let ftol = self.bisection_ftol.unwrap_or(self.solver.ftol());
        self.bisection_solver = self.solver.clone().with_ftol_unchecked(ftol);
        self
    }

    /// The same box `[lower, upper]` for every coordinate, whatever the input length
    /// ([`Bounds::interval`]; errors as there).
    pub fn with_box(self, lower: f64, upper: f64) -> Result<Self> {
        Ok(self.with_bounds(Bounds::interval(lower, upper)?))
    }
    /// The box as a [`Bounds`]: an [`interval`](Bounds::interval) or a per-coordinate box
    /// ([`Bounds::new`]), whose length is checked against the model at attack time.
    pub fn with_bounds(mut self, bounds: Bounds) -> Self {
        self.bounds = bounds;
        self.sync()
    }
    /// The distortion penalty.
    pub fn with_penalty(mut self, penalty: Penalty) -> Self {
        self.penalty = penalty;
        self
    }
    /// The classification loss (default [`AttackLoss::CrossEntropy`], chosen by measurement:
    /// `docs/attacks.md`). The margin's κ must be finite and ≥ 0.
    pub fn with_loss(mut self, loss: AttackLoss) -> Result<Self> {
        if let AttackLoss::Margin { kappa } = loss {
            crate::validate::non_negative("margin kappa", kappa)?;
        }
        self.loss = loss;
        Ok(self)
    }
    /// The smoothing δ > 0 of the [`Penalty::L2`] penalty at `r = 0` (parameter
    /// `"smoothing"`).
    ///
    /// δ must lie in `[1e-150, 1e150]`, so that `δ²` neither underflows nor overflows.
    pub fn with_smoothing(mut self, delta: f64) -> Result<Self> {
        let delta = positive("smoothing", delta)?;
        if !(1e-150..=1e150).contains(&delta) {
            return Err(Error::parameter("smoothing", delta, "in [1e-150, 1e150]"));
        }
        self.smoothing = delta;
        Ok(self)
    }
    /// A fixed first c (> 0, parameter `"initial_c"`) instead of the automatic estimate.
    pub fn with_initial_c(mut self, c: f64) -> Result<Self> {
        self.initial_c = InitialC::Fixed(positive("initial_c", c)?);
        Ok(self)
    }
    /// The automatic first c with the given multiplier (> 0, parameter
    /// `"initial_c_factor"`).
    pub fn with_auto_initial_c(mut self, factor: f64) -> Result<Self> {
        self.initial_c = InitialC::Auto {
            factor: positive("initial_c_factor", factor)?,
        };
        Ok(self)
    }
    /// The geometric factor (finite, > 1, parameter `"growth"`) by which c grows or shrinks
    /// while bracketing.
    pub fn with_growth(mut self, factor: f64) -> Result<Self> {
        self.growth = greater_than_one("growth", factor)?;
        Ok(self)
    }
    /// Maximum number of L-BFGS-B runs spent bracketing c (≥ 1, parameter
    /// `"max_bracket_steps"`).
    pub fn with_max_bracket_steps(mut self, n: usize) -> Result<Self> {
        self.max_bracket_steps = at_least_one("max_bracket_steps", n)?;
        Ok(self)
    }
    /// Maximum number of bisection runs after bracketing (0 allowed: no refinement).
    pub fn with_bisection_steps(mut self, n: usize) -> Result<Self> {
        self.bisection_steps = n;
        Ok(self)
    }
    /// Bisection stops once `c_fail / c_success ≤ 1 + tol` (tol > 0, parameter
    /// `"relative_tolerance"`).
    pub fn with_relative_tolerance(mut self, tol: f64) -> Result<Self> {
        self.rel_tol = positive("relative_tolerance", tol)?;
        Ok(self)
    }
    /// The L-BFGS-B settings of every run (memory, budgets, tolerances, line search) from
    /// `solver`, which must have no bounds: the box is [`with_box`](Self::with_box) /
    /// [`with_bounds`](Self::with_bounds)'s (a solver with bounds is
    /// `InvalidParameter { name: "solver", .. }`). The bisection runs use `solver`'s ftol
    /// unless [`with_bisection_ftol`](Self::with_bisection_ftol) sets their own.
    pub fn with_solver(mut self, solver: Lbfgsb) -> Result<Self> {
        if solver.bounds().is_some() {
            return Err(Error::parameter(
                "solver",
                "an Lbfgsb with bounds",
                "an Lbfgsb without bounds (the box is the attack's with_box / with_bounds)",
            ));
        }
        self.solver = solver;
        Ok(self.sync())
    }
    /// L-BFGS-B iteration budget per run (≥ 1, parameter `"max_iterations"`).
    pub fn with_max_iterations(mut self, n: usize) -> Result<Self> {
        self.solver = self.solver.with_max_iterations(n)?;
        Ok(self.sync())
    }
    /// L-BFGS-B evaluation budget per run (≥ 1, parameter `"max_evaluations"`).
    pub fn with_max_evaluations(mut self, n: usize) -> Result<Self> {
        self.solver = self.solver.with_max_evaluations(n)?;
        Ok(self.sync())
    }
    /// L-BFGS-B history size (`1 ≤ m ≤` [`MAX_MEMORY`](crate::optim::MAX_MEMORY), parameter
    /// `"memory"`; at attack time `m · input_dim ≤`
    /// [`MAX_HISTORY_ENTRIES`](crate::optim::MAX_HISTORY_ENTRIES)).
    pub fn with_memory(mut self, m: usize) -> Result<Self> {
        self.solver = self.solver.with_memory(m)?;
        Ok(self.sync())
    }
    /// L-BFGS-B projected-gradient and relative-decrease tolerances (both finite and > 0,
    /// parameters `"pgtol"` and `"ftol"`). The bisection runs keep their own ftol when one is
    /// set ([`with_bisection_ftol`](Self::with_bisection_ftol)); otherwise they use `ftol`.
    pub fn with_tolerances(mut self, pgtol: f64, ftol: f64) -> Result<Self> {
        let pgtol = positive("pgtol", pgtol)?;
        let ftol = positive("ftol", ftol)?;
        self.solver = self.solver.with_tolerances_unchecked(pgtol, ftol);
        Ok(self.sync())
    }
    /// The relative-decrease tolerance of the bisection runs, which start from a nearby
    /// solution and decide the final distortion: `Some(ftol)` (finite, > 0, parameter
    /// `"bisection_ftol"`; the default is `Some(1e-4)`), or `None` for the bracketing runs'
    /// ftol.
    pub fn with_bisection_ftol(mut self, ftol: Option<f64>) -> Result<Self> {
        self.bisection_ftol = match ftol {
            Some(v) => Some(positive("bisection_ftol", v)?),
            None => None,
        };
        Ok(self.sync())
    }
    /// Start each L-BFGS-B run from the solution of the run with the nearest c (true) or
    /// from the clean input (false).
    pub fn with_warm_start(mut self, on: bool) -> Self {
        self.warm_start = on;
        self
    }
    /// For [`Target::Nearest`](super::Target::Nearest): the labels are ranked by the
    /// linearised distance to their decision boundary, `(z_y − z_l) / ‖∇(z_y − z_l)‖` at
    /// `x` (one batched gradient call), and the full c search runs on the `k` most promising
    /// ones (≥ 1, parameter `"nearest_candidates"`; default 5, with
    /// [`with_nearest_pruning`](Self::with_nearest_pruning)(0.1)
    /// identical to the exhaustive search on 100 MNIST test images, see
    /// `docs/attack.md`; `usize::MAX` searches every label).
    pub fn with_nearest_candidates(mut self, k: usize) -> Result<Self> {
        self.nearest_candidates = at_least_one("nearest_candidates", k)?;
        Ok(self)
    }
    /// Boundary refinement of the best verified point `x + r`: `rounds` rounds, each
    /// predicting (forward passes only, one batched call) `points` points `x + t·r` evenly
    /// spaced in the current interval of `t`, keeping the smallest `t` that still reaches the
    /// target. The CE loss makes every run overshoot the decision boundary a little; this
    /// removes most of it for `rounds · points` predictions. `rounds = 0` turns it off;
    /// `1 ≤ points ≤` [`MAX_REFINEMENT_POINTS`] (parameter `"refinement_points"`). Any
    /// number of rounds is accepted: refinement stops early once a round no longer shrinks
    /// the interval of `t` (it cannot shrink forever in floating point).
    pub fn with_refinement(mut self, rounds: usize, points: usize) -> Result<Self> {
        at_least_one("refinement_points", points)?;
        if points > MAX_REFINEMENT_POINTS {
            return Err(Error::parameter(
                "refinement_points",
                points,
                "in [1, 4096] (MAX_REFINEMENT_POINTS)",
            ));
        }
        self.refine_points = points;
        self.refine_rounds = rounds;
        Ok(self)
    }
    /// For [`Target::Nearest`](super::Target::Nearest): a label whose best distortion after
    /// bracketing is more than `(1 + margin)` times the best of the labels searched before it
    /// skips its bisection runs and boundary refinement (margin ≥ 0, parameter
    /// `"nearest_pruning"`; default 0.1; `f64::INFINITY` never prunes).
    pub fn with_nearest_pruning(mut self, margin: f64) -> Result<Self> {
        self.nearest_prune_margin = non_negative_or_infinite("nearest_pruning", margin)?;
        Ok(self)
    }

    /// For [`Target::Nearest`](super::Target::Nearest): before searching a label, ask
    /// `bound` whether it is unreachable within the best distortion (`‖r‖₂`) found so far
    /// and skip it if so. The pruning is exact: a skipped label could only have given a larger
    /// distortion, so the result's label and distortion are those of the search without
    /// it (only the work counts change). The bound is asked once after the first label's
    /// search and again whenever the best distortion has fallen below 0.9 times the radius
    /// it was last asked at. It must certify the same model; default: none.
    pub fn with_label_bound(mut self, bound: Arc<dyn LabelBound>) -> Self {
        self.label_bound = Some(SharedLabelBound(bound));
        self
    }
    /// Removes the label bound.
    pub fn without_label_bound(mut self) -> Self {
        self.label_bound = None;
        self
    }
    /// The label bound, if any.
    pub fn label_bound(&self) -> Option<&Arc<dyn LabelBound>> {
        self.label_bound.as_ref().map(|b| &b.0)
    }

    /// The box.
    pub fn bounds(&self) -> &Bounds {
        &self.bounds
    }
    /// The penalty.
    pub fn penalty(&self) -> Penalty {
        self.penalty
    }
    /// The classification loss.
    pub fn loss(&self) -> AttackLoss {
        self.loss
    }
    /// The smoothing δ of the L2 penalty.
    pub fn smoothing(&self) -> f64 {
        self.smoothing
    }
    /// How the first c is chosen.
    pub fn initial_c(&self) -> InitialC {
        self.initial_c
    }
    /// The bracketing growth factor.
    pub fn growth(&self) -> f64 {
        self.growth
    }
    /// The bracketing budget (L-BFGS-B runs).
    pub fn max_bracket_steps(&self) -> usize {
        self.max_bracket_steps
    }
    /// The bisection budget (L-BFGS-B runs).
    pub fn bisection_steps(&self) -> usize {
        self.bisection_steps
    }
    /// The bisection's relative tolerance on `c_fail / c_success`.
    pub fn relative_tolerance(&self) -> f64 {
        self.rel_tol
    }
    /// The solver of the bracketing runs, with the box as its bounds (memory, budgets,
    /// tolerances: [`Lbfgsb::memory`], [`Lbfgsb::max_iterations`], ...).
    pub fn solver(&self) -> &Lbfgsb {
        &self.solver
    }
    /// The bisection runs' own ftol (`None`: they use [`solver`](Self::solver)'s).
    pub fn bisection_ftol(&self) -> Option<f64> {
        self.bisection_ftol
    }
    /// The solver of the bisection runs: [`solver`](Self::solver) with the bisection ftol.
    pub fn bisection_solver(&self) -> &Lbfgsb {
        &self.bisection_solver
    }
    /// Whether warm starts are on.
    pub fn warm_start(&self) -> bool {
        self.warm_start
    }
    /// The number of labels searched for [`Target::Nearest`](super::Target::Nearest).
    pub fn nearest_candidates(&self) -> usize {
        self.nearest_candidates
    }
    /// The pruning margin for [`Target::Nearest`](super::Target::Nearest).
    pub fn nearest_pruning(&self) -> f64 {
        self.nearest_prune_margin
    }
    /// The boundary refinement `(rounds, points)`.
    pub fn refinement(&self) -> (usize, usize) {
        (self.refine_rounds, self.refine_points)
    }
}
