//! β-VAE (Higgins et al., ICLR 2017): L = E[−log p(x|z)] + β · KL(q(z|x) ‖ N(0, I)).

use burn::tensor::Tensor;
use infobound_estimators::kl_to_standard_normal;
use serde::{Deserialize, Serialize};

use super::{Discriminator, StepContext, VaeObjective, non_negative};
use crate::loss::detached;
use crate::{LossOutput, ModelError, VaeForward};

/// Hyper-parameters; β = 4 is the value Higgins et al. report for their 2-D shapes experiments
/// (Fig. 7; disentanglement_lib's `beta_vae` sweeps β ∈ {1, 2, 4, 6, 8, 16}).
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

/// β-VAE loss: `reconstruction + β · mean_i KL(N(μ_i, σ_i²) ‖ N(0, I))`.
///
/// # Shapes
/// - `reconstruction`: `[1]` (the batch mean of −log p(x|z))
/// - `mu`, `logvar`: `[B, K]`
///
/// Terms: `reconstruction`, `kl`; the gradient-skip statistic is β·KL.
///
/// # Errors
/// [`ModelError::Estimator`] for mismatched shapes or non-finite moments.
pub fn beta_vae_loss(
    reconstruction: Tensor<1>,
    mu: Tensor<2>,
    logvar: Tensor<2>,
    beta: f64,
) -> Result<LossOutput, ModelError> {
    let kl = kl_to_standard_normal(mu, logvar)?.mean();
    let weighted = kl.clone() * beta;
    Ok(LossOutput::new(
        reconstruction.clone() + weighted.clone(),
        vec![
            ("reconstruction", detached(&reconstruction)),
            ("kl", detached(&kl)),
        ],
    )
    .with_gradient_skip_statistic(&weighted))
}

impl VaeObjective for BetaVaeConfig {
    fn validate(&self, _latent_dim: usize) -> Result<(), ModelError> {
        non_negative("beta", self.beta)
    }

    fn loss(
        &self,
        forward: &VaeForward,
        reconstruction: Tensor<1>,
        _context: &StepContext,
        _discriminator: Option<&Discriminator>,
    ) -> Result<LossOutput, ModelError> {
        beta_vae_loss(
            reconstruction,
            forward.mu.clone(),
            forward.logvar.clone(),
            self.beta,
        )
    }
}
