//! Per-layer operator norms and the network's upper Lipschitz bound (paper §4.3, Table 5).

use super::fourier::{conv_fourier_bound, conv_operator_norm_lanczos};
use super::spectral::{PowerIterationConfig, spectral_norm};
use crate::classifier::Classifier;
use crate::error::Result;
use crate::models::cnn::{Cnn, CnnLayer};
use crate::models::{Activation, Mlp};
use ndarray::{ArrayView1, ArrayView2};
use std::fmt::Write as _;

/// One linear layer of a model, with the non-linearities that follow it.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LayerBound {
    /// `conv1`, `fc2`, …
    pub name: String,
    /// `dense` or `conv`.
    pub kind: String,
    /// Human-readable shape, e.g. `784→100` or `6×1×5×5 on 1×28×28, stride 1, pad 0`.
    pub shape: String,
    /// The operator norm `‖W‖₂` of the layer's linear part: power iteration for a dense
    /// layer, restarted Lanczos on the explicit (zero-padded) operator for a convolution.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64"))]
    pub operator_norm: f64,
    /// Operator applications used for [`operator_norm`](LayerBound::operator_norm).
    pub iterations: usize,
    /// Whether the power iteration met both stopping tests.
    pub converged: bool,
    /// For a convolution: the paper's Fourier bound (≥ the operator norm).
    pub fourier_bound: Option<f64>,
    /// The norm that enters the product: the Fourier bound for a convolution (a guaranteed
    /// upper bound, as in the paper's Table 5), the converged power-iteration value for a
    /// dense layer.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64"))]
    pub bound: f64,
    /// What follows the linear map before the next one, e.g. `sigmoid`, `relu, maxpool 2/2`.
    pub after: String,
    /// The product of the Lipschitz constants of what follows (sigmoid 1/4, tanh 1, ReLU 1,
    /// non-overlapping max-pool 1, identity 1).
    pub activation_constant: f64,
    /// `bound · activation_constant`.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64"))]
    pub layer_bound: f64,
    /// The product of `layer_bound` over this layer and all before it: an upper Lipschitz
    /// bound of the map from the input to this layer's output (after its non-linearities).
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_f64"))]
    pub cumulative: f64,
}

/// The per-layer table of a model; see [`lipschitz_report`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LipschitzReport {
    /// One row per linear layer, in order.
    pub layers: Vec<LayerBound>,
}

impl LipschitzReport {
    /// The upper Lipschitz bound of the whole network (input → logits) in the L2 norm.
    pub fn total(&self) -> f64 {
        self.layers.last().map_or(1.0, |l| l.cumulative)
    }

    /// The upper Lipschitz bound of the input → penultimate representation map (the input of
    /// the last linear layer): the product over all rows but the last.
    pub fn penultimate(&self) -> f64 {
        let n = self.layers.len();
        if n < 2 {
            1.0
        } else {
            self.layers[n - 2].cumulative
        }
    }

    /// A Markdown table in the spirit of the paper's Table 5.
    pub fn to_markdown(&self) -> String {
        let mut s = String::from(
            "| layer | kind | shape | ‖W‖ (power it.) | iterations | Fourier bound | followed by | act. const | layer bound | cumulative |\n\
             |---|---|---|---:|---:|---:|---|---:|---:|---:|\n",
        );
        for l in &self.layers {
            let fourier = l
                .fourier_bound
                .map_or("–".to_string(), |v| format!("{v:.4}"));
            let conv = if l.converged { "" } else { " (not converged)" };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.4}{} | {} | {} | {} | {} | {:.4} | {:.4e} |",
                l.name,
                l.kind,
                l.shape,
                l.operator_norm,
                conv,
                l.iterations,
                fourier,
                if l.after.is_empty() { "–" } else { &l.after },
                l.activation_constant,
                l.layer_bound,
                l.cumulative
            );
        }
        s
    }
}

/// A model whose Lipschitz constant can be bounded layer by layer.
pub trait LayerwiseLipschitz: Classifier {
    /// The per-layer rows (the `cumulative` field may be left at any value:
    /// [`lipschitz_report`] recomputes it).
    fn layer_bounds(&self, cfg: &PowerIterationConfig) -> Result<Vec<LayerBound>>;

    /// The last layer, when it is an affine map producing the logits with nothing after it:
    /// `(weight [classes, hidden], bias [classes])`. Needed by the certified lower bounds.
    fn logit_layer(&self) -> Option<(ArrayView2<'_, f64>, ArrayView1<'_, f64>)>;
}

/// The per-layer operator norms and the cumulative upper Lipschitz bound of a model.
///
/// # Examples
///
/// ```
/// use intriguing::analysis::{lipschitz_report, PowerIterationConfig};
/// use intriguing::models::cnn::Cnn;
/// let net = Cnn::lenet(2, 3, 8, 1)?;
/// let report = lipschitz_report(&net, &PowerIterationConfig::default())?;
/// assert_eq!(report.layers.len(), 4); // conv1, conv2, fc1, fc2
/// let prod: f64 = report.layers.iter().map(|l| l.layer_bound).product();
/// assert!((report.total() - prod).abs() <= 1e-12 * prod);
/// println!("{}", report.to_markdown());
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn lipschitz_report<M: LayerwiseLipschitz + ?Sized>(
    model: &M,
    cfg: &PowerIterationConfig,
) -> Result<LipschitzReport> {
    let mut layers = model.layer_bounds(cfg)?;
    let mut acc = 1.0;
    for l in &mut layers {
        l.layer_bound = l.bound * l.activation_constant;
        acc *= l.layer_bound;
        l.cumulative = acc;
    }
    Ok(LipschitzReport { layers })
}

impl LayerwiseLipschitz for Cnn {
    fn layer_bounds(&self, cfg: &PowerIterationConfig) -> Result<Vec<LayerBound>> {
        let mut rows: Vec<LayerBound> = Vec::new();
        let (mut n_conv, mut n_fc) = (0, 0);
        for layer in self.layers() {
            let (after, constant) = match layer {
                CnnLayer::Conv2d(c) => {
                    n_conv += 1;
                    let norm = conv_operator_norm_lanczos(c, cfg)?;
                    let fb = conv_fourier_bound(c)?;
                    let (co, ci, kh, kw) = c.weight().dim();
                    let (_, h, w) = c.input_shape();
                    rows.push(LayerBound {
                        name: format!("conv{n_conv}"),
                        kind: "conv".into(),
                        shape: format!(
                            "{co}×{ci}×{kh}×{kw} on {ci}×{h}×{w}, stride {}, pad {}",
                            c.stride(),
                            c.padding()
                        ),
                        operator_norm: norm.value,
                        iterations: norm.iterations,
                        converged: norm.converged,
                        fourier_bound: Some(fb.value),
                        bound: fb.value,
                        after: String::new(),
                        activation_constant: 1.0,
                        layer_bound: 0.0,
                        cumulative: 0.0,
                    });
                    continue;
                }
                CnnLayer::Dense(l) => {
                    n_fc += 1;
                    let norm = spectral_norm(l.weight.view(), cfg)?;
                    rows.push(dense_row(format!("fc{n_fc}"), l.weight.view(), &norm));
                    if l.activation == Activation::Identity {
                        continue;
                    }
                    (
                        l.activation.name().to_string(),
                        activation_constant(l.activation),
                    )
                }
                CnnLayer::Activation(a) => (a.name().to_string(), activation_constant(*a)),
                CnnLayer::Flatten => continue,
                CnnLayer::MaxPool2d(p) => (
                    format!("maxpool {}/{}", p.kernel(), p.stride()),
                    p.lipschitz_constant(),
                ),
            };
            if rows.is_empty() {
                rows.push(LayerBound {
                    name: "input".into(),
                    kind: "identity".into(),
                    shape: format!("{}", self.input_dim()),
                    operator_norm: 1.0,
                    iterations: 0,
                    converged: true,
                    fourier_bound: None,
                    bound: 1.0,
                    after: String::new(),
                    activation_constant: 1.0,
                    layer_bound: 0.0,
                    cumulative: 0.0,
                });
            }
            let last = rows.last_mut().expect("non-empty");
            if !last.after.is_empty() {
                last.after.push_str(", ");
            }
            last.after.push_str(&after);
            last.activation_constant *= constant;
        }
        Ok(rows)
    }

    fn logit_layer(&self) -> Option<(ArrayView2<'_, f64>, ArrayView1<'_, f64>)> {
        match self.layers().last() {
            Some(CnnLayer::Dense(l)) if l.activation == Activation::Identity => {
                Some((l.weight.view(), l.bias.view()))
            }
            _ => None,
        }
    }
}

/// A row for a dense layer (no activation yet).
pub(crate) fn dense_row(
    name: String,
    w: ArrayView2<'_, f64>,
    norm: &super::spectral::SpectralNorm,
) -> LayerBound {
    LayerBound {
        name,
        kind: "dense".into(),
        shape: format!("{}→{}", w.ncols(), w.nrows()),
        operator_norm: norm.value,
        iterations: norm.iterations,
        converged: norm.converged,
        fourier_bound: None,
        bound: norm.value,
        after: String::new(),
        activation_constant: 1.0,
        layer_bound: 0.0,
        cumulative: 0.0,
    }
}

/// The L2 Lipschitz constant of an element-wise activation: `sup |f'|` (sigmoid 1/4, tanh 1,
/// ReLU 1, identity 1).
pub fn activation_constant(a: Activation) -> f64 {
    match a {
        Activation::Sigmoid => 0.25,
        Activation::Identity | Activation::Tanh | Activation::Relu => 1.0,
    }
}

impl LayerwiseLipschitz for Mlp {
    fn layer_bounds(&self, cfg: &PowerIterationConfig) -> Result<Vec<LayerBound>> {
        let mut rows = Vec::with_capacity(self.layers().len());
        for (i, d) in self.layers().iter().enumerate() {
            let norm = spectral_norm(d.weight.view(), cfg)?;
            let mut row = dense_row(format!("fc{}", i + 1), d.weight.view(), &norm);
            if d.activation != Activation::Identity {
                row.after = d.activation.name().to_string();
            }
            row.activation_constant = activation_constant(d.activation);
            rows.push(row);
        }
        Ok(rows)
    }

    fn logit_layer(&self) -> Option<(ArrayView2<'_, f64>, ArrayView1<'_, f64>)> {
        match self.layers().last() {
            Some(d) if d.activation == Activation::Identity => {
                Some((d.weight.view(), d.bias.view()))
            }
            _ => None,
        }
    }
}
