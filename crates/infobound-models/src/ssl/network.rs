//! The online network of an SSL method: backbone → projector (→ predictor).

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{Backbone, BackboneConfig, MlpHead, MlpHeadConfig, ema_update};
use crate::ModelError;
use crate::layers::LayerImplementation;

/// Backbone, projector and optional predictor (SimSiam, BYOL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SslNetworkConfig {
    /// The feature extractor.
    pub backbone: BackboneConfig,
    /// The projector; its `input_dim` must equal the backbone's feature dimension.
    pub projector: MlpHeadConfig,
    /// The predictor; it must map the projection space to itself.
    pub predictor: Option<MlpHeadConfig>,
    /// What computes the backbone's layers (default: `infobound-kernels`).
    #[serde(default)]
    pub layers: LayerImplementation,
}

impl SslNetworkConfig {
    /// Checks every part and that the dimensions chain: `feature_dim = projector.input_dim`,
    /// `projector.output_dim = predictor.input_dim = predictor.output_dim`.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.backbone.validate()?;
        self.projector.validate()?;
        let features = self.backbone.feature_dim();
        if self.projector.input_dim != features {
            return Err(ModelError::InvalidConfig(format!(
                "projector input_dim {} != backbone feature_dim {features}",
                self.projector.input_dim
            )));
        }
        if let Some(predictor) = &self.predictor {
            predictor.validate()?;
            let projection = self.projector.output_dim;
            if predictor.input_dim != projection || predictor.output_dim != projection {
                return Err(ModelError::InvalidConfig(format!(
                    "predictor must map the {projection}-d projection to itself, got {} -> {}",
                    predictor.input_dim, predictor.output_dim
                )));
            }
        }
        Ok(())
    }

    /// Builds the network on `device`.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] if a part is invalid or the dimensions do not chain.
    pub fn init(&self, device: &Device) -> Result<SslNetwork, ModelError> {
        self.validate()?;
        Ok(SslNetwork {
            backbone: self.backbone.init(self.layers, device)?,
            projector: self.projector.init(device)?,
            predictor: self
                .predictor
                .as_ref()
                .map(|predictor| predictor.init(device))
                .transpose()?,
        })
    }

    /// A target network for BYOL/MVEB: a copy of `online`'s parameters that tracks no
    /// gradients (`no_grad()`), with batch-norm running statistics of its own, starting at their
    /// initial values (mean 0, variance 1) — what PyTorch's `copy.deepcopy(online)` gives when
    /// called before training, as BYOL and MVEB do. (`online.clone()` would share them:
    /// Burn's `RunningState` is reference-counted.) On an autodiff device its batch norms
    /// still normalise with batch statistics, as the reference target in train mode does.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] as for [`Self::init`];
    /// [`ModelError::StructureMismatch`] if `online` was not built from this configuration.
    pub fn init_target(
        &self,
        online: &SslNetwork,
        device: &Device,
    ) -> Result<SslNetwork, ModelError> {
        let fresh = self.init(device)?.no_grad();
        ema_update(fresh, online, 0.0)
    }
}

/// Backbone, projector and optional predictor. Batch norms follow the train/inference rule
/// documented on [`Backbone`]; a BYOL/MVEB target network comes from
/// [`SslNetworkConfig::init_target`] and is updated with [`super::ema_update`].
#[derive(Module, Debug)]
pub struct SslNetwork {
    /// The feature extractor.
    pub backbone: Backbone,
    /// The projector.
    pub projector: MlpHead,
    /// The predictor (SimSiam, BYOL), `None` otherwise.
    pub predictor: Option<MlpHead>,
}

impl SslNetwork {
    /// Backbone features, `[B, C, H, W]` → `[B, feature_dim]`.
    ///
    /// # Errors
    /// [`ModelError`] if `images` do not fit the backbone.
    pub fn features(&self, images: Tensor<4>) -> Result<Tensor<2>, ModelError> {
        self.backbone.forward(images)
    }

    /// Projector output (not normalised), `[B, feature_dim]` → `[B, projection_dim]`.
    pub fn project(&self, features: Tensor<2>) -> Tensor<2> {
        self.projector.forward(features)
    }

    /// Predictor output, or `None` for a network without predictor.
    pub fn predict(&self, projection: Tensor<2>) -> Option<Tensor<2>> {
        self.predictor
            .as_ref()
            .map(|predictor| predictor.forward(projection))
    }
}
