//! Convolution and max-pooling layers on flattened `C×H×W` rows.
//!
//! A batch is a `[n, C·H·W]` matrix whose rows are row-major `C×H×W` images (channel first,
//! as PyTorch's `NCHW`), so convolutional models implement [`Classifier`](crate::Classifier)
//! on the same flat inputs as the MLPs.
//!
//! [`Conv2d`] computes a cross-correlation (PyTorch's `nn.Conv2d`) by im2col and one matrix
//! product; its backward pass is the transposed product followed by col2im. [`MaxPool2d`]
//! routes gradients to the arg-max of each window.

use crate::error::{Error, Result, check_finite};
use crate::validate;
use ndarray::{Array1, Array2, Array4, ArrayView1, ArrayView2, ArrayView4, ArrayViewMut4, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a convolution reads outside its input grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaddingMode {
    /// Zeros (PyTorch's default `padding_mode="zeros"`).
    Zeros,
    /// The input wrapped around periodically (`padding_mode="circular"`). Needs
    /// `2·padding ≤ kernel − 1` in each direction so that no input is read twice by the same
    /// tap.
    Circular,
}

const NONE: u32 = u32::MAX;

/// A 2-D convolution layer: `y[o] = b[o] + Σ_c w[o, c] ⋆ x[c]` with a stride and padding.
///
/// # Examples
///
/// ```
/// use intriguing::models::conv::{Conv2d, PaddingMode};
/// use ndarray::{array, Array4};
/// // One 2×2 averaging filter on a 1×3×3 image, stride 1, no padding → 1×2×2.
/// let w = Array4::from_elem((1, 1, 2, 2), 0.25);
/// let conv = Conv2d::new(w, array![0.0], (1, 3, 3), 1, 0, PaddingMode::Zeros)?;
/// let x = array![[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]];
/// let y = conv.forward(x.view())?;
/// assert_eq!(y, array![[3.0, 4.0, 6.0, 7.0]]);
/// # Ok::<(), intriguing::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2d {
    weight: Array4<f64>,
    bias: Array1<f64>,
    input_shape: (usize, usize, usize),
    stride: usize,
    padding: usize,
    mode: PaddingMode,
    output_hw: (usize, usize),
    /// For each output position and each column of the im2col matrix, the flat input index
    /// read (or `NONE` for a zero pad). `[P · C_in·kh·kw]`.
    index: Vec<u32>,
}

impl Conv2d {
    /// A convolution with `weight` `[C_out, C_in, kh, kw]`, `bias` `[C_out]`, acting on inputs
    /// of shape `input_shape = (C_in, H, W)`.
    pub fn new(
        weight: Array4<f64>,
        bias: Array1<f64>,
        input_shape: (usize, usize, usize),
        stride: usize,
        padding: usize,
        mode: PaddingMode,
    ) -> Result<Self> {
        let (c_out, c_in, kh, kw) = weight.dim();
        let (ci, h, w) = input_shape;
        if c_out == 0 || c_in == 0 || kh == 0 || kw == 0 {
            return Err(Error::shape(
                "Conv2d weight",
                "[C_out>0, C_in>0, kh>0, kw>0]",
                format!("{:?}", weight.shape()),
            ));
        }
        if ci != c_in {
            return Err(Error::shape("Conv2d input channels", c_in, ci));
        }
        if bias.len() != c_out {
            return Err(Error::shape("Conv2d bias", c_out, bias.len()));
        }
        validate::at_least_one("Conv2d stride", stride)?;
        check_finite(weight.iter(), "Conv2d weight")?;
        check_finite(bias.iter(), "Conv2d bias")?;
        if h + 2 * padding < kh || w + 2 * padding < kw {
            return Err(Error::InvalidConfig(format!(
                "Conv2d kernel {kh}x{kw} larger than the padded input {}x{}",
                h + 2 * padding,
                w + 2 * padding
            )));
        }
        if mode == PaddingMode::Circular && (2 * padding + 1 > kh || 2 * padding + 1 > kw) {
            return Err(Error::InvalidConfig(format!(
                "circular Conv2d needs 2·padding ≤ kernel − 1, got padding {padding} with a \
                 {kh}x{kw} kernel"
            )));
        }
        let ho = (h + 2 * padding - kh) / stride + 1;
        let wo = (w + 2 * padding - kw) / stride + 1;
        let ckk = c_in * kh * kw;
        let mut index = vec![NONE; ho * wo * ckk];
        for oh in 0..ho {
            for ow in 0..wo {
                let pos = oh * wo + ow;
                for c in 0..c_in {
                    for p in 0..kh {
                        for q in 0..kw {
                            let ih = (oh * stride + p) as isize - padding as isize;
                            let iw = (ow * stride + q) as isize - padding as isize;
                            let (ih, iw) = match mode {
                                PaddingMode::Zeros => {
                                    if ih < 0 || iw < 0 || ih >= h as isize || iw >= w as isize {
                                        continue;
                                    }
                                    (ih as usize, iw as usize)
                                }
                                PaddingMode::Circular => (
                                    ih.rem_euclid(h as isize) as usize,
                                    iw.rem_euclid(w as isize) as usize,
                                ),
                            };
                            index[pos * ckk + (c * kh + p) * kw + q] =
                                ((c * h + ih) * w + iw) as u32;
                        }
                    }
                }
            }
        }
        Ok(Self {
            weight,
            bias,
            input_shape,
            stride,
            padding,
            mode,
            output_hw: (ho, wo),
            index,
        })
    }

    /// A convolution with He-normal weights (`std = sqrt(2 / (C_in·kh·kw))`, for ReLU) and
    /// zero bias, zero padding, from a seed.
    pub fn random(
        input_shape: (usize, usize, usize),
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        seed: u64,
    ) -> Result<Self> {
        let c_in = input_shape.0;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut w = vec![0.0; out_channels * c_in * kernel * kernel];
        crate::analysis::spectral::fill_gaussian(&mut w, &mut rng);
        let std = (2.0 / (c_in * kernel * kernel).max(1) as f64).sqrt();
        w.iter_mut().for_each(|v| *v *= std);
        let weight = Array4::from_shape_vec((out_channels, c_in, kernel, kernel), w)
            .map_err(|e| Error::shape("Conv2d::random", "weights", e))?;
        Self::new(
            weight,
            Array1::zeros(out_channels),
            input_shape,
            stride,
            padding,
            PaddingMode::Zeros,
        )
    }

    /// The filters `[C_out, C_in, kh, kw]`.
    pub fn weight(&self) -> ArrayView4<'_, f64> {
        self.weight.view()
    }
    /// Mutable filters (the shape cannot change).
    pub fn weight_mut(&mut self) -> ArrayViewMut4<'_, f64> {
        self.weight.view_mut()
    }
    /// The bias `[C_out]`.
    pub fn bias(&self) -> ArrayView1<'_, f64> {
        self.bias.view()
    }
    /// Mutable bias.
    pub fn bias_mut(&mut self) -> ndarray::ArrayViewMut1<'_, f64> {
        self.bias.view_mut()
    }
    /// `(C_in, H, W)`.
    pub fn input_shape(&self) -> (usize, usize, usize) {
        self.input_shape
    }
    /// `(C_out, H_out, W_out)`.
    pub fn output_shape(&self) -> (usize, usize, usize) {
        (self.weight.dim().0, self.output_hw.0, self.output_hw.1)
    }
    /// `C_in·H·W`.
    pub fn input_dim(&self) -> usize {
        let (c, h, w) = self.input_shape;
        c * h * w
    }
    /// `C_out·H_out·W_out`.
    pub fn output_dim(&self) -> usize {
        let (c, h, w) = self.output_shape();
        c * h * w
    }
    /// The stride (same in both directions).
    pub fn stride(&self) -> usize {
        self.stride
    }
    /// The padding (same on all sides).
    pub fn padding(&self) -> usize {
        self.padding
    }
    /// The padding mode.
    pub fn padding_mode(&self) -> PaddingMode {
        self.mode
    }

    fn ckk(&self) -> usize {
        let (_, c, kh, kw) = self.weight.dim();
        c * kh * kw
    }

    fn positions(&self) -> usize {
        self.output_hw.0 * self.output_hw.1
    }

    /// The filters as a `[C_out, C_in·kh·kw]` matrix view.
    fn weight_matrix(&self) -> ArrayView2<'_, f64> {
        let c_out = self.weight.dim().0;
        self.weight
            .view()
            .into_shape_with_order((c_out, self.ckk()))
            .expect("contiguous weights")
    }

    fn check_batch(&self, x: ArrayView2<'_, f64>, ctx: &str) -> Result<()> {
        if x.ncols() != self.input_dim() {
            return Err(Error::shape(
                ctx,
                format!("[n, {}]", self.input_dim()),
                format!("{:?}", x.shape()),
            ));
        }
        Ok(())
    }

    /// The im2col matrix `[n·P, C_in·kh·kw]` of a batch (`P = H_out·W_out`).
    pub(crate) fn im2col(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let (p, ckk) = (self.positions(), self.ckk());
        let mut cols = Array2::zeros((x.nrows() * p, ckk));
        for (b, xb) in x.outer_iter().enumerate() {
            for pos in 0..p {
                let mut row = cols.row_mut(b * p + pos);
                let idx = &self.index[pos * ckk..(pos + 1) * ckk];
                for (r, &i) in row.iter_mut().zip(idx) {
                    if i != NONE {
                        *r = xb[i as usize];
                    }
                }
            }
        }
        cols
    }

    /// Forward pass of a batch `[n, C_in·H·W]` → `[n, C_out·H_out·W_out]` (validated).
    pub fn forward(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        self.check_batch(x, "Conv2d input")?;
        Ok(self.forward_with_cols(x).0)
    }

    /// Forward pass returning the im2col matrix too (for the weight gradient).
    pub(crate) fn forward_with_cols(&self, x: ArrayView2<'_, f64>) -> (Array2<f64>, Array2<f64>) {
        let cols = self.im2col(x);
        let prod = cols.dot(&self.weight_matrix().t()); // [n·P, C_out]
        let (p, c_out) = (self.positions(), self.weight.dim().0);
        let mut out = Array2::zeros((x.nrows(), c_out * p));
        for (b, mut ob) in out.outer_iter_mut().enumerate() {
            let block = prod.slice(ndarray::s![b * p..(b + 1) * p, ..]);
            for o in 0..c_out {
                let bo = self.bias[o];
                for pos in 0..p {
                    ob[o * p + pos] = block[[pos, o]] + bo;
                }
            }
        }
        (out, cols)
    }

    /// `[n, C_out·P]` (channel-major) → `[n·P, C_out]`.
    fn dout_matrix(&self, dout: ArrayView2<'_, f64>) -> Array2<f64> {
        let (p, c_out) = (self.positions(), self.weight.dim().0);
        let mut m = Array2::zeros((dout.nrows() * p, c_out));
        for (b, db) in dout.outer_iter().enumerate() {
            for o in 0..c_out {
                for pos in 0..p {
                    m[[b * p + pos, o]] = db[o * p + pos];
                }
            }
        }
        m
    }

    fn col2im(&self, dcols: &Array2<f64>, n: usize) -> Array2<f64> {
        let (p, ckk) = (self.positions(), self.ckk());
        let mut dx = Array2::zeros((n, self.input_dim()));
        for (b, mut dxb) in dx.outer_iter_mut().enumerate() {
            for pos in 0..p {
                let row = dcols.row(b * p + pos);
                let idx = &self.index[pos * ckk..(pos + 1) * ckk];
                for (&r, &i) in row.iter().zip(idx) {
                    if i != NONE {
                        dxb[i as usize] += r;
                    }
                }
            }
        }
        dx
    }

    /// The transposed (adjoint) linear map: `dout` `[n, C_out·H_out·W_out]` →
    /// `[n, C_in·H·W]`, the input gradient of `⟨dout, conv(x)⟩` (validated).
    pub fn backward_input(&self, dout: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        if dout.ncols() != self.output_dim() {
            return Err(Error::shape(
                "Conv2d output gradient",
                format!("[n, {}]", self.output_dim()),
                format!("{:?}", dout.shape()),
            ));
        }
        Ok(self.backward_input_unchecked(dout))
    }

    pub(crate) fn backward_input_unchecked(&self, dout: ArrayView2<'_, f64>) -> Array2<f64> {
        let m = self.dout_matrix(dout);
        let dcols = m.dot(&self.weight_matrix());
        self.col2im(&dcols, dout.nrows())
    }

    /// Input, weight and bias gradients from the output gradient and the im2col matrix of the
    /// forward pass. The weight gradient is `[C_out, C_in·kh·kw]`.
    pub(crate) fn backward_full(
        &self,
        dout: ArrayView2<'_, f64>,
        cols: &Array2<f64>,
        want_input: bool,
    ) -> (Option<Array2<f64>>, Array2<f64>, Array1<f64>) {
        let m = self.dout_matrix(dout);
        let dw = m.t().dot(cols);
        let db = m.sum_axis(Axis(0));
        let dx = want_input.then(|| {
            let dcols = m.dot(&self.weight_matrix());
            self.col2im(&dcols, dout.nrows())
        });
        (dx, dw, db)
    }

    /// Applies the linear part (no bias) to one flattened input: the layer as an explicit
    /// linear operator, used for power iteration.
    pub fn apply_linear(&self, x: ArrayView1<'_, f64>) -> Result<Array1<f64>> {
        let x2 = x.insert_axis(Axis(0));
        self.check_batch(x2, "Conv2d input")?;
        let cols = self.im2col(x2);
        let prod = cols.dot(&self.weight_matrix().t());
        let (p, c_out) = (self.positions(), self.weight.dim().0);
        let mut out = Array1::zeros(c_out * p);
        for o in 0..c_out {
            for pos in 0..p {
                out[o * p + pos] = prod[[pos, o]];
            }
        }
        Ok(out)
    }
}

/// Max-pooling over `kernel × kernel` windows with a stride, per channel, no padding.
///
/// # Examples
///
/// ```
/// use intriguing::models::conv::MaxPool2d;
/// use ndarray::array;
/// let pool = MaxPool2d::new((1, 2, 4), 2, 2)?;
/// let y = pool.forward(array![[1.0, 5.0, 2.0, 0.0, 3.0, 4.0, -1.0, 7.0]].view())?;
/// assert_eq!(y, array![[5.0, 7.0]]);
/// # Ok::<(), intriguing::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaxPool2d {
    input_shape: (usize, usize, usize),
    kernel: usize,
    stride: usize,
    output_hw: (usize, usize),
}

impl MaxPool2d {
    /// Pooling on inputs of shape `(C, H, W)`.
    pub fn new(input_shape: (usize, usize, usize), kernel: usize, stride: usize) -> Result<Self> {
        let (c, h, w) = input_shape;
        if kernel == 0 || stride == 0 {
            return Err(Error::InvalidConfig(
                "MaxPool2d kernel and stride must be >= 1".into(),
            ));
        }
        if c == 0 || h < kernel || w < kernel {
            return Err(Error::InvalidConfig(format!(
                "MaxPool2d kernel {kernel} does not fit the input {c}x{h}x{w}"
            )));
        }
        Ok(Self {
            input_shape,
            kernel,
            stride,
            output_hw: ((h - kernel) / stride + 1, (w - kernel) / stride + 1),
        })
    }
    /// `(C, H, W)`.
    pub fn input_shape(&self) -> (usize, usize, usize) {
        self.input_shape
    }
    /// `(C, H_out, W_out)`.
    pub fn output_shape(&self) -> (usize, usize, usize) {
        (self.input_shape.0, self.output_hw.0, self.output_hw.1)
    }
    /// The window size.
    pub fn kernel(&self) -> usize {
        self.kernel
    }
    /// The stride.
    pub fn stride(&self) -> usize {
        self.stride
    }
    /// `C·H·W`.
    pub fn input_dim(&self) -> usize {
        let (c, h, w) = self.input_shape;
        c * h * w
    }
    /// `C·H_out·W_out`.
    pub fn output_dim(&self) -> usize {
        let (c, h, w) = self.output_shape();
        c * h * w
    }

    /// The L2 Lipschitz constant: `sqrt(m)` where `m = ⌈kernel/stride⌉²` bounds how many
    /// windows share one input (1 for non-overlapping windows). Each output difference is at
    /// most the largest input difference in its window, so
    /// `‖pool(x) − pool(y)‖² ≤ Σ_windows Σ_{i ∈ window} |x_i − y_i|² ≤ m ‖x − y‖²`.
    pub fn lipschitz_constant(&self) -> f64 {
        self.kernel.div_ceil(self.stride) as f64
    }

    /// Forward pass (validated).
    pub fn forward(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        if x.ncols() != self.input_dim() {
            return Err(Error::shape(
                "MaxPool2d input",
                format!("[n, {}]", self.input_dim()),
                format!("{:?}", x.shape()),
            ));
        }
        Ok(self.forward_with_argmax(x).0)
    }

    /// Forward pass and the flat input index of each output's maximum (first one on ties).
    pub(crate) fn forward_with_argmax(&self, x: ArrayView2<'_, f64>) -> (Array2<f64>, Vec<u32>) {
        let (c, h, w) = self.input_shape;
        let (ho, wo) = self.output_hw;
        let n = x.nrows();
        let od = c * ho * wo;
        let mut out = Array2::zeros((n, od));
        let mut arg = vec![0u32; n * od];
        for (b, xb) in x.outer_iter().enumerate() {
            let mut ob = out.row_mut(b);
            for ch in 0..c {
                for oh in 0..ho {
                    for ow in 0..wo {
                        let mut best = f64::NEG_INFINITY;
                        let mut bi = (ch * h + oh * self.stride) * w + ow * self.stride;
                        for p in 0..self.kernel {
                            for q in 0..self.kernel {
                                let i = (ch * h + oh * self.stride + p) * w + ow * self.stride + q;
                                if xb[i] > best {
                                    best = xb[i];
                                    bi = i;
                                }
                            }
                        }
                        let o = (ch * ho + oh) * wo + ow;
                        ob[o] = best;
                        arg[b * od + o] = bi as u32;
                    }
                }
            }
        }
        (out, arg)
    }

    /// Routes output gradients to the arg-max inputs.
    pub(crate) fn backward(&self, dout: ArrayView2<'_, f64>, arg: &[u32]) -> Array2<f64> {
        let od = self.output_dim();
        let mut dx = Array2::zeros((dout.nrows(), self.input_dim()));
        for (b, (db, mut dxb)) in dout.outer_iter().zip(dx.outer_iter_mut()).enumerate() {
            for o in 0..od {
                dxb[arg[b * od + o] as usize] += db[o];
            }
        }
        dx
    }
}
