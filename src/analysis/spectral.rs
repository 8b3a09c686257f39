//! Operator norms (largest singular values) by power iteration on the Gram operator `AᵀA`,
//! and by exact SVD under the `linalg` feature.

use crate::error::{Error, Result};
use crate::validate;
use ndarray::{Array1, ArrayView1, ArrayView2, ArrayViewMut1};
use rand::SeedableRng;
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
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "PowerIterationConfigRepr")
)]
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

/// The fields of a serialised [`PowerIterationConfig`], checked by its setters on the way in.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PowerIterationConfigRepr {
    tol: f64,
    residual_tol: f64,
    max_iterations: usize,
    seed: u64,
}

#[cfg(feature = "serde")]
impl TryFrom<PowerIterationConfigRepr> for PowerIterationConfig {
    type Error = crate::Error;
    fn try_from(r: PowerIterationConfigRepr) -> Result<Self> {
        Ok(PowerIterationConfig::new()
            .with_tol(r.tol)?
            .with_residual_tol(r.residual_tol)?
            .with_max_iterations(r.max_iterations)?
            .with_seed(r.seed))
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
        self.tol = validate::in_open_unit_interval("power iteration tol", tol)?;
        Ok(self)
    }

    /// Residual `‖Gv − λv‖ / λ` at which the iterate counts as an eigenvector (in `(0, 1)`).
    pub fn with_residual_tol(mut self, residual_tol: f64) -> Result<Self> {
        self.residual_tol =
            validate::in_open_unit_interval("power iteration residual_tol", residual_tol)?;
        Ok(self)
    }

    /// Iteration cap (at least 1). Reaching it is not an error: the result says
    /// `converged: false`.
    pub fn with_max_iterations(mut self, max_iterations: usize) -> Result<Self> {
        self.max_iterations =
            validate::at_least_one("power iteration max_iterations", max_iterations)?;
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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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

pub(crate) use crate::models::init::fill_gaussian;

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
            // Flat index of the first non-finite output entry (0 when only the products
            // overflowed); the iteration goes into the context.
            let index = w.iter().position(|x| !x.is_finite()).unwrap_or(0);
            return Err(Error::NonFinite {
                context: format!("power iteration operator output (iteration {k})"),
                index,
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
    // Scale by the power of two nearest below the largest magnitude, so that the Gram
    // products neither overflow (1e200² = ∞) nor underflow (1e-200² = 0): σ₁(W) = s·σ₁(W/s).
    // Scaling by a power of two is exact and commutes with every operation of the iteration
    // (products, sums, relative tests, the square root of λ/s²), so ordinary matrices get
    // bit-identical results and no copy (s = 1 for max-abs in [1, 2)).
    let max_abs = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if max_abs == 0.0 {
        return Ok(SpectralNorm {
            value: 0.0,
            iterations: 0,
            residual: 0.0,
            converged: true,
            vector: Array1::zeros(w.nrows().min(w.ncols())),
        });
    }
    // s = 2^e as two normal factors (2^e alone underflows to 0 for subnormal entries).
    let e = max_abs.log2().floor() as i32;
    let (f1, f2) = (2f64.powi(e / 2), 2f64.powi(e - e / 2));
    let scaled;
    let w = if e == 0 {
        w
    } else {
        scaled = w.mapv(|v| v / f1 / f2);
        scaled.view()
    };
    // Work on the smaller Gram matrix side; σ₁ is the same.
    let a = if w.ncols() <= w.nrows() { w } else { w.t() };
    let mut tmp = Array1::<f64>::zeros(a.nrows());
    let mut r = power_iteration(
        a.ncols(),
        |v, mut out| {
            ndarray::linalg::general_mat_vec_mul(1.0, &a, &v, 0.0, &mut tmp);
            ndarray::linalg::general_mat_vec_mul(1.0, &a.t(), &tmp, 0.0, &mut out);
            Ok(())
        },
        cfg,
    )?;
    r.value = r.value * f1 * f2;
    Ok(r)
}

/// Largest singular value of `w` by LAPACK's SVD (feature `linalg`).
#[cfg(feature = "linalg")]
#[cfg_attr(docsrs, doc(cfg(feature = "linalg")))]
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

/// Largest eigenvalue of the symmetric tridiagonal matrix with diagonal `a` and
/// off-diagonal `b` (`b.len() == a.len() − 1`), by Sturm-sequence bisection.
fn tridiagonal_max_eigenvalue(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for i in 0..n {
        let r = if i > 0 { b[i - 1].abs() } else { 0.0 } + if i + 1 < n { b[i].abs() } else { 0.0 };
        lo = lo.min(a[i] - r);
        hi = hi.max(a[i] + r);
    }
    let scale = lo.abs().max(hi.abs()).max(f64::MIN_POSITIVE);
    // Number of eigenvalues < x.
    let count_below = |x: f64| {
        let mut c = 0;
        let mut d = 1.0;
        for i in 0..n {
            let off = if i > 0 { b[i - 1] * b[i - 1] / d } else { 0.0 };
            d = a[i] - x - off;
            if d == 0.0 {
                d = -f64::EPSILON * scale;
            }
            if d < 0.0 {
                c += 1;
            }
        }
        c
    };
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi || hi - lo <= 4.0 * f64::EPSILON * scale {
            break;
        }
        if count_below(mid) == n {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// A unit eigenvector of the tridiagonal `(a, b)` for the eigenvalue `theta`, by two steps
/// of inverse iteration with a slightly shifted `theta`.
fn tridiagonal_eigenvector(a: &[f64], b: &[f64], theta: f64, out: &mut Vec<f64>) {
    let n = a.len();
    let scale = a
        .iter()
        .chain(b)
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    let shift = theta + 1e-10 * scale;
    out.clear();
    out.resize(n, 1.0);
    let mut c = vec![0.0; n];
    let mut d = vec![0.0; n];
    for _ in 0..3 {
        // Thomas algorithm for (T − shift·I) x = out.
        let mut denom = a[0] - shift;
        if denom == 0.0 {
            denom = f64::EPSILON * scale;
        }
        c[0] = if n > 1 { b[0] / denom } else { 0.0 };
        d[0] = out[0] / denom;
        for i in 1..n {
            let mut m = a[i] - shift - b[i - 1] * c[i - 1];
            if m == 0.0 {
                m = f64::EPSILON * scale;
            }
            c[i] = if i + 1 < n { b[i] / m } else { 0.0 };
            d[i] = (out[i] - b[i - 1] * d[i - 1]) / m;
        }
        out[n - 1] = d[n - 1];
        for i in (0..n - 1).rev() {
            out[i] = d[i] - c[i] * out[i + 1];
        }
        let norm = out.iter().map(|v| v * v).sum::<f64>().sqrt();
        if !(norm.is_finite() && norm > 0.0) {
            out.iter_mut().for_each(|v| *v = 0.0);
            out[n - 1] = 1.0;
            return;
        }
        out.iter_mut().for_each(|v| *v /= norm);
    }
}

/// Restarted Lanczos iteration (full reorthogonalisation, Krylov spaces of up to 64
/// vectors, explicit restart from the Ritz vector) on a symmetric positive semi-definite
/// operator given like [`power_iteration`]'s, with the same two-part stopping rule on the
/// Ritz value and its residual `‖G y − θ y‖` (computed explicitly when the Ritz value has
/// settled). `cfg.max_iterations` caps the operator applications.
///
/// The Ritz value is a Rayleigh quotient, so it approaches `λ_max` from below like power
/// iteration, but far faster when the top of the spectrum is clustered (convergence depends
/// on the square root of the relative gap), e.g. for convolutions.
///
/// # Examples
///
/// ```
/// use intriguing::analysis::{lanczos, PowerIterationConfig};
/// let d: Vec<f64> = (0..100).map(|i| 1.0 - i as f64 * 1e-4).collect(); // clustered
/// let r = lanczos(100, |v, mut out| {
///     for i in 0..100 { out[i] = d[i] * v[i]; }
///     Ok(())
/// }, &PowerIterationConfig::default())?;
/// assert!(r.converged && (r.value - 1.0).abs() < 1e-10);
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn lanczos<F>(dim: usize, mut gram: F, cfg: &PowerIterationConfig) -> Result<SpectralNorm>
where
    F: FnMut(ArrayView1<'_, f64>, ArrayViewMut1<'_, f64>) -> Result<()>,
{
    if dim == 0 {
        return Err(Error::InvalidConfig(
            "Lanczos on a zero-dimensional operator".into(),
        ));
    }
    const KRYLOV: usize = 64;
    let m_max = KRYLOV.min(dim);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut start = Array1::<f64>::zeros(dim);
    random_unit_vector(start.as_slice_mut().expect("contiguous"), &mut rng);
    let mut q = ndarray::Array2::<f64>::zeros((m_max, dim));
    let mut w = Array1::<f64>::zeros(dim);
    let mut y = Array1::<f64>::zeros(dim);
    let mut gy = Array1::<f64>::zeros(dim);
    let (mut alpha, mut beta) = (Vec::with_capacity(m_max), Vec::with_capacity(m_max));
    let mut s = Vec::with_capacity(m_max);
    let mut applications = 0usize;
    let mut theta_prev = f64::NAN;
    let nonfinite = |k| Error::NonFinite {
        context: "Lanczos (operator output)".into(),
        index: k,
    };
    loop {
        q.row_mut(0).assign(&start);
        alpha.clear();
        beta.clear();
        let mut j = 0;
        loop {
            gram(q.row(j), w.view_mut())?;
            applications += 1;
            let a = q.row(j).dot(&w);
            if !a.is_finite() || w.iter().any(|v| !v.is_finite()) {
                return Err(nonfinite(applications));
            }
            alpha.push(a);
            // Full reorthogonalisation (twice: "twice is enough").
            for _ in 0..2 {
                for i in 0..=j {
                    let c = q.row(i).dot(&w);
                    w.scaled_add(-c, &q.row(i));
                }
            }
            let b = w.dot(&w).sqrt();
            let mut theta = tridiagonal_max_eigenvalue(&alpha, &beta);
            let settled = (theta - theta_prev).abs() <= cfg.tol * theta.abs();
            theta_prev = theta;
            let exhausted = j + 1 == m_max || b <= 1e-14 * theta.abs().max(f64::MIN_POSITIVE);
            if settled || exhausted || applications >= cfg.max_iterations {
                // Ritz vector y = Qᵀ s and its explicit residual.
                tridiagonal_eigenvector(&alpha, &beta, theta, &mut s);
                y.fill(0.0);
                for (i, &si) in s.iter().enumerate() {
                    y.scaled_add(si, &q.row(i));
                }
                let yn = y.dot(&y).sqrt();
                y.mapv_inplace(|v| v / yn);
                gram(y.view(), gy.view_mut())?;
                applications += 1;
                let rq = y.dot(&gy);
                if !rq.is_finite() {
                    return Err(nonfinite(applications));
                }
                theta = rq;
                let mut residual = y
                    .iter()
                    .zip(gy.iter())
                    .map(|(a, b)| (b - rq * a).powi(2))
                    .sum::<f64>()
                    .sqrt()
                    / rq.abs().max(f64::MIN_POSITIVE);
                if theta == 0.0 && gy.iter().all(|&v| v == 0.0) {
                    residual = 0.0;
                }
                if (settled && residual <= cfg.residual_tol) || theta == 0.0 {
                    return Ok(SpectralNorm {
                        value: theta.max(0.0).sqrt(),
                        iterations: applications,
                        residual,
                        converged: true,
                        vector: y,
                    });
                }
                if applications >= cfg.max_iterations {
                    return Ok(SpectralNorm {
                        value: theta.max(0.0).sqrt(),
                        iterations: applications,
                        residual,
                        converged: false,
                        vector: y,
                    });
                }
                if exhausted {
                    break; // restart from the Ritz vector
                }
            }
            beta.push(b);
            w.mapv_inplace(|v| v / b);
            q.row_mut(j + 1).assign(&w);
            j += 1;
        }
        start.assign(&y);
    }
}
