//! Barlow Twins (Zbontar, Jing, Misra, LeCun, Deny, ICML 2021): with z^1, z^2 standardised
//! along the batch and `C = (z^1)ᵀ z^2 / B`,
//! `L = Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij²`.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::{SslLossOutput, non_negative, scalar};
use crate::ModelError;

/// ε of the standardisation, that of the authors' non-affine `BatchNorm1d`.
const STANDARDISE_EPSILON: f64 = 1e-5;

/// Barlow Twins hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BarlowTwinsConfig {
    /// Weight λ of the off-diagonal (redundancy-reduction) term (paper: 0.0051).
    pub lambda: f64,
}

impl Default for BarlowTwinsConfig {
    fn default() -> Self {
        Self { lambda: 0.0051 }
    }
}

impl BarlowTwinsConfig {
    pub(crate) fn validate(&self) -> Result<(), ModelError> {
        non_negative("lambda", self.lambda)
    }

    pub(crate) fn loss(&self, online: &[Tensor<2>]) -> Result<SslLossOutput, ModelError> {
        let [batch, _] = online[0].dims();
        let scale = 1.0 / batch as f64;
        let z1 = standardise(online[0].clone());
        let z2 = standardise(online[1].clone());
        // C_ii = Σ_b z1_bi z2_bi / B directly, so the off-diagonal sum needs no identity mask.
        let diagonal = (z1.clone() * z2.clone()).sum_dim(0).mul_scalar(scale);
        let correlation = z1.transpose().matmul(z2).mul_scalar(scale);
        let on_diagonal = diagonal.clone().neg().add_scalar(1.0).square().sum();
        let off_diagonal = correlation.square().sum() - diagonal.square().sum();
        let loss = on_diagonal.clone() + off_diagonal.clone().mul_scalar(self.lambda);
        Ok(SslLossOutput {
            terms: vec![
                ("on_diagonal".into(), scalar(&on_diagonal)),
                ("off_diagonal".into(), scalar(&off_diagonal)),
                ("loss".into(), scalar(&loss)),
            ],
            loss,
            kernel_width: None,
        })
    }
}

/// `(z − mean) / sqrt(var + ε)` per column, with the biased batch variance.
fn standardise(z: Tensor<2>) -> Tensor<2> {
    let (variance, mean) = z.clone().var_mean_bias(0);
    (z - mean) / variance.add_scalar(STANDARDISE_EPSILON).sqrt()
}
