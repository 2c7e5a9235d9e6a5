//! Dataset manifests: what the official files of each dataset hold and how to check them.
//!
//! One JSON file per dataset lives in this crate's `datasets/` folder (linked from the workspace's
//! top-level `datasets/`) and is embedded here at compile time. Format (every field is a
//! [`DatasetManifest`] field; optional ones may be left out):
//!
//! ```json
//! {
//!   "name": "shapes3d", "title": "3DShapes", "description": "...", "citation": "...",
//!   "homepage": "https://...", "license": "Apache-2.0",
//!   "observation": {"channels": 3, "height": 64, "width": 64},
//!   "pixel_dtype": "uint8", "pixel_range": [0, 255], "num_images": 480000,
//!   "factors": [{"name": "floor_hue", "size": 10, "values": [0.0, 0.1], "value_names": [], "note": ""}],
//!   "class_names": [], "splits": [{"name": "train", "num_images": 50000, "members": ["..."]}],
//!   "files": [{"name": "3dshapes.h5", "url": "https://...", "format": "hdf5",
//!              "size_bytes": null, "sha256": null, "md5": "...", "checksum_source": "...",
//!              "note": "...", "arrays": [{"key": "images", "dtype": "uint8", "shape": [480000, 64, 64, 3]}],
//!              "record_bytes": null}]
//! }
//! ```
//!
//! Factor datasets list their factors in storage order (last fastest) and leave `class_names`
//! empty; labelled image sets (CIFAR) have no factors and list their classes and splits.
//! Checksums are only filled in where a public source states them (`checksum_source` says
//! which); an empty `sha256` means none could be verified.

use serde::{Deserialize, Serialize};

use crate::{DataError, FactorSpace, ObservationShape};

/// The embedded manifests, by name.
const MANIFESTS: [(&str, &str); 7] = [
    ("dsprites", include_str!("../datasets/dsprites.json")),
    ("shapes3d", include_str!("../datasets/shapes3d.json")),
    ("mpi3d_toy", include_str!("../datasets/mpi3d_toy.json")),
    (
        "mpi3d_realistic",
        include_str!("../datasets/mpi3d_realistic.json"),
    ),
    ("mpi3d_real", include_str!("../datasets/mpi3d_real.json")),
    ("cifar10", include_str!("../datasets/cifar10.json")),
    ("cifar100", include_str!("../datasets/cifar100.json")),
];

/// Description of one dataset and its official files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetManifest {
    /// Registry name, e.g. `shapes3d`.
    pub name: String,
    /// Human-readable name, e.g. `3DShapes`.
    pub title: String,
    /// One sentence on what the images show.
    pub description: String,
    /// Paper or report that introduced the dataset.
    pub citation: String,
    /// Official page.
    pub homepage: String,
    /// License of the data as stated by its authors.
    pub license: String,
    /// Shape of one image (CHW).
    pub observation: ObservationShape,
    /// Element type of the stored pixels, e.g. `uint8`.
    pub pixel_dtype: String,
    /// Smallest and largest stored pixel value (dSprites stores 0/1, the others 0..255).
    pub pixel_range: [u16; 2],
    /// Number of images over all splits.
    pub num_images: usize,
    /// Factors of variation in storage order; empty for labelled image sets.
    #[serde(default)]
    pub factors: Vec<ManifestFactor>,
    /// Class names in label order; empty for factor datasets.
    #[serde(default)]
    pub class_names: Vec<String>,
    /// Train/test splits; empty when the file is one unsplit array.
    #[serde(default)]
    pub splits: Vec<ManifestSplit>,
    /// Official files.
    pub files: Vec<ManifestFile>,
}

/// One factor of variation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFactor {
    /// Name as in the official file.
    pub name: String,
    /// Number of values.
    pub size: usize,
    /// The official latent values of each class index (empty when the file stores none).
    #[serde(default)]
    pub values: Vec<f64>,
    /// Names of categorical values (empty for continuous factors).
    #[serde(default)]
    pub value_names: Vec<String>,
    /// Units or other remarks.
    #[serde(default)]
    pub note: String,
}

/// One split of a labelled image set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSplit {
    /// `train` or `test`.
    pub name: String,
    /// Number of images in the split.
    pub num_images: usize,
    /// Archive members holding the split, in order.
    pub members: Vec<String>,
}

/// One official file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// File name as published.
    pub name: String,
    /// Download address.
    pub url: String,
    /// Container format: `npz`, `hdf5` or `tar.gz`.
    pub format: String,
    /// Size in bytes, where known.
    #[serde(default)]
    pub size_bytes: Option<u64>,
    /// Lower-case hex SHA-256 of the file, only where a public source states it.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Lower-case hex MD5 of the file, only where a public source states it.
    #[serde(default)]
    pub md5: Option<String>,
    /// Where the checksums come from.
    #[serde(default)]
    pub checksum_source: String,
    /// Layout remarks for readers.
    #[serde(default)]
    pub note: String,
    /// Arrays inside `npz`/`hdf5` containers.
    #[serde(default)]
    pub arrays: Vec<ManifestArray>,
    /// Bytes per record in fixed-record binary members (CIFAR).
    #[serde(default)]
    pub record_bytes: Option<usize>,
}

/// One array inside a container file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestArray {
    /// Key of the array (`imgs`, `images`, `labels`, ...).
    pub key: String,
    /// NumPy dtype name.
    pub dtype: String,
    /// Shape as stored.
    pub shape: Vec<usize>,
}

impl DatasetManifest {
    /// The factor space of a factor dataset; an error for labelled image sets (no factors).
    pub fn factor_space(&self) -> Result<FactorSpace, DataError> {
        FactorSpace::new(
            self.factors.iter().map(|f| f.name.clone()).collect(),
            self.factors.iter().map(|f| f.size).collect(),
        )
    }
}

/// Names of all embedded manifests.
pub fn manifest_names() -> Vec<&'static str> {
    MANIFESTS.iter().map(|(name, _)| *name).collect()
}

/// The embedded manifest of dataset `name`.
pub fn manifest(name: &str) -> Result<DatasetManifest, DataError> {
    let (_, text) =
        MANIFESTS
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| DataError::UnknownDataset {
                name: name.to_string(),
                known: manifest_names().join(", "),
            })?;
    serde_json::from_str(text).map_err(|e| DataError::InvalidFile {
        path: format!("datasets/{name}.json").into(),
        message: format!("invalid manifest: {e}"),
    })
}
