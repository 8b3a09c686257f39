//! The MNIST IDX reader.
//!
//! [`read_idx_images`] and [`read_idx_labels`] read one IDX file, raw or gzip-compressed (the
//! gzip magic bytes decide, not the file name). [`Mnist::load`] reads the four standard files
//! of a directory you name; [`Mnist::from_env`] reads the directory named by the environment
//! variable `INTRIGUING_MNIST_DIR` ([`MNIST_DIR_ENV`]). Nothing in this crate knows where its
//! own sources are: a program (or a crate depending on this one) says where MNIST is.
//!
//! # Getting MNIST
//!
//! The MNIST database of handwritten digits is by Yann LeCun, Corinna Cortes and Christopher
//! J. C. Burges (<http://yann.lecun.com/exdb/mnist/>), available under CC BY-SA 3.0. You need
//! the four files `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`,
//! `t10k-images-idx3-ubyte.gz` and `t10k-labels-idx1-ubyte.gz` (gzip or uncompressed, the `.gz`
//! suffix optional) in one directory. A clone of this crate's repository has them in
//! `examples/data/mnist/` (they are not in the published package). Then either call
//! `Mnist::load("path/to/mnist")` or set `INTRIGUING_MNIST_DIR=path/to/mnist` and call
//! [`Mnist::from_env`]. When the files are not there, the error ([`Error::DataNotFound`]) says
//! all of this.
//!
//! Every malformed file — wrong magic number, truncated data, trailing bytes, a broken gzip
//! stream, sizes in the header that overflow or that the compressed file cannot hold, image and
//! label counts that disagree — is an [`Error::DataFormat`]. A gzip file is validated while it
//! is inflated: the IDX header is read and checked first, and no more is inflated than the
//! header announces (and no more than deflate's maximum ratio allows for the compressed size).
//! A missing file is an [`Error::Io`] for the single-file readers and an
//! [`Error::DataNotFound`] for [`Mnist::load`]. Nothing panics.
//!
//! # Examples
//!
//! ```
//! use intriguing::data::Mnist;
//! // INTRIGUING_MNIST_DIR if set, else the copy in this repository (run from a clone).
//! let dir = std::env::var_os("INTRIGUING_MNIST_DIR").unwrap_or_else(|| "examples/data/mnist".into());
//! let mnist = Mnist::load(dir)?.take(1000, 100)?;
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

/// The environment variable [`Mnist::from_env`] reads: a directory holding the four MNIST files.
pub const MNIST_DIR_ENV: &str = "INTRIGUING_MNIST_DIR";

/// What to do when MNIST is not found: which files, where from, how to point the crate at them.
fn missing_mnist(problem: &str) -> Error {
    Error::DataNotFound(format!(
        "MNIST not found: {problem}. intriguing needs the four MNIST files \
         train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and \
         t10k-labels-idx1-ubyte.gz (gzip or uncompressed, the .gz suffix optional) in one \
         directory. MNIST is by Yann LeCun, Corinna Cortes and Christopher J. C. Burges \
         (http://yann.lecun.com/exdb/mnist/), CC BY-SA 3.0; a clone of the intriguing \
         repository has a copy in examples/data/mnist/. Point the crate at the directory with \
         Mnist::load(dir), or set {MNIST_DIR_ENV}=dir and call Mnist::from_env()."
    ))
}

impl Mnist {
    /// Reads `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`
    /// and `t10k-labels-idx1-ubyte` from `dir`, each either gzip-compressed (with a `.gz`
    /// suffix, tried first) or raw. Checks that images are 28×28, that image and label
    /// counts agree and that labels are `0..=9`. Takes about a second for the full set
    /// (decompression and conversion to `f64`) and ~440 MB of memory.
    ///
    /// A missing file is an [`Error::DataNotFound`] whose message names the four files, where
    /// MNIST comes from and how to point the crate at it (see the [module docs](self)).
    ///
    /// # Examples
    ///
    /// `no_run`: it needs the four MNIST files (in a clone, `examples/data/mnist/`).
    ///
    /// ```no_run
    /// use intriguing::data::Mnist;
    /// let mnist = Mnist::load("examples/data/mnist")?;
    /// assert_eq!(mnist.train_images.dim(), (60_000, 784));
    /// assert_eq!(mnist.test_labels.len(), 10_000);
    /// let x = mnist.test_images.row(0); // pixel values in [0, 1]
    /// assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
    /// // A missing directory is a typed error naming the files, not a panic:
    /// assert!(matches!(
    ///     Mnist::load("no/such/dir"),
    ///     Err(intriguing::Error::DataNotFound(_))
    /// ));
    /// # Ok::<(), intriguing::Error>(())
    /// ```
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
            Err(missing_mnist(&format!(
                "neither {} nor {} exists",
                gz.display(),
                raw.display()
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

    /// Reads MNIST from the directory named by the environment variable
    /// `INTRIGUING_MNIST_DIR` ([`MNIST_DIR_ENV`]), as [`Mnist::load`] does.
    ///
    /// When the variable is not set (or empty), the error is an [`Error::DataNotFound`] whose
    /// message names the four files needed, where MNIST comes from (Y. LeCun, C. Cortes,
    /// C. J. C. Burges; CC BY-SA 3.0) and how to point the crate at them.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // INTRIGUING_MNIST_DIR=/path/to/mnist cargo run
    /// let mnist = intriguing::data::Mnist::from_env()?;
    /// assert_eq!(mnist.test_labels.len(), 10_000);
    /// # Ok::<(), intriguing::Error>(())
    /// ```
    pub fn from_env() -> Result<Self> {
        match std::env::var_os(MNIST_DIR_ENV) {
            Some(dir) if !dir.is_empty() => Self::load(dir),
            _ => Err(missing_mnist(&format!(
                "the environment variable {MNIST_DIR_ENV} is not set"
            ))),
        }
    }

    /// The first `n_train` training and `n_test` test examples (copies). Errors if either is
    /// larger than what is available.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use intriguing::data::Mnist;
    /// let small = Mnist::load("examples/data/mnist")?.take(1_000, 100)?;
    /// assert_eq!(small.train_images.nrows(), 1_000);
    /// assert_eq!(small.test_labels.len(), 100);
    /// assert!(small.take(2_000, 0).is_err()); // more than there is
    /// # Ok::<(), intriguing::Error>(())
    /// ```
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
    let bytes = read_idx_bytes(path, IdxKind::Labels)?;
    parse_idx_labels(&bytes).map_err(|e| with_path(e, path))
}

fn read_idx_images_dims(path: &Path) -> Result<(Array2<f64>, usize, usize)> {
    let bytes = read_idx_bytes(path, IdxKind::Images)?;
    parse_idx_images_dims(&bytes).map_err(|e| with_path(e, path))
}

fn with_path(e: Error, path: &Path) -> Error {
    match e {
        Error::DataFormat(m) => Error::DataFormat(format!("{}: {m}", path.display())),
        other => other,
    }
}

/// The two IDX file types this module reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IdxKind {
    Images,
    Labels,
}

impl IdxKind {
    fn header_len(self) -> usize {
        match self {
            IdxKind::Images => 16,
            IdxKind::Labels => 8,
        }
    }
}

/// The largest ratio of inflated to compressed size a deflate stream can reach: a length-258
/// match costs at least two bits, hence 258 × 8 / 2 = 1032 (the zlib FAQ's "1032:1").
const DEFLATE_MAX_RATIO: u64 = 1032;

/// Checks the IDX header at the start of `bytes` (at least `kind.header_len()` of them) and
/// returns the total file length it announces (header + data), with checked arithmetic.
fn idx_announced_len(bytes: &[u8], kind: IdxKind) -> Result<usize> {
    let magic = be_u32(bytes, 0, "magic number")?;
    match kind {
        IdxKind::Labels => {
            if magic != LABELS_MAGIC {
                return Err(bad_magic(magic, LABELS_MAGIC, "labels"));
            }
            let n = be_u32(bytes, 4, "label count")? as usize;
            n.checked_add(8)
                .ok_or_else(|| Error::DataFormat(format!("{n} labels overflow")))
        }
        IdxKind::Images => {
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
            n.checked_mul(pixels)
                .and_then(|t| t.checked_add(16))
                .ok_or_else(|| Error::DataFormat(format!("{n} images of {rows}x{cols} overflow")))
        }
    }
}

/// Reads a whole IDX file, inflating it if it starts with the gzip magic bytes.
///
/// A gzip stream is validated while it is inflated: the IDX header comes first and is checked
/// (magic number, checked sizes); a header announcing more than the compressed file can hold
/// (deflate's maximum ratio) is rejected before anything else is inflated, and at most the
/// announced length plus one byte (to detect trailing data) is ever inflated.
fn read_idx_bytes(path: &Path, kind: IdxKind) -> Result<Vec<u8>> {
    let io_err = |e: std::io::Error| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        ))
    };
    let raw = std::fs::read(path).map_err(io_err)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let decoder = flate2::read::MultiGzDecoder::new(&raw[..]);
        inflate_idx(decoder, raw.len() as u64, kind).map_err(|e| match e {
            Error::Io(io) => {
                Error::DataFormat(format!("{}: broken gzip stream: {io}", path.display()))
            }
            other => with_path(other, path),
        })
    } else {
        Ok(raw)
    }
}

/// Reads the inflated IDX bytes from `inflated` (the decoder of a gzip file of
/// `compressed_len` bytes): the header first, checked, then at most the announced length plus
/// one byte. I/O errors (a broken stream) are returned as [`Error::Io`]; the caller names the
/// file.
fn inflate_idx(mut inflated: impl Read, compressed_len: u64, kind: IdxKind) -> Result<Vec<u8>> {
    let header_len = kind.header_len();
    let mut out = Vec::with_capacity(header_len);
    (&mut inflated)
        .take(header_len as u64)
        .read_to_end(&mut out)?;
    if out.len() < header_len {
        // Too short for a header: let the parser report what is missing.
        return Ok(out);
    }
    let announced = idx_announced_len(&out, kind)?;
    let max_inflated = compressed_len.saturating_mul(DEFLATE_MAX_RATIO);
    if announced as u64 > max_inflated {
        return Err(Error::DataFormat(format!(
            "the header announces {announced} bytes, more than a gzip file of \
             {compressed_len} bytes can hold (deflate inflates at most {DEFLATE_MAX_RATIO}:1)"
        )));
    }
    // Grow with what actually arrives; never reserve more than 64 MiB up front.
    out.reserve(announced.min(64 << 20).saturating_sub(header_len));
    let rest = (announced - header_len) as u64 + 1;
    inflated.take(rest).read_to_end(&mut out)?;
    Ok(out)
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
    let total = idx_announced_len(bytes, IdxKind::Labels)?;
    check_len(bytes.len() - 8, total - 8, "label")?;
    Ok(bytes[8..].iter().map(|&b| b as usize).collect())
}

fn parse_idx_images_dims(bytes: &[u8]) -> Result<(Array2<f64>, usize, usize)> {
    let total = idx_announced_len(bytes, IdxKind::Images)?;
    let n = be_u32(bytes, 4, "image count")? as usize;
    let rows = be_u32(bytes, 8, "row count")? as usize;
    let cols = be_u32(bytes, 12, "column count")? as usize;
    let data = &bytes[16..];
    check_len(data.len(), total - 16, "pixel")?;
    let img = Array2::from_shape_vec(
        (n, rows * cols),
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
            "trailing bytes after the {want} {what} bytes the header announces (at least {})",
            have - want
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    /// Counts the bytes read through it (here: the bytes the gzip decoder inflated).
    struct Counting<R> {
        inner: R,
        count: u64,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.count += n as u64;
            Ok(n)
        }
    }

    /// A gzip label file whose header announces `n` labels, followed by `zeros` zero bytes.
    fn gz_labels(n: u32, zeros: usize) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::best());
        e.write_all(&LABELS_MAGIC.to_be_bytes()).unwrap();
        e.write_all(&n.to_be_bytes()).unwrap();
        let chunk = vec![0u8; 1 << 16];
        let mut left = zeros;
        while left > 0 {
            let k = left.min(chunk.len());
            e.write_all(&chunk[..k]).unwrap();
            left -= k;
        }
        e.finish().unwrap()
    }

    fn inflate_counting(gz: &[u8]) -> (Result<Vec<u8>>, u64) {
        let mut c = Counting {
            inner: flate2::read::MultiGzDecoder::new(gz),
            count: 0,
        };
        let r = inflate_idx(&mut c, gz.len() as u64, IdxKind::Labels);
        (r, c.count)
    }

    #[test]
    fn a_header_the_compressed_size_cannot_hold_is_rejected_before_inflating() {
        // 2^32 - 1 labels announced; 64 MiB of zeros actually follow (~64 KiB compressed).
        let gz = gz_labels(u32::MAX, 64 << 20);
        assert!(gz.len() < 1 << 20, "{}", gz.len());
        let (r, inflated) = inflate_counting(&gz);
        match r {
            Err(Error::DataFormat(m)) => assert!(m.contains("can hold"), "{m}"),
            other => panic!("{other:?}"),
        }
        // Only the header (and what the decoder produced in its first read) was inflated,
        // not the 64 MiB the stream holds.
        assert!(inflated < 1 << 20, "inflated {inflated} bytes");
    }

    #[test]
    fn inflation_stops_one_byte_after_the_announced_length() {
        // 1 000 labels announced, 32 MiB follow: the announced size is plausible, the rest is
        // trailing data, reported without inflating it.
        let gz = gz_labels(1000, 32 << 20);
        let (r, inflated) = inflate_counting(&gz);
        let bytes = r.unwrap();
        assert_eq!(bytes.len(), 8 + 1000 + 1);
        assert!(inflated < 1 << 20, "inflated {inflated} bytes");
        match parse_idx_labels(&bytes) {
            Err(Error::DataFormat(m)) => assert!(
                m.contains("trailing bytes after the 1000 label bytes"),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        // The exact length parses.
        let gz = gz_labels(1000, 1000);
        let (r, _) = inflate_counting(&gz);
        assert_eq!(parse_idx_labels(&r.unwrap()).unwrap(), vec![0; 1000]);
    }

    #[test]
    fn header_sizes_use_checked_arithmetic() {
        let mut h = Vec::new();
        for v in [IMAGES_MAGIC, u32::MAX, u32::MAX, u32::MAX] {
            h.extend(v.to_be_bytes());
        }
        match idx_announced_len(&h, IdxKind::Images) {
            Err(Error::DataFormat(m)) => assert!(m.contains("overflow"), "{m}"),
            other => panic!("{other:?}"),
        }
        // 2 images of 3x4 pixels: 16 + 24 bytes.
        let mut h = Vec::new();
        for v in [IMAGES_MAGIC, 2, 3, 4] {
            h.extend(v.to_be_bytes());
        }
        assert_eq!(idx_announced_len(&h, IdxKind::Images).unwrap(), 40);
    }
}
