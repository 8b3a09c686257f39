//! Units versus random directions of a representation (paper §3).
//!
//! The paper observes that the inputs maximising a single hidden unit `⟨φ(x), e_i⟩` look as
//! semantically coherent as those maximising a random direction `⟨φ(x), v⟩`. This module
//! finds those inputs and puts a number on "coherent": the *label purity* of the top-k
//! inputs (the fraction sharing the most common label), averaged over many units and many
//! random directions.

use super::spectral::random_unit_vector;
use crate::error::{Error, Result, check_finite};
use ndarray::{Array1, ArrayView1, ArrayView2};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// A direction in a representation space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Direction {
    /// The natural basis vector `e_i` (one unit).
    Unit(usize),
    /// A random unit vector (normalised standard Gaussian) from a seed.
    Random {
        /// The seed.
        seed: u64,
    },
}

impl Direction {
    /// The direction as a unit vector of length `dim`.
    pub fn vector(&self, dim: usize) -> Result<Array1<f64>> {
        if dim == 0 {
            return Err(Error::InvalidConfig(
                "direction in a 0-dimensional space".into(),
            ));
        }
        let mut v = Array1::zeros(dim);
        match *self {
            Direction::Unit(i) => {
                if i >= dim {
                    return Err(Error::InvalidConfig(format!(
                        "unit {i} out of range for a {dim}-unit layer"
                    )));
                }
                v[i] = 1.0;
            }
            Direction::Random { seed } => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                random_unit_vector(v.as_slice_mut().expect("contiguous"), &mut rng);
            }
        }
        Ok(v)
    }
}

/// Indices of the `k` rows of `representation` (`[n, units]`, e.g. a hidden layer's
/// activations on a data set) with the largest projection `⟨φ(x), direction⟩`, best first
/// (ties: lower index first).
///
/// # Examples
///
/// ```
/// use intriguing::analysis::top_activating;
/// use ndarray::array;
/// let phi = array![[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]];
/// assert_eq!(top_activating(phi.view(), array![1.0, 0.0].view(), 2)?, vec![1, 2]);
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn top_activating(
    representation: ArrayView2<'_, f64>,
    direction: ArrayView1<'_, f64>,
    k: usize,
) -> Result<Vec<usize>> {
    if direction.len() != representation.ncols() {
        return Err(Error::shape(
            "direction",
            representation.ncols(),
            direction.len(),
        ));
    }
    if k == 0 || k > representation.nrows() {
        return Err(Error::InvalidConfig(format!(
            "top-k with k = {k} on {} inputs",
            representation.nrows()
        )));
    }
    check_finite(direction.iter(), "direction")?;
    check_finite(representation.iter(), "representation")?;
    let scores = representation.dot(&direction);
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    idx.truncate(k);
    Ok(idx)
}

/// Fraction of `indices` whose label is the most common one among them.
pub fn label_purity(indices: &[usize], labels: &[usize]) -> Result<f64> {
    if indices.is_empty() {
        return Err(Error::InvalidConfig("label purity of an empty set".into()));
    }
    let mut counts = std::collections::HashMap::new();
    for &i in indices {
        let l = *labels
            .get(i)
            .ok_or_else(|| Error::shape("labels", format!("> {i} entries"), labels.len()))?;
        *counts.entry(l).or_insert(0usize) += 1;
    }
    let best = counts.values().copied().max().unwrap_or(0);
    Ok(best as f64 / indices.len() as f64)
}

/// Mean, standard deviation and values of purities over a set of directions.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PurityStats {
    /// The mean purity.
    pub mean: f64,
    /// The sample standard deviation (0 for one direction).
    pub std: f64,
    /// The purity of each direction.
    pub values: Vec<f64>,
}

impl PurityStats {
    fn from_values(values: Vec<f64>) -> Self {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = if values.len() > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Self {
            mean,
            std: var.sqrt(),
            values,
        }
    }
}

/// Units and random directions side by side (see [`purity_comparison`]).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PurityComparison {
    /// The `k` of top-k.
    pub k: usize,
    /// The units used (constant units are skipped: their top-k is arbitrary).
    pub units: Vec<usize>,
    /// Purity over the units.
    pub unit_purity: PurityStats,
    /// Purity over the random directions.
    pub random_purity: PurityStats,
    /// The purity expected by chance: the frequency of the most common label in the data.
    pub chance: f64,
}

/// Label purity of the top-`k` inputs for `n_units` units (a seeded sample of the
/// non-constant units; all of them if there are fewer) and for `n_random` random directions
/// (seeds derived from `seed`), on a representation `[n, units]` with `labels`.
///
/// # Examples
///
/// ```
/// use intriguing::analysis::purity_comparison;
/// use ndarray::array;
/// // Unit 0 separates the labels perfectly; unit 1 is noise.
/// let phi = array![[1.0, 0.3], [0.9, 0.1], [0.0, 0.2], [0.1, 0.4]];
/// let cmp = purity_comparison(phi.view(), &[1, 1, 0, 0], 2, 2, 4, 0)?;
/// assert_eq!(cmp.unit_purity.values[0], 1.0);
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn purity_comparison(
    representation: ArrayView2<'_, f64>,
    labels: &[usize],
    k: usize,
    n_units: usize,
    n_random: usize,
    seed: u64,
) -> Result<PurityComparison> {
    if labels.len() != representation.nrows() {
        return Err(Error::shape("labels", representation.nrows(), labels.len()));
    }
    if representation.nrows() == 0 || representation.ncols() == 0 {
        return Err(Error::InvalidConfig(format!(
            "purity_comparison on an empty representation {:?}",
            representation.shape()
        )));
    }
    if n_units == 0 || n_random == 0 {
        return Err(Error::InvalidConfig(
            "purity_comparison needs at least one unit and one random direction".into(),
        ));
    }
    check_finite(representation.iter(), "representation")?;
    let dim = representation.ncols();
    let mut candidates: Vec<usize> = (0..dim)
        .filter(|&i| {
            let c = representation.column(i);
            let first = c[0];
            c.iter().any(|&v| v != first)
        })
        .collect();
    if candidates.is_empty() {
        return Err(Error::InvalidConfig(
            "every unit is constant on the data".into(),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    candidates.shuffle(&mut rng);
    candidates.truncate(n_units);
    candidates.sort_unstable();
    let mut unit_values = Vec::with_capacity(candidates.len());
    for &u in &candidates {
        let v = Direction::Unit(u).vector(dim)?;
        unit_values.push(label_purity(
            &top_activating(representation, v.view(), k)?,
            labels,
        )?);
    }
    let mut random_values = Vec::with_capacity(n_random);
    for r in 0..n_random {
        let v = Direction::Random {
            seed: seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(r as u64 + 1),
        }
        .vector(dim)?;
        random_values.push(label_purity(
            &top_activating(representation, v.view(), k)?,
            labels,
        )?);
    }
    let mut counts = std::collections::HashMap::new();
    for &l in labels {
        *counts.entry(l).or_insert(0usize) += 1;
    }
    let chance = counts.values().copied().max().unwrap_or(0) as f64 / labels.len().max(1) as f64;
    Ok(PurityComparison {
        k,
        units: candidates,
        unit_purity: PurityStats::from_values(unit_values),
        random_purity: PurityStats::from_values(random_values),
        chance,
    })
}
