//! Fuzz layer for the file readers (issue 13), run by CI as ordinary proptests: gzip IDX files
//! with arbitrary headers or corrupted streams, and safetensors files with arbitrary headers,
//! give `Ok` with the announced shape or a typed [`Error::DataFormat`] / [`Error::Safetensors`],
//! never a panic, and never an allocation proportional to a size the file cannot back
//! (measured by a global allocator that records the largest single request).

use flate2::Compression;
use flate2::write::GzEncoder;
use intriguing::Error;
use intriguing::data::{read_idx_images, read_idx_labels};
use intriguing::models::Mlp;
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Records the largest single allocation of this test binary.
struct Largest;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Largest = Largest;

/// No input below is larger than 1 MiB inflated; the readers may take a few times that.
const ALLOCATION_LIMIT: usize = 16 << 20;

fn assert_small_allocations() {
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= ALLOCATION_LIMIT,
        "an allocation of {largest} bytes for inputs of at most 1 MiB"
    );
}

static FILES: AtomicUsize = AtomicUsize::new(0);

/// A fresh temporary file holding `bytes`.
fn file(bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("intriguing_readers_fuzz_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("f{}", FILES.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&p, bytes).unwrap();
    p
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn any_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(u32::MAX),
        Just(1 << 31),
        Just(65536),
        0u32..8,
        any::<u32>(),
    ]
}

/// An IDX header (labels if `images` is false) with the given fields.
fn idx_header(images: bool, magic: u32, dims: [u32; 3]) -> Vec<u8> {
    let mut h = magic.to_be_bytes().to_vec();
    let fields = if images { &dims[..] } else { &dims[..1] };
    for d in fields {
        h.extend(d.to_be_bytes());
    }
    h
}

/// Reads `path` as the given kind; `Ok` carries the shape.
fn read(images: bool, path: &PathBuf) -> intriguing::Result<(usize, usize)> {
    if images {
        read_idx_images(path).map(|a| (a.nrows(), a.ncols()))
    } else {
        read_idx_labels(path).map(|l| (l.len(), 1))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A gzip IDX file with any header fields (the whole u32 range) and up to 1 MiB of
    /// zeros after it: a typed error, or exactly the announced shape when the data fits.
    #[test]
    fn gzip_idx_with_any_header_is_ok_or_a_format_error(
        images in any::<bool>(),
        magic in prop_oneof![Just(2049u32), Just(2051), any::<u32>()],
        dims in [any_u32(), any_u32(), any_u32()],
        zeros in prop_oneof![0usize..64, Just(1 << 20)],
    ) {
        let mut bytes = idx_header(images, magic, dims);
        bytes.resize(bytes.len() + zeros, 0);
        let p = file(&gz(&bytes));
        match read(images, &p) {
            Ok((n, width)) => {
                let want_magic = if images { 2051 } else { 2049 };
                prop_assert_eq!(magic, want_magic);
                prop_assert_eq!(n, dims[0] as usize);
                let width_want = if images { dims[1] as usize * dims[2] as usize } else { 1 };
                prop_assert_eq!(width, width_want);
                prop_assert_eq!(n * width, zeros);
            }
            Err(Error::DataFormat(_)) => {}
            Err(e) => prop_assert!(false, "untyped error {e:?}"),
        }
        std::fs::remove_file(&p).ok();
        assert_small_allocations();
    }

    /// A valid gzip IDX file with bytes flipped or cut off: the original shape (when only
    /// bytes the content does not depend on changed) or a format error.
    #[test]
    fn corrupted_gzip_idx_is_ok_or_a_format_error(
        images in any::<bool>(),
        n in 0u32..6,
        flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 0..4),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let (magic, dims) = if images { (2051, [n, 3, 2]) } else { (2049, [n, 0, 0]) };
        let mut bytes = idx_header(images, magic, dims);
        let len = if images { n * 6 } else { n };
        bytes.extend((0..len).map(|i| (i * 37 % 256) as u8));
        let mut z = gz(&bytes);
        let zl = z.len();
        for (i, b) in flips {
            z[i % zl] ^= b;
        }
        if let Some(c) = cut {
            z.truncate(c % (zl + 1));
        }
        let p = file(&z);
        match read(images, &p) {
            Ok(shape) => {
                // gzip's CRC-32 and length trailer catch a changed payload: what still
                // reads is the original file (only header bytes such as the time changed).
                prop_assert_eq!(shape, (n as usize, if images { 6 } else { 1 }));
            }
            Err(Error::DataFormat(_)) => {}
            Err(e) => prop_assert!(false, "untyped error {e:?}"),
        }
        std::fs::remove_file(&p).ok();
        assert_small_allocations();
    }

    /// A safetensors file whose JSON header holds arbitrary dtypes, shapes (including
    /// overflowing and huge ones) and offsets, over a small buffer: a typed error or a model.
    #[test]
    fn safetensors_with_any_header_is_ok_or_a_typed_error(
        entries in proptest::collection::vec(
            (0usize..3, 0usize..2,
             prop_oneof![Just("F64"), Just("F32"), Just("I64"), Just("BOOL"), Just("X")],
             proptest::collection::vec(prop_oneof![0usize..5, Just(usize::MAX), Just(1usize << 40)], 0..3),
             prop_oneof![0usize..64, Just(usize::MAX)], 0usize..64),
            0..4),
        data_len in 0usize..128,
        meta in proptest::option::of(prop_oneof![Just("sigmoid"), Just("relu,identity"), Just("")]),
    ) {
        let mut header = String::from("{");
        let mut first = true;
        for (layer, kind, dtype, shape, start, len) in &entries {
            let name = format!("layers.{layer}.{}", if *kind == 0 { "weight" } else { "bias" });
            let end = start.saturating_add(*len);
            if !first {
                header.push(',');
            }
            first = false;
            header.push_str(&format!(
                "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{start},{end}]}}"
            ));
        }
        if let Some(m) = meta {
            if !first {
                header.push(',');
            }
            header.push_str(&format!("\"__metadata__\":{{\"activations\":\"{m}\"}}"));
        }
        header.push('}');
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        bytes.extend((0..data_len).map(|i| (i % 7) as u8));
        match Mlp::from_safetensors_bytes(&bytes) {
            Ok(m) => prop_assert!(!m.layers().is_empty()),
            Err(Error::DataFormat(_) | Error::Safetensors(_) | Error::NonFinite { .. }) => {}
            Err(Error::SafetensorsTensor { .. }) => {}
            Err(Error::InvalidConfig(_) | Error::InvalidParameter { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {e:?}"),
        }
        assert_small_allocations();
    }
}

/// The example: a small gzip declaring 2^32 − 1 labels is refused from its header,
/// without inflating the stream (no allocation near the announced 4 GiB).
#[test]
fn a_gzip_declaring_four_billion_labels_fails_from_its_header() {
    let mut bytes = idx_header(false, 2049, [u32::MAX, 0, 0]);
    bytes.resize(bytes.len() + (8 << 20), 0);
    let z = gz(&bytes);
    assert!(z.len() < 64 << 10, "{} compressed bytes", z.len());
    let p = file(&z);
    let r = read_idx_labels(&p);
    assert!(
        matches!(&r, Err(Error::DataFormat(m)) if m.contains("can hold")),
        "{r:?}"
    );
    std::fs::remove_file(&p).ok();
    assert_small_allocations();
}
