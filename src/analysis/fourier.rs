//! Operator norms of convolutions: the paper's Fourier bound (§4.3) and power iteration on
//! the convolution as an explicit linear operator.

use super::spectral::{PowerIterationConfig, SpectralNorm, lanczos, power_iteration};
use crate::error::{Error, Result};
use crate::models::conv::{Conv2d, PaddingMode};
use ndarray::Axis;

/// A tiny complex number (private algebra for the per-frequency matrices).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct C64 {
    re: f64,
    im: f64,
}

impl C64 {
    fn cis(theta: f64) -> Self {
        Self {
            re: theta.cos(),
            im: theta.sin(),
        }
    }
    fn mul(self, o: Self) -> Self {
        Self {
            re: self.re * o.re - self.im * o.im,
            im: self.re * o.im + self.im * o.re,
        }
    }
    fn conj(self) -> Self {
        Self {
            re: self.re,
            im: -self.im,
        }
    }
    fn add(self, o: Self) -> Self {
        Self {
            re: self.re + o.re,
            im: self.im + o.im,
        }
    }
    fn scale(self, s: f64) -> Self {
        Self {
            re: self.re * s,
            im: self.im * s,
        }
    }
}

/// The paper's Fourier bound on a convolution's operator norm, and what it was computed on.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FourierBound {
    /// `sup_ξ ‖A(ξ)‖₂` (see [`conv_fourier_bound`]).
    pub value: f64,
    /// Whether the value is the operator norm itself (circular padding, a stride dividing
    /// the grid, and an output covering it) rather than an upper bound.
    pub exact: bool,
    /// The DFT grid `(N_h, N_w)`.
    pub grid: (usize, usize),
    /// The stride the block formula used (the layer's, or 1 when the circular grid is not
    /// a multiple of it and the unstrided bound is used instead).
    pub stride_used: usize,
    /// The frequency `(ξ_h, ξ_w)` (in the subsampled grid) attaining the supremum.
    pub argmax_frequency: (usize, usize),
}

/// Largest eigenvalue of a real symmetric `n × n` matrix (row-major, overwritten) by cyclic
/// Jacobi rotations: exact up to rounding, no gap dependence.
pub(crate) fn symmetric_max_eigenvalue(a: &mut [f64], n: usize) -> f64 {
    debug_assert_eq!(a.len(), n * n);
    let norm2: f64 = a.iter().map(|v| v * v).sum();
    for _sweep in 0..100 {
        let mut off = 0.0;
        for p in 0..n {
            for q in p + 1..n {
                off += a[p * n + q] * a[p * n + q];
            }
        }
        if off <= 1e-32 * norm2 || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
            }
        }
    }
    (0..n)
        .map(|i| a[i * n + i])
        .fold(f64::NEG_INFINITY, f64::max)
}

/// Largest singular value of a complex `rows × cols` matrix (row-major) through the
/// eigenvalues of the smaller Gram matrix, embedded as a real symmetric matrix
/// `[[Re G, −Im G], [Im G, Re G]]` (same eigenvalues, each twice).
fn complex_max_singular_value(b: &[C64], rows: usize, cols: usize, scratch: &mut Vec<f64>) -> f64 {
    let (m, by_rows) = if rows <= cols {
        (rows, true)
    } else {
        (cols, false)
    };
    let n2 = 2 * m;
    scratch.clear();
    scratch.resize(n2 * n2, 0.0);
    for i in 0..m {
        for j in 0..m {
            // G = B Bᴴ (rows side) or Bᴴ B (cols side).
            let mut g = C64::default();
            if by_rows {
                for k in 0..cols {
                    g = g.add(b[i * cols + k].mul(b[j * cols + k].conj()));
                }
            } else {
                for k in 0..rows {
                    g = g.add(b[k * cols + i].conj().mul(b[k * cols + j]));
                }
            }
            scratch[i * n2 + j] = g.re;
            scratch[(i + m) * n2 + (j + m)] = g.re;
            scratch[i * n2 + (j + m)] = -g.im;
            scratch[(i + m) * n2 + j] = g.im;
        }
    }
    symmetric_max_eigenvalue(scratch, n2).max(0.0).sqrt()
}

/// The paper's Fourier bound on the operator norm of a convolution layer (§4.3).
///
/// For a stride-1 circular convolution on an `N_h × N_w` grid, the 2-D DFT block-diagonalises
/// the layer: `‖W‖ = sup_ξ ‖A(ξ)‖₂`, with `A(ξ)` the `C_out × C_in` matrix of the filters'
/// DFTs `ŵ_{o,c}(ξ)`. With stride `Δ` (dividing the grid), subsampling aliases the `Δ²`
/// frequencies `ξ + l·N/Δ` onto one, and the block becomes the `C_out × (C_in·Δ²)` matrix
/// `Δ⁻¹ [ŵ_{o,c}(ξ + l·N/Δ)]_{c, l}`, for `ξ` in the subsampled grid (the paper's
/// extension). Each block's largest singular value is computed exactly (Jacobi on the
/// smaller Gram matrix).
///
/// - Circular padding: the grid is the input grid, and the value is the operator norm when
///   the stride divides it and the output covers it ([`FourierBound::exact`]); otherwise the
///   stride-1 value, an upper bound (a strided convolution is a subsampling of the unstrided
///   one, and subsampling has norm ≤ 1).
/// - Zero padding: the input is embedded in a zero grid of side `H + 2·padding` (rounded up to
///   a multiple of the stride), on which the layer is a restriction of a circular
///   convolution: the value is an upper bound.
///
/// # Examples
///
/// ```
/// use intriguing::analysis::conv_fourier_bound;
/// use intriguing::models::conv::{Conv2d, PaddingMode};
/// use ndarray::{array, Array4};
/// // A single 3×3 "sum" filter, circular: the DFT peaks at ξ = 0 with value 9.
/// let conv = Conv2d::new(Array4::from_elem((1, 1, 3, 3), 1.0), array![0.0], (1, 8, 8), 1, 1,
///                        PaddingMode::Circular)?;
/// let b = conv_fourier_bound(&conv)?;
/// assert!((b.value - 9.0).abs() < 1e-12 && b.exact);
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn conv_fourier_bound(conv: &Conv2d) -> Result<FourierBound> {
    let w = conv.weight();
    let (c_out, c_in, kh, kw) = w.dim();
    let (_, h, wd) = conv.input_shape();
    let (_, ho, wo) = conv.output_shape();
    let s = conv.stride();
    let pad = conv.padding();
    let (nh, nw, stride, exact) = match conv.padding_mode() {
        PaddingMode::Circular => {
            if h % s == 0 && wd % s == 0 {
                (h, wd, s, ho == h / s && wo == wd / s)
            } else {
                (h, wd, 1, false)
            }
        }
        PaddingMode::Zeros => (
            (h + 2 * pad).div_ceil(s) * s,
            (wd + 2 * pad).div_ceil(s) * s,
            s,
            false,
        ),
    };
    let (mh, mw) = (nh / stride, nw / stride);
    // Filter DFTs on the full grid: ŵ[o][c][ξh][ξw] = Σ_{p,q} w[o,c,p,q] e^{−2πi(ξh p/N_h + ξw q/N_w)}.
    // (The padding offset only multiplies each column of a block by a unimodular phase,
    // which leaves its singular values unchanged.)
    let tw = |n: usize, k: usize| -> Vec<C64> {
        let mut t = Vec::with_capacity(n * k);
        for xi in 0..n {
            for p in 0..k {
                let ang = -std::f64::consts::TAU * ((xi * p) % n) as f64 / n as f64;
                t.push(C64::cis(ang));
            }
        }
        t
    };
    let (twh, tww) = (tw(nh, kh), tw(nw, kw));
    let grid = nh * nw;
    let mut what = vec![C64::default(); c_out * c_in * grid];
    let mut partial = vec![C64::default(); kh * nw];
    for o in 0..c_out {
        for c in 0..c_in {
            let filt = w.index_axis(Axis(0), o);
            let filt = filt.index_axis(Axis(0), c);
            for p in 0..kh {
                for x2 in 0..nw {
                    let mut acc = C64::default();
                    for q in 0..kw {
                        acc = acc.add(tww[x2 * kw + q].scale(filt[[p, q]]));
                    }
                    partial[p * nw + x2] = acc;
                }
            }
            let base = (o * c_in + c) * grid;
            for x1 in 0..nh {
                for x2 in 0..nw {
                    let mut acc = C64::default();
                    for p in 0..kh {
                        acc = acc.add(twh[x1 * kh + p].mul(partial[p * nw + x2]));
                    }
                    what[base + x1 * nw + x2] = acc;
                }
            }
        }
    }
    let cols = c_in * stride * stride;
    let inv = 1.0 / stride as f64;
    let mut block = vec![C64::default(); c_out * cols];
    let mut scratch = Vec::new();
    let (mut best, mut arg) = (0.0f64, (0, 0));
    for x1 in 0..mh {
        for x2 in 0..mw {
            for o in 0..c_out {
                for c in 0..c_in {
                    for l1 in 0..stride {
                        for l2 in 0..stride {
                            let f = (x1 + l1 * mh) * nw + (x2 + l2 * mw);
                            block[o * cols + (c * stride + l1) * stride + l2] =
                                what[(o * c_in + c) * grid + f].scale(inv);
                        }
                    }
                }
            }
            let sv = complex_max_singular_value(&block, c_out, cols, &mut scratch);
            if sv > best {
                best = sv;
                arg = (x1, x2);
            }
        }
    }
    if !best.is_finite() {
        return Err(Error::NonFinite {
            context: "Fourier bound".into(),
            index: 0,
        });
    }
    Ok(FourierBound {
        value: best,
        exact,
        grid: (nh, nw),
        stride_used: stride,
        argmax_frequency: arg,
    })
}

/// Operator norm of a convolution layer's linear part (bias ignored) by power iteration on
/// `convᵀ ∘ conv`, applied as an explicit linear operator (forward pass, then its adjoint —
/// the input-gradient pass).
pub fn conv_operator_norm(conv: &Conv2d, cfg: &PowerIterationConfig) -> Result<SpectralNorm> {
    power_iteration(
        conv.input_dim(),
        |v, mut out| {
            let y = conv.apply_linear(v)?;
            let back = conv.backward_input(y.view().insert_axis(Axis(0)))?;
            out.assign(&back.row(0));
            Ok(())
        },
        cfg,
    )
}

/// [`conv_operator_norm`] by restarted Lanczos instead of power iteration: the same value
/// (both are Rayleigh quotients converging from below), in far fewer operator applications
/// on a convolution's clustered spectrum.
pub fn conv_operator_norm_lanczos(
    conv: &Conv2d,
    cfg: &PowerIterationConfig,
) -> Result<SpectralNorm> {
    lanczos(
        conv.input_dim(),
        |v, mut out| {
            let y = conv.apply_linear(v)?;
            let back = conv.backward_input(y.view().insert_axis(Axis(0)))?;
            out.assign(&back.row(0));
            Ok(())
        },
        cfg,
    )
}
