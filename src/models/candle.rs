//! A [`Classifier`] for any [candle](https://github.com/huggingface/candle) model (feature
//! `candle`).
//!
//! [`CandleClassifier`] wraps a `candle_nn::Module` (a `Linear`, your own struct) or a closure
//! `Fn(&Tensor) -> candle_core::Result<Tensor>`, or any `ModuleT` (run with `train = false`,
//! so dropout and batch norm are in evaluation mode), that maps a batch `[n, …input_shape]`
//! to logits `[n, num_classes]`. Like every [`Classifier`] it must be `Send + Sync`: candle's
//! tensors and layers are, but `candle_nn::Sequential` (a `Vec<Box<dyn Module>>`) is not, so
//! write the forward pass as a struct or a closure over the layers (as
//! `examples/candle_cnn.rs` does). From then on the model works with
//! everything that takes a [`Classifier`]: the attack, `attack_batch`, the gradient checker,
//! error rates.
//!
//! # How the pieces meet
//!
//! - **Inputs.** The crate works on rows of `f64`; a batch `[n, input_dim]` is reshaped to
//!   `[n, …input_shape]` (row-major, e.g. `[n, 1, 28, 28]` for an MNIST CNN), converted to the
//!   model's dtype on the host and uploaded to the model's device.
//! - **Gradients** come from candle's autograd, one forward and one backward pass per call:
//!   the input is a candle `Var`; after the forward pass the logits are read back, the loss
//!   seed gives `dz = dloss/dlogits` (in `f64`), and the backward pass is run on
//!   `sum(logits ⊙ dz)` with `dz` a constant, whose gradient with respect to the input is the
//!   vector-Jacobian product `dzᵀ · ∂logits/∂input` that the attack needs.
//! - **Dtype.** The model keeps its own dtype (`F32` for most models; `F64`, `F16`, `BF16`
//!   also work). The attack works in `f64` and converts at the boundary: inputs are rounded to
//!   the model's dtype, logits and gradients widened to `f64`. For an `f32` model the attack's
//!   objective is only as smooth as `f32` arithmetic allows (relative noise ~1e-7): the
//!   attack copes with that, but central finite differences of an `f32` model resolve its
//!   gradient only to ~1e-2 (compare with an `F64` copy of the model instead). The measured
//!   cost and effect on attack results are in `docs/candle.md`.
//! - **Device.** Any candle [`Device`]: the CPU is what this crate tests; CUDA and Metal work
//!   through candle's own `cuda` / `metal` features (enable them on your own `candle-core`
//!   dependency of the same version: Cargo unifies the features) and
//!   `Device::new_cuda(0)?` / `Device::new_metal(0)?`. Metal has no `f64`: use an `F32` model
//!   there (conversions to and from `f64` happen on the host).
//! - **Errors.** A candle error becomes [`Error::Candle`]; logits of the wrong shape
//!   [`Error::ShapeMismatch`]; non-finite logits or gradients [`Error::ModelNonFinite`] (the
//!   attack then reports `FailureReason::ModelFailure`). A panic inside the model propagates
//!   like any model's panic: `attack_batch` isolates it in its row as
//!   [`Error::ModelPanicked`].
//!
//! # Cost
//!
//! Every call allocates candle tensors (candle has no in-place graph reuse), and candle's
//! backward pass of a matrix product also computes the gradient of the weights, even when the
//! weights are constants (candle-core 0.11). A candle model is therefore slower than the
//! crate's own allocation-free [`Mlp`](crate::models::Mlp) on the same weights; the measured
//! ratio is in `docs/candle.md`. Build the model over plain tensors (e.g. a `VarBuilder` from
//! a safetensors file or from `VarBuilder::from_tensors`), not over the `Var`s of a training
//! `VarMap`, so that no parameter is a leaf of the graph.
//!
//! On the CPU, run attacks with `RAYON_NUM_THREADS=1`: candle otherwise spreads every small
//! operation over its rayon pool, which made the attack of an FC100-100-10 ~10× slower in
//! CPU time (measured in `docs/candle.md`); get parallelism from `attack_batch` instead.
//!
//! # Examples
//!
//! A one-layer softmax regression built with `candle_nn`, checked against finite differences:
//!
//! ```
//! use intriguing::classifier::check_gradient;
//! use intriguing::models::candle::{CandleClassifier, candle_core, candle_nn};
//! use candle_core::{DType, Device, Tensor};
//! use intriguing::{Classifier, ClassifierExt};
//!
//! let dev = Device::Cpu;
//! let w = Tensor::new(&[[1.0f64, -2.0, 0.5], [0.3, 0.7, -1.1]], &dev)?;
//! let b = Tensor::new(&[0.1f64, -0.2], &dev)?;
//! let linear = candle_nn::Linear::new(w, Some(b));
//! let model = CandleClassifier::new(linear, &[3], DType::F64, &dev)?;
//! assert_eq!((model.input_dim(), model.num_classes()), (3, 2));
//!
//! let x = ndarray::array![0.2, -0.4, 0.9];
//! assert_eq!(model.predict(x.view())?, 0);
//! let report = check_gradient(&model, x.view(), 1, 1e-5)?;
//! assert!(report.max_rel_error < 1e-8, "{report:?}");
//! # Ok::<(), intriguing::Error>(())
//! ```
//!
//! A closure works as well (here an `f32` model of a 2 × 2 "image"):
//!
//! ```
//! use intriguing::models::candle::{CandleClassifier, candle_core};
//! use candle_core::{DType, Device, Tensor};
//! use intriguing::{Classifier, ClassifierExt};
//!
//! // logits = (sum of the image, minus the sum): two classes.
//! let model = CandleClassifier::new(
//!     |x: &Tensor| {
//!         let s = x.flatten_from(1)?.sum_keepdim(1)?;
//!         Tensor::cat(&[&s, &s.neg()?], 1)
//!     },
//!     &[1, 2, 2],
//!     DType::F32,
//!     &Device::Cpu,
//! )?;
//! assert_eq!(model.predict(ndarray::array![0.1, 0.2, 0.3, 0.4].view())?, 0);
//! # Ok::<(), intriguing::Error>(())
//! ```

pub use candle_core;
pub use candle_nn;

use crate::classifier::{Classifier, LogitsLoss};
use crate::error::{Error, Result};
use candle_core::{DType, Device, ModuleT, Tensor, Var};
use ndarray::{Array2, ArrayView2, ArrayViewMut2};

/// Rows per forward pass in [`logits_into`](Classifier::logits_into) by default.
pub const DEFAULT_CHUNK_ROWS: usize = 256;

/// A candle model as a [`Classifier`]: see the [module documentation](self).
///
/// `M` is anything that implements `candle_core::ModuleT` — every `candle_nn::Module`, and
/// every closure `Fn(&Tensor) -> candle_core::Result<Tensor>` — and is `Send + Sync`.
pub struct CandleClassifier<M> {
    model: M,
    input_shape: Vec<usize>,
    input_dim: usize,
    num_classes: usize,
    dtype: DType,
    device: Device,
    chunk_rows: usize,
}

impl<M> std::fmt::Debug for CandleClassifier<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CandleClassifier")
            .field("input_shape", &self.input_shape)
            .field("num_classes", &self.num_classes)
            .field("dtype", &self.dtype)
            .field("device", &self.device.location())
            .finish_non_exhaustive()
    }
}

impl<M: ModuleT + Send + Sync> CandleClassifier<M> {
    /// Wraps `model`, whose inputs are `[n, …input_shape]` tensors of `dtype` on `device`.
    ///
    /// The number of classes is read from one probe forward pass on a zero input, which also
    /// checks that the model accepts the shape and returns logits `[1, num_classes]`.
    ///
    /// Errors: an empty `input_shape` or a zero dimension ([`Error::InvalidConfig`]), a
    /// non-float `dtype` ([`Error::InvalidConfig`]), a model that fails on the probe
    /// ([`Error::Candle`]) or returns anything but `[1, k]` with `k ≥ 1`
    /// ([`Error::ShapeMismatch`]).
    pub fn new(model: M, input_shape: &[usize], dtype: DType, device: &Device) -> Result<Self> {
        if input_shape.is_empty() || input_shape.contains(&0) {
            return Err(Error::InvalidConfig(format!(
                "candle model input shape must be non-empty with positive dimensions, got \
                 {input_shape:?}"
            )));
        }
        if !dtype.is_float() {
            return Err(Error::InvalidConfig(format!(
                "candle model dtype must be a float type, got {}",
                dtype.as_str()
            )));
        }
        let mut me = CandleClassifier {
            model,
            input_shape: input_shape.to_vec(),
            input_dim: input_shape.iter().product(),
            num_classes: 0,
            dtype,
            device: device.clone(),
            chunk_rows: DEFAULT_CHUNK_ROWS,
        };
        let probe = Array2::zeros((1, me.input_dim));
        let z = me.forward(&me.to_tensor(probe.view())?)?;
        me.num_classes = match z.dims() {
            [1, k] if *k >= 1 => *k,
            other => {
                return Err(Error::shape(
                    "candle model logits for one input",
                    "[1, num_classes >= 1]",
                    format!("{other:?}"),
                ));
            }
        };
        Ok(me)
    }

    /// Evaluates [`logits_into`](Classifier::logits_into) in forward passes of at most `rows`
    /// rows (default [`DEFAULT_CHUNK_ROWS`]), bounding the activation memory of large batches.
    pub fn with_chunk_rows(mut self, rows: usize) -> Result<Self> {
        crate::validate::at_least_one("candle chunk rows", rows)?;
        self.chunk_rows = rows;
        Ok(self)
    }

    /// The wrapped model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// Unwraps the model.
    pub fn into_inner(self) -> M {
        self.model
    }

    /// Shape of one input, without the batch dimension.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// The model's dtype (inputs are converted to it, outputs widened from it to `f64`).
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    fn batch_shape(&self, n: usize) -> Vec<usize> {
        let mut shape = Vec::with_capacity(1 + self.input_shape.len());
        shape.push(n);
        shape.extend_from_slice(&self.input_shape);
        shape
    }

    /// Rows of `f64` as a tensor of the model's dtype and shape on its device. With
    /// `as_var`, the tensor is a leaf variable of candle's autograd.
    fn upload(
        &self,
        values: ArrayView2<'_, f64>,
        shape: Vec<usize>,
        as_var: bool,
    ) -> Result<Tensor> {
        let t = match self.dtype {
            DType::F64 => {
                let v: Vec<f64> = values.iter().copied().collect();
                if as_var {
                    Var::from_vec(v, shape, &self.device)?.into_inner()
                } else {
                    Tensor::from_vec(v, shape, &self.device)?
                }
            }
            DType::F32 => {
                let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
                if as_var {
                    Var::from_vec(v, shape, &self.device)?.into_inner()
                } else {
                    Tensor::from_vec(v, shape, &self.device)?
                }
            }
            other => {
                // Half precision and friends: convert on the host, then upload.
                let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
                let t = Tensor::from_vec(v, shape, &Device::Cpu)?
                    .to_dtype(other)?
                    .to_device(&self.device)?;
                if as_var {
                    Var::from_tensor(&t)?.into_inner()
                } else {
                    t
                }
            }
        };
        Ok(t)
    }

    fn to_tensor(&self, inputs: ArrayView2<'_, f64>) -> Result<Tensor> {
        self.upload(inputs, self.batch_shape(inputs.nrows()), false)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.model.forward_t(x, false)?)
    }

    /// Checks that `z` is `[n, num_classes]`.
    fn check_logits(&self, z: &Tensor, n: usize) -> Result<()> {
        if z.dims() != [n, self.num_classes] {
            return Err(Error::shape(
                "candle model logits",
                format!("[{n}, {}]", self.num_classes),
                format!("{:?}", z.dims()),
            ));
        }
        Ok(())
    }
}

/// All entries of `t` (any dtype, any device), row-major, as `f64` on the host.
fn to_host_f64(t: &Tensor) -> Result<Vec<f64>> {
    let t = t.to_device(&Device::Cpu)?;
    let v = match t.dtype() {
        DType::F64 => t.flatten_all()?.to_vec1::<f64>()?,
        DType::F32 => t
            .flatten_all()?
            .to_vec1::<f32>()?
            .into_iter()
            .map(f64::from)
            .collect(),
        _ => t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?,
    };
    Ok(v)
}

fn write_into(values: &[f64], mut out: ArrayViewMut2<'_, f64>) {
    for (o, &v) in out.iter_mut().zip(values) {
        *o = v;
    }
}

impl<M: ModuleT + Send + Sync> Classifier for CandleClassifier<M> {
    fn input_dim(&self) -> usize {
        self.input_dim
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Logits in forward passes of at most [`with_chunk_rows`](CandleClassifier::with_chunk_rows)
    /// rows, widened to `f64` (not checked for finiteness here: the provided
    /// [`logits`](crate::classifier::ClassifierExt::logits) does that).
    fn logits_into(
        &self,
        inputs: ArrayView2<'_, f64>,
        mut out: ArrayViewMut2<'_, f64>,
    ) -> Result<()> {
        let n = inputs.nrows();
        let mut start = 0;
        while start < n {
            let end = (start + self.chunk_rows).min(n);
            let rows = inputs.slice(ndarray::s![start..end, ..]);
            let z = self.forward(&self.to_tensor(rows)?)?;
            self.check_logits(&z, end - start)?;
            write_into(
                &to_host_f64(&z)?,
                out.slice_mut(ndarray::s![start..end, ..]),
            );
            start = end;
        }
        Ok(())
    }

    /// One forward and one backward pass through candle's autograd (see the
    /// [module documentation](self)). Non-finite logits are reported as
    /// [`Error::ModelNonFinite`] before `seed` is called; a non-finite gradient likewise.
    fn loss_gradient_into(
        &self,
        inputs: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        grad: ArrayViewMut2<'_, f64>,
    ) -> Result<f64> {
        let n = inputs.nrows();
        let x = self.upload(inputs, self.batch_shape(n), true)?;
        let z = self.forward(&x)?;
        self.check_logits(&z, n)?;
        let zv = to_host_f64(&z)?;
        if zv.iter().any(|v| !v.is_finite()) {
            return Err(Error::ModelNonFinite {
                what: "logits of the candle model".into(),
            });
        }
        let z64 = ArrayView2::from_shape((n, self.num_classes), &zv)
            .map_err(|e| Error::shape("candle logits", "[n, num_classes]", e))?;
        let mut dz = Array2::<f64>::zeros((n, self.num_classes));
        let loss = seed(z64, dz.view_mut());
        let dz_t = self
            .upload(dz.view(), vec![n, self.num_classes], false)?
            .to_dtype(z.dtype())?;
        let grads = z.mul(&dz_t)?.sum_all()?.backward()?;
        match grads.get(&x) {
            Some(g) => {
                let gv = to_host_f64(g)?;
                if gv.len() != n * self.input_dim {
                    return Err(Error::shape(
                        "candle input gradient",
                        n * self.input_dim,
                        gv.len(),
                    ));
                }
                if gv.iter().any(|v| !v.is_finite()) {
                    return Err(Error::ModelNonFinite {
                        what: "input gradient of the candle model".into(),
                    });
                }
                write_into(&gv, grad);
            }
            // The logits do not depend on the input (e.g. a constant model).
            None => {
                let mut grad = grad;
                grad.fill(0.0);
            }
        }
        Ok(loss)
    }
}
