//! A small grayscale PNG grid writer for the direction figures.

use crate::error::{Error, Result};
use ndarray::ArrayView2;
use std::path::Path;

/// Writes a grayscale PNG whose row `r` shows the images `inputs[rows[r][c]]` side by side.
/// Each input row is an `h × w` image with values in `[0, 1]` (clamped); images are
/// separated by a 1-pixel mid-grey line and scaled up by `scale` (nearest neighbour).
///
/// This is a private writer over the `png` crate (the figures of the paper's §3, Figures
/// 1–2: one row per direction, the top-activating inputs along it).
pub fn write_image_grid(
    path: impl AsRef<Path>,
    inputs: ArrayView2<'_, f64>,
    rows: &[Vec<usize>],
    image_hw: (usize, usize),
    scale: usize,
) -> Result<()> {
    let (h, w) = image_hw;
    if h * w != inputs.ncols() {
        return Err(Error::shape(
            "image grid inputs",
            format!("[n, {}]", h * w),
            format!("{:?}", inputs.shape()),
        ));
    }
    let scale = scale.max(1);
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    if rows.is_empty() || ncols == 0 {
        return Err(Error::InvalidConfig("an empty image grid".into()));
    }
    let (cell_h, cell_w) = (h * scale + 1, w * scale + 1);
    let (height, width) = (rows.len() * cell_h + 1, ncols * cell_w + 1);
    let mut px = vec![128u8; height * width];
    for (r, row) in rows.iter().enumerate() {
        for (c, &i) in row.iter().enumerate() {
            if i >= inputs.nrows() {
                return Err(Error::InvalidConfig(format!(
                    "image index {i} out of range for {} inputs",
                    inputs.nrows()
                )));
            }
            let img = inputs.row(i);
            for y in 0..h * scale {
                for x in 0..w * scale {
                    let v = img[(y / scale) * w + x / scale];
                    let v = if v.is_finite() {
                        v.clamp(0.0, 1.0)
                    } else {
                        0.0
                    };
                    px[(r * cell_h + 1 + y) * width + c * cell_w + 1 + x] =
                        (v * 255.0).round() as u8;
                }
            }
        }
    }
    let file = std::fs::File::create(path)?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header()?;
    writer.write_image_data(&px)?;
    writer.finish()?;
    Ok(())
}
