//! [`Target`], [`AttackResult`] and failure reasons.

use ndarray::Array1;

/// Which label the attack aims for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Target {
    /// Exactly this label (the paper's setting).
    Label(usize),
    /// Any label but the true one (loss `LSE(z) − LSE(z without y)`, bounded below).
    Untargeted {
        /// The label to move away from.
        true_label: usize,
    },
    /// The smallest perturbation over all labels but the true one: one targeted search per
    /// label (what the paper's Table 1 "minimum distortion" measures).
    Nearest {
        /// The label to move away from.
        true_label: usize,
    },
}

impl Target {
    /// The label the input must be classified as: `Some(l)` for [`Target::Label`], `None`
    /// for the untargeted kinds.
    ///
    /// ```
    /// use intriguing::attack::Target;
    /// assert_eq!(Target::Label(3).target_label(), Some(3));
    /// assert_eq!(Target::Nearest { true_label: 3 }.target_label(), None);
    /// ```
    pub fn target_label(&self) -> Option<usize> {
        match *self {
            Target::Label(l) => Some(l),
            Target::Untargeted { .. } | Target::Nearest { .. } => None,
        }
    }

    /// The label the input must move away from: `Some(y)` for [`Target::Untargeted`] and
    /// [`Target::Nearest`], `None` for [`Target::Label`].
    pub fn true_label(&self) -> Option<usize> {
        match *self {
            Target::Label(_) => None,
            Target::Untargeted { true_label } | Target::Nearest { true_label } => Some(true_label),
        }
    }

    /// The one label the target names (the target label or the true label), for range checks.
    pub(crate) fn named_label(&self) -> usize {
        match *self {
            Target::Label(l) => l,
            Target::Untargeted { true_label } | Target::Nearest { true_label } => true_label,
        }
    }

    /// True when an input classified as `predicted` already satisfies the target.
    pub fn is_reached_by(&self, predicted: usize) -> bool {
        match *self {
            Target::Label(l) => predicted == l,
            Target::Untargeted { true_label } | Target::Nearest { true_label } => {
                predicted != true_label
            }
        }
    }
}

/// Why an attack did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum FailureReason {
    /// No run reached the target, down to the smallest c the bracketing budget allowed.
    NotReached,
    /// The model returned an error or non-finite logits / gradients during the search
    /// (the message says which); nothing adversarial had been verified before.
    ModelFailure(String),
    /// The optimizer refused to run (its error message).
    Optimizer(String),
    /// The bracketing of c stopped before its budget because c no longer changed in floating
    /// point (it underflowed to 0 or overflowed to ∞) without reaching the target.
    CExhausted,
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailureReason::NotReached => write!(f, "target not reached"),
            FailureReason::ModelFailure(m) => write!(f, "model failure: {m}"),
            FailureReason::Optimizer(m) => write!(f, "optimizer: {m}"),
            FailureReason::CExhausted => {
                write!(
                    f,
                    "target not reached before c left the floating-point range"
                )
            }
        }
    }
}

/// A verified adversarial input: re-classified as the target, finite and inside the box.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Adversarial {
    /// The adversarial input `x + r`.
    pub input: Array1<f64>,
    /// The perturbation `r`.
    pub perturbation: Array1<f64>,
    /// `‖r‖₂`.
    pub l2: f64,
    /// The paper's distortion `sqrt(Σ r_i² / n)`.
    pub rms: f64,
    /// `max |r_i|`.
    pub linf: f64,
    /// The model's prediction at `x + r` (re-evaluated).
    pub label: usize,
    /// The c of the run that produced it (`None` when `x` was already adversarial).
    pub c: Option<f64>,
}

impl Adversarial {
    pub(crate) fn new(input: Array1<f64>, origin: &[f64], label: usize, c: Option<f64>) -> Self {
        let perturbation = &input - &ndarray::ArrayView1::from(origin);
        let l2sq: f64 = perturbation.iter().map(|r| r * r).sum();
        let linf = perturbation.iter().fold(0.0f64, |m, r| m.max(r.abs()));
        let n = perturbation.len().max(1) as f64;
        Adversarial {
            input,
            perturbation,
            l2: l2sq.sqrt(),
            rms: (l2sq / n).sqrt(),
            linf,
            label,
            c,
        }
    }
}

/// The c bracket at the end of the search: the largest c whose run succeeded and the
/// smallest c above it whose run failed (how tight the search got).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CBracket {
    /// Largest c whose run ended on a verified adversarial point.
    pub success: Option<f64>,
    /// Smallest c (above `success`) whose run did not.
    pub failure: Option<f64>,
}

/// The outcome of one attack.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AttackResult {
    /// The target that was asked for.
    pub target: Target,
    /// The model's prediction at the clean input.
    pub original_label: usize,
    /// The smallest verified adversarial input found (`None` on failure).
    pub adversarial: Option<Adversarial>,
    /// Why there is no adversarial input (`None` on success).
    pub failure: Option<FailureReason>,
    /// True when the clean input already satisfied the target (`r = 0`, no run done).
    pub already_adversarial: bool,
    /// The final c bracket (for [`Target::Nearest`], that of the winning label).
    pub c_bracket: CBracket,
    /// L-BFGS-B runs spent.
    pub runs: usize,
    /// Gradient (forward + backward) evaluations spent, c estimation included.
    pub gradient_evaluations: usize,
    /// Prediction-only (forward) evaluations spent on verification.
    pub predictions: usize,
    /// Labels whose c search ran (1 for a single goal, 0 when already adversarial; for
    /// [`Target::Nearest`], the candidates minus those skipped by a
    /// [`LabelBound`](super::LabelBound)).
    pub labels_searched: usize,
}

impl AttackResult {
    /// True when a verified adversarial input was found.
    pub fn success(&self) -> bool {
        self.adversarial.is_some()
    }
    /// `‖r‖₂` of the adversarial input.
    pub fn l2(&self) -> Option<f64> {
        self.adversarial.as_ref().map(|a| a.l2)
    }
    /// RMS distortion `sqrt(Σ r_i² / n)` of the adversarial input.
    pub fn rms(&self) -> Option<f64> {
        self.adversarial.as_ref().map(|a| a.rms)
    }
    /// `‖r‖∞` of the adversarial input.
    pub fn linf(&self) -> Option<f64> {
        self.adversarial.as_ref().map(|a| a.linf)
    }
    /// The label the adversarial input is classified as.
    pub fn adversarial_label(&self) -> Option<usize> {
        self.adversarial.as_ref().map(|a| a.label)
    }
}
