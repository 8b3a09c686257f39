//! Attacking many inputs in parallel, deterministically.

use super::config::AttackConfig;
use super::find_minimal_perturbation;
use super::result::{AttackResult, Target};
use crate::classifier::Classifier;
use crate::error::{Error, Result};
use crate::validate;
use ndarray::ArrayView2;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Attacks every row of `inputs` with its own target, on `threads` worker threads.
///
/// Each row's result depends only on that row (the rows are handed out through an atomic
/// counter, and every attack is deterministic), so the output is identical whatever the
/// thread count. A failing row — bad input, a model error, even a panicking model — yields an
/// `Err` in its own slot and leaves the others untouched: a panic inside a call into the
/// model is [`Error::ModelPanicked`], any other panic (a bug in this crate) is
/// [`Error::Internal`].
///
/// The outer `Err` is only for arguments that concern the whole batch: `targets.len() !=
/// inputs.nrows()` or `threads == 0`.
///
/// # Examples
///
/// ```
/// use intriguing::attack::{attack_batch, AttackConfig, Target};
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
/// let results = attack_batch(&model, inputs.view(), &targets, &AttackConfig::default(), 2)?;
/// assert!(results[0].as_ref().unwrap().success());
/// assert!(results[1].as_ref().unwrap().success());
/// assert!(results[2].is_err()); // NaN input: an error in its own slot only
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn attack_batch<C: Classifier + ?Sized>(
    model: &C,
    inputs: ArrayView2<'_, f64>,
    targets: &[Target],
    config: &AttackConfig,
    threads: usize,
) -> Result<Vec<Result<AttackResult>>> {
    if targets.len() != inputs.nrows() {
        return Err(Error::shape(
            "attack targets",
            inputs.nrows(),
            targets.len(),
        ));
    }
    validate::at_least_one("attack_batch threads", threads)?;
    let n = inputs.nrows();
    let attack_row = |i: usize| -> Result<AttackResult> {
        let row = inputs.row(i);
        crate::classifier::take_model_panicked();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            find_minimal_perturbation(model, row, targets[i], config)
        }))
        .unwrap_or_else(|payload| {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            // A panic that unwound out of a call into the model is the model's; any other
            // is the crate's own.
            if crate::classifier::take_model_panicked() {
                Err(Error::ModelPanicked {
                    row: i,
                    message: msg,
                })
            } else {
                Err(Error::Internal {
                    row: i,
                    message: msg,
                })
            }
        })
    };
    let threads = threads.min(n.max(1));
    if threads == 1 {
        return Ok((0..n).map(attack_row).collect());
    }
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<Result<AttackResult>>> = (0..n).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        done.push((i, attack_row(i)));
                    }
                    done
                })
            })
            .collect();
        for h in handles {
            // Panics are caught per row, so joining cannot fail in practice.
            if let Ok(done) = h.join() {
                for (i, r) in done {
                    slots[i] = Some(r);
                }
            }
        }
    });
    Ok(slots
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                Err(Error::InvalidConfig(format!(
                    "row {i} was not attacked (worker lost)"
                )))
            })
        })
        .collect())
}
