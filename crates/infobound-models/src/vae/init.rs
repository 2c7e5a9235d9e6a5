//! How a VAE's weights are drawn.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// The weight initialisation of the encoder and decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Initialisation {
    /// Burn's defaults, which equal PyTorch's: weights and biases U(±1/√fan_in) (Kaiming-uniform
    /// with gain 1/√3). Our choice for the Burgess networks.
    #[default]
    Burn,
    /// The α-TCVAE authors' `init_weights` (Cmeo97/benchmark_VAE @2777974,
    /// `src/pythae/models/nn/benchmarks/shapes/convnets.py`, `Encoder_Conv_VAE_3DSHAPES` and
    /// `SBD_Conv_VAE_3DSHAPES`): Kaiming-normal weights (std √(2/fan_in)) and biases 0.01 for
    /// every convolution and linear layer, Xavier-normal (std √(2/(fan_in + fan_out))) for the
    /// decoder's output convolution, PyTorch's default for the position embedding's 1×1
    /// convolution. Only the `spatial_broadcast` networks define it.
    AlphaTcvaeAuthors,
}

/// The weight law of one layer under [`Initialisation::AlphaTcvaeAuthors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WeightLaw {
    /// Layers followed by a ReLU, and the encoder's heads.
    KaimingNormal,
    /// The decoder's output layer (followed by the sigmoid).
    XavierNormal,
}

/// The authors' bias value (`nn.init.constant_(bias, 0.01)`).
const AUTHORS_BIAS: f64 = 0.01;

impl WeightLaw {
    fn initializer(self) -> Initializer {
        match self {
            // torch.nn.init.kaiming_normal_ defaults: fan_in, gain √2 (ReLU).
            Self::KaimingNormal => Initializer::KaimingNormal {
                gain: std::f64::consts::SQRT_2,
                fan_out_only: false,
            },
            Self::XavierNormal => Initializer::XavierNormal { gain: 1.0 },
        }
    }
}

impl Initialisation {
    /// Builds a convolution whose weights follow `law` under the authors' initialisation.
    pub(crate) fn conv2d(self, config: Conv2dConfig, law: WeightLaw, device: &Device) -> Conv2d {
        match self {
            Self::Burn => config.init(device),
            Self::AlphaTcvaeAuthors => {
                let channels_out = config.channels[1];
                let mut conv = config.with_initializer(law.initializer()).init(device);
                conv.bias = Some(
                    Initializer::Constant {
                        value: AUTHORS_BIAS,
                    }
                    .init([channels_out], device),
                );
                conv
            }
        }
    }

    /// Builds a linear layer whose weights follow `law` under the authors' initialisation.
    pub(crate) fn linear(self, config: LinearConfig, law: WeightLaw, device: &Device) -> Linear {
        match self {
            Self::Burn => config.init(device),
            Self::AlphaTcvaeAuthors => {
                let outputs = config.d_output;
                let mut linear = config.with_initializer(law.initializer()).init(device);
                linear.bias = Some(
                    Initializer::Constant {
                        value: AUTHORS_BIAS,
                    }
                    .init([outputs], device),
                );
                linear
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor};

    use super::*;
    use crate::{Architecture, ModelError, VaeConfig};

    fn moments(t: Tensor<1>) -> (f64, f64) {
        let values: Vec<f32> = t.into_data().try_to_vec().expect("f32");
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        (mean, var.sqrt())
    }

    #[test]
    fn the_authors_convolutions_are_kaiming_or_xavier_normal_with_biases_of_one_hundredth() {
        let device = Device::flex();
        device.seed(3);
        let config = || Conv2dConfig::new([64, 64], [3, 3]);
        for (law, std) in [
            (WeightLaw::KaimingNormal, (2.0f64 / 576.0).sqrt()),
            (WeightLaw::XavierNormal, (2.0f64 / (576.0 + 576.0)).sqrt()),
        ] {
            let conv = Initialisation::AlphaTcvaeAuthors.conv2d(config(), law, &device);
            let (mean, sd) = moments(conv.weight.val().flatten(0, 3));
            assert!(mean.abs() < 0.05 * std, "{law:?}: mean {mean}");
            assert!((sd / std - 1.0).abs() < 0.03, "{law:?}: sd {sd} vs {std}");
            let (bias_mean, bias_sd) = moments(conv.bias.expect("bias").val());
            assert!((bias_mean - 0.01).abs() < 1e-7 && bias_sd < 1e-7);
        }
        let linear = Initialisation::AlphaTcvaeAuthors.linear(
            LinearConfig::new(1024, 256),
            WeightLaw::KaimingNormal,
            &device,
        );
        let (_, sd) = moments(linear.weight.val().flatten(0, 1));
        assert!((sd / (2.0f64 / 1024.0).sqrt() - 1.0).abs() < 0.03, "{sd}");
    }

    #[test]
    fn burn_initialisation_is_bounded_by_one_over_root_fan_in() {
        let device = Device::flex();
        let conv = Initialisation::Burn.conv2d(
            Conv2dConfig::new([64, 64], [3, 3]),
            WeightLaw::KaimingNormal,
            &device,
        );
        let bound = 1.0 / 576f32.sqrt();
        let values: Vec<f32> = conv
            .weight
            .val()
            .flatten::<1>(0, 3)
            .into_data()
            .try_to_vec()
            .unwrap();
        assert!(values.iter().all(|v| v.abs() <= bound));
    }

    #[test]
    fn the_authors_initialisation_is_rejected_for_the_burgess_networks() {
        let config = VaeConfig {
            architecture: Architecture::Burgess,
            init: Initialisation::AlphaTcvaeAuthors,
            ..VaeConfig::default()
        };
        assert!(matches!(
            config.init(&Device::flex()),
            Err(ModelError::InvalidConfig(_))
        ));
        let authors = VaeConfig {
            architecture: Architecture::SpatialBroadcast,
            ..config
        };
        assert!(authors.init(&Device::flex()).is_ok());
    }
}
