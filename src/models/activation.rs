//! Elementwise activation functions.

use crate::error::{Error, Result};
use ndarray::{ArrayView2, ArrayViewMut2, Zip};
use std::fmt;
use std::str::FromStr;

/// The activation applied after a dense layer's affine map.
///
/// Every derivative can be computed from the activation's *output* `y = f(x)`, which is what
/// the backward pass stores: sigmoid `y(1-y)`, tanh `1-y²`, ReLU `[y > 0]`, identity `1`.
///
/// The names used by [`Display`](fmt::Display) and [`FromStr`] (and in safetensors metadata)
/// are `identity`, `sigmoid`, `tanh` and `relu`.
///
/// # Examples
///
/// ```
/// use intriguing::models::Activation;
/// assert_eq!(Activation::Sigmoid.apply(0.0), 0.5);
/// assert_eq!(Activation::Sigmoid.apply(-1000.0), 0.0); // stable: no overflow, no NaN
/// assert_eq!("relu".parse::<Activation>()?, Activation::Relu);
/// # Ok::<(), intriguing::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Activation {
    /// `f(x) = x` (the output layer: logits).
    #[default]
    Identity,
    /// The logistic function `1 / (1 + e^{-x})`, evaluated without overflow for any `x`.
    Sigmoid,
    /// The hyperbolic tangent.
    Tanh,
    /// The rectifier `max(0, x)`.
    Relu,
}

impl Activation {
    /// All four activations.
    pub const ALL: [Activation; 4] = [
        Activation::Identity,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
    ];

    /// `f(x)`.
    #[inline]
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Activation::Identity => x,
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => x.tanh(),
            Activation::Relu => {
                if x > 0.0 {
                    x
                } else {
                    0.0
                }
            }
        }
    }

    /// `f'(x)` expressed through the output `y = f(x)`.
    #[inline]
    pub fn derivative_from_output(self, y: f64) -> f64 {
        match self {
            Activation::Identity => 1.0,
            Activation::Sigmoid => y * (1.0 - y),
            Activation::Tanh => 1.0 - y * y,
            Activation::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// The lower-case name (`"sigmoid"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
        }
    }

    /// Applies `f` to every entry in place.
    pub(crate) fn apply_inplace(self, mut a: ArrayViewMut2<'_, f64>) {
        if self != Activation::Identity {
            a.mapv_inplace(|x| self.apply(x));
        }
    }

    /// `delta *= f'(x)` where `y = f(x)` is given.
    pub(crate) fn backprop_inplace(
        self,
        mut delta: ArrayViewMut2<'_, f64>,
        y: ArrayView2<'_, f64>,
    ) {
        if self != Activation::Identity {
            Zip::from(&mut delta)
                .and(&y)
                .for_each(|d, &y| *d *= self.derivative_from_output(y));
        }
    }
}

/// The logistic function, stable for all `x` (never evaluates `exp` of a positive number).
#[inline]
pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Activation {
    type Err = Error;

    /// Parses `identity`/`linear`/`none`, `sigmoid`/`logistic`, `tanh`, `relu`
    /// (case-insensitive, surrounding whitespace ignored).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "identity" | "linear" | "none" => Ok(Activation::Identity),
            "sigmoid" | "logistic" => Ok(Activation::Sigmoid),
            "tanh" => Ok(Activation::Tanh),
            "relu" => Ok(Activation::Relu),
            other => Err(Error::InvalidConfig(format!(
                "unknown activation {other:?} (expected identity, sigmoid, tanh or relu)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_is_stable_and_symmetric() {
        for &x in &[-1e308, -800.0, -40.0, -1.0, 0.0, 1.0, 40.0, 800.0, 1e308] {
            let s = sigmoid(x);
            assert!(s.is_finite() && (0.0..=1.0).contains(&s), "{x} -> {s}");
            assert!((s + sigmoid(-x) - 1.0).abs() < 1e-15);
        }
        assert!((sigmoid(2.0) - 1.0 / (1.0 + (-2.0f64).exp())).abs() < 1e-16);
        // The tail is resolved, not flushed to zero early.
        assert!((sigmoid(-30.0) / (-30.0f64).exp() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn derivatives_match_finite_differences() {
        for act in Activation::ALL {
            for &x in &[-2.3, -0.4, 0.7, 1.9] {
                let h = 1e-6;
                let fd = (act.apply(x + h) - act.apply(x - h)) / (2.0 * h);
                let an = act.derivative_from_output(act.apply(x));
                assert!((fd - an).abs() < 1e-8, "{act} at {x}: {fd} vs {an}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for act in Activation::ALL {
            assert_eq!(act.to_string().parse::<Activation>().unwrap(), act);
        }
        assert!(matches!(
            "softplus".parse::<Activation>(),
            Err(Error::InvalidConfig(_))
        ));
    }
}
