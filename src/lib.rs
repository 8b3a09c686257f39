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
//! - [`viz`]: PNG image grids (the paper's Figure 5 and Figures 1–2 styles).
//! - [`analysis`]: Lipschitz bounds, certified lower bounds, unit vs random directions.
//!
//! With the non-default `paper` feature, `experiments` adds the paper's MNIST experiments as
//! library calls (Table 1, transfer, adversarial training) for the repository's `reproduce`
//! example.
//!
//! Start with [`attack::find_minimal_perturbation`] for the attack, [`optim::Lbfgsb`] for the
//! optimizer alone, and [`Classifier`] to bring your own model. The set-up commands, feature
//! flags and a runnable example are in the README (compiled here as a doctest); design notes and
//! measured figures are in the repository's `docs/`.
#![warn(missing_docs)]
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
