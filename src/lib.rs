//! # intriguing
//!
//! Adversarial examples after Szegedy et al. 2014, *Intriguing properties of neural networks*
//! (arXiv:1312.6199).
//!
//! The modules follow the pipeline: model → objective → optimizer → attack → analysis.
//!
//! - [`classifier`]: the [`Classifier`] trait, losses on logits, a gradient checker.
//! - [`models`]: MLPs (the paper's FC and AE models), training, safetensors weights I/O.
//! - [`data`]: the MNIST IDX reader (`Mnist::load(dir)`, or `Mnist::from_env()` with
//!   `INTRIGUING_MNIST_DIR`; the data is not in the package, see [`data`] for where it comes
//!   from).
//! - [`optim`]: a from-scratch L-BFGS and L-BFGS-B with a Moré–Thuente line search.
//! - [`attack`]: the box-constrained minimal-perturbation attack and its c search.
//!   Beside it, DeepFool ([`attack::deepfool`]), FGSM and PGD ([`attack::fgsm`], [`attack::pgd`])
//!   and robust-accuracy curves ([`attack::MinimalDistortions`]); line plots in [`viz::plot`].
//! - [`viz`]: PNG image grids (the paper's Figure 5 and Figures 1–2 styles).
//! - [`analysis`]: Lipschitz bounds, certified lower bounds, unit vs random directions.
//!
//! With the non-default `paper` feature, `experiments` adds the paper's MNIST experiments as
//! library calls (Table 1, transfer, adversarial training) for the repository's `reproduce`
//! example. With the `serde` feature, configs, attack results and analysis reports implement
//! `serde::Serialize` and `Deserialize` (save a run as JSON; a deserialised config is
//! validated like one built by the setters). The other features (`linalg`, `argmin`,
//! `candle`) are listed in the README.
//!
//! Start with [`attack::find_minimal_perturbation`] for the attack, [`optim::Lbfgsb`] for the
//! optimizer alone, and [`Classifier`] to bring your own model. Design notes and measured
//! figures are in the repository's `docs/`.
//!
//! # Example
//!
//! A model, its gradient checked, the paper's attack on one input, the result re-verified
//! and drawn as a Figure-5 triple (with MNIST: `data::Mnist::load(dir)?.test_images.row(i)`
//! for `x`, and a model trained by [`models::train`] or loaded by
//! [`models::Mlp::load_safetensors`]):
//!
//! ```
//! use intriguing::{Classifier, ClassifierExt};
//! use intriguing::attack::{find_minimal_perturbation, AttackConfig, Target};
//! use intriguing::classifier::check_gradient;
//! use intriguing::models::{Activation, Mlp};
//! use intriguing::viz::{write_adversarial_figure, AdversarialPanel};
//! use ndarray::Array1;
//!
//! // A 784-32-10 tanh MLP with random weights, and a 28×28 input with values in [0, 1].
//! let model = Mlp::random(&[784, 32, 10], Activation::Tanh, 0)?;
//! let x = Array1::from_shape_fn(784, |i| ((i * 7) % 11) as f64 / 10.0);
//! let label = model.predict(x.view())?;
//!
//! // The backward pass agrees with finite differences (threshold: see GradCheckReport).
//! assert!(check_gradient(&model, x.view(), label, 1e-5)?.max_rel_error < 1e-3);
//!
//! // The smallest perturbation r with x + r in [0, 1]^784 that changes the label.
//! let target = Target::Untargeted { true_label: label };
//! let result = find_minimal_perturbation(&model, x.view(), target, &AttackConfig::default())?;
//! let adv = result.adversarial.as_ref().expect("a random MLP is easy to fool");
//! assert_ne!(model.predict(adv.input.view())?, label);          // re-classified
//! assert!(adv.input.iter().all(|v| (0.0..=1.0).contains(v)));    // inside the box
//! println!("label {label} -> {}, RMS distortion {:.4}", adv.label, adv.rms);
//!
//! let panel = AdversarialPanel {
//!     original: x.view(),
//!     adversarial: adv.input.view(),
//!     true_label: label,
//!     reached_label: adv.label,
//! };
//! let path = std::env::temp_dir().join("intriguing_landing_example.png");
//! write_adversarial_figure(&path, "one adversarial example", &[panel], (28, 28), 1)?;
//! # Ok::<(), intriguing::Error>(())
//! ```
//!
//! The set-up commands and feature flags are in the README (its code compiled here as a
//! doctest too).
#![warn(missing_docs)]
// docs.rs (nightly rustdoc, `--cfg docsrs`): badges on feature-gated items. `doc_cfg` also
// covers what the former `doc_auto_cfg` did (rust-lang/rust#138907).
#![cfg_attr(docsrs, feature(doc_cfg))]
// No unsafe code in this crate. `deny`, not `forbid`: ndarray's `s!` macro expands to an
// `#[allow(unsafe_code)]` block, which `forbid` would reject at every slice.
#![deny(unsafe_code)]

pub mod analysis;
pub mod attack;
pub mod classifier;
pub mod data;
pub mod error;
#[cfg(feature = "paper")]
pub mod experiments;
pub mod models;
pub mod optim;
#[cfg(feature = "serde")]
mod serde_f64;
mod validate;
pub mod viz;

pub use classifier::{Classifier, ClassifierExt};
pub use error::{Error, Result};

/// The traits and types most programs need: `use intriguing::prelude::*;`.
pub mod prelude {
    pub use crate::attack::{AttackConfig, AttackResult, Target, find_minimal_perturbation};
    pub use crate::classifier::{Classifier, ClassifierExt, LogitsLoss};
    pub use crate::error::{Error, Result};
    pub use crate::optim::{Bounds, Lbfgsb, Objective};
}

/// The README's code blocks, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
