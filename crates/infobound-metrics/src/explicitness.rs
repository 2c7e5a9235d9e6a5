//! Explicitness (Ridgeway & Mozer, "Learning Deep Disentangled Embeddings with the F-Statistic
//! Loss", NeurIPS 2018; disentanglement_lib `modularity_explicitness.py`).
//!
//! Codes are standardised with the training split's statistics. For every factor j and every value
//! c of it, a one-vs-rest logistic regression predicts `[y_j = c]` from all codes; its ROC-AUC is
//! computed on each split, the per-factor score is the mean AUC over values (macro average), and
//! the explicitness score is the mean over factors. A value whose indicator is constant in a split
//! has no AUC there and is left out of that split's average.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::linalg::Standardiser;
use crate::logistic::{LogisticRegression, LogisticRegressionConfig};
use crate::{CodeMatrix, MetricsError};
use infobound_data::FactorMatrix;

/// Version tag of the explicitness definition implemented here.
pub const EXPLICITNESS_VERSION: &str = "infobound-explicitness/1";

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
        let mut values = y_train.clone();
        values.sort_unstable();
        values.dedup();
        if values.len() < 2 {
            return Err(MetricsError::InvalidInput(format!(
                "factor {j} takes a single value in the training split"
            )));
        }
        // One independent (deterministic) fit per value, so the order of completion is irrelevant.
        let per_value: Vec<(Option<f64>, Option<f64>)> = values
            .par_iter()
            .map(|&value| {
                let indicator: Vec<usize> =
                    y_train.iter().map(|&y| usize::from(y == value)).collect();
                let model = LogisticRegression::fit(&train, &indicator, &config.logistic)?;
                let score = |x: &CodeMatrix| -> Result<Vec<f64>, MetricsError> {
                    Ok(model
                        .decision_function(x)?
                        .chunks_exact(2)
                        .map(|l| l[1])
                        .collect())
                };
                let positive_train: Vec<bool> = y_train.iter().map(|&y| y == value).collect();
                let positive_test: Vec<bool> = y_test.iter().map(|&y| y == value).collect();
                Ok((
                    roc_auc(&score(&train)?, &positive_train),
                    roc_auc(&score(&test)?, &positive_test),
                ))
            })
            .collect::<Result<_, MetricsError>>()?;
        let aucs_train: Vec<f64> = per_value.iter().filter_map(|p| p.0).collect();
        let aucs_test: Vec<f64> = per_value.iter().filter_map(|p| p.1).collect();
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
