//! `Mlp::loss_gradient_into` with one row does not allocate in steady state (counted by a
//! global allocator), so attacks can call it in their inner loop.

use intriguing::classifier::softmax_cross_entropy;
use intriguing::models::{Activation, Mlp};
use intriguing::{Classifier, ClassifierExt};
use ndarray::{Array2, ArrayView2, ArrayViewMut2};

mod counting_alloc;
use counting_alloc::allocations;

#[test]
fn single_row_gradient_and_logits_do_not_allocate_in_steady_state() {
    for act in [Activation::Sigmoid, Activation::Relu] {
        let mlp = Mlp::random(&[784, 100, 100, 10], act, 3).unwrap();
        let x = Array2::from_shape_fn((1, 784), |(_, j)| (j % 13) as f64 / 13.0);
        let mut grad = Array2::zeros((1, 784));
        let mut logits = Array2::zeros((1, 10));
        let mut seed = |z: ArrayView2<'_, f64>, mut dz: ArrayViewMut2<'_, f64>| {
            softmax_cross_entropy(z.row(0), 4, dz.row_mut(0))
        };
        // Warm-up: the per-thread scratch grows once.
        let first = mlp
            .loss_gradient_into(x.view(), &mut seed, grad.view_mut())
            .unwrap();
        let before = allocations();
        let mut last = 0.0;
        for _ in 0..100 {
            last = mlp
                .loss_gradient_into(x.view(), &mut seed, grad.view_mut())
                .unwrap();
            mlp.logits_into(x.view(), logits.view_mut()).unwrap();
        }
        let after = allocations();
        assert_eq!(
            after - before,
            0,
            "{act}: {} allocations in 100 calls",
            after - before
        );
        assert_eq!(first, last);
        // And the allocation-free result is the validated one.
        let (l, g) = mlp.cross_entropy_gradient(x.row(0), 4).unwrap();
        assert_eq!(l, last);
        assert_eq!(g, grad.row(0));
    }
}
