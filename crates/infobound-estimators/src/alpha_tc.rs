//! The two KL terms of the α-TCVAE total-correlation bound and their weights
//! (Meo, Mahon, Goyal, Dauwels, "α-TCVAE: On the relationship between disentanglement and
//! diversity", ICLR 2024).
//!
//! The trained objective (class `TC_Bound` of the authors' code, Cmeo97/benchmark_VAE) is, per
//! sample and with latent size K, posterior std σ_k and an optional capacity C_t,
//!
//! ```text
//! loss = reconstruction + w_vib · |VIB − C_t| + w_ceb · |CEB − C_t|
//! w_vib = β (1 − α) / (1 − α/K)
//! w_ceb = α K / (K − α)          (released code)   or   α / (K − α)   (MVTCAE weights)
//! ```
//!
//! VIB is the ordinary KL to N(0, I) and CEB a KL from each one-dimensional posterior to a
//! product-of-experts "consensus" Gaussian. With α = 0 the loss is the capacity-annealed
//! β-VAE of Burgess et al. (2018). This module exposes the two terms and the two weights
//! separately so that a model can compose and log them.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::EstimatorError;
use crate::gaussian::kl_to_standard_normal_unchecked;
use crate::validate;

/// Offset added to σ_k and to the pooled precision inside the CEB term, as in the authors' code.
const CEB_EPSILON: f64 = 1e-8;

/// How the CEB term's weight depends on α and K.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CebWeighting {
    /// `w_ceb = α K / (K − α)`, as in the final α-TCVAE code (`TC_Bound`).
    #[default]
    ReleasedCode,
    /// `w_ceb = α / (K − α)`, the weights of earlier commits, following the multi-view TC bound
    /// of Hwang et al., "Multi-View Representation Learning via Total Correlation Objective"
    /// (NeurIPS 2021).
    Mvtcae,
}

/// Which "consensus" Gaussian the CEB term compares each posterior dimension against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CebVariant {
    /// The formula as trained in the authors' code (σ_k where a variance is expected):
    /// `w_k = 1/(σ_k + ε)`, `μ_p = Σ_k μ_k w_k / Σ_k w_k`, `v_p = Σ_k w_k`,
    /// `CEB = Σ_k ½ (−1 − log(v_p + ε) + log(σ_k + ε) + (μ_p − μ_k)² w_k + v_p w_k)`, ε = 1e-8.
    #[default]
    ReleasedCode,
    /// A proper precision-weighted product of the K one-dimensional Gaussians,
    /// `1/σ_p² = Σ_k 1/σ_k²`, `μ_p = σ_p² Σ_k μ_k/σ_k²`, and
    /// `CEB = Σ_k KL(N(μ_k, σ_k²) ‖ N(μ_p, σ_p²))
    ///      = Σ_k ½ (log σ_p² − log σ_k² + (σ_k² + (μ_k − μ_p)²)/σ_p² − 1)`.
    ProductOfExperts,
}

/// The weights of the VIB and CEB terms of the α-TCVAE bound.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlphaTcWeights {
    /// `β (1 − α) / (1 − α/K)`.
    pub vib: f64,
    /// `α K / (K − α)` or `α / (K − α)`, see [`CebWeighting`].
    pub ceb: f64,
}

impl AlphaTcWeights {
    /// Weights for α ∈ [0, 1), β ≥ 0 and latent size K ≥ 2 (Meo et al., ICLR 2024):
    /// `vib = β (1 − α)/(1 − α/K)` and `ceb` per [`CebWeighting`]. With α = 0 they are
    /// `(β, 0)`: the β-VAE.
    ///
    /// # Errors
    /// [`EstimatorError::InvalidParameter`] if α ∉ [0, 1), β < 0 (or non-finite), or K < 2.
    pub fn new(
        alpha: f64,
        beta: f64,
        latent_dim: usize,
        weighting: CebWeighting,
    ) -> Result<Self, EstimatorError> {
        if !(0.0..1.0).contains(&alpha) {
            return Err(EstimatorError::InvalidParameter {
                name: "alpha",
                value: alpha,
                requirement: "must lie in [0, 1)",
            });
        }
        validate::non_negative("beta", beta)?;
        if latent_dim < 2 {
            return Err(EstimatorError::InvalidParameter {
                name: "latent_dim",
                value: latent_dim as f64,
                requirement: "must be at least 2",
            });
        }
        let k = latent_dim as f64;
        let ceb = match weighting {
            CebWeighting::ReleasedCode => alpha * k / (k - alpha),
            CebWeighting::Mvtcae => alpha / (k - alpha),
        };
        Ok(Self {
            vib: beta * (1.0 - alpha) / (1.0 - alpha / k),
            ceb,
        })
    }
}

/// The VIB term of α-TCVAE per sample: `KL(q(z|x_i) ‖ N(0, I))`
/// (Meo et al., ICLR 2024; Alemi et al., "Deep Variational Information Bottleneck", ICLR 2017).
///
/// `mu` and `logvar` are `[B, K]`; the result is `[B]`.
///
/// # Errors
/// [`EstimatorError::ShapeMismatch`] if the shapes differ.
pub fn vib_term(mu: Tensor<2>, logvar: Tensor<2>) -> Result<Tensor<1>, EstimatorError> {
    validate::same_shape("logvar", &logvar, mu.dims())?;
    Ok(kl_to_standard_normal_unchecked(mu, logvar))
}

/// The CEB term of α-TCVAE per sample (Meo et al., ICLR 2024): a KL from each posterior
/// dimension N(μ_k, σ_k²) to a product-of-experts consensus over the K dimensions; the two
/// formulas are given on [`CebVariant`].
///
/// `mu` and `logvar` are `[B, K]` (σ_k = exp(logvar_k / 2)); the result is `[B]` and
/// differentiable.
///
/// # Errors
/// [`EstimatorError::ShapeMismatch`] if the shapes differ,
/// [`EstimatorError::InvalidParameter`] if K < 2 (a product of one expert is the expert).
pub fn ceb_term(
    mu: Tensor<2>,
    logvar: Tensor<2>,
    variant: CebVariant,
) -> Result<Tensor<1>, EstimatorError> {
    let [_, latent] = mu.dims();
    validate::same_shape("logvar", &logvar, mu.dims())?;
    if latent < 2 {
        return Err(EstimatorError::InvalidParameter {
            name: "latent_dim",
            value: latent as f64,
            requirement: "must be at least 2",
        });
    }
    let per_dim = match variant {
        CebVariant::ReleasedCode => {
            let std = logvar.mul_scalar(0.5).exp().add_scalar(CEB_EPSILON);
            let weight = std.clone().recip();
            let pooled_weight = weight.clone().sum_dim(1);
            let pooled_mean = (mu.clone() * weight.clone()).sum_dim(1) / pooled_weight.clone();
            let log_pooled = pooled_weight.clone().add_scalar(CEB_EPSILON).log();
            std.log() - log_pooled
                + (pooled_mean - mu).square() * weight.clone()
                + pooled_weight * weight
        }
        CebVariant::ProductOfExperts => {
            let precision = logvar.clone().neg().exp();
            let pooled_precision = precision.clone().sum_dim(1);
            let pooled_mean = (mu.clone() * precision).sum_dim(1) / pooled_precision.clone();
            let log_pooled_precision = pooled_precision.clone().log();
            // log σ_p² − log σ_k² = −log Σ_j σ_j⁻² − logvar_k.
            (log_pooled_precision.clone().neg() - logvar.clone())
                + (logvar.exp() + (mu - pooled_mean).square()) * pooled_precision
        }
    };
    Ok(per_dim
        .sub_scalar(1.0)
        .sum_dim(1)
        .mul_scalar(0.5)
        .squeeze_dim::<1>(1))
}

/// The capacity penalty `|KL − C_t|` applied to each term (Burgess et al., "Understanding
/// disentangling in β-VAE", 2018; used on both terms by α-TCVAE). With C_t = 0 it is the KL
/// itself, since KL ≥ 0.
///
/// # Errors
/// [`EstimatorError::InvalidParameter`] if `capacity` is negative or not finite.
pub fn capacity_penalty(kl: Tensor<1>, capacity: f64) -> Result<Tensor<1>, EstimatorError> {
    validate::non_negative("capacity", capacity)?;
    Ok(kl.sub_scalar(capacity).abs())
}

/// The linearly annealed capacity of the authors' code,
/// `C_t = C_max · min(epoch / (warmup_epochs + 1), 1)` (Meo et al., ICLR 2024, `TC_Bound`).
///
/// # Errors
/// [`EstimatorError::InvalidParameter`] if `max_capacity` is negative or not finite.
pub fn annealed_capacity(
    max_capacity: f64,
    epoch: usize,
    warmup_epochs: usize,
) -> Result<f64, EstimatorError> {
    validate::non_negative("max_capacity", max_capacity)?;
    let progress = (epoch as f64 / (warmup_epochs as f64 + 1.0)).min(1.0);
    Ok(max_capacity * progress)
}

/// The per-sample terms and the combined regulariser of the α-TCVAE bound.
#[derive(Debug, Clone)]
pub struct AlphaTcTerms {
    /// VIB term per sample, `[B]` (before the capacity penalty).
    pub vib: Tensor<1>,
    /// CEB term per sample, `[B]` (before the capacity penalty).
    pub ceb: Tensor<1>,
    /// `mean_i (w_vib |VIB_i − C_t| + w_ceb |CEB_i − C_t|)`, one element; add the
    /// reconstruction loss to obtain the α-TCVAE objective.
    pub regulariser: Tensor<1>,
}

/// Both α-TCVAE terms and their weighted, capacity-penalised batch mean,
/// `mean_i (w_vib |VIB_i − C_t| + w_ceb |CEB_i − C_t|)` (Meo et al., ICLR 2024, `TC_Bound`).
///
/// With `weights.ceb == 0` (α = 0) this is exactly the capacity-annealed β-VAE regulariser
/// `β · mean_i |KL_i − C_t|`, and the CEB term is then not computed into the loss.
///
/// # Errors
/// As [`vib_term`], [`ceb_term`] and [`capacity_penalty`].
pub fn alpha_tc_regulariser(
    mu: Tensor<2>,
    logvar: Tensor<2>,
    weights: AlphaTcWeights,
    variant: CebVariant,
    capacity: f64,
) -> Result<AlphaTcTerms, EstimatorError> {
    let vib = vib_term(mu.clone(), logvar.clone())?;
    let ceb = ceb_term(mu, logvar, variant)?;
    let mut regulariser = capacity_penalty(vib.clone(), capacity)?.mul_scalar(weights.vib);
    if weights.ceb != 0.0 {
        regulariser =
            regulariser + capacity_penalty(ceb.clone(), capacity)?.mul_scalar(weights.ceb);
    }
    Ok(AlphaTcTerms {
        vib,
        ceb,
        regulariser: regulariser.mean(),
    })
}
