//! Analyses of trained models: the paper's spectral analysis of instability (§4.3, Table 5),
//! certified lower bounds on adversarial distortions, and units versus random directions
//! (§3).
//!
//! - [`spectral_norm`] / [`power_iteration`]: operator norms by power iteration on `WᵀW`
//!   with a two-part stopping rule ([`PowerIterationConfig`]); [`lanczos`] with the same rule
//!   for clustered spectra; `spectral_norm_svd` (feature `linalg`) is the exact LAPACK
//!   reference.
//! - [`conv_fourier_bound`]: the paper's Fourier bound `sup_ξ ‖A(ξ)‖` for convolutions, with
//!   the stride extension; [`conv_operator_norm`] / [`conv_operator_norm_lanczos`]: the
//!   explicit operator's norm.
//! - [`lipschitz_report`]: per-layer norms, activation constants and the cumulative upper
//!   Lipschitz bound of any [`LayerwiseLipschitz`] model, as a Table 5 style Markdown table.
//! - [`Certifier`]: for an input of class `y`, `margin_j / (‖w_y − w_j‖ · L_pen)` is a
//!   certified lower bound on the L2 perturbation reaching class `j`;
//!   [`distortion_brackets`] puts it beside the attack's distortion, per example.
//! - [`Crown`]: certified radii by linear relaxation (CROWN / Fast-Lin) over the L2 ball
//!   intersected with the box `[0, 1]ⁿ`, per class and untargeted, for MLPs and LeNet-style
//!   CNNs.
//! - [`top_activating`], [`purity_comparison`], [`write_image_grid`]: the §3 experiment and
//!   its label-purity number.
//!
//! # Examples
//!
//! ```
//! use intriguing::analysis::{lipschitz_report, Certifier, PowerIterationConfig};
//! use intriguing::models::cnn::Cnn;
//! use ndarray::Array2;
//! let net = Cnn::lenet(2, 3, 8, 1)?;
//! let cfg = PowerIterationConfig::default();
//! let report = lipschitz_report(&net, &cfg)?;
//! assert!(report.total() > 0.0);
//! let cert = Certifier::new(&net, &cfg)?;
//! let bounds = cert.lower_bounds(&net, Array2::from_elem((1, 784), 0.1).view(), &[0])?;
//! assert!(bounds[0].untargeted <= bounds[0].per_class[1]);
//! # Ok::<(), intriguing::Error>(())
//! ```

mod certify;
mod crown;
mod directions;
pub(crate) mod fourier;
mod grid;
mod lipschitz;
pub(crate) mod spectral;

pub use certify::{
    CertifiedBound, Certifier, DistortionBracket, distortion_brackets, distortion_brackets_with,
};
pub use crown::{Crown, CrownCertificate, CrownConfig, CrownModel};
pub use directions::{
    Direction, PurityComparison, PurityStats, label_purity, purity_comparison, top_activating,
};
pub use fourier::{
    FourierBound, conv_fourier_bound, conv_operator_norm, conv_operator_norm_lanczos,
};
pub use grid::write_image_grid;
pub use lipschitz::{
    LayerBound, LayerwiseLipschitz, LipschitzReport, activation_constant, lipschitz_report,
};
#[cfg(feature = "linalg")]
#[cfg_attr(docsrs, doc(cfg(feature = "linalg")))]
pub use spectral::spectral_norm_svd;
pub use spectral::{PowerIterationConfig, SpectralNorm, lanczos, power_iteration, spectral_norm};
