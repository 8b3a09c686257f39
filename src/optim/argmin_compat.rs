//! Interop with [argmin](https://docs.rs/argmin) 0.11 problems over `Vec<f64>` (feature
//! `argmin`).
//!
//! - [`FromArgmin`] runs our L-BFGS-B on an argmin problem (`CostFunction + Gradient`).
//! - [`ToArgmin`] exposes one of our [`Objective`]s to argmin's solvers.
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
//!     .with_bounds(Bounds::uniform(2, 0.0, 1.0)?)?
//!     .minimize(&mut obj, &[0.5, 0.5])?;
//! assert_eq!(sol.x, vec![1.0, 1.0]);
//! # Ok::<(), intriguing::Error>(())
//! ```

use super::Objective;
use argmin::core::{CostFunction, Error as ArgminError, Gradient};
use std::cell::RefCell;

/// An argmin problem seen as an [`Objective`].
///
/// argmin computes value and gradient in two calls on a `&Vec<f64>`: each evaluation copies
/// `x` into an internal buffer (reused, no allocation after the first call) and argmin's
/// `gradient` returns a fresh `Vec`. An error from either call, or a gradient of the wrong
/// length, is reported to the solver as a NaN value (the line search then shrinks the step,
/// or the run ends with `NonFiniteStart`); the last message is kept in
/// [`last_error`](Self::last_error).
#[derive(Debug)]
pub struct FromArgmin<P> {
    problem: P,
    dim: usize,
    buf: Vec<f64>,
    last_error: Option<String>,
}

impl<P> FromArgmin<P> {
    /// Wraps `problem`, a function of `dim` variables.
    pub fn new(problem: P, dim: usize) -> Self {
        FromArgmin {
            problem,
            dim,
            buf: Vec::with_capacity(dim),
            last_error: None,
        }
    }
    /// The wrapped problem.
    pub fn into_inner(self) -> P {
        self.problem
    }
    /// The message of the last error returned by the argmin problem, if any.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
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

    fn value_gradient(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
        self.buf.clear();
        self.buf.extend_from_slice(x);
        let f = match self.problem.cost(&self.buf) {
            Ok(f) => f,
            Err(e) => {
                self.last_error = Some(e.to_string());
                return f64::NAN;
            }
        };
        match self.problem.gradient(&self.buf) {
            Ok(g) if g.len() == grad.len() => {
                grad.copy_from_slice(&g);
                f
            }
            Ok(g) => {
                self.last_error = Some(format!(
                    "gradient of length {} for {} variables",
                    g.len(),
                    grad.len()
                ));
                f64::NAN
            }
            Err(e) => {
                self.last_error = Some(e.to_string());
                f64::NAN
            }
        }
    }
}

/// One of our [`Objective`]s as an argmin problem (`CostFunction + Gradient` over
/// `Vec<f64>`). argmin asks for value and gradient separately, so each of its calls is one
/// full evaluation of the objective.
#[derive(Debug)]
pub struct ToArgmin<O> {
    objective: RefCell<O>,
}

impl<O: Objective> ToArgmin<O> {
    /// Wraps `objective`.
    pub fn new(objective: O) -> Self {
        ToArgmin {
            objective: RefCell::new(objective),
        }
    }
    /// The wrapped objective.
    pub fn into_inner(self) -> O {
        self.objective.into_inner()
    }
}

impl<O: Objective> CostFunction for ToArgmin<O> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, x: &Vec<f64>) -> Result<f64, ArgminError> {
        let mut g = vec![0.0; x.len()];
        Ok(self.objective.borrow_mut().value_gradient(x, &mut g))
    }
}

impl<O: Objective> Gradient for ToArgmin<O> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, x: &Vec<f64>) -> Result<Vec<f64>, ArgminError> {
        let mut g = vec![0.0; x.len()];
        self.objective.borrow_mut().value_gradient(x, &mut g);
        Ok(g)
    }
}
