//! The crate's one error type.
//!
//! Every fallible function in `intriguing` returns [`Result<T>`](crate::Result), whose error is
//! [`Error`]. The enum is `#[non_exhaustive]`: match the variants you care about and keep a
//! wildcard arm.

use thiserror::Error as ThisError;

/// Everything that can go wrong in `intriguing`.
#[derive(Debug, ThisError)]
#[non_exhaustive]
pub enum Error {
    /// An array or slice had the wrong length or shape.
    ///
    /// ```
    /// use intriguing::error::{Error, Shape};
    /// use intriguing::optim::Bounds;
    /// match Bounds::new(vec![0.0; 3], vec![1.0; 2]) {
    ///     Err(Error::ShapeMismatch { expected: Shape::Len(3), found: Shape::Len(2), .. }) => {}
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    #[error("shape mismatch in {context}: expected {expected}, got {found}")]
    ShapeMismatch {
        /// Which argument or operation.
        context: String,
        /// The shape that was expected, e.g. `Shape::Dims([None, Some(784)])` for `[n, 784]`.
        expected: Shape,
        /// The shape that was given.
        found: Shape,
    },
    /// A NaN or infinite value where finite numbers are required.
    #[error("non-finite value in {context} at flat index {index}")]
    NonFinite {
        /// Which argument or quantity.
        context: String,
        /// Flat (row-major) index of the first offending value.
        index: usize,
    },
    /// A class label `>= num_classes`.
    #[error("label {label} out of range for a model with {num_classes} classes")]
    LabelOutOfRange {
        /// The label given.
        label: usize,
        /// The number of classes of the model.
        num_classes: usize,
    },
    /// A point outside its box constraints `lower <= x <= upper`.
    #[error(
        "value {} at index {index} lies outside the box [{}, {}]",
        short(*.value),
        short(*.lower),
        short(*.upper)
    )]
    OutOfBounds {
        /// Flat index of the first offending coordinate.
        index: usize,
        /// Its value.
        value: f64,
        /// Lower bound at that coordinate.
        lower: f64,
        /// Upper bound at that coordinate.
        upper: f64,
    },
    /// An interval `[lower, upper]` with no point in it (`lower > upper`, a `+inf` lower or a
    /// `-inf` upper bound) at coordinate `index`.
    #[error("empty interval [{}, {}] at index {index}", short(*.lower), short(*.upper))]
    EmptyInterval {
        /// The coordinate (0 for a single interval).
        index: usize,
        /// Its lower bound.
        lower: f64,
        /// Its upper bound.
        upper: f64,
    },
    /// A model produced NaN/Inf logits or gradients on finite input.
    #[error("the model returned non-finite {what}")]
    ModelNonFinite {
        /// `"logits"` or `"gradient"` (and where).
        what: String,
    },
    /// A model panicked while it was evaluated (caught at a batch boundary, so the other rows
    /// of the batch are unaffected).
    #[error("the model panicked while processing row {row}: {message}")]
    ModelPanicked {
        /// Index of the batch row being processed.
        row: usize,
        /// The panic message, when it was a string.
        message: String,
    },
    /// A model broke the [`Classifier`](crate::classifier::Classifier) contract the crate
    /// relies on (checked at every call into the model): e.g. logits or a loss callback view
    /// of the wrong shape, or a `num_classes()` that changed between calls. `model` is the
    /// model's type name.
    #[error("the model {model} broke its contract: {what}")]
    ModelContract {
        /// The model's type name ([`std::any::type_name`]).
        model: &'static str,
        /// What was wrong.
        what: String,
    },
    /// A panic inside the crate itself (not inside the model) while processing a batch row:
    /// a bug in `intriguing`, caught at the batch boundary so the other rows are unaffected.
    #[error("internal error (a bug in intriguing) while processing row {row}: {message}")]
    Internal {
        /// Index of the batch row being processed.
        row: usize,
        /// The panic message, when it was a string.
        message: String,
    },
    /// A setting or parameter outside its valid range: `name` is the parameter (as written
    /// in its setter's documentation, e.g. `"max_iterations"`), `value` the rejected value
    /// as text, `expected` the accepted range.
    ///
    /// ```
    /// use intriguing::Error;
    /// use intriguing::optim::Lbfgsb;
    /// match Lbfgsb::new().with_memory(0) {
    ///     Err(Error::InvalidParameter { name: "memory", value, .. }) => assert_eq!(value, "0"),
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    #[error("{name} must be {expected}, got {value}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// The rejected value, formatted.
        value: String,
        /// What the parameter accepts, e.g. `"finite and > 0"`.
        expected: &'static str,
    },
    /// A condition on several values or on the data as a whole that no single parameter
    /// names (e.g. an empty data set); single settings are [`Error::InvalidParameter`].
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A file that is not in the expected format (bad magic number, truncated, wrong tensors).
    #[error("data format: {0}")]
    DataFormat(String),
    /// A data set is not where it was looked for, e.g. no MNIST directory was named
    /// ([`Mnist::from_env`](crate::data::Mnist::from_env) without `INTRIGUING_MNIST_DIR`) or
    /// one of its files is missing. The message names the files needed, where they come from
    /// and how to point the crate at them.
    #[error("{0}")]
    DataNotFound(String),
    /// An I/O error from the operating system.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// An error from the `safetensors` crate while reading or writing weights.
    #[error("safetensors: {0}")]
    Safetensors(#[from] safetensors::SafeTensorError),
    /// An error from the PNG encoder.
    #[error("png: {0}")]
    Png(#[from] png::EncodingError),
    /// An error returned by an argmin problem (feature `argmin`), with argmin's message.
    #[cfg(feature = "argmin")]
    #[error("argmin problem: {0}")]
    Argmin(String),
    /// A linear-algebra backend failure (feature `linalg`).
    #[error("linear algebra: {0}")]
    Linalg(String),
    /// An error from candle while running a model (feature `candle`).
    #[cfg(feature = "candle")]
    #[cfg_attr(docsrs, doc(cfg(feature = "candle")))]
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// An error from the `safetensors` crate about one tensor of a file (offsets that do not
    /// follow the previous tensor's, a byte range that does not match the shape and dtype, an
    /// unknown dtype, ...), with that tensor's name.
    #[error("safetensors: tensor {tensor:?}: {source}")]
    SafetensorsTensor {
        /// The tensor's name in the file header.
        tensor: String,
        /// What the `safetensors` crate reported.
        #[source]
        source: safetensors::SafeTensorError,
    },
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// An expected or found shape in [`Error::ShapeMismatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shape {
    /// A length (of a slice, a 1-D array, a row, or a count).
    Len(usize),
    /// The dimensions of an array, row-major; `None` for an axis of any size (`[n, 784]` is
    /// `Dims(vec![None, Some(784)])`).
    Dims(Vec<Option<usize>>),
    /// A requirement no length or dimension list states, e.g. `"non-empty"`.
    Other(String),
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shape::Len(n) => write!(f, "{n}"),
            Shape::Dims(d) => {
                write!(f, "[")?;
                for (i, a) in d.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    match a {
                        Some(n) => write!(f, "{n}")?,
                        None => write!(f, "n")?,
                    }
                }
                write!(f, "]")
            }
            Shape::Other(s) => write!(f, "{s}"),
        }
    }
}

impl From<usize> for Shape {
    fn from(n: usize) -> Self {
        Shape::Len(n)
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape::Dims(d.iter().map(|&n| Some(n)).collect())
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape::from(&d[..])
    }
}

impl From<String> for Shape {
    /// Parses `"[3, 4]"` or `"[n, 784]"` (any non-numeric axis is `None`) into
    /// [`Shape::Dims`] and a plain number into [`Shape::Len`]; anything else is
    /// [`Shape::Other`].
    fn from(s: String) -> Self {
        let t = s.trim();
        if let Ok(n) = t.parse::<usize>() {
            return Shape::Len(n);
        }
        if let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let axes: Vec<&str> = inner.split(',').map(str::trim).collect();
            let simple =
                |a: &str| !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !inner.trim().is_empty() && axes.iter().all(|a| simple(a)) {
                return Shape::Dims(axes.iter().map(|a| a.parse().ok()).collect());
            }
        }
        Shape::Other(s)
    }
}

impl From<&str> for Shape {
    fn from(s: &str) -> Self {
        Shape::from(s.to_string())
    }
}

impl From<ndarray::ShapeError> for Shape {
    fn from(e: ndarray::ShapeError) -> Self {
        Shape::Other(e.to_string())
    }
}

/// A float in a short general format: plain decimal for moderate magnitudes, scientific
/// notation otherwise (so `-1e-300` prints as `-1e-300`, not 300 zeros).
pub(crate) fn short(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 || !v.is_finite() || (1e-4..1e15).contains(&a) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

impl Error {
    /// Shorthand for [`Error::ShapeMismatch`]; `expected` and `found` are anything that
    /// converts into a [`Shape`] (a length, a dims slice, or a `"[n, 784]"` string).
    pub(crate) fn shape(
        context: impl Into<String>,
        expected: impl Into<Shape>,
        found: impl Into<Shape>,
    ) -> Self {
        Error::ShapeMismatch {
            context: context.into(),
            expected: expected.into(),
            found: found.into(),
        }
    }

    /// Shorthand for [`Error::InvalidParameter`].
    pub(crate) fn parameter(
        name: &'static str,
        value: impl std::fmt::Display,
        expected: &'static str,
    ) -> Self {
        Error::InvalidParameter {
            name,
            value: value.to_string(),
            expected,
        }
    }
}

/// Checks that every value is finite; names the first offender.
pub(crate) fn check_finite<'a>(
    values: impl IntoIterator<Item = &'a f64>,
    context: &str,
) -> Result<()> {
    match values.into_iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::NonFinite {
            context: context.to_string(),
            index,
        }),
        None => Ok(()),
    }
}
