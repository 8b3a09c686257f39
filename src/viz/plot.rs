//! Line plots as RGB PNG files: axes, ticks with labels, axis labels, a title and a legend,
//! drawn in pure Rust with a built-in 5×7 pixel font (shown at 2× by default) — e.g. robust
//! accuracy against ε for several attacks ([`crate::attack::MinimalDistortions`],
//! [`crate::attack::bounded_accuracy_curve`]).
//!
//! # Examples
//!
//! ```
//! use intriguing::viz::plot::{LinePlot, LegendPosition};
//! let eps = [0.0, 0.1, 0.2, 0.3];
//! let plot = LinePlot::new("Robust accuracy", "epsilon (L-inf)", "accuracy")
//!     .with_series("DeepFool", &eps, &[0.98, 0.6, 0.2, 0.05])?
//!     .with_series("PGD", &eps, &[0.98, 0.5, 0.1, 0.0])?
//!     .with_y_range(0.0, 1.0)?
//!     .with_legend(LegendPosition::TopRight);
//! let (w, h, rgb) = plot.render()?;
//! assert_eq!(rgb.len(), w * h * 3);
//! let path = std::env::temp_dir().join("intriguing_plot_doctest.png");
//! plot.write_png(&path)?;
//! assert!(path.exists());
//! # Ok::<(), intriguing::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::viz::{GLYPH_HEIGHT, text_pixels, text_width};
use std::path::Path;

/// Where the legend box goes inside the plot area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegendPosition {
    /// Upper right corner.
    TopRight,
    /// Upper left corner.
    TopLeft,
    /// Lower right corner.
    BottomRight,
    /// Lower left corner.
    BottomLeft,
}

#[derive(Debug, Clone, PartialEq)]
struct Series {
    name: String,
    x: Vec<f64>,
    y: Vec<f64>,
}

/// A line plot of one or more series (build with [`LinePlot::new`] and the `with_*` methods).
#[derive(Debug, Clone, PartialEq)]
pub struct LinePlot {
    title: String,
    x_label: String,
    y_label: String,
    series: Vec<Series>,
    width: usize,
    height: usize,
    font_scale: usize,
    x_range: Option<(f64, f64)>,
    y_range: Option<(f64, f64)>,
    legend: LegendPosition,
}

/// Okabe–Ito colours (distinguishable with the common colour-vision deficiencies).
const PALETTE: [[u8; 3]; 7] = [
    [0, 114, 178],
    [213, 94, 0],
    [0, 158, 115],
    [204, 121, 167],
    [230, 159, 0],
    [86, 180, 233],
    [0, 0, 0],
];

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let k = 3 * (y as usize * self.w + x as usize);
            self.px[k..k + 3].copy_from_slice(&c);
        }
    }
    fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3]) {
        for y in y0..=y1 {
            for x in x0..=x1 {
                self.set(x, y, c);
            }
        }
    }
    fn disk(&mut self, cx: f64, cy: f64, r: f64, c: [u8; 3]) {
        let (x0, x1) = ((cx - r).floor() as i64, (cx + r).ceil() as i64);
        let (y0, y1) = ((cy - r).floor() as i64, (cy + r).ceil() as i64);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (dx, dy) = (x as f64 - cx, y as f64 - cy);
                if dx * dx + dy * dy <= r * r {
                    self.set(x, y, c);
                }
            }
        }
    }
    fn line(&mut self, a: (f64, f64), b: (f64, f64), r: f64, c: [u8; 3]) {
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        let steps = (len * 2.0).ceil().max(1.0) as usize;
        for k in 0..=steps {
            let t = k as f64 / steps as f64;
            self.disk(a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1), r, c);
        }
    }
    /// Text in the crate's one font ([`text_pixels`], as [`Canvas::draw_text`](crate::viz::Canvas::draw_text)
    /// lays it out) with its top-left corner at `(x, y)`; `vertical` reads bottom to top,
    /// starting at `(x, y)` as the bottom-left corner.
    fn text(&mut self, s: &str, x: i64, y: i64, scale: usize, vertical: bool, c: [u8; 3]) {
        let sc = scale as i64;
        for (gx, gy) in text_pixels(s) {
            let (gx, gy) = (gx as i64, gy as i64);
            let (px, py) = if vertical {
                (x + gy * sc, y - gx * sc - (sc - 1))
            } else {
                (x + gx * sc, y + gy * sc)
            };
            self.rect(px, py, px + sc - 1, py + sc - 1, c);
        }
    }
}

#[cfg(test)]
impl Canvas {
    fn clone_blank(&self) -> Canvas {
        Canvas {
            w: self.w,
            h: self.h,
            px: vec![255; self.px.len()],
        }
    }
}

/// "Nice" ticks covering `[lo, hi]`: a step of 1, 2, 2.5 or 5 × 10^k giving about `target`
/// intervals, the tick values and the number of decimals to print them with.
fn nice_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, usize) {
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let (mant, extra) = [(1.0, 0), (2.0, 0), (2.5, 1), (5.0, 0), (10.0, 0)]
        .into_iter()
        .find(|(m, _)| m * mag >= raw * (1.0 - 1e-9))
        .unwrap_or((10.0, 0));
    let step = mant * mag;
    let decimals = (-(step.log10().floor()) as i64 + extra).max(0) as usize;
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let ticks = (first..=last).map(|k| k as f64 * step).collect();
    (ticks, decimals)
}

impl LinePlot {
    /// An empty plot with a title and axis labels, 800 × 560 pixels, font scale 2, legend at
    /// the top right.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        LinePlot {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            width: 800,
            height: 560,
            font_scale: 2,
            x_range: None,
            y_range: None,
            legend: LegendPosition::TopRight,
        }
    }

    /// Adds a series drawn as a line with markers (same lengths ≥ 1, finite values).
    pub fn with_series(mut self, name: impl Into<String>, x: &[f64], y: &[f64]) -> Result<Self> {
        if x.len() != y.len() || x.is_empty() {
            return Err(Error::shape("plot series", x.len().max(1), y.len()));
        }
        crate::error::check_finite(x.iter().chain(y), "plot series")?;
        self.series.push(Series {
            name: name.into(),
            x: x.to_vec(),
            y: y.to_vec(),
        });
        Ok(self)
    }

    /// Image size in pixels (at least 240 × 180).
    pub fn with_size(mut self, width: usize, height: usize) -> Result<Self> {
        if width < 240 || height < 180 || width > 10_000 || height > 10_000 {
            return Err(Error::InvalidConfig(format!(
                "plot size must be between 240x180 and 10000x10000, got {width}x{height}"
            )));
        }
        self.width = width;
        self.height = height;
        Ok(self)
    }

    /// Font scale (1–4; each font pixel becomes `scale × scale`).
    pub fn with_font_scale(mut self, scale: usize) -> Result<Self> {
        if !(1..=4).contains(&scale) {
            return Err(Error::InvalidConfig(format!(
                "plot font scale must be 1..=4, got {scale}"
            )));
        }
        self.font_scale = scale;
        Ok(self)
    }

    /// A fixed x range (finite, `lo < hi`) instead of the data's.
    pub fn with_x_range(mut self, lo: f64, hi: f64) -> Result<Self> {
        self.x_range = Some(check_range("x", lo, hi)?);
        Ok(self)
    }

    /// A fixed y range (finite, `lo < hi`) instead of the data's.
    pub fn with_y_range(mut self, lo: f64, hi: f64) -> Result<Self> {
        self.y_range = Some(check_range("y", lo, hi)?);
        Ok(self)
    }

    /// Where the legend goes.
    pub fn with_legend(mut self, position: LegendPosition) -> Self {
        self.legend = position;
        self
    }

    fn data_range(&self, pick: impl Fn(&Series) -> &[f64]) -> (f64, f64) {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for s in &self.series {
            for &v in pick(s) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if hi - lo <= 0.0 {
            (lo - 0.5, hi + 0.5)
        } else {
            (lo, hi)
        }
    }

    /// Renders the plot: `(width, height, rgb)` with 3 bytes per pixel, row-major.
    pub fn render(&self) -> Result<(usize, usize, Vec<u8>)> {
        if self.series.is_empty() {
            return Err(Error::InvalidConfig(
                "a plot needs at least one series".into(),
            ));
        }
        let (w, h, s) = (self.width, self.height, self.font_scale);
        let mut cv = Canvas {
            w,
            h,
            px: vec![255; w * h * 3],
        };
        let (black, grey, light) = ([0, 0, 0], [90, 90, 90], [225, 225, 225]);
        let (xlo, xhi) = self.x_range.unwrap_or_else(|| self.data_range(|s| &s.x));
        let (ylo, yhi) = self.y_range.unwrap_or_else(|| self.data_range(|s| &s.y));
        let (xt, xd) = nice_ticks(xlo, xhi, 6);
        let (yt, yd) = nice_ticks(ylo, yhi, 5);
        let ylabels: Vec<String> = yt.iter().map(|v| format!("{v:.yd$}")).collect();
        let xlabels: Vec<String> = xt.iter().map(|v| format!("{v:.xd$}")).collect();
        let gh = GLYPH_HEIGHT * s; // glyph height (descenders reach 2 font pixels below)
        let ytw = ylabels.iter().map(|l| text_width(l, s)).max().unwrap_or(0);
        let left = 10 + gh + 12 + ytw + 8;
        let right = 24 + text_width(xlabels.last().map_or("", |l| l.as_str()), s) / 2;
        let top = 12 + gh + 14;
        let bottom = 8 + gh + 12 + gh + 12;
        if left + right + 40 > w || top + bottom + 40 > h {
            return Err(Error::InvalidConfig("plot too small for its labels".into()));
        }
        let (px0, px1) = (left as f64, (w - right) as f64);
        let (py0, py1) = (top as f64, (h - bottom) as f64);
        let sx = |v: f64| px0 + (v - xlo) / (xhi - xlo) * (px1 - px0);
        let sy = |v: f64| py1 - (v - ylo) / (yhi - ylo) * (py1 - py0);

        // Grid, ticks and tick labels.
        for (v, l) in xt.iter().zip(&xlabels) {
            let x = sx(*v).round() as i64;
            cv.rect(x, py0 as i64, x, py1 as i64, light);
            cv.rect(x, py1 as i64, x, py1 as i64 + 5, black);
            let tw = text_width(l, s) as i64;
            cv.text(l, x - tw / 2, py1 as i64 + 9, s, false, black);
        }
        for (v, l) in yt.iter().zip(&ylabels) {
            let y = sy(*v).round() as i64;
            cv.rect(px0 as i64, y, px1 as i64, y, light);
            cv.rect(px0 as i64 - 5, y, px0 as i64, y, black);
            let tw = text_width(l, s) as i64;
            cv.text(l, px0 as i64 - 9 - tw, y - gh as i64 / 2, s, false, black);
        }
        // Axes box.
        let (a0, a1, b0, b1) = (px0 as i64, px1 as i64, py0 as i64, py1 as i64);
        cv.rect(a0, b1, a1, b1 + 1, black);
        cv.rect(a0 - 1, b0, a0, b1, black);
        cv.rect(a0, b0, a1, b0, grey);
        cv.rect(a1, b0, a1, b1, grey);
        // Title and axis labels.
        let tw = text_width(&self.title, s) as i64;
        cv.text(&self.title, (w as i64 - tw) / 2, 12, s, false, black);
        let xw = text_width(&self.x_label, s) as i64;
        cv.text(
            &self.x_label,
            ((px0 + px1) / 2.0) as i64 - xw / 2,
            (h - 12 - gh) as i64,
            s,
            false,
            black,
        );
        let yw = text_width(&self.y_label, s) as i64;
        cv.text(
            &self.y_label,
            10,
            ((py0 + py1) / 2.0) as i64 + yw / 2,
            s,
            true,
            black,
        );
        // Series, clipped to the plot area by construction of the ranges (points outside a
        // fixed range are drawn clamped to its edge).
        let clamp = |p: (f64, f64)| (p.0.clamp(px0, px1), p.1.clamp(py0, py1));
        let lw = s as f64 * 0.75;
        for (k, ser) in self.series.iter().enumerate() {
            let c = PALETTE[k % PALETTE.len()];
            let pts: Vec<(f64, f64)> = ser
                .x
                .iter()
                .zip(&ser.y)
                .map(|(&x, &y)| clamp((sx(x), sy(y))))
                .collect();
            for p in pts.windows(2) {
                cv.line(p[0], p[1], lw, c);
            }
            for &p in &pts {
                marker(&mut cv, k, p, 2.0 * s as f64 + 1.0, c);
            }
        }
        // Legend.
        let sample = 28usize;
        let lh = gh + 8;
        let names_w = self
            .series
            .iter()
            .map(|ser| text_width(&ser.name, s))
            .max()
            .unwrap_or(0);
        let bw = 10 + sample + 8 + names_w + 10;
        let bh = 8 + lh * self.series.len() + 2;
        let (bx, by) = match self.legend {
            LegendPosition::TopRight => (a1 - 10 - bw as i64, b0 + 10),
            LegendPosition::TopLeft => (a0 + 10, b0 + 10),
            LegendPosition::BottomRight => (a1 - 10 - bw as i64, b1 - 10 - bh as i64),
            LegendPosition::BottomLeft => (a0 + 10, b1 - 10 - bh as i64),
        };
        cv.rect(bx, by, bx + bw as i64, by + bh as i64, [255, 255, 255]);
        cv.rect(bx, by, bx + bw as i64, by, grey);
        cv.rect(bx, by + bh as i64, bx + bw as i64, by + bh as i64, grey);
        cv.rect(bx, by, bx, by + bh as i64, grey);
        cv.rect(bx + bw as i64, by, bx + bw as i64, by + bh as i64, grey);
        for (k, ser) in self.series.iter().enumerate() {
            let c = PALETTE[k % PALETTE.len()];
            let ty = by + 8 + (k * lh) as i64;
            let cy = (ty + gh as i64 / 2) as f64;
            let lx = (bx + 10) as f64;
            cv.line((lx, cy), (lx + sample as f64, cy), lw, c);
            marker(
                &mut cv,
                k,
                (lx + sample as f64 / 2.0, cy),
                2.0 * s as f64 + 1.0,
                c,
            );
            cv.text(&ser.name, bx + 10 + sample as i64 + 8, ty, s, false, black);
        }
        Ok((w, h, cv.px))
    }

    /// Writes [`render`](Self::render) as an 8-bit RGB PNG at `path`.
    pub fn write_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let (w, h, px) = self.render()?;
        let file = std::fs::File::create(path.as_ref())?;
        // Sizes are capped at 10 000 by `with_size`.
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        writer.write_image_data(&px)?;
        writer.finish()?;
        Ok(())
    }
}

fn check_range(axis: &str, lo: f64, hi: f64) -> Result<(f64, f64)> {
    if lo.is_finite() && hi.is_finite() && lo < hi {
        Ok((lo, hi))
    } else {
        Err(Error::InvalidConfig(format!(
            "plot {axis} range must be finite with lo < hi, got [{lo}, {hi}]"
        )))
    }
}

/// Marker `k mod 5`: disk, square, triangle, diamond, cross.
fn marker(cv: &mut Canvas, k: usize, (x, y): (f64, f64), r: f64, c: [u8; 3]) {
    let (xi, yi, ri) = (x.round() as i64, y.round() as i64, r.round() as i64);
    match k % 5 {
        0 => cv.disk(x, y, r, c),
        1 => cv.rect(xi - ri + 1, yi - ri + 1, xi + ri - 1, yi + ri - 1, c),
        2 => {
            for dy in -ri..=ri {
                let half = (dy + ri) / 2;
                cv.rect(xi - half, yi + dy, xi + half, yi + dy, c);
            }
        }
        3 => {
            for dy in -ri..=ri {
                let half = ri - dy.abs();
                cv.rect(xi - half, yi + dy, xi + half, yi + dy, c);
            }
        }
        _ => {
            let (a, b) = ((x - r, y - r), (x + r, y + r));
            cv.line(a, b, 1.0, c);
            cv.line((x - r, y + r), (x + r, y - r), 1.0, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ticks_cover_the_range_with_round_steps() {
        let (t, d) = nice_ticks(0.0, 1.0, 5);
        assert_eq!(t, vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        assert_eq!(d, 1);
        let (t, d) = nice_ticks(0.0, 0.3, 6);
        assert_eq!((t.len(), d), (7, 2));
        let (t, d) = nice_ticks(0.0, 10.0, 4);
        assert_eq!((t, d), (vec![0.0, 2.5, 5.0, 7.5, 10.0], 1));
    }

    #[test]
    fn every_printable_label_character_has_a_glyph() {
        // The shared font draws a character it lacks as an outlined 5×7 box: 20 font pixels.
        let missing = text_pixels("\u{2603}").count();
        assert_eq!(missing, 20);
        for c in
            "0123456789.-+ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz()[]/:%_|'<>=,ε∞‖·₂ρ"
                .chars()
        {
            let px: Vec<_> = text_pixels(&c.to_string()).collect();
            let boxed: Vec<_> = text_pixels("\u{2603}").collect();
            assert_ne!(px, boxed, "{c} is not in the font");
        }
    }

    #[test]
    fn plot_text_is_the_canvas_text() {
        // The same string drawn by the plot (RGB) and by viz::Canvas (grey) inks the same
        // pixels, at every scale: one font, one layout.
        for scale in 1..=3 {
            let text = "eps ‖r‖₂ = 0.25, ρ → ∞ (gpqy)";
            let (w, h) = (text_width(text, scale) + 4, 12 * scale);
            let mut rgb = Canvas {
                w,
                h,
                px: vec![255; w * h * 3],
            };
            rgb.text(text, 1, 1, scale, false, [0, 0, 0]);
            let mut grey = crate::viz::Canvas::new(w, h, 255);
            grey.draw_text(1, 1, text, scale, 0);
            let inked_rgb: Vec<bool> = rgb.px.chunks(3).map(|p| p[0] == 0).collect();
            let inked_grey: Vec<bool> = grey.pixels().iter().map(|&g| g == 0).collect();
            assert_eq!(inked_rgb, inked_grey, "scale {scale}");
            assert!(inked_rgb.iter().filter(|&&b| b).count() > 100);
        }
    }

    #[test]
    fn vertical_text_is_the_horizontal_text_rotated() {
        let (text, sc) = ("accuracy", 2usize);
        let (tw, th) = (text_width(text, sc), 9 * sc);
        let n = tw.max(th) + 4;
        let mut horiz = Canvas {
            w: n,
            h: n,
            px: vec![255; n * n * 3],
        };
        let mut vert = horiz.clone_blank();
        horiz.text(text, 0, 0, sc, false, [0, 0, 0]);
        // Bottom-left corner at (0, n - 1): reads bottom to top.
        vert.text(text, 0, n as i64 - 1, sc, true, [0, 0, 0]);
        let ink = |c: &Canvas, x: usize, y: usize| c.px[3 * (y * n + x)] == 0;
        for y in 0..n {
            for x in 0..n {
                // Rotation by 90° counter-clockwise: (x, y) -> (y, n - 1 - x).
                assert_eq!(ink(&horiz, x, y), ink(&vert, y, n - 1 - x), "({x}, {y})");
            }
        }
    }

    #[test]
    fn render_draws_series_colours_and_text_and_rejects_bad_input() {
        let p = LinePlot::new("T", "x", "y")
            .with_series("a", &[0.0, 1.0], &[0.0, 1.0])
            .unwrap()
            .with_series("b", &[0.0, 1.0], &[1.0, 0.0])
            .unwrap();
        let (w, h, px) = p.render().unwrap();
        assert_eq!((w, h), (800, 560));
        let count = |c: [u8; 3]| px.chunks(3).filter(|p| *p == c).count();
        assert!(count(PALETTE[0]) > 500 && count(PALETTE[1]) > 500);
        assert!(count([0, 0, 0]) > 1000, "axes and text");
        assert!(LinePlot::new("", "", "").render().is_err());
        assert!(
            LinePlot::new("", "", "")
                .with_series("a", &[0.0], &[])
                .is_err()
        );
        assert!(
            LinePlot::new("", "", "")
                .with_series("a", &[f64::NAN], &[0.0])
                .is_err()
        );
        assert!(LinePlot::new("", "", "").with_y_range(1.0, 0.0).is_err());
        assert!(LinePlot::new("", "", "").with_size(10, 10).is_err());
    }
}
