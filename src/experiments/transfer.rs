//! The transfer tables: adversarial (or noisy) examples made for one model, fed to others.

use super::NamedModel;
use super::sample::AdversarialSet;
use crate::classifier::ClassifierExt;
use crate::error::Result;

/// Rows = sources of examples, columns = evaluated models, entries = share of the examples
/// each model misclassifies (NaN for an empty set).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64::vec"))]
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

/// [`transfer_table`] measured the way the paper's noise rows appear to be: for each model,
/// only the examples whose *original* that model classifies correctly count, and the entry
/// is the share of those the model misclassifies (so a model's own clean errors do not
/// enter). Every source gets the suffix `" (originally correct)"`; `counts` holds the
/// number of examples of each row (the per-model denominators can be smaller).
///
/// # Examples
///
/// ```
/// use intriguing::experiments::{gaussian_noise_set, transfer_table_on_correct, NamedModel};
/// use intriguing::models::{Activation, Dense, Mlp};
/// use ndarray::{array, Array2};
/// // Class 1 iff x0 > 0.5: the model gets the first image (x0 = 0.2, label 1) wrong.
/// let w = array![[-1.0, 0.0], [1.0, 0.0]];
/// let m = Mlp::new(vec![Dense::new(w, array![0.5, -0.5], Activation::Identity)?])?;
/// let x = array![[0.2, 0.0], [0.9, 0.0], [0.1, 0.0]];
/// let noise = gaussian_noise_set(x.view(), &[1, 1, 0], 0.0, 0)?; // σ = 0: the originals
/// let t = transfer_table_on_correct(&[noise], &[NamedModel { name: "m", model: &m }])?;
/// assert_eq!(t.rates[0][0], 0.0); // the wrong original is left out
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn transfer_table_on_correct(
    sets: &[AdversarialSet],
    models: &[NamedModel<'_>],
) -> Result<TransferTable> {
    let mut rates = Vec::with_capacity(sets.len());
    for s in sets {
        let mut row = Vec::with_capacity(models.len());
        for m in models {
            if s.is_empty() {
                row.push(f64::NAN);
                continue;
            }
            let clean = m.model.predict_batch(s.originals.view())?;
            let pred = m.model.predict_batch(s.inputs.view())?;
            let (mut n, mut wrong) = (0usize, 0usize);
            for ((c, p), l) in clean.iter().zip(&pred).zip(&s.labels) {
                if c == l {
                    n += 1;
                    wrong += usize::from(p != l);
                }
            }
            row.push(if n == 0 {
                f64::NAN
            } else {
                wrong as f64 / n as f64
            });
        }
        rates.push(row);
    }
    Ok(TransferTable {
        sources: sets
            .iter()
            .map(|s| format!("{} (originally correct)", s.source))
            .collect(),
        models: models.iter().map(|m| m.name.to_string()).collect(),
        rates,
        counts: sets.iter().map(AdversarialSet::len).collect(),
        mean_rms: sets.iter().map(AdversarialSet::mean_rms).collect(),
    })
}
