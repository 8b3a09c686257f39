//! Weight files written by an earlier version of the crate (before the model stack was unified)
//! still load, and the loaded models give the logits recorded then.
//!
//! `tests/fixtures/` holds, written by the then-current code (commit "models: weight fixtures and their logits"):
//! - `fc10.safetensors`: FC10(1e-4) trained 1 epoch on the first 2000 bundled MNIST images;
//! - `fc100_100_10.safetensors`: FC100-100-10 (its recipe, 1 epoch, 2000 images);
//! - `ae25_10.safetensors`: a sparse autoencoder 784→25 (2 epochs on 2000 images) with a
//!   softmax on its codes (5 epochs), stacked (the AE400-10 construction at a smaller width);
//! - `lenet.safetensors`: `Cnn::lenet(6, 16, 120, 7)` trained 1 epoch on 1000 images, written
//!   under PyTorch `nn.Sequential` names (`0` conv, `3` conv, `7` linear, `9` linear: the
//!   indices of `Conv2d, ReLU, MaxPool2d, Conv2d, ReLU, MaxPool2d, Flatten, Linear, ReLU,
//!   Linear`), `[out, in, kh, kw]` conv weights, F64, no metadata;
//! - `expected.safetensors`: four fixed input rows (`inputs`) and each model's logits on them
//!   (`<name>.logits`), computed by the code that wrote the files.
//!
//! The generator (an ignored test `write_fixtures` in this file) was removed with the old model
//! API it used; `git show <that commit>:tests/models_fixtures.rs` shows it.

use intriguing::models::Mlp;
use ndarray::{Array2, ArrayView2};
use safetensors::SafeTensors;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The four fixed input rows (`[4, 784]`, pixels in `[0, 1]`).
fn inputs() -> Array2<f64> {
    Array2::from_shape_fn((4, 784), |(i, j)| ((i * 31 + j * 7) % 23) as f64 / 22.0)
}

fn read_f64(st: &SafeTensors<'_>, name: &str) -> Array2<f64> {
    let t = st.tensor(name).unwrap();
    let v: Vec<f64> = t
        .data()
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    Array2::from_shape_vec((t.shape()[0], t.shape()[1]), v).unwrap()
}

fn expected(name: &str) -> (Array2<f64>, Array2<f64>) {
    let bytes = std::fs::read(fixture("expected.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    (
        read_f64(&st, "inputs"),
        read_f64(&st, &format!("{name}.logits")),
    )
}

fn assert_logits(name: &str, got: ArrayView2<'_, f64>, want: ArrayView2<'_, f64>) {
    assert_eq!(got.shape(), want.shape(), "{name}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-12 * w.abs().max(1.0),
            "{name}: logit {g} vs recorded {w}"
        );
    }
}

#[test]
fn fixture_inputs_are_the_recorded_ones() {
    let (x, _) = expected("fc10");
    assert_eq!(x, inputs());
}

#[test]
fn mlp_files_load_unchanged() {
    use intriguing::ClassifierExt;
    for name in ["fc10", "fc100_100_10", "ae25_10"] {
        let mlp = Mlp::load_safetensors(fixture(&format!("{name}.safetensors"))).unwrap();
        let (x, want) = expected(name);
        let got = mlp.logits(x.view()).unwrap();
        assert_logits(name, got.view(), want.view());
        // One row at a time (the attack's path) gives the same logits.
        for (i, row) in x.rows().into_iter().enumerate() {
            let z = mlp.logits(row.insert_axis(ndarray::Axis(0))).unwrap();
            assert_logits(name, z.view(), want.slice(ndarray::s![i..=i, ..]));
        }
    }
}

#[test]
fn pytorch_style_lenet_file_loads_into_lenet() {
    use intriguing::ClassifierExt;
    use intriguing::models::cnn::Cnn;
    // Any seed: every parameter comes from the file.
    let mut net = Cnn::lenet(6, 16, 120, 12345).unwrap();
    net.load_weights_safetensors(fixture("lenet.safetensors"))
        .unwrap();
    let (x, want) = expected("lenet");
    let got = net.logits(x.view()).unwrap();
    assert_logits("lenet", got.view(), want.view());
    // The same weights written by this crate and read back are bit-identical.
    let mut again = Cnn::lenet(6, 16, 120, 1).unwrap();
    again
        .load_weights_from_bytes(&net.to_safetensors_bytes().unwrap())
        .unwrap();
    assert_eq!(again, net);
    // A LeNet of another width is a typed error naming the tensor, and leaves the model as it was.
    let mut narrow = Cnn::lenet(4, 16, 120, 0).unwrap();
    let before = narrow.clone();
    match narrow.load_weights_safetensors(fixture("lenet.safetensors")) {
        Err(intriguing::Error::DataFormat(m)) => assert!(m.contains("0.weight"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(narrow, before);
}
