//! Where MVEB's score estimator takes its samples from under data-parallel training.
//!
//! MVEB (Wen et al., TPAMI 2024) estimates the score `S_i ≈ ∇ log q(z_i)` of every view from
//! the B embeddings of that view on the same device, B being the per-device batch. A
//! [`ScoreSupport`] lets a data-parallel trainer widen that sample set to the embeddings of
//! every replica: the score of the local rows is then the one a single device would estimate
//! on the whole batch. The samples only enter the score, which is a constant (stop-gradient),
//! so gathering them needs no gradient exchange.

use burn::tensor::Tensor;

use crate::ModelError;

/// The sample set of the vMF score estimator for one view.
pub trait ScoreSupport: Send + Sync {
    /// Given this replica's embeddings `local` (`[B, d]`, detached; MVEB's unit-norm
    /// embeddings, Barlow Twins' projections) of view `view`,
    /// returns the `[B', d]` samples to estimate the score on and the row at which `local`'s
    /// B rows start among them. Every replica calls it once per view, views in order.
    ///
    /// # Errors
    /// [`ModelError::DataParallel`] when the other replicas' samples cannot be obtained.
    fn samples(&self, view: usize, local: Tensor<2>) -> Result<(Tensor<2>, usize), ModelError>;
}

/// The paper's choice: each device estimates the score from its own embeddings only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalScoreSupport;

impl ScoreSupport for LocalScoreSupport {
    fn samples(&self, _view: usize, local: Tensor<2>) -> Result<(Tensor<2>, usize), ModelError> {
        Ok((local, 0))
    }
}
