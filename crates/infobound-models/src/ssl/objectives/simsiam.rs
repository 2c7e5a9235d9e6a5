//! SimSiam (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021):
//! `L = −½ [mean_i cos(p_i^1, sg(z_i^2)) + mean_i cos(p_i^2, sg(z_i^1))]`, with z the online
//! projections and p the predictor outputs; local views join as predictions of the global
//! views' projections ([`simsiam_loss`]).

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::{ScoreSupport, SslMethod, SslViews, check_view_counts, cross_view_cosines, required};
use crate::{LossOutput, ModelError};

/// SimSiam has no loss hyper-parameters.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSiamConfig {}

/// SimSiam loss over the multi-crop pairs (g, v) of [`cross_view_pairs`](super::cross_view_pairs):
/// `L = −(1/P) Σ_(g,v) mean_i cos(p_i^v, sg(z_i^g))`, P the number of pairs. With the 2 global
/// views this is the paper's `−½ [cos(p^1, sg z^2) + cos(p^2, sg z^1)]` (Chen & He 2021,
/// Algorithm 1); the mean over pairs for local views is our choice (solo-learn's SimSiam takes
/// two views only).
///
/// # Shapes
/// - `online`: the online projections of V ≥ 2 views, the 2 global ones first, each `[B, d]`
/// - `predictions`: the predictor outputs of the same V views, each `[B, d]`
///
/// No terms besides the loss.
///
/// # Errors
/// [`ModelError::Views`] for fewer than 2 views or a prediction count that is not V.
pub fn simsiam_loss(
    online: &[Tensor<2>],
    predictions: &[Tensor<2>],
) -> Result<LossOutput, ModelError> {
    check_view_counts(
        "simsiam",
        online.len(),
        Some(("prediction", predictions.len())),
    )?;
    let targets = [online[0].clone().detach(), online[1].clone().detach()];
    let (cosines, pairs) = cross_view_cosines("simsiam", predictions, targets)?;
    let loss = cosines.mul_scalar(-1.0 / pairs as f64);
    Ok(LossOutput::new(loss, Vec::new()))
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
        let predictions = required("predictions", &views.predictions, views.online.len(), shape)?;
        simsiam_loss(&views.online, predictions)
    }
}
