//! PNG grids of images, for looking at data, reconstructions and latent traversals.

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::io::write_atomic;
use crate::{DataError, GroundTruthDataset, ImageBatch};

/// Width of the grey lines between grid cells, in pixels.
const SEPARATOR_PX: usize = 2;
/// Grey level of the separator lines (mid grey stands out on both black and white images).
const SEPARATOR_GREY: u8 = 128;

/// Writes `images` as one PNG grid, `columns` images per row (row-major, the last row padded with
/// separator grey), with 2 px grey separators.
///
/// Values in [0, 1] are scaled to `u8` as round(255·v) after clamping; 1-channel images give a
/// grayscale PNG, 3-channel images an RGB PNG. The file is written with
/// [`crate::io::write_atomic`], so readers never see a half-written image.
pub fn save_png_grid(images: &ImageBatch, columns: usize, path: &Path) -> Result<(), DataError> {
    let shape = images.shape();
    if images.is_empty() || columns == 0 {
        return Err(DataError::InvalidArgument(format!(
            "a PNG grid needs at least one image and one column (got {} images, {columns} columns)",
            images.len()
        )));
    }
    let color = match shape.channels {
        1 => image::ExtendedColorType::L8,
        3 => image::ExtendedColorType::Rgb8,
        c => {
            return Err(DataError::InvalidArgument(format!(
                "PNG grids support 1 or 3 channels, got {c}"
            )));
        }
    };
    let channels = shape.channels;
    let columns = columns.min(images.len());
    let rows = images.len().div_ceil(columns);
    let width = columns * shape.width + (columns - 1) * SEPARATOR_PX;
    let height = rows * shape.height + (rows - 1) * SEPARATOR_PX;
    let mut canvas = vec![SEPARATOR_GREY; width * height * channels];
    let plane = shape.height * shape.width;
    for i in 0..images.len() {
        let image = images.image(i);
        let top = (i / columns) * (shape.height + SEPARATOR_PX);
        let left = (i % columns) * (shape.width + SEPARATOR_PX);
        for y in 0..shape.height {
            for x in 0..shape.width {
                for c in 0..channels {
                    let value = image[c * plane + y * shape.width + x];
                    canvas[((top + y) * width + left + x) * channels + c] =
                        (value.clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            }
        }
    }
    let too_large =
        || DataError::InvalidArgument(format!("a {width}x{height} grid is too large for PNG"));
    let width_px = u32::try_from(width).map_err(|_| too_large())?;
    let height_px = u32::try_from(height).map_err(|_| too_large())?;
    let mut encoded = std::io::Cursor::new(Vec::new());
    image::write_buffer_with_format(
        &mut encoded,
        &canvas,
        width_px,
        height_px,
        color,
        image::ImageFormat::Png,
    )
    .map_err(|e| DataError::InvalidArgument(format!("cannot encode the PNG grid: {e}")))?;
    write_atomic(path, &encoded.into_inner())
}

/// A factor-traversal grid: from one uniformly drawn base state (seeded ChaCha8), one row per
/// factor with more than one value, showing every value of that factor with the others fixed.
///
/// Returns the images row-major and the number of columns (the largest factor size); shorter rows
/// are padded with black images. Feed both to [`save_png_grid`].
pub fn factor_traversal_grid(
    dataset: &dyn GroundTruthDataset,
    seed: u64,
) -> Result<(ImageBatch, usize), DataError> {
    let space = dataset.factor_space();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let base = space.sample(1, &mut rng);
    let varying: Vec<usize> = (0..space.num_factors())
        .filter(|&k| space.sizes()[k] > 1)
        .collect();
    if varying.is_empty() {
        return Err(DataError::InvalidArgument(format!(
            "dataset `{}` has no factor with more than one value",
            dataset.name()
        )));
    }
    let columns = varying.iter().map(|&k| space.sizes()[k]).max().unwrap_or(1);
    let numel = dataset.observation_shape().numel();
    let mut pixels = Vec::with_capacity(varying.len() * columns * numel);
    for &k in &varying {
        let traversal = space.traverse(base.row(0), k)?;
        let images = dataset.observations_from_factors(&traversal, &mut rng)?;
        pixels.extend_from_slice(images.pixels());
        pixels.resize(pixels.len() + (columns - traversal.len()) * numel, 0.0);
    }
    Ok((
        ImageBatch::new(dataset.observation_shape(), pixels)?,
        columns,
    ))
}
