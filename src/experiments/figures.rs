//! Figure-5-style PNG grids: originals, adversarial examples and magnified distortions.

use super::sample::AdversarialSet;
use crate::error::{Error, Result};
use ndarray::{Array2, ArrayView1};
use std::path::Path;

/// Tiles `images` (each `tile_h · tile_w` pixels in `[0, 1]`, row-major) into a grid of
/// `cols` columns with a 2-pixel white (1.0) gutter. Returns the grid `[rows, cols]` in
/// `[0, 1]`. Errors on an image of the wrong length or `cols == 0`.
pub fn figure_grid(
    images: &[ArrayView1<'_, f64>],
    tile_h: usize,
    tile_w: usize,
    cols: usize,
) -> Result<Array2<f64>> {
    if cols == 0 || tile_h == 0 || tile_w == 0 {
        return Err(Error::InvalidConfig(
            "grid with zero columns or empty tiles".into(),
        ));
    }
    let gap = 2;
    let nrows = images.len().div_ceil(cols).max(1);
    let h = nrows * (tile_h + gap) + gap;
    let w = cols * (tile_w + gap) + gap;
    let mut grid = Array2::from_elem((h, w), 1.0);
    for (k, img) in images.iter().enumerate() {
        if img.len() != tile_h * tile_w {
            return Err(Error::shape("grid tile", tile_h * tile_w, img.len()));
        }
        let (r, c) = (k / cols, k % cols);
        let (y0, x0) = (gap + r * (tile_h + gap), gap + c * (tile_w + gap));
        for y in 0..tile_h {
            for x in 0..tile_w {
                grid[[y0 + y, x0 + x]] = img[y * tile_w + x].clamp(0.0, 1.0);
            }
        }
    }
    Ok(grid)
}

/// Writes a `[rows, cols]` array of values in `[0, 1]` as an 8-bit grayscale PNG
/// (0 = black; values are clamped).
pub fn write_gray_grid_png(path: impl AsRef<Path>, grid: &Array2<f64>) -> Result<()> {
    let (h, w) = grid.dim();
    let file = std::fs::File::create(path.as_ref())?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w as u32, h as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header()?;
    let bytes: Vec<u8> = grid
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    writer.write_image_data(&bytes)?;
    writer.finish()?;
    Ok(())
}

/// The paper's Figure 5 layout for up to `max_examples` examples of a set of 28×28 images:
/// triples (original, adversarial, distortion magnified ×10 around mid-gray), `per_row`
/// triples per row of the grid, written as a PNG. MNIST digits are drawn black on white
/// (the pixel values are inverted) like the paper's figure.
pub fn write_figure_png(
    path: impl AsRef<Path>,
    set: &AdversarialSet,
    max_examples: usize,
    per_row: usize,
) -> Result<()> {
    let n = set.len().min(max_examples);
    let mut tiles: Vec<ndarray::Array1<f64>> = Vec::with_capacity(3 * n);
    for i in 0..n {
        let x = set.originals.row(i);
        let xa = set.inputs.row(i);
        tiles.push(x.mapv(|v| 1.0 - v));
        tiles.push(xa.mapv(|v| 1.0 - v));
        tiles.push((&xa - &x).mapv(|r| 0.5 + 10.0 * r));
    }
    let side = (set.inputs.ncols() as f64).sqrt().round() as usize;
    if side * side != set.inputs.ncols() {
        return Err(Error::InvalidConfig(format!(
            "figure needs square images, got {} pixels",
            set.inputs.ncols()
        )));
    }
    let views: Vec<ArrayView1<'_, f64>> = tiles.iter().map(|t| t.view()).collect();
    let grid = figure_grid(&views, side, side, 3 * per_row.max(1))?;
    write_gray_grid_png(path, &grid)
}
