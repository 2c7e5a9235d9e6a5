//! Objectives of the VAE family, each a short file on the shared [`crate::Vae`] base.
//!
//! Every file holds a public pure loss function on tensors (e.g. [`beta_tcvae_loss`]) that a
//! user with their own loop can call, and a serde config implementing [`VaeObjective`] that
//! dispatches to it. [`ObjectiveConfig`] is the one registry: adding an objective is its file
//! plus one line in the `objective_registry!` invocation below (and a preset).

use burn::tensor::Tensor;

use crate::registry::objective_registry;
use crate::{Likelihood, LossOutput, ModelError, VaeForward};

mod capacity;
pub use capacity::CapacitySchedule;

/// Where training is, for schedules (capacity warm-up) and dataset-size dependent estimators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepContext {
    /// 0-based optimisation step.
    pub step: usize,
    /// Images in one step's batch (per-epoch schedules count images seen as step × batch).
    pub batch_size: usize,
    /// Number of distinct observations N (the β-TCVAE estimators need it).
    pub dataset_size: usize,
}

/// One VAE objective's configuration: validation and the loss of a batch.
pub trait VaeObjective {
    /// Checks hyper-parameter domains for a model with `latent_dim` latents.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the offending value.
    fn validate(&self, latent_dim: usize) -> Result<(), ModelError>;

    /// The loss of one batch given the reconstruction term `E[−log p(x|z)]` (`[1]`).
    /// `discriminator` is FactorVAE's density-ratio network; the others ignore it.
    ///
    /// # Errors
    /// [`ModelError`] from the estimators (shapes, non-finite values) or a missing
    /// discriminator.
    fn loss(
        &self,
        forward: &VaeForward,
        reconstruction: Tensor<1>,
        context: &StepContext,
        discriminator: Option<&Discriminator>,
    ) -> Result<LossOutput, ModelError>;
}

objective_registry! {
    /// Which VAE objective to train, with its hyper-parameters (serde tag `kind`).
    ObjectiveConfig, VaeObjective, objective;

    /// β-VAE (Higgins et al. 2017).
    BetaVae(beta_vae::BetaVaeConfig) = "beta_vae";
    /// Capacity-annealed β-VAE (Burgess et al. 2018).
    AnnealedBetaVae(annealed_beta_vae::AnnealedBetaVaeConfig) = "annealed_beta_vae";
    /// β-TCVAE (Chen et al. 2018).
    BetaTcvae(beta_tcvae::BetaTcvaeConfig) = "beta_tcvae";
    /// FactorVAE (Kim & Mnih 2018).
    FactorVae(factor_vae::FactorVaeConfig) = "factor_vae";
    /// α-TCVAE (Meo et al. 2024).
    AlphaTcvae(alpha_tcvae::AlphaTcvaeConfig) = "alpha_tcvae";
}

impl Default for ObjectiveConfig {
    fn default() -> Self {
        Self::AlphaTcvae(AlphaTcvaeConfig::default())
    }
}

impl ObjectiveConfig {
    /// Checks hyper-parameter domains.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the offending value.
    pub fn validate(&self, latent_dim: usize) -> Result<(), ModelError> {
        self.objective().validate(latent_dim)
    }

    /// The VAE loss of one batch: the reconstruction term under `likelihood` (computed by
    /// `forward.layers`, the implementation that ran the VAE), then the
    /// objective's regulariser. FactorVAE needs its discriminator; the other objectives ignore
    /// `discriminator`.
    ///
    /// # Errors
    /// As [`VaeObjective::loss`].
    pub fn vae_loss(
        &self,
        forward: &VaeForward,
        likelihood: Likelihood,
        context: &StepContext,
        discriminator: Option<&Discriminator>,
    ) -> Result<LossOutput, ModelError> {
        let reconstruction = likelihood
            .negative_log_likelihood(forward.logits.clone(), forward.x.clone(), forward.layers)?
            .mean();
        self.objective()
            .loss(forward, reconstruction, context, discriminator)
    }
}

/// Checks that a weight is finite and ≥ 0.
pub(crate) fn non_negative(name: &str, value: f64) -> Result<(), ModelError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(ModelError::InvalidConfig(format!(
            "{name} must be finite and >= 0, got {value}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks the registry: every objective's tag round-trips through serde, is unique and is
    /// what `name()` reports; every default validates.
    #[test]
    fn every_registered_objective_round_trips() {
        let registered = ObjectiveConfig::registered();
        assert_eq!(registered.len(), ObjectiveConfig::KINDS.len());
        let mut seen = std::collections::BTreeSet::new();
        for (config, kind) in registered.iter().zip(ObjectiveConfig::KINDS) {
            assert!(seen.insert(*kind), "duplicate tag {kind}");
            assert_eq!(config.name(), *kind);
            let text = serde_json::to_string(config).expect("serialises");
            assert!(text.contains(&format!("\"kind\":\"{kind}\"")), "{text}");
            let back: ObjectiveConfig = serde_json::from_str(&text).expect("parses");
            assert_eq!(&back, config);
            config.validate(10).expect("defaults are valid");
        }
    }
}
