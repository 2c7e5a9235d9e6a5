//! Augmentation properties: exact identities (flip twice, unit factors, zero jitter), grayscale
//! and solarisation semantics, hue rotation of primaries, bicubic resampling against PIL,
//! output sizes, value ranges, and determinism independent of the rayon thread count.

use infobound_data::augment::{
    ColorJitterConfig, CropBox, MultiCropAugmenter, MultiCropConfig, PIL_SOLARIZE_THRESHOLD,
    ViewConfig, adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, augment_view,
    gaussian_blur, horizontal_flip, normalize, resized_crop, sample_crop_box, solarize,
    to_grayscale, view_rng,
};
use infobound_data::{DataError, ImageBatch, ObservationShape};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Reference values from Pillow 12: `Image.fromarray(src, 'F').resize(size, BICUBIC, box=...)`
/// with `src = (arange(36).reshape(6, 6) ** 1.3) / 35 ** 1.3; src[2, 3] = 0`.
const PIL_SOURCE: [f32; 36] = [
    0.0,
    0.009833577,
    0.024213105,
    0.0410175,
    0.059619665,
    0.07968425,
    0.10099691,
    0.12340676,
    0.14680083,
    0.17109083,
    0.19620563,
    0.2220864,
    0.24868359,
    0.27595472,
    0.30386308,
    0.0,
    0.36146596,
    0.39110652,
    0.42127508,
    0.4519508,
    0.48311496,
    0.51475024,
    0.54684085,
    0.5793722,
    0.6123308,
    0.64570403,
    0.67948025,
    0.7136485,
    0.7481986,
    0.783121,
    0.8184066,
    0.85404676,
    0.89003366,
    0.9263596,
    0.9630172,
    0.9999998,
];
const PIL_DOWN: [f32; 6] = [
    0.074668735,
    0.08748538,
    0.14762191,
    0.37042922,
    0.34184152,
    0.4742786,
];
const PIL_UP: [f32; 56] = [
    0.08067718,
    0.08597725,
    0.09719351,
    0.108346745,
    0.1186483,
    0.13515824,
    0.15787658,
    0.16975215,
    0.17892933,
    0.18549697,
    0.1993962,
    0.21854058,
    0.24195278,
    0.1902487,
    0.06342833,
    0.0770641,
    0.2931386,
    0.3003922,
    0.31574318,
    0.33766901,
    0.3650903,
    0.29771554,
    0.1355448,
    0.15042992,
    0.4185684,
    0.4264143,
    0.44301894,
    0.45969644,
    0.47527933,
    0.49097997,
    0.5067984,
    0.5227305,
    0.5532291,
    0.5615832,
    0.5792635,
    0.59676784,
    0.61285317,
    0.63237226,
    0.6553252,
    0.67217016,
    0.7127486,
    0.7215896,
    0.74030024,
    0.75904447,
    0.77650666,
    0.7940597,
    0.81170356,
    0.8294362,
    0.8272546,
    0.83640903,
    0.8557829,
    0.8751801,
    0.89323837,
    0.9113805,
    0.9296066,
    0.94791496,
];

fn shape(channels: usize, height: usize, width: usize) -> ObservationShape {
    ObservationShape {
        channels,
        height,
        width,
    }
}

fn random_image(shape: ObservationShape, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..shape.numel()).map(|_| rng.random::<f32>()).collect()
}

fn assert_close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "index {i}: {x} vs {y}");
    }
}

#[test]
fn bicubic_resized_crop_matches_pillow() {
    let s = shape(1, 6, 6);
    let down = resized_crop(
        &PIL_SOURCE,
        s,
        CropBox {
            top: 0,
            left: 1,
            height: 4,
            width: 5,
        },
        2,
        3,
    )
    .unwrap();
    assert_close(&down, &PIL_DOWN, 1e-5);
    let up = resized_crop(
        &PIL_SOURCE,
        s,
        CropBox {
            top: 1,
            left: 0,
            height: 5,
            width: 4,
        },
        7,
        8,
    )
    .unwrap();
    assert_close(&up, &PIL_UP, 1e-5);
}

#[test]
fn same_size_full_crop_is_the_identity() {
    let s = shape(3, 9, 7);
    let image = random_image(s, 1);
    let out = resized_crop(
        &image,
        s,
        CropBox {
            top: 0,
            left: 0,
            height: 9,
            width: 7,
        },
        9,
        7,
    )
    .unwrap();
    assert_close(&out, &image, 1e-6);
}

#[test]
fn invalid_crops_and_shapes_are_errors() {
    let s = shape(1, 4, 4);
    let image = vec![0.5; 16];
    let too_big = CropBox {
        top: 1,
        left: 0,
        height: 4,
        width: 4,
    };
    assert!(matches!(
        resized_crop(&image, s, too_big, 2, 2),
        Err(DataError::InvalidArgument(_))
    ));
    assert!(matches!(
        horizontal_flip(&mut [0.0; 15], s),
        Err(DataError::InvalidArgument(_))
    ));
    assert!(gaussian_blur(&mut image.clone(), s, 1.0, 4).is_err());
    assert!(gaussian_blur(&mut image.clone(), s, 1.0, 100_001).is_err());
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    assert!(sample_crop_box(0, 4, (0.1, 1.0), (1.0, 1.0), &mut rng).is_err());
    assert!(sample_crop_box(4, 4, (0.5, 0.1), (1.0, 1.0), &mut rng).is_err());
    assert!(sample_crop_box(4, 4, (0.1, 1.0), (-1.0, 1.0), &mut rng).is_err());
    let mut unvalidated = ViewConfig::local(4);
    unvalidated.flip_probability = 2.0;
    assert!(augment_view(&image, s, &unvalidated, &mut rng).is_err());
    assert!(adjust_hue(&mut image.clone(), shape(1, 4, 4), 0.7).is_err());
    assert!(normalize(&mut image.clone(), s, &[0.5, 0.5], &[1.0, 1.0]).is_err());
}

proptest! {
    #[test]
    fn flipping_twice_is_the_identity(h in 1usize..9, w in 1usize..9, seed in any::<u64>()) {
        let s = shape(3, h, w);
        let image = random_image(s, seed);
        let mut flipped = image.clone();
        horizontal_flip(&mut flipped, s).unwrap();
        for y in 0..h {
            prop_assert_eq!(flipped[y * w], image[y * w + w - 1]);
        }
        horizontal_flip(&mut flipped, s).unwrap();
        prop_assert_eq!(flipped, image);
    }

    #[test]
    fn crop_boxes_fit_and_respect_the_scale(h in 4usize..64, w in 4usize..64, seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let b = sample_crop_box(h, w, (0.3, 0.6), (0.75, 4.0 / 3.0), &mut rng).unwrap();
        prop_assert!(b.height >= 1 && b.width >= 1);
        prop_assert!(b.top + b.height <= h && b.left + b.width <= w);
        let fraction = (b.height * b.width) as f32 / (h * w) as f32;
        let fallback = b.top == (h - b.height) / 2 && b.left == (w - b.width) / 2;
        // Rounding w and h moves the area by at most about one row and one column.
        let slack = (h + w + 1) as f32 / (h * w) as f32;
        prop_assert!(fallback || (fraction >= 0.3 - slack && fraction <= 0.6 + slack), "{fraction}");
    }

    #[test]
    fn views_stay_in_the_unit_interval(seed in any::<u64>(), size in 4usize..20) {
        let s = shape(3, 20, 24);
        let image = random_image(s, seed);
        let mut config = ViewConfig::global(size, 0.5, 0.5);
        config.normalization = None;
        config.color_jitter.probability = 1.0;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 7);
        let view = augment_view(&image, s, &config, &mut rng).unwrap();
        prop_assert_eq!(view.len(), 3 * size * size);
        prop_assert!(view.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn hue_shift_zero_is_the_identity(seed in any::<u64>()) {
        let s = shape(3, 3, 4);
        let image = random_image(s, seed);
        let mut out = image.clone();
        adjust_hue(&mut out, s, 0.0).unwrap();
        assert_close(&out, &image, 1e-5);
    }
}

#[test]
fn unit_factors_are_identities() {
    let s = shape(3, 5, 6);
    let image = random_image(s, 2);
    for adjust in [adjust_brightness, adjust_contrast, adjust_saturation] {
        let mut out = image.clone();
        adjust(&mut out, s, 1.0).unwrap();
        assert_close(&out, &image, 1e-6);
    }
}

#[test]
fn zero_strength_jitter_pipeline_is_the_identity() {
    let s = shape(3, 8, 8);
    let image = random_image(s, 3);
    let config = ViewConfig {
        size: 8,
        scale: (1.0, 1.0),
        ratio: (1.0, 1.0),
        flip_probability: 0.0,
        color_jitter: ColorJitterConfig {
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
            hue: 0.0,
            probability: 1.0,
        },
        grayscale_probability: 0.0,
        blur_probability: 0.0,
        solarize_probability: 0.0,
        normalization: None,
        ..ViewConfig::global(8, 0.0, 0.0)
    };
    let view = augment_view(&image, s, &config, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    assert_close(&view, &image, 1e-6);
}

#[test]
fn brightness_contrast_saturation_follow_their_blends() {
    let s = shape(3, 1, 2);
    let image = vec![0.2, 0.8, 0.4, 0.6, 0.1, 0.3];
    let mut bright = image.clone();
    adjust_brightness(&mut bright, s, 1.5).unwrap();
    assert_close(&bright, &[0.3, 1.0, 0.6, 0.9, 0.15, 0.45], 1e-6);
    let luma = |p: usize| 0.2989 * image[p] + 0.587 * image[2 + p] + 0.114 * image[4 + p];
    let mean = (luma(0) + luma(1)) / 2.0;
    let mut flat = image.clone();
    adjust_contrast(&mut flat, s, 0.0).unwrap();
    assert_close(&flat, &[mean; 6], 1e-6);
    let mut gray = image.clone();
    adjust_saturation(&mut gray, s, 0.0).unwrap();
    assert_close(
        &gray,
        &[luma(0), luma(1), luma(0), luma(1), luma(0), luma(1)],
        1e-6,
    );
}

#[test]
fn grayscale_makes_channels_equal_to_the_luma() {
    let s = shape(3, 4, 4);
    let image = random_image(s, 4);
    let mut gray = image.clone();
    to_grayscale(&mut gray, s).unwrap();
    let (r, rest) = gray.split_at(16);
    let (g, b) = rest.split_at(16);
    assert_eq!(r, g);
    assert_eq!(g, b);
    let expected = 0.2989 * image[5] + 0.587 * image[21] + 0.114 * image[37];
    assert!((r[5] - expected).abs() < 1e-6);
}

#[test]
fn hue_rotation_by_a_third_maps_red_to_green_to_blue() {
    let s = shape(3, 1, 3);
    // Pixels: pure red, pure green, pure blue (CHW).
    let mut image = vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    adjust_hue(&mut image, s, 1.0 / 3.0).unwrap();
    assert_close(&image, &[0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0], 1e-5);
}

#[test]
fn solarisation_inverts_at_and_above_the_threshold() {
    let mut values = vec![0.0, 0.49, 0.5, 0.8, 1.0];
    solarize(&mut values, 0.5);
    assert_close(&values, &[0.0, 0.49, 0.5, 0.2, 0.0], 1e-7);
    // A value exactly at the threshold is inverted (>=, as torchvision's `solarize`).
    let mut values = vec![0.39, 0.4, 0.41];
    solarize(&mut values, 0.4);
    assert_close(&values, &[0.39, 0.6, 0.59], 1e-6);
    let mut values = vec![0.3, 0.7];
    solarize(&mut values, 1.1);
    assert_eq!(values, vec![0.3, 0.7]);
}

/// PIL's `ImageOps.solarize(img)` (threshold 128, the official MVEB pipeline's) inverts 8-bit
/// level k iff k ≥ 128; the views' default threshold must do the same on k/255 and leave the
/// off-grid value 0.501 ∈ [½, 128/255) alone (a threshold of ½ would invert it).
#[test]
fn default_solarisation_matches_pil_threshold_128() {
    let threshold = ViewConfig::global(8, 0.0, 1.0).solarize_threshold;
    assert_eq!(threshold, PIL_SOLARIZE_THRESHOLD);
    assert_eq!(
        ViewConfig::local(8).solarize_threshold,
        PIL_SOLARIZE_THRESHOLD
    );
    let levels: Vec<f32> = (0..=255u8).map(|k| f32::from(k) / 255.0).collect();
    let mut values = levels.clone();
    solarize(&mut values, threshold);
    for (k, (&before, &after)) in levels.iter().zip(&values).enumerate() {
        let expected = if k >= 128 { 1.0 - before } else { before };
        assert_eq!(after, expected, "level {k}");
    }
    let mut between = vec![0.501];
    solarize(&mut between, threshold);
    assert_eq!(between, vec![0.501]);
}

#[test]
fn blur_keeps_constants_and_symmetry() {
    let s = shape(1, 7, 7);
    let mut constant = vec![0.25; 49];
    gaussian_blur(&mut constant, s, 1.7, 5).unwrap();
    assert_close(&constant, &[0.25; 49], 1e-6);
    let mut impulse = vec![0.0; 49];
    impulse[24] = 1.0;
    gaussian_blur(&mut impulse, s, 1.0, 5).unwrap();
    assert!((impulse[23] - impulse[25]).abs() < 1e-7 && (impulse[17] - impulse[31]).abs() < 1e-7);
    assert!(impulse[24] > impulse[23] && impulse[23] > impulse[22] && impulse[22] > 0.0);
    // 1-D weights exp(-x²/2) for x = -2..2: centre tap is 1 / Σ, squared in two dimensions.
    let total: f32 = (-2i32..=2).map(|x| (-(x * x) as f32 / 2.0).exp()).sum();
    assert!((impulse[24] - 1.0 / (total * total)).abs() < 1e-6);
    // A kernel wider than the image still folds inside it.
    let mut tiny = vec![0.1, 0.9];
    gaussian_blur(&mut tiny, shape(1, 1, 2), 2.0, 23).unwrap();
    assert!(tiny.iter().all(|v| (0.1..=0.9).contains(v)));
}

#[test]
fn normalisation_standardises_each_channel() {
    let s = shape(2, 1, 2);
    let mut image = vec![0.5, 1.0, 0.0, 0.25];
    normalize(&mut image, s, &[0.5, 0.25], &[0.5, 0.25]).unwrap();
    assert_close(&image, &[0.0, 1.0, -1.0, 0.0], 1e-6);
}

fn batch(n: usize, side: usize, seed: u64) -> ImageBatch {
    let s = shape(3, side, side);
    let pixels = (0..n)
        .flat_map(|i| random_image(s, seed + i as u64))
        .collect();
    ImageBatch::new(s, pixels).unwrap()
}

#[test]
fn multi_crop_produces_two_global_and_n_local_views() {
    let augmenter = MultiCropAugmenter::new(MultiCropConfig::mveb_cifar()).unwrap();
    assert_eq!(augmenter.num_views(), 8);
    let views = augmenter.augment(&batch(3, 32, 0), 11, 0).unwrap();
    assert_eq!(views.len(), 8);
    for (v, view) in views.iter().enumerate() {
        let side = if v < 2 { 32 } else { 16 };
        assert_eq!(view.shape(), shape(3, side, side));
        assert_eq!(view.len(), 3);
    }
    assert_ne!(views[2], views[3]);
    let config = MultiCropConfig::mveb_imagenet();
    assert_eq!(config.global_views[0].kernel_size(), 23);
    assert_eq!(config.global_views[1].blur_probability, 0.1);
    assert_eq!(config.global_views[1].solarize_probability, 0.2);
    assert_eq!(config.local_view.scale, (0.05, 0.4));
    assert_eq!(MultiCropConfig::default(), config);
}

#[test]
fn views_are_deterministic_and_independent_of_thread_count() {
    let augmenter = MultiCropAugmenter::new(MultiCropConfig::mveb(24, 12, 2)).unwrap();
    let input = batch(6, 28, 5);
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| augmenter.augment(&input, 42, 3).unwrap())
    };
    let single = run(1);
    assert_eq!(single, run(4));
    assert_eq!(single, augmenter.augment(&input, 42, 3).unwrap());
    assert_ne!(single, augmenter.augment(&input, 43, 3).unwrap());
    assert_ne!(single, augmenter.augment(&input, 42, 4).unwrap());
    // Image i of view v depends only on (seed, step, i, v), not on the rest of the batch.
    let first = ImageBatch::new(input.shape(), input.image(0).to_vec()).unwrap();
    let alone = augmenter.augment(&first, 42, 3).unwrap();
    for (v, view) in alone.iter().enumerate() {
        assert_eq!(view.image(0), single[v].image(0));
    }
    let mut rng = view_rng(42, 3, 0, 1);
    let direct = augment_view(
        input.image(0),
        input.shape(),
        &augmenter.config().global_views[1],
        &mut rng,
    )
    .unwrap();
    assert_eq!(direct.as_slice(), single[1].image(0));
}

#[test]
fn configs_validate_and_round_trip_through_json() {
    let config = MultiCropConfig::mveb_cifar();
    let json = serde_json::to_string(&config).unwrap();
    assert_eq!(
        serde_json::from_str::<MultiCropConfig>(&json).unwrap(),
        config
    );
    let partial: MultiCropConfig = serde_json::from_str(r#"{"num_local_views": 2}"#).unwrap();
    assert_eq!(partial.num_local_views, 2);
    assert_eq!(
        partial.global_views,
        MultiCropConfig::mveb_imagenet().global_views
    );
    let mut bad = MultiCropConfig::mveb_cifar();
    bad.local_view.scale = (0.0, 0.4);
    assert!(MultiCropAugmenter::new(bad).is_err());
    let mut bad = MultiCropConfig::mveb_cifar();
    bad.global_views[0].color_jitter.hue = 0.6;
    assert!(MultiCropAugmenter::new(bad).is_err());
    let mut bad = MultiCropConfig::mveb_cifar();
    bad.global_views[1].blur_probability = 1.5;
    assert!(MultiCropAugmenter::new(bad).is_err());
    let mut bad = MultiCropConfig::mveb_cifar();
    bad.local_view.blur_kernel_size = Some(4);
    assert!(MultiCropAugmenter::new(bad).is_err());
    let none = MultiCropConfig {
        global_views: Vec::new(),
        local_view: ViewConfig::local(8),
        num_local_views: 0,
    };
    assert!(MultiCropAugmenter::new(none).is_err());
}

#[test]
fn single_channel_images_skip_colour_operations() {
    let s = shape(1, 6, 6);
    let image = random_image(s, 9);
    let mut out = image.clone();
    adjust_saturation(&mut out, s, 0.0).unwrap();
    adjust_hue(&mut out, s, 0.3).unwrap();
    to_grayscale(&mut out, s).unwrap();
    assert_eq!(out, image);
    let mut config = ViewConfig::local(4);
    config.normalization = None;
    let view = augment_view(&image, s, &config, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
    assert_eq!(view.len(), 16);
}
