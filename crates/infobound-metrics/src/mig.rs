//! Mutual Information Gap (Chen, Li, Grosse, Duvenaud, "Isolating Sources of Disentanglement in
//! Variational Autoencoders", NeurIPS 2018), in its two published estimators:
//! [`mig_discrete`] (histogram MI, disentanglement_lib `mig.py`) and [`mig_continuous`]
//! (posterior-based entropies, rtqichen/beta-tcvae `metric_helpers/mi_metric.py`).

use infobound_data::{FactorMatrix, GroundTruthDataset};
use rand::{Rng, RngCore, seq::index::sample};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::info::{
    check_factors_vary, check_paired, compress_labels, discrete_entropy, discretize_codes,
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
    /// Posterior draws `S` per entropy estimate (1,000; Chen et al. use 10,000 on a GPU — the
    /// cost is `S × points × codes` Gaussian log-densities).
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
/// `N` points with known factors (Chen et al. 2018, §4; rtqichen/beta-tcvae `mi_metric.py`).
///
/// Draw `S` points `n_s` without replacement and `z^s ~ q(z|x_{n_s})`. With
/// `q(z_j) = (1/N) Σ_n q(z_j|x_n)` and `q(z_j | v_k = v) = (1/|D_v|) Σ_{n∈D_v} q(z_j|x_n)`
/// (`D_v` the points whose factor `k` equals `v`):
/// `H(z_j) ≈ −(1/S) Σ_s ln q(z_j^s)`, `H(z_j | v_k) ≈ −(1/S) Σ_s ln q(z_j^s | v_k = v_k(n_s))`,
/// `I(z_j; v_k) = H(z_j) − H(z_j | v_k)`, and the gap is normalised by the empirical `H(v_k)`
/// (= ln K_k on a full factor grid, as in the original). Every draw serves the marginal and all
/// conditional entropies, so the cost is `S · N · codes` Gaussian densities.
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
    let num_factors = factors.num_factors();
    let groups: Vec<FactorGroups> = (0..num_factors)
        .map(|k| {
            let (value_of, num_values) = compress_labels(&factors.column(k));
            let mut members = vec![Vec::new(); num_values];
            for (point, &v) in value_of.iter().enumerate() {
                members[v].push(point);
            }
            FactorGroups { value_of, members }
        })
        .collect();
    let chosen = sample(rng, n, config.num_entropy_samples.min(n)).into_vec();
    let mut mutual_information = vec![vec![0.0; num_factors]; mu.num_codes()];
    for (j, mi_row) in mutual_information.iter_mut().enumerate() {
        let draws: Vec<(usize, f64)> = chosen
            .iter()
            .map(|&m| {
                (
                    m,
                    mu.row(m)[j] + (0.5 * logvar.row(m)[j]).exp() * standard_normal(rng),
                )
            })
            .collect();
        let (marginal, conditional) = posterior_entropies(mu, logvar, j, &groups, &draws);
        for (mi, h) in mi_row.iter_mut().zip(conditional) {
            *mi = marginal - h;
        }
    }
    let factor_entropy = (0..num_factors)
        .map(|k| discrete_entropy(&factors.column(k)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(assemble(
        mutual_information,
        factor_entropy,
        n,
        config.num_entropy_samples.min(n),
        MIG_CONTINUOUS_VERSION,
    ))
}

/// The points sharing each value of one factor.
struct FactorGroups {
    /// Value id of every point.
    value_of: Vec<usize>,
    /// Points of every value id.
    members: Vec<Vec<usize>>,
}

/// `(H(z_j), [H(z_j | v_k)]_k)` from `draws` `(source point, z_j)`.
fn posterior_entropies(
    mu: &CodeMatrix,
    logvar: &CodeMatrix,
    j: usize,
    groups: &[FactorGroups],
    draws: &[(usize, f64)],
) -> (f64, Vec<f64>) {
    const HALF_LN_TWO_PI: f64 = 0.918_938_533_204_672_8;
    let n = mu.num_samples();
    // Column-major copies of the mixture: means, inverse variances, log normalisers.
    let means: Vec<f64> = (0..n).map(|m| mu.row(m)[j]).collect();
    let inverse_variances: Vec<f64> = (0..n).map(|m| (-logvar.row(m)[j]).exp()).collect();
    let log_normalisers: Vec<f64> = (0..n)
        .map(|m| -HALF_LN_TWO_PI - 0.5 * logvar.row(m)[j])
        .collect();
    let ln_n = (n as f64).ln();
    let num_factors = groups.len();
    let (marginal, conditional) = draws
        .par_iter()
        .map(|&(source, z)| {
            let log_density: Vec<f64> = (0..n)
                .map(|m| {
                    let diff = z - means[m];
                    log_normalisers[m] - 0.5 * diff * diff * inverse_variances[m]
                })
                .collect();
            let max = log_density
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max);
            let scaled: Vec<f64> = log_density.iter().map(|l| (l - max).exp()).collect();
            let marginal = -(max + scaled.iter().sum::<f64>().ln() - ln_n);
            let conditional: Vec<f64> = groups
                .iter()
                .map(|g| {
                    let group = &g.members[g.value_of[source]];
                    let sum: f64 = group.iter().map(|&m| scaled[m]).sum();
                    // The source point is in its own group, so the sum is positive unless every
                    // term underflowed against the global maximum: then rescale by the group's.
                    let log_sum = if sum > 0.0 {
                        max + sum.ln()
                    } else {
                        let group_max = group
                            .iter()
                            .map(|&m| log_density[m])
                            .fold(f64::NEG_INFINITY, f64::max);
                        group_max
                            + group
                                .iter()
                                .map(|&m| (log_density[m] - group_max).exp())
                                .sum::<f64>()
                                .ln()
                    };
                    -(log_sum - (group.len() as f64).ln())
                })
                .collect();
            (marginal, conditional)
        })
        .reduce(
            || (0.0, vec![0.0; num_factors]),
            |(ma, mut ca), (mb, cb)| {
                ca.iter_mut().zip(cb).for_each(|(a, b)| *a += b);
                (ma + mb, ca)
            },
        );
    let s = draws.len() as f64;
    (
        marginal / s,
        conditional.into_iter().map(|c| c / s).collect(),
    )
}

/// One N(0, 1) draw by the Box–Muller transform (keeps the crate free of `rand_distr`).
pub(crate) fn standard_normal(rng: &mut dyn RngCore) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Registry entry of discrete MIG (`mig`, default configuration).
pub(crate) const MIG_SPEC: crate::suite::MetricSpec = crate::suite::MetricSpec {
    name: "mig",
    input: crate::suite::MetricInput::CodesAndFactors,
    uses_test_split: false,
    run: |data| {
        let (train_codes, train_factors, _, _) = MIG_SPEC.codes_and_factors(data)?;
        let r = mig_discrete(train_codes, train_factors, &MigConfig::default())?;
        crate::suite::MetricReport::new("mig", &[("mig", r.score)], &r)
    },
};
