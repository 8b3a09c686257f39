//! Robust accuracy against ε for several attacks on one model: FC100-100-10 trained on the
//! bundled MNIST, the first `--images` test images. From minimal distortions (exact in ε):
//! DeepFool and the paper's L-BFGS attack (untargeted); from ε-bounded attacks (one run per ε):
//! FGSM and PGD. Writes two PNG plots (L2 and L∞) and a markdown table.
//!
//! ```text
//! cargo run --release --example robust_curves -- [--images N] [--epochs E] [--threads T]
//!     [--out DIR] [--docs]
//! cargo run --release --example robust_curves -- --help
//! ```
//!
//! Defaults: 200 images, the FC100-100-10 preset recipe cut to 3 epochs, 2 threads, output in
//! `$CARGO_TARGET_DIR/robust_curves/` (else `target/robust_curves/`); `--docs` also writes the plots to `docs/figures/` and the table
//! into `docs/attacks.md` between the `robust-curves` markers.

mod common;

use clap::Parser;
use intriguing::ClassifierExt;
use intriguing::attack::{
    AttackConfig, BoundedAttack, DeepFoolConfig, FgsmConfig, MinimalDistortions, Norm, PgdConfig,
    Target, attack_batch, bounded_accuracy_curve, deepfool,
};
use intriguing::models::{Preset, train};
use intriguing::viz::plot::{LegendPosition, LinePlot};
use ndarray::s;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Robust accuracy against ε (L2 and L∞) of DeepFool, the paper's L-BFGS attack, FGSM and
/// PGD on FC100-100-10 trained on MNIST: two PNG plots and a markdown table.
#[derive(Parser, Debug)]
#[command(name = "robust_curves")]
struct Args {
    /// Number of test images (the first N; 1 to 10 000).
    #[arg(long, default_value_t = 200, value_parser = common::test_images)]
    images: usize,
    /// Training epochs (the FC100-100-10 preset recipe cut to E epochs).
    #[arg(long, default_value_t = 3, value_parser = common::at_least_one)]
    epochs: usize,
    /// Worker threads of the attacks (the results do not depend on it).
    #[arg(long, default_value_t = 2, value_parser = common::at_least_one)]
    threads: usize,
    /// Output directory (default: robust_curves/ under the output root).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the plots to docs/figures/ and the table into docs/attacks.md.
    #[arg(long)]
    docs: bool,
}

fn main() -> ExitCode {
    common::exit_status(run(Args::parse()))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let Args {
        images: n,
        epochs,
        threads,
        out,
        docs,
    } = args;
    let out = out.unwrap_or_else(|| common::output_dir("robust_curves"));
    // Everything that can be checked is checked before the data is loaded.
    let (mut mlp, cfg) = Preset::Fc100_100_10.build(0)?;
    let cfg = cfg.with_epochs(epochs)?;
    std::fs::create_dir_all(&out)
        .map_err(|e| format!("--out {}: cannot create it: {e}", out.display()))?;
    let mnist = common::mnist()?;
    if n > mnist.test_labels.len() {
        return Err(format!(
            "--images {n}: the test set has {} images",
            mnist.test_labels.len()
        )
        .into());
    }
    train(
        &mut mlp,
        mnist.train_images.view(),
        &mnist.train_labels,
        &cfg,
        |_, _| {},
    )?;
    let x = mnist.test_images.slice(s![..n, ..]);
    let y = &mnist.test_labels[..n];
    let clean = 1.0 - mlp.error_rate(x, y)?;
    println!("FC100-100-10, {epochs} epochs: clean accuracy {clean:.3} on {n} test images");

    let mut table = String::new();
    writeln!(
        table,
        "Command: `cargo run --release --example robust_curves -- --images {n} --epochs {epochs} --docs` \
         (FC100-100-10, preset recipe cut to {epochs} epochs, first {n} MNIST test images, \
         clean accuracy {clean:.3}, box [0, 1]).\n"
    )?;
    for norm in [Norm::L2, Norm::Linf] {
        let (name, grid): (&str, Vec<f64>) = match norm {
            Norm::L2 => ("L2", (0..=12).map(|k| f64::from(k) / 4.0).collect()),
            Norm::Linf => ("Linf", (0..=12).map(|k| f64::from(k) / 40.0).collect()),
        };
        let mut curves: Vec<(String, Vec<f64>)> = Vec::new();
        // Minimal-distortion attacks: exact curves.
        let df = deepfool(
            &mlp,
            x,
            y,
            &DeepFoolConfig::default().with_norm(norm),
            threads,
        )?;
        let df: Vec<_> = df.into_iter().collect::<Result<_, _>>()?;
        let md = MinimalDistortions::from_rows(&df, norm)?;
        curves.push(("DeepFool (minimal)".into(), md.curve(&grid)?));
        if norm == Norm::L2 {
            let targets: Vec<Target> = y
                .iter()
                .map(|&t| Target::Untargeted { true_label: t })
                .collect();
            let res = attack_batch(&mlp, x, &targets, &AttackConfig::default(), threads)?;
            let d: Vec<Option<f64>> = res
                .into_iter()
                .map(|r| r.map(|r| r.l2()))
                .collect::<Result<_, _>>()?;
            curves.push((
                "L-BFGS, Szegedy (minimal)".into(),
                MinimalDistortions::new(&d)?.curve(&grid)?,
            ));
        }
        // ε-bounded attacks: one run per ε.
        let fg = BoundedAttack::Fgsm(FgsmConfig::default().with_norm(norm));
        curves.push((
            "FGSM".into(),
            bounded_accuracy_curve(&mlp, x, y, &fg, &grid, threads)?,
        ));
        let pg = BoundedAttack::Pgd(PgdConfig::default().with_norm(norm).with_seed(0));
        curves.push((
            "PGD, 40 steps".into(),
            bounded_accuracy_curve(&mlp, x, y, &pg, &grid, threads)?,
        ));

        let label = match norm {
            Norm::L2 => "epsilon (L2 norm of r)",
            Norm::Linf => "epsilon (L-inf norm of r)",
        };
        let mut plot = LinePlot::new(
            format!("Robust accuracy, FC100-100-10 on MNIST ({n} test images)"),
            label,
            "accuracy",
        )
        .with_y_range(0.0, 1.0)?
        .with_legend(LegendPosition::TopRight);
        for (c, acc) in &curves {
            plot = plot.with_series(c, &grid, acc)?;
        }
        let file = format!("robust_accuracy_{}.png", name.to_lowercase());
        plot.write_png(out.join(&file))?;
        if docs {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/figures");
            plot.write_png(dir.join(&file))?;
        }
        writeln!(table, "{name}: robust accuracy at ε ({file})\n")?;
        write!(table, "| attack |")?;
        for e in &grid {
            write!(table, " {} |", (e * 1e9).round() / 1e9)?;
        }
        write!(table, "\n|---|")?;
        for _ in &grid {
            write!(table, "---:|")?;
        }
        writeln!(table)?;
        for (c, acc) in &curves {
            write!(table, "| {c} |")?;
            for a in acc {
                write!(table, " {a:.2} |")?;
            }
            writeln!(table)?;
        }
        writeln!(table)?;
    }
    print!("{table}");
    std::fs::write(out.join("robust_curves.md"), &table)?;
    if docs {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/attacks.md");
        let doc = std::fs::read_to_string(&path)?;
        std::fs::write(
            &path,
            common::replace_between_markers(&doc, "robust-curves", &table)?,
        )?;
    }
    Ok(())
}
