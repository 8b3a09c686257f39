//! Weight files written by an earlier version of the crate (before the model stack was unified)
//! still load, and the loaded models give the logits recorded then.
//!
//! `tests/fixtures/` holds, written by `write_fixtures` below at commit "models: fixtures":
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
    use intriguing::Classifier;
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

/// Writes the fixtures with the code of this commit: `cargo test --release --test
/// models_fixtures -- --ignored write_fixtures`.
#[test]
#[ignore]
fn write_fixtures() {
    use intriguing::Classifier;
    use intriguing::data::Mnist;
    use intriguing::models::autoencoder::{SoftmaxConfig, SparseAeConfig, SparseAutoencoder};
    use intriguing::models::cnn::{Cnn, CnnLayer, CnnTrainConfig, train_cnn};
    use intriguing::models::{Preset, train};
    use safetensors::Dtype;
    use safetensors::tensor::TensorView;

    std::fs::create_dir_all(fixture("")).unwrap();
    let mnist = Mnist::bundled().unwrap().take(2000, 10).unwrap();
    let (xt, yt) = (mnist.train_images.view(), &mnist.train_labels[..]);
    let x = inputs();
    let mut logits: Vec<(String, Array2<f64>)> = vec![("inputs".into(), x.clone())];

    let (mut fc10, cfg) = Preset::Fc10(1e-4).build(0).unwrap();
    train(&mut fc10, xt, yt, &cfg.with_epochs(1).unwrap(), |_, _| {}).unwrap();
    fc10.save_safetensors(fixture("fc10.safetensors")).unwrap();
    logits.push(("fc10.logits".into(), fc10.logits(x.view()).unwrap()));

    let (mut fc100, cfg) = Preset::Fc100_100_10.build(0).unwrap();
    train(&mut fc100, xt, yt, &cfg.with_epochs(1).unwrap(), |_, _| {}).unwrap();
    fc100
        .save_safetensors(fixture("fc100_100_10.safetensors"))
        .unwrap();
    logits.push(("fc100_100_10.logits".into(), fc100.logits(x.view()).unwrap()));

    let ae_cfg = SparseAeConfig::default()
        .with_hidden(25)
        .unwrap()
        .with_epochs(2)
        .unwrap();
    let mut ae = SparseAutoencoder::random(784, 25, 0).unwrap();
    ae.train(xt, &ae_cfg, |_| {}).unwrap();
    let sm = ae
        .train_softmax(xt, yt, 10, &SoftmaxConfig::default().with_epochs(5).unwrap())
        .unwrap();
    let stacked = ae.stack(sm).unwrap();
    stacked
        .save_safetensors(fixture("ae25_10.safetensors"))
        .unwrap();
    logits.push(("ae25_10.logits".into(), stacked.logits(x.view()).unwrap()));

    let mut lenet = Cnn::lenet(6, 16, 120, 7).unwrap();
    let (x1, y1) = (xt.slice(ndarray::s![..1000, ..]), &yt[..1000]);
    train_cnn(&mut lenet, x1, y1, &CnnTrainConfig::new(), |_, _| {}).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let bytes = |it: &mut dyn Iterator<Item = &f64>| -> Vec<u8> {
        it.flat_map(|v| v.to_le_bytes()).collect()
    };
    let torch_index = [0usize, 3, 7, 9];
    let mut k = 0;
    for l in lenet.layers() {
        match l {
            CnnLayer::Conv2d(c) => {
                let w = c.weight();
                tensors.push((
                    format!("{}.weight", torch_index[k]),
                    w.shape().to_vec(),
                    bytes(&mut w.iter()),
                ));
                tensors.push((
                    format!("{}.bias", torch_index[k]),
                    vec![c.bias().len()],
                    bytes(&mut c.bias().iter()),
                ));
                k += 1;
            }
            CnnLayer::Linear(lin) => {
                tensors.push((
                    format!("{}.weight", torch_index[k]),
                    lin.weight.shape().to_vec(),
                    bytes(&mut lin.weight.iter()),
                ));
                tensors.push((
                    format!("{}.bias", torch_index[k]),
                    vec![lin.bias.len()],
                    bytes(&mut lin.bias.iter()),
                ));
                k += 1;
            }
            _ => {}
        }
    }
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::F64, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(
        fixture("lenet.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    logits.push(("lenet.logits".into(), lenet.logits(x.view()).unwrap()));

    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = logits
        .iter()
        .map(|(n, a)| (n.clone(), a.shape().to_vec(), bytes(&mut a.iter())))
        .collect();
    let views: Vec<(String, TensorView<'_>)> = raw
        .iter()
        .map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::F64, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(
        fixture("expected.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
}
