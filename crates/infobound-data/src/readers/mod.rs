//! Readers for the real dataset files: the `.npy`/`.npz` container formats, dSprites, MPI3D,
//! CIFAR-10/100 binary batches, PNG image folders and (feature `hdf5`) 3DShapes.
//!
//! dSprites and MPI3D images are never loaded whole: [`NpzArchive::file_array`] reads stored
//! members in place and decompresses deflated ones once into a cache file, and a batch reads only
//! its own images.
//!
//! Every reader validates the whole file before returning: wrong keys, dtypes or shapes,
//! truncation and corrupt bytes give a [`DataError::InvalidFile`] naming the file and what was
//! expected, never a panic and never a partially filled dataset.
//!
//! 3DShapes (`3dshapes.h5`) is an HDF5 file; its reader `Shapes3dFile` binds the system
//! `libhdf5` through the `hdf5-metno` crate and is therefore behind the non-default cargo feature
//! `hdf5`. Without it, the procedural [`crate::Shapes3D`] has the same factor grid.

mod checksum;
mod cifar;
mod dsprites;
mod file_array;
mod image_folder;
mod mpi3d;
pub mod npy;
pub mod npz;
#[cfg(feature = "hdf5")]
mod shapes3d;

pub use checksum::{ChecksumStatus, ReadReport, sha256_file, verify_sha256};
pub use cifar::{
    CIFAR_IMAGE_BYTES, CIFAR10_CLASS_NAMES, Cifar100Label, CifarSplit, LabelledBatch,
    parse_cifar10, parse_cifar100, read_cifar10, read_cifar100,
};
pub use dsprites::{
    DSPRITES_FACTOR_NAMES, DSPRITES_FACTOR_SIZES, DSPRITES_FILE_NAME, DSpritesFile,
};
pub use file_array::FileArray;
pub use image_folder::{ImageFit, ImageFolder};
pub use mpi3d::{MPI3D_FACTOR_NAMES, MPI3D_FACTOR_SIZES, Mpi3dFile, Mpi3dVariant};
pub use npy::{DType, NpyArray, NpyElement, NpyHeader, NpyLayout};
pub use npz::{NpzArchive, NpzCompression, NpzFileWriter, NpzWriter};
#[cfg(feature = "hdf5")]
pub use shapes3d::{SHAPES3D_FILE_NAME, Shapes3dFile};

use std::path::PathBuf;

use crate::{DataError, FactorSpace};

/// Options shared by the file readers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReadOptions {
    /// Require the official shapes (dSprites 737 280 × 64 × 64, MPI3D 1 036 800 × 64 × 64 × 3,
    /// 10 000 images per CIFAR-10 batch, ...). Turn off for reduced fixtures that keep the same
    /// layout.
    pub strict_shapes: bool,
    /// Expected SHA-256 (lower-case hex) of the file; a mismatch is reported as a warning in the
    /// dataset's [`ReadReport`], not an error, because re-packed copies of the official files
    /// hold the same arrays under different bytes.
    pub expected_sha256: Option<String>,
    /// Folder for the decompressed copies of deflated `.npz` members
    /// ([`NpzArchive::file_array`]); `None` puts them next to the archive.
    pub cache_dir: Option<PathBuf>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            strict_shapes: true,
            expected_sha256: None,
            cache_dir: None,
        }
    }
}

impl ReadOptions {
    /// Options for reduced test fixtures: no official-shape check, no checksum.
    pub fn fixture() -> Self {
        Self {
            strict_shapes: false,
            expected_sha256: None,
            cache_dir: None,
        }
    }

    /// Strict options expecting the SHA-256 that the embedded manifest of `dataset` records for
    /// its file `file_name` (none when the manifest states no digest).
    pub fn from_manifest(dataset: &str, file_name: &str) -> Result<Self, DataError> {
        let manifest = crate::manifest(dataset)?;
        let file = manifest
            .files
            .iter()
            .find(|f| f.name == file_name)
            .ok_or_else(|| {
                DataError::InvalidArgument(format!(
                    "the manifest of `{dataset}` lists no file `{file_name}`"
                ))
            })?;
        Ok(Self {
            strict_shapes: true,
            expected_sha256: file.sha256.clone(),
            cache_dir: None,
        })
    }
}

/// The factor space of a file whose rows hold each image's factor classes (`classes`, `n` rows
/// of `names.len()`), which must be the complete grid in row-major order (the layout of the
/// official dSprites and 3DShapes files). The sizes are read from the classes; with `strict`
/// they must be `official_sizes`.
///
/// # Errors
/// A message naming the first mismatch: other sizes than the official ones (`strict`), a grid
/// with another number of states than `n`, or a row out of row-major order.
pub(crate) fn row_major_grid(
    classes: &[usize],
    n: usize,
    names: &[&str],
    official_sizes: &[usize],
    strict: bool,
) -> Result<FactorSpace, String> {
    let k = names.len();
    let mut sizes = vec![0usize; k];
    for row in classes.chunks_exact(k) {
        for (size, &class) in sizes.iter_mut().zip(row) {
            *size = (*size).max(class + 1);
        }
    }
    if strict && sizes != official_sizes {
        return Err(format!(
            "expected factor sizes {official_sizes:?}, found {sizes:?}"
        ));
    }
    let names = names.iter().map(|s| s.to_string()).collect();
    let space = FactorSpace::new(names, sizes).map_err(|e| e.to_string())?;
    if space.len() != n {
        return Err(format!(
            "the factor grid {:?} has {} states but the file holds {n} images",
            space.sizes(),
            space.len()
        ));
    }
    for (i, row) in classes.chunks_exact(k).enumerate() {
        let expected = space.factors_of(i).map_err(|e| e.to_string())?;
        if row != expected.as_slice() {
            return Err(format!(
                "row {i} has factor classes {row:?} but a row-major grid needs {expected:?}"
            ));
        }
    }
    Ok(space)
}
