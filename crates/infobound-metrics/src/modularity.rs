//! Modularity (Ridgeway & Mozer, "Learning Deep Disentangled Embeddings with the F-Statistic
//! Loss", NeurIPS 2018), as disentanglement_lib `modularity_explicitness.modularity` computes it
//! from the histogram mutual information of discretised codes.

use infobound_data::{FactorMatrix, GroundTruthDataset};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::info::{check_factors_vary, check_paired, discretize_codes, mutual_information_matrix};
use crate::{CodeMatrix, MetricsError, Representation, sample_codes};

/// Version tag of [`modularity`] results.
pub const MODULARITY_VERSION: &str = "infobound-modularity/1";

/// Parameters of modularity (defaults: disentanglement_lib `unsupervised_study_v1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModularityConfig {
    /// Equal-width histogram bins per code (20).
    pub num_bins: usize,
    /// Points sampled by [`modularity_from_dataset`] (10,000).
    pub num_train: usize,
    /// Encoder batch size when sampling (16).
    pub batch_size: usize,
}

impl Default for ModularityConfig {
    fn default() -> Self {
        Self {
            num_bins: 20,
            num_train: 10_000,
            batch_size: 16,
        }
    }
}

/// Result of [`modularity`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModularityResult {
    /// Mean over codes of the per-code modularity.
    pub score: f64,
    /// `1 − δ_j` per code (0 for a code with no information about any factor).
    pub per_code: Vec<f64>,
    /// `I(z_j; v_k)` in nats, indexed `[code][factor]`.
    pub mutual_information: Vec<Vec<f64>>,
    /// Parameters used.
    pub config: ModularityConfig,
    /// Metric name and version.
    pub metric_version: String,
}

/// Modularity: with `m_jk = I(z_j; v_k)²` and `θ_j = max_k m_jk`,
/// `δ_j = (Σ_k m_jk − θ_j) / (θ_j (K − 1))`, per-code score `1 − δ_j` (0 where `θ_j = 0`), averaged
/// over codes (Ridgeway & Mozer 2018, eq. 4 with disentanglement_lib's normalisation).
pub fn modularity(
    codes: &CodeMatrix,
    factors: &FactorMatrix,
    config: &ModularityConfig,
) -> Result<ModularityResult, MetricsError> {
    check_paired(codes, factors)?;
    check_factors_vary(factors)?;
    let num_factors = factors.num_factors();
    if num_factors < 2 {
        return Err(MetricsError::InvalidInput(
            "modularity needs at least two factors".into(),
        ));
    }
    let discrete = discretize_codes(codes, config.num_bins)?;
    let mutual_information = mutual_information_matrix(&discrete, factors)?;
    let per_code: Vec<f64> = mutual_information
        .iter()
        .map(|row| {
            let squared: Vec<f64> = row.iter().map(|m| m * m).collect();
            let max = squared.iter().copied().fold(0.0, f64::max);
            if max == 0.0 {
                return 0.0;
            }
            let delta = (squared.iter().sum::<f64>() - max) / (max * (num_factors as f64 - 1.0));
            1.0 - delta
        })
        .collect();
    Ok(ModularityResult {
        score: per_code.iter().sum::<f64>() / per_code.len() as f64,
        per_code,
        mutual_information,
        config: config.clone(),
        metric_version: MODULARITY_VERSION.into(),
    })
}

/// Samples `num_train` points and returns [`modularity`] on them.
pub fn modularity_from_dataset(
    dataset: &dyn GroundTruthDataset,
    representation: &mut dyn Representation,
    config: &ModularityConfig,
    rng: &mut dyn RngCore,
) -> Result<ModularityResult, MetricsError> {
    let (codes, factors) = sample_codes(
        dataset,
        representation,
        config.num_train,
        config.batch_size,
        rng,
    )?;
    modularity(&codes, &factors, config)
}

/// Registry entry of modularity (`modularity`, default configuration).
pub(crate) const MODULARITY_SPEC: crate::suite::MetricSpec = crate::suite::MetricSpec {
    name: "modularity",
    input: crate::suite::MetricInput::CodesAndFactors,
    uses_test_split: false,
    run: |data| {
        let (train_codes, train_factors, _, _) = MODULARITY_SPEC.codes_and_factors(data)?;
        let r = modularity(train_codes, train_factors, &ModularityConfig::default())?;
        crate::suite::MetricReport::new("modularity", &[("modularity", r.score)], &r)
    },
};
