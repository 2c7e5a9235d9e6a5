//! FactorVAE score (Kim & Mnih, "Disentangling by Factorising", ICML 2018), as disentanglement_lib
//! `factor_vae.compute_factor_vae` computes it: a majority-vote classifier from "which code varies
//! least when one factor is held fixed" to that factor.

use infobound_data::GroundTruthDataset;
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use crate::{CodeMatrix, MetricsError, Representation, sample_codes};

/// Version tag of [`factor_vae_score`] results.
pub const FACTOR_VAE_VERSION: &str = "infobound-factor-vae/1";

/// Parameters of the FactorVAE score (defaults: disentanglement_lib `unsupervised_study_v1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FactorVaeConfig {
    /// Points per vote, all sharing the value of one factor (64).
    pub batch_size: usize,
    /// Votes that train the majority-vote classifier (10,000).
    pub num_train: usize,
    /// Votes that evaluate it (5,000).
    pub num_eval: usize,
    /// Points used for the global per-code variances (10,000).
    pub num_variance_estimate: usize,
    /// Codes whose global standard deviation is below this are pruned as inactive (0.05).
    pub prune_threshold: f64,
}

impl Default for FactorVaeConfig {
    fn default() -> Self {
        Self {
            batch_size: 64,
            num_train: 10_000,
            num_eval: 5_000,
            num_variance_estimate: 10_000,
            prune_threshold: 0.05,
        }
    }
}

/// Result of [`factor_vae_score`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorVaeResult {
    /// Accuracy of the majority-vote classifier on the evaluation votes (the reported score).
    pub eval_accuracy: f64,
    /// Accuracy on the votes it was built from.
    pub train_accuracy: f64,
    /// Number of codes with global standard deviation ≥ `prune_threshold`.
    pub num_active_dims: usize,
    /// Training vote counts `votes[factor][code]`.
    pub train_votes: Vec<Vec<usize>>,
    /// Parameters used.
    pub config: FactorVaeConfig,
    /// Metric name and version.
    pub metric_version: String,
}

/// FactorVAE score. Global variances `s_j² = var(z_j)` (ddof = 1) over `num_variance_estimate`
/// random points; codes with `s_j < prune_threshold` are inactive. Each vote draws a factor `k`
/// uniformly, a batch of `batch_size` points sharing the value of `v_k` (all other factors
/// resampled), and votes for `(k, argmin_{j active} var_batch(z_j) / s_j²)` (ddof = 1). The
/// classifier maps each code to its most-voted factor (first on ties); accuracy = Σ_j
/// votes[class(j)][j] / Σ votes, on fresh evaluation votes (Kim & Mnih 2018, §4). With no active
/// code both accuracies are 0.
pub fn factor_vae_score(
    dataset: &dyn GroundTruthDataset,
    representation: &mut dyn Representation,
    config: &FactorVaeConfig,
    rng: &mut dyn RngCore,
) -> Result<FactorVaeResult, MetricsError> {
    if config.batch_size < 2 || config.num_variance_estimate < 2 {
        return Err(MetricsError::InvalidParameter(
            "batch_size and num_variance_estimate must be at least 2".into(),
        ));
    }
    if config.num_train == 0
        || config.num_eval == 0
        || config.prune_threshold.is_nan()
        || config.prune_threshold < 0.0
    {
        return Err(MetricsError::InvalidParameter(
            "num_train and num_eval must be positive, prune_threshold ≥ 0".into(),
        ));
    }
    let (codes, _) = sample_codes(
        dataset,
        representation,
        config.num_variance_estimate,
        config.batch_size,
        rng,
    )?;
    let global_variance = column_variances(&codes);
    let active: Vec<usize> = (0..codes.num_codes())
        .filter(|&j| global_variance[j].sqrt() >= config.prune_threshold)
        .collect();
    let num_factors = dataset.factor_space().num_factors();
    if active.is_empty() {
        return Ok(FactorVaeResult {
            eval_accuracy: 0.0,
            train_accuracy: 0.0,
            num_active_dims: 0,
            train_votes: vec![vec![0; codes.num_codes()]; num_factors],
            config: config.clone(),
            metric_version: FACTOR_VAE_VERSION.into(),
        });
    }
    let mut vote =
        |votes: &mut Vec<Vec<usize>>, rng: &mut dyn RngCore| -> Result<(), MetricsError> {
            let space = dataset.factor_space();
            let factor = rng.random_range(0..num_factors);
            let anchor = space.sample(1, rng);
            let repeated = infobound_data::FactorMatrix::new(
                num_factors,
                anchor.row(0).repeat(config.batch_size),
            )?;
            let factors = space.resample_all_but(&repeated, factor, rng)?;
            let images = dataset.observations_from_factors(&factors, rng)?;
            let batch = representation.represent(&images)?;
            if batch.num_samples() != config.batch_size || batch.num_codes() != codes.num_codes() {
                return Err(MetricsError::Representation(format!(
                    "returned a {} × {} batch, expected {} × {}",
                    batch.num_samples(),
                    batch.num_codes(),
                    config.batch_size,
                    codes.num_codes()
                )));
            }
            let local = column_variances(&batch);
            let mut best = active[0];
            for &j in &active {
                if local[j] / global_variance[j] < local[best] / global_variance[best] {
                    best = j;
                }
            }
            votes[factor][best] += 1;
            Ok(())
        };
    let mut train_votes = vec![vec![0usize; codes.num_codes()]; num_factors];
    for _ in 0..config.num_train {
        vote(&mut train_votes, rng)?;
    }
    let mut eval_votes = vec![vec![0usize; codes.num_codes()]; num_factors];
    for _ in 0..config.num_eval {
        vote(&mut eval_votes, rng)?;
    }
    let classifier: Vec<usize> = (0..codes.num_codes())
        .map(|j| {
            let mut best = 0;
            for k in 0..num_factors {
                if train_votes[k][j] > train_votes[best][j] {
                    best = k;
                }
            }
            best
        })
        .collect();
    let accuracy = |votes: &[Vec<usize>]| {
        let correct: usize = classifier
            .iter()
            .enumerate()
            .map(|(j, &k)| votes[k][j])
            .sum();
        let total: usize = votes.iter().flatten().sum();
        correct as f64 / total as f64
    };
    Ok(FactorVaeResult {
        eval_accuracy: accuracy(&eval_votes),
        train_accuracy: accuracy(&train_votes),
        num_active_dims: active.len(),
        train_votes,
        config: config.clone(),
        metric_version: FACTOR_VAE_VERSION.into(),
    })
}

/// Sample variance of every column (ddof = 1).
fn column_variances(codes: &CodeMatrix) -> Vec<f64> {
    let n = codes.num_samples() as f64;
    (0..codes.num_codes())
        .map(|j| {
            let column = codes.column(j);
            let mean = column.iter().sum::<f64>() / n;
            column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
        })
        .collect()
}
