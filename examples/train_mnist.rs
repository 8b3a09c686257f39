//! Trains one of the paper's MNIST models (FC100-100-10 by default) on the bundled MNIST,
//! printing progress per epoch, the final train/test error and time, and saves the weights as
//! safetensors.
//!
//! ```text
//! cargo run --release --example train_mnist -- [--preset FC100-100-10] [--epochs N]
//!     [--out PATH] [--seed S] [--lr LR] [--lr-decay F] [--momentum M] [--batch B]
//!     [--warmup EPOCHS] [--train N]
//! ```
//!
//! `--preset` takes the paper's names: `FC10(1e-4)`, `FC100-100-10`, `FC200-200-10`,
//! `FC500-150-10`, `FC123-456-10`. `--train N` trains on the first N training images only.
//! `--momentum M` switches from Adam to SGD with momentum M.
//! The default output is `models/<preset>.safetensors` under `$CARGO_TARGET_DIR` when set,
//! else `./target`. MNIST is read from `INTRIGUING_MNIST_DIR` when set, else the bundled copy.

mod common;

use clap::Parser;
use intriguing::ClassifierExt;
use intriguing::models::{Preset, train};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Train one of the paper's MNIST models and save its weights as safetensors.
#[derive(Parser, Debug)]
#[command(name = "train_mnist")]
struct Args {
    /// Model: FC10(1e-4), FC100-100-10, FC200-200-10, FC500-150-10, FC123-456-10, ...
    #[arg(long, default_value = "FC100-100-10", value_parser = parse_preset)]
    preset: Preset,
    /// Training epochs (default: the preset's recipe).
    #[arg(long, value_parser = common::at_least_one)]
    epochs: Option<usize>,
    /// Output file (default: models/<preset>.safetensors under the output root).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed of the initial weights and the minibatch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Learning-rate factor per epoch.
    #[arg(long)]
    lr_decay: Option<f64>,
    /// SGD with this momentum instead of Adam.
    #[arg(long)]
    momentum: Option<f64>,
    /// Minibatch size.
    #[arg(long, value_parser = common::at_least_one)]
    batch: Option<usize>,
    /// Warm-up epochs (may be fractional).
    #[arg(long)]
    warmup: Option<f64>,
    /// Train on the first N training images only.
    #[arg(long = "train", value_parser = common::at_least_one)]
    n_train: Option<usize>,
}

fn parse_preset(s: &str) -> Result<Preset, String> {
    s.parse::<Preset>().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::exit_status(run(args))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let Args {
        preset,
        epochs,
        out,
        seed,
        lr,
        lr_decay,
        momentum,
        batch,
        warmup,
        n_train,
    } = args;
    // Every setting is validated (by the config's setters) before MNIST is loaded.
    let (mut mlp, mut cfg) = preset.build(seed)?;
    if let Some(e) = epochs {
        cfg = cfg.with_epochs(e)?;
    }
    if let Some(lr) = lr {
        cfg = cfg.with_learning_rate(lr)?;
    }
    if let Some(d) = lr_decay {
        cfg = cfg.with_lr_decay(d)?;
    }
    if let Some(m) = momentum {
        cfg = cfg.with_momentum(m)?;
    }
    if let Some(b) = batch {
        cfg = cfg.with_batch_size(b)?;
    }
    if let Some(w) = warmup {
        cfg = cfg.with_warmup_epochs(w)?;
    }
    let t = Instant::now();
    let mut mnist = common::mnist()?;
    if let Some(n) = n_train {
        mnist = mnist.take(n, mnist.test_labels.len())?;
    }
    println!(
        "loaded MNIST: {} train, {} test images in {:.2?}",
        mnist.train_labels.len(),
        mnist.test_labels.len(),
        t.elapsed()
    );

    println!(
        "training {preset} ({} parameters): {} epochs, batch {}, {:?}, lr {} x{}/epoch, \
         warm-up {} epochs, weight decay {:?}, seed {seed}",
        mlp.num_parameters(),
        cfg.epochs(),
        cfg.batch_size(),
        cfg.optimizer(),
        cfg.learning_rate(),
        cfg.lr_decay(),
        cfg.warmup_epochs(),
        preset.weight_decay(),
    );
    let test = (mnist.test_images.view(), &mnist.test_labels[..]);
    let report = train(
        &mut mlp,
        mnist.train_images.view(),
        &mnist.train_labels,
        &cfg,
        |info, model| {
            let test_err = model.error_rate(test.0, test.1).unwrap_or(f64::NAN);
            println!(
                "epoch {:>3}/{}: loss {:.4}, objective {:.4}, lr {:.2e}, test error {:.2}% ({:.2?})",
                info.epoch,
                info.epochs,
                info.loss,
                info.objective,
                info.learning_rate,
                100.0 * test_err,
                info.elapsed
            );
        },
    )?;
    let train_err = mlp.error_rate(mnist.train_images.view(), &mnist.train_labels)?;
    let test_err = mlp.error_rate(test.0, test.1)?;
    println!(
        "{preset}: train error {:.2}%, test error {:.2}%, training time {:.2?}",
        100.0 * train_err,
        100.0 * test_err,
        report.elapsed
    );

    let out = out.unwrap_or_else(|| {
        let name = preset.to_string().replace(['(', ')'], "_");
        common::output_dir("models").join(format!("{name}.safetensors"))
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    mlp.save_safetensors(&out)?;
    println!("saved weights to {}", out.display());
    Ok(())
}
