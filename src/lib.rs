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
//! example.
//!
//! Start with [`attack::find_minimal_perturbation`] for the attack, [`optim::Lbfgsb`] for the
//! optimizer alone, and [`Classifier`] to bring your own model. The set-up commands, feature
//! flags and a runnable example are in the README (compiled here as a doctest); design notes and
//! measured figures are in the repository's `docs/`.
#![warn(missing_docs)]
// docs.rs (nightly rustdoc, `--cfg docsrs`): badges on feature-gated items. `doc_cfg` also
// covers what the former `doc_auto_cfg` did (rust-lang/rust#138907).
#![cfg_attr(docsrs, feature(doc_cfg))]

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

pub use classifier::Classifier;
pub use error::{Error, Result};

/// The README's code blocks, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
