//! [`AttackConfig`]: the box, the penalty, the c search and the optimizer budget.

use crate::error::{Error, Result};
use crate::optim::{Bounds, Lbfgsb};
use crate::validate::{at_least_one, positive};

/// The distortion penalty `pen(r)` in the attack objective `c·pen(r) + loss(x + r)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Penalty {
    /// The paper's `|r|`, the Euclidean norm, smoothed at `r = 0` as
    /// `sqrt(‖r‖² + δ²) − δ` (δ = [`AttackConfig::smoothing`]).
    L2,
    /// The squared Euclidean norm `‖r‖²`.
    SquaredL2,
}

/// The classification loss in the attack objective `c·pen(r) + loss(x + r)`.
#[derive(Debug, Clone, Copy, PartialEq)]
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

/// The box `[lower, upper]` the adversarial input `x + r` must stay in.
#[derive(Debug, Clone, PartialEq)]
pub enum BoxDomain {
    /// The same interval for every coordinate (the default is `[0, 1]`, pixel intensities).
    Uniform {
        /// Lower bound.
        lower: f64,
        /// Upper bound.
        upper: f64,
    },
    /// One interval per coordinate (lengths must equal the model's input dimension).
    PerCoordinate {
        /// Lower bounds.
        lower: Vec<f64>,
        /// Upper bounds.
        upper: Vec<f64>,
    },
}

impl BoxDomain {
    /// Lower and upper bound of coordinate `i`.
    pub(crate) fn interval(&self, i: usize) -> (f64, f64) {
        match self {
            BoxDomain::Uniform { lower, upper } => (*lower, *upper),
            BoxDomain::PerCoordinate { lower, upper } => (lower[i], upper[i]),
        }
    }

    /// The optimizer's [`Bounds`] for inputs of length `n`.
    pub(crate) fn bounds(&self, n: usize) -> Result<Bounds> {
        match self {
            BoxDomain::Uniform { lower, upper } => Bounds::uniform(n, *lower, *upper),
            BoxDomain::PerCoordinate { lower, upper } => {
                if lower.len() != n {
                    return Err(Error::shape("attack box", n, lower.len()));
                }
                Bounds::new(lower.clone(), upper.clone())
            }
        }
    }

    /// Checks `x` (length already checked) against the box.
    pub(crate) fn check_contains(&self, x: &[f64]) -> Result<()> {
        for (index, &value) in x.iter().enumerate() {
            let (lower, upper) = self.interval(index);
            if !(lower <= value && value <= upper) {
                return Err(Error::OutOfBounds {
                    index,
                    value,
                    lower,
                    upper,
                });
            }
        }
        Ok(())
    }

    /// True when every coordinate of `x` is finite and inside the box.
    pub(crate) fn contains(&self, x: &[f64]) -> bool {
        x.iter().enumerate().all(|(i, &v)| {
            let (lo, hi) = self.interval(i);
            v.is_finite() && lo <= v && v <= hi
        })
    }

    fn validate(&self) -> Result<()> {
        let check = |lo: f64, hi: f64| {
            if lo.is_nan()
                || hi.is_nan()
                || lo > hi
                || lo == f64::INFINITY
                || hi == f64::NEG_INFINITY
            {
                Err(Error::InvalidConfig(format!(
                    "attack box interval [{lo}, {hi}] is not a valid interval"
                )))
            } else {
                Ok(())
            }
        };
        match self {
            BoxDomain::Uniform { lower, upper } => check(*lower, *upper),
            BoxDomain::PerCoordinate { lower, upper } => {
                if lower.len() != upper.len() {
                    return Err(Error::shape(
                        "attack box upper bounds",
                        lower.len(),
                        upper.len(),
                    ));
                }
                lower.iter().zip(upper).try_for_each(|(&l, &u)| check(l, u))
            }
        }
    }
}

/// How the first c of the search is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
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
/// Build with [`AttackConfig::default`] and the validating `with_*` setters.
///
/// ```
/// use intriguing::attack::{AttackConfig, Penalty};
/// let cfg = AttackConfig::default()
///     .with_penalty(Penalty::SquaredL2)
///     .with_bisection_steps(6)?
///     .with_box(-1.0, 1.0)?;
/// assert!(AttackConfig::default().with_growth(0.5).is_err());
/// # let _ = cfg;
/// # Ok::<(), intriguing::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AttackConfig {
    pub(crate) domain: BoxDomain,
    pub(crate) penalty: Penalty,
    pub(crate) loss: AttackLoss,
    pub(crate) smoothing: f64,
    pub(crate) initial_c: InitialC,
    pub(crate) growth: f64,
    pub(crate) max_bracket_steps: usize,
    pub(crate) bisection_steps: usize,
    pub(crate) rel_tol: f64,
    pub(crate) max_iterations: usize,
    pub(crate) max_evaluations: usize,
    pub(crate) memory: usize,
    pub(crate) pgtol: f64,
    pub(crate) ftol: f64,
    pub(crate) bisection_ftol: f64,
    pub(crate) warm_start: bool,
    pub(crate) nearest_candidates: usize,
    pub(crate) nearest_prune_margin: f64,
    pub(crate) refine_rounds: usize,
    pub(crate) refine_points: usize,
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
        AttackConfig {
            domain: BoxDomain::Uniform {
                lower: 0.0,
                upper: 1.0,
            },
            penalty: Penalty::SquaredL2,
            loss: AttackLoss::CrossEntropy,
            smoothing: 1e-6,
            initial_c: InitialC::Auto { factor: 1.0 },
            growth: 2.0,
            max_bracket_steps: 12,
            bisection_steps: 3,
            rel_tol: 0.1,
            max_iterations: 60,
            max_evaluations: 100,
            memory: 10,
            pgtol: 1e-6,
            ftol: 1e-3,
            bisection_ftol: 1e-4,
            warm_start: true,
            nearest_candidates: 5,
            nearest_prune_margin: 0.1,
            refine_rounds: 3,
            refine_points: 8,
        }
    }
}

impl AttackConfig {
    /// The same box `[lower, upper]` for every coordinate.
    pub fn with_box(mut self, lower: f64, upper: f64) -> Result<Self> {
        let d = BoxDomain::Uniform { lower, upper };
        d.validate()?;
        self.domain = d;
        Ok(self)
    }
    /// Per-coordinate bounds (lengths are checked against the model at attack time).
    pub fn with_bounds(mut self, lower: Vec<f64>, upper: Vec<f64>) -> Result<Self> {
        let d = BoxDomain::PerCoordinate { lower, upper };
        d.validate()?;
        self.domain = d;
        Ok(self)
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
    /// The smoothing δ > 0 of the [`Penalty::L2`] penalty at `r = 0`.
    pub fn with_smoothing(mut self, delta: f64) -> Result<Self> {
        self.smoothing = positive("smoothing", delta)?;
        Ok(self)
    }
    /// A fixed first c (> 0) instead of the automatic estimate.
    pub fn with_initial_c(mut self, c: f64) -> Result<Self> {
        self.initial_c = InitialC::Fixed(positive("initial c", c)?);
        Ok(self)
    }
    /// The automatic first c with the given multiplier (> 0).
    pub fn with_auto_initial_c(mut self, factor: f64) -> Result<Self> {
        self.initial_c = InitialC::Auto {
            factor: positive("initial c factor", factor)?,
        };
        Ok(self)
    }
    /// The geometric factor (> 1) by which c grows or shrinks while bracketing.
    pub fn with_growth(mut self, factor: f64) -> Result<Self> {
        if !(factor.is_finite() && factor > 1.0) {
            return Err(Error::InvalidConfig(format!(
                "growth must be > 1, got {factor}"
            )));
        }
        self.growth = factor;
        Ok(self)
    }
    /// Maximum number of L-BFGS-B runs spent bracketing c (≥ 1).
    pub fn with_max_bracket_steps(mut self, n: usize) -> Result<Self> {
        self.max_bracket_steps = at_least_one("max_bracket_steps", n)?;
        Ok(self)
    }
    /// Maximum number of bisection runs after bracketing (0 allowed: no refinement).
    pub fn with_bisection_steps(mut self, n: usize) -> Result<Self> {
        self.bisection_steps = n;
        Ok(self)
    }
    /// Bisection stops once `c_fail / c_success ≤ 1 + tol` (tol > 0).
    pub fn with_relative_tolerance(mut self, tol: f64) -> Result<Self> {
        self.rel_tol = positive("relative tolerance", tol)?;
        Ok(self)
    }
    /// L-BFGS-B iteration budget per run (≥ 1).
    pub fn with_max_iterations(mut self, n: usize) -> Result<Self> {
        self.max_iterations = at_least_one("max_iterations", n)?;
        Ok(self)
    }
    /// L-BFGS-B evaluation budget per run (≥ 1).
    pub fn with_max_evaluations(mut self, n: usize) -> Result<Self> {
        self.max_evaluations = at_least_one("max_evaluations", n)?;
        Ok(self)
    }
    /// L-BFGS-B history size (≥ 1).
    pub fn with_memory(mut self, m: usize) -> Result<Self> {
        self.memory = at_least_one("memory", m)?;
        Ok(self)
    }
    /// L-BFGS-B projected-gradient and relative-decrease tolerances (both > 0), for every
    /// run (bisection runs included).
    pub fn with_tolerances(mut self, pgtol: f64, ftol: f64) -> Result<Self> {
        self.pgtol = positive("pgtol", pgtol)?;
        self.ftol = positive("ftol", ftol)?;
        self.bisection_ftol = self.ftol;
        Ok(self)
    }
    /// A separate relative-decrease tolerance (> 0) for the bisection runs, which start
    /// from a nearby solution and decide the final distortion.
    pub fn with_bisection_ftol(mut self, ftol: f64) -> Result<Self> {
        self.bisection_ftol = positive("bisection ftol", ftol)?;
        Ok(self)
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
    /// ones (≥ 1; default 5, with [`with_nearest_pruning`](Self::with_nearest_pruning)(0.1)
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
    /// `points ≥ 1`.
    pub fn with_refinement(mut self, rounds: usize, points: usize) -> Result<Self> {
        self.refine_points = at_least_one("refinement points", points)?;
        self.refine_rounds = rounds;
        Ok(self)
    }
    /// For [`Target::Nearest`](super::Target::Nearest): a label whose best distortion after
    /// bracketing is more than `(1 + margin)` times the best of the labels searched before it
    /// skips its bisection runs and boundary refinement (margin ≥ 0; default 0.1;
    /// `f64::INFINITY` never prunes).
    pub fn with_nearest_pruning(mut self, margin: f64) -> Result<Self> {
        if margin.is_nan() || margin < 0.0 {
            return Err(Error::InvalidConfig(format!(
                "nearest pruning margin must be >= 0, got {margin}"
            )));
        }
        self.nearest_prune_margin = margin;
        Ok(self)
    }

    /// The box.
    pub fn domain(&self) -> &BoxDomain {
        &self.domain
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
    /// Whether warm starts are on.
    pub fn warm_start(&self) -> bool {
        self.warm_start
    }

    /// The configured solver for inputs of length `n`.
    pub(crate) fn solver(&self, n: usize, ftol: f64) -> Result<Lbfgsb> {
        Lbfgsb::new()
            .with_memory(self.memory)?
            .with_max_iterations(self.max_iterations)?
            .with_max_evaluations(self.max_evaluations)?
            .with_pgtol(self.pgtol)?
            .with_ftol(ftol)?
            .with_bounds(self.domain.bounds(n)?)
    }
}
