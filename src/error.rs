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
    #[error("shape mismatch in {context}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// Which argument or operation.
        context: String,
        /// The shape that was expected, e.g. `"[n, 784]"`.
        expected: String,
        /// The shape that was given.
        got: String,
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
    #[error("value {value} at index {index} lies outside the box [{lower}, {upper}]")]
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
    /// A model produced NaN/Inf logits or gradients on finite input.
    #[error("the model returned a non-finite {what}")]
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
    /// A setting or parameter outside its valid range.
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

impl Error {
    /// Shorthand for [`Error::ShapeMismatch`].
    pub(crate) fn shape(
        context: impl Into<String>,
        expected: impl std::fmt::Display,
        got: impl std::fmt::Display,
    ) -> Self {
        Error::ShapeMismatch {
            context: context.into(),
            expected: expected.to_string(),
            got: got.to_string(),
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
