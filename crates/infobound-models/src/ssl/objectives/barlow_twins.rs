//! Barlow Twins (Zbontar, Jing, Misra, LeCun, Deny, ICML 2021): with z^1, z^2 standardised
//! along the batch and `C = (z^1)ᵀ z^2 / B`,
//! `L = Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij²`; local views join as (global, local) pairs
//! ([`barlow_twins_loss`]).

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::{ScoreSupport, SslMethod, SslViews, check_view_counts, non_negative};
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

/// Barlow Twins loss `Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij²` with `C = (z̃^a)ᵀ z̃^b / B` on the
/// batch-standardised projections z̃, averaged over the view pairs (a, b): the global pair
/// (1, 2) and, for V > 2 views, every (global, local) pair. With the 2 global views this is the
/// paper's loss (Zbontar et al. 2021, eq. 1); the mean over (global, local) pairs is our choice
/// (neither the official code nor solo-learn defines multi-crop Barlow Twins).
///
/// # Shapes
/// - `online`: the online projections of V ≥ 2 views, the 2 global ones first, each `[B, d]`
///
/// Terms: `on_diagonal`, `off_diagonal` (unweighted, averaged over the pairs).
///
/// # Errors
/// [`ModelError::Views`] for fewer than 2 views.
pub fn barlow_twins_loss(online: &[Tensor<2>], lambda: f64) -> Result<LossOutput, ModelError> {
    check_view_counts("barlow_twins", online.len(), None)?;
    let z: Vec<Tensor<2>> = online.iter().cloned().map(standardise).collect();
    let pairs: Vec<(usize, usize)> = std::iter::once((0, 1))
        .chain((0..2).flat_map(|g| (2..z.len()).map(move |l| (g, l))))
        .collect();
    let weight = 1.0 / pairs.len() as f64;
    let mut sums: Option<(Tensor<1>, Tensor<1>)> = None;
    for (a, b) in pairs {
        let (on, off) = correlation_terms(z[a].clone(), z[b].clone());
        sums = Some(match sums {
            Some((on_sum, off_sum)) => (on_sum + on, off_sum + off),
            None => (on, off),
        });
    }
    let (on_diagonal, off_diagonal) =
        sums.ok_or_else(|| ModelError::Views("barlow_twins needs a view pair".into()))?;
    let on_diagonal = on_diagonal.mul_scalar(weight);
    let off_diagonal = off_diagonal.mul_scalar(weight);
    let loss = on_diagonal.clone() + off_diagonal.clone().mul_scalar(lambda);
    Ok(LossOutput::new(
        loss,
        vec![
            ("on_diagonal", detached(&on_diagonal)),
            ("off_diagonal", detached(&off_diagonal)),
        ],
    ))
}

/// `(Σ_i (1 − C_ii)², Σ_{i≠j} C_ij²)` of two standardised `[B, d]` views.
fn correlation_terms(z1: Tensor<2>, z2: Tensor<2>) -> (Tensor<1>, Tensor<1>) {
    let [batch, _] = z1.dims();
    let scale = 1.0 / batch as f64;
    // C_ii = Σ_b z1_bi z2_bi / B directly, so the off-diagonal sum needs no identity mask.
    let diagonal = (z1.clone() * z2.clone()).sum_dim(0).mul_scalar(scale);
    let correlation = z1.transpose().matmul(z2).mul_scalar(scale);
    let on_diagonal = diagonal.clone().neg().add_scalar(1.0).square().sum();
    let off_diagonal = correlation.square().sum() - diagonal.square().sum();
    (on_diagonal, off_diagonal)
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

    /// The loss on this replica's projections, or — when `support` holds every replica's
    /// projections of each view (`entropy_support = "gathered"`) — on the whole batch, this
    /// replica's rows live and the others' detached, as the paper's code computes it across
    /// GPUs (the cross-correlation all-reduced, the standardisation over the whole batch:
    /// facebookresearch/barlowtwins@8e8d284 `main.py`, `torch.distributed.all_reduce(c)` and
    /// `SyncBatchNorm`). Its value is the whole batch's loss L; its gradient is
    /// `(B / b) · ∂L/∂z` on this replica's b rows, so that the replicas' gradients, weighted by
    /// `b / B` as a data-parallel step weights them, sum to the whole batch's.
    fn loss(
        &self,
        views: &SslViews,
        support: &dyn ScoreSupport,
    ) -> Result<LossOutput, ModelError> {
        let mut whole = Vec::with_capacity(views.online.len());
        let mut share = 1.0;
        for (view, local) in views.online.iter().enumerate() {
            let [rows, _] = local.dims();
            let (all, first) = support.samples(view, local.clone().detach())?;
            let [total, _] = all.dims();
            if total == rows {
                whole.push(local.clone());
                continue;
            }
            if first + rows > total {
                return Err(ModelError::DataParallel(format!(
                    "view {view}: rows {first}..{} of a gathered batch of {total}",
                    first + rows
                )));
            }
            let mut parts = Vec::with_capacity(3);
            if first > 0 {
                parts.push(all.clone().narrow(0, 0, first));
            }
            parts.push(local.clone());
            if first + rows < total {
                parts.push(all.narrow(0, first + rows, total - first - rows));
            }
            whole.push(Tensor::cat(parts, 0));
            share = total as f64 / rows as f64;
        }
        let output = barlow_twins_loss(&whole, self.lambda)?;
        let loss = if share == 1.0 {
            output.loss
        } else {
            // Value L, gradient share · ∂L (the detached copy carries no gradient).
            output.loss.clone()
                + (output.loss.clone() - output.loss.detach()).mul_scalar(share - 1.0)
        };
        Ok(LossOutput::new(loss.mul_scalar(self.loss_scale), output.terms))
    }
}

/// `(z − mean) / sqrt(var + ε)` per column, with the biased batch variance.
fn standardise(z: Tensor<2>) -> Tensor<2> {
    let (variance, mean) = z.clone().var_mean_bias(0);
    (z - mean) / variance.add_scalar(STANDARDISE_EPSILON).sqrt()
}
