//! Cost of the MLP's evaluations. Targets (docs/models.md):
//! - `loss_gradient_into` with n = 1 on FC100-100-10 (~180k multiply-adds, no allocation):
//!   tens of microseconds;
//! - batched logits and training gradients: matrix-product throughput.
//!
//! Run: `cargo bench --bench models`.

use criterion::{Criterion, criterion_group, criterion_main};
use intriguing::Classifier;
use intriguing::classifier::softmax_cross_entropy;
use intriguing::models::Preset;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use std::hint::black_box;

fn inputs(n: usize) -> Array2<f64> {
    Array2::from_shape_fn((n, 784), |(i, j)| ((i * 31 + j * 7) % 256) as f64 / 255.0)
}

fn single_row(c: &mut Criterion) {
    for preset in [
        Preset::Fc10(1e-4),
        Preset::Fc100_100_10,
        Preset::Fc200_200_10,
        Preset::Fc500_150_10,
    ] {
        let mlp = preset.model(1).unwrap();
        let x = inputs(1);
        let mut grad = Array2::zeros((1, 784));
        let mut seed = |z: ArrayView2<'_, f64>, mut dz: ArrayViewMut2<'_, f64>| {
            softmax_cross_entropy(z.row(0), 3, dz.row_mut(0))
        };
        c.bench_function(&format!("{preset}/loss_gradient_into n=1"), |b| {
            b.iter(|| {
                mlp.loss_gradient_into(black_box(x.view()), &mut seed, grad.view_mut())
                    .unwrap()
            })
        });
        let mut out = Array2::zeros((1, 10));
        c.bench_function(&format!("{preset}/logits_into n=1"), |b| {
            b.iter(|| {
                mlp.logits_into(black_box(x.view()), out.view_mut())
                    .unwrap()
            })
        });
    }
}

fn batched(c: &mut Criterion) {
    let mlp = Preset::Fc100_100_10.model(1).unwrap();
    let x = inputs(1000);
    let mut out = Array2::zeros((1000, 10));
    c.bench_function("FC100-100-10/logits_into n=1000", |b| {
        b.iter(|| {
            mlp.logits_into(black_box(x.view()), out.view_mut())
                .unwrap()
        })
    });
    let xb = inputs(100);
    let labels: Vec<usize> = (0..100).map(|i| i % 10).collect();
    c.bench_function("FC100-100-10/gradients (weights) batch=100", |b| {
        b.iter(|| mlp.gradients(black_box(xb.view()), &labels).unwrap())
    });
}

criterion_group!(benches, single_row, batched);
criterion_main!(benches);
