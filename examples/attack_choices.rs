//! Measurements behind two choices of the paper's attack (`find_minimal_perturbation`), on
//! FC100-100-10 trained on the bundled MNIST, the first `--images` correctly classified test
//! images, untargeted:
//!
//! - `warm-start`: DeepFool as an initial-c estimate. The default first c is estimated from
//!   one gradient at `x` (`InitialC::Auto`, linearised distance `d₀ = loss/‖∇loss‖`,
//!   `c₀ = ‖∇loss‖² / (2·loss)`); the DeepFool variant replaces `d₀` by DeepFool's distance
//!   `d_DF` (`c₀ = ‖∇loss‖ / (2·d_DF)`) and counts DeepFool's gradient rows as cost.
//!
//! - `cw-loss`: the classification loss of the c search — cross-entropy (the paper's) with and
//!   without the boundary refinement, and the Carlini–Wagner margin
//!   `max(max_{j≠t} z_j − z_t, −κ)` — by distortion and work, untargeted and targeted
//!   (label `y + 1 mod 10`).
//!
//! ```text
//! cargo run --release --example attack_choices -- [--images N] [--epochs E] [--docs]
//! cargo run --release --example attack_choices -- --help
//! ```
//!
//! `--docs` writes the tables into `docs/attacks.md` between the `warm-start` and `cw-loss`
//! markers.

mod common;

use clap::Parser;
use intriguing::ClassifierExt;
use intriguing::attack::{
    AttackConfig, AttackLoss, AttackObjective, DeepFoolConfig, Target, deepfool,
    find_minimal_perturbation,
};
use intriguing::models::{Preset, train};
use intriguing::optim::Objective;
use ndarray::Array2;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// Measurements behind two choices of the paper's attack on FC100-100-10 (MNIST): DeepFool
/// as an initial-c estimate, and the classification loss of the c search (cross-entropy with
/// and without boundary refinement vs the Carlini–Wagner margin).
#[derive(Parser, Debug)]
#[command(name = "attack_choices")]
struct Args {
    /// Number of correctly classified test images (the first N; 1 to 10 000).
    #[arg(long, default_value_t = 100, value_parser = common::test_images)]
    images: usize,
    /// Training epochs (the FC100-100-10 preset recipe cut to E epochs).
    #[arg(long, default_value_t = 3, value_parser = common::at_least_one)]
    epochs: usize,
    /// Also write the tables into docs/attacks.md.
    #[arg(long)]
    docs: bool,
}

fn main() -> ExitCode {
    common::exit_status(run(Args::parse()))
}

#[derive(Default)]
struct Sum {
    rows: usize,
    fooled: usize,
    l2: f64,
    grads: f64,
    runs: f64,
}

impl Sum {
    fn add(&mut self, l2: Option<f64>, grads: usize, runs: usize) {
        self.rows += 1;
        if let Some(d) = l2 {
            self.fooled += 1;
            self.l2 += d;
        }
        self.grads += grads as f64;
        self.runs += runs as f64;
    }
    fn row(&self, name: &str) -> String {
        format!(
            "| {name} | {}/{} | {:.4} | {:.1} | {:.2} |",
            self.fooled,
            self.rows,
            self.l2 / self.fooled.max(1) as f64,
            self.grads / self.rows as f64,
            self.runs / self.rows as f64
        )
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let Args {
        images: n,
        epochs,
        docs,
    } = args;
    let mnist = common::mnist()?;
    let (mut mlp, cfg) = Preset::Fc100_100_10.build(0)?;
    train(
        &mut mlp,
        mnist.train_images.view(),
        &mnist.train_labels,
        &cfg.with_epochs(epochs)?,
        |_, _| {},
    )?;
    let pred = mlp.predict_batch(mnist.test_images.view())?;
    let idx: Vec<usize> = (0..pred.len())
        .filter(|&i| pred[i] == mnist.test_labels[i])
        .take(n)
        .collect();
    let mut x = Array2::zeros((idx.len(), 784));
    for (mut r, &i) in x.rows_mut().into_iter().zip(&idx) {
        r.assign(&mnist.test_images.row(i));
    }
    let y: Vec<usize> = idx.iter().map(|&i| mnist.test_labels[i]).collect();

    // Warm start: DeepFool's distance as the initial-c estimate.
    let base = AttackConfig::default();
    let df = deepfool(&mlp, x.view(), &y, &DeepFoolConfig::default(), 1)?;
    let (mut auto, mut warm) = (Sum::default(), Sum::default());
    for (i, &label) in y.iter().enumerate() {
        let target = Target::Untargeted { true_label: label };
        let r = find_minimal_perturbation(&mlp, x.row(i), target, &base)?;
        auto.add(r.l2(), r.gradient_evaluations, r.runs);

        let d = df[i].as_ref().map_err(|e| e.to_string())?;
        let mut obj = AttackObjective::new(
            &mlp,
            x.row(i),
            Target::Untargeted { true_label: label },
            0.0,
            &base,
        )?;
        let mut g = vec![0.0; 784];
        let xs = x.row(i).to_vec();
        let loss = obj.value_gradient(&xs, &mut g)?;
        let gn = g.iter().map(|v| v * v).sum::<f64>().sqrt();
        let c0 = match d.adversarial.as_ref() {
            Some(a) if a.l2 > 0.0 => gn / (2.0 * a.l2),
            _ => gn * gn / (2.0 * loss),
        };
        let cfg = base.clone().with_initial_c(c0)?;
        let r = find_minimal_perturbation(&mlp, x.row(i), target, &cfg)?;
        warm.add(
            r.l2(),
            r.gradient_evaluations + 1 + d.gradient_evaluations,
            r.runs,
        );
    }
    let mut t = String::new();
    writeln!(
        t,
        "Command: `cargo run --release --example attack_choices -- --images {n} --epochs {epochs} --docs` \
         (FC100-100-10, preset recipe cut to {epochs} epochs; untargeted; default `AttackConfig`).\n"
    )?;
    writeln!(
        t,
        "| initial c | fooled | mean ‖r‖₂ | gradient evaluations / image | L-BFGS-B runs / image |"
    )?;
    writeln!(t, "|---|---:|---:|---:|---:|")?;
    writeln!(t, "{}", auto.row("`InitialC::Auto` (default)"))?;
    writeln!(
        t,
        "{}",
        warm.row("from DeepFool's ‖r‖ (DeepFool's gradient rows included)")
    )?;
    print!("{t}");

    // The loss of the c search.
    let mut u = String::new();
    writeln!(
        u,
        "Command: `cargo run --release --example attack_choices -- --images {n} --epochs {epochs} --docs` \
         (FC100-100-10, preset recipe cut to {epochs} epochs; default `AttackConfig` but for the \
         loss and the refinement; refinement = 3 rounds of 8 predictions).\n"
    )?;
    writeln!(
        u,
        "| target | loss | refinement | fooled | mean ‖r‖₂ | median ‖r‖₂ | gradient evaluations / image | predictions / image |"
    )?;
    writeln!(u, "|---|---|---|---:|---:|---:|---:|---:|")?;
    let variants: [(&str, AttackLoss, bool); 6] = [
        ("cross-entropy (default)", AttackLoss::CrossEntropy, true),
        ("cross-entropy", AttackLoss::CrossEntropy, false),
        ("margin κ = 0", AttackLoss::Margin { kappa: 0.0 }, false),
        ("margin κ = 0", AttackLoss::Margin { kappa: 0.0 }, true),
        ("margin κ = 0.1", AttackLoss::Margin { kappa: 0.1 }, false),
        ("margin κ = 0.1", AttackLoss::Margin { kappa: 0.1 }, true),
    ];
    for tname in ["untargeted", "y + 1 mod 10"] {
        for (lname, loss, refine) in variants {
            let cfg = base
                .clone()
                .with_loss(loss)?
                .with_refinement(if refine { 3 } else { 0 }, 8)?;
            let (mut d, mut grads, mut preds) = (Vec::new(), 0usize, 0usize);
            for (i, &label) in y.iter().enumerate() {
                let target = if tname == "untargeted" {
                    Target::Untargeted { true_label: label }
                } else {
                    Target::Label((label + 1) % 10)
                };
                let r = find_minimal_perturbation(&mlp, x.row(i), target, &cfg)?;
                if let Some(l2) = r.l2() {
                    d.push(l2);
                }
                grads += r.gradient_evaluations;
                preds += r.predictions;
            }
            let fooled = d.len();
            let mean = d.iter().sum::<f64>() / fooled.max(1) as f64;
            d.sort_by(f64::total_cmp);
            let median = d.get(fooled / 2).copied().unwrap_or(f64::NAN);
            let rows = y.len() as f64;
            writeln!(
                u,
                "| {tname} | {lname} | {} | {fooled}/{} | {mean:.4} | {median:.4} | {:.1} | {:.1} |",
                if refine { "yes" } else { "no" },
                y.len(),
                grads as f64 / rows,
                preds as f64 / rows
            )?;
        }
    }
    print!("{u}");
    if docs {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/attacks.md");
        let doc = std::fs::read_to_string(&path)?;
        let doc = common::replace_between_markers(&doc, "warm-start", &t)?;
        std::fs::write(&path, common::replace_between_markers(&doc, "cw-loss", &u)?)?;
    }
    Ok(())
}
