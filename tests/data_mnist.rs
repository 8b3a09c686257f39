//! The MNIST IDX reader on the bundled data set (published counts and first labels) and on
//! corrupted files (typed errors, no panic).

use flate2::Compression;
use flate2::write::GzEncoder;
use intriguing::Error;
use intriguing::data::{
    self, Mnist, parse_idx_images, parse_idx_labels, read_idx_images, read_idx_labels,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn mnist() -> &'static Mnist {
    static M: OnceLock<Mnist> = OnceLock::new();
    M.get_or_init(|| {
        Mnist::load(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/mnist"))
            .expect("bundled MNIST")
    })
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("data_mnist_{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx_images(n: u32, rows: u32, cols: u32, fill: u8) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [2051u32, n, rows, cols] {
        b.extend(v.to_be_bytes());
    }
    b.extend(std::iter::repeat_n(fill, (n * rows * cols) as usize));
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(2049u32.to_be_bytes());
    b.extend((labels.len() as u32).to_be_bytes());
    b.extend(labels);
    b
}

#[test]
fn bundled_mnist_has_the_published_counts_and_first_labels() {
    let m = mnist();
    assert_eq!(m.train_images.shape(), &[60000, 784]);
    assert_eq!(m.test_images.shape(), &[10000, 784]);
    assert_eq!(m.train_labels.len(), 60000);
    assert_eq!(m.test_labels.len(), 10000);
    assert_eq!(&m.train_labels[..5], &[5, 0, 4, 1, 9]);
    assert_eq!(&m.test_labels[..5], &[7, 2, 1, 0, 4]);
    // Published class counts of the training set.
    let mut counts = [0usize; 10];
    m.train_labels.iter().for_each(|&l| counts[l] += 1);
    assert_eq!(
        counts,
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert!(m.train_images.iter().all(|&p| (0.0..=1.0).contains(&p)));
    // Pixels are byte / 255: both extremes occur, and every value is a multiple of 1/255.
    assert!(m.train_images.iter().any(|&p| p == 1.0));
    assert!(m.train_images.row(0).iter().any(|&p| p == 0.0));
    assert!(
        m.test_images
            .row(0)
            .iter()
            .all(|&p| ((p * 255.0).round() - p * 255.0).abs() < 1e-9)
    );
}

#[test]
fn raw_and_gz_files_read_the_same() {
    let d = tmp_dir("raw_gz");
    let img = idx_images(3, 2, 2, 51);
    let lab = idx_labels(&[1, 2, 3]);
    std::fs::write(d.join("a.idx"), &img).unwrap();
    std::fs::write(d.join("a.idx.gz"), gz(&img)).unwrap();
    std::fs::write(d.join("l.idx"), &lab).unwrap();
    std::fs::write(d.join("l.idx.gz"), gz(&lab)).unwrap();
    let a = read_idx_images(d.join("a.idx")).unwrap();
    assert_eq!(a, read_idx_images(d.join("a.idx.gz")).unwrap());
    assert_eq!(a.shape(), &[3, 4]);
    assert!(a.iter().all(|&p| (p - 0.2).abs() < 1e-15));
    assert_eq!(read_idx_labels(d.join("l.idx")).unwrap(), vec![1, 2, 3]);
    assert_eq!(read_idx_labels(d.join("l.idx.gz")).unwrap(), vec![1, 2, 3]);
}

fn assert_format_error<T: std::fmt::Debug>(r: intriguing::Result<T>, needle: &str) {
    match r {
        Err(Error::DataFormat(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        other => panic!("expected DataFormat({needle}), got {other:?}"),
    }
}

#[test]
fn corrupted_files_are_typed_errors() {
    let img = idx_images(2, 28, 28, 0);
    let lab = idx_labels(&[3, 4]);
    // Swapped magic numbers: a label file read as images and vice versa.
    assert_format_error(parse_idx_images(&lab), "magic");
    assert_format_error(parse_idx_labels(&img), "magic");
    // Truncated anywhere: in the header and in the data.
    for cut in [0, 3, 7, 15, 16, img.len() - 1] {
        assert_format_error(parse_idx_images(&img[..cut]), "truncated");
    }
    for cut in [0, 5, lab.len() - 1] {
        assert_format_error(parse_idx_labels(&lab[..cut]), "truncated");
    }
    // Trailing garbage.
    let mut long = lab.clone();
    long.push(0);
    assert_format_error(parse_idx_labels(&long), "trailing");
    // Absurd dimensions: no overflow, no giant allocation.
    let mut huge = Vec::new();
    for v in [2051u32, u32::MAX, u32::MAX, u32::MAX] {
        huge.extend(v.to_be_bytes());
    }
    assert!(matches!(parse_idx_images(&huge), Err(Error::DataFormat(_))));
    assert_format_error(parse_idx_images(&idx_images(1, 0, 28, 0)), "size");
    // A foreign file, and a gzip stream cut in half.
    let d = tmp_dir("corrupt");
    std::fs::write(d.join("foreign"), b"%PDF-1.4 not an idx file").unwrap();
    assert_format_error(read_idx_images(d.join("foreign")), "magic");
    let z = gz(&img);
    std::fs::write(d.join("cut.gz"), &z[..z.len() / 2]).unwrap();
    assert_format_error(read_idx_images(d.join("cut.gz")), "gzip");
    // The error names the file.
    match read_idx_labels(d.join("foreign")) {
        Err(Error::DataFormat(m)) => assert!(m.contains("foreign")),
        other => panic!("{other:?}"),
    }
    // A missing file is an I/O error.
    assert!(matches!(
        read_idx_images(d.join("missing")),
        Err(Error::Io(_))
    ));
}

fn write_set(d: &Path, train: (Vec<u8>, Vec<u8>), test: (Vec<u8>, Vec<u8>)) {
    std::fs::write(d.join("train-images-idx3-ubyte"), train.0).unwrap();
    std::fs::write(d.join("train-labels-idx1-ubyte.gz"), gz(&train.1)).unwrap();
    std::fs::write(d.join("t10k-images-idx3-ubyte.gz"), gz(&test.0)).unwrap();
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), test.1).unwrap();
}

#[test]
fn load_checks_the_whole_set() {
    // A tiny valid set, mixing raw and gz files.
    let d = tmp_dir("load_ok");
    write_set(
        &d,
        (idx_images(3, 28, 28, 255), idx_labels(&[1, 2, 3])),
        (idx_images(1, 28, 28, 0), idx_labels(&[9])),
    );
    let m = Mnist::load(&d).unwrap();
    assert_eq!(m.train_images.shape(), &[3, 784]);
    assert_eq!(m.train_labels, vec![1, 2, 3]);
    assert_eq!(m.test_labels, vec![9]);
    assert!(m.train_images.iter().all(|&p| p == 1.0));

    // Image and label counts disagree.
    let d = tmp_dir("load_count");
    write_set(
        &d,
        (idx_images(3, 28, 28, 0), idx_labels(&[1, 2])),
        (idx_images(1, 28, 28, 0), idx_labels(&[9])),
    );
    assert_format_error(Mnist::load(&d), "2 labels for 3 images");

    // Not 28x28.
    let d = tmp_dir("load_dims");
    write_set(
        &d,
        (idx_images(1, 27, 29, 0), idx_labels(&[1])),
        (idx_images(1, 28, 28, 0), idx_labels(&[9])),
    );
    assert_format_error(Mnist::load(&d), "28x28");

    // A label that is not a digit.
    let d = tmp_dir("load_label");
    write_set(
        &d,
        (idx_images(1, 28, 28, 0), idx_labels(&[10])),
        (idx_images(1, 28, 28, 0), idx_labels(&[9])),
    );
    assert_format_error(Mnist::load(&d), "not a digit");

    // A missing directory: the error names the four files, the authors, the licence and the
    // two ways to point the crate at a copy.
    match Mnist::load(tmp_dir("empty").join("nope")) {
        Err(Error::DataNotFound(m)) => {
            for needed in [
                "train-images-idx3-ubyte.gz",
                "train-labels-idx1-ubyte.gz",
                "t10k-images-idx3-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz",
                "Yann LeCun",
                "Corinna Cortes",
                "Christopher J. C. Burges",
                "CC BY-SA 3.0",
                "Mnist::load(dir)",
                "INTRIGUING_MNIST_DIR",
                "nope",
            ] {
                assert!(m.contains(needed), "{needed:?} missing from {m}");
            }
        }
        other => panic!("{other:?}"),
    }
}

/// The environment route, in one test so that no other test sees the variable change.
#[test]
fn from_env_reads_the_named_directory_or_says_what_is_missing() {
    // SAFETY: no other test of this binary reads or writes INTRIGUING_MNIST_DIR.
    unsafe { std::env::remove_var(data::MNIST_DIR_ENV) };
    match Mnist::from_env() {
        Err(Error::DataNotFound(m)) => {
            assert!(m.contains("INTRIGUING_MNIST_DIR is not set"), "{m}");
            assert!(m.contains("t10k-labels-idx1-ubyte.gz"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    let d = tmp_dir("from_env");
    write_set(
        &d,
        (idx_images(2, 28, 28, 255), idx_labels(&[3, 4])),
        (idx_images(1, 28, 28, 0), idx_labels(&[5])),
    );
    // SAFETY: as above.
    unsafe { std::env::set_var(data::MNIST_DIR_ENV, &d) };
    let m = Mnist::from_env();
    // SAFETY: as above.
    unsafe { std::env::remove_var(data::MNIST_DIR_ENV) };
    let m = m.unwrap();
    assert_eq!(m.train_labels, vec![3, 4]);
    assert_eq!(m.test_labels, vec![5]);
}

/// A 2^32 - 1 label header in front of a highly compressible stream (a "gzip bomb") is
/// rejected from the header and the compressed size, before the stream is inflated.
#[test]
fn gzip_header_announcing_more_than_the_file_can_hold_is_rejected() {
    let d = tmp_dir("bomb");
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    e.write_all(&2049u32.to_be_bytes()).unwrap();
    e.write_all(&u32::MAX.to_be_bytes()).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..16 {
        e.write_all(&zeros).unwrap();
    }
    std::fs::write(d.join("bomb.gz"), e.finish().unwrap()).unwrap();
    assert_format_error(read_idx_labels(d.join("bomb.gz")), "can hold");
    // Trailing data after a plausible header is reported, not parsed.
    let mut z = idx_labels(&[1, 2, 3]);
    z.extend([0u8; 100]);
    std::fs::write(d.join("trailing.gz"), gz(&z)).unwrap();
    assert_format_error(read_idx_labels(d.join("trailing.gz")), "trailing");
}

#[test]
fn take_and_subset_validate_their_arguments() {
    let m = mnist();
    let small = m.take(10, 3).unwrap();
    assert_eq!(small.train_images.shape(), &[10, 784]);
    assert_eq!(small.test_labels, vec![7, 2, 1]);
    assert!(matches!(m.take(60001, 0), Err(Error::InvalidConfig(_))));
    let (x, y) = data::subset(m.test_images.view(), &m.test_labels, &[4, 0]).unwrap();
    assert_eq!(y, vec![4, 7]);
    assert_eq!(x.row(1), m.test_images.row(0));
    assert!(matches!(
        data::subset(m.test_images.view(), &m.test_labels, &[10000]),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        data::subset(m.test_images.view(), &m.test_labels[..5], &[0]),
        Err(Error::ShapeMismatch { .. })
    ));
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Arbitrary bytes, and valid headers with arbitrary dimensions and data, never panic;
        /// whatever parses has the announced shape and pixels in [0, 1].
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64),
                               n in 0u32..4, r in 0u32..5, c in 0u32..5,
                               data in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse_idx_images(&bytes);
            let _ = parse_idx_labels(&bytes);
            let mut img = Vec::new();
            for v in [2051u32, n, r, c] {
                img.extend(v.to_be_bytes());
            }
            img.extend(&data);
            if let Ok(a) = parse_idx_images(&img) {
                prop_assert_eq!(a.shape(), &[n as usize, (r * c) as usize]);
                prop_assert_eq!(data.len(), (n * r * c) as usize);
                prop_assert!(a.iter().all(|&p| (0.0..=1.0).contains(&p)));
            }
        }
    }
}
