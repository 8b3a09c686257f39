//! # intriguing
//!
//! Adversarial examples after Szegedy et al. 2014, *Intriguing properties of neural networks*
//! (arXiv:1312.6199).
//!
//! The modules follow the pipeline: model → objective → optimizer → attack → analysis.
//!
//! - [`classifier`]: the [`Classifier`] trait, losses on logits, a gradient checker.
//! - [`models`]: MLPs (the paper's FC and AE models), training, safetensors weights I/O.
//! - [`data`]: the MNIST IDX reader.
//! - [`optim`]: a from-scratch L-BFGS and L-BFGS-B with a Moré–Thuente line search.
//! - [`attack`]: the box-constrained minimal-perturbation attack and its c search.
//! - [`analysis`]: Lipschitz bounds, certified lower bounds, unit vs random directions.
#![warn(missing_docs)]

pub mod analysis;
pub mod attack;
pub mod classifier;
pub mod data;
pub mod error;
pub mod experiments;
pub mod models;
pub mod optim;
pub mod viz;

pub use classifier::Classifier;
pub use error::{Error, Result};
