//! Data splits, seeded samples, adversarial sets, Gaussian noise and magnified examples.

use super::Scale;
use super::recipes::TrainingSet;
use crate::data::{Mnist, subset};
use crate::error::{Error, Result, check_finite};
use crate::validate;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Training examples per model in quick mode (a seeded subset of the 60 000).
pub(crate) const QUICK_TRAIN: usize = 10_000;

/// A seeded permutation of `0..n`.
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    v.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    v
}

/// The paper's split of the training set into two disjoint halves P1 and P2 (`n / 2` and
/// `n - n / 2` indices), from a permutation of `0..n` seeded by `seed`.
///
/// # Examples
///
/// ```
/// use intriguing::experiments::paper_split;
/// let (p1, p2) = paper_split(60_000, 0);
/// assert_eq!((p1.len(), p2.len()), (30_000, 30_000));
/// let mut all: Vec<usize> = p1.iter().chain(&p2).copied().collect();
/// all.sort_unstable();
/// assert_eq!(all, (0..60_000).collect::<Vec<_>>()); // disjoint, and together everything
/// ```
pub fn paper_split(n: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let perm = permutation(n, seed ^ 0x5031_5032);
    let (a, b) = perm.split_at(n / 2);
    (a.to_vec(), b.to_vec())
}

/// `k` distinct indices drawn from `0..n` (a prefix of a permutation seeded by `seed`). Errors
/// if `k > n`.
pub fn seeded_sample(n: usize, k: usize, seed: u64) -> Result<Vec<usize>> {
    if k > n {
        return Err(Error::InvalidConfig(format!(
            "cannot sample {k} of {n} examples"
        )));
    }
    let mut p = permutation(n, seed);
    p.truncate(k);
    Ok(p)
}

/// MNIST with the training subsets of a run: the whole training set (quick mode: a seeded
/// subset of 10 000), and the halves P1 and P2 (quick mode: 5 000 of each).
#[derive(Clone, Debug)]
pub struct ExperimentData {
    /// The data set.
    pub mnist: Mnist,
    /// Quick or full.
    pub scale: Scale,
    /// Seed of the subsets.
    pub seed: u64,
    full: Vec<usize>,
    p1: Vec<usize>,
    p2: Vec<usize>,
}

impl ExperimentData {
    /// The subsets of `mnist` for a run at `scale` with `seed`.
    pub fn new(mnist: Mnist, scale: Scale, seed: u64) -> Result<Self> {
        let n = mnist.train_labels.len();
        if n < 2 {
            return Err(Error::InvalidConfig(
                "need at least 2 training examples".into(),
            ));
        }
        let (mut p1, mut p2) = paper_split(n, seed);
        let mut full: Vec<usize> = (0..n).collect();
        if scale == Scale::Quick {
            let k = QUICK_TRAIN.min(n);
            full = seeded_sample(n, k, seed ^ 0x0051_5549)?;
            full.sort_unstable();
            p1.truncate(k / 2);
            p2.truncate(k / 2);
        }
        Ok(ExperimentData {
            mnist,
            scale,
            seed,
            full,
            p1,
            p2,
        })
    }

    /// Indices (rows of `mnist.train_images`) of a training set.
    pub fn indices(&self, set: TrainingSet) -> &[usize] {
        match set {
            TrainingSet::Full => &self.full,
            TrainingSet::P1 => &self.p1,
            TrainingSet::P2 => &self.p2,
        }
    }

    /// A copy of a training set's images and labels.
    pub fn training_set(&self, set: TrainingSet) -> Result<(Array2<f64>, Vec<usize>)> {
        subset(
            self.mnist.train_images.view(),
            &self.mnist.train_labels,
            self.indices(set),
        )
    }
}

/// Examples fed to models in the transfer tables: adversarial examples made on one model
/// (or noisy / magnified versions of them), with the true labels of their originals.
#[derive(Clone, Debug, PartialEq)]
pub struct AdversarialSet {
    /// Where the examples come from, e.g. `"FC100-100-10"` or `"Gaussian noise σ=0.1"`.
    pub source: String,
    /// The distorted inputs `[n, 784]`.
    pub inputs: Array2<f64>,
    /// The clean originals `[n, 784]`.
    pub originals: Array2<f64>,
    /// True labels of the originals.
    pub labels: Vec<usize>,
    /// Row of each example in the data set it came from (training or test images).
    pub indices: Vec<usize>,
    /// RMS distortion `sqrt(Σ r_i² / n)` of each example.
    pub rms: Vec<f64>,
    /// Examples whose attack failed: (data-set row, reason). Not in `inputs`.
    pub failures: Vec<(usize, String)>,
    /// Examples not attacked because the source model already misclassified them.
    pub skipped_misclassified: usize,
}

/// `sqrt(Σ (a_i − b_i)² / n)`.
pub(crate) fn rms_between(a: ArrayView1<'_, f64>, b: ArrayView1<'_, f64>) -> f64 {
    let n = a.len().max(1) as f64;
    (a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / n).sqrt()
}

impl AdversarialSet {
    /// Number of examples (successful ones).
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there is no example.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Mean RMS distortion (NaN when empty).
    pub fn mean_rms(&self) -> f64 {
        if self.rms.is_empty() {
            return f64::NAN;
        }
        self.rms.iter().sum::<f64>() / self.rms.len() as f64
    }

    /// Median RMS distortion (NaN when empty).
    pub fn median_rms(&self) -> f64 {
        median(&self.rms)
    }

    pub(crate) fn from_parts(
        source: String,
        originals: Array2<f64>,
        inputs: Array2<f64>,
        labels: Vec<usize>,
        indices: Vec<usize>,
    ) -> Self {
        let rms = originals
            .rows()
            .into_iter()
            .zip(inputs.rows())
            .map(|(a, b)| rms_between(a, b))
            .collect();
        AdversarialSet {
            source,
            inputs,
            originals,
            labels,
            indices,
            rms,
            failures: Vec::new(),
            skipped_misclassified: 0,
        }
    }
}

pub(crate) fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        0.5 * (s[m - 1] + s[m])
    }
}

/// The images plus Gaussian noise of standard deviation `stddev` (Box–Muller from
/// `ChaCha8Rng::seed_from_u64(seed)`), clipped to the pixel box `[0, 1]`; `rms` holds the
/// distortion actually applied (after clipping). The source is named
/// `"Gaussian noise σ=<stddev>"`.
pub fn gaussian_noise_set(
    images: ArrayView2<'_, f64>,
    labels: &[usize],
    stddev: f64,
    seed: u64,
) -> Result<AdversarialSet> {
    if labels.len() != images.nrows() {
        return Err(Error::shape("labels", images.nrows(), labels.len()));
    }
    validate::non_negative("noise stddev", stddev)?;
    check_finite(images.iter(), "images")?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut normal = move || {
        // Box–Muller; u1 in (0, 1].
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    };
    let noisy = images.mapv(|p| (p + stddev * normal()).clamp(0.0, 1.0));
    Ok(AdversarialSet::from_parts(
        format!("Gaussian noise σ={stddev}"),
        images.to_owned(),
        noisy,
        labels.to_vec(),
        (0..labels.len()).collect(),
    ))
}

/// The paper's "magnified" example `x + s·(x' − x)/‖x' − x‖`, clipped to `[0, 1]`.
///
/// The paper (Section 4.3) says this magnifies the distortion "from stddev 0.06 to 0.1", so
/// the norm is read as the per-pixel standard deviation of the distortion, the RMS
/// `sqrt(Σ r_i² / n)`: before clipping the result has RMS distortion exactly `s`. (With the
/// Euclidean norm, `s = 0.1` would *shrink* a typical MNIST distortion about 18-fold.)
/// Returns `x` unchanged when `x' = x`.
///
/// # Examples
///
/// ```
/// use intriguing::experiments::magnify;
/// use ndarray::array;
/// let x = array![0.5, 0.5, 0.5, 0.5];
/// let xa = array![0.52, 0.5, 0.5, 0.5];
/// let m = magnify(x.view(), xa.view(), 0.1)?;
/// // r = (0.02, 0, 0, 0) has RMS 0.01; scaled to RMS 0.1: (0.2, 0, 0, 0).
/// assert!((m[0] - 0.7).abs() < 1e-12 && m[1] == 0.5);
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn magnify(x: ArrayView1<'_, f64>, x_adv: ArrayView1<'_, f64>, s: f64) -> Result<Array1<f64>> {
    if x.len() != x_adv.len() {
        return Err(Error::shape("adversarial input", x.len(), x_adv.len()));
    }
    check_finite(x.iter().chain(x_adv.iter()), "magnify inputs")?;
    validate::non_negative("magnification", s)?;
    let rms = rms_between(x, x_adv);
    if rms == 0.0 {
        return Ok(x.to_owned());
    }
    Ok(ndarray::Zip::from(&x)
        .and(&x_adv)
        .map_collect(|&a, &b| (a + s * (b - a) / rms).clamp(0.0, 1.0)))
}

/// [`magnify`] applied to every example of a set; the source gets the suffix
/// `" magnified"`.
pub fn magnify_set(set: &AdversarialSet, s: f64) -> Result<AdversarialSet> {
    let mut out = Array2::zeros(set.inputs.raw_dim());
    for ((x, xa), mut o) in set
        .originals
        .rows()
        .into_iter()
        .zip(set.inputs.rows())
        .zip(out.rows_mut())
    {
        o.assign(&magnify(x, xa, s)?);
    }
    let mut m = AdversarialSet::from_parts(
        format!("{} magnified", set.source),
        set.originals.clone(),
        out,
        set.labels.clone(),
        set.indices.clone(),
    );
    m.failures = set.failures.clone();
    m.skipped_misclassified = set.skipped_misclassified;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn split_is_a_partition() {
        let (a, b) = paper_split(101, 3);
        let mut all: Vec<usize> = a.iter().chain(&b).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..101).collect::<Vec<_>>());
        assert_eq!(paper_split(101, 3), (a, b));
    }

    #[test]
    fn noise_has_the_requested_stddev_before_clipping() {
        let x = Array2::from_elem((50, 100), 0.5);
        let set = gaussian_noise_set(x.view(), &[0; 50], 0.1, 1).unwrap();
        // σ = 0.1 around 0.5: clipping almost never happens.
        assert!((set.mean_rms() - 0.1).abs() < 0.005, "{}", set.mean_rms());
        assert!(gaussian_noise_set(x.view(), &[0; 49], 0.1, 1).is_err());
    }

    #[test]
    fn magnify_sets_the_rms() {
        let x = array![0.5, 0.4, 0.3, 0.6];
        let xa = array![0.51, 0.38, 0.3, 0.6];
        let m = magnify(x.view(), xa.view(), 0.1).unwrap();
        assert!((rms_between(x.view(), m.view()) - 0.1).abs() < 1e-12);
        // Same direction.
        let d0 = &xa - &x;
        let d1 = &m - &x;
        let cos = d0.dot(&d1) / (d0.dot(&d0).sqrt() * d1.dot(&d1).sqrt());
        assert!((cos - 1.0).abs() < 1e-12);
        assert!(magnify(x.view(), array![0.0].view(), 0.1).is_err());
    }
}
