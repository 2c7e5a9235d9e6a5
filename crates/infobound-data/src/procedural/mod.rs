//! Procedural look-alikes of dSprites and 3DShapes: exact factor grids, pixels rendered on demand.
//!
//! Both renderers write `u8` pixels (as the real files store them) and convert to `f32` by
//! dividing by 255, so cached and freshly rendered images are bit-identical. A batch is rendered in
//! parallel with rayon; each image depends only on its own factor vector, never on thread
//! scheduling.

mod cache;
mod dsprites;
mod shapes3d;

pub use dsprites::{DSprites, DSpritesShape};
pub use shapes3d::{Shapes3D, Shapes3DShape};

use rayon::prelude::*;

use crate::{DataError, FactorMatrix, FactorSpace, ImageBatch, ObservationShape};
use cache::RenderCache;

/// `n` evenly spaced values from `start` to `end`, both included (NumPy's `linspace`).
pub(crate) fn linspace(start: f64, end: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![start];
    }
    (0..n).map(|i| linspace_at(start, end, n, i)).collect()
}

/// Entry `i` of [`linspace`]`(start, end, n)` without building the vector.
pub(crate) fn linspace_at(start: f64, end: f64, n: usize, i: usize) -> f64 {
    if n == 1 {
        return start;
    }
    // NumPy pins the last entry to `end` exactly.
    if i + 1 == n {
        return end;
    }
    start + (end - start) / (n - 1) as f64 * i as f64
}

/// Checks `factor < num_factors` for the per-factor value accessors.
pub(crate) fn check_factor_index(space: &FactorSpace, factor: usize) -> Result<(), DataError> {
    if factor >= space.num_factors() {
        return Err(DataError::InvalidArgument(format!(
            "factor index {factor} out of range for {} factors",
            space.num_factors()
        )));
    }
    Ok(())
}

/// Renders one image per row of `factors` in parallel, through `cache` when there is one.
///
/// `render` writes one CHW `u8` image for a validated factor vector.
pub(crate) fn render_batch<R>(
    space: &FactorSpace,
    shape: ObservationShape,
    factors: &FactorMatrix,
    cache: Option<&RenderCache>,
    render: R,
) -> Result<ImageBatch, DataError>
where
    R: Fn(&[usize], &mut [u8]) + Sync,
{
    space.validate_matrix(factors)?;
    let numel = shape.numel();
    let mut pixels = vec![0.0f32; factors.len() * numel];
    pixels
        .par_chunks_mut(numel)
        .zip(factors.as_slice().par_chunks(space.num_factors()))
        .for_each_init(
            || vec![0u8; numel],
            |buffer, (out, row)| {
                // Rows were validated above, so every row has a flat index.
                match cache.zip(space.index_of(row).ok()) {
                    Some((cache, index)) => cache.render_through(index, buffer, |b| render(row, b)),
                    None => render(row, buffer),
                }
                for (o, &b) in out.iter_mut().zip(buffer.iter()) {
                    *o = f32::from(b) / 255.0;
                }
            },
        );
    ImageBatch::new(shape, pixels)
}

/// Scales a colour channel in [0, 1] to `u8` with round-half-up, clamping out-of-range values.
pub(crate) fn to_u8(value: f32) -> u8 {
    (value.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
}
