//! The convolution drivers: forward, input and weight gradients of a cross-correlation (and
//! through them of a transposed convolution) on slices, each as im2col / col2im + one GEMM per
//! block of images ([`super::im2col`]) or, where the caller's [`ConvAlgorithm`] allows and
//! the geometry fits, one of the Winograd algorithms ([`super::winograd`]).

use faer::{Accum, MatMut, MatRef};
use rayon::prelude::*;

use super::algorithm::winograd_kind;
use super::geometry::check_single_group;
use super::im2col::{col2im, im2col};
use super::{
    Conv2dGeometry, ConvAlgorithm, gemm, inner_parallelism, norm, sum_parts, winograd,
    with_scratch, zeros,
};
use crate::KernelError;

/// Copies a block of `[n, C, P]` images into `rows` as the `C × (n·P)` matrix
/// `rows[c, n·P + q] = images[n, c, q]`, so one GEMM covers the whole block.
fn regroup_channels(images: &[f32], channels: usize, pixels: usize, rows: &mut [f32]) {
    let columns = images.len() / channels;
    for (image, planes) in images.chunks_exact(channels * pixels).enumerate() {
        for (channel, plane) in planes.chunks_exact(pixels).enumerate() {
            let start = channel * columns + image * pixels;
            rows[start..start + pixels].copy_from_slice(plane);
        }
    }
}

/// The inverse of [`regroup_channels`]: `images[n, c, q] = rows[c, n·P + q]`.
fn ungroup_channels(rows: &[f32], channels: usize, pixels: usize, images: &mut [f32]) {
    let columns = images.len() / channels;
    for (image, planes) in images.chunks_exact_mut(channels * pixels).enumerate() {
        for (channel, plane) in planes.chunks_exact_mut(pixels).enumerate() {
            let start = channel * columns + image * pixels;
            plane.copy_from_slice(&rows[start..start + pixels]);
        }
    }
}

/// Forward cross-correlation `y_n = W · col_n + b` (see the module docs), returning
/// `y: [N, C_out, H_out, W_out]` as a flat vector.
///
/// `input` is `[N, C_in, H, W]`, `weight` is `[C_out, C_in, k_h, k_w]`, `bias` is `[C_out]`.
///
/// `algorithm` chooses between Winograd and im2col ([`ConvAlgorithm`]).
///
/// # Errors
/// [`KernelError::Shape`] if a slice length disagrees with `geometry`,
/// [`KernelError::Options`] if `geometry.groups ≠ 1`.
pub fn conv2d_forward(
    geometry: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    algorithm: ConvAlgorithm,
) -> Result<Vec<f32>, KernelError> {
    let g = geometry;
    check_single_group(g)?;
    let (k, pixels, out_channels) = (g.patch_len(), g.out_pixels(), g.out_channels);
    g.check_lengths(&[
        ("input", input.len(), g.batch * g.in_image_len()),
        ("weight", weight.len(), out_channels * k),
    ])?;
    if let Some(bias) = bias {
        g.check_lengths(&[("bias", bias.len(), out_channels)])?;
    }
    if g.batch == 0 {
        return Ok(Vec::new());
    }
    if let Some(kind) = winograd_kind(g, algorithm) {
        let mut output = winograd::forward(kind, g, input, weight);
        if let Some(bias) = bias {
            add_channel_bias(&mut output, bias, pixels);
        }
        return Ok(output);
    }
    let mut output = zeros(g.batch * g.out_image_len());
    let block = g.block_images();
    let par = inner_parallelism(g.batch, block);
    let weight_matrix = MatRef::from_row_major_slice(weight, out_channels, k);
    let forward_block = |(out_block, in_block): (&mut [f32], &[f32])| {
        let images = in_block.len() / g.in_image_len();
        let columns = images * pixels;
        with_scratch([columns * k, out_channels * columns], |col, product| {
            im2col(g, in_block, col);
            let rhs = MatRef::from_row_major_slice(&*col, k, columns);
            if images == 1 {
                let dst = MatMut::from_row_major_slice_mut(&mut *out_block, out_channels, columns);
                gemm(dst, Accum::Replace, weight_matrix, rhs, par);
            } else {
                let dst = MatMut::from_row_major_slice_mut(&mut *product, out_channels, columns);
                gemm(dst, Accum::Replace, weight_matrix, rhs, par);
                ungroup_channels(product, out_channels, pixels, out_block);
            }
        });
        if let Some(bias) = bias {
            add_channel_bias(out_block, bias, pixels);
        }
    };
    output
        .par_chunks_mut(block * g.out_image_len())
        .zip(input.par_chunks(block * g.in_image_len()))
        .for_each(forward_block);
    Ok(output)
}

/// Weight gradient `∂L/∂W = Σ_n (∂L/∂y_n) · col_nᵀ` of the cross-correlation `geometry`,
/// returned as `[C_out, C_in, k_h, k_w]`, flat.
///
/// `input` is `[N, C_in, H, W]`, `output_grad` is `[N, C_out, H_out, W_out]`.
///
/// `algorithm` chooses between Winograd and im2col ([`ConvAlgorithm`]).
///
/// # Errors
/// [`KernelError::Shape`] if a slice length disagrees with `geometry`,
/// [`KernelError::Options`] if `geometry.groups ≠ 1`.
pub fn conv2d_weight_grad(
    geometry: &Conv2dGeometry,
    input: &[f32],
    output_grad: &[f32],
    algorithm: ConvAlgorithm,
) -> Result<Vec<f32>, KernelError> {
    let g = geometry;
    check_single_group(g)?;
    let (k, pixels, out_channels) = (g.patch_len(), g.out_pixels(), g.out_channels);
    g.check_lengths(&[
        ("input", input.len(), g.batch * g.in_image_len()),
        (
            "output gradient",
            output_grad.len(),
            g.batch * g.out_image_len(),
        ),
    ])?;
    if let Some(kind) = winograd_kind(g, algorithm) {
        return Ok(winograd::weight_grad(kind, g, input, output_grad));
    }
    let block = g.block_images();
    let par = inner_parallelism(g.batch, block);
    let accumulate_block = |mut gradient: Vec<f32>, (in_block, grad_block): (&[f32], &[f32])| {
        let images = in_block.len() / g.in_image_len();
        let columns = images * pixels;
        with_scratch([columns * k, out_channels * columns], |col, grad_rows| {
            im2col(g, in_block, col);
            // One image's gradient is already the C_out × P matrix; a block of several is
            // regrouped as grad_rows[o, n·P + q] = ∂L/∂y[n, o, q] so one GEMM covers the block.
            let lhs = if images == 1 {
                grad_block
            } else {
                regroup_channels(grad_block, out_channels, pixels, grad_rows);
                &*grad_rows
            };
            let lhs = MatRef::from_row_major_slice(lhs, out_channels, columns);
            let rhs = MatRef::from_row_major_slice(&*col, k, columns).transpose();
            let dst = MatMut::from_row_major_slice_mut(&mut gradient, out_channels, k);
            gemm(dst, Accum::Add, lhs, rhs, par);
        });
        gradient
    };
    // One accumulator per rayon split (not per block), summed at the end.
    let parts = input
        .par_chunks(block * g.in_image_len())
        .zip(output_grad.par_chunks(block * g.out_image_len()))
        .fold(|| vec![0.0f32; out_channels * k], accumulate_block);
    let gradient = sum_parts(parts, out_channels * k);
    Ok(gradient)
}

/// Forward output and weight gradient of the cross-correlation `geometry` in one pass over
/// the input: `y_n = W · col_n` and `∂L/∂W = Σ_n r_n · col_nᵀ` share each block's im2col.
///
/// This is the backward of a transposed convolution: with the geometry of
/// [`Conv2dGeometry::conv_transpose2d`], `input` is the transposed convolution's output
/// gradient, `y` its input gradient and `r` its input `x`, so both gradients cost one im2col.
/// Returns `(y, ∂L/∂W)`, flat `[N, C_out, H_out, W_out]` and `[C_out, C_in, k_h, k_w]`.
///
/// `input` is `[N, C_in, H, W]`, `weight` is `[C_out, C_in, k_h, k_w]`, `output_grad` (`r`)
/// is `[N, C_out, H_out, W_out]`.
///
/// `algorithm` chooses between Winograd and im2col ([`ConvAlgorithm`]).
///
/// # Errors
/// [`KernelError::Shape`] if a slice length disagrees with `geometry`,
/// [`KernelError::Options`] if `geometry.groups ≠ 1`.
pub fn conv2d_forward_and_weight_grad(
    geometry: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    output_grad: &[f32],
    algorithm: ConvAlgorithm,
) -> Result<(Vec<f32>, Vec<f32>), KernelError> {
    let g = geometry;
    check_single_group(g)?;
    let (k, pixels, out_channels) = (g.patch_len(), g.out_pixels(), g.out_channels);
    g.check_lengths(&[
        ("input", input.len(), g.batch * g.in_image_len()),
        ("weight", weight.len(), out_channels * k),
        (
            "output gradient",
            output_grad.len(),
            g.batch * g.out_image_len(),
        ),
    ])?;
    if let Some(kind) = winograd_kind(g, algorithm) {
        return Ok(winograd::forward_and_weight_grad(
            kind,
            g,
            input,
            weight,
            output_grad,
        ));
    }
    let mut output = zeros(g.batch * g.out_image_len());
    let block = g.block_images();
    let par = inner_parallelism(g.batch, block);
    let weight_matrix = MatRef::from_row_major_slice(weight, out_channels, k);
    let both_block =
        |mut gradient: Vec<f32>,
         ((out_block, in_block), grad_block): ((&mut [f32], &[f32]), &[f32])| {
            let images = in_block.len() / g.in_image_len();
            let columns = images * pixels;
            with_scratch([columns * k, out_channels * columns], |col, rows| {
                im2col(g, in_block, col);
                // Forward: rows[o, n·P + q] = (W · col)[o, n·P + q], then scattered to y[n, o, q].
                let col = MatRef::from_row_major_slice(&*col, k, columns);
                let dst = MatMut::from_row_major_slice_mut(&mut *rows, out_channels, columns);
                gemm(dst, Accum::Replace, weight_matrix, col, par);
                ungroup_channels(rows, out_channels, pixels, out_block);
                // Weight gradient from the same col, with r regrouped into the freed `rows`.
                regroup_channels(grad_block, out_channels, pixels, rows);
                let lhs = MatRef::from_row_major_slice(&*rows, out_channels, columns);
                let dst = MatMut::from_row_major_slice_mut(&mut gradient, out_channels, k);
                gemm(dst, Accum::Add, lhs, col.transpose(), par);
            });
            gradient
        };
    let parts = output
        .par_chunks_mut(block * g.out_image_len())
        .zip(input.par_chunks(block * g.in_image_len()))
        .zip(output_grad.par_chunks(block * g.out_image_len()))
        .fold(|| vec![0.0f32; out_channels * k], both_block);
    let gradient = sum_parts(parts, out_channels * k);
    Ok((output, gradient))
}

/// Both gradients of the cross-correlation `geometry`: `(∂L/∂x, ∂L/∂W)`, as
/// [`conv2d_input_grad`] and [`conv2d_weight_grad`]. Winograd geometries share one
/// transformed output gradient per block between the two; the others run the two kernels.
///
/// `algorithm` chooses between Winograd and im2col ([`ConvAlgorithm`]).
///
/// # Errors
/// [`KernelError::Shape`] if a slice length disagrees with `geometry`,
/// [`KernelError::Options`] if `geometry.groups ≠ 1`.
pub fn conv2d_input_and_weight_grad(
    geometry: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    output_grad: &[f32],
    algorithm: ConvAlgorithm,
) -> Result<(Vec<f32>, Vec<f32>), KernelError> {
    let g = geometry;
    check_single_group(g)?;
    g.check_lengths(&[
        ("input", input.len(), g.batch * g.in_image_len()),
        ("weight", weight.len(), g.out_channels * g.patch_len()),
        (
            "output gradient",
            output_grad.len(),
            g.batch * g.out_image_len(),
        ),
    ])?;
    if let Some(kind) = winograd_kind(g, algorithm) {
        return Ok(winograd::input_and_weight_grad(
            kind,
            g,
            input,
            weight,
            output_grad,
        ));
    }
    Ok((
        conv2d_input_grad(g, output_grad, weight, algorithm)?,
        conv2d_weight_grad(g, input, output_grad, algorithm)?,
    ))
}

/// Input gradient `∂L/∂x = col2im(Wᵀ · ∂L/∂y)` of the cross-correlation `geometry`, i.e.
/// `∂L/∂x[n, c, h', w'] = Σ W[o, c, i, j] · ∂L/∂y[n, o, h, w]` over `h' = h·s_h − p_h + i·d_h`,
/// `w' = w·s_w − p_w + j·d_w`; returned as `[N, C_in, H, W]`, flat.
///
/// The same map is the forward pass of a transposed convolution: for the geometry of
/// [`Conv2dGeometry::conv_transpose2d`], `output_grad` is the transposed convolution's input
/// `x` and the result its output (before the bias).
///
/// `output_grad` is `[N, C_out, H_out, W_out]`, `weight` is `[C_out, C_in, k_h, k_w]`.
///
/// `algorithm` chooses between Winograd and im2col ([`ConvAlgorithm`]).
///
/// # Errors
/// [`KernelError::Shape`] if a slice length disagrees with `geometry`,
/// [`KernelError::Options`] if `geometry.groups ≠ 1`.
pub fn conv2d_input_grad(
    geometry: &Conv2dGeometry,
    output_grad: &[f32],
    weight: &[f32],
    algorithm: ConvAlgorithm,
) -> Result<Vec<f32>, KernelError> {
    let g = geometry;
    check_single_group(g)?;
    let (k, pixels, out_channels) = (g.patch_len(), g.out_pixels(), g.out_channels);
    g.check_lengths(&[
        (
            "output gradient",
            output_grad.len(),
            g.batch * g.out_image_len(),
        ),
        ("weight", weight.len(), out_channels * k),
    ])?;
    if g.batch == 0 {
        return Ok(Vec::new());
    }
    if let Some(kind) = winograd_kind(g, algorithm) {
        return Ok(winograd::input_grad(kind, g, output_grad, weight));
    }
    let mut input_grad = zeros(g.batch * g.in_image_len());
    let block = g.block_images();
    let par = inner_parallelism(g.batch, block);
    let weight_matrix = MatRef::from_row_major_slice(weight, out_channels, k);
    let input_grad_block = |(in_block, grad_block): (&mut [f32], &[f32])| {
        let images = grad_block.len() / g.out_image_len();
        let columns = images * pixels;
        with_scratch([columns * k, out_channels * columns], |col, grad_rows| {
            let grad_rows = if images == 1 {
                grad_block
            } else {
                regroup_channels(grad_block, out_channels, pixels, grad_rows);
                &*grad_rows
            };
            // col[(c, i, j), n·P + q] = Σ_o W[o, (c, i, j)] · ∂L/∂y[n, o, q]
            let rhs = MatRef::from_row_major_slice(grad_rows, out_channels, columns);
            let dst = MatMut::from_row_major_slice_mut(&mut *col, k, columns);
            gemm(dst, Accum::Replace, weight_matrix.transpose(), rhs, par);
            col2im(g, col, in_block);
        });
    };
    input_grad
        .par_chunks_mut(block * g.in_image_len())
        .zip(output_grad.par_chunks(block * g.out_image_len()))
        .for_each(input_grad_block);
    Ok(input_grad)
}

/// Adds `bias[c]` to every pixel of channel `c` of consecutive `[C, pixels]` images.
/// Planes are spread over the rayon pool (a whole output's worth would otherwise be one
/// serial pass on the calling thread).
pub(crate) fn add_channel_bias(values: &mut [f32], bias: &[f32], pixels: usize) {
    if pixels == 0 || bias.is_empty() {
        return;
    }
    let min_planes = (1 << 14) / pixels;
    values
        .par_chunks_exact_mut(pixels)
        .with_min_len(min_planes.max(1))
        .enumerate()
        .for_each(|(plane, values)| {
            let b = bias[plane % bias.len()];
            values.iter_mut().for_each(|v| *v += b);
        });
}

/// Bias gradient `∂L/∂b_o = Σ_{n,h,w} ∂L/∂y[n, o, h, w]` of an `[N, C, H, W]` output gradient.
///
/// # Errors
/// [`KernelError::Shape`] if `output_grad.len()` is not a multiple of `channels · pixels`.
pub fn bias_grad(
    output_grad: &[f32],
    channels: usize,
    pixels: usize,
) -> Result<Vec<f32>, KernelError> {
    let image_len = channels * pixels;
    if image_len == 0 || !output_grad.len().is_multiple_of(image_len) {
        return Err(KernelError::Shape(format!(
            "output gradient of {} elements is not a whole number of {channels}×{pixels} images",
            output_grad.len()
        )));
    }
    // Channels in parallel, each summed over its planes in f64.
    Ok((0..channels)
        .into_par_iter()
        .map(|c| {
            output_grad
                .chunks_exact(image_len)
                .map(|image| norm::lane_sum(&image[c * pixels..(c + 1) * pixels], |v| v))
                .sum::<f64>() as f32
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::ops::ConvOptions;

    /// The default choice: these geometries have too few channels for Winograd, so it is im2col.
    const AUTO: ConvAlgorithm = ConvAlgorithm::Auto;

    /// Direct seven-loop cross-correlation: the definition, with no im2col and no GEMM.
    fn direct_forward(g: &Conv2dGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
        let [h, wd] = g.in_size;
        let [oh_n, ow_n] = g.out_size;
        let [kh_n, kw_n] = g.kernel_size;
        let mut y = vec![0.0f32; g.batch * g.out_image_len()];
        for n in 0..g.batch {
            for o in 0..g.out_channels {
                for oh in 0..oh_n {
                    for ow in 0..ow_n {
                        let mut acc = 0.0;
                        for c in 0..g.in_channels {
                            for i in 0..kh_n {
                                for j in 0..kw_n {
                                    let ih = (oh * g.stride[0] + i * g.dilation[0]) as isize
                                        - g.padding[0] as isize;
                                    let iw = (ow * g.stride[1] + j * g.dilation[1]) as isize
                                        - g.padding[1] as isize;
                                    if ih >= 0 && iw >= 0 && (ih as usize) < h && (iw as usize) < wd
                                    {
                                        let xv = x[((n * g.in_channels + c) * h + ih as usize)
                                            * wd
                                            + iw as usize];
                                        acc +=
                                            xv * w[((o * g.in_channels + c) * kh_n + i) * kw_n + j];
                                    }
                                }
                            }
                        }
                        y[((n * g.out_channels + o) * oh_n + oh) * ow_n + ow] = acc;
                    }
                }
            }
        }
        y
    }

    fn sequence(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919 + seed * 104_729) % 97) as f32 / 48.0 - 1.0)
            .collect()
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn hand_computed_two_by_two_kernel() {
        // x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], W = [[1, 0], [0, -1]], stride 1, no padding:
        // y[h, w] = x[h, w] − x[h + 1, w + 1] = −4 everywhere.
        let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        let g = Conv2dGeometry::conv2d([1, 1, 3, 3], [1, 1, 2, 2], &options).expect("valid");
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let y = conv2d_forward(&g, &x, &[1.0, 0.0, 0.0, -1.0], Some(&[0.5]), AUTO).expect("valid");
        assert_eq!(y, vec![-3.5; 4]);
        // With ∂L/∂y = 1: ∂L/∂W[i, j] = Σ_{h,w} x[h + i, w + j] = 12, 16, 24, 28.
        let dw = conv2d_weight_grad(&g, &x, &[1.0; 4], AUTO).expect("valid");
        assert_eq!(dw, vec![12.0, 16.0, 24.0, 28.0]);
        // ∂L/∂x counts, per pixel, the kernel taps that reach it with sign: +1 for the top-left
        // tap, −1 for the bottom-right one.
        let dx = conv2d_input_grad(&g, &[1.0; 4], &[1.0, 0.0, 0.0, -1.0], AUTO).expect("valid");
        assert_eq!(dx, vec![1.0, 1.0, 0.0, 1.0, 0.0, -1.0, 0.0, -1.0, -1.0]);
        assert_eq!(
            bias_grad(&[1.0, 2.0, 3.0, 4.0], 1, 4).expect("valid"),
            vec![10.0]
        );
    }

    /// Weight and input gradients are the adjoints of the forward map: for any x, W, r,
    /// ⟨r, conv(x, W)⟩ = ⟨∂/∂W, W⟩ = ⟨∂/∂x, x⟩, both against the direct forward.
    #[test]
    fn kernels_agree_with_the_direct_definition_and_its_adjoints() {
        let shapes = [
            ([3, 2, 9, 8], [4, 2, 4, 4], [2, 2], [(1, 1), (1, 1)], [1, 1]),
            ([2, 3, 7, 7], [5, 3, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1]),
            (
                [2, 2, 10, 9],
                [3, 2, 3, 2],
                [3, 2],
                [(2, 0), (0, 1)],
                [2, 3],
            ),
            ([1, 1, 6, 6], [2, 1, 5, 1], [1, 3], [(0, 0), (2, 2)], [1, 1]),
        ];
        for (x_shape, w_shape, stride, padding, dilation) in shapes {
            let options = ConvOptions::new_with_padding(stride, padding, dilation, 1);
            let g = Conv2dGeometry::conv2d(x_shape, w_shape, &options).expect("valid");
            let x = sequence(g.batch * g.in_image_len(), 1);
            let w = sequence(g.out_channels * g.patch_len(), 2);
            let r = sequence(g.batch * g.out_image_len(), 3);
            let direct = direct_forward(&g, &x, &w);
            let ours = conv2d_forward(&g, &x, &w, None, AUTO).expect("valid");
            assert!(max_abs_diff(&ours, &direct) < 1e-4, "forward {g:?}");
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f32>();
            let objective = dot(&r, &direct);
            let dw = conv2d_weight_grad(&g, &x, &r, AUTO).expect("valid");
            let dx = conv2d_input_grad(&g, &r, &w, AUTO).expect("valid");
            let (fused_y, fused_dw) =
                conv2d_forward_and_weight_grad(&g, &x, &w, &r, AUTO).expect("valid");
            assert!(max_abs_diff(&fused_y, &ours) < 1e-5, "fused forward {g:?}");
            assert!(
                max_abs_diff(&fused_dw, &dw) < 1e-4,
                "fused weight grad {g:?}"
            );
            assert!(
                (dot(&dw, &w) - objective).abs() < 1e-3 * objective.abs().max(1.0),
                "⟨dW, W⟩ {g:?}"
            );
            assert!(
                (dot(&dx, &x) - objective).abs() < 1e-3 * objective.abs().max(1.0),
                "⟨dx, x⟩ {g:?}"
            );
        }
    }

    /// On the geometries of the three Winograd algorithms, every entry point gives the same
    /// values under both choices to the documented rounding (1e-5 of the largest magnitude;
    /// 1e-4 for F(4×4, 3×3)), and the choices do run different algorithms (not bit-identical).
    #[test]
    fn both_algorithms_agree_on_winograd_geometries() {
        let three = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let strided = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
        for (x_shape, w_shape, options, tolerance) in [
            ([2, 16, 6, 8], [24, 16, 3, 3], &three, 1e-5),
            ([2, 16, 16, 16], [16, 16, 3, 3], &three, 1e-4),
            ([3, 16, 8, 12], [20, 16, 4, 4], &strided, 1e-5),
        ] {
            let g = Conv2dGeometry::conv2d(x_shape, w_shape, options).expect("valid");
            assert!(winograd_kind(&g, ConvAlgorithm::Auto).is_some(), "{g:?}");
            let x = sequence(g.batch * g.in_image_len(), 1);
            let w = sequence(g.out_channels * g.patch_len(), 2);
            let r = sequence(g.batch * g.out_image_len(), 3);
            let run = |algorithm| {
                let y = conv2d_forward(&g, &x, &w, None, algorithm).expect("valid");
                let dx = conv2d_input_grad(&g, &r, &w, algorithm).expect("valid");
                let dw = conv2d_weight_grad(&g, &x, &r, algorithm).expect("valid");
                let (fused_dx, fused_dw) =
                    conv2d_input_and_weight_grad(&g, &x, &w, &r, algorithm).expect("valid");
                let (fused_y, fused_dw_y) =
                    conv2d_forward_and_weight_grad(&g, &x, &w, &r, algorithm).expect("valid");
                [y, dx, dw, fused_dx, fused_dw, fused_y, fused_dw_y]
            };
            let (winograd, im2col) = (run(ConvAlgorithm::Auto), run(ConvAlgorithm::Im2col));
            for (index, (a, b)) in winograd.iter().zip(&im2col).enumerate() {
                let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                let error = max_abs_diff(a, b) / scale;
                assert!(
                    error <= tolerance,
                    "{g:?} output {index}: relative {error:e}"
                );
                assert_ne!(a, b, "{g:?} output {index}: identical under both choices");
            }
        }
    }

    #[test]
    fn grouped_geometry_is_validated_but_not_computed() {
        let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 2);
        let g = Conv2dGeometry::conv2d([1, 4, 5, 5], [6, 2, 3, 3], &options).expect("valid");
        let x = vec![0.0; g.batch * g.in_image_len()];
        assert!(matches!(
            conv2d_forward(&g, &x, &[0.0; 36], None, AUTO),
            Err(KernelError::Options(_))
        ));
        let bad = Conv2dGeometry::conv2d([1, 4, 5, 5], [5, 2, 3, 3], &options);
        assert!(matches!(bad, Err(KernelError::Shape(_))));
    }

    #[test]
    fn wrong_slice_lengths_are_errors() {
        let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        let g = Conv2dGeometry::conv2d([2, 1, 4, 4], [1, 1, 2, 2], &options).expect("valid");
        assert!(conv2d_weight_grad(&g, &[0.0; 31], &[0.0; 18], AUTO).is_err());
        assert!(conv2d_input_grad(&g, &[0.0; 18], &[0.0; 3], AUTO).is_err());
        assert!(bias_grad(&[0.0; 7], 2, 2).is_err());
    }
}
