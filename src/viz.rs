//! Grayscale image grids as PNG files (e.g. the paper's Figure 5: original, magnified
//! perturbation, adversarial), with optional captions in a built-in 3×5 pixel font.
//!
//! # Examples
//!
//! ```
//! use intriguing::viz::{write_grid_png, GridSpec, magnify_around_grey};
//! use ndarray::{Array1, ArrayView1};
//!
//! let img = Array1::from_iter((0..16).map(|i| i as f64 / 15.0)); // a 4×4 ramp
//! let r = Array1::from_elem(16, 0.01);
//! let pert = magnify_around_grey(r.view(), 10.0);                  // 0.5 + 10·r
//! let images: Vec<ArrayView1<f64>> = vec![img.view(), pert.view()];
//! let labels = vec!["7".to_string(), "r x10".to_string()];
//! let path = std::env::temp_dir().join("intriguing_viz_doctest.png");
//! write_grid_png(&path, &images, Some(&labels), &GridSpec::new(2, 4, 4))?;
//! assert!(path.exists());
//! # Ok::<(), intriguing::Error>(())
//! ```

use crate::error::{Error, Result};
use ndarray::{Array1, ArrayView1};
use std::path::Path;

/// Layout of a grid: images fill rows left to right, `cols` per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridSpec {
    /// Images per row (≥ 1).
    pub cols: usize,
    /// Width of one image in pixels (≥ 1).
    pub image_width: usize,
    /// Height of one image in pixels (≥ 1).
    pub image_height: usize,
    /// Each image pixel becomes a `scale × scale` block (≥ 1); default 4.
    pub scale: usize,
    /// White space around each cell, in output pixels; default 4.
    pub padding: usize,
}

impl GridSpec {
    /// `cols` images of `image_width × image_height` per row, scale 4, padding 4.
    pub fn new(cols: usize, image_width: usize, image_height: usize) -> Self {
        GridSpec {
            cols,
            image_width,
            image_height,
            scale: 4,
            padding: 4,
        }
    }
}

/// `0.5 + factor · r`, clamped to `[0, 1]`: a perturbation shown around mid grey.
pub fn magnify_around_grey(r: ArrayView1<'_, f64>, factor: f64) -> Array1<f64> {
    r.mapv(|v| {
        let g = 0.5 + factor * v;
        if g.is_nan() { 0.5 } else { g.clamp(0.0, 1.0) }
    })
}

/// 3×5 glyphs: five rows of three bits (MSB = left column).
fn glyph(c: char) -> [u8; 5] {
    match c.to_ascii_uppercase() {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '-' => [0b000, 0b000, 0b111, 0b000, 0b000],
        '+' => [0b000, 0b010, 0b111, 0b010, 0b000],
        '.' => [0b000, 0b000, 0b000, 0b000, 0b010],
        ':' => [0b000, 0b010, 0b000, 0b010, 0b000],
        '=' => [0b000, 0b111, 0b000, 0b111, 0b000],
        '>' => [0b100, 0b010, 0b001, 0b010, 0b100],
        '<' => [0b001, 0b010, 0b100, 0b010, 0b001],
        '/' => [0b001, 0b001, 0b010, 0b100, 0b100],
        '(' => [0b010, 0b100, 0b100, 0b100, 0b010],
        ')' => [0b010, 0b001, 0b001, 0b001, 0b010],
        'A' => [0b010, 0b101, 0b111, 0b101, 0b101],
        'B' => [0b110, 0b101, 0b110, 0b101, 0b110],
        'C' => [0b011, 0b100, 0b100, 0b100, 0b011],
        'D' => [0b110, 0b101, 0b101, 0b101, 0b110],
        'E' => [0b111, 0b100, 0b110, 0b100, 0b111],
        'F' => [0b111, 0b100, 0b110, 0b100, 0b100],
        'G' => [0b011, 0b100, 0b101, 0b101, 0b011],
        'H' => [0b101, 0b101, 0b111, 0b101, 0b101],
        'I' => [0b111, 0b010, 0b010, 0b010, 0b111],
        'J' => [0b001, 0b001, 0b001, 0b101, 0b010],
        'K' => [0b101, 0b101, 0b110, 0b101, 0b101],
        'L' => [0b100, 0b100, 0b100, 0b100, 0b111],
        'M' => [0b101, 0b111, 0b111, 0b101, 0b101],
        'N' => [0b110, 0b101, 0b101, 0b101, 0b101],
        'O' => [0b010, 0b101, 0b101, 0b101, 0b010],
        'P' => [0b110, 0b101, 0b110, 0b100, 0b100],
        'Q' => [0b010, 0b101, 0b101, 0b110, 0b011],
        'R' => [0b110, 0b101, 0b110, 0b101, 0b101],
        'S' => [0b011, 0b100, 0b010, 0b001, 0b110],
        'T' => [0b111, 0b010, 0b010, 0b010, 0b010],
        'U' => [0b101, 0b101, 0b101, 0b101, 0b111],
        'V' => [0b101, 0b101, 0b101, 0b101, 0b010],
        'W' => [0b101, 0b101, 0b111, 0b111, 0b101],
        'X' => [0b101, 0b101, 0b010, 0b101, 0b101],
        'Y' => [0b101, 0b101, 0b010, 0b010, 0b010],
        'Z' => [0b111, 0b001, 0b010, 0b100, 0b111],
        _ => [0; 5],
    }
}

/// Renders the grid into 8-bit grey pixels: returns `(width, height, pixels)` (row-major).
///
/// Values are clamped to `[0, 1]` (NaN shows as mid grey); captions (one per image, when
/// given) are drawn in black under each image, characters outside the 3×5 font as blanks.
pub fn render_grid(
    images: &[ArrayView1<'_, f64>],
    labels: Option<&[String]>,
    spec: &GridSpec,
) -> Result<(usize, usize, Vec<u8>)> {
    let GridSpec {
        cols,
        image_width: w,
        image_height: h,
        scale,
        padding,
    } = *spec;
    if cols == 0 || w == 0 || h == 0 || scale == 0 {
        return Err(Error::InvalidConfig(
            "image grid: cols, image sizes and scale must be >= 1".into(),
        ));
    }
    if images.is_empty() {
        return Err(Error::InvalidConfig("image grid: no images".into()));
    }
    for (i, im) in images.iter().enumerate() {
        if im.len() != w * h {
            return Err(Error::shape(format!("grid image {i}"), w * h, im.len()));
        }
    }
    if let Some(l) = labels
        && l.len() != images.len()
    {
        return Err(Error::shape("grid labels", images.len(), l.len()));
    }
    let font = (scale / 2).max(1);
    let caption_h = if labels.is_some() {
        5 * font + 2 * font
    } else {
        0
    };
    let cell_w = w * scale + 2 * padding;
    let cell_h = h * scale + caption_h + 2 * padding;
    let rows = images.len().div_ceil(cols);
    let (width, height) = (cols * cell_w, rows * cell_h);
    let mut px = vec![255u8; width * height];
    for (k, im) in images.iter().enumerate() {
        let (gx, gy) = ((k % cols) * cell_w + padding, (k / cols) * cell_h + padding);
        for y in 0..h {
            for x in 0..w {
                let v = im[y * w + x];
                let v = if v.is_nan() { 0.5 } else { v.clamp(0.0, 1.0) };
                let g = (v * 255.0).round() as u8;
                for dy in 0..scale {
                    let row = (gy + y * scale + dy) * width;
                    for dx in 0..scale {
                        px[row + gx + x * scale + dx] = g;
                    }
                }
            }
        }
        if let Some(labels) = labels {
            let ty = gy + h * scale + font;
            let max_chars = (cell_w - padding) / (4 * font);
            for (ci, ch) in labels[k].chars().take(max_chars).enumerate() {
                let g = glyph(ch);
                let tx = gx + ci * 4 * font;
                for (gy_, bits) in g.iter().enumerate() {
                    for gx_ in 0..3 {
                        if bits & (0b100 >> gx_) != 0 {
                            for dy in 0..font {
                                let row = (ty + gy_ * font + dy) * width;
                                for dx in 0..font {
                                    px[row + tx + gx_ * font + dx] = 0;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok((width, height, px))
}

/// Writes the grid of [`render_grid`] as an 8-bit greyscale PNG at `path`.
pub fn write_grid_png(
    path: impl AsRef<Path>,
    images: &[ArrayView1<'_, f64>],
    labels: Option<&[String]>,
    spec: &GridSpec,
) -> Result<()> {
    let (width, height, px) = render_grid(images, labels, spec)?;
    let file = std::fs::File::create(path.as_ref())?;
    let too_big = |_| Error::InvalidConfig("image grid too large for PNG".into());
    let mut enc = png::Encoder::new(
        std::io::BufWriter::new(file),
        u32::try_from(width).map_err(too_big)?,
        u32::try_from(height).map_err(too_big)?,
    );
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header()?;
    writer.write_image_data(&px)?;
    writer.finish()?;
    Ok(())
}

pub mod plot;
