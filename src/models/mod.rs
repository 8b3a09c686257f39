//! Multilayer perceptrons: dense layers, training, presets for the paper's models, and
//! safetensors weights I/O.
//!
//! - [`Mlp`]: a chain of [`Dense`] layers (PyTorch `nn.Linear` convention, weight
//!   `[out, in]`), implementing [`Classifier`](crate::Classifier); its input gradient does
//!   not allocate in steady state.
//! - [`Activation`]: identity, (numerically stable) sigmoid, tanh, ReLU.
//!
//! # Examples
//!
//! ```
//! use intriguing::Classifier;
//! use intriguing::models::{Activation, Mlp};
//! use ndarray::Array2;
//!
//! let mlp = Mlp::random(&[784, 100, 100, 10], Activation::Sigmoid, 0)?;
//! let logits = mlp.logits(Array2::zeros((3, 784)).view())?;
//! assert_eq!(logits.shape(), &[3, 10]);
//! # Ok::<(), intriguing::Error>(())
//! ```

mod activation;
pub mod autoencoder;
pub mod io;
mod mlp;
mod presets;
mod train;

pub use activation::Activation;
pub use mlp::{Dense, Gradients, Mlp};
pub use presets::Preset;
pub use train::{
    BatchLoss, EpochInfo, Optimizer, TrainConfig, TrainReport, WeightDecay, train, train_with_loss,
};
