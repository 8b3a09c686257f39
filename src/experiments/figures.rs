//! Figure-5-style PNG grids: originals, adversarial examples and magnified distortions.

use super::sample::AdversarialSet;
use crate::classifier::{Classifier, ClassifierExt};
use crate::error::{Error, Result};
use crate::viz::{AdversarialPanel, write_adversarial_figure};
use std::path::Path;

/// The paper's Figure 5 layout for up to `max_examples` examples of a set of square images
/// (28×28 for MNIST), through [`crate::viz::write_adversarial_figure`]: triples (original
/// captioned with its true label, adversarial example captioned with the label `model` gives
/// it, distortion magnified around mid grey captioned with its RMS), `per_row` triples per
/// row, under the title `<source>: Figure 5`, dark digits on white. The magnification is the
/// largest round factor at which no pixel of any shown distortion clips; it is printed in the
/// figure and returned. Errors on an empty set, non-square images or a failing model.
///
/// # Examples
///
/// ```
/// use intriguing::experiments::{AdversarialSet, write_figure_png};
/// use intriguing::models::{Activation, Mlp};
/// use ndarray::Array2;
///
/// let originals = Array2::from_shape_fn((2, 16), |(i, j)| ((i + j) % 3) as f64 / 2.0);
/// let inputs = originals.mapv(|v| (v + 0.05).min(1.0));
/// let set = AdversarialSet {
///     source: "toy".into(),
///     inputs,
///     originals,
///     labels: vec![0, 1],
///     indices: vec![0, 1],
///     rms: vec![0.05, 0.05],
///     failures: Vec::new(),
///     skipped_misclassified: 0,
/// };
/// let model = Mlp::random(&[16, 3], Activation::Tanh, 0)?;
/// let path = std::env::temp_dir().join("intriguing_fig5_doctest.png");
/// let k = write_figure_png(&path, &set, &model, 2, 2)?;
/// assert_eq!(k, 10.0); // 0.5 / 0.05
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn write_figure_png<C: Classifier + ?Sized>(
    path: impl AsRef<Path>,
    set: &AdversarialSet,
    model: &C,
    max_examples: usize,
    per_row: usize,
) -> Result<f64> {
    let n = set.len().min(max_examples);
    if n == 0 {
        return Err(Error::InvalidConfig(format!(
            "no examples to draw for {}",
            set.source
        )));
    }
    let side = (set.inputs.ncols() as f64).sqrt().round() as usize;
    if side * side != set.inputs.ncols() {
        return Err(Error::InvalidConfig(format!(
            "figure needs square images, got {} pixels",
            set.inputs.ncols()
        )));
    }
    let shown = set.inputs.slice(ndarray::s![..n, ..]);
    let reached = model.predict_batch(shown)?;
    let panels: Vec<AdversarialPanel<'_>> = (0..n)
        .map(|i| AdversarialPanel {
            original: set.originals.row(i),
            adversarial: set.inputs.row(i),
            true_label: set.labels[i],
            reached_label: reached[i],
        })
        .collect();
    write_adversarial_figure(
        path,
        &format!("{}: Figure 5", set.source),
        &panels,
        (side, side),
        per_row,
    )
}
