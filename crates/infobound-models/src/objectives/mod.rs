//! Objectives of the VAE family, each a short file on the shared [`crate::Vae`] base.
//!
//! Every objective maps one [`VaeForward`] to a [`LossOutput`]: the scalar to minimise plus the
//! named terms (detached) for logging.

mod alpha_tcvae;
mod annealed_beta_vae;
mod beta_tcvae;
mod beta_vae;
mod factor_vae;

pub use alpha_tcvae::AlphaTcvaeConfig;
pub use annealed_beta_vae::AnnealedBetaVaeConfig;
pub use beta_tcvae::BetaTcvaeConfig;
pub use beta_vae::BetaVaeConfig;
pub use factor_vae::{Discriminator, FactorVaeConfig, permute_dims};

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::{Likelihood, ModelError, VaeForward};

/// Where training is, for schedules (capacity warm-up) and dataset-size dependent estimators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepContext {
    /// 0-based optimisation step.
    pub step: usize,
    /// Number of distinct observations N (the β-TCVAE estimators need it).
    pub dataset_size: usize,
}

/// A loss to minimise and its named, detached parts.
#[derive(Debug, Clone)]
pub struct LossOutput {
    /// Scalar loss, shape [1].
    pub loss: Tensor<1>,
    /// Named scalar terms, each shape [1], detached (for logs and progress bars).
    pub terms: Vec<(&'static str, Tensor<1>)>,
    /// The weighted VIB/KL term, for the α-TCVAE authors' gradient-skip rule.
    pub weighted_kl: Option<Tensor<1>>,
}

/// Which objective to train, with its hyper-parameters (serde tag `kind`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ObjectiveConfig {
    /// β-VAE (Higgins et al. 2017).
    BetaVae(BetaVaeConfig),
    /// Capacity-annealed β-VAE (Burgess et al. 2018).
    AnnealedBetaVae(AnnealedBetaVaeConfig),
    /// β-TCVAE (Chen et al. 2018).
    BetaTcvae(BetaTcvaeConfig),
    /// FactorVAE (Kim & Mnih 2018).
    FactorVae(FactorVaeConfig),
    /// α-TCVAE (Meo et al. 2024).
    AlphaTcvae(AlphaTcvaeConfig),
}

impl Default for ObjectiveConfig {
    fn default() -> Self {
        Self::AlphaTcvae(AlphaTcvaeConfig::default())
    }
}

impl ObjectiveConfig {
    /// Short name used in logs and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Self::BetaVae(_) => "beta_vae",
            Self::AnnealedBetaVae(_) => "annealed_beta_vae",
            Self::BetaTcvae(_) => "beta_tcvae",
            Self::FactorVae(_) => "factor_vae",
            Self::AlphaTcvae(_) => "alpha_tcvae",
        }
    }

    /// Checks hyper-parameter domains.
    pub fn validate(&self, latent_dim: usize) -> Result<(), ModelError> {
        match self {
            Self::BetaVae(c) => c.validate(),
            Self::AnnealedBetaVae(c) => c.validate(),
            Self::BetaTcvae(c) => c.validate(),
            Self::FactorVae(c) => c.validate(),
            Self::AlphaTcvae(c) => c.validate(latent_dim),
        }
    }

    /// The VAE loss of one batch. FactorVAE needs its discriminator; the other objectives
    /// ignore `discriminator`.
    pub fn vae_loss(
        &self,
        forward: &VaeForward,
        likelihood: Likelihood,
        context: &StepContext,
        discriminator: Option<&Discriminator>,
    ) -> Result<LossOutput, ModelError> {
        let reconstruction = likelihood
            .negative_log_likelihood(forward.logits.clone(), forward.x.clone())?
            .mean();
        match self {
            Self::BetaVae(c) => c.loss(forward, reconstruction),
            Self::AnnealedBetaVae(c) => c.loss(forward, reconstruction, context),
            Self::BetaTcvae(c) => c.loss(forward, reconstruction, context),
            Self::FactorVae(c) => {
                let discriminator = discriminator.ok_or_else(|| {
                    ModelError::InvalidConfig("FactorVAE needs its discriminator".into())
                })?;
                c.loss(forward, reconstruction, discriminator)
            }
            Self::AlphaTcvae(c) => c.loss(forward, reconstruction, context),
        }
    }
}

/// Linear warm-up of a KL capacity (Burgess et al. 2018): C_t = C_max · min(1, t / T).
pub fn capacity_at(capacity_max: f64, warmup_steps: usize, step: usize) -> f64 {
    if warmup_steps == 0 {
        capacity_max
    } else {
        capacity_max * (step as f64 / warmup_steps as f64).min(1.0)
    }
}

pub(crate) fn detached(t: &Tensor<1>) -> Tensor<1> {
    t.clone().detach()
}
