//! SimSiam (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021):
//! `L = −½ [mean_i cos(p_i^1, sg(z_i^2)) + mean_i cos(p_i^2, sg(z_i^1))]`, with z the online
//! projections and p the predictor outputs.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::{ScoreSupport, SslMethod, SslViews, l2_normalize, mean_inner, required};
use crate::{LossOutput, ModelError};

/// SimSiam has no loss hyper-parameters.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSiamConfig {}

/// SimSiam loss `−½ [mean_i cos(p_i^1, sg(z_i^2)) + mean_i cos(p_i^2, sg(z_i^1))]`.
///
/// # Shapes
/// - `online`: the online projections `[z^1, z^2]`, each `[B, d]`
/// - `predictions`: the predictor outputs `[p^1, p^2]`, each `[B, d]`
///
/// No terms besides the loss.
pub fn simsiam_loss(online: [Tensor<2>; 2], predictions: [Tensor<2>; 2]) -> LossOutput {
    let [p1, p2] = predictions.map(l2_normalize);
    let [z1, z2] = online.map(|z| l2_normalize(z.detach()));
    let loss = (mean_inner(p1, z2) + mean_inner(p2, z1)).mul_scalar(-0.5);
    LossOutput::new(loss, Vec::new())
}

impl SslMethod for SimSiamConfig {
    fn validate(&self) -> Result<(), ModelError> {
        Ok(())
    }

    fn uses_predictor(&self) -> bool {
        true
    }

    fn loss(
        &self,
        views: &SslViews,
        _support: &dyn ScoreSupport,
    ) -> Result<LossOutput, ModelError> {
        let shape = views.online[0].dims();
        let predictions = required("predictions", &views.predictions, shape)?;
        Ok(simsiam_loss(
            [views.online[0].clone(), views.online[1].clone()],
            predictions.clone(),
        ))
    }
}
