//! Safetensors weights I/O: bit-exact round trip, the PyTorch `nn.Sequential` layout, and
//! typed errors on missing, mis-shaped or foreign tensors.

use intriguing::models::{Activation, Dense, Mlp};
use intriguing::{ClassifierExt, Error};
use ndarray::{Array1, Array2, array};
use proptest::prelude::*;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, serialize};
use std::collections::HashMap;
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

fn mixed_mlp() -> Mlp {
    Mlp::random_with(
        &[7, 5, 4, 3, 2],
        |i| {
            [
                Activation::Sigmoid,
                Activation::Relu,
                Activation::Tanh,
                Activation::Identity,
            ][i]
        },
        9,
    )
    .unwrap()
}

/// A file from named little-endian tensors `(name, dtype, shape, bytes)` and metadata.
fn file(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)], meta: Option<(&str, &str)>) -> Vec<u8> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let meta = meta.map(|(k, v)| HashMap::from([(k.to_string(), v.to_string())]));
    serialize(views, meta).unwrap()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn assert_format_error(r: intriguing::Result<Mlp>, needle: &str) {
    match r {
        Err(Error::DataFormat(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        other => panic!("expected DataFormat({needle}), got {other:?}"),
    }
}

#[test]
fn round_trip_is_bit_exact_through_a_file() {
    let mlp = mixed_mlp();
    let path = tmp("round_trip.safetensors");
    mlp.save_safetensors(&path).unwrap();
    let back = Mlp::load_safetensors(&path).unwrap();
    assert_eq!(back, mlp);
    assert_eq!(back.activations(), mlp.activations());
    // The same file with the activations given explicitly overrides the metadata.
    let relu = Mlp::load_safetensors_with(&path, &[Activation::Relu; 4]).unwrap();
    assert_eq!(relu.activations(), vec![Activation::Relu; 4]);
    assert_eq!(relu.layers()[2].weight, mlp.layers()[2].weight);
    // The header carries the documented names, shapes and metadata.
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let w1 = st.tensor("layers.1.weight").unwrap();
    assert_eq!((w1.dtype(), w1.shape()), (Dtype::F64, &[4usize, 5][..]));
    assert_eq!(st.tensor("layers.3.bias").unwrap().shape(), &[2]);
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(
        meta.metadata().as_ref().unwrap()["activations"],
        "sigmoid,relu,tanh,identity"
    );
}

#[test]
fn pytorch_sequential_layout_in_f32_loads() {
    // What `safetensors.torch.save_file(nn.Sequential(nn.Linear(3, 2), nn.ReLU(),
    // nn.Linear(2, 2)).state_dict(), ...)` writes: indices 0 and 2, F32, no metadata.
    let w0 = [0.5f32, -1.0, 0.25, 2.0, 0.125, -0.5];
    let b0 = [0.1f32, -0.2];
    let w2 = [1.0f32, 3.0, -2.0, 0.5];
    let b2 = [0.0f32, 1.5];
    for prefix in ["", "net."] {
        let bytes = file(
            &[
                (
                    &format!("{prefix}0.weight"),
                    Dtype::F32,
                    vec![2, 3],
                    f32_bytes(&w0),
                ),
                (
                    &format!("{prefix}0.bias"),
                    Dtype::F32,
                    vec![2],
                    f32_bytes(&b0),
                ),
                (
                    &format!("{prefix}2.weight"),
                    Dtype::F32,
                    vec![2, 2],
                    f32_bytes(&w2),
                ),
                (
                    &format!("{prefix}2.bias"),
                    Dtype::F32,
                    vec![2],
                    f32_bytes(&b2),
                ),
            ],
            None,
        );
        assert_format_error(Mlp::from_safetensors_bytes(&bytes), "load_safetensors_with");
        let mlp =
            Mlp::from_safetensors_bytes_with(&bytes, &[Activation::Relu, Activation::Identity])
                .unwrap();
        assert_eq!(mlp.sizes(), vec![3, 2, 2]);
        assert_eq!(
            mlp.layers()[0].weight,
            array![[0.5, -1.0, 0.25], [2.0, 0.125, -0.5]]
        );
        assert_eq!(mlp.layers()[0].bias[1], f64::from(-0.2f32));
        // Logits by hand: h = relu(W0 x + b0), z = W2 h + b2.
        let x = array![1.0, 2.0, 4.0];
        let h = (mlp.layers()[0].weight.dot(&x) + &mlp.layers()[0].bias).mapv(|v| v.max(0.0));
        let z = array![[1.0, 3.0], [-2.0, 0.5]].dot(&h) + array![0.0, 1.5];
        let got = mlp.logits_one(x.view()).unwrap();
        assert!((got - z).iter().all(|d| d.abs() < 1e-12));
        assert_format_error(
            Mlp::from_safetensors_bytes_with(&bytes, &[Activation::Relu]),
            "2 layers",
        );
    }
}

#[test]
fn layers_are_ordered_numerically_not_lexically() {
    // Indices 2 and 10: "10" < "2" as strings.
    let bytes = file(
        &[
            ("10.weight", Dtype::F64, vec![1, 2], f64_bytes(&[1.0, 1.0])),
            ("10.bias", Dtype::F64, vec![1], f64_bytes(&[0.0])),
            ("2.weight", Dtype::F64, vec![2, 3], f64_bytes(&[1.0; 6])),
            ("2.bias", Dtype::F64, vec![2], f64_bytes(&[0.0; 2])),
        ],
        None,
    );
    let mlp = Mlp::from_safetensors_bytes_with(&bytes, &[Activation::Tanh, Activation::Identity])
        .unwrap();
    assert_eq!(mlp.sizes(), vec![3, 2, 1]);
}

#[test]
fn missing_and_mis_shaped_tensors_are_typed_errors() {
    let mlp = Mlp::new(vec![
        Dense::new(Array2::ones((3, 4)), Array1::zeros(3), Activation::Sigmoid).unwrap(),
        Dense::new(Array2::ones((2, 3)), Array1::zeros(2), Activation::Identity).unwrap(),
    ])
    .unwrap();
    let good = mlp.to_safetensors_bytes().unwrap();
    assert_eq!(Mlp::from_safetensors_bytes(&good).unwrap(), mlp);
    let meta = Some(("activations", "sigmoid,identity"));
    let t = |name: &'static str, shape: Vec<usize>| {
        let n: usize = shape.iter().product();
        (name, Dtype::F64, shape, f64_bytes(&vec![0.5; n]))
    };

    // A missing bias.
    let f = file(
        &[
            t("layers.0.weight", vec![3, 4]),
            t("layers.0.bias", vec![3]),
            t("layers.1.weight", vec![2, 3]),
        ],
        meta,
    );
    assert_format_error(
        Mlp::from_safetensors_bytes(&f),
        "missing tensor layers.1.bias",
    );
    // A missing first layer.
    let f = file(
        &[
            t("layers.1.weight", vec![2, 3]),
            t("layers.1.bias", vec![2]),
        ],
        meta,
    );
    assert_format_error(
        Mlp::from_safetensors_bytes(&f),
        "missing tensor layers.0.weight",
    );
    // A bias of the wrong length.
    let f = file(
        &[
            t("layers.0.weight", vec![3, 4]),
            t("layers.0.bias", vec![4]),
            t("layers.1.weight", vec![2, 3]),
            t("layers.1.bias", vec![2]),
        ],
        meta,
    );
    assert_format_error(Mlp::from_safetensors_bytes(&f), "layers.0.bias");
    // Layers that do not chain (3 outputs feeding 5 inputs).
    let f = file(
        &[
            t("layers.0.weight", vec![3, 4]),
            t("layers.0.bias", vec![3]),
            t("layers.1.weight", vec![2, 5]),
            t("layers.1.bias", vec![2]),
        ],
        meta,
    );
    assert_format_error(Mlp::from_safetensors_bytes(&f), "layers.1.weight");
    // A weight that is not a matrix.
    let f = file(
        &[
            t("layers.0.weight", vec![3, 4, 1]),
            t("layers.0.bias", vec![3]),
            t("layers.1.weight", vec![2, 3]),
            t("layers.1.bias", vec![2]),
        ],
        meta,
    );
    assert_format_error(Mlp::from_safetensors_bytes(&f), "[out, in]");
    // An unsupported dtype.
    let f = file(
        &[
            ("layers.0.weight", Dtype::I32, vec![1, 1], vec![0; 4]),
            ("layers.0.bias", Dtype::F64, vec![1], f64_bytes(&[0.0])),
        ],
        Some(("activations", "identity")),
    );
    assert_format_error(Mlp::from_safetensors_bytes(&f), "dtype");
    // No layer tensors at all, a bad activation name, a wrong activation count.
    let f = file(&[t("embedding", vec![2])], meta);
    assert_format_error(Mlp::from_safetensors_bytes(&f), "no layer weights");
    let mut renamed = good.clone();
    let pos = renamed.windows(7).position(|w| w == b"sigmoid").unwrap();
    renamed[pos..pos + 7].copy_from_slice(b"sigmoix");
    assert_format_error(Mlp::from_safetensors_bytes(&renamed), "sigmoix");
    assert_format_error(
        Mlp::from_safetensors_bytes_with(&good, &[Activation::Relu; 3]),
        "3 activations",
    );
    // NaN weights.
    let mut nan = vec![
        t("layers.0.weight", vec![3, 4]),
        t("layers.0.bias", vec![3]),
    ];
    nan[0].3[..8].copy_from_slice(&f64::NAN.to_le_bytes());
    let f = file(&nan, Some(("activations", "identity")));
    assert!(matches!(
        Mlp::from_safetensors_bytes(&f),
        Err(Error::NonFinite { .. })
    ));
    // Not a safetensors file; a truncated one (its last tensor, in data order, is cut: the
    // writer orders tensors of one dtype by name); a missing file.
    assert!(matches!(
        Mlp::from_safetensors_bytes(b"definitely not safetensors"),
        Err(Error::Safetensors(_))
    ));
    match Mlp::from_safetensors_bytes(&good[..good.len() - 3]) {
        Err(Error::SafetensorsTensor { tensor, .. }) => assert_eq!(tensor, "layers.1.weight"),
        other => panic!("expected SafetensorsTensor, got {other:?}"),
    }
    assert!(matches!(
        Mlp::load_safetensors(tmp("does_not_exist.safetensors")),
        Err(Error::Io(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Arbitrary bytes, and valid files with bytes flipped, never panic.
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200),
                            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4)) {
        let _ = Mlp::from_safetensors_bytes(&bytes);
        let mut good = mixed_mlp().to_safetensors_bytes().unwrap();
        let len = good.len();
        for (i, b) in flips {
            good[i % len] ^= b;
        }
        let _ = Mlp::from_safetensors_bytes(&good);
        let _ = Mlp::from_safetensors_bytes_with(&good, &[Activation::Relu; 4]);
    }
}

#[test]
fn a_file_without_tensors_says_so() {
    // An 8-byte header length, then the JSON header `{}`: a valid safetensors file with nothing in it.
    let mut bytes = 2u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    assert_format_error(Mlp::from_safetensors_bytes(&bytes), "no tensors");
    assert_format_error(
        Mlp::from_safetensors_bytes_with(&bytes, &[Activation::Identity]),
        "no tensors",
    );
    let mut net = intriguing::models::cnn::Cnn::lenet(2, 3, 8, 0).unwrap();
    assert!(matches!(
        net.load_weights_from_bytes(&bytes),
        Err(Error::DataFormat(m)) if m.contains("no tensors")
    ));
}

/// A file from a JSON header written by hand and a data section of `data_len` zero bytes.
fn crafted(header: &str, data_len: usize) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(bytes.len() + data_len, 0);
    bytes
}

/// The name carried by an [`Error::SafetensorsTensor`], on every loading path.
fn tensor_named(bytes: &[u8]) -> Vec<String> {
    let mut net = Mlp::random(&[2, 2, 2], Activation::Sigmoid, 0).unwrap();
    let results = [
        Mlp::from_safetensors_bytes(bytes).err(),
        Mlp::from_safetensors_bytes_with(bytes, &[Activation::Sigmoid; 2]).err(),
        net.load_weights_from_bytes(bytes).err(),
    ];
    results
        .into_iter()
        .map(|e| match e {
            Some(Error::SafetensorsTensor { tensor, source }) => {
                // The message names the tensor and keeps the crate's own words.
                let msg = Error::SafetensorsTensor {
                    tensor: tensor.clone(),
                    source,
                }
                .to_string();
                assert!(msg.contains(&format!("{tensor:?}")), "{msg}");
                tensor
            }
            other => panic!("expected SafetensorsTensor, got {other:?}"),
        })
        .collect()
}

#[test]
fn safetensors_crate_errors_name_the_tensor() {
    let meta = r#""__metadata__":{"activations":"sigmoid,sigmoid"}"#;
    let ok_w0 = r#""layers.0.weight":{"dtype":"F64","shape":[2,2],"data_offsets":[0,32]}"#;
    let ok_b0 = r#""layers.0.bias":{"dtype":"F64","shape":[2],"data_offsets":[32,48]}"#;
    // A byte range (16 bytes) that does not match the shape and dtype (2x2 F64 = 32 bytes):
    // the crate says only "invalid shape, data type, or offset for tensor".
    let bad_size = r#""layers.1.weight":{"dtype":"F64","shape":[2,2],"data_offsets":[48,64]}"#;
    let b1 = |s: usize| {
        format!(
            r#""layers.1.bias":{{"dtype":"F64","shape":[2],"data_offsets":[{s},{}]}}"#,
            s + 16
        )
    };
    let header = format!("{{{meta},{ok_w0},{ok_b0},{bad_size},{}}}", b1(64));
    assert_eq!(tensor_named(&crafted(&header, 80)), ["layers.1.weight"; 3]);

    // An unknown dtype: the crate reports a JSON error at a column of the header.
    let bad_dtype = r#""layers.1.weight":{"dtype":"F99","shape":[2,2],"data_offsets":[48,80]}"#;
    let header = format!("{{{meta},{ok_w0},{ok_b0},{bad_dtype},{}}}", b1(80));
    assert_eq!(tensor_named(&crafted(&header, 96)), ["layers.1.weight"; 3]);

    // A gap in the data section (the bias starts 8 bytes after the weight ends).
    let header = format!(
        "{{{meta},{ok_w0},{}}}",
        b1(40).replace("layers.1", "layers.0")
    );
    assert_eq!(tensor_named(&crafted(&header, 56)), ["layers.0.bias"; 3]);

    // A shape whose size overflows usize.
    let huge = r#""layers.0.weight":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,32]}"#;
    let header = format!("{{{meta},{huge},{ok_b0}}}");
    assert_eq!(tensor_named(&crafted(&header, 48)), ["layers.0.weight"; 3]);

    // Every tensor is fine on its own, but the data section is 8 bytes longer than the last
    // tensor's end: the last one is named.
    let header = format!("{{{meta},{ok_w0},{ok_b0}}}");
    assert_eq!(tensor_named(&crafted(&header, 56)), ["layers.0.bias"; 3]);
    // ... and the same file with the right length loads.
    assert!(
        Mlp::from_safetensors_bytes_with(&crafted(&header, 48), &[Activation::Sigmoid]).is_ok()
    );

    // Errors that are not about one tensor stay Error::Safetensors.
    assert!(matches!(
        Mlp::from_safetensors_bytes(&crafted("{not json", 0)),
        Err(Error::Safetensors(_))
    ));
    assert!(matches!(
        Mlp::from_safetensors_bytes(&[1, 2, 3]),
        Err(Error::Safetensors(_))
    ));
}
