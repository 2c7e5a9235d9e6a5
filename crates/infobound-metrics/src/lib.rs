//! Disentanglement, diversity and probe metrics as pure kernels on arrays, plus sampling
//! wrappers over [`GroundTruthDataset`] and a representation function (disentanglement_lib's
//! split). Everything a public function takes is re-exported here, so this crate is the only
//! dependency a user needs:
//!
//! ```
//! use infobound_metrics::{CodeMatrix, FactorMatrix, MigConfig, mig_discrete};
//! let codes = CodeMatrix::from_rows(&[vec![0.1, 1.0], vec![0.9, 1.0], vec![0.2, 2.0], vec![0.8, 2.0]])?;
//! let factors = FactorMatrix::new(1, vec![0, 1, 0, 1])?;
//! let mig = mig_discrete(&codes, &factors, &MigConfig::default())?;
//! assert!((mig.score - 1.0).abs() < 1e-12);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod codes;
mod error;
mod representation;

pub use codes::CodeMatrix;
pub use error::MetricsError;
/// The data types this crate's functions take or return, from `infobound-data`.
pub use infobound_data::{
    DataError, FactorMatrix, FactorSpace, GroundTruthDataset, ImageBatch, ObservationShape,
};
pub use representation::{Representation, sample_codes, sample_train_test};

// Part A: disentanglement metrics.
mod dci;
mod factor_vae;
mod gbt;
mod gbt_exact;
mod gbt_histogram;
mod info;
mod lasso;
mod mig;
mod modularity;
mod sap;
mod snc;
mod svm;

pub use dci::{
    DCI_HISTOGRAM_VERSION, DCI_LASSO_VERSION, DCI_VERSION, DciConfig, DciLassoConfig,
    DciLassoResult, DciResult, DciScores, DciSplitSearch, dci, dci_from_dataset,
    dci_from_importance, dci_lasso, dci_lasso_from_dataset,
};
pub use factor_vae::{
    FACTOR_VAE_VERSION, FactorVaeConfig, FactorVaeGroup, FactorVaeResult, factor_vae_from_groups,
    factor_vae_score,
};
pub use info::{
    DiscreteCodes, discrete_entropy, discrete_mutual_information, discretize_codes,
    mutual_information_matrix,
};
pub use mig::{
    MIG_CONTINUOUS_VERSION, MIG_DISCRETE_VERSION, MigConfig, MigContinuousConfig, MigResult,
    mig_continuous, mig_discrete, mig_discrete_from_dataset,
};
pub use modularity::{
    MODULARITY_VERSION, ModularityConfig, ModularityResult, modularity, modularity_from_dataset,
};
pub use sap::{
    SAP_CONTINUOUS_VERSION, SAP_DISCRETE_VERSION, SapConfig, SapResult, sap_continuous,
    sap_continuous_from_dataset, sap_discrete, sap_discrete_from_dataset,
};
pub use snc::{SNC_VERSION, SncConfig, SncResult, snc, snc_from_dataset};
pub use svm::SvmSolver;

// Part B: diversity, probes, β-VAE score, explicitness, collapse diagnostics.
mod beta_vae;
mod collapse;
mod explicitness;
mod fid;
mod knn;
mod linalg;
mod linear_probe;
mod logistic;
mod npy;
mod stats;
mod suite;
mod vendi;

pub use beta_vae::{BETA_VAE_VERSION, BetaVaeConfig, BetaVaeScore, beta_vae_score};
pub use collapse::{
    COLLAPSE_VERSION, CollapseConfig, CollapseDiagnostics, alignment, collapse_diagnostics,
    effective_rank, uniformity,
};
pub use explicitness::{
    EXPLICITNESS_VERSION, ExplicitnessConfig, ExplicitnessScore, explicitness, roc_auc,
};
pub use fid::{
    FID_VERSION, FeatureExtractor, FrechetDistance, PixelFeatures, fid, frechet_distance,
    frechet_distance_gaussians,
};
pub use knn::{KNN_VERSION, KnnAccuracy, KnnClassifier, KnnConfig, knn_accuracy};
pub use linear_probe::{LINEAR_PROBE_VERSION, LinearProbeConfig, LinearProbeScore, linear_probe};
pub use logistic::{FitSummary, LogisticRegression, LogisticRegressionConfig};
pub use npy::{
    NpyError, codes_from_npy_bytes, codes_to_npy_bytes, factors_from_npy_bytes,
    factors_to_npy_bytes, read_codes_npy, read_factors_npy, write_atomically,
};
pub use stats::{WelchTest, sample_mean_and_variance, welch_t_test};
pub use suite::{
    MetricData, MetricInput, MetricName, MetricReport, MetricSpec, REGISTRY, SplitInfo, Splits,
    SuiteInputs, SuiteReport, parse_metric_list, run_suite, validate_codes,
};
pub use vendi::{
    PIXEL_VENDI_SIDE, VENDI_EIGENVALUE_FLOOR, VENDI_VERSION, VendiConfig, VendiForm, VendiOrder,
    VendiScore, pixel_vendi_score, vendi_from_eigenvalues, vendi_score, vendi_score_from_kernel,
};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
