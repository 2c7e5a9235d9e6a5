//! Minibatch estimators of the aggregate posterior q(z) and the KL decomposition of
//! β-TCVAE (Chen, Li, Grosse, Duvenaud, "Isolating Sources of Disentanglement in VAEs",
//! NeurIPS 2018).
//!
//! The averaged KL term of a VAE splits into three parts,
//!
//! ```text
//! E_x KL(q(z|x) ‖ p(z)) = I_q(x; z)                       mutual information
//!                       + KL(q(z) ‖ Π_k q(z_k))           total correlation
//!                       + Σ_k KL(q(z_k) ‖ p(z_k))         dimension-wise KL
//! ```
//!
//! and each part is estimated on a minibatch {z_i ~ q(z|x_i)} from the B×B×K cross term
//! `log N(z_ik; μ_jk, σ²_jk)`. **Memory:** formed with Burn's tensor ops
//! ([`TcAlgorithm::Materialised`]), that cross term (and a few temporaries of the same size,
//! more under autodiff) holds B²K values — 4·B²·K bytes in f32, i.e. 268 MB at B = 1024,
//! K = 64. With the default `flex-kernels` feature, [`TcAlgorithm::Auto`] computes the same
//! terms on the flex backend with `infobound_kernels::gaussian_mixture_log_densities`, which
//! streams over the posteriors forward and backward in O(B·K + B²) memory (the B² for the MSS
//! weight matrix and, under autodiff, the responsibilities that the backward reuses); every
//! other backend keeps the tensor ops.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::EstimatorError;
use crate::gaussian::{log_normal_diag_unchecked, log_standard_normal, logsumexp_unchecked};
use crate::validate;

/// Which minibatch estimator of log q(z) to use (Chen et al. 2018, §3 and Appendix C).
///
/// The default is [`TcEstimator::Mws`], the estimator that the authors' released code
/// (rtqichen/beta-tcvae) uses unless `--mss` is given. Among the stratified variants,
/// [`TcEstimator::MssPaper`] is the paper's definition and the one to prefer for new work;
/// [`TcEstimator::MssReleased`] reproduces the matrix the released code builds (see
/// [`MssLayout::Released`]) and exists to reproduce published numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TcEstimator {
    /// Minibatch weighted sampling:
    /// `log q(z_i) ≈ logsumexp_j Σ_k log N(z_ik; μ_jk, σ²_jk) − log(B·N)`.
    ///
    /// The mixture has B terms but is divided by B·N, so compared with the MSS estimates
    /// log q(z) is shifted by about −log N and log Π_k q(z_k) by −K log N: MI carries
    /// +log N, TC +(K − 1) log N and dimension-wise KL −K log N. The shifts are constants
    /// (no effect on gradients) but make MWS values not comparable to MSS values in logs.
    #[default]
    Mws,
    /// Minibatch stratified sampling with the released code's weight matrix.
    MssReleased,
    /// Minibatch stratified sampling with the paper's weight matrix.
    MssPaper,
}

/// Layout of the B×B importance-weight matrix of minibatch stratified sampling (MSS).
///
/// With M = B − 1 and dataset size N, the paper gives sample i's own posterior the weight
/// 1/N, one other sample the stratum weight (N − M)/(N·M), and every remaining sample 1/M.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MssLayout {
    /// Row i: 1/N at column i, (N − M)/(N·M) at column (i + 1) mod B, 1/M elsewhere
    /// (Chen et al. 2018, Appendix C).
    Paper,
    /// The matrix as rtqichen/beta-tcvae builds it: 1/N in column 0 and (N − M)/(N·M) in
    /// column 1 of every row, and also at row M − 1, column 0; 1/M elsewhere. The weights do
    /// not follow the sample's own index, so the estimate depends on the batch order.
    Released,
}

/// How [`kl_decomposition_with`] computes the log-densities of the minibatch mixture.
///
/// Both compute the same function; they differ in cost and in floating-point rounding
/// (within ≈ 1e-6 relative in f32, ≈ 1e-12 in f64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TcAlgorithm {
    /// The fused streaming kernels of `infobound-kernels` where the tensors live on flex (with
    /// the `flex-kernels` feature, on by default), Burn's tensor ops elsewhere.
    #[default]
    Auto,
    /// Always Burn's tensor ops over the materialised B × B × K cross term.
    Materialised,
}

/// The per-sample log-densities of the KL decomposition and its three batch means.
///
/// Per-sample tensors are `[batch]`; the three means are one-element tensors that stay in
/// the autodiff graph, so a model can weight them in its loss (β-TCVAE: α·MI + β·TC + γ·dim-KL).
/// Use [`KlDecomposition::values`] to read them as `f64` for logging.
#[derive(Debug, Clone)]
pub struct KlDecomposition {
    /// log q(z_i|x_i) = Σ_k log N(z_ik; μ_ik, σ²_ik).
    pub log_qzx: Tensor<1>,
    /// Minibatch estimate of the aggregate posterior log q(z_i).
    pub log_qz: Tensor<1>,
    /// Minibatch estimate of log Π_k q(z_ik) = Σ_k log q(z_ik).
    pub log_qz_product: Tensor<1>,
    /// log p(z_i) = Σ_k log N(z_ik; 0, 1).
    pub log_pz: Tensor<1>,
    /// mean_i [log q(z_i|x_i) − log q(z_i)].
    pub mutual_information: Tensor<1>,
    /// mean_i [log q(z_i) − log Π_k q(z_ik)].
    pub total_correlation: Tensor<1>,
    /// mean_i [log Π_k q(z_ik) − log p(z_i)].
    pub dimension_wise_kl: Tensor<1>,
}

/// The three batch means of a [`KlDecomposition`] as plain numbers (nats).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KlDecompositionValues {
    /// Index-code mutual information estimate.
    pub mutual_information: f64,
    /// Total correlation estimate.
    pub total_correlation: f64,
    /// Dimension-wise KL estimate.
    pub dimension_wise_kl: f64,
}

impl KlDecomposition {
    /// Reads the three batch means back to the host as `f64` (for logging).
    ///
    /// # Errors
    /// [`EstimatorError::TensorRead`] if the device cannot return the values.
    pub fn values(&self) -> Result<KlDecompositionValues, EstimatorError> {
        let read = |t: &Tensor<1>| t.clone().try_into_scalar::<f64>();
        Ok(KlDecompositionValues {
            mutual_information: read(&self.mutual_information)?,
            total_correlation: read(&self.total_correlation)?,
            dimension_wise_kl: read(&self.dimension_wise_kl)?,
        })
    }
}

/// The MSS log importance-weight matrix, row-major `[batch][batch]`, in natural log.
///
/// Entry (i, j) is the log-weight given to posterior j when estimating q(z_i); see
/// [`MssLayout`] for the two layouts (Chen et al. 2018, Appendix C; M = B − 1).
///
/// # Errors
/// [`EstimatorError::BatchTooSmall`] if `batch < 2`;
/// [`EstimatorError::DatasetSmallerThanBatch`] if `dataset_size < batch`.
pub fn mss_log_importance_weights(
    batch: usize,
    dataset_size: usize,
    layout: MssLayout,
) -> Result<Vec<f64>, EstimatorError> {
    validate::batch_at_least(batch, 2)?;
    if dataset_size < batch {
        return Err(EstimatorError::DatasetSmallerThanBatch {
            dataset_size,
            batch,
        });
    }
    let n = dataset_size as f64;
    let m = (batch - 1) as f64;
    let own = (1.0 / n).ln();
    let stratum = ((n - m) / (n * m)).ln();
    let other = (1.0 / m).ln();
    let mut weights = vec![other; batch * batch];
    match layout {
        MssLayout::Paper => {
            for i in 0..batch {
                weights[i * batch + i] = own;
                weights[i * batch + (i + 1) % batch] = stratum;
            }
        }
        MssLayout::Released => {
            for row in weights.chunks_exact_mut(batch) {
                row[0] = own;
                row[1] = stratum;
            }
            weights[(batch - 2) * batch] = stratum;
        }
    }
    Ok(weights)
}

/// KL decomposition of β-TCVAE (Chen et al., NeurIPS 2018, eq. 2) on one minibatch.
///
/// Inputs are `[B, K]`: one reparameterised sample `z_i ~ q(z|x_i)` per row and the posterior
/// parameters `μ_i`, `logvar_i = log σ²_i` of the same rows; `dataset_size` is N, the number
/// of training examples (required: the estimators weight the batch by it). With
/// `ℓ_ijk = log N(z_ik; μ_jk, σ²_jk)`:
///
/// * MWS: `log q(z_i) = logsumexp_j Σ_k ℓ_ijk − log(B·N)`,
///   `log Π_k q(z_ik) = Σ_k [logsumexp_j ℓ_ijk − log(B·N)]`;
/// * MSS: the constant `−log(B·N)` is replaced by the log-weight matrix `W_ij` of
///   [`mss_log_importance_weights`] inside each logsumexp.
///
/// The sum of the three returned means equals `mean_i [log q(z_i|x_i) − log p(z_i)]` exactly.
/// The result is differentiable with respect to all three inputs. Cost: O(B²K) time; memory
/// O(B·K + B²) on flex with the default `flex-kernels` feature, O(B²K) elsewhere (see the
/// module docs).
///
/// # Errors
/// [`EstimatorError::ShapeMismatch`] if the shapes differ or K = 0,
/// [`EstimatorError::BatchTooSmall`] if B < 2,
/// [`EstimatorError::DatasetSmallerThanBatch`] if N < B,
/// [`EstimatorError::NonFinite`] if an input holds NaN or ±∞.
pub fn kl_decomposition(
    z: Tensor<2>,
    mu: Tensor<2>,
    logvar: Tensor<2>,
    dataset_size: usize,
    estimator: TcEstimator,
) -> Result<KlDecomposition, EstimatorError> {
    kl_decomposition_with(
        z,
        mu,
        logvar,
        dataset_size,
        estimator,
        TcAlgorithm::default(),
    )
}

/// [`kl_decomposition`] with the caller's choice of [`TcAlgorithm`] (the same estimates; the
/// default fuses the B × B × K work on flex).
///
/// # Errors
/// As [`kl_decomposition`].
pub fn kl_decomposition_with(
    z: Tensor<2>,
    mu: Tensor<2>,
    logvar: Tensor<2>,
    dataset_size: usize,
    estimator: TcEstimator,
    algorithm: TcAlgorithm,
) -> Result<KlDecomposition, EstimatorError> {
    let [batch, latent] = z.dims();
    validate::same_shape("mu", &mu, [batch, latent])?;
    validate::same_shape("logvar", &logvar, [batch, latent])?;
    if latent == 0 {
        return Err(EstimatorError::ShapeMismatch {
            what: "z (needs at least one latent dimension)",
            expected: vec![batch, 1],
            found: vec![batch, 0],
        });
    }
    validate::batch_at_least(batch, 2)?;
    if dataset_size < batch {
        return Err(EstimatorError::DatasetSmallerThanBatch {
            dataset_size,
            batch,
        });
    }
    validate::all_finite("z", &z)?;
    validate::all_finite("mu", &mu)?;
    validate::all_finite("logvar", &logvar)?;

    let log_pz = log_standard_normal(z.clone())
        .sum_dim(1)
        .squeeze_dim::<1>(1);
    let [log_qzx, log_qz, log_qz_product] = match algorithm {
        #[cfg(feature = "flex-kernels")]
        TcAlgorithm::Auto => fused(z, mu, logvar, dataset_size, estimator)?,
        #[cfg(not(feature = "flex-kernels"))]
        TcAlgorithm::Auto => materialised(z, mu, logvar, dataset_size, estimator)?,
        TcAlgorithm::Materialised => materialised(z, mu, logvar, dataset_size, estimator)?,
    };

    Ok(KlDecomposition {
        mutual_information: (log_qzx.clone() - log_qz.clone()).mean(),
        total_correlation: (log_qz.clone() - log_qz_product.clone()).mean(),
        dimension_wise_kl: (log_qz_product.clone() - log_pz.clone()).mean(),
        log_qzx,
        log_qz,
        log_qz_product,
        log_pz,
    })
}

/// The MSS layout of a stratified estimator (`None` for MWS).
fn mss_layout(estimator: TcEstimator) -> Option<MssLayout> {
    match estimator {
        TcEstimator::Mws => None,
        TcEstimator::MssReleased => Some(MssLayout::Released),
        TcEstimator::MssPaper => Some(MssLayout::Paper),
    }
}

/// `[log q(z_i|x_i), log q(z_i), log Π_k q(z_ik)]` by infobound-kernels' streaming kernels:
/// MWS is the mixture with the uniform log-weight `−log(B·N)`, MSS the one with the matrix of
/// [`mss_log_importance_weights`].
#[cfg(feature = "flex-kernels")]
fn fused(
    z: Tensor<2>,
    mu: Tensor<2>,
    logvar: Tensor<2>,
    dataset_size: usize,
    estimator: TcEstimator,
) -> Result<[Tensor<1>; 3], EstimatorError> {
    use infobound_kernels::{MixtureLogWeights, gaussian_mixture_log_densities};
    let [batch, _] = z.dims();
    let weights = match mss_layout(estimator) {
        None => MixtureLogWeights::Uniform(-((batch as f64) * (dataset_size as f64)).ln()),
        Some(layout) => {
            MixtureLogWeights::Matrix(mss_log_importance_weights(batch, dataset_size, layout)?)
        }
    };
    let densities = gaussian_mixture_log_densities(z, mu, logvar, &weights)
        .map_err(|error| EstimatorError::Kernel(error.to_string()))?;
    Ok([
        densities.own,
        densities.mixture,
        densities.product_of_marginals,
    ])
}

/// `[log q(z_i|x_i), log q(z_i), log Π_k q(z_ik)]` from Burn's tensor ops over the
/// materialised B × B × K cross term.
fn materialised(
    z: Tensor<2>,
    mu: Tensor<2>,
    logvar: Tensor<2>,
    dataset_size: usize,
    estimator: TcEstimator,
) -> Result<[Tensor<1>; 3], EstimatorError> {
    let [batch, _] = z.dims();
    let log_qzx = log_normal_diag_unchecked(z.clone(), mu.clone(), logvar.clone())
        .sum_dim(1)
        .squeeze_dim::<1>(1);

    // cross[i, j, k] = log N(z_ik; μ_jk, σ²_jk), broadcast from [B, 1, K] against [1, B, K].
    let cross = log_normal_diag_unchecked(
        z.clone().unsqueeze_dim::<3>(1),
        mu.unsqueeze_dim::<3>(0),
        logvar.unsqueeze_dim::<3>(0),
    );
    let joint = cross.clone().sum_dim(2);
    let (log_qz, log_qz_per_dim) = match mss_layout(estimator) {
        None => {
            let log_bn = ((batch as f64) * (dataset_size as f64)).ln();
            (
                logsumexp_unchecked(joint, 1).sub_scalar(log_bn),
                logsumexp_unchecked(cross, 1).sub_scalar(log_bn),
            )
        }
        Some(layout) => {
            let weights = mss_log_importance_weights(batch, dataset_size, layout)?;
            let weights = Tensor::<3>::from_data(
                TensorData::new(weights, [batch, batch, 1]),
                (&z.device(), z.dtype()),
            );
            (
                logsumexp_unchecked(joint + weights.clone(), 1),
                logsumexp_unchecked(cross + weights, 1),
            )
        }
    };
    let log_qz = log_qz.reshape([batch]);
    let log_qz_product = log_qz_per_dim.sum_dim(2).reshape([batch]);
    Ok([log_qzx, log_qz, log_qz_product])
}

/// Total correlation `mean_i [log q(z_i) − log Π_k q(z_ik)]` with minibatch weighted
/// sampling; shorthand for the `total_correlation` field of
/// [`kl_decomposition`]`(.., TcEstimator::Mws)` (Chen et al., NeurIPS 2018).
///
/// # Errors
/// As [`kl_decomposition`].
pub fn total_correlation_mws(
    z: Tensor<2>,
    mu: Tensor<2>,
    logvar: Tensor<2>,
    dataset_size: usize,
) -> Result<Tensor<1>, EstimatorError> {
    kl_decomposition(z, mu, logvar, dataset_size, TcEstimator::Mws).map(|d| d.total_correlation)
}

/// Total correlation `mean_i [log q(z_i) − log Π_k q(z_ik)]` with minibatch stratified
/// sampling in the paper's layout ([`TcEstimator::MssPaper`]); shorthand for
/// [`kl_decomposition`] (Chen et al., NeurIPS 2018, Appendix C).
///
/// # Errors
/// As [`kl_decomposition`].
pub fn total_correlation_mss(
    z: Tensor<2>,
    mu: Tensor<2>,
    logvar: Tensor<2>,
    dataset_size: usize,
) -> Result<Tensor<1>, EstimatorError> {
    kl_decomposition(z, mu, logvar, dataset_size, TcEstimator::MssPaper)
        .map(|d| d.total_correlation)
}
