//! Linear probe: multinomial logistic regression on frozen, standardised features, the standard
//! linear-evaluation protocol of self-supervised learning (e.g. MVEB, Wen et al., TPAMI 2024).
//!
//! Features are standardised with the training set's column means and standard deviations, a
//! [`LogisticRegression`] is fitted on the training split, and accuracy is reported on both splits.

use serde::{Deserialize, Serialize};

use crate::linalg::Standardiser;
use crate::logistic::{FitSummary, LogisticRegression, LogisticRegressionConfig};
use crate::{CodeMatrix, MetricsError};

/// Version tag of the linear-probe protocol implemented here.
pub const LINEAR_PROBE_VERSION: &str = "infobound-linear-probe/1";

/// Parameters of [`linear_probe`].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LinearProbeConfig {
    /// The classifier.
    pub logistic: LogisticRegressionConfig,
}

/// Linear-probe accuracies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearProbeScore {
    /// Accuracy on the training split.
    pub train_accuracy: f64,
    /// Accuracy on the test split.
    pub test_accuracy: f64,
    /// Number of classes seen in training.
    pub num_classes: usize,
    /// How the classifier fit ended.
    pub fit: FitSummary,
    /// Parameters used.
    pub config: LinearProbeConfig,
    /// Metric name and version, [`LINEAR_PROBE_VERSION`].
    pub metric_version: String,
}

/// Fits a standardised logistic-regression probe on `(train_features, train_labels)` and scores it
/// on both splits.
pub fn linear_probe(
    train_features: &CodeMatrix,
    train_labels: &[usize],
    test_features: &CodeMatrix,
    test_labels: &[usize],
    config: &LinearProbeConfig,
) -> Result<LinearProbeScore, MetricsError> {
    let standardiser = Standardiser::fit(train_features);
    let train = standardiser.transform(train_features)?;
    let test = standardiser.transform(test_features)?;
    let model = LogisticRegression::fit(&train, train_labels, &config.logistic)?;
    Ok(LinearProbeScore {
        train_accuracy: model.accuracy(&train, train_labels)?,
        test_accuracy: model.accuracy(&test, test_labels)?,
        num_classes: model.classes().len(),
        fit: model.summary(),
        config: *config,
        metric_version: LINEAR_PROBE_VERSION.into(),
    })
}
