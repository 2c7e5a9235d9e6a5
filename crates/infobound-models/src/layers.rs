//! The one place the networks run a convolution, a linear layer, a batch norm, a ReLU or the
//! decoder's pixel likelihood, through the implementation the network's configuration names
//! ([`LayerImplementation`]): `infobound-kernels` (same parameters and values, faster forward
//! and backward on flex, Burn's own ops on other backends) or Burn's modules and tensor ops.

use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::{BatchNorm, Linear};
use burn::tensor::Tensor;
#[cfg(feature = "flex-kernels")]
use infobound_kernels::{ConvAlgorithm, FastBatchNorm, FastConv, FastLinear, PixelLikelihood};
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::vae::Likelihood;

/// Which code computes a network's convolutions, linear layers, batch norms, ReLUs and pixel
/// likelihood. Part of the layer or run configuration (serde `snake_case`: `"kernels"`,
/// `"kernels_im2col"`, `"burn"`), stored in every network module; there is no process-global
/// switch.
///
/// All three compute the same functions with the same parameters and saved records, and agree
/// to float rounding (≈ 1e-6 relative to an output's largest magnitude per convolution, ≈ 1e-5
/// for Winograd F(4×4, 3×3): see `infobound_kernels::ConvAlgorithm`); training follows the same
/// loss curve (`tests/kernels_loss_curve.rs`, `tests/kernels_ssl_loss_curve.rs`). Without the
/// `flex-kernels` feature every choice runs Burn's modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerImplementation {
    /// `infobound-kernels` with `ConvAlgorithm::Auto`: Winograd's minimal filtering on the
    /// convolution geometries it computes, im2col + GEMM elsewhere, and the kernels' linear,
    /// batch-norm, ReLU and likelihood passes on flex; Burn's own op on other backends. The
    /// default (our choice: the fastest path measured in `docs/benchmarks.md`).
    #[default]
    Kernels,
    /// As [`LayerImplementation::Kernels`] with `ConvAlgorithm::Im2col`: every convolution as
    /// im2col + GEMM, the direct definition's products (for comparing against Winograd).
    KernelsIm2col,
    /// Burn's modules and tensor ops (`Conv2d::forward`, `BatchNorm::forward`, …) on every
    /// backend: the reference the kernels are checked against.
    Burn,
}

/// What runs one layer call.
#[derive(Clone, Copy)]
enum Path {
    /// `infobound-kernels`, convolutions by this algorithm.
    #[cfg(feature = "flex-kernels")]
    Kernels(ConvAlgorithm),
    /// Burn's modules and tensor ops.
    Burn,
}

impl LayerImplementation {
    fn path(self) -> Path {
        match self {
            #[cfg(feature = "flex-kernels")]
            Self::Kernels => Path::Kernels(ConvAlgorithm::Auto),
            #[cfg(feature = "flex-kernels")]
            Self::KernelsIm2col => Path::Kernels(ConvAlgorithm::Im2col),
            #[cfg(feature = "flex-kernels")]
            Self::Burn => Path::Burn,
            #[cfg(not(feature = "flex-kernels"))]
            Self::Kernels | Self::KernelsIm2col | Self::Burn => Path::Burn,
        }
    }
}

/// `conv.forward(x)`.
pub(crate) fn conv2d(
    conv: &Conv2d,
    x: Tensor<4>,
    implementation: LayerImplementation,
) -> Result<Tensor<4>, ModelError> {
    match implementation.path() {
        #[cfg(feature = "flex-kernels")]
        Path::Kernels(algorithm) => Ok(conv.forward_fast_with(x, algorithm)?),
        Path::Burn => {
            // Weight [C_out, C_in / groups, k_h, k_w].
            check_channels("convolution", conv.weight.dims()[1] * conv.groups, &x)?;
            Ok(conv.forward(x))
        }
    }
}

/// `conv.forward(x)`.
pub(crate) fn conv_transpose2d(
    conv: &ConvTranspose2d,
    x: Tensor<4>,
    implementation: LayerImplementation,
) -> Result<Tensor<4>, ModelError> {
    match implementation.path() {
        #[cfg(feature = "flex-kernels")]
        Path::Kernels(algorithm) => Ok(conv.forward_fast_with(x, algorithm)?),
        Path::Burn => {
            // Weight [C_in, C_out / groups, k_h, k_w].
            check_channels("transposed convolution", conv.weight.dims()[0], &x)?;
            Ok(conv.forward(x))
        }
    }
}

/// `layer.forward(x)`.
pub(crate) fn linear(
    layer: &Linear,
    x: Tensor<2>,
    implementation: LayerImplementation,
) -> Result<Tensor<2>, ModelError> {
    match implementation.path() {
        #[cfg(feature = "flex-kernels")]
        Path::Kernels(_) => Ok(layer.forward_fast(x)?),
        Path::Burn => {
            let [d_input, _] = layer.weight.dims();
            if x.dims()[1] != d_input {
                return Err(ModelError::Shape(format!(
                    "linear layer of {d_input} inputs got {:?}",
                    x.dims()
                )));
            }
            Ok(layer.forward(x))
        }
    }
}

/// `norm.forward(x)`.
pub(crate) fn batch_norm(
    norm: &BatchNorm,
    x: Tensor<4>,
    implementation: LayerImplementation,
) -> Result<Tensor<4>, ModelError> {
    match implementation.path() {
        #[cfg(feature = "flex-kernels")]
        Path::Kernels(_) => Ok(norm.forward_fast(x)?),
        Path::Burn => {
            let [features] = norm.gamma.dims();
            check_channels("batch norm", features, &x)?;
            Ok(norm.forward(x))
        }
    }
}

/// `relu(x)`.
pub(crate) fn relu<const D: usize>(
    x: Tensor<D>,
    implementation: LayerImplementation,
) -> Result<Tensor<D>, ModelError> {
    match implementation.path() {
        #[cfg(feature = "flex-kernels")]
        Path::Kernels(_) => Ok(infobound_kernels::relu(x)?),
        Path::Burn => Ok(burn::tensor::activation::relu(x)),
    }
}

/// `relu(a + b)`.
pub(crate) fn add_relu<const D: usize>(
    a: Tensor<D>,
    b: Tensor<D>,
    implementation: LayerImplementation,
) -> Result<Tensor<D>, ModelError> {
    match implementation.path() {
        #[cfg(feature = "flex-kernels")]
        Path::Kernels(_) => Ok(infobound_kernels::add_relu(a, b)?),
        Path::Burn => {
            if a.dims() != b.dims() {
                return Err(ModelError::Shape(format!(
                    "residual {:?} and shortcut {:?} differ in shape",
                    a.dims(),
                    b.dims()
                )));
            }
            Ok(burn::tensor::activation::relu(a + b))
        }
    }
}

/// `likelihood`'s per-sample negative log-likelihood of `x` under `logits`.
pub(crate) fn pixel_negative_log_likelihood(
    likelihood: Likelihood,
    logits: Tensor<4>,
    x: Tensor<4>,
    implementation: LayerImplementation,
) -> Result<Tensor<1>, ModelError> {
    match implementation.path() {
        #[cfg(feature = "flex-kernels")]
        Path::Kernels(_) => {
            let kind = match likelihood {
                Likelihood::Bernoulli => PixelLikelihood::BernoulliLogits,
                Likelihood::Gaussian => PixelLikelihood::SigmoidSquaredError,
            };
            Ok(infobound_kernels::pixel_negative_log_likelihood(
                kind, logits, x,
            )?)
        }
        Path::Burn => {
            if logits.dims() != x.dims() {
                return Err(ModelError::Shape(format!(
                    "logits {:?} and images {:?} differ in shape",
                    logits.dims(),
                    x.dims()
                )));
            }
            Ok(likelihood.composed(logits, x))
        }
    }
}

/// [`ModelError::Shape`] unless `x` is `[N, channels, H, W]`, where Burn's module would panic.
fn check_channels(layer: &str, channels: usize, x: &Tensor<4>) -> Result<(), ModelError> {
    if x.dims()[1] != channels {
        return Err(ModelError::Shape(format!(
            "{layer} of {channels} input channels got an input of shape {:?}",
            x.dims()
        )));
    }
    Ok(())
}
