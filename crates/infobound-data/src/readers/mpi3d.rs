//! MPI3D (Gondal et al., NeurIPS 2019, rr-learning/disentanglement_dataset):
//! `mpi3d_toy.npz`, `mpi3d_realistic.npz`, `mpi3d_real.npz`.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use rand::RngCore;

use super::file_array::FileArray;
use super::npy::DType;
use super::npz::NpzArchive;
use super::{ReadOptions, ReadReport, verify_sha256};
use crate::{
    DataError, FactorMatrix, FactorSpace, GroundTruthDataset, ImageBatch, ObservationShape,
};

/// Factor names in file order.
pub const MPI3D_FACTOR_NAMES: [&str; 7] = [
    "object_color",
    "object_shape",
    "object_size",
    "camera_height",
    "background_color",
    "horizontal_axis",
    "vertical_axis",
];
/// Number of values of each factor (1 036 800 images in all).
pub const MPI3D_FACTOR_SIZES: [usize; 7] = [6, 6, 2, 3, 3, 40, 40];
const MPI3D_SIDE: usize = 64;

/// The three renderings of the MPI3D scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mpi3dVariant {
    /// Simplified synthetic rendering, `mpi3d_toy.npz`.
    Toy,
    /// Realistic synthetic rendering, `mpi3d_realistic.npz`.
    Realistic,
    /// Photographs of the robot platform, `mpi3d_real.npz`.
    Real,
}

impl Mpi3dVariant {
    /// Official file name of this variant.
    pub fn file_name(self) -> &'static str {
        match self {
            Mpi3dVariant::Toy => "mpi3d_toy.npz",
            Mpi3dVariant::Realistic => "mpi3d_realistic.npz",
            Mpi3dVariant::Real => "mpi3d_real.npz",
        }
    }

    /// Dataset name, e.g. `mpi3d_toy`.
    pub fn dataset_name(self) -> &'static str {
        match self {
            Mpi3dVariant::Toy => "mpi3d_toy",
            Mpi3dVariant::Realistic => "mpi3d_realistic",
            Mpi3dVariant::Real => "mpi3d_real",
        }
    }
}

/// MPI3D read from its `.npz`: one array `images` (`u8` [N, H, W, 3], HWC) ordered row-major over
/// the factor grid (the file has no label array).
///
/// The images are never loaded whole (12.7 GB for the official files): they are read from disk
/// image by image through a [`FileArray`] (in place for the official, stored `np.savez` files; a
/// deflated copy is decompressed once into a cache file, see [`NpzArchive::file_array`]) and
/// converted to CHW `f32` / 255 when observations are requested. The file must not be truncated
/// or rewritten while it is open; if it is, lookups fail with a typed error.
pub struct Mpi3dFile {
    variant: Mpi3dVariant,
    space: FactorSpace,
    height: usize,
    width: usize,
    images: FileArray,
    report: ReadReport,
}

impl Mpi3dFile {
    /// Reads the official grid [`MPI3D_FACTOR_SIZES`].
    pub fn open(
        path: &Path,
        variant: Mpi3dVariant,
        options: &ReadOptions,
    ) -> Result<Self, DataError> {
        Self::open_with_factor_sizes(path, variant, MPI3D_FACTOR_SIZES, options)
    }

    /// Checks the `images` header of the file at `path` (key, dtype, shape against
    /// `factor_sizes`) without reading any pixel: what opening checks first, cheap enough to run
    /// before a run writes anything.
    pub fn validate(
        path: &Path,
        factor_sizes: [usize; 7],
        options: &ReadOptions,
    ) -> Result<(), DataError> {
        let mut archive = NpzArchive::open(path)?;
        check_layout(&mut archive, path, factor_sizes, options).map(|_| ())
    }

    /// Reads a file laid out over `factor_sizes` (row-major, last factor fastest). With
    /// [`ReadOptions::strict_shapes`] only the official sizes and 64 × 64 images are accepted;
    /// without it, reduced fixtures with the same layout can be read.
    pub fn open_with_factor_sizes(
        path: &Path,
        variant: Mpi3dVariant,
        factor_sizes: [usize; 7],
        options: &ReadOptions,
    ) -> Result<Self, DataError> {
        let report = verify_sha256(path, options.expected_sha256.as_deref())?;
        let mut archive = NpzArchive::open(path)?;
        let (space, height, width) = check_layout(&mut archive, path, factor_sizes, options)?;
        let images = archive.file_array("images", options.cache_dir.as_deref())?;
        images.check_dtype::<u8>()?;
        Ok(Self {
            variant,
            space,
            height,
            width,
            images,
            report,
        })
    }

    /// Which rendering this is.
    pub fn variant(&self) -> Mpi3dVariant {
        self.variant
    }

    /// What was noticed while reading (checksum status).
    pub fn read_report(&self) -> &ReadReport {
        &self.report
    }
}

/// Checks the `images` header against `factor_sizes` and the strictness of `options`; returns the
/// factor space and the image height and width.
fn check_layout(
    archive: &mut NpzArchive<BufReader<File>>,
    path: &Path,
    factor_sizes: [usize; 7],
    options: &ReadOptions,
) -> Result<(FactorSpace, usize, usize), DataError> {
    let invalid = |message: String| DataError::InvalidFile {
        path: path.to_path_buf(),
        message,
    };
    if options.strict_shapes && factor_sizes != MPI3D_FACTOR_SIZES {
        return Err(DataError::InvalidArgument(format!(
            "strict MPI3D reading needs the official factor sizes {MPI3D_FACTOR_SIZES:?}, got {factor_sizes:?}"
        )));
    }
    let names = MPI3D_FACTOR_NAMES.iter().map(|s| s.to_string()).collect();
    let space = FactorSpace::new(names, factor_sizes.to_vec())?;
    let header = archive.header("images")?;
    if header.dtype != DType::U8 {
        return Err(invalid(format!(
            "array `images`: expected dtype |u1, found {}",
            header.dtype.descr()
        )));
    }
    let [n, height, width, 3] = header.shape[..] else {
        return Err(invalid(format!(
            "array `images`: expected shape [N, 64, 64, 3], found {:?}",
            header.shape
        )));
    };
    if n != space.len() {
        return Err(invalid(format!(
            "array `images`: expected {} images for factor sizes {factor_sizes:?}, found {n}",
            space.len()
        )));
    }
    if options.strict_shapes && (height != MPI3D_SIDE || width != MPI3D_SIDE) {
        return Err(invalid(format!(
            "array `images`: expected 64 x 64 images, found {height} x {width}"
        )));
    }
    if height == 0 || width == 0 {
        return Err(invalid(format!(
            "array `images`: empty shape {:?}",
            header.shape
        )));
    }
    Ok((space, height, width))
}

// Printed by hand: the factor grid says more than the open file's internals.
impl std::fmt::Debug for Mpi3dFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpi3dFile")
            .field("variant", &self.variant)
            .field("factor_sizes", &self.space.sizes())
            .field("height", &self.height)
            .field("width", &self.width)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl GroundTruthDataset for Mpi3dFile {
    fn name(&self) -> &str {
        self.variant.dataset_name()
    }

    fn factor_space(&self) -> &FactorSpace {
        &self.space
    }

    fn observation_shape(&self) -> ObservationShape {
        ObservationShape {
            channels: 3,
            height: self.height,
            width: self.width,
        }
    }

    fn observations_from_factors(
        &self,
        factors: &FactorMatrix,
        _rng: &mut dyn RngCore,
    ) -> Result<ImageBatch, DataError> {
        let plane = self.height * self.width;
        let mut out = vec![0f32; factors.len() * 3 * plane];
        let mut hwc = vec![0u8; 3 * plane];
        for (row, image) in factors.rows().zip(out.chunks_exact_mut(3 * plane)) {
            let index = self.space.index_of(row)?;
            self.images.read_bytes(index * 3 * plane, &mut hwc)?;
            for (p, rgb) in hwc.chunks_exact(3).enumerate() {
                for (c, &v) in rgb.iter().enumerate() {
                    image[c * plane + p] = f32::from(v) / 255.0;
                }
            }
        }
        ImageBatch::new(self.observation_shape(), out)
    }
}
