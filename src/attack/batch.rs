//! Attacking many inputs in parallel, deterministically.

use super::config::AttackConfig;
use super::find_minimal_perturbation;
use super::result::{AttackResult, Target};
use crate::classifier::Classifier;
use crate::error::{Error, Result};
use crate::validate;
use ndarray::ArrayView2;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Where an [`attack_batch_with`] run stands, passed to its progress callback after every
/// row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchProgress {
    /// Rows finished so far (1 to `total`).
    pub done: usize,
    /// Rows in the batch.
    pub total: usize,
    /// Finished rows that did not yield a verified adversarial example (an error, or an
    /// attack that gave up).
    pub failed: usize,
    /// Wall-clock time since the batch started.
    pub elapsed: Duration,
}

impl BatchProgress {
    /// Rows per second so far (0 before the first row).
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.done as f64 / s } else { 0.0 }
    }

    /// Estimated time to finish at the rate so far (`None` before the first row).
    pub fn eta(&self) -> Option<Duration> {
        let rate = self.rate();
        (self.done > 0 && rate > 0.0)
            .then(|| Duration::from_secs_f64((self.total - self.done) as f64 / rate))
    }
}

/// A progress callback for [`attack_batch_with`]. It is called from the worker threads, one
/// call at a time, with `done` increasing by one per call; it should be quick (the workers
/// wait while it runs) and must not panic.
pub type ProgressFn<'a> = &'a (dyn Fn(BatchProgress) + Sync);

/// How [`attack_batch_with`] runs: the number of worker threads (default
/// [`default_threads`]) and an optional progress callback.
#[derive(Clone, Copy, Default)]
pub struct BatchOptions<'a> {
    threads: Option<usize>,
    progress: Option<ProgressFn<'a>>,
}

impl std::fmt::Debug for BatchOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchOptions")
            .field("threads", &self.threads())
            .field("progress", &self.progress.map(|_| "callback"))
            .finish()
    }
}

impl<'a> BatchOptions<'a> {
    /// [`default_threads`] threads, no progress callback.
    pub fn new() -> Self {
        Self::default()
    }

    /// `threads ≥ 1` worker threads (an error for 0).
    pub fn with_threads(mut self, threads: usize) -> Result<Self> {
        self.threads = Some(validate::at_least_one("attack_batch threads", threads)?);
        Ok(self)
    }

    /// Calls `progress` after every finished row.
    pub fn with_progress(mut self, progress: ProgressFn<'a>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The number of worker threads this runs on.
    pub fn threads(&self) -> usize {
        self.threads.unwrap_or_else(default_threads)
    }
}

/// The default number of worker threads: [`std::thread::available_parallelism`] (1 when it
/// is unknown).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

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
///
/// [`attack_batch_with`] takes the thread count from the machine and reports progress.
pub fn attack_batch<C: Classifier + ?Sized>(
    model: &C,
    inputs: ArrayView2<'_, f64>,
    targets: &[Target],
    config: &AttackConfig,
    threads: usize,
) -> Result<Vec<Result<AttackResult>>> {
    let options = BatchOptions::new().with_threads(threads)?;
    attack_batch_with(model, inputs, targets, config, &options)
}

/// [`attack_batch`] with [`BatchOptions`]: by default on [`default_threads`] threads, and
/// with an optional progress callback (rows done, failed, elapsed, rate and ETA) for long
/// batches. The results are identical to [`attack_batch`]'s whatever the thread count.
///
/// # Examples
///
/// ```
/// use intriguing::attack::{attack_batch_with, AttackConfig, BatchOptions, BatchProgress, Target};
/// use intriguing::ClassifierExt;
/// use intriguing::models::{Activation, Mlp};
/// use ndarray::Array2;
/// use std::sync::Mutex;
///
/// let model = Mlp::random(&[8, 6, 3], Activation::Tanh, 0)?;
/// let inputs = Array2::from_shape_fn((5, 8), |(i, j)| ((i + 2 * j) % 5) as f64 / 4.0);
/// let targets: Vec<Target> = (0..5)
///     .map(|i| Target::Untargeted { true_label: model.predict(inputs.row(i)).unwrap() })
///     .collect();
/// let seen = Mutex::new(Vec::new());
/// let report = |p: BatchProgress| seen.lock().unwrap().push(p.done);
/// let options = BatchOptions::new().with_progress(&report); // default thread count
/// let results = attack_batch_with(&model, inputs.view(), &targets, &AttackConfig::default(), &options)?;
/// assert_eq!(results.len(), 5);
/// assert_eq!(*seen.lock().unwrap(), vec![1, 2, 3, 4, 5]);
/// # use intriguing::Classifier;
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn attack_batch_with<C: Classifier + ?Sized>(
    model: &C,
    inputs: ArrayView2<'_, f64>,
    targets: &[Target],
    config: &AttackConfig,
    options: &BatchOptions<'_>,
) -> Result<Vec<Result<AttackResult>>> {
    let threads = options.threads();
    if targets.len() != inputs.nrows() {
        return Err(Error::shape(
            "attack targets",
            inputs.nrows(),
            targets.len(),
        ));
    }
    let n = inputs.nrows();
    let start = Instant::now();
    // (done, failed), locked while the callback runs so that calls are ordered.
    let counts = Mutex::new((0usize, 0usize));
    let report = |r: &Result<AttackResult>| {
        if let Some(progress) = options.progress {
            let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
            c.0 += 1;
            if !matches!(r, Ok(res) if res.success()) {
                c.1 += 1;
            }
            progress(BatchProgress {
                done: c.0,
                total: n,
                failed: c.1,
                elapsed: start.elapsed(),
            });
        }
    };
    let attack_one = |i: usize| -> Result<AttackResult> {
        let row = inputs.row(i);
        crate::classifier::take_panic_owner();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            find_minimal_perturbation(model, row, targets[i], config)
        }))
        .unwrap_or_else(|payload| Err(crate::classifier::panic_error(i, payload)))
    };
    let attack_row = |i: usize| -> Result<AttackResult> {
        let r = attack_one(i);
        report(&r);
        r
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
                Err(Error::Internal {
                    row: i,
                    message: "the row was not attacked (worker lost)".into(),
                })
            })
        })
        .collect())
}
