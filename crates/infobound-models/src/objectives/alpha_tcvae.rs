//! α-TCVAE (Meo, Mahon, Goyal & Dauwels, ICLR 2024): a total-correlation lower bound that mixes
//! a VIB term and a CEB term with weight α,
//! L = E[−log p(x|z)] + mean_i (β(1−α)/(1−α/K) · |KL_VIB,i − C_t| + w_CEB(α, K) · |KL_CEB,i − C_t|),
//! where KL_VIB = KL(q(z|x) ‖ N(0, I)) and KL_CEB compares each latent dimension with the
//! pooled posterior (see `infobound_estimators`). α = 0 is the capacity-annealed β-VAE.

use burn::tensor::Tensor;
use infobound_estimators::{AlphaTcWeights, CebVariant, CebWeighting, alpha_tc_regulariser};
use serde::{Deserialize, Serialize};

use super::{LossOutput, StepContext, capacity_at, detached};
use crate::{ModelError, VaeForward};

/// Hyper-parameters; defaults from the paper and the authors' training code: α = 0.25, β = 3,
/// C = 30 nats reached after the warm-up, released-code CEB and weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlphaTcvaeConfig {
    /// Mixing weight α ∈ [0, 1) between the VIB and CEB terms.
    pub alpha: f64,
    /// Overall weight β.
    pub beta: f64,
    /// Final capacity C in nats (0 disables the capacity).
    pub capacity_max: f64,
    /// Steps over which C_t rises linearly from 0 to C (the paper: 25 epochs).
    pub capacity_warmup_steps: usize,
    /// Which CEB term.
    pub ceb_variant: CebVariant,
    /// Which CEB weight.
    pub ceb_weighting: CebWeighting,
}

impl Default for AlphaTcvaeConfig {
    fn default() -> Self {
        Self {
            alpha: 0.25,
            beta: 3.0,
            capacity_max: 30.0,
            // 25 epochs of 3DShapes (480,000 images) at batch 256.
            capacity_warmup_steps: 46_875,
            ceb_variant: CebVariant::default(),
            ceb_weighting: CebWeighting::default(),
        }
    }
}

impl AlphaTcvaeConfig {
    pub(crate) fn validate(&self, latent_dim: usize) -> Result<(), ModelError> {
        AlphaTcWeights::new(self.alpha, self.beta, latent_dim, self.ceb_weighting)?;
        if self.capacity_max.is_nan() || self.capacity_max < 0.0 {
            return Err(ModelError::InvalidConfig(
                "capacity_max must be >= 0".into(),
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
        let [_, k] = forward.mu.dims();
        let weights = AlphaTcWeights::new(self.alpha, self.beta, k, self.ceb_weighting)?;
        let capacity = capacity_at(self.capacity_max, self.capacity_warmup_steps, context.step);
        let terms = alpha_tc_regulariser(
            forward.mu.clone(),
            forward.logvar.clone(),
            weights,
            self.ceb_variant,
            capacity,
        )?;
        let vib = terms.vib.clone().mean();
        let ceb = terms.ceb.mean();
        let weighted_vib = (terms.vib.clone() - capacity).abs().mean() * weights.vib;
        Ok(LossOutput {
            loss: reconstruction.clone() + terms.regulariser,
            terms: vec![
                ("reconstruction", detached(&reconstruction)),
                ("vib", detached(&vib)),
                ("ceb", detached(&ceb)),
                (
                    "capacity",
                    Tensor::from_floats([capacity as f32], &vib.device()),
                ),
            ],
            weighted_kl: Some(detached(&weighted_vib)),
        })
    }
}
