//! A from-scratch L-BFGS and L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995) with a Moré–Thuente
//! (1994) strong-Wolfe line search.
//!
//! INTERFACE STUB — the implementation lands with issue 4. The public signatures below are
//! the contract other modules code against.

use crate::error::{Error, Result};
use std::ops::ControlFlow;

/// A smooth function to minimise: value and gradient in one call.
pub trait Objective {
    /// Number of variables.
    fn dim(&self) -> usize;
    /// Returns `f(x)` and writes `∇f(x)` into `grad` (`grad.len() == x.len() == dim()`).
    /// May return a non-finite value; the line search then shrinks the step.
    fn value_gradient(&mut self, x: &[f64], grad: &mut [f64]) -> f64;
}

/// Per-coordinate box constraints `lower[i] <= x[i] <= upper[i]` (infinite bounds allowed).
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    lower: Vec<f64>,
    upper: Vec<f64>,
}

impl Bounds {
    /// Checks equal lengths, no NaN, `lower[i] <= upper[i]`, no `+inf` lower / `-inf` upper.
    pub fn new(lower: Vec<f64>, upper: Vec<f64>) -> Result<Self> {
        let _ = (&lower, &upper);
        Err(Error::InvalidConfig("stub".into()))
    }
    /// The same interval `[lo, hi]` for all `n` coordinates.
    pub fn uniform(n: usize, lo: f64, hi: f64) -> Result<Self> {
        Self::new(vec![lo; n], vec![hi; n])
    }
    /// Lower bounds.
    pub fn lower(&self) -> &[f64] {
        &self.lower
    }
    /// Upper bounds.
    pub fn upper(&self) -> &[f64] {
        &self.upper
    }
    /// Number of coordinates.
    pub fn len(&self) -> usize {
        self.lower.len()
    }
    /// True when there are no coordinates.
    pub fn is_empty(&self) -> bool {
        self.lower.is_empty()
    }
    /// True when every `x[i]` lies in its interval (and lengths agree).
    pub fn contains(&self, x: &[f64]) -> bool {
        x.len() == self.len()
            && x.iter()
                .zip(&self.lower)
                .zip(&self.upper)
                .all(|((v, l), u)| l <= v && v <= u)
    }
    /// Clamps `x` into the box in place.
    pub fn project(&self, x: &mut [f64]) {
        for ((v, l), u) in x.iter_mut().zip(&self.lower).zip(&self.upper) {
            *v = v.clamp(*l, *u);
        }
    }
}

/// Why the solver stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Termination {
    /// Projected-gradient inf-norm `<= pgtol`.
    GradientTolerance,
    /// Relative decrease `(f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= ftol`.
    FunctionTolerance,
    /// Iteration budget spent.
    MaxIterations,
    /// Function-evaluation budget spent.
    MaxEvaluations,
    /// The line search found no acceptable step (the best point is kept).
    LineSearchFailed,
    /// `f(x0)` or `∇f(x0)` was not finite.
    NonFiniteStart,
    /// The observer asked to stop.
    ObserverStopped,
}

/// The result of a minimisation.
#[derive(Debug, Clone)]
pub struct Solution {
    /// Best point found (inside the bounds).
    pub x: Vec<f64>,
    /// `f(x)`.
    pub value: f64,
    /// Inf-norm of the projected gradient at `x`.
    pub pg_norm: f64,
    /// Iterations done.
    pub iterations: usize,
    /// Function (value + gradient) evaluations.
    pub evaluations: usize,
    /// Why it stopped.
    pub termination: Termination,
}

/// What an observer sees after each iteration.
#[derive(Debug, Clone, Copy)]
pub struct IterationInfo {
    /// Iteration number (1-based).
    pub iteration: usize,
    /// Current value.
    pub value: f64,
    /// Inf-norm of the projected gradient.
    pub pg_norm: f64,
    /// Evaluations so far.
    pub evaluations: usize,
}

/// Reusable buffers so that repeated solves of the same size do not allocate.
#[derive(Debug, Default, Clone)]
pub struct Workspace {
    _private: (),
}

/// L-BFGS-B solver (plain L-BFGS when no bounds are set).
#[derive(Debug, Clone)]
pub struct Lbfgsb {
    _private: (),
}

impl Default for Lbfgsb {
    fn default() -> Self {
        Self::new()
    }
}

impl Lbfgsb {
    /// Defaults: m = 10, max_iterations 15000, max_evaluations 15000, pgtol 1e-5,
    /// ftol = 1e7 · ε, c1 = 1e-4, c2 = 0.9, 20 line-search trials, no bounds.
    pub fn new() -> Self {
        Lbfgsb { _private: () }
    }
    /// History size m ≥ 1.
    pub fn with_memory(self, m: usize) -> Result<Self> {
        let _ = m;
        Ok(self)
    }
    /// Iteration budget ≥ 1.
    pub fn with_max_iterations(self, n: usize) -> Result<Self> {
        let _ = n;
        Ok(self)
    }
    /// Evaluation budget ≥ 1.
    pub fn with_max_evaluations(self, n: usize) -> Result<Self> {
        let _ = n;
        Ok(self)
    }
    /// Projected-gradient inf-norm tolerance ≥ 0.
    pub fn with_pgtol(self, tol: f64) -> Result<Self> {
        let _ = tol;
        Ok(self)
    }
    /// Relative function-decrease tolerance ≥ 0.
    pub fn with_ftol(self, tol: f64) -> Result<Self> {
        let _ = tol;
        Ok(self)
    }
    /// Line-search constants: 0 < c1 < c2 < 1, max_trials ≥ 1.
    pub fn with_line_search(self, c1: f64, c2: f64, max_trials: usize) -> Result<Self> {
        let _ = (c1, c2, max_trials);
        Ok(self)
    }
    /// Box constraints (their length is checked against `x0` at `minimize`).
    pub fn with_bounds(self, bounds: Bounds) -> Result<Self> {
        let _ = bounds;
        Ok(self)
    }
    /// Minimises `obj` from `x0`. `x0` must be finite and have length `obj.dim()`; a start
    /// outside the bounds is projected into them.
    pub fn minimize<O: Objective + ?Sized>(&self, obj: &mut O, x0: &[f64]) -> Result<Solution> {
        self.minimize_with(obj, x0, &mut Workspace::default(), |_| {
            ControlFlow::Continue(())
        })
    }
    /// [`minimize`](Self::minimize) reusing `ws` and calling `observer` after every
    /// iteration; `ControlFlow::Break(())` stops with [`Termination::ObserverStopped`].
    pub fn minimize_with<O: Objective + ?Sized>(
        &self,
        obj: &mut O,
        x0: &[f64],
        ws: &mut Workspace,
        observer: impl FnMut(&IterationInfo) -> ControlFlow<()>,
    ) -> Result<Solution> {
        let _ = (obj, x0, ws, observer);
        Err(Error::InvalidConfig("optim stub".into()))
    }
}
