//! Explicitness (Ridgeway & Mozer, "Learning Deep Disentangled Embeddings with the F-Statistic
//! Loss", NeurIPS 2018; disentanglement_lib `modularity_explicitness.py`).
//!
//! As disentanglement_lib @ 86a644d computes it (`compute_modularity_explicitness`,
//! `explicitness_per_factor`): codes are standardised with the training split's mean and
//! population standard deviation; for every factor j one multinomial logistic regression
//! (scikit-learn `LogisticRegression()` defaults: L2, C = 1; binary for two values) is fitted on
//! the training split; on each split, for every value c the ROC-AUC of the predicted probability
//! `p(c | x)` against the one-hot label `[y_j = c]` is taken (`roc_auc_score` of `predict_proba`
//! against `MultiLabelBinarizer` labels), the per-factor score is their mean over values (macro
//! average) and the explicitness score is the mean over factors.
//!
//! Scoring the per-value probabilities of one multinomial model matters: a one-vs-rest *linear*
//! score cannot rank a middle value of an ordinal factor above both ends, the softmax
//! probability can (version 1 of this metric did one-vs-rest and read ≈ 0.78 where
//! disentanglement_lib reads ≈ 0.97).
//!
//! Where disentanglement_lib fails, we choose (our choice): a constant code is left unscaled
//! (it divides by a zero standard deviation), and a value absent from a split, or seen in the
//! split but not in training, is left out of that split's average (its `MultiLabelBinarizer`
//! columns no longer line up with `predict_proba`'s and `roc_auc_score` raises).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::linalg::Standardiser;
use crate::logistic::{LogisticRegression, LogisticRegressionConfig};
use crate::{CodeMatrix, MetricsError};
use infobound_data::FactorMatrix;

/// Version tag of the explicitness definition implemented here.
pub const EXPLICITNESS_VERSION: &str = "infobound-explicitness/2";

/// Parameters of [`explicitness`].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExplicitnessConfig {
    /// The one-vs-rest classifiers.
    pub logistic: LogisticRegressionConfig,
}

/// Explicitness scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplicitnessScore {
    /// Mean over factors of the training-split AUC.
    pub train_score: f64,
    /// Mean over factors of the test-split AUC.
    pub test_score: f64,
    /// Per-factor training AUC.
    pub per_factor_train: Vec<f64>,
    /// Per-factor test AUC.
    pub per_factor_test: Vec<f64>,
    /// Parameters used.
    pub config: ExplicitnessConfig,
    /// Metric name and version, [`EXPLICITNESS_VERSION`].
    pub metric_version: String,
}

/// ROC-AUC of `scores` for the binary `positive` labels (Mann–Whitney U with average ranks for
/// ties), or `None` when one class is absent.
pub fn roc_auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let num_pos = positive.iter().filter(|&&p| p).count();
    let num_neg = positive.len() - num_pos;
    if num_pos == 0 || num_neg == 0 || scores.len() != positive.len() {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum_pos = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        // Ranks start..end (0-based) share their average, 1-based: (start + 1 + end) / 2.
        let average_rank = (start + 1 + end) as f64 / 2.0;
        let tied_pos = order[start..end].iter().filter(|&&i| positive[i]).count();
        rank_sum_pos += average_rank * tied_pos as f64;
        start = end;
    }
    let u = rank_sum_pos - (num_pos * (num_pos + 1)) as f64 / 2.0;
    Some(u / (num_pos * num_neg) as f64)
}

fn check_pair(codes: &CodeMatrix, factors: &FactorMatrix, what: &str) -> Result<(), MetricsError> {
    if codes.num_samples() != factors.len() {
        return Err(MetricsError::ShapeMismatch(format!(
            "{what}: {} code rows but {} factor rows",
            codes.num_samples(),
            factors.len()
        )));
    }
    Ok(())
}

/// Explicitness of `train_codes` w.r.t. `train_factors`, evaluated on both splits.
pub fn explicitness(
    train_codes: &CodeMatrix,
    train_factors: &FactorMatrix,
    test_codes: &CodeMatrix,
    test_factors: &FactorMatrix,
    config: &ExplicitnessConfig,
) -> Result<ExplicitnessScore, MetricsError> {
    check_pair(train_codes, train_factors, "training split")?;
    check_pair(test_codes, test_factors, "test split")?;
    if train_factors.num_factors() != test_factors.num_factors() {
        return Err(MetricsError::ShapeMismatch(format!(
            "{} training factors but {} test factors",
            train_factors.num_factors(),
            test_factors.num_factors()
        )));
    }
    let standardiser = Standardiser::fit(train_codes);
    let train = standardiser.transform(train_codes)?;
    let test = standardiser.transform(test_codes)?;
    let mut per_factor_train = Vec::with_capacity(train_factors.num_factors());
    let mut per_factor_test = Vec::with_capacity(train_factors.num_factors());
    for j in 0..train_factors.num_factors() {
        let y_train = train_factors.column(j);
        let y_test = test_factors.column(j);
        if y_train.iter().all(|&v| v == y_train[0]) {
            return Err(MetricsError::InvalidInput(format!(
                "factor {j} takes a single value in the training split"
            )));
        }
        let model = LogisticRegression::fit(&train, &y_train, &config.logistic)?;
        let classes = model.classes().to_vec();
        let aucs = |x: &CodeMatrix, y: &[usize]| -> Result<Vec<f64>, MetricsError> {
            let probabilities = model.predict_proba(x)?;
            Ok(classes
                .par_iter()
                .enumerate()
                .filter_map(|(k, &value)| {
                    let scores: Vec<f64> = probabilities
                        .chunks_exact(classes.len())
                        .map(|p| p[k])
                        .collect();
                    let positive: Vec<bool> = y.iter().map(|&v| v == value).collect();
                    roc_auc(&scores, &positive)
                })
                .collect())
        };
        let aucs_train = aucs(&train, &y_train)?;
        let aucs_test = aucs(&test, &y_test)?;
        let mean = |v: &[f64], split: &str| {
            if v.is_empty() {
                Err(MetricsError::InvalidInput(format!(
                    "factor {j} has no value with both positives and negatives in the {split} split"
                )))
            } else {
                Ok(v.iter().sum::<f64>() / v.len() as f64)
            }
        };
        per_factor_train.push(mean(&aucs_train, "training")?);
        per_factor_test.push(mean(&aucs_test, "test")?);
    }
    let average = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    Ok(ExplicitnessScore {
        train_score: average(&per_factor_train),
        test_score: average(&per_factor_test),
        per_factor_train,
        per_factor_test,
        config: *config,
        metric_version: EXPLICITNESS_VERSION.into(),
    })
}

/// Registry entry of explicitness (`explicitness`, default configuration).
pub(crate) const EXPLICITNESS_SPEC: crate::suite::MetricSpec = crate::suite::MetricSpec {
    name: "explicitness",
    input: crate::suite::MetricInput::CodesAndFactors,
    uses_test_split: true,
    run: |data| {
        let (train_codes, train_factors, test_codes, test_factors) =
            EXPLICITNESS_SPEC.codes_and_factors(data)?;
        let r = explicitness(
            train_codes,
            train_factors,
            test_codes,
            test_factors,
            &ExplicitnessConfig::default(),
        )?;
        crate::suite::MetricReport::new(
            "explicitness",
            &[
                ("explicitness.train", r.train_score),
                ("explicitness.test", r.test_score),
            ],
            &r,
        )
    },
};
