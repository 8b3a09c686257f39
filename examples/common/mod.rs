//! What every example shares: where MNIST is read from and where outputs go.
//!
//! - MNIST: the directory named by `INTRIGUING_MNIST_DIR` when it is set (the library's
//!   documented route, `Mnist::from_env`), else the copy bundled with this repository in
//!   `examples/data/mnist/` (a fallback of the examples only: the library never looks there).
//! - Outputs (figures, tables, trained weights, caches): under `$CARGO_TARGET_DIR` when it is
//!   set, else `./target` relative to the current directory.
#![allow(dead_code)] // each example uses the part it needs

use intriguing::data::{MNIST_DIR_ENV, Mnist};
use std::path::PathBuf;

/// The directory MNIST is read from (see the module docs).
pub fn mnist_dir() -> PathBuf {
    match std::env::var_os(MNIST_DIR_ENV) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/mnist")),
    }
}

/// MNIST from [`mnist_dir`].
pub fn mnist() -> intriguing::Result<Mnist> {
    Mnist::load(mnist_dir())
}

/// The root of every output: `$CARGO_TARGET_DIR` when set, else `./target`.
pub fn output_root() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

/// `<output root>/<name>`.
pub fn output_dir(name: &str) -> PathBuf {
    output_root().join(name)
}
