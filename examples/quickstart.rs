//! Quickstart: train FC100-100-10 on the bundled MNIST, attack the first 100 test images with
//! the paper's box-constrained L-BFGS, print a summary table and write a Figure-5-style grid.
//!
//! ```text
//! cargo run --release --example quickstart -- [--epochs N] [--images N] [--target next|nearest|untargeted]
//!     [--out PATH]
//! ```
//!
//! Defaults: the FC100-100-10 preset recipe (15 epochs) on all 60 000 training images,
//! 100 test images, target = (predicted label + 1) mod 10, attacked one after the other on
//! one thread (so the per-example times are those of one core), output
//! `quickstart/figure5.png` under `$CARGO_TARGET_DIR` when set, else `./target`. MNIST is read
//! from `INTRIGUING_MNIST_DIR` when set, else the copy bundled in `examples/data/mnist/`.

mod common;

use intriguing::ClassifierExt;
use intriguing::attack::{AttackConfig, Target, find_minimal_perturbation};
use intriguing::models::{Preset, train};
use intriguing::viz::{GridSpec, magnify_around_grey, write_grid_png};
use ndarray::{Array1, ArrayView1};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut epochs = None;
    let mut n_images = 100usize;
    let mut target_kind = "next".to_string();
    let mut out = common::output_dir("quickstart").join("figure5.png");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--epochs" => epochs = Some(val()?.parse()?),
            "--images" => n_images = val()?.parse()?,
            "--target" => target_kind = val()?,
            "--out" => out = PathBuf::from(val()?),
            "-h" | "--help" => {
                println!(
                    "usage: quickstart [--epochs N] [--images N] \
                     [--target next|nearest|untargeted] [--out PATH]"
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }

    // 1. Data and model.
    let t0 = Instant::now();
    let mnist = common::mnist()?;
    println!(
        "MNIST: {} training and {} test images ({:.1?})",
        mnist.train_labels.len(),
        mnist.test_labels.len(),
        t0.elapsed()
    );
    let (mut mlp, cfg) = Preset::Fc100_100_10.build(0)?;
    let cfg = match epochs {
        Some(e) => cfg.with_epochs(e)?,
        None => cfg,
    };
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
    let n = n_images.min(mnist.test_labels.len());
    println!("attacking the first {n} test images (target: {target_kind})");
    let config = AttackConfig::default();
    let mut rows = Vec::new(); // (index, original label, result, seconds)
    for i in 0..n {
        let x = mnist.test_images.row(i);
        let y = mlp.predict(x)?;
        let target = match target_kind.as_str() {
            "next" => Target::Label((y + 1) % 10),
            "nearest" => Target::Nearest { true_label: y },
            "untargeted" => Target::Untargeted { true_label: y },
            other => return Err(format!("unknown target {other:?}").into()),
        };
        let t = Instant::now();
        let res = find_minimal_perturbation(&mlp, x, target, &config)?;
        rows.push((i, y, res, t.elapsed().as_secs_f64()));
    }

    // 3. Table.
    let ok: Vec<_> = rows.iter().filter(|r| r.2.success()).collect();
    let mut rms: Vec<f64> = ok.iter().filter_map(|r| r.2.rms()).collect();
    rms.sort_by(f64::total_cmp);
    let mut times: Vec<f64> = rows.iter().map(|r| r.3).collect();
    times.sort_by(f64::total_cmp);
    let median = |v: &[f64]| {
        if v.is_empty() {
            f64::NAN
        } else {
            v[v.len() / 2]
        }
    };
    let evals: f64 = rows
        .iter()
        .map(|r| r.2.gradient_evaluations as f64)
        .sum::<f64>()
        / n.max(1) as f64;
    println!();
    println!(
        "| model        | images | success | mean RMS | median RMS | median time / example | gradient evals / example |"
    );
    println!(
        "|--------------|-------:|--------:|---------:|-----------:|----------------------:|-------------------------:|"
    );
    println!(
        "| FC100-100-10 | {n:>6} | {:>6.1}% | {:>8.4} | {:>10.4} | {:>18.2} ms | {:>24.1} |",
        100.0 * ok.len() as f64 / n.max(1) as f64,
        rms.iter().sum::<f64>() / rms.len().max(1) as f64,
        median(&rms),
        1e3 * median(&times),
        evals
    );

    // 4. Figure 5: original | perturbation (magnified around grey) | adversarial.
    let shown: Vec<_> = ok.iter().take(10).collect();
    if !shown.is_empty() {
        // Magnify so that a pixel changed by 3× the largest RMS distortion reaches black or
        // white (the few larger changes saturate).
        let max_rms = shown
            .iter()
            .filter_map(|r| r.2.rms())
            .fold(1e-12f64, f64::max);
        let factor = (0.5 / (3.0 * max_rms)).round().max(1.0);
        let mut owned: Vec<Array1<f64>> = Vec::new();
        let mut labels = Vec::new();
        for r in &shown {
            let adv = r.2.adversarial.as_ref().expect("successes only");
            owned.push(mnist.test_images.row(r.0).to_owned());
            owned.push(magnify_around_grey(adv.perturbation.view(), factor));
            owned.push(adv.input.clone());
            labels.push(format!("{}", r.1));
            labels.push(format!("X{factor:.0}"));
            labels.push(format!("{}", adv.label));
        }
        let views: Vec<ArrayView1<f64>> = owned.iter().map(|a| a.view()).collect();
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        write_grid_png(&out, &views, Some(&labels), &GridSpec::new(6, 28, 28))?;
        let shown_path = std::fs::canonicalize(&out).unwrap_or(out.clone());
        println!();
        println!(
            "wrote {} ({} examples; columns: original | perturbation x{factor:.0} around grey | adversarial, labels = predictions)",
            shown_path.display(),
            shown.len()
        );
    }
    println!("total time {:.1?}", t0.elapsed());
    Ok(())
}
