//! Single-image operations on CHW `f32` images, following torchvision's tensor transforms
//! (`torchvision/transforms/_functional_tensor.py`) unless stated otherwise.

use rand::Rng;

use crate::{DataError, ObservationShape};

/// Largest Gaussian blur kernel accepted; BYOL's 23 taps at 224 px is far below it, and the cap
/// keeps a mistyped size from allocating without bound.
pub const MAX_BLUR_KERNEL: usize = 1023;

/// Luma weights of ITU-R BT.601 as torchvision's `rgb_to_grayscale` uses them.
const LUMA: [f32; 3] = [0.2989, 0.587, 0.114];

fn check(image: &[f32], shape: ObservationShape) -> Result<(), DataError> {
    if shape.numel() == 0 || image.len() != shape.numel() {
        return Err(DataError::InvalidArgument(format!(
            "image of {} values does not match shape {}x{}x{}",
            image.len(),
            shape.channels,
            shape.height,
            shape.width
        )));
    }
    Ok(())
}

/// A crop rectangle in pixels: rows `top..top + height`, columns `left..left + width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    /// First row.
    pub top: usize,
    /// First column.
    pub left: usize,
    /// Number of rows (≥ 1).
    pub height: usize,
    /// Number of columns (≥ 1).
    pub width: usize,
}

/// Draws a crop as torchvision's `RandomResizedCrop.get_params` does (Szegedy et al. 2015,
/// "Going deeper with convolutions"): up to 10 tries of an area fraction s ~ U(scale) and a
/// log-uniform aspect ratio r ~ exp(U(ln ratio)), w = round(√(s·A·r)), h = round(√(s·A/r));
/// the first that fits is placed uniformly. Otherwise the whole image is centre-cropped to the
/// nearest ratio inside `ratio`. Needs a non-empty image, 0 < scale.0 ≤ scale.1 and
/// 0 < ratio.0 ≤ ratio.1.
pub fn sample_crop_box<R: Rng + ?Sized>(
    height: usize,
    width: usize,
    scale: (f32, f32),
    ratio: (f32, f32),
    rng: &mut R,
) -> Result<CropBox, DataError> {
    if height == 0
        || width == 0
        || !(scale.0 > 0.0 && scale.0 <= scale.1 && scale.1.is_finite())
        || !(ratio.0 > 0.0 && ratio.0 <= ratio.1 && ratio.1.is_finite())
    {
        return Err(DataError::InvalidArgument(format!(
            "cannot crop a {height}x{width} image with scale {scale:?} and ratio {ratio:?}"
        )));
    }
    let area = (height * width) as f32;
    let (log_lo, log_hi) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target_area = area * uniform(rng, scale.0, scale.1);
        let aspect = uniform(rng, log_lo, log_hi).exp();
        let w = (target_area * aspect).sqrt().round() as usize;
        let h = (target_area / aspect).sqrt().round() as usize;
        if 0 < w && w <= width && 0 < h && h <= height {
            let top = rng.random_range(0..=height - h);
            let left = rng.random_range(0..=width - w);
            return Ok(CropBox {
                top,
                left,
                height: h,
                width: w,
            });
        }
    }
    let in_ratio = width as f32 / height as f32;
    let (w, h) = if in_ratio < ratio.0 {
        (
            width,
            ((width as f32 / ratio.0).round() as usize).clamp(1, height),
        )
    } else if in_ratio > ratio.1 {
        (
            ((height as f32 * ratio.1).round() as usize).clamp(1, width),
            height,
        )
    } else {
        (width, height)
    };
    Ok(CropBox {
        top: (height - h) / 2,
        left: (width - w) / 2,
        height: h,
        width: w,
    })
}

/// U(lo, hi), tolerating lo == hi.
pub(crate) fn uniform<R: Rng + ?Sized>(rng: &mut R, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}

/// Keys' bicubic kernel with a = −0.5, the one PIL's `Image.resize(BICUBIC)` uses.
fn bicubic(x: f32) -> f32 {
    const A: f32 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Resampling taps for one axis, as PIL's `ImagingResample` computes them: output sample o maps
/// to centre c = start + (o + ½)·s with s = len/out; when shrinking (s > 1) the kernel is
/// stretched by s, which low-pass filters (anti-aliases) the input. Taps are clamped to the
/// image and normalised to sum 1.
fn resample_taps(start: usize, len: usize, out: usize, size: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = len as f32 / out as f32;
    let stretch = scale.max(1.0);
    let support = 2.0 * stretch;
    (0..out)
        .map(|o| {
            let centre = start as f32 + (o as f32 + 0.5) * scale;
            let lo = ((centre - support + 0.5).floor().max(0.0)) as usize;
            let hi = ((centre + support + 0.5).floor() as usize).min(size);
            let lo = lo.min(hi.saturating_sub(1));
            let mut weights: Vec<f32> = (lo..hi)
                .map(|x| bicubic((x as f32 - centre + 0.5) / stretch))
                .collect();
            let total: f32 = weights.iter().sum();
            if total != 0.0 {
                weights.iter_mut().for_each(|w| *w /= total);
            }
            (lo, weights)
        })
        .collect()
}

/// Crops `crop` out of `image` and resizes it to `out_height` × `out_width` with antialiased
/// bicubic interpolation (separable, horizontal pass first as in PIL), clamping to [0, 1].
pub fn resized_crop(
    image: &[f32],
    shape: ObservationShape,
    crop: CropBox,
    out_height: usize,
    out_width: usize,
) -> Result<Vec<f32>, DataError> {
    check(image, shape)?;
    if crop.height == 0
        || crop.width == 0
        || crop.top + crop.height > shape.height
        || crop.left + crop.width > shape.width
        || out_height == 0
        || out_width == 0
    {
        return Err(DataError::InvalidArgument(format!(
            "crop {crop:?} to {out_height}x{out_width} does not fit a {}x{} image",
            shape.height, shape.width
        )));
    }
    let x_taps = resample_taps(crop.left, crop.width, out_width, shape.width);
    let y_taps = resample_taps(crop.top, crop.height, out_height, shape.height);
    let y_lo = y_taps.iter().map(|(lo, _)| *lo).min().unwrap_or(0);
    let y_hi = y_taps.iter().map(|(lo, w)| lo + w.len()).max().unwrap_or(0);
    let rows = y_hi - y_lo;
    let plane = shape.height * shape.width;
    let mut out = vec![0f32; shape.channels * out_height * out_width];
    let mut horizontal = vec![0f32; rows * out_width];
    for c in 0..shape.channels {
        let src = &image[c * plane..(c + 1) * plane];
        for (r, row_out) in horizontal.chunks_exact_mut(out_width).enumerate() {
            let row = &src[(y_lo + r) * shape.width..(y_lo + r + 1) * shape.width];
            for (value, (lo, weights)) in row_out.iter_mut().zip(&x_taps) {
                *value = weights.iter().zip(&row[*lo..]).map(|(w, v)| w * v).sum();
            }
        }
        let dst = &mut out[c * out_height * out_width..(c + 1) * out_height * out_width];
        for (row_out, (lo, weights)) in dst.chunks_exact_mut(out_width).zip(&y_taps) {
            for (k, weight) in weights.iter().enumerate() {
                let src = &horizontal[(lo - y_lo + k) * out_width..(lo - y_lo + k + 1) * out_width];
                for (o, v) in row_out.iter_mut().zip(src) {
                    *o += weight * v;
                }
            }
            row_out.iter_mut().for_each(|o| *o = o.clamp(0.0, 1.0));
        }
    }
    Ok(out)
}

/// Mirrors every row: x ↦ W − 1 − x.
pub fn horizontal_flip(image: &mut [f32], shape: ObservationShape) -> Result<(), DataError> {
    check(image, shape)?;
    image
        .chunks_exact_mut(shape.width)
        .for_each(|row| row.reverse());
    Ok(())
}

/// Scales every value by `factor` and clamps to [0, 1] (torchvision `adjust_brightness`:
/// blend with black).
pub fn adjust_brightness(
    image: &mut [f32],
    shape: ObservationShape,
    factor: f32,
) -> Result<(), DataError> {
    check(image, shape)?;
    image
        .iter_mut()
        .for_each(|v| *v = (*v * factor).clamp(0.0, 1.0));
    Ok(())
}

/// Per-pixel luma, 0.2989 R + 0.587 G + 0.114 B; for 1-channel images the channel itself.
fn luma(image: &[f32], shape: ObservationShape) -> Vec<f32> {
    let plane = shape.height * shape.width;
    if shape.channels != 3 {
        return image[..plane].to_vec();
    }
    (0..plane)
        .map(|p| LUMA[0] * image[p] + LUMA[1] * image[plane + p] + LUMA[2] * image[2 * plane + p])
        .collect()
}

/// x ↦ clamp(f·x + (1 − f)·m, 0, 1) with m the mean luma of the image (torchvision
/// `adjust_contrast`).
pub fn adjust_contrast(
    image: &mut [f32],
    shape: ObservationShape,
    factor: f32,
) -> Result<(), DataError> {
    check(image, shape)?;
    let gray = luma(image, shape);
    let mean = gray.iter().sum::<f32>() / gray.len() as f32;
    image
        .iter_mut()
        .for_each(|v| *v = (factor * *v + (1.0 - factor) * mean).clamp(0.0, 1.0));
    Ok(())
}

/// x ↦ clamp(f·x + (1 − f)·luma, 0, 1) per pixel (torchvision `adjust_saturation`); a no-op on
/// images without three channels.
pub fn adjust_saturation(
    image: &mut [f32],
    shape: ObservationShape,
    factor: f32,
) -> Result<(), DataError> {
    check(image, shape)?;
    if shape.channels != 3 {
        return Ok(());
    }
    let gray = luma(image, shape);
    for channel in image.chunks_exact_mut(gray.len()) {
        for (v, g) in channel.iter_mut().zip(&gray) {
            *v = (factor * *v + (1.0 - factor) * g).clamp(0.0, 1.0);
        }
    }
    Ok(())
}

/// Rotates the hue by `shift` turns (|shift| ≤ ½): RGB → HSV, h ↦ (h + shift) mod 1, → RGB
/// (torchvision `adjust_hue`); a no-op on images without three channels.
pub fn adjust_hue(image: &mut [f32], shape: ObservationShape, shift: f32) -> Result<(), DataError> {
    check(image, shape)?;
    if !(-0.5..=0.5).contains(&shift) {
        return Err(DataError::InvalidArgument(format!(
            "hue shift {shift} is outside [-0.5, 0.5]"
        )));
    }
    if shape.channels != 3 {
        return Ok(());
    }
    let plane = shape.height * shape.width;
    for p in 0..plane {
        let (r, g, b) = (image[p], image[plane + p], image[2 * plane + p]);
        let (h, s, v) = rgb_to_hsv(r, g, b);
        let (r, g, b) = hsv_to_rgb((h + shift).rem_euclid(1.0), s, v);
        image[p] = r;
        image[plane + p] = g;
        image[2 * plane + p] = b;
    }
    Ok(())
}

fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let chroma = max - min;
    let s = if max > 0.0 { chroma / max } else { 0.0 };
    if chroma <= 0.0 {
        return (0.0, s, max);
    }
    let h = if max == r {
        ((g - b) / chroma).rem_euclid(6.0)
    } else if max == g {
        (b - r) / chroma + 2.0
    } else {
        (r - g) / chroma + 4.0
    };
    ((h / 6.0).rem_euclid(1.0), s, max)
}

fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let h6 = h * 6.0;
    let sector = h6.floor();
    let f = h6 - sector;
    let p = (v * (1.0 - s)).clamp(0.0, 1.0);
    let q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
    let t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
    match (sector as i32).rem_euclid(6) {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

/// Replaces every channel by the luma 0.2989 R + 0.587 G + 0.114 B (torchvision
/// `rgb_to_grayscale` with 3 output channels); a no-op on images without three channels.
pub fn to_grayscale(image: &mut [f32], shape: ObservationShape) -> Result<(), DataError> {
    check(image, shape)?;
    if shape.channels != 3 {
        return Ok(());
    }
    let gray = luma(image, shape);
    image
        .chunks_exact_mut(gray.len())
        .for_each(|channel| channel.copy_from_slice(&gray));
    Ok(())
}

/// Reflect-101 index (… 2 1 | 0 1 2 … n−1 | n−2 …), PyTorch's `reflect` padding, folded
/// repeatedly so kernels wider than the image stay in bounds.
fn reflect(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - m }) as usize
}

/// Separable Gaussian blur with a `kernel_size`-tap kernel (odd), weights ∝ exp(−x²/(2σ²)) for
/// x = −(k−1)/2 … (k−1)/2, reflect padding (torchvision `gaussian_blur`). Outputs are convex
/// combinations of inputs; they are clamped to [0, 1] only to undo float rounding at the ends.
pub fn gaussian_blur(
    image: &mut [f32],
    shape: ObservationShape,
    sigma: f32,
    kernel_size: usize,
) -> Result<(), DataError> {
    check(image, shape)?;
    if kernel_size.is_multiple_of(2)
        || kernel_size > MAX_BLUR_KERNEL
        || sigma <= 0.0
        || !sigma.is_finite()
    {
        return Err(DataError::InvalidArgument(format!(
            "Gaussian blur needs an odd kernel size up to {MAX_BLUR_KERNEL} and σ > 0, got {kernel_size} and {sigma}"
        )));
    }
    let half = (kernel_size / 2) as isize;
    let mut kernel: Vec<f32> = (-half..=half)
        .map(|x| (-((x * x) as f32) / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= total);
    let (h, w) = (shape.height, shape.width);
    // Reflect-padded copies of a row, and the reflected source row of every output row, are
    // built once so the inner loops are contiguous multiply-adds.
    let column_sources: Vec<Vec<usize>> = (0..h)
        .map(|y| {
            (0..kernel_size)
                .map(|k| reflect(y as isize + k as isize - half, h))
                .collect()
        })
        .collect();
    let mut padded = vec![0f32; w + kernel_size - 1];
    let mut tmp = vec![0f32; h * w];
    for channel in image.chunks_exact_mut(h * w) {
        for (row, tmp_row) in channel.chunks_exact(w).zip(tmp.chunks_exact_mut(w)) {
            for (i, p) in padded.iter_mut().enumerate() {
                *p = row[reflect(i as isize - half, w)];
            }
            // Tap-major accumulation: each pass is a contiguous axpy the compiler vectorises.
            tmp_row.fill(0.0);
            for (k, weight) in kernel.iter().enumerate() {
                for (out, v) in tmp_row.iter_mut().zip(&padded[k..k + w]) {
                    *out += weight * v;
                }
            }
        }
        for (out_row, sources) in channel.chunks_exact_mut(w).zip(&column_sources) {
            out_row.fill(0.0);
            for (k, &source) in kernel.iter().zip(sources) {
                let src = &tmp[source * w..(source + 1) * w];
                for (o, v) in out_row.iter_mut().zip(src) {
                    *o += k * v;
                }
            }
            out_row.iter_mut().for_each(|o| *o = o.clamp(0.0, 1.0));
        }
    }
    Ok(())
}

/// Solarisation: x ↦ 1 − x where x ≥ `threshold`, unchanged below (torchvision `solarize`;
/// PIL's `ImageOps.solarize`, the official MVEB pipeline's, uses the threshold
/// [`PIL_SOLARIZE_THRESHOLD`](super::PIL_SOLARIZE_THRESHOLD) = 128/255).
pub fn solarize(image: &mut [f32], threshold: f32) {
    image.iter_mut().for_each(|v| {
        if *v >= threshold {
            *v = 1.0 - *v;
        }
    });
}

/// Per-channel standardisation x ↦ (x − mean_c) / std_c.
pub fn normalize(
    image: &mut [f32],
    shape: ObservationShape,
    mean: &[f32],
    std: &[f32],
) -> Result<(), DataError> {
    check(image, shape)?;
    if mean.len() != shape.channels || std.len() != shape.channels || std.iter().any(|&s| s <= 0.0)
    {
        return Err(DataError::InvalidArgument(format!(
            "normalisation needs {} means and positive stds, got {mean:?} and {std:?}",
            shape.channels
        )));
    }
    let plane = shape.height * shape.width;
    for ((channel, m), s) in image.chunks_exact_mut(plane).zip(mean).zip(std) {
        channel.iter_mut().for_each(|v| *v = (*v - m) / s);
    }
    Ok(())
}
