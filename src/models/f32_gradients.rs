//! [`F32Gradients`]: an [`Mlp`] whose loss gradients are computed in single precision, for
//! the attack's many gradient evaluations, while its predictions stay the f64 model's.

use super::sequential::{view, view_mut, with_scratch};
use super::{Activation, Mlp};
use crate::classifier::{Classifier, LogitsLoss};
use crate::error::Result;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Zip};
use std::cell::Cell;

thread_local! {
    /// The layers' outputs and the two backward buffers of a pass (kept between calls; the
    /// f64 logits and their gradient use the MLP's own per-thread scratch).
    static F32_SCRATCH: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// A view of an [`Mlp`] whose [`loss_gradient_into`](Classifier::loss_gradient_into) runs
/// in `f32`: the weights copied to `f32` once, the matrix products in `f32` (matrixmultiply's
/// sgemm: twice the SIMD lanes of the f64 product, and `f32` accumulation — ndarray has no
/// product with `f32` storage and `f64` accumulation), the activations and the loss callback
/// in `f64`. [`logits_into`](Classifier::logits_into), and so every prediction that verifies
/// an attack's candidate, is the f64 model's own.
///
/// For the attack's gradient evaluations on a batch (`attack_batch_lockstep`): the gradients
/// agree with the f64 ones to single precision (within 1e-5 relative in the tests); on the
/// MNIST MLPs the attacks reach the same mean distortion to five digits with 0.2–1% more
/// evaluations, and FC500-150-10 runs 19–28% faster in lockstep (docs/attack.md, "Sixth
/// round" and "Ninth round"). It has no one-row route of its own (the f64 model evaluates
/// one row with dot products): it is meant for batches.
///
/// # Examples
///
/// ```
/// use intriguing::{Classifier, ClassifierExt};
/// use intriguing::models::{Activation, F32Gradients, Mlp};
/// use ndarray::{Array2, ArrayView2, ArrayViewMut2};
///
/// let mlp = Mlp::random(&[784, 100, 10], Activation::Sigmoid, 7)?;
/// let fast = F32Gradients::new(&mlp);
/// let x = Array2::from_elem((4, 784), 0.3);
/// // The predictions are the f64 model's.
/// assert_eq!(fast.logits(x.view())?, mlp.logits(x.view())?);
/// // The loss gradients agree with the f64 ones to single precision.
/// let mut seed = |z: ArrayView2<'_, f64>, mut dz: ArrayViewMut2<'_, f64>| -> f64 {
///     dz.assign(&z);
///     0.5 * z.iter().map(|v| v * v).sum::<f64>()
/// };
/// let (mut g32, mut g64) = (Array2::zeros((4, 784)), Array2::zeros((4, 784)));
/// let l32 = fast.loss_gradient_into(x.view(), &mut seed, g32.view_mut())?;
/// let l64 = mlp.loss_gradient_into(x.view(), &mut seed, g64.view_mut())?;
/// assert!((l32 - l64).abs() <= 1e-5 * l64.abs());
/// let err = (&g32 - &g64).iter().map(|v| v * v).sum::<f64>().sqrt();
/// assert!(err <= 1e-5 * g64.iter().map(|v| v * v).sum::<f64>().sqrt());
/// # Ok::<(), intriguing::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct F32Gradients<'a> {
    mlp: &'a Mlp,
    /// Per layer: `[out, in]` weight, `[out]` bias, activation.
    layers: Vec<(Array2<f32>, Array1<f32>, Activation)>,
    /// Layer widths, the input first.
    dims: Vec<usize>,
}

impl<'a> F32Gradients<'a> {
    /// The `f32` copy of `mlp`'s weights, with `mlp` for the predictions.
    pub fn new(mlp: &'a Mlp) -> Self {
        let layers: Vec<_> = mlp
            .layers()
            .iter()
            .map(|l| {
                (
                    l.weight.mapv(|v| v as f32),
                    l.bias.mapv(|v| v as f32),
                    l.activation,
                )
            })
            .collect();
        let mut dims = vec![mlp.input_dim()];
        dims.extend(layers.iter().map(|(w, _, _)| w.nrows()));
        F32Gradients { mlp, layers, dims }
    }

    /// The f64 model.
    pub fn mlp(&self) -> &'a Mlp {
        self.mlp
    }

    /// Where layer `l`'s output (`l = 0`: the input) starts in the outputs of `k` rows.
    fn offset(&self, k: usize, l: usize) -> usize {
        k * self.dims[..l].iter().sum::<usize>()
    }

    /// One forward and backward pass of the `k` rows of `x` on the scratch buffers.
    fn pass(
        &self,
        x: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        mut grad: ArrayViewMut2<'_, f64>,
        buf: &mut [f32],
        wide: &mut [f64],
    ) -> f64 {
        let k = x.nrows();
        let depth = self.layers.len();
        let widest = self.dims.iter().copied().max().unwrap_or(0);
        let (outs, rest) = buf.split_at_mut(self.offset(k, depth + 1));
        let (mut da, rest) = rest.split_at_mut(k * widest);
        let mut db = &mut rest[..k * widest];
        let n0 = self.dims[0];
        for (o, &v) in outs[..k * n0].iter_mut().zip(x.iter()) {
            *o = v as f32;
        }
        for (l, (w, b, act)) in self.layers.iter().enumerate() {
            let (done, rest) = outs.split_at_mut(self.offset(k, l + 1));
            let prev = ArrayView2::from_shape((k, self.dims[l]), &done[self.offset(k, l)..])
                .expect("a layer's input fits its buffer");
            let mut cur =
                ArrayViewMut2::from_shape((k, self.dims[l + 1]), &mut rest[..k * self.dims[l + 1]])
                    .expect("a layer's output fits its buffer");
            for mut row in cur.rows_mut() {
                row.assign(b);
            }
            general_mat_mul(1.0, &prev, &w.t(), 1.0, &mut cur);
            if *act != Activation::Identity {
                cur.mapv_inplace(|v| act.apply(f64::from(v)) as f32);
            }
        }
        let classes = self.dims[depth];
        let (z, dz) = wide.split_at_mut(k * classes);
        let last = &outs[self.offset(k, depth)..];
        for (zi, &v) in z.iter_mut().zip(last) {
            *zi = f64::from(v);
        }
        dz.fill(0.0);
        let loss = seed(view(z, k, classes), view_mut(dz, k, classes));
        for (d, &v) in da[..k * classes].iter_mut().zip(dz.iter()) {
            *d = v as f32;
        }
        for l in (0..depth).rev() {
            let (w, _, act) = &self.layers[l];
            let width = self.dims[l + 1];
            let mut delta = ArrayViewMut2::from_shape((k, width), &mut da[..k * width])
                .expect("a gradient fits its buffer");
            if *act != Activation::Identity {
                let y = ArrayView2::from_shape((k, width), &outs[self.offset(k, l + 1)..])
                    .expect("a layer's output fits its buffer");
                Zip::from(&mut delta).and(&y).for_each(|d, &y| {
                    *d *= act.derivative_from_output(f64::from(y)) as f32;
                });
            }
            let mut next =
                ArrayViewMut2::from_shape((k, self.dims[l]), &mut db[..k * self.dims[l]])
                    .expect("a gradient fits its buffer");
            general_mat_mul(1.0, &delta, w, 0.0, &mut next);
            std::mem::swap(&mut da, &mut db);
        }
        for (g, &d) in grad.iter_mut().zip(&da[..k * n0]) {
            *g = f64::from(d);
        }
        loss
    }
}

impl Classifier for F32Gradients<'_> {
    fn input_dim(&self) -> usize {
        self.mlp.input_dim()
    }

    fn num_classes(&self) -> usize {
        self.mlp.num_classes()
    }

    /// The f64 model's logits.
    fn logits_into(&self, inputs: ArrayView2<'_, f64>, out: ArrayViewMut2<'_, f64>) -> Result<()> {
        self.mlp.logits_into(inputs, out)
    }

    /// The f64 model's.
    fn logits_on_lines_into(
        &self,
        origins: ArrayView2<'_, f64>,
        directions: ArrayView2<'_, f64>,
        points: &[(usize, f64)],
        out: ArrayViewMut2<'_, f64>,
    ) -> Result<()> {
        self.mlp
            .logits_on_lines_into(origins, directions, points, out)
    }

    /// The loss and its input gradient from the `f32` weights (the shapes checked as the
    /// f64 model checks them).
    fn loss_gradient_into(
        &self,
        inputs: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        grad: ArrayViewMut2<'_, f64>,
    ) -> Result<f64> {
        self.mlp
            .check_shapes(inputs, grad.view(), "input gradient", self.input_dim())?;
        let k = inputs.nrows();
        let widest = self.dims.iter().copied().max().unwrap_or(0);
        // Taken out of the thread's cell for the pass (a re-entrant call gets its own).
        let mut buf = F32_SCRATCH.with(Cell::take);
        buf.resize(self.offset(k, self.dims.len()) + 2 * k * widest, 0.0);
        let loss = with_scratch(2 * k * self.num_classes(), |wide| {
            self.pass(inputs, seed, grad, &mut buf, wide)
        });
        F32_SCRATCH.with(|c| c.set(buf));
        Ok(loss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classifier::ClassifierExt;
    use rand::{RngExt, SeedableRng};

    fn norm(a: &Array2<f64>) -> f64 {
        a.iter().map(|v| v * v).sum::<f64>().sqrt()
    }

    /// Against the f64 model (the independent computation): the loss to 1e-5 and the input
    /// gradient to 1e-5 relative (single precision through three layers), for every
    /// activation, on a batch of rows; the logits identical.
    #[test]
    fn gradients_match_the_f64_model_to_single_precision() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for act in Activation::ALL {
            let mlp = Mlp::random(&[50, 30, 20, 5], act, 11).unwrap();
            let fast = F32Gradients::new(&mlp);
            let x = Array2::from_shape_fn((7, 50), |_| rng.random::<f64>());
            assert_eq!(
                fast.logits(x.view()).unwrap(),
                mlp.logits(x.view()).unwrap()
            );
            // Cross-entropy against label 2 for every row.
            let mut seed = |z: ArrayView2<'_, f64>, mut dz: ArrayViewMut2<'_, f64>| -> f64 {
                let mut loss = 0.0;
                for (zr, mut dr) in z.rows().into_iter().zip(dz.rows_mut()) {
                    let m = zr.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
                    let s: f64 = zr.iter().map(|v| (v - m).exp()).sum();
                    loss += m + s.ln() - zr[2];
                    for (j, (d, &v)) in dr.iter_mut().zip(zr).enumerate() {
                        *d = (v - m).exp() / s - f64::from(u8::from(j == 2));
                    }
                }
                loss
            };
            let (mut g32, mut g64) = (Array2::zeros((7, 50)), Array2::zeros((7, 50)));
            let l32 = fast
                .loss_gradient_into(x.view(), &mut seed, g32.view_mut())
                .unwrap();
            let l64 = mlp
                .loss_gradient_into(x.view(), &mut seed, g64.view_mut())
                .unwrap();
            assert!(
                (l32 - l64).abs() <= 1e-5 * l64.abs(),
                "{act:?}: {l32} vs {l64}"
            );
            let err = norm(&(&g32 - &g64));
            assert!(err <= 1e-5 * norm(&g64), "{act:?}: {err} of {}", norm(&g64));
            assert!(norm(&g64) > 0.0);
            // A second call on the kept buffers, with fewer rows: the same rows' gradients.
            let mut g1 = Array2::zeros((2, 50));
            fast.loss_gradient_into(x.slice(ndarray::s![..2, ..]), &mut seed, g1.view_mut())
                .unwrap();
            assert_eq!(g1, g32.slice(ndarray::s![..2, ..]));
        }
    }

    /// Wrong shapes are the f64 model's typed errors, not panics.
    #[test]
    fn wrong_shapes_are_errors() {
        let mlp = Mlp::random(&[6, 4, 3], Activation::Relu, 1).unwrap();
        let fast = F32Gradients::new(&mlp);
        let mut seed = |_: ArrayView2<'_, f64>, _: ArrayViewMut2<'_, f64>| 0.0;
        let x = Array2::zeros((2, 5));
        let mut g = Array2::zeros((2, 5));
        assert!(matches!(
            fast.loss_gradient_into(x.view(), &mut seed, g.view_mut()),
            Err(crate::Error::ShapeMismatch { .. })
        ));
        let x = Array2::zeros((2, 6));
        let mut g = Array2::zeros((3, 6));
        assert!(matches!(
            fast.loss_gradient_into(x.view(), &mut seed, g.view_mut()),
            Err(crate::Error::ShapeMismatch { .. })
        ));
    }
}
