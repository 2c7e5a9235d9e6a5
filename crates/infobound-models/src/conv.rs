//! The one place the networks run a convolution: through `infobound-kernels` when the
//! `flex-kernels` feature is on (same parameters, faster forward and backward on flex, Burn's
//! own op on other backends), through Burn's module otherwise.

use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::tensor::Tensor;

use crate::ModelError;

/// `conv.forward(x)`.
#[cfg(feature = "flex-kernels")]
pub(crate) fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Result<Tensor<4>, ModelError> {
    use infobound_kernels::FastConv;
    Ok(conv.forward_fast(x)?)
}

/// `conv.forward(x)`.
#[cfg(not(feature = "flex-kernels"))]
pub(crate) fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Result<Tensor<4>, ModelError> {
    Ok(conv.forward(x))
}

/// `conv.forward(x)`.
#[cfg(feature = "flex-kernels")]
pub(crate) fn conv_transpose2d(
    conv: &ConvTranspose2d,
    x: Tensor<4>,
) -> Result<Tensor<4>, ModelError> {
    use infobound_kernels::FastConv;
    Ok(conv.forward_fast(x)?)
}

/// `conv.forward(x)`.
#[cfg(not(feature = "flex-kernels"))]
pub(crate) fn conv_transpose2d(
    conv: &ConvTranspose2d,
    x: Tensor<4>,
) -> Result<Tensor<4>, ModelError> {
    Ok(conv.forward(x))
}
