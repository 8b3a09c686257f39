//! Direction figures (paper §3, Figures 1–2) through [`crate::viz`].

use crate::error::{Error, Result};
use crate::viz::{FigureText, GridSpec, ink_to_grey, write_labelled_grid_png};
use ndarray::{Array1, ArrayView1, ArrayView2};
use std::path::Path;

/// Writes a PNG grid whose row `r` shows the inputs `inputs[rows[r][c]]` (e.g. the
/// [`top_activating`](super::top_activating) inputs of one direction), each captioned with
/// its label. Every row must have the same length; each input row is an `h × w` image with
/// values in `[0, 1]` and ink = 1, drawn dark on white like the paper's figures. `text` adds a
/// title, column and row headers and notes ([`FigureText`]; `FigureText::default()` for none).
///
/// # Examples
///
/// ```
/// use intriguing::analysis::write_image_grid;
/// use intriguing::viz::FigureText;
/// use ndarray::Array2;
///
/// let images = Array2::from_shape_fn((4, 16), |(i, j)| ((i + j) % 4) as f64 / 3.0);
/// let text = FigureText {
///     title: "Top inputs per direction".into(),
///     row_headers: vec!["unit 3".into(), "random".into()],
///     ..FigureText::default()
/// };
/// let path = std::env::temp_dir().join("intriguing_image_grid_doctest.png");
/// write_image_grid(&path, images.view(), &[0, 1, 2, 3], &[vec![0, 1], vec![2, 3]], (4, 4), &text)?;
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn write_image_grid(
    path: impl AsRef<Path>,
    inputs: ArrayView2<'_, f64>,
    labels: &[usize],
    rows: &[Vec<usize>],
    image_hw: (usize, usize),
    text: &FigureText,
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
    let mut images: Vec<Array1<f64>> = Vec::with_capacity(rows.len() * cols);
    let mut captions = Vec::with_capacity(rows.len() * cols);
    for &i in rows.iter().flatten() {
        if i >= inputs.nrows() {
            return Err(Error::InvalidConfig(format!(
                "image index {i} out of range for {} inputs",
                inputs.nrows()
            )));
        }
        images.push(ink_to_grey(inputs.row(i)));
        captions.push(labels[i].to_string());
    }
    let views: Vec<ArrayView1<'_, f64>> = images.iter().map(|a| a.view()).collect();
    let mut spec = GridSpec::new(cols, w, h);
    spec.scale = 3;
    spec.padding = 4;
    write_labelled_grid_png(path, &views, Some(&captions), &spec, text)
}
