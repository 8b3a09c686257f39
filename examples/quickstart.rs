//! Quickstart: train FC100-100-10 on the bundled MNIST, attack the first 100 test images with
//! the paper's box-constrained L-BFGS, print a summary table and write a Figure-5-style grid.
//!
//! ```text
//! cargo run --release --example quickstart -- [--epochs N] [--images N] [--target next|nearest|untargeted]
//!     [--out PATH]
//! cargo run --release --example quickstart -- --help
//! ```
//!
//! Defaults: the FC100-100-10 preset recipe (15 epochs) on all 60 000 training images,
//! 100 test images, target = (predicted label + 1) mod 10, attacked one after the other on
//! one thread (so the per-example times are those of one core), output
//! `quickstart/figure5.png` under `$CARGO_TARGET_DIR` when set, else `./target`. MNIST is read
//! from `INTRIGUING_MNIST_DIR` when set, else the copy bundled in `examples/data/mnist/`.
//! Arguments are checked before any work; the attacks show a progress bar on a terminal (a
//! plain rate/ETA line every 5 s otherwise).

mod common;

use clap::{Parser, ValueEnum};
use intriguing::ClassifierExt;
use intriguing::attack::{AttackConfig, Target, find_minimal_perturbation};
use intriguing::models::{Preset, train};
use intriguing::viz::{AdversarialPanel, write_adversarial_figure};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Which label each attack aims for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TargetKind {
    /// (predicted label + 1) mod 10
    Next,
    /// the closest other label (searches the nine)
    Nearest,
    /// any other label
    Untargeted,
}

/// Train FC100-100-10 on MNIST, attack test images with the paper's box-constrained L-BFGS,
/// print a summary table and write a Figure-5-style grid.
#[derive(Parser, Debug)]
#[command(name = "quickstart")]
struct Args {
    /// Training epochs (default: the preset's recipe, 15).
    #[arg(long, value_parser = common::at_least_one)]
    epochs: Option<usize>,
    /// Number of test images to attack (1 to 10 000).
    #[arg(long, default_value_t = 100, value_parser = common::at_least_one)]
    images: usize,
    /// Target label of each attack.
    #[arg(long, value_enum, default_value_t = TargetKind::Next)]
    target: TargetKind,
    /// Output PNG (default: quickstart/figure5.png under the output root).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::exit_status(run(args))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let Args {
        epochs,
        images: n_images,
        target: target_kind,
        out,
    } = args;
    let out = out.unwrap_or_else(|| common::output_dir("quickstart").join("figure5.png"));
    let target_name = format!("{target_kind:?}").to_lowercase();
    // Everything that can be checked is checked before the data is loaded and the model trained.
    let (mut mlp, cfg) = Preset::Fc100_100_10.build(0)?;
    let cfg = match epochs {
        Some(e) => cfg.with_epochs(e)?,
        None => cfg,
    };

    // 1. Data and model.
    let t0 = Instant::now();
    let mnist = common::mnist()?;
    println!(
        "MNIST: {} training and {} test images ({:.1?})",
        mnist.train_labels.len(),
        mnist.test_labels.len(),
        t0.elapsed()
    );
    if n_images > mnist.test_labels.len() {
        return Err(format!(
            "--images {n_images}: the test set has {} images",
            mnist.test_labels.len()
        )
        .into());
    }
    println!(
        "training FC100-100-10 for {} epochs (SGD, momentum 0.9, batches of 100, the preset's recipe)",
        cfg.epochs()
    );
    let test_x = mnist.test_images.view();
    let test_y = &mnist.test_labels;
    train(
        &mut mlp,
        mnist.train_images.view(),
        &mnist.train_labels,
        &cfg,
        |info, m| {
            let err = m.error_rate(test_x, test_y).unwrap_or(f64::NAN);
            println!(
                "  epoch {:>2}/{}: loss {:.4}, test error {:.2}% ({:.1?})",
                info.epoch,
                info.epochs,
                info.loss,
                100.0 * err,
                info.elapsed
            );
        },
    )?;

    // 2. Attack.
    let n = n_images;
    println!("attacking the first {n} test images (target: {target_name})");
    let bar = common::Progress::new("attacking", n);
    let config = AttackConfig::default();
    let mut rows = Vec::new(); // (index, original label, result, seconds)
    for i in 0..n {
        let x = mnist.test_images.row(i);
        let y = mlp.predict(x)?;
        let target = match target_kind {
            TargetKind::Next => Target::Label((y + 1) % 10),
            TargetKind::Nearest => Target::Nearest { true_label: y },
            TargetKind::Untargeted => Target::Untargeted { true_label: y },
        };
        let t = Instant::now();
        let res = find_minimal_perturbation(&mlp, x, target, &config)?;
        rows.push((i, y, res, t.elapsed().as_secs_f64()));
        let failed = rows.iter().filter(|r| !r.2.success()).count();
        bar.set(i + 1, &format!("{failed} failed"));
    }
    bar.finish();

    // 3. Table.
    let ok: Vec<_> = rows.iter().filter(|r| r.2.success()).collect();
    let mut rms: Vec<f64> = ok.iter().filter_map(|r| r.2.rms()).collect();
    rms.sort_by(f64::total_cmp);
    let mut times: Vec<f64> = rows.iter().map(|r| r.3).collect();
    times.sort_by(f64::total_cmp);
    // No successes: "n/a" rather than NaN or a mean of nothing.
    let fmt = |v: Option<f64>, width: usize| match v {
        Some(v) => format!("{v:>width$.4}"),
        None => format!("{:>width$}", "n/a"),
    };
    let median = |v: &[f64]| (!v.is_empty()).then(|| v[v.len() / 2]);
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let evals: f64 = rows
        .iter()
        .map(|r| r.2.gradient_evaluations as f64)
        .sum::<f64>()
        / n as f64;
    println!();
    println!(
        "| model        | images | success | mean RMS | median RMS | median time / example | gradient evals / example |"
    );
    println!(
        "|--------------|-------:|--------:|---------:|-----------:|----------------------:|-------------------------:|"
    );
    println!(
        "| FC100-100-10 | {n:>6} | {:>6.1}% | {} | {} | {:>18.2} ms | {:>24.1} |",
        100.0 * ok.len() as f64 / n as f64,
        fmt(mean(&rms), 8),
        fmt(median(&rms), 10),
        1e3 * median(&times).unwrap_or(f64::NAN),
        evals
    );

    // 4. Figure 5: original | adversarial | distortion, dark digits on white.
    let shown: Vec<_> = ok.iter().take(10).collect();
    if !shown.is_empty() {
        let panels: Vec<AdversarialPanel<'_>> = shown
            .iter()
            .map(|r| {
                let adv = r.2.adversarial.as_ref().expect("successes only");
                AdversarialPanel {
                    original: mnist.test_images.row(r.0),
                    adversarial: adv.input.view(),
                    true_label: mnist.test_labels[r.0],
                    reached_label: adv.label,
                }
            })
            .collect();
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let title = format!("FC100-100-10, target {target_name}: Figure 5");
        let factor = write_adversarial_figure(&out, &title, &panels, (28, 28), 2)?;
        let shown_path = std::fs::canonicalize(&out).unwrap_or(out.clone());
        println!();
        println!(
            "wrote {} ({} examples; columns: original | adversarial | distortion x{factor} around grey)",
            shown_path.display(),
            shown.len()
        );
    }
    println!("total time {:.1?}", t0.elapsed());
    Ok(())
}
