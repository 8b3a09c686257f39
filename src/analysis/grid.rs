//! Direction figures (paper §3, Figures 1–2) through [`crate::viz`].

use crate::error::{Error, Result};
use crate::viz::{GridSpec, write_grid_png};
use ndarray::{ArrayView1, ArrayView2};
use std::path::Path;

/// Writes a PNG grid whose row `r` shows the inputs `inputs[rows[r][c]]` (e.g. the
/// [`top_activating`](super::top_activating) inputs of one direction), each captioned with
/// its label. Every row must have the same length; each input row is an `h × w` image with
/// values in `[0, 1]`.
pub fn write_image_grid(
    path: impl AsRef<Path>,
    inputs: ArrayView2<'_, f64>,
    labels: &[usize],
    rows: &[Vec<usize>],
    image_hw: (usize, usize),
) -> Result<()> {
    let (h, w) = image_hw;
    if h * w != inputs.ncols() {
        return Err(Error::shape(
            "image grid inputs",
            format!("[n, {}]", h * w),
            format!("{:?}", inputs.shape()),
        ));
    }
    if labels.len() != inputs.nrows() {
        return Err(Error::shape(
            "image grid labels",
            inputs.nrows(),
            labels.len(),
        ));
    }
    let cols = rows.first().map_or(0, Vec::len);
    if cols == 0 || rows.iter().any(|r| r.len() != cols) {
        return Err(Error::InvalidConfig(
            "an image grid needs non-empty rows of equal length".into(),
        ));
    }
    let mut images: Vec<ArrayView1<'_, f64>> = Vec::with_capacity(rows.len() * cols);
    let mut captions = Vec::with_capacity(rows.len() * cols);
    for &i in rows.iter().flatten() {
        if i >= inputs.nrows() {
            return Err(Error::InvalidConfig(format!(
                "image index {i} out of range for {} inputs",
                inputs.nrows()
            )));
        }
        images.push(inputs.row(i));
        captions.push(labels[i].to_string());
    }
    let mut spec = GridSpec::new(cols, w, h);
    spec.scale = 2;
    spec.padding = 2;
    write_grid_png(path, &images, Some(&captions), &spec)
}
