//! SimSiam (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021):
//! `L = −½ [mean_i cos(p_i^1, sg(z_i^2)) + mean_i cos(p_i^2, sg(z_i^1))]`, with z the online
//! projections and p the predictor outputs.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::{SslLossOutput, l2_normalize, mean_inner, scalar};
use crate::ModelError;

/// SimSiam has no loss hyper-parameters.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSiamConfig {}

impl SimSiamConfig {
    pub(crate) fn loss(
        &self,
        online: &[Tensor<2>],
        predictions: &[Tensor<2>; 2],
    ) -> Result<SslLossOutput, ModelError> {
        let [p1, p2] = predictions.clone().map(l2_normalize);
        let z1 = l2_normalize(online[0].clone().detach());
        let z2 = l2_normalize(online[1].clone().detach());
        let loss = (mean_inner(p1, z2) + mean_inner(p2, z1)).mul_scalar(-0.5);
        Ok(SslLossOutput {
            terms: vec![("loss".into(), scalar(&loss))],
            loss,
            kernel_width: None,
        })
    }
}
