//! The same FC100-100-10 attacked natively (`intriguing::models::Mlp`) and through the candle
//! adapter in `f64` and in `f32`: time per example and whether the results change.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo run --release --features candle --example candle_vs_native -- \
//!     [--images N] [--epochs N] [--out DIR]
//! ```
//!
//! The MLP is trained natively (the FC100-100-10 preset recipe for `--epochs`, default 5, on
//! all training images) and cached as `<target>/candle_vs_native/fc100.safetensors`
//! (`$CARGO_TARGET_DIR` or `./target`); candle reads
//! that same file (`layers.{i}.weight` `[out, in]`, PyTorch's `nn.Linear` layout) through its
//! `VarBuilder`. The first `--images` (default 30) test images are attacked one after the other
//! on one thread with `Label((y + 1) mod 10)` and the default `AttackConfig`. CPU time is read
//! from `/proc/self/stat` (Linux; "n/a" elsewhere).

mod common;

use intriguing::attack::{AttackConfig, AttackResult, Target, find_minimal_perturbation};
use intriguing::data::Mnist;
use intriguing::models::candle::CandleClassifier;
use intriguing::models::candle::candle_core::{self, DType, Device, Module, Tensor};
use intriguing::models::candle::candle_nn::{self, VarBuilder};
use intriguing::models::{Mlp, Preset, train};
use intriguing::{Classifier, ClassifierExt};
use std::path::PathBuf;
use std::time::Instant;

/// `Linear` layers with sigmoid between them: the crate's FC models in candle.
struct CandleMlp(Vec<candle_nn::Linear>);

impl Module for CandleMlp {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for (i, l) in self.0.iter().enumerate() {
            h = l.forward(&h)?;
            if i + 1 < self.0.len() {
                h = candle_nn::ops::sigmoid(&h)?;
            }
        }
        Ok(h)
    }
}

fn candle_twin(
    mlp: &Mlp,
    dtype: DType,
) -> Result<CandleClassifier<CandleMlp>, Box<dyn std::error::Error>> {
    let dev = Device::Cpu;
    let vb = VarBuilder::from_buffered_safetensors(mlp.to_safetensors_bytes()?, dtype, &dev)?;
    let sizes = mlp.sizes();
    let layers = (0..sizes.len() - 1)
        .map(|i| candle_nn::linear(sizes[i], sizes[i + 1], vb.pp(format!("layers.{i}"))))
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(CandleClassifier::new(
        CandleMlp(layers),
        &[sizes[0]],
        dtype,
        &dev,
    )?)
}

/// User + system CPU time of this process in seconds (Linux, at the usual 100 ticks/s).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (u, s): (f64, f64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
    Some((u + s) / 100.0)
}

struct Run {
    name: &'static str,
    results: Vec<AttackResult>,
    cpu: Option<f64>,
    wall: f64,
}

fn attack_all<C: Classifier>(
    name: &'static str,
    model: &C,
    mnist: &Mnist,
    n: usize,
) -> Result<Run, Box<dyn std::error::Error>> {
    let cfg = AttackConfig::default();
    let (c0, t0) = (cpu_seconds(), Instant::now());
    let mut results = Vec::with_capacity(n);
    for i in 0..n {
        let x = mnist.test_images.row(i);
        let y = model.predict(x)?;
        results.push(find_minimal_perturbation(
            model,
            x,
            Target::Label((y + 1) % 10),
            &cfg,
        )?);
    }
    let cpu = c0.zip(cpu_seconds()).map(|(a, b)| b - a);
    Ok(Run {
        name,
        results,
        cpu,
        wall: t0.elapsed().as_secs_f64(),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut n = 30usize;
    let mut epochs = 5usize;
    let mut out = common::output_dir("candle_vs_native");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--images" => n = val()?.parse()?,
            "--epochs" => epochs = val()?.parse()?,
            "--out" => out = PathBuf::from(val()?),
            "-h" | "--help" => {
                println!("usage: candle_vs_native [--images N] [--epochs N] [--out DIR]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    let mnist = common::mnist()?;
    let path = out.join("fc100.safetensors");
    let mlp = if path.exists() {
        println!("loading {}", path.display());
        Mlp::load_safetensors(&path)?
    } else {
        let (mut mlp, cfg) = Preset::Fc100_100_10.build(0)?;
        let cfg = cfg.with_epochs(epochs)?;
        train(
            &mut mlp,
            mnist.train_images.view(),
            &mnist.train_labels,
            &cfg,
            |_, _| {},
        )?;
        std::fs::create_dir_all(&out)?;
        mlp.save_safetensors(&path)?;
        println!(
            "trained FC100-100-10 for {epochs} epochs, wrote {}",
            path.display()
        );
        mlp
    };
    let err = mlp.error_rate(mnist.test_images.view(), &mnist.test_labels)?;
    println!("test error {:.2}%", 100.0 * err);
    let n = n.min(mnist.test_labels.len());
    let (t64, t32) = (
        candle_twin(&mlp, DType::F64)?,
        candle_twin(&mlp, DType::F32)?,
    );

    let runs = [
        attack_all("native f64", &mlp, &mnist, n)?,
        attack_all("candle f64", &t64, &mnist, n)?,
        attack_all("candle f32", &t32, &mnist, n)?,
    ];
    let native = &runs[0];
    println!();
    println!(
        "| model      | success | mean L2 | gradient evals / example | CPU ms / example | wall ms / example | max rel. L2 diff vs native | same adversarial label |"
    );
    println!(
        "|------------|--------:|--------:|-------------------------:|-----------------:|------------------:|---------------------------:|-----------------------:|"
    );
    for run in &runs {
        let ok: Vec<f64> = run.results.iter().filter_map(|r| r.l2()).collect();
        let evals: usize = run.results.iter().map(|r| r.gradient_evaluations).sum();
        let (mut max_rel, mut same) = (0.0f64, 0);
        for (a, b) in run.results.iter().zip(&native.results) {
            if let (Some(x), Some(y)) = (a.l2(), b.l2()) {
                max_rel = max_rel.max((x - y).abs() / y.max(1e-300));
            }
            same += usize::from(a.adversarial_label() == b.adversarial_label());
        }
        println!(
            "| {:<10} | {:>4}/{:<2} | {:>7.4} | {:>24.1} | {:>16} | {:>17.1} | {:>26.1e} | {:>19}/{:<2} |",
            run.name,
            ok.len(),
            n,
            ok.iter().sum::<f64>() / ok.len().max(1) as f64,
            evals as f64 / n.max(1) as f64,
            run.cpu.map_or("n/a".into(), |c| format!(
                "{:.1}",
                1e3 * c / n.max(1) as f64
            )),
            1e3 * run.wall / n.max(1) as f64,
            max_rel,
            same,
            n
        );
    }
    Ok(())
}
