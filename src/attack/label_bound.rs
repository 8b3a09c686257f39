//! [`LabelBound`]: certified unreachability of labels, for exact pruning of
//! [`Target::Nearest`](super::Target::Nearest).

use crate::error::Result;
use crate::optim::Bounds;
use ndarray::ArrayView1;
use std::sync::Arc;

/// A certifier that can prove a label unreachable within a radius, used by
/// [`AttackConfig::with_label_bound`](super::AttackConfig::with_label_bound) to skip labels of
/// [`Target::Nearest`](super::Target::Nearest) exactly: a label proven unreachable within the
/// best distortion found so far cannot give a smaller one, so skipping it leaves the result
/// (label and distortion) unchanged.
///
/// The radius is the **Euclidean** norm `‖r‖₂` of the perturbation (not the RMS
/// `‖r‖₂/√n` that [`AttackResult::rms`](super::AttackResult::rms) reports). It must be a
/// bound for the same model the attack runs on. `analysis::Crown` implements it.
pub trait LabelBound: Send + Sync {
    /// `out[l] == true` only if no `x'` inside `bounds` with `‖x' − x‖₂ ≤ radius` has
    /// `z_l(x') ≥ z_{true_label}(x')` (so no such `x'` is classified `l`); one entry per class
    /// (the entry of `true_label` is unused). `false` is always allowed (no claim).
    fn unreachable_within(
        &self,
        x: ArrayView1<'_, f64>,
        true_label: usize,
        radius: f64,
        bounds: &Bounds,
    ) -> Result<Vec<bool>>;
}

/// The label bound held by an [`AttackConfig`](super::AttackConfig): compared by identity
/// (the same `Arc`), printed by name only.
#[derive(Clone)]
pub(crate) struct SharedLabelBound(pub(crate) Arc<dyn LabelBound>);

impl std::fmt::Debug for SharedLabelBound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LabelBound")
    }
}

impl PartialEq for SharedLabelBound {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
