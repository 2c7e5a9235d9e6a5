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
    /// How the views of a training step go through the network (default: one forward per
    /// view, as the official code of every objective).
    #[serde(default)]
    pub view_batching: ViewBatching,
}

/// How the views of one training step pass through a network with batch norm. It decides
/// which images share batch statistics and how many running-statistics updates a step makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewBatching {
    /// One forward per view (each global view, each local view, each target view; the
    /// predictor per view): batch statistics per view, and one running-statistics update per
    /// view. The official code of every objective does this: MVEB (wlj6816/MVEB@9ac7965
    /// `project/model.py`, `for image_i in image: y = self.encoder(image_i)`), Barlow Twins
    /// (facebookresearch/barlowtwins@8e8d284 `main.py`, `self.bn(self.projector(self.backbone(y1)))`
    /// then `y2`), solo-learn (vturrisi/solo-learn@e2a4dbd `solo/methods/base.py`,
    /// `outs = [self(x) for x in X]`).
    #[default]
    PerView,
    /// The views of one resolution concatenated into one forward (as SwAV's multi-crop): the
    /// views share batch statistics, and a step makes one running-statistics update per
    /// resolution. Kept to reproduce runs made before per-view forwards.
    Concatenated,
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

/// What [`SslNetwork::embed_views`] returns, one entry per view in the order given.
#[derive(Debug, Clone)]
pub struct ViewEmbeddings {
    /// Backbone features `[B, feature_dim]` of every view.
    pub features: Vec<Tensor<2>>,
    /// Projector outputs `[B, projection_dim]` of every view.
    pub projections: Vec<Tensor<2>>,
}

/// The sizes of the forwards that `batching` makes of inputs with these `shapes`: one per
/// input, or one per run of consecutive inputs of equal shape (one resolution).
fn group_sizes<const D: usize>(shapes: &[[usize; D]], batching: ViewBatching) -> Vec<usize> {
    match batching {
        ViewBatching::PerView => vec![1; shapes.len()],
        ViewBatching::Concatenated => {
            let mut sizes: Vec<usize> = Vec::new();
            for (i, shape) in shapes.iter().enumerate() {
                match sizes.last_mut() {
                    Some(size) if i > 0 && shapes[i - 1] == *shape => *size += 1,
                    _ => sizes.push(1),
                }
            }
            sizes
        }
    }
}

/// Applies `forward` once per group of `sizes` consecutive `inputs`, concatenated along the
/// batch, and splits each output back into its inputs' rows.
fn forward_grouped<const D: usize>(
    inputs: Vec<Tensor<D>>,
    sizes: &[usize],
    mut forward: impl FnMut(Tensor<D>) -> Result<Tensor<2>, ModelError>,
) -> Result<Vec<Tensor<2>>, ModelError> {
    let mut inputs = inputs.into_iter();
    let mut outputs = Vec::with_capacity(sizes.iter().sum());
    for &size in sizes {
        let group: Vec<Tensor<D>> = inputs.by_ref().take(size).collect();
        if size == 1 {
            outputs.extend(
                group
                    .into_iter()
                    .map(&mut forward)
                    .collect::<Result<Vec<_>, _>>()?,
            );
        } else {
            outputs.extend(forward(Tensor::cat(group, 0))?.chunk(size, 0));
        }
    }
    Ok(outputs)
}

impl SslNetwork {
    /// Backbone features and projections of the `views` of one step (each `[B, C, H, W]`, all
    /// with the same B), forwarded as `batching` says. In training mode each forward
    /// normalises with its own batch statistics and updates the running statistics once, so
    /// [`ViewBatching::PerView`] gives each view its own statistics.
    ///
    /// # Errors
    /// [`ModelError`] if a view does not fit the backbone.
    pub fn embed_views(
        &self,
        views: Vec<Tensor<4>>,
        batching: ViewBatching,
    ) -> Result<ViewEmbeddings, ModelError> {
        let shapes: Vec<[usize; 4]> = views.iter().map(Tensor::dims).collect();
        let sizes = group_sizes(&shapes, batching);
        let features = forward_grouped(views, &sizes, |x| self.features(x))?;
        // The projector's forwards group the views as the backbone's did.
        let projections = forward_grouped(features.clone(), &sizes, |f| Ok(self.project(f)))?;
        Ok(ViewEmbeddings {
            features,
            projections,
        })
    }

    /// Predictor outputs of `projections` (one per view), forwarded as `batching` says, or
    /// `None` for a network without predictor.
    ///
    /// # Errors
    /// None today (the predictor's forward cannot fail); kept for symmetry with
    /// [`Self::embed_views`].
    pub fn predict_views(
        &self,
        projections: &[Tensor<2>],
        batching: ViewBatching,
    ) -> Result<Option<Vec<Tensor<2>>>, ModelError> {
        let Some(predictor) = &self.predictor else {
            return Ok(None);
        };
        let shapes: Vec<[usize; 2]> = projections.iter().map(Tensor::dims).collect();
        let sizes = group_sizes(&shapes, batching);
        forward_grouped(projections.to_vec(), &sizes, |z| Ok(predictor.forward(z))).map(Some)
    }

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
