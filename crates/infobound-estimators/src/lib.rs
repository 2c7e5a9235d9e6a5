//! Information-theoretic estimators on Burn tensors, for α-TCVAE, β-TCVAE and MVEB.
//!
//! * [`gaussian`]: diagonal-Gaussian log-densities, the analytic KL to N(0, I), [`logsumexp`].
//! * [`total_correlation`]: the β-TCVAE KL decomposition (mutual information, total
//!   correlation, dimension-wise KL) with the MWS and MSS minibatch estimators
//!   (Chen et al., NeurIPS 2018).
//! * [`alpha_tc`]: the VIB and CEB terms of the α-TCVAE bound and their weights
//!   (Meo et al., ICLR 2024).
//! * [`score`]: the vMF-kernel score estimator and entropy surrogate of MVEB
//!   (Wen et al., TPAMI 2024), plus two clearly labelled variants that are not in that paper.
//! * [`linalg`]: the SPD solve those estimators need (host f64 Cholesky with `faer`).
//!
//! The functions take tensors (and never name a backend); they work on any Burn device, with or
//! without autodiff, in f32 or f64. Bad input is reported as an [`EstimatorError`].
//!
//! # Example
//!
//! ```
//! use burn::prelude::*;
//! use infobound_estimators::{
//!     EstimatorError, TcEstimator, VmfScoreConfig, VmfScoreEstimator, kl_decomposition,
//! };
//!
//! fn losses(
//!     z: Tensor<2>,
//!     mu: Tensor<2>,
//!     logvar: Tensor<2>,
//!     embeddings: Tensor<2>,
//! ) -> Result<Tensor<1>, EstimatorError> {
//!     // β-TCVAE: weight the three KL parts; N = dataset size.
//!     let kl = kl_decomposition(z, mu, logvar, 737_280, TcEstimator::MssPaper)?;
//!     let tcvae =
//!         kl.mutual_information + kl.total_correlation.mul_scalar(6.0) + kl.dimension_wise_kl;
//!     // MVEB: entropy surrogate of unit-norm embeddings (gradient −S/B, score held constant).
//!     let score = VmfScoreEstimator::new(VmfScoreConfig::default())?.estimate(embeddings.clone())?;
//!     Ok(tcvae - score.entropy_surrogate(embeddings)?)
//! }
//! ```

pub mod alpha_tc;
mod error;
pub mod gaussian;
pub mod linalg;
pub mod score;
pub mod total_correlation;
mod validate;
mod workspace;

pub use alpha_tc::{
    AlphaTcTerms, AlphaTcWeights, CebVariant, CebWeighting, alpha_tc_regulariser,
    annealed_capacity, capacity_penalty, ceb_term, vib_term,
};
pub use error::EstimatorError;
pub use gaussian::{kl_to_standard_normal, log_normal_diag, log_standard_normal, logsumexp};
pub use linalg::{spd_solve, spd_solve_conjugate_gradient, spd_solve_tensor_ops};
pub use score::{
    RbfSteinConfig, RbfSteinEstimator, ScoreEstimate, ScoreSolver, VmfScoreConfig,
    VmfScoreEstimator, VmfScoreVariant,
};
pub use total_correlation::{
    KlDecomposition, KlDecompositionValues, MssLayout, TcAlgorithm, TcEstimator, kl_decomposition,
    kl_decomposition_with, mss_log_importance_weights, total_correlation_mss,
    total_correlation_mws,
};

/// The crate README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctest;
