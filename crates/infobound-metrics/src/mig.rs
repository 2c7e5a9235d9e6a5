//! Mutual Information Gap (Chen, Li, Grosse, Duvenaud, "Isolating Sources of Disentanglement in
//! Variational Autoencoders", NeurIPS 2018), in its two published estimators:
//! [`mig_discrete`] (histogram MI, disentanglement_lib `mig.py`) and [`mig_continuous`]
//! (posterior-based entropies, rtqichen/beta-tcvae `metric_helpers/mi_metric.py`).

use infobound_data::{FactorMatrix, GroundTruthDataset};
use rand::{Rng, RngCore, seq::index::sample};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::info::{
    check_factors_vary, check_paired, discrete_entropy, discretize_codes,
    mutual_information_matrix,
};
use crate::{CodeMatrix, MetricsError, Representation, sample_codes};

/// Version tag of [`mig_discrete`] results.
pub const MIG_DISCRETE_VERSION: &str = "infobound-mig-discrete/1";
/// Version tag of [`mig_continuous`] results.
pub const MIG_CONTINUOUS_VERSION: &str = "infobound-mig-continuous/1";

/// Parameters of the discrete MIG (defaults: disentanglement_lib `unsupervised_study_v1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MigConfig {
    /// Equal-width histogram bins per code (20).
    pub num_bins: usize,
    /// Points sampled by [`mig_discrete_from_dataset`] (10,000).
    pub num_train: usize,
    /// Encoder batch size when sampling (16).
    pub batch_size: usize,
}

impl Default for MigConfig {
    fn default() -> Self {
        Self {
            num_bins: 20,
            num_train: 10_000,
            batch_size: 16,
        }
    }
}

/// Result of a MIG computation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigResult {
    /// `MIG = (1/K) Σ_k (I(z_{j*}; v_k) − max_{j≠j*} I(z_j; v_k)) / H(v_k)`.
    pub score: f64,
    /// The normalised gap of each factor.
    pub per_factor_gap: Vec<f64>,
    /// `I(z_j; v_k)` in nats, indexed `[code][factor]`.
    pub mutual_information: Vec<Vec<f64>>,
    /// `H(v_k)` in nats.
    pub factor_entropy: Vec<f64>,
    /// Number of samples the estimate used.
    pub num_samples: usize,
    /// Number of histogram bins (discrete MIG) or posterior samples per entropy (continuous MIG).
    pub resolution: usize,
    /// Metric name and version.
    pub metric_version: String,
}

/// Discrete MIG: codes discretised into `num_bins` equal-width bins
/// ([`crate::discretize_codes`]), `I(z_j; v_k)` from the joint histogram
/// ([`crate::discrete_mutual_information`]) and
/// `MIG = (1/K) Σ_k (I_(1)k − I_(2)k) / H(v_k)` with `I_(1)k ≥ I_(2)k` the two largest MIs of
/// factor `k` over codes (Chen et al. 2018; disentanglement_lib `mig._compute_mig`).
pub fn mig_discrete(
    codes: &CodeMatrix,
    factors: &FactorMatrix,
    config: &MigConfig,
) -> Result<MigResult, MetricsError> {
    check_paired(codes, factors)?;
    check_factors_vary(factors)?;
    if codes.num_codes() < 2 {
        return Err(MetricsError::InvalidInput(
            "MIG needs at least two codes".into(),
        ));
    }
    let discrete = discretize_codes(codes, config.num_bins)?;
    let mutual_information = mutual_information_matrix(&discrete, factors)?;
    let factor_entropy = (0..factors.num_factors())
        .map(|k| discrete_entropy(&factors.column(k)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(assemble(
        mutual_information,
        factor_entropy,
        codes.num_samples(),
        config.num_bins,
        MIG_DISCRETE_VERSION,
    ))
}

fn assemble(
    mutual_information: Vec<Vec<f64>>,
    factor_entropy: Vec<f64>,
    num_samples: usize,
    resolution: usize,
    version: &str,
) -> MigResult {
    let per_factor_gap: Vec<f64> = factor_entropy
        .iter()
        .enumerate()
        .map(|(k, h)| {
            let (first, second) = top_two(mutual_information.iter().map(|row| row[k]));
            (first - second) / h
        })
        .collect();
    MigResult {
        score: per_factor_gap.iter().sum::<f64>() / per_factor_gap.len() as f64,
        per_factor_gap,
        mutual_information,
        factor_entropy,
        num_samples,
        resolution,
        metric_version: version.into(),
    }
}

/// The largest and second-largest of at least two values.
pub(crate) fn top_two(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let mut first = f64::NEG_INFINITY;
    let mut second = f64::NEG_INFINITY;
    for v in values {
        if v > first {
            second = first;
            first = v;
        } else if v > second {
            second = v;
        }
    }
    (first, second)
}

/// Samples `config.num_train` points of `dataset`, encodes them with `representation` and
/// returns [`mig_discrete`] on them (disentanglement_lib `mig.compute_mig`).
pub fn mig_discrete_from_dataset(
    dataset: &dyn GroundTruthDataset,
    representation: &mut dyn Representation,
    config: &MigConfig,
    rng: &mut dyn RngCore,
) -> Result<MigResult, MetricsError> {
    let (codes, factors) = sample_codes(
        dataset,
        representation,
        config.num_train,
        config.batch_size,
        rng,
    )?;
    mig_discrete(&codes, &factors, config)
}

/// Parameters of the continuous MIG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MigContinuousConfig {
    /// Posterior samples per entropy estimate (1,000; Chen et al. use 10,000 on a GPU — the cost
    /// is `samples × points × codes` Gaussian log-densities for the marginal entropies and as much
    /// again for the conditional ones).
    pub num_entropy_samples: usize,
}

impl Default for MigContinuousConfig {
    fn default() -> Self {
        Self {
            num_entropy_samples: 1_000,
        }
    }
}

/// Continuous MIG from Gaussian posteriors `q(z|x_n) = N(μ_n, diag(exp(logvar_n)))` over a set of
/// points with known factors (Chen et al. 2018, §4; rtqichen/beta-tcvae `mi_metric.py`).
///
/// With `q(z_j) = (1/N) Σ_n q(z_j|x_n)` the aggregate posterior,
/// `H(z_j) ≈ −(1/S) Σ_s ln q(z_j^s)` for `z^s ~ q(z|x_{n_s})`, `n_s` drawn without replacement;
/// `H(z_j | v_k) = Σ_v p(v_k = v) H(z_j | v_k = v)`, each term the same estimator restricted to
/// the points with `v_k = v`; `I(z_j; v_k) = H(z_j) − H(z_j | v_k)` and the gap is normalised by
/// the empirical `H(v_k)` (= ln K_k on a full factor grid, as in the original).
pub fn mig_continuous(
    mu: &CodeMatrix,
    logvar: &CodeMatrix,
    factors: &FactorMatrix,
    config: &MigContinuousConfig,
    rng: &mut dyn RngCore,
) -> Result<MigResult, MetricsError> {
    check_paired(mu, factors)?;
    if logvar.num_samples() != mu.num_samples() || logvar.num_codes() != mu.num_codes() {
        return Err(MetricsError::ShapeMismatch(
            "mu and logvar differ in shape".into(),
        ));
    }
    check_factors_vary(factors)?;
    if mu.num_codes() < 2 {
        return Err(MetricsError::InvalidInput(
            "MIG needs at least two codes".into(),
        ));
    }
    if config.num_entropy_samples == 0 {
        return Err(MetricsError::InvalidParameter(
            "num_entropy_samples must be positive".into(),
        ));
    }
    let n = mu.num_samples();
    let all: Vec<usize> = (0..n).collect();
    let marginal = posterior_entropies(mu, logvar, &all, config.num_entropy_samples, rng);
    let num_codes = mu.num_codes();
    let mut mutual_information = vec![vec![0.0; factors.num_factors()]; num_codes];
    let mut factor_entropy = Vec::with_capacity(factors.num_factors());
    for k in 0..factors.num_factors() {
        let column = factors.column(k);
        factor_entropy.push(discrete_entropy(&column)?);
        let mut values = column.clone();
        values.sort_unstable();
        values.dedup();
        let mut conditional = vec![0.0; num_codes];
        for v in values {
            let members: Vec<usize> = (0..n).filter(|&i| column[i] == v).collect();
            let weight = members.len() as f64 / n as f64;
            let h = posterior_entropies(mu, logvar, &members, config.num_entropy_samples, rng);
            for (c, hv) in conditional.iter_mut().zip(h) {
                *c += weight * hv;
            }
        }
        for j in 0..num_codes {
            mutual_information[j][k] = marginal[j] - conditional[j];
        }
    }
    Ok(assemble(
        mutual_information,
        factor_entropy,
        n,
        config.num_entropy_samples,
        MIG_CONTINUOUS_VERSION,
    ))
}

/// Per-code entropy of the mixture `(1/|M|) Σ_{n∈M} q(z_j|x_n)`, estimated from at most
/// `num_samples` draws `z ~ q(z|x_m)`, `m ∈ M`.
fn posterior_entropies(
    mu: &CodeMatrix,
    logvar: &CodeMatrix,
    members: &[usize],
    num_samples: usize,
    rng: &mut dyn RngCore,
) -> Vec<f64> {
    const HALF_LN_TWO_PI: f64 = 0.918_938_533_204_672_8;
    let d = mu.num_codes();
    let chosen: Vec<usize> = sample(rng, members.len(), num_samples.min(members.len()))
        .into_iter()
        .map(|i| members[i])
        .collect();
    let ln_members = (members.len() as f64).ln();
    (0..d)
        .map(|j| {
            // Column-major copies of the mixture: means, inverse variances, log normalisers.
            let means: Vec<f64> = members.iter().map(|&m| mu.row(m)[j]).collect();
            let inverse_variances: Vec<f64> =
                members.iter().map(|&m| (-logvar.row(m)[j]).exp()).collect();
            let log_normalisers: Vec<f64> = members
                .iter()
                .map(|&m| -HALF_LN_TWO_PI - 0.5 * logvar.row(m)[j])
                .collect();
            let draws: Vec<f64> = chosen
                .iter()
                .map(|&m| mu.row(m)[j] + (0.5 * logvar.row(m)[j]).exp() * standard_normal(rng))
                .collect();
            let total: f64 = draws
                .par_iter()
                .map(|&z| {
                    let log_density = |i: usize| {
                        let diff = z - means[i];
                        log_normalisers[i] - 0.5 * diff * diff * inverse_variances[i]
                    };
                    let max = (0..means.len()).map(log_density).fold(f64::NEG_INFINITY, f64::max);
                    let sum: f64 = (0..means.len()).map(|i| (log_density(i) - max).exp()).sum();
                    -(max + sum.ln() - ln_members)
                })
                .sum();
            total / chosen.len() as f64
        })
        .collect()
}

/// One N(0, 1) draw by the Box–Muller transform (keeps the crate free of `rand_distr`).
pub(crate) fn standard_normal(rng: &mut dyn RngCore) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
