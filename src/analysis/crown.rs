//! Certified lower bounds by linear relaxation (CROWN, Zhang et al. 2018; Fast-Lin, Weng et
//! al. 2018), over the L2 ball intersected with the input box `[0, 1]ⁿ`.
//!
//! The network is a sequence of operations on flat vectors: affine maps (dense, or sparse for
//! materialised convolutions), element-wise activations and max-pooling. For a radius `ε`,
//! every pre-activation gets an interval `[l, u]` valid on the whole input set
//! `S(ε) = {x : ‖x − x₀‖₂ ≤ ε, 0 ≤ x ≤ 1}`, computed layer by layer: each neuron's
//! activation is enclosed between two lines on its interval, and a neuron's bound is found by
//! propagating a linear function backwards through those lines to the input, where it is
//! minimised over `S(ε)` exactly (see [`Crown`] for the relaxations and
//! `docs/analysis.md` §4 for the derivations and the floating-point argument).

use crate::attack::LabelBound;
use crate::classifier::argmax;
use crate::error::{Error, Result};
use crate::models::cnn::{Cnn, CnnLayer};
use crate::models::{Activation, Mlp};
use crate::optim::Bounds as BoxBounds;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use std::cell::RefCell;

/// The radius search's first step, as a fraction of the linearised distance to the nearest
/// decision boundary.
const GUESS_FRACTION: f64 = 0.45;

/// Unit round-off of `f64`.
const UNIT: f64 = f64::EPSILON / 2.0;

/// A compressed-sparse-row matrix (a materialised convolution).
#[derive(Debug, Clone)]
struct Csr {
    cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f64>,
}

#[derive(Debug, Clone)]
enum Matrix {
    Dense(Array2<f64>),
    Sparse(Csr),
}

impl Matrix {
    fn rows(&self) -> usize {
        match self {
            Matrix::Dense(w) => w.nrows(),
            Matrix::Sparse(s) => s.indptr.len() - 1,
        }
    }
    fn cols(&self) -> usize {
        match self {
            Matrix::Dense(w) => w.ncols(),
            Matrix::Sparse(s) => s.cols,
        }
    }
    /// Row `r` into `out` (dense).
    fn row_into(&self, r: usize, out: &mut [f64]) {
        match self {
            Matrix::Dense(w) => out
                .iter_mut()
                .zip(w.row(r).iter())
                .for_each(|(o, &v)| *o = v),
            Matrix::Sparse(s) => {
                out.iter_mut().for_each(|o| *o = 0.0);
                for k in s.indptr[r]..s.indptr[r + 1] {
                    out[s.indices[k] as usize] = s.values[k];
                }
            }
        }
    }
    /// `Λ · W` for `Λ` of shape `[m, rows]`.
    fn left_mul(&self, lam: &Array2<f64>) -> Array2<f64> {
        match self {
            Matrix::Dense(w) => {
                let mut out = Array2::zeros((lam.nrows(), w.ncols()));
                general_mat_mul(1.0, lam, w, 0.0, &mut out);
                out
            }
            Matrix::Sparse(s) => {
                let mut out = Array2::zeros((lam.nrows(), s.cols));
                for (lr, mut or) in lam.outer_iter().zip(out.outer_iter_mut()) {
                    let or = or.as_slice_mut().expect("contiguous");
                    for (o, &l) in lr.iter().enumerate() {
                        if l != 0.0 {
                            for k in s.indptr[o]..s.indptr[o + 1] {
                                or[s.indices[k] as usize] += l * s.values[k];
                            }
                        }
                    }
                }
                out
            }
        }
    }
    /// `W v` (or `|W| v` when `abs`).
    fn mul_vec(&self, v: &[f64], abs: bool, out: &mut [f64]) {
        match self {
            Matrix::Dense(w) => {
                for (o, row) in out.iter_mut().zip(w.outer_iter()) {
                    *o = if abs {
                        row.iter().zip(v).map(|(a, b)| a.abs() * b).sum()
                    } else {
                        row.iter().zip(v).map(|(a, b)| a * b).sum()
                    };
                }
            }
            Matrix::Sparse(s) => {
                for (r, o) in out.iter_mut().enumerate() {
                    let mut acc = 0.0;
                    for k in s.indptr[r]..s.indptr[r + 1] {
                        let w = if abs { s.values[k].abs() } else { s.values[k] };
                        acc += w * v[s.indices[k] as usize];
                    }
                    *o = acc;
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Linear {
        w: Matrix,
        b: Array1<f64>,
    },
    Act(Activation),
    /// `windows[k]`: the input indices whose maximum is output `k`.
    Pool {
        windows: Vec<Vec<u32>>,
        in_dim: usize,
    },
}

/// The two lines enclosing one activation on its interval: `al·z + bl ≤ f(z) ≤ au·z + bu`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Relax {
    al: f64,
    bl: f64,
    au: f64,
    bu: f64,
}

/// Settings of [`Crown::certify`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "CrownConfigRepr")
)]
pub struct CrownConfig {
    use_box: bool,
    rtol: f64,
    max_evaluations: usize,
    per_class: bool,
}

impl Default for CrownConfig {
    fn default() -> Self {
        Self {
            use_box: true,
            rtol: 1e-2,
            max_evaluations: 60,
            per_class: false,
        }
    }
}

/// The fields of a serialised [`CrownConfig`], checked by its setters on the way in.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CrownConfigRepr {
    use_box: bool,
    rtol: f64,
    max_evaluations: usize,
    per_class: bool,
}

#[cfg(feature = "serde")]
impl TryFrom<CrownConfigRepr> for CrownConfig {
    type Error = crate::Error;
    fn try_from(r: CrownConfigRepr) -> Result<Self> {
        Ok(CrownConfig::new()
            .with_box(r.use_box)
            .with_rtol(r.rtol)?
            .with_max_evaluations(r.max_evaluations)?
            .with_per_class(r.per_class))
    }
}

impl CrownConfig {
    /// The defaults: box `[0, 1]` on, relative radius tolerance `1e-2`, at most 60 bound
    /// evaluations per search, untargeted only.
    pub fn new() -> Self {
        Self::default()
    }
    /// Whether the input set is the ball intersected with the box `[0, 1]ⁿ` (default) or the
    /// ball alone. The box needs the input inside `[0, 1]ⁿ`.
    pub fn with_box(mut self, use_box: bool) -> Self {
        self.use_box = use_box;
        self
    }
    /// The search for the largest certified radius stops when the bracket
    /// `[certified, refuted]` is narrower than `rtol · refuted` (in `(0, 1)`).
    pub fn with_rtol(mut self, rtol: f64) -> Result<Self> {
        self.rtol = crate::validate::in_open_unit_interval("crown rtol", rtol)?;
        Ok(self)
    }
    /// Cap on the bound evaluations of one search (at least 1).
    pub fn with_max_evaluations(mut self, n: usize) -> Result<Self> {
        self.max_evaluations = crate::validate::at_least_one("crown max_evaluations", n)?;
        Ok(self)
    }
    /// Also search the largest certified radius against each class separately (default: the
    /// untargeted radius only).
    pub fn with_per_class(mut self, per_class: bool) -> Self {
        self.per_class = per_class;
        self
    }
    /// Whether the box is used.
    pub fn use_box(&self) -> bool {
        self.use_box
    }
    /// The relative radius tolerance.
    pub fn rtol(&self) -> f64 {
        self.rtol
    }
    /// The evaluation cap per search.
    pub fn max_evaluations(&self) -> usize {
        self.max_evaluations
    }
    /// Whether per-class radii are searched.
    pub fn per_class(&self) -> bool {
        self.per_class
    }
}

/// The certified radii of one input (see [`Crown::certify`]).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CrownCertificate {
    /// The reference label `y`.
    pub label: usize,
    /// The model's prediction on the clean input.
    pub predicted: usize,
    /// No input of the set with `‖x − x₀‖₂ ≤ untargeted` (and inside the box when it is used)
    /// has `z_j ≥ z_y` for any `j ≠ y`. 0 when the input is misclassified; `f64::INFINITY`
    /// when the whole box is certified.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64"))]
    pub untargeted: f64,
    /// The class whose bound failed first at the untargeted search's refuted radius (`y` when
    /// none failed).
    pub nearest_class: usize,
    /// With [`CrownConfig::with_per_class`]: the certified radius against each class `j`
    /// (no `x` of the set within it has `z_j ≥ z_y`); `f64::INFINITY` at `j = y`. Each entry
    /// is at least `untargeted`.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64::option_vec"))]
    pub per_class: Option<Vec<f64>>,
    /// Bound evaluations (full relaxation passes) done.
    pub evaluations: usize,
}

/// CROWN / Fast-Lin linear-relaxation certifier for a fixed network (MLPs with sigmoid, tanh,
/// ReLU or identity hidden layers; CNNs of convolutions, ReLU and max-pooling, the
/// convolutions materialised as sparse matrices).
///
/// **Relaxations** of an activation `f` on `[l, u]` (lines `al·z + bl ≤ f(z) ≤ au·z + bu`):
///
/// - ReLU: `u ≤ 0`: both 0; `l ≥ 0`: both the identity; otherwise the upper chord
///   `u(z − l)/(u − l)` and the adaptive lower line `z` if `u ≥ −l`, else `0` (CROWN).
/// - sigmoid, tanh (convex on `z ≤ 0`, concave on `z ≥ 0`): for `u ≤ 0` the chord above and
///   the tangent at the midpoint below; for `l ≥ 0` the tangent at the midpoint above and the
///   chord below; for `l < 0 < u` the upper line is the tangent at the `d ∈ [0, u]` whose
///   tangent passes through `(l, f(l))` (found by bisection, keeping the valid side), or the
///   chord when even the tangent at `u` stays below `f(l)`; the lower line is its mirror
///   image through the symmetry `f(−z) = 2f(0) − f(z)`. Narrow intervals (width below
///   `1e-4·max(1, |mid|)`) use the tangent at the midpoint shifted by `max|f''|·w²/8`
///   (Taylor), which is exact at `l = u`.
///
/// Every line is moved outwards by `16·u·(1 + |b| + |a|·max(|l|, |u|))` (`u` the unit
/// round-off) to absorb the rounding of `f`, the chord and the tangent.
///
/// **Input set.** A linear function `a·x` is minimised over the ball intersected with the box
/// through the Lagrangian dual: for every `μ > 0`,
/// `g(μ) = Σᵢ min_{0≤tᵢ≤1} (aᵢtᵢ + μ/2 (tᵢ − x₀ᵢ)²) − με²/2` is a lower bound (weak duality),
/// the minimiser being `tᵢ = clip(x₀ᵢ − aᵢ/μ)`; the best `μ` (where the clipped step has norm
/// `ε`) is found by a few Illinois steps, and the bound is the largest of `g` at the tried
/// `μ`, the ball bound `a·x₀ − ε‖a‖` and the box bound `Σ min(aᵢ, 0)`, so it is never looser
/// than either constraint alone.
///
/// **Rounding.** Each computed bound is lowered by `γ·M` with `γ = 2Nu/(1 − Nu)` (`N` the sum
/// of all layer widths plus 64) and `M` a magnitude bound of everything summed to get it
/// (`|Λ|·|W|·…·|x|` propagated forwards, plus the terms of the concretisation): twice the
/// classical error bound of a product of matrices (Higham, *Accuracy and Stability*, §3.5).
///
/// # Examples
///
/// ```
/// use intriguing::analysis::{Crown, CrownConfig};
/// use intriguing::models::{Activation, Mlp};
/// use ndarray::Array1;
/// let mlp = Mlp::random(&[16, 8, 3], Activation::Tanh, 4)?;
/// let crown = Crown::from_mlp(&mlp)?;
/// let x = Array1::from_elem(16, 0.5);
/// let y = crown.predict(x.view())?;
/// let c = crown.certify(x.view(), y, &CrownConfig::default().with_per_class(true))?;
/// assert!(c.untargeted > 0.0);
/// // A certified radius means a non-negative margin lower bound for every class:
/// let lb = crown.margin_lower_bounds(x.view(), y, c.untargeted.min(1.0), &CrownConfig::default())?;
/// assert!(lb.iter().enumerate().all(|(j, &b)| j == y || b > 0.0));
/// # Ok::<(), intriguing::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Crown {
    ops: Vec<Op>,
    input_dim: usize,
    num_classes: usize,
    gamma: f64,
    /// `|W₀|·1 + |b₀|`: the first layer's magnitude bound on the box.
    box_mag0: Vec<f64>,
}

/// A model whose decision can be certified by [`Crown`].
pub trait CrownModel {
    /// The network as a [`Crown`] certifier.
    fn crown(&self) -> Result<Crown>;
}

impl CrownModel for Mlp {
    fn crown(&self) -> Result<Crown> {
        Crown::from_mlp(self)
    }
}

impl CrownModel for Cnn {
    fn crown(&self) -> Result<Crown> {
        Crown::from_cnn(self)
    }
}

/// State of one relaxation pass at a radius: per op, the relaxations (activations), the
/// pooling selections, and the magnitude bound of each op's output.
struct Pass {
    relax: Vec<Vec<Relax>>,
    /// Per pooling op: per window, the selected input index, whether it is the maximum on
    /// the whole set, and the upper bound of the window's maximum.
    pool: Vec<Vec<(u32, bool, f64)>>,
    /// Magnitude bound of each op's output (`mag[k]` for op `k`); `mag_in` for the input.
    mag: Vec<Vec<f64>>,
    mag_in: Vec<f64>,
}

/// The first layer's rows prepared for one input (see [`RowPrep`]), with the dual steps of
/// every radius done (warm starts).
#[derive(Debug, Default)]
struct FirstLayer {
    preps: Vec<RowPrep>,
    steps: RefCell<Vec<(f64, Vec<f64>)>>,
}

impl Crown {
    fn build(ops: Vec<Op>, input_dim: usize) -> Result<Self> {
        let num_classes = match ops.last() {
            Some(Op::Linear { w, .. }) => w.rows(),
            _ => {
                return Err(Error::InvalidConfig(
                    "CROWN needs a network whose last layer is affine with no activation".into(),
                ));
            }
        };
        let mut n = input_dim + 64;
        for op in &ops {
            if let Op::Linear { w, .. } = op {
                n += w.rows();
            }
        }
        let nu = n as f64 * UNIT;
        let box_mag0 = match ops.first() {
            Some(Op::Linear { w, b }) => {
                let mut m = vec![0.0; w.rows()];
                w.mul_vec(&vec![1.0; w.cols()], true, &mut m);
                m.iter_mut()
                    .zip(b.iter())
                    .for_each(|(v, bb)| *v += bb.abs());
                m
            }
            _ => Vec::new(),
        };
        Ok(Self {
            box_mag0,
            ops,
            input_dim,
            num_classes,
            gamma: 2.0 * nu / (1.0 - nu),
        })
    }

    /// The certifier of an [`Mlp`] (its last layer must have the identity activation).
    pub fn from_mlp(mlp: &Mlp) -> Result<Self> {
        let mut ops = Vec::new();
        for d in mlp.layers() {
            ops.push(Op::Linear {
                w: Matrix::Dense(d.weight.clone()),
                b: d.bias.clone(),
            });
            if d.activation != Activation::Identity {
                ops.push(Op::Act(d.activation));
            }
        }
        let input_dim = mlp.layers().first().map_or(0, |d| d.in_dim());
        Self::build(ops, input_dim)
    }

    /// The certifier of a [`Cnn`]: each convolution is materialised as a sparse matrix (its
    /// columns are the layer applied to the unit vectors), max-pooling keeps its windows.
    pub fn from_cnn(cnn: &Cnn) -> Result<Self> {
        let mut ops = Vec::new();
        for layer in cnn.layers() {
            match layer {
                CnnLayer::Conv2d(c) => {
                    let (n_in, n_out) = (c.input_dim(), c.output_dim());
                    let mut rows: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n_out];
                    let mut e = Array1::<f64>::zeros(n_in);
                    for i in 0..n_in {
                        e[i] = 1.0;
                        let col = c.apply_linear(e.view())?;
                        e[i] = 0.0;
                        for (o, &v) in col.iter().enumerate() {
                            if v != 0.0 {
                                rows[o].push((i as u32, v));
                            }
                        }
                    }
                    let mut csr = Csr {
                        cols: n_in,
                        indptr: vec![0],
                        indices: Vec::new(),
                        values: Vec::new(),
                    };
                    for r in rows {
                        for (i, v) in r {
                            csr.indices.push(i);
                            csr.values.push(v);
                        }
                        csr.indptr.push(csr.indices.len());
                    }
                    let (co, ho, wo) = c.output_shape();
                    let bias = c.bias();
                    let b = Array1::from_shape_fn(co * ho * wo, |k| bias[k / (ho * wo)]);
                    ops.push(Op::Linear {
                        w: Matrix::Sparse(csr),
                        b,
                    });
                }
                CnnLayer::Activation(a) => ops.push(Op::Act(*a)),
                CnnLayer::Flatten => {}
                CnnLayer::MaxPool2d(p) => {
                    let (c, h, w) = p.input_shape();
                    let (_, ho, wo) = p.output_shape();
                    let (k, s) = (p.kernel(), p.stride());
                    let mut windows = Vec::with_capacity(c * ho * wo);
                    for ch in 0..c {
                        for oh in 0..ho {
                            for ow in 0..wo {
                                let mut win = Vec::with_capacity(k * k);
                                for a in 0..k {
                                    for bb in 0..k {
                                        win.push(((ch * h + oh * s + a) * w + ow * s + bb) as u32);
                                    }
                                }
                                windows.push(win);
                            }
                        }
                    }
                    ops.push(Op::Pool {
                        windows,
                        in_dim: p.input_dim(),
                    });
                }
                CnnLayer::Dense(l) => {
                    ops.push(Op::Linear {
                        w: Matrix::Dense(l.weight.clone()),
                        b: l.bias.clone(),
                    });
                    if l.activation != Activation::Identity {
                        ops.push(Op::Act(l.activation));
                    }
                }
            }
        }
        Self::build(ops, cnn.dims()[0])
    }

    /// Input length.
    pub fn input_dim(&self) -> usize {
        self.input_dim
    }

    /// Number of classes (logits).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The logits of one input, by the certifier's own representation of the network (equal
    /// to the model's up to rounding).
    pub fn logits(&self, x: ArrayView1<'_, f64>) -> Result<Array1<f64>> {
        self.check_input(x, false)?;
        Ok(self.forward(x).pop().expect("at least one op"))
    }

    /// The predicted class of one input.
    pub fn predict(&self, x: ArrayView1<'_, f64>) -> Result<usize> {
        Ok(argmax(self.logits(x)?.view()))
    }

    fn check_input(&self, x: ArrayView1<'_, f64>, use_box: bool) -> Result<()> {
        if x.len() != self.input_dim {
            return Err(Error::shape("CROWN input", self.input_dim, x.len()));
        }
        crate::error::check_finite(x.iter(), "CROWN input")?;
        if use_box
            && let Some((i, &v)) = x
                .iter()
                .enumerate()
                .find(|(_, v)| !(0.0..=1.0).contains(*v))
        {
            return Err(Error::OutOfBounds {
                index: i,
                value: v,
                lower: 0.0,
                upper: 1.0,
            });
        }
        Ok(())
    }

    /// The outputs of every op at `x`.
    fn forward(&self, x: ArrayView1<'_, f64>) -> Vec<Array1<f64>> {
        let mut outs: Vec<Array1<f64>> = Vec::with_capacity(self.ops.len());
        for op in &self.ops {
            let h = outs.last().map_or(x, |a| a.view());
            let h = h
                .as_slice()
                .map(|s| s.to_vec())
                .unwrap_or_else(|| h.to_vec());
            let next = match op {
                Op::Linear { w, b } => {
                    let mut out = vec![0.0; w.rows()];
                    w.mul_vec(&h, false, &mut out);
                    out.iter_mut().zip(b.iter()).for_each(|(o, &bb)| *o += bb);
                    Array1::from(out)
                }
                Op::Act(a) => Array1::from_iter(h.iter().map(|&z| a.apply(z))),
                Op::Pool { windows, .. } => Array1::from_iter(windows.iter().map(|win| {
                    win.iter()
                        .map(|&i| h[i as usize])
                        .fold(f64::NEG_INFINITY, f64::max)
                })),
            };
            outs.push(next);
        }
        outs
    }

    /// Certified lower bounds of the margins `z_y − z_j` (one per class; `0` at `j = y`) over
    /// the input set of radius `eps` around `x` (ball ∩ box, or the ball alone), already
    /// lowered by the rounding allowance. A positive entry `j` certifies that no point of the
    /// set reaches `z_j ≥ z_y`.
    pub fn margin_lower_bounds(
        &self,
        x: ArrayView1<'_, f64>,
        label: usize,
        eps: f64,
        cfg: &CrownConfig,
    ) -> Result<Vec<f64>> {
        self.check_input(x, cfg.use_box)?;
        self.check_label(label)?;
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(Error::InvalidConfig(format!(
                "CROWN radius must be finite and >= 0, got {eps}"
            )));
        }
        let x0 = x.to_vec();
        let first = self.first_layer_prep(&x0, cfg.use_box);
        Ok(self.evaluate(&x0, &first, label, eps, cfg.use_box))
    }

    fn check_label(&self, label: usize) -> Result<()> {
        if label >= self.num_classes {
            return Err(Error::LabelOutOfRange {
                label,
                num_classes: self.num_classes,
            });
        }
        Ok(())
    }

    /// Relaxation pass at radius `eps`; returns `LB_j − allowance` per class (0 at `j = y`).
    fn evaluate(
        &self,
        x0: &[f64],
        first: &FirstLayer,
        label: usize,
        eps: f64,
        use_box: bool,
    ) -> Vec<f64> {
        let pass = self.pass(x0, first, eps, use_box);
        self.spec_bounds(&pass, x0, label, eps, use_box)
    }

    /// The final margins' lower bounds from a pass.
    fn spec_bounds(&self, pass: &Pass, x0: &[f64], y: usize, eps: f64, use_box: bool) -> Vec<f64> {
        let last = self.ops.len() - 1;
        let (w, b) = match &self.ops[last] {
            Op::Linear { w, b } => (w, b),
            _ => unreachable!("checked in build"),
        };
        let k = self.num_classes;
        let hidden = w.cols();
        let mut wy = vec![0.0; hidden];
        w.row_into(y, &mut wy);
        let mut lam = Array2::zeros((k, hidden));
        let mut d = Array1::zeros(k);
        let mut row = vec![0.0; hidden];
        for j in 0..k {
            w.row_into(j, &mut row);
            for (l, (a, bb)) in lam.row_mut(j).iter_mut().zip(wy.iter().zip(&row)) {
                *l = a - bb;
            }
            d[j] = b[y] - b[j];
        }
        let out_mag = &pass.mag[last];
        let (a, d) = self.backward(pass, lam, d, last);
        let mut prep = RowPrep::default();
        (0..k)
            .map(|j| {
                if j == y {
                    return 0.0;
                }
                prep.fill(row_slice(&a, j), x0, use_box);
                let (v, cmag, _) = concretise_prepped(&prep, eps, use_box, 0.0);
                let lb = v + d[j];
                let allowance = self.gamma * (out_mag[y] + out_mag[j] + cmag + d[j].abs());
                let r = lb - allowance;
                if r.is_finite() { r } else { f64::NEG_INFINITY }
            })
            .collect()
    }

    /// Propagates `Λ h_k + d` (with `h_k` the input of op `k`) back to the input.
    fn backward(
        &self,
        pass: &Pass,
        mut lam: Array2<f64>,
        mut d: Array1<f64>,
        k: usize,
    ) -> (Array2<f64>, Array1<f64>) {
        for j in (0..k).rev() {
            match &self.ops[j] {
                Op::Linear { w, b } => {
                    d += &lam.dot(b);
                    lam = w.left_mul(&lam);
                }
                Op::Act(_) => {
                    let rel = &pass.relax[j];
                    for (mut lr, dr) in lam.outer_iter_mut().zip(d.iter_mut()) {
                        let mut acc = 0.0;
                        for (l, r) in lr.iter_mut().zip(rel) {
                            if *l >= 0.0 {
                                acc += *l * r.bl;
                                *l *= r.al;
                            } else {
                                acc += *l * r.bu;
                                *l *= r.au;
                            }
                        }
                        *dr += acc;
                    }
                }
                Op::Pool { in_dim, .. } => {
                    let sel = &pass.pool[j];
                    let mut out = Array2::zeros((lam.nrows(), *in_dim));
                    for ((lr, mut or), dr) in
                        lam.outer_iter().zip(out.outer_iter_mut()).zip(d.iter_mut())
                    {
                        for (&l, &(i, exact, umax)) in lr.iter().zip(sel) {
                            if l >= 0.0 || exact {
                                or[i as usize] += l;
                            } else {
                                *dr += l * umax;
                            }
                        }
                    }
                    lam = out;
                }
            }
        }
        (lam, d)
    }

    /// The concretisation parts of the first layer's rows `W₀ᵢ` (lower bounds, first `n`)
    /// and `−W₀ᵢ` (upper bounds): they depend on the input only, not on the radius.
    fn first_layer_prep(&self, x0: &[f64], use_box: bool) -> FirstLayer {
        let Some(Op::Linear { w, .. }) = self.ops.first().filter(|_| self.ops.len() > 1) else {
            return FirstLayer::default();
        };
        let (n, m) = (w.rows(), w.cols());
        let mut out = vec![RowPrep::default(); 2 * n];
        let mut row = vec![0.0; m];
        for i in 0..n {
            w.row_into(i, &mut row);
            out[i].fill(&row, x0, use_box);
            row.iter_mut().for_each(|r| *r = -*r);
            out[n + i].fill(&row, x0, use_box);
        }
        FirstLayer {
            preps: out,
            steps: RefCell::new(Vec::new()),
        }
    }

    /// Intermediate bounds, relaxations and magnitudes at radius `eps`.
    fn pass(&self, x0: &[f64], first: &FirstLayer, eps: f64, use_box: bool) -> Pass {
        let n_ops = self.ops.len();
        let mag_in: Vec<f64> = x0
            .iter()
            .map(|&v| if use_box { 1.0 } else { v.abs() + eps })
            .collect();
        let mut pass = Pass {
            relax: vec![Vec::new(); n_ops],
            pool: vec![Vec::new(); n_ops],
            mag: Vec::with_capacity(n_ops),
            mag_in,
        };
        // Bounds of the current op's input.
        let mut lo: Vec<f64> = Vec::new();
        let mut hi: Vec<f64> = Vec::new();
        for k in 0..n_ops {
            let prev_mag = if k == 0 {
                &pass.mag_in
            } else {
                &pass.mag[k - 1]
            };
            match &self.ops[k] {
                Op::Linear { w, b } => {
                    let m = if k == 0 && use_box {
                        // |x| ≤ 1 on the box: the same for every input and radius.
                        self.box_mag0.clone()
                    } else {
                        let mut m = vec![0.0; w.rows()];
                        w.mul_vec(prev_mag, true, &mut m);
                        m.iter_mut()
                            .zip(b.iter())
                            .for_each(|(v, bb)| *v += bb.abs());
                        m
                    };
                    pass.mag.push(m);
                    if k == n_ops - 1 {
                        break;
                    }
                    let (l, u) = self.linear_bounds(&pass, k, x0, first, eps, use_box);
                    lo = l;
                    hi = u;
                }
                Op::Act(a) => {
                    let rel: Vec<Relax> =
                        lo.iter().zip(&hi).map(|(&l, &u)| relax(*a, l, u)).collect();
                    let m = prev_mag
                        .iter()
                        .zip(&rel)
                        .map(|(&m, r)| r.al.abs().max(r.au.abs()) * m + r.bl.abs().max(r.bu.abs()))
                        .collect();
                    pass.mag.push(m);
                    // Output interval (monotone activations), widened for rounding.
                    for (l, u) in lo.iter_mut().zip(hi.iter_mut()) {
                        let (fl, fu) = (a.apply(*l), a.apply(*u));
                        *l = fl - 4.0 * UNIT * (1.0 + fl.abs());
                        *u = fu + 4.0 * UNIT * (1.0 + fu.abs());
                    }
                    pass.relax[k] = rel;
                }
                Op::Pool { windows, .. } => {
                    let mut sel = Vec::with_capacity(windows.len());
                    let mut m = Vec::with_capacity(windows.len());
                    let (mut nl, mut nu) = (Vec::with_capacity(windows.len()), Vec::new());
                    for win in windows {
                        let (mut best, mut bl) = (win[0], f64::NEG_INFINITY);
                        let mut umax = f64::NEG_INFINITY;
                        let mut mm: f64 = 0.0;
                        for &i in win {
                            let i_ = i as usize;
                            if lo[i_] > bl {
                                bl = lo[i_];
                                best = i;
                            }
                            umax = umax.max(hi[i_]);
                            mm = mm.max(prev_mag[i_]);
                        }
                        let exact = win.iter().all(|&i| i == best || hi[i as usize] <= bl);
                        sel.push((best, exact, umax));
                        m.push(mm);
                        nl.push(bl);
                        nu.push(umax);
                    }
                    pass.pool[k] = sel;
                    pass.mag.push(m);
                    lo = nl;
                    hi = nu;
                }
            }
        }
        pass
    }

    /// Lower and upper bounds of the outputs of linear op `k` on the set.
    fn linear_bounds(
        &self,
        pass: &Pass,
        k: usize,
        x0: &[f64],
        first: &FirstLayer,
        eps: f64,
        use_box: bool,
    ) -> (Vec<f64>, Vec<f64>) {
        let (w, b) = match &self.ops[k] {
            Op::Linear { w, b } => (w, b),
            _ => unreachable!(),
        };
        let (n, m) = (w.rows(), w.cols());
        let mag = &pass.mag[k];
        let mut lo = vec![0.0; n];
        let mut hi = vec![0.0; n];
        if k == 0 {
            let preps = &first.preps;
            debug_assert_eq!(preps.len(), 2 * n);
            // Warm start: the dual steps of the largest radius `ε' ≤ eps` done so far are at
            // most the roots at `eps` (the root increases with the radius).
            let mut steps = first.steps.borrow_mut();
            let start = steps
                .iter()
                .filter(|(e, _)| *e <= eps)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, t)| t.clone())
                .unwrap_or_else(|| vec![0.0; 2 * n]);
            let mut ts = vec![0.0; 2 * n];
            for i in 0..n {
                let (vl, cl, tl) = concretise_prepped(&preps[i], eps, use_box, start[i]);
                let (vu, cu, tu) = concretise_prepped(&preps[n + i], eps, use_box, start[n + i]);
                (ts[i], ts[n + i]) = (tl, tu);
                lo[i] = vl + b[i] - self.gamma * (mag[i] + cl);
                hi[i] = -vu + b[i] + self.gamma * (mag[i] + cu);
            }
            steps.push((eps, ts));
            return (lo, hi);
        }
        let mut lam = Array2::zeros((2 * n, m));
        let mut d = Array1::zeros(2 * n);
        let mut row = vec![0.0; m];
        for i in 0..n {
            w.row_into(i, &mut row);
            for (c, &r) in row.iter().enumerate() {
                lam[[i, c]] = r;
                lam[[n + i, c]] = -r;
            }
            d[i] = b[i];
            d[n + i] = -b[i];
        }
        let (a, d) = self.backward(pass, lam, d, k);
        let mut prep = RowPrep::default();
        for i in 0..n {
            prep.fill(row_slice(&a, i), x0, use_box);
            let (vl, cl, _) = concretise_prepped(&prep, eps, use_box, 0.0);
            prep.fill(row_slice(&a, n + i), x0, use_box);
            let (vu, cu, _) = concretise_prepped(&prep, eps, use_box, 0.0);
            lo[i] = vl + d[i] - self.gamma * (mag[i] + cl + d[i].abs());
            hi[i] = -(vu + d[n + i]) + self.gamma * (mag[i] + cu + d[n + i].abs());
        }
        (lo, hi)
    }

    /// The pass at a single point (all intervals degenerate): the relaxations are the
    /// tangents, so the backward pass gives the Jacobian of the margins. Returns the
    /// linearised distance `margin_j / ‖∇ margin_j‖` per class (`+∞` at `y` and for a zero
    /// gradient).
    fn jacobian_guess(&self, x0: &[f64], y: usize, margins: &[f64]) -> Vec<f64> {
        let outs = self.forward(ArrayView1::from(x0));
        let n_ops = self.ops.len();
        let mut pass = Pass {
            relax: vec![Vec::new(); n_ops],
            pool: vec![Vec::new(); n_ops],
            mag: Vec::new(),
            mag_in: Vec::new(),
        };
        for k in 0..n_ops {
            let input = if k == 0 {
                ArrayView1::from(x0)
            } else {
                outs[k - 1].view()
            };
            match &self.ops[k] {
                Op::Act(a) => pass.relax[k] = input.iter().map(|&z| relax(*a, z, z)).collect(),
                Op::Pool { windows, .. } => {
                    pass.pool[k] = windows
                        .iter()
                        .map(|win| {
                            let best = *win
                                .iter()
                                .max_by(|&&i, &&j| input[i as usize].total_cmp(&input[j as usize]))
                                .expect("non-empty window");
                            (best, true, input[best as usize])
                        })
                        .collect()
                }
                Op::Linear { .. } => {}
            }
        }
        let last = n_ops - 1;
        let Op::Linear { w, .. } = &self.ops[last] else {
            unreachable!()
        };
        let k = self.num_classes;
        let mut lam = Array2::zeros((k, w.cols()));
        let mut wy = vec![0.0; w.cols()];
        let mut row = vec![0.0; w.cols()];
        w.row_into(y, &mut wy);
        for j in 0..k {
            w.row_into(j, &mut row);
            for (l, (a, b)) in lam.row_mut(j).iter_mut().zip(wy.iter().zip(&row)) {
                *l = a - b;
            }
        }
        let (a, _) = self.backward(&pass, lam, Array1::zeros(k), last);
        (0..k)
            .map(|j| {
                let n = a.row(j).dot(&a.row(j)).sqrt();
                if j != y && n > 0.0 {
                    margins[j] / n
                } else {
                    f64::INFINITY
                }
            })
            .collect()
    }

    /// The largest certified radii of one input against its label `label` (see
    /// [`CrownCertificate`]): the radius is searched on the smallest margin lower bound by
    /// safeguarded quadratic interpolation, starting from 0.45 of the linearised distance
    /// `min_j margin_j / ‖∇ margin_j‖`, until the certified and the refuted radius are within
    /// the relative tolerance [`CrownConfig::with_rtol`]; every reported radius is one at
    /// which the bound was evaluated and found positive, so the search only affects
    /// tightness and cost, never soundness.
    ///
    /// # Examples
    ///
    /// A certified radius never exceeds the distortion of an adversarial example the attack
    /// finds (that would contradict the certificate):
    ///
    /// ```
    /// use intriguing::analysis::{Crown, CrownConfig};
    /// use intriguing::attack::{find_minimal_perturbation, AttackConfig, Target};
    /// use intriguing::models::{Activation, Mlp};
    /// use intriguing::ClassifierExt;
    /// use ndarray::Array1;
    /// let mlp = Mlp::random(&[10, 8, 3], Activation::Relu, 5)?;
    /// let crown = Crown::from_mlp(&mlp)?;
    /// let x = Array1::from_shape_fn(10, |i| (i % 3) as f64 / 2.0);
    /// let y = mlp.predict(x.view())?;
    /// let cert = crown.certify(x.view(), y, &CrownConfig::new().with_per_class(true))?;
    /// let target = Target::Untargeted { true_label: y };
    /// let attack = find_minimal_perturbation(&mlp, x.view(), target, &AttackConfig::default())?;
    /// if let Some(l2) = attack.l2() {
    ///     assert!(cert.untargeted <= l2, "{} > {l2}", cert.untargeted);
    /// }
    /// let per_class = cert.per_class.as_ref().expect("asked for");
    /// assert!(per_class.iter().all(|&r| r >= cert.untargeted));
    /// # Ok::<(), intriguing::Error>(())
    /// ```
    pub fn certify(
        &self,
        x: ArrayView1<'_, f64>,
        label: usize,
        cfg: &CrownConfig,
    ) -> Result<CrownCertificate> {
        self.check_input(x, cfg.use_box)?;
        self.check_label(label)?;
        let x0 = x.to_vec();
        let first = self.first_layer_prep(&x0, cfg.use_box);
        let z = self.forward(x).pop().expect("ops");
        let predicted = argmax(z.view());
        let k = self.num_classes;
        let margins: Vec<f64> = (0..k).map(|j| z[label] - z[j]).collect();
        let eps_max = if cfg.use_box {
            x0.iter()
                .map(|&v| v.max(1.0 - v).powi(2))
                .sum::<f64>()
                .sqrt()
        } else {
            f64::MAX.sqrt()
        };
        // Per-class brackets: (certified radius, its bound), (refuted radius, its bound).
        let mut lo: Vec<(f64, f64)> = margins.iter().map(|&m| (0.0, m)).collect();
        let mut hi: Vec<Option<(f64, f64)>> = vec![None; k];
        for j in 0..k {
            if j != label && margins[j] <= 0.0 {
                hi[j] = Some((0.0, margins[j]));
            }
        }
        let mut evaluations = 0usize;
        let mut nearest_class = label;
        let untargeted_fails = margins
            .iter()
            .enumerate()
            .any(|(j, &m)| j != label && m <= 0.0);
        // One relaxation pass at `ε`, recorded in the per-class brackets. (Reusing the
        // intervals of a pass at a larger radius, valid at `ε`, for a cheaper pass was tried:
        // near the threshold, where the search spends its passes, it certified about one
        // time in nine and cost more than it saved; docs/analysis.md §4b.)
        let eval = |eps: f64,
                    lo: &mut Vec<(f64, f64)>,
                    hi: &mut Vec<Option<(f64, f64)>>,
                    evaluations: &mut usize|
         -> Vec<f64> {
            *evaluations += 1;
            let f = self.evaluate(&x0, &first, label, eps, cfg.use_box);
            for j in (0..k).filter(|&j| j != label) {
                if f[j] > 0.0 {
                    if eps > lo[j].0 {
                        lo[j] = (eps, f[j]);
                    }
                } else if hi[j].is_none_or(|(h, _)| eps < h) {
                    hi[j] = Some((eps, f[j]));
                }
            }
            f
        };
        // The first step: a fraction of the linearised distance (the bound falls faster than
        // linearly, and its root lies at 0.33–0.56 of that distance on the MNIST MLPs).
        let lin = self.jacobian_guess(&x0, label, &margins);
        let first_step = |d: f64| {
            let g = GUESS_FRACTION * d;
            if g.is_finite() && g > 0.0 {
                g.min(eps_max)
            } else {
                eps_max.min(1.0)
            }
        };
        let lin_min = lin.iter().copied().fold(f64::INFINITY, f64::min);
        // Untargeted search on F(ε) = min_j f_j(ε).
        let untargeted = if untargeted_fails {
            0.0
        } else {
            let min_f = |f: &[f64]| {
                (0..k)
                    .filter(|&j| j != label)
                    .map(|j| (f[j], j))
                    .fold((f64::INFINITY, label), |a, b| if b.0 < a.0 { b } else { a })
            };
            let f0 = margins
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != label)
                .map(|(_, &m)| m)
                .fold(f64::INFINITY, f64::min);
            let origin = (f0, f0 / lin_min);
            search(
                origin,
                (0.0, f0),
                None,
                first_step(lin_min),
                eps_max,
                cfg,
                &mut |eps| {
                    let f = eval(eps, &mut lo, &mut hi, &mut evaluations);
                    let (v, j) = min_f(&f);
                    if v <= 0.0 {
                        nearest_class = j;
                    }
                    v
                },
            )
        };
        let per_class = if cfg.per_class {
            let mut out = vec![f64::INFINITY; k];
            for j in (0..k).filter(|&j| j != label) {
                if margins[j] <= 0.0 {
                    out[j] = 0.0;
                    continue;
                }
                let (l0, h0) = (lo[j], hi[j]);
                let origin = (margins[j], margins[j] / lin[j]);
                out[j] = search(
                    origin,
                    l0,
                    h0,
                    first_step(lin[j]),
                    eps_max,
                    cfg,
                    &mut |eps| eval(eps, &mut lo, &mut hi, &mut evaluations)[j],
                )
                .max(untargeted);
            }
            Some(out)
        } else {
            None
        };
        Ok(CrownCertificate {
            label,
            predicted,
            untargeted,
            nearest_class,
            per_class,
            evaluations,
        })
    }

    /// [`certify`](Crown::certify) for each row of `inputs`.
    pub fn certify_batch(
        &self,
        inputs: ArrayView2<'_, f64>,
        labels: &[usize],
        cfg: &CrownConfig,
    ) -> Result<Vec<CrownCertificate>> {
        if labels.len() != inputs.nrows() {
            return Err(Error::shape("labels", inputs.nrows(), labels.len()));
        }
        inputs
            .outer_iter()
            .zip(labels)
            .map(|(x, &y)| self.certify(x, y, cfg))
            .collect()
    }
}

/// Exact pruning of [`Target::Nearest`](crate::attack::Target::Nearest)
/// ([`AttackConfig::with_label_bound`](crate::attack::AttackConfig::with_label_bound)): one
/// relaxation pass at the radius ([`Crown::margin_lower_bounds`]) proves every label with a
/// positive margin bound unreachable. The input set is the ball intersected with `[0, 1]ⁿ`
/// when the attack's box lies inside `[0, 1]ⁿ` (and `x` in it), else the ball alone (a
/// superset of the ball within any box).
impl LabelBound for Crown {
    fn unreachable_within(
        &self,
        x: ArrayView1<'_, f64>,
        true_label: usize,
        radius: f64,
        bounds: &BoxBounds,
    ) -> Result<Vec<bool>> {
        let inside_unit = (0..x.len()).all(|i| {
            let (lo, hi) = bounds.interval_at(i);
            lo >= 0.0 && hi <= 1.0
        }) && x.iter().all(|v| (0.0..=1.0).contains(v));
        let cfg = CrownConfig::default().with_box(inside_unit);
        let f = self.margin_lower_bounds(x, true_label, radius, &cfg)?;
        Ok(f.iter()
            .enumerate()
            .map(|(l, &v)| l != true_label && v > 0.0)
            .collect())
    }
}

/// Largest `ε` with `f(ε) > 0`, to the relative tolerance `cfg.rtol`, from the certified
/// point `lo` (and the refuted point `hi`, if known).
///
/// `origin` is `(f(0), p)` with `p` an estimate of `−f′(0)` (the norm of the margin's
/// gradient at the input). The steps follow a model of the bound, which falls faster than
/// linearly in `ε` (the intermediate intervals widen with it):
/// - while one side is known only through the origin, `f(ε) ≈ f(0) − pε − qε²` with `q` fitted
///   to the evaluated end;
/// - once both ends are evaluated, the quadratic through them and the evaluated point (or the
///   origin) nearest to them;
/// - a root estimate within `0.9·rtol` of an end is moved to that distance, where either
///   outcome ends the search if the estimate was right; two steps in a row that do not halve
///   the bracket make the next one a bisection.
///
/// The first step is `guess`. Returns a radius at which `f` was positive (or `lo.0`), or
/// `f64::INFINITY` when `f(eps_max) > 0` with a finite box radius. The steps only affect how
/// many evaluations the search takes and how close to the threshold it ends, never soundness.
fn search(
    origin: (f64, f64),
    mut lo: (f64, f64),
    mut hi: Option<(f64, f64)>,
    guess: f64,
    eps_max: f64,
    cfg: &CrownConfig,
    f: &mut dyn FnMut(f64) -> f64,
) -> f64 {
    let boxed = cfg.use_box;
    let rtol = cfg.rtol;
    // The points evaluated (with the origin), for the model's third point.
    let mut pts: Vec<(f64, f64)> = vec![(0.0, origin.0)];
    pts.extend([Some(lo), hi].into_iter().flatten().filter(|p| p.0 > 0.0));
    let (mut slow, mut bisect) = (0u8, false);
    for _ in 0..cfg.max_evaluations {
        let (l, fl) = lo;
        let eps = match hi {
            None => {
                if l >= eps_max {
                    return if boxed { f64::INFINITY } else { l };
                }
                if l == 0.0 {
                    guess
                } else {
                    // A step within `0.9·rtol` of `l` ends the search if refuted.
                    let close = l / (1.0 - 0.9 * rtol);
                    let r = slope_root(origin, lo);
                    let e = if r > close { r } else { close };
                    e.min(2.0 * l).min(eps_max)
                }
            }
            Some((h, fh)) => {
                if h - l <= rtol * h {
                    break;
                }
                let r = if l == 0.0 {
                    slope_root(origin, (h, fh))
                } else {
                    let third = pts.iter().filter(|p| p.0 != l && p.0 != h).min_by(|a, b| {
                        let d = |p: &&(f64, f64)| (p.0 - l).abs().min((p.0 - h).abs());
                        d(a).total_cmp(&d(b))
                    });
                    let q = third
                        .map(|&t| quadratic_root(lo, (h, fh), t))
                        .filter(|r| *r > l && *r < h);
                    q.unwrap_or_else(|| h - fh * (h - l) / (fh - fl))
                };
                let (a, b) = (l / (1.0 - 0.9 * rtol), h * (1.0 - 0.9 * rtol));
                // An estimate outside the bracket (e.g. a root at an end) goes to the point
                // `0.9·rtol` inside that end.
                if bisect || r.is_nan() || a >= b {
                    0.5 * (l + h)
                } else {
                    r.clamp(a, b)
                }
            }
        };
        let width = hi.map(|(h, _)| h - lo.0);
        let v = f(eps);
        let v = if v.is_nan() { f64::NEG_INFINITY } else { v };
        if v > 0.0 {
            if eps > lo.0 {
                lo = (eps, v);
            }
        } else if hi.is_none_or(|(h, _)| eps < h) {
            hi = Some((eps, v.max(-f64::MAX)));
        }
        pts.push((eps, v.clamp(-f64::MAX, f64::MAX)));
        // Safeguard: two steps in a row that did not halve the bracket make the next a
        // bisection.
        bisect = false;
        if let (Some(w), Some((h, _))) = (width, hi) {
            slow = if h - lo.0 > 0.5 * w { slow + 1 } else { 0 };
            if slow >= 2 {
                (bisect, slow) = (true, 0);
            }
        }
    }
    lo.0
}

/// Root of `f(ε) ≈ f₀ − pε − qε²` (`origin = (f₀, p)`, `f₀ > 0`) with `q` fitted to the
/// point `(e, fe)`; `+∞` when the model has no positive root, `NaN` for unusable data.
fn slope_root(origin: (f64, f64), (e, fe): (f64, f64)) -> f64 {
    let (f0, p) = origin;
    let p = if p.is_finite() && p > 0.0 { p } else { 0.0 };
    let q = (f0 - p * e - fe) / (e * e);
    let disc = p * p + 4.0 * q * f0;
    if disc < 0.0 {
        return f64::INFINITY;
    }
    // 2f₀ / (p + √disc): the positive root, without cancellation.
    let den = p + disc.sqrt();
    if den > 0.0 { 2.0 * f0 / den } else { f64::NAN }
}

/// The root between `a.0` and `b.0` (where the values change sign) of the quadratic through
/// the three points, `NaN` if there is none.
fn quadratic_root(a: (f64, f64), b: (f64, f64), c: (f64, f64)) -> f64 {
    let ((x0, y0), (x1, y1), (x2, y2)) = (a, b, c);
    // Newton form: y0 + d01 (x − x0) + k (x − x0)(x − x1).
    let d01 = (y1 - y0) / (x1 - x0);
    let d12 = (y2 - y1) / (x2 - x1);
    let k = (d12 - d01) / (x2 - x0);
    // As a polynomial in t = x − x0: k t² + (d01 + k (x0 − x1)) t + y0.
    let bq = d01 + k * (x0 - x1);
    let (lo, hi) = (x0.min(x1), x0.max(x1));
    let inside = |t: f64| {
        let x = x0 + t;
        if x > lo && x < hi { x } else { f64::NAN }
    };
    if k == 0.0 || !k.is_finite() {
        return inside(-y0 / bq);
    }
    let disc = bq * bq - 4.0 * k * y0;
    if disc.is_nan() || disc < 0.0 {
        return f64::NAN;
    }
    let sq = disc.sqrt();
    // The two roots without cancellation: t₁ = −(b + sign(b)√disc)/(2k), t₂ = y0/(k t₁).
    let qq = -0.5 * (bq + bq.signum() * sq);
    let (t1, t2) = (qq / k, y0 / qq);
    let (r1, r2) = (inside(t1), inside(t2));
    if r1.is_nan() { r2 } else { r1 }
}

/// The `ε`-independent part of concretising one row `a` at `x₀`: `a·x₀`, `‖a‖₂`, the box
/// bound, the magnitudes, and for the box the coordinates that can move: `|aᵢ|` and
/// `cᵢ > 0`, the distance from `x₀ᵢ` to the face `−aᵢ` points to (a coordinate with `cᵢ = 0`
/// stays at `x₀ᵢ` for every dual step and adds nothing).
#[derive(Debug, Clone, Default)]
struct RowPrep {
    ax0: f64,
    mag: f64,
    na: f64,
    box_v: f64,
    abs_sum: f64,
    /// `|aᵢ|` and `cᵢ` of the movable coordinates (the first `movable` entries; the buffers
    /// are kept between rows and only grow).
    abs_a: Vec<f64>,
    cap: Vec<f64>,
    movable: usize,
    cap2: f64,
}

/// Row `i` of a matrix in standard layout.
fn row_slice(a: &Array2<f64>, i: usize) -> &[f64] {
    a.row(i).to_slice().expect("standard layout")
}

/// `cᵢ`: `xᵢ` for `aᵢ > 0`, `1 − xᵢ` for `aᵢ < 0`, `0` for `aᵢ = 0` (the coordinate does not
/// move), by arithmetic on the comparisons (a branch on the sign is mispredicted half the
/// time); exact.
#[inline(always)]
fn cap_of(ai: f64, xi: f64) -> f64 {
    let pos = f64::from(u8::from(ai > 0.0));
    let neg = f64::from(u8::from(ai < 0.0));
    pos * xi + neg * (1.0 - xi)
}

impl RowPrep {
    /// One branch-free pass over the row: the sums in four lanes each (the error bound of a
    /// sum does not depend on its order) and, for the box, the movable coordinates, each
    /// written at the next free slot unconditionally and kept by advancing the slot.
    fn fill(&mut self, a: &[f64], x0: &[f64], use_box: bool) {
        let n = a.len();
        debug_assert_eq!(n, x0.len());
        // Without the box only slot 0 is written, and never kept.
        let slots = if use_box { n + 1 } else { 1 };
        if self.abs_a.len() < slots {
            self.abs_a.resize(slots, 0.0);
            self.cap.resize(slots, 0.0);
        }
        let keep = usize::from(use_box);
        let (abs_a, cap) = (&mut self.abs_a[..slots], &mut self.cap[..slots]);
        let mut m = 0usize;
        let mut acc = [[0.0f64; 4]; 6];
        let mut lane = |acc: &mut [[f64; 4]; 6], l: usize, ai: f64, xi: f64| {
            let p = ai * xi;
            acc[0][l] += p;
            acc[1][l] += p.abs();
            acc[2][l] += ai * ai;
            acc[3][l] += ai.min(0.0);
            acc[4][l] += ai.abs();
            let c = cap_of(ai, xi);
            acc[5][l] += c * c;
            abs_a[m] = ai.abs();
            cap[m] = c;
            m += keep * usize::from(c > 0.0);
        };
        let (ac, xc) = (a.chunks_exact(4), x0[..n].chunks_exact(4));
        let (ar, xr) = (ac.remainder(), xc.remainder());
        for (a4, x4) in ac.zip(xc) {
            for l in 0..4 {
                lane(&mut acc, l, a4[l], x4[l]);
            }
        }
        for (&ai, &xi) in ar.iter().zip(xr) {
            lane(&mut acc, 0, ai, xi);
        }
        let [ax0, mag, na2, box_v, abs_sum, cap2] = acc.map(|v| (v[0] + v[1]) + (v[2] + v[3]));
        self.ax0 = ax0;
        self.mag = mag;
        self.na = na2.sqrt();
        self.box_v = box_v;
        self.abs_sum = abs_sum;
        self.movable = m;
        self.cap2 = cap2;
    }
}

/// `(Σ sᵢ², Σ |aᵢ| sᵢ, Σ_{|aᵢ|t < cᵢ} aᵢ²)` with `sᵢ = min(|aᵢ| t, cᵢ)` (the clipped dual
/// step's length in each coordinate; the last sum over the coordinates not at their limit),
/// four partial sums each (the error bound of a sum does not depend on its order).
fn dual_sums(abs_a: &[f64], cap: &[f64], t: f64) -> (f64, f64, f64) {
    let (mut s2, mut sa, mut fr) = ([0.0f64; 4], [0.0f64; 4], [0.0f64; 4]);
    let (ac, cc) = (abs_a.chunks_exact(4), cap.chunks_exact(4));
    let (ar, cr) = (ac.remainder(), cc.remainder());
    // Arithmetic on the comparison instead of a branch (mispredicted at random).
    let lane = |s2: &mut f64, sa: &mut f64, fr: &mut f64, a: f64, c: f64| {
        let at = a * t;
        let s = at.min(c);
        *s2 += s * s;
        *sa += a * s;
        *fr += f64::from(u8::from(at < c)) * (a * a);
    };
    for (a4, c4) in ac.zip(cc) {
        for l in 0..4 {
            lane(&mut s2[l], &mut sa[l], &mut fr[l], a4[l], c4[l]);
        }
    }
    for (&a, &c) in ar.iter().zip(cr) {
        lane(&mut s2[0], &mut sa[0], &mut fr[0], a, c);
    }
    (
        (s2[0] + s2[1]) + (s2[2] + s2[3]),
        (sa[0] + sa[1]) + (sa[2] + sa[3]),
        (fr[0] + fr[1]) + (fr[2] + fr[3]),
    )
}

/// `min a·x` over `{‖x − x₀‖ ≤ ε} ∩ [0,1]ⁿ` (or the ball alone), as a certified lower bound
/// up to rounding, and the magnitude of the terms summed.
#[cfg(test)]
fn concretise(a: ArrayView1<'_, f64>, x0: &[f64], eps: f64, use_box: bool) -> (f64, f64) {
    let mut p = RowPrep::default();
    p.fill(&a.to_vec(), x0, use_box);
    let (v, m, _) = concretise_prepped(&p, eps, use_box, 0.0);
    (v, m)
}

/// [`concretise`] from the row's `ε`-independent part; also returns the last dual step `t`
/// tried (a valid `t_start` for any larger `ε`). With `sᵢ` the clipped step
/// (`xₜᵢ − x₀ᵢ = −sign(aᵢ) sᵢ`), `a·xₜ = a·x₀ − Σ|aᵢ|sᵢ` and `‖xₜ − x₀‖² = Σ sᵢ²`.
///
/// The dual step `t = 1/μ` solves `F(t) = Σ min(aᵢ²t², cᵢ²) = ε²`. As a function of `τ = t²`,
/// `F` is concave and piecewise linear (a sum of `min(aᵢ²τ, cᵢ²)`), so Newton's method from
/// a point left of the root stays left of it and increases monotonically to it, reaching it
/// exactly once the set of clipped coordinates stops growing: with `C` the `Σ cᵢ²` of the
/// coordinates clipped at `t` and `A` the `Σ aᵢ²` of the others, the next step is
/// `t' = √((ε² − C)/A)`. It starts at the larger of the unclipped ball step `t₀ = ε/‖a‖`
/// (`F(t₀) ≤ ε²`: clipping only shortens the step) and `t_start` (which must not exceed the
/// root, e.g. the step returned for a smaller `ε`). Each iterate's `g(1/t)` is a lower bound
/// (weak duality), so the iteration affects tightness only.
fn concretise_prepped(p: &RowPrep, eps: f64, use_box: bool, t_start: f64) -> (f64, f64, f64) {
    let na = p.na;
    let ball = p.ax0 - eps * na;
    let mut mag = p.mag + eps * na;
    if !use_box || eps == 0.0 || na == 0.0 {
        return (ball, mag, 0.0);
    }
    // |aᵢ xₜᵢ| ≤ |aᵢ| and |aᵢ| sᵢ ≤ |aᵢ|: both sums are within `abs_sum`.
    mag += p.abs_sum;
    let e2 = eps * eps;
    let mut best = ball.max(p.box_v);
    if p.cap2 - e2 <= 0.0 {
        // Every coordinate at its box limit is within the ball: the box bound is the minimum.
        return (best, mag, 0.0);
    }
    let (abs_a, cap) = (&p.abs_a[..p.movable], &p.cap[..p.movable]);
    let mut t = (eps / na).max(t_start);
    let mut extra = 0.0;
    for _ in 0..24 {
        let (s2, sa, free) = dual_sums(abs_a, cap, t);
        let g = p.ax0 - sa + (s2 - e2) / (2.0 * t);
        if g > best {
            best = g;
            // The quadratic terms' magnitude:
            extra = (s2 + e2) / (2.0 * t);
        }
        // The dual is flat at its maximum (its derivative in μ is (Σ sᵢ² − ε²)/2): a step
        // within 0.1 % of ε² (in squared norm) loses a negligible amount of the bound.
        if s2 >= (1.0 - 1e-3) * e2 || free <= 0.0 {
            break;
        }
        let clipped = s2 - t * t * free;
        let next = ((e2 - clipped) / free).sqrt();
        if next.is_nan() || next <= t {
            break;
        }
        t = next;
    }
    (best, mag + extra, t)
}

fn act_value(a: Activation, z: f64) -> f64 {
    a.apply(z)
}

fn act_slope(a: Activation, z: f64) -> f64 {
    match a {
        Activation::Sigmoid => {
            let s = a.apply(z);
            s * (1.0 - s)
        }
        Activation::Tanh => {
            let t = z.tanh();
            1.0 - t * t
        }
        Activation::Relu => {
            if z > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::Identity => 1.0,
    }
}

/// `max |f''|`: sigmoid `1/(6√3) ≈ 0.0962`, tanh `4/(3√3) ≈ 0.770` (rounded up).
fn second_derivative_bound(a: Activation) -> f64 {
    match a {
        Activation::Sigmoid => 0.0963,
        Activation::Tanh => 0.7699,
        _ => 0.0,
    }
}

/// The tangent of `f` at `d`: `(slope, intercept)`.
fn tangent(a: Activation, d: f64) -> (f64, f64) {
    let s = act_slope(a, d);
    (s, act_value(a, d) - s * d)
}

/// The chord of `f` over `[l, u]`.
fn chord(a: Activation, l: f64, u: f64) -> (f64, f64) {
    let (fl, fu) = (act_value(a, l), act_value(a, u));
    let s = (fu - fl) / (u - l);
    (s, fl - s * l)
}

/// An upper line of the S-shaped `f` (sigmoid, tanh) on `[l, u]`, `l < u` not narrow.
fn s_upper(a: Activation, l: f64, u: f64) -> (f64, f64) {
    if u <= 0.0 {
        return chord(a, l, u);
    }
    if l >= 0.0 {
        return tangent(a, 0.5 * (l + u));
    }
    let fl = act_value(a, l);
    let through = |d: f64| {
        let (s, c) = tangent(a, d);
        s * l + c - fl // ≥ 0: the tangent at d is above f at l
    };
    if through(u) < 0.0 {
        return chord(a, l, u);
    }
    // Smallest valid d in [0, u]: through() increases in d; keep hi valid.
    let (mut dlo, mut dhi) = (0.0, u);
    for _ in 0..28 {
        let mid = 0.5 * (dlo + dhi);
        if mid <= dlo || mid >= dhi {
            break;
        }
        if through(mid) >= 0.0 {
            dhi = mid;
        } else {
            dlo = mid;
        }
    }
    tangent(a, dhi)
}

/// The relaxation of activation `a` on `[l, u]`, widened for rounding.
fn relax(a: Activation, l: f64, u: f64) -> Relax {
    let (l, u) = if l <= u { (l, u) } else { (u, l) };
    let r = match a {
        Activation::Identity => Relax {
            al: 1.0,
            bl: 0.0,
            au: 1.0,
            bu: 0.0,
        },
        Activation::Relu => {
            if u <= 0.0 {
                Relax {
                    al: 0.0,
                    bl: 0.0,
                    au: 0.0,
                    bu: 0.0,
                }
            } else if l >= 0.0 {
                Relax {
                    al: 1.0,
                    bl: 0.0,
                    au: 1.0,
                    bu: 0.0,
                }
            } else {
                let s = u / (u - l);
                Relax {
                    al: if u >= -l { 1.0 } else { 0.0 },
                    bl: 0.0,
                    au: s,
                    bu: -s * l,
                }
            }
        }
        Activation::Sigmoid | Activation::Tanh => {
            let mid = 0.5 * (l + u);
            let w = u - l;
            if w <= 1e-4 * mid.abs().max(1.0) {
                let (s, c) = tangent(a, mid);
                let t = second_derivative_bound(a) * w * w / 8.0;
                Relax {
                    al: s,
                    bl: c - t,
                    au: s,
                    bu: c + t,
                }
            } else {
                let (au, bu) = s_upper(a, l, u);
                // Mirror: f(z) ≥ −au'·z + 2f(0) − bu' with (au', bu') the upper line on [−u, −l].
                let (am, bm) = s_upper(a, -u, -l);
                let f0 = act_value(a, 0.0);
                Relax {
                    al: am,
                    bl: 2.0 * f0 - bm,
                    au,
                    bu,
                }
            }
        }
    };
    let span = l.abs().max(u.abs());
    let sl = 16.0 * UNIT * (1.0 + r.bl.abs() + r.al.abs() * span);
    let su = 16.0 * UNIT * (1.0 + r.bu.abs() + r.au.abs() * span);
    let exact =
        matches!(a, Activation::Identity) || (a == Activation::Relu && (u <= 0.0 || l >= 0.0));
    if exact {
        r
    } else {
        Relax {
            bl: r.bl - sl,
            bu: r.bu + su,
            ..r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every relaxation encloses the activation on a dense grid of its interval.
    #[test]
    fn relaxations_enclose_the_activation() {
        let ends = [
            -30.0, -6.0, -2.0, -1.0, -0.3, -1e-3, 0.0, 1e-3, 0.2, 0.9, 2.5, 7.0, 25.0,
        ];
        for a in [
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Relu,
            Activation::Identity,
        ] {
            for &l in &ends {
                for &u in &ends {
                    if u < l {
                        continue;
                    }
                    for (l, u) in [(l, u), (l, l + 1e-6), (u - 1e-9, u)] {
                        let r = relax(a, l, u);
                        for i in 0..=2000 {
                            let z = (l + (u - l) * i as f64 / 2000.0).clamp(l, u);
                            let f = a.apply(z);
                            assert!(r.al * z + r.bl <= f, "{a} lower [{l}, {u}] at {z}");
                            assert!(r.au * z + r.bu >= f, "{a} upper [{l}, {u}] at {z}");
                        }
                    }
                }
            }
        }
    }

    /// The relaxations are not trivial: on a mixed interval the lines touch the function.
    #[test]
    fn relaxations_are_tight_somewhere() {
        for a in [Activation::Sigmoid, Activation::Tanh] {
            let (l, u) = (-1.5, 2.0);
            let r = relax(a, l, u);
            let gap_u = (0..=4000)
                .map(|i| {
                    let z = l + (u - l) * i as f64 / 4000.0;
                    r.au * z + r.bu - a.apply(z)
                })
                .fold(f64::INFINITY, f64::min);
            let gap_l = (0..=4000)
                .map(|i| {
                    let z = l + (u - l) * i as f64 / 4000.0;
                    a.apply(z) - r.al * z - r.bl
                })
                .fold(f64::INFINITY, f64::min);
            assert!(gap_u < 1e-6 && gap_l < 1e-6, "{a}: {gap_u} {gap_l}");
        }
        let r = relax(Activation::Relu, -1.0, 3.0);
        assert_eq!((r.al, r.au), (1.0, 0.75));
        let r = relax(Activation::Relu, -3.0, 1.0);
        assert_eq!(r.al, 0.0);
    }

    /// The concretisation equals a brute-force minimum over the ball ∩ box (2-D grid) and is
    /// never above it.
    #[test]
    fn concretisation_matches_brute_force_in_2d() {
        let cases = [
            ([1.0, 2.0], [0.1, 0.5], 0.3),
            ([-1.0, 0.5], [0.9, 0.05], 0.4),
            ([3.0, -0.2], [0.0, 1.0], 2.0),
            ([0.3, 0.4], [0.5, 0.5], 0.1),
            ([1.0, 1.0], [0.02, 0.01], 0.5),
        ];
        for (a, x0, eps) in cases {
            let (v, _) = concretise(ArrayView1::from(&a[..]), &x0, eps, true);
            let mut best = f64::INFINITY;
            let n = 1500;
            for i in 0..=n {
                for j in 0..=n {
                    let x = [i as f64 / n as f64, j as f64 / n as f64];
                    let d2 = (x[0] - x0[0]).powi(2) + (x[1] - x0[1]).powi(2);
                    if d2 <= eps * eps {
                        best = best.min(a[0] * x[0] + a[1] * x[1]);
                    }
                }
            }
            assert!(v <= best + 1e-12, "{a:?} {x0:?} {eps}: {v} > {best}");
            assert!(v >= best - 5e-3, "{a:?} {x0:?} {eps}: {v} ≪ {best}");
            let (ball, _) = concretise(ArrayView1::from(&a[..]), &x0, eps, false);
            assert!(v >= ball - 1e-15);
        }
    }

    /// The model roots are exact on their own models: a quadratic through three of its
    /// points, and `f₀ − pε − qε²` through one.
    #[test]
    fn model_roots_are_exact_on_quadratics() {
        // f(ε) = 2 − 3ε − 5ε², root (−3 + √49)/10 = 0.4.
        let f = |e: f64| 2.0 - 3.0 * e - 5.0 * e * e;
        let r = quadratic_root((0.3, f(0.3)), (0.5, f(0.5)), (0.1, f(0.1)));
        assert!((r - 0.4).abs() < 1e-14, "{r}");
        let r = quadratic_root((0.5, f(0.5)), (0.3, f(0.3)), (0.9, f(0.9)));
        assert!((r - 0.4).abs() < 1e-14, "{r}");
        // No sign change between the first two points: no root.
        assert!(quadratic_root((0.1, f(0.1)), (0.2, f(0.2)), (0.5, f(0.5))).is_nan());
        for e in [0.2, 0.4, 0.7] {
            let r = slope_root((2.0, 3.0), (e, f(e)));
            assert!((r - 0.4).abs() < 1e-14, "{e}: {r}");
        }
        // A model that never reaches zero.
        assert_eq!(slope_root((1.0, 0.0), (1.0, 2.0)), f64::INFINITY);
    }

    /// The search ends with a radius where `f > 0` within `rtol` of the root, on smooth and
    /// kinked decreasing functions, from guesses on either side, in at most 8 evaluations
    /// (bisection of `[0, 2·root]` to the same tolerance alone takes 8).
    #[test]
    fn search_brackets_the_root_to_the_tolerance() {
        let cfg = CrownConfig::default();
        type Case = (&'static str, fn(f64) -> f64, f64);
        let cases: [Case; 4] = [
            ("quadratic", |e| 2.0 - 3.0 * e - 5.0 * e * e, 0.4),
            ("cubic", |e| 1.0 - e - 4.0 * e * e * e, 0.5),
            ("kinked", |e| (1.0 - 2.0 * e).min(1.3 - 4.0 * e), 0.325),
            ("exponential", |e| 3.0 - (4.0 * e).exp(), 3f64.ln() / 4.0),
        ];
        for (name, f, root) in cases {
            for guess in [0.05, 0.3, 0.45, 0.9] {
                let mut n = 0;
                let mut ff = |e: f64| {
                    n += 1;
                    f(e)
                };
                let r = search(
                    (f(0.0), 1.0),
                    (0.0, f(0.0)),
                    None,
                    guess,
                    10.0,
                    &cfg,
                    &mut ff,
                );
                assert!(f(r) > 0.0, "{name} from {guess}: f({r}) <= 0");
                assert!(
                    r <= root && r >= root * (1.0 - cfg.rtol()),
                    "{name}: {r} vs {root}"
                );
                assert!(n <= 8, "{name} from {guess}: {n} evaluations");
            }
        }
        // Certified at the largest radius: +∞ with the box, the radius without.
        let mut pos = |_: f64| 1.0;
        let r = search((1.0, 1.0), (0.0, 1.0), None, 0.5, 3.0, &cfg, &mut pos);
        assert_eq!(r, f64::INFINITY);
        let cfg_ball = CrownConfig::default().with_box(false);
        let r = search((1.0, 1.0), (0.0, 1.0), None, 0.5, 3.0, &cfg_ball, &mut pos);
        assert_eq!(r, 3.0);
        // NaN values count as refutations.
        let mut nan = |e: f64| if e < 0.2 { 1.0 } else { f64::NAN };
        let r = search((1.0, 1.0), (0.0, 1.0), None, 0.5, 3.0, &cfg, &mut nan);
        assert!(r < 0.2 && r >= 0.2 * (1.0 - cfg.rtol()), "{r}");
    }
}
