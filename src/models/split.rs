//! Splitting an [`Mlp`] into the sub-network below a hidden layer (the head) and the one
//! above it (the tail), so that the tail can be attacked on its own input — the hidden
//! representation — inside the range of the activation that produces it.

use super::{Activation, Mlp};
use crate::error::{Error, Result};

impl Activation {
    /// The closed range `[lower, upper]` of the activation's outputs: sigmoid `[0, 1]`, tanh
    /// `[−1, 1]`, ReLU `[0, +∞)`, identity `(−∞, +∞)` (infinite bounds are returned as
    /// `±f64::INFINITY`). This is the box a hidden representation lives in, and therefore
    /// the box an attack on the tail network over that representation must respect.
    ///
    /// # Examples
    ///
    /// ```
    /// use intriguing::models::Activation;
    /// assert_eq!(Activation::Sigmoid.output_range(), (0.0, 1.0));
    /// assert_eq!(Activation::Relu.output_range(), (0.0, f64::INFINITY));
    /// ```
    pub fn output_range(self) -> (f64, f64) {
        match self {
            Activation::Identity => (f64::NEG_INFINITY, f64::INFINITY),
            Activation::Sigmoid => (0.0, 1.0),
            Activation::Tanh => (-1.0, 1.0),
            Activation::Relu => (0.0, f64::INFINITY),
        }
    }
}

impl Mlp {
    /// Splits the network after its first `k` layers: the head maps the input to the hidden
    /// representation `h_k` (the output of layer `k − 1`, what
    /// [`hidden_representation(x, k − 1)`](Mlp::hidden_representation) returns), the tail
    /// maps `h_k` to the logits, and `tail(head(x))` is the original network. `k` must lie in
    /// `1..layers().len()` (both parts non-empty); the tail is a [`Classifier`] over `h_k`
    /// whose natural box is the range of the head's last activation
    /// ([`Activation::output_range`], returned as the third element).
    ///
    /// [`Classifier`]: crate::Classifier
    ///
    /// # Examples
    ///
    /// ```
    /// use intriguing::{Classifier, ClassifierExt};
    /// use intriguing::models::{Activation, Mlp};
    /// use ndarray::Array2;
    ///
    /// let mlp = Mlp::random(&[6, 5, 4, 3], Activation::Sigmoid, 3)?;
    /// let (head, tail, (lo, hi)) = mlp.split_at(2)?;
    /// assert_eq!((head.sizes(), tail.sizes()), (vec![6, 5, 4], vec![4, 3]));
    /// assert_eq!((lo, hi), (0.0, 1.0)); // the head ends in a sigmoid
    /// let x = Array2::from_shape_fn((2, 6), |(i, j)| (i + j) as f64 / 7.0);
    /// let h = head.forward(x.view())?;
    /// let z = tail.logits(h.view())?;
    /// let direct = mlp.logits(x.view())?;
    /// assert!((&z - &direct).iter().all(|d| d.abs() < 1e-12));
    /// assert!(mlp.split_at(0).is_err() && mlp.split_at(3).is_err());
    /// # Ok::<(), intriguing::Error>(())
    /// ```
    pub fn split_at(&self, k: usize) -> Result<(Mlp, Mlp, (f64, f64))> {
        let n = self.layers().len();
        if k == 0 || k >= n {
            return Err(Error::InvalidConfig(format!(
                "split_at({k}): need 1 <= k < {n} (the number of layers) so that head and tail \
                 are both non-empty"
            )));
        }
        let head = Mlp::new(self.layers()[..k].to_vec())?;
        let tail = Mlp::new(self.layers()[k..].to_vec())?;
        let range = self.layers()[k - 1].activation.output_range();
        Ok((head, tail, range))
    }

    /// The network `tail ∘ head` (the inverse of [`split_at`](Mlp::split_at)). Errors when
    /// the head's output size is not the tail's input size.
    pub fn join(head: &Mlp, tail: &Mlp) -> Result<Mlp> {
        let mut layers = head.layers().to_vec();
        layers.extend_from_slice(tail.layers());
        Mlp::new(layers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classifier::ClassifierExt;
    use ndarray::Array2;

    #[test]
    fn split_then_join_is_the_identity_and_logits_agree() {
        let mlp = Mlp::random(&[7, 6, 5, 4, 3], Activation::Tanh, 11).unwrap();
        let x = Array2::from_shape_fn((4, 7), |(i, j)| ((i * 7 + j) as f64).sin());
        for k in 1..4 {
            let (head, tail, range) = mlp.split_at(k).unwrap();
            assert_eq!(range, (-1.0, 1.0));
            assert_eq!(Mlp::join(&head, &tail).unwrap(), mlp);
            let h = head.forward(x.view()).unwrap();
            assert_eq!(h, mlp.hidden_representation(x.view(), k - 1).unwrap());
            assert!(h.iter().all(|&v| (range.0..=range.1).contains(&v)));
            let z = tail.logits(h.view()).unwrap();
            let d = (&z - &mlp.logits(x.view()).unwrap()).mapv(f64::abs);
            assert!(d.iter().all(|&v| v < 1e-12), "k = {k}: {d}");
        }
    }

    #[test]
    fn join_rejects_mismatched_parts() {
        let a = Mlp::random(&[4, 3], Activation::Sigmoid, 0).unwrap();
        let b = Mlp::random(&[5, 2], Activation::Sigmoid, 0).unwrap();
        assert!(Mlp::join(&a, &b).is_err());
    }
}
