//! Operator norms (largest singular values) by power iteration on the Gram operator `AᵀA`,
//! and by exact SVD under the `linalg` feature.

use crate::error::{Error, Result};
use ndarray::{Array1, ArrayView1, ArrayView2, ArrayViewMut1};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Settings of [`power_iteration`] and [`spectral_norm`].
///
/// The iteration on the Gram operator `G = AᵀA` stops at the first iterate `v_k` (unit norm)
/// whose Rayleigh quotient `λ_k = ⟨v_k, G v_k⟩` satisfies BOTH
///
/// - `|λ_k − λ_{k−1}| ≤ tol · λ_k` (the estimate has stopped moving), and
/// - `‖G v_k − λ_k v_k‖ ≤ residual_tol · λ_k` (the iterate is an approximate eigenvector:
///   some eigenvalue of `G` lies within `‖r‖` of `λ_k`, and when that eigenvalue is the
///   largest one, the Rayleigh quotient is within `‖r‖² / gap` of it).
///
/// The first test alone can stop early on a plateau when the top two singular values are
/// close (convergence goes like `(σ₂/σ₁)^{2k}`); the second test makes such a stop need the
/// iterate to be an actual eigenvector. See `docs/analysis.md` for the argument.
#[derive(Debug, Clone, PartialEq)]
pub struct PowerIterationConfig {
    tol: f64,
    residual_tol: f64,
    max_iterations: usize,
    seed: u64,
}

impl Default for PowerIterationConfig {
    fn default() -> Self {
        Self {
            tol: 1e-13,
            residual_tol: 1e-7,
            max_iterations: 50_000,
            seed: 0x5eed,
        }
    }
}

impl PowerIterationConfig {
    /// The defaults: `tol = 1e-13`, `residual_tol = 1e-7`, `max_iterations = 50_000`,
    /// a fixed seed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Relative change of the Rayleigh quotient between consecutive iterations (in `(0, 1)`).
    pub fn with_tol(mut self, tol: f64) -> Result<Self> {
        if !(tol > 0.0 && tol < 1.0) {
            return Err(Error::InvalidConfig(format!(
                "power iteration tol must be in (0, 1), got {tol}"
            )));
        }
        self.tol = tol;
        Ok(self)
    }

    /// Residual `‖Gv − λv‖ / λ` at which the iterate counts as an eigenvector (in `(0, 1)`).
    pub fn with_residual_tol(mut self, residual_tol: f64) -> Result<Self> {
        if !(residual_tol > 0.0 && residual_tol < 1.0) {
            return Err(Error::InvalidConfig(format!(
                "power iteration residual_tol must be in (0, 1), got {residual_tol}"
            )));
        }
        self.residual_tol = residual_tol;
        Ok(self)
    }

    /// Iteration cap (at least 1). Reaching it is not an error: the result says
    /// `converged: false`.
    pub fn with_max_iterations(mut self, max_iterations: usize) -> Result<Self> {
        if max_iterations == 0 {
            return Err(Error::InvalidConfig(
                "power iteration max_iterations must be >= 1".into(),
            ));
        }
        self.max_iterations = max_iterations;
        Ok(self)
    }

    /// Seed of the random Gaussian start vector.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The relative Rayleigh-quotient change tolerance.
    pub fn tol(&self) -> f64 {
        self.tol
    }
    /// The relative residual tolerance.
    pub fn residual_tol(&self) -> f64 {
        self.residual_tol
    }
    /// The iteration cap.
    pub fn max_iterations(&self) -> usize {
        self.max_iterations
    }
    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

/// The result of a power iteration.
#[derive(Debug, Clone, PartialEq)]
pub struct SpectralNorm {
    /// The estimate of the largest singular value `σ₁ = sqrt(λ_max(AᵀA))`. A Rayleigh quotient
    /// never exceeds `λ_max`, so this is (up to rounding) a lower estimate that converges
    /// from below.
    pub value: f64,
    /// Iterations (Gram-operator applications) done.
    pub iterations: usize,
    /// The final relative residual `‖Gv − λv‖ / λ`.
    pub residual: f64,
    /// Whether both stopping tests held before the iteration cap.
    pub converged: bool,
    /// The final unit vector `v` (approximate top right singular vector).
    pub vector: Array1<f64>,
}

/// Fills `v` with i.i.d. standard Gaussian samples (Box–Muller) from `rng`.
pub(crate) fn fill_gaussian(v: &mut [f64], rng: &mut ChaCha8Rng) {
    let mut i = 0;
    while i < v.len() {
        let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        v[i] = r * t.cos();
        if i + 1 < v.len() {
            v[i + 1] = r * t.sin();
        }
        i += 2;
    }
}

/// Fills `v` with a seeded standard Gaussian sample and normalises it.
pub(crate) fn random_unit_vector(v: &mut [f64], rng: &mut ChaCha8Rng) {
    fill_gaussian(v, rng);
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Power iteration on a symmetric positive semi-definite operator `G` of dimension `dim`
/// (usually a Gram operator `AᵀA`, given as a closure `gram(v, out)` writing `G v` into
/// `out`). Returns `sqrt(λ_max(G))`, i.e. the operator norm of `A`.
///
/// Use this for operators you never form, e.g. a convolution (`G = convᵀ ∘ conv`).
///
/// # Examples
///
/// ```
/// use intriguing::analysis::{power_iteration, PowerIterationConfig};
/// // G = diag(9, 4, 1): the operator norm of A = diag(3, 2, 1) is 3.
/// let d = [9.0, 4.0, 1.0];
/// let r = power_iteration(3, |v, mut out| {
///     for i in 0..3 { out[i] = d[i] * v[i]; }
///     Ok(())
/// }, &PowerIterationConfig::default())?;
/// assert!((r.value - 3.0).abs() < 1e-10 && r.converged);
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn power_iteration<F>(
    dim: usize,
    mut gram: F,
    cfg: &PowerIterationConfig,
) -> Result<SpectralNorm>
where
    F: FnMut(ArrayView1<'_, f64>, ArrayViewMut1<'_, f64>) -> Result<()>,
{
    if dim == 0 {
        return Err(Error::InvalidConfig(
            "power iteration on a zero-dimensional operator".into(),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut v = Array1::<f64>::zeros(dim);
    random_unit_vector(v.as_slice_mut().expect("contiguous"), &mut rng);
    let mut w = Array1::<f64>::zeros(dim);
    let mut lambda_prev = f64::NAN;
    let mut lambda = 0.0;
    let mut residual = f64::INFINITY;
    for k in 1..=cfg.max_iterations {
        gram(v.view(), w.view_mut())?;
        lambda = v.dot(&w);
        let wn2 = w.dot(&w);
        if !(lambda.is_finite() && wn2.is_finite()) {
            return Err(Error::NonFinite {
                context: "power iteration (operator output)".into(),
                index: k,
            });
        }
        if wn2 == 0.0 {
            // G v = 0 for a random start: G = 0 (with probability one).
            return Ok(SpectralNorm {
                value: 0.0,
                iterations: k,
                residual: 0.0,
                converged: true,
                vector: v,
            });
        }
        // ‖w − λv‖² = ‖w‖² − 2λ⟨v,w⟩ + λ² = ‖w‖² − λ² for unit v.
        let r2 = (wn2 - lambda * lambda).max(0.0);
        // That difference loses digits once r ≪ ‖w‖: recompute directly when near the test.
        let r = if r2.sqrt() <= 1e3 * cfg.residual_tol * lambda.abs() {
            v.iter()
                .zip(w.iter())
                .map(|(a, b)| (b - lambda * a).powi(2))
                .sum::<f64>()
                .sqrt()
        } else {
            r2.sqrt()
        };
        residual = r / lambda.abs().max(f64::MIN_POSITIVE);
        let settled = (lambda - lambda_prev).abs() <= cfg.tol * lambda.abs();
        if settled && residual <= cfg.residual_tol {
            return Ok(SpectralNorm {
                value: lambda.max(0.0).sqrt(),
                iterations: k,
                residual,
                converged: true,
                vector: v,
            });
        }
        lambda_prev = lambda;
        let wn = wn2.sqrt();
        v.zip_mut_with(&w, |a, b| *a = b / wn);
    }
    Ok(SpectralNorm {
        value: lambda.max(0.0).sqrt(),
        iterations: cfg.max_iterations,
        residual,
        converged: false,
        vector: v,
    })
}

/// Largest singular value of a dense matrix `w` (`[out, in]`) by power iteration on `WᵀW`
/// (or `WWᵀ`, whichever is smaller), without allocation inside the loop.
///
/// # Examples
///
/// ```
/// use intriguing::analysis::{spectral_norm, PowerIterationConfig};
/// use ndarray::array;
/// let w = array![[3.0, 0.0], [4.0, 0.0]]; // rank one, σ₁ = 5
/// let r = spectral_norm(w.view(), &PowerIterationConfig::default())?;
/// assert!((r.value - 5.0).abs() < 1e-12);
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn spectral_norm(w: ArrayView2<'_, f64>, cfg: &PowerIterationConfig) -> Result<SpectralNorm> {
    crate::error::check_finite(w.iter(), "spectral_norm matrix")?;
    if w.is_empty() {
        return Err(Error::shape(
            "spectral_norm matrix",
            "non-empty",
            format!("{:?}", w.shape()),
        ));
    }
    // Work on the smaller Gram matrix side; σ₁ is the same.
    let a = if w.ncols() <= w.nrows() { w } else { w.t() };
    let mut tmp = Array1::<f64>::zeros(a.nrows());
    power_iteration(
        a.ncols(),
        |v, mut out| {
            ndarray::linalg::general_mat_vec_mul(1.0, &a, &v, 0.0, &mut tmp);
            ndarray::linalg::general_mat_vec_mul(1.0, &a.t(), &tmp, 0.0, &mut out);
            Ok(())
        },
        cfg,
    )
}

/// Largest singular value of `w` by LAPACK's SVD (feature `linalg`).
#[cfg(feature = "linalg")]
pub fn spectral_norm_svd(w: ArrayView2<'_, f64>) -> Result<f64> {
    use ndarray_linalg::SVD;
    crate::error::check_finite(w.iter(), "spectral_norm_svd matrix")?;
    if w.is_empty() {
        return Err(Error::shape(
            "spectral_norm_svd matrix",
            "non-empty",
            format!("{:?}", w.shape()),
        ));
    }
    let (_, s, _) = w
        .to_owned()
        .svd(false, false)
        .map_err(|e| Error::Linalg(e.to_string()))?;
    Ok(s.iter().fold(0.0f64, |m, &x| m.max(x)))
}
