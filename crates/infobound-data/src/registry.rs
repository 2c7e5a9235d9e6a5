//! Procedural datasets by name, and what each one holds.

use crate::{DSprites, DataError, GroundTruthDataset, ObservationShape, Shapes3D};

/// Names accepted by [`dataset_by_name`].
pub const PROCEDURAL_DATASETS: [&str; 2] = ["dsprites", "shapes3d"];

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

/// A new, uncached procedural dataset: `dsprites` ([`DSprites`]) or `shapes3d` ([`Shapes3D`]).
pub fn dataset_by_name(name: &str) -> Result<Box<dyn GroundTruthDataset>, DataError> {
    match name {
        "dsprites" => Ok(Box::new(DSprites::new())),
        "shapes3d" => Ok(Box::new(Shapes3D::new())),
        _ => Err(DataError::UnknownDataset {
            name: name.to_string(),
            known: PROCEDURAL_DATASETS.join(", "),
        }),
    }
}

/// Summary of the procedural dataset `name`.
pub fn dataset_info(name: &str) -> Result<DatasetInfo, DataError> {
    let dataset = dataset_by_name(name)?;
    let space = dataset.factor_space();
    let description = match name {
        "dsprites" => {
            "procedural dSprites look-alike (Matthey et al. 2017): a white square, ellipse or heart \
             on black, 64x64 binary; exact factor grid of the real file"
        }
        _ => {
            "procedural 3DShapes look-alike (Burgess & Kim 2018): a ray-traced object in a room \
             corner, 64x64 RGB; exact factor grid of the real file"
        }
    };
    Ok(DatasetInfo {
        name: name.to_string(),
        description: description.to_string(),
        factor_names: space.names().to_vec(),
        factor_sizes: space.sizes().to_vec(),
        observation_shape: dataset.observation_shape(),
        num_images: space.len(),
    })
}

/// Summaries of every procedural dataset, in [`PROCEDURAL_DATASETS`] order.
pub fn list_datasets() -> Vec<DatasetInfo> {
    PROCEDURAL_DATASETS
        .iter()
        .filter_map(|name| dataset_info(name).ok())
        .collect()
}
