//! The bundled MNIST and an FC100-100-10 trained briefly on it, shared by the MNIST attack
//! tests (`#[path]`-included; this file itself has no tests).

use intriguing::data::Mnist;
use intriguing::models::{Mlp, Preset, train};

/// The first `train_rows` training and `test_rows` test images of the bundled MNIST, and an
/// FC100-100-10 built with the preset's recipe from `seed`, trained `epochs` epochs on them.
pub fn brief_fc100(train_rows: usize, test_rows: usize, seed: u64, epochs: usize) -> (Mlp, Mnist) {
    let mnist = Mnist::load(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/mnist"))
        .expect("bundled MNIST")
        .take(train_rows, test_rows)
        .unwrap();
    let (mut mlp, cfg) = Preset::Fc100_100_10.build(seed).unwrap();
    let cfg = cfg.with_epochs(epochs).unwrap();
    train(
        &mut mlp,
        mnist.train_images.view(),
        &mnist.train_labels,
        &cfg,
        |_, _| {},
    )
    .unwrap();
    (mlp, mnist)
}
