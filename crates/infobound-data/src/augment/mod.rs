//! Self-supervised augmentations (BYOL, Grill et al. 2020, appendix B; multi-crop from SwAV,
//! Caron et al. 2020) as used by MVEB (Wen et al., TPAMI 2024, `configs/mveb.py`): two global
//! views with asymmetric blur/solarisation and N local views, on CHW `f32` images in [0, 1].
//!
//! Randomness is drawn from a ChaCha8 generator keyed by (seed, step, image index, view index),
//! so every view of every image is reproducible and independent of how rayon splits the batch.

mod ops;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::{DataError, ImageBatch, ObservationShape};

use ops::uniform;
pub use ops::{
    CropBox, MAX_BLUR_KERNEL, adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation,
    gaussian_blur, horizontal_flip, normalize, resized_crop, sample_crop_box, solarize,
    to_grayscale,
};

/// Colour jitter applied with probability `probability`: brightness, contrast and saturation
/// factors are drawn from U[max(0, 1 − x), 1 + x], the hue shift from U[−hue, hue], and the
/// four adjustments run in a random order (torchvision `ColorJitter`). A zero strength skips
/// that adjustment.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ColorJitterConfig {
    /// Brightness strength (BYOL: 0.4).
    pub brightness: f32,
    /// Contrast strength (BYOL: 0.4).
    pub contrast: f32,
    /// Saturation strength (BYOL: 0.2).
    pub saturation: f32,
    /// Hue strength in turns, ≤ 0.5 (BYOL: 0.1).
    pub hue: f32,
    /// Probability of applying the jitter at all (BYOL: 0.8).
    pub probability: f32,
}

impl Default for ColorJitterConfig {
    fn default() -> Self {
        Self {
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.2,
            hue: 0.1,
            probability: 0.8,
        }
    }
}

/// Per-channel mean and standard deviation used by the final normalisation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NormalizationConfig {
    /// Channel means.
    pub mean: Vec<f32>,
    /// Channel standard deviations (> 0).
    pub std: Vec<f32>,
}

impl Default for NormalizationConfig {
    /// The ImageNet statistics used by BYOL and MVEB.
    fn default() -> Self {
        Self {
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
        }
    }
}

/// The pipeline that produces one view: random resized crop → horizontal flip → colour jitter →
/// grayscale → Gaussian blur → solarisation → normalisation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ViewConfig {
    /// Output side in pixels (square views).
    pub size: usize,
    /// Range of the crop's area fraction.
    pub scale: (f32, f32),
    /// Range of the crop's aspect ratio w/h (sampled log-uniformly).
    pub ratio: (f32, f32),
    /// Probability of a horizontal flip.
    pub flip_probability: f32,
    /// Colour jitter.
    pub color_jitter: ColorJitterConfig,
    /// Probability of converting to grayscale.
    pub grayscale_probability: f32,
    /// Probability of a Gaussian blur.
    pub blur_probability: f32,
    /// Range of the blur's σ in pixels.
    pub blur_sigma: (f32, f32),
    /// Odd blur kernel size; `None` takes the odd size nearest 10 % of `size` (at least 3), the
    /// SimCLR rule that gives BYOL's 23 taps at 224 px.
    pub blur_kernel_size: Option<usize>,
    /// Probability of solarisation.
    pub solarize_probability: f32,
    /// Values at or above this are inverted by solarisation (default
    /// [`PIL_SOLARIZE_THRESHOLD`]).
    pub solarize_threshold: f32,
    /// Final normalisation; `None` keeps values in [0, 1].
    pub normalization: Option<NormalizationConfig>,
}

/// PIL's solarisation threshold on [0, 1] images: `ImageOps.solarize(img)` inverts 8-bit levels
/// `≥ 128` (its default `threshold=128`), i.e. values `≥ 128/255`. The official MVEB code calls
/// it with that default (wlj6816/MVEB@9ac7965 `project/dataloader.py`, class `Solarization`),
/// as BYOL's and DINO's pipelines do. On 8-bit images it inverts the same pixels as ½; on our
/// continuous values it also leaves `[0.5, 128/255)` alone, as PIL does.
pub const PIL_SOLARIZE_THRESHOLD: f32 = 128.0 / 255.0;

impl ViewConfig {
    /// A global view of side `size`: scale (0.4, 1), ratio (3/4, 4/3), flip ½, jitter 0.8,
    /// grayscale 0.2, blur σ ∈ [0.1, 2], ImageNet normalisation.
    pub fn global(size: usize, blur_probability: f32, solarize_probability: f32) -> Self {
        Self {
            size,
            scale: (0.4, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            flip_probability: 0.5,
            color_jitter: ColorJitterConfig::default(),
            grayscale_probability: 0.2,
            blur_probability,
            blur_sigma: (0.1, 2.0),
            blur_kernel_size: None,
            solarize_probability,
            solarize_threshold: PIL_SOLARIZE_THRESHOLD,
            normalization: Some(NormalizationConfig::default()),
        }
    }

    /// A local view of side `size`: as a global view but scale (0.05, 0.4), blur ½, no
    /// solarisation.
    pub fn local(size: usize) -> Self {
        Self {
            scale: (0.05, 0.4),
            ..Self::global(size, 0.5, 0.0)
        }
    }

    /// The blur kernel size in use.
    pub fn kernel_size(&self) -> usize {
        self.blur_kernel_size.unwrap_or_else(|| {
            let k = ((self.size as f32) * 0.1).round() as usize;
            (k | 1).max(3)
        })
    }

    /// Checks ranges and probabilities.
    pub fn validate(&self) -> Result<(), DataError> {
        let bad = |what: &str| Err(DataError::InvalidArgument(format!("view config: {what}")));
        let prob = |p: f32| (0.0..=1.0).contains(&p);
        let jitter = &self.color_jitter;
        if self.size == 0 || u32::try_from(self.size).is_err() {
            return bad("size must be positive");
        }
        if !(self.scale.0 > 0.0 && self.scale.0 <= self.scale.1 && self.scale.1 <= 1.0) {
            return bad("scale must satisfy 0 < lo <= hi <= 1");
        }
        if !(self.ratio.0 > 0.0 && self.ratio.0 <= self.ratio.1 && self.ratio.1.is_finite()) {
            return bad("ratio must satisfy 0 < lo <= hi");
        }
        if !(self.blur_sigma.0 > 0.0
            && self.blur_sigma.0 <= self.blur_sigma.1
            && self.blur_sigma.1.is_finite())
        {
            return bad("blur sigma must satisfy 0 < lo <= hi");
        }
        if self.kernel_size().is_multiple_of(2) || self.kernel_size() > MAX_BLUR_KERNEL {
            return bad("blur kernel size must be odd and at most MAX_BLUR_KERNEL");
        }
        if ![
            self.flip_probability,
            jitter.probability,
            self.grayscale_probability,
            self.blur_probability,
            self.solarize_probability,
        ]
        .into_iter()
        .all(prob)
        {
            return bad("probabilities must lie in [0, 1]");
        }
        if ![jitter.brightness, jitter.contrast, jitter.saturation]
            .into_iter()
            .all(|x| x >= 0.0 && x.is_finite())
            || !(0.0..=0.5).contains(&jitter.hue)
        {
            return bad("jitter strengths must be >= 0 and hue <= 0.5");
        }
        if !self.solarize_threshold.is_finite() {
            return bad("solarisation threshold must be finite");
        }
        Ok(())
    }
}

impl Default for ViewConfig {
    /// MVEB's first global view at 224 px.
    fn default() -> Self {
        Self::global(224, 1.0, 0.0)
    }
}

/// Multi-crop views: the global views in order, then `num_local_views` local views.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct MultiCropConfig {
    /// One pipeline per global view (MVEB: two, blur 1.0 / 0.1, solarise 0 / 0.2).
    pub global_views: Vec<ViewConfig>,
    /// The pipeline shared by every local view.
    pub local_view: ViewConfig,
    /// Number of local views (MVEB: 6).
    pub num_local_views: usize,
}

impl MultiCropConfig {
    /// MVEB's views at the given sizes: global (scale 0.4–1; blur 1.0 and 0.1; solarise 0 and
    /// 0.2) and local (scale 0.05–0.4; blur 0.5).
    pub fn mveb(global_size: usize, local_size: usize, num_local_views: usize) -> Self {
        Self {
            global_views: vec![
                ViewConfig::global(global_size, 1.0, 0.0),
                ViewConfig::global(global_size, 0.1, 0.2),
            ],
            local_view: ViewConfig::local(local_size),
            num_local_views,
        }
    }

    /// ImageNet scale: 2 × 224 px + 6 × 96 px.
    pub fn mveb_imagenet() -> Self {
        Self::mveb(224, 96, 6)
    }

    /// CIFAR scale: 2 × 32 px + 6 × 16 px.
    pub fn mveb_cifar() -> Self {
        Self::mveb(32, 16, 6)
    }

    /// The pipeline of every view, globals first.
    pub fn views(&self) -> impl Iterator<Item = &ViewConfig> {
        self.global_views
            .iter()
            .chain(std::iter::repeat_n(&self.local_view, self.num_local_views))
    }
}

impl Default for MultiCropConfig {
    fn default() -> Self {
        Self::mveb_imagenet()
    }
}

/// Runs one view pipeline on one CHW image in [0, 1] (the config is validated first).
pub fn augment_view<R: Rng + ?Sized>(
    image: &[f32],
    shape: ObservationShape,
    config: &ViewConfig,
    rng: &mut R,
) -> Result<Vec<f32>, DataError> {
    config.validate()?;
    let crop = sample_crop_box(shape.height, shape.width, config.scale, config.ratio, rng)?;
    let mut view = resized_crop(image, shape, crop, config.size, config.size)?;
    let out_shape = ObservationShape {
        channels: shape.channels,
        height: config.size,
        width: config.size,
    };
    if rng.random_bool(f64::from(config.flip_probability)) {
        horizontal_flip(&mut view, out_shape)?;
    }
    if rng.random_bool(f64::from(config.color_jitter.probability)) {
        color_jitter(&mut view, out_shape, &config.color_jitter, rng)?;
    }
    if rng.random_bool(f64::from(config.grayscale_probability)) {
        to_grayscale(&mut view, out_shape)?;
    }
    if rng.random_bool(f64::from(config.blur_probability)) {
        let sigma = uniform(rng, config.blur_sigma.0, config.blur_sigma.1);
        gaussian_blur(&mut view, out_shape, sigma, config.kernel_size())?;
    }
    if rng.random_bool(f64::from(config.solarize_probability)) {
        solarize(&mut view, config.solarize_threshold);
    }
    if let Some(norm) = &config.normalization {
        normalize(&mut view, out_shape, &norm.mean, &norm.std)?;
    }
    Ok(view)
}

/// Applies the four jitter adjustments in a random order with freshly drawn factors.
fn color_jitter<R: Rng + ?Sized>(
    image: &mut [f32],
    shape: ObservationShape,
    config: &ColorJitterConfig,
    rng: &mut R,
) -> Result<(), DataError> {
    let mut order = [0u8, 1, 2, 3];
    order.shuffle(rng);
    let factor = |rng: &mut R, x: f32| uniform(rng, (1.0 - x).max(0.0), 1.0 + x);
    for step in order {
        match step {
            0 if config.brightness > 0.0 => {
                let f = factor(rng, config.brightness);
                adjust_brightness(image, shape, f)?;
            }
            1 if config.contrast > 0.0 => {
                let f = factor(rng, config.contrast);
                adjust_contrast(image, shape, f)?;
            }
            2 if config.saturation > 0.0 => {
                let f = factor(rng, config.saturation);
                adjust_saturation(image, shape, f)?;
            }
            3 if config.hue > 0.0 => {
                let shift = uniform(rng, -config.hue, config.hue);
                adjust_hue(image, shape, shift)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The generator for view `view` of image `image` at `step` of a run seeded with `seed`.
pub fn view_rng(seed: u64, step: u64, image: u64, view: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    for (chunk, value) in key.chunks_exact_mut(8).zip([seed, step, image, view]) {
        chunk.copy_from_slice(&value.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// Produces multi-crop views of image batches, in parallel over the images.
#[derive(Debug, Clone)]
pub struct MultiCropAugmenter {
    config: MultiCropConfig,
}

impl MultiCropAugmenter {
    /// Validates `config`.
    pub fn new(config: MultiCropConfig) -> Result<Self, DataError> {
        if config.global_views.is_empty() && config.num_local_views == 0 {
            return Err(DataError::InvalidArgument(
                "multi-crop config produces no view".into(),
            ));
        }
        config.views().try_for_each(ViewConfig::validate)?;
        Ok(Self { config })
    }

    /// The configuration.
    pub fn config(&self) -> &MultiCropConfig {
        &self.config
    }

    /// Number of views per image.
    pub fn num_views(&self) -> usize {
        self.config.global_views.len() + self.config.num_local_views
    }

    /// One batch per view (globals first); image i of view v uses
    /// [`view_rng`]`(seed, step, i, v)`.
    pub fn augment(
        &self,
        batch: &ImageBatch,
        seed: u64,
        step: u64,
    ) -> Result<Vec<ImageBatch>, DataError> {
        let shape = batch.shape();
        self.config
            .views()
            .enumerate()
            .map(|(v, config)| {
                let out_shape = ObservationShape {
                    channels: shape.channels,
                    height: config.size,
                    width: config.size,
                };
                let mut pixels = vec![0f32; batch.len() * out_shape.numel()];
                pixels
                    .par_chunks_mut(out_shape.numel())
                    .enumerate()
                    .try_for_each(|(i, out)| {
                        let mut rng = view_rng(seed, step, i as u64, v as u64);
                        let view = augment_view(batch.image(i), shape, config, &mut rng)?;
                        out.copy_from_slice(&view);
                        Ok::<_, DataError>(())
                    })?;
                ImageBatch::new(out_shape, pixels)
            })
            .collect()
    }
}
