//! The reverse-communication form of the solver: [`Stepper`] asks for an evaluation
//! ([`Request::Evaluate`]) and receives it ([`Stepper::tell`]), so that a caller can drive
//! many solvers in lockstep and evaluate all their points in one batched call.
//!
//! It runs the same iteration as [`Lbfgsb::minimize`](super::Lbfgsb::minimize)
//! (`driver.rs`, the loop is written out again here as a state machine that stops at each
//! of its two evaluation sites: the start point and each line-search trial); for the same
//! settings, start and function it gives bit-identical iterates, values and evaluation
//! counts (`tests/optim_stepper.rs` checks this on the MGH problems and random boxed
//! quadratics).

use super::cauchy::cauchy_point;
use super::dense::dot;
use super::linesearch::Next;
use super::subspace::subspace_step;
use super::{
    IterationInfo, Lbfgsb, LineSearch, Solution, Termination, Workspace, max_feasible_step,
    projected_gradient_norm,
};
use crate::error::{Error, Result};
use std::ops::ControlFlow;

/// Largest step allowed without bounds (as in L-BFGS-B; the same constant as `driver.rs`).
const STPMAX_FREE: f64 = 1e10;

fn inf_norm(g: &[f64]) -> f64 {
    g.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
}

/// What the [`Stepper`] needs next.
#[derive(Debug, Clone)]
pub enum Request {
    /// Evaluate `f` and `∇f` at [`Stepper::point`] and hand them to [`Stepper::tell`] (or
    /// write `∇f` into [`Stepper::point_and_gradient`] and call [`Stepper::tell_in_place`]).
    Evaluate,
    /// The run is over.
    Done(Solution),
}

/// Where the stepper stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No run started, or the last one finished.
    Idle,
    /// Waiting for the value at the start point (in `ws.x`, `ws.g`).
    Start,
    /// Waiting for the value at a line-search trial point (in `ws.xt`, `ws.gt`).
    Trial,
}

/// L-BFGS-B in reverse communication: the caller evaluates, the stepper decides.
///
/// ```text
/// start(solver, x0) -> Evaluate          (x = point())
/// tell(f(x), ∇f(x)) -> Evaluate | Done(solution)
/// ```
///
/// Each stepper owns its [`Workspace`]; after the first run of a size, a run allocates
/// only the returned [`Solution::x`]. The stepper gives the same iterates, values and
/// counts as [`Lbfgsb::minimize`] for the same objective (bit for bit).
///
/// A non-finite `f` or gradient entry told at a trial point shrinks the step, as in
/// `minimize`; at the start point it ends the run with [`Termination::NonFiniteStart`]. An
/// evaluation that fails outright is the caller's to handle (drop the stepper or start it
/// again).
///
/// # Examples
///
/// Two quadratics minimised in lockstep, their points evaluated together:
///
/// ```
/// use intriguing::optim::{Bounds, Lbfgsb, Request, Stepper};
///
/// let solver = Lbfgsb::new().with_bounds(Bounds::interval(0.0, 1.0)?);
/// let centres = [[0.25, 2.0], [0.75, -1.0]]; // f = ‖x − c‖² / 2, clamped minimum
/// let mut steppers = [Stepper::new(), Stepper::new()];
/// let mut pending = [true, true];
/// let mut results = vec![None, None];
/// for s in &mut steppers {
///     assert!(matches!(s.start(&solver, &[0.5, 0.5])?, Request::Evaluate));
/// }
/// while pending.iter().any(|&p| p) {
///     for k in 0..2 {
///         if !pending[k] {
///             continue;
///         }
///         let (x, g) = steppers[k].point_and_gradient();
///         let mut f = 0.0;
///         for i in 0..2 {
///             g[i] = x[i] - centres[k][i];
///             f += 0.5 * g[i] * g[i];
///         }
///         if let Request::Done(sol) = steppers[k].tell_in_place(f)? {
///             pending[k] = false;
///             results[k] = Some(sol);
///         }
///     }
/// }
/// assert_eq!(results[0].as_ref().unwrap().x, vec![0.25, 1.0]);
/// assert_eq!(results[1].as_ref().unwrap().x, vec![0.75, 0.0]);
/// # Ok::<(), intriguing::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Stepper {
    ws: Workspace,
    phase: Phase,
    // The solver's settings of the current run.
    memory: usize,
    max_iterations: usize,
    max_evaluations: usize,
    pgtol: f64,
    ftol: f64,
    ls_params: LineSearch,
    bounded: bool,
    boxed: bool,
    // The outer iteration.
    f: f64,
    pg: f64,
    evals: usize,
    iter: usize,
    // The line search of the current iteration.
    stp: f64,
    fbest: f64,
    have_best: bool,
    last_is_best: bool,
    trials: usize,
    f_last: f64,
}

impl Default for Stepper {
    fn default() -> Self {
        Self::new()
    }
}

impl Stepper {
    /// An idle stepper with an empty workspace.
    pub fn new() -> Self {
        Self::with_workspace(Workspace::default())
    }

    /// An idle stepper using `ws` (e.g. [`Workspace::new`] pre-sized).
    pub fn with_workspace(ws: Workspace) -> Self {
        Stepper {
            ws,
            phase: Phase::Idle,
            memory: 1,
            max_iterations: 1,
            max_evaluations: 1,
            pgtol: 0.0,
            ftol: 0.0,
            ls_params: LineSearch::default(),
            bounded: false,
            boxed: false,
            f: f64::NAN,
            pg: f64::NAN,
            evals: 0,
            iter: 0,
            stp: 0.0,
            fbest: f64::NAN,
            have_best: false,
            last_is_best: false,
            trials: 0,
            f_last: f64::NAN,
        }
    }

    /// The workspace back (for reuse elsewhere).
    pub fn into_workspace(self) -> Workspace {
        self.ws
    }

    /// Starts a run of `solver` from `x0` (projected into the solver's bounds); the answer
    /// is always [`Request::Evaluate`]. Any earlier run is abandoned.
    ///
    /// Errors as [`Lbfgsb::minimize`]: [`Error::NonFinite`] for NaN/Inf in `x0`,
    /// [`Error::ShapeMismatch`] when the bounds do not fit `x0.len()`.
    pub fn start(&mut self, solver: &Lbfgsb, x0: &[f64]) -> Result<Request> {
        let n = x0.len();
        crate::error::check_finite(x0, "x0")?;
        let bounds = solver.bounds.as_ref().filter(|b| !b.is_unbounded());
        if let Some(b) = bounds {
            b.check_fits(n, "bounds")?;
        }
        match bounds {
            Some(b) => b.materialize(n, &mut self.ws.lower, &mut self.ws.upper),
            None => {
                self.ws.lower.clear();
                self.ws.upper.clear();
            }
        }
        self.bounded = bounds.is_some();
        self.boxed = bounds.is_some_and(|b| b.is_boxed());
        self.memory = solver.memory;
        self.max_iterations = solver.max_iterations;
        self.max_evaluations = solver.max_evaluations;
        self.pgtol = solver.pgtol;
        self.ftol = solver.ftol;
        self.ls_params = solver.line_search;
        let bounded = self.bounded;
        let ws = &mut self.ws;
        ws.prepare(n, self.memory, bounded);
        ws.x.copy_from_slice(x0);
        if bounded {
            for ((v, l), u) in ws.x.iter_mut().zip(&ws.lower).zip(&ws.upper) {
                *v = v.clamp(*l, *u);
            }
        }
        self.evals = 0;
        self.iter = 0;
        self.phase = Phase::Start;
        Ok(Request::Evaluate)
    }

    /// True while a run waits for an evaluation.
    pub fn is_running(&self) -> bool {
        self.phase != Phase::Idle
    }

    /// The point to evaluate (meaningful while [`is_running`](Self::is_running)).
    pub fn point(&self) -> &[f64] {
        match self.phase {
            Phase::Trial => &self.ws.xt,
            _ => &self.ws.x,
        }
    }

    /// The point to evaluate and the buffer its gradient goes into, for
    /// [`tell_in_place`](Self::tell_in_place).
    pub fn point_and_gradient(&mut self) -> (&[f64], &mut [f64]) {
        match self.phase {
            Phase::Trial => (&self.ws.xt, &mut self.ws.gt),
            _ => (&self.ws.x, &mut self.ws.g),
        }
    }

    /// Evaluations told so far in this run.
    pub fn evaluations(&self) -> usize {
        self.evals
    }

    /// Hands over `f` and `∇f` at [`point`](Self::point) (`grad.len()` = the point's
    /// length; a shorter or longer one is an [`Error::ShapeMismatch`] and changes nothing).
    /// Errors as [`tell_in_place`](Self::tell_in_place) too.
    pub fn tell(&mut self, f: f64, grad: &[f64]) -> Result<Request> {
        if self.phase == Phase::Idle {
            return Err(Self::idle());
        }
        let (x, g) = self.point_and_gradient();
        if grad.len() != x.len() {
            return Err(Error::shape("gradient told", x.len(), grad.len()));
        }
        g.copy_from_slice(grad);
        self.tell_in_place(f)
    }

    /// Hands over `f` at [`point`](Self::point), its gradient already written into
    /// [`point_and_gradient`](Self::point_and_gradient)'s buffer.
    ///
    /// Errors: [`Error::InvalidParameter`] (name `"stepper"`) when no run is waiting for an
    /// evaluation (never started, or finished).
    pub fn tell_in_place(&mut self, f: f64) -> Result<Request> {
        if self.phase == Phase::Idle {
            return Err(Self::idle());
        }
        Ok(self.advance(f, &mut |_| ControlFlow::Continue(())))
    }

    fn idle() -> Error {
        Error::parameter(
            "stepper",
            "idle (no run waiting for an evaluation)",
            "a run started with Stepper::start",
        )
    }

    fn pgnorm(&self, x: &[f64], g: &[f64]) -> f64 {
        if self.bounded {
            projected_gradient_norm(x, g, &self.ws.lower, &self.ws.upper)
        } else {
            inf_norm(g)
        }
    }

    fn finish(&mut self, t: Termination) -> Request {
        self.phase = Phase::Idle;
        Request::Done(Solution {
            x: self.ws.x.clone(),
            value: self.f,
            pg_norm: self.pg,
            iterations: self.iter,
            evaluations: self.evals,
            termination: t,
        })
    }

    /// The state machine: consumes the evaluation at the current point and runs until the
    /// next evaluation is needed or the run ends. `observer` sees every iteration, as in
    /// `minimize_with`.
    pub(crate) fn advance(
        &mut self,
        ft: f64,
        observer: &mut dyn FnMut(&IterationInfo) -> ControlFlow<()>,
    ) -> Request {
        match self.phase {
            // Callers check first; an idle stepper reports its last state as spent.
            Phase::Idle => self.finish(Termination::MaxEvaluations),
            Phase::Start => {
                self.f = ft;
                self.evals = 1;
                if !ft.is_finite() || !self.ws.g.iter().all(|v| v.is_finite()) {
                    self.pg = self.pgnorm(&self.ws.x, &self.ws.g);
                    return self.finish(Termination::NonFiniteStart);
                }
                self.pg = self.pgnorm(&self.ws.x, &self.ws.g);
                if self.pg <= self.pgtol {
                    return self.finish(Termination::GradientTolerance);
                }
                self.next_iteration()
            }
            Phase::Trial => self.after_trial(ft, observer),
        }
    }

    /// Steps 2–3 of an iteration up to the first trial point: budgets, search direction,
    /// step limits, the line search's first step. Returns `Evaluate` or `Done`.
    fn next_iteration(&mut self) -> Request {
        let n = self.ws.x.len();
        loop {
            if self.iter >= self.max_iterations {
                return self.finish(Termination::MaxIterations);
            }
            if self.evals >= self.max_evaluations {
                return self.finish(Termination::MaxEvaluations);
            }
            let ws = &mut self.ws;
            // ---- Search direction into ws.d.
            if self.bounded {
                if ws.mem.len > 0 && !ws.mem.form_m() {
                    ws.mem.clear();
                }
                cauchy_point(
                    &ws.x,
                    &ws.g,
                    &ws.lower,
                    &ws.upper,
                    &ws.mem,
                    &mut ws.xc,
                    &mut ws.c,
                    &mut ws.cauchy,
                );
                subspace_step(
                    &ws.x,
                    &ws.g,
                    &ws.lower,
                    &ws.upper,
                    &ws.mem,
                    &ws.xc,
                    &ws.c,
                    &mut ws.xt,
                    &mut ws.sub,
                );
                for i in 0..n {
                    ws.d[i] = ws.xt[i] - ws.x[i];
                }
            } else {
                for (d, g) in ws.d.iter_mut().zip(&ws.g) {
                    *d = -g;
                }
                ws.mem.two_loop(&mut ws.d);
            }
            let gd = dot(&ws.g, &ws.d);
            if !(gd < 0.0) || !gd.is_finite() {
                if ws.mem.len > 0 {
                    ws.mem.clear();
                    continue;
                }
                return self.finish(Termination::LineSearchFailed);
            }

            // ---- Step limits.
            let stpmax = if self.bounded {
                max_feasible_step(&ws.x, &ws.d, &ws.lower, &ws.upper, STPMAX_FREE).max(0.0)
            } else {
                STPMAX_FREE
            };
            if !(stpmax > 0.0) {
                if ws.mem.len > 0 {
                    ws.mem.clear();
                    continue;
                }
                return self.finish(Termination::LineSearchFailed);
            }
            let stp0 = if ws.mem.len == 0 && !self.boxed {
                (1.0 / dot(&ws.d, &ws.d).sqrt()).min(stpmax)
            } else {
                1.0_f64.min(stpmax)
            };

            // ---- Moré–Thuente line search: the first trial.
            self.stp = ws.ls.start(&self.ls_params, self.f, gd, stp0, 0.0, stpmax);
            self.fbest = self.f;
            self.have_best = false;
            self.last_is_best = false;
            self.trials = 0;
            self.f_last = f64::NAN;
            if self.evals >= self.max_evaluations {
                // Budget spent before the first trial: as `driver.rs` (no best point).
                return self.finish(Termination::MaxEvaluations);
            }
            self.set_trial_point();
            self.phase = Phase::Trial;
            return Request::Evaluate;
        }
    }

    /// `xt = P(x + stp d)`.
    fn set_trial_point(&mut self) {
        let ws = &mut self.ws;
        let stp = self.stp;
        if self.bounded {
            for ((((xt, x), d), l), u) in ws
                .xt
                .iter_mut()
                .zip(&ws.x)
                .zip(&ws.d)
                .zip(&ws.lower)
                .zip(&ws.upper)
            {
                *xt = (x + stp * d).clamp(*l, *u);
            }
        } else {
            for ((xt, x), d) in ws.xt.iter_mut().zip(&ws.x).zip(&ws.d) {
                *xt = x + stp * d;
            }
        }
    }

    /// The line search's bookkeeping after a trial evaluation, then either the next trial,
    /// or the accepted point, steps 4–5 and the next iteration.
    fn after_trial(
        &mut self,
        ft: f64,
        observer: &mut dyn FnMut(&IterationInfo) -> ControlFlow<()>,
    ) -> Request {
        self.evals += 1;
        self.trials += 1;
        let ws = &mut self.ws;
        let dphi = dot(&ws.gt, &ws.d);
        let finite = ft.is_finite() && dphi.is_finite();
        self.f_last = ft;
        if finite && ft < self.fbest {
            std::mem::swap(&mut ws.xt, &mut ws.xb);
            std::mem::swap(&mut ws.gt, &mut ws.gb);
            self.fbest = ft;
            self.have_best = true;
            self.last_is_best = true;
        } else {
            self.last_is_best = false;
        }
        let (fv, dv) = if finite {
            (ft, dphi)
        } else {
            (f64::NAN, f64::NAN)
        };
        let mut converged = false;
        match ws.ls.next(self.stp, fv, dv) {
            Next::Converged => converged = true,
            Next::Stalled => {}
            Next::Evaluate(s) => {
                if self.trials < self.ls_params.max_trials {
                    self.stp = s;
                    if self.evals >= self.max_evaluations {
                        return self.end_line_search(false, true, observer);
                    }
                    self.set_trial_point();
                    return Request::Evaluate;
                }
            }
        }
        self.end_line_search(converged, false, observer)
    }

    /// Accepts a point (the strong-Wolfe point, else the best decrease seen) and finishes
    /// the iteration.
    fn end_line_search(
        &mut self,
        converged: bool,
        budget_hit: bool,
        observer: &mut dyn FnMut(&IterationInfo) -> ControlFlow<()>,
    ) -> Request {
        let accept_best = if converged {
            Some(self.last_is_best)
        } else if self.have_best {
            Some(true)
        } else {
            None
        };
        let Some(from_best) = accept_best else {
            if budget_hit {
                return self.finish(Termination::MaxEvaluations);
            }
            if self.ws.mem.len > 0 {
                self.ws.mem.clear();
                return self.next_iteration();
            }
            return self.finish(Termination::LineSearchFailed);
        };
        let f_new = if from_best { self.fbest } else { self.f_last };
        self.ws.accept_step(from_best);
        let f_old = self.f;
        self.f = f_new;
        self.iter += 1;
        self.pg = self.pgnorm(&self.ws.x, &self.ws.g);
        let info = IterationInfo {
            iteration: self.iter,
            value: self.f,
            pg_norm: self.pg,
            evaluations: self.evals,
        };
        if observer(&info).is_break() {
            return self.finish(Termination::ObserverStopped);
        }
        if self.pg <= self.pgtol {
            return self.finish(Termination::GradientTolerance);
        }
        // As in `minimize`: a line search cut off by the budget did not complete its
        // iteration, so its decrease says nothing about convergence.
        if budget_hit {
            return self.finish(Termination::MaxEvaluations);
        }
        let f = self.f;
        if f_old - f <= self.ftol * f_old.abs().max(f.abs()).max(1.0) {
            return self.finish(Termination::FunctionTolerance);
        }
        self.next_iteration()
    }
}
