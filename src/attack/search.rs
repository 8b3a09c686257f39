//! The c search: bracket geometrically, bisect in log space, keep the best verified point.

use super::config::{AttackConfig, InitialC, Penalty};
use super::objective::{AttackObjective, Goal};
use super::result::{Adversarial, AttackResult, CBracket, FailureReason, Target};
use crate::classifier::ClassifierExt;
use crate::classifier::{Classifier, argmax};
use crate::error::{Error, Result};
use crate::optim::{Objective, Solution, Workspace};
use ndarray::{Array1, ArrayView2};
use std::ops::ControlFlow;

/// A verified candidate.
#[derive(Debug, Clone)]
struct Best {
    x: Vec<f64>,
    l2sq: f64,
    label: usize,
    c: f64,
}

/// A goal-reaching point the objective saw during a run, waiting for its verification
/// ([`LabelSearch::tracked_candidate`]).
#[derive(Debug, Clone)]
pub(crate) struct TrackedPoint {
    /// The point.
    pub x: Vec<f64>,
    l2sq: f64,
    c: f64,
}

/// The one place where a candidate is checked: finite, inside the box, and the model —
/// re-evaluated at the candidate — predicts a label that satisfies the goal.
/// Returns the predicted label when all holds.
pub(crate) fn verify<C: Classifier + ?Sized>(
    model: &C,
    x: &[f64],
    config: &AttackConfig,
    goal: Goal,
) -> Option<usize> {
    if !admissible(model, x, config) {
        return None;
    }
    let view = ArrayView2::from_shape((1, x.len()), x).ok()?;
    let logits = model.logits(view).ok()?;
    goal_label(goal, argmax(logits.row(0)))
}

/// The checks of [`verify`] before the model is asked: the model's input length, finite,
/// inside the box.
pub(crate) fn admissible<C: Classifier + ?Sized>(
    model: &C,
    x: &[f64],
    config: &AttackConfig,
) -> bool {
    x.len() == model.input_dim() && x.iter().all(|v| v.is_finite()) && config.bounds.contains(x)
}

/// The last check of [`verify`]: the predicted `label` when it satisfies `goal`.
pub(crate) fn goal_label(goal: Goal, label: usize) -> Option<usize> {
    goal.is_reached(label).then_some(label)
}

fn l2sq(x: &[f64], origin: &[f64]) -> f64 {
    x.iter().zip(origin).map(|(a, b)| (a - b) * (a - b)).sum()
}

/// The objective, the solver workspace and the counters, shared by all runs of one attack
/// (the two solvers are the configuration's).
pub(crate) struct Engine<'m, 'c, C: Classifier + ?Sized> {
    pub obj: AttackObjective<'m, C>,
    ws: Workspace,
    pub cfg: &'c AttackConfig,
    pub runs: usize,
    pub predictions: usize,
    /// Gradient evaluations made outside the objective (batched rows count one each).
    pub extra_gradient_evaluations: usize,
    /// Squared L2 of the best verified point over every goal of this attack.
    pub global_best: f64,
}

impl<'m, 'c, C: Classifier + ?Sized> Engine<'m, 'c, C> {
    pub fn new(obj: AttackObjective<'m, C>, cfg: &'c AttackConfig) -> Result<Self> {
        Ok(Engine {
            obj,
            ws: Workspace::default(),
            cfg,
            runs: 0,
            predictions: 0,
            extra_gradient_evaluations: 0,
            global_best: f64::INFINITY,
        })
    }

    /// The first c for the current goal (one gradient evaluation when automatic).
    pub fn initial_c(&mut self) -> f64 {
        match self.cfg.initial_c {
            InitialC::Fixed(c) => c,
            InitialC::Auto { factor } => {
                let n = self.obj.dim();
                let x0 = self.obj.origin().to_vec();
                let mut g = vec![0.0; n];
                let _ = self.obj.set_c(0.0);
                // A model error here shows up again in the first run, which reports it.
                let loss = self.obj.value_gradient(&x0, &mut g).unwrap_or(f64::NAN);
                initial_c_from(self.cfg.penalty, factor, loss, &g)
            }
        }
    }
}

/// The automatic first c from the loss and its gradient at the clean input (see
/// [`InitialC::Auto`]); 1 when the estimate is not a positive finite number.
pub(crate) fn initial_c_from(penalty: Penalty, factor: f64, loss: f64, g: &[f64]) -> f64 {
    let gn = g.iter().map(|v| v * v).sum::<f64>().sqrt();
    let c = match penalty {
        Penalty::L2 => factor * gn,
        Penalty::SquaredL2 => factor * gn * gn / (2.0 * loss),
    };
    if c.is_finite() && c > 0.0 { c } else { 1.0 }
}

/// The objective's counts when an L-BFGS-B run started, and the run's c: what
/// [`LabelSearch::end_run`] needs besides the run's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RunMark {
    pub evaluations: usize,
    pub non_finite: usize,
    pub c: f64,
}

impl RunMark {
    /// The counts of `obj` now, for a run at `c`.
    pub fn of<C: Classifier + ?Sized>(obj: &AttackObjective<'_, C>, c: f64) -> Self {
        RunMark {
            evaluations: obj.evaluations(),
            non_finite: obj.non_finite_evaluations(),
            c,
        }
    }
}

/// The boundary refinement of a search's best point `x + r` (`x` the clean input), one
/// round at a time: each round predicts `points` equally spaced points of the segment
/// `x + t r`, `t ∈ (lo, hi)`, and narrows `(lo, hi)` to the first gap where the goal is
/// reached; the rounds stop early once the interval no longer shrinks in floating point.
/// [`final_point`](Self::final_point) is then `x + hi·r`, to verify.
#[derive(Debug, Clone)]
pub(crate) struct Refinement {
    r: Vec<f64>,
    /// The c of the best point.
    pub c: f64,
    lo: f64,
    hi: f64,
    /// The current round's `t`s.
    ts: Vec<f64>,
    rounds_left: usize,
}

impl Refinement {
    /// `rounds ≥ 1` rounds of `points ≥ 1` points along `r`.
    fn new(r: Vec<f64>, c: f64, rounds: usize, points: usize) -> Self {
        let mut rf = Refinement {
            r,
            c,
            lo: 0.0,
            hi: 1.0,
            ts: Vec::with_capacity(points),
            rounds_left: rounds,
        };
        rf.set_ts(points);
        rf
    }

    fn set_ts(&mut self, p: usize) {
        let (lo, hi) = (self.lo, self.hi);
        self.ts.clear();
        self.ts
            .extend((1..=p).map(|k| lo + (hi - lo) * k as f64 / (p + 1) as f64));
    }

    /// The number of points of a round.
    pub fn points(&self) -> usize {
        self.ts.len()
    }

    /// The direction `r` of the segment.
    pub fn direction(&self) -> &[f64] {
        &self.r
    }

    /// The current round's points as `(line, t)`, for
    /// [`ClassifierExt::logits_on_lines`](crate::ClassifierExt::logits_on_lines) with the
    /// segment as line `line` (at least two points: a lone point is repeated, so that the
    /// model's later layers take their batched route whatever the number of lines).
    pub fn line_points(&self, line: usize, out: &mut Vec<(usize, f64)>) {
        out.extend(self.ts.iter().map(|&t| (line, t)));
        if self.ts.len() == 1 {
            out.push((line, self.ts[0]));
        }
    }

    /// The predicted labels of the current round's points, in order: narrows the interval;
    /// `true` when another round is to be made (its points are then ready).
    pub fn receive(&mut self, goal: Goal, labels: impl IntoIterator<Item = usize>) -> bool {
        let mut prev = self.lo;
        let mut found = None;
        for (&t, label) in self.ts.iter().zip(labels) {
            if goal.is_reached(label) {
                found = Some((prev, t));
                break;
            }
            prev = t;
        }
        let before = (self.lo, self.hi);
        match found {
            Some((a, b)) => {
                self.lo = a;
                self.hi = b;
            }
            None => self.lo = prev,
        }
        self.rounds_left -= 1;
        if self.rounds_left == 0 || (self.lo, self.hi) == before {
            return false;
        }
        self.set_ts(self.ts.len());
        true
    }

    /// The refined point `origin + hi·r`, when the rounds moved `hi` below 1.
    pub fn final_point(&self, origin: &[f64]) -> Option<Vec<f64>> {
        (self.hi < 1.0).then(|| {
            origin
                .iter()
                .zip(&self.r)
                .map(|(o, ri)| o + self.hi * ri)
                .collect()
        })
    }
}

/// The state of the c search for one goal; [`LabelSearch::step`] does one L-BFGS-B run.
pub(crate) struct LabelSearch {
    goal: Goal,
    c: f64,
    c_succ: Option<f64>,
    c_fail: Option<f64>,
    sol_succ: Option<Vec<f64>>,
    sol_fail: Option<Vec<f64>>,
    bracket_steps: usize,
    bisect_steps: usize,
    best: Option<Best>,
    pub done: bool,
    pub failure: Option<FailureReason>,
    /// Runs in which the model returned non-finite values at every point but the start.
    model_failed_runs: usize,
    /// Runs done.
    search_runs: usize,
    /// May stop after bracketing when far behind the best of the other labels (Nearest).
    pub prunable: bool,
}

impl LabelSearch {
    pub fn new(goal: Goal, c0: f64) -> Self {
        LabelSearch {
            goal,
            c: c0,
            c_succ: None,
            c_fail: None,
            sol_succ: None,
            sol_fail: None,
            bracket_steps: 0,
            bisect_steps: 0,
            best: None,
            done: false,
            failure: None,
            model_failed_runs: 0,
            search_runs: 0,
            prunable: false,
        }
    }

    pub fn best_l2sq(&self) -> f64 {
        self.best.as_ref().map_or(f64::INFINITY, |b| b.l2sq)
    }

    pub fn bracket(&self) -> CBracket {
        CBracket {
            success: self.c_succ,
            failure: self.c_fail,
        }
    }

    /// A search for one of [`Target::Nearest`]'s labels: it may stop after bracketing when
    /// far behind the best of the other labels.
    pub fn nearest(goal: Goal, c0: f64, cfg: &AttackConfig) -> Self {
        let mut s = Self::new(goal, c0);
        s.prunable = cfg.nearest_prune_margin.is_finite();
        s
    }

    /// Runs until the search is finished, then [`finish`](Self::finish)es it.
    pub fn run_to_end<C: Classifier + ?Sized>(&mut self, e: &mut Engine<'_, '_, C>) {
        while !self.done {
            self.step(e);
        }
        self.finish(e);
    }

    /// After the last run: a search whose every run failed in the model is the model's
    /// failure; the best point is refined (see [`refine`](Self::refine)) unless the search
    /// is prunable and far behind the best of the other labels.
    pub fn finish<C: Classifier + ?Sized>(&mut self, e: &mut Engine<'_, '_, C>) {
        if let Some(rf) = self.begin_finish(e) {
            self.refine(e, rf);
        }
    }

    /// The first part of [`finish`](Self::finish): the model-failure check, and the
    /// boundary refinement to make, if any (the rounds then go through
    /// [`Refinement::receive`], the last point through
    /// [`refined_verified`](Self::refined_verified)).
    pub fn begin_finish<C: Classifier + ?Sized>(
        &mut self,
        e: &mut Engine<'_, '_, C>,
    ) -> Option<Refinement> {
        if self.best.is_none()
            && self.search_runs > 0
            && self.model_failed_runs == self.search_runs
            && !matches!(self.failure, Some(FailureReason::ModelFailure(_)))
        {
            self.failure = Some(FailureReason::ModelFailure(
                Error::ModelNonFinite {
                    what: "logits or loss gradients at every point tried but the clean input"
                        .into(),
                }
                .to_string(),
            ));
        }
        let m = 1.0 + e.cfg.nearest_prune_margin;
        let refined = !self.prunable || self.best_l2sq() <= m * m * e.global_best;
        if !refined {
            return None;
        }
        let best = self.best.as_ref()?;
        if e.cfg.refine_rounds == 0 {
            return None;
        }
        let r: Vec<f64> = best
            .x
            .iter()
            .zip(e.obj.origin())
            .map(|(a, b)| a - b)
            .collect();
        Some(Refinement::new(
            r,
            best.c,
            e.cfg.refine_rounds,
            e.cfg.refine_points,
        ))
    }

    /// Boundary refinement of the best point along the segment from the clean input
    /// (see [`AttackConfig::with_refinement`]), each round one prediction of its points;
    /// the refined point is verified before it is kept.
    fn refine<C: Classifier + ?Sized>(&mut self, e: &mut Engine<'_, '_, C>, mut rf: Refinement) {
        let origin = e.obj.origin();
        let p = rf.points();
        fn as_row(v: &[f64]) -> ndarray::ArrayView2<'_, f64> {
            ndarray::aview1(v).insert_axis(ndarray::Axis(0))
        }
        let mut points = Vec::with_capacity(p + 1);
        loop {
            points.clear();
            rf.line_points(0, &mut points);
            e.predictions += p;
            let lines = (as_row(origin), as_row(rf.direction()));
            let Ok(logits) = e.obj.model().logits_on_lines(lines.0, lines.1, &points) else {
                break;
            };
            if logits.nrows() != points.len()
                || !rf.receive(self.goal, logits.rows().into_iter().take(p).map(argmax))
            {
                break;
            }
        }
        if let Some(x) = rf.final_point(origin) {
            e.predictions += 1;
            let label = verify(e.obj.model(), &x, e.cfg, self.goal);
            self.refined_verified(e, x, rf.c, label);
        }
    }

    /// The refined point `x` ([`Refinement::final_point`], of the best point at `c`) with
    /// its verification `label`: kept when verified and closer.
    pub fn refined_verified<C: Classifier + ?Sized>(
        &mut self,
        e: &mut Engine<'_, '_, C>,
        x: Vec<f64>,
        c: f64,
        label: Option<usize>,
    ) {
        if let Some(label) = label {
            let d2 = l2sq(&x, e.obj.origin());
            self.consider(e, x, d2, label, c);
        }
    }

    /// One L-BFGS-B run at the next c (or marks the search done).
    pub fn step<C: Classifier + ?Sized>(&mut self, e: &mut Engine<'_, '_, C>) {
        let Some((start, bisection, c)) = self.begin_run(e) else {
            return;
        };
        let solver = if bisection {
            &e.cfg.bisection_solver
        } else {
            &e.cfg.solver
        };
        let mark = RunMark::of(&e.obj, c);
        let res =
            solver.minimize_with(&mut e.obj, &start, &mut e.ws, |_| ControlFlow::Continue(()));
        self.end_run(e, res, mark);
    }

    /// The first half of [`step`](Self::step): the next c, the objective set up for it, and
    /// the start point; `None` (and `done`) when the search is over. Returns the start, whether
    /// the run is a bisection run (its solver is the configuration's bisection solver) and c.
    pub fn begin_run<C: Classifier + ?Sized>(
        &mut self,
        e: &mut Engine<'_, '_, C>,
    ) -> Option<(Vec<f64>, bool, f64)> {
        if self.done {
            return None;
        }
        let cfg = e.cfg;
        let bracketed = self.c_succ.is_some() && self.c_fail.is_some();
        let c = if !bracketed {
            if self.bracket_steps >= cfg.max_bracket_steps {
                self.done = true;
                return None;
            }
            // c underflowed to 0 or overflowed to ∞: no further run can differ.
            if !(self.c > 0.0 && self.c.is_finite()) {
                self.done = true;
                self.failure.get_or_insert(FailureReason::CExhausted);
                return None;
            }
            self.bracket_steps += 1;
            self.c
        } else {
            let (cs, cf) = (self.c_succ.unwrap_or(0.0), self.c_fail.unwrap_or(0.0));
            if self.bisect_steps >= cfg.bisection_steps || cf / cs <= 1.0 + cfg.rel_tol {
                self.done = true;
                return None;
            }
            // Nearest: bisection improves a label's distortion by a few percent at most; a
            // label already far behind the best of the others is not refined.
            let m = 1.0 + cfg.nearest_prune_margin;
            if self.prunable && self.best_l2sq() > m * m * e.global_best {
                self.done = true;
                return None;
            }
            let mid = (cs * cf).sqrt();
            let mid = if mid.is_finite() && mid > 0.0 {
                mid
            } else {
                cs.sqrt() * cf.sqrt()
            };
            // The bracket cannot shrink any more in floating point (a tolerance below the
            // machine epsilon): stop.
            if !(mid > cs && mid < cf) {
                self.done = true;
                return None;
            }
            self.bisect_steps += 1;
            mid
        };

        if e.obj.goal() != self.goal {
            // Only happens when one engine serves several goals (Nearest).
            e.obj.set_goal(self.goal);
        }
        if e.obj.set_c(c).is_err() {
            self.done = true;
            self.failure = Some(FailureReason::NotReached);
            return None;
        }
        e.obj.reset_tracking(e.global_best.min(self.best_l2sq()));

        let origin = e.obj.origin();
        let start: &[f64] = if cfg.warm_start {
            self.sol_succ
                .as_deref()
                .or(self.sol_fail.as_deref())
                .unwrap_or(origin)
        } else {
            origin
        };
        let start = start.to_vec();
        e.runs += 1;
        self.search_runs += 1;
        Some((start, bracketed, c))
    }

    /// The second half of [`step`](Self::step): the run's outcome `res` (`mark`: the
    /// objective's counts when the run started, and its c) verified and the bracket updated.
    /// The predictions are one-row passes; [`run_outcome`](Self::run_outcome),
    /// [`run_verified`](Self::run_verified) and [`tracked_candidate`](Self::tracked_candidate)
    /// are the same steps for a caller that makes them itself (the lockstep driver batches
    /// them across rows).
    pub fn end_run<C: Classifier + ?Sized>(
        &mut self,
        e: &mut Engine<'_, '_, C>,
        res: Result<Solution>,
        mark: RunMark,
    ) {
        let Some(x) = self.run_outcome(e, res, mark) else {
            return;
        };
        let label = verify(e.obj.model(), &x, e.cfg, self.goal);
        self.run_verified(e, x, mark.c, label);
        if let Some(t) = self.tracked_candidate(e) {
            let label = verify(e.obj.model(), &t.x, e.cfg, self.goal);
            self.tracked_verified(e, t, label);
        }
    }

    /// The run's outcome checked: a solver or model error, or a non-finite value, ends the
    /// search (`None`); otherwise the run's end point, to be verified and handed to
    /// [`run_verified`](Self::run_verified) (one prediction is counted).
    pub fn run_outcome<C: Classifier + ?Sized>(
        &mut self,
        e: &mut Engine<'_, '_, C>,
        res: Result<Solution>,
        mark: RunMark,
    ) -> Option<Vec<f64>> {
        let RunMark {
            evaluations: evaluations_before,
            non_finite: non_finite_before,
            ..
        } = mark;
        let sol = match res {
            Ok(s) => s,
            Err(err) => {
                self.done = true;
                // An error after an evaluation is the objective's, i.e. the model's; one
                // before any is the solver refusing its arguments.
                self.failure = Some(if e.obj.evaluations() > evaluations_before {
                    FailureReason::ModelFailure(err.to_string())
                } else {
                    FailureReason::Optimizer(err.to_string())
                });
                return None;
            }
        };
        if !sol.value.is_finite() {
            self.done = true;
            self.failure = Some(FailureReason::ModelFailure(
                Error::ModelNonFinite {
                    what: "logits or loss gradient during the attack".into(),
                }
                .to_string(),
            ));
            return None;
        }

        // Every evaluation after the start failed: the model, not the target, stopped
        // the run.
        let evals = e.obj.evaluations() - evaluations_before;
        let bad = e.obj.non_finite_evaluations() - non_finite_before;
        if sol.iterations == 0 && evals > 1 && bad == evals - 1 {
            self.model_failed_runs += 1;
        }
        e.predictions += 1;
        Some(sol.x)
    }

    /// The run's end point `x` (of the run at `c`) with its verification `label`
    /// ([`verify`]'s answer): kept when verified and closer, and the bracket updated.
    pub fn run_verified<C: Classifier + ?Sized>(
        &mut self,
        e: &mut Engine<'_, '_, C>,
        x: Vec<f64>,
        c: f64,
        label: Option<usize>,
    ) {
        let cfg = e.cfg;
        if let Some(label) = label {
            let d2 = l2sq(&x, e.obj.origin());
            self.consider(e, x.clone(), d2, label, c);
        }
        if label.is_some() {
            if self.c_succ.is_none_or(|cs| c > cs) {
                self.c_succ = Some(c);
                self.sol_succ = Some(x);
            }
            if self.c_fail.is_none() {
                self.c = c * cfg.growth;
            }
        } else {
            if self.c_fail.is_none_or(|cf| c < cf) {
                self.c_fail = Some(c);
                self.sol_fail = Some(x);
            }
            if self.c_succ.is_none() {
                self.c = c / cfg.growth;
            }
        }
    }

    /// After [`run_verified`](Self::run_verified): the closest goal-reaching point the
    /// objective saw during the run, when it is closer than every verified point so far
    /// (one prediction is counted); its verification goes to
    /// [`tracked_verified`](Self::tracked_verified).
    pub fn tracked_candidate<C: Classifier + ?Sized>(
        &mut self,
        e: &mut Engine<'_, '_, C>,
    ) -> Option<TrackedPoint> {
        let bound = self.best_l2sq().min(e.global_best);
        let tracked = e.obj.tracked();
        if !(tracked.fresh && tracked.l2sq < bound) {
            return None;
        }
        tracked.fresh = false;
        let t = TrackedPoint {
            x: tracked.x.clone(),
            l2sq: tracked.l2sq,
            c: tracked.c,
        };
        e.predictions += 1;
        Some(t)
    }

    /// The tracked point `t` with its verification `label`: kept when verified and closer.
    pub fn tracked_verified<C: Classifier + ?Sized>(
        &mut self,
        e: &mut Engine<'_, '_, C>,
        t: TrackedPoint,
        label: Option<usize>,
    ) {
        if let Some(label) = label {
            self.consider(e, t.x, t.l2sq, label, t.c);
        }
    }

    /// The goal of this search.
    pub fn goal(&self) -> Goal {
        self.goal
    }

    fn consider<C: Classifier + ?Sized>(
        &mut self,
        e: &mut Engine<'_, '_, C>,
        x: Vec<f64>,
        d2: f64,
        label: usize,
        c: f64,
    ) {
        if d2 < self.best_l2sq() {
            self.best = Some(Best {
                x,
                l2sq: d2,
                label,
                c,
            });
            e.global_best = e.global_best.min(d2);
        }
    }

    /// The best verified adversarial of this search.
    pub fn adversarial(&self, origin: &[f64]) -> Option<Adversarial> {
        self.best
            .as_ref()
            .map(|b| Adversarial::new(Array1::from(b.x.clone()), origin, b.label, Some(b.c)))
    }
}

/// Labels sorted by the linearised distance `(z_y − z_l) / ‖∇(z_y − z_l)‖` at `x`
/// (ties and non-finite estimates keep label order, non-finite last).
fn rank_labels<C: Classifier + ?Sized>(
    model: &C,
    x: ndarray::ArrayView1<'_, f64>,
    y: usize,
    labels: &[usize],
    e: &mut Engine<'_, '_, C>,
) -> Result<Vec<usize>> {
    let m = labels.len();
    let n = x.len();
    let mut inputs = ndarray::Array2::<f64>::zeros((m, n));
    for mut row in inputs.rows_mut() {
        row.assign(&x);
    }
    let mut grad = ndarray::Array2::<f64>::zeros((m, n));
    let mut gaps = vec![0.0; m];
    let k_classes = model.num_classes();
    let mut bad_shape = None;
    let mut seed = |z: ArrayView2<'_, f64>, mut dz: ndarray::ArrayViewMut2<'_, f64>| -> f64 {
        crate::classifier::crate_callback(|| {
            if z.dim() != (m, k_classes)
                || dz.dim() != (m, k_classes)
                || y >= k_classes
                || labels.iter().any(|&l| l >= k_classes)
            {
                bad_shape = Some((z.dim(), dz.dim()));
                return f64::NAN;
            }
            dz.fill(0.0);
            for (k, &l) in labels.iter().enumerate() {
                gaps[k] = z[[k, y]] - z[[k, l]];
                dz[[k, y]] = 1.0;
                dz[[k, l]] = -1.0;
            }
            0.0
        })
    };
    let ok = crate::classifier::model_call(|| {
        model.loss_gradient_into(inputs.view(), &mut seed, grad.view_mut())
    })
    .is_ok();
    e.extra_gradient_evaluations += m;
    if let Some((z, dz)) = bad_shape {
        return Err(Error::ModelContract {
            model: std::any::type_name::<C>(),
            what: format!(
                "loss callback given logits {z:?} and gradient {dz:?}, expected ({m}, {k_classes})"
            ),
        });
    }
    let mut est: Vec<(f64, usize)> = labels
        .iter()
        .enumerate()
        .map(|(k, &l)| {
            let gn = grad.row(k).dot(&grad.row(k)).sqrt();
            let d = gaps[k] / gn;
            (
                if ok && d.is_finite() {
                    d
                } else {
                    f64::INFINITY
                },
                l,
            )
        })
        .collect();
    est.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    Ok(est.into_iter().map(|(_, l)| l).collect())
}

/// The labels [`Target::Nearest`] searches, most promising first: the labels `≠ y` ranked by
/// the linearised distance to their decision boundary, `(z_y − z_l) / ‖∇(z_y − z_l)‖` at
/// `x` (one batched forward + backward pass of K − 1 rows), the first
/// [`nearest_candidates`](AttackConfig::with_nearest_candidates) of them.
pub(crate) fn nearest_candidates<C: Classifier + ?Sized>(
    model: &C,
    x: ndarray::ArrayView1<'_, f64>,
    y: usize,
    config: &AttackConfig,
    e: &mut Engine<'_, '_, C>,
) -> Result<Vec<usize>> {
    let labels: Vec<usize> = (0..model.num_classes()).filter(|&l| l != y).collect();
    let mut order = rank_labels(model, x, y, &labels, e)?;
    order.truncate(config.nearest_candidates);
    Ok(order)
}

/// Exact pruning of [`Target::Nearest`]'s labels by the configuration's certified bound
/// ([`AttackConfig::with_label_bound`]): `proven[l]` holds within the radius `asked`.
#[derive(Debug, Clone)]
pub(crate) struct LabelPruner {
    proven: Vec<bool>,
    asked: f64,
}

impl Default for LabelPruner {
    fn default() -> Self {
        LabelPruner {
            proven: Vec::new(),
            asked: f64::INFINITY,
        }
    }
}

impl LabelPruner {
    /// Whether label `l` is proven unreachable within the best squared distortion so far
    /// (`global_best`): every point reaching it is farther than the best. The bound is asked
    /// again when the best has fallen below 0.9× the radius it was asked at; `false` without
    /// a bound.
    pub fn unreachable(
        &mut self,
        config: &AttackConfig,
        x: ndarray::ArrayView1<'_, f64>,
        true_label: usize,
        l: usize,
        global_best: f64,
    ) -> Result<bool> {
        let Some(bound) = config.label_bound() else {
            return Ok(false);
        };
        // Slightly above the best distortion, beyond the rounding of its norm.
        let best = global_best.sqrt() * (1.0 + 1e-9);
        if best.is_finite() && best <= 0.9 * self.asked {
            self.proven = bound.unreachable_within(x, true_label, best, &config.bounds)?;
            self.asked = best;
        }
        // Within `asked ≥ best`.
        Ok(self.proven.get(l).copied().unwrap_or(false))
    }
}

/// Runs the attack once the input, target and clean prediction are known and the target is
/// not already reached.
pub(crate) fn run_attack<C: Classifier + ?Sized>(
    model: &C,
    x: ndarray::ArrayView1<'_, f64>,
    target: Target,
    original_label: usize,
    config: &AttackConfig,
) -> Result<AttackResult> {
    let first_goal = first_goal(target);
    let obj = AttackObjective::new_unchecked(model, x, first_goal, 1.0, config)?;
    let mut e = Engine::new(obj, config)?;
    let origin = x.to_vec();

    let (winner, searches) = match target {
        Target::Label(_) | Target::Untargeted { .. } => {
            let c0 = e.initial_c();
            let mut s = LabelSearch::new(first_goal, c0);
            s.run_to_end(&mut e);
            (0, vec![s])
        }
        Target::Nearest { true_label } => {
            let mut searches = Vec::new();
            let mut pruner = LabelPruner::default();
            for l in nearest_candidates(model, x, true_label, config, &mut e)? {
                if pruner.unreachable(config, x, true_label, l, e.global_best)? {
                    continue;
                }
                e.obj.set_goal(Goal::Label(l));
                let c0 = e.initial_c();
                let mut s = LabelSearch::nearest(Goal::Label(l), c0, config);
                s.run_to_end(&mut e);
                searches.push(s);
            }
            (winner_of(&searches), searches)
        }
    };

    Ok(assemble(
        target,
        original_label,
        &e,
        &searches,
        winner,
        &origin,
    ))
}

/// The result of a finished search: the winner's best verified point and bracket, the
/// counts of the whole attack.
pub(crate) fn assemble<C: Classifier + ?Sized>(
    target: Target,
    original_label: usize,
    e: &Engine<'_, '_, C>,
    searches: &[LabelSearch],
    winner: usize,
    origin: &[f64],
) -> AttackResult {
    let s = &searches[winner];
    let adversarial = s.adversarial(origin);
    let failure = if adversarial.is_some() {
        None
    } else {
        Some(
            searches
                .iter()
                .find_map(|s| s.failure.clone())
                .unwrap_or(FailureReason::NotReached),
        )
    };
    AttackResult {
        target,
        original_label,
        adversarial,
        failure,
        already_adversarial: false,
        c_bracket: s.bracket(),
        runs: e.runs,
        gradient_evaluations: e.obj.evaluations() + e.extra_gradient_evaluations,
        predictions: e.predictions,
        labels_searched: searches.len(),
    }
}

/// The label search with the smallest verified distortion (the first on ties).
pub(crate) fn winner_of(searches: &[LabelSearch]) -> usize {
    (0..searches.len())
        .min_by(|&a, &b| {
            searches[a]
                .best_l2sq()
                .total_cmp(&searches[b].best_l2sq())
                .then(a.cmp(&b))
        })
        .unwrap_or(0)
}

/// The first goal of an attack on `target` (for Nearest, a placeholder label replaced
/// before the first search).
pub(crate) fn first_goal(target: Target) -> Goal {
    Goal::of(target).unwrap_or(match target {
        Target::Nearest { true_label } => Goal::Label(if true_label == 0 { 1 } else { 0 }),
        _ => Goal::Label(0),
    })
}
