//! Separated Attribute Predictability (Kumar, Sattigeri, Balakrishnan, "Variational Inference of
//! Disentangled Latent Concepts from Unlabeled Observations", ICLR 2018), in disentanglement_lib's
//! two forms (`sap_score.py`): [`sap_continuous`] (squared correlation) and [`sap_discrete`]
//! (per code × factor linear-SVM test accuracy).

use infobound_data::{FactorMatrix, GroundTruthDataset};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::info::{check_factors_vary, check_paired};
use crate::mig::top_two;
use crate::svm::{OneFeatureSvm, SvmSettings, SvmSolver};
use crate::{CodeMatrix, MetricsError, Representation, sample_codes, sample_train_test};

/// Version tag of [`sap_continuous`] results.
pub const SAP_CONTINUOUS_VERSION: &str = "infobound-sap-continuous/1";
/// Version tag of [`sap_discrete`] results.
pub const SAP_DISCRETE_VERSION: &str = "infobound-sap-discrete/1";

/// Parameters of SAP (defaults: disentanglement_lib `unsupervised_study_v1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SapConfig {
    /// Training points sampled by the dataset wrappers (10,000).
    pub num_train: usize,
    /// Test points sampled by [`sap_discrete_from_dataset`] (5,000).
    pub num_test: usize,
    /// Encoder batch size when sampling (16).
    pub batch_size: usize,
    /// SVM regularisation `C` of the discrete form (0.01).
    pub svm_c: f64,
    /// SVM solver (Newton; both solve the same problem, see [`SvmSolver`]).
    pub svm_solver: SvmSolver,
    /// Seed of the sample order of [`SvmSolver::DualCoordinateDescent`] (0).
    pub svm_seed: u64,
    /// SVM solver tolerance (1e-4, the `tol` of scikit-learn).
    pub svm_tolerance: f64,
    /// Maximum solver iterations (1,000).
    pub svm_max_iter: usize,
}

impl Default for SapConfig {
    fn default() -> Self {
        Self {
            num_train: 10_000,
            num_test: 5_000,
            batch_size: 16,
            svm_c: 0.01,
            svm_solver: SvmSolver::Newton,
            svm_seed: 0,
            svm_tolerance: 1e-4,
            svm_max_iter: 1_000,
        }
    }
}

/// Result of a SAP computation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SapResult {
    /// `SAP = (1/K) Σ_k (S_(1)k − S_(2)k)`, the mean gap between the two best codes per factor.
    pub score: f64,
    /// The gap of each factor.
    pub per_factor_gap: Vec<f64>,
    /// Predictability `S[code][factor]`.
    pub score_matrix: Vec<Vec<f64>>,
    /// Parameters used.
    pub config: SapConfig,
    /// Metric name and version.
    pub metric_version: String,
}

/// Continuous SAP: `S_jk = cov(z_j, v_k)² / (var z_j · var v_k)` (sample moments, ddof = 1),
/// `S_jk = 0` when `var z_j ≤ 1e-12`; score = mean over factors of the gap between the two largest
/// `S_jk` over codes (disentanglement_lib `sap_score` with `continuous_factors=True`).
pub fn sap_continuous(
    codes: &CodeMatrix,
    factors: &FactorMatrix,
    config: &SapConfig,
) -> Result<SapResult, MetricsError> {
    check_paired(codes, factors)?;
    check_factors_vary(factors)?;
    check_two_codes(codes)?;
    let n = codes.num_samples() as f64;
    let factor_columns: Vec<(Vec<f64>, f64)> = (0..factors.num_factors())
        .map(|k| {
            centred(
                &factors
                    .column(k)
                    .iter()
                    .map(|&v| v as f64)
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let score_matrix = (0..codes.num_codes())
        .map(|j| {
            let (z, var_z) = centred(&codes.column(j));
            factor_columns
                .iter()
                .map(|(v, var_v)| {
                    if var_z > 1e-12 {
                        let cov = z.iter().zip(v).map(|(a, b)| a * b).sum::<f64>() / (n - 1.0);
                        cov * cov / (var_z * var_v)
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    Ok(assemble(score_matrix, config, SAP_CONTINUOUS_VERSION))
}

/// Discrete SAP: `S_jk` = test accuracy of a linear SVM (squared hinge, L2, `C`, balanced class
/// weights, one-vs-rest) trained to predict factor `k` from code `j` alone; score = mean over
/// factors of the gap between the two best codes (disentanglement_lib `sap_score`,
/// `continuous_factors=False`).
pub fn sap_discrete(
    train_codes: &CodeMatrix,
    train_factors: &FactorMatrix,
    test_codes: &CodeMatrix,
    test_factors: &FactorMatrix,
    config: &SapConfig,
) -> Result<SapResult, MetricsError> {
    check_paired(train_codes, train_factors)?;
    check_paired(test_codes, test_factors)?;
    check_factors_vary(train_factors)?;
    check_two_codes(train_codes)?;
    if test_codes.num_codes() != train_codes.num_codes()
        || test_factors.num_factors() != train_factors.num_factors()
    {
        return Err(MetricsError::ShapeMismatch(
            "train and test differ in number of codes or factors".into(),
        ));
    }
    if !(config.svm_c > 0.0 && config.svm_tolerance > 0.0) || config.svm_max_iter == 0 {
        return Err(MetricsError::InvalidParameter(
            "svm_c, svm_tolerance and svm_max_iter must be positive".into(),
        ));
    }
    let settings = SvmSettings {
        solver: config.svm_solver,
        c: config.svm_c,
        tolerance: config.svm_tolerance,
        max_iter: config.svm_max_iter,
    };
    let num_factors = train_factors.num_factors();
    let pairs: Vec<(usize, usize)> = (0..train_codes.num_codes())
        .flat_map(|j| (0..num_factors).map(move |k| (j, k)))
        .collect();
    let accuracies: Vec<f64> = pairs
        .par_iter()
        .enumerate()
        .map(|(pair, &(j, k))| {
            // One stream per pair keeps the result independent of the thread schedule.
            let mut pair_rng = ChaCha8Rng::seed_from_u64(config.svm_seed);
            pair_rng.set_stream(pair as u64);
            let svm = OneFeatureSvm::fit(
                &train_codes.column(j),
                &train_factors.column(k),
                settings,
                &mut pair_rng,
            );
            let x_test = test_codes.column(j);
            let y_test = test_factors.column(k);
            let correct = x_test
                .iter()
                .zip(&y_test)
                .filter(|&(&x, &y)| svm.predict(x) == y)
                .count();
            correct as f64 / y_test.len() as f64
        })
        .collect();
    let score_matrix = accuracies
        .chunks(num_factors)
        .map(<[f64]>::to_vec)
        .collect();
    Ok(assemble(score_matrix, config, SAP_DISCRETE_VERSION))
}

fn check_two_codes(codes: &CodeMatrix) -> Result<(), MetricsError> {
    if codes.num_codes() < 2 {
        return Err(MetricsError::InvalidInput(
            "SAP needs at least two codes".into(),
        ));
    }
    Ok(())
}

/// Centred copy and the sample variance (ddof = 1).
fn centred(values: &[f64]) -> (Vec<f64>, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let c: Vec<f64> = values.iter().map(|v| v - mean).collect();
    let var = c.iter().map(|v| v * v).sum::<f64>() / (n - 1.0);
    (c, var)
}

fn assemble(score_matrix: Vec<Vec<f64>>, config: &SapConfig, version: &str) -> SapResult {
    let num_factors = score_matrix[0].len();
    let per_factor_gap: Vec<f64> = (0..num_factors)
        .map(|k| {
            let (first, second) = top_two(score_matrix.iter().map(|row| row[k]));
            first - second
        })
        .collect();
    SapResult {
        score: per_factor_gap.iter().sum::<f64>() / num_factors as f64,
        per_factor_gap,
        score_matrix,
        config: config.clone(),
        metric_version: version.into(),
    }
}

/// Samples `num_train` points and returns [`sap_continuous`] on them.
pub fn sap_continuous_from_dataset(
    dataset: &dyn GroundTruthDataset,
    representation: &mut dyn Representation,
    config: &SapConfig,
    rng: &mut dyn RngCore,
) -> Result<SapResult, MetricsError> {
    let (codes, factors) = sample_codes(
        dataset,
        representation,
        config.num_train,
        config.batch_size,
        rng,
    )?;
    sap_continuous(&codes, &factors, config)
}

/// Samples `num_train` training and `num_test` test points and returns [`sap_discrete`]
/// (disentanglement_lib `sap_score.compute_sap`).
pub fn sap_discrete_from_dataset(
    dataset: &dyn GroundTruthDataset,
    representation: &mut dyn Representation,
    config: &SapConfig,
    rng: &mut dyn RngCore,
) -> Result<SapResult, MetricsError> {
    let ((train_codes, train_factors), (test_codes, test_factors)) = sample_train_test(
        dataset,
        representation,
        config.num_train,
        config.num_test,
        config.batch_size,
        rng,
    )?;
    sap_discrete(
        &train_codes,
        &train_factors,
        &test_codes,
        &test_factors,
        config,
    )
}

/// Registry entry of continuous-code SAP (`sap`, default configuration).
pub(crate) const SAP_SPEC: crate::suite::MetricSpec = crate::suite::MetricSpec {
    name: "sap",
    input: crate::suite::MetricInput::CodesAndFactors,
    uses_test_split: false,
    run: |data| {
        let (train_codes, train_factors, _, _) = SAP_SPEC.codes_and_factors(data)?;
        let r = sap_continuous(train_codes, train_factors, &SapConfig::default())?;
        crate::suite::MetricReport::new("sap", &[("sap", r.score)], &r)
    },
};

/// Registry entry of SAP with linear-SVM classifiers (`sap_discrete`, default configuration).
pub(crate) const SAP_DISCRETE_SPEC: crate::suite::MetricSpec = crate::suite::MetricSpec {
    name: "sap_discrete",
    input: crate::suite::MetricInput::CodesAndFactors,
    uses_test_split: true,
    run: |data| {
        let (train_codes, train_factors, test_codes, test_factors) =
            SAP_DISCRETE_SPEC.codes_and_factors(data)?;
        let r = sap_discrete(
            train_codes,
            train_factors,
            test_codes,
            test_factors,
            &SapConfig::default(),
        )?;
        crate::suite::MetricReport::new("sap_discrete", &[("sap_discrete", r.score)], &r)
    },
};
