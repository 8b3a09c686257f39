//! Certified lower bounds on the L2 perturbation that changes a model's decision.

use super::crown::{Crown, CrownCertificate, CrownConfig, CrownModel};
use super::lipschitz::{LayerwiseLipschitz, lipschitz_report};
use super::spectral::PowerIterationConfig;
use crate::classifier::ClassifierExt;
use crate::classifier::argmax;
use crate::error::{Error, Result};
use ndarray::{Array2, ArrayView2};

/// Lower bounds for one input (see [`Certifier::lower_bounds`]).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CertifiedBound {
    /// The reference label `y`.
    pub label: usize,
    /// The model's prediction on the clean input.
    pub predicted: usize,
    /// For each class `j`: no perturbation `r` with `‖r‖₂` below this value makes
    /// `z_j ≥ z_y`. `f64::INFINITY` at `j = y` (and where `w_y = w_j` with a positive margin).
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64::vec"))]
    pub per_class: Vec<f64>,
    /// `min_{j ≠ y} per_class[j]`: no perturbation shorter than this changes the decision
    /// away from `y` (0 when the input is already misclassified).
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64"))]
    pub untargeted: f64,
    /// The class attaining [`untargeted`](CertifiedBound::untargeted).
    pub nearest_class: usize,
    /// The same untargeted bound with the cruder constant `√2 · ‖W_L‖ · L_pen` (the last
    /// layer's norm instead of its row differences), for comparison.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64"))]
    pub untargeted_naive: f64,
}

/// Certified (Lipschitz-margin) lower bounds for a fixed model.
///
/// Write the logits as `z = W_L h(x) + b_L`, with `h` the penultimate representation. Then
/// `z_y − z_j = (w_y − w_j)·h(x) + (b_y − b_j)` is Lipschitz with constant
/// `‖w_y − w_j‖₂ · L_pen`, where `L_pen = Π_{l<L} c_l ‖W_l‖` bounds the Lipschitz constant of
/// `h` ([`LipschitzReport::penultimate`](super::LipschitzReport::penultimate)). So no `r`
/// with `‖r‖₂ < (z_y − z_j)(x) / (‖w_y − w_j‖ · L_pen)` reaches `z_j ≥ z_y`. For a purely
/// linear model (`L_pen = 1`) the bound is the exact distance to the decision hyperplane
/// (without the box constraint).
///
/// The per-layer norms are those of [`LipschitzReport`](super::LipschitzReport)'s `bound`
/// column: Fourier bounds for convolutions (guaranteed upper bounds), converged power
/// iteration for dense layers (which approaches the norm from below to ~1e-13 relative; the
/// constant is inflated by `1 + 1e-9` to cover that).
///
/// # Examples
///
/// ```
/// use intriguing::analysis::{Certifier, PowerIterationConfig};
/// use intriguing::models::cnn::Cnn;
/// use ndarray::Array2;
/// let net = Cnn::lenet(2, 3, 8, 1)?;
/// let cert = Certifier::new(&net, &PowerIterationConfig::default())?;
/// let x = Array2::from_elem((1, 784), 0.5);
/// let b = cert.lower_bounds(&net, x.view(), &[3])?;
/// assert!(b[0].untargeted >= 0.0);
/// # Ok::<(), intriguing::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Certifier {
    penultimate_lipschitz: f64,
    /// `‖w_i − w_j‖₂` for all class pairs.
    row_distances: Array2<f64>,
    last_norm: f64,
}

const SAFETY: f64 = 1.0 + 1e-9;

impl Certifier {
    /// Computes the layer norms of `model` once.
    pub fn new<M: LayerwiseLipschitz + ?Sized>(
        model: &M,
        cfg: &PowerIterationConfig,
    ) -> Result<Self> {
        let (w, _) = model.logit_layer().ok_or_else(|| {
            Error::InvalidConfig(
                "certified bounds need a model whose last layer is affine with no activation"
                    .into(),
            )
        })?;
        let report = lipschitz_report(model, cfg)?;
        let k = w.nrows();
        let mut d = Array2::zeros((k, k));
        for i in 0..k {
            for j in 0..k {
                d[[i, j]] = w
                    .row(i)
                    .iter()
                    .zip(w.row(j).iter())
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>()
                    .sqrt();
            }
        }
        Ok(Self {
            penultimate_lipschitz: report.penultimate() * SAFETY,
            row_distances: d,
            last_norm: report.layers.last().map_or(0.0, |l| l.bound) * SAFETY,
        })
    }

    /// The Lipschitz bound `L_pen` of the input → penultimate-representation map.
    pub fn penultimate_lipschitz(&self) -> f64 {
        self.penultimate_lipschitz
    }

    /// The Lipschitz bound of `x ↦ z_i(x) − z_j(x)`: `‖w_i − w_j‖ · L_pen`.
    pub fn pair_lipschitz(&self, i: usize, j: usize) -> f64 {
        self.row_distances[[i, j]] * self.penultimate_lipschitz
    }

    /// Lower bounds for each row of `inputs` against its label. `model` must be the model
    /// the certifier was built from.
    ///
    /// # Examples
    ///
    /// For a linear model the bound against class `j` is the exact distance to the
    /// hyperplane `z_j = z_y`, `(z_y − z_j) / ‖w_y − w_j‖` (lowered by `1e-9` relative):
    ///
    /// ```
    /// use intriguing::analysis::{Certifier, PowerIterationConfig};
    /// use intriguing::models::{Activation, Mlp};
    /// use intriguing::{Classifier, ClassifierExt};
    /// use ndarray::Array2;
    /// let linear = Mlp::random(&[5, 3], Activation::Identity, 1)?; // z = W x + b
    /// let cert = Certifier::new(&linear, &PowerIterationConfig::default())?;
    /// let x = Array2::from_shape_fn((1, 5), |(_, j)| j as f64 / 4.0);
    /// let y = linear.predict(x.row(0))?;
    /// let b = &cert.lower_bounds(&linear, x.view(), &[y])?[0];
    /// let z = linear.logits(x.view())?;
    /// let w = &linear.layers()[0].weight;
    /// for j in (0..3).filter(|&j| j != y) {
    ///     let norm = (&w.row(y) - &w.row(j)).mapv(|v| v * v).sum().sqrt();
    ///     let dist = (z[[0, y]] - z[[0, j]]) / norm;
    ///     assert!(b.per_class[j] <= dist && b.per_class[j] > dist * (1.0 - 1e-8));
    /// }
    /// assert_eq!(b.per_class[y], f64::INFINITY);
    /// # Ok::<(), intriguing::Error>(())
    /// ```
    pub fn lower_bounds<M: LayerwiseLipschitz + ?Sized>(
        &self,
        model: &M,
        inputs: ArrayView2<'_, f64>,
        labels: &[usize],
    ) -> Result<Vec<CertifiedBound>> {
        if labels.len() != inputs.nrows() {
            return Err(Error::shape("labels", inputs.nrows(), labels.len()));
        }
        let k = self.row_distances.nrows();
        if model.num_classes() != k {
            return Err(Error::shape("certifier classes", k, model.num_classes()));
        }
        for &l in labels {
            model.check_label(l)?;
        }
        let logits = model.logits(inputs)?;
        let naive_const = std::f64::consts::SQRT_2 * self.last_norm * self.penultimate_lipschitz;
        let mut out = Vec::with_capacity(labels.len());
        for (z, &y) in logits.rows().into_iter().zip(labels) {
            let mut per_class = vec![f64::INFINITY; k];
            let (mut best, mut best_j, mut best_margin) = (f64::INFINITY, y, f64::INFINITY);
            for j in (0..k).filter(|&j| j != y) {
                let margin = z[y] - z[j];
                let lip = self.pair_lipschitz(y, j);
                let b = if margin <= 0.0 {
                    0.0
                } else if lip == 0.0 {
                    f64::INFINITY
                } else {
                    margin / lip
                };
                per_class[j] = b;
                if b < best {
                    best = b;
                    best_j = j;
                }
                best_margin = best_margin.min(margin);
            }
            let naive = if best_margin <= 0.0 {
                0.0
            } else {
                best_margin / naive_const
            };
            out.push(CertifiedBound {
                label: y,
                predicted: argmax(z),
                per_class,
                untargeted: best,
                nearest_class: best_j,
                untargeted_naive: naive,
            });
        }
        Ok(out)
    }
}

/// The true minimal perturbation of one input lies in `[lower, upper]`: the certified lower
/// bound and the distortion of the adversarial example the attack found.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DistortionBracket {
    /// The label attacked (the input's true label).
    pub label: usize,
    /// The Lipschitz-margin certified bounds of the clean input (the box ignored).
    pub certified: CertifiedBound,
    /// The linear-relaxation (CROWN) certificate of the clean input, over the ball
    /// intersected with the box `[0, 1]ⁿ` by default.
    pub crown: CrownCertificate,
    /// `‖r‖₂` of the attack's adversarial example (`None` when the attack failed; `Some(0)`
    /// when the input was already misclassified).
    pub upper: Option<f64>,
    /// The class the adversarial example reached.
    pub reached: Option<usize>,
    /// `‖r‖₂ / ‖x‖₂` (the DeepFool paper's ρ), when the attack succeeded.
    pub relative: Option<f64>,
}

impl DistortionBracket {
    /// Lipschitz `lower / upper` (in `[0, 1]` whenever the bound is valid), when the attack
    /// succeeded with a non-zero distortion.
    pub fn ratio(&self) -> Option<f64> {
        self.upper
            .filter(|&u| u > 0.0)
            .map(|u| self.certified.untargeted / u)
    }

    /// CROWN `lower / upper` (in `[0, 1]` whenever the bound is valid), when the attack
    /// succeeded with a non-zero distortion.
    pub fn crown_ratio(&self) -> Option<f64> {
        self.upper
            .filter(|&u| u > 0.0)
            .map(|u| self.crown.untargeted / u)
    }

    /// The tighter of the two certified lower bounds.
    pub fn lower(&self) -> f64 {
        self.crown.untargeted.max(self.certified.untargeted)
    }
}

/// For each row of `inputs`: its two certified untargeted lower bounds (Lipschitz margin and
/// CROWN with [`CrownConfig::default`]) beside the distortion found by
/// [`find_minimal_perturbation`](crate::attack::find_minimal_perturbation) with
/// [`Target::Untargeted`](crate::attack::Target::Untargeted) and `attack` — the bracket
/// `[lower, upper]` around the true minimal L2 perturbation inside the box `[0, 1]ⁿ` (the
/// Lipschitz bound ignores the box, so it also bounds the unboxed problem; the CROWN one uses
/// it). See [`distortion_brackets_with`] for other CROWN settings.
///
/// # Examples
///
/// ```
/// use intriguing::analysis::{distortion_brackets, Certifier, PowerIterationConfig};
/// use intriguing::attack::AttackConfig;
/// use intriguing::models::{Activation, Mlp};
/// use ndarray::Array2;
/// let mlp = Mlp::random(&[16, 8, 3], Activation::Tanh, 4)?;
/// let cert = Certifier::new(&mlp, &PowerIterationConfig::default())?;
/// let x = Array2::from_elem((1, 16), 0.5);
/// let y = intriguing::ClassifierExt::predict_batch(&mlp, x.view())?;
/// let b = distortion_brackets(&mlp, &cert, x.view(), &y, &AttackConfig::default())?;
/// if let Some(upper) = b[0].upper {
///     assert!(b[0].certified.untargeted <= upper);
///     assert!(b[0].crown.untargeted <= upper);
/// }
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn distortion_brackets<M: LayerwiseLipschitz + CrownModel + ?Sized>(
    model: &M,
    certifier: &Certifier,
    inputs: ArrayView2<'_, f64>,
    labels: &[usize],
    attack: &crate::attack::AttackConfig,
) -> Result<Vec<DistortionBracket>> {
    let crown = model.crown()?;
    distortion_brackets_with(
        model,
        certifier,
        &crown,
        &CrownConfig::default(),
        inputs,
        labels,
        attack,
    )
}

/// [`distortion_brackets`] with a prepared [`Crown`] certifier (built from `model`) and its
/// settings.
pub fn distortion_brackets_with<M: LayerwiseLipschitz + ?Sized>(
    model: &M,
    certifier: &Certifier,
    crown: &Crown,
    crown_cfg: &CrownConfig,
    inputs: ArrayView2<'_, f64>,
    labels: &[usize],
    attack: &crate::attack::AttackConfig,
) -> Result<Vec<DistortionBracket>> {
    use crate::attack::{Target, find_minimal_perturbation};
    if crown.input_dim() != model.input_dim() || crown.num_classes() != model.num_classes() {
        return Err(Error::shape(
            "CROWN certifier (input dim, classes)",
            format!("({}, {})", model.input_dim(), model.num_classes()),
            format!("({}, {})", crown.input_dim(), crown.num_classes()),
        ));
    }
    let bounds = certifier.lower_bounds(model, inputs, labels)?;
    let mut out = Vec::with_capacity(bounds.len());
    for (certified, x) in bounds.into_iter().zip(inputs.rows()) {
        let label = certified.label;
        let crown_cert = crown.certify(x, label, crown_cfg)?;
        let r =
            find_minimal_perturbation(model, x, Target::Untargeted { true_label: label }, attack)?;
        let xn = x.dot(&x).sqrt();
        let (upper, reached) = match &r.adversarial {
            Some(adv) => (Some(adv.l2), Some(adv.label)),
            None => (None, None),
        };
        out.push(DistortionBracket {
            label,
            certified,
            crown: crown_cert,
            upper,
            reached,
            relative: upper.map(|u| if xn > 0.0 { u / xn } else { f64::INFINITY }),
        });
    }
    Ok(out)
}
