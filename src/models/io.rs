//! Weights I/O in the safetensors format.
//!
//! Any [`Sequential`] model writes its weights with `to_safetensors_bytes` /
//! `save_safetensors` (an [`Mlp`] adds its activations to the metadata, so the file alone
//! rebuilds it) and reads weights into a model of known architecture with
//! [`Sequential::load_weights_safetensors`] — the way a PyTorch `state_dict` is loaded: the
//! tensors of the parameterised layers, in increasing index order, under either naming below,
//! with dense weights `[out, in]` (`nn.Linear`) and convolution weights `[C_out, C_in, kh, kw]`
//! (`nn.Conv2d`). So a PyTorch LeNet `nn.Sequential` (`0.weight`, `3.weight`, `7.weight`,
//! `9.weight`, ...) loads into [`Cnn::lenet`](super::cnn::Cnn::lenet).
//!
//! Layout written by [`Mlp::save_safetensors`]: for each layer `i`, `layers.{i}.weight`
//! (`[out, in]`, the PyTorch `nn.Linear` convention) and `layers.{i}.bias` (`[out]`), stored as
//! little-endian `F64` (lossless); the activations go in the header metadata as
//! `{"activations": "sigmoid,sigmoid,identity"}`.
//!
//! Loading accepts `F64` and `F32` tensors, and besides that layout the one PyTorch writes for
//! an `nn.Sequential` of `nn.Linear` layers interleaved with activation modules
//! (`0.weight`, `0.bias`, `2.weight`, ..., optionally under a common prefix such as `net.`):
//! layers are taken in increasing index order, and the activations, which PyTorch does not
//! save, are given by the caller ([`Mlp::load_safetensors_with`]).

use super::layer::{Layer, Module};
use super::{Activation, Dense, Mlp, Sequential};
use crate::error::{Error, Result};
use ndarray::{Array1, Array2};
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensorError, SafeTensors, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Metadata key holding the comma-separated activations.
pub const ACTIVATIONS_KEY: &str = "activations";

struct F64Tensor {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &F64Tensor {
    fn dtype(&self) -> Dtype {
        Dtype::F64
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

fn le_bytes<'a>(values: impl Iterator<Item = &'a f64>) -> Vec<u8> {
    values.flat_map(|v| v.to_le_bytes()).collect()
}

/// `layers.{i}.weight` / `layers.{i}.bias` (F64) for every layer `i` with parameters.
fn weights_bytes<L: Module>(
    model: &Sequential<L>,
    meta: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let mut tensors = Vec::with_capacity(2 * model.layers().len());
    for (i, l) in model.layers().iter().enumerate() {
        let (w, b) = l.params();
        if w.is_empty() && b.is_empty() {
            continue;
        }
        tensors.push((
            format!("layers.{i}.weight"),
            F64Tensor {
                shape: l.weight_shape(),
                bytes: le_bytes(w.iter()),
            },
        ));
        tensors.push((
            format!("layers.{i}.bias"),
            F64Tensor {
                shape: vec![b.len()],
                bytes: le_bytes(b.iter()),
            },
        ));
    }
    Ok(safetensors::serialize(
        tensors.iter().map(|(n, t)| (n.as_str(), t)),
        meta,
    )?)
}

impl<L: Module> Sequential<L> {
    /// Reads the weights of a safetensors file into this model (whose architecture the file
    /// must match), like PyTorch's `load_state_dict`: the file's layers (`layers.{i}.*` or
    /// `nn.Sequential` `{k}.weight`/`{k}.bias`, under an optional prefix, in increasing
    /// index order) are assigned to the model's layers with parameters, in order. Every shape
    /// is checked (dense `[out, in]`, convolution `[C_out, C_in, kh, kw]`); on any error the
    /// model is unchanged. F64 or F32.
    ///
    /// # Examples
    ///
    /// ```
    /// use intriguing::{Classifier, ClassifierExt};
    /// use intriguing::models::cnn::Cnn;
    /// let trained = Cnn::lenet(2, 3, 8, 1)?;
    /// let bytes = trained.to_safetensors_bytes()?;
    /// let mut fresh = Cnn::lenet(2, 3, 8, 99)?;
    /// fresh.load_weights_from_bytes(&bytes)?;
    /// assert_eq!(fresh, trained);
    /// # Ok::<(), intriguing::Error>(())
    /// ```
    pub fn load_weights_safetensors(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let bytes = std::fs::read(path.as_ref()).map_err(|e| io_err(e, path.as_ref()))?;
        self.load_weights_from_bytes(&bytes)
    }

    /// [`load_weights_safetensors`](Self::load_weights_safetensors) from bytes in memory.
    pub fn load_weights_from_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        let st = deserialize(bytes)?;
        let names = find_layers(&st, false)?;
        let targets: Vec<usize> = self.parameterised_layers().collect();
        check_layer_count(&names, targets.len(), "layers with parameters in the model")?;
        let mut flat = Vec::with_capacity(self.num_parameters());
        for ((wname, bname), &l) in names.iter().zip(&targets) {
            let layer = &self.layers()[l];
            let want = layer.weight_shape();
            let (wshape, w) = read_tensor(&st, wname)?;
            if wshape != want {
                return Err(Error::DataFormat(format!(
                    "tensor {wname} has shape {wshape:?}, but layer {l} ({}) needs {want:?}",
                    layer.kind()
                )));
            }
            let (bshape, b) = read_tensor(&st, bname)?;
            let nb = layer.params().1.len();
            if bshape != [nb] {
                return Err(Error::DataFormat(format!(
                    "tensor {bname} has shape {bshape:?}, but layer {l} ({}) needs [{nb}]",
                    layer.kind()
                )));
            }
            check_tensor_finite(wname, &w)?;
            check_tensor_finite(bname, &b)?;
            flat.extend(w);
            flat.extend(b);
        }
        self.set_parameters(ndarray::ArrayView1::from(&flat))
    }
}

impl Sequential<Layer> {
    /// The weights as safetensors bytes: `layers.{i}.weight` / `layers.{i}.bias` (F64) for
    /// every layer `i` with parameters, convolution weights `[C_out, C_in, kh, kw]`. The
    /// architecture is not stored: read the file back into a model built the same way with
    /// [`load_weights_safetensors`](Sequential::load_weights_safetensors).
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>> {
        weights_bytes(self, None)
    }

    /// Writes [`to_safetensors_bytes`](Self::to_safetensors_bytes) to a file.
    pub fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<()> {
        let bytes = self.to_safetensors_bytes()?;
        std::fs::write(path.as_ref(), bytes).map_err(|e| io_err(e, path.as_ref()))
    }
}

fn check_tensor_finite(name: &str, v: &[f64]) -> Result<()> {
    crate::error::check_finite(v.iter(), &format!("tensor {name}"))
}

impl Sequential<Dense> {
    /// The model as safetensors bytes (see the [module layout](self)).
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>> {
        let acts: Vec<&str> = self.layers().iter().map(|l| l.activation.name()).collect();
        let meta = HashMap::from([(ACTIVATIONS_KEY.to_string(), acts.join(","))]);
        weights_bytes(self, Some(meta))
    }

    /// Writes the weights to a safetensors file (`layers.{i}.weight` `[out, in]`,
    /// `layers.{i}.bias` `[out]`, `F64`, activations in the metadata).
    ///
    /// # Examples
    ///
    /// ```
    /// use intriguing::models::{Activation, Mlp};
    /// let mlp = Mlp::random(&[784, 100, 100, 10], Activation::Sigmoid, 1)?;
    /// let path = std::env::temp_dir().join("intriguing_doctest_fc100.safetensors");
    /// mlp.save_safetensors(&path)?;
    /// assert_eq!(Mlp::load_safetensors(&path)?, mlp);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), intriguing::Error>(())
    /// ```
    pub fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<()> {
        let bytes = self.to_safetensors_bytes()?;
        std::fs::write(path.as_ref(), bytes).map_err(|e| io_err(e, path.as_ref()))
    }

    /// Reads a safetensors file written by [`save_safetensors`](Self::save_safetensors) (or any
    /// file in that layout with the activations in its metadata).
    ///
    /// # Examples
    ///
    /// ```
    /// use intriguing::models::{Activation, Mlp};
    /// let mlp = Mlp::random(&[6, 4, 3], Activation::Relu, 2)?;
    /// let path = std::env::temp_dir().join("intriguing_doctest_load.safetensors");
    /// mlp.save_safetensors(&path)?;
    /// let back = Mlp::load_safetensors(&path)?; // the activations come from the metadata
    /// assert_eq!(back, mlp);
    /// assert!(Mlp::load_safetensors(path.with_extension("missing")).is_err());
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), intriguing::Error>(())
    /// ```
    pub fn load_safetensors(path: impl AsRef<Path>) -> Result<Mlp> {
        let bytes = std::fs::read(path.as_ref()).map_err(|e| io_err(e, path.as_ref()))?;
        Self::from_safetensors_bytes(&bytes)
    }

    /// Reads a safetensors file in either layout (`layers.{i}.*`, or PyTorch's
    /// `nn.Sequential` `{k}.weight`/`{k}.bias`) with the activation of each layer given by
    /// `activations` (one per layer; metadata, if any, is ignored).
    ///
    /// # Examples
    ///
    /// A file without activation metadata (as PyTorch's `save_file(model.state_dict())`
    /// writes) needs them given; here the metadata of our own file is overridden:
    ///
    /// ```
    /// use intriguing::models::{Activation, Mlp};
    /// let mlp = Mlp::random(&[6, 4, 3], Activation::Tanh, 2)?;
    /// let path = std::env::temp_dir().join("intriguing_doctest_load_with.safetensors");
    /// mlp.save_safetensors(&path)?;
    /// let relu = Mlp::load_safetensors_with(&path, &[Activation::Relu, Activation::Identity])?;
    /// assert_eq!(relu.layers()[0].weight, mlp.layers()[0].weight);
    /// assert_eq!(relu.layers()[0].activation, Activation::Relu);
    /// // One activation per layer, or a typed error:
    /// assert!(Mlp::load_safetensors_with(&path, &[Activation::Relu]).is_err());
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), intriguing::Error>(())
    /// ```
    pub fn load_safetensors_with(
        path: impl AsRef<Path>,
        activations: &[Activation],
    ) -> Result<Mlp> {
        let bytes = std::fs::read(path.as_ref()).map_err(|e| io_err(e, path.as_ref()))?;
        Self::from_safetensors_bytes_with(&bytes, activations)
    }

    /// [`load_safetensors`](Self::load_safetensors) from bytes in memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use intriguing::models::{Activation, Mlp};
    /// let mlp = Mlp::random(&[5, 3, 2], Activation::Sigmoid, 9)?;
    /// let bytes = mlp.to_safetensors_bytes()?;
    /// assert_eq!(Mlp::from_safetensors_bytes(&bytes)?, mlp);
    /// assert!(Mlp::from_safetensors_bytes(&bytes[..10]).is_err()); // truncated
    /// # Ok::<(), intriguing::Error>(())
    /// ```
    pub fn from_safetensors_bytes(bytes: &[u8]) -> Result<Mlp> {
        let meta = read_metadata(bytes)?;
        if meta.tensors().is_empty() {
            return Err(Error::DataFormat(NO_TENSORS.into()));
        }
        let acts = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get(ACTIVATIONS_KEY))
            .ok_or_else(|| {
                Error::DataFormat(format!(
                    "no \"{ACTIVATIONS_KEY}\" entry in the safetensors metadata: give the \
                     activations with Mlp::load_safetensors_with"
                ))
            })?
            .split(',')
            .map(|a| {
                a.parse::<Activation>().map_err(|_| {
                    Error::DataFormat(format!(
                        "unknown activation {a:?} in the safetensors metadata"
                    ))
                })
            })
            .collect::<Result<Vec<Activation>>>()?;
        Self::from_safetensors_bytes_with(bytes, &acts)
    }

    /// [`load_safetensors_with`](Self::load_safetensors_with) from bytes in memory.
    pub fn from_safetensors_bytes_with(bytes: &[u8], activations: &[Activation]) -> Result<Mlp> {
        let st = deserialize(bytes)?;
        let names = find_layers(&st, true)?;
        check_layer_count(&names, activations.len(), "activations given")?;
        let mut layers = Vec::with_capacity(names.len());
        for ((wname, bname), &act) in names.iter().zip(activations) {
            let (wshape, w) = read_tensor(&st, wname)?;
            let (bshape, b) = read_tensor(&st, bname)?;
            if wshape.len() != 2 || wshape.contains(&0) {
                return Err(Error::DataFormat(format!(
                    "tensor {wname} has shape {wshape:?}, expected [out, in] (nn.Linear)"
                )));
            }
            if bshape != [wshape[0]] {
                return Err(Error::DataFormat(format!(
                    "tensor {bname} has shape {bshape:?}, expected [{}] to match {wname} {wshape:?}",
                    wshape[0]
                )));
            }
            if let Some(prev) = layers.last().map(Dense::out_dim)
                && prev != wshape[1]
            {
                return Err(Error::DataFormat(format!(
                    "tensor {wname} has shape {wshape:?}, but the previous layer has {prev} \
                     outputs: expected [_, {prev}]"
                )));
            }
            let weight = Array2::from_shape_vec((wshape[0], wshape[1]), w)
                .map_err(|e| Error::DataFormat(format!("tensor {wname}: {e}")))?;
            layers.push(Dense {
                weight,
                bias: Array1::from(b),
                activation: act,
            });
        }
        Mlp::new(layers)
    }
}

fn io_err(e: std::io::Error, path: &Path) -> Error {
    Error::Io(std::io::Error::new(
        e.kind(),
        format!("{}: {e}", path.display()),
    ))
}

/// [`SafeTensors::deserialize`], with the errors about one tensor naming it.
fn deserialize(bytes: &[u8]) -> Result<SafeTensors<'_>> {
    SafeTensors::deserialize(bytes).map_err(|e| name_tensor(bytes, e))
}

/// [`SafeTensors::read_metadata`], with the errors about one tensor naming it.
fn read_metadata(bytes: &[u8]) -> Result<Metadata> {
    SafeTensors::read_metadata(bytes)
        .map(|(_, m)| m)
        .map_err(|e| name_tensor(bytes, e))
}

/// [`Error::SafetensorsTensor`] when the error of the `safetensors` crate concerns one tensor
/// (named by the error itself, or found by [`culprit`]), [`Error::Safetensors`] otherwise.
fn name_tensor(bytes: &[u8], e: SafeTensorError) -> Error {
    use SafeTensorError as E;
    let tensor = match &e {
        E::InvalidOffset(name) | E::TensorNotFound(name) => Some(name.clone()),
        E::TensorInvalidInfo
        | E::ValidationOverflow
        | E::MisalignedSlice
        | E::InvalidTensorView(..)
        | E::InvalidHeaderDeserialization(_)
        | E::MetadataIncompleteBuffer => culprit(bytes),
        _ => None,
    };
    match tensor {
        Some(tensor) => Error::SafetensorsTensor { tensor, source: e },
        None => Error::Safetensors(e),
    }
}

/// The first tensor of the header (in data-offset order, as the crate checks them) that the
/// `safetensors` crate rejects: an entry that does not parse as a tensor description, a byte
/// range that does not start where the previous tensor ends, or one that the crate's own
/// validation ([`Metadata::new`]) rejects on its own (size against shape and dtype, overflow,
/// misalignment); if every tensor passes, the last one when the data section does not end
/// where it does. `None` when the header itself cannot be read.
fn culprit(bytes: &[u8]) -> Option<String> {
    let n = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header = std::str::from_utf8(bytes.get(8..n.checked_add(8)?)?).ok()?;
    let entries: HashMap<String, serde_json::Value> = serde_json::from_str(header).ok()?;
    let mut infos = Vec::with_capacity(entries.len());
    for (name, v) in entries {
        if name == "__metadata__" {
            continue;
        }
        match serde_json::from_value::<TensorInfo>(v) {
            Ok(info) => infos.push((name, info)),
            Err(_) => return Some(name),
        }
    }
    infos.sort_by_key(|(_, info)| info.data_offsets);
    let mut end = 0;
    for (name, info) in &infos {
        let (s, e) = info.data_offsets;
        if s != end || e < s {
            return Some(name.clone());
        }
        let alone = TensorInfo {
            data_offsets: (0, e - s),
            ..info.clone()
        };
        if Metadata::new(None, vec![(name.clone(), alone)]).is_err() {
            return Some(name.clone());
        }
        end = e;
    }
    if n.checked_add(8)?.checked_add(end)? != bytes.len() {
        return infos.pop().map(|(name, _)| name);
    }
    None
}

const NO_TENSORS: &str = "the safetensors file holds no tensors";

/// The (weight, bias) tensor names of each layer, in order. With `contiguous`, the
/// `layers.{i}` indices must be `0, 1, 2, ...` (an MLP file).
/// The file's layer count (`names`, from [`find_layers`]) against what the caller has (`want`
/// of `what`).
fn check_layer_count(names: &[(String, String)], want: usize, what: &str) -> Result<()> {
    if names.len() == want {
        return Ok(());
    }
    Err(Error::DataFormat(format!(
        "the file holds {} layers ({}), but there are {want} {what}",
        names.len(),
        weight_names(names)
    )))
}

fn find_layers(st: &SafeTensors<'_>, contiguous: bool) -> Result<Vec<(String, String)>> {
    let names = st.names();
    if names.is_empty() {
        return Err(Error::DataFormat(NO_TENSORS.into()));
    }
    // Group `<prefix><index>.weight` by prefix.
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for n in &names {
        if let Some(stem) = n.strip_suffix(".weight") {
            let (prefix, idx) = match stem.rfind('.') {
                Some(p) => (&stem[..=p], &stem[p + 1..]),
                None => ("", stem),
            };
            if let Ok(i) = idx.parse::<usize>() {
                groups.entry(prefix).or_default().push(i);
            }
        }
    }
    let (prefix, mut idx) = if let Some(v) = groups.remove("layers.") {
        ("layers.", v)
    } else if groups.len() == 1 {
        groups.pop_first().expect("one group")
    } else if groups.is_empty() {
        return Err(Error::DataFormat(format!(
            "no layer weights found: expected tensors layers.{{i}}.weight/bias or \
             PyTorch nn.Sequential {{k}}.weight/bias, found {names:?}"
        )));
    } else {
        return Err(Error::DataFormat(format!(
            "ambiguous layer weights under several prefixes {:?}",
            groups.keys().collect::<Vec<_>>()
        )));
    };
    idx.sort_unstable();
    if contiguous
        && prefix == "layers."
        && let Some((k, &i)) = idx.iter().enumerate().find(|(k, i)| *k != **i)
    {
        return Err(Error::DataFormat(format!(
            "missing tensor layers.{k}.weight (found layers.{i}.weight)"
        )));
    }
    let layers: Vec<(String, String)> = idx
        .iter()
        .map(|i| (format!("{prefix}{i}.weight"), format!("{prefix}{i}.bias")))
        .collect();
    for (_, b) in &layers {
        if !names.contains(&b.as_str()) {
            return Err(Error::DataFormat(format!("missing tensor {b}")));
        }
    }
    Ok(layers)
}

/// A tensor's shape and values as `f64` (from `F64` or `F32`).
fn read_tensor(st: &SafeTensors<'_>, name: &str) -> Result<(Vec<usize>, Vec<f64>)> {
    let t = st
        .tensor(name)
        .map_err(|_| Error::DataFormat(format!("missing tensor {name}")))?;
    let data = t.data();
    let values = match t.dtype() {
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("4 bytes"))))
            .collect(),
        other => {
            return Err(Error::DataFormat(format!(
                "tensor {name} has dtype {other:?}; only F64 and F32 are supported \
                 (convert with .double() or .float() before saving)"
            )));
        }
    };
    Ok((t.shape().to_vec(), values))
}

/// The weight tensors' names of `find_layers`' result, comma-separated (for messages).
fn weight_names(names: &[(String, String)]) -> String {
    names
        .iter()
        .map(|(w, _)| w.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
