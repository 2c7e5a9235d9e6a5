//! FactorVAE score (Kim & Mnih, "Disentangling by Factorising", ICML 2018), as disentanglement_lib
//! `factor_vae.compute_factor_vae` computes it: a majority-vote classifier from "which code varies
//! least when one factor is held fixed" to that factor.

use infobound_data::{FactorMatrix, GroundTruthDataset};
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

/// One group of a vote: the index of the factor held fixed and the codes of a batch sharing its
/// value.
pub type FactorVaeGroup = (usize, CodeMatrix);

/// FactorVAE score from precomputed codes (the pure kernel behind [`factor_vae_score`]).
///
/// Global variances `s_j² = var(z_j)` (ddof = 1) come from `global_codes`; codes with
/// `s_j < prune_threshold` are inactive. Each group `(k, B)` votes for
/// `(k, argmin_{j active} var_B(z_j) / s_j²)` (ddof = 1). The classifier maps each code to its
/// most-voted factor among `train_groups` (first on ties); accuracy = `Σ_j votes[class(j)][j] /
/// Σ votes`, on `train_groups` and on `eval_groups` (Kim & Mnih, ICML 2018, §4; disentanglement_lib
/// `factor_vae`). With no active code both accuracies are 0.
pub fn factor_vae_from_groups(
    global_codes: &CodeMatrix,
    train_groups: &[FactorVaeGroup],
    eval_groups: &[FactorVaeGroup],
    num_factors: usize,
    config: &FactorVaeConfig,
) -> Result<FactorVaeResult, MetricsError> {
    check_config(config)?;
    if train_groups.is_empty() || eval_groups.is_empty() || num_factors == 0 {
        return Err(MetricsError::InvalidInput(
            "need training and evaluation groups and at least one factor".into(),
        ));
    }
    let voter = Voter::new(global_codes, config.prune_threshold)?;
    let tally = |groups: &[FactorVaeGroup]| -> Result<Vec<Vec<usize>>, MetricsError> {
        let mut votes = vec![vec![0usize; voter.num_codes]; num_factors];
        for (factor, batch) in groups {
            voter.vote(&mut votes, *factor, batch)?;
        }
        Ok(votes)
    };
    let train_votes = tally(train_groups)?;
    let eval_votes = tally(eval_groups)?;
    Ok(voter.finish(train_votes, &eval_votes, config))
}

/// FactorVAE score sampled from a dataset: `num_variance_estimate` random points give the global
/// variances; each of `num_train` + `num_eval` votes draws a factor `k` uniformly and a batch of
/// `batch_size` points sharing one random value of `v_k` (all other factors resampled), then
/// [`factor_vae_from_groups`]'s rule applies (disentanglement_lib `compute_factor_vae`). Batches
/// are encoded and voted one at a time, never stored.
pub fn factor_vae_score(
    dataset: &dyn GroundTruthDataset,
    representation: &mut dyn Representation,
    config: &FactorVaeConfig,
    rng: &mut dyn RngCore,
) -> Result<FactorVaeResult, MetricsError> {
    check_config(config)?;
    let (codes, _) = sample_codes(
        dataset,
        representation,
        config.num_variance_estimate,
        config.batch_size,
        rng,
    )?;
    let voter = Voter::new(&codes, config.prune_threshold)?;
    let space = dataset.factor_space();
    let num_factors = space.num_factors();
    let mut tally = |count: usize,
                     rng: &mut dyn RngCore|
     -> Result<Vec<Vec<usize>>, MetricsError> {
        let mut votes = vec![vec![0usize; voter.num_codes]; num_factors];
        if voter.active.is_empty() {
            return Ok(votes);
        }
        for _ in 0..count {
            let factor = rng.random_range(0..num_factors);
            let anchor = space.sample(1, rng);
            let repeated = FactorMatrix::new(num_factors, anchor.row(0).repeat(config.batch_size))?;
            let factors = space.resample_all_but(&repeated, factor, rng)?;
            let images = dataset.observations_from_factors(&factors, rng)?;
            let batch = representation.represent(&images)?;
            if batch.num_samples() != config.batch_size {
                return Err(MetricsError::Representation(format!(
                    "returned {} codes for {} images",
                    batch.num_samples(),
                    config.batch_size
                )));
            }
            voter.vote(&mut votes, factor, &batch)?;
        }
        Ok(votes)
    };
    let train_votes = tally(config.num_train, rng)?;
    let eval_votes = tally(config.num_eval, rng)?;
    Ok(voter.finish(train_votes, &eval_votes, config))
}

fn check_config(config: &FactorVaeConfig) -> Result<(), MetricsError> {
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
    Ok(())
}

/// Global variances and active codes, shared by the kernel and the sampling form.
struct Voter {
    global_variance: Vec<f64>,
    active: Vec<usize>,
    num_codes: usize,
}

impl Voter {
    fn new(global_codes: &CodeMatrix, prune_threshold: f64) -> Result<Self, MetricsError> {
        if global_codes.num_samples() < 2 {
            return Err(MetricsError::InvalidInput(
                "global variances need at least 2 points".into(),
            ));
        }
        let global_variance = column_variances(global_codes);
        // A zero-variance code is never active, even with a zero threshold (its ratio is 0/0).
        let active = (0..global_codes.num_codes())
            .filter(|&j| global_variance[j] > 0.0 && global_variance[j].sqrt() >= prune_threshold)
            .collect();
        Ok(Self {
            global_variance,
            active,
            num_codes: global_codes.num_codes(),
        })
    }

    fn vote(
        &self,
        votes: &mut [Vec<usize>],
        factor: usize,
        batch: &CodeMatrix,
    ) -> Result<(), MetricsError> {
        if factor >= votes.len() {
            return Err(MetricsError::InvalidInput(format!(
                "factor index {factor} out of range for {} factors",
                votes.len()
            )));
        }
        if batch.num_codes() != self.num_codes || batch.num_samples() < 2 {
            return Err(MetricsError::ShapeMismatch(format!(
                "a vote batch of {} × {} codes, expected at least 2 × {}",
                batch.num_samples(),
                batch.num_codes(),
                self.num_codes
            )));
        }
        let Some(&first) = self.active.first() else {
            return Ok(());
        };
        let local = column_variances(batch);
        let ratio = |j: usize| local[j] / self.global_variance[j];
        let mut best = first;
        for &j in &self.active {
            if ratio(j) < ratio(best) {
                best = j;
            }
        }
        votes[factor][best] += 1;
        Ok(())
    }

    fn finish(
        &self,
        train_votes: Vec<Vec<usize>>,
        eval_votes: &[Vec<usize>],
        config: &FactorVaeConfig,
    ) -> FactorVaeResult {
        let num_factors = train_votes.len();
        let classifier: Vec<usize> = (0..self.num_codes)
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
            if total == 0 {
                0.0
            } else {
                correct as f64 / total as f64
            }
        };
        FactorVaeResult {
            eval_accuracy: accuracy(eval_votes),
            train_accuracy: accuracy(&train_votes),
            num_active_dims: self.active.len(),
            train_votes,
            config: config.clone(),
            metric_version: FACTOR_VAE_VERSION.into(),
        }
    }
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
