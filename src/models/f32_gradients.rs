//! [`F32Gradients`]: an [`Mlp`] whose loss gradients are computed in single precision, for
//! the attack's many gradient evaluations, while its predictions stay the f64 model's.

use super::sequential::{view, view_mut, with_scratch};
use super::{Activation, Mlp};
use crate::classifier::{Classifier, LogitsLoss};
use crate::error::Result;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2};
use std::cell::Cell;

thread_local! {
    /// The layers' outputs and the two backward buffers of a pass (kept between calls; the
    /// f64 logits and their gradient use the MLP's own per-thread scratch).
    static F32_SCRATCH: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// A view of an [`Mlp`] whose [`loss_gradient_into`](Classifier::loss_gradient_into) runs
/// in `f32`: the weights copied to `f32` once, the matrix products in `f32` (matrixmultiply's
/// sgemm: twice the SIMD lanes of the f64 product, and `f32` accumulation — ndarray has no
/// product with `f32` storage and `f64` accumulation), the activations in `f32` (the
/// sigmoid branch-free, so that its loop vectorises: within 2.5 units of `f32::EPSILON` of
/// the f64 one), the loss callback in `f64`. [`logits_into`](Classifier::logits_into), and
/// so every prediction that verifies an attack's candidate, is the f64 model's own.
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
            apply_f32(*act, &mut rest[..k * self.dims[l + 1]]);
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
            let y = &outs[self.offset(k, l + 1)..][..k * width];
            backprop_f32(*act, &mut da[..k * width], y);
            let delta = ArrayView2::from_shape((k, width), &da[..k * width])
                .expect("a gradient fits its buffer");
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

/// `f` applied to every entry of a layer's outputs, in `f32` (the match outside the loop,
/// each loop free of branches so that it vectorises).
fn apply_f32(act: Activation, v: &mut [f32]) {
    match act {
        Activation::Identity => {}
        Activation::Sigmoid => v.iter_mut().for_each(|x| *x = sigmoid_f32(*x)),
        Activation::Tanh => v.iter_mut().for_each(|x| *x = x.tanh()),
        Activation::Relu => v
            .iter_mut()
            .for_each(|x| *x = if *x > 0.0 { *x } else { 0.0 }),
    }
}

/// `delta *= f'(x)` from the outputs `y = f(x)`, in `f32`.
fn backprop_f32(act: Activation, delta: &mut [f32], y: &[f32]) {
    let mut each = |g: fn(f32) -> f32| delta.iter_mut().zip(y).for_each(|(d, &y)| *d *= g(y));
    match act {
        Activation::Identity => {}
        Activation::Sigmoid => each(|y| y * (1.0 - y)),
        Activation::Tanh => each(|y| 1.0 - y * y),
        Activation::Relu => each(|y| if y > 0.0 { 1.0 } else { 0.0 }),
    }
}

/// The logistic function in `f32` without branches: `e = exp(-|x|) = 2ⁿ · eʳ` (`|x|`
/// clamped at 87, `n` the nearest integer to `-|x| log₂e`; `r = -|x| − n ln 2` with `ln 2`
/// split in two parts so that `n ln 2` is exact in its first, `|r| ≤ ½ ln 2`; `eʳ` from its
/// degree-7 Taylor polynomial, relative error ≤ 6e-9 before rounding), then `1 / (1 + e)`
/// for `x ≥ 0` and `e / (1 + e)` below; NaN stays NaN. Within 2.5 units of `f32::EPSILON`
/// of the f64 logistic rounded to `f32` (tested).
#[inline]
fn sigmoid_f32(x: f32) -> f32 {
    // 1.5 · 2²³: adding it rounds a number of magnitude < 2²² to an integer, held in the
    // low bits of the sum.
    const ROUND: f32 = 12_582_912.0;
    // ln 2 = LN2_HI + LN2_LO, LN2_HI with 9 significant bits (n · LN2_HI exact for |n| ≤ 2⁷).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // exp(−87) ≈ 1.6e-38 is still a normal f32: below it the tail is that constant.
    let a = (-x.abs()).max(-87.0);
    let t = a * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = (a - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    // 2ⁿ from its exponent bits: n ∈ [−126, 0] (87 log₂e < 125.6), so n + 127 ∈ [1, 127].
    let n_int = t.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let two_n = f32::from_bits(((n_int + 127) as u32) << 23);
    let e = p * two_n;
    let s = 1.0 / (1.0 + e);
    let v = if x >= 0.0 { s } else { e * s };
    if x.is_nan() { x } else { v }
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

    /// The branch-free `f32` logistic against the f64 one rounded to `f32` (the independent
    /// computation): within 2.5 units of `f32::EPSILON` relative (1.8 seen) for outputs
    /// above 1e-30, to 1e-37 absolute below (where the clamp of the exponent stops), on a
    /// fine grid of [−100, 100] and at the ends; NaN stays NaN.
    #[test]
    fn the_f32_sigmoid_is_the_f64_one_to_a_few_ulps() {
        let mut worst = 0.0f64;
        for i in -200_000..=200_000 {
            let x = i as f32 * 5e-4;
            let want = Activation::Sigmoid.apply(f64::from(x)) as f32;
            let got = sigmoid_f32(x);
            if want > 1e-30 {
                let ulps =
                    (f64::from(got) - f64::from(want)).abs() / f64::from(want.abs() * f32::EPSILON);
                worst = worst.max(ulps);
                assert!(ulps <= 2.5, "x = {x}: {got} vs {want} ({ulps} ulps)");
            } else {
                assert!((got - want).abs() <= 1e-37, "x = {x}: {got} vs {want}");
            }
        }
        assert!(worst > 0.0, "the grid did not exercise rounding");
        assert_eq!(sigmoid_f32(f32::INFINITY), 1.0);
        assert!(sigmoid_f32(f32::NEG_INFINITY) <= 1e-37);
        assert_eq!(sigmoid_f32(0.0), 0.5);
        assert!(sigmoid_f32(f32::NAN).is_nan());
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
