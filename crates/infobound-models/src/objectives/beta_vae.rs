//! β-VAE (Higgins et al., ICLR 2017): L = E[−log p(x|z)] + β · KL(q(z|x) ‖ N(0, I)).

use burn::tensor::Tensor;
use infobound_estimators::kl_to_standard_normal;
use serde::{Deserialize, Serialize};

use super::{LossOutput, detached};
use crate::{ModelError, VaeForward};

/// β-VAE hyper-parameters; β = 1 is the plain VAE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BetaVaeConfig {
    /// Weight β of the KL term.
    pub beta: f64,
}

impl Default for BetaVaeConfig {
    fn default() -> Self {
        Self { beta: 4.0 }
    }
}

impl BetaVaeConfig {
    pub(crate) fn validate(&self) -> Result<(), ModelError> {
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Err(ModelError::InvalidConfig(format!(
                "beta must be finite and >= 0, got {}",
                self.beta
            )));
        }
        Ok(())
    }

    pub(crate) fn loss(
        &self,
        forward: &VaeForward,
        reconstruction: Tensor<1>,
    ) -> Result<LossOutput, ModelError> {
        let kl = kl_to_standard_normal(forward.mu.clone(), forward.logvar.clone())?.mean();
        let weighted = kl.clone() * self.beta;
        Ok(LossOutput {
            loss: reconstruction.clone() + weighted.clone(),
            terms: vec![
                ("reconstruction", detached(&reconstruction)),
                ("kl", detached(&kl)),
            ],
            weighted_kl: Some(detached(&weighted)),
        })
    }
}
