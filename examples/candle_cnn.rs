//! Attacking a real framework model: a small CNN built with `candle_nn`, trained briefly on
//! the bundled MNIST (or loaded from the weights an earlier run wrote), attacked with every
//! target mode through `intriguing::models::candle::CandleClassifier`, and a Figure-5-style
//! grid of the results.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo run --release --features candle --example candle_cnn -- [--retrain] [--epochs N]
//!     [--train N] [--images N] [--threads N] [--out DIR]
//! ```
//!
//! Defaults: 3 epochs of AdamW on the first 12 000 training images (about a minute on two
//! cores; MNIST from `INTRIGUING_MNIST_DIR` or the bundled copy), weights cached in
//! `<target>/candle_cnn/cnn.safetensors` (`<target>` = `$CARGO_TARGET_DIR` or `./target`) (PyTorch `nn.Conv2d` /
//! `nn.Linear` layout: `conv1.weight` `[8, 1, 5, 5]`, ..., `fc.weight` `[10, 256]`), 4 test
//! images attacked with `Label((y + 1) mod 10)`, `Untargeted` and `Nearest` on 2 threads, grid
//! in `<target>/candle_cnn/figure5.png`.

mod common;

use intriguing::ClassifierExt;
use intriguing::attack::{AttackConfig, Target, attack_batch};
use intriguing::data::Mnist;
use intriguing::models::candle::CandleClassifier;
// candle through the adapter's re-exports (the same versions the adapter was built with).
use intriguing::models::candle::candle_core::{self, DType, Device, Module, Tensor};
use intriguing::models::candle::candle_nn::{self, Conv2d, Linear, Optimizer, VarBuilder, VarMap};
use intriguing::viz::{GridSpec, magnify_around_grey, write_grid_png};
use ndarray::{Array1, ArrayView1, ArrayView2, Axis};
use std::path::PathBuf;
use std::time::Instant;

/// conv 5×5 (1 → 8) → ReLU → max-pool 2 → conv 5×5 (8 → 16) → ReLU → max-pool 2 → linear
/// (256 → 10). A plain struct: `candle_nn::Sequential` is not `Send + Sync`.
struct Cnn {
    conv1: Conv2d,
    conv2: Conv2d,
    fc: Linear,
}

impl Cnn {
    fn new(vb: VarBuilder) -> candle_core::Result<Self> {
        let cfg = Default::default();
        Ok(Cnn {
            conv1: candle_nn::conv2d(1, 8, 5, cfg, vb.pp("conv1"))?,
            conv2: candle_nn::conv2d(8, 16, 5, cfg, vb.pp("conv2"))?,
            fc: candle_nn::linear(16 * 4 * 4, 10, vb.pp("fc"))?,
        })
    }
}

impl Module for Cnn {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.conv1.forward(x)?.relu()?.max_pool2d(2)?;
        let h = self.conv2.forward(&h)?.relu()?.max_pool2d(2)?;
        self.fc.forward(&h.flatten_from(1)?)
    }
}

/// Images `[n, 784]` as an f32 tensor `[n, 1, 28, 28]`.
fn images(x: ArrayView2<'_, f64>, dev: &Device) -> candle_core::Result<Tensor> {
    let v: Vec<f32> = x.iter().map(|&p| p as f32).collect();
    Tensor::from_vec(v, (x.nrows(), 1, 28, 28), dev)
}

fn train(
    mnist: &Mnist,
    n_train: usize,
    epochs: usize,
    path: &PathBuf,
    dev: &Device,
) -> Result<(), Box<dyn std::error::Error>> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, dev);
    let net = Cnn::new(vb)?;
    let mut opt = candle_nn::AdamW::new(
        varmap.all_vars(),
        candle_nn::ParamsAdamW {
            lr: 3e-3,
            ..Default::default()
        },
    )?;
    let n = n_train.min(mnist.train_labels.len());
    let batch = 64;
    for epoch in 0..epochs {
        let t = Instant::now();
        let mut total = 0.0;
        for start in (0..n).step_by(batch) {
            let end = (start + batch).min(n);
            let x = images(mnist.train_images.slice(ndarray::s![start..end, ..]), dev)?;
            let y: Vec<u32> = mnist.train_labels[start..end]
                .iter()
                .map(|&l| l as u32)
                .collect();
            let y = Tensor::new(y.as_slice(), dev)?;
            let loss = candle_nn::loss::cross_entropy(&net.forward(&x)?, &y)?;
            opt.backward_step(&loss)?;
            total += loss.to_scalar::<f32>()? as f64 * (end - start) as f64;
        }
        println!(
            "epoch {}: mean training loss {:.4} ({:.1?})",
            epoch + 1,
            total / n as f64,
            t.elapsed()
        );
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    varmap.save(path)?;
    println!("wrote the weights to {}", path.display());
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut retrain = false;
    let mut epochs = 3usize;
    let mut n_train = 12_000usize;
    let mut n_images = 4usize;
    let mut threads = 2usize;
    let mut out = common::output_dir("candle_cnn");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--retrain" => retrain = true,
            "--epochs" => epochs = val()?.parse()?,
            "--train" => n_train = val()?.parse()?,
            "--images" => n_images = val()?.parse()?,
            "--threads" => threads = val()?.parse()?,
            "--out" => out = PathBuf::from(val()?),
            "-h" | "--help" => {
                println!(
                    "usage: candle_cnn [--retrain] [--epochs N] [--train N] [--images N] \
                     [--threads N] [--out DIR]"
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    let t0 = Instant::now();
    let dev = Device::Cpu;
    let mnist = common::mnist()?;
    let weights = out.join("cnn.safetensors");
    if retrain || !weights.exists() {
        train(&mnist, n_train, epochs, &weights, &dev)?;
    } else {
        println!(
            "loading the weights of an earlier run from {}",
            weights.display()
        );
    }

    // The attacked model: built over plain tensors read from the file (not over training
    // `Var`s), so candle's backward pass only tracks the input.
    let tensors = candle_core::safetensors::load(&weights, &dev)?;
    let net = Cnn::new(VarBuilder::from_tensors(tensors, DType::F32, &dev))?;
    let model = CandleClassifier::new(net, &[1, 28, 28], DType::F32, &dev)?;
    let test = mnist.test_images.slice(ndarray::s![..1000, ..]);
    let err = model.error_rate(test, &mnist.test_labels[..1000])?;
    println!("test error on 1000 test images: {:.2}%", 100.0 * err);

    // The first correctly classified test images, each with every target mode.
    let picked: Vec<usize> = (0..1000)
        .filter(|&i| model.predict(mnist.test_images.row(i)).ok() == Some(mnist.test_labels[i]))
        .take(n_images)
        .collect();
    let modes = ["label", "untargeted", "nearest"];
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for &i in &picked {
        let y = mnist.test_labels[i];
        for t in [
            Target::Label((y + 1) % 10),
            Target::Untargeted { true_label: y },
            Target::Nearest { true_label: y },
        ] {
            rows.push(i);
            targets.push(t);
        }
    }
    let inputs = mnist.test_images.select(Axis(0), &rows);
    let t = Instant::now();
    let results = attack_batch(
        &model,
        inputs.view(),
        &targets,
        &AttackConfig::default(),
        threads,
    )?;
    let elapsed = t.elapsed();
    println!(
        "{} attacks on {threads} threads in {elapsed:.1?} ({:.0} ms per attack)",
        results.len(),
        1e3 * elapsed.as_secs_f64() / results.len().max(1) as f64
    );
    println!();
    println!(
        "| image | label | target      | success | adversarial label |     L2 |    RMS | gradient evals |"
    );
    println!(
        "|------:|------:|-------------|:-------:|------------------:|-------:|-------:|---------------:|"
    );
    for (k, res) in results.iter().enumerate() {
        let (i, mode) = (rows[k], modes[k % 3]);
        match res {
            Ok(r) => println!(
                "| {i:>5} | {:>5} | {mode:<11} | {:^7} | {:>17} | {:>6.3} | {:>6.4} | {:>14} |",
                mnist.test_labels[i],
                if r.success() { "yes" } else { "no" },
                r.adversarial_label().map_or("-".into(), |l| l.to_string()),
                r.l2().unwrap_or(f64::NAN),
                r.rms().unwrap_or(f64::NAN),
                r.gradient_evaluations
            ),
            Err(e) => println!("| {i:>5} | {mode:<11} | error: {e} |"),
        }
    }

    // Figure 5: per image, original | (perturbation ×f, adversarial) for each mode.
    // Magnify so that a pixel changed by 3× the mean RMS distortion reaches black or white.
    let rms: Vec<f64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().and_then(|r| r.rms()))
        .collect();
    let mean_rms = rms.iter().sum::<f64>() / rms.len().max(1) as f64;
    let factor = (0.5 / (3.0 * mean_rms.max(1e-12))).round().max(1.0);
    let blank = Array1::from_elem(784, 1.0);
    let mut owned: Vec<Array1<f64>> = Vec::new();
    let mut labels = Vec::new();
    for (p, &i) in picked.iter().enumerate() {
        owned.push(mnist.test_images.row(i).to_owned());
        labels.push(format!("{}", mnist.test_labels[i]));
        for (m, mode) in ["->", "ANY", "NEAR"].iter().enumerate() {
            match results[3 * p + m]
                .as_ref()
                .ok()
                .and_then(|r| r.adversarial.as_ref())
            {
                Some(adv) => {
                    owned.push(magnify_around_grey(adv.perturbation.view(), factor));
                    owned.push(adv.input.clone());
                    labels.push(format!("{mode} X{factor:.0}"));
                    labels.push(format!("{}", adv.label));
                }
                None => {
                    owned.push(blank.clone());
                    owned.push(blank.clone());
                    labels.push(format!("{mode} FAIL"));
                    labels.push(String::new());
                }
            }
        }
    }
    let views: Vec<ArrayView1<f64>> = owned.iter().map(|a| a.view()).collect();
    std::fs::create_dir_all(&out)?;
    let png = out.join("figure5.png");
    write_grid_png(&png, &views, Some(&labels), &GridSpec::new(7, 28, 28))?;
    println!();
    println!(
        "wrote {} (per row: original | label (y+1): perturbation x{factor:.0}, adversarial | \
         untargeted: same | nearest: same; captions = predictions)",
        png.display()
    );
    println!("total time {:.1?}", t0.elapsed());
    Ok(())
}
