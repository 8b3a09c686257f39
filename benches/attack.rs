//! Criterion benches of one attack on MNIST-trained FC100-100-10 and FC500-150-10, targeted
//! and nearest (one thread), plus an optional whole-test-set untargeted run.
//!
//! ```text
//! cargo bench --bench attack                      # criterion groups
//! ATTACK_BENCH_FULL=1 cargo bench --bench attack  # + 10 000 test images untargeted, 2 threads
//! ```
//!
//! Targets (docs/attack.md, one core): FC100-100-10 targeted ≤ 4 ms, nearest ≤ 23 ms,
//! FC500-150-10 targeted ≤ 32 ms; the whole test set untargeted on FC100-100-10 ≤ 2 min on
//! 2 cores. Models are trained once with the presets' recipe shortened to a few epochs and
//! cached under `target/attack_bench/`.

use criterion::{Criterion, criterion_group, criterion_main};
use intriguing::Classifier;
use intriguing::attack::{AttackConfig, Target, attack_batch, find_minimal_perturbation};
use intriguing::data::Mnist;
use intriguing::models::{Mlp, Preset, train};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

fn model(preset: Preset, epochs: usize, mnist: &Mnist) -> Mlp {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/attack_bench");
    let path = dir.join(format!("{preset}_{epochs}ep.safetensors"));
    if let Ok(m) = Mlp::load_safetensors(&path) {
        return m;
    }
    let t = Instant::now();
    let (mut mlp, cfg) = preset.build(0).expect("preset");
    let cfg = cfg.with_epochs(epochs).expect("epochs");
    train(
        &mut mlp,
        mnist.train_images.view(),
        &mnist.train_labels,
        &cfg,
        |_, _| {},
    )
    .expect("training");
    let _ = std::fs::create_dir_all(&dir);
    let _ = mlp.save_safetensors(&path);
    eprintln!(
        "trained {preset} for {epochs} epochs in {:.1?}: test error {:.2}%",
        t.elapsed(),
        100.0
            * mlp
                .error_rate(mnist.test_images.view(), &mnist.test_labels)
                .unwrap()
    );
    mlp
}

fn bench(c: &mut Criterion) {
    let mnist = Mnist::bundled().expect("bundled MNIST");
    let config = AttackConfig::default();
    let n_images = 20;
    for (preset, epochs) in [(Preset::Fc100_100_10, 5), (Preset::Fc500_150_10, 3)] {
        let mlp = model(preset, epochs, &mnist);
        let xs = mnist
            .test_images
            .slice(ndarray::s![..n_images, ..])
            .to_owned();
        let preds = mlp.predict_batch(xs.view()).unwrap();
        let mut group = c.benchmark_group(format!("attack/{preset}"));
        group.sample_size(10);
        for kind in ["targeted", "nearest"] {
            // Distortion and work on the same images, for the record.
            let (mut rms, mut evals, mut ok) = (0.0, 0usize, 0usize);
            let target_of = |i: usize| match kind {
                "targeted" => Target::Label((preds[i] + 1 + i % 9) % 10),
                _ => Target::Nearest {
                    true_label: preds[i],
                },
            };
            for i in 0..n_images {
                let r = find_minimal_perturbation(&mlp, xs.row(i), target_of(i), &config).unwrap();
                if let Some(v) = r.rms() {
                    rms += v;
                    ok += 1;
                }
                evals += r.gradient_evaluations;
            }
            eprintln!(
                "{preset} {kind}: {ok}/{n_images} success, mean RMS {:.4}, {:.1} gradient evaluations / example",
                rms / ok.max(1) as f64,
                evals as f64 / n_images as f64
            );
            let mut i = 0;
            group.bench_function(kind, |b| {
                b.iter(|| {
                    let k = i % n_images;
                    i += 1;
                    black_box(
                        find_minimal_perturbation(&mlp, xs.row(k), target_of(k), &config).unwrap(),
                    )
                })
            });
        }
        group.finish();

        if preset == Preset::Fc100_100_10 && std::env::var_os("ATTACK_BENCH_FULL").is_some() {
            let all = mnist.test_images.view();
            let labels = mlp.predict_batch(all).unwrap();
            let targets: Vec<Target> = labels
                .iter()
                .map(|&y| Target::Untargeted { true_label: y })
                .collect();
            let t = Instant::now();
            let res = attack_batch(&mlp, all, &targets, &config, 2).unwrap();
            let secs = t.elapsed().as_secs_f64();
            let ok: Vec<f64> = res.iter().filter_map(|r| r.as_ref().ok()?.rms()).collect();
            eprintln!(
                "{preset} untargeted, all {} test images, 2 threads: {secs:.1} s, {} successes, mean RMS {:.4}",
                res.len(),
                ok.len(),
                ok.iter().sum::<f64>() / ok.len().max(1) as f64
            );
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
