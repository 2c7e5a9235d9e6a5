//! The shared VAE base: encoder, decoder, reparameterisation and likelihood.

mod decoder;
mod encoder;
mod init;
pub mod objectives;

pub use decoder::{SpatialBroadcastDecoder, TransposedConvDecoder};
pub use encoder::ConvEncoder;
pub use init::Initialisation;

use burn::module::Module;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::layers::LayerImplementation;

/// Which encoder/decoder pair to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// Burgess et al. 2018 / disentanglement_lib: conv 32-32-64-64 (k4 s2) + FC 256, and the
    /// mirrored transposed-conv decoder.
    Burgess,
    /// The α-TCVAE authors' networks: conv 4×64 (k4 s2) + FC 256, spatial-broadcast decoder
    /// (five 3×3 convs of 64 channels at 64×64 — about 30× the decoder cost of `burgess`).
    SpatialBroadcast,
}

/// Observation model p(x|z).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Likelihood {
    /// Bernoulli: −log p(x|z) = Σ_pixels BCE-with-logits(logit, x) (binary data, dSprites).
    Bernoulli,
    /// Gaussian with fixed variance as trained by the α-TCVAE authors: Σ_pixels (sigmoid(logit) − x)².
    Gaussian,
}

/// Network hyper-parameters. Defaults: Burgess networks, K = 10, FC width 256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaeConfig {
    /// Encoder/decoder family.
    pub architecture: Architecture,
    /// Latent size K.
    pub latent_dim: usize,
    /// Width of the fully connected layer.
    pub hidden: usize,
    /// Image channels (1 or 3).
    pub channels: usize,
    /// Observation model.
    pub likelihood: Likelihood,
    /// How the weights are drawn.
    pub init: Initialisation,
    /// What computes the layers and the pixel likelihood (default: `infobound-kernels`).
    pub layers: LayerImplementation,
}

impl Default for VaeConfig {
    fn default() -> Self {
        Self {
            architecture: Architecture::Burgess,
            latent_dim: 10,
            hidden: 256,
            channels: 3,
            likelihood: Likelihood::Gaussian,
            init: Initialisation::default(),
            layers: LayerImplementation::default(),
        }
    }
}

impl VaeConfig {
    /// Checks the values and builds the model on `device` (its RNG decides the initial weights).
    pub fn init(&self, device: &Device) -> Result<Vae, ModelError> {
        if self.latent_dim == 0 || self.hidden == 0 || !(1..=4).contains(&self.channels) {
            return Err(ModelError::InvalidConfig(format!(
                "latent_dim and hidden must be positive and channels in 1..=4 (got {}, {}, {})",
                self.latent_dim, self.hidden, self.channels
            )));
        }
        if self.init == Initialisation::AlphaTcvaeAuthors
            && self.architecture != Architecture::SpatialBroadcast
        {
            return Err(ModelError::InvalidConfig(format!(
                "init = \"alpha_tcvae_authors\" is defined for architecture = \"spatial_broadcast\" only, got {:?}",
                self.architecture
            )));
        }
        let (encoder, decoder) = match self.architecture {
            Architecture::Burgess => (
                ConvEncoder::new(
                    self.channels,
                    [32, 32, 64, 64],
                    self.hidden,
                    self.latent_dim,
                    self.init,
                    self.layers,
                    device,
                ),
                Decoder::TransposedConv(TransposedConvDecoder::new(
                    self.latent_dim,
                    self.hidden,
                    [64, 32, 32],
                    self.channels,
                    self.layers,
                    device,
                )),
            ),
            Architecture::SpatialBroadcast => (
                ConvEncoder::new(
                    self.channels,
                    [64, 64, 64, 64],
                    self.hidden,
                    self.latent_dim,
                    self.init,
                    self.layers,
                    device,
                ),
                Decoder::SpatialBroadcast(SpatialBroadcastDecoder::new(
                    self.latent_dim,
                    64,
                    self.channels,
                    self.init,
                    self.layers,
                    device,
                )),
            ),
        };
        Ok(Vae {
            encoder,
            decoder,
            latent_dim: self.latent_dim,
            layers: self.layers,
        })
    }
}

/// Either decoder family.
// A model holds exactly one decoder, so the size difference costs nothing; Burn's Module derive
// cannot see through a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Decoder {
    /// Transposed convolutions (Burgess).
    TransposedConv(TransposedConvDecoder),
    /// Spatial broadcast (α-TCVAE authors).
    SpatialBroadcast(SpatialBroadcastDecoder),
}

impl Decoder {
    /// `z` [B, K] → logits [B, C, 64, 64].
    ///
    /// # Errors
    /// [`ModelError`] if `z` does not fit the decoder.
    pub fn forward(&self, z: Tensor<2>) -> Result<Tensor<4>, ModelError> {
        match self {
            Self::TransposedConv(d) => d.forward(z),
            Self::SpatialBroadcast(d) => d.forward(z),
        }
    }
}

/// A VAE with a diagonal Gaussian posterior q(z|x) = N(μ(x), diag exp(log σ²(x))) and prior
/// N(0, I) (Kingma & Welling 2014). The representation used by metrics is μ.
#[derive(Module, Debug)]
pub struct Vae {
    encoder: ConvEncoder,
    decoder: Decoder,
    latent_dim: usize,
    #[module(skip)]
    layers: LayerImplementation,
}

/// Everything one forward pass produces; objectives read from it.
#[derive(Debug, Clone)]
pub struct VaeForward {
    /// Input batch [B, C, 64, 64].
    pub x: Tensor<4>,
    /// Posterior means [B, K].
    pub mu: Tensor<2>,
    /// Posterior log-variances [B, K].
    pub logvar: Tensor<2>,
    /// Reparameterised sample z = μ + σ ⊙ ε [B, K].
    pub z: Tensor<2>,
    /// Decoder logits [B, C, 64, 64].
    pub logits: Tensor<4>,
    /// The implementation that computed the pass; the loss computes the pixel likelihood with
    /// it too.
    pub layers: LayerImplementation,
}

impl Vae {
    /// Latent size K.
    pub fn latent_dim(&self) -> usize {
        self.latent_dim
    }

    /// What computes the layers (from [`VaeConfig::layers`]).
    pub fn layers(&self) -> LayerImplementation {
        self.layers
    }

    /// (μ, log σ²) of q(z|x).
    ///
    /// # Errors
    /// [`ModelError`] if `x` is not a batch of images the encoder takes.
    pub fn encode(&self, x: Tensor<4>) -> Result<(Tensor<2>, Tensor<2>), ModelError> {
        self.encoder.forward(x)
    }

    /// Decoder logits for codes `z`.
    ///
    /// # Errors
    /// [`ModelError`] if `z` is not [B, K].
    pub fn decode_logits(&self, z: Tensor<2>) -> Result<Tensor<4>, ModelError> {
        self.decoder.forward(z)
    }

    /// Decoded images in [0, 1] (sigmoid of the logits; the mean of either likelihood).
    ///
    /// # Errors
    /// [`ModelError`] if `z` is not [B, K].
    pub fn decode(&self, z: Tensor<2>) -> Result<Tensor<4>, ModelError> {
        Ok(sigmoid(self.decode_logits(z)?))
    }

    /// Full pass with the reparameterisation z = μ + exp(½ log σ²) ⊙ ε. The caller supplies
    /// ε ~ N(0, I) [B, K] so that runs are reproducible from a seed and resumable.
    pub fn forward(&self, x: Tensor<4>, eps: Tensor<2>) -> Result<VaeForward, ModelError> {
        let [b, _, h, w] = x.dims();
        if h != 64 || w != 64 {
            return Err(ModelError::Shape(format!(
                "the VAE networks take 64x64 images, got {h}x{w}"
            )));
        }
        if eps.dims() != [b, self.latent_dim] {
            return Err(ModelError::Shape(format!(
                "noise must be [{b}, {}], got {:?}",
                self.latent_dim,
                eps.dims()
            )));
        }
        let (mu, logvar) = self.encode(x.clone())?;
        let z = mu.clone() + (logvar.clone() * 0.5).exp() * eps;
        let logits = self.decode_logits(z.clone())?;
        Ok(VaeForward {
            x,
            mu,
            logvar,
            z,
            logits,
            layers: self.layers,
        })
    }
}

impl Likelihood {
    /// Per-sample negative log-likelihood (up to constants) `[B]`: see the variant docs; computed
    /// by `layers` (pass the VAE's [`Vae::layers`]).
    ///
    /// # Errors
    /// [`ModelError`] if `logits` and `x` differ in shape.
    pub fn negative_log_likelihood(
        self,
        logits: Tensor<4>,
        x: Tensor<4>,
        layers: LayerImplementation,
    ) -> Result<Tensor<1>, ModelError> {
        crate::layers::pixel_negative_log_likelihood(self, logits, x, layers)
    }

    /// The same from Burn's tensor ops. BCE with logits in its stable form
    /// `max(l, 0) − l·x + log(1 + exp(−|l|))`.
    pub(crate) fn composed(self, logits: Tensor<4>, x: Tensor<4>) -> Tensor<1> {
        let per_pixel = match self {
            Self::Bernoulli => {
                relu(logits.clone()) - logits.clone() * x + (-logits.abs()).exp().log1p()
            }
            Self::Gaussian => (sigmoid(logits) - x).square(),
        };
        let per_sample: Tensor<2> = per_pixel.flatten(1, 3);
        per_sample.sum_dim(1).squeeze_dim(1)
    }
}
