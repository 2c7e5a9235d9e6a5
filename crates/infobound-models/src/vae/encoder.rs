//! Convolutional encoders for 64×64 inputs.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use super::init::{Initialisation, WeightLaw};
use crate::ModelError;
use crate::layers::{self, LayerImplementation};

/// Four stride-2 4×4 convolutions (64 → 4 px), a fully connected layer and a head giving
/// μ and log σ² of the diagonal Gaussian posterior q(z|x).
///
/// With channels `[32, 32, 64, 64]` this is the encoder of Burgess et al. 2018 /
/// disentanglement_lib's `conv_encoder`; with `[64, 64, 64, 64]` it is the α-TCVAE authors' encoder.
#[derive(Module, Debug)]
pub struct ConvEncoder {
    convs: Vec<Conv2d>,
    fc: Linear,
    head: Linear,
    latent_dim: usize,
    #[module(skip)]
    layers: LayerImplementation,
}

impl ConvEncoder {
    /// Builds the encoder for `in_channels`-channel 64×64 images, its weights drawn by `init`,
    /// its layers run by `layers`.
    pub fn new(
        in_channels: usize,
        channels: [usize; 4],
        hidden: usize,
        latent_dim: usize,
        init: Initialisation,
        layers: LayerImplementation,
        device: &Device,
    ) -> Self {
        let law = WeightLaw::KaimingNormal;
        let mut convs = Vec::with_capacity(4);
        let mut c_in = in_channels;
        for &c_out in &channels {
            convs.push(
                init.conv2d(
                    Conv2dConfig::new([c_in, c_out], [4, 4])
                        .with_stride([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
                    law,
                    device,
                ),
            );
            c_in = c_out;
        }
        Self {
            convs,
            fc: init.linear(LinearConfig::new(c_in * 16, hidden), law, device),
            // One head for μ and log σ²: the authors' two heads drawn with the same law.
            head: init.linear(LinearConfig::new(hidden, 2 * latent_dim), law, device),
            latent_dim,
            layers,
        }
    }

    /// `x`: [B, C, 64, 64] in [0, 1]; returns (μ, log σ²), each [B, K].
    ///
    /// # Errors
    /// [`ModelError`] if `x` does not fit the first convolution.
    pub fn forward(&self, x: Tensor<4>) -> Result<(Tensor<2>, Tensor<2>), ModelError> {
        let with = self.layers;
        let mut h = x;
        for conv in &self.convs {
            h = layers::relu(layers::conv2d(conv, h, with)?, with)?;
        }
        let h: Tensor<2> = h.flatten(1, 3);
        let h = layers::relu(layers::linear(&self.fc, h, with)?, with)?;
        let out = layers::linear(&self.head, h, with)?;
        let k = self.latent_dim;
        let mu = out.clone().narrow(1, 0, k);
        let logvar = out.narrow(1, k, k);
        Ok((mu, logvar))
    }
}
