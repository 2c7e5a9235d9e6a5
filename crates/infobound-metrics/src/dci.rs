//! DCI — disentanglement, completeness, informativeness (Eastwood & Williams, "A Framework for the
//! Quantitative Evaluation of Disentangled Representations", ICLR 2018), in disentanglement_lib's
//! form (`dci.py`: importances from one gradient-boosted-tree classifier per factor) and in the
//! Lasso form (importance = |coefficient| of a per-factor Lasso on standardised codes).

use infobound_data::{FactorMatrix, GroundTruthDataset};
use rand::RngCore;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::gbt::{GbtClassifier, GbtSettings, SplitSearch};
use crate::gbt_exact::SortedFeatures;
use crate::gbt_histogram::BinnedFeatures;
use crate::info::{check_factors_vary, check_paired};
use crate::lasso::lasso_coefficients;
use crate::{CodeMatrix, MetricsError, Representation, sample_train_test};

/// Version tag of [`dci`] results with [`DciSplitSearch::Exact`] (version 1 was the histogram
/// search, now [`DCI_HISTOGRAM_VERSION`]).
pub const DCI_VERSION: &str = "infobound-dci-gbt-exact/2";
/// Version tag of [`dci`] results with [`DciSplitSearch::Histogram`].
pub const DCI_HISTOGRAM_VERSION: &str = "infobound-dci-gbt-histogram/1";
/// Version tag of [`dci_lasso`] results.
pub const DCI_LASSO_VERSION: &str = "infobound-dci-lasso/1";

/// The constant disentanglement_lib adds to every importance before taking entropies.
const IMPORTANCE_EPSILON: f64 = 1e-11;

/// Disentanglement and completeness computed from an importance matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DciScores {
    /// `D = Σ_i ρ_i D_i`.
    pub disentanglement: f64,
    /// `C = Σ_j ρ̃_j C_j`.
    pub completeness: f64,
    /// `D_i = 1 − H_K(P_i·)` per code.
    pub per_code_disentanglement: Vec<f64>,
    /// `C_j = 1 − H_L(P̃_·j)` per factor.
    pub per_factor_completeness: Vec<f64>,
}

/// D and C of an importance matrix `R[code][factor]` (≥ 2 codes, ≥ 2 factors, entries ≥ 0):
/// with `P_ij = (R_ij + ε) / Σ_k (R_ik + ε)`, `ε = 1e-11`, `D_i = 1 + Σ_j P_ij log_K P_ij`
/// (K factors) weighted by `ρ_i = Σ_j R_ij / Σ R`; with `P̃_ij = (R_ij + ε) / Σ_l (R_lj + ε)`,
/// `C_j = 1 + Σ_i P̃_ij log_L P̃_ij` (L codes) weighted by `Σ_i R_ij / Σ R`; uniform weights when
/// `Σ R = 0` (Eastwood & Williams 2018, eqs. 1–3; disentanglement_lib `dci.disentanglement`,
/// `dci.completeness`).
pub fn dci_from_importance(importance: &[Vec<f64>]) -> Result<DciScores, MetricsError> {
    let num_codes = importance.len();
    let num_factors = importance.first().map_or(0, Vec::len);
    if num_codes < 2 || num_factors < 2 {
        return Err(MetricsError::InvalidInput(format!(
            "DCI needs at least 2 codes and 2 factors, got {num_codes} × {num_factors}"
        )));
    }
    for (i, row) in importance.iter().enumerate() {
        if row.len() != num_factors {
            return Err(MetricsError::ShapeMismatch(
                "importance matrix rows of unequal length".into(),
            ));
        }
        if let Some(j) = row.iter().position(|v| !v.is_finite()) {
            return Err(MetricsError::NonFinite {
                what: "importance matrix".into(),
                row: i,
                col: j,
            });
        }
        if row.iter().any(|&v| v < 0.0) {
            return Err(MetricsError::InvalidInput(
                "importances must be non-negative".into(),
            ));
        }
    }
    let total: f64 = importance.iter().flatten().sum();
    let per_code_disentanglement: Vec<f64> = importance
        .iter()
        .map(|row| 1.0 - entropy_with_epsilon(row.iter().copied(), num_factors))
        .collect();
    let per_factor_completeness: Vec<f64> = (0..num_factors)
        .map(|j| 1.0 - entropy_with_epsilon(importance.iter().map(|row| row[j]), num_codes))
        .collect();
    let (code_weights, factor_weights): (Vec<f64>, Vec<f64>) = if total == 0.0 {
        (
            vec![1.0 / num_codes as f64; num_codes],
            vec![1.0 / num_factors as f64; num_factors],
        )
    } else {
        (
            importance
                .iter()
                .map(|row| row.iter().sum::<f64>() / total)
                .collect(),
            (0..num_factors)
                .map(|j| importance.iter().map(|row| row[j]).sum::<f64>() / total)
                .collect(),
        )
    };
    Ok(DciScores {
        disentanglement: dot(&per_code_disentanglement, &code_weights),
        completeness: dot(&per_factor_completeness, &factor_weights),
        per_code_disentanglement,
        per_factor_completeness,
    })
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `H_base(p)` of `values + ε` normalised to a distribution (scipy `stats.entropy(values + ε,
/// base=base)`).
fn entropy_with_epsilon(values: impl Iterator<Item = f64> + Clone, base: usize) -> f64 {
    let shifted: Vec<f64> = values.map(|v| v + IMPORTANCE_EPSILON).collect();
    let sum: f64 = shifted.iter().sum();
    let h: f64 = shifted
        .iter()
        .map(|v| {
            let p = v / sum;
            if p > 0.0 { -p * p.ln() } else { 0.0 }
        })
        .sum();
    h / (base as f64).ln()
}

/// How the boosted trees of [`dci`] search for splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DciSplitSearch {
    /// scikit-learn's exact greedy search: every midpoint between consecutive distinct `float32`
    /// values of a node is a candidate (`DecisionTreeRegressor(splitter="best")`). Equal to
    /// disentanglement_lib's `GradientBoostingClassifier()` importances up to scikit-learn's
    /// random tie-breaking between equally good splits on different codes.
    Exact,
    /// Each code cut once, before boosting, into at most `max_bins` bins (2..=256): at every
    /// midpoint when a code has at most `max_bins` distinct values (then equal to
    /// [`DciSplitSearch::Exact`] up to `float32` rounding and tie-breaking), otherwise at the
    /// widest gap within each of `max_bins − 1` equal-count runs of the sorted values. Faster,
    /// but biased on continuous codes: its D and C read 0.02–0.07 below disentanglement_lib's
    /// (the project's metrics issue; the reference's own spread over seeds is 5e-4). On the
    /// cases of `reference/dci_explicitness_sklearn.json` (random_state 0) we measured D / C
    /// −0.027 / −0.024 (`continuous`), −0.025 / −0.014 (`offset_scale`) and −0.080 / +0.204
    /// (`duplicated_codes`, where binning also changes which duplicated code wins ties).
    Histogram {
        /// Bins per code (2..=256; 256 is our choice).
        max_bins: usize,
    },
}

/// Parameters of the GBT form of DCI (defaults: disentanglement_lib `unsupervised_study_v1` and
/// scikit-learn `GradientBoostingClassifier()`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DciConfig {
    /// Training points sampled by [`dci_from_dataset`] (10,000).
    pub num_train: usize,
    /// Test points sampled by [`dci_from_dataset`] (5,000).
    pub num_test: usize,
    /// Encoder batch size when sampling (16).
    pub batch_size: usize,
    /// Boosting stages (100, scikit-learn `n_estimators`).
    pub num_stages: usize,
    /// Tree depth (3, scikit-learn `max_depth`).
    pub max_depth: usize,
    /// Shrinkage (0.1, scikit-learn `learning_rate`).
    pub learning_rate: f64,
    /// Split search ([`DciSplitSearch::Exact`], scikit-learn's).
    pub split_search: DciSplitSearch,
    /// scikit-learn's `random_state`, which only decides exact ties between equally good splits
    /// on different codes: with the same value, [`DciSplitSearch::Exact`] replays scikit-learn's
    /// random feature order. disentanglement_lib leaves it `None` (numpy's global state), so its
    /// DCI varies over runs by that tie-breaking; 0 is our choice.
    pub random_state: u32,
}

impl Default for DciConfig {
    fn default() -> Self {
        Self {
            num_train: 10_000,
            num_test: 5_000,
            batch_size: 16,
            num_stages: 100,
            max_depth: 3,
            learning_rate: 0.1,
            split_search: DciSplitSearch::Exact,
            random_state: 0,
        }
    }
}

impl DciConfig {
    /// The defaults with [`DciSplitSearch::Histogram`] at 256 bins.
    pub fn histogram() -> Self {
        Self {
            split_search: DciSplitSearch::Histogram { max_bins: 256 },
            ..Self::default()
        }
    }
}

/// Result of [`dci`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DciResult {
    /// Weighted disentanglement `D`.
    pub disentanglement: f64,
    /// Weighted completeness `C`.
    pub completeness: f64,
    /// Mean training accuracy over factors.
    pub informativeness_train: f64,
    /// Mean test accuracy over factors (the informativeness disentanglement_lib reports).
    pub informativeness_test: f64,
    /// Per-code `D_i`, per-factor `C_j`.
    pub scores: DciScores,
    /// Importance matrix `R[code][factor]`.
    pub importance_matrix: Vec<Vec<f64>>,
    /// Training accuracy per factor.
    pub train_accuracy: Vec<f64>,
    /// Test accuracy per factor.
    pub test_accuracy: Vec<f64>,
    /// Parameters used.
    pub config: DciConfig,
    /// Metric name and version.
    pub metric_version: String,
}

fn check_train_test(
    train_codes: &CodeMatrix,
    train_factors: &FactorMatrix,
    test_codes: &CodeMatrix,
    test_factors: &FactorMatrix,
) -> Result<(), MetricsError> {
    check_paired(train_codes, train_factors)?;
    if test_codes.num_samples() != test_factors.len() {
        return Err(MetricsError::ShapeMismatch(format!(
            "{} test code rows but {} test factor rows",
            test_codes.num_samples(),
            test_factors.len()
        )));
    }
    if test_codes.num_samples() == 0 {
        return Err(MetricsError::InvalidInput("empty test set".into()));
    }
    if test_codes.num_codes() != train_codes.num_codes()
        || test_factors.num_factors() != train_factors.num_factors()
    {
        return Err(MetricsError::ShapeMismatch(
            "train and test differ in number of codes or factors".into(),
        ));
    }
    check_factors_vary(train_factors)
}

/// DCI with gradient-boosted trees: for every factor `k` a boosted classifier (scikit-learn's
/// `GradientBoostingClassifier` as described in the crate's `gbt` module: binomial / multinomial
/// deviance, `num_stages` stages of depth-`max_depth` trees, shrinkage `learning_rate`, splits by
/// `config.split_search`) predicts `v_k` from all codes; `R_·k` = its normalised impurity
/// importances; D and C by [`dci_from_importance`]; informativeness = mean test accuracy
/// (Eastwood & Williams 2018; disentanglement_lib @ 86a644d `evaluation/metrics/dci.py`,
/// `compute_importance_gbt`). Factors are fitted in parallel, each class tree of a stage too.
pub fn dci(
    train_codes: &CodeMatrix,
    train_factors: &FactorMatrix,
    test_codes: &CodeMatrix,
    test_factors: &FactorMatrix,
    config: &DciConfig,
) -> Result<DciResult, MetricsError> {
    check_train_test(train_codes, train_factors, test_codes, test_factors)?;
    let max_bins = match config.split_search {
        DciSplitSearch::Exact => None,
        DciSplitSearch::Histogram { max_bins } => Some(max_bins),
    };
    if config.num_stages == 0
        || config.max_depth == 0
        || !config.learning_rate.is_finite()
        || config.learning_rate <= 0.0
        || max_bins.is_some_and(|b| !(2..=256).contains(&b))
    {
        return Err(MetricsError::InvalidParameter(format!(
            "num_stages ({}) and max_depth ({}) must be positive, learning_rate ({}) > 0, \
             max_bins ({max_bins:?}) in 2..=256",
            config.num_stages, config.max_depth, config.learning_rate
        )));
    }
    let settings = GbtSettings {
        num_stages: config.num_stages,
        max_depth: config.max_depth,
        learning_rate: config.learning_rate,
        random_state: config.random_state,
    };
    let (fitted, version) = match max_bins {
        None => (
            fit_per_factor(
                &SortedFeatures::new(train_codes)?,
                train_factors,
                test_codes,
                test_factors,
                settings,
            )?,
            DCI_VERSION,
        ),
        Some(bins) => (
            fit_per_factor(
                &BinnedFeatures::new(train_codes, bins),
                train_factors,
                test_codes,
                test_factors,
                settings,
            )?,
            DCI_HISTOGRAM_VERSION,
        ),
    };
    let importance_matrix: Vec<Vec<f64>> = (0..train_codes.num_codes())
        .map(|i| fitted.iter().map(|(imp, _, _)| imp[i]).collect())
        .collect();
    let train_accuracy: Vec<f64> = fitted.iter().map(|f| f.1).collect();
    let test_accuracy: Vec<f64> = fitted.iter().map(|f| f.2).collect();
    let scores = dci_from_importance(&importance_matrix)?;
    Ok(DciResult {
        disentanglement: scores.disentanglement,
        completeness: scores.completeness,
        informativeness_train: mean(&train_accuracy),
        informativeness_test: mean(&test_accuracy),
        scores,
        importance_matrix,
        train_accuracy,
        test_accuracy,
        config: config.clone(),
        metric_version: version.into(),
    })
}

/// One boosted classifier per factor (in parallel): its importances, training and test accuracy.
fn fit_per_factor(
    features: &impl SplitSearch,
    train_factors: &FactorMatrix,
    test_codes: &CodeMatrix,
    test_factors: &FactorMatrix,
    settings: GbtSettings,
) -> Result<Vec<(Vec<f64>, f64, f64)>, MetricsError> {
    let test_rows: Vec<Vec<f64>> = test_codes.rows().map(|r| features.prepare_row(r)).collect();
    (0..train_factors.num_factors())
        .into_par_iter()
        .map(|k| {
            let model = GbtClassifier::fit(features, &train_factors.column(k), settings)?;
            let correct = test_rows
                .iter()
                .zip(test_factors.rows())
                .filter(|(row, f)| model.predict(row) == f[k])
                .count();
            let test_accuracy = correct as f64 / test_rows.len() as f64;
            Ok((model.importances, model.train_accuracy, test_accuracy))
        })
        .collect()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Samples `num_train` training and `num_test` test points and returns [`dci`]
/// (disentanglement_lib `dci.compute_dci`).
pub fn dci_from_dataset(
    dataset: &dyn GroundTruthDataset,
    representation: &mut dyn Representation,
    config: &DciConfig,
    rng: &mut dyn RngCore,
) -> Result<DciResult, MetricsError> {
    let ((train_codes, train_factors), (test_codes, test_factors)) = sample_train_test(
        dataset,
        representation,
        config.num_train,
        config.num_test,
        config.batch_size,
        rng,
    )?;
    dci(
        &train_codes,
        &train_factors,
        &test_codes,
        &test_factors,
        config,
    )
}

/// Parameters of the Lasso form of DCI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DciLassoConfig {
    /// Training points sampled by [`dci_lasso_from_dataset`] (10,000).
    pub num_train: usize,
    /// Test points sampled by [`dci_lasso_from_dataset`] (5,000).
    pub num_test: usize,
    /// Encoder batch size when sampling (16).
    pub batch_size: usize,
    /// L1 weight `α` of `(1/2n)‖y − Xw − b‖² + α‖w‖₁` on standardised codes and targets (0.01).
    pub alpha: f64,
    /// Stop when no coefficient moves by more than this in a sweep (1e-6).
    pub tolerance: f64,
    /// Maximum coordinate-descent sweeps (1,000).
    pub max_iter: usize,
}

impl Default for DciLassoConfig {
    fn default() -> Self {
        Self {
            num_train: 10_000,
            num_test: 5_000,
            batch_size: 16,
            alpha: 0.01,
            tolerance: 1e-6,
            max_iter: 1_000,
        }
    }
}

/// Result of [`dci_lasso`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DciLassoResult {
    /// Weighted disentanglement `D`.
    pub disentanglement: f64,
    /// Weighted completeness `C`.
    pub completeness: f64,
    /// Mean test-set `R²` of the per-factor regressions.
    pub informativeness_test: f64,
    /// Per-code `D_i`, per-factor `C_j`.
    pub scores: DciScores,
    /// `R[code][factor] = |w_code|` of the Lasso for that factor.
    pub importance_matrix: Vec<Vec<f64>>,
    /// Test-set `R²` per factor.
    pub test_r2: Vec<f64>,
    /// Parameters used.
    pub config: DciLassoConfig,
    /// Metric name and version.
    pub metric_version: String,
}

/// DCI with Lasso importances: codes standardised with the training mean and standard deviation
/// (constant codes set to 0), each factor's class index standardised likewise, a Lasso fitted per
/// factor, `R_ik = |w_ik|`; D and C by [`dci_from_importance`]; informativeness = mean test `R²`
/// (Eastwood & Williams 2018 used Lasso for their linear case; the α-TCVAE authors' evaluation
/// uses this variant).
pub fn dci_lasso(
    train_codes: &CodeMatrix,
    train_factors: &FactorMatrix,
    test_codes: &CodeMatrix,
    test_factors: &FactorMatrix,
    config: &DciLassoConfig,
) -> Result<DciLassoResult, MetricsError> {
    check_train_test(train_codes, train_factors, test_codes, test_factors)?;
    if !(config.alpha >= 0.0 && config.tolerance > 0.0) || config.max_iter == 0 {
        return Err(MetricsError::InvalidParameter(
            "alpha must be ≥ 0, tolerance and max_iter positive".into(),
        ));
    }
    let standardisers: Vec<(f64, f64)> = (0..train_codes.num_codes())
        .map(|j| mean_std(&train_codes.column(j)))
        .collect();
    let standardise = |codes: &CodeMatrix| -> Vec<Vec<f64>> {
        standardisers
            .iter()
            .enumerate()
            .map(|(j, &(m, s))| {
                codes
                    .column(j)
                    .iter()
                    .map(|v| if s > 0.0 { (v - m) / s } else { 0.0 })
                    .collect()
            })
            .collect()
    };
    let x_train = standardise(train_codes);
    let x_test = standardise(test_codes);
    let fitted: Vec<(Vec<f64>, f64)> = (0..train_factors.num_factors())
        .into_par_iter()
        .map(|k| {
            let as_f64 =
                |f: &FactorMatrix| -> Vec<f64> { f.column(k).iter().map(|&v| v as f64).collect() };
            let (m, s) = mean_std(&as_f64(train_factors));
            let y_train: Vec<f64> = as_f64(train_factors).iter().map(|v| (v - m) / s).collect();
            let y_test: Vec<f64> = as_f64(test_factors).iter().map(|v| (v - m) / s).collect();
            let w = lasso_coefficients(
                &x_train,
                &y_train,
                config.alpha,
                config.tolerance,
                config.max_iter,
            );
            let intercept = mean(&y_train)
                - x_train
                    .iter()
                    .zip(&w)
                    .map(|(col, wj)| wj * mean(col))
                    .sum::<f64>();
            let predictions: Vec<f64> = (0..y_test.len())
                .map(|i| {
                    intercept
                        + x_test
                            .iter()
                            .zip(&w)
                            .map(|(col, wj)| wj * col[i])
                            .sum::<f64>()
                })
                .collect();
            let y_mean = mean(&y_test);
            let residual: f64 = predictions
                .iter()
                .zip(&y_test)
                .map(|(p, y)| (y - p).powi(2))
                .sum();
            let spread: f64 = y_test.iter().map(|y| (y - y_mean).powi(2)).sum();
            let r2 = if spread > 0.0 {
                1.0 - residual / spread
            } else {
                0.0
            };
            (w.iter().map(|v| v.abs()).collect(), r2)
        })
        .collect();
    let importance_matrix: Vec<Vec<f64>> = (0..train_codes.num_codes())
        .map(|i| fitted.iter().map(|(w, _)| w[i]).collect())
        .collect();
    let test_r2: Vec<f64> = fitted.iter().map(|f| f.1).collect();
    let scores = dci_from_importance(&importance_matrix)?;
    Ok(DciLassoResult {
        disentanglement: scores.disentanglement,
        completeness: scores.completeness,
        informativeness_test: mean(&test_r2),
        scores,
        importance_matrix,
        test_r2,
        config: config.clone(),
        metric_version: DCI_LASSO_VERSION.into(),
    })
}

/// Samples `num_train` training and `num_test` test points and returns [`dci_lasso`].
pub fn dci_lasso_from_dataset(
    dataset: &dyn GroundTruthDataset,
    representation: &mut dyn Representation,
    config: &DciLassoConfig,
    rng: &mut dyn RngCore,
) -> Result<DciLassoResult, MetricsError> {
    let ((train_codes, train_factors), (test_codes, test_factors)) = sample_train_test(
        dataset,
        representation,
        config.num_train,
        config.num_test,
        config.batch_size,
        rng,
    )?;
    dci_lasso(
        &train_codes,
        &train_factors,
        &test_codes,
        &test_factors,
        config,
    )
}

/// Mean and population standard deviation (ddof = 0, as scikit-learn's `StandardScaler`).
fn mean_std(values: &[f64]) -> (f64, f64) {
    let m = mean(values);
    let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / values.len() as f64;
    (m, var.sqrt())
}

/// Registry entry of DCI with exact gradient-boosted trees (`dci`, default configuration).
pub(crate) const DCI_SPEC: crate::suite::MetricSpec = crate::suite::MetricSpec {
    name: "dci",
    input: crate::suite::MetricInput::CodesAndFactors,
    uses_test_split: true,
    run: |data| {
        let (train_codes, train_factors, test_codes, test_factors) =
            DCI_SPEC.codes_and_factors(data)?;
        let r = dci(
            train_codes,
            train_factors,
            test_codes,
            test_factors,
            &DciConfig::default(),
        )?;
        crate::suite::MetricReport::new(
            "dci",
            &[
                ("dci.disentanglement", r.disentanglement),
                ("dci.completeness", r.completeness),
                ("dci.informativeness_train", r.informativeness_train),
                ("dci.informativeness_test", r.informativeness_test),
            ],
            &r,
        )
    },
};

/// Registry entry of DCI with histogram gradient-boosted trees (`dci_histogram`, default configuration).
pub(crate) const DCI_HISTOGRAM_SPEC: crate::suite::MetricSpec = crate::suite::MetricSpec {
    name: "dci_histogram",
    input: crate::suite::MetricInput::CodesAndFactors,
    uses_test_split: true,
    run: |data| {
        let (train_codes, train_factors, test_codes, test_factors) =
            DCI_HISTOGRAM_SPEC.codes_and_factors(data)?;
        let r = dci(
            train_codes,
            train_factors,
            test_codes,
            test_factors,
            &DciConfig::histogram(),
        )?;
        crate::suite::MetricReport::new(
            "dci_histogram",
            &[
                ("dci_histogram.disentanglement", r.disentanglement),
                ("dci_histogram.completeness", r.completeness),
                (
                    "dci_histogram.informativeness_train",
                    r.informativeness_train,
                ),
                ("dci_histogram.informativeness_test", r.informativeness_test),
            ],
            &r,
        )
    },
};

/// Registry entry of DCI with Lasso importances (`dci_lasso`, default configuration).
pub(crate) const DCI_LASSO_SPEC: crate::suite::MetricSpec = crate::suite::MetricSpec {
    name: "dci_lasso",
    input: crate::suite::MetricInput::CodesAndFactors,
    uses_test_split: true,
    run: |data| {
        let (train_codes, train_factors, test_codes, test_factors) =
            DCI_LASSO_SPEC.codes_and_factors(data)?;
        let r = dci_lasso(
            train_codes,
            train_factors,
            test_codes,
            test_factors,
            &DciLassoConfig::default(),
        )?;
        crate::suite::MetricReport::new(
            "dci_lasso",
            &[
                ("dci_lasso.disentanglement", r.disentanglement),
                ("dci_lasso.completeness", r.completeness),
                ("dci_lasso.informativeness_test", r.informativeness_test),
            ],
            &r,
        )
    },
};
