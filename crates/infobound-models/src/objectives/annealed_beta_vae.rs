//! Capacity-annealed β-VAE (Burgess et al. 2018, "Understanding disentangling in β-VAE"):
//! L = E[−log p(x|z)] + γ · |KL(q(z|x) ‖ N(0, I)) − C_t|, with C_t rising linearly to C_max.

use burn::tensor::Tensor;
use infobound_estimators::kl_to_standard_normal;
use serde::{Deserialize, Serialize};

use super::{LossOutput, StepContext, capacity_at, detached};
use crate::{ModelError, VaeForward};

/// Hyper-parameters; defaults from Burgess et al. (γ = 1000, C_max = 25 nats).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnnealedBetaVaeConfig {
    /// Weight γ of the capacity term.
    pub gamma: f64,
    /// Final capacity C_max in nats.
    pub capacity_max: f64,
    /// Steps over which C_t rises from 0 to C_max.
    pub capacity_warmup_steps: usize,
}

impl Default for AnnealedBetaVaeConfig {
    fn default() -> Self {
        Self {
            gamma: 1000.0,
            capacity_max: 25.0,
            capacity_warmup_steps: 100_000,
        }
    }
}

impl AnnealedBetaVaeConfig {
    pub(crate) fn validate(&self) -> Result<(), ModelError> {
        if !(self.gamma >= 0.0 && self.capacity_max >= 0.0) {
            return Err(ModelError::InvalidConfig(
                "gamma and capacity_max must be >= 0".into(),
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
        let capacity = capacity_at(self.capacity_max, self.capacity_warmup_steps, context.step);
        let kl = kl_to_standard_normal(forward.mu.clone(), forward.logvar.clone())?.mean();
        let weighted = (kl.clone() - capacity).abs() * self.gamma;
        Ok(LossOutput {
            loss: reconstruction.clone() + weighted.clone(),
            terms: vec![
                ("reconstruction", detached(&reconstruction)),
                ("kl", detached(&kl)),
                (
                    "capacity",
                    Tensor::from_floats([capacity as f32], &kl.device()),
                ),
            ],
            weighted_kl: Some(detached(&weighted)),
        })
    }
}
