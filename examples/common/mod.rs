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

/// Turns `main`'s result into the exit status: on an error, prints `error: <Display>` on
/// stderr and exits with status 1 (argument errors are clap's: status 2, before any work).
pub fn exit_status<E: std::fmt::Display>(result: Result<(), E>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A clap value parser for counts that must be at least 1.
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// The number of MNIST test images.
pub const MNIST_TEST_IMAGES: usize = 10_000;

/// A clap value parser for a number of MNIST test images: 1 to [`MNIST_TEST_IMAGES`].
pub fn test_images(s: &str) -> Result<usize, String> {
    match at_least_one(s)? {
        n if n > MNIST_TEST_IMAGES => {
            Err(format!("the MNIST test set has {MNIST_TEST_IMAGES} images"))
        }
        n => Ok(n),
    }
}

/// `doc` with the text between `<!-- key:begin -->` and `<!-- key:end -->` replaced by
/// `body` (for the examples' `--docs` mode).
pub fn replace_between_markers(doc: &str, key: &str, body: &str) -> Result<String, String> {
    let (b, e) = (
        format!("<!-- {key}:begin -->"),
        format!("<!-- {key}:end -->"),
    );
    let i = doc.find(&b).ok_or(format!("marker {b} missing"))? + b.len();
    let j = doc[i..].find(&e).ok_or(format!("marker {e} missing"))? + i;
    Ok(format!("{}\n{}\n{}", &doc[..i], body.trim_end(), &doc[j..]))
}

/// Progress of long work on stderr: an indicatif bar when stderr is a terminal, else a plain
/// `label: done/total, rate/s, ETA` line at most every 5 seconds (and at the end), so logs
/// stay readable. `Sync`: usable from `attack_batch_with`'s worker threads.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    label: String,
    total: usize,
    start: std::time::Instant,
    last_line: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Progress {
    /// Progress over `total` steps named `label` (e.g. "attacking", "epochs").
    pub fn new(label: &str, total: usize) -> Self {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} {msg} ({per_sec}, ETA {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(label.to_string());
            bar
        });
        Progress {
            bar,
            label: label.to_string(),
            total,
            start: std::time::Instant::now(),
            last_line: std::sync::Mutex::new(None),
        }
    }

    /// `done` of the total steps are finished; `msg` is shown beside the count.
    pub fn set(&self, done: usize, msg: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            bar.set_message(msg.to_string());
            return;
        }
        let mut last = self.last_line.lock().unwrap_or_else(|p| p.into_inner());
        let due = last.is_none_or(|t| t.elapsed().as_secs_f64() >= 5.0);
        if !(due || done == self.total) {
            return;
        }
        *last = Some(std::time::Instant::now());
        let secs = self.start.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        let eta = if rate > 0.0 {
            format!("{:.0} s", (self.total - done) as f64 / rate)
        } else {
            "?".into()
        };
        eprintln!(
            "{}: {done}/{} {msg} ({rate:.1}/s, ETA {eta})",
            self.label, self.total
        );
    }

    /// Clears the bar (a terminal) or does nothing (plain lines).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::replace_between_markers;

    #[test]
    fn replaces_only_between_the_markers() {
        let doc = "a\n<!-- t:begin -->\nold\n<!-- t:end -->\nb\n";
        let new = replace_between_markers(doc, "t", "new\n\n").unwrap();
        assert_eq!(new, "a\n<!-- t:begin -->\nnew\n<!-- t:end -->\nb\n");
    }

    #[test]
    fn markers_missing_or_out_of_order_is_an_error() {
        assert!(replace_between_markers("no markers", "t", "x").is_err());
        assert!(replace_between_markers("<!-- t:end --> <!-- t:begin -->", "t", "x").is_err());
    }
}
