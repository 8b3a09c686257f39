//! Convolutional networks: a [`Sequential`] of [`Layer`]s (convolutions, max-pooling,
//! activations, dense layers) and the LeNet-style MNIST model.
//!
//! # Examples
//!
//! ```
//! use intriguing::models::cnn::Cnn;
//! use intriguing::{Classifier, ClassifierExt};
//! use ndarray::Array2;
//! let net = Cnn::lenet(6, 16, 120, 7)?; // conv5×5·6 → pool → conv5×5·16 → pool → 120 → 10
//! assert_eq!((net.input_dim(), net.num_classes()), (784, 10));
//! let logits = net.logits(Array2::<f64>::zeros((2, 784)).view())?;
//! assert_eq!(logits.shape(), &[2, 10]);
//! # Ok::<(), intriguing::Error>(())
//! ```

use super::conv::{Conv2d, MaxPool2d};
use super::{Activation, Dense, Sequential};
use crate::error::{Error, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use super::layer::Layer;

/// The layer type of a [`Cnn`] (the same [`Layer`] enum).
pub type CnnLayer = Layer;

/// A sequential network of [`Layer`]s on flat `C×H×W` rows.
pub type Cnn = Sequential<Layer>;

impl Sequential<Layer> {
    /// A LeNet-style MNIST model (`1×28×28` inputs, 10 classes): conv 5×5 × `c1` → ReLU →
    /// max-pool 2 → conv 5×5 × `c2` → ReLU → max-pool 2 → dense `16·c2 → hidden` → ReLU →
    /// dense `hidden → 10`. `(6, 16, 120)` is LeNet-5's width, `(20, 50, 500)` Caffe's
    /// LeNet. He-normal initialisation from `seed` (`seed`, `seed + 1`, ... per layer).
    ///
    /// The PyTorch equivalent is `nn.Sequential(nn.Conv2d(1, c1, 5), nn.ReLU(),
    /// nn.MaxPool2d(2), nn.Conv2d(c1, c2, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
    /// nn.Linear(16 * c2, hidden), nn.ReLU(), nn.Linear(hidden, 10))`, whose weights
    /// [`load_safetensors_weights`](Sequential::load_weights_safetensors) reads.
    pub fn lenet(c1: usize, c2: usize, hidden: usize, seed: u64) -> Result<Self> {
        if c1 == 0 || c2 == 0 || hidden == 0 {
            return Err(Error::InvalidConfig("LeNet widths must be >= 1".into()));
        }
        let conv1 = Conv2d::random((1, 28, 28), c1, 5, 1, 0, seed)?;
        let pool1 = MaxPool2d::new(conv1.output_shape(), 2, 2)?;
        let conv2 = Conv2d::random(pool1.output_shape(), c2, 5, 1, 0, seed.wrapping_add(1))?;
        let pool2 = MaxPool2d::new(conv2.output_shape(), 2, 2)?;
        let flat = pool2.output_dim();
        let dense = |i, o, s: u64| {
            Dense::he_normal(
                i,
                o,
                Activation::Identity,
                &mut ChaCha8Rng::seed_from_u64(s),
            )
        };
        Self::new(vec![
            Layer::Conv2d(conv1),
            Layer::RELU,
            Layer::MaxPool2d(pool1),
            Layer::Conv2d(conv2),
            Layer::RELU,
            Layer::MaxPool2d(pool2),
            Layer::Dense(dense(flat, hidden, seed.wrapping_add(2))?),
            Layer::RELU,
            Layer::Dense(dense(hidden, 10, seed.wrapping_add(3))?),
        ])
    }
}
