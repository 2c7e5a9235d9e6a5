//! Capacity-annealed β-VAE (Burgess et al. 2018, "Understanding disentangling in β-VAE"):
//! L = E[−log p(x|z)] + γ · |KL(q(z|x) ‖ N(0, I)) − C_t|, with C_t rising linearly to C_max.

use burn::tensor::Tensor;
use infobound_estimators::kl_to_standard_normal;
use serde::{Deserialize, Serialize};

use super::{CapacitySchedule, Discriminator, StepContext, VaeObjective, non_negative};
use crate::loss::{detached, host_term};
use crate::{LossOutput, ModelError, VaeForward};

/// Hyper-parameters; defaults from Burgess et al. 2018 § 4 (dSprites: γ = 1000, C_max = 25
/// nats, increased linearly over 100,000 iterations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnnealedBetaVaeConfig {
    /// Weight γ of the capacity penalty.
    pub gamma: f64,
    /// Final capacity C_max in nats.
    pub capacity_max: f64,
    /// Steps over which C_t rises linearly from 0 to C_max.
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

/// Capacity-annealed β-VAE loss: `reconstruction + γ · |mean_i KL_i − C|` (the batch-mean KL
/// is compared with the capacity, as in Burgess et al. eq. 8).
///
/// # Shapes
/// - `reconstruction`: `[1]`
/// - `mu`, `logvar`: `[B, K]`
///
/// Terms: `reconstruction`, `kl`, `capacity`; the gradient-skip statistic is γ·|KL − C|.
///
/// # Errors
/// [`ModelError::Estimator`] for mismatched shapes or non-finite moments.
pub fn annealed_beta_vae_loss(
    reconstruction: Tensor<1>,
    mu: Tensor<2>,
    logvar: Tensor<2>,
    gamma: f64,
    capacity: f64,
) -> Result<LossOutput, ModelError> {
    let kl = kl_to_standard_normal(mu, logvar)?.mean();
    let weighted = (kl.clone() - capacity).abs() * gamma;
    let device = kl.device();
    Ok(LossOutput::new(
        reconstruction.clone() + weighted.clone(),
        vec![
            ("reconstruction", detached(&reconstruction)),
            ("kl", detached(&kl)),
            ("capacity", host_term(capacity, &device)),
        ],
    )
    .with_gradient_skip_statistic(&weighted))
}

impl VaeObjective for AnnealedBetaVaeConfig {
    fn validate(&self, _latent_dim: usize) -> Result<(), ModelError> {
        non_negative("gamma", self.gamma)?;
        non_negative("capacity_max", self.capacity_max)
    }

    fn loss(
        &self,
        forward: &VaeForward,
        reconstruction: Tensor<1>,
        context: &StepContext,
        _discriminator: Option<&Discriminator>,
    ) -> Result<LossOutput, ModelError> {
        annealed_beta_vae_loss(
            reconstruction,
            forward.mu.clone(),
            forward.logvar.clone(),
            self.gamma,
            CapacitySchedule::Linear {
                warmup_steps: self.capacity_warmup_steps,
            }
            .capacity(self.capacity_max, context),
        )
    }
}
