//! Kernel score estimators: an estimate S_i ≈ ∇_z log q(z)|_{z_i} at each sample of a batch,
//! from the samples alone (Stein's identity, ridge-regularised).
//!
//! * [`VmfScoreEstimator`] with [`VmfScoreVariant::Mveb`]: the estimator of MVEB (Wen, Wang,
//!   Liu, Xu, "MVEB: Self-Supervised Learning with Multi-View Entropy Bottleneck", TPAMI 46(9),
//!   2024), a Stein gradient estimator with the von Mises–Fisher kernel on unit-norm embeddings.
//! * [`VmfScoreVariant::SphereStein`]: **not in the MVEB paper** — the same kernel with the
//!   Stein identity written on the sphere S^{d−1} instead of R^d.
//! * [`RbfSteinEstimator`]: **not in the MVEB paper** — the RBF-kernel Stein gradient
//!   estimator of Li & Turner, "Gradient Estimators for Implicit Models", ICLR 2018.
//!
//! All three return the score as a constant tensor (no autodiff graph): MVEB maximises the
//! entropy of the embeddings with the surrogate `mean_i ⟨−sg(S_i), z_i⟩`, whose gradient with
//! respect to z_i is −S_i / B ([`ScoreEstimate::entropy_surrogate`]).
//!
//! **Where it runs.** By default ([`ScoreSolver::Host`]) everything after reading Z is done on
//! the host in f64 with `faer`: the lower triangle of the Gram matrix Z Zᵀ (half a GEMM; for
//! wide batches over column blocks of Z, so that no B × d f64 copy is made), the width by
//! selection over the B²/2 distances of one triangle, the kernel by a vectorised exp over that
//! triangle in place of the Gram matrix, and the ridge solve by an in-place Cholesky
//! factorisation and triangular solves (two halves of the right-hand sides on two threads),
//! the result written straight into the output's row-major layout. The large f64 buffers are
//! reused between calls on a thread (the crate's `workspace` module: fresh pages cost more
//! than the arithmetic at these sizes). The Gram matrix is
//! formed in f64 even for f32 samples because its rounding is amplified by the condition number
//! of K + ηI. Max relative error against `vmf_score.json` (entries below 1e-3 of the largest
//! compared absolutely) for each precision choice, samples rounded to f32 first:
//!
//! | choice | axes 4×3 | random 16×8 | random 64×32 | width-clamped 8×3 |
//! |---|---|---|---|---|
//! | f64 throughout (this path) | 2.4e-8 | 2.0e-6 | 1.8e-5 | 1.1e-2 |
//! | f32 Gram matrix, rest f64 | 1.6e-7 | 1.7e-5 | 8.9e-5 | 2.1 |
//! | f32 Cholesky and solve | 3.5e-7 | 1.9e-5 | 2.0e-4 | 0.43 |
//! | f32 Cholesky + 1 refinement step (f64 residual) | 2.4e-8 | 2.0e-6 | 1.8e-5 | 1.5e-2 |
//! | f32 Cholesky + 2 refinement steps | 2.4e-8 | 2.0e-6 | 1.8e-5 | 1.1e-2 |
//!
//! The f64 row is the floor set by rounding z to f32 (the f64 estimate of the f32-rounded
//! samples differs from the f64 reference by that much). An f32 Gram matrix is wrong where the
//! width is clamped; f32 Cholesky needs a refinement step, whose f64 residual is a B × B × d
//! product as costly as the f64 solve it would replace (at B = 512: f64 factorisation + solve
//! 3.1 ms, f32 2.3 ms, one refinement step +≈ 2 ms), so the host path stays in f64.
//!
//! [`ScoreSolver::DeviceF64`] runs the same steps with tensor ops on Z's device in f64 and reads
//! nothing back (for GPU training steps), solving by a number of conjugate-gradient steps set
//! before the solve ([`VmfScoreConfig::device_iterations_for`], scaled with B); [`ScoreSolver::DeviceInputDtype`] does so in Z's
//! dtype, for backends without f64. Conjugate-gradient steps to reach a max relative error
//! (as above) against the reference score (reference batches) or the host f64 Cholesky solve
//! (Gaussian unit rows as in the bench), in f64 / in f32 (f32: the best error reached, with
//! its step among steps 1, 5, 9, …), measured with this crate's solver by
//! `examples/cg_iterations.rs` (bisection on the step count; flex):
//!
//! | batch (B × d) | κ(K + ηI) | 1e-4 | 1e-6 | 1e-9 | f32: best (at step) | default steps |
//! |---|---|---|---|---|---|---|
//! | axes 4 × 3 | 9.0 | 4 | 4 | 4 | 3.0e-7 (5) | 36 |
//! | random 16 × 8 | 71 | 17 | 17 | 18 | 1.6e-5 (21) | 40 |
//! | random 64 × 32 | 134 | 26 | 32 | 42 | 8.9e-4 (33) | 48 |
//! | width-clamped 8 × 3 | 7.2e6 | 12 | 12 | > 160 | 3.1 (1): wrong in f32 | 38 |
//! | Gaussian 128 × 2048 | 100 | 10 | 13 | 17 | 6.4e-4 (13) | 55 |
//! | Gaussian 256 × 256 | 369 | 23 | 29 | 39 | 2.0e-3 (37) | 64 |
//! | Gaussian 512 × 128 | 979 | 36 | 44 | 60 | 5.4e-3 (37) | 78 |
//! | Gaussian 1024 × 128 | 2.3e3 | 43 | 57 | 75 | 1.7e-2 (53) | 96 |
//!
//! The default step count, [`VmfScoreConfig::device_iterations_for`], grows with √B to stay
//! above the 1e-9 column; more steps do not hurt f32, whose error floors where the rounding of
//! K sets it. On a CPU these steps cost far
//! more arithmetic than a Cholesky factorisation (a product of B × B by B × m per step): they
//! exist for GPUs, where the row-by-row tensor-op Cholesky they replace was launch-bound.
//!
//! **Cost** (flex CPU, f32 input, `INFOBOUND_BENCH_QUICK=1 cargo bench … --bench estimators`
//! on the 2-core bench machine; figures against PyTorch in docs/benchmarks.md): (B, d) =
//! (128, 2048) 1.7 ms, (256, 256) 1.4 ms, (512, 128) 4.0 ms.

use std::ops::Range;

use burn::prelude::*;
use burn::tensor::{DType, TensorReadError};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch};
use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::linalg::triangular_solve::{
    solve_lower_triangular_in_place, solve_upper_triangular_in_place,
};
use faer::reborrow::ReborrowMut;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use pulp::{Arch, Simd, WithSimd};
use serde::{Deserialize, Serialize};

use crate::EstimatorError;
use crate::linalg::{conjugate_gradient_unchecked, exp_one, kth_largest_symmetric};
use crate::validate;
use crate::workspace;

/// How far a row norm of z may stray from 1 before the vMF estimators refuse it.
const UNIT_NORM_TOLERANCE: f64 = 1e-3;

/// Which Stein identity the vMF-kernel estimator uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmfScoreVariant {
    /// MVEB (Wen et al., TPAMI 2024): `Ψ_i = Σ_j ∇_{z_j} k(z_i, z_j) = (z_i / τ) Σ_j K_ij`,
    /// the Euclidean Stein identity applied to the vMF kernel.
    #[default]
    Mveb,
    /// **Not in the MVEB paper.** Stein's identity on the sphere S^{d−1}, whose tangential
    /// gradient and mean-curvature term add
    /// `−Σ_k K_ik [(z_k·z_i) z_k / τ + (d − 1) z_k]` to Ψ_i.
    SphereStein,
}

/// Where the vMF-kernel score estimator computes once it has Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreSolver {
    /// Z is read to the host and everything after runs there in f64 (`faer` Gram matrix,
    /// selection of the width, kernel, Cholesky solve): the accurate path, with the input
    /// checks (finite, unit-norm rows) and a device→host→device round trip per call. The
    /// default, and what MVEB's released code computes (in its tensors' dtype).
    #[default]
    Host,
    /// Everything with Burn tensor ops on Z's device, in f64 (Z is cast on the device, the
    /// score cast back to Z's dtype): the Gram matrix by a matmul, the width by a device sort
    /// of the B² distances, the kernel, and [`VmfScoreConfig::device_iterations`] steps of
    /// conjugate gradients on K + ηI ([`crate::spd_solve_conjugate_gradient`] without its
    /// checks; about a dozen tensor operations per step, where the row-by-row tensor-op
    /// Cholesky it replaces launched ≈ 15 per row of K). Nothing is read back, so a GPU
    /// training step never waits on the host here; in exchange nothing is checked: non-finite
    /// or non-unit input gives a non-finite or meaningless score, which a training loop's
    /// non-finite guard sees in the loss. Agrees with [`ScoreSolver::Host`] to the reference
    /// tests' tolerances. Needs a backend with f64 (flex, ndarray, cuda; not wgpu).
    DeviceF64,
    /// As [`ScoreSolver::DeviceF64`] in Z's own dtype, for backends without f64 (wgpu). In
    /// f32 the kernel matrix's rounding is amplified by its condition number: fine on
    /// well-conditioned batches (max relative error ≲ 5e-3 on the reference batches) but wrong
    /// where the width is clamped (the width-clamped reference batch: relative error ≈ 3; the
    /// host path's f64 Gram matrix is what keeps that case at 1.1e-2).
    DeviceInputDtype,
}

/// Configuration of the vMF-kernel score estimator; the defaults are MVEB's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VmfScoreConfig {
    /// Ridge η added to the kernel matrix before the solve (MVEB: 0.01).
    pub eta: f64,
    /// Lower clamp of the data-driven kernel width τ (MVEB: 0.1).
    pub min_width: f64,
    /// Use this width τ instead of the data-driven one (MVEB: `None`).
    pub fixed_width: Option<f64>,
    /// Which Stein identity to use (MVEB: [`VmfScoreVariant::Mveb`]).
    pub variant: VmfScoreVariant,
    /// Where to compute ([`ScoreSolver::Host`] unless chosen; our option, not MVEB's).
    pub solver: ScoreSolver,
    /// Conjugate-gradient iterations of the device solvers ([`ScoreSolver::DeviceF64`],
    /// [`ScoreSolver::DeviceInputDtype`]); unused on the host. `None` (the default) scales
    /// them with the batch, [`VmfScoreConfig::device_iterations_for`]; `Some(n)` fixes n.
    /// Our option, not MVEB's.
    pub device_iterations: Option<usize>,
}

impl Default for VmfScoreConfig {
    fn default() -> Self {
        Self {
            eta: 0.01,
            min_width: 0.1,
            fixed_width: None,
            variant: VmfScoreVariant::Mveb,
            solver: ScoreSolver::Host,
            device_iterations: None,
        }
    }
}

impl VmfScoreConfig {
    /// The conjugate-gradient steps the device solvers run for a batch of B samples:
    /// `device_iterations` if set, else `⌈32 + 2√B⌉`. Our rule, from the steps-to-tolerance
    /// table in the module docs (measured with this crate's solver,
    /// `examples/cg_iterations.rs`): each step shrinks the error by about
    /// `(√κ − 1)/(√κ + 1)` and the condition number κ of K + ηI grew roughly like B on the
    /// measured batches, so the steps needed grow like √B. The rule is above the steps to
    /// 1e-9 in f64 on every measured batch but the width-clamped one (which reaches 1e-6 in
    /// 12 steps and no closer to the reference in f64): 48 steps at B = 64, 64 at 256, 78 at
    /// 512, 96 at 1024.
    pub fn device_iterations_for(&self, batch: usize) -> usize {
        self.device_iterations
            .unwrap_or_else(|| (32.0 + 2.0 * (batch as f64).sqrt()).ceil() as usize)
    }
}

/// A score estimate and the kernel width it used.
#[derive(Debug, Clone)]
pub struct ScoreEstimate {
    /// S, `[B, d]`: S_i ≈ ∇_z log q(z) at z_i. A constant (outside any autodiff graph).
    pub score: Tensor<2>,
    /// The kernel width actually used (τ for vMF, σ for RBF), `[1]`, for logging: a tensor so
    /// that the device paths ([`ScoreSolver::DeviceF64`]) need no host read.
    pub kernel_width: Tensor<1>,
}

impl ScoreEstimate {
    /// The kernel width read back to the host.
    ///
    /// # Errors
    /// [`EstimatorError`] if the backend cannot read the tensor back.
    pub fn kernel_width_value(&self) -> Result<f64, EstimatorError> {
        Ok(self.kernel_width.clone().try_into_vec_as::<f64>()?[0])
    }

    /// MVEB's entropy surrogate `mean_i ⟨−sg(S_i), z_i⟩` (Wen et al., TPAMI 2024): with the
    /// score held constant its gradient with respect to z_i is `−S_i / B`, the gradient of the
    /// differential entropy H(z) = −E log q(z). Its value is not an entropy. Pass the same `z`
    /// the score was estimated from, still attached to the model's graph.
    ///
    /// # Errors
    /// [`EstimatorError::ShapeMismatch`] if `z` and the score differ in shape.
    pub fn entropy_surrogate(&self, z: Tensor<2>) -> Result<Tensor<1>, EstimatorError> {
        let [batch, _] = self.score.dims();
        validate::same_shape("z", &z, self.score.dims())?;
        let score = self.score.clone().detach();
        // `mul_scalar(1/B)` rather than `div_scalar(B)`: Burn 0.22's autodiff backward of
        // `div_scalar` rounds the scalar to f32 even for f64 tensors (observed on flex).
        Ok((score * z).sum().mul_scalar(-1.0 / batch as f64))
    }

    /// The part of the score tangent to the sphere at each sample, `S_i − (S_i·z_i) z_i`: the
    /// only part that reaches an encoder through an L2 normalisation.
    ///
    /// # Errors
    /// [`EstimatorError::ShapeMismatch`] if `z` and the score differ in shape.
    pub fn tangential(&self, z: Tensor<2>) -> Result<Tensor<2>, EstimatorError> {
        validate::same_shape("z", &z, self.score.dims())?;
        let z = z.detach();
        let radial = (self.score.clone() * z.clone()).sum_dim(1);
        Ok(self.score.clone() - radial * z)
    }
}

/// The vMF-kernel score estimator of MVEB (Wen et al., TPAMI 2024), with the options of
/// [`VmfScoreConfig`].
///
/// For B unit-norm rows z_i:
/// 1. `C = Z Zᵀ`, `D = 1 − C` (all B² entries, the zero diagonal included);
/// 2. width `τ` = the ⌊B²/2⌋-th largest entry of D, then `τ = max(τ, min_width)`
///    (or `fixed_width`);
/// 3. `K = exp(C / τ)`;
/// 4. `Ψ_i = Σ_j ∇_{z_j} k(z_i, z_j) = (z_i / τ) Σ_j K_ij` (plus the sphere terms of
///    [`VmfScoreVariant::SphereStein`]);
/// 5. `S = −(K + η I)⁻¹ Ψ`, by a Cholesky solve (never an explicit inverse).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VmfScoreEstimator {
    config: VmfScoreConfig,
}

impl VmfScoreEstimator {
    /// Builds the estimator after checking the configuration.
    ///
    /// # Errors
    /// [`EstimatorError::InvalidParameter`] unless `eta`, `min_width` and a given
    /// `fixed_width` are finite and positive and a given `device_iterations` is at least 1.
    pub fn new(config: VmfScoreConfig) -> Result<Self, EstimatorError> {
        validate::positive("eta", config.eta)?;
        validate::positive("min_width", config.min_width)?;
        if let Some(width) = config.fixed_width {
            validate::positive("fixed_width", width)?;
        }
        if let Some(iterations) = config.device_iterations {
            validate::at_least_one("device_iterations", iterations)?;
        }
        Ok(Self { config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &VmfScoreConfig {
        &self.config
    }

    /// Estimates the score at every row of `z` (`[B, d]`, unit-norm rows, B ≥ 2).
    ///
    /// # Errors
    /// [`EstimatorError::BatchTooSmall`] if B < 2, [`EstimatorError::ShapeMismatch`] if d = 0,
    /// [`EstimatorError::NonFinite`] for NaN/∞, [`EstimatorError::NotUnitNorm`] if a row norm
    /// differs from 1 by more than 1e-3, [`EstimatorError::NotPositiveDefinite`] if the solve
    /// fails.
    pub fn estimate(&self, z: Tensor<2>) -> Result<ScoreEstimate, EstimatorError> {
        match self.config.solver {
            ScoreSolver::Host => {}
            ScoreSolver::DeviceF64 => {
                let dtype = z.dtype();
                let estimate = self.estimate_on_device(z.cast(burn::tensor::DType::F64))?;
                return Ok(ScoreEstimate {
                    score: estimate.score.cast(dtype),
                    kernel_width: estimate.kernel_width.cast(dtype),
                });
            }
            ScoreSolver::DeviceInputDtype => return self.estimate_on_device(z),
        }
        let mut samples = HostSamples::read(z)?;
        let (b, d) = (samples.batch, samples.dim);
        for i in 0..b {
            let norm = samples.gram[(i, i)].sqrt();
            if (norm - 1.0).abs() > UNIT_NORM_TOLERANCE {
                return Err(EstimatorError::NotUnitNorm { row: i, norm });
            }
        }
        let width = match self.config.fixed_width {
            Some(width) => width,
            None => samples
                .median_distance(|_, _, gram| 1.0 - gram)
                .max(self.config.min_width),
        };
        // The kernel overwrites the Gram matrix; only the sphere variant needs C afterwards.
        let sphere = self.config.variant == VmfScoreVariant::SphereStein;
        let gram = sphere.then(|| samples.gram.clone());
        let (ridged, row_sums) = samples.ridged_kernel(|_, _, gram| gram / width, self.config.eta);
        let diagonal = row_sums.iter().map(|sum| sum / width).collect();
        let dense = gram.map(|gram| {
            symmetric_from_lower(b, |i, j| {
                let kernel = kernel_entry(&ridged, i, j, self.config.eta);
                kernel * gram[(i, j)] / width + kernel * (d as f64 - 1.0)
            })
        });
        let mixing = SteinMixing { diagonal, dense };
        samples.finish(ridged, &mixing, width)
    }

    /// The steps of [`Self::estimate`] with tensor ops on Z's device, in Z's dtype
    /// ([`ScoreSolver::DeviceF64`], [`ScoreSolver::DeviceInputDtype`]).
    fn estimate_on_device(&self, z: Tensor<2>) -> Result<ScoreEstimate, EstimatorError> {
        let [b, d] = z.dims();
        check_sample_shape(b, d)?;
        let options = (&z.device(), z.dtype());
        let z = z.detach();
        let gram = z.clone().matmul(z.clone().transpose());
        let width: Tensor<1> = match self.config.fixed_width {
            Some(width) => Tensor::full([1], width, options),
            None => {
                // The ⌊B²/2⌋-th largest of the B² distances (1-based), as the host selection.
                let k = b * b / 2;
                let distances = gram.clone().neg().add_scalar(1.0).reshape([b * b]);
                distances
                    .sort_descending(0)
                    .slice(s![k - 1..k])
                    .clamp_min(self.config.min_width)
            }
        };
        let width_2d = width.clone().reshape([1, 1]);
        let kernel = (gram.clone() / width_2d.clone()).exp();
        let row_sums = kernel.clone().sum_dim(1) / width_2d.clone();
        let identity = Tensor::<2>::eye(b, options.0).cast(options.1);
        // Ψ = (diag(Σ_j K_ij / τ) − W) Z, with W = 0 for MVEB.
        let dense = (self.config.variant == VmfScoreVariant::SphereStein)
            .then(|| kernel.clone() * (gram / width_2d).add_scalar(d as f64 - 1.0));
        let ridged = kernel + identity.clone().mul_scalar(self.config.eta);
        let iterations = self.config.device_iterations_for(b);
        let solution = if d > b {
            // As on the host: the B × B mixing matrix as the right-hand sides instead of the
            // B × d Stein term, so each conjugate-gradient step multiplies B × B by B × B; one
            // product with Z follows.
            let mut mixing = identity * row_sums;
            if let Some(dense) = dense {
                mixing = mixing - dense;
            }
            conjugate_gradient_unchecked(ridged, mixing, iterations).matmul(z)
        } else {
            let mut stein = z.clone() * row_sums;
            if let Some(dense) = dense {
                stein = stein - dense.matmul(z);
            }
            conjugate_gradient_unchecked(ridged, stein, iterations)
        };
        Ok(ScoreEstimate {
            score: solution.neg(),
            kernel_width: width,
        })
    }
}

/// Configuration of the RBF-kernel Stein gradient estimator (Li & Turner, ICLR 2018).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RbfSteinConfig {
    /// Ridge η added to the kernel matrix before the solve (default 0.01).
    pub eta: f64,
    /// Lower clamp of the median-heuristic width σ, which keeps K finite for duplicated
    /// samples (default 1e-3).
    pub min_width: f64,
    /// Use this width σ instead of the median heuristic (default `None`).
    pub fixed_width: Option<f64>,
}

impl Default for RbfSteinConfig {
    fn default() -> Self {
        Self {
            eta: 0.01,
            min_width: 1e-3,
            fixed_width: None,
        }
    }
}

/// **Not in the MVEB paper.** The Stein gradient estimator of Li & Turner, "Gradient
/// Estimators for Implicit Models", ICLR 2018, with an RBF kernel, for samples in R^d.
///
/// 1. width σ by the median heuristic: the ⌊B²/2⌋-th largest of the B² pairwise distances
///    ‖z_i − z_j‖ (the same order statistic as MVEB's width), clamped below by `min_width`;
/// 2. `K_ij = exp(−‖z_i − z_j‖² / (2σ²))`;
/// 3. `Ψ_i = Σ_j ∇_{z_j} k(z_i, z_j) = Σ_j K_ij (z_i − z_j) / σ²`;
/// 4. `S = −(K + η I)⁻¹ Ψ` (Cholesky solve).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RbfSteinEstimator {
    config: RbfSteinConfig,
}

impl RbfSteinEstimator {
    /// Builds the estimator after checking the configuration.
    ///
    /// # Errors
    /// [`EstimatorError::InvalidParameter`] unless `eta`, `min_width` and a given
    /// `fixed_width` are finite and positive.
    pub fn new(config: RbfSteinConfig) -> Result<Self, EstimatorError> {
        validate::positive("eta", config.eta)?;
        validate::positive("min_width", config.min_width)?;
        if let Some(width) = config.fixed_width {
            validate::positive("fixed_width", width)?;
        }
        Ok(Self { config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &RbfSteinConfig {
        &self.config
    }

    /// Estimates the score at every row of `z` (`[B, d]`, B ≥ 2).
    ///
    /// # Errors
    /// [`EstimatorError::BatchTooSmall`] if B < 2, [`EstimatorError::ShapeMismatch`] if d = 0,
    /// [`EstimatorError::NonFinite`] for NaN/∞, [`EstimatorError::NotPositiveDefinite`] if the
    /// solve fails.
    pub fn estimate(&self, z: Tensor<2>) -> Result<ScoreEstimate, EstimatorError> {
        let mut samples = HostSamples::read(z)?;
        let b = samples.batch;
        let squared_norms: Vec<f64> = (0..b).map(|i| samples.gram[(i, i)]).collect();
        let squared_distance = |i: usize, j: usize, gram: f64| {
            (squared_norms[i] + squared_norms[j] - 2.0 * gram).max(0.0)
        };
        let width = match self.config.fixed_width {
            Some(width) => width,
            None => samples
                .median_distance(|i, j, gram| squared_distance(i, j, gram).sqrt())
                .max(self.config.min_width),
        };
        let two_var = 2.0 * width * width;
        let (ridged, row_sums) = samples.ridged_kernel(
            |i, j, gram| -squared_distance(i, j, gram) / two_var,
            self.config.eta,
        );
        let inverse_variance = 1.0 / (width * width);
        let mixing = SteinMixing {
            diagonal: row_sums.iter().map(|sum| sum * inverse_variance).collect(),
            dense: Some(symmetric_from_lower(b, |i, j| {
                kernel_entry(&ridged, i, j, self.config.eta) * inverse_variance
            })),
        };
        samples.finish(ridged, &mixing, width)
    }
}

/// The Stein term as a linear map of the samples, `Ψ = (diag(diagonal) − dense) Z`: every
/// estimator here has this form, which lets [`HostSamples::finish`] pick the cheaper order of
/// solve and product.
struct SteinMixing {
    diagonal: Vec<f64>,
    /// Symmetric B × B, both triangles filled.
    dense: Option<Mat<f64>>,
}

/// The kernel entry K_ij (i ≥ j) from the lower triangle of K + ηI.
fn kernel_entry(ridged: &Mat<f64>, i: usize, j: usize, eta: f64) -> f64 {
    ridged[(i, j)] - if i == j { eta } else { 0.0 }
}

/// A full symmetric B × B matrix from a function evaluated on its lower triangle (i ≥ j).
fn symmetric_from_lower(batch: usize, lower: impl Fn(usize, usize) -> f64) -> Mat<f64> {
    let mut full = Mat::<f64>::zeros(batch, batch);
    for j in 0..batch {
        for i in j..batch {
            let value = lower(i, j);
            full[(i, j)] = value;
            full[(j, i)] = value;
        }
    }
    full
}

/// The column loop of [`HostSamples::ridged_kernel`] under pulp's run-time dispatch, so that
/// the argument, the exp and the row-sum updates compile for the CPU's vector instructions
/// (AVX2 + FMA where present; the crate is built for baseline x86-64): the kernel phase went
/// from 0.24 to 0.10 ms at B = 256, from 0.99 to 0.39 ms at B = 512.
struct KernelColumns<'a, F> {
    ridged: &'a mut Mat<f64>,
    row_sums: &'a mut [f64],
    argument: F,
    eta: f64,
}

impl<F: Fn(usize, usize, f64) -> f64> WithSimd for KernelColumns<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let row_sums = self.row_sums;
        for j in 0..row_sums.len() {
            let column = &mut self.ridged.col_as_slice_mut(j)[j..];
            for (offset, value) in column.iter_mut().enumerate() {
                *value = exp_one((self.argument)(j + offset, j, *value));
            }
            // K_ij (i > j) belongs to row i and, by symmetry, to row j.
            row_sums[j] += column.iter().sum::<f64>();
            for (sum, value) in row_sums[j + 1..].iter_mut().zip(&column[1..]) {
                *sum += value;
            }
            column[0] += self.eta;
        }
    }
}

/// From this size on the Cholesky factorisation of K + ηI uses `faer`'s threads. Below it the
/// sequential factorisation was faster on the 2-core bench machine (B = 256: 0.17 against
/// 0.31 ms; B = 512: 1.22 against 1.58 ms), above it slower (B = 1024: 8.0 against 7.0 ms;
/// B = 2048: 63 against 38 ms). Our measurement (`examples`-style phase timing, session 11).
const PARALLEL_CHOLESKY_FROM: usize = 768;

/// `X ← (L Lᵀ)⁻¹ X` in place for the lower Cholesky factor L, by forward and back
/// substitution. The right-hand sides are split in two halves of columns that are solved
/// independently, on two threads when `par` allows: each column's arithmetic is the same
/// either way, so the result does not depend on the thread count. (`faer`'s own threaded
/// triangular solve was slower than its sequential one at these sizes: B = 256, 256 columns,
/// 0.83 against 0.75 ms; the two halves took 0.62 ms.)
fn cholesky_solve_in_place(factor: MatRef<'_, f64>, rhs: MatMut<'_, f64>, par: Par) {
    let solve = |mut part: MatMut<'_, f64>| {
        solve_lower_triangular_in_place(factor, part.rb_mut(), Par::Seq);
        solve_upper_triangular_in_place(factor.transpose(), part, Par::Seq);
    };
    let columns = rhs.ncols();
    let (left, right) = rhs.split_at_col_mut(columns / 2);
    both(par, || solve(left), || solve(right));
}

/// A batch of samples `[B, d]` the estimators accept: B ≥ 2 rows, d ≥ 1 columns.
fn check_sample_shape(batch: usize, dim: usize) -> Result<(), EstimatorError> {
    validate::batch_at_least(batch, 2)?;
    if dim == 0 {
        return Err(EstimatorError::ShapeMismatch {
            what: "z (needs at least one column)",
            expected: vec![batch, 1],
            found: vec![batch, 0],
        });
    }
    Ok(())
}

/// The samples as read from the tensor, in their own precision. f32 samples stay f32 (half the
/// memory of a widened copy); they are widened to f64, exactly, block by block where a product
/// needs them.
enum HostValues {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl HostValues {
    /// Columns `columns` of Z (`[B, d]` row-major) widened into `out` as the column-major
    /// `columns.len() × B` block of Zᵀ.
    fn widen_columns(&self, dim: usize, columns: Range<usize>, out: &mut [f64]) {
        let width = columns.len();
        match self {
            Self::F32(values) => {
                for (block, row) in out.chunks_exact_mut(width).zip(values.chunks_exact(dim)) {
                    for (wide, &value) in block.iter_mut().zip(&row[columns.clone()]) {
                        *wide = f64::from(value);
                    }
                }
            }
            Self::F64(values) => {
                for (block, row) in out.chunks_exact_mut(width).zip(values.chunks_exact(dim)) {
                    block.copy_from_slice(&row[columns.clone()]);
                }
            }
        }
    }
}

/// How [`HostSamples`] keeps Z.
enum SampleStore {
    /// Zᵀ widened to f64 (column-major d × B, i.e. Z row-major), formed whole for the Gram
    /// matrix when B · d ≤ [`WIDENED_BLOCK_VALUES`] or d ≤ B (where the solve needs it as its
    /// right-hand sides anyway); the samples as read are dropped then.
    Widened(Vec<f64>),
    /// Z as read (row-major `[B, d]`), widened block by block where it is used.
    AsRead(HostValues),
}

/// Most f64 values of one block of widened samples (256 KiB): above this, products with Z
/// run over column blocks of Z, so that no B × d f64 copy of Z (or of S) is allocated. At
/// (B, d) = (128, 2048) those two 2 MiB buffers were fresh memory on every call (glibc
/// returns such blocks to the system) and their page faults cost 2.8 of 4.8 ms.
const WIDENED_BLOCK_VALUES: usize = 1 << 15;

/// A batch of samples read to the host and the lower triangle of its Gram matrix Z Zᵀ in f64.
///
/// Everything here is f64 although the samples are usually f32: the Gram matrix's rounding is
/// amplified by the condition number of K + ηI (see the module docs), and on this machine's
/// CPU the f64 steps cost less than an f32 solve would save (see [`VmfScoreEstimator`]).
struct HostSamples {
    batch: usize,
    dim: usize,
    /// Z itself, widened or as read.
    samples: SampleStore,
    /// C = Z Zᵀ: only the lower triangle, diagonal included, is computed.
    gram: Mat<f64>,
    device: Device,
    dtype: DType,
    /// `faer`'s parallelism for the matrix products (its global setting: all cores by
    /// default); see [`PARALLEL_CHOLESKY_FROM`] and [`cholesky_solve_in_place`] for the
    /// factorisation and the solves.
    par: Par,
}

impl HostSamples {
    /// Validates `z` (`[B ≥ 2, d ≥ 1]`, finite), reads it to the host and forms the lower
    /// triangle of Z Zᵀ in f64 (half the products of the full matrix), over column blocks of
    /// Z when a whole widened copy is not needed.
    fn read(z: Tensor<2>) -> Result<Self, EstimatorError> {
        let [batch, dim] = z.dims();
        check_sample_shape(batch, dim)?;
        let device = z.device();
        let dtype = z.dtype();
        let data = z.detach().try_into_data().map_err(TensorReadError::from)?;
        // f32 and f64 are taken as they are: the generic conversion (`try_into_vec_as`) cost
        // 1.8 ms for 128 × 2048 values.
        let values = match dtype {
            DType::F32 => {
                HostValues::F32(data.try_into_vec::<f32>().map_err(TensorReadError::from)?)
            }
            DType::F64 => {
                HostValues::F64(data.try_into_vec::<f64>().map_err(TensorReadError::from)?)
            }
            _ => HostValues::F64(
                data.try_into_vec_as::<f64>()
                    .map_err(TensorReadError::from)?,
            ),
        };
        let finite = match &values {
            HostValues::F32(values) => values.iter().all(|v| v.is_finite()),
            HostValues::F64(values) => values.iter().all(|v| v.is_finite()),
        };
        if !finite {
            return Err(EstimatorError::NonFinite { what: "z" });
        }
        let par = faer::get_global_parallelism();
        let whole = dim <= batch || batch * dim <= WIDENED_BLOCK_VALUES;
        let (gram, samples) = if whole {
            let mut widened = workspace::zeroed(dim * batch);
            values.widen_columns(dim, 0..dim, &mut widened);
            let samples_t = MatRef::from_column_major_slice(&widened, dim, batch);
            let mut gram = workspace::zeroed_square(batch);
            triangular::matmul(
                gram.as_mut(),
                BlockStructure::TriangularLower,
                Accum::Replace,
                samples_t.transpose(),
                BlockStructure::Rectangular,
                samples_t,
                BlockStructure::Rectangular,
                1.0,
                par,
            );
            (gram, SampleStore::Widened(widened))
        } else {
            let (left, right) = column_halves(dim, block_columns(batch, dim));
            let (mut gram, other) = both(
                par,
                || gram_of_columns(&values, batch, dim, left),
                || gram_of_columns(&values, batch, dim, right),
            );
            for j in 0..batch {
                for (sum, part) in gram.col_as_slice_mut(j)[j..]
                    .iter_mut()
                    .zip(&other.col_as_slice(j)[j..])
                {
                    *sum += part;
                }
            }
            workspace::recycle_square(other);
            (gram, SampleStore::AsRead(values))
        };
        Ok(Self {
            batch,
            dim,
            samples,
            gram,
            device,
            dtype,
            par,
        })
    }

    /// Zᵀ widened to f64 (column-major d × B): the copy formed for the Gram matrix if there
    /// is one, else a new one.
    fn take_widened(&mut self) -> Vec<f64> {
        match &mut self.samples {
            SampleStore::Widened(widened) => std::mem::take(widened),
            SampleStore::AsRead(values) => {
                let mut widened = workspace::zeroed(self.dim * self.batch);
                values.widen_columns(self.dim, 0..self.dim, &mut widened);
                widened
            }
        }
    }

    /// The ⌊B²/2⌋-th largest (1-based) of the B² pairwise values `distance(i, j, C_ij)`
    /// (symmetric, evaluated for i ≥ j only), by selection over B²/2 values.
    fn median_distance(&self, distance: impl Fn(usize, usize, f64) -> f64) -> f64 {
        let b = self.batch;
        let mut diagonal: Vec<f64> = (0..b).map(|i| distance(i, i, self.gram[(i, i)])).collect();
        let mut off_diagonal = Vec::with_capacity(b * (b - 1) / 2);
        for j in 0..b {
            let below = &self.gram.col_as_slice(j)[j + 1..];
            off_diagonal.extend(
                below
                    .iter()
                    .enumerate()
                    .map(|(offset, &gram)| distance(j + 1 + offset, j, gram)),
            );
        }
        kth_largest_symmetric(&mut diagonal, &mut off_diagonal, b * b / 2)
    }

    /// The lower triangle of K + ηI with `K_ij = exp(argument(i, j, C_ij))` (one vectorised
    /// exp per column, half the entries of K), and the row sums `Σ_j K_ij` of the full K.
    ///
    /// Formed in place over the Gram matrix, which is gone afterwards (`self.gram` is left
    /// empty): one B × B buffer fewer to allocate and fault in per call.
    fn ridged_kernel(
        &mut self,
        argument: impl Fn(usize, usize, f64) -> f64,
        eta: f64,
    ) -> (Mat<f64>, Vec<f64>) {
        let mut ridged = std::mem::replace(&mut self.gram, Mat::new());
        let mut row_sums = vec![0.0; self.batch];
        Arch::new().dispatch(KernelColumns {
            ridged: &mut ridged,
            row_sums: &mut row_sums,
            argument,
            eta,
        });
        (ridged, row_sums)
    }

    /// `S = −(K + η I)⁻¹ Ψ` with `Ψ = P Z`, `P = diag(diagonal) − dense`, from the lower
    /// triangle of `ridged` = K + ηI, returned as a constant tensor on the samples' device and
    /// dtype.
    ///
    /// When d > B the solve runs on P (B right-hand sides) and the result multiplies Z,
    /// `S = −((K + ηI)⁻¹ P) Z`: triangular solves are the slow part, and this replaces 2B²d of
    /// them by 2B³ plus one B²d matrix product (about 2× faster at B = 128, d = 2048); the
    /// product runs over column blocks of Z and writes each block of S in the output's dtype.
    /// Otherwise the solve runs on Ψᵀ (column-major), which is S row-major as the tensor wants
    /// it, so no copy reorders it.
    fn finish(
        mut self,
        mut ridged: Mat<f64>,
        mixing: &SteinMixing,
        width: f64,
    ) -> Result<ScoreEstimate, EstimatorError> {
        let (b, d) = (self.batch, self.dim);
        for j in 0..b {
            validate::all_finite_host("kernel matrix", &ridged.col_as_slice(j)[j..])?;
        }
        let factorisation_par = if b < PARALLEL_CHOLESKY_FROM {
            Par::Seq
        } else {
            self.par
        };
        let mut scratch = MemBuffer::new(cholesky_in_place_scratch::<f64>(
            b,
            factorisation_par,
            Default::default(),
        ));
        cholesky_in_place(
            ridged.as_mut(),
            Default::default(),
            factorisation_par,
            MemStack::new(&mut scratch),
            Default::default(),
        )
        .map_err(|_| EstimatorError::NotPositiveDefinite { size: b })?;
        let factor = ridged.as_ref();
        let device = self.device.clone();
        let options = (&device, self.dtype);
        let score = if d > b {
            let mut solved = match &mixing.dense {
                Some(dense) => -dense,
                None => Mat::<f64>::zeros(b, b),
            };
            for (i, value) in mixing.diagonal.iter().enumerate() {
                solved[(i, i)] += value;
            }
            cholesky_solve_in_place(factor, solved.as_mut(), self.par);
            self.times_samples(solved.as_ref(), options)
        } else {
            // Ψᵀ = −(Zᵀ diag(diagonal) − Zᵀ W) (W symmetric), then the solve on its transpose.
            let mut samples = self.take_widened();
            let mut score_t = match &mixing.dense {
                Some(dense) => {
                    let mut product = workspace::zeroed(d * b);
                    matmul(
                        MatMut::from_column_major_slice_mut(&mut product, d, b),
                        Accum::Replace,
                        MatRef::from_column_major_slice(&samples, d, b),
                        dense.as_ref(),
                        1.0,
                        self.par,
                    );
                    for ((column, sample), scale) in product
                        .chunks_exact_mut(d)
                        .zip(samples.chunks_exact(d))
                        .zip(&mixing.diagonal)
                    {
                        for (out, z) in column.iter_mut().zip(sample) {
                            *out -= scale * z;
                        }
                    }
                    workspace::recycle(samples);
                    product
                }
                // Without W, Ψᵀ overwrites Zᵀ, which is not needed again.
                None => {
                    for (column, scale) in samples.chunks_exact_mut(d).zip(&mixing.diagonal) {
                        for value in column {
                            *value *= -scale;
                        }
                    }
                    samples
                }
            };
            cholesky_solve_in_place(
                factor,
                MatMut::from_column_major_slice_mut(&mut score_t, d, b).transpose_mut(),
                self.par,
            );
            if self.dtype == DType::F32 {
                let single: Vec<f32> = score_t.iter().map(|&v| v as f32).collect();
                workspace::recycle(score_t);
                Tensor::from_data(TensorData::new(single, [b, d]), options)
            } else {
                Tensor::from_data(TensorData::new(score_t, [b, d]), options)
            }
        };
        workspace::recycle_square(ridged);
        Ok(ScoreEstimate {
            score,
            kernel_width: Tensor::full([1], width, options),
        })
    }

    /// `S = −X Z` for the B × B matrix X, as a tensor in the samples' dtype.
    fn times_samples(&self, solved: MatRef<'_, f64>, options: (&Device, DType)) -> Tensor<2> {
        let (b, d) = (self.batch, self.dim);
        if self.dtype == DType::F32 {
            let mut score = vec![0.0f32; b * d];
            self.write_times_samples(
                solved,
                MatMut::from_row_major_slice_mut(&mut score, b, d),
                |value| value as f32,
            );
            Tensor::from_data(TensorData::new(score, [b, d]), options)
        } else {
            let mut score = vec![0.0; b * d];
            self.write_times_samples(
                solved,
                MatMut::from_row_major_slice_mut(&mut score, b, d),
                |value| value,
            );
            Tensor::from_data(TensorData::new(score, [b, d]), options)
        }
    }

    /// Writes `−X Z` into `out` (`[B, d]`): one product with the whole widened Zᵀ if there is
    /// one, else two halves of column blocks (on two threads when `par` allows), each block
    /// widened, multiplied and stored on its own.
    fn write_times_samples<T: Send>(
        &self,
        solved: MatRef<'_, f64>,
        out: MatMut<'_, T>,
        convert: impl Fn(f64) -> T + Sync,
    ) {
        let (b, d) = (self.batch, self.dim);
        match &self.samples {
            SampleStore::Widened(whole) => {
                let mut product = workspace::zeroed(d * b);
                matmul(
                    MatMut::from_column_major_slice_mut(&mut product, d, b),
                    Accum::Replace,
                    MatRef::from_column_major_slice(whole, d, b),
                    solved.transpose(),
                    -1.0,
                    self.par,
                );
                store_transposed(&product, 0, out, &convert);
                workspace::recycle(product);
            }
            SampleStore::AsRead(values) => {
                let block = block_columns(b, d);
                let (left, right) = column_halves(d, block);
                let (out_left, out_right) = out.split_at_col_mut(left.len());
                let half = |columns: Range<usize>, mut out: MatMut<'_, T>| {
                    let mut widened = workspace::zeroed(block * b);
                    let mut product = workspace::zeroed(block * b);
                    let first = columns.start;
                    for start in columns.clone().step_by(block) {
                        let part = start..(start + block).min(columns.end);
                        let width = part.len();
                        values.widen_columns(d, part, &mut widened[..width * b]);
                        matmul(
                            MatMut::from_column_major_slice_mut(
                                &mut product[..width * b],
                                width,
                                b,
                            ),
                            Accum::Replace,
                            MatRef::from_column_major_slice(&widened[..width * b], width, b),
                            solved.transpose(),
                            -1.0,
                            Par::Seq,
                        );
                        store_transposed(
                            &product[..width * b],
                            start - first,
                            out.rb_mut(),
                            &convert,
                        );
                    }
                    workspace::recycle(widened);
                    workspace::recycle(product);
                };
                both(self.par, || half(left, out_left), || half(right, out_right));
            }
        }
    }
}

/// Stores the column-major `width × B` block `product` (a block of Sᵀ) into columns
/// `offset..offset + width` of `out` (`[B, ·]`), converted.
fn store_transposed<T>(
    product: &[f64],
    offset: usize,
    mut out: MatMut<'_, T>,
    convert: &impl Fn(f64) -> T,
) {
    let batch = out.nrows();
    let width = product.len() / batch;
    for (i, column) in product.chunks_exact(width).enumerate() {
        for (k, &value) in column.iter().enumerate() {
            out[(i, offset + k)] = convert(value);
        }
    }
}

/// Columns of Z per widened block (at least 1, at most d): see [`WIDENED_BLOCK_VALUES`].
fn block_columns(batch: usize, dim: usize) -> usize {
    (WIDENED_BLOCK_VALUES / batch).clamp(1, dim)
}

/// `0..dim` split in two at a multiple of `block`, so that each half runs whole blocks.
fn column_halves(dim: usize, block: usize) -> (Range<usize>, Range<usize>) {
    let middle = (dim.div_ceil(block).div_ceil(2) * block).min(dim);
    (0..middle, middle..dim)
}

/// The lower triangle of `Zᵀ[columns]ᵀ Zᵀ[columns]` (the Gram matrix of those columns of Z),
/// block by block, on the calling thread.
fn gram_of_columns(
    values: &HostValues,
    batch: usize,
    dim: usize,
    columns: Range<usize>,
) -> Mat<f64> {
    let block = block_columns(batch, dim);
    let mut gram = workspace::zeroed_square(batch);
    let mut widened = workspace::zeroed(block * batch);
    for start in columns.clone().step_by(block) {
        let part = start..(start + block).min(columns.end);
        let width = part.len();
        values.widen_columns(dim, part, &mut widened[..width * batch]);
        let samples_t = MatRef::from_column_major_slice(&widened[..width * batch], width, batch);
        triangular::matmul(
            gram.as_mut(),
            BlockStructure::TriangularLower,
            Accum::Add,
            samples_t.transpose(),
            BlockStructure::Rectangular,
            samples_t,
            BlockStructure::Rectangular,
            1.0,
            Par::Seq,
        );
    }
    workspace::recycle(widened);
    gram
}

/// Runs `first` and `second`, on two threads when `par` has more than one: the split is the
/// same either way, so results do not depend on the thread count.
fn both<A: Send, B: Send>(
    par: Par,
    first: impl FnOnce() -> A + Send,
    second: impl FnOnce() -> B + Send,
) -> (A, B) {
    if par.degree() > 1 {
        rayon::join(first, second)
    } else {
        (first(), second())
    }
}
