//! The sizes of one 2-D cross-correlation ([`Conv2dGeometry`]), their validation, and how a
//! batch is cut into blocks for the im2col + GEMM kernels.

use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

use super::equal_blocks;
use crate::KernelError;

/// Upper bound, in `f32` elements, of one block's im2col matrix (512 KiB): it stays in a
/// core's L2 cache between being written and being read by the GEMM. Measured on the Burgess
/// VAE's conv stack (2 cores): 512 KiB and 256 KiB blocks ran the step ≈ 10–20 % faster than
/// 1–4 MiB blocks, where the GEMM's longer depth did not pay for the cache misses.
pub(super) const COL_BLOCK_ELEMENTS: usize = 1 << 17;

/// Least GEMM width `n·P` of a block whose weight matrix is larger than
/// [`COL_BLOCK_ELEMENTS`]. With few output pixels (ResNet's 8×8 and 4×4 stages) a one-image
/// block gives GEMMs of 16–64 columns: the forward runs on faer's narrow edge kernels, and
/// each weight-gradient GEMM reads and writes the whole multi-MiB gradient for a reduction
/// of depth 16–64. Measured on ResNet-18 at 32 px, batch 64 (2 cores): 512 columns ran the
/// training step 12 % faster than one-image blocks, 256 and 1024 columns slightly slower than
/// 512; the VAE's small weights keep their L2-sized blocks.
pub(super) const WIDE_WEIGHT_MIN_COLUMNS: usize = 512;

/// Sizes of one 2-D cross-correlation (the kernels here run `groups = 1` only):
/// `y[n, o, h, w] = Σ_{c,i,j} W[o, c, i, j] · x[n, c, h·s_h − p_h + i·d_h, w·s_w − p_w + j·d_w]`,
/// where out-of-image reads are zero (the definition of `torch.nn.functional.conv2d` and of
/// Burn's `conv2d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dGeometry {
    /// Number of images `N`.
    pub batch: usize,
    /// Input channels `C_in`.
    pub in_channels: usize,
    /// Input height and width.
    pub in_size: [usize; 2],
    /// Output channels `C_out`.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel_size: [usize; 2],
    /// Stride `s` per spatial dimension.
    pub stride: [usize; 2],
    /// Leading (top, left) zero padding `p`; trailing padding only enters through `out_size`.
    pub padding: [usize; 2],
    /// Dilation `d` per spatial dimension.
    pub dilation: [usize; 2],
    /// Output height and width.
    pub out_size: [usize; 2],
    /// Channel groups; the kernels of this module require 1.
    pub groups: usize,
}

impl Conv2dGeometry {
    /// The geometry of `conv2d(x, weight, options)` for `x: [N, C_in, H, W]` and
    /// `weight: [C_out, C_in / groups, k_h, k_w]`; output size
    /// `⌊(H + p_begin + p_end − d·(k − 1) − 1) / s⌋ + 1` per dimension.
    ///
    /// # Errors
    /// [`KernelError::Options`] for a zero stride, dilation or group count,
    /// [`KernelError::Shape`] if channels disagree with the groups, a size is zero, or the
    /// dilated kernel is larger than the padded input.
    pub fn conv2d(
        x_shape: [usize; 4],
        weight_shape: [usize; 4],
        options: &ConvOptions<2>,
    ) -> Result<Self, KernelError> {
        check_options(options.stride, options.dilation, options.groups)?;
        let [batch, in_channels, height, width] = x_shape;
        let [out_channels, weight_in, kernel_h, kernel_w] = weight_shape;
        check_groups(in_channels, weight_in, out_channels, options.groups)?;
        check_nonzero(&[in_channels, out_channels, height, width, kernel_h, kernel_w])?;
        let out_size = [0, 1].map(|dim| {
            let [input, kernel] = [[height, kernel_h], [width, kernel_w]][dim];
            let (begin, end) = options.padding[dim];
            let span = options.dilation[dim] * (kernel - 1) + 1;
            let padded = input + begin + end;
            (padded >= span).then(|| (padded - span) / options.stride[dim] + 1)
        });
        let [Some(out_h), Some(out_w)] = out_size else {
            return Err(KernelError::Shape(format!(
                "dilated kernel {:?} larger than padded input {:?}",
                [kernel_h, kernel_w],
                [height, width]
            )));
        };
        Ok(Self {
            batch,
            in_channels,
            in_size: [height, width],
            out_channels,
            kernel_size: [kernel_h, kernel_w],
            stride: options.stride,
            padding: options.padding_begin(),
            dilation: options.dilation,
            out_size: [out_h, out_w],
            groups: options.groups,
        })
    }

    /// For `conv_transpose2d(x, weight, options)` with `x: [N, C_in, H, W]` and
    /// `weight: [C_in, C_out / groups, k_h, k_w]`, the cross-correlation whose *input* is the transposed
    /// convolution's output (gradient) `[N, C_out, H_out, W_out]`,
    /// `H_out = (H − 1)·s − 2p + d·(k − 1) + p_out + 1`, and whose output grid is `x`'s `H × W`.
    ///
    /// Since `y[n, o, h·s − p + i·d, w·s − p + j·d] += x[n, c, h, w] · W[c, o, i, j]`, the weight
    /// gradient `∂L/∂W[c, o, i, j] = Σ_{n,h,w} x[n, c, h, w] · ∂L/∂y[n, o, h·s − p + i·d, w·s − p + j·d]`
    /// is exactly [`conv2d_weight_grad`](super::conv2d_weight_grad) of this geometry with `x` as the output gradient.
    ///
    /// # Errors
    /// As [`Conv2dGeometry::conv2d`], and [`KernelError::Shape`] if the output would be empty.
    pub fn conv_transpose2d(
        x_shape: [usize; 4],
        weight_shape: [usize; 4],
        options: &ConvTransposeOptions<2>,
    ) -> Result<Self, KernelError> {
        check_options(options.stride, options.dilation, options.groups)?;
        let [batch, in_channels, height, width] = x_shape;
        let [weight_in, group_out_channels, kernel_h, kernel_w] = weight_shape;
        if weight_in != in_channels || !in_channels.is_multiple_of(options.groups) {
            return Err(KernelError::Shape(format!(
                "input has {in_channels} channels, the weight expects {weight_in} in {} groups",
                options.groups
            )));
        }
        let out_channels = group_out_channels * options.groups;
        check_nonzero(&[in_channels, out_channels, height, width, kernel_h, kernel_w])?;
        let out_size = [0, 1].map(|dim| {
            let [input, kernel] = [[height, kernel_h], [width, kernel_w]][dim];
            let full = (input - 1) * options.stride[dim]
                + options.dilation[dim] * (kernel - 1)
                + options.padding_out[dim]
                + 1;
            full.checked_sub(2 * options.padding[dim])
                .filter(|&size| size > 0)
        });
        let [Some(out_h), Some(out_w)] = out_size else {
            return Err(KernelError::Shape(format!(
                "padding {:?} leaves no output for input {:?}",
                options.padding,
                [height, width]
            )));
        };
        Ok(Self {
            batch,
            in_channels: out_channels,
            in_size: [out_h, out_w],
            out_channels: in_channels,
            kernel_size: [kernel_h, kernel_w],
            stride: options.stride,
            padding: options.padding,
            dilation: options.dilation,
            out_size: [height, width],
            groups: options.groups,
        })
    }

    /// Entries of one im2col column, `K = C_in·k_h·k_w`.
    pub fn patch_len(&self) -> usize {
        self.in_channels * self.kernel_size[0] * self.kernel_size[1]
    }

    /// Output pixels per channel, `P = H_out·W_out`.
    pub fn out_pixels(&self) -> usize {
        self.out_size[0] * self.out_size[1]
    }

    /// Elements of one input image, `C_in·H·W`.
    pub fn in_image_len(&self) -> usize {
        self.in_channels * self.in_size[0] * self.in_size[1]
    }

    /// Elements of one output image, `C_out·P`.
    pub fn out_image_len(&self) -> usize {
        self.out_channels * self.out_pixels()
    }

    /// Images per block: the im2col block stays within [`COL_BLOCK_ELEMENTS`] unless the
    /// weight is larger than that ([`WIDE_WEIGHT_MIN_COLUMNS`]), in [`equal_blocks`].
    pub(super) fn block_images(&self) -> usize {
        let per_image = self.patch_len() * self.out_pixels();
        let min_columns = if self.out_channels * self.patch_len() > COL_BLOCK_ELEMENTS {
            WIDE_WEIGHT_MIN_COLUMNS
        } else {
            0
        };
        let largest = (COL_BLOCK_ELEMENTS / per_image.max(1))
            .max(min_columns.div_ceil(self.out_pixels().max(1)));
        equal_blocks(self.batch, largest)
    }

    pub(super) fn check_lengths(&self, named: &[(&str, usize, usize)]) -> Result<(), KernelError> {
        for &(name, got, expected) in named {
            if got != expected {
                return Err(KernelError::Shape(format!(
                    "{name} has {got} elements, geometry {self:?} needs {expected}"
                )));
            }
        }
        Ok(())
    }
}

fn check_options(
    stride: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
) -> Result<(), KernelError> {
    if stride.contains(&0) || dilation.contains(&0) || groups == 0 {
        return Err(KernelError::Options(format!(
            "stride {stride:?}, dilation {dilation:?} and groups {groups} must be non-zero"
        )));
    }
    Ok(())
}

/// `conv2d` channels: `C_in = groups · (weight's C_in)`, and `groups` divides `C_out`.
fn check_groups(
    in_channels: usize,
    weight_in: usize,
    out_channels: usize,
    groups: usize,
) -> Result<(), KernelError> {
    if in_channels != weight_in * groups || !out_channels.is_multiple_of(groups) {
        return Err(KernelError::Shape(format!(
            "input has {in_channels} channels, the weight has {weight_in} in and {out_channels} \
             out channels, in {groups} groups"
        )));
    }
    Ok(())
}

/// The kernels of this module compute one dense group.
pub(super) fn check_single_group(geometry: &Conv2dGeometry) -> Result<(), KernelError> {
    if geometry.groups != 1 {
        return Err(KernelError::Options(format!(
            "the im2col kernels need groups = 1, got {}",
            geometry.groups
        )));
    }
    Ok(())
}

fn check_nonzero(sizes: &[usize]) -> Result<(), KernelError> {
    if sizes.contains(&0) {
        return Err(KernelError::Shape(format!(
            "channels, spatial sizes and kernel sizes must be non-zero, got {sizes:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_matches_pytorch_output_sizes() {
        // torch.nn.Conv2d(1, 1, 4, stride=2, padding=1)(torch.zeros(1, 1, 64, 64)).shape[-1] == 32
        let options = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
        let g = Conv2dGeometry::conv2d([1, 1, 64, 64], [1, 1, 4, 4], &options).expect("valid");
        assert_eq!(g.out_size, [32, 32]);
        // torch.nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1) maps 4×4 to 8×8, and with
        // output_padding=1, dilation=2: (4 − 1)·2 − 2 + 2·3 + 1 + 1 = 12.
        let t = ConvTransposeOptions::new([2, 2], [1, 1], [0, 0], [1, 1], 1);
        let g = Conv2dGeometry::conv_transpose2d([1, 1, 4, 4], [1, 1, 4, 4], &t).expect("valid");
        assert_eq!((g.in_size, g.out_size), ([8, 8], [4, 4]));
        let t = ConvTransposeOptions::new([2, 2], [1, 1], [1, 1], [2, 2], 1);
        let g = Conv2dGeometry::conv_transpose2d([1, 1, 4, 4], [1, 1, 4, 4], &t).expect("valid");
        assert_eq!(g.in_size, [12, 12]);
    }
}
