//! Weight initialisation: Glorot/Xavier uniform and (He-scaled) Gaussian fills, all drawn from a
//! seeded `ChaCha8Rng` so that a model is a pure function of its seed.

use crate::error::{Error, Result};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// The largest number of weights a constructor allocates for one tensor (2²⁸ ≈ 2.7e8 `f64`,
/// 2 GiB; the paper's largest layer has 3.9e5): larger products are rejected with a typed
/// error before any allocation.
pub const MAX_TENSOR_LEN: usize = 1 << 28;

/// The product of `dims`, or an [`Error::InvalidConfig`] naming `what` when it overflows or
/// exceeds [`MAX_TENSOR_LEN`].
pub(crate) fn checked_len(what: &str, dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_TENSOR_LEN)
        .ok_or_else(|| {
            Error::InvalidConfig(format!(
                "{what} of shape {dims:?} is too large (more than {MAX_TENSOR_LEN} entries)"
            ))
        })
}

/// Fills `v` with i.i.d. standard Gaussian samples (Box–Muller: each pair of uniforms gives two
/// samples) from `rng`.
pub fn fill_gaussian(v: &mut [f64], rng: &mut ChaCha8Rng) {
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

/// `len` He-normal weights `N(0, 2 / fan_in)` (for ReLU layers; He et al. 2015).
pub fn he_normal(len: usize, fan_in: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let mut w = vec![0.0; len];
    fill_gaussian(&mut w, rng);
    let std = (2.0 / fan_in.max(1) as f64).sqrt();
    w.iter_mut().for_each(|v| *v *= std);
    w
}

/// `len` Glorot/Xavier-uniform weights `U(−a, a)`, `a = √(6 / (fan_in + fan_out))` (Glorot &
/// Bengio 2010), drawn in order.
pub fn glorot_uniform(len: usize, fan_in: usize, fan_out: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
    (0..len).map(|_| rng.random_range(-a..a)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn gaussian_moments_and_glorot_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut v = vec![0.0; 20001];
        fill_gaussian(&mut v, &mut rng);
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        // Standard errors: 1/√n ≈ 0.007 for the mean, √(2/n) ≈ 0.01 for the variance.
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.04,
            "{mean} {var}"
        );
        let g = glorot_uniform(1000, 4, 2, &mut rng);
        assert!(g.iter().all(|w| w.abs() < 1.0) && g.iter().any(|w| w.abs() > 0.9));
        assert!(checked_len("w", &[usize::MAX, 2]).is_err());
        assert!(checked_len("w", &[1 << 20, 1 << 20]).is_err());
        assert_eq!(checked_len("w", &[3, 4]).unwrap(), 12);
    }
}
