//! The outer iteration shared by L-BFGS and L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995,
//! Algorithm L-BFGS-B, Section 6):
//!
//! 1. stop if the projected gradient is small;
//! 2. search direction: two-loop `d = −H g` (no bounds), or Cauchy point + subspace
//!    minimisation `d = x̄ − x` (bounds);
//! 3. Moré–Thuente line search on `x + α d`, `α ≤ α_max` = largest feasible step
//!    (`1e10` without bounds); first step `min(1/‖d‖₂, α_max)` while the memory is empty
//!    (unless every variable has two finite bounds), `1` afterwards;
//! 4. store `s = x⁺ − x`, `y = g⁺ − g` if `sᵀy > ε ‖s‖ ‖y‖`;
//! 5. stop on the relative decrease test or a budget.
//!
//! An objective that returns `Err` stops the run at once; the error is returned unchanged.
//!
//! When the line search fails with a nonempty memory, the memory is dropped and the
//! iteration retried from the steepest-descent model (as the L-BFGS-B paper's code does);
//! with an empty memory the run ends with `LineSearchFailed`, keeping the best point.

use super::cauchy::cauchy_point;
use super::dense::dot;
use super::linesearch::Next;
use super::subspace::subspace_step;
use super::{
    IterationInfo, Lbfgsb, Objective, Solution, Termination, Workspace, max_feasible_step,
    projected_gradient_norm,
};
use crate::error::Result;
use std::ops::ControlFlow;

/// Largest step allowed without bounds (as in L-BFGS-B).
const STPMAX_FREE: f64 = 1e10;

fn inf_norm(g: &[f64]) -> f64 {
    g.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
}

pub(crate) fn run<O: Objective + ?Sized>(
    cfg: &Lbfgsb,
    obj: &mut O,
    x0: &[f64],
    ws: &mut Workspace,
    observer: impl FnMut(&IterationInfo) -> ControlFlow<()>,
) -> Result<Solution> {
    let n = x0.len();
    let bounds = cfg.bounds.as_ref().filter(|b| !b.is_unbounded());
    // The per-coordinate bounds live in the workspace for the run (no allocation once sized).
    let (mut lower, mut upper) = (std::mem::take(&mut ws.lower), std::mem::take(&mut ws.upper));
    match bounds {
        Some(b) => b.materialize(n, &mut lower, &mut upper),
        None => {
            lower.clear();
            upper.clear();
        }
    }
    let bounded = bounds.is_some();
    let boxed = bounds.is_some_and(|b| b.is_boxed());
    let out = run_in(cfg, obj, x0, ws, observer, &lower, &upper, bounded, boxed);
    ws.lower = lower;
    ws.upper = upper;
    out
}

#[allow(clippy::too_many_arguments)]
fn run_in<O: Objective + ?Sized>(
    cfg: &Lbfgsb,
    obj: &mut O,
    x0: &[f64],
    ws: &mut Workspace,
    mut observer: impl FnMut(&IterationInfo) -> ControlFlow<()>,
    lower: &[f64],
    upper: &[f64],
    bounded: bool,
    boxed: bool,
) -> Result<Solution> {
    let n = x0.len();
    ws.prepare(n, cfg.memory, bounded);
    let pgnorm = |x: &[f64], g: &[f64]| {
        if bounded {
            projected_gradient_norm(x, g, lower, upper)
        } else {
            inf_norm(g)
        }
    };

    ws.x.copy_from_slice(x0);
    if bounded {
        for ((v, l), u) in ws.x.iter_mut().zip(lower).zip(upper) {
            *v = v.clamp(*l, *u);
        }
    }
    let mut f = obj.value_gradient(&ws.x, &mut ws.g)?;
    let mut evals = 1usize;
    let mut iter = 0usize;
    let finish =
        |ws: &Workspace, f: f64, pg: f64, iter: usize, evals: usize, t: Termination| Solution {
            x: ws.x.clone(),
            value: f,
            pg_norm: pg,
            iterations: iter,
            evaluations: evals,
            termination: t,
        };
    if !f.is_finite() || !ws.g.iter().all(|v| v.is_finite()) {
        let pg = pgnorm(&ws.x, &ws.g);
        return Ok(finish(ws, f, pg, 0, evals, Termination::NonFiniteStart));
    }
    let mut pg = pgnorm(&ws.x, &ws.g);
    if pg <= cfg.pgtol {
        return Ok(finish(ws, f, pg, 0, evals, Termination::GradientTolerance));
    }
    let ls_params = cfg.line_search;

    let termination = loop {
        if iter >= cfg.max_iterations {
            break Termination::MaxIterations;
        }
        if evals >= cfg.max_evaluations {
            break Termination::MaxEvaluations;
        }

        // ---- Search direction into ws.d.
        if bounded {
            if ws.mem.len > 0 && !ws.mem.form_m() {
                ws.mem.clear();
            }
            cauchy_point(
                &ws.x,
                &ws.g,
                lower,
                upper,
                &ws.mem,
                &mut ws.xc,
                &mut ws.c,
                &mut ws.cauchy,
            );
            subspace_step(
                &ws.x,
                &ws.g,
                lower,
                upper,
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
            // d = H(−g): the recursion is linear, so negate on the copy.
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
            break Termination::LineSearchFailed;
        }

        // ---- Step limits.
        let stpmax = if bounded {
            max_feasible_step(&ws.x, &ws.d, lower, upper, STPMAX_FREE).max(0.0)
        } else {
            STPMAX_FREE
        };
        if !(stpmax > 0.0) {
            if ws.mem.len > 0 {
                ws.mem.clear();
                continue;
            }
            break Termination::LineSearchFailed;
        }
        let stp0 = if ws.mem.len == 0 && !boxed {
            (1.0 / dot(&ws.d, &ws.d).sqrt()).min(stpmax)
        } else {
            1.0_f64.min(stpmax)
        };

        // ---- Moré–Thuente line search. The best trial lives in (xb, gb); the latest in
        // (xt, gt); buffers are swapped, never copied.
        let mut stp = ws.ls.start(&ls_params, f, gd, stp0, 0.0, stpmax);
        let mut fbest = f;
        let mut have_best = false;
        let mut last_is_best = false;
        let mut converged = false;
        let mut budget_hit = false;
        let mut trials = 0usize;
        let mut f_last = f64::NAN;
        loop {
            if evals >= cfg.max_evaluations {
                budget_hit = true;
                break;
            }
            if bounded {
                for ((((xt, x), d), l), u) in
                    ws.xt.iter_mut().zip(&ws.x).zip(&ws.d).zip(lower).zip(upper)
                {
                    *xt = (x + stp * d).clamp(*l, *u);
                }
            } else {
                for ((xt, x), d) in ws.xt.iter_mut().zip(&ws.x).zip(&ws.d) {
                    *xt = x + stp * d;
                }
            }
            let ft = obj.value_gradient(&ws.xt, &mut ws.gt)?;
            evals += 1;
            trials += 1;
            let dphi = dot(&ws.gt, &ws.d);
            let finite = ft.is_finite() && dphi.is_finite();
            f_last = ft;
            if finite && ft < fbest {
                std::mem::swap(&mut ws.xt, &mut ws.xb);
                std::mem::swap(&mut ws.gt, &mut ws.gb);
                fbest = ft;
                have_best = true;
                last_is_best = true;
            } else {
                last_is_best = false;
            }
            let (fv, dv) = if finite {
                (ft, dphi)
            } else {
                (f64::NAN, f64::NAN)
            };
            match ws.ls.next(stp, fv, dv) {
                Next::Converged => {
                    converged = true;
                    break;
                }
                Next::Stalled => break,
                Next::Evaluate(s) => {
                    if trials >= ls_params.max_trials {
                        break;
                    }
                    stp = s;
                }
            }
        }

        // ---- Accept a point: the strong-Wolfe point, else the best decrease seen.
        let accept_best = if converged {
            if last_is_best {
                Some(true)
            } else {
                Some(false)
            }
        } else if have_best {
            Some(true)
        } else {
            None
        };
        let Some(from_best) = accept_best else {
            if budget_hit {
                break Termination::MaxEvaluations;
            }
            if ws.mem.len > 0 {
                ws.mem.clear();
                continue;
            }
            break Termination::LineSearchFailed;
        };
        let f_new = if from_best { fbest } else { f_last };
        ws.accept_step(from_best);
        let f_old = f;
        f = f_new;
        iter += 1;
        pg = pgnorm(&ws.x, &ws.g);

        let info = IterationInfo {
            iteration: iter,
            value: f,
            pg_norm: pg,
            evaluations: evals,
        };
        if observer(&info).is_break() {
            break Termination::ObserverStopped;
        }
        if pg <= cfg.pgtol {
            break Termination::GradientTolerance;
        }
        // A line search cut off by the budget did not complete its iteration: the relative
        // decrease of a truncated step says nothing about convergence.
        if budget_hit {
            break Termination::MaxEvaluations;
        }
        if f_old - f <= cfg.ftol * f_old.abs().max(f.abs()).max(1.0) {
            break Termination::FunctionTolerance;
        }
    };
    Ok(finish(ws, f, pg, iter, evals, termination))
}
