//! The β-VAE disentanglement score (Higgins et al., "β-VAE: Learning Basic Visual Concepts with a
//! Constrained Variational Framework", ICLR 2017; disentanglement_lib `beta_vae.py`).
//!
//! One training point: draw a factor index k uniformly; draw `batch_size` factor vectors and copies
//! of them in which every factor but k is resampled; encode both; the feature is
//! `mean_b |z_1b − z_2b|` (per code) and the label is k. A multinomial logistic regression is fitted
//! on `num_train` such points and its accuracy is reported on them and on `num_eval` fresh points.
//! A disentangled code has a near-zero coordinate for the fixed factor, so accuracy approaches 1;
//! chance is 1 / #factors.

use infobound_data::GroundTruthDataset;
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use crate::logistic::{FitSummary, LogisticRegression, LogisticRegressionConfig};
use crate::{CodeMatrix, MetricsError, Representation};

/// Version tag of the β-VAE score definition implemented here.
pub const BETA_VAE_VERSION: &str = "infobound-beta-vae/1";

/// Parameters of [`beta_vae_score`] (defaults: disentanglement_lib `beta_vae_sklearn.gin`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BetaVaeConfig {
    /// Pairs averaged into one feature vector.
    pub batch_size: usize,
    /// Training points.
    pub num_train: usize,
    /// Evaluation points.
    pub num_eval: usize,
    /// The classifier.
    pub logistic: LogisticRegressionConfig,
}

impl Default for BetaVaeConfig {
    fn default() -> Self {
        Self {
            batch_size: 64,
            num_train: 10_000,
            num_eval: 5_000,
            logistic: LogisticRegressionConfig::default(),
        }
    }
}

/// β-VAE score accuracies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BetaVaeScore {
    /// Classifier accuracy on the training points.
    pub train_accuracy: f64,
    /// Classifier accuracy on the evaluation points (the reported score).
    pub eval_accuracy: f64,
    /// How the classifier fit ended.
    pub fit: FitSummary,
    /// Parameters used.
    pub config: BetaVaeConfig,
    /// Metric name and version, [`BETA_VAE_VERSION`].
    pub metric_version: String,
}

/// `num_points` (feature, fixed-factor) pairs.
fn generate_points(
    dataset: &dyn GroundTruthDataset,
    representation: &mut dyn Representation,
    num_points: usize,
    batch_size: usize,
    rng: &mut dyn RngCore,
) -> Result<(CodeMatrix, Vec<usize>), MetricsError> {
    let space = dataset.factor_space();
    let mut features = Vec::new();
    let mut labels = Vec::with_capacity(num_points);
    let mut width = None;
    for _ in 0..num_points {
        let fixed = rng.random_range(0..space.num_factors());
        let factors_a = space.sample(batch_size, rng);
        let factors_b = space.resample_all_but(&factors_a, fixed, rng)?;
        let codes_a =
            representation.represent(&dataset.observations_from_factors(&factors_a, rng)?)?;
        let codes_b =
            representation.represent(&dataset.observations_from_factors(&factors_b, rng)?)?;
        if codes_a.num_samples() != batch_size
            || codes_b.num_samples() != batch_size
            || codes_a.num_codes() != codes_b.num_codes()
            || width.is_some_and(|w| w != codes_a.num_codes())
        {
            return Err(MetricsError::Representation(format!(
                "expected {batch_size} codes of a fixed width, got {}×{} and {}×{}",
                codes_a.num_samples(),
                codes_a.num_codes(),
                codes_b.num_samples(),
                codes_b.num_codes()
            )));
        }
        width = Some(codes_a.num_codes());
        let mut feature = vec![0.0; codes_a.num_codes()];
        for (a, b) in codes_a.rows().zip(codes_b.rows()) {
            feature
                .iter_mut()
                .zip(a.iter().zip(b))
                .for_each(|(f, (x, y))| *f += (x - y).abs());
        }
        features.extend(feature.iter().map(|f| f / batch_size as f64));
        labels.push(fixed);
    }
    Ok((CodeMatrix::new(width.unwrap_or(1), features)?, labels))
}

/// β-VAE score of `representation` on `dataset`, drawing all randomness from `rng`.
pub fn beta_vae_score(
    dataset: &dyn GroundTruthDataset,
    representation: &mut dyn Representation,
    config: &BetaVaeConfig,
    rng: &mut dyn RngCore,
) -> Result<BetaVaeScore, MetricsError> {
    if config.batch_size == 0 || config.num_train == 0 || config.num_eval == 0 {
        return Err(MetricsError::InvalidParameter(
            "batch_size, num_train and num_eval must be positive".into(),
        ));
    }
    if dataset.factor_space().num_factors() < 2 {
        return Err(MetricsError::InvalidInput(
            "the β-VAE score needs at least two factors".into(),
        ));
    }
    let (train_x, train_y) = generate_points(
        dataset,
        representation,
        config.num_train,
        config.batch_size,
        rng,
    )?;
    let model = LogisticRegression::fit(&train_x, &train_y, &config.logistic)?;
    let (eval_x, eval_y) = generate_points(
        dataset,
        representation,
        config.num_eval,
        config.batch_size,
        rng,
    )?;
    Ok(BetaVaeScore {
        train_accuracy: model.accuracy(&train_x, &train_y)?,
        eval_accuracy: model.accuracy(&eval_x, &eval_y)?,
        fit: model.summary(),
        config: *config,
        metric_version: BETA_VAE_VERSION.into(),
    })
}
