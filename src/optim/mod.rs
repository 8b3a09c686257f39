//! A from-scratch L-BFGS and L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995) with a Moré–Thuente
//! (1994) strong-Wolfe line search.
//!
//! - Without bounds (or with all bounds infinite) the solver is L-BFGS: the two-loop
//!   recursion with the initial scaling `γ = sᵀy / yᵀy`.
//! - With bounds it is L-BFGS-B: the generalized Cauchy point along the projected
//!   steepest-descent path, subspace minimisation over the free variables with the compact
//!   representation of the limited-memory matrix, the step projected into the box, and a
//!   line search whose largest step is the largest feasible one. Every iterate and every
//!   trial point lies inside the box.
//! - The line search is Moré–Thuente for the strong Wolfe conditions; a non-finite value or
//!   gradient at a trial step shrinks the step.
//!
//! A start outside the bounds is **projected** into them (not an error). A start of the
//! wrong length, with NaN/Inf, or bounds of the wrong length are typed [`Error`]s.
//! Nothing allocates inside the iteration loop; [`Lbfgsb::minimize_with`] with a reused
//! [`Workspace`] allocates only the returned [`Solution::x`].
//!
//! See `docs/optim.md` for the equations each part implements and measured figures.
//!
//! # Examples
//!
//! The Rosenbrock function in the box `[-2, 0.5] × [-2, 2]`: the unconstrained minimum
//! `(1, 1)` is cut off, the constrained one is on the boundary `x₀ = 0.5`.
//!
//! ```
//! use intriguing::optim::{Bounds, FnObjective, Lbfgsb, Termination};
//!
//! let mut rosen = FnObjective::new(2, |x: &[f64], g: &mut [f64]| {
//!     let (a, b) = (1.0 - x[0], x[1] - x[0] * x[0]);
//!     g[0] = -2.0 * a - 400.0 * x[0] * b;
//!     g[1] = 200.0 * b;
//!     a * a + 100.0 * b * b
//! });
//! let solver = Lbfgsb::new()
//!     .with_bounds(Bounds::new(vec![-2.0, -2.0], vec![0.5, 2.0])?)
//!     .with_pgtol(1e-8)?;
//! let sol = solver.minimize(&mut rosen, &[-1.2, 1.0])?;
//! assert_eq!(sol.termination, Termination::GradientTolerance);
//! assert_eq!(sol.x[0], 0.5);
//! assert!((sol.x[1] - 0.25).abs() < 1e-6);
//! assert!((sol.value - 0.25).abs() < 1e-10);
//! # Ok::<(), intriguing::Error>(())
//! ```

// Index loops mirror the papers' notation over several arrays at once, and `!(a < b)` is
// the intended NaN-aware test (true for NaN) throughout.
#![allow(clippy::needless_range_loop, clippy::neg_cmp_op_on_partial_ord)]

#[cfg(feature = "argmin")]
#[cfg_attr(docsrs, doc(cfg(feature = "argmin")))]
pub mod argmin_compat;
mod cauchy;
mod dense;
mod driver;
mod linesearch;
mod memory;
#[cfg(test)]
mod model_tests;
mod stepper;
mod subspace;

pub use linesearch::LineSearch;
pub use stepper::{Request, Stepper};

use crate::error::{Error, Result};
use crate::validate;
use std::ops::ControlFlow;

/// A smooth function to minimise: value and gradient in one call.
///
/// The contract of [`value_gradient`](Self::value_gradient):
///
/// - `Ok(f)` with `f` and every gradient entry finite: a usable point.
/// - `Ok(f)` with `f` or a gradient entry NaN/±inf: the point is unusable but the function is
///   fine elsewhere; the line search shrinks the step (at the start point the run ends with
///   [`Termination::NonFiniteStart`]).
/// - `Err(e)`: the evaluation itself failed (the model behind the objective returned an
///   error, ...); the solver stops at once and [`Lbfgsb::minimize`] returns that `e`.
///
/// One call is one evaluation; a solver that needs the value and the gradient at a point
/// calls it once. The solver drives the calls (ask for `(x)`, receive `(f, ∇f)`), so any
/// objective can equally be fed by a caller that evaluates many points at once.
pub trait Objective {
    /// Number of variables.
    fn dim(&self) -> usize;
    /// Returns `f(x)` and writes `∇f(x)` into `grad` (`grad.len() == x.len() == dim()`); see
    /// the trait documentation for what a non-finite value and an `Err` mean.
    fn value_gradient(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64>;
}

impl<O: Objective + ?Sized> Objective for &mut O {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn value_gradient(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
        (**self).value_gradient(x, grad)
    }
}

/// Adapts a closure of a given dimension into an [`Objective`]: `FnMut(x, grad_out) -> f(x)`
/// ([`new`](Self::new), which cannot fail) or `FnMut(x, grad_out) -> Result<f(x)>`
/// ([`fallible`](FnObjective::fallible)).
pub struct FnObjective<F> {
    dim: usize,
    f: F,
}

impl<F: FnMut(&[f64], &mut [f64]) -> f64> FnObjective<F> {
    /// Wraps the infallible `f` as an objective on `dim` variables.
    pub fn new(dim: usize, f: F) -> Self {
        FnObjective { dim, f }
    }
}

impl<F> std::fmt::Debug for FnObjective<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnObjective")
            .field("dim", &self.dim)
            .finish_non_exhaustive()
    }
}

impl<F: FnMut(&[f64], &mut [f64]) -> f64> Objective for FnObjective<F> {
    fn dim(&self) -> usize {
        self.dim
    }
    fn value_gradient(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
        Ok((self.f)(x, grad))
    }
}

/// A fallible closure as an [`Objective`] (made by [`FnObjective::fallible`]).
pub struct FallibleFnObjective<F> {
    dim: usize,
    f: F,
}

impl FnObjective<fn(&[f64], &mut [f64]) -> f64> {
    /// Wraps the fallible `f` as an objective on `dim` variables: an `Err` stops the solver,
    /// which returns it.
    ///
    /// ```
    /// use intriguing::optim::{FnObjective, Lbfgsb};
    /// use intriguing::Error;
    /// let mut obj = FnObjective::fallible(1, |x: &[f64], g: &mut [f64]| {
    ///     if x[0] < 0.5 {
    ///         return Err(Error::DataFormat("the model is gone".into()));
    ///     }
    ///     g[0] = 2.0 * x[0];
    ///     Ok(x[0] * x[0])
    /// });
    /// let r = Lbfgsb::new().minimize(&mut obj, &[1.0]);
    /// assert!(matches!(r, Err(Error::DataFormat(m)) if m == "the model is gone"));
    /// ```
    pub fn fallible<F>(dim: usize, f: F) -> FallibleFnObjective<F>
    where
        F: FnMut(&[f64], &mut [f64]) -> Result<f64>,
    {
        FallibleFnObjective { dim, f }
    }
}

impl<F> std::fmt::Debug for FallibleFnObjective<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FallibleFnObjective")
            .field("dim", &self.dim)
            .finish_non_exhaustive()
    }
}

impl<F: FnMut(&[f64], &mut [f64]) -> Result<f64>> Objective for FallibleFnObjective<F> {
    fn dim(&self) -> usize {
        self.dim
    }
    fn value_gradient(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
        (self.f)(x, grad)
    }
}

/// Box constraints `lower[i] <= x[i] <= upper[i]` (infinite bounds allowed): one interval for
/// every coordinate of a vector of any length ([`Bounds::interval`]), or one interval per
/// coordinate ([`Bounds::new`], [`Bounds::uniform`]).
///
/// With the `serde` feature it serialises as `{"interval": {"lower": 0.0, "upper": 1.0}}` or
/// `{"per_coordinate": {"lower": [..], "upper": [..]}}` (infinite bounds as `"inf"` /
/// `"-inf"`), and deserialising checks it as [`Bounds::interval`] / [`Bounds::new`] do.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "BoundsRepr", into = "BoundsRepr")
)]
pub struct Bounds {
    repr: BoundsRepr,
}

#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case", deny_unknown_fields)
)]
enum BoundsRepr {
    Interval {
        #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64"))]
        lower: f64,
        #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64"))]
        upper: f64,
    },
    PerCoordinate {
        #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64::vec"))]
        lower: Vec<f64>,
        #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64::vec"))]
        upper: Vec<f64>,
    },
}

#[cfg(feature = "serde")]
impl From<Bounds> for BoundsRepr {
    fn from(b: Bounds) -> Self {
        b.repr
    }
}

#[cfg(feature = "serde")]
impl TryFrom<BoundsRepr> for Bounds {
    type Error = Error;
    fn try_from(r: BoundsRepr) -> Result<Self> {
        match r {
            BoundsRepr::Interval { lower, upper } => Bounds::interval(lower, upper),
            BoundsRepr::PerCoordinate { lower, upper } => Bounds::new(lower, upper),
        }
    }
}

fn check_interval(i: usize, l: f64, u: f64) -> Result<()> {
    if l.is_nan() {
        return Err(Error::NonFinite {
            context: "lower bounds".into(),
            index: i,
        });
    }
    if u.is_nan() {
        return Err(Error::NonFinite {
            context: "upper bounds".into(),
            index: i,
        });
    }
    if l > u || l == f64::INFINITY || u == f64::NEG_INFINITY {
        return Err(Error::EmptyInterval {
            index: i,
            lower: l,
            upper: u,
        });
    }
    Ok(())
}

impl Bounds {
    /// One interval per coordinate. Checks equal lengths, no NaN, `lower[i] <= upper[i]`, no
    /// `+inf` lower / `-inf` upper.
    ///
    /// Errors: [`Error::ShapeMismatch`] for unequal lengths, [`Error::NonFinite`] for a NaN
    /// bound, [`Error::EmptyInterval`] for `lower[i] > upper[i]`, a `+inf` lower or a `-inf`
    /// upper bound.
    pub fn new(lower: Vec<f64>, upper: Vec<f64>) -> Result<Self> {
        if lower.len() != upper.len() {
            return Err(Error::shape("upper bounds", lower.len(), upper.len()));
        }
        for (i, (&l, &u)) in lower.iter().zip(&upper).enumerate() {
            check_interval(i, l, u)?;
        }
        Ok(Bounds {
            repr: BoundsRepr::PerCoordinate { lower, upper },
        })
    }
    /// The same interval `[lo, hi]` for all `n` coordinates (a per-coordinate box of length
    /// `n`).
    pub fn uniform(n: usize, lo: f64, hi: f64) -> Result<Self> {
        Self::new(vec![lo; n], vec![hi; n])
    }
    /// `[0, 1]` for every coordinate (infallible [`interval`](Self::interval)).
    pub(crate) fn unit_interval() -> Self {
        Bounds {
            repr: BoundsRepr::Interval {
                lower: 0.0,
                upper: 1.0,
            },
        }
    }
    /// The same interval `[lo, hi]` for every coordinate of a vector of any length (e.g. the
    /// pixel box `[0, 1]`, whatever the image size). Errors as [`new`](Self::new).
    pub fn interval(lo: f64, hi: f64) -> Result<Self> {
        check_interval(0, lo, hi)?;
        Ok(Bounds {
            repr: BoundsRepr::Interval {
                lower: lo,
                upper: hi,
            },
        })
    }
    /// The interval `(lower, upper)` of coordinate `i` (for a per-coordinate box, `i` must be
    /// `< len`).
    pub fn interval_at(&self, i: usize) -> (f64, f64) {
        match &self.repr {
            BoundsRepr::Interval { lower, upper } => (*lower, *upper),
            BoundsRepr::PerCoordinate { lower, upper } => (lower[i], upper[i]),
        }
    }
    /// `Some((lower, upper))` for a box made by [`interval`](Self::interval).
    pub fn as_interval(&self) -> Option<(f64, f64)> {
        match &self.repr {
            BoundsRepr::Interval { lower, upper } => Some((*lower, *upper)),
            BoundsRepr::PerCoordinate { .. } => None,
        }
    }
    /// Per-coordinate lower bounds (`None` for an [`interval`](Self::interval)).
    pub fn lower(&self) -> Option<&[f64]> {
        match &self.repr {
            BoundsRepr::Interval { .. } => None,
            BoundsRepr::PerCoordinate { lower, .. } => Some(lower),
        }
    }
    /// Per-coordinate upper bounds (`None` for an [`interval`](Self::interval)).
    pub fn upper(&self) -> Option<&[f64]> {
        match &self.repr {
            BoundsRepr::Interval { .. } => None,
            BoundsRepr::PerCoordinate { upper, .. } => Some(upper),
        }
    }
    /// Number of coordinates of a per-coordinate box; `None` for an interval, which fits any
    /// length.
    pub fn len(&self) -> Option<usize> {
        match &self.repr {
            BoundsRepr::Interval { .. } => None,
            BoundsRepr::PerCoordinate { lower, .. } => Some(lower.len()),
        }
    }
    /// True for a per-coordinate box of no coordinates.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
    /// True when the box applies to vectors of length `n`.
    pub fn fits(&self, n: usize) -> bool {
        self.len().is_none_or(|m| m == n)
    }
    /// [`Error::ShapeMismatch`] (context `what`) unless the box applies to length `n`.
    pub(crate) fn check_fits(&self, n: usize, what: &'static str) -> Result<()> {
        match self.len() {
            Some(m) if m != n => Err(Error::shape(what, n, m)),
            _ => Ok(()),
        }
    }
    /// True when every `x[i]` lies in its interval (and, for a per-coordinate box, the
    /// lengths agree). NaN is never inside.
    pub fn contains(&self, x: &[f64]) -> bool {
        self.fits(x.len())
            && x.iter().enumerate().all(|(i, v)| {
                let (l, u) = self.interval_at(i);
                l <= *v && *v <= u
            })
    }
    /// [`Error::OutOfBounds`] naming the first coordinate of `x` outside the box (the length
    /// must fit, see [`fits`](Self::fits)).
    pub fn check_contains(&self, x: &[f64]) -> Result<()> {
        self.check_contains_values(x)
    }
    /// [`check_contains`](Self::check_contains) over any sequence of values (e.g. a strided
    /// ndarray row).
    pub(crate) fn check_contains_values<'a>(
        &self,
        x: impl IntoIterator<Item = &'a f64>,
    ) -> Result<()> {
        for (index, &value) in x.into_iter().enumerate() {
            let (lower, upper) = self.interval_at(index);
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
    /// True when every bound is infinite (the problem is unconstrained).
    pub fn is_unbounded(&self) -> bool {
        match &self.repr {
            BoundsRepr::Interval { lower, upper } => {
                *lower == f64::NEG_INFINITY && *upper == f64::INFINITY
            }
            BoundsRepr::PerCoordinate { lower, upper } => {
                lower.iter().all(|l| *l == f64::NEG_INFINITY)
                    && upper.iter().all(|u| *u == f64::INFINITY)
            }
        }
    }
    /// True when every coordinate has two finite bounds.
    pub fn is_boxed(&self) -> bool {
        match &self.repr {
            BoundsRepr::Interval { lower, upper } => lower.is_finite() && upper.is_finite(),
            BoundsRepr::PerCoordinate { lower, upper } => {
                lower.iter().all(|l| l.is_finite()) && upper.iter().all(|u| u.is_finite())
            }
        }
    }
    /// Inf-norm of the projected gradient `P(x − g) − x`: zero exactly at the KKT points of
    /// the box-constrained problem.
    pub fn projected_gradient_norm(&self, x: &[f64], g: &[f64]) -> f64 {
        let mut m: f64 = 0.0;
        for (i, (&xi, &gi)) in x.iter().zip(g).enumerate() {
            let (l, u) = self.interval_at(i);
            let pg = if gi < 0.0 {
                (xi - u).max(gi)
            } else {
                (xi - l).min(gi)
            };
            m = m.max(pg.abs());
        }
        m
    }
    /// Clamps `x` into the box in place.
    pub fn project(&self, x: &mut [f64]) {
        for (i, v) in x.iter_mut().enumerate() {
            let (l, u) = self.interval_at(i);
            *v = v.clamp(l, u);
        }
    }
    /// Writes the per-coordinate bounds for length `n` into `lower` / `upper` (resized).
    pub(crate) fn materialize(&self, n: usize, lower: &mut Vec<f64>, upper: &mut Vec<f64>) {
        lower.clear();
        upper.clear();
        match &self.repr {
            BoundsRepr::Interval { lower: l, upper: u } => {
                lower.resize(n, *l);
                upper.resize(n, *u);
            }
            BoundsRepr::PerCoordinate { lower: l, upper: u } => {
                lower.extend_from_slice(l);
                upper.extend_from_slice(u);
            }
        }
    }
}

/// Why the solver stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Termination {
    /// Projected-gradient inf-norm `<= pgtol`.
    GradientTolerance,
    /// Relative decrease `(f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= ftol`.
    FunctionTolerance,
    /// Iteration budget spent.
    MaxIterations,
    /// Function-evaluation budget spent (also when it ran out inside a line search: that
    /// iteration did not complete, so no convergence test is claimed).
    MaxEvaluations,
    /// The line search found no acceptable step (the best point is kept).
    LineSearchFailed,
    /// `f(x0)` or `∇f(x0)` was not finite.
    NonFiniteStart,
    /// The observer asked to stop.
    ObserverStopped,
}

impl Termination {
    /// True for the two convergence criteria (gradient or function tolerance).
    pub fn is_converged(self) -> bool {
        matches!(
            self,
            Termination::GradientTolerance | Termination::FunctionTolerance
        )
    }
}

/// The result of a minimisation.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Solution {
    /// Best point found (inside the bounds).
    pub x: Vec<f64>,
    /// `f(x)`.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64"))]
    pub value: f64,
    /// Inf-norm of the projected gradient at `x`.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64"))]
    pub pg_norm: f64,
    /// Iterations done.
    pub iterations: usize,
    /// Function (value + gradient) evaluations.
    pub evaluations: usize,
    /// Why it stopped.
    pub termination: Termination,
}

impl Solution {
    /// True when a convergence criterion (gradient or function tolerance) was met.
    pub fn converged(&self) -> bool {
        self.termination.is_converged()
    }
}

/// What an observer sees after each iteration.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IterationInfo {
    /// Iteration number (1-based).
    pub iteration: usize,
    /// Current value.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64"))]
    pub value: f64,
    /// Inf-norm of the projected gradient.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64"))]
    pub pg_norm: f64,
    /// Evaluations so far.
    pub evaluations: usize,
}

/// Reusable buffers so that repeated solves of the same size do not allocate.
///
/// A workspace adapts itself to the problem size `n` and memory `m` of each solve; it
/// reallocates only when those change. Create one per thread and reuse it.
#[derive(Debug, Default, Clone)]
pub struct Workspace {
    pub(crate) n: usize,
    pub(crate) m: usize,
    pub(crate) x: Vec<f64>,
    pub(crate) g: Vec<f64>,
    pub(crate) xt: Vec<f64>,
    pub(crate) gt: Vec<f64>,
    pub(crate) xb: Vec<f64>,
    pub(crate) gb: Vec<f64>,
    pub(crate) d: Vec<f64>,
    pub(crate) xc: Vec<f64>,
    pub(crate) c: Vec<f64>,
    pub(crate) mem: memory::Memory,
    pub(crate) cauchy: cauchy::CauchyScratch,
    pub(crate) sub: subspace::SubspaceScratch,
    pub(crate) ls: linesearch::MoreThuente,
    pub(crate) lower: Vec<f64>,
    pub(crate) upper: Vec<f64>,
}

impl Workspace {
    /// Accepts the line search's point (`xb`/`gb` when `from_best`, else `xt`/`gt`) as the new
    /// iterate: `s = x⁺ − x`, `y = g⁺ − g` and their inner products in one pass into the
    /// memory's spare pair, the swap, and the memory update (shared by [`Lbfgsb::minimize`]
    /// and [`Stepper`], so the two stay bit-identical).
    pub(crate) fn accept_step(&mut self, from_best: bool) {
        let (sy, ss, yy) = {
            let (xa, ga) = if from_best {
                (&self.xb, &self.gb)
            } else {
                (&self.xt, &self.gt)
            };
            let (s, y) = self.mem.spare_mut();
            let (mut sy, mut ss, mut yy) = (0.0, 0.0, 0.0);
            for (((((si, yi), xa), x), ga), g) in s
                .iter_mut()
                .zip(y.iter_mut())
                .zip(xa)
                .zip(&self.x)
                .zip(ga)
                .zip(&self.g)
            {
                let sv = xa - x;
                let yv = ga - g;
                *si = sv;
                *yi = yv;
                sy += sv * yv;
                ss += sv * sv;
                yy += yv * yv;
            }
            (sy, ss, yy)
        };
        if from_best {
            std::mem::swap(&mut self.x, &mut self.xb);
            std::mem::swap(&mut self.g, &mut self.gb);
        } else {
            std::mem::swap(&mut self.x, &mut self.xt);
            std::mem::swap(&mut self.g, &mut self.gt);
        }
        self.mem.admit_with(sy, ss, yy);
    }

    /// A workspace pre-sized for `n` variables and memory `m` (so that even the first solve
    /// of that size allocates nothing but the result).
    ///
    /// The sizes are only a hint: a size no solve accepts (`m` above [`MAX_MEMORY`], or
    /// `m · n` above [`MAX_HISTORY_ENTRIES`]) pre-sizes nothing, and the first solve sizes
    /// the buffers instead.
    pub fn new(n: usize, m: usize) -> Self {
        let mut ws = Workspace::default();
        let fits = m <= MAX_MEMORY
            && n.checked_mul(m.max(1))
                .is_some_and(|mn| mn <= MAX_HISTORY_ENTRIES);
        if fits {
            ws.prepare(n, m, true);
        }
        ws
    }

    /// Sizes every buffer for `(n, m)`; allocates only when the size changed.
    pub(crate) fn prepare(&mut self, n: usize, m: usize, bounded: bool) {
        if self.n != n {
            for v in [
                &mut self.x,
                &mut self.g,
                &mut self.xt,
                &mut self.gt,
                &mut self.xb,
                &mut self.gb,
                &mut self.d,
                &mut self.xc,
            ] {
                v.clear();
                v.resize(n, 0.0);
            }
        }
        if self.c.len() != 2 * m {
            self.c.resize(2 * m, 0.0);
        }
        self.mem.reset_for(n, m, bounded);
        self.cauchy.resize(n, m);
        self.sub.resize(n, m);
        self.n = n;
        self.m = m;
    }
}

/// Largest history size accepted by [`Lbfgsb::with_memory`] (the compact representation
/// factors dense `2m × 2m` matrices every iteration; published uses take m ≤ 50).
pub const MAX_MEMORY: usize = 1024;

/// Largest `memory · dimension` a solve accepts: the history holds `2 · m · n` numbers
/// (`2^27` f64, 1 GiB, at the cap). A larger product is
/// `InvalidParameter { name: "memory", .. }` at [`Lbfgsb::minimize`], before anything is
/// allocated.
pub const MAX_HISTORY_ENTRIES: usize = 1 << 26;

/// L-BFGS-B solver (plain L-BFGS when no bounds are set).
///
/// Configure with the validating `with_*` setters, then call [`minimize`](Self::minimize)
/// or [`minimize_with`](Self::minimize_with). The solver itself is immutable and can be
/// shared between threads.
///
/// With the `serde` feature it serialises its settings, and deserialising goes through the
/// validating setters (a memory of 0, a negative tolerance, ... are refused).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "LbfgsbRepr")
)]
pub struct Lbfgsb {
    memory: usize,
    max_iterations: usize,
    max_evaluations: usize,
    pgtol: f64,
    ftol: f64,
    line_search: LineSearch,
    bounds: Option<Bounds>,
}

/// The fields of a serialised [`Lbfgsb`], checked by its setters on the way in.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LbfgsbRepr {
    memory: usize,
    max_iterations: usize,
    max_evaluations: usize,
    pgtol: f64,
    ftol: f64,
    line_search: LineSearch,
    bounds: Option<Bounds>,
}

#[cfg(feature = "serde")]
impl TryFrom<LbfgsbRepr> for Lbfgsb {
    type Error = Error;
    fn try_from(r: LbfgsbRepr) -> Result<Self> {
        let ls = r.line_search;
        let solver = Lbfgsb::new()
            .with_memory(r.memory)?
            .with_max_iterations(r.max_iterations)?
            .with_max_evaluations(r.max_evaluations)?
            .with_pgtol(r.pgtol)?
            .with_ftol(r.ftol)?
            .with_line_search(ls.c1, ls.c2, ls.max_trials)?;
        Ok(match r.bounds {
            Some(b) => solver.with_bounds(b),
            None => solver,
        })
    }
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
        Lbfgsb {
            memory: 10,
            max_iterations: 15_000,
            max_evaluations: 15_000,
            pgtol: 1e-5,
            ftol: 1e7 * f64::EPSILON,
            line_search: LineSearch::default(),
            bounds: None,
        }
    }
    /// History size `1 ≤ m ≤` [`MAX_MEMORY`] (parameter `"memory"`); at solve time
    /// `m · n ≤` [`MAX_HISTORY_ENTRIES`] for `n` variables.
    pub fn with_memory(mut self, m: usize) -> Result<Self> {
        validate::at_least_one("memory", m)?;
        if m > MAX_MEMORY {
            return Err(Error::parameter("memory", m, "in [1, 1024] (MAX_MEMORY)"));
        }
        self.memory = m;
        Ok(self)
    }
    /// Iteration budget ≥ 1.
    pub fn with_max_iterations(mut self, n: usize) -> Result<Self> {
        self.max_iterations = validate::at_least_one("max_iterations", n)?;
        Ok(self)
    }
    /// Evaluation budget ≥ 1.
    pub fn with_max_evaluations(mut self, n: usize) -> Result<Self> {
        self.max_evaluations = validate::at_least_one("max_evaluations", n)?;
        Ok(self)
    }
    /// Projected-gradient inf-norm tolerance ≥ 0.
    pub fn with_pgtol(mut self, tol: f64) -> Result<Self> {
        self.pgtol = validate::non_negative("pgtol", tol)?;
        Ok(self)
    }
    /// Relative function-decrease tolerance ≥ 0 (`0` disables the test).
    pub fn with_ftol(mut self, tol: f64) -> Result<Self> {
        self.ftol = validate::non_negative("ftol", tol)?;
        Ok(self)
    }
    /// Line-search constants: 0 < c1 < c2 < 1, max_trials ≥ 1.
    pub fn with_line_search(mut self, c1: f64, c2: f64, max_trials: usize) -> Result<Self> {
        if !(0.0 < c1 && c1 < 1.0) {
            return Err(Error::parameter("line search c1", c1, "in (0, 1) and < c2"));
        }
        if !(c1 < c2 && c2 < 1.0) {
            return Err(Error::parameter("line search c2", c2, "in (c1, 1)"));
        }
        validate::at_least_one("line search max_trials", max_trials)?;
        self.line_search = LineSearch { c1, c2, max_trials };
        Ok(self)
    }
    /// Box constraints (a per-coordinate box's length is checked against `x0` at
    /// `minimize`; an [`interval`](Bounds::interval) fits any length).
    pub fn with_bounds(mut self, bounds: Bounds) -> Self {
        self.bounds = Some(bounds);
        self
    }
    /// Crate-private setters for values the caller has validated already.
    pub(crate) fn with_memory_unchecked(mut self, m: usize) -> Self {
        self.memory = m.clamp(1, MAX_MEMORY);
        self
    }
    pub(crate) fn with_budget_unchecked(mut self, iterations: usize, evaluations: usize) -> Self {
        self.max_iterations = iterations.max(1);
        self.max_evaluations = evaluations.max(1);
        self
    }
    pub(crate) fn with_tolerances_unchecked(mut self, pgtol: f64, ftol: f64) -> Self {
        self.pgtol = pgtol;
        self.ftol = ftol;
        self
    }
    pub(crate) fn with_ftol_unchecked(mut self, ftol: f64) -> Self {
        self.ftol = ftol;
        self
    }
    /// Removes the box constraints.
    pub fn without_bounds(mut self) -> Self {
        self.bounds = None;
        self
    }
    /// History size m.
    pub fn memory(&self) -> usize {
        self.memory
    }
    /// Iteration budget.
    pub fn max_iterations(&self) -> usize {
        self.max_iterations
    }
    /// Evaluation budget.
    pub fn max_evaluations(&self) -> usize {
        self.max_evaluations
    }
    /// Projected-gradient tolerance.
    pub fn pgtol(&self) -> f64 {
        self.pgtol
    }
    /// Relative function-decrease tolerance.
    pub fn ftol(&self) -> f64 {
        self.ftol
    }
    /// Line-search constants.
    pub fn line_search(&self) -> LineSearch {
        self.line_search
    }
    /// The box constraints, if any.
    pub fn bounds(&self) -> Option<&Bounds> {
        self.bounds.as_ref()
    }
    /// Minimises `obj` from `x0`. `x0` must be finite and have length `obj.dim()`; a start
    /// outside the bounds is projected into them.
    ///
    /// Errors: [`Error::ShapeMismatch`] if `x0.len() != obj.dim()` or the bounds have another
    /// length, [`Error::NonFinite`] if `x0` holds NaN/Inf, `InvalidParameter { name:
    /// "memory", .. }` if `memory · n` exceeds [`MAX_HISTORY_ENTRIES`], and the objective's own error
    /// when an evaluation returns `Err` (see [`Objective`]). Everything else (a non-finite
    /// objective at the start, a failed line search, spent budgets) is reported in
    /// [`Solution::termination`] with the best point kept.
    ///
    /// # Examples
    ///
    /// The Rosenbrock function `(1 − x)² + 100 (y − x²)²` (minimum 0 at `(1, 1)`), first
    /// free, then in the box `x ≤ 0.5`, where the minimum is at `(0.5, 0.25)` (on the face
    /// `x = 0.5`, `y = x²`) with value `0.25`:
    ///
    /// ```
    /// use intriguing::optim::{Bounds, FnObjective, Lbfgsb};
    /// let mut rosenbrock = FnObjective::new(2, |x: &[f64], g: &mut [f64]| {
    ///     let (a, b) = (1.0 - x[0], x[1] - x[0] * x[0]);
    ///     g[0] = -2.0 * a - 400.0 * x[0] * b;
    ///     g[1] = 200.0 * b;
    ///     a * a + 100.0 * b * b
    /// });
    /// let solver = Lbfgsb::new().with_pgtol(1e-10)?.with_ftol(0.0)?;
    /// let free = solver.minimize(&mut rosenbrock, &[-1.2, 1.0])?;
    /// assert!(free.converged(), "{:?}", free.termination);
    /// assert!((free.x[0] - 1.0).abs() < 1e-6 && (free.x[1] - 1.0).abs() < 1e-6, "{free:?}");
    ///
    /// let boxed = solver.with_bounds(Bounds::new(vec![-2.0, -2.0], vec![0.5, 2.0])?);
    /// let sol = boxed.minimize(&mut rosenbrock, &[-1.2, 1.0])?;
    /// assert!((sol.x[0] - 0.5).abs() < 1e-12, "{sol:?}");          // on the bound
    /// assert!((sol.x[1] - 0.25).abs() < 1e-6 && (sol.value - 0.25).abs() < 1e-9, "{sol:?}");
    /// # Ok::<(), intriguing::Error>(())
    /// ```
    pub fn minimize<O: Objective + ?Sized>(&self, obj: &mut O, x0: &[f64]) -> Result<Solution> {
        self.minimize_with(obj, x0, &mut Workspace::default(), |_| {
            ControlFlow::Continue(())
        })
    }
    /// [`minimize`](Self::minimize) reusing `ws` and calling `observer` after every
    /// iteration; `ControlFlow::Break(())` stops with [`Termination::ObserverStopped`].
    ///
    /// Once `ws` has been used (or created with [`Workspace::new`]) for the same `n` and
    /// `m`, the only allocation is the returned `Solution::x`.
    ///
    /// # Examples
    ///
    /// Many small-budget solves in the unit box with one workspace, and an observer that
    /// stops as soon as the value drops below a threshold:
    ///
    /// ```
    /// use intriguing::optim::{Bounds, FnObjective, Lbfgsb, Termination, Workspace};
    /// use std::ops::ControlFlow;
    ///
    /// let n = 784;
    /// let solver = Lbfgsb::new()
    ///     .with_bounds(Bounds::interval(0.0, 1.0)?)
    ///     .with_max_iterations(30)?;
    /// let mut ws = Workspace::new(n, solver.memory());
    /// for target in [0.2, 0.5, 0.8] {
    ///     // f(x) = Σ (x_i − target)² / 2, minimised at x = target.
    ///     let mut obj = FnObjective::new(n, |x: &[f64], g: &mut [f64]| {
    ///         let mut f = 0.0;
    ///         for (gi, xi) in g.iter_mut().zip(x) {
    ///             *gi = xi - target;
    ///             f += 0.5 * (xi - target) * (xi - target);
    ///         }
    ///         f
    ///     });
    ///     let sol = solver.minimize_with(&mut obj, &vec![1.0; n], &mut ws, |info| {
    ///         if info.value < 1e-12 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    ///     })?;
    ///     assert!(matches!(
    ///         sol.termination,
    ///         Termination::ObserverStopped | Termination::GradientTolerance
    ///     ));
    ///     assert!(sol.x.iter().all(|v| (v - target).abs() < 1e-5));
    /// }
    /// # Ok::<(), intriguing::Error>(())
    /// ```
    pub fn minimize_with<O: Objective + ?Sized>(
        &self,
        obj: &mut O,
        x0: &[f64],
        ws: &mut Workspace,
        observer: impl FnMut(&IterationInfo) -> ControlFlow<()>,
    ) -> Result<Solution> {
        let n = obj.dim();
        if x0.len() != n {
            return Err(Error::shape("x0", n, x0.len()));
        }
        crate::error::check_finite(x0, "x0")?;
        if let Some(b) = &self.bounds {
            b.check_fits(n, "bounds")?;
        }
        if n.checked_mul(self.memory)
            .is_none_or(|mn| mn > MAX_HISTORY_ENTRIES)
        {
            return Err(Error::parameter(
                "memory",
                self.memory,
                "such that memory · dimension <= 2^26 (MAX_HISTORY_ENTRIES)",
            ));
        }
        driver::run(self, obj, x0, ws, observer)
    }
}

/// Inf-norm of `P(x − g) − x` for the box `[lower, upper]`.
///
/// Four independent maxima, without branches, so the loop runs in SIMD lanes; the maximum
/// of the same values in any order is the same number (`f64::max` ignores NaN either way).
pub(crate) fn projected_gradient_norm(x: &[f64], g: &[f64], lower: &[f64], upper: &[f64]) -> f64 {
    let n = x.len();
    let (g, lower, upper) = (&g[..n], &lower[..n], &upper[..n]);
    let pg = |i: usize| {
        let gi = g[i];
        let toward_upper = (x[i] - upper[i]).max(gi);
        let toward_lower = (x[i] - lower[i]).min(gi);
        if gi < 0.0 { toward_upper } else { toward_lower }.abs()
    };
    fold_in_lanes(n, 0.0, f64::max, pg)
}

/// `op` folded over `term(0..n)` from `init` in four interleaved lanes (so the loop runs in
/// SIMD registers), the lanes then combined: for an order-independent `op` (`f64::max`,
/// `f64::min`) the same number as one fold in order.
#[inline]
fn fold_in_lanes(n: usize, init: f64, op: fn(f64, f64) -> f64, term: impl Fn(usize) -> f64) -> f64 {
    let mut acc = [init; 4];
    let body = n - n % 4;
    for i in (0..body).step_by(4) {
        for (j, a) in acc.iter_mut().enumerate() {
            *a = op(*a, term(i + j));
        }
    }
    for i in body..n {
        acc[0] = op(acc[0], term(i));
    }
    op(op(acc[0], acc[1]), op(acc[2], acc[3]))
}

/// The largest `α ≤ cap` with `x + α d` in the box `[lower, upper]` (before the final
/// `max(0)` of the callers): the minimum of `(u − x)/d` over `d > 0` and `(l − x)/d` over
/// `d < 0`. Four independent minima without branches (the same number as one minimum in
/// order: `f64::min` ignores NaN either way).
pub(crate) fn max_feasible_step(
    x: &[f64],
    d: &[f64],
    lower: &[f64],
    upper: &[f64],
    cap: f64,
) -> f64 {
    let n = x.len();
    let (d, lower, upper) = (&d[..n], &lower[..n], &upper[..n]);
    let ratio = |i: usize| {
        let di = d[i];
        let room = if di > 0.0 {
            upper[i] - x[i]
        } else {
            lower[i] - x[i]
        };
        if (di > 0.0) | (di < 0.0) {
            room / di
        } else {
            f64::INFINITY
        }
    };
    fold_in_lanes(n, cap, f64::min, ratio)
}
