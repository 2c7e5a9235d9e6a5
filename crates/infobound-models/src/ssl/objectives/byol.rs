//! BYOL (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020):
//! `L = mean_i [(2 − 2 cos(p_i^1, t_i^2)) + (2 − 2 cos(p_i^2, t_i^1))]`, with p the online
//! predictions and t the (constant) target-network projections.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::{
    ScoreSupport, SslMethod, SslViews, l2_normalize, mean_inner, required, unit_interval,
};
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

/// BYOL loss `mean_i [(2 − 2 cos(p_i^1, sg(t_i^2))) + (2 − 2 cos(p_i^2, sg(t_i^1)))]`.
///
/// # Shapes
/// - `predictions`: the online predictor outputs `[p^1, p^2]`, each `[B, d]`
/// - `target`: the target-network projections `[t^1, t^2]`, each `[B, d]` (detached here)
///
/// No terms besides the loss.
pub fn byol_loss(predictions: [Tensor<2>; 2], target: [Tensor<2>; 2]) -> LossOutput {
    let [p1, p2] = predictions.map(l2_normalize);
    let [t1, t2] = target.map(|t| l2_normalize(t.detach()));
    let cosines = mean_inner(p1, t2) + mean_inner(p2, t1);
    LossOutput::new(cosines.mul_scalar(-2.0).add_scalar(4.0), Vec::new())
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
        let predictions = required("predictions", &views.predictions, shape)?;
        let target = required("target", &views.target, shape)?;
        Ok(byol_loss(predictions.clone(), target.clone()))
    }
}
