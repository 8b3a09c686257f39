//! Interop with [argmin](https://docs.rs/argmin) 0.11 problems over `Vec<f64>` (feature
//! `argmin`).
//!
//! - [`FromArgmin`] runs our L-BFGS-B on an argmin problem (`CostFunction + Gradient`).
//! - [`ToArgmin`] exposes one of our [`Objective`]s to argmin's solvers, either as it is
//!   ([`ToArgmin::new`], unconstrained) or inside a box ([`ToArgmin::in_box`]): argmin 0.11's
//!   quasi-Newton solvers have no bounds, so the box is kept by a change of variables, as
//!   Carlini & Wagner (2017) do for their attack: argmin optimises `w ∈ ℝⁿ` and the
//!   objective is evaluated at `x = lo + (hi − lo)(tanh w + 1)/2`, which lies in `[lo, hi]`
//!   for every `w`.
//! - argmin asks for the cost and the gradient in two calls; 0.11 has no combined
//!   cost-and-gradient trait. [`ToArgmin`] evaluates both in its `cost` call and keeps the
//!   gradient for a `gradient` call at the same point, so each cost + gradient pair that
//!   argmin's L-BFGS and line searches request at one point is one evaluation of the
//!   objective ([`ToArgmin::evaluations`] counts them).
//!
//! # Examples
//!
//! ```
//! use argmin::core::{CostFunction, Error, Gradient};
//! use intriguing::optim::argmin_compat::FromArgmin;
//! use intriguing::optim::{Bounds, Lbfgsb};
//!
//! struct Paraboloid;
//! impl CostFunction for Paraboloid {
//!     type Param = Vec<f64>;
//!     type Output = f64;
//!     fn cost(&self, x: &Vec<f64>) -> Result<f64, Error> {
//!         Ok(x.iter().map(|v| (v - 3.0) * (v - 3.0)).sum())
//!     }
//! }
//! impl Gradient for Paraboloid {
//!     type Param = Vec<f64>;
//!     type Gradient = Vec<f64>;
//!     fn gradient(&self, x: &Vec<f64>) -> Result<Vec<f64>, Error> {
//!         Ok(x.iter().map(|v| 2.0 * (v - 3.0)).collect())
//!     }
//! }
//!
//! let mut obj = FromArgmin::new(Paraboloid, 2);
//! let sol = Lbfgsb::new()
//!     .with_bounds(Bounds::uniform(2, 0.0, 1.0)?)
//!     .minimize(&mut obj, &[0.5, 0.5])?;
//! assert_eq!(sol.x, vec![1.0, 1.0]);
//! # Ok::<(), intriguing::Error>(())
//! ```

use super::{Bounds, Objective};
use crate::error::{Error, Result};
use argmin::core::{CostFunction, Error as ArgminError, Gradient};
use std::cell::RefCell;

/// An argmin problem seen as an [`Objective`].
///
/// argmin computes value and gradient in two calls on a `&Vec<f64>`: each evaluation copies
/// `x` into an internal buffer (reused, no allocation after the first call) and argmin's
/// `gradient` returns a fresh `Vec`. An error from either call is returned as
/// [`Error::Argmin`] (the solver stops and returns it); a gradient of the wrong length is an
/// [`Error::ShapeMismatch`].
#[derive(Debug)]
pub struct FromArgmin<P> {
    problem: P,
    dim: usize,
    buf: Vec<f64>,
}

impl<P> FromArgmin<P> {
    /// Wraps `problem`, a function of `dim` variables.
    pub fn new(problem: P, dim: usize) -> Self {
        FromArgmin {
            problem,
            dim,
            buf: Vec::with_capacity(dim),
        }
    }
    /// The wrapped problem.
    pub fn into_inner(self) -> P {
        self.problem
    }
}

impl<P> Objective for FromArgmin<P>
where
    P: CostFunction<Param = Vec<f64>, Output = f64>
        + Gradient<Param = Vec<f64>, Gradient = Vec<f64>>,
{
    fn dim(&self) -> usize {
        self.dim
    }

    fn value_gradient(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
        self.buf.clear();
        self.buf.extend_from_slice(x);
        let f = self
            .problem
            .cost(&self.buf)
            .map_err(|e| Error::Argmin(e.to_string()))?;
        let g = self
            .problem
            .gradient(&self.buf)
            .map_err(|e| Error::Argmin(e.to_string()))?;
        if g.len() != grad.len() {
            return Err(Error::shape("argmin gradient", grad.len(), g.len()));
        }
        grad.copy_from_slice(&g);
        Ok(f)
    }
}

/// The last evaluation: argmin's parameter, the value and argmin's gradient there.
#[derive(Debug, Default)]
struct Cache {
    valid: bool,
    param: Vec<f64>,
    value: f64,
    grad: Vec<f64>,
    /// Scratch: the point `x` in the objective's coordinates and its gradient.
    x: Vec<f64>,
    gx: Vec<f64>,
    evaluations: usize,
}

/// The box of [`ToArgmin::in_box`], one interval per coordinate.
#[derive(Debug, Clone)]
struct TanhBox {
    lower: Vec<f64>,
    upper: Vec<f64>,
}

impl TanhBox {
    /// `x = lo + (hi − lo)(tanh w + 1)/2`, clamped so rounding never leaves `[lo, hi]`.
    fn point(&self, w: &[f64], x: &mut [f64]) {
        for (((xi, &wi), &l), &u) in x.iter_mut().zip(w).zip(&self.lower).zip(&self.upper) {
            *xi = (l + (u - l) * 0.5 * (wi.tanh() + 1.0)).clamp(l, u);
        }
    }
    /// `dx/dw = (hi − lo)(1 − tanh² w)/2` applied to `gx`, into `gw`.
    fn pull_back(&self, w: &[f64], gx: &[f64], gw: &mut [f64]) {
        for ((((g, &wi), &gxi), &l), &u) in gw
            .iter_mut()
            .zip(w)
            .zip(gx)
            .zip(&self.lower)
            .zip(&self.upper)
        {
            let t = wi.tanh();
            *g = gxi * 0.5 * (u - l) * (1.0 - t * t);
        }
    }
    /// The `w` of a point `x` inside the box (a coordinate on a bound maps to `±atanh(1 −
    /// 1e-12)` ≈ ±13.8, whose image is within `1e-12 (hi − lo)` of the bound).
    fn param(&self, x: &[f64]) -> Vec<f64> {
        const EDGE: f64 = 1.0 - 1e-12;
        x.iter()
            .zip(&self.lower)
            .zip(&self.upper)
            .map(|((&xi, &l), &u)| {
                if u == l {
                    return 0.0;
                }
                let t = (2.0 * (xi - l) / (u - l) - 1.0).clamp(-EDGE, EDGE);
                t.atanh()
            })
            .collect()
    }
}

/// One of our [`Objective`]s as an argmin problem (`CostFunction + Gradient` over
/// `Vec<f64>`), unconstrained ([`new`](Self::new)) or inside a box
/// ([`in_box`](Self::in_box)). A `cost` call evaluates value and gradient once and keeps
/// both; a `gradient` call at the same parameter reuses them. An objective error becomes an
/// argmin error with the same message.
///
/// # Examples
///
/// A paraboloid whose unconstrained minimum `(2, −1)` lies outside the box `[0, 1]²`:
/// argmin's L-BFGS in tanh space stays in the box and ends near the corner `(1, 0)`.
///
/// ```
/// use argmin::core::{Executor, State};
/// use argmin::solver::linesearch::MoreThuenteLineSearch;
/// use argmin::solver::quasinewton::LBFGS;
/// use intriguing::optim::argmin_compat::ToArgmin;
/// use intriguing::optim::{Bounds, FnObjective};
///
/// let f = FnObjective::new(2, |x: &[f64], g: &mut [f64]| {
///     g[0] = 2.0 * (x[0] - 2.0);
///     g[1] = 2.0 * (x[1] + 1.0);
///     (x[0] - 2.0).powi(2) + (x[1] + 1.0).powi(2)
/// });
/// let problem = ToArgmin::in_box(f, &Bounds::interval(0.0, 1.0)?)?;
/// let w0 = problem.param_of(&[0.5, 0.5]);
/// let solver = LBFGS::new(MoreThuenteLineSearch::new(), 5);
/// let res = Executor::new(problem, solver)
///     .configure(|s| s.param(w0).max_iters(100))
///     .run()
///     .expect("argmin");
/// let w = res.state().get_best_param().expect("a best point").clone();
/// let x = res.problem.problem.as_ref().expect("problem").point_of(&w);
/// assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
/// assert!(x[0] > 0.99 && x[1] < 0.01, "{x:?}");
/// # Ok::<(), intriguing::Error>(())
/// ```
#[derive(Debug)]
pub struct ToArgmin<O> {
    objective: RefCell<O>,
    cache: RefCell<Cache>,
    tanh: Option<TanhBox>,
}

impl<O: Objective> ToArgmin<O> {
    /// Wraps `objective` as it is: argmin's unconstrained solvers see every `x ∈ ℝⁿ`.
    pub fn new(objective: O) -> Self {
        ToArgmin {
            objective: RefCell::new(objective),
            cache: RefCell::new(Cache::default()),
            tanh: None,
        }
    }
    /// Wraps `objective` in the box `bounds` by the change of variables
    /// `x = lo + (hi − lo)(tanh w + 1)/2`: argmin's parameter is `w`, the objective only ever
    /// sees points inside the box. Map a start point with [`param_of`](Self::param_of) and
    /// argmin's result back with [`point_of`](Self::point_of).
    ///
    /// A start coordinate exactly on a bound maps to `w ≈ ±13.8`, where the map is flat to
    /// 1e-12: the coordinate can barely move, and argmin 0.11's Moré–Thuente line search was
    /// seen to stall there (a 784-pixel start with pixels at 0 and 1 did not return). Start
    /// strictly inside the box, or use this crate's [`Lbfgsb`](crate::optim::Lbfgsb), which
    /// keeps bounds exactly.
    ///
    /// Errors: [`Error::ShapeMismatch`] when a per-coordinate box does not have
    /// `objective.dim()` coordinates; [`Error::InvalidParameter`] (name `"bounds"`) when a
    /// bound is infinite (the change of variables needs a finite box).
    pub fn in_box(objective: O, bounds: &Bounds) -> Result<Self> {
        let n = objective.dim();
        bounds.check_fits(n, "argmin box")?;
        if !bounds.is_boxed() {
            return Err(Error::parameter(
                "bounds",
                "a box with an infinite bound",
                "finite lower and upper bounds (tanh change of variables)",
            ));
        }
        let (lower, upper) = (0..n).map(|i| bounds.interval_at(i)).unzip();
        Ok(ToArgmin {
            objective: RefCell::new(objective),
            cache: RefCell::new(Cache::default()),
            tanh: Some(TanhBox { lower, upper }),
        })
    }
    /// argmin's parameter for the objective's point `x` (the identity without a box; for a
    /// box, `x` is clamped into it first).
    pub fn param_of(&self, x: &[f64]) -> Vec<f64> {
        match &self.tanh {
            None => x.to_vec(),
            Some(b) => b.param(x),
        }
    }
    /// The objective's point for argmin's parameter `w` (the identity without a box; inside
    /// the box for every `w` with one).
    pub fn point_of(&self, w: &[f64]) -> Vec<f64> {
        match &self.tanh {
            None => w.to_vec(),
            Some(b) => {
                let mut x = vec![0.0; w.len()];
                b.point(w, &mut x);
                x
            }
        }
    }
    /// Number of objective evaluations so far (one per distinct parameter argmin asked for).
    pub fn evaluations(&self) -> usize {
        self.cache.borrow().evaluations
    }
    /// The wrapped objective.
    pub fn into_inner(self) -> O {
        self.objective.into_inner()
    }

    /// Evaluates at `w` unless the cache holds it already.
    fn evaluate(&self, w: &[f64]) -> std::result::Result<(), ArgminError> {
        let mut c = self.cache.borrow_mut();
        if c.valid && c.param == w {
            return Ok(());
        }
        let mut obj = self.objective.borrow_mut();
        let n = obj.dim();
        if w.len() != n {
            return Err(ArgminError::msg(format!(
                "parameter of length {} for an objective of {} variables",
                w.len(),
                n
            )));
        }
        let c = &mut *c;
        c.valid = false;
        c.evaluations += 1;
        c.x.resize(n, 0.0);
        c.gx.resize(n, 0.0);
        c.grad.resize(n, 0.0);
        let value = match &self.tanh {
            None => obj.value_gradient(w, &mut c.grad),
            Some(b) => {
                b.point(w, &mut c.x);
                let v = obj.value_gradient(&c.x, &mut c.gx);
                b.pull_back(w, &c.gx, &mut c.grad);
                v
            }
        }
        .map_err(|e| ArgminError::msg(e.to_string()))?;
        c.value = value;
        c.param.clear();
        c.param.extend_from_slice(w);
        c.valid = true;
        Ok(())
    }
}

impl<O: Objective> CostFunction for ToArgmin<O> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, w: &Vec<f64>) -> std::result::Result<f64, ArgminError> {
        self.evaluate(w)?;
        Ok(self.cache.borrow().value)
    }
}

impl<O: Objective> Gradient for ToArgmin<O> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, w: &Vec<f64>) -> std::result::Result<Vec<f64>, ArgminError> {
        self.evaluate(w)?;
        Ok(self.cache.borrow().grad.clone())
    }
}
