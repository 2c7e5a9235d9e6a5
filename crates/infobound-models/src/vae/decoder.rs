//! Decoders from a latent code to 64×64 image logits.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor, TensorData};

use super::init::{Initialisation, WeightLaw};
use crate::ModelError;
use crate::layers::{self, LayerImplementation};

/// Burgess et al. 2018 / disentanglement_lib `deconv_decoder`: FC K → 256 → 64·4·4, then four
/// stride-2 4×4 transposed convolutions 64 → 64 → 32 → 32 → C (4 → 64 px). Outputs logits.
#[derive(Module, Debug)]
pub struct TransposedConvDecoder {
    fc1: Linear,
    fc2: Linear,
    deconvs: Vec<ConvTranspose2d>,
    first_channels: usize,
    #[module(skip)]
    layers: LayerImplementation,
}

impl TransposedConvDecoder {
    /// `channels` are the outputs of the first three transposed convolutions (the last outputs
    /// `out_channels`); the input feature map has `channels[0]` channels. Its layers run by
    /// `layers`.
    pub fn new(
        latent_dim: usize,
        hidden: usize,
        channels: [usize; 3],
        out_channels: usize,
        layers: LayerImplementation,
        device: &Device,
    ) -> Self {
        let first_channels = channels[0];
        let mut deconvs = Vec::with_capacity(4);
        let mut c_in = first_channels;
        for c_out in [channels[0], channels[1], channels[2], out_channels] {
            deconvs.push(
                ConvTranspose2dConfig::new([c_in, c_out], [4, 4])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .init(device),
            );
            c_in = c_out;
        }
        Self {
            fc1: LinearConfig::new(latent_dim, hidden).init(device),
            fc2: LinearConfig::new(hidden, first_channels * 16).init(device),
            deconvs,
            first_channels,
            layers,
        }
    }

    /// `z`: [B, K] → logits [B, C, 64, 64].
    ///
    /// # Errors
    /// [`ModelError`] if `z` does not fit the first layer.
    pub fn forward(&self, z: Tensor<2>) -> Result<Tensor<4>, ModelError> {
        let with = self.layers;
        let [b, _] = z.dims();
        let h = layers::relu(layers::linear(&self.fc1, z, with)?, with)?;
        let h = layers::relu(layers::linear(&self.fc2, h, with)?, with)?;
        let mut h: Tensor<4> = h.reshape([b, self.first_channels, 4, 4]);
        let last = self.deconvs.len() - 1;
        for (i, deconv) in self.deconvs.iter().enumerate() {
            h = layers::conv_transpose2d(deconv, h, with)?;
            if i < last {
                h = layers::relu(h, with)?;
            }
        }
        Ok(h)
    }
}

/// Spatial-broadcast decoder (Watters et al. 2019) as in the α-TCVAE authors' code: z is tiled
/// to 64×64, a 1×1 convolution embeds four linear position ramps (x, y, 1−x, 1−y) into K
/// channels that are added to the tiled code, then five 3×3 convolutions of `width` channels
/// (ReLU) and a 3×3 convolution to C output logits.
#[derive(Module, Debug)]
pub struct SpatialBroadcastDecoder {
    ramps: Param<Tensor<4>>,
    position: Conv2d,
    convs: Vec<Conv2d>,
    out: Conv2d,
    #[module(skip)]
    layers: LayerImplementation,
}

impl SpatialBroadcastDecoder {
    /// Builds the decoder, its weights drawn by `init`, its layers run by `layers`.
    pub fn new(
        latent_dim: usize,
        width: usize,
        out_channels: usize,
        init: Initialisation,
        layers: LayerImplementation,
        device: &Device,
    ) -> Self {
        const SIZE: usize = 64;
        let mut ramps = Vec::with_capacity(4 * SIZE * SIZE);
        let coord = |i: usize| i as f32 / (SIZE - 1) as f32;
        for channel in 0..4 {
            for y in 0..SIZE {
                for x in 0..SIZE {
                    ramps.push(match channel {
                        0 => coord(x),
                        1 => coord(y),
                        2 => 1.0 - coord(x),
                        _ => 1.0 - coord(y),
                    });
                }
            }
        }
        let ramps = Tensor::<4>::from_data(TensorData::new(ramps, [1, 4, SIZE, SIZE]), device);
        let conv3 = |c_in: usize, c_out: usize, law: WeightLaw| {
            init.conv2d(
                Conv2dConfig::new([c_in, c_out], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
                law,
                device,
            )
        };
        let mut convs = Vec::with_capacity(5);
        let mut c_in = latent_dim;
        for _ in 0..5 {
            convs.push(conv3(c_in, width, WeightLaw::KaimingNormal));
            c_in = width;
        }
        Self {
            // The ramps are a constant input, not a parameter to train.
            ramps: Param::from_tensor(ramps).set_require_grad(false),
            position: Conv2dConfig::new([4, latent_dim], [1, 1]).init(device),
            convs,
            out: conv3(width, out_channels, WeightLaw::XavierNormal),
            layers,
        }
    }

    /// `z`: [B, K] → logits [B, C, 64, 64].
    ///
    /// # Errors
    /// [`ModelError`] if `z` does not fit the first layer.
    pub fn forward(&self, z: Tensor<2>) -> Result<Tensor<4>, ModelError> {
        let with = self.layers;
        let [b, k] = z.dims();
        let tiled: Tensor<4> = z.reshape([b, k, 1, 1]).expand([b, k, 64, 64]);
        let position = layers::conv2d(&self.position, self.ramps.val(), with)?;
        let mut h = tiled + position;
        for layer in &self.convs {
            h = layers::relu(layers::conv2d(layer, h, with)?, with)?;
        }
        layers::conv2d(&self.out, h, with)
    }
}
