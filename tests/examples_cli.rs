//! The examples as a user meets them: `--help` answers, and each bad argument is rejected with
//! a one-line message naming it, before any data is loaded or any model trained.
//!
//! The example binaries are built once per test run, with the `cargo` that runs the tests
//! and the same target directory, profile and features as this test (a no-op when `cargo
//! test` has just built them), so a stale binary is never tested.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// `<target>/<profile>`, where this test binary lives in `deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps/<test>")
        .to_path_buf()
}

/// Builds every example once: `cargo build --examples` with this test's features.
fn build_examples() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = profile_dir();
        let target_dir = dir.parent().expect("<target>");
        let mut features = Vec::new();
        for (on, name) in [
            (cfg!(feature = "paper"), "paper"),
            (cfg!(feature = "argmin"), "argmin"),
            (cfg!(feature = "linalg"), "linalg"),
            (cfg!(feature = "openblas-system"), "openblas-system"),
            (cfg!(feature = "candle"), "candle"),
            (cfg!(feature = "serde"), "serde"),
        ] {
            if on {
                features.push(name);
            }
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--examples", "--quiet", "--target-dir"])
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if !features.is_empty() {
            cmd.args(["--features", &features.join(",")]);
        }
        match dir.file_name().and_then(|p| p.to_str()) {
            Some("release") => {
                cmd.arg("--release");
            }
            // `cargo test` puts its test profile in `debug/` too: build the examples with
            // it, so the dependencies it has just compiled are reused (the dev profile would
            // compile every one of them a second time).
            Some("debug") | None => {
                cmd.args(["--profile", "test"]);
            }
            Some(other) => {
                cmd.args(["--profile", other]);
            }
        }
        let status = cmd.status().expect("run cargo build --examples");
        assert!(status.success(), "cargo build --examples failed");
    });
}

/// `<target>/<profile>/examples/<name>`, freshly built.
fn example(name: &str) -> PathBuf {
    build_examples();
    let path = profile_dir()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "example {name} not found at {}",
        path.display()
    );
    path
}

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(example(name))
        .args(args)
        // Wherever outputs would go, not into the repository.
        .env(
            "CARGO_TARGET_DIR",
            std::env::temp_dir().join("intriguing_examples_cli"),
        )
        .output()
        .expect("run example")
}

/// Exit code `code`, and a stderr that names every `needle`; no work was started.
fn assert_rejected(name: &str, args: &[&str], code: i32, needles: &[&str]) {
    let out = run(name, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(code), "{name} {args:?}: {stderr}");
    for n in needles {
        assert!(
            stderr.contains(n),
            "{name} {args:?}: {n:?} not in {stderr:?}"
        );
    }
    assert!(stderr.starts_with("error"), "{name} {args:?}: {stderr:?}");
    // Display, not Debug, and nothing done before the rejection.
    assert!(
        !stderr.contains("Os {") && !stderr.contains("kind:"),
        "{stderr}"
    );
    assert!(
        !stdout.contains("MNIST") && !stdout.contains("training"),
        "{name} {args:?} started work: {stdout}"
    );
}

const EXAMPLES: [&str; 8] = [
    "quickstart",
    "train_mnist",
    "pytorch_model",
    "analysis",
    "foreign_model",
    "robust_curves",
    "deepfool_table",
    "attack_choices",
];

#[test]
fn every_example_answers_help() {
    let mut names = EXAMPLES.to_vec();
    if cfg!(feature = "paper") {
        names.push("reproduce");
    }
    for name in names {
        let out = run(name, &["--help"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{name} --help");
        assert!(stdout.contains("Usage:"), "{name} --help: {stdout}");
        assert!(stdout.contains("--help"), "{name} --help: {stdout}");
    }
}

#[test]
fn quickstart_rejects_bad_arguments_before_training() {
    assert_rejected(
        "quickstart",
        &["--target", "nearst"],
        2,
        &["nearst", "--target"],
    );
    assert_rejected("quickstart", &["--images", "0"], 2, &["'0'", "--images"]);
    assert_rejected("quickstart", &["--images", "x"], 2, &["'x'", "--images"]);
    assert_rejected("quickstart", &["--epochs", "0"], 2, &["--epochs"]);
    assert_rejected("quickstart", &["--bogus"], 2, &["--bogus"]);
}

#[test]
fn train_mnist_rejects_bad_settings_before_loading() {
    assert_rejected("train_mnist", &["--epochs", "0"], 2, &["'0'", "--epochs"]);
    assert_rejected("train_mnist", &["--preset", "FC7"], 2, &["FC7", "--preset"]);
    // A setting only the library can judge: its typed error, printed with Display, status 1.
    assert_rejected("train_mnist", &["--lr=-1"], 1, &["learning rate", "-1"]);
}

#[test]
fn pytorch_model_names_a_missing_file() {
    assert_rejected(
        "pytorch_model",
        &["/nonexistent/mlp.safetensors"],
        1,
        &["/nonexistent/mlp.safetensors", "no such file"],
    );
    assert_rejected("pytorch_model", &["--images", "x"], 2, &["'x'", "--images"]);
}

#[test]
fn analysis_and_foreign_model_reject_unknown_arguments() {
    assert_rejected("analysis", &["--quik"], 2, &["--quik"]);
    assert_rejected("foreign_model", &["--images", "3"], 2, &["--images"]);
}

#[test]
fn family_examples_reject_bad_arguments_before_training() {
    for name in ["robust_curves", "deepfool_table", "attack_choices"] {
        assert_rejected(name, &["--images", "0"], 2, &["'0'", "--images"]);
        assert_rejected(name, &["--images", "x"], 2, &["'x'", "--images"]);
        assert_rejected(
            name,
            &["--images", "10001"],
            2,
            &["10001", "--images", "10000"],
        );
        assert_rejected(name, &["--images"], 2, &["--images"]);
        assert_rejected(name, &["--bogus"], 2, &["--bogus"]);
    }
    assert_rejected(
        "robust_curves",
        &["--threads", "0"],
        2,
        &["'0'", "--threads"],
    );
    assert_rejected("robust_curves", &["--epochs", "0"], 2, &["'0'", "--epochs"]);
    assert_rejected("attack_choices", &["--epochs=-1"], 2, &["-1", "--epochs"]);
    assert_rejected(
        "deepfool_table",
        &["--lenet-epochs", "0"],
        2,
        &["'0'", "--lenet-epochs"],
    );
    assert_rejected(
        "deepfool_table",
        &["--fc-epochs", "0"],
        2,
        &["'0'", "--fc-epochs"],
    );
    // An output directory that cannot be created: named, status 1, before MNIST is loaded.
    assert_rejected(
        "robust_curves",
        &["--out", "/proc/intriguing_no_such_dir"],
        1,
        &["--out", "/proc/intriguing_no_such_dir"],
    );
}

#[cfg(feature = "paper")]
#[test]
fn reproduce_rejects_zero_threads_and_unknown_commands() {
    assert_rejected(
        "reproduce",
        &["table1", "--threads", "0"],
        2,
        &["'0'", "--threads"],
    );
    assert_rejected("reproduce", &["tabel1"], 2, &["tabel1"]);
    assert_rejected(
        "reproduce",
        &["table1", "--samples", "0"],
        2,
        &["--samples"],
    );
}
