//! Diagonal-Gaussian building blocks: log-densities, the analytic KL to N(0, I), `logsumexp`.
//!
//! Everything here is differentiable and works in the dtype of its inputs (f32 or f64).

use burn::prelude::*;

use crate::EstimatorError;
use crate::validate;

/// ln(2π).
pub(crate) const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// Elementwise log-density of a diagonal Gaussian,
/// `log N(z_ik; μ_ik, exp(logvar_ik)) = −½ [ln 2π + logvar_ik + (z_ik − μ_ik)² · exp(−logvar_ik)]`.
///
/// This is the per-dimension reparameterised posterior density of a VAE (Kingma & Welling,
/// "Auto-Encoding Variational Bayes", ICLR 2014); summing over `k` gives log q(z|x).
/// All three tensors are `[batch, latent]`.
///
/// # Errors
/// [`EstimatorError::ShapeMismatch`] if the shapes differ.
pub fn log_normal_diag(
    z: Tensor<2>,
    mu: Tensor<2>,
    logvar: Tensor<2>,
) -> Result<Tensor<2>, EstimatorError> {
    let dims = z.dims();
    validate::same_shape("mu", &mu, dims)?;
    validate::same_shape("logvar", &logvar, dims)?;
    Ok(log_normal_diag_unchecked(z, mu, logvar))
}

/// [`log_normal_diag`] without shape checks; broadcasting is allowed (the TC estimators pass
/// `[B, 1, K]` samples against `[1, B, K]` posteriors).
pub(crate) fn log_normal_diag_unchecked<const D: usize>(
    z: Tensor<D>,
    mu: Tensor<D>,
    logvar: Tensor<D>,
) -> Tensor<D> {
    // The per-posterior factors −½ exp(−logvar) and −½ (ln 2π + logvar) are formed on the
    // (small) parameter tensors first, so the broadcast [B, B, K] cross term of the TC
    // estimators costs four full-size passes (sub, square, mul, add) instead of six.
    let neg_half_precision = logvar.clone().neg().exp().mul_scalar(-0.5);
    let log_normaliser = logvar.add_scalar(LN_2PI).mul_scalar(-0.5);
    (z - mu).square() * neg_half_precision + log_normaliser
}

/// Elementwise standard-normal log-density, `log N(z_ik; 0, 1) = −½ (ln 2π + z_ik²)`.
///
/// Summed over `k` this is the prior term log p(z) of a VAE with an isotropic Gaussian prior
/// (Kingma & Welling, ICLR 2014). Any shape is accepted.
pub fn log_standard_normal<const D: usize>(z: Tensor<D>) -> Tensor<D> {
    z.square().add_scalar(LN_2PI).mul_scalar(-0.5)
}

/// Analytic KL divergence of each sample's diagonal-Gaussian posterior to the standard normal,
/// `KL(q(z|x_i) ‖ N(0, I)) = ½ Σ_k (μ_ik² + exp(logvar_ik) − 1 − logvar_ik)`.
///
/// Kingma & Welling, ICLR 2014, Appendix B. `mu` and `logvar` are `[batch, latent]`; the
/// result is `[batch]`. This is also the VIB term of α-TCVAE (see [`crate::vib_term`]).
///
/// # Errors
/// [`EstimatorError::ShapeMismatch`] if the shapes differ.
pub fn kl_to_standard_normal(
    mu: Tensor<2>,
    logvar: Tensor<2>,
) -> Result<Tensor<1>, EstimatorError> {
    validate::same_shape("logvar", &logvar, mu.dims())?;
    Ok(kl_to_standard_normal_unchecked(mu, logvar))
}

pub(crate) fn kl_to_standard_normal_unchecked(mu: Tensor<2>, logvar: Tensor<2>) -> Tensor<1> {
    let per_dim = mu.square() + logvar.clone().exp() - logvar;
    per_dim
        .sub_scalar(1.0)
        .sum_dim(1)
        .mul_scalar(0.5)
        .squeeze_dim::<1>(1)
}

/// Numerically stable `log Σ_j exp(x_j)` along `dim`, keeping that dimension (size 1).
///
/// Computed as `m + log Σ_j exp(x_j − m)` with `m = max_j x_j`. The shift `m` is held
/// constant (detached): the result's gradient is `softmax(x)` either way, and detaching keeps
/// the max's index selection out of the autodiff graph. Burn 0.22 has no built-in logsumexp.
/// If every entry along `dim` is −∞ the result is NaN (as `m = −∞`).
///
/// # Errors
/// [`EstimatorError::InvalidParameter`] if `dim ≥ D`.
pub fn logsumexp<const D: usize>(x: Tensor<D>, dim: usize) -> Result<Tensor<D>, EstimatorError> {
    if dim >= D {
        return Err(EstimatorError::InvalidParameter {
            name: "dim",
            value: dim as f64,
            requirement: "must be smaller than the tensor rank",
        });
    }
    Ok(logsumexp_unchecked(x, dim))
}

pub(crate) fn logsumexp_unchecked<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    let shift = x.clone().max_dim(dim).detach();
    (x - shift.clone()).exp().sum_dim(dim).log() + shift
}
