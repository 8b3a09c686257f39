//! Convolution and max-pooling layers on flattened `C×H×W` rows.
//!
//! A batch is a `[n, C·H·W]` matrix whose rows are row-major `C×H×W` images (channel first,
//! as PyTorch's `NCHW`), so convolutional models implement [`Classifier`](crate::Classifier)
//! on the same flat inputs as the MLPs.
//!
//! [`Conv2d`] computes a cross-correlation (PyTorch's `nn.Conv2d`) by im2col and one matrix
//! product; its backward pass is the transposed product followed by col2im. [`MaxPool2d`]
//! routes gradients to the arg-max of each window.

use super::init::{checked_len, he_normal};
use super::layer::{Module, fixed_width, std_params, std_params_mut};
use super::sequential::{view, view_mut};
use crate::error::{Error, Result, check_finite};
use crate::validate;
use ndarray::linalg::general_mat_mul;
use ndarray::{
    Array1, Array2, Array4, ArrayView1, ArrayView2, ArrayView4, ArrayViewMut2, ArrayViewMut4, Axis,
};
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
    /// A convolution with `weight` `[C_out, C_in, kh, kw]` (PyTorch `nn.Conv2d.weight`, any
    /// memory layout: it is stored row-major), `bias` `[C_out]`, acting on inputs of shape
    /// `input_shape = (C_in, H, W)`. Sizes whose products overflow or exceed
    /// [`MAX_TENSOR_LEN`](super::init::MAX_TENSOR_LEN) are an [`Error::InvalidConfig`].
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
        let weight = if weight.is_standard_layout() {
            weight
        } else {
            weight.as_standard_layout().into_owned()
        };
        let bias = if bias.is_standard_layout() {
            bias
        } else {
            bias.as_standard_layout().into_owned()
        };
        let in_len = checked_len("Conv2d input", &[ci, h, w])?;
        if in_len >= NONE as usize {
            return Err(Error::InvalidConfig(format!(
                "Conv2d input {ci}x{h}x{w} has more than 2^32 - 1 entries"
            )));
        }
        let too_big = || Error::InvalidConfig("Conv2d padded input size overflows".into());
        let hp = padding
            .checked_mul(2)
            .and_then(|p| p.checked_add(h))
            .ok_or_else(too_big)?;
        let wp = padding
            .checked_mul(2)
            .and_then(|p| p.checked_add(w))
            .ok_or_else(too_big)?;
        if hp < kh || wp < kw {
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
        let ho = (hp - kh) / stride + 1;
        let wo = (wp - kw) / stride + 1;
        let ckk = c_in * kh * kw;
        checked_len("Conv2d output", &[c_out, ho, wo])?;
        let mut index = vec![NONE; checked_len("Conv2d im2col index", &[ho, wo, ckk])?];
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
        let len = checked_len("Conv2d weight", &[out_channels, c_in, kernel, kernel])?;
        let w = he_normal(len, c_in * kernel * kernel, &mut rng);
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
        volume(self.input_shape)
    }
    /// `C_out·H_out·W_out`.
    pub fn output_dim(&self) -> usize {
        volume(self.output_shape())
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
        ArrayView2::from_shape(
            (c_out, self.ckk()),
            self.weight
                .as_slice()
                .expect("standard layout by construction"),
        )
        .expect("C_out · C_in·kh·kw entries")
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

    /// The im2col matrix `[P, C_in·kh·kw]` of one image into `cols` (`P = H_out·W_out`).
    fn im2col_into(&self, x: ArrayView1<'_, f64>, cols: &mut [f64]) {
        for (c, &i) in cols.iter_mut().zip(&self.index) {
            *c = if i == NONE { 0.0 } else { x[i as usize] };
        }
    }

    /// Forward pass of a batch `[n, C_in·H·W]` → `[n, C_out·H_out·W_out]` (validated).
    pub fn forward(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        self.check_batch(x, "Conv2d input")?;
        let mut y = Array2::zeros((x.nrows(), self.output_dim()));
        let mut work = vec![0.0; Module::work_len(self, 1)];
        Module::forward(self, x, y.view_mut(), &mut work);
        Ok(y)
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
        let n = dout.nrows();
        let mut dx = Array2::zeros((n, self.input_dim()));
        let mut work = vec![0.0; Module::work_len(self, 1)];
        let x = Array2::zeros((n, self.input_dim()));
        let y = Array2::zeros(dout.raw_dim());
        let mut dy = dout.to_owned();
        Module::backward(
            self,
            x.view(),
            y.view(),
            dy.view_mut(),
            Some(dx.view_mut()),
            None,
            &mut work,
        );
        Ok(dx)
    }

    /// Applies the linear part (no bias) to one flattened input: the layer as an explicit
    /// linear operator, used for power iteration.
    pub fn apply_linear(&self, x: ArrayView1<'_, f64>) -> Result<Array1<f64>> {
        let x2 = x.insert_axis(Axis(0));
        self.check_batch(x2, "Conv2d input")?;
        let (p, ckk, c_out) = (self.positions(), self.ckk(), self.weight.dim().0);
        let mut cols = vec![0.0; p * ckk];
        self.im2col_into(x, &mut cols);
        let mut prod = Array2::zeros((p, c_out));
        general_mat_mul(
            1.0,
            &view(&cols, p, ckk),
            &self.weight_matrix().t(),
            0.0,
            &mut prod,
        );
        Ok(Array1::from_iter(prod.t().iter().copied()))
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
        checked_len("MaxPool2d input", &[c, h, w])?;
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
        volume(self.input_shape)
    }
    /// `C·H_out·W_out`.
    pub fn output_dim(&self) -> usize {
        volume(self.output_shape())
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
        let mut y = Array2::zeros((x.nrows(), self.output_dim()));
        Module::forward(self, x, y.view_mut(), &mut []);
        Ok(y)
    }

    /// The flat input index of the maximum of output `o`'s window in image `xb` (the first
    /// one on ties).
    fn argmax(&self, xb: ArrayView1<'_, f64>, o: usize) -> usize {
        let (_, h, w) = self.input_shape;
        let (ho, wo) = self.output_hw;
        let (ch, rest) = (o / (ho * wo), o % (ho * wo));
        let (oh, ow) = (rest / wo, rest % wo);
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
        bi
    }
}

impl Module for Conv2d {
    fn kind(&self) -> &'static str {
        "conv"
    }
    fn in_dim(&self) -> Option<usize> {
        Some(self.input_dim())
    }
    fn out_dim(&self, in_dim: usize) -> Result<usize> {
        fixed_width("conv", self.input_dim(), in_dim, self.output_dim())
    }
    fn prepare(&mut self) -> Result<()> {
        // `new` checked everything and stored the weights row-major; `weight_mut` cannot
        // change the shape or the layout, only the values.
        check_finite(self.weight.iter(), "Conv2d weight")?;
        check_finite(self.bias.iter(), "Conv2d bias")
    }
    fn params(&self) -> (&[f64], &[f64]) {
        std_params(&self.weight, &self.bias)
    }
    fn weight_shape(&self) -> Vec<usize> {
        self.weight.shape().to_vec()
    }
    fn params_mut(&mut self) -> (&mut [f64], &mut [f64]) {
        std_params_mut(&mut self.weight, &mut self.bias)
    }
    /// One image at a time: its im2col matrix, the product (or the output gradient) and the
    /// column gradient.
    fn work_len(&self, _n: usize) -> usize {
        let (p, ckk, c_out) = (self.positions(), self.ckk(), self.weight.dim().0);
        p * (2 * ckk + c_out)
    }
    fn forward(&self, x: ArrayView2<'_, f64>, mut y: ArrayViewMut2<'_, f64>, work: &mut [f64]) {
        let (p, ckk, c_out) = (self.positions(), self.ckk(), self.weight.dim().0);
        let (cols, rest) = work.split_at_mut(p * ckk);
        let prod = &mut rest[..p * c_out];
        for (xb, mut yb) in x.outer_iter().zip(y.outer_iter_mut()) {
            self.im2col_into(xb, cols);
            let mut pm = view_mut(prod, p, c_out);
            general_mat_mul(
                1.0,
                &view(cols, p, ckk),
                &self.weight_matrix().t(),
                0.0,
                &mut pm,
            );
            for o in 0..c_out {
                let bo = self.bias[o];
                for pos in 0..p {
                    yb[o * p + pos] = pm[[pos, o]] + bo;
                }
            }
        }
    }
    fn backward(
        &self,
        x: ArrayView2<'_, f64>,
        _y: ArrayView2<'_, f64>,
        dy: ArrayViewMut2<'_, f64>,
        mut dx: Option<ArrayViewMut2<'_, f64>>,
        mut grads: Option<(&mut [f64], &mut [f64])>,
        work: &mut [f64],
    ) {
        let (p, ckk, c_out) = (self.positions(), self.ckk(), self.weight.dim().0);
        let (cols, rest) = work.split_at_mut(p * ckk);
        let (m, rest) = rest.split_at_mut(p * c_out);
        let dcols = &mut rest[..p * ckk];
        if let Some((gw, gb)) = grads.as_mut() {
            gw.fill(0.0);
            gb.fill(0.0);
        }
        for (b, db) in dy.outer_iter().enumerate() {
            // The output gradient of image b as [P, C_out].
            let mut mm = view_mut(m, p, c_out);
            for o in 0..c_out {
                for pos in 0..p {
                    mm[[pos, o]] = db[o * p + pos];
                }
            }
            if let Some((gw, gb)) = grads.as_mut() {
                self.im2col_into(x.row(b), cols);
                let mut gwm = view_mut(gw, c_out, ckk);
                general_mat_mul(1.0, &mm.t(), &view(cols, p, ckk), 1.0, &mut gwm);
                for row in mm.rows() {
                    gb.iter_mut().zip(row).for_each(|(g, &d)| *g += d);
                }
            }
            if let Some(dx) = dx.as_mut() {
                let mut dc = view_mut(dcols, p, ckk);
                general_mat_mul(1.0, &mm, &self.weight_matrix(), 0.0, &mut dc);
                let mut dxb = dx.row_mut(b);
                dxb.fill(0.0);
                for (&r, &i) in dcols.iter().zip(&self.index) {
                    if i != NONE {
                        dxb[i as usize] += r;
                    }
                }
            }
        }
    }
}

impl Module for MaxPool2d {
    fn kind(&self) -> &'static str {
        "maxpool"
    }
    fn in_dim(&self) -> Option<usize> {
        Some(self.input_dim())
    }
    fn out_dim(&self, in_dim: usize) -> Result<usize> {
        fixed_width("maxpool", self.input_dim(), in_dim, self.output_dim())
    }
    fn forward(&self, x: ArrayView2<'_, f64>, mut y: ArrayViewMut2<'_, f64>, _: &mut [f64]) {
        for (xb, mut yb) in x.outer_iter().zip(y.outer_iter_mut()) {
            for (o, v) in yb.iter_mut().enumerate() {
                *v = xb[self.argmax(xb, o)];
            }
        }
    }
    /// Routes each output gradient to the arg-max of its window (recomputed from `x`).
    fn backward(
        &self,
        x: ArrayView2<'_, f64>,
        _y: ArrayView2<'_, f64>,
        dy: ArrayViewMut2<'_, f64>,
        dx: Option<ArrayViewMut2<'_, f64>>,
        _grads: Option<(&mut [f64], &mut [f64])>,
        _: &mut [f64],
    ) {
        let Some(mut dx) = dx else { return };
        for ((xb, db), mut dxb) in x.outer_iter().zip(dy.outer_iter()).zip(dx.outer_iter_mut()) {
            dxb.fill(0.0);
            for (o, &d) in db.iter().enumerate() {
                dxb[self.argmax(xb, o)] += d;
            }
        }
    }
}

/// The number of entries `C·H·W` of a `(C, H, W)` image.
fn volume((c, h, w): (usize, usize, usize)) -> usize {
    c * h * w
}
