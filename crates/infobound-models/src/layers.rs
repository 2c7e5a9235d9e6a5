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

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::tensor::{Device, Distribution, Tensor};

    use super::LayerImplementation;
    use crate::ssl::{BackboneConfig, MlpHeadConfig, SslNetworkConfig};
    use crate::{Architecture, Likelihood, ModelError, VaeConfig, VaeForward};

    const ALL: [LayerImplementation; 3] = [
        LayerImplementation::Kernels,
        LayerImplementation::KernelsIm2col,
        LayerImplementation::Burn,
    ];

    #[test]
    fn every_choice_round_trips_through_serde() {
        for (choice, tag) in ALL.into_iter().zip(["kernels", "kernels_im2col", "burn"]) {
            let text = serde_json::to_string(&choice).expect("serialises");
            assert_eq!(text, format!("\"{tag}\""));
            let back: LayerImplementation = serde_json::from_str(&text).expect("parses");
            assert_eq!(back, choice);
            let config = VaeConfig {
                layers: choice,
                ..VaeConfig::default()
            };
            let text = serde_json::to_string(&config).expect("serialises");
            assert_eq!(
                serde_json::from_str::<VaeConfig>(&text).expect("parses"),
                config
            );
        }
        assert!(serde_json::from_str::<LayerImplementation>("\"winograd\"").is_err());
        // Configurations written before the field existed get today's default, the kernels.
        let vae: VaeConfig = serde_json::from_str(r#"{"latent_dim": 6}"#).expect("parses");
        assert_eq!(vae.layers, LayerImplementation::Kernels);
        let network = SslNetworkConfig {
            backbone: BackboneConfig::narrow_resnet_cifar(2),
            projector: MlpHeadConfig::byol_projector(16, 8, 4),
            predictor: None,
            layers: LayerImplementation::Burn,
            view_batching: crate::ssl::ViewBatching::PerView,
        };
        let mut json = serde_json::to_value(&network).expect("serialises");
        assert_eq!(json["layers"], "burn");
        json.as_object_mut().expect("a table").remove("layers");
        let parsed: SslNetworkConfig = serde_json::from_value(json).expect("parses");
        assert_eq!(parsed.layers, LayerImplementation::Kernels);
    }

    /// The α-TCVAE authors' networks (3×3 stride-1 convolutions of 64 channels at 64×64, which
    /// `Kernels` computes with Winograd F(4×4, 3×3), and 4×4 stride-2 ones, F(2×2, 2×2) on
    /// their polyphase components) with each implementation, all with the same parameters
    /// (one record loaded into each: seeding the shared RNG would race with parallel tests)
    /// and on the same batch.
    fn vae_forwards() -> Vec<VaeForward> {
        let device = Device::flex();
        let config = |layers| VaeConfig {
            architecture: Architecture::SpatialBroadcast,
            channels: 1,
            likelihood: Likelihood::Bernoulli,
            layers,
            ..VaeConfig::default()
        };
        let record = config(LayerImplementation::Burn)
            .init(&device)
            .expect("valid config")
            .into_record();
        let x = Tensor::<4>::random([2, 1, 64, 64], Distribution::Uniform(0.0, 1.0), &device);
        let eps = Tensor::<2>::random([2, 10], Distribution::Normal(0.0, 1.0), &device);
        ALL.into_iter()
            .map(|layers| {
                let vae = config(layers)
                    .init(&device)
                    .expect("valid config")
                    .load_record(record.clone());
                assert_eq!(vae.layers(), layers, "loading a record keeps the choice");
                vae.forward(x.clone(), eps.clone()).expect("fits")
            })
            .collect()
    }

    /// max |a − b| / max |reference|.
    fn relative_difference<const D: usize>(a: Tensor<D>, reference: Tensor<D>) -> f32 {
        let scale: f32 = reference.clone().abs().max().into_scalar();
        let difference: f32 = (a - reference).abs().max().into_scalar();
        difference / scale
    }

    #[test]
    fn every_implementation_computes_the_same_vae() {
        let [kernels, im2col, burn]: [VaeForward; 3] = vae_forwards()
            .try_into()
            .expect("one pass per implementation");
        for other in [&kernels, &im2col] {
            for (a, reference) in [
                (other.mu.clone(), burn.mu.clone()),
                (other.logvar.clone(), burn.logvar.clone()),
            ] {
                let relative = relative_difference(a, reference);
                assert!(relative < 1e-4, "posterior differs by {relative:.2e}");
            }
            let relative = relative_difference(other.logits.clone(), burn.logits.clone());
            assert!(relative < 1e-4, "logits differ by {relative:.2e}");
            let nll = |forward: &VaeForward| {
                Likelihood::Bernoulli
                    .negative_log_likelihood(
                        forward.logits.clone(),
                        forward.x.clone(),
                        forward.layers,
                    )
                    .expect("same shapes")
            };
            let relative = relative_difference(nll(other), nll(&burn));
            assert!(relative < 1e-4, "likelihood differs by {relative:.2e}");
        }
        #[cfg(feature = "flex-kernels")]
        {
            // Winograd and im2col sum different products: equal to rounding, not bit for bit.
            let difference: f32 = (kernels.logits - im2col.logits).abs().max().into_scalar();
            assert!(difference > 0.0, "Winograd did not run");
        }
    }

    #[test]
    fn every_implementation_computes_the_same_backbone() {
        // Autodiff with the training flags on: the batch norms use batch statistics.
        let device = Device::flex().autodiff();
        let backbone = |layers| {
            BackboneConfig::narrow_resnet_cifar(16)
                .init(layers, &device)
                .expect("valid backbone")
        };
        let record = backbone(LayerImplementation::Burn).into_record();
        let x = Tensor::<4>::random([4, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
        let features = |layers| {
            backbone(layers)
                .load_record(record.clone())
                .forward(x.clone())
                .expect("fits")
        };
        let burn = features(LayerImplementation::Burn);
        for layers in [
            LayerImplementation::Kernels,
            LayerImplementation::KernelsIm2col,
        ] {
            let relative = relative_difference(features(layers), burn.clone());
            assert!(relative < 1e-4, "{layers:?} differs by {relative:.2e}");
        }
    }

    #[test]
    fn every_implementation_rejects_images_that_do_not_fit() {
        let device = Device::flex();
        for layers in ALL {
            let vae = VaeConfig {
                channels: 1,
                layers,
                ..VaeConfig::default()
            }
            .init(&device)
            .expect("valid config");
            let x = Tensor::<4>::zeros([2, 3, 64, 64], &device);
            let error = vae
                .encode(x)
                .expect_err("3 channels into a 1-channel encoder");
            assert!(is_shape_error(&error), "{layers:?}: {error}");
            let backbone = BackboneConfig::narrow_resnet_cifar(2)
                .init(layers, &device)
                .expect("valid backbone");
            let x = Tensor::<4>::zeros([2, 1, 16, 16], &device);
            let error = backbone
                .forward(x)
                .expect_err("1 channel into an RGB backbone");
            assert!(is_shape_error(&error), "{layers:?}: {error}");
        }
    }

    /// A shape error from this crate's checks or the kernels'.
    fn is_shape_error(error: &ModelError) -> bool {
        #[cfg(feature = "flex-kernels")]
        if matches!(error, ModelError::Kernel(_)) {
            return true;
        }
        matches!(error, ModelError::Shape(_))
    }
}
