//! The one place the networks run a convolution, a linear layer, a batch norm, a ReLU or the
//! decoder's pixel likelihood: through `infobound-kernels` when the `flex-kernels` feature is
//! on (same parameters and values, faster forward and backward on flex, Burn's own ops on
//! other backends), through Burn's modules and tensor ops otherwise.

#[cfg(feature = "flex-kernels")]
use std::sync::atomic::{AtomicBool, Ordering};

use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::{BatchNorm, Linear};
use burn::tensor::Tensor;

use crate::ModelError;
use crate::vae::Likelihood;

#[cfg(feature = "flex-kernels")]
static GENERIC_LAYERS: AtomicBool = AtomicBool::new(false);

/// Routes every convolution and batch norm of this crate's networks through Burn's own module
/// forward (`true`) or through `infobound-kernels` (`false`, the default) for the rest of the
/// process.
/// Both compute the same function; the switch exists to compare them (speed, and that training
/// follows the same loss curve) inside one binary.
#[cfg(feature = "flex-kernels")]
pub fn set_generic_layers(generic: bool) {
    GENERIC_LAYERS.store(generic, Ordering::Relaxed);
}

#[cfg(feature = "flex-kernels")]
fn generic() -> bool {
    GENERIC_LAYERS.load(Ordering::Relaxed)
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

/// `layer.forward(x)`.
#[cfg(feature = "flex-kernels")]
pub(crate) fn linear(layer: &Linear, x: Tensor<2>) -> Result<Tensor<2>, ModelError> {
    use infobound_kernels::FastLinear;
    if generic() {
        return Ok(layer.forward(x));
    }
    Ok(layer.forward_fast(x)?)
}

/// `layer.forward(x)`.
#[cfg(not(feature = "flex-kernels"))]
pub(crate) fn linear(layer: &Linear, x: Tensor<2>) -> Result<Tensor<2>, ModelError> {
    let [_, d_input] = layer.weight.dims();
    if x.dims()[1] != d_input {
        return Err(ModelError::Shape(format!(
            "linear layer of {d_input} inputs got {:?}",
            x.dims()
        )));
    }
    Ok(layer.forward(x))
}

/// `norm.forward(x)`.
#[cfg(feature = "flex-kernels")]
pub(crate) fn batch_norm(norm: &BatchNorm, x: Tensor<4>) -> Result<Tensor<4>, ModelError> {
    use infobound_kernels::FastBatchNorm;
    if generic() {
        return Ok(norm.forward(x));
    }
    Ok(norm.forward_fast(x)?)
}

/// `norm.forward(x)`.
#[cfg(not(feature = "flex-kernels"))]
pub(crate) fn batch_norm(norm: &BatchNorm, x: Tensor<4>) -> Result<Tensor<4>, ModelError> {
    Ok(norm.forward(x))
}

/// `relu(x)`.
#[cfg(feature = "flex-kernels")]
pub(crate) fn relu<const D: usize>(x: Tensor<D>) -> Result<Tensor<D>, ModelError> {
    if generic() {
        return Ok(burn::tensor::activation::relu(x));
    }
    Ok(infobound_kernels::relu(x)?)
}

/// `relu(x)`.
#[cfg(not(feature = "flex-kernels"))]
pub(crate) fn relu<const D: usize>(x: Tensor<D>) -> Result<Tensor<D>, ModelError> {
    Ok(burn::tensor::activation::relu(x))
}

/// `relu(a + b)`.
#[cfg(feature = "flex-kernels")]
pub(crate) fn add_relu<const D: usize>(
    a: Tensor<D>,
    b: Tensor<D>,
) -> Result<Tensor<D>, ModelError> {
    if generic() {
        return Ok(burn::tensor::activation::relu(a + b));
    }
    Ok(infobound_kernels::add_relu(a, b)?)
}

/// `relu(a + b)`.
#[cfg(not(feature = "flex-kernels"))]
pub(crate) fn add_relu<const D: usize>(
    a: Tensor<D>,
    b: Tensor<D>,
) -> Result<Tensor<D>, ModelError> {
    Ok(burn::tensor::activation::relu(a + b))
}

/// `likelihood`'s per-sample negative log-likelihood of `x` under `logits`.
#[cfg(feature = "flex-kernels")]
pub(crate) fn pixel_negative_log_likelihood(
    likelihood: Likelihood,
    logits: Tensor<4>,
    x: Tensor<4>,
) -> Result<Tensor<1>, ModelError> {
    use infobound_kernels::PixelLikelihood;
    if generic() {
        return Ok(likelihood.composed(logits, x));
    }
    let kind = match likelihood {
        Likelihood::Bernoulli => PixelLikelihood::BernoulliLogits,
        Likelihood::Gaussian => PixelLikelihood::SigmoidSquaredError,
    };
    Ok(infobound_kernels::pixel_negative_log_likelihood(
        kind, logits, x,
    )?)
}

/// `likelihood`'s per-sample negative log-likelihood of `x` under `logits`.
#[cfg(not(feature = "flex-kernels"))]
pub(crate) fn pixel_negative_log_likelihood(
    likelihood: Likelihood,
    logits: Tensor<4>,
    x: Tensor<4>,
) -> Result<Tensor<1>, ModelError> {
    if logits.dims() != x.dims() {
        return Err(ModelError::Shape(format!(
            "logits {:?} and images {:?} differ in shape",
            logits.dims(),
            x.dims()
        )));
    }
    Ok(likelihood.composed(logits, x))
}
