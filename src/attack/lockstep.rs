//! The attack on many rows in lockstep: every row keeps its own c search, bracket, solver
//! state ([`Stepper`]) and result, and every step evaluates the model **once** on all the
//! rows that wait for an evaluation, as one `[k, n]` batch through
//! [`Classifier::loss_gradient_into`]. The rows whose L-BFGS-B run ended wait for the
//! re-classification of their end points (and, where closer, of the point tracked during the
//! run), the rows whose search ended for the rounds of its boundary refinement; once half
//! the batch waits, those predictions are made together, in batched passes (the refinement
//! rounds, each on one line from the row's clean input, through
//! [`ClassifierExt::logits_on_lines`](crate::ClassifierExt::logits_on_lines)). Rows that
//! finish leave the batch and the next rows join, so the batch stays full.
//!
//! Each row follows exactly the per-row search of
//! [`find_minimal_perturbation`](super::find_minimal_perturbation) (the same functions
//! decide the c, the start point, the verification, the refinement); only where the model's
//! values, gradients and predictions come from differs: a row of a batched pass instead of a
//! one-row pass.

use super::config::{AttackConfig, AttackLoss, InitialC};
use super::objective::{AttackObjective, Goal};
use super::result::{AttackResult, Target};
use super::search::{
    Engine, LabelPruner, LabelSearch, Refinement, RunMark, TrackedPoint, admissible, assemble,
    first_goal, goal_label, initial_c_from, nearest_candidates, winner_of,
};
use super::{Clean, clean_prediction_given, validate_input};
use crate::classifier::ClassifierExt;
use crate::classifier::{
    Classifier, argmax, crate_callback, model_call, panic_error, take_panic_owner,
};
use crate::error::{Error, Result};
use crate::optim::{Request, Stepper};
use crate::validate;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The default largest number of rows evaluated together by [`attack_batch_lockstep`].
pub const DEFAULT_LOCKSTEP_BATCH: usize = 256;

/// Where a row's search stands.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    /// Start the next label search (or finish).
    NextSearch,
    /// Waiting for the evaluation at the clean input that gives the first c.
    InitialC,
    /// Begin the current search's next run (or end the search).
    NextRun,
    /// A run waits for an evaluation at the stepper's point (`RunMark`: the objective's
    /// counts when it started, and its c).
    Run(RunMark),
    /// A run (at this c) ended: its end point (`Row::verify_x`) waits for its prediction.
    Verify(f64),
    /// The point the objective tracked during the run (`Row::tracked`) waits for its
    /// prediction.
    VerifyTracked,
    /// The search's runs are over: a round of its boundary refinement (`Row::refinement`)
    /// waits for the predictions of its points.
    Refine,
    /// The refined point (`Row::verify_x`, of the best point at this c) waits for its
    /// prediction.
    VerifyRefined(f64),
    /// The result is ready.
    Finished,
}

/// One row's attack as a state machine that stops whenever it needs an evaluation.
struct Row<'m, 'c, C: Classifier + ?Sized> {
    index: usize,
    target: Target,
    original_label: usize,
    e: Engine<'m, 'c, C>,
    stepper: Stepper,
    stage: Stage,
    /// Nearest: the labels to search, in order; Label/Untargeted: the one goal.
    goals: Vec<Goal>,
    next_goal: usize,
    current: Option<LabelSearch>,
    searches: Vec<LabelSearch>,
    /// Gradient buffer of the first-c evaluation.
    g0: Vec<f64>,
    /// Nearest: the exact pruning by the configuration's label bound.
    pruner: LabelPruner,
    /// A label bound's error: the row's result.
    error: Option<Error>,
    /// The end point of the last run, while it waits for its verification.
    verify_x: Vec<f64>,
    /// The tracked point, while it waits for its verification.
    tracked: Option<TrackedPoint>,
    /// The boundary refinement of the current search, while its rounds last.
    refinement: Option<Refinement>,
}

/// Runs `f`, turning a panic into the row's error ([`Error::ModelPanicked`] when it came out
/// of the model, [`Error::Internal`] otherwise).
fn guarded<R>(row: usize, f: impl FnOnce() -> R) -> std::result::Result<R, Error> {
    take_panic_owner();
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_error(row, p))
}

impl<'m, 'c, C: Classifier + ?Sized> Row<'m, 'c, C> {
    /// The row's clean prediction (`predicted`, when the driver made it with other rows'; else
    /// here) and set-up (as `find_minimal_perturbation` and `run_attack`); `Err(result)` when
    /// it needs no evaluation at all.
    fn join(
        model: &'m C,
        x: ndarray::ArrayView1<'_, f64>,
        index: usize,
        target: Target,
        config: &'c AttackConfig,
        predicted: Option<usize>,
    ) -> std::result::Result<Self, Box<Result<AttackResult>>> {
        let fail = |e| Box::new(Err(e));
        let original_label = match clean_prediction_given(model, x, target, config, predicted) {
            Err(e) => return Err(fail(e)),
            Ok(Clean::AlreadyReached(r)) => return Err(Box::new(Ok(*r))),
            Ok(Clean::Attack(l)) => l,
        };
        let goal = first_goal(target);
        let obj = AttackObjective::new_unchecked(model, x, goal, 1.0, config).map_err(fail)?;
        let mut e = Engine::new(obj, config).map_err(fail)?;
        let goals = match target {
            Target::Label(_) | Target::Untargeted { .. } => vec![goal],
            Target::Nearest { true_label } => {
                nearest_candidates(model, x, true_label, config, &mut e)
                    .map_err(fail)?
                    .into_iter()
                    .map(Goal::Label)
                    .collect()
            }
        };
        Ok(Row {
            index,
            target,
            original_label,
            e,
            stepper: Stepper::new(),
            stage: Stage::NextSearch,
            goals,
            next_goal: 0,
            current: None,
            searches: Vec::new(),
            g0: vec![0.0; x.len()],
            pruner: LabelPruner::default(),
            error: None,
            verify_x: Vec::new(),
            tracked: None,
            refinement: None,
        })
    }

    fn nearest(&self) -> bool {
        matches!(self.target, Target::Nearest { .. })
    }

    /// Runs the row's search until it needs an evaluation (at [`point`](Self::point)) or
    /// is finished.
    fn drive(&mut self) {
        loop {
            match self.stage {
                Stage::NextSearch => {
                    if self.next_goal >= self.goals.len() {
                        self.stage = Stage::Finished;
                        return;
                    }
                    let goal = self.goals[self.next_goal];
                    self.next_goal += 1;
                    if let (Target::Nearest { true_label }, Goal::Label(l)) = (self.target, goal) {
                        let cfg = self.e.cfg;
                        let x = ndarray::ArrayView1::from(self.e.obj.origin());
                        match self
                            .pruner
                            .unreachable(cfg, x, true_label, l, self.e.global_best)
                        {
                            Ok(true) => continue,
                            Ok(false) => {}
                            Err(err) => {
                                self.error = Some(err);
                                self.stage = Stage::Finished;
                                return;
                            }
                        }
                        self.e.obj.set_goal(goal);
                    }
                    match self.e.cfg.initial_c {
                        InitialC::Fixed(c) => self.begin_search(c),
                        InitialC::Auto { .. } => {
                            let _ = self.e.obj.set_c(0.0);
                            self.stage = Stage::InitialC;
                            return;
                        }
                    }
                }
                Stage::NextRun => {
                    let s = self.current.as_mut().expect("a search is in progress");
                    match s.begin_run(&mut self.e) {
                        None => self.end_search(),
                        Some((start, bisection, c)) => {
                            let cfg = self.e.cfg;
                            let solver = if bisection {
                                &cfg.bisection_solver
                            } else {
                                &cfg.solver
                            };
                            let mark = RunMark::of(&self.e.obj, c);
                            match self.stepper.start(solver, &start) {
                                Ok(_) => {
                                    self.stage = Stage::Run(mark);
                                    return;
                                }
                                Err(err) => s.end_run(&mut self.e, Err(err), mark),
                            }
                        }
                    }
                }
                Stage::InitialC
                | Stage::Run(_)
                | Stage::Verify(_)
                | Stage::VerifyTracked
                | Stage::Refine
                | Stage::VerifyRefined(_)
                | Stage::Finished => return,
            }
        }
    }

    fn begin_search(&mut self, c0: f64) {
        let goal = self.goals[self.next_goal - 1];
        self.current = Some(if self.nearest() {
            LabelSearch::nearest(goal, c0, self.e.cfg)
        } else {
            LabelSearch::new(goal, c0)
        });
        self.stage = Stage::NextRun;
    }

    /// The search's runs are over: its refinement (as [`LabelSearch::finish`]), whose
    /// predictions are made with the other rows' (see `predict_rows`), or its end.
    fn end_search(&mut self) {
        let s = self.current.as_mut().expect("a search is in progress");
        match s.begin_finish(&mut self.e) {
            Some(rf) => {
                self.refinement = Some(rf);
                self.stage = Stage::Refine;
            }
            None => self.complete_search(),
        }
    }

    fn complete_search(&mut self) {
        let s = self.current.take().expect("a search is in progress");
        self.searches.push(s);
        self.stage = Stage::NextSearch;
    }

    /// True while the row waits for an evaluation.
    fn waiting(&self) -> bool {
        matches!(self.stage, Stage::InitialC | Stage::Run(_))
    }

    /// True while the row waits for predictions (the verification of a point, or a round
    /// of the boundary refinement).
    fn verifying(&self) -> bool {
        matches!(
            self.stage,
            Stage::Verify(_) | Stage::VerifyTracked | Stage::Refine | Stage::VerifyRefined(_)
        )
    }

    /// The point to verify (`None` while refining).
    fn verify_point(&self) -> Option<&[f64]> {
        match (&self.stage, &self.tracked) {
            (Stage::Refine, _) => None,
            (Stage::VerifyTracked, Some(t)) => Some(&t.x),
            _ => Some(&self.verify_x),
        }
    }

    /// The number of points to predict for the row: a refinement round's points, else 1 for
    /// the point to verify, or 0 when that point is not admissible (its answer is then
    /// `None` without a prediction, as in [`verify`](super::search::verify)).
    fn points_to_predict<M: Classifier + ?Sized>(&self, model: &M) -> usize {
        match (self.verify_point(), &self.refinement) {
            (None, Some(rf)) => rf.points(),
            (Some(x), _) => usize::from(admissible(model, x, self.e.cfg)),
            (None, None) => 0,
        }
    }

    /// True while a round of the row's boundary refinement waits: its points lie on one
    /// line from the clean input, predicted with
    /// [`logits_on_lines`](crate::ClassifierExt::logits_on_lines).
    fn refining(&self) -> bool {
        self.stage == Stage::Refine
    }

    /// Writes the point to verify (when [`points_to_predict`](Self::points_to_predict) is 1)
    /// into the first row of `out`.
    fn write_point(&self, mut out: ndarray::ArrayViewMut2<'_, f64>) {
        if let Some(x) = self.verify_point() {
            out.row_mut(0).assign(&ndarray::ArrayView1::from(x));
        }
    }

    /// Writes the refinement's line as line `line` of a lines pass (its origin into row
    /// `line` of `origins`, its direction into that of `directions`) and its round's points
    /// into `points`.
    fn write_line(
        &self,
        line: usize,
        origins: &mut Array2<f64>,
        directions: &mut Array2<f64>,
        points: &mut Vec<(usize, f64)>,
    ) {
        if let Some(rf) = &self.refinement {
            origins
                .row_mut(line)
                .assign(&ndarray::ArrayView1::from(self.e.obj.origin()));
            directions
                .row_mut(line)
                .assign(&ndarray::ArrayView1::from(rf.direction()));
            rf.line_points(line, points);
        }
    }

    /// Hands the predicted labels of the row's points to the row (`None`: the point is not
    /// admissible or the model failed on them) and drives it on, as [`LabelSearch::end_run`]
    /// and [`LabelSearch::finish`] do with their own predictions.
    fn receive_labels(&mut self, predicted: Option<&[usize]>) {
        if !self.verifying() {
            return;
        }
        let s = self.current.as_mut().expect("a search is in progress");
        let label = predicted.and_then(|l| goal_label(s.goal(), *l.first()?));
        match self.stage {
            Stage::Verify(c) => {
                let x = std::mem::take(&mut self.verify_x);
                s.run_verified(&mut self.e, x, c, label);
                if let Some(t) = s.tracked_candidate(&mut self.e) {
                    self.tracked = Some(t);
                    self.stage = Stage::VerifyTracked;
                    return;
                }
                self.stage = Stage::NextRun;
            }
            Stage::VerifyTracked => {
                let t = self.tracked.take().expect("a tracked point waits");
                s.tracked_verified(&mut self.e, t, label);
                self.stage = Stage::NextRun;
            }
            Stage::Refine => {
                let rf = self
                    .refinement
                    .as_mut()
                    .expect("a refinement is in progress");
                self.e.predictions += rf.points();
                let more = predicted.is_some_and(|l| {
                    l.len() == rf.points() && rf.receive(s.goal(), l.iter().copied())
                });
                if more {
                    return;
                }
                let rf = self.refinement.take().expect("a refinement is in progress");
                match rf.final_point(self.e.obj.origin()) {
                    Some(x) => {
                        self.e.predictions += 1;
                        self.verify_x = x;
                        self.stage = Stage::VerifyRefined(rf.c);
                        return;
                    }
                    None => self.complete_search(),
                }
            }
            Stage::VerifyRefined(c) => {
                let x = std::mem::take(&mut self.verify_x);
                s.refined_verified(&mut self.e, x, c, label);
                self.complete_search();
            }
            _ => return,
        }
        self.drive();
    }

    /// The point to evaluate.
    fn point(&self) -> &[f64] {
        match self.stage {
            Stage::Run(_) => self.stepper.point(),
            _ => self.e.obj.origin(),
        }
    }

    /// Hands the model's answer at [`point`](Self::point) to the row and drives it on.
    fn receive(&mut self, model: Result<(f64, usize)>, lg: &[f64]) {
        match self.stage {
            Stage::InitialC => {
                self.g0.fill(0.0);
                let obj = &self.e.obj;
                let loss = obj
                    .complete_evaluation(obj.origin(), model, lg, &mut self.g0)
                    .unwrap_or(f64::NAN);
                let InitialC::Auto { factor } = self.e.cfg.initial_c else {
                    unreachable!("InitialC stage only for the automatic c")
                };
                let c0 = initial_c_from(self.e.cfg.penalty, factor, loss, &self.g0);
                self.begin_search(c0);
            }
            Stage::Run(mark) => {
                let (x, g) = self.stepper.point_and_gradient();
                let f = self.e.obj.complete_evaluation(x, model, lg, g);
                let told = f.and_then(|f| self.stepper.tell_in_place(f));
                let s = self.current.as_mut().expect("a search is in progress");
                match told {
                    Ok(Request::Evaluate) => return,
                    Ok(Request::Done(sol)) => {
                        if let Some(x) = s.run_outcome(&mut self.e, Ok(sol), mark) {
                            // The end point is verified with the other rows' (see
                            // `predict_rows`).
                            self.verify_x = x;
                            self.stage = Stage::Verify(mark.c);
                            return;
                        }
                    }
                    Err(err) => s.end_run(&mut self.e, Err(err), mark),
                }
                self.stage = Stage::NextRun;
            }
            _ => return,
        }
        self.drive();
    }

    fn result(&mut self) -> Result<AttackResult> {
        if let Some(err) = self.error.take() {
            return Err(err);
        }
        let winner = winner_of(&self.searches);
        Ok(assemble(
            self.target,
            self.original_label,
            &self.e,
            &self.searches,
            winner,
            self.e.obj.origin(),
        ))
    }
}

/// The buffers of one batched evaluation, sized once for the largest batch.
struct Batch {
    x: Array2<f64>,
    grad: Array2<f64>,
    loss: Vec<f64>,
    label: Vec<usize>,
    goals: Vec<Goal>,
    /// The classification loss of the attack (the objective's [`AttackLoss`]).
    kind: AttackLoss,
    /// Indices of the rows waiting for an evaluation (reused).
    waiting: Vec<usize>,
    /// Per joining row: its row in `x` when its clean prediction is made in the batch.
    slot: Vec<Option<usize>>,
    /// Per joining row: the predicted label (`None`: not made in the batch).
    predicted: Vec<Option<usize>>,
    /// Per row of a prediction pass: the first of its points, and their number.
    spans: Vec<(usize, usize)>,
    /// The directions of a lines pass (its origins are in `x`).
    dirs: Array2<f64>,
    /// The points of a lines pass: `(line, t)`.
    points: Vec<(usize, f64)>,
}

impl Batch {
    /// One model pass over the first `k` rows of `x` (at least 2 rows are passed: a single
    /// waiting row is duplicated, so that every pass takes the model's batched path and a
    /// row's result does not depend on how many rows it shares the pass with).
    fn evaluate<C: Classifier + ?Sized>(&mut self, model: &C, k: usize) -> Result<()> {
        let rows = self.at_least_two_rows(k);
        if k == 1 {
            self.goals[1] = self.goals[0];
        }
        let Batch {
            x,
            grad,
            loss,
            label,
            goals,
            kind,
            ..
        } = self;
        let kind = *kind;
        let mut bad_shape = None;
        let mut seed = |z: ArrayView2<'_, f64>, mut dz: ArrayViewMut2<'_, f64>| -> f64 {
            crate_callback(|| {
                // One row of logits per input row, at least `named_label + 1` of them, and a
                // gradient view of the same shape: anything else is the model's contract
                // broken.
                if z.nrows() != rows
                    || dz.dim() != z.dim()
                    || goals[..rows].iter().any(|g| g.named_label() >= z.ncols())
                {
                    bad_shape = Some((z.dim(), dz.dim()));
                    return f64::NAN;
                }
                for i in 0..rows {
                    let zr = z.row(i);
                    label[i] = argmax(zr);
                    if zr.iter().any(|v| !v.is_finite()) {
                        dz.row_mut(i).fill(0.0);
                        loss[i] = f64::NAN;
                    } else {
                        loss[i] = goals[i].loss_with(kind, zr, dz.row_mut(i));
                    }
                }
                0.0
            })
        };
        let res = model_call(|| {
            model.loss_gradient_into(
                x.slice(ndarray::s![..rows, ..]),
                &mut seed,
                grad.slice_mut(ndarray::s![..rows, ..]),
            )
        });
        if let Some((z, dz)) = bad_shape {
            return Err(Error::ModelContract {
                model: std::any::type_name::<C>(),
                what: format!(
                    "loss callback given logits {z:?} and gradient {dz:?} for {rows} input rows"
                ),
            });
        }
        res.map(|_| ())
    }

    /// The number of rows to pass for `k` waiting rows: `k`, or 2 with the lone row copied
    /// into the second.
    fn at_least_two_rows(&mut self, k: usize) -> usize {
        if k == 1 {
            let (first, mut rest) = self.x.view_mut().split_at(ndarray::Axis(0), 1);
            rest.row_mut(0).assign(&first.row(0));
        }
        k.max(2)
    }

    /// The predicted labels of `points` on the first `lines` lines (origins in `x`,
    /// directions in `dirs`) into `label`.
    fn predict_lines<C: Classifier + ?Sized>(&mut self, model: &C, lines: usize) -> Result<()> {
        let logits = model.logits_on_lines(
            self.x.slice(ndarray::s![..lines, ..]),
            self.dirs.slice(ndarray::s![..lines, ..]),
            &self.points,
        )?;
        if self.label.len() < logits.nrows() {
            self.label.resize(logits.nrows(), 0);
        }
        for (l, z) in self.label.iter_mut().zip(logits.rows()) {
            *l = argmax(z);
        }
        Ok(())
    }

    /// The predicted labels of the first `k` rows of `x` into `label` (at least 2 rows are
    /// passed, as in [`evaluate`](Self::evaluate)).
    fn predict<C: Classifier + ?Sized>(&mut self, model: &C, k: usize) -> Result<()> {
        let rows = self.at_least_two_rows(k);
        let logits = model.logits(self.x.slice(ndarray::s![..rows, ..]))?;
        for (l, z) in self.label.iter_mut().zip(logits.rows()) {
            *l = argmax(z);
        }
        Ok(())
    }
}

/// Makes the predictions every row of `rows` waits for (the rows in `panicked` excepted)
/// — the point that verifies a run's end, the point tracked during the run, the refined
/// point, in batched passes of at most `batch.x.nrows()` points; then the points of the
/// boundary-refinement rounds, which lie on one line per row, in lines passes
/// ([`logits_on_lines`](crate::ClassifierExt::logits_on_lines)) of at most as many points (a
/// row's points are never split) — and drives those rows on; again while rows wait. The
/// rows that panic are added to `panicked`. The same checks as the per-row path's
/// predictions: a point to verify that is not admissible is not passed to the model, and a
/// model that fails on a pass is asked again row by row (a row whose points fail is not
/// verified, or ends its refinement, as on the per-row path).
fn predict_rows<C: Classifier + ?Sized>(
    model: &C,
    rows: &mut [Row<'_, '_, C>],
    batch: &mut Batch,
    panicked: &mut Vec<(usize, Error)>,
) {
    loop {
        let mut any = false;
        for lines in [false, true] {
            let mut group = std::mem::take(&mut batch.waiting);
            group.clear();
            group.extend((0..rows.len()).filter(|&r| {
                rows[r].verifying()
                    && rows[r].refining() == lines
                    && panicked.iter().all(|&(p, _)| p != r)
            }));
            any |= !group.is_empty();
            predict_group(model, rows, batch, &group, lines, panicked);
            batch.waiting = group;
        }
        if !any {
            return;
        }
    }
}

/// The passes of [`predict_rows`] for the rows `group`: points to verify, or (`lines`)
/// refinement rounds.
fn predict_group<C: Classifier + ?Sized>(
    model: &C,
    rows: &mut [Row<'_, '_, C>],
    batch: &mut Batch,
    group: &[usize],
    lines: bool,
    panicked: &mut Vec<(usize, Error)>,
) {
    let room = batch.x.nrows();
    let mut first = 0;
    while first < group.len() {
        // The rows of this pass: their points (`k`, in `x`; or on the `used` lines of `x`
        // and `dirs`, at most `k ≤ room` points, so at most `room` lines).
        let (mut k, mut used) = (0, 0);
        let mut last = first;
        batch.spans.clear();
        batch.points.clear();
        while last < group.len() {
            let row = &rows[group[last]];
            let m = row.points_to_predict(model);
            if k + m > room && last > first {
                break;
            }
            let at = if lines { batch.points.len() } else { k };
            if m > 0 && lines {
                row.write_line(used, &mut batch.x, &mut batch.dirs, &mut batch.points);
                used += 1;
            } else if m > 0 {
                row.write_point(batch.x.slice_mut(ndarray::s![k..k + m, ..]));
            }
            batch.spans.push((at, m));
            k += m;
            last += 1;
        }
        let pass = &group[first..last];
        let whole = match k {
            0 => Ok(Ok(())),
            _ if lines => guarded(rows[pass[0]].index, || batch.predict_lines(model, used)),
            _ => guarded(rows[pass[0]].index, || batch.predict(model, k)),
        };
        let fine = matches!(whole, Ok(Ok(())));
        for (j, &r) in pass.iter().enumerate() {
            let (at, m) = batch.spans[j];
            let index = rows[r].index;
            let answer = if m == 0 {
                None
            } else if fine {
                Some(at)
            } else {
                // The pass failed: this row's points alone.
                let alone = if lines {
                    batch.points.clear();
                    rows[r].write_line(0, &mut batch.x, &mut batch.dirs, &mut batch.points);
                    guarded(index, || batch.predict_lines(model, 1))
                } else {
                    rows[r].write_point(batch.x.slice_mut(ndarray::s![..m, ..]));
                    guarded(index, || batch.predict(model, m))
                };
                match alone {
                    Ok(res) => res.ok().map(|()| 0),
                    Err(err) => {
                        panicked.push((r, err));
                        continue;
                    }
                }
            };
            let labels = answer.map(|at| &batch.label[at..at + m]);
            if let Err(err) = guarded(index, || rows[r].receive_labels(labels)) {
                panicked.push((r, err));
            }
        }
        first = last;
    }
}

/// The clean predictions of the rows `joining` of `inputs` whose input and target pass the
/// checks, in one batched pass, into `batch.predicted` (one entry per row; `None` where no
/// prediction was made: the row then predicts alone in [`Row::join`], which also reports its
/// errors — as when the batched pass fails).
fn predict_joining<C: Classifier + ?Sized>(
    model: &C,
    inputs: ArrayView2<'_, f64>,
    targets: &[Target],
    config: &AttackConfig,
    joining: std::ops::Range<usize>,
    batch: &mut Batch,
) {
    let mut k = 0;
    batch.slot.clear();
    for i in joining.clone() {
        let x = inputs.row(i);
        if validate_input(model, x, config).is_ok()
            && model.check_label(targets[i].named_label()).is_ok()
        {
            batch.x.row_mut(k).assign(&x);
            batch.slot.push(Some(k));
            k += 1;
        } else {
            batch.slot.push(None);
        }
    }
    let made = k > 0
        && matches!(
            guarded(joining.start, || batch.predict(model, k)),
            Ok(Ok(()))
        );
    let Batch {
        slot,
        label,
        predicted,
        ..
    } = batch;
    predicted.clear();
    predicted.extend(slot.iter().map(|s| s.filter(|_| made).map(|b| label[b])));
}

/// Evaluates every waiting row of `rows` once (one batched model pass; on a model error or
/// panic, each row alone so that only the failing rows fail) and drives the rows on; then,
/// once at least half the rows wait for predictions (so also when no row waits for an
/// evaluation), makes those predictions ([`predict_rows`]: the end points of the runs that
/// ended, the points tracked during them, the rounds of the refinements of the searches that
/// ended). Until then those rows sit out the evaluation passes, so that the predictions of
/// more rows share a pass: a pass costs the packing of every weight matrix whatever its
/// number of rows, which in the passes of the few rows whose run ended in one step was a
/// large part of the predictions' cost. Each row's computation is the same whatever the step
/// at which its predictions are made, so the results do not depend on it.
/// Returns the indices (into `rows`) of the rows that panicked, with their errors.
fn step_rows<C: Classifier + ?Sized>(
    model: &C,
    rows: &mut [Row<'_, '_, C>],
    batch: &mut Batch,
) -> Vec<(usize, Error)> {
    let mut waiting = std::mem::take(&mut batch.waiting);
    waiting.clear();
    waiting.extend((0..rows.len()).filter(|&r| rows[r].waiting()));
    let mut panicked = Vec::new();
    if !waiting.is_empty() {
        evaluate_rows(model, rows, batch, &waiting, &mut panicked);
    }
    let evaluated = waiting.len();
    batch.waiting = waiting;
    let verifying = rows.iter().filter(|r| r.verifying()).count();
    if evaluated == 0 || 2 * verifying >= rows.len() {
        predict_rows(model, rows, batch, &mut panicked);
    }
    panicked.sort_by_key(|&(r, _)| r);
    panicked
}

/// The evaluation of [`step_rows`] for the rows `waiting` (indices into `rows`, at least
/// one); the rows that panic are added to `panicked`.
fn evaluate_rows<C: Classifier + ?Sized>(
    model: &C,
    rows: &mut [Row<'_, '_, C>],
    batch: &mut Batch,
    waiting: &[usize],
    panicked: &mut Vec<(usize, Error)>,
) {
    let k = waiting.len();
    for (b, &r) in waiting.iter().enumerate() {
        batch
            .x
            .row_mut(b)
            .assign(&ndarray::ArrayView1::from(rows[r].point()));
        batch.goals[b] = rows[r].e.obj.goal();
    }
    let whole = guarded(rows[waiting[0]].index, || batch.evaluate(model, k));
    if let Ok(Ok(())) = whole {
        for (b, &r) in waiting.iter().enumerate() {
            let out = Ok((batch.loss[b], batch.label[b]));
            let lg = batch.grad.row(b);
            let lg = lg.as_slice().expect("a standard-layout buffer");
            let index = rows[r].index;
            if let Err(err) = guarded(index, || rows[r].receive(out, lg)) {
                panicked.push((r, err));
            }
        }
        return;
    }
    // The batch failed: every row alone (still a two-row pass), so a bad row fails alone.
    for &r in waiting {
        batch
            .x
            .row_mut(0)
            .assign(&ndarray::ArrayView1::from(rows[r].point()));
        batch.goals[0] = rows[r].e.obj.goal();
        let index = rows[r].index;
        match guarded(index, || batch.evaluate(model, 1)) {
            Ok(res) => {
                let out = res.map(|()| (batch.loss[0], batch.label[0]));
                let lg = batch.grad.row(0);
                let lg = lg.as_slice().expect("a standard-layout buffer");
                if let Err(err) = guarded(index, || rows[r].receive(out, lg)) {
                    panicked.push((r, err));
                }
            }
            Err(err) => panicked.push((r, err)),
        }
    }
}

/// The lockstep attack of the rows `range` of `inputs`, at most `max_batch` at a time.
fn attack_range<C: Classifier + ?Sized>(
    model: &C,
    inputs: ArrayView2<'_, f64>,
    targets: &[Target],
    config: &AttackConfig,
    range: std::ops::Range<usize>,
    max_batch: usize,
) -> Vec<Result<AttackResult>> {
    let n = model.input_dim();
    let start = range.start;
    let mut out: Vec<Option<Result<AttackResult>>> = range.clone().map(|_| None).collect();
    // No more rows at once than the range has: an absurd `max_batch` allocates nothing more.
    let max_batch = max_batch.min(range.len()).max(1);
    let cap = max_batch.max(2);
    // Room for a refinement round's points too (a row's points share one pass).
    let (rounds, points) = config.refinement();
    let room = if rounds > 0 { cap.max(points) } else { cap };
    let mut batch = Batch {
        x: Array2::zeros((room, n)),
        grad: Array2::zeros((cap, n)),
        loss: vec![0.0; cap],
        label: vec![0; room],
        goals: vec![Goal::Label(0); cap],
        kind: config.loss(),
        waiting: Vec::with_capacity(cap),
        slot: Vec::with_capacity(cap),
        predicted: Vec::with_capacity(cap),
        spans: Vec::with_capacity(cap),
        dirs: Array2::zeros((if rounds > 0 { room } else { 0 }, n)),
        points: Vec::with_capacity(if rounds > 0 { room + 1 } else { 0 }),
    };
    let mut rows: Vec<Row<'_, '_, C>> = Vec::with_capacity(max_batch);
    let mut next = range.start;
    loop {
        // Fill the batch with new rows (their clean predictions made together, each row
        // then driven to its first evaluation).
        while rows.len() < max_batch && next < range.end {
            let joining = next..(next + max_batch - rows.len()).min(range.end);
            next = joining.end;
            predict_joining(model, inputs, targets, config, joining.clone(), &mut batch);
            for (j, i) in joining.enumerate() {
                let predicted = batch.predicted[j];
                let joined = guarded(i, || {
                    let mut row =
                        Row::join(model, inputs.row(i), i, targets[i], config, predicted)?;
                    row.drive();
                    Ok::<_, Box<Result<AttackResult>>>(row)
                });
                match joined {
                    Ok(Ok(mut row)) if row.stage == Stage::Finished => {
                        out[i - start] = Some(row.result());
                    }
                    Ok(Ok(row)) => rows.push(row),
                    Ok(Err(done)) => out[i - start] = Some(*done),
                    Err(err) => out[i - start] = Some(Err(err)),
                }
            }
        }
        if rows.is_empty() {
            break;
        }
        let panicked = step_rows(model, &mut rows, &mut batch);
        for (r, err) in panicked.into_iter().rev() {
            let row = rows.remove(r);
            out[row.index - start] = Some(Err(err));
        }
        // Finished rows leave, in order.
        let mut r = 0;
        while r < rows.len() {
            if rows[r].stage == Stage::Finished {
                let mut row = rows.remove(r);
                out[row.index - start] = Some(row.result());
            } else {
                r += 1;
            }
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(k, r)| {
            r.unwrap_or_else(|| {
                Err(Error::parameter(
                    "inputs",
                    format!("row {} not attacked", start + k),
                    "rows of the model's input length",
                ))
            })
        })
        .collect()
}

/// [`attack_batch`](super::attack_batch) with the rows in lockstep: every row runs the same
/// search as [`find_minimal_perturbation`](super::find_minimal_perturbation), but all rows
/// waiting for an evaluation are evaluated together, one `[k, n]` forward + backward pass
/// of at most `max_batch` rows (use [`DEFAULT_LOCKSTEP_BATCH`]), so that the model runs
/// matrix–matrix products instead of one matrix–vector product per row; the
/// re-classifications that verify the runs' end points and the predictions of the boundary
/// refinement ([`AttackConfig::with_refinement`]) are batched across rows the same way (a
/// row waits for them until half the batch does). Each of the `threads` workers takes a
/// contiguous share of the rows.
///
/// The result of a row does not depend on `threads` or `max_batch` when the model computes
/// each row of a batch independently of the others (the crate's models do: one matrix
/// product per layer, whose entries are summed in an order that does not depend on the
/// number of rows; a pass always has at least two rows). It may differ **in the last bits**
/// from [`attack_batch`](super::attack_batch)'s: a model may evaluate a single row by another route (the crate's
/// [`Mlp`](crate::models::Mlp) uses dot products for one row, a matrix product for many),
/// whose sums round differently; the searches then agree to the solver's tolerance
/// (`tests/attack_lockstep.rs`, `docs/attack.md`).
///
/// Errors and isolation as [`attack_batch`](super::attack_batch): a bad row, a model error
/// or a panicking model gives an `Err` in that row's slot only (a failed batched pass is
/// retried row by row). The outer `Err`: `targets.len() != inputs.nrows()`, `threads == 0`
/// or `max_batch == 0` (parameters `"threads"`, `"max_batch"`).
///
/// # Examples
///
/// ```
/// use intriguing::attack::{attack_batch_lockstep, AttackConfig, Target, DEFAULT_LOCKSTEP_BATCH};
/// # use intriguing::classifier::{Classifier, LogitsLoss};
/// # use intriguing::Result;
/// # use ndarray::{array, Array2, ArrayView2, ArrayViewMut2};
/// # struct Linear(Array2<f64>);
/// # impl Classifier for Linear {
/// #     fn input_dim(&self) -> usize { self.0.ncols() }
/// #     fn num_classes(&self) -> usize { self.0.nrows() }
/// #     fn logits_into(&self, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) -> Result<()> {
/// #         out.assign(&x.dot(&self.0.t())); Ok(())
/// #     }
/// #     fn loss_gradient_into(&self, x: ArrayView2<f64>, seed: LogitsLoss<'_>,
/// #                           mut grad: ArrayViewMut2<f64>) -> Result<f64> {
/// #         let z = x.dot(&self.0.t());
/// #         let mut dz = Array2::zeros(z.raw_dim());
/// #         let loss = seed(z.view(), dz.view_mut());
/// #         grad.assign(&dz.dot(&self.0)); Ok(loss)
/// #     }
/// # }
/// let model = Linear(array![[1.0, -1.0], [-1.0, 1.0]]); // class 1 iff x₁ > x₀
/// let inputs = array![[0.7, 0.3], [0.6, 0.5], [f64::NAN, 0.0]];
/// let targets = [Target::Label(1), Target::Label(1), Target::Label(1)];
/// let cfg = AttackConfig::default();
/// let results = attack_batch_lockstep(&model, inputs.view(), &targets, &cfg, 1,
///                                     DEFAULT_LOCKSTEP_BATCH)?;
/// assert!(results[0].as_ref().unwrap().success());
/// assert!(results[1].as_ref().unwrap().success());
/// assert!(results[2].is_err()); // NaN input: an error in its own slot only
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn attack_batch_lockstep<C: Classifier + ?Sized>(
    model: &C,
    inputs: ArrayView2<'_, f64>,
    targets: &[Target],
    config: &AttackConfig,
    threads: usize,
    max_batch: usize,
) -> Result<Vec<Result<AttackResult>>> {
    if targets.len() != inputs.nrows() {
        return Err(Error::shape(
            "attack targets",
            inputs.nrows(),
            targets.len(),
        ));
    }
    validate::at_least_one("threads", threads)?;
    validate::at_least_one("max_batch", max_batch)?;
    let rows = inputs.nrows();
    let threads = threads.min(rows.max(1));
    let share = rows.div_ceil(threads.max(1)).max(1);
    if threads == 1 {
        return Ok(attack_range(
            model,
            inputs,
            targets,
            config,
            0..rows,
            max_batch,
        ));
    }
    let mut out = Vec::with_capacity(rows);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = (t * share).min(rows)..((t + 1) * share).min(rows);
                scope.spawn(move || attack_range(model, inputs, targets, config, range, max_batch))
            })
            .collect();
        for h in handles {
            // Panics are caught per row, so joining cannot fail in practice.
            if let Ok(part) = h.join() {
                out.extend(part);
            }
        }
    });
    if out.len() != rows {
        return Err(Error::parameter(
            "threads",
            "a worker was lost",
            "workers that finish their rows",
        ));
    }
    Ok(out)
}
