//! MLP projector and predictor heads of SimCLR-style SSL methods: `num_layers` Linear layers,
//! all but the last followed by batch norm and ReLU.

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Shape of an MLP head. The defaults are MVEB's projector on a ResNet-18
/// ([`MlpHeadConfig::mveb_projector`]`(512, 2048)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlpHeadConfig {
    /// Input dimension.
    pub input_dim: usize,
    /// Width of the hidden layers.
    pub hidden_dim: usize,
    /// Output dimension.
    pub output_dim: usize,
    /// Number of Linear layers (≥ 1); all but the last are `Linear(no bias) → BN → ReLU`.
    pub num_layers: usize,
    /// Whether the last Linear has a bias.
    pub last_bias: bool,
    /// Batch norm after the last Linear, without a learnt affine map (γ = 1 and β = 0 are
    /// frozen: Burn's `BatchNorm` always carries them, so they are kept out of training).
    pub last_batch_norm: bool,
}

impl Default for MlpHeadConfig {
    fn default() -> Self {
        Self::mveb_projector(512, 2048)
    }
}

impl MlpHeadConfig {
    /// The projector of the released MVEB code (Wen et al., TPAMI 2024): three Linear layers,
    /// all `width` wide, the last with a bias and no batch norm.
    pub fn mveb_projector(input_dim: usize, width: usize) -> Self {
        Self {
            input_dim,
            hidden_dim: width,
            output_dim: width,
            num_layers: 3,
            last_bias: true,
            last_batch_norm: false,
        }
    }

    /// The SimSiam projector (Chen & He, CVPR 2021): three Linear layers, `width` wide, the
    /// last without bias and followed by a non-affine batch norm.
    pub fn simsiam_projector(input_dim: usize, width: usize) -> Self {
        Self {
            input_dim,
            hidden_dim: width,
            output_dim: width,
            num_layers: 3,
            last_bias: false,
            last_batch_norm: true,
        }
    }

    /// The BYOL projector (Grill et al., NeurIPS 2020): `Linear → BN → ReLU → Linear`.
    pub fn byol_projector(input_dim: usize, hidden: usize, output: usize) -> Self {
        Self {
            input_dim,
            hidden_dim: hidden,
            output_dim: output,
            num_layers: 2,
            last_bias: true,
            last_batch_norm: false,
        }
    }

    /// The SimSiam / BYOL predictor: `Linear(dim→hidden) → BN → ReLU → Linear(hidden→dim)`.
    pub fn predictor(dim: usize, hidden: usize) -> Self {
        Self {
            input_dim: dim,
            hidden_dim: hidden,
            output_dim: dim,
            num_layers: 2,
            last_bias: true,
            last_batch_norm: false,
        }
    }

    /// Checks that the head has at least one layer and positive widths.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.num_layers == 0
            || self.input_dim == 0
            || self.output_dim == 0
            || (self.num_layers > 1 && self.hidden_dim == 0)
        {
            return Err(ModelError::InvalidConfig(format!(
                "MLP head needs >= 1 layer and positive widths, got {self:?}"
            )));
        }
        Ok(())
    }

    /// Builds the head on `device`.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] for zero layers or a zero width.
    pub fn init(&self, device: &Device) -> Result<MlpHead, ModelError> {
        self.validate()?;
        let mut hidden = Vec::with_capacity(self.num_layers - 1);
        let mut d_in = self.input_dim;
        for _ in 1..self.num_layers {
            hidden.push(HiddenLayer {
                linear: LinearConfig::new(d_in, self.hidden_dim)
                    .with_bias(false)
                    .init(device),
                norm: BatchNormConfig::new(self.hidden_dim).init(device),
            });
            d_in = self.hidden_dim;
        }
        let last = LinearConfig::new(d_in, self.output_dim)
            .with_bias(self.last_bias)
            .init(device);
        let last_norm = self.last_batch_norm.then(|| {
            let mut norm = BatchNormConfig::new(self.output_dim).init(device);
            norm.gamma = norm.gamma.set_require_grad(false);
            norm.beta = norm.beta.set_require_grad(false);
            norm
        });
        Ok(MlpHead {
            hidden,
            last,
            last_norm,
        })
    }
}

/// `Linear(no bias) → BN → ReLU`.
#[derive(Module, Debug)]
pub struct HiddenLayer {
    /// The bias-free Linear map.
    pub linear: Linear,
    /// Its batch norm.
    pub norm: BatchNorm,
}

/// An MLP head built by [`MlpHeadConfig::init`]. Batch norms follow the train/inference rule
/// documented on [`crate::ssl::Backbone`].
#[derive(Module, Debug)]
pub struct MlpHead {
    /// The hidden `Linear → BN → ReLU` layers.
    pub hidden: Vec<HiddenLayer>,
    /// The last Linear layer.
    pub last: Linear,
    /// The optional non-affine batch norm after `last`.
    pub last_norm: Option<BatchNorm>,
}

impl MlpHead {
    /// `[B, input_dim]` → `[B, output_dim]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut h = x;
        for layer in &self.hidden {
            h = relu(batch_norm_rows(&layer.norm, layer.linear.forward(h)));
        }
        let h = self.last.forward(h);
        match &self.last_norm {
            Some(norm) => batch_norm_rows(norm, h),
            None => h,
        }
    }
}

/// Batch norm of `[B, C]` rows, through the `[B, C, 1]` layout Burn's `BatchNorm` expects.
fn batch_norm_rows(norm: &BatchNorm, x: Tensor<2>) -> Tensor<2> {
    norm.forward(x.unsqueeze_dim::<3>(2)).squeeze_dim(2)
}
