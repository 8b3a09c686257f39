//! The transfer tables: adversarial (or noisy) examples made for one model, fed to others.

use super::NamedModel;
use super::sample::AdversarialSet;
use crate::classifier::ClassifierExt;
use crate::error::Result;

/// Rows = sources of examples, columns = evaluated models, entries = share of the examples
/// each model misclassifies (NaN for an empty set).
#[derive(Clone, Debug, PartialEq)]
pub struct TransferTable {
    /// Source of each row (a model name, or Gaussian noise).
    pub sources: Vec<String>,
    /// The evaluated models (columns).
    pub models: Vec<String>,
    /// `rates[row][col]`: share misclassified, in `[0, 1]`.
    pub rates: Vec<Vec<f64>>,
    /// Examples in each row.
    pub counts: Vec<usize>,
    /// Mean RMS distortion of each row.
    pub mean_rms: Vec<f64>,
}

/// Feeds every set to every model (batched predictions) and tabulates the share of
/// misclassified examples (prediction ≠ true label of the original).
pub fn transfer_table(sets: &[AdversarialSet], models: &[NamedModel<'_>]) -> Result<TransferTable> {
    let mut rates = Vec::with_capacity(sets.len());
    for s in sets {
        let mut row = Vec::with_capacity(models.len());
        for m in models {
            if s.is_empty() {
                row.push(f64::NAN);
                continue;
            }
            let pred = m.model.predict_batch(s.inputs.view())?;
            let wrong = pred.iter().zip(&s.labels).filter(|(p, l)| p != l).count();
            row.push(wrong as f64 / s.len() as f64);
        }
        rates.push(row);
    }
    Ok(TransferTable {
        sources: sets.iter().map(|s| s.source.clone()).collect(),
        models: models.iter().map(|m| m.name.to_string()).collect(),
        rates,
        counts: sets.iter().map(AdversarialSet::len).collect(),
        mean_rms: sets.iter().map(AdversarialSet::mean_rms).collect(),
    })
}
