//! [`Sequential`]: the one differentiable model of the crate — a chain of [`Module`]s with one
//! forward pass, one backward pass (input gradient for attacks, parameter gradient for
//! training) and one flat parameter view.

use super::layer::Module;
use crate::classifier::{Classifier, ClassifierExt, LogitsLoss, softmax_cross_entropy};
use crate::error::{Error, Result, check_finite};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis};
use std::cell::RefCell;

/// A chain of layers `L` applied one after the other to batches of flat rows; the output of
/// the last layer is the logits (the softmax lives in the loss).
///
/// [`Mlp`](super::Mlp) is `Sequential<Dense>` and [`Cnn`](super::cnn::Cnn) is
/// `Sequential<Layer>`. Every `Sequential` implements [`Classifier`]; its
/// [`loss_gradient_into`](Classifier::loss_gradient_into) and
/// [`logits_into`](Classifier::logits_into) keep their scratch memory per thread and do not
/// allocate in steady state.
///
/// **Parameter layout** (of [`parameters`](Self::parameters), [`Gradients`], the optimizer
/// state and the trainer's weight decay): layer by layer, the weight row-major, then the bias.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequential<L> {
    layers: Vec<L>,
    /// `dims[0]` = input width, `dims[l + 1]` = output width of layer `l`.
    dims: Vec<usize>,
    /// Start of each layer's parameters in the flat layout, and the total at the end.
    offsets: Vec<usize>,
    sum_out: usize,
    max_out: usize,
}

/// Rows per chunk when evaluating logits of a large batch (bounds the scratch memory).
const CHUNK_ROWS: usize = 512;

thread_local! {
    static SCRATCH: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on a per-thread scratch slice of length `len` (grown as needed, never shrunk). If
/// the thread's scratch is already in use (a re-entrant call from a loss seed), a fresh buffer
/// is used instead.
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < len {
                v.resize(len, 0.0);
            }
            f(&mut v[..len])
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// A `[rows, cols]` view of the first `rows * cols` entries of `buf`.
pub(crate) fn view_mut(buf: &mut [f64], rows: usize, cols: usize) -> ArrayViewMut2<'_, f64> {
    ArrayViewMut2::from_shape((rows, cols), &mut buf[..rows * cols])
        .expect("scratch buffer sized by construction")
}

pub(crate) fn view(buf: &[f64], rows: usize, cols: usize) -> ArrayView2<'_, f64> {
    ArrayView2::from_shape((rows, cols), &buf[..rows * cols])
        .expect("scratch buffer sized by construction")
}

/// A penalty on the output of a hidden layer, for the trainer: `(layer, rows' outputs,
/// dloss/doutputs)`; adds its gradient into the third argument and returns its value.
pub(crate) type ActivityHook<'a> =
    &'a mut dyn FnMut(usize, ArrayView2<'_, f64>, ArrayViewMut2<'_, f64>) -> f64;

/// Gradients with respect to every parameter of a [`Sequential`], in its flat layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradients {
    flat: Array1<f64>,
    /// `(start, weight length, bias length)` of each layer.
    spans: Vec<(usize, usize, usize)>,
}

impl Gradients {
    pub(crate) fn from_flat(flat: Array1<f64>, spans: Vec<(usize, usize, usize)>) -> Self {
        Gradients { flat, spans }
    }

    /// All entries in the layout of [`Sequential::parameters`].
    pub fn to_flat(&self) -> Array1<f64> {
        self.flat.clone()
    }

    /// The flat gradient, borrowed.
    pub fn as_flat(&self) -> ArrayView1<'_, f64> {
        self.flat.view()
    }

    /// The weight gradient of layer `l` as `[out, fan_in]` (`[out, in]` for a dense layer,
    /// `[C_out, C_in·kh·kw]` for a convolution; `[0, 0]` for a layer without parameters).
    ///
    /// # Panics
    /// If `l` is not a layer index.
    pub fn weight(&self, l: usize) -> ArrayView2<'_, f64> {
        let (s, w, b) = self.spans[l];
        let (rows, cols) = (b, w.checked_div(b).unwrap_or(0));
        ArrayView2::from_shape(
            (rows, cols),
            &self.flat.as_slice().expect("owned")[s..s + w],
        )
        .expect("weight length is out · fan_in")
    }

    /// The bias gradient of layer `l` (empty for a layer without parameters).
    ///
    /// # Panics
    /// If `l` is not a layer index.
    pub fn bias(&self, l: usize) -> ArrayView1<'_, f64> {
        let (s, w, b) = self.spans[l];
        ArrayView1::from(&self.flat.as_slice().expect("owned")[s + w..s + w + b])
    }
}

impl<L: Module> Sequential<L> {
    /// A network from its layers. Each layer's parameters are checked (finite, consistent
    /// shapes) and put in standard layout; consecutive widths must chain, and the first layer
    /// must fix the input width (a dense, convolution or pooling layer).
    pub fn new(mut layers: Vec<L>) -> Result<Self> {
        let Some(first) = layers.first() else {
            return Err(Error::InvalidConfig(
                "a network needs at least one layer".into(),
            ));
        };
        let Some(input) = first.in_dim() else {
            return Err(Error::InvalidConfig(format!(
                "a network cannot start with a {} layer: the first layer must fix the input \
                 width (dense, conv or pooling)",
                first.kind()
            )));
        };
        let mut dims = vec![input];
        let mut offsets = vec![0usize];
        for (i, l) in layers.iter_mut().enumerate() {
            l.prepare().map_err(|e| in_layer(i, e))?;
            let d = l.out_dim(dims[i]).map_err(|e| in_layer(i, e))?;
            dims.push(d);
            let (w, b) = l.params();
            offsets.push(offsets[i] + w.len() + b.len());
        }
        let sum_out = dims[1..]
            .iter()
            .try_fold(0usize, |a, &d| a.checked_add(d))
            .ok_or_else(|| Error::InvalidConfig("layer widths overflow".into()))?;
        let max_out = dims[1..].iter().copied().max().unwrap_or(0);
        Ok(Sequential {
            layers,
            dims,
            offsets,
            sum_out,
            max_out,
        })
    }

    /// The layers, input side first.
    pub fn layers(&self) -> &[L] {
        &self.layers
    }

    /// Consumes the network and returns its layers.
    pub fn into_layers(self) -> Vec<L> {
        self.layers
    }

    /// The width of the representation after each layer (`dims()[0]` is the input).
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// Number of weights and biases.
    pub fn num_parameters(&self) -> usize {
        *self.offsets.last().expect("offsets has layers + 1 entries")
    }

    /// The indices of the layers that have parameters.
    pub(crate) fn parameterised_layers(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.layers.len()).filter(|&l| self.offsets[l + 1] > self.offsets[l])
    }

    /// `(start, weight length, bias length)` of each layer's parameters.
    pub(crate) fn spans(&self) -> Vec<(usize, usize, usize)> {
        self.layers
            .iter()
            .zip(&self.offsets)
            .map(|(l, &s)| {
                let (w, b) = l.params();
                (s, w.len(), b.len())
            })
            .collect()
    }

    /// All parameters as one vector (layout in the [type docs](Self)).
    pub fn parameters(&self) -> Array1<f64> {
        let mut v = Vec::with_capacity(self.num_parameters());
        for l in &self.layers {
            let (w, b) = l.params();
            v.extend_from_slice(w);
            v.extend_from_slice(b);
        }
        Array1::from(v)
    }

    /// Sets all parameters from a vector laid out as [`parameters`](Self::parameters). Errors
    /// (and leaves the model unchanged) on a wrong length or non-finite values.
    pub fn set_parameters(&mut self, flat: ArrayView1<'_, f64>) -> Result<()> {
        if flat.len() != self.num_parameters() {
            return Err(Error::shape(
                "model parameters",
                self.num_parameters(),
                flat.len(),
            ));
        }
        check_finite(flat.iter(), "model parameters")?;
        let mut it = flat.iter();
        for l in &mut self.layers {
            let (w, b) = l.params_mut();
            w.iter_mut()
                .chain(b.iter_mut())
                .zip(&mut it)
                .for_each(|(p, &v)| *p = v);
        }
        Ok(())
    }

    /// Visits every layer's `(weight, bias)` parameter slices with their start in the flat
    /// layout (for the optimizer).
    pub(crate) fn for_each_param_mut(
        &mut self,
        mut f: impl FnMut(usize, usize, &mut [f64], &mut [f64]),
    ) {
        for (l, layer) in self.layers.iter_mut().enumerate() {
            let (w, b) = layer.params_mut();
            if !w.is_empty() || !b.is_empty() {
                f(l, self.offsets[l], w, b);
            }
        }
    }

    /// Whether every parameter is finite.
    pub(crate) fn parameters_finite(&self) -> bool {
        self.layers.iter().all(|l| {
            let (w, b) = l.params();
            w.iter().chain(b).all(|v| v.is_finite())
        })
    }

    /// The output of layer `layer` (0-based; the last index gives the logits) for a batch:
    /// `[n, dims()[layer + 1]]`.
    pub fn hidden_representation(
        &self,
        inputs: ArrayView2<'_, f64>,
        layer: usize,
    ) -> Result<Array2<f64>> {
        if layer >= self.layers.len() {
            return Err(Error::InvalidConfig(format!(
                "layer index {layer} out of range for a network with {} layers",
                self.layers.len()
            )));
        }
        self.check_inputs(inputs)?;
        let n = inputs.nrows();
        let mut buf = vec![0.0; n * self.sum_out + self.work_len(n)];
        let (acts, work) = buf.split_at_mut(n * self.sum_out);
        self.forward_buf(inputs, acts, work, layer + 1);
        let off = n * self.dims[1..=layer].iter().sum::<usize>();
        let h = view(&acts[off..], n, self.dims[layer + 1]).to_owned();
        if h.iter().any(|v| !v.is_finite()) {
            return Err(Error::ModelNonFinite {
                what: format!("hidden representation of layer {layer}"),
            });
        }
        Ok(h)
    }

    /// Mean softmax cross-entropy of a batch against `labels` (no weight decay), with its
    /// gradient with respect to every parameter.
    pub fn gradients(
        &self,
        inputs: ArrayView2<'_, f64>,
        labels: &[usize],
    ) -> Result<(f64, Gradients)> {
        self.check_labels(inputs.nrows(), labels)?;
        let mut seed = |z: ArrayView2<'_, f64>, dz: ArrayViewMut2<'_, f64>| {
            mean_cross_entropy(z, dz, |k| labels[k])
        };
        self.gradients_with(inputs, &mut seed)
    }

    /// Gradients of any loss of the last layer's output: `seed` receives the outputs
    /// `[n, classes]` of one forward pass, writes `dloss/doutputs` into its second argument
    /// and returns the loss. Returns the loss and its gradient with respect to the parameters.
    pub fn gradients_with(
        &self,
        inputs: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
    ) -> Result<(f64, Gradients)> {
        self.gradients_inner(inputs, seed, None)
    }

    /// [`gradients_with`](Self::gradients_with) plus penalties on the layers' outputs.
    pub(crate) fn gradients_with_activity(
        &self,
        inputs: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        activity: ActivityHook<'_>,
    ) -> Result<(f64, Gradients)> {
        self.gradients_inner(inputs, seed, Some(activity))
    }

    fn gradients_inner(
        &self,
        inputs: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        activity: Option<ActivityHook<'_>>,
    ) -> Result<(f64, Gradients)> {
        self.check_inputs(inputs)?;
        if inputs.nrows() == 0 {
            return Err(Error::InvalidConfig("gradients of an empty batch".into()));
        }
        let mut flat = Array1::zeros(self.num_parameters());
        let mut buf = vec![0.0; self.scratch_len(inputs.nrows())];
        let g = flat.as_slice_mut().expect("owned");
        let loss = self.forward_backward(inputs, &mut buf, seed, Some(g), None, activity);
        if !loss.is_finite() || flat.iter().any(|v| !v.is_finite()) {
            return Err(Error::ModelNonFinite {
                what: "loss or parameter gradient".into(),
            });
        }
        Ok((
            loss,
            Gradients {
                flat,
                spans: self.spans(),
            },
        ))
    }

    pub(crate) fn check_labels(&self, n: usize, labels: &[usize]) -> Result<()> {
        if labels.len() != n {
            return Err(Error::shape("labels", n, labels.len()));
        }
        labels.iter().try_for_each(|&l| self.check_label(l))
    }

    fn work_len(&self, n: usize) -> usize {
        self.layers.iter().map(|l| l.work_len(n)).max().unwrap_or(0)
    }

    /// Scratch length for a batch of `n` rows: all layer outputs, two delta buffers, the
    /// layers' work space.
    pub(crate) fn scratch_len(&self, n: usize) -> usize {
        n * (self.sum_out + 2 * self.max_out) + self.work_len(n)
    }

    /// Forward pass of `x` through the first `upto` layers into `acts` (outputs back to back).
    fn forward_buf(&self, x: ArrayView2<'_, f64>, acts: &mut [f64], work: &mut [f64], upto: usize) {
        self.forward_range(x, acts, work, 0, upto);
    }

    /// Forward pass of `x` (the input of layer `from`) through layers `from..upto` into
    /// `acts` (outputs back to back).
    fn forward_range(
        &self,
        x: ArrayView2<'_, f64>,
        acts: &mut [f64],
        work: &mut [f64],
        from: usize,
        upto: usize,
    ) {
        let n = x.nrows();
        let (mut off, mut prev_off) = (0, 0);
        for l in from..upto {
            let (done, rest) = acts.split_at_mut(off);
            let cur = view_mut(rest, n, self.dims[l + 1]);
            let prev = if l == from {
                x.view()
            } else {
                view(&done[prev_off..], n, self.dims[l])
            };
            self.layers[l].forward(prev, cur, work);
            prev_off = off;
            off += n * self.dims[l + 1];
        }
    }

    /// [`Classifier::logits_on_lines_into`] through the first layer's
    /// [`Module::forward_lines`]; `false` (nothing written) when that layer does not map lines.
    fn lines_through_first_layer(
        &self,
        origins: ArrayView2<'_, f64>,
        directions: ArrayView2<'_, f64>,
        points: &[(usize, f64)],
        mut out: ArrayViewMut2<'_, f64>,
    ) -> bool {
        let (lines, n0) = origins.dim();
        let first = &self.layers[0];
        let (d1, classes, depth) = (self.dims[1], self.num_classes(), self.layers.len());
        let chunk = CHUNK_ROWS.min(points.len()).max(1);
        let ends_len = 2 * lines * n0;
        let lines_len = first.lines_work_len(lines);
        let len = ends_len + lines_len + chunk * self.sum_out + self.work_len(chunk);
        with_scratch(len, |buf| {
            let (ends, rest) = buf.split_at_mut(ends_len);
            let (lines_work, rest) = rest.split_at_mut(lines_len);
            let (acts, work) = rest.split_at_mut(chunk * self.sum_out);
            let mut e = view_mut(ends, 2 * lines, n0);
            for i in 0..lines {
                e.row_mut(2 * i).assign(&origins.row(i));
                e.row_mut(2 * i + 1).assign(&directions.row(i));
            }
            let ends = view(ends, 2 * lines, n0);
            for (pc, mut oc) in points
                .chunks(chunk)
                .zip(out.axis_chunks_iter_mut(Axis(0), chunk))
            {
                let p = pc.len();
                let (y0, later) = acts.split_at_mut(p * d1);
                if !first.forward_lines(ends, pc, view_mut(y0, p, d1), lines_work) {
                    return false;
                }
                if depth == 1 {
                    oc.assign(&view(y0, p, classes));
                } else {
                    self.forward_range(view(y0, p, d1), later, work, 1, depth);
                    let last_off = p * (self.sum_out - d1 - classes);
                    oc.assign(&view(&later[last_off..], p, classes));
                }
            }
            true
        })
    }

    /// One forward and one backward pass on the scratch `buf` (length
    /// [`scratch_len`](Self::scratch_len)`(n)`): asks `seed` for `dloss/doutputs` (and
    /// `activity`, if given, for penalties on each layer's output), then writes the parameter
    /// gradient into `grads` (if given; overwritten) and the input gradient into `input_grad`
    /// (if given). Returns the loss (seed plus activity penalties).
    pub(crate) fn forward_backward(
        &self,
        x: ArrayView2<'_, f64>,
        buf: &mut [f64],
        seed: LogitsLoss<'_>,
        mut grads: Option<&mut [f64]>,
        mut input_grad: Option<ArrayViewMut2<'_, f64>>,
        mut activity: Option<ActivityHook<'_>>,
    ) -> f64 {
        let n = x.nrows();
        let (acts, rest) = buf.split_at_mut(n * self.sum_out);
        let (mut da, rest) = rest.split_at_mut(n * self.max_out);
        let (mut db, work) = rest.split_at_mut(n * self.max_out);
        self.forward_buf(x, acts, work, self.layers.len());

        let n_layers = self.layers.len();
        let mut off = n * (self.sum_out - self.dims[n_layers]);
        let mut loss = seed(
            view(&acts[off..], n, self.dims[n_layers]),
            view_mut(da, n, self.dims[n_layers]),
        );
        for l in (0..n_layers).rev() {
            let (in_w, out_w) = (self.dims[l], self.dims[l + 1]);
            let y = view(&acts[off..], n, out_w);
            if let Some(hook) = activity.as_deref_mut() {
                loss += hook(l, y, view_mut(da, n, out_w));
            }
            let prev_off = if l > 0 { off - n * in_w } else { 0 };
            let prev = if l == 0 {
                x.view()
            } else {
                view(&acts[prev_off..], n, in_w)
            };
            let g = grads.as_deref_mut().map(|g| {
                let (s, e) = (self.offsets[l], self.offsets[l + 1]);
                let wl = self.layers[l].params().0.len();
                g[s..e].split_at_mut(wl)
            });
            let dx = if l > 0 {
                Some(view_mut(db, n, in_w))
            } else {
                input_grad.take()
            };
            self.layers[l].backward(prev, y, view_mut(da, n, out_w), dx, g, work);
            if l > 0 {
                std::mem::swap(&mut da, &mut db);
                off = prev_off;
            }
        }
        loss
    }

    pub(crate) fn check_shapes(
        &self,
        inputs: ArrayView2<'_, f64>,
        out: ArrayView2<'_, f64>,
        what: &str,
        cols: usize,
    ) -> Result<()> {
        if inputs.ncols() != self.dims[0] {
            return Err(Error::shape(
                "model inputs",
                format!("[n, {}]", self.dims[0]),
                format!("{:?}", inputs.shape()),
            ));
        }
        if out.dim() != (inputs.nrows(), cols) {
            return Err(Error::shape(
                what,
                format!("[{}, {cols}]", inputs.nrows()),
                format!("{:?}", out.shape()),
            ));
        }
        Ok(())
    }
}

fn in_layer(i: usize, e: Error) -> Error {
    match e {
        Error::InvalidConfig(m) => Error::InvalidConfig(format!("layer {i}: {m}")),
        other => other,
    }
}

/// The mean softmax cross-entropy of the logits `z` (`[n, classes]`) against `label(k)` for
/// row `k`; writes its gradient into `dz`.
pub(crate) fn mean_cross_entropy(
    z: ArrayView2<'_, f64>,
    dz: ArrayViewMut2<'_, f64>,
    label: impl Fn(usize) -> usize,
) -> f64 {
    let n = z.nrows() as f64;
    cross_entropy_over(z, dz, label, n)
}

/// The softmax cross-entropy of the rows of `z` against `label(row)`, summed and divided by
/// `rows` (the batch's row count for a mean; more when the batch's loss also averages rows
/// seen elsewhere, as adversarial training's tail rows): writes its gradient into `dz`.
pub(crate) fn cross_entropy_over(
    z: ArrayView2<'_, f64>,
    mut dz: ArrayViewMut2<'_, f64>,
    label: impl Fn(usize) -> usize,
    rows: f64,
) -> f64 {
    let mut total = 0.0;
    for (k, (zr, mut gr)) in z.rows().into_iter().zip(dz.rows_mut()).enumerate() {
        total += softmax_cross_entropy(zr, label(k), gr.view_mut());
        gr.mapv_inplace(|v| v / rows);
    }
    total / rows
}

impl<L: Module> Classifier for Sequential<L> {
    fn input_dim(&self) -> usize {
        self.dims[0]
    }

    fn num_classes(&self) -> usize {
        self.dims[self.layers.len()]
    }

    fn logits_into(
        &self,
        inputs: ArrayView2<'_, f64>,
        mut out: ArrayViewMut2<'_, f64>,
    ) -> Result<()> {
        self.check_shapes(inputs, out.view(), "logits output", self.num_classes())?;
        let classes = self.num_classes();
        let last_off = self.sum_out - classes;
        for (xc, mut oc) in inputs
            .axis_chunks_iter(Axis(0), CHUNK_ROWS)
            .zip(out.axis_chunks_iter_mut(Axis(0), CHUNK_ROWS))
        {
            let n = xc.nrows();
            with_scratch(n * self.sum_out + self.work_len(n), |buf| {
                let (acts, work) = buf.split_at_mut(n * self.sum_out);
                self.forward_buf(xc, acts, work, self.layers.len());
                oc.assign(&view(&acts[n * last_off..], n, classes));
            });
        }
        Ok(())
    }

    /// Through the first layer's [`Module::forward_lines`] when it maps lines (a
    /// [`Dense`](super::Dense) first layer: one matrix product over each line's origin and
    /// direction, then the points through the later layers), else by forming the points.
    fn logits_on_lines_into(
        &self,
        origins: ArrayView2<'_, f64>,
        directions: ArrayView2<'_, f64>,
        points: &[(usize, f64)],
        mut out: ArrayViewMut2<'_, f64>,
    ) -> Result<()> {
        crate::classifier::check_lines(origins, directions, points, self.input_dim())?;
        if out.dim() != (points.len(), self.num_classes()) {
            return Err(Error::shape(
                "logits output",
                format!("[{}, {}]", points.len(), self.num_classes()),
                format!("{:?}", out.shape()),
            ));
        }
        if points.is_empty()
            || self.lines_through_first_layer(origins, directions, points, out.view_mut())
        {
            return Ok(());
        }
        let x = crate::classifier::points_on_lines(origins, directions, points);
        self.logits_into(x.view(), out)
    }

    fn loss_gradient_into(
        &self,
        inputs: ArrayView2<'_, f64>,
        seed: LogitsLoss<'_>,
        grad: ArrayViewMut2<'_, f64>,
    ) -> Result<f64> {
        self.check_shapes(inputs, grad.view(), "input gradient", self.input_dim())?;
        let n = inputs.nrows();
        Ok(with_scratch(self.scratch_len(n), |buf| {
            self.forward_backward(inputs, buf, seed, None, Some(grad), None)
        }))
    }
}
