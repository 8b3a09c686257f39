//! Greyscale figures as PNG files: image grids with a title, column headers and captions
//! (the paper's Figure 5: original, adversarial, magnified distortion), drawn with a built-in
//! 5×7 pixel font that other plots can reuse ([`Canvas::draw_text`]).
//!
//! One colour convention throughout, the paper's: **dark digits on white**. Images are stored
//! with ink = 1 (MNIST), so [`ink_to_grey`] draws `1 − v`; a distortion `r` is drawn as
//! `0.5 − k·r` around mid grey (dark = ink added, light = ink removed), with the
//! magnification `k` chosen by [`non_saturating_factor`] so no pixel clips, and stated in
//! the figure.
//!
//! # Examples
//!
//! ```
//! use intriguing::viz::{write_adversarial_figure, AdversarialPanel};
//! use ndarray::Array1;
//!
//! let original = Array1::from_iter((0..16).map(|i| i as f64 / 15.0)); // a 4×4 ramp
//! let adversarial = original.mapv(|v| (v + 0.02).min(1.0));
//! let panels = [AdversarialPanel {
//!     original: original.view(),
//!     adversarial: adversarial.view(),
//!     true_label: 7,
//!     reached_label: 3,
//! }];
//! let path = std::env::temp_dir().join("intriguing_viz_doctest.png");
//! let k = write_adversarial_figure(&path, "A 4x4 example", &panels, (4, 4), 1)?;
//! assert_eq!(k, 25.0); // 0.5 / max|r| = 0.5 / 0.02
//! assert!(path.exists());
//! # Ok::<(), intriguing::Error>(())
//! ```

use crate::error::{Error, Result};
use ndarray::{Array1, ArrayView1};
use std::path::Path;

/// Width of one glyph of the built-in font, in font pixels.
pub const GLYPH_WIDTH: usize = 5;
/// Height of one glyph of the built-in font, in font pixels.
pub const GLYPH_HEIGHT: usize = 7;
/// Rows below the baseline used by the descenders of `g p q y`, in font pixels: a line of
/// text is `GLYPH_HEIGHT + GLYPH_DESCENT` font pixels tall.
pub const GLYPH_DESCENT: usize = 2;
/// Horizontal advance per character (glyph plus one blank column), in font pixels.
pub const GLYPH_ADVANCE: usize = GLYPH_WIDTH + 1;

/// Width in output pixels of `text` drawn at `scale` by [`Canvas::draw_text`].
pub fn text_width(text: &str, scale: usize) -> usize {
    let n = text.chars().count();
    if n == 0 {
        0
    } else {
        (n * GLYPH_ADVANCE - 1) * scale
    }
}

/// An 8-bit greyscale raster (row-major, 0 = black, 255 = white) to draw figures on.
///
/// # Examples
///
/// ```
/// use intriguing::viz::{Canvas, text_width};
/// let mut c = Canvas::new(120, 30, 255);
/// let w = c.draw_text(4, 4, "eps = 0.1", 2, 0);
/// assert_eq!(w, text_width("eps = 0.1", 2));
/// assert!(c.pixels().contains(&0));
/// c.write_png(std::env::temp_dir().join("intriguing_canvas_doctest.png"))?;
/// # Ok::<(), intriguing::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    /// A `width × height` canvas filled with `background`.
    ///
    /// # Panics
    /// If `width · height` overflows `usize` (or the allocation fails); sizes that come from
    /// user input go through [`try_new`](Self::try_new).
    pub fn new(width: usize, height: usize, background: u8) -> Self {
        Canvas {
            width,
            height,
            pixels: vec![background; width * height],
        }
    }

    /// [`new`](Self::new) for sizes from user input: more than [`MAX_GRID_PIXELS`] pixels
    /// (or a product that overflows) is an [`Error::InvalidParameter`], before any allocation.
    pub fn try_new(width: usize, height: usize, background: u8) -> Result<Self> {
        match width.checked_mul(height) {
            Some(p) if p <= MAX_GRID_PIXELS => Ok(Canvas::new(width, height, background)),
            _ => Err(Error::parameter(
                "canvas width × height",
                format!("{width} × {height}"),
                "at most MAX_GRID_PIXELS (2^28) pixels",
            )),
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The pixels, row-major.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The pixels, row-major, consuming the canvas.
    pub fn into_pixels(self) -> Vec<u8> {
        self.pixels
    }

    /// The pixel at `(x, y)`, `None` outside the canvas.
    pub fn get(&self, x: usize, y: usize) -> Option<u8> {
        (x < self.width && y < self.height).then(|| self.pixels[y * self.width + x])
    }

    /// Sets the pixel at `(x, y)`; points outside the canvas are ignored.
    pub fn set(&mut self, x: usize, y: usize, grey: u8) {
        if x < self.width && y < self.height {
            self.pixels[y * self.width + x] = grey;
        }
    }

    /// Fills the rectangle with top-left corner `(x, y)`, clipped to the canvas.
    pub fn fill_rect(&mut self, x: usize, y: usize, w: usize, h: usize, grey: u8) {
        let (x1, y1) = ((x + w).min(self.width), (y + h).min(self.height));
        for yy in y.min(y1)..y1 {
            self.pixels[yy * self.width + x.min(x1)..yy * self.width + x1].fill(grey);
        }
    }

    /// Draws an image of values in `[0, 1]` (`image_width` per row; NaN as mid grey) with
    /// top-left corner `(x, y)`, each value a `scale × scale` block of grey `255·v`.
    pub fn draw_image(
        &mut self,
        x: usize,
        y: usize,
        image: ArrayView1<'_, f64>,
        image_width: usize,
        scale: usize,
    ) {
        if image_width == 0 {
            return;
        }
        for (i, &v) in image.iter().enumerate() {
            let v = if v.is_nan() { 0.5 } else { v.clamp(0.0, 1.0) };
            let g = (v * 255.0).round() as u8;
            let (col, row) = (i % image_width, i / image_width);
            self.fill_rect(x + col * scale, y + row * scale, scale, scale, g);
        }
    }

    /// Draws `text` in the built-in 5×7 font with its top-left corner at `(x, y)`, each font
    /// pixel a `scale × scale` block of grey `ink`; returns the width drawn ([`text_width`]).
    ///
    /// The font covers ASCII letters, digits and punctuation, and `× · → ± ≈ − ε λ ρ ∞ ‖ ₂`; other
    /// characters are drawn as an outlined box. Text is clipped at the canvas edges.
    pub fn draw_text(&mut self, x: usize, y: usize, text: &str, scale: usize, ink: u8) -> usize {
        let scale = scale.max(1);
        for (c, r) in text_pixels(text) {
            self.fill_rect(x + c * scale, y + r * scale, scale, scale, ink);
        }
        text_width(text, scale)
    }

    /// Writes the canvas as an 8-bit greyscale PNG at `path`.
    pub fn write_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let too_big = |_| Error::InvalidConfig("figure too large for PNG".into());
        let (w, h) = (
            u32::try_from(self.width).map_err(too_big)?,
            u32::try_from(self.height).map_err(too_big)?,
        );
        if w == 0 || h == 0 {
            return Err(Error::InvalidConfig(
                "an empty figure cannot be written".into(),
            ));
        }
        let file = std::fs::File::create(path.as_ref())?;
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        writer.write_image_data(&self.pixels)?;
        writer.finish()?;
        Ok(())
    }
}

/// The paper's display convention for an image with ink = 1: `1 − v` (dark digits on white).
pub fn ink_to_grey(image: ArrayView1<'_, f64>) -> Array1<f64> {
    image.mapv(|v| 1.0 - v)
}

/// `0.5 + factor · r`, clamped to `[0, 1]`: a perturbation shown around mid grey (NaN as
/// grey). For the paper's dark-on-white convention pass `-factor` (ink added shows dark).
pub fn magnify_around_grey(r: ArrayView1<'_, f64>, factor: f64) -> Array1<f64> {
    r.mapv(|v| {
        let g = 0.5 + factor * v;
        if g.is_nan() { 0.5 } else { g.clamp(0.0, 1.0) }
    })
}

/// The largest "round" magnification `k ≤ 0.5 / max_abs` (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8
/// times a power of ten), so that `0.5 ± k·r` stays inside `[0, 1]` for every `|r| ≤ max_abs`
/// and the factor printed in a caption is exact. `max_abs` of zero, negative or non-finite
/// gives 1.
///
/// ```
/// use intriguing::viz::non_saturating_factor;
/// assert_eq!(non_saturating_factor(0.02), 25.0);   // 0.5 / 0.02 = 25 exactly
/// assert_eq!(non_saturating_factor(0.3), 1.5);     // 1.67 → 1.5
/// assert_eq!(non_saturating_factor(0.0), 1.0);
/// ```
pub fn non_saturating_factor(max_abs: f64) -> f64 {
    if !(max_abs.is_finite() && max_abs > 0.0) {
        return 1.0;
    }
    let limit = 0.5 / max_abs;
    let e = limit.log10().floor() as i32;
    // m · 10^e, computed so that e.g. 6 · 10⁻¹ is the double nearest 0.6.
    let scaled = |m: f64| {
        if e < 0 {
            m / 10f64.powi(-e)
        } else {
            m * 10f64.powi(e)
        }
    };
    let mut best = scaled(1.0);
    for m in [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        let k = scaled(m);
        // A relative slack of 1e-12 keeps exact quotients such as 0.5/0.02 = 25.
        if k <= limit * (1.0 + 1e-12) {
            best = k;
        }
    }
    best
}

/// Largest grid setting ([`GridSpec::cols`], [`GridSpec::image_width`],
/// [`GridSpec::image_height`], [`GridSpec::padding`]) a grid renderer accepts.
pub const MAX_GRID_SETTING: usize = 4096;

/// Largest [`GridSpec::scale`] a grid renderer accepts.
pub const MAX_GRID_SCALE: usize = 64;

/// Largest rendered grid, in pixels (`width × height`): 2^28, a 256 MiB canvas.
pub const MAX_GRID_PIXELS: usize = 1 << 28;

/// Layout of a grid: images fill rows left to right, `cols` per row.
///
/// The renderers accept `cols`, `image_width`, `image_height` and `padding` up to
/// [`MAX_GRID_SETTING`] and `scale` up to [`MAX_GRID_SCALE`] (else
/// [`Error::InvalidParameter`] naming the field), and a resulting canvas of at most
/// [`MAX_GRID_PIXELS`] pixels (else [`Error::InvalidConfig`]).
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
    /// Checks every field against the renderers' ranges (see the type's documentation).
    fn check_ranges(&self) -> Result<()> {
        const SETTING: &str = "at most 4096 (MAX_GRID_SETTING)";
        for (name, v, max, expected) in [
            ("cols", self.cols, MAX_GRID_SETTING, SETTING),
            ("image_width", self.image_width, MAX_GRID_SETTING, SETTING),
            ("image_height", self.image_height, MAX_GRID_SETTING, SETTING),
            ("padding", self.padding, MAX_GRID_SETTING, SETTING),
            (
                "scale",
                self.scale,
                MAX_GRID_SCALE,
                "at most 64 (MAX_GRID_SCALE)",
            ),
        ] {
            if v > max {
                return Err(Error::parameter(name, v, expected));
            }
        }
        Ok(())
    }
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

/// Text around a grid: a title above it, column headers, row headers at the left and note
/// lines below it. Every field may be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FigureText {
    /// One line above everything (drawn at 1.5 times the size of the other text).
    pub title: String,
    /// Headers over the columns; when shorter than the number of columns they repeat
    /// (e.g. three headers over rows of three-image groups). Length must divide `cols`.
    pub column_headers: Vec<String>,
    /// One header per grid row, drawn to the left of the row (or empty for none).
    pub row_headers: Vec<String>,
    /// Lines under the grid (what the magnification is, how the images are coloured, ...).
    pub notes: Vec<String>,
}

/// The inked font pixels of `text` laid out on one line, as `(column, row)` in font pixels
/// from the top-left corner: [`GLYPH_ADVANCE`] columns per character, `g p q y` lowered by
/// [`GLYPH_DESCENT`] rows, a character outside the font drawn as an outlined box. The one
/// text layout of the crate: [`Canvas::draw_text`] and the line plots
/// ([`plot`]) draw these pixels at their scale and orientation.
pub(crate) fn text_pixels(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    const MISSING: [u8; 7] = [
        0b11111, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11111,
    ];
    text.chars().enumerate().flat_map(|(i, ch)| {
        let rows = glyph(ch).unwrap_or(MISSING);
        let x0 = i * GLYPH_ADVANCE;
        let y0 = if "gpqy".contains(ch) {
            GLYPH_DESCENT
        } else {
            0
        };
        (0..GLYPH_HEIGHT).flat_map(move |r| {
            (0..GLYPH_WIDTH)
                .filter(move |&c| rows[r] & (0b10000 >> c) != 0)
                .map(move |c| (x0 + c, y0 + r))
        })
    })
}

/// Font scale of captions, headers and notes: 5×7 glyphs drawn 10×14 pixels.
const TEXT_SCALE: usize = 2;
/// Font scale of titles: 15×21 pixels.
const TITLE_SCALE: usize = 3;

/// 5×7 glyphs: seven rows of five bits (bit 4 = left column). `g p q y` are drawn
/// [`GLYPH_DESCENT`] rows lower (their last two rows below the baseline). `None` for
/// characters outside the font (drawn as an outlined box, so a missing glyph is visible).
#[rustfmt::skip]
fn glyph(c: char) -> Option<[u8; 7]> {
    Some(match c {
        ' ' => [0, 0, 0, 0, 0, 0, 0],
        '0' => [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110],
        '1' => [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        '2' => [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111],
        '3' => [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110],
        '4' => [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010],
        '5' => [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110],
        '6' => [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110],
        '7' => [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000],
        '8' => [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110],
        '9' => [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100],
        'A' => [0b01110, 0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001],
        'B' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110],
        'C' => [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110],
        'D' => [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100],
        'E' => [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111],
        'F' => [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000],
        'G' => [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111],
        'H' => [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001],
        'I' => [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        'J' => [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100],
        'K' => [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001],
        'L' => [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111],
        'M' => [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001],
        'N' => [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001],
        'O' => [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
        'P' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000],
        'Q' => [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101],
        'R' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001],
        'S' => [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110],
        'T' => [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100],
        'U' => [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
        'V' => [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100],
        'W' => [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010],
        'X' => [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001],
        'Y' => [0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100],
        'Z' => [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111],
        'a' => [0b00000, 0b00000, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111],
        'b' => [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b11110],
        'c' => [0b00000, 0b00000, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110],
        'd' => [0b00001, 0b00001, 0b01101, 0b10011, 0b10001, 0b10001, 0b01111],
        'e' => [0b00000, 0b00000, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110],
        'f' => [0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000],
        'g' => [0b01111, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110],
        'h' => [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001],
        'i' => [0b00100, 0b00000, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110],
        'j' => [0b00010, 0b00000, 0b00110, 0b00010, 0b00010, 0b10010, 0b01100],
        'k' => [0b10000, 0b10000, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010],
        'l' => [0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        'm' => [0b00000, 0b00000, 0b11010, 0b10101, 0b10101, 0b10001, 0b10001],
        'n' => [0b00000, 0b00000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001],
        'o' => [0b00000, 0b00000, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110],
        'p' => [0b11110, 0b10001, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000],
        'q' => [0b01111, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b00001],
        'r' => [0b00000, 0b00000, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000],
        's' => [0b00000, 0b00000, 0b01110, 0b10000, 0b01110, 0b00001, 0b11110],
        't' => [0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110],
        'u' => [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101],
        'v' => [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100],
        'w' => [0b00000, 0b00000, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010],
        'x' => [0b00000, 0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001],
        'y' => [0b10001, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110],
        'z' => [0b00000, 0b00000, 0b11111, 0b00010, 0b00100, 0b01000, 0b11111],
        '.' => [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100],
        ',' => [0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b00100, 0b01000],
        ':' => [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000],
        ';' => [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b00100, 0b01000],
        '-' | '−' => [0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000],
        '+' => [0b00000, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000],
        '=' => [0b00000, 0b00000, 0b11111, 0b00000, 0b11111, 0b00000, 0b00000],
        '(' => [0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010],
        ')' => [0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000],
        '[' => [0b01110, 0b01000, 0b01000, 0b01000, 0b01000, 0b01000, 0b01110],
        ']' => [0b01110, 0b00010, 0b00010, 0b00010, 0b00010, 0b00010, 0b01110],
        '/' => [0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000],
        '|' => [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100],
        '<' => [0b00010, 0b00100, 0b01000, 0b10000, 0b01000, 0b00100, 0b00010],
        '>' => [0b01000, 0b00100, 0b00010, 0b00001, 0b00010, 0b00100, 0b01000],
        '%' => [0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011],
        '_' => [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b11111],
        '!' => [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00100],
        '?' => [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b00000, 0b00100],
        '*' => [0b00000, 0b00100, 0b10101, 0b01110, 0b10101, 0b00100, 0b00000],
        '#' => [0b01010, 0b01010, 0b11111, 0b01010, 0b11111, 0b01010, 0b01010],
        '\'' => [0b01100, 0b00100, 0b01000, 0b00000, 0b00000, 0b00000, 0b00000],
        '"' => [0b01010, 0b01010, 0b01010, 0b00000, 0b00000, 0b00000, 0b00000],
        '^' => [0b00100, 0b01010, 0b10001, 0b00000, 0b00000, 0b00000, 0b00000],
        '×' => [0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b00000],
        '·' => [0b00000, 0b00000, 0b00000, 0b00100, 0b00000, 0b00000, 0b00000],
        '→' => [0b00000, 0b00100, 0b00010, 0b11111, 0b00010, 0b00100, 0b00000],
        '±' => [0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000, 0b11111],
        '≈' => [0b00000, 0b01000, 0b10101, 0b00010, 0b01000, 0b10101, 0b00010],
        'ε' => [0b00000, 0b00000, 0b01111, 0b10000, 0b01110, 0b10000, 0b01111],
        'λ' => [0b01000, 0b00100, 0b00100, 0b01010, 0b01010, 0b10001, 0b10001],
        'ρ' => [0b00000, 0b00000, 0b01110, 0b10001, 0b10001, 0b11110, 0b10000],
        '∞' => [0b00000, 0b00000, 0b01010, 0b10101, 0b10101, 0b01010, 0b00000],
        '‖' => [0b01010, 0b01010, 0b01010, 0b01010, 0b01010, 0b01010, 0b01010],
        '₂' => [0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b00010, 0b01110],
        _ => return None,
    })
}

/// Renders a grid with its text ([`FigureText`]) into a [`Canvas`] (white background, black
/// text; values clamped to `[0, 1]`, NaN as mid grey).
///
/// Each grid column is as wide as its widest image, header or caption; captions (one per
/// image, when given) are centred under the images. Text uses the built-in 5×7 font at scale
/// 2 (10×14 pixels per glyph), the title scale 3.
pub fn render_labelled_grid(
    images: &[ArrayView1<'_, f64>],
    captions: Option<&[String]>,
    spec: &GridSpec,
    text: &FigureText,
) -> Result<Canvas> {
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
    spec.check_ranges()?;
    if images.is_empty() {
        return Err(Error::InvalidConfig("image grid: no images".into()));
    }
    for (i, im) in images.iter().enumerate() {
        if im.len() != w * h {
            return Err(Error::shape(format!("grid image {i}"), w * h, im.len()));
        }
    }
    if let Some(l) = captions
        && l.len() != images.len()
    {
        return Err(Error::shape("grid captions", images.len(), l.len()));
    }
    let headers = &text.column_headers;
    if !headers.is_empty() && cols % headers.len() != 0 {
        return Err(Error::InvalidConfig(format!(
            "image grid: {} column headers do not divide {cols} columns",
            headers.len()
        )));
    }
    let rows = images.len().div_ceil(cols);
    if !text.row_headers.is_empty() && text.row_headers.len() != rows {
        return Err(Error::shape(
            "grid row headers",
            rows,
            text.row_headers.len(),
        ));
    }

    let (ts, line_h) = (TEXT_SCALE, (GLYPH_HEIGHT + GLYPH_DESCENT + 2) * TEXT_SCALE);
    let margin = 4 * ts;
    let header_of = |c: usize| headers.get(c % headers.len().max(1)).map(String::as_str);
    let mut col_w = vec![w * scale; cols];
    for (c, cw) in col_w.iter_mut().enumerate() {
        if let Some(hd) = header_of(c) {
            *cw = (*cw).max(text_width(hd, ts));
        }
        if let Some(caps) = captions {
            for cap in caps.iter().skip(c).step_by(cols) {
                *cw = (*cw).max(text_width(cap, ts));
            }
        }
        *cw += 2 * padding;
    }
    let row_header_w = text
        .row_headers
        .iter()
        .map(|s| text_width(s, ts))
        .max()
        .map_or(0, |m| m + 2 * ts);
    let cell_h = h * scale + if captions.is_some() { line_h } else { 0 } + 2 * padding;
    let title_h = if text.title.is_empty() {
        0
    } else {
        (GLYPH_HEIGHT + GLYPH_DESCENT + 3) * TITLE_SCALE
    };
    let header_h = if headers.is_empty() { 0 } else { line_h };
    // Repeated header groups (e.g. triples) get a gap between them.
    let group = if headers.is_empty() || headers.len() == cols {
        cols
    } else {
        headers.len()
    };
    let group_gap = 6 * ts;
    let gaps = (cols - 1) / group * group_gap;
    let grid_w = row_header_w + col_w.iter().sum::<usize>() + gaps;
    let width = (2 * margin + grid_w)
        .max(2 * margin + text_width(&text.title, TITLE_SCALE))
        .max(
            text.notes
                .iter()
                .map(|n| 2 * margin + text_width(n, ts))
                .max()
                .unwrap_or(0),
        );
    let notes_h = if text.notes.is_empty() {
        0
    } else {
        ts + text.notes.len() * line_h
    };
    // Every term above is bounded by the checked settings and the lengths of the (in-memory)
    // images and texts, so only the products can be too large.
    let height = rows
        .checked_mul(cell_h)
        .and_then(|g| g.checked_add(2 * margin + title_h + header_h + notes_h));
    let pixels = height.and_then(|h| h.checked_mul(width));
    let (Some(height), Some(true)) = (height, pixels.map(|p| p <= MAX_GRID_PIXELS)) else {
        return Err(Error::InvalidConfig(format!(
            "image grid: a {width}-pixel-wide canvas for {rows} rows of {cell_h} pixels is \
             larger than {MAX_GRID_PIXELS} pixels"
        )));
    };
    let mut cv = Canvas::new(width, height, 255);

    let mut y = margin;
    if !text.title.is_empty() {
        cv.draw_text(margin, y, &text.title, TITLE_SCALE, 0);
        y += title_h;
    }
    let col_x: Vec<usize> = col_w
        .iter()
        .enumerate()
        .scan(margin + row_header_w, |x, (c, &cw)| {
            if c > 0 && c % group == 0 {
                *x += group_gap;
            }
            let x0 = *x;
            *x += cw;
            Some(x0)
        })
        .collect();
    let centred = |x0: usize, cw: usize, s: &str| x0 + cw.saturating_sub(text_width(s, ts)) / 2;
    if !headers.is_empty() {
        for c in 0..cols {
            let hd = header_of(c).unwrap_or("");
            cv.draw_text(centred(col_x[c], col_w[c], hd), y, hd, ts, 0);
        }
        y += header_h;
    }
    for (k, im) in images.iter().enumerate() {
        let (c, r) = (k % cols, k / cols);
        let cy = y + r * cell_h + padding;
        let ix = col_x[c] + (col_w[c] - w * scale) / 2;
        cv.draw_image(ix, cy, *im, w, scale);
        if let Some(caps) = captions {
            let cap = &caps[k];
            cv.draw_text(
                centred(col_x[c], col_w[c], cap),
                cy + h * scale + ts,
                cap,
                ts,
                0,
            );
        }
    }
    for (r, rh) in text.row_headers.iter().enumerate() {
        let cy = y + r * cell_h + padding + (h * scale).saturating_sub(GLYPH_HEIGHT * ts) / 2;
        cv.draw_text(margin, cy, rh, ts, 0);
    }
    y += rows * cell_h + ts;
    for note in &text.notes {
        cv.draw_text(margin, y, note, ts, 0);
        y += line_h;
    }
    Ok(cv)
}

/// Writes the figure of [`render_labelled_grid`] as an 8-bit greyscale PNG at `path`.
pub fn write_labelled_grid_png(
    path: impl AsRef<Path>,
    images: &[ArrayView1<'_, f64>],
    captions: Option<&[String]>,
    spec: &GridSpec,
    text: &FigureText,
) -> Result<()> {
    render_labelled_grid(images, captions, spec, text)?.write_png(path)
}

/// Renders a plain grid (no title or headers; see [`render_labelled_grid`]) into 8-bit grey
/// pixels: returns `(width, height, pixels)` (row-major). Captions (one per image, when given)
/// are drawn in black under each image.
pub fn render_grid(
    images: &[ArrayView1<'_, f64>],
    labels: Option<&[String]>,
    spec: &GridSpec,
) -> Result<(usize, usize, Vec<u8>)> {
    let cv = render_labelled_grid(images, labels, spec, &FigureText::default())?;
    Ok((cv.width(), cv.height(), cv.into_pixels()))
}

/// Writes the grid of [`render_grid`] as an 8-bit greyscale PNG at `path`.
pub fn write_grid_png(
    path: impl AsRef<Path>,
    images: &[ArrayView1<'_, f64>],
    labels: Option<&[String]>,
    spec: &GridSpec,
) -> Result<()> {
    render_labelled_grid(images, labels, spec, &FigureText::default())?.write_png(path)
}

/// One example of an adversarial figure: the clean image, its adversarial example and the
/// labels before and after (values in `[0, 1]`, ink = 1).
#[derive(Debug, Clone, Copy)]
pub struct AdversarialPanel<'a> {
    /// The clean input.
    pub original: ArrayView1<'a, f64>,
    /// The adversarial example.
    pub adversarial: ArrayView1<'a, f64>,
    /// The original's true label.
    pub true_label: usize,
    /// The label the model gives the adversarial example.
    pub reached_label: usize,
}

/// Renders the paper's Figure 5 layout: for each panel the original (captioned with its true
/// label), the adversarial example (captioned with the label it reached) and the distortion
/// `r = adversarial − original` magnified around grey (captioned with its RMS), `per_row`
/// triples per row under a title and column headers, dark digits on white.
///
/// The magnification `k` is [`non_saturating_factor`] of the largest `|r_i|` over all panels
/// (one factor per figure, so panels compare; no pixel clips), drawn as `0.5 − k·r` (dark =
/// ink added) and stated in the column header and the note under the grid. Returns the
/// canvas and `k`.
pub fn render_adversarial_figure(
    title: &str,
    panels: &[AdversarialPanel<'_>],
    image_hw: (usize, usize),
    per_row: usize,
) -> Result<(Canvas, f64)> {
    let (h, w) = image_hw;
    if panels.is_empty() {
        return Err(Error::InvalidConfig("adversarial figure: no panels".into()));
    }
    let mut tiles: Vec<Array1<f64>> = Vec::with_capacity(3 * panels.len());
    let mut captions = Vec::with_capacity(3 * panels.len());
    let mut max_abs = 0.0f64;
    for (i, p) in panels.iter().enumerate() {
        if p.original.len() != h * w || p.adversarial.len() != h * w {
            return Err(Error::shape(
                format!("adversarial figure panel {i}"),
                h * w,
                format!("{} and {}", p.original.len(), p.adversarial.len()),
            ));
        }
        for (a, b) in p.adversarial.iter().zip(p.original) {
            max_abs = max_abs.max((a - b).abs());
        }
    }
    let k = non_saturating_factor(max_abs);
    for p in panels {
        let r = &p.adversarial - &p.original;
        let rms = (r.dot(&r) / r.len().max(1) as f64).sqrt();
        tiles.push(ink_to_grey(p.original));
        tiles.push(ink_to_grey(p.adversarial));
        tiles.push(magnify_around_grey(r.view(), -k));
        captions.push(format!("label {}", p.true_label));
        captions.push(format!("→ {}", p.reached_label));
        captions.push(format!("rms {rms:.3}"));
    }
    let views: Vec<ArrayView1<'_, f64>> = tiles.iter().map(|t| t.view()).collect();
    let kf = format_factor(k);
    let text = FigureText {
        title: title.to_string(),
        column_headers: vec!["original".into(), "adversarial".into(), format!("r ×{kf}")],
        row_headers: Vec::new(),
        notes: vec![
            "r = adversarial − original, drawn as grey − k·r (dark: ink added),".into(),
            format!("k = {kf} = 0.5 / max|r| rounded down: no pixel clips."),
        ],
    };
    let mut spec = GridSpec::new(3 * per_row.max(1), w, h);
    spec.scale = 3;
    spec.padding = 4;
    Ok((
        render_labelled_grid(&views, Some(&captions), &spec, &text)?,
        k,
    ))
}

/// Writes [`render_adversarial_figure`] as a PNG at `path`; returns the magnification used.
pub fn write_adversarial_figure(
    path: impl AsRef<Path>,
    title: &str,
    panels: &[AdversarialPanel<'_>],
    image_hw: (usize, usize),
    per_row: usize,
) -> Result<f64> {
    let (cv, k) = render_adversarial_figure(title, panels, image_hw, per_row)?;
    cv.write_png(path)?;
    Ok(k)
}

/// `25`, `1.5`, `0.8`: the factor without trailing zeros.
fn format_factor(k: f64) -> String {
    let s = format!("{k:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array1;

    #[test]
    fn absurd_canvas_sizes_are_typed_errors() {
        let c = Canvas::try_new(3, 2, 255).unwrap();
        assert_eq!((c.width(), c.height()), (3, 2));
        for (w, h) in [(usize::MAX, 2), (1 << 32, 1 << 32), (1 << 15, 1 << 14)] {
            assert!(matches!(
                Canvas::try_new(w, h, 0),
                Err(Error::InvalidParameter { .. })
            ));
        }
    }

    #[test]
    fn absurd_grid_sizes_are_typed_errors_before_any_allocation() {
        let im = Array1::<f64>::zeros(4);
        let images = [im.view()];
        let ok = GridSpec::new(1, 2, 2);
        assert!(render_grid(&images, None, &ok).is_ok());
        let name = |spec: GridSpec| match render_grid(&images, None, &spec) {
            Err(Error::InvalidParameter { name, .. }) => name,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            name(GridSpec {
                scale: usize::MAX,
                ..ok
            }),
            "scale"
        );
        assert_eq!(
            name(GridSpec {
                padding: usize::MAX,
                ..ok
            }),
            "padding"
        );
        assert_eq!(
            name(GridSpec {
                cols: usize::MAX,
                ..ok
            }),
            "cols"
        );
        // 2^32 × 2^32 wraps to 0 = the image length in unchecked arithmetic.
        let wrap = GridSpec::new(1, 1 << 32, 1 << 32);
        assert_eq!(name(wrap), "image_width");
        // Every setting in range, but the canvas would be 4096·64 pixels square.
        let big = Array1::<f64>::zeros(4096 * 4096);
        let spec = GridSpec {
            scale: 64,
            ..GridSpec::new(1, 4096, 4096)
        };
        assert!(matches!(
            render_grid(&[big.view()], None, &spec),
            Err(Error::InvalidConfig(m)) if m.contains("larger than")
        ));
        // The largest scale on a small image still renders.
        let spec = GridSpec { scale: 64, ..ok };
        let (w, h, px) = render_grid(&images, None, &spec).unwrap();
        assert_eq!(px.len(), w * h);
        assert!(w >= 128 && h >= 128);
    }

    #[test]
    fn every_printable_ascii_character_has_a_glyph() {
        for c in ' '..='~' {
            if "`{}~\\@&$".contains(c) {
                continue;
            }
            assert!(glyph(c).is_some(), "no glyph for {c:?}");
        }
    }

    #[test]
    fn glyphs_fit_five_columns_and_digits_differ() {
        for c in (' '..='~').chain("×·→±≈−ελ".chars()) {
            if let Some(g) = glyph(c) {
                assert!(g.iter().all(|&b| b < 32), "{c:?} wider than 5 columns");
            }
        }
        let digits: Vec<_> = ('0'..='9').map(|c| glyph(c).unwrap()).collect();
        for i in 0..10 {
            for j in i + 1..10 {
                assert_ne!(digits[i], digits[j], "{i} and {j} look the same");
            }
        }
        // The 3×5 font drew X and K alike; these must not collide.
        assert_ne!(glyph('X'), glyph('K'));
    }

    #[test]
    fn text_is_drawn_where_and_as_wide_as_measured() {
        let mut c = Canvas::new(100, 30, 255);
        let w = c.draw_text(3, 5, "7→3", 2, 0);
        assert_eq!(w, text_width("7→3", 2));
        assert_eq!(w, (3 * 6 - 1) * 2);
        let inked: Vec<(usize, usize)> = (0..30)
            .flat_map(|y| (0..100).map(move |x| (x, y)))
            .filter(|&(x, y)| c.get(x, y) == Some(0))
            .collect();
        let (xmin, xmax) = inked
            .iter()
            .fold((usize::MAX, 0), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let (ymin, ymax) = inked
            .iter()
            .fold((usize::MAX, 0), |(a, b), p| (a.min(p.1), b.max(p.1)));
        assert_eq!((xmin, ymin), (3, 5)); // '7' starts with a full top row
        assert!(xmax < 3 + w && ymax < 5 + 14);
        // A descender reaches below the baseline.
        let mut d = Canvas::new(20, 30, 255);
        d.draw_text(0, 0, "g", 2, 0);
        assert_eq!(d.get(2, 17), Some(0)); // bottom row of 'g' (row 6 + 2) at scale 2
        // Clipped at the edges, no panic.
        c.draw_text(95, 25, "888", 3, 0);
    }

    #[test]
    fn magnification_never_clips_and_is_the_largest_round_factor() {
        for &m in &[1e-4, 0.0123, 0.02, 0.05, 0.07, 0.3, 0.5, 0.9] {
            let k = non_saturating_factor(m);
            assert!(k * m <= 0.5 * (1.0 + 1e-12), "{m}: {k}");
            assert!(k * m > 0.5 / 1.3, "{m}: {k} wastes contrast");
        }
        assert_eq!(non_saturating_factor(f64::NAN), 1.0);
        assert_eq!(non_saturating_factor(0.8).to_string(), "0.6");
    }

    #[test]
    fn adversarial_figure_has_dark_digits_on_white_and_unclipped_distortion() {
        let original = Array1::from_shape_fn(16, |i| if i % 5 == 0 { 1.0 } else { 0.0 });
        let adversarial = original.mapv(|v| if v == 0.0 { 0.04 } else { 0.97 });
        let panels = [AdversarialPanel {
            original: original.view(),
            adversarial: adversarial.view(),
            true_label: 1,
            reached_label: 2,
        }];
        let (cv, k) = render_adversarial_figure("t", &panels, (4, 4), 1).unwrap();
        assert_eq!(k, 12.0); // 0.5 / 0.04 = 12.5 → 12
        // Background white, the digit's ink pixels black, the distortion not clipped.
        assert_eq!(cv.get(0, 0), Some(255));
        let px = cv.pixels();
        assert!(px.contains(&0));
        let g_added = (255.0f64 * (0.5 - 12.0 * 0.04)).round() as u8; // 0.02 → 5
        let g_removed = (255.0f64 * (0.5 + 12.0 * 0.03)).round() as u8; // 0.86 → 219
        assert!(px.contains(&g_added) && px.contains(&g_removed));
    }

    #[test]
    fn labelled_grid_rejects_inconsistent_text() {
        let im = Array1::zeros(4);
        let ims = [im.view(), im.view(), im.view()];
        let spec = GridSpec::new(3, 2, 2);
        let text = FigureText {
            column_headers: vec!["a".into(), "b".into()],
            ..FigureText::default()
        };
        assert!(render_labelled_grid(&ims, None, &spec, &text).is_err());
        let text = FigureText {
            row_headers: vec!["r1".into(), "r2".into()],
            ..FigureText::default()
        };
        assert!(render_labelled_grid(&ims, None, &spec, &text).is_err());
        assert!(render_labelled_grid(&ims, None, &spec, &FigureText::default()).is_ok());
    }
}

pub mod plot;
