//! BYOL (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020):
//! `L = mean_i [(2 − 2 cos(p_i^1, t_i^2)) + (2 − 2 cos(p_i^2, t_i^1))]`, with p the online
//! predictions and t the (constant) target-network projections.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::{SslLossOutput, l2_normalize, mean_inner, scalar, unit_interval};
use crate::ModelError;

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

impl ByolConfig {
    pub(crate) fn validate(&self) -> Result<(), ModelError> {
        unit_interval("base_momentum", self.base_momentum)
    }

    pub(crate) fn loss(
        &self,
        predictions: &[Tensor<2>; 2],
        target: &[Tensor<2>; 2],
    ) -> Result<SslLossOutput, ModelError> {
        let [p1, p2] = predictions.clone().map(l2_normalize);
        let [t1, t2] = target.clone().map(|t| l2_normalize(t.detach()));
        let cosines = mean_inner(p1, t2) + mean_inner(p2, t1);
        let loss = cosines.mul_scalar(-2.0).add_scalar(4.0);
        Ok(SslLossOutput {
            terms: vec![("loss".into(), scalar(&loss))],
            loss,
            kernel_width: None,
        })
    }
}
