//! The crate's models: one [`Sequential`] stack of layers, one trainer, presets for the
//! paper's models, and safetensors weights I/O.
//!
//! - [`Sequential`]: a chain of [`Module`]s (dense, 2-D convolution, max-pooling, flatten,
//!   activations) with one forward pass, one backward pass (input gradient for attacks,
//!   parameter gradient for training) and one flat parameter view; it implements
//!   [`Classifier`](crate::Classifier). [`Mlp`] is `Sequential<Dense>`,
//!   [`cnn::Cnn`] is `Sequential<Layer>`, and the AE400-10 classifier is an [`Mlp`].
//! - [`fit`]: the one training loop ([`train`] and [`train_with_loss`] are its entry points
//!   for cross-entropy and output losses; the sparse autoencoder plugs in its
//!   [`TrainLoss`]).
//! - [`init`]: Glorot-uniform and Gaussian initialisation.
//! - [`Mlp`]: a chain of [`Dense`] layers (PyTorch `nn.Linear` convention, weight
//!   `[out, in]`), implementing [`Classifier`](crate::Classifier); its input gradient does
//!   not allocate in steady state. [`Mlp::gradients`] gives the weight gradients of the mean
//!   cross-entropy of a batch, [`Mlp::hidden_representation`] the output of a hidden layer.
//! - [`F32Gradients`]: an [`Mlp`]'s loss gradients from an `f32` copy of its weights (its
//!   predictions the f64 model's), for the attack's batched gradient evaluations.
//! - [`Activation`]: identity, (numerically stable) sigmoid, tanh, ReLU.
//! - [`train`] / [`train_with_loss`] with a [`TrainConfig`]: minibatch SGD with momentum or
//!   Adam, per-layer L2 weight decay `Σ_l (λ_l/2)‖W_l‖²` (biases not decayed), seeded
//!   shuffling, an epoch callback; a non-finite loss restores the last good epoch.
//! - [`Mlp::split_at`] / [`Mlp::join`]: head and tail of a network around a hidden layer (the
//!   tail is a classifier over the hidden representation, its box
//!   [`Activation::output_range`]).
//! - [`Preset`]: the paper's FC10(λ), FC100-100-10, FC200-200-10, FC500-150-10 and
//!   FC123-456-10 with measured training recipes.
//! - [`io`]: `Mlp::save_safetensors` / `Mlp::load_safetensors` (and the PyTorch
//!   `nn.Sequential` layout through `Mlp::load_safetensors_with`).
//!
//! # Examples
//!
//! Train a small sigmoid MLP on 2000 MNIST images and evaluate it:
//!
//! ```
//! use intriguing::{Classifier, ClassifierExt};
//! use intriguing::data::Mnist;
//! use intriguing::models::Preset;
//!
//! // INTRIGUING_MNIST_DIR if set, else the copy in this repository (run from a clone).
//! let dir = std::env::var_os("INTRIGUING_MNIST_DIR").unwrap_or_else(|| "examples/data/mnist".into());
//! let mnist = Mnist::load(dir)?.take(2000, 500)?;
//! let (mut mlp, cfg) = Preset::Fc100_100_10.build(0)?;
//! let cfg = cfg.with_epochs(10)?;
//! intriguing::models::train(&mut mlp, mnist.train_images.view(), &mnist.train_labels, &cfg,
//!     |info, _| println!("epoch {}: loss {:.3}", info.epoch, info.loss))?;
//! let err = mlp.error_rate(mnist.test_images.view(), &mnist.test_labels)?;
//! assert!(err < 0.15, "{err}"); // ~10% after 10 epochs on 2000 images
//! # Ok::<(), intriguing::Error>(())
//! ```

mod activation;
pub mod autoencoder;
#[cfg(feature = "candle")]
#[cfg_attr(docsrs, doc(cfg(feature = "candle")))]
pub mod candle;
pub mod cnn;
pub mod conv;
mod f32_gradients;
pub mod init;
pub mod io;
mod layer;
mod mlp;
mod presets;
mod sequential;
mod split;
mod train;

pub use activation::Activation;
pub use f32_gradients::F32Gradients;
pub use layer::{Layer, Module};
pub use mlp::{Dense, Mlp};
pub use presets::Preset;
#[cfg(feature = "paper")]
pub(crate) use sequential::cross_entropy_over;
pub use sequential::{Gradients, Sequential};
pub use train::{
    BatchInfo, BatchLoss, EpochInfo, ExtraRows, ExtraTerm, Optimizer, TrainConfig, TrainLoss,
    TrainReport, WeightDecay, fit, train, train_with_loss,
};
