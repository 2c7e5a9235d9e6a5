//! `forward_fast` for Burn's own convolution modules: same parameters, same records, the
//! forward and backward of [`crate::conv2d`] / [`crate::conv_transpose2d`].

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::tensor::Tensor;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

use crate::KernelError;

/// A convolution module whose forward pass can run this crate's kernels.
pub trait FastConv {
    /// The module's `forward(input)` computed by [`crate::conv2d`] or
    /// [`crate::conv_transpose2d`]: the same output and gradients, faster on flex.
    ///
    /// # Errors
    /// [`KernelError`] if `input` does not fit the module (wrong channel count, image smaller
    /// than the dilated kernel), where Burn's `forward` would panic.
    fn forward_fast(&self, input: Tensor<4>) -> Result<Tensor<4>, KernelError>;
}

/// Burn's "same" padding for one dimension (`burn-nn` 0.22.1 `padding.rs`, which is
/// crate-private): output `⌈size / stride⌉`, total padding `(out − 1)·stride + kernel − size`
/// split with the odd element at the end. Like Burn, it ignores dilation.
fn same_padding(kernel: usize, stride: usize, size: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = match out {
        0 => 0,
        _ => ((out - 1) * stride + kernel).saturating_sub(size),
    };
    (total / 2, total - total / 2)
}

/// `((top, bottom), (left, right))` exactly as `Conv2d::forward` computes it.
fn padding_pairs(
    padding: &PaddingConfig2d,
    [height, width]: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
) -> [(usize, usize); 2] {
    match *padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Same => [
            same_padding(kernel[0], stride[0], height),
            same_padding(kernel[1], stride[1], width),
        ],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
    }
}

impl FastConv for Conv2d {
    fn forward_fast(&self, input: Tensor<4>) -> Result<Tensor<4>, KernelError> {
        let [_, _, height, width] = input.dims();
        if self.stride.contains(&0) || self.dilation.contains(&0) || self.groups == 0 {
            return Err(KernelError::Options(format!(
                "stride {:?}, dilation {:?} and groups {} must be non-zero",
                self.stride, self.dilation, self.groups
            )));
        }
        let padding = padding_pairs(
            &self.padding,
            [height, width],
            self.kernel_size,
            self.stride,
        );
        let options =
            ConvOptions::new_with_padding(self.stride, padding, self.dilation, self.groups);
        crate::conv2d(
            input,
            self.weight.val(),
            self.bias.as_ref().map(|bias| bias.val()),
            options,
        )
    }
}

impl FastConv for ConvTranspose2d {
    fn forward_fast(&self, input: Tensor<4>) -> Result<Tensor<4>, KernelError> {
        if self.stride.contains(&0) || self.dilation.contains(&0) || self.groups == 0 {
            return Err(KernelError::Options(format!(
                "stride {:?}, dilation {:?} and groups {} must be non-zero",
                self.stride, self.dilation, self.groups
            )));
        }
        let options = ConvTransposeOptions::new(
            self.stride,
            self.padding,
            self.padding_out,
            self.dilation,
            self.groups,
        );
        crate::conv_transpose2d(
            input,
            self.weight.val(),
            self.bias.as_ref().map(|bias| bias.val()),
            options,
        )
    }
}
