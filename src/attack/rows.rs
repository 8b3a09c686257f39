//! Shared machinery of the row-wise attacks ([`deepfool`](super::deepfool),
//! [`fgsm`](super::fgsm), [`pgd`](super::pgd)): the per-row result, input validation, batched
//! model calls, verification, and a deterministic multi-threaded runner over chunks of rows.
//!
//! Rows are processed in fixed chunks of [`CHUNK`] rows (one batched model call per chunk and
//! iteration); the chunks are handed to the worker threads through an atomic counter, and a
//! row's random numbers (PGD's random start) come from a stream keyed by the row's index, so
//! the results are identical whatever the thread count. When a batched call fails (a model
//! error, non-finite values, a panic), the chunk is re-run row by row, so that only the
//! offending rows get an `Err` in their slot.

use super::result::Adversarial;
use crate::classifier::{Classifier, argmax};
use crate::error::{Error, Result, check_finite};
use crate::optim::Bounds;
use crate::validate;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, s};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Rows per batched model call.
pub(crate) const CHUNK: usize = 16;

/// The norm an attack measures (and, for ε-bounded attacks, bounds) perturbations in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Norm {
    /// Euclidean `‖r‖₂`.
    L2,
    /// Maximum `‖r‖∞ = max |r_i|`.
    Linf,
}

impl Norm {
    /// The norm of `r`.
    pub fn of(self, r: ArrayView1<'_, f64>) -> f64 {
        match self {
            Norm::L2 => r.iter().map(|v| v * v).sum::<f64>().sqrt(),
            Norm::Linf => r.iter().fold(0.0f64, |m, v| m.max(v.abs())),
        }
    }

    /// The norm of an [`Adversarial`]'s perturbation.
    pub fn of_adversarial(self, a: &Adversarial) -> f64 {
        match self {
            Norm::L2 => a.l2,
            Norm::Linf => a.linf,
        }
    }
}

/// The outcome of a row-wise attack on one input row.
///
/// `adversarial` is `Some` only for a point that was re-verified after the attack: the model,
/// re-evaluated there, predicts a label other than `label`; the point is finite and inside the
/// box (and, for the ε-bounded attacks, within ε of the input).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RowResult {
    /// The true label given for the row.
    pub label: usize,
    /// The model's prediction at the clean input.
    pub original_label: usize,
    /// The verified adversarial input (`None`: none found).
    pub adversarial: Option<Adversarial>,
    /// True when the clean input was already misclassified (`r = 0`, no iteration done).
    pub already_adversarial: bool,
    /// The attack's last iterate (verified or not; the clean input when no step was taken).
    pub last_iterate: Array1<f64>,
    /// Iterations (steps) taken.
    pub iterations: usize,
    /// Gradient rows (one forward + one backward pass of one row each) spent.
    pub gradient_evaluations: usize,
    /// Prediction-only rows (forward passes) spent, verification included.
    pub predictions: usize,
}

impl RowResult {
    /// True when a verified adversarial input was found (or the input was misclassified).
    pub fn success(&self) -> bool {
        self.adversarial.is_some()
    }
    /// The perturbation's norm, when successful.
    pub fn distortion(&self, norm: Norm) -> Option<f64> {
        self.adversarial.as_ref().map(|a| norm.of_adversarial(a))
    }
}

/// Whole-batch checks: `inputs` is `[n, input_dim]`, one label per row, a model with ≥ 2
/// classes, a valid box, `threads ≥ 1`.
pub(crate) fn check_batch<C: Classifier + ?Sized>(
    model: &C,
    inputs: ArrayView2<'_, f64>,
    labels: &[usize],
    domain: &Bounds,
    threads: usize,
) -> Result<()> {
    if inputs.ncols() != model.input_dim() {
        return Err(Error::shape(
            "attack inputs",
            format!("[n, {}]", model.input_dim()),
            format!("{:?}", inputs.shape()),
        ));
    }
    if labels.len() != inputs.nrows() {
        return Err(Error::shape("attack labels", inputs.nrows(), labels.len()));
    }
    if model.num_classes() < 2 {
        return Err(Error::parameter(
            "model num_classes",
            model.num_classes(),
            ">= 2 for an attack",
        ));
    }
    domain.check_fits(model.input_dim(), "attack box")?;
    validate::at_least_one("threads", threads)?;
    Ok(())
}

/// Per-row checks: finite, inside the box, label in range.
pub(crate) fn check_row<C: Classifier + ?Sized>(
    model: &C,
    x: ArrayView1<'_, f64>,
    label: usize,
    domain: &Bounds,
) -> Result<()> {
    check_finite(x.iter(), "attack input")?;
    domain.check_contains_values(x.iter())?;
    if label >= model.num_classes() {
        return Err(Error::LabelOutOfRange {
            label,
            num_classes: model.num_classes(),
        });
    }
    Ok(())
}

/// Clamps `x` into the box, coordinate by coordinate.
pub(crate) fn clip_into(domain: &Bounds, x: &mut [f64]) {
    domain.project(x);
}

fn non_finite(what: &str) -> Error {
    Error::ModelNonFinite {
        what: what.to_string(),
    }
}

/// Logits of a batch into `out`, checked finite.
pub(crate) fn logits_checked<C: Classifier + ?Sized>(
    model: &C,
    x: ArrayView2<'_, f64>,
    mut out: ArrayViewMut2<'_, f64>,
) -> Result<()> {
    crate::classifier::model_call(|| model.logits_into(x, out.view_mut()))?;
    if out.iter().any(|v| !v.is_finite()) {
        return Err(non_finite("logits"));
    }
    Ok(())
}

/// One forward + backward pass of a batch: `seed(i, z_i, dz_i)` writes row `i`'s
/// `dloss/dlogits`; the logits are copied into `logits`, the input gradients written into
/// `grad`. Everything is checked finite.
pub(crate) fn vjp<C: Classifier + ?Sized>(
    model: &C,
    x: ArrayView2<'_, f64>,
    mut seed: impl FnMut(usize, ArrayView1<'_, f64>, ndarray::ArrayViewMut1<'_, f64>),
    mut logits: ArrayViewMut2<'_, f64>,
    mut grad: ArrayViewMut2<'_, f64>,
) -> Result<()> {
    let mut finite = true;
    let mut bad_shape = None;
    let want = logits.dim();
    let mut s = |z: ArrayView2<'_, f64>, mut dz: ArrayViewMut2<'_, f64>| -> f64 {
        crate::classifier::crate_callback(|| {
            // The crate relies on `[rows, classes]` logits and a gradient view of that shape.
            if z.dim() != want || dz.dim() != want {
                bad_shape = Some((z.dim(), dz.dim()));
                return f64::NAN;
            }
            logits.assign(&z);
            if z.iter().any(|v| !v.is_finite()) {
                finite = false;
                dz.fill(0.0);
                return 0.0;
            }
            for (i, (zr, dzr)) in z.rows().into_iter().zip(dz.rows_mut()).enumerate() {
                seed(i, zr, dzr);
            }
            0.0
        })
    };
    let res =
        crate::classifier::model_call(|| model.loss_gradient_into(x, &mut s, grad.view_mut()));
    if let Some((z, dz)) = bad_shape {
        return Err(Error::ModelContract {
            model: std::any::type_name::<C>(),
            what: format!(
                "loss callback given logits {z:?} and gradient {dz:?}, expected {want:?}"
            ),
        });
    }
    res?;
    if !finite {
        return Err(non_finite("logits"));
    }
    if grad.iter().any(|v| !v.is_finite()) {
        return Err(non_finite("input gradient"));
    }
    Ok(())
}

/// The softmax cross-entropy gradient `dCE/dz = softmax(z) − e_y` of one logits row.
pub(crate) fn ce_seed(z: ArrayView1<'_, f64>, y: usize, mut dz: ndarray::ArrayViewMut1<'_, f64>) {
    let m = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0;
    for (d, &v) in dz.iter_mut().zip(z.iter()) {
        *d = (v - m).exp();
        sum += *d;
    }
    for (j, d) in dz.iter_mut().enumerate() {
        *d /= sum;
        if j == y {
            *d -= 1.0;
        }
    }
}

/// Re-verifies candidates: fresh logits (one batched forward pass), finite, inside the box,
/// within `max_norm` of the origin in `norm` (when given), and predicted label `≠ label`.
/// Returns the predicted label of each verified row.
pub(crate) fn verify_rows<C: Classifier + ?Sized>(
    model: &C,
    candidates: ArrayView2<'_, f64>,
    origins: ArrayView2<'_, f64>,
    labels: &[usize],
    domain: &Bounds,
    bound: Option<(Norm, f64)>,
) -> Result<Vec<Option<usize>>> {
    let mut z = Array2::zeros((candidates.nrows(), model.num_classes()));
    logits_checked(model, candidates, z.view_mut())?;
    Ok(candidates
        .rows()
        .into_iter()
        .zip(origins.rows())
        .zip(z.rows())
        .zip(labels)
        .map(|(((c, o), z), &y)| {
            let xs = c.to_slice();
            let inside = match xs {
                Some(xs) => domain.contains(xs),
                None => domain.contains(&c.to_vec()),
            };
            let within = bound.is_none_or(|(norm, eps)| {
                let r = &c - &o;
                // Rounding in `x0 + δ` may exceed ε by an ulp or so.
                norm.of(r.view()) <= eps * (1.0 + 1e-12) + 1e-15
            });
            let pred = argmax(z);
            (inside && within && pred != y).then_some(pred)
        })
        .collect())
}

/// A row's private random stream: ChaCha8 seeded by `seed`, stream = row index (independent
/// of chunking and threads).
pub(crate) fn row_rng(seed: u64, row: usize) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(row as u64);
    rng
}

/// Copies the given rows of `inputs` into a new `[rows.len(), n]` array.
pub(crate) fn gather(inputs: ArrayView2<'_, f64>, rows: &[usize]) -> Array2<f64> {
    let mut out = Array2::zeros((rows.len(), inputs.ncols()));
    for (mut o, &i) in out.rows_mut().into_iter().zip(rows) {
        o.assign(&inputs.row(i));
    }
    out
}

/// Validates every row, then runs `chunk_fn` on fixed chunks of the valid rows on `threads`
/// workers. `chunk_fn(rows)` returns one result per row of `rows`. A chunk that fails is re-run
/// row by row; a panic becomes [`Error::ModelPanicked`] for that row when it came out of the
/// model, [`Error::Internal`] when it started in the crate.
pub(crate) fn run_rows<C, T, F>(
    model: &C,
    inputs: ArrayView2<'_, f64>,
    labels: &[usize],
    domain: &Bounds,
    threads: usize,
    chunk_fn: F,
) -> Vec<Result<T>>
where
    C: Classifier + ?Sized,
    T: Send,
    F: Fn(&[usize]) -> Result<Vec<T>> + Sync,
{
    let n = inputs.nrows();
    let mut slots: Vec<Option<Result<T>>> = (0..n).map(|_| None).collect();
    let mut valid = Vec::with_capacity(n);
    for (i, slot) in slots.iter_mut().enumerate() {
        match check_row(model, inputs.row(i), labels[i], domain) {
            Ok(()) => valid.push(i),
            Err(e) => *slot = Some(Err(e)),
        }
    }
    let guarded = |rows: &[usize]| -> Result<Vec<T>> {
        crate::classifier::take_panic_owner();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| chunk_fn(rows))) {
            Ok(Ok(v)) if v.len() == rows.len() => Ok(v),
            Ok(Ok(v)) => Err(Error::Internal {
                row: rows[0],
                message: format!("{} results for a chunk of {} rows", v.len(), rows.len()),
            }),
            Ok(Err(e)) => Err(e),
            Err(p) => Err(crate::classifier::panic_error(rows[0], p)),
        }
    };
    let do_chunk = |rows: &[usize]| -> Vec<(usize, Result<T>)> {
        match guarded(rows) {
            Ok(v) => rows.iter().copied().zip(v.into_iter().map(Ok)).collect(),
            Err(e) if rows.len() == 1 => vec![(rows[0], Err(e))],
            Err(_) => rows
                .iter()
                .map(|&i| {
                    let r = guarded(&[i]).map(|mut v| v.remove(0));
                    (i, r)
                })
                .collect(),
        }
    };
    let chunks: Vec<&[usize]> = valid.chunks(CHUNK).collect();
    let threads = threads.min(chunks.len()).max(1);
    let mut done: Vec<(usize, Result<T>)> = Vec::with_capacity(valid.len());
    if threads == 1 {
        for c in &chunks {
            done.extend(do_chunk(c));
        }
    } else {
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut out = Vec::new();
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            if k >= chunks.len() {
                                break;
                            }
                            out.extend(do_chunk(chunks[k]));
                        }
                        out
                    })
                })
                .collect();
            for h in handles {
                // Panics are caught per chunk, so joining cannot fail in practice.
                if let Ok(out) = h.join() {
                    done.extend(out);
                }
            }
        });
    }
    for (i, r) in done {
        slots[i] = Some(r);
    }
    slots
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                Err(Error::Internal {
                    row: i,
                    message: "the row was not attacked (worker lost)".into(),
                })
            })
        })
        .collect()
}

/// A `[m, n]` view of the first `m` rows of a buffer.
pub(crate) fn head_mut(a: &mut Array2<f64>, m: usize) -> ArrayViewMut2<'_, f64> {
    a.slice_mut(s![..m, ..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classifier::LogitsLoss;

    /// Two classes, logits `[0, x₀]`; `panic_in_model` makes every call panic, and
    /// `bad_rows` hands the loss callback one row too many.
    struct Toy {
        panic_in_model: bool,
        bad_rows: bool,
    }

    const FINE: Toy = Toy {
        panic_in_model: false,
        bad_rows: false,
    };

    impl Classifier for Toy {
        fn input_dim(&self) -> usize {
            1
        }
        fn num_classes(&self) -> usize {
            2
        }
        fn logits_into(
            &self,
            x: ArrayView2<'_, f64>,
            mut out: ArrayViewMut2<'_, f64>,
        ) -> Result<()> {
            assert!(!self.panic_in_model, "model panic");
            for (mut o, xi) in out.rows_mut().into_iter().zip(x.rows()) {
                o[0] = 0.0;
                o[1] = xi[0];
            }
            Ok(())
        }
        fn loss_gradient_into(
            &self,
            x: ArrayView2<'_, f64>,
            loss: LogitsLoss<'_>,
            mut grad: ArrayViewMut2<'_, f64>,
        ) -> Result<f64> {
            let rows = x.nrows() + usize::from(self.bad_rows);
            let mut z = Array2::zeros((rows, 2));
            let mut out = z.slice_mut(s![..x.nrows(), ..]);
            self.logits_into(x, out.view_mut())?;
            let mut dz = Array2::zeros((rows, 2));
            let v = loss(z.view(), dz.view_mut());
            for (mut g, d) in grad.rows_mut().into_iter().zip(dz.rows()) {
                g[0] = d[1];
            }
            Ok(v)
        }
    }

    fn run(
        model: &Toy,
        chunk_fn: impl Fn(&[usize]) -> Result<Vec<usize>> + Sync,
    ) -> Vec<Result<usize>> {
        let x = Array2::from_elem((3, 1), 0.5);
        let b = Bounds::interval(0.0, 1.0).unwrap();
        run_rows(model, x.view(), &[0, 0, 0], &b, 2, chunk_fn)
    }

    fn internal(r: &Result<usize>) -> bool {
        matches!(r, Err(Error::Internal { .. }))
    }

    #[test]
    fn the_crates_own_failures_are_internal_not_the_models() {
        // A panic in the runner's closure, outside any model call.
        let out = run(&FINE, |_| -> Result<Vec<usize>> { panic!("crate bug") });
        assert!(out.iter().all(internal), "{out:?}");
        // A chunk function returning the wrong number of results.
        let out = run(&FINE, |_| Ok(vec![]));
        assert!(out.iter().all(internal), "{out:?}");
        // A panic in the crate's loss callback while the (fine) model calls it.
        let x = Array2::from_elem((3, 1), 0.5);
        let out = run(&FINE, |rows| {
            let mut z = Array2::zeros((rows.len(), 2));
            let mut g = Array2::zeros((rows.len(), 1));
            let xs = gather(x.view(), rows);
            vjp(
                &FINE,
                xs.view(),
                |_, _, _| panic!("seed bug"),
                z.view_mut(),
                g.view_mut(),
            )?;
            Ok(rows.to_vec())
        });
        assert!(out.iter().all(internal), "{out:?}");
        // The same runner with a fine closure gives every row's result.
        let out = run(&FINE, |rows| Ok(rows.to_vec()));
        assert_eq!(
            out.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>(),
            [0, 1, 2]
        );
    }

    #[test]
    fn a_panicking_model_is_model_panicked_for_each_row() {
        let m = Toy {
            panic_in_model: true,
            bad_rows: false,
        };
        let x = Array2::from_elem((3, 1), 0.5);
        let out = run(&m, |rows| {
            let mut z = Array2::zeros((rows.len(), 2));
            logits_checked(&m, gather(x.view(), rows).view(), z.view_mut())?;
            Ok(rows.to_vec())
        });
        for (i, r) in out.iter().enumerate() {
            assert!(
                matches!(r, Err(Error::ModelPanicked { row, message }) if *row == i && message == "model panic"),
                "{r:?}"
            );
        }
    }

    #[test]
    fn a_loss_callback_of_the_wrong_shape_is_a_contract_error() {
        let m = Toy {
            panic_in_model: false,
            bad_rows: true,
        };
        let x = Array2::from_elem((2, 1), 0.5);
        let mut z = Array2::zeros((2, 2));
        let mut g = Array2::zeros((2, 1));
        let r = vjp(&m, x.view(), |_, _, _| {}, z.view_mut(), g.view_mut());
        assert!(
            matches!(&r, Err(Error::ModelContract { model, what }) if model.contains("Toy") && what.contains("(3, 2)")),
            "{r:?}"
        );
        // The well-behaved toy passes the same call.
        vjp(&FINE, x.view(), |_, _, _| {}, z.view_mut(), g.view_mut()).unwrap();
    }
}
