//! Slice-level batch normalisation in training mode (Ioffe & Szegedy, "Batch Normalization",
//! ICML 2015), two passes over the data forward and two backward.
//!
//! For `x: [N, C, P]` (P = the product of the spatial sizes), `M = N·P` samples per channel:
//!
//! * forward ([`batch_norm_train_forward`]): `μ_c = (1/M) Σ x`, `σ²_c = (1/M) Σ (x − μ_c)²`
//!   (biased), `x̂ = (x − μ_c) / √(σ²_c + ε)`, `y = γ_c x̂ + β_c`;
//! * backward ([`batch_norm_train_backward`]): `∂L/∂β_c = Σ g`, `∂L/∂γ_c = Σ g·x̂`,
//!   `∂L/∂x = (γ_c / √(σ²_c + ε)) · (g − ∂L/∂β_c / M − x̂ · ∂L/∂γ_c / M)`.
//!
//! Burn's generic `batch_norm_train` builds the same from tensor ops (a transposed copy per
//! reduction, then broadcasts), about a dozen passes over the activation forward and backward.
//! Channel sums are accumulated in f64 from eight f32 lanes per plane.

use rayon::prelude::*;

use crate::KernelError;

/// Per-channel statistics of a training-mode batch-norm forward pass.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormStatistics {
    /// Batch mean `μ_c`.
    pub mean: Vec<f32>,
    /// Biased batch variance `σ²_c` (without ε).
    pub variance: Vec<f32>,
    /// `1 / √(σ²_c + ε)`.
    pub inverse_std: Vec<f32>,
}

fn check(
    len: usize,
    channels: usize,
    pixels: usize,
    per_channel: &[(&str, usize)],
) -> Result<usize, KernelError> {
    let image = channels * pixels;
    if image == 0 || len == 0 || !len.is_multiple_of(image) {
        return Err(KernelError::Shape(format!(
            "{len} values are not a whole, non-empty number of {channels}×{pixels} samples"
        )));
    }
    for &(name, got) in per_channel {
        if got != channels {
            return Err(KernelError::Shape(format!(
                "{name} has {got} entries for {channels} channels"
            )));
        }
    }
    Ok(len / image)
}

/// `Σ f(a_i)` with eight independent f32 partial sums, returned in f64: whole chunks of
/// eight vectorise, where one running sum (or a lane picked per element) does not.
pub(crate) fn lane_sum(a: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    lane_sum2(a, a, |x, _| f(x))
}

/// `Σ f(a_i, b_i)`, as [`lane_sum`]. Always inlined, so that inside a pulp-dispatched closure
/// (the pixel likelihood) it is compiled for that closure's instruction set.
#[inline(always)]
pub(crate) fn lane_sum2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let mut lanes = [0.0f32; 8];
    let (chunks_a, chunks_b) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(&x, &y)| f64::from(f(x, y)))
        .sum();
    for (x, y) in chunks_a.zip(chunks_b) {
        for k in 0..8 {
            lanes[k] += f(x[k], y[k]);
        }
    }
    lanes.iter().map(|&l| f64::from(l)).sum::<f64>() + tail
}

/// `(Σ f(a_i, b_i), Σ h(a_i, b_i))` in one pass, as [`lane_sum`].
fn lane_sums(
    a: &[f32],
    b: &[f32],
    f: impl Fn(f32, f32) -> f32,
    h: impl Fn(f32, f32) -> f32,
) -> (f64, f64) {
    let (mut first, mut second) = ([0.0f32; 8], [0.0f32; 8]);
    let (chunks_a, chunks_b) = (a.chunks_exact(8), b.chunks_exact(8));
    let mut tail = (0.0f64, 0.0f64);
    for (&x, &y) in chunks_a.remainder().iter().zip(chunks_b.remainder()) {
        tail.0 += f64::from(f(x, y));
        tail.1 += f64::from(h(x, y));
    }
    for (x, y) in chunks_a.zip(chunks_b) {
        for k in 0..8 {
            first[k] += f(x[k], y[k]);
            second[k] += h(x[k], y[k]);
        }
    }
    let total = |lanes: [f32; 8]| lanes.iter().map(|&l| f64::from(l)).sum::<f64>();
    (total(first) + tail.0, total(second) + tail.1)
}

/// The planes `x[n, c, ·]` of channel `c`, for every n.
fn planes(
    values: &[f32],
    channel: usize,
    channels: usize,
    pixels: usize,
) -> impl Iterator<Item = &[f32]> {
    values
        .chunks_exact(channels * pixels)
        .map(move |image| &image[channel * pixels..(channel + 1) * pixels])
}

/// Normalises `x` (`[N, C, P]`, flat) with its own batch statistics and applies `γ`, `β`;
/// returns `y` and the statistics.
///
/// # Errors
/// [`KernelError::Shape`] if `x` is empty or not a whole number of `C × P` samples, or if
/// `gamma` / `beta` do not have `C` entries.
pub fn batch_norm_train_forward(
    x: &[f32],
    channels: usize,
    pixels: usize,
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
) -> Result<(Vec<f32>, BatchNormStatistics), KernelError> {
    let batch = check(
        x.len(),
        channels,
        pixels,
        &[("gamma", gamma.len()), ("beta", beta.len())],
    )?;
    let count = (batch * pixels) as f64;
    let moments: Vec<(f64, f64)> = (0..channels)
        .into_par_iter()
        .map(|c| {
            let sum: f64 = planes(x, c, channels, pixels)
                .map(|plane| lane_sum(plane, |v| v))
                .sum();
            let mean = sum / count;
            let mean32 = mean as f32;
            let squares: f64 = planes(x, c, channels, pixels)
                .map(|plane| lane_sum(plane, |v| (v - mean32) * (v - mean32)))
                .sum();
            // Σ(x − m)² for the rounded m is Σ(x − μ)² + M(μ − m)²; remove the second term.
            let shift = mean - f64::from(mean32);
            (mean, (squares / count - shift * shift).max(0.0))
        })
        .collect();
    let statistics = BatchNormStatistics {
        mean: moments.iter().map(|&(m, _)| m as f32).collect(),
        variance: moments.iter().map(|&(_, v)| v as f32).collect(),
        inverse_std: moments
            .iter()
            .map(|&(_, v)| (1.0 / (v + epsilon).sqrt()) as f32)
            .collect(),
    };
    // y = x·scale_c + shift_c with scale = γ/√(σ² + ε), shift = β − μ·scale.
    let scale: Vec<f32> = gamma
        .iter()
        .zip(&statistics.inverse_std)
        .map(|(g, s)| g * s)
        .collect();
    let shift: Vec<f32> = moments
        .iter()
        .zip(beta.iter().zip(&scale))
        .map(|(&(mean, _), (&b, &s))| (f64::from(b) - mean * f64::from(s)) as f32)
        .collect();
    let mut y = super::zeros(x.len());
    y.par_chunks_mut(channels * pixels)
        .zip(x.par_chunks(channels * pixels))
        .for_each(|(out, image)| {
            for (c, (out, plane)) in out
                .chunks_exact_mut(pixels)
                .zip(image.chunks_exact(pixels))
                .enumerate()
            {
                let (s, t) = (scale[c], shift[c]);
                out.iter_mut().zip(plane).for_each(|(o, &v)| *o = v * s + t);
            }
        });
    Ok((y, statistics))
}

/// Gradients of a training-mode batch norm with respect to its input and affine parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormGradients {
    /// `∂L/∂x`, `[N, C, P]` flat.
    pub x: Vec<f32>,
    /// `∂L/∂γ_c = Σ g·x̂`.
    pub gamma: Vec<f32>,
    /// `∂L/∂β_c = Σ g`.
    pub beta: Vec<f32>,
}

/// Gradients of [`batch_norm_train_forward`] given the output gradient `g` (`[N, C, P]`), the
/// input `x`, `γ` and the forward's `mean` and `inverse_std`.
///
/// # Errors
/// [`KernelError::Shape`] if `x` and `g` differ in length or are not whole samples, or a
/// per-channel slice does not have `C` entries.
pub fn batch_norm_train_backward(
    x: &[f32],
    output_grad: &[f32],
    channels: usize,
    pixels: usize,
    gamma: &[f32],
    mean: &[f32],
    inverse_std: &[f32],
) -> Result<BatchNormGradients, KernelError> {
    let batch = check(
        x.len(),
        channels,
        pixels,
        &[
            ("gamma", gamma.len()),
            ("mean", mean.len()),
            ("inverse_std", inverse_std.len()),
        ],
    )?;
    if output_grad.len() != x.len() {
        return Err(KernelError::Shape(format!(
            "output gradient has {} values, input {}",
            output_grad.len(),
            x.len()
        )));
    }
    let count = (batch * pixels) as f32;
    // Per channel: Σ g and Σ g·(x − μ).
    let sums: Vec<(f64, f64)> = (0..channels)
        .into_par_iter()
        .map(|c| {
            let m = mean[c];
            planes(output_grad, c, channels, pixels)
                .zip(planes(x, c, channels, pixels))
                .fold((0.0, 0.0), |(sum_g, sum_gx), (g, v)| {
                    let (g, gx) = lane_sums(g, v, |g, _| g, |g, v| g * (v - m));
                    (sum_g + g, sum_gx + gx)
                })
        })
        .collect();
    let beta_grad: Vec<f32> = sums.iter().map(|&(sg, _)| sg as f32).collect();
    let gamma_grad: Vec<f32> = sums
        .iter()
        .zip(inverse_std)
        .map(|(&(_, sgx), &s)| (sgx * f64::from(s)) as f32)
        .collect();
    // ∂L/∂x = a_c·g + b_c·(x − μ_c) + d_c with a = γs, b = −γs³·Σg(x−μ)/M, d = −γs·Σg/M.
    let coefficients: Vec<[f32; 3]> = (0..channels)
        .map(|c| {
            let a = gamma[c] * inverse_std[c];
            let b = -a * inverse_std[c] * gamma_grad[c] / count;
            let d = -a * beta_grad[c] / count;
            [a, b, d]
        })
        .collect();
    let mut x_grad = super::zeros(x.len());
    x_grad
        .par_chunks_mut(channels * pixels)
        .zip(x.par_chunks(channels * pixels))
        .zip(output_grad.par_chunks(channels * pixels))
        .for_each(|((out, image), grad)| {
            for (c, ((out, plane), g)) in out
                .chunks_exact_mut(pixels)
                .zip(image.chunks_exact(pixels))
                .zip(grad.chunks_exact(pixels))
                .enumerate()
            {
                let [a, b, d] = coefficients[c];
                let m = mean[c];
                out.iter_mut()
                    .zip(plane.iter().zip(g))
                    .for_each(|(o, (&v, &g))| *o = a * g + b * (v - m) + d);
            }
        });
    Ok(BatchNormGradients {
        x: x_grad,
        gamma: gamma_grad,
        beta: beta_grad,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition in f64, directly.
    fn reference(
        x: &[f32],
        g: &[f32],
        channels: usize,
        pixels: usize,
        gamma: &[f32],
        beta: &[f32],
        eps: f64,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
        let n = x.len() / (channels * pixels);
        let m = (n * pixels) as f64;
        let at = |i: usize, c: usize, p: usize| i * channels * pixels + c * pixels + p;
        let (mut y, mut dx) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        let (mut dgamma, mut dbeta) = (vec![0.0; channels], vec![0.0; channels]);
        for c in 0..channels {
            let idx: Vec<usize> = (0..n)
                .flat_map(|i| (0..pixels).map(move |p| at(i, c, p)))
                .collect();
            let mean = idx.iter().map(|&k| f64::from(x[k])).sum::<f64>() / m;
            let var = idx
                .iter()
                .map(|&k| (f64::from(x[k]) - mean).powi(2))
                .sum::<f64>()
                / m;
            let s = 1.0 / (var + eps).sqrt();
            let xhat = |k: usize| (f64::from(x[k]) - mean) * s;
            dbeta[c] = idx.iter().map(|&k| f64::from(g[k])).sum();
            dgamma[c] = idx.iter().map(|&k| f64::from(g[k]) * xhat(k)).sum();
            for &k in &idx {
                y[k] = f64::from(gamma[c]) * xhat(k) + f64::from(beta[c]);
                dx[k] = f64::from(gamma[c])
                    * s
                    * (f64::from(g[k]) - dbeta[c] / m - xhat(k) * dgamma[c] / m);
            }
        }
        (y, dx, dgamma, dbeta)
    }

    fn sequence(len: usize, seed: usize, offset: f32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7 + seed * 13) % 23) as f32 * 0.37 - 3.1 + offset)
            .collect()
    }

    fn assert_close(what: &str, actual: &[f32], expected: &[f64], tol: f64) {
        let scale = expected.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!(
                (f64::from(*a) - e).abs() <= tol * scale,
                "{what}[{i}]: {a} vs {e}"
            );
        }
    }

    #[test]
    fn forward_and_backward_match_the_definition() {
        // A large common offset checks the variance does not cancel catastrophically.
        for (channels, pixels, offset) in [(3, 5, 0.0), (4, 1, 0.0), (2, 64, 100.0)] {
            let len = 6 * channels * pixels;
            let x = sequence(len, 1, offset);
            let g = sequence(len, 2, 0.0);
            let gamma: Vec<f32> = (0..channels).map(|c| 0.5 + c as f32).collect();
            let beta: Vec<f32> = (0..channels).map(|c| c as f32 - 1.0).collect();
            let (y, stats) =
                batch_norm_train_forward(&x, channels, pixels, &gamma, &beta, 1e-5).unwrap();
            let grads = batch_norm_train_backward(
                &x,
                &g,
                channels,
                pixels,
                &gamma,
                &stats.mean,
                &stats.inverse_std,
            )
            .unwrap();
            let (ry, rdx, rdgamma, rdbeta) =
                reference(&x, &g, channels, pixels, &gamma, &beta, 1e-5);
            assert_close("y", &y, &ry, 1e-5);
            assert_close("dx", &grads.x, &rdx, 1e-4);
            assert_close("dgamma", &grads.gamma, &rdgamma, 1e-5);
            assert_close("dbeta", &grads.beta, &rdbeta, 1e-5);
        }
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let x = vec![0.0f32; 12];
        assert!(batch_norm_train_forward(&x, 5, 1, &[1.0; 5], &[0.0; 5], 1e-5).is_err());
        assert!(batch_norm_train_forward(&x, 3, 2, &[1.0; 2], &[0.0; 3], 1e-5).is_err());
        assert!(batch_norm_train_forward(&[], 3, 2, &[1.0; 3], &[0.0; 3], 1e-5).is_err());
        let ok = [1.0f32; 3];
        assert!(batch_norm_train_backward(&x, &x[..6], 3, 2, &ok, &ok, &ok).is_err());
    }
}
