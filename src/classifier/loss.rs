//! Numerically stable losses on logits.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Zip};

/// `log Σ exp(z_i)`, computed stably (shifted by the maximum). Empty input gives `-inf`.
///
/// # Examples
///
/// ```
/// use intriguing::classifier::logsumexp;
/// use ndarray::array;
/// assert!((logsumexp(array![1e4, 1e4].view()) - (1e4 + 2f64.ln())).abs() < 1e-9);
/// ```
pub fn logsumexp(z: ArrayView1<'_, f64>) -> f64 {
    let m = z.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    if !m.is_finite() {
        return m;
    }
    m + z.fold(0.0, |s, &v| s + (v - m).exp()).ln()
}

/// Writes `softmax(z)` into `out`.
pub fn softmax_into(z: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
    let lse = logsumexp(z);
    Zip::from(&mut out)
        .and(&z)
        .for_each(|o, &v| *o = (v - lse).exp());
}

/// Writes `log softmax(z)` into `out`.
pub fn log_softmax_into(z: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) {
    let lse = logsumexp(z);
    Zip::from(&mut out).and(&z).for_each(|o, &v| *o = v - lse);
}

/// Softmax cross-entropy `-log softmax(z)[label]` of one logits row, with its gradient
/// `softmax(z) - onehot(label)` written into `grad`. Finite for logits of any finite size
/// (tested at ±1e4).
///
/// `label` must be `< z.len()` (callers check labels once, up front); an out-of-range label
/// gives an infinite loss rather than a panic.
///
/// # Examples
///
/// ```
/// use intriguing::classifier::softmax_cross_entropy;
/// use ndarray::{array, Array1};
/// let mut g = Array1::zeros(3);
/// let loss = softmax_cross_entropy(array![0.0, 0.0, 0.0].view(), 1, g.view_mut());
/// assert!((loss - 3f64.ln()).abs() < 1e-15);
/// assert!((g[1] + 2.0 / 3.0).abs() < 1e-15);
/// ```
pub fn softmax_cross_entropy(
    z: ArrayView1<'_, f64>,
    label: usize,
    mut grad: ArrayViewMut1<'_, f64>,
) -> f64 {
    let lse = logsumexp(z);
    Zip::from(&mut grad)
        .and(&z)
        .for_each(|g, &v| *g = (v - lse).exp());
    match z.get(label) {
        Some(&zl) => {
            grad[label] -= 1.0;
            lse - zl
        }
        None => f64::INFINITY,
    }
}

/// Mean softmax cross-entropy of a batch of logits against `labels`, with the gradient of the
/// mean written into `grad` (same shape as `z`).
pub fn softmax_cross_entropy_batch(
    z: ArrayView2<'_, f64>,
    labels: &[usize],
    mut grad: ArrayViewMut2<'_, f64>,
) -> f64 {
    let n = z.nrows().max(1) as f64;
    let mut total = 0.0;
    for ((zr, mut gr), &l) in z.rows().into_iter().zip(grad.rows_mut()).zip(labels) {
        total += softmax_cross_entropy(zr, l, gr.view_mut());
        gr.mapv_inplace(|v| v / n);
    }
    total / n
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, array};

    #[test]
    fn cross_entropy_matches_closed_form_and_finite_differences() {
        let z = array![0.3, -1.2, 2.0, 0.0];
        let mut g = Array1::zeros(4);
        let loss = softmax_cross_entropy(z.view(), 2, g.view_mut());
        let direct = -(2.0f64.exp() / z.mapv(f64::exp).sum()).ln();
        assert!((loss - direct).abs() < 1e-14);
        let h = 1e-6;
        for i in 0..4 {
            let mut zp = z.clone();
            zp[i] += h;
            let mut zm = z.clone();
            zm[i] -= h;
            let mut tmp = Array1::zeros(4);
            let fd = (softmax_cross_entropy(zp.view(), 2, tmp.view_mut())
                - softmax_cross_entropy(zm.view(), 2, tmp.view_mut()))
                / (2.0 * h);
            assert!((fd - g[i]).abs() < 1e-8, "coordinate {i}: {fd} vs {}", g[i]);
        }
    }

    #[test]
    fn cross_entropy_is_finite_for_huge_logits() {
        let z = array![1e4, -1e4, 0.0];
        let mut g = Array1::zeros(3);
        let loss = softmax_cross_entropy(z.view(), 1, g.view_mut());
        assert_eq!(loss, 2e4);
        assert!(g.iter().all(|v| v.is_finite()));
        assert!((g[0] - 1.0).abs() < 1e-15 && (g[1] + 1.0).abs() < 1e-15);
        let loss0 = softmax_cross_entropy(z.view(), 0, g.view_mut());
        assert_eq!(loss0, 0.0);
    }

    #[test]
    fn out_of_range_label_is_infinite_not_a_panic() {
        let mut g = Array1::zeros(2);
        assert!(softmax_cross_entropy(array![1.0, 2.0].view(), 5, g.view_mut()).is_infinite());
    }

    #[test]
    fn batch_loss_is_the_mean() {
        let z = array![[1.0, 2.0], [3.0, -1.0]];
        let mut g = ndarray::Array2::zeros((2, 2));
        let l = softmax_cross_entropy_batch(z.view(), &[0, 0], g.view_mut());
        let mut t = Array1::zeros(2);
        let a = softmax_cross_entropy(z.row(0), 0, t.view_mut());
        let b = softmax_cross_entropy(z.row(1), 0, t.view_mut());
        assert!((l - (a + b) / 2.0).abs() < 1e-15);
    }
}
