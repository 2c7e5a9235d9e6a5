//! The official 3DShapes file (Burgess & Kim 2018, deepmind/3d-shapes): `3dshapes.h5`, read
//! through the system libhdf5 (feature `hdf5`).

use std::path::Path;

use hdf5_metno::types::{FloatSize, IntSize, TypeDescriptor};
use rand::RngCore;

use super::{ReadOptions, ReadReport, row_major_grid, verify_sha256};
use crate::{
    DataError, FactorMatrix, FactorSpace, GroundTruthDataset, ImageBatch, ObservationShape,
    Shapes3D,
};

/// File name of the official HDF5 file.
pub const SHAPES3D_FILE_NAME: &str = "3dshapes.h5";
const SHAPES3D_SIDE: usize = 64;
const SHAPES3D_CHANNELS: usize = 3;
/// Largest distance between a stored label and the official factor value it stands for. The
/// official labels are `float64` renderings of k/10 and `linspace` points, equal to the
/// reference values up to rounding (≈ 1e-15); anything farther is a different grid.
const LABEL_TOLERANCE: f64 = 1e-6;

/// 3DShapes read from its HDF5 file: dataset `images` (`u8` [N, H, W, 3], HWC) and dataset
/// `labels` (`f64` [N, 6]: floor_hue, wall_hue, object_hue, scale, shape, orientation).
///
/// Each label is mapped to its class (the index of the official value it equals, see
/// [`Shapes3D::factor_values`]); factor k then has `max_i class[i, k] + 1` values, and row i must
/// equal the row-major unravelling of i over that grid (last factor fastest, the order of the
/// official file), so an observation is found by [`FactorSpace::index_of`]. With
/// [`ReadOptions::strict_shapes`] the file must hold exactly the official 480 000 × 64 × 64 × 3
/// images on the 10 × 10 × 10 × 8 × 4 × 15 grid; without it any prefix-shaped grid and any image
/// size is accepted, which lets tests use small fixtures with the official layout. Pixels are
/// kept as bytes (5.9 GB for the official file) and converted to CHW `f32` / 255 on lookup.
pub struct Shapes3dFile {
    space: FactorSpace,
    height: usize,
    width: usize,
    pixels: Vec<u8>,
    labels: Vec<f64>,
    report: ReadReport,
}

impl Shapes3dFile {
    /// Reads and validates the whole file at `path`: the labels are checked before the images
    /// are read, so a file with a wrong grid fails without loading gigabytes of pixels.
    pub fn open(path: &Path, options: &ReadOptions) -> Result<Self, DataError> {
        // libhdf5 reports a missing file as an opaque open failure; the OS error is clearer.
        std::fs::metadata(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let report = verify_sha256(path, options.expected_sha256.as_deref())?;
        let invalid = |message: String| DataError::InvalidFile {
            path: path.to_path_buf(),
            message,
        };
        let file = hdf5_metno::File::open(path)
            .map_err(|e| invalid(format!("not a readable HDF5 file: {e}")))?;
        let images = open_dataset(&file, "images", "u8 [N, 64, 64, 3]").map_err(&invalid)?;
        let labels = open_dataset(&file, "labels", "f64 [N, 6]").map_err(&invalid)?;
        check_dtype(
            &images,
            "images",
            TypeDescriptor::Unsigned(IntSize::U1),
            "u8",
        )
        .map_err(&invalid)?;
        check_dtype(
            &labels,
            "labels",
            TypeDescriptor::Float(FloatSize::U8),
            "f64",
        )
        .map_err(&invalid)?;

        let image_shape = images.shape();
        let [n, height, width, SHAPES3D_CHANNELS] = image_shape[..] else {
            return Err(invalid(format!(
                "dataset `images`: expected shape [N, 64, 64, 3], found {image_shape:?}"
            )));
        };
        let factors = Shapes3D::FACTOR_SIZES.len();
        let label_shape = labels.shape();
        if label_shape != [n, factors] {
            return Err(invalid(format!(
                "dataset `labels`: expected shape [{n}, {factors}] to match `images`, found {label_shape:?}"
            )));
        }
        let official_len: usize = Shapes3D::FACTOR_SIZES.iter().product();
        if options.strict_shapes
            && (n != official_len || height != SHAPES3D_SIDE || width != SHAPES3D_SIDE)
        {
            return Err(invalid(format!(
                "dataset `images`: expected the official shape [{official_len}, 64, 64, 3], found {image_shape:?}"
            )));
        }
        if n == 0 || height == 0 || width == 0 {
            return Err(invalid(format!(
                "dataset `images`: empty shape {image_shape:?}"
            )));
        }

        let label_values = labels
            .read_raw::<f64>()
            .map_err(|e| invalid(format!("dataset `labels`: cannot read the values: {e}")))?;
        let space = grid_from_labels(&label_values, n, options.strict_shapes)
            .map_err(|m| invalid(format!("dataset `labels`: {m}")))?;
        let pixels = images
            .read_raw::<u8>()
            .map_err(|e| invalid(format!("dataset `images`: cannot read the pixels: {e}")))?;
        let expected_bytes = n * height * width * SHAPES3D_CHANNELS;
        if pixels.len() != expected_bytes {
            return Err(invalid(format!(
                "dataset `images`: expected {expected_bytes} bytes, read {}",
                pixels.len()
            )));
        }
        Ok(Self {
            space,
            height,
            width,
            pixels,
            labels: label_values,
            report,
        })
    }

    /// What was noticed while reading (checksum status).
    pub fn read_report(&self) -> &ReadReport {
        &self.report
    }

    /// The stored `labels` row of the image with these factor classes: floor, wall and object
    /// hue (k/10), scale, shape (0–3) and orientation in degrees.
    pub fn label_values(&self, factors: &[usize]) -> Result<&[f64], DataError> {
        let index = self.space.index_of(factors)?;
        let k = self.space.num_factors();
        Ok(&self.labels[index * k..(index + 1) * k])
    }
}

/// Opens dataset `key`, naming what was expected when it is absent or not a dataset.
fn open_dataset(
    file: &hdf5_metno::File,
    key: &str,
    expected: &str,
) -> Result<hdf5_metno::Dataset, String> {
    if !file.link_exists(key) {
        return Err(format!("no dataset `{key}` (expected {expected})"));
    }
    file.dataset(key)
        .map_err(|e| format!("`{key}` is not a readable dataset (expected {expected}): {e}"))
}

/// Requires the stored element type to be exactly `expected`: libhdf5 would otherwise convert
/// e.g. `f64` to `u8` on read without complaint.
fn check_dtype(
    dataset: &hdf5_metno::Dataset,
    key: &str,
    expected: TypeDescriptor,
    expected_name: &str,
) -> Result<(), String> {
    let found = dataset
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(|e| format!("dataset `{key}`: unreadable element type: {e}"))?;
    if found != expected {
        return Err(format!(
            "dataset `{key}`: expected element type {expected_name}, found {found:?}"
        ));
    }
    Ok(())
}

/// Index of the official value of `factor` that `value` equals (within [`LABEL_TOLERANCE`]).
fn class_of(value: f64, official: &[f64]) -> Option<usize> {
    official
        .iter()
        .position(|&v| (v - value).abs() <= LABEL_TOLERANCE)
}

/// Maps the labels to factor classes, infers the grid and checks the file's row-major order.
fn grid_from_labels(labels: &[f64], n: usize, strict: bool) -> Result<FactorSpace, String> {
    let reference = Shapes3D::new();
    let k = Shapes3D::FACTOR_SIZES.len();
    let official = (0..k)
        .map(|f| reference.factor_values(f).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut classes = Vec::with_capacity(labels.len());
    for (i, row) in labels.chunks_exact(k).enumerate() {
        for (f, &value) in row.iter().enumerate() {
            let class = class_of(value, &official[f]).ok_or_else(|| {
                format!(
                    "row {i}: {} = {value} is not one of the official values {:?}",
                    Shapes3D::FACTOR_NAMES[f],
                    official[f]
                )
            })?;
            classes.push(class);
        }
    }
    row_major_grid(
        &classes,
        n,
        &Shapes3D::FACTOR_NAMES,
        &Shapes3D::FACTOR_SIZES,
        strict,
    )
}

// Printed by hand: the derived form would dump gigabytes of pixels.
impl std::fmt::Debug for Shapes3dFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shapes3dFile")
            .field("factor_sizes", &self.space.sizes())
            .field("height", &self.height)
            .field("width", &self.width)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl GroundTruthDataset for Shapes3dFile {
    fn name(&self) -> &str {
        "shapes3d"
    }

    fn factor_space(&self) -> &FactorSpace {
        &self.space
    }

    fn observation_shape(&self) -> ObservationShape {
        ObservationShape {
            channels: SHAPES3D_CHANNELS,
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
        let numel = SHAPES3D_CHANNELS * plane;
        let mut out = vec![0f32; factors.len() * numel];
        for (row, image) in factors.rows().zip(out.chunks_exact_mut(numel)) {
            let index = self.space.index_of(row)?;
            let hwc = &self.pixels[index * numel..(index + 1) * numel];
            for (p, rgb) in hwc.chunks_exact(SHAPES3D_CHANNELS).enumerate() {
                for (c, &v) in rgb.iter().enumerate() {
                    image[c * plane + p] = f32::from(v) / 255.0;
                }
            }
        }
        ImageBatch::new(self.observation_shape(), out)
    }
}
