//! Single-neuron classification (SNC; Mahon, Sha, Lukasiewicz, "Correcting Flaws in Common
//! Disentanglement Metrics", TMLR 2023; authors' code Lou1sM/snc_nk, `snc_nk.py` and `utils.py`).
//!
//! Every factor is matched to a distinct code by a minimum-cost assignment on negative mutual
//! information; the matched code alone then classifies the factor by cutting it at its own
//! quantiles into as many bins as the factor has values and mapping bins to values one-to-one.

use infobound_data::{FactorMatrix, GroundTruthDataset};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::info::{check_factors_vary, check_paired, compress_labels, discrete_entropy};
use crate::{CodeMatrix, MetricsError, Representation, sample_train_test};

/// Version tag of [`snc`] results.
pub const SNC_VERSION: &str = "infobound-snc/1";

/// Sampling parameters of [`snc_from_dataset`] (SNC itself has none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SncConfig {
    /// Training points (10,000).
    pub num_train: usize,
    /// Test points (5,000).
    pub num_test: usize,
    /// Encoder batch size (16).
    pub batch_size: usize,
}

impl Default for SncConfig {
    fn default() -> Self {
        Self {
            num_train: 10_000,
            num_test: 5_000,
            batch_size: 16,
        }
    }
}

/// Result of [`snc`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SncResult {
    /// Mean test accuracy over factors.
    pub score: f64,
    /// Mean training accuracy over factors.
    pub train_score: f64,
    /// Test accuracy per factor.
    pub per_factor_test_accuracy: Vec<f64>,
    /// Training accuracy per factor.
    pub per_factor_train_accuracy: Vec<f64>,
    /// The code matched to each factor.
    pub matched_code: Vec<usize>,
    /// `I(b_K(z_j); v_k)` in nats, `[code][factor]`, with `b_K` the K-quantile binning.
    pub mutual_information: Vec<Vec<f64>>,
    /// Metric name and version.
    pub metric_version: String,
}

/// SNC. For factor `k` with `K_k` values and code `j`, `b(z_j)` = the number of the `K_k` cut
/// points `c_m = sort(z_j)[⌊m n / K_k⌋]`, `m = 0..K_k`, that exceed `z_j` (quantile bins);
/// `I_jk = H(v_k) − H(v_k | b(z_j))`. Factors are matched to codes minimising `−Σ I` (Hungarian
/// algorithm; with more factors than codes, codes are reused as the authors' code does by tiling
/// the cost matrix). The matched code predicts `v_k` through its quantile bins (the lowest cut
/// lowered to the test minimum) and the one-to-one bin → value map with most training agreements;
/// SNC = mean over factors of test accuracy.
///
/// Deviations from the released code, which only matter in corner cases: the bin → value map is
/// computed on all training points (the code subsamples 30,000), and a test bin never seen in
/// training counts as an error (the code raises).
pub fn snc(
    train_codes: &CodeMatrix,
    train_factors: &FactorMatrix,
    test_codes: &CodeMatrix,
    test_factors: &FactorMatrix,
) -> Result<SncResult, MetricsError> {
    check_paired(train_codes, train_factors)?;
    check_factors_vary(train_factors)?;
    if test_codes.num_samples() != test_factors.len() || test_codes.num_samples() == 0 {
        return Err(MetricsError::ShapeMismatch(
            "test codes and factors must be non-empty and pair up".into(),
        ));
    }
    if test_codes.num_codes() != train_codes.num_codes()
        || test_factors.num_factors() != train_factors.num_factors()
    {
        return Err(MetricsError::ShapeMismatch(
            "train and test differ in number of codes or factors".into(),
        ));
    }
    let num_codes = train_codes.num_codes();
    let num_factors = train_factors.num_factors();
    let code_columns: Vec<Vec<f64>> = (0..num_codes).map(|j| train_codes.column(j)).collect();
    let factor_columns: Vec<Vec<usize>> =
        (0..num_factors).map(|k| train_factors.column(k)).collect();
    let mut mutual_information = vec![vec![0.0; num_factors]; num_codes];
    for (k, y) in factor_columns.iter().enumerate() {
        let num_values = compress_labels(y).1;
        let h = discrete_entropy(y)?;
        for (j, z) in code_columns.iter().enumerate() {
            let cuts = quantile_cuts(z, num_values);
            let bins = apply_cuts(z, &cuts);
            mutual_information[j][k] = h - conditional_entropy(y, &bins);
        }
    }
    // Rows: factors; columns: codes, tiled when there are more factors than codes.
    let copies = num_factors.div_ceil(num_codes);
    let cost: Vec<Vec<f64>> = (0..num_factors)
        .map(|k| {
            (0..num_codes * copies)
                .map(|c| -mutual_information[c % num_codes][k])
                .collect()
        })
        .collect();
    let matched_code: Vec<usize> = hungarian(&cost)
        .into_iter()
        .map(|c| c % num_codes)
        .collect();
    let mut per_factor_train_accuracy = Vec::with_capacity(num_factors);
    let mut per_factor_test_accuracy = Vec::with_capacity(num_factors);
    for (k, y) in factor_columns.iter().enumerate() {
        let z = &code_columns[matched_code[k]];
        let z_test = test_codes.column(matched_code[k]);
        let y_test = test_factors.column(k);
        let (train, test) = single_code_accuracy(z, y, &z_test, &y_test);
        per_factor_train_accuracy.push(train);
        per_factor_test_accuracy.push(test);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    Ok(SncResult {
        score: mean(&per_factor_test_accuracy),
        train_score: mean(&per_factor_train_accuracy),
        per_factor_test_accuracy,
        per_factor_train_accuracy,
        matched_code,
        mutual_information,
        metric_version: SNC_VERSION.into(),
    })
}

/// Samples `num_train` training and `num_test` test points and returns [`snc`] on them.
pub fn snc_from_dataset(
    dataset: &dyn GroundTruthDataset,
    representation: &mut dyn Representation,
    config: &SncConfig,
    rng: &mut dyn RngCore,
) -> Result<SncResult, MetricsError> {
    let ((train_codes, train_factors), (test_codes, test_factors)) = sample_train_test(
        dataset,
        representation,
        config.num_train,
        config.num_test,
        config.batch_size,
        rng,
    )?;
    snc(&train_codes, &train_factors, &test_codes, &test_factors)
}

/// `sort(z)[⌊m · (n / K)⌋]` for `m = 0..K` (NumPy `arange(0, n, n/K).astype(int)` indexing).
fn quantile_cuts(z: &[f64], num_bins: usize) -> Vec<f64> {
    let mut sorted = z.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let step = z.len() as f64 / num_bins as f64;
    (0..num_bins)
        .map(|m| sorted[((m as f64 * step) as usize).min(z.len() - 1)])
        .collect()
}

/// Bin of each value: the number of cuts strictly above it.
fn apply_cuts(z: &[f64], cuts: &[f64]) -> Vec<usize> {
    z.iter()
        .map(|&x| cuts.iter().filter(|&&c| x < c).count())
        .collect()
}

/// `H(y | b) = Σ_b p(b) H(y | b)` in nats.
fn conditional_entropy(y: &[usize], bins: &[usize]) -> f64 {
    let n = y.len() as f64;
    let num_bins = bins.iter().max().map_or(0, |m| m + 1);
    (0..num_bins)
        .map(|b| {
            let members: Vec<usize> = y
                .iter()
                .zip(bins)
                .filter(|&(_, &bb)| bb == b)
                .map(|(&v, _)| v)
                .collect();
            if members.is_empty() {
                return 0.0;
            }
            let (ids, k) = compress_labels(&members);
            let mut counts = vec![0usize; k];
            for i in ids {
                counts[i] += 1;
            }
            let m = members.len() as f64;
            let h: f64 = counts
                .iter()
                .map(|&c| {
                    let p = c as f64 / m;
                    -p * p.ln()
                })
                .sum();
            h * m / n
        })
        .sum()
}

/// Train and test accuracy of the quantile-bin classifier of `y` from one code.
fn single_code_accuracy(z: &[f64], y: &[usize], z_test: &[f64], y_test: &[usize]) -> (f64, f64) {
    let (y_ids, num_values) = compress_labels(y);
    let mut values = y.to_vec();
    values.sort_unstable();
    values.dedup();
    let mut cuts = quantile_cuts(z, num_values);
    let test_min = z_test.iter().copied().fold(f64::INFINITY, f64::min);
    cuts[0] = cuts[0].min(test_min);
    let bins = apply_cuts(z, &cuts);
    let bins_test = apply_cuts(z_test, &cuts);
    // Bins take values 0..num_values; agreement[bin][value].
    let mut agreement = vec![vec![0usize; num_values]; num_values + 1];
    for (&b, &v) in bins.iter().zip(&y_ids) {
        agreement[b][v] += 1;
    }
    let occupied: Vec<usize> = (0..=num_values)
        .filter(|&b| agreement[b].iter().any(|&c| c > 0))
        .collect();
    // Minimise disagreements #(bin = b, y ≠ v) over one-to-one bin → value maps.
    let cost: Vec<Vec<f64>> = occupied
        .iter()
        .map(|&b| {
            let total: usize = agreement[b].iter().sum();
            agreement[b].iter().map(|&c| (total - c) as f64).collect()
        })
        .collect();
    let mut map = vec![None; num_values + 1];
    if occupied.len() <= num_values {
        for (row, value) in hungarian(&cost).into_iter().enumerate() {
            map[occupied[row]] = Some(values[value]);
        }
    }
    let accuracy = |bins: &[usize], truth: &[usize]| {
        let correct = bins
            .iter()
            .zip(truth)
            .filter(|&(&b, &t)| map.get(b).copied().flatten() == Some(t))
            .count();
        correct as f64 / truth.len() as f64
    };
    (accuracy(&bins, y), accuracy(&bins_test, y_test))
}

/// Minimum-cost assignment of every row to a distinct column (`rows ≤ columns`) by the
/// Hungarian algorithm with potentials (Kuhn 1955; Munkres 1957), `O(rows² · columns)`.
pub(crate) fn hungarian(cost: &[Vec<f64>]) -> Vec<usize> {
    let n = cost.len();
    let m = cost.first().map_or(0, Vec::len);
    // 1-based potentials u (rows), v (columns); way[j]: previous column on the augmenting path.
    let mut u = vec![0.0; n + 1];
    let mut v = vec![0.0; m + 1];
    let mut row_of = vec![0usize; m + 1];
    let mut way = vec![0usize; m + 1];
    for i in 1..=n {
        row_of[0] = i;
        let mut j0 = 0;
        let mut min_to = vec![f64::INFINITY; m + 1];
        let mut used = vec![false; m + 1];
        loop {
            used[j0] = true;
            let i0 = row_of[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=m {
                if used[j] {
                    continue;
                }
                let reduced = cost[i0 - 1][j - 1] - u[i0] - v[j];
                if reduced < min_to[j] {
                    min_to[j] = reduced;
                    way[j] = j0;
                }
                if min_to[j] < delta {
                    delta = min_to[j];
                    j1 = j;
                }
            }
            for j in 0..=m {
                if used[j] {
                    u[row_of[j]] += delta;
                    v[j] -= delta;
                } else {
                    min_to[j] -= delta;
                }
            }
            j0 = j1;
            if row_of[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            row_of[j0] = row_of[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut assignment = vec![0; n];
    for j in 1..=m {
        if row_of[j] > 0 {
            assignment[row_of[j] - 1] = j - 1;
        }
    }
    assignment
}

/// Registry entry of single-neuron classification (`snc`, default configuration).
pub(crate) const SNC_SPEC: crate::suite::MetricSpec = crate::suite::MetricSpec {
    name: "snc",
    input: crate::suite::MetricInput::CodesAndFactors,
    uses_test_split: true,
    run: |data| {
        let (train_codes, train_factors, test_codes, test_factors) =
            SNC_SPEC.codes_and_factors(data)?;
        let r = snc(train_codes, train_factors, test_codes, test_factors)?;
        crate::suite::MetricReport::new(
            "snc",
            &[("snc.train", r.train_score), ("snc.test", r.score)],
            &r,
        )
    },
};
