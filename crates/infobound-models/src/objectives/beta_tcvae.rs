//! β-TCVAE (Chen et al., NeurIPS 2018): the KL term split into index-code mutual information,
//! total correlation and dimension-wise KL, weighted separately:
//! L = E[−log p(x|z)] + α·I(x; z) + β·TC(z) + γ·Σ_k KL(q(z_k) ‖ p(z_k)),
//! with q(z) estimated on the minibatch by weighted or stratified sampling (N = dataset size).

use burn::tensor::Tensor;
use infobound_estimators::{TcEstimator, kl_decomposition};
use serde::{Deserialize, Serialize};

use super::{LossOutput, StepContext, detached};
use crate::{ModelError, VaeForward};

/// Hyper-parameters; defaults from Chen et al. (α = γ = 1, β = 6, stratified sampling).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BetaTcvaeConfig {
    /// Weight of the index-code mutual information.
    pub alpha: f64,
    /// Weight of the total correlation.
    pub beta: f64,
    /// Weight of the dimension-wise KL.
    pub gamma: f64,
    /// Minibatch estimator of log q(z).
    pub estimator: TcEstimator,
}

impl Default for BetaTcvaeConfig {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            beta: 6.0,
            gamma: 1.0,
            estimator: TcEstimator::default(),
        }
    }
}

impl BetaTcvaeConfig {
    pub(crate) fn validate(&self) -> Result<(), ModelError> {
        if ![self.alpha, self.beta, self.gamma]
            .iter()
            .all(|w| w.is_finite() && *w >= 0.0)
        {
            return Err(ModelError::InvalidConfig(
                "beta-TCVAE weights must be finite and >= 0".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn loss(
        &self,
        forward: &VaeForward,
        reconstruction: Tensor<1>,
        context: &StepContext,
    ) -> Result<LossOutput, ModelError> {
        let d = kl_decomposition(
            forward.z.clone(),
            forward.mu.clone(),
            forward.logvar.clone(),
            context.dataset_size,
            self.estimator,
        )?;
        let weighted = d.mutual_information.clone() * self.alpha
            + d.total_correlation.clone() * self.beta
            + d.dimension_wise_kl.clone() * self.gamma;
        Ok(LossOutput {
            loss: reconstruction.clone() + weighted.clone(),
            terms: vec![
                ("reconstruction", detached(&reconstruction)),
                ("mutual_information", detached(&d.mutual_information)),
                ("total_correlation", detached(&d.total_correlation)),
                ("dimension_wise_kl", detached(&d.dimension_wise_kl)),
            ],
            weighted_kl: Some(detached(&weighted)),
        })
    }
}
