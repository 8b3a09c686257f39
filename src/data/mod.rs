//! The MNIST IDX reader.
//!
//! [`read_idx_images`] and [`read_idx_labels`] read one IDX file, raw or gzip-compressed (the
//! gzip magic bytes decide, not the file name). [`Mnist::load`] reads the four standard files
//! of a directory, and [`Mnist::bundled`] the copy shipped in `examples/data/mnist/`
//! (Y. LeCun, C. Cortes, C. J. C. Burges, CC BY-SA 3.0).
//!
//! Every malformed file — wrong magic number, truncated data, trailing bytes, a broken gzip
//! stream, image and label counts that disagree — is an [`Error::DataFormat`]; a missing file
//! is an [`Error::Io`]. Nothing panics.
//!
//! # Examples
//!
//! ```
//! use intriguing::data::Mnist;
//! let mnist = Mnist::bundled()?.take(1000, 100)?;
//! assert_eq!(mnist.train_images.shape(), &[1000, 784]);
//! assert_eq!(&mnist.train_labels[..5], &[5, 0, 4, 1, 9]);
//! assert_eq!(&mnist.test_labels[..5], &[7, 2, 1, 0, 4]);
//! assert!(mnist.train_images.iter().all(|&p| (0.0..=1.0).contains(&p)));
//! # Ok::<(), intriguing::Error>(())
//! ```

use crate::error::{Error, Result};
use ndarray::{Array2, ArrayView2, Axis};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Magic number of an IDX file of unsigned-byte images (`0x00000803`).
pub const IMAGES_MAGIC: u32 = 2051;
/// Magic number of an IDX file of unsigned-byte labels (`0x00000801`).
pub const LABELS_MAGIC: u32 = 2049;

/// Side of an MNIST image in pixels.
pub const MNIST_SIDE: usize = 28;
/// Pixels of an MNIST image (784).
pub const MNIST_PIXELS: usize = MNIST_SIDE * MNIST_SIDE;

/// The MNIST training and test sets. Images are rows of 784 pixels scaled to `[0, 1]`
/// (`byte / 255`), row-major 28×28; labels are `0..=9`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mnist {
    /// `[60000, 784]` for the full set.
    pub train_images: Array2<f64>,
    /// `60000` labels for the full set.
    pub train_labels: Vec<usize>,
    /// `[10000, 784]` for the full set.
    pub test_images: Array2<f64>,
    /// `10000` labels for the full set.
    pub test_labels: Vec<usize>,
}

/// The standard file names, without the optional `.gz`.
const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

impl Mnist {
    /// Reads `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`
    /// and `t10k-labels-idx1-ubyte` from `dir`, each either gzip-compressed (with a `.gz`
    /// suffix, tried first) or raw. Checks that images are 28×28, that image and label
    /// counts agree and that labels are `0..=9`.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let path = |name: &str| -> Result<PathBuf> {
            let gz = dir.join(format!("{name}.gz"));
            if gz.is_file() {
                return Ok(gz);
            }
            let raw = dir.join(name);
            if raw.is_file() {
                return Ok(raw);
            }
            Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("neither {} nor {} exists", gz.display(), raw.display()),
            )))
        };
        let images = |name: &str| -> Result<Array2<f64>> {
            let p = path(name)?;
            let (img, rows, cols) = read_idx_images_dims(&p)?;
            if (rows, cols) != (MNIST_SIDE, MNIST_SIDE) {
                return Err(Error::DataFormat(format!(
                    "{}: images are {rows}x{cols}, MNIST images are 28x28",
                    p.display()
                )));
            }
            Ok(img)
        };
        let labels = |name: &str, n: usize| -> Result<Vec<usize>> {
            let p = path(name)?;
            let l = read_idx_labels(&p)?;
            if l.len() != n {
                return Err(Error::DataFormat(format!(
                    "{}: {} labels for {n} images",
                    p.display(),
                    l.len()
                )));
            }
            if let Some(bad) = l.iter().position(|&v| v > 9) {
                return Err(Error::DataFormat(format!(
                    "{}: label {} at index {bad} is not a digit",
                    p.display(),
                    l[bad]
                )));
            }
            Ok(l)
        };
        let train_images = images(FILES[0])?;
        let train_labels = labels(FILES[1], train_images.nrows())?;
        let test_images = images(FILES[2])?;
        let test_labels = labels(FILES[3], test_images.nrows())?;
        Ok(Mnist {
            train_images,
            train_labels,
            test_images,
            test_labels,
        })
    }

    /// The full MNIST bundled with the crate's sources (`examples/data/mnist/` under
    /// `CARGO_MANIFEST_DIR`). Takes about a second (decompression and conversion to `f64`)
    /// and ~440 MB of memory.
    pub fn bundled() -> Result<Self> {
        Self::load(Self::bundled_dir())
    }

    /// Where [`Mnist::bundled`] reads from.
    pub fn bundled_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/mnist")
    }

    /// The first `n_train` training and `n_test` test examples (copies). Errors if either is
    /// larger than what is available.
    pub fn take(&self, n_train: usize, n_test: usize) -> Result<Self> {
        for (what, n, have) in [
            ("training", n_train, self.train_labels.len()),
            ("test", n_test, self.test_labels.len()),
        ] {
            if n > have {
                return Err(Error::InvalidConfig(format!(
                    "asked for {n} {what} examples, only {have} available"
                )));
            }
        }
        Ok(Mnist {
            train_images: self
                .train_images
                .slice(ndarray::s![..n_train, ..])
                .to_owned(),
            train_labels: self.train_labels[..n_train].to_vec(),
            test_images: self.test_images.slice(ndarray::s![..n_test, ..]).to_owned(),
            test_labels: self.test_labels[..n_test].to_vec(),
        })
    }
}

/// The rows `indices` of `images` with their labels (copies), e.g. a random subset or one
/// class. Errors on an index out of range or `labels.len() != images.nrows()`.
///
/// # Examples
///
/// ```
/// use intriguing::data::subset;
/// use ndarray::array;
/// let x = array![[0.0, 0.1], [1.0, 1.1], [2.0, 2.1]];
/// let (xs, ys) = subset(x.view(), &[7, 8, 9], &[2, 0])?;
/// assert_eq!(xs, array![[2.0, 2.1], [0.0, 0.1]]);
/// assert_eq!(ys, vec![9, 7]);
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn subset(
    images: ArrayView2<'_, f64>,
    labels: &[usize],
    indices: &[usize],
) -> Result<(Array2<f64>, Vec<usize>)> {
    if labels.len() != images.nrows() {
        return Err(Error::shape("labels", images.nrows(), labels.len()));
    }
    if let Some(&bad) = indices.iter().find(|&&i| i >= images.nrows()) {
        return Err(Error::InvalidConfig(format!(
            "subset index {bad} out of range for {} examples",
            images.nrows()
        )));
    }
    Ok((
        images.select(Axis(0), indices),
        indices.iter().map(|&i| labels[i]).collect(),
    ))
}

/// Reads an IDX file of unsigned-byte images (magic 2051, raw or gzip) into `[n, rows*cols]`
/// pixels scaled to `[0, 1]`.
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<Array2<f64>> {
    Ok(read_idx_images_dims(path.as_ref())?.0)
}

/// Reads an IDX file of unsigned-byte labels (magic 2049, raw or gzip).
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<usize>> {
    let path = path.as_ref();
    let bytes = read_maybe_gz(path)?;
    parse_idx_labels(&bytes).map_err(|e| with_path(e, path))
}

fn read_idx_images_dims(path: &Path) -> Result<(Array2<f64>, usize, usize)> {
    let bytes = read_maybe_gz(path)?;
    parse_idx_images_dims(&bytes).map_err(|e| with_path(e, path))
}

fn with_path(e: Error, path: &Path) -> Error {
    match e {
        Error::DataFormat(m) => Error::DataFormat(format!("{}: {m}", path.display())),
        other => other,
    }
}

/// Reads a whole file, decompressing it if it starts with the gzip magic bytes.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        ))
    })?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| {
                Error::DataFormat(format!("{}: broken gzip stream: {e}", path.display()))
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses the bytes of an (uncompressed) IDX image file into `[n, rows*cols]` pixels in
/// `[0, 1]`.
///
/// # Examples
///
/// ```
/// use intriguing::data::parse_idx_images;
/// let mut bytes = vec![0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2];
/// bytes.extend([0, 255]);
/// assert_eq!(parse_idx_images(&bytes)?.row(0).to_vec(), vec![0.0, 1.0]);
/// bytes.pop(); // truncated
/// assert!(matches!(parse_idx_images(&bytes), Err(intriguing::Error::DataFormat(_))));
/// # Ok::<(), intriguing::Error>(())
/// ```
pub fn parse_idx_images(bytes: &[u8]) -> Result<Array2<f64>> {
    Ok(parse_idx_images_dims(bytes)?.0)
}

/// Parses the bytes of an (uncompressed) IDX label file.
pub fn parse_idx_labels(bytes: &[u8]) -> Result<Vec<usize>> {
    let magic = be_u32(bytes, 0, "magic number")?;
    if magic != LABELS_MAGIC {
        return Err(bad_magic(magic, LABELS_MAGIC, "labels"));
    }
    let n = be_u32(bytes, 4, "label count")? as usize;
    let data = &bytes[8..];
    check_len(data.len(), n, "label")?;
    Ok(data.iter().map(|&b| b as usize).collect())
}

fn parse_idx_images_dims(bytes: &[u8]) -> Result<(Array2<f64>, usize, usize)> {
    let magic = be_u32(bytes, 0, "magic number")?;
    if magic != IMAGES_MAGIC {
        return Err(bad_magic(magic, IMAGES_MAGIC, "images"));
    }
    let n = be_u32(bytes, 4, "image count")? as usize;
    let rows = be_u32(bytes, 8, "row count")? as usize;
    let cols = be_u32(bytes, 12, "column count")? as usize;
    let pixels = rows
        .checked_mul(cols)
        .filter(|&p| p > 0)
        .ok_or_else(|| Error::DataFormat(format!("invalid image size {rows}x{cols}")))?;
    let total = n
        .checked_mul(pixels)
        .ok_or_else(|| Error::DataFormat(format!("{n} images of {rows}x{cols} overflow")))?;
    let data = &bytes[16..];
    check_len(data.len(), total, "pixel")?;
    let img = Array2::from_shape_vec(
        (n, pixels),
        data.iter().map(|&b| f64::from(b) / 255.0).collect(),
    )
    .map_err(|e| Error::DataFormat(e.to_string()))?;
    Ok((img, rows, cols))
}

fn be_u32(bytes: &[u8], at: usize, what: &str) -> Result<u32> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| {
            Error::DataFormat(format!(
                "file truncated in the IDX header ({} bytes, no {what})",
                bytes.len()
            ))
        })
}

fn bad_magic(got: u32, want: u32, what: &str) -> Error {
    Error::DataFormat(format!(
        "bad magic number {got} (0x{got:08x}): an IDX {what} file starts with {want} (0x{want:08x})"
    ))
}

fn check_len(have: usize, want: usize, what: &str) -> Result<()> {
    match have.cmp(&want) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Less => Err(Error::DataFormat(format!(
            "file truncated: the header announces {want} {what} bytes, only {have} present"
        ))),
        std::cmp::Ordering::Greater => Err(Error::DataFormat(format!(
            "{} trailing bytes after the {want} {what} bytes the header announces",
            have - want
        ))),
    }
}
