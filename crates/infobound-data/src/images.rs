//! Pixel storage shared by every dataset: NCHW `f32` in [0, 1].

use crate::DataError;

/// Shape of one observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservationShape {
    /// Number of channels (1 for dSprites, 3 for RGB datasets).
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

impl ObservationShape {
    /// Number of values in one observation, C·H·W.
    pub fn numel(&self) -> usize {
        self.channels * self.height * self.width
    }
}

/// A batch of images, NCHW, values in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct ImageBatch {
    shape: ObservationShape,
    pixels: Vec<f32>,
}

impl ImageBatch {
    /// Wraps NCHW pixels; their length must be a multiple of `shape.numel()`.
    pub fn new(shape: ObservationShape, pixels: Vec<f32>) -> Result<Self, DataError> {
        let numel = shape.numel();
        if numel == 0 || !pixels.len().is_multiple_of(numel) {
            return Err(DataError::InvalidArgument(format!(
                "{} pixel values do not fill images of shape {}x{}x{}",
                pixels.len(),
                shape.channels,
                shape.height,
                shape.width
            )));
        }
        Ok(Self { shape, pixels })
    }

    /// Shape of each image.
    pub fn shape(&self) -> ObservationShape {
        self.shape
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / self.shape.numel()
    }

    /// True when the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    /// Pixels of image `i` (CHW). Panics if `i >= len()` like slice indexing.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.shape.numel();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// All pixels, NCHW.
    pub fn pixels(&self) -> &[f32] {
        &self.pixels
    }

    /// All pixels, NCHW, for in-place changes (the shape stays as it is).
    pub fn pixels_mut(&mut self) -> &mut [f32] {
        &mut self.pixels
    }

    /// Consumes the batch, returning its NCHW pixels.
    pub fn into_pixels(self) -> Vec<f32> {
        self.pixels
    }
}
