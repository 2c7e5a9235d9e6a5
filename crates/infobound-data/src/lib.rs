//! Ground-truth factor datasets, readers for the real files, SSL augmentations and batching.
//!
//! Every metric and trainer consumes [`GroundTruthDataset`]: a [`FactorSpace`] plus a way to turn
//! factor vectors into [`ImageBatch`]es (NCHW, `f32` in [0, 1]). A run names its data with one
//! [`DatasetSource`] (procedural, or a real dSprites / 3DShapes / MPI3D / CIFAR / image-folder
//! file), which validates cheaply and opens as a [`GroundTruthDataset`] where the data has factors.
//! Every file this crate writes goes through [`io::write_atomic`] / [`io::AtomicFile`].

pub mod augment;
mod dataset;
mod error;
mod factors;
#[cfg(feature = "fixtures")]
pub mod fixtures;
mod images;
pub mod io;
mod labelled;
pub mod manifest;
pub mod png;
pub mod procedural;
pub mod readers;
pub mod registry;
pub mod source;

#[cfg(feature = "burn")]
pub mod burn_adapter;

pub use dataset::GroundTruthDataset;
pub use error::DataError;
pub use factors::{FactorMatrix, FactorSpace};
pub use images::{ImageBatch, ObservationShape};
pub use labelled::LabelledImages;
pub use manifest::{DatasetManifest, manifest, manifest_names};
pub use png::{factor_traversal_grid, save_png_grid};
pub use procedural::{DSprites, DSpritesShape, Shapes3D, Shapes3DShape};
pub use registry::{
    DatasetInfo, PROCEDURAL, ProceduralDataset, dataset_by_name, dataset_info, list_datasets,
};
pub use source::{DatasetSource, SourceKind};

#[cfg(feature = "burn")]
pub use burn_adapter::{
    GroundTruthBatch, GroundTruthBatcher, GroundTruthItem, GroundTruthStates, factors_to_tensor,
    images_to_tensor,
};

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
