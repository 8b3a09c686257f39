//! Robust accuracy curves: accuracy(ε) from minimal distortions (exact in ε, every ε at once)
//! and from ε-bounded attacks (one attack run per ε).

use super::gradient::{FgsmConfig, PgdConfig, fgsm, pgd};
use super::rows::{Norm, RowResult};
use crate::classifier::Classifier;
use crate::error::{Error, Result};
use ndarray::ArrayView2;

/// The minimal distortions of a data set, one per row, for robust accuracy at any ε.
///
/// A row is robust at ε when its minimal adversarial distortion is **larger** than ε: at
/// `‖r‖ = ε` the adversarial exists within the ε-ball. A misclassified row has distortion 0
/// (never robust); a row for which the attack found nothing (`None`) counts as robust at every
/// ε, so the curve is the robust accuracy *against that attack* — an upper bound on the true
/// robust accuracy, exact in ε.
///
/// # Examples
///
/// ```
/// use intriguing::attack::MinimalDistortions;
/// let d = MinimalDistortions::new(&[Some(0.0), Some(0.5), Some(1.0), None])?;
/// assert_eq!(d.accuracy(0.0), 0.75);   // the misclassified row
/// assert_eq!(d.accuracy(0.5), 0.5);    // ‖r‖ = ε is not robust
/// assert_eq!(d.accuracy(0.99), 0.5);
/// assert_eq!(d.accuracy(10.0), 0.25);  // the row without an adversarial
/// assert_eq!(d.curve(&[0.0, 0.5])?, vec![0.75, 0.5]);
/// # Ok::<(), intriguing::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "MinimalDistortionsRepr")
)]
pub struct MinimalDistortions {
    sorted: Vec<f64>,
    rows: usize,
}

/// The fields of a serialised [`MinimalDistortions`], checked by [`MinimalDistortions::new`]
/// on the way in.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MinimalDistortionsRepr {
    sorted: Vec<f64>,
    rows: usize,
}

#[cfg(feature = "serde")]
impl TryFrom<MinimalDistortionsRepr> for MinimalDistortions {
    type Error = Error;
    fn try_from(r: MinimalDistortionsRepr) -> Result<Self> {
        if r.sorted.len() > r.rows {
            return Err(Error::InvalidConfig(format!(
                "{} distortions for {} rows",
                r.sorted.len(),
                r.rows
            )));
        }
        let mut all: Vec<Option<f64>> = r.sorted.into_iter().map(Some).collect();
        all.resize(r.rows, None);
        Self::new(&all)
    }
}

impl MinimalDistortions {
    /// From one distortion per row (`None`: no adversarial found). Errors on an empty list and
    /// on NaN, infinite or negative distortions.
    pub fn new(distortions: &[Option<f64>]) -> Result<Self> {
        if distortions.is_empty() {
            return Err(Error::InvalidConfig(
                "robust accuracy of an empty data set".into(),
            ));
        }
        let mut sorted = Vec::with_capacity(distortions.len());
        for (index, d) in distortions.iter().enumerate() {
            if let Some(d) = *d {
                if !(d.is_finite() && d >= 0.0) {
                    return Err(Error::NonFinite {
                        context: format!("minimal distortion {d} (must be finite and >= 0)"),
                        index,
                    });
                }
                sorted.push(d);
            }
        }
        sorted.sort_by(f64::total_cmp);
        Ok(MinimalDistortions {
            sorted,
            rows: distortions.len(),
        })
    }

    /// From the results of a minimal-perturbation attack such as
    /// [`deepfool`](super::deepfool), measured in `norm`.
    pub fn from_rows(rows: &[RowResult], norm: Norm) -> Result<Self> {
        let d: Vec<Option<f64>> = rows.iter().map(|r| r.distortion(norm)).collect();
        Self::new(&d)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when there are no rows (never: [`new`](Self::new) refuses an empty list).
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The fraction of rows whose minimal distortion is `> eps` (or that have none).
    pub fn accuracy(&self, eps: f64) -> f64 {
        let not_robust = self.sorted.partition_point(|&d| d <= eps);
        (self.rows - not_robust) as f64 / self.rows as f64
    }

    /// [`accuracy`](Self::accuracy) at every ε of a grid (each finite and `≥ 0`).
    pub fn curve(&self, eps: &[f64]) -> Result<Vec<f64>> {
        check_grid(eps)?;
        Ok(eps.iter().map(|&e| self.accuracy(e)).collect())
    }

    /// The sorted finite distortions.
    pub fn sorted(&self) -> &[f64] {
        &self.sorted
    }
}

fn check_grid(eps: &[f64]) -> Result<()> {
    for (index, &e) in eps.iter().enumerate() {
        if !(e.is_finite() && e >= 0.0) {
            return Err(Error::parameter(
                "epsilon grid value",
                format!("{e} (at index {index})"),
                "finite and >= 0",
            ));
        }
    }
    Ok(())
}

/// An ε-bounded attack for [`bounded_accuracy_curve`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum BoundedAttack {
    /// [`fgsm`](super::fgsm).
    Fgsm(FgsmConfig),
    /// [`pgd`](super::pgd).
    Pgd(PgdConfig),
}

impl BoundedAttack {
    /// Runs the attack at one ε: one result per row.
    pub fn run<C: Classifier + ?Sized>(
        &self,
        model: &C,
        inputs: ArrayView2<'_, f64>,
        labels: &[usize],
        eps: f64,
        threads: usize,
    ) -> Result<Vec<Result<RowResult>>> {
        match self {
            BoundedAttack::Fgsm(c) => fgsm(model, inputs, labels, eps, c, threads),
            BoundedAttack::Pgd(c) => pgd(model, inputs, labels, eps, c, threads),
        }
    }
}

/// Robust accuracy against an ε-bounded attack at every ε of a grid: the fraction of rows for
/// which the attack found no verified adversarial within ε (a misclassified row is never
/// robust). One attack run per ε. A row whose attack returned `Err` makes the whole curve an
/// `Err` (that row's error), since its robustness is unknown.
///
/// # Examples
///
/// ```
/// use intriguing::attack::{bounded_accuracy_curve, BoundedAttack, FgsmConfig};
/// # use intriguing::classifier::{Classifier, LossSeed};
/// # use intriguing::Result;
/// # use ndarray::{array, Array2, ArrayView2, ArrayViewMut2};
/// # struct Linear(Array2<f64>);
/// # impl Classifier for Linear {
/// #     fn input_dim(&self) -> usize { self.0.ncols() }
/// #     fn num_classes(&self) -> usize { self.0.nrows() }
/// #     fn logits_into(&self, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) -> Result<()> {
/// #         out.assign(&x.dot(&self.0.t())); Ok(())
/// #     }
/// #     fn loss_gradient_into(&self, x: ArrayView2<f64>, seed: LossSeed<'_>,
/// #                           mut grad: ArrayViewMut2<f64>) -> Result<f64> {
/// #         let z = x.dot(&self.0.t());
/// #         let mut dz = Array2::zeros(z.raw_dim());
/// #         let loss = seed(z.view(), dz.view_mut());
/// #         grad.assign(&dz.dot(&self.0)); Ok(loss)
/// #     }
/// # }
/// let model = Linear(array![[1.0, -1.0], [-1.0, 1.0]]); // class 1 iff x₁ > x₀
/// // L∞ distances to the boundary x₀ = x₁: 0.05 and 0.4.
/// let inputs = array![[0.6, 0.5], [0.9, 0.1]];
/// let acc = bounded_accuracy_curve(&model, inputs.view(), &[0, 0],
///     &BoundedAttack::Fgsm(FgsmConfig::default()), &[0.0, 0.1, 0.5], 1)?;
/// assert_eq!(acc, vec![1.0, 0.5, 0.0]);
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn bounded_accuracy_curve<C: Classifier + ?Sized>(
    model: &C,
    inputs: ArrayView2<'_, f64>,
    labels: &[usize],
    attack: &BoundedAttack,
    eps: &[f64],
    threads: usize,
) -> Result<Vec<f64>> {
    check_grid(eps)?;
    if inputs.nrows() == 0 {
        return Err(Error::InvalidConfig(
            "robust accuracy of an empty data set".into(),
        ));
    }
    let mut acc = Vec::with_capacity(eps.len());
    for &e in eps {
        let res = attack.run(model, inputs, labels, e, threads)?;
        let mut robust = 0usize;
        for r in res {
            if !r?.success() {
                robust += 1;
            }
        }
        acc.push(robust as f64 / inputs.nrows() as f64);
    }
    Ok(acc)
}
