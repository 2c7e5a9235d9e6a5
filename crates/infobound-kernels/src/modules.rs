//! `forward_fast` for Burn's own convolution, linear and batch-norm modules: same parameters,
//! same records, the forward and backward of [`crate::conv2d`] / [`crate::conv_transpose2d`] /
//! [`crate::linear`] / [`crate::batch_norm_train`].

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::{BatchNorm, Linear};
use burn::tensor::Tensor;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

use crate::{ConvAlgorithm, KernelError};

/// A convolution module whose forward pass can run this crate's kernels.
pub trait FastConv {
    /// The module's `forward(input)` computed by [`crate::conv2d`] or
    /// [`crate::conv_transpose2d`] with the default [`ConvAlgorithm::Auto`] (Winograd where
    /// it applies): the same output and gradients to float rounding, faster on flex.
    ///
    /// # Errors
    /// [`KernelError`] if `input` does not fit the module (wrong channel count, image smaller
    /// than the dilated kernel), where Burn's `forward` would panic.
    fn forward_fast(&self, input: Tensor<4>) -> Result<Tensor<4>, KernelError> {
        self.forward_fast_with(input, ConvAlgorithm::default())
    }

    /// [`FastConv::forward_fast`] with the algorithm chosen by the caller, typically from
    /// the layer's or the run's configuration ([`ConvAlgorithm`] says what each computes).
    ///
    /// # Errors
    /// As [`FastConv::forward_fast`].
    fn forward_fast_with(
        &self,
        input: Tensor<4>,
        algorithm: ConvAlgorithm,
    ) -> Result<Tensor<4>, KernelError>;
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
    fn forward_fast_with(
        &self,
        input: Tensor<4>,
        algorithm: ConvAlgorithm,
    ) -> Result<Tensor<4>, KernelError> {
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
        crate::conv2d_with(
            input,
            self.weight.val(),
            self.bias.as_ref().map(|bias| bias.val()),
            options,
            algorithm,
        )
    }
}

impl FastConv for ConvTranspose2d {
    fn forward_fast_with(
        &self,
        input: Tensor<4>,
        algorithm: ConvAlgorithm,
    ) -> Result<Tensor<4>, KernelError> {
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
        crate::conv_transpose2d_with(
            input,
            self.weight.val(),
            self.bias.as_ref().map(|bias| bias.val()),
            options,
            algorithm,
        )
    }
}

/// A linear module whose forward pass can run [`crate::linear`].
pub trait FastLinear {
    /// The module's `forward(input)` for `[N, d_input]` inputs, computed by
    /// [`crate::linear`]: the same output and gradients, on the rayon pool on flex.
    ///
    /// # Errors
    /// [`KernelError::Shape`] if `input` does not have the module's `d_input` columns, where
    /// Burn's `forward` would panic.
    fn forward_fast(&self, input: Tensor<2>) -> Result<Tensor<2>, KernelError>;
}

impl FastLinear for Linear {
    fn forward_fast(&self, input: Tensor<2>) -> Result<Tensor<2>, KernelError> {
        crate::linear(
            input,
            self.weight.val(),
            self.bias.as_ref().map(|bias| bias.val()),
        )
    }
}

/// A batch-norm module whose training-mode forward pass can run this crate's kernel.
pub trait FastBatchNorm {
    /// The module's `forward(input)`: in training mode (an autodiff device and the layer's
    /// training flag on) the batch statistics come from [`crate::batch_norm_train`] and the
    /// running statistics are updated exactly as `BatchNorm::forward` updates them
    /// (burn-nn 0.22.1: `running ← (1 − momentum)·running + momentum·batch`, with the biased
    /// batch variance); otherwise it is `forward` itself.
    ///
    /// # Errors
    /// [`KernelError::Shape`] if `input` is not `[N, C, …]` with C the module's feature count,
    /// where Burn's `forward` would panic.
    fn forward_fast<const D: usize>(&self, input: Tensor<D>) -> Result<Tensor<D>, KernelError>;
}

impl FastBatchNorm for BatchNorm {
    fn forward_fast<const D: usize>(&self, input: Tensor<D>) -> Result<Tensor<D>, KernelError> {
        let [features] = self.gamma.shape().dims();
        let dims = input.dims();
        if D < 2 || dims[1] != features {
            return Err(KernelError::Shape(format!(
                "batch norm of {features} features got an input of shape {dims:?}"
            )));
        }
        if !(input.device().is_autodiff() && self.training.is_enabled()) {
            return Ok(self.forward(input));
        }
        let device = input.device();
        let result =
            crate::batch_norm_train(input, self.gamma.val(), self.beta.val(), self.epsilon)?;
        let mix = |running: Tensor<1>, batch: Tensor<1>| {
            running
                .to_device(&device)
                .mul_scalar(1.0 - self.momentum)
                .add(batch.detach().mul_scalar(self.momentum))
                .detach()
        };
        self.running_mean
            .update(mix(self.running_mean.value_sync(), result.mean));
        self.running_var
            .update(mix(self.running_var.value_sync(), result.variance));
        Ok(result.output)
    }
}
