//! The one place the networks run a convolution: through `infobound-kernels` when the
//! `flex-kernels` feature is on (same parameters, faster forward and backward on flex, Burn's
//! own op on other backends), through Burn's module otherwise.

#[cfg(feature = "flex-kernels")]
use std::sync::atomic::{AtomicBool, Ordering};

use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::tensor::Tensor;

use crate::ModelError;

#[cfg(feature = "flex-kernels")]
static GENERIC_CONVOLUTIONS: AtomicBool = AtomicBool::new(false);

/// Routes every convolution of this crate's networks through Burn's own module forward
/// (`true`) or through `infobound-kernels` (`false`, the default) for the rest of the process.
/// Both compute the same function; the switch exists to compare them (speed, and that training
/// follows the same loss curve) inside one binary.
#[cfg(feature = "flex-kernels")]
pub fn set_generic_convolutions(generic: bool) {
    GENERIC_CONVOLUTIONS.store(generic, Ordering::Relaxed);
}

#[cfg(feature = "flex-kernels")]
fn generic() -> bool {
    GENERIC_CONVOLUTIONS.load(Ordering::Relaxed)
}

/// `conv.forward(x)`.
#[cfg(feature = "flex-kernels")]
pub(crate) fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Result<Tensor<4>, ModelError> {
    use infobound_kernels::FastConv;
    if generic() {
        return Ok(conv.forward(x));
    }
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
    if generic() {
        return Ok(conv.forward(x));
    }
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
