//! Figure-5-style PNG grids: originals, adversarial examples and magnified distortions.

use super::sample::AdversarialSet;
use crate::error::{Error, Result};
use crate::viz::{GridSpec, magnify_around_grey, write_grid_png};
use ndarray::{Array1, ArrayView1};
use std::path::Path;

/// The paper's Figure 5 layout for up to `max_examples` examples of a set of square images
/// (28×28 for MNIST): triples (original, adversarial, distortion magnified ×10 around mid
/// grey), `per_row` triples per row, written as a PNG through [`crate::viz`]. Digits are
/// drawn black on white (pixel values inverted) like the paper's figure; captions give the
/// true label and the RMS distortion. Errors on an empty set or non-square images.
pub fn write_figure_png(
    path: impl AsRef<Path>,
    set: &AdversarialSet,
    max_examples: usize,
    per_row: usize,
) -> Result<()> {
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
    let mut tiles: Vec<Array1<f64>> = Vec::with_capacity(3 * n);
    let mut captions = Vec::with_capacity(3 * n);
    for i in 0..n {
        let x = set.originals.row(i);
        let xa = set.inputs.row(i);
        tiles.push(x.mapv(|v| 1.0 - v));
        tiles.push(xa.mapv(|v| 1.0 - v));
        tiles.push(magnify_around_grey((&xa - &x).view(), 10.0));
        captions.push(format!("{}", set.labels[i]));
        captions.push(format!(".{:03.0}", 1000.0 * set.rms[i]));
        captions.push("x10".to_string());
    }
    let views: Vec<ArrayView1<'_, f64>> = tiles.iter().map(|t| t.view()).collect();
    let mut spec = GridSpec::new(3 * per_row.max(1), side, side);
    spec.scale = 2;
    spec.padding = 2;
    write_grid_png(path, &views, Some(&captions), &spec)
}
