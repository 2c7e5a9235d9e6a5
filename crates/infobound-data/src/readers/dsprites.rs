//! The official dSprites file (Matthey et al. 2017, deepmind/dsprites-dataset):
//! `dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use rand::RngCore;

use super::file_array::FileArray;
use super::npy::DType;
use super::npz::NpzArchive;
use super::{ReadOptions, ReadReport, row_major_grid, verify_sha256};
use crate::{
    DataError, FactorMatrix, FactorSpace, GroundTruthDataset, ImageBatch, ObservationShape,
};

/// File name of the official archive.
pub const DSPRITES_FILE_NAME: &str = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz";
/// Factor names in file order (as in disentanglement_lib).
pub const DSPRITES_FACTOR_NAMES: [&str; 6] =
    ["color", "shape", "scale", "orientation", "posX", "posY"];
/// Number of values of each factor in the official file (737 280 images in all).
pub const DSPRITES_FACTOR_SIZES: [usize; 6] = [1, 3, 6, 40, 32, 32];
const DSPRITES_SIDE: usize = 64;

/// dSprites read from its `.npz`: `imgs` (`u8` [N, H, W] of 0/1 pixels), `latents_classes`
/// (`i64` [N, 6]) and `latents_values` (`f64` [N, 6]). The official file's fourth member,
/// `metadata`, is a pickled Python dict (an object-dtype `.npy`); it is never read, let alone
/// unpickled.
///
/// The images are never loaded whole (3 GB for the official file): the official archive is
/// deflated, so `imgs` is decompressed once into a cache file (see [`NpzArchive::file_array`]
/// and [`ReadOptions::cache_dir`]) and read image by image from there; a stored archive is read
/// in place. Opening streams through every pixel once to check it is 0 or 1.
///
/// The factor grid is taken from `latents_classes`: factor k has `max_i classes[i, k] + 1`
/// values, and row i must equal the row-major unravelling of i over that grid (which is how the
/// official file is ordered), so an observation is found by [`FactorSpace::index_of`]. With
/// [`ReadOptions::strict_shapes`] the grid must be the official 1 × 3 × 6 × 40 × 32 × 32 of
/// 64 × 64 images; without it any consistent grid and image size is accepted, which lets tests
/// use small fixtures with the official layout.
pub struct DSpritesFile {
    space: FactorSpace,
    height: usize,
    width: usize,
    imgs: FileArray,
    latent_values: Vec<f64>,
    report: ReadReport,
}

impl DSpritesFile {
    /// Checks the archive's keys, dtypes and shapes from the array headers alone, without
    /// reading any data: what [`DSpritesFile::open`] checks first, cheap enough to run before a
    /// run writes anything.
    pub fn validate(path: &Path, options: &ReadOptions) -> Result<(), DataError> {
        let mut archive = NpzArchive::open(path)?;
        check_layout(&mut archive, path, options).map(|_| ())
    }

    /// Validates the archive at `path` (layout, label grid and order, every pixel 0 or 1) and
    /// opens it: labels are loaded, images are read on demand.
    pub fn open(path: &Path, options: &ReadOptions) -> Result<Self, DataError> {
        let report = verify_sha256(path, options.expected_sha256.as_deref())?;
        let invalid = |message: String| DataError::InvalidFile {
            path: path.to_path_buf(),
            message,
        };
        let mut archive = NpzArchive::open(path)?;
        let (n, height, width) = check_layout(&mut archive, path, options)?;
        let classes = archive.read::<i64>("latents_classes")?.into_parts().1;
        let space = grid_from_classes(&classes, n, options.strict_shapes)
            .map_err(|m| invalid(format!("array `latents_classes`: {m}")))?;
        let latent_values = archive.read::<f64>("latents_values")?.into_parts().1;
        let imgs = archive.file_array("imgs", options.cache_dir.as_deref())?;
        imgs.check_dtype::<u8>()?;
        imgs.for_each_chunk(|offset, bytes| match bytes.iter().position(|&p| p > 1) {
            Some(bad) => Err(format!(
                "pixels must be 0 or 1, found {} at flat position {}",
                bytes[bad],
                offset + bad
            )),
            None => Ok(()),
        })?;
        Ok(Self {
            space,
            height,
            width,
            imgs,
            latent_values,
            report,
        })
    }

    /// What was noticed while reading (checksum status).
    pub fn read_report(&self) -> &ReadReport {
        &self.report
    }

    /// The continuous latent values (`latents_values` row) of the image with these factors:
    /// color, shape, scale, orientation in radians, posX, posY.
    pub fn latent_values(&self, factors: &[usize]) -> Result<&[f64], DataError> {
        let index = self.space.index_of(factors)?;
        let k = self.space.num_factors();
        Ok(&self.latent_values[index * k..(index + 1) * k])
    }
}

/// Checks keys, dtypes and shapes of the three arrays from their headers; returns the number of
/// images and their height and width.
fn check_layout(
    archive: &mut NpzArchive<BufReader<File>>,
    path: &Path,
    options: &ReadOptions,
) -> Result<(usize, usize, usize), DataError> {
    let invalid = |message: String| DataError::InvalidFile {
        path: path.to_path_buf(),
        message,
    };
    let imgs = archive.header("imgs")?;
    let classes = archive.header("latents_classes")?;
    let values = archive.header("latents_values")?;
    for (key, header, dtype) in [
        ("imgs", &imgs, DType::U8),
        ("latents_classes", &classes, DType::I64),
        ("latents_values", &values, DType::F64),
    ] {
        if header.dtype != dtype {
            return Err(invalid(format!(
                "array `{key}`: expected dtype {}, found {}",
                dtype.descr(),
                header.dtype.descr()
            )));
        }
    }
    let [n, height, width] = imgs.shape[..] else {
        return Err(invalid(format!(
            "array `imgs`: expected shape [N, 64, 64], found {:?}",
            imgs.shape
        )));
    };
    let factors = DSPRITES_FACTOR_SIZES.len();
    for (key, header) in [("latents_classes", &classes), ("latents_values", &values)] {
        if header.shape != [n, factors] {
            return Err(invalid(format!(
                "array `{key}`: expected shape [{n}, {factors}] to match `imgs`, found {:?}",
                header.shape
            )));
        }
    }
    let official_len: usize = DSPRITES_FACTOR_SIZES.iter().product();
    if options.strict_shapes
        && (n != official_len || height != DSPRITES_SIDE || width != DSPRITES_SIDE)
    {
        return Err(invalid(format!(
            "array `imgs`: expected the official shape [{official_len}, 64, 64], found {:?}",
            imgs.shape
        )));
    }
    if n == 0 || height == 0 || width == 0 {
        return Err(invalid(format!(
            "array `imgs`: empty shape {:?}",
            imgs.shape
        )));
    }
    Ok((n, height, width))
}

/// Infers the factor grid from `latents_classes` and checks the file's row-major order.
fn grid_from_classes(classes: &[i64], n: usize, strict: bool) -> Result<FactorSpace, String> {
    let k = DSPRITES_FACTOR_SIZES.len();
    let classes = classes
        .iter()
        .enumerate()
        .map(|(index, &class)| {
            usize::try_from(class)
                .map_err(|_| format!("negative class {class} in row {}", index / k))
        })
        .collect::<Result<Vec<usize>, String>>()?;
    row_major_grid(
        &classes,
        n,
        &DSPRITES_FACTOR_NAMES,
        &DSPRITES_FACTOR_SIZES,
        strict,
    )
}

// Printed by hand: the derived form would dump every latent value.
impl std::fmt::Debug for DSpritesFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DSpritesFile")
            .field("factor_sizes", &self.space.sizes())
            .field("height", &self.height)
            .field("width", &self.width)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl GroundTruthDataset for DSpritesFile {
    fn name(&self) -> &str {
        "dsprites"
    }

    fn factor_space(&self) -> &FactorSpace {
        &self.space
    }

    fn observation_shape(&self) -> ObservationShape {
        ObservationShape {
            channels: 1,
            height: self.height,
            width: self.width,
        }
    }

    fn observations_from_factors(
        &self,
        factors: &FactorMatrix,
        _rng: &mut dyn RngCore,
    ) -> Result<ImageBatch, DataError> {
        let numel = self.height * self.width;
        let mut out = Vec::with_capacity(factors.len() * numel);
        let mut image = vec![0u8; numel];
        for row in factors.rows() {
            let index = self.space.index_of(row)?;
            self.imgs.read_bytes(index * numel, &mut image)?;
            out.extend(image.iter().map(|&p| f32::from(p)));
        }
        ImageBatch::new(self.observation_shape(), out)
    }
}
