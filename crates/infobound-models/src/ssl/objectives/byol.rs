//! BYOL (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020):
//! `L = mean_i [(2 − 2 cos(p_i^1, t_i^2)) + (2 − 2 cos(p_i^2, t_i^1))]`, with p the online
//! predictions and t the (constant) target-network projections; local views join as in
//! solo-learn ([`byol_loss`]).

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::{ScoreSupport, SslMethod, SslViews, check_view_counts, cross_view_cosines, required, unit_interval};
use crate::{LossOutput, ModelError};

/// BYOL hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ByolConfig {
    /// Base EMA momentum of the target network (BYOL: 0.996).
    pub base_momentum: f64,
}

impl Default for ByolConfig {
    fn default() -> Self {
        Self {
            base_momentum: 0.996,
        }
    }
}

/// BYOL loss summed over the multi-crop pairs (g, v) of [`cross_view_pairs`](super::cross_view_pairs):
/// `L = Σ_(g,v) mean_i (2 − 2 cos(p_i^v, sg(t_i^g)))`. With the 2 global views this is the
/// paper's symmetrised loss (Grill et al. 2020, eq. 2 + its symmetric term); the sum over all
/// pairs with local views is solo-learn's (vturrisi/solo-learn@9187ea3 `solo/methods/byol.py`,
/// `neg_cos_sim += byol_loss_func(P[v2], Z_momentum[v1])`).
///
/// # Shapes
/// - `predictions`: the online predictor outputs of V ≥ 2 views, the 2 global ones first, each
///   `[B, d]`
/// - `target`: the target-network projections `[t^1, t^2]` of the global views, each `[B, d]`
///   (detached here)
///
/// No terms besides the loss.
///
/// # Errors
/// [`ModelError::Views`] for fewer than 2 predictions.
pub fn byol_loss(predictions: &[Tensor<2>], target: [Tensor<2>; 2]) -> Result<LossOutput, ModelError> {
    check_view_counts("byol", predictions.len(), None)?;
    let (cosines, pairs) = cross_view_cosines("byol", predictions, target.map(Tensor::detach))?;
    let loss = cosines.mul_scalar(-2.0).add_scalar(2.0 * pairs as f64);
    Ok(LossOutput::new(loss, Vec::new()))
}

impl SslMethod for ByolConfig {
    fn validate(&self) -> Result<(), ModelError> {
        unit_interval("base_momentum", self.base_momentum)
    }

    fn uses_target_network(&self) -> bool {
        true
    }

    fn uses_predictor(&self) -> bool {
        true
    }

    fn base_momentum(&self) -> Option<f64> {
        Some(self.base_momentum)
    }

    fn loss(
        &self,
        views: &SslViews,
        _support: &dyn ScoreSupport,
    ) -> Result<LossOutput, ModelError> {
        let shape = views.online[0].dims();
        let predictions = required("predictions", &views.predictions, views.online.len(), shape)?;
        let target = required("target", &views.target, 2, shape)?;
        byol_loss(predictions, [target[0].clone(), target[1].clone()])
    }
}
