//! Writing and reading weight files through burn-store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{
    BurnToPyTorchAdapter, FloatCastAdapter, ModuleAdapter, ModuleSnapshot, ModuleStore,
    PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
};
use burn::tensor::DType;
use infobound_models::ssl::{Backbone, BackboneConfig};
use infobound_models::{Vae, VaeConfig};

use crate::WeightsError;
use crate::keymap::{KeyMap, backbone_key_map, vae_key_map};

/// A weight file's container format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    /// safetensors (`.safetensors`): written and read.
    Safetensors,
    /// PyTorch's `torch.save` pickle (`.pt`, `.pth`): read only, through burn-store's
    /// `PytorchStore`.
    Pytorch,
}

impl WeightsFormat {
    /// The format named by `path`'s extension.
    ///
    /// # Errors
    /// [`WeightsError::UnknownFormat`] for any other extension.
    pub fn from_path(path: &Path) -> Result<Self, WeightsError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("safetensors") => Ok(Self::Safetensors),
            Some("pt" | "pth") => Ok(Self::Pytorch),
            _ => Err(WeightsError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// A PyTorch state dict to read, and where in the file it sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightsSource {
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub format: WeightsFormat,
    /// Only keys that start with this are read, without it (e.g. `backbone.` for a
    /// solo-learn checkpoint, whose projector and classifier are then ignored); empty: every
    /// key.
    pub prefix: String,
    /// `.pt` files: the entry of the pickled dict that holds the state dict (`state_dict` in
    /// PyTorch Lightning checkpoints); `None`: the pickle is the state dict.
    pub top_level_key: Option<String>,
}

impl WeightsSource {
    /// The whole state dict of `path`, its format from the extension.
    ///
    /// # Errors
    /// [`WeightsError::UnknownFormat`] for an extension other than `.safetensors`, `.pt`,
    /// `.pth`.
    pub fn new(path: impl Into<PathBuf>) -> Result<Self, WeightsError> {
        let path = path.into();
        Ok(Self {
            format: WeightsFormat::from_path(&path)?,
            path,
            prefix: String::new(),
            top_level_key: None,
        })
    }
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// The file written.
    pub path: PathBuf,
    /// Every key with its shape (PyTorch layout), in key order.
    pub tensors: BTreeMap<String, Vec<usize>>,
}

impl ExportSummary {
    /// Number of scalars in all tensors.
    pub fn values(&self) -> usize {
        self.tensors
            .values()
            .map(|s| s.iter().product::<usize>())
            .sum()
    }
}

/// Writes a VAE's encoder and decoder to the safetensors file `path` (replaced atomically if it
/// exists), keys as in [`vae_key_map`](crate::vae_key_map), tensors float32 in PyTorch's layout
/// (linear weights `[out, in]`; convolution weights are laid out alike in both).
///
/// # Errors
/// [`WeightsError::UnsupportedNetwork`] for an architecture without PyTorch counterpart,
/// [`WeightsError::ExportFormat`] / [`WeightsError::UnknownFormat`] unless `path` ends in
/// `.safetensors`, [`WeightsError::ConfigMismatch`] if `config` does not describe `vae`,
/// [`WeightsError::Store`] if the file cannot be written.
pub fn export_vae(
    vae: &Vae,
    config: &VaeConfig,
    path: &Path,
) -> Result<ExportSummary, WeightsError> {
    export(vae, &vae_key_map(config)?, path, "vae_burgess")
}

/// Writes a ResNet backbone to the safetensors file `path` (replaced atomically if it exists),
/// keys as in [`backbone_key_map`](crate::backbone_key_map); batch norms with their running
/// statistics.
///
/// # Errors
/// As [`export_vae`].
pub fn export_backbone(
    backbone: &Backbone,
    config: &BackboneConfig,
    path: &Path,
) -> Result<ExportSummary, WeightsError> {
    let network = match config {
        BackboneConfig::ResNetCifar { .. } => "resnet_cifar",
        BackboneConfig::ResNet50 { .. } => "resnet50",
    };
    export(backbone, &backbone_key_map(config), path, network)
}

/// `vae` with every encoder and decoder parameter read from `source`, a state dict with the
/// keys of [`vae_key_map`](crate::vae_key_map).
///
/// Every key the network needs must be present with its shape; keys beyond them (under
/// `source.prefix`) are refused, except batch norms' `num_batches_tracked`.
///
/// # Errors
/// [`WeightsError::MissingKeys`], [`WeightsError::UnexpectedKeys`],
/// [`WeightsError::ShapeMismatch`], [`WeightsError::DType`] naming the keys involved;
/// [`WeightsError::Store`] if the file cannot be read; [`WeightsError::UnsupportedNetwork`]
/// as [`export_vae`].
pub fn import_vae(
    vae: Vae,
    config: &VaeConfig,
    source: &WeightsSource,
) -> Result<Vae, WeightsError> {
    import(vae, &vae_key_map(config)?, source)
}

/// `backbone` with every parameter and running statistic read from `source`, a state dict with
/// torchvision's ResNet keys ([`backbone_key_map`](crate::backbone_key_map)); checked as in
/// [`import_vae`].
///
/// # Errors
/// As [`import_vae`].
pub fn import_backbone(
    backbone: Backbone,
    config: &BackboneConfig,
    source: &WeightsSource,
) -> Result<Backbone, WeightsError> {
    import(backbone, &backbone_key_map(config), source)
}

/// Every tensor of `module` under its PyTorch key, with its PyTorch shape.
fn torch_shapes<M: Module>(
    module: &M,
    map: &KeyMap,
) -> Result<BTreeMap<String, Vec<usize>>, WeightsError> {
    let adapter: Box<dyn ModuleAdapter> = Box::new(BurnToPyTorchAdapter);
    module
        .collect(None, Some(adapter), true)
        .into_iter()
        .map(|tensor| {
            let key = map
                .to_torch(&tensor.name)
                .ok_or_else(|| WeightsError::ConfigMismatch {
                    parameter: tensor.name.clone(),
                })?;
            Ok((key, tensor.shape.to_vec()))
        })
        .collect()
}

fn export<M: Module>(
    module: &M,
    map: &KeyMap,
    path: &Path,
    network: &str,
) -> Result<ExportSummary, WeightsError> {
    match WeightsFormat::from_path(path)? {
        WeightsFormat::Safetensors => {}
        WeightsFormat::Pytorch => {
            return Err(WeightsError::ExportFormat {
                path: path.to_path_buf(),
            });
        }
    }
    let tensors = torch_shapes(module, map)?;
    let mut store = SafetensorsStore::from_file(path)
        .skip_enum_variants(true)
        .with_to_adapter(BurnToPyTorchAdapter)
        .remap(map.burn_to_torch()?)
        .metadata("infobound.network", network)
        .overwrite(true);
    module
        .save_into(&mut store)
        .map_err(|e| WeightsError::Store {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    Ok(ExportSummary {
        path: path.to_path_buf(),
        tensors,
    })
}

/// A tensor's shape and dtype as the file declares them.
struct Declared {
    shape: Vec<usize>,
    dtype: DType,
}

/// The tensors of `source` under `source.prefix`, the prefix removed.
fn declared(source: &WeightsSource) -> Result<BTreeMap<String, Declared>, WeightsError> {
    let store_error = |message: String| WeightsError::Store {
        path: source.path.clone(),
        message,
    };
    let all = match source.format {
        WeightsFormat::Safetensors => {
            let mut store = SafetensorsStore::from_file(&source.path);
            summarise(
                store
                    .get_all_tensors()
                    .map_err(|e| store_error(e.to_string()))?,
            )
        }
        WeightsFormat::Pytorch => {
            let mut store = pytorch_store(source);
            summarise(
                store
                    .get_all_tensors()
                    .map_err(|e| store_error(e.to_string()))?,
            )
        }
    };
    Ok(all
        .into_iter()
        .filter_map(|(key, d)| key.strip_prefix(&source.prefix).map(|k| (k.to_string(), d)))
        .collect())
}

fn summarise(
    tensors: &BTreeMap<String, burn::store::burn_pack::Tensor>,
) -> BTreeMap<String, Declared> {
    tensors
        .iter()
        .map(|(key, t)| {
            (
                key.clone(),
                Declared {
                    shape: t.shape.to_vec(),
                    dtype: t.dtype,
                },
            )
        })
        .collect()
}

/// burn-store's reader of `.pt` files, without its default renumbering of list indices
/// (`nn.Sequential` keys such as `model.9` are meant literally here).
fn pytorch_store(source: &WeightsSource) -> PytorchStore {
    let store = PytorchStore::from_file(&source.path).map_indices_contiguous(false);
    match &source.top_level_key {
        Some(key) => store.with_top_level_key(key.as_str()),
        None => store,
    }
}

/// Checks `source` against what `module` needs, then loads it.
fn import<M: Module>(
    mut module: M,
    map: &KeyMap,
    source: &WeightsSource,
) -> Result<M, WeightsError> {
    let path = || source.path.clone();
    let expected = torch_shapes(&module, map)?;
    let found = declared(source)?;
    let missing: Vec<String> = expected
        .keys()
        .filter(|k| !found.contains_key(*k))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(WeightsError::MissingKeys {
            path: path(),
            keys: missing,
        });
    }
    // PyTorch's batch-norm step counter has no counterpart in Burn's BatchNorm (see
    // `backbone_key_map`): accepted where the layer's running mean is expected.
    let counter = |key: &str| {
        key.strip_suffix("num_batches_tracked")
            .is_some_and(|layer| expected.contains_key(&format!("{layer}running_mean")))
    };
    let unexpected: Vec<String> = found
        .keys()
        .filter(|k| !expected.contains_key(*k) && !counter(k))
        .cloned()
        .collect();
    if !unexpected.is_empty() {
        return Err(WeightsError::UnexpectedKeys {
            path: path(),
            keys: unexpected,
        });
    }
    for (key, shape) in &expected {
        let declared = &found[key];
        if &declared.shape != shape {
            return Err(WeightsError::ShapeMismatch {
                path: path(),
                key: key.clone(),
                expected: shape.clone(),
                found: declared.shape.clone(),
            });
        }
        if source.format == WeightsFormat::Pytorch && declared.dtype != DType::F32 {
            return Err(WeightsError::DType {
                path: path(),
                key: key.clone(),
                dtype: format!("{:?}", declared.dtype),
            });
        }
    }
    let remap = map.torch_to_burn(&source.prefix)?;
    let result = match source.format {
        WeightsFormat::Safetensors => {
            let mut store = SafetensorsStore::from_file(&source.path)
                .skip_enum_variants(true)
                .with_from_adapter(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32)))
                .remap(remap)
                .allow_partial(true)
                .validate(false);
            module.load_from(&mut store).map_err(|e| e.to_string())
        }
        WeightsFormat::Pytorch => {
            let mut store = pytorch_store(source)
                .skip_enum_variants(true)
                .remap(remap)
                .allow_partial(true)
                .validate(false);
            module.load_from(&mut store).map_err(|e| e.to_string())
        }
    }
    .map_err(|message| WeightsError::Store {
        path: path(),
        message,
    })?;
    if !result.errors.is_empty() {
        let messages: Vec<String> = result.errors.iter().map(ToString::to_string).collect();
        return Err(WeightsError::Apply {
            path: path(),
            message: messages.join("; "),
        });
    }
    if !result.missing.is_empty() {
        return Err(WeightsError::MissingKeys {
            path: path(),
            keys: result
                .missing
                .iter()
                .map(|(p, _)| map.to_torch(p).unwrap_or_else(|| p.clone()))
                .collect(),
        });
    }
    Ok(module)
}
