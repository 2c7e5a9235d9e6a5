//! Barlow Twins (Zbontar, Jing, Misra, LeCun, Deny, ICML 2021): with z^1, z^2 standardised
//! along the batch and `C = (z^1)ᵀ z^2 / B`,
//! `L = Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij²`.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::{ScoreSupport, SslMethod, SslViews, non_negative};
use crate::loss::detached;
use crate::{LossOutput, ModelError};

/// ε of the standardisation, that of the authors' non-affine `BatchNorm1d`.
const STANDARDISE_EPSILON: f64 = 1e-5;

/// Barlow Twins hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BarlowTwinsConfig {
    /// Weight λ of the off-diagonal (redundancy-reduction) term (paper: 0.0051).
    pub lambda: f64,
    /// Factor `s` of the whole loss, finite and > 0: the objective is `s·L`, the logged terms
    /// stay unweighted. 1 in the official code (facebookresearch/barlowtwins@8e8d284 `main.py`
    /// returns `on_diag + lambd * off_diag`); solo-learn's CIFAR recipe uses 0.1
    /// (vturrisi/solo-learn@9187ea3 `scripts/pretrain/cifar/barlow.yaml`, `scale_loss: 0.1`,
    /// applied in `solo/losses/barlow.py`).
    pub loss_scale: f64,
}

impl Default for BarlowTwinsConfig {
    fn default() -> Self {
        Self {
            lambda: 0.0051,
            loss_scale: 1.0,
        }
    }
}

/// Barlow Twins loss `Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij²` with `C = (z̃^1)ᵀ z̃^2 / B` on the
/// batch-standardised projections z̃.
///
/// # Shapes
/// - `online`: the online projections `[z^1, z^2]`, each `[B, d]`
///
/// Terms: `on_diagonal`, `off_diagonal` (unweighted).
pub fn barlow_twins_loss(online: [Tensor<2>; 2], lambda: f64) -> LossOutput {
    let [z1, z2] = online;
    let [batch, _] = z1.dims();
    let scale = 1.0 / batch as f64;
    let z1 = standardise(z1);
    let z2 = standardise(z2);
    // C_ii = Σ_b z1_bi z2_bi / B directly, so the off-diagonal sum needs no identity mask.
    let diagonal = (z1.clone() * z2.clone()).sum_dim(0).mul_scalar(scale);
    let correlation = z1.transpose().matmul(z2).mul_scalar(scale);
    let on_diagonal = diagonal.clone().neg().add_scalar(1.0).square().sum();
    let off_diagonal = correlation.square().sum() - diagonal.square().sum();
    let loss = on_diagonal.clone() + off_diagonal.clone().mul_scalar(lambda);
    LossOutput::new(
        loss,
        vec![
            ("on_diagonal", detached(&on_diagonal)),
            ("off_diagonal", detached(&off_diagonal)),
        ],
    )
}

impl SslMethod for BarlowTwinsConfig {
    fn validate(&self) -> Result<(), ModelError> {
        non_negative("lambda", self.lambda)?;
        if !(self.loss_scale.is_finite() && self.loss_scale > 0.0) {
            return Err(ModelError::InvalidConfig(format!(
                "barlow_twins loss_scale must be finite and > 0, got {}",
                self.loss_scale
            )));
        }
        Ok(())
    }

    fn loss(
        &self,
        views: &SslViews,
        _support: &dyn ScoreSupport,
    ) -> Result<LossOutput, ModelError> {
        let output = barlow_twins_loss(
            [views.online[0].clone(), views.online[1].clone()],
            self.lambda,
        );
        Ok(LossOutput::new(
            output.loss.mul_scalar(self.loss_scale),
            output.terms,
        ))
    }
}

/// `(z − mean) / sqrt(var + ε)` per column, with the biased batch variance.
fn standardise(z: Tensor<2>) -> Tensor<2> {
    let (variance, mean) = z.clone().var_mean_bias(0);
    (z - mean) / variance.add_scalar(STANDARDISE_EPSILON).sqrt()
}
