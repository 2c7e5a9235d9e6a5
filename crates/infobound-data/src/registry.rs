//! Procedural datasets by name, and what each one holds.
//!
//! [`PROCEDURAL`] is the one table of procedural datasets. Each dataset declares its own entry
//! (name, description, constructor) next to its renderer, e.g. [`crate::DSprites::REGISTRATION`],
//! so adding a dataset is its own new file plus one line in the table. The real-file sources are
//! listed in [`crate::source::SourceKind`].

use crate::{DSprites, DataError, GroundTruthDataset, ObservationShape, Shapes3D};

/// One procedural dataset: what the registry knows about it.
#[derive(Debug, Clone, Copy)]
pub struct ProceduralDataset {
    /// Registry name; the dataset's [`GroundTruthDataset::name`] returns the same.
    pub name: &'static str,
    /// One sentence on what the images show.
    pub description: &'static str,
    /// A new, uncached instance.
    pub build: fn() -> Box<dyn GroundTruthDataset>,
}

/// Every procedural dataset, in listing order.
pub const PROCEDURAL: &[ProceduralDataset] = &[DSprites::REGISTRATION, Shapes3D::REGISTRATION];

/// Summary of one registered dataset, for `infobound datasets list/show`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DatasetInfo {
    /// Registry name.
    pub name: String,
    /// One sentence on what the images show.
    pub description: String,
    /// Factor names in storage order.
    pub factor_names: Vec<String>,
    /// Number of values of each factor.
    pub factor_sizes: Vec<usize>,
    /// Shape of one image.
    pub observation_shape: ObservationShape,
    /// Number of distinct images (states), Π sizes.
    pub num_images: usize,
}

/// Names of the procedural datasets, in [`PROCEDURAL`] order.
pub fn procedural_names() -> Vec<&'static str> {
    PROCEDURAL.iter().map(|entry| entry.name).collect()
}

/// The registry entry named `name`.
pub fn procedural_entry(name: &str) -> Result<&'static ProceduralDataset, DataError> {
    PROCEDURAL
        .iter()
        .find(|entry| entry.name == name)
        .ok_or_else(|| DataError::UnknownDataset {
            name: name.to_string(),
            known: procedural_names().join(", "),
        })
}

/// A new, uncached procedural dataset, e.g. `dsprites` ([`DSprites`]) or `shapes3d`
/// ([`Shapes3D`]).
pub fn dataset_by_name(name: &str) -> Result<Box<dyn GroundTruthDataset>, DataError> {
    Ok((procedural_entry(name)?.build)())
}

/// Summary of the procedural dataset `name`.
pub fn dataset_info(name: &str) -> Result<DatasetInfo, DataError> {
    let entry = procedural_entry(name)?;
    let dataset = (entry.build)();
    let space = dataset.factor_space();
    Ok(DatasetInfo {
        name: entry.name.to_string(),
        description: entry.description.to_string(),
        factor_names: space.names().to_vec(),
        factor_sizes: space.sizes().to_vec(),
        observation_shape: dataset.observation_shape(),
        num_images: space.len(),
    })
}

/// Summaries of every procedural dataset, in [`PROCEDURAL`] order.
pub fn list_datasets() -> Vec<DatasetInfo> {
    PROCEDURAL
        .iter()
        .filter_map(|entry| dataset_info(entry.name).ok())
        .collect()
}
