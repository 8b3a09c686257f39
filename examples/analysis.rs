//! The paper's analyses on MNIST models trained on the spot: per-layer Lipschitz bounds
//! (Table 5 style), certified lower bounds beside the attack's distortions, and the label
//! purity of units vs random directions, with direction grids written as PNGs.
//!
//! ```text
//! cargo run --release --example analysis               # full (a few minutes)
//! cargo run --release --example analysis -- --quick    # smaller training sets
//! cargo run --release --example analysis -- --out DIR  # where the PNG grids go
//! cargo run --release --example analysis -- --crown-only  # only the certified-bound tables
//! ```
//!
//! The grids go to `analysis/` under `$CARGO_TARGET_DIR` when set, else `./target`, unless
//! `--out` says otherwise. MNIST is read from `INTRIGUING_MNIST_DIR` when set, else the
//! bundled copy.

mod common;

use clap::Parser;
use intriguing::analysis::{
    Certifier, CrownConfig, CrownModel, Direction, DistortionBracket, LayerwiseLipschitz,
    PowerIterationConfig, distortion_brackets, distortion_brackets_with, lipschitz_report,
    purity_comparison, top_activating, write_image_grid,
};
use intriguing::attack::AttackConfig;
use intriguing::data::{Mnist, subset};
use intriguing::models::cnn::Cnn;
use intriguing::models::{Activation, Mlp, Preset, TrainConfig, train};
use intriguing::viz::FigureText;
use intriguing::{Classifier, ClassifierExt};
use ndarray::{Array2, ArrayView2, s};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Certified lower bounds and attack distortions on the first `n` correctly classified test
/// images.
fn gap_statistics<M: LayerwiseLipschitz + CrownModel>(
    name: &str,
    model: &M,
    data: &Mnist,
    n: usize,
    examples: &mut Vec<String>,
) -> intriguing::Result<()> {
    let cert = Certifier::new(model, &PowerIterationConfig::default())?;
    let pred = model.predict_batch(data.test_images.view())?;
    let idx: Vec<usize> = (0..pred.len())
        .filter(|&i| pred[i] == data.test_labels[i])
        .take(n)
        .collect();
    let (x, y) = subset(data.test_images.view(), &data.test_labels, &idx)?;
    let t = Instant::now();
    let brackets = distortion_brackets(model, &cert, x.view(), &y, &AttackConfig::default())?;
    let seconds = t.elapsed().as_secs_f64() / idx.len().max(1) as f64;
    let ok: Vec<_> = brackets.iter().filter(|b| b.upper.is_some()).collect();
    let failures = brackets.len() - ok.len();
    let violations = ok
        .iter()
        .filter(|b| b.certified.per_class[b.reached.unwrap()] > b.upper.unwrap())
        .count();
    let col = |f: &dyn Fn(&DistortionBracket) -> f64| ok.iter().map(|b| f(b)).collect::<Vec<f64>>();
    let mut naive = col(&|b| b.certified.untargeted_naive);
    let mut lower = col(&|b| b.certified.untargeted);
    let mut upper = col(&|b| b.upper.unwrap());
    let ratio = col(&|b| b.ratio().unwrap_or(f64::NAN));
    let rel = col(&|b| b.relative.unwrap());
    for (i, b) in brackets.iter().take(3).enumerate() {
        examples.push(format!(
            "| {name} | {} | {} | {:.4} | {:.4} | {} | {} |",
            idx[i],
            b.label,
            b.certified.untargeted,
            b.certified.untargeted_naive,
            b.upper.map_or("–".into(), |u| format!("{u:.4}")),
            b.reached.map_or("–".into(), |r| r.to_string()),
        ));
    }
    println!(
        "| {name} | {} | {:.3e} | {:.3e} | {:.3} | {:.3e} | {:.3e} … {:.3e} | {:.3} / {:.3} | {:.2} | {} | {} |",
        ok.len(),
        median(&mut naive),
        median(&mut lower),
        median(&mut upper),
        median(&mut ratio.clone()),
        ratio.iter().copied().fold(f64::INFINITY, f64::min),
        ratio.iter().copied().fold(0.0, f64::max),
        median(&mut rel.clone()),
        rel.iter().sum::<f64>() / rel.len().max(1) as f64,
        seconds,
        failures,
        violations
    );
    Ok(())
}

/// On-CPU time of the calling thread in seconds (Linux `/proc/thread-self/schedstat`; wall
/// time elsewhere).
fn thread_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or_else(
            || {
                static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
                T0.get_or_init(Instant::now).elapsed().as_secs_f64()
            },
            |ns| ns as f64 * 1e-9,
        )
}

/// Both certified lower bounds (Lipschitz margin, CROWN over ball ∩ box) against the
/// untargeted attack on the test images `idx`, with the CPU time per CROWN certificate.
fn crown_row<M: LayerwiseLipschitz + CrownModel>(
    name: &str,
    model: &M,
    data: &Mnist,
    idx: &[usize],
) -> intriguing::Result<()> {
    let cert = Certifier::new(model, &PowerIterationConfig::default())?;
    let crown = model.crown()?;
    let cfg = CrownConfig::default();
    let (x, y) = subset(data.test_images.view(), &data.test_labels, idx)?;
    let c0 = thread_cpu_seconds();
    let certs = crown.certify_batch(x.view(), &y, &cfg)?;
    let cpu = (thread_cpu_seconds() - c0) / idx.len().max(1) as f64;
    let evals = certs.iter().map(|c| c.evaluations as f64).sum::<f64>() / certs.len().max(1) as f64;
    let brackets = distortion_brackets_with(
        model,
        &cert,
        &crown,
        &cfg,
        x.view(),
        &y,
        &AttackConfig::default(),
    )?;
    let ok: Vec<_> = brackets
        .iter()
        .filter(|b| b.upper.is_some_and(|u| u > 0.0))
        .collect();
    let violations = ok
        .iter()
        .filter(|b| {
            b.crown.untargeted > b.upper.unwrap() || b.certified.untargeted > b.upper.unwrap()
        })
        .count();
    let col = |f: &dyn Fn(&DistortionBracket) -> f64| ok.iter().map(|b| f(b)).collect::<Vec<f64>>();
    let mut lip = col(&|b| b.certified.untargeted);
    let mut cr = col(&|b| b.crown.untargeted);
    let mut up = col(&|b| b.upper.unwrap());
    let mut lip_ratio = col(&|b| b.ratio().unwrap());
    let cr_ratio = col(&|b| b.crown_ratio().unwrap());
    let mut gain = col(&|b| b.crown.untargeted / b.certified.untargeted);
    println!(
        "| {name} | {} | {:.3e} | {:.3e} | {:.3} | {:.4} | **{:.3}** | {:.3} … {:.3} | {:.1} | {:.2} | {:.1} | {} |",
        ok.len(),
        median(&mut lip),
        median(&mut cr),
        median(&mut up),
        median(&mut lip_ratio),
        median(&mut cr_ratio.clone()),
        cr_ratio.iter().copied().fold(f64::INFINITY, f64::min),
        cr_ratio.iter().copied().fold(0.0, f64::max),
        median(&mut gain),
        1e3 * cpu,
        evals,
        violations
    );
    Ok(())
}

fn crown_header() {
    println!(
        "| model | n | median Lipschitz lower | median CROWN lower | median attack ‖r‖ | median Lipschitz/attack | median CROWN/attack | CROWN/attack min … max | median CROWN/Lipschitz | CPU ms / CROWN certificate | bound evaluations / certificate | violations |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|");
}

fn correctly_classified<M: Classifier>(
    model: &M,
    data: &Mnist,
    within: usize,
    n: usize,
) -> intriguing::Result<Vec<usize>> {
    let pred = model.predict_batch(data.test_images.slice(s![..within, ..]))?;
    Ok((0..pred.len())
        .filter(|&i| pred[i] == data.test_labels[i])
        .take(n)
        .collect())
}

fn purity_row(name: &str, phi: ArrayView2<'_, f64>, labels: &[usize]) -> intriguing::Result<()> {
    for k in [10, 50] {
        let c = purity_comparison(phi, labels, k, 100, 100, 7)?;
        println!(
            "| {name} | {} | {k} | {} | {:.3} ± {:.3} | {:.3} ± {:.3} | {:.3} |",
            phi.ncols(),
            c.units.len(),
            c.unit_purity.mean,
            c.unit_purity.std,
            c.random_purity.mean,
            c.random_purity.std,
            c.chance
        );
    }
    Ok(())
}

fn grids(
    out: &Path,
    name: &str,
    phi: ArrayView2<'_, f64>,
    images: ArrayView2<'_, f64>,
    labels: &[usize],
) -> intriguing::Result<()> {
    let dim = phi.ncols();
    let mut unit_rows = Vec::new();
    let mut random_rows = Vec::new();
    for r in 0..6 {
        // Units spread over the layer; random directions from fixed seeds.
        let u = Direction::Unit(r * dim / 6).vector(dim)?;
        unit_rows.push(top_activating(phi, u.view(), 8)?);
        let v = Direction::Random {
            seed: 100 + r as u64,
        }
        .vector(dim)?;
        random_rows.push(top_activating(phi, v.view(), 8)?);
    }
    let pu = out.join(format!("{name}_units.png"));
    let pr = out.join(format!("{name}_random.png"));
    let text = |kind: &str, heads: Vec<String>| FigureText {
        title: format!("{name}: test images that most activate {kind}"),
        column_headers: (1..=8).map(|r| format!("#{r}")).collect(),
        row_headers: heads,
        notes: vec![
            "one row per direction, images by decreasing activation; captions: labels".into(),
        ],
    };
    let unit_heads = (0..6).map(|r| format!("unit {}", r * dim / 6)).collect();
    let random_heads = (0..6).map(|r| format!("rand {}", 100 + r)).collect();
    write_image_grid(
        &pu,
        images,
        labels,
        &unit_rows,
        (28, 28),
        &text("single units", unit_heads),
    )?;
    write_image_grid(
        &pr,
        images,
        labels,
        &random_rows,
        (28, 28),
        &text("random directions", random_heads),
    )?;
    println!("wrote {} and {}", pu.display(), pr.display());
    Ok(())
}

/// The paper's analyses on MNIST models trained on the spot: Lipschitz bounds, certified
/// lower bounds beside the attack, label purity of units vs random directions.
#[derive(Parser, Debug)]
#[command(name = "analysis")]
struct Args {
    /// Smaller training sets and fewer epochs (about 4 times faster).
    #[arg(long)]
    quick: bool,
    /// Only the certified-bound tables.
    #[arg(long)]
    crown_only: bool,
    /// Where the PNG grids go (default: analysis/ under the output root).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::exit_status(run(args))
}

fn run(args: Args) -> intriguing::Result<()> {
    let quick = args.quick;
    let crown_only = args.crown_only;
    let out = args.out.unwrap_or_else(|| common::output_dir("analysis"));
    std::fs::create_dir_all(&out)?;
    let t0 = Instant::now();
    let data = common::mnist()?;
    let (n_mlp, n_cnn, mlp_epochs, cnn_epochs) = if quick {
        (10_000, 5_000, 2, 1)
    } else {
        (60_000, 60_000, 4, 2)
    };
    let n_gap = if quick { 20 } else { 50 };
    println!("MNIST loaded in {:.1?}", t0.elapsed());

    // --- models -----------------------------------------------------------------------
    let (mut fc10, cfg10) = Preset::Fc10(1e-2).build(1)?;
    let t = Instant::now();
    train(
        &mut fc10,
        data.train_images.slice(s![..n_mlp, ..]),
        &data.train_labels[..n_mlp],
        &cfg10,
        |_, _| {},
    )?;
    let fc10_err = fc10.error_rate(data.test_images.view(), &data.test_labels)?;
    println!(
        "FC10(1e-2): test error {:.2}% ({:.1?})",
        100.0 * fc10_err,
        t.elapsed()
    );

    let (mut fc100, cfg100) = Preset::Fc100_100_10.build(2)?;
    let cfg100 = cfg100.with_epochs(mlp_epochs)?;
    let t = Instant::now();
    train(
        &mut fc100,
        data.train_images.slice(s![..n_mlp, ..]),
        &data.train_labels[..n_mlp],
        &cfg100,
        |_, _| {},
    )?;
    let fc100_err = fc100.error_rate(data.test_images.view(), &data.test_labels)?;
    println!(
        "FC100-100-10: test error {:.2}% ({:.1?}, {mlp_epochs} epochs on {n_mlp})",
        100.0 * fc100_err,
        t.elapsed()
    );

    let mut lenet = Cnn::lenet(6, 16, 120, 3)?;
    let cnn_cfg = TrainConfig::new()
        .with_epochs(cnn_epochs)?
        .with_batch_size(32)?
        .with_learning_rate(0.02)?
        .with_momentum(0.9)?
        .with_seed(3);
    let rep = train(
        &mut lenet,
        data.train_images.slice(s![..n_cnn, ..]),
        &data.train_labels[..n_cnn],
        &cnn_cfg,
        |e, _| println!("  LeNet epoch {}: mean loss {:.4}", e.epoch, e.loss),
    )?;
    let lenet_err = lenet.error_rate(data.test_images.view(), &data.test_labels)?;
    println!(
        "LeNet-5 style (conv6-pool-conv16-pool-120-10, {} parameters): test error {:.2}% (trained {:.1} s, {cnn_epochs} epochs on {n_cnn})",
        lenet.num_parameters(),
        100.0 * lenet_err,
        rep.elapsed.as_secs_f64()
    );

    // FC500-150-10 with ReLU hidden layers (the preset's recipe at η = 0.1).
    let mut fc500 = Mlp::random(&Preset::Fc500_150_10.sizes(), Activation::Relu, 4)?;
    let cfg500 = Preset::Fc500_150_10
        .train_config(4)?
        .with_epochs(mlp_epochs)?
        .with_learning_rate(0.1)?;
    let t = Instant::now();
    train(
        &mut fc500,
        data.train_images.slice(s![..n_mlp, ..]),
        &data.train_labels[..n_mlp],
        &cfg500,
        |_, _| {},
    )?;
    let fc500_err = fc500.error_rate(data.test_images.view(), &data.test_labels)?;
    println!(
        "FC500-150-10 (ReLU): test error {:.2}% ({:.1?}, {mlp_epochs} epochs on {n_mlp})",
        100.0 * fc500_err,
        t.elapsed()
    );

    // --- CROWN vs Lipschitz certified lower bounds ------------------------------------------
    let n_wide = if quick { 100 } else { 500 };
    println!(
        "\n### Certified lower bounds: Lipschitz margin vs CROWN (ball ∩ box), untargeted, first {n_gap} correctly classified test images\n"
    );
    crown_header();
    crown_row(
        "FC10(1e-2)",
        &fc10,
        &data,
        &correctly_classified(&fc10, &data, 10_000, n_gap)?,
    )?;
    crown_row(
        "FC100-100-10",
        &fc100,
        &data,
        &correctly_classified(&fc100, &data, 10_000, n_gap)?,
    )?;
    crown_row(
        "LeNet",
        &lenet,
        &data,
        &correctly_classified(&lenet, &data, 10_000, n_gap)?,
    )?;
    println!("\n### The same on the correctly classified among the first {n_wide} test images\n");
    crown_header();
    crown_row(
        "FC100-100-10",
        &fc100,
        &data,
        &correctly_classified(&fc100, &data, n_wide, n_wide)?,
    )?;
    crown_row(
        "FC500-150-10 (ReLU)",
        &fc500,
        &data,
        &correctly_classified(&fc500, &data, n_wide, n_wide)?,
    )?;
    if crown_only {
        return Ok(());
    }

    // --- Table 5 style reports ----------------------------------------------------------
    let pcfg = PowerIterationConfig::default();
    let timed = |f: &dyn Fn() -> intriguing::Result<intriguing::analysis::LipschitzReport>| {
        let t = Instant::now();
        f().map(|r| (r, t.elapsed()))
    };
    for (name, (report, took)) in [
        ("FC10(1e-2)", timed(&|| lipschitz_report(&fc10, &pcfg))?),
        ("FC100-100-10", timed(&|| lipschitz_report(&fc100, &pcfg))?),
        ("LeNet", timed(&|| lipschitz_report(&lenet, &pcfg))?),
    ] {
        println!(
            "\n### {name}: upper Lipschitz bound {:.4e} (report computed in {took:.2?})\n",
            report.total()
        );
        print!("{}", report.to_markdown());
    }

    // --- certified lower bounds vs attack -------------------------------------------------
    println!(
        "\n### Certified lower bound vs attack distortion (untargeted, first {n_gap} correctly classified test images)\n"
    );
    println!(
        "| model | n | median naive lower | median lower | median attack ‖r‖ | median lower/attack | min … max ratio | ‖r‖/‖x‖ median / mean | s / attack | attack failures | violations |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|");
    let mut examples = Vec::new();
    gap_statistics("FC10(1e-2)", &fc10, &data, n_gap, &mut examples)?;
    gap_statistics("FC100-100-10", &fc100, &data, n_gap, &mut examples)?;
    gap_statistics("LeNet", &lenet, &data, n_gap, &mut examples)?;
    println!(
        "\nPer example (first three of each model; the true minimal ‖r‖ lies in [lower, attack]):\n"
    );
    println!(
        "| model | test index | label | certified lower | naive lower | attack ‖r‖ | reached |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for line in &examples {
        println!("{line}");
    }

    // --- units vs random directions -----------------------------------------------------
    let x = data.test_images.view();
    let y = &data.test_labels[..];
    println!("\n### Label purity of the top-k test images: 100 units vs 100 random directions\n");
    println!("| representation | units | k | units used | unit purity | random purity | chance |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let fc100_h1: Array2<f64> = fc100.hidden_representation(x, 0)?;
    let fc100_h2 = fc100.hidden_representation(x, 1)?;
    let lenet_fc1 = lenet.hidden_representation(x, 7)?;
    purity_row("FC100-100-10 layer 1", fc100_h1.view(), y)?;
    purity_row("FC100-100-10 layer 2", fc100_h2.view(), y)?;
    purity_row("LeNet fc1 (120, ReLU)", lenet_fc1.view(), y)?;
    println!();
    grids(&out, "fc100_layer2", fc100_h2.view(), x, y)?;
    grids(&out, "lenet_fc1", lenet_fc1.view(), x, y)?;
    println!("total {:.1?}", t0.elapsed());
    Ok(())
}
