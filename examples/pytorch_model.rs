//! Attack an MLP trained in PyTorch, loaded from a safetensors file in the `nn.Sequential`
//! layout of `nn.Linear` layers (`0.weight` `[out, in]`, `0.bias`, `2.weight`, ...).
//!
//! ```text
//! cargo run --release --example pytorch_model -- [PATH.safetensors] [--images N] [--relu|--tanh]
//! cargo run --release --example pytorch_model -- --help
//! ```
//!
//! The model must map 784 MNIST pixels in [0, 1] to 10 logits with sigmoid hidden layers
//! (`--relu` or `--tanh` for other hidden activations). The few lines of Python that write
//! such a file (see also `docs/attack.md`):
//!
//! ```python
//! import torch.nn as nn
//! from safetensors.torch import save_file
//! model = nn.Sequential(nn.Linear(784, 100), nn.Sigmoid(),
//!                       nn.Linear(100, 100), nn.Sigmoid(),
//!                       nn.Linear(100, 10))
//! # ... train on MNIST with inputs in [0, 1] (transforms.ToTensor(), no Normalize) ...
//! save_file({k: v.contiguous() for k, v in model.state_dict().items()}, "mlp.safetensors")
//! ```
//!
//! Without a PATH (PyTorch is not needed to run this example), the example first writes such
//! a file itself: it trains a small FC100-100-10 in Rust for one epoch and stores its weights
//! exactly as the Python above would — `float32`, names `0.weight` ... `4.bias`, no metadata
//! — then loads that file like any PyTorch export (written to `pytorch_model/mlp.safetensors`
//! under `$CARGO_TARGET_DIR` when set, else `./target`). MNIST is read from
//! `INTRIGUING_MNIST_DIR` when set, else the bundled copy.

mod common;

use clap::Parser;
use intriguing::ClassifierExt;
use intriguing::attack::{AttackConfig, Target, find_minimal_perturbation};
use intriguing::models::{Activation, Mlp, Preset, train};
use safetensors::{Dtype, View};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A float32 tensor, as PyTorch stores `nn.Linear` parameters.
struct F32Tensor {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &F32Tensor {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Writes `mlp` in PyTorch's `nn.Sequential(Linear, act, Linear, act, Linear)` layout.
fn write_pytorch_layout(mlp: &Mlp, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let f32_bytes = |v: &mut dyn Iterator<Item = &f64>| -> Vec<u8> {
        v.flat_map(|x| (*x as f32).to_le_bytes()).collect()
    };
    let mut tensors = Vec::new();
    for (i, layer) in mlp.layers().iter().enumerate() {
        let k = 2 * i; // activation modules take the odd indices
        tensors.push((
            format!("{k}.weight"),
            F32Tensor {
                shape: vec![layer.out_dim(), layer.in_dim()],
                bytes: f32_bytes(&mut layer.weight.iter()),
            },
        ));
        tensors.push((
            format!("{k}.bias"),
            F32Tensor {
                shape: vec![layer.out_dim()],
                bytes: f32_bytes(&mut layer.bias.iter()),
            },
        ));
    }
    let refs: Vec<(String, &F32Tensor)> = tensors.iter().map(|(n, t)| (n.clone(), t)).collect();
    safetensors::serialize_to_file(refs, None, path)?;
    Ok(())
}

/// Attack an MLP trained in PyTorch, loaded from a safetensors file in the nn.Sequential
/// layout of nn.Linear layers.
#[derive(Parser, Debug)]
#[command(name = "pytorch_model")]
struct Args {
    /// The safetensors file (default: train a small model and export it in PyTorch's layout).
    path: Option<PathBuf>,
    /// Number of test images to attack.
    #[arg(long, default_value_t = 10, value_parser = common::at_least_one)]
    images: usize,
    /// Hidden layers use ReLU (default: sigmoid).
    #[arg(long, conflicts_with = "tanh")]
    relu: bool,
    /// Hidden layers use tanh (default: sigmoid).
    #[arg(long)]
    tanh: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::exit_status(run(args))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let n_images = args.images;
    let hidden = if args.relu {
        Activation::Relu
    } else if args.tanh {
        Activation::Tanh
    } else {
        Activation::Sigmoid
    };
    let path = args.path;
    if let Some(p) = &path
        && !p.is_file()
    {
        return Err(format!("{}: no such file", p.display()).into());
    }
    let mnist = common::mnist()?;

    let path = match path {
        Some(p) => p,
        None => {
            let p = common::output_dir("pytorch_model").join("mlp.safetensors");
            std::fs::create_dir_all(p.parent().expect("has a parent"))?;
            println!(
                "no PATH given: training FC100-100-10 for 1 epoch and exporting it in PyTorch's layout"
            );
            let (mut mlp, cfg) = Preset::Fc100_100_10.build(1)?;
            let cfg = cfg.with_epochs(1)?;
            train(
                &mut mlp,
                mnist.train_images.view(),
                &mnist.train_labels,
                &cfg,
                |_, _| {},
            )?;
            write_pytorch_layout(&mlp, &p)?;
            p
        }
    };

    // Activations are not stored by PyTorch: give one per Linear layer.
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let probe = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .names()
        .iter()
        .filter(|n| n.ends_with("weight"))
        .count();
    let mut acts = vec![hidden; probe.saturating_sub(1)];
    acts.push(Activation::Identity);
    let mlp = Mlp::load_safetensors_with(&path, &acts)?;
    println!(
        "loaded {} : layers {:?}, test error {:.2}%",
        path.display(),
        mlp.sizes(),
        100.0 * mlp.error_rate(mnist.test_images.view(), &mnist.test_labels)?
    );

    let config = AttackConfig::default();
    println!("| image | label | target | success | RMS distortion | adversarial label |");
    println!("|------:|------:|-------:|:-------:|---------------:|------------------:|");
    if n_images > mnist.test_labels.len() {
        return Err(format!(
            "--images {n_images}: the test set has {} images",
            mnist.test_labels.len()
        )
        .into());
    }
    for i in 0..n_images {
        let x = mnist.test_images.row(i);
        let y = mlp.predict(x)?;
        let target = (y + 1) % 10;
        let res = find_minimal_perturbation(&mlp, x, Target::Label(target), &config)?;
        println!(
            "| {i:>5} | {y:>5} | {target:>6} | {:^7} | {:>14} | {:>17} |",
            if res.success() { "yes" } else { "no" },
            res.rms().map_or("-".into(), |r| format!("{r:.4}")),
            res.adversarial_label()
                .map_or("-".into(), |l| l.to_string()),
        );
    }
    Ok(())
}
