//! The Moré–Thuente (1994) line search for the strong Wolfe conditions, written as a
//! reverse-communication state machine: the caller evaluates `φ(α) = f(x + α d)` and
//! `φ'(α) = ∇f(x + α d)ᵀ d` at the step it is given and feeds them back.
//!
//! Notation of the paper: `μ` (here `c1`) is the sufficient-decrease constant, `η` (here
//! `c2`) the curvature constant. The search keeps an interval `I` with end points `α_l`
//! (`stx`: the best step so far) and `α_u` (`sty`), and produces trial steps by the safeguarded
//! cubic / quadratic interpolation of Section 4 (cases 1–4). In the first stage it works on
//! the auxiliary function `ψ(α) = φ(α) − φ(0) − μ α φ'(0)` and switches to `φ` once a step
//! with `ψ(α) ≤ 0` and `φ'(α) ≥ 0` has been seen (Section 3). Bisection is forced when the
//! interval does not shrink by a factor 0.66 in two trials (Section 4, last paragraph).
//!
//! A non-finite `φ(α)` or `φ'(α)` cannot be interpolated: the step is shrunk towards `α_l`
//! instead, and `α` is never again allowed at or beyond that step.

/// Line-search constants.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LineSearch {
    /// Sufficient-decrease constant `c1` (`μ` in Moré–Thuente), `0 < c1 < c2`.
    pub c1: f64,
    /// Curvature constant `c2` (`η`), `c1 < c2 < 1`.
    pub c2: f64,
    /// Maximum number of trial steps (function evaluations) per line search.
    pub max_trials: usize,
}

impl Default for LineSearch {
    fn default() -> Self {
        LineSearch {
            c1: 1e-4,
            c2: 0.9,
            max_trials: 20,
        }
    }
}

/// Relative interval-width tolerance (MINPACK-2's `xtol`, as in L-BFGS-B).
const XTOL: f64 = 0.1;
/// Extrapolation factors: before bracketing, the next step lies in
/// `[α + 1.1 (α − α_l), α + 4 (α − α_l)]`.
const XTRAP_LOWER: f64 = 1.1;
const XTRAP_UPPER: f64 = 4.0;
/// Shrink factor after a non-finite trial.
const NONFINITE_SHRINK: f64 = 0.5;

/// What the caller should do next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Next {
    /// Evaluate at this step.
    Evaluate(f64),
    /// The last evaluated step satisfies the strong Wolfe conditions.
    Converged,
    /// The search cannot make progress (interval too small, rounding errors, or the step is
    /// stuck at `stpmin`/`stpmax`); the caller decides from the best point seen.
    Stalled,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct MoreThuente {
    c1: f64,
    c2: f64,
    finit: f64,
    ginit: f64,
    gtest: f64,
    stpmin: f64,
    stpmax: f64,
    // Interval and bracket state.
    brackt: bool,
    stage1: bool,
    width: f64,
    width1: f64,
    stx: f64,
    fx: f64,
    gx: f64,
    sty: f64,
    fy: f64,
    gy: f64,
    stmin: f64,
    stmax: f64,
    /// Smallest step at which the function was not finite (∞ if none).
    limit: f64,
    /// Relative interval-width tolerance for this search.
    xtol: f64,
}

impl MoreThuente {
    /// Starts a search from `φ(0) = f0`, `φ'(0) = g0 < 0`, trial step `stp` in
    /// `[stpmin, stpmax]`. Returns the first step to evaluate.
    pub(crate) fn start(
        &mut self,
        params: &LineSearch,
        f0: f64,
        g0: f64,
        stp: f64,
        stpmin: f64,
        stpmax: f64,
    ) -> f64 {
        debug_assert!(g0 < 0.0);
        self.c1 = params.c1;
        self.c2 = params.c2;
        self.finit = f0;
        self.ginit = g0;
        self.gtest = params.c1 * g0;
        self.stpmin = stpmin;
        self.stpmax = stpmax;
        self.brackt = false;
        self.stage1 = true;
        self.width = stpmax - stpmin;
        self.width1 = 2.0 * self.width;
        self.stx = 0.0;
        self.fx = f0;
        self.gx = g0;
        self.sty = 0.0;
        self.fy = f0;
        self.gy = g0;
        self.stmin = 0.0;
        let stp = stp.clamp(stpmin, stpmax);
        self.stmax = stp + XTRAP_UPPER * stp;
        self.limit = f64::INFINITY;
        self.xtol = XTOL;
        stp
    }

    /// Overrides the interval-width tolerance of the current search (the paper's test
    /// problems are run with a tighter one than L-BFGS-B's 0.1).
    #[cfg(test)]
    pub(crate) fn set_xtol(&mut self, xtol: f64) {
        self.xtol = xtol;
    }

    /// Feeds `φ(stp) = f`, `φ'(stp) = g` back; returns the next action.
    pub(crate) fn next(&mut self, stp: f64, f: f64, g: f64) -> Next {
        if !(f.is_finite() && g.is_finite()) {
            // Cannot interpolate: shrink towards the best step and never come back here.
            self.limit = self.limit.min(stp);
            let new = self.stx + NONFINITE_SHRINK * (stp - self.stx);
            if !(new > self.stpmin) || new == stp || (new - self.stx).abs() <= f64::EPSILON * new {
                return Next::Stalled;
            }
            if self.brackt {
                // The far end of the bracket lies beyond the non-finite region: keep the
                // interval consistent by pulling it in.
                if (self.sty - self.stx) * (stp - self.stx) > 0.0
                    && (self.sty - self.stx).abs() > (stp - self.stx).abs()
                {
                    self.sty = stp;
                    self.fy = f64::INFINITY;
                }
                self.stmin = self.stx.min(self.sty);
                self.stmax = self.stx.max(self.sty);
            } else {
                self.stmax = stp;
            }
            return Next::Evaluate(new);
        }

        let ftest = self.finit + stp * self.gtest;
        if self.stage1 && f <= ftest && g >= 0.0 {
            self.stage1 = false;
        }
        // Strong Wolfe: sufficient decrease and |φ'(α)| ≤ c2 |φ'(0)|.
        if f <= ftest && g.abs() <= self.c2 * (-self.ginit) {
            return Next::Converged;
        }
        // Stalls: rounding errors, interval below tolerance, step stuck at an end.
        if self.brackt && (stp <= self.stmin || stp >= self.stmax) {
            return Next::Stalled;
        }
        if self.brackt && self.stmax - self.stmin <= self.xtol * self.stmax {
            return Next::Stalled;
        }
        if stp == self.stpmax && f <= ftest && g <= self.gtest {
            return Next::Stalled;
        }
        if stp == self.stpmin && (f > ftest || g >= self.gtest) {
            return Next::Stalled;
        }

        let mut new = stp;
        if self.stage1 && f <= self.fx && f > ftest {
            // Stage 1 on the auxiliary function ψ (its derivative is φ' − μ φ'(0)).
            let gt = self.gtest;
            let mut fxm = self.fx - self.stx * gt;
            let mut fym = self.fy - self.sty * gt;
            let mut gxm = self.gx - gt;
            let mut gym = self.gy - gt;
            let fm = f - stp * gt;
            let gm = g - gt;
            step(
                &mut self.stx,
                &mut fxm,
                &mut gxm,
                &mut self.sty,
                &mut fym,
                &mut gym,
                &mut new,
                fm,
                gm,
                &mut self.brackt,
                self.stmin,
                self.stmax,
            );
            self.fx = fxm + self.stx * gt;
            self.fy = fym + self.sty * gt;
            self.gx = gxm + gt;
            self.gy = gym + gt;
        } else {
            step(
                &mut self.stx,
                &mut self.fx,
                &mut self.gx,
                &mut self.sty,
                &mut self.fy,
                &mut self.gy,
                &mut new,
                f,
                g,
                &mut self.brackt,
                self.stmin,
                self.stmax,
            );
        }

        if self.brackt {
            // Force sufficient shrinking of the interval (bisection).
            if (self.sty - self.stx).abs() >= 0.66 * self.width1 {
                new = self.stx + 0.5 * (self.sty - self.stx);
            }
            self.width1 = self.width;
            self.width = (self.sty - self.stx).abs();
            self.stmin = self.stx.min(self.sty);
            self.stmax = self.stx.max(self.sty);
        } else {
            self.stmin = new + XTRAP_LOWER * (new - self.stx);
            self.stmax = new + XTRAP_UPPER * (new - self.stx);
        }
        new = new.clamp(self.stpmin, self.stpmax);
        if new >= self.limit {
            new = self.stx + NONFINITE_SHRINK * (self.limit - self.stx);
        }
        if self.brackt
            && (new <= self.stmin
                || new >= self.stmax
                || self.stmax - self.stmin <= self.xtol * self.stmax)
        {
            // No further progress is possible. MINPACK evaluates the best step `stx` once
            // more and then reports the stall; the caller keeps its best point, so report
            // the stall now and save that evaluation.
            return Next::Stalled;
        }
        Next::Evaluate(new)
    }
}

/// One safeguarded step of Moré–Thuente Section 4: updates the interval of uncertainty
/// `[stx, sty]` and computes the new trial step `stp`.
///
/// `stx, fx, dx`: best step so far (lowest value with its derivative); `sty, fy, dy`: the
/// other end; `stp, fp, dp`: the current trial. Cases:
/// 1. `fp > fx`: the minimum is bracketed; take the cubic step if it is closer to `stx`
///    than the quadratic (secant-free) step, else their average.
/// 2. `fp ≤ fx` and derivatives of opposite sign: bracketed; take the cubic or secant step,
///    whichever is farther from `stp`.
/// 3. `fp ≤ fx`, same sign, `|dp|` decreases: the cubic step if it exists and is on the right
///    side, else the end point; safeguarded within the bracket (0.66 rule) or extrapolation
///    bounds.
/// 4. `fp ≤ fx`, same sign, `|dp|` does not decrease: cubic step between `stp` and `sty` if
///    bracketed, else the extrapolation bound.
#[allow(clippy::too_many_arguments)]
fn step(
    stx: &mut f64,
    fx: &mut f64,
    dx: &mut f64,
    sty: &mut f64,
    fy: &mut f64,
    dy: &mut f64,
    stp: &mut f64,
    fp: f64,
    dp: f64,
    brackt: &mut bool,
    stpmin: f64,
    stpmax: f64,
) {
    let sgnd = dp * dx.signum();
    let stpf;
    if fp > *fx {
        // Case 1.
        let theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (*dx / s) * (dp / s)).max(0.0).sqrt();
        if *stp < *stx {
            gamma = -gamma;
        }
        let p = (gamma - *dx) + theta;
        let q = ((gamma - *dx) + gamma) + dp;
        let r = p / q;
        let stpc = *stx + r * (*stp - *stx);
        let stpq = *stx + ((*dx / ((*fx - fp) / (*stp - *stx) + *dx)) / 2.0) * (*stp - *stx);
        stpf = if (stpc - *stx).abs() < (stpq - *stx).abs() {
            stpc
        } else {
            stpc + (stpq - stpc) / 2.0
        };
        *brackt = true;
    } else if sgnd < 0.0 {
        // Case 2.
        let theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (*dx / s) * (dp / s)).max(0.0).sqrt();
        if *stp > *stx {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = ((gamma - dp) + gamma) + *dx;
        let r = p / q;
        let stpc = *stp + r * (*stx - *stp);
        let stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        stpf = if (stpc - *stp).abs() > (stpq - *stp).abs() {
            stpc
        } else {
            stpq
        };
        *brackt = true;
    } else if dp.abs() < dx.abs() {
        // Case 3.
        let theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (*dx / s) * (dp / s)).max(0.0).sqrt();
        if *stp > *stx {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = (gamma + (*dx - dp)) + gamma;
        let r = p / q;
        let stpc = if r < 0.0 && gamma != 0.0 {
            *stp + r * (*stx - *stp)
        } else if *stp > *stx {
            stpmax
        } else {
            stpmin
        };
        let stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        if *brackt {
            let mut f = if (stpc - *stp).abs() < (stpq - *stp).abs() {
                stpc
            } else {
                stpq
            };
            if *stp > *stx {
                f = f.min(*stp + 0.66 * (*sty - *stp));
            } else {
                f = f.max(*stp + 0.66 * (*sty - *stp));
            }
            stpf = f;
        } else {
            let f = if (stpc - *stp).abs() > (stpq - *stp).abs() {
                stpc
            } else {
                stpq
            };
            stpf = f.min(stpmax).max(stpmin);
        }
    } else {
        // Case 4.
        if *brackt {
            let theta = 3.0 * (fp - *fy) / (*sty - *stp) + *dy + dp;
            let s = theta.abs().max(dy.abs()).max(dp.abs());
            let mut gamma = s * ((theta / s).powi(2) - (*dy / s) * (dp / s)).max(0.0).sqrt();
            if *stp > *sty {
                gamma = -gamma;
            }
            let p = (gamma - dp) + theta;
            let q = ((gamma - dp) + gamma) + *dy;
            let r = p / q;
            stpf = *stp + r * (*sty - *stp);
        } else if *stp > *stx {
            stpf = stpmax;
        } else {
            stpf = stpmin;
        }
    }

    // Update the interval of uncertainty.
    if fp > *fx {
        *sty = *stp;
        *fy = fp;
        *dy = dp;
    } else {
        if sgnd < 0.0 {
            *sty = *stx;
            *fy = *fx;
            *dy = *dx;
        }
        *stx = *stp;
        *fx = fp;
        *dx = dp;
    }
    // A NaN from degenerate interpolation (0/0) falls back to bisection / the bound.
    *stp = if stpf.is_finite() {
        stpf
    } else if *brackt {
        0.5 * (*stx + *sty)
    } else {
        stpmax
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search on a scalar function; returns (step, evaluations, converged).
    fn search(
        phi: impl Fn(f64) -> (f64, f64),
        stp0: f64,
        params: LineSearch,
    ) -> (f64, usize, bool) {
        let (f0, g0) = phi(0.0);
        let mut ls = MoreThuente::default();
        let mut stp = ls.start(&params, f0, g0, stp0, 0.0, 1e10);
        ls.set_xtol(1e-10);
        for evals in 1..=params.max_trials {
            let (f, g) = phi(stp);
            match ls.next(stp, f, g) {
                Next::Evaluate(s) => stp = s,
                Next::Converged => return (stp, evals, true),
                Next::Stalled => return (stp, evals, false),
            }
        }
        (stp, params.max_trials, false)
    }

    fn assert_strong_wolfe(phi: &impl Fn(f64) -> (f64, f64), stp: f64, c1: f64, c2: f64) {
        let (f0, g0) = phi(0.0);
        let (f, g) = phi(stp);
        assert!(
            f <= f0 + c1 * stp * g0,
            "sufficient decrease fails at {stp}"
        );
        assert!(
            g.abs() <= c2 * g0.abs(),
            "curvature fails at {stp}: {g} vs {g0}"
        );
    }

    /// Moré–Thuente (1994), Table 1: φ(α) = −α / (α² + β), β = 2, μ = 0.001, η = 0.1.
    /// The paper's minimiser region: the strong Wolfe set contains α* = √2 ≈ 1.4142;
    /// the paper reports final steps 1.4 (from 1e-3, 1e-1), 10 (from 10) and 37 (from 1e3)
    /// after 6, 3, 1, 4 evaluations; the paper's runs use a tight interval tolerance.
    #[test]
    fn more_thuente_function_1() {
        let phi = |a: f64| {
            let b = 2.0;
            (-a / (a * a + b), (a * a - b) / (a * a + b).powi(2))
        };
        let p = LineSearch {
            c1: 1e-3,
            c2: 0.1,
            max_trials: 30,
        };
        // (start, final step, evaluations) as printed in the paper's Table 1.
        for (a0, expect, paper_evals) in [
            (1e-3, 1.4, 6),
            (1e-1, 1.4, 3),
            (10.0, 10.0, 1),
            (1e3, 37.0, 4),
        ] {
            let (stp, evals, ok) = search(phi, a0, p);
            assert!(ok, "from {a0}");
            assert_strong_wolfe(&phi, stp, p.c1, p.c2);
            assert!(
                (stp - expect).abs() < 0.05 * expect.max(1.0),
                "from {a0}: {stp}"
            );
            assert_eq!(evals, paper_evals, "from {a0}");
        }
    }

    /// Table 2: φ(α) = (α + β)^5 − 2 (α + β)^4, β = 0.004, μ = 0.1, η = 0.1; the paper's
    /// final step is 1.6 from every start.
    #[test]
    fn more_thuente_function_2() {
        let phi = |a: f64| {
            let b = 0.004;
            let t = a + b;
            (
                t.powi(5) - 2.0 * t.powi(4),
                5.0 * t.powi(4) - 8.0 * t.powi(3),
            )
        };
        let p = LineSearch {
            c1: 0.1,
            c2: 0.1,
            max_trials: 30,
        };
        for (a0, paper_evals) in [(1e-3, 12), (1e-1, 8), (10.0, 8), (1e3, 11)] {
            let (stp, evals, ok) = search(phi, a0, p);
            assert!(ok, "from {a0}");
            assert_strong_wolfe(&phi, stp, p.c1, p.c2);
            assert!((stp - 1.6).abs() < 0.05, "from {a0}: {stp}");
            assert_eq!(evals, paper_evals, "from {a0}");
        }
    }

    /// Table 3: φ(α) = φ0(α) + 2(1 − β)/(39π) sin(39π α / 2), with φ0(α) = 1 − α for α ≤ 1 −
    /// β, (α − 1)²/(2β) + β/2 for 1 − β ≤ α ≤ 1 + β, α − 1 for α ≥ 1 + β; β = 0.01,
    /// μ = 0.1, η = 0.1. The paper's final step is ≈ 1.0 from every start
    /// after 12, 12, 10, 13 evaluations.
    #[test]
    fn more_thuente_function_3() {
        let phi = |a: f64| {
            let b = 0.01;
            let l = 39.0;
            let (f0, g0) = if a <= 1.0 - b {
                (1.0 - a, -1.0)
            } else if a >= 1.0 + b {
                (a - 1.0, 1.0)
            } else {
                ((a - 1.0).powi(2) / (2.0 * b) + b / 2.0, (a - 1.0) / b)
            };
            let k = l * std::f64::consts::PI / 2.0;
            (
                f0 + 2.0 * (1.0 - b) / (l * std::f64::consts::PI) * (k * a).sin(),
                g0 + (1.0 - b) * (k * a).cos(),
            )
        };
        let p = LineSearch {
            c1: 0.1,
            c2: 0.1,
            max_trials: 30,
        };
        for (a0, paper_evals) in [(1e-3, 12), (1e-1, 12), (10.0, 10), (1e3, 13)] {
            let (stp, evals, ok) = search(phi, a0, p);
            assert_eq!(evals, paper_evals, "from {a0}");
            assert!(ok, "from {a0}");
            assert_strong_wolfe(&phi, stp, p.c1, p.c2);
            assert!((stp - 1.0).abs() < 0.05, "from {a0}: {stp}");
        }
    }

    #[test]
    fn nonfinite_trial_shrinks_the_step() {
        // A quadratic with its minimum at 1 that is NaN beyond 3.
        let phi = |a: f64| {
            if a > 3.0 {
                (f64::NAN, f64::NAN)
            } else {
                ((a - 1.0).powi(2), 2.0 * (a - 1.0))
            }
        };
        let (stp, _, ok) = search(phi, 100.0, LineSearch::default());
        assert!(ok);
        assert_strong_wolfe(&phi, stp, 1e-4, 0.9);
    }

    #[test]
    fn quadratic_unit_step_accepted_at_once() {
        let phi = |a: f64| ((a - 1.0).powi(2), 2.0 * (a - 1.0));
        let (stp, evals, ok) = search(phi, 1.0, LineSearch::default());
        assert!(ok);
        assert_eq!(evals, 1);
        assert_eq!(stp, 1.0);
    }
}
