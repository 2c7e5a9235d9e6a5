//! MVEB (Wen, Wang, Liu, Xu, "MVEB: Self-Supervised Learning with Multi-View Entropy
//! Bottleneck", TPAMI 46(9), 2024), as in the released code (wlj6816/MVEB).
//!
//! With `z^v` the L2-normalised online projections of the V views (2 global first), `t^1, t^2`
//! the normalised target projections of the global views and `m = (t^1 + t^2)/2` (not
//! re-normalised):
//!
//! `A = (1/V) [mean_i ⟨z_i^1, t_i^2⟩ + mean_i ⟨z_i^2, t_i^1⟩ + Σ_{v≥3} mean_i ⟨z_i^v, m_i⟩]`,
//! `E = (1/V) Σ_v mean_i ⟨−sg(S^v_i), z^v_i⟩` with `S^v` the vMF-kernel score estimate on view
//! v's batch (per device under data-parallel training, or on every replica's embeddings with a
//! gathering [`super::ScoreSupport`]), and `L = −A − λ E`.

use burn::tensor::Tensor;
use infobound_estimators::{ScoreEstimate, VmfScoreConfig, VmfScoreEstimator};
use serde::{Deserialize, Serialize};

use super::{
    ScoreSupport, SslMethod, SslViews, l2_normalize, mean_inner, non_negative, required,
    unit_interval,
};
use crate::loss::detached;
use crate::{LossOutput, ModelError};

/// MVEB hyper-parameters; the defaults are the paper's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MvebConfig {
    /// Weight λ of the entropy surrogate (MVEB: 0.01).
    pub entropy_weight: f64,
    /// Base EMA momentum of the target network (MVEB: 0.996).
    pub base_momentum: f64,
    /// The vMF score estimator (defaults: MVEB's η = 0.01, τ ≥ 0.1).
    pub score: VmfScoreConfig,
}

impl Default for MvebConfig {
    fn default() -> Self {
        Self {
            entropy_weight: 0.01,
            base_momentum: 0.996,
            score: VmfScoreConfig::default(),
        }
    }
}

/// MVEB loss `−A − λ E` (module docs) of the online projections `online` (V ≥ 2 views, the two
/// global views first) against the target projections of the global views, with each view's
/// score estimated by `estimator` on the samples `support` returns (the local batch with
/// [`super::LocalScoreSupport`]).
///
/// # Shapes
/// - `online`: V tensors `[B, d]`
/// - `target`: `[t^1, t^2]`, each `[B, d]` (detached here)
///
/// Terms: `alignment` (A), `entropy_surrogate` (E), `kernel_width` (the vMF width τ averaged
/// over views).
///
/// # Errors
/// [`ModelError::Views`] for fewer than 2 views, [`ModelError::Estimator`] if the estimator
/// rejects a view (B < 2, non-finite values), [`ModelError::DataParallel`] from `support`.
pub fn mveb_loss(
    online: &[Tensor<2>],
    target: [Tensor<2>; 2],
    estimator: &VmfScoreEstimator,
    entropy_weight: f64,
    support: &dyn ScoreSupport,
) -> Result<LossOutput, ModelError> {
    if online.len() < 2 {
        return Err(ModelError::Views(format!(
            "MVEB needs the 2 global views, got {} online views",
            online.len()
        )));
    }
    let views = online.len() as f64;
    let z: Vec<Tensor<2>> = online.iter().cloned().map(l2_normalize).collect();
    let [t1, t2] = target.map(|target| l2_normalize(target.detach()));
    let mut alignment = mean_inner(z[0].clone(), t2.clone()) + mean_inner(z[1].clone(), t1.clone());
    if z.len() > 2 {
        let mean_target = (t1 + t2).mul_scalar(0.5);
        for local in &z[2..] {
            alignment = alignment + mean_inner(local.clone(), mean_target.clone());
        }
    }
    let alignment = alignment.mul_scalar(1.0 / views);

    let mut entropy: Option<Tensor<1>> = None;
    let mut width_sum: Option<Tensor<1>> = None;
    for (index, view) in z.iter().enumerate() {
        let [rows, _] = view.dims();
        let (samples, first_row) = support.samples(index, view.clone().detach())?;
        let estimate = estimator.estimate(samples)?;
        width_sum = Some(match width_sum {
            Some(sum) => sum + estimate.kernel_width.clone(),
            None => estimate.kernel_width.clone(),
        });
        let local = ScoreEstimate {
            score: estimate.score.narrow(0, first_row, rows),
            kernel_width: estimate.kernel_width,
        };
        let surrogate = local.entropy_surrogate(view.clone())?;
        entropy = Some(match entropy {
            Some(sum) => sum + surrogate,
            None => surrogate,
        });
    }
    let entropy = entropy
        .ok_or_else(|| ModelError::Views("MVEB needs at least one view".into()))?
        .mul_scalar(1.0 / views);
    let width = width_sum
        .ok_or_else(|| ModelError::Views("MVEB needs at least one view".into()))?
        .mul_scalar(1.0 / views);
    let loss = -alignment.clone() - entropy.clone().mul_scalar(entropy_weight);
    Ok(LossOutput::new(
        loss,
        vec![
            ("alignment", detached(&alignment)),
            ("entropy_surrogate", detached(&entropy)),
            ("kernel_width", detached(&width)),
        ],
    ))
}

impl SslMethod for MvebConfig {
    fn validate(&self) -> Result<(), ModelError> {
        non_negative("entropy_weight", self.entropy_weight)?;
        unit_interval("base_momentum", self.base_momentum)?;
        VmfScoreEstimator::new(self.score)?;
        Ok(())
    }

    fn uses_target_network(&self) -> bool {
        true
    }

    fn base_momentum(&self) -> Option<f64> {
        Some(self.base_momentum)
    }

    fn loss(&self, views: &SslViews, support: &dyn ScoreSupport) -> Result<LossOutput, ModelError> {
        let shape = views.online[0].dims();
        let target = required("target", &views.target, 2, shape)?;
        mveb_loss(
            &views.online,
            [target[0].clone(), target[1].clone()],
            &VmfScoreEstimator::new(self.score)?,
            self.entropy_weight,
            support,
        )
    }
}
