//! Histogram discretisation of continuous codes and plug-in (histogram) mutual information and
//! entropy of discrete variables, as disentanglement_lib's `utils._histogram_discretize` and
//! `utils.discrete_mutual_info` / `utils.discrete_entropy` compute them.

use infobound_data::FactorMatrix;

use crate::{CodeMatrix, MetricsError};

/// Bin indices of each code column: `bins[code][sample]`, values in `1..=num_bins`.
pub type DiscreteCodes = Vec<Vec<usize>>;

/// Discretises every code column into `num_bins` equal-width bins over that column's own range.
///
/// Reproduces NumPy exactly: the edges are `np.histogram(code, num_bins)[1]`, i.e.
/// `e_i = i·((max − min)/num_bins) + min` (with `min − 0.5`, `max + 0.5` for a constant column),
/// and the bin of `x` is `np.digitize(x, e[:-1])` = #{i < num_bins : e_i ≤ x} ∈ 1..=num_bins, so the
/// maximum lands in bin `num_bins` (Locatello et al., ICML 2019, disentanglement_lib
/// `_histogram_discretize`).
pub fn discretize_codes(
    codes: &CodeMatrix,
    num_bins: usize,
) -> Result<DiscreteCodes, MetricsError> {
    if num_bins == 0 {
        return Err(MetricsError::InvalidParameter(
            "num_bins must be positive".into(),
        ));
    }
    Ok((0..codes.num_codes())
        .map(|j| discretize_column(&codes.column(j), num_bins))
        .collect())
}

fn discretize_column(values: &[f64], num_bins: usize) -> Vec<usize> {
    let (mut lo, mut hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if lo == hi {
        // np.histogram widens a degenerate range by one half on each side.
        lo -= 0.5;
        hi += 0.5;
    }
    // np.linspace: step = delta / div, y = i * step + start.
    let step = (hi - lo) / num_bins as f64;
    let edges: Vec<f64> = (0..num_bins).map(|i| i as f64 * step + lo).collect();
    values
        .iter()
        .map(|&v| edges.partition_point(|&e| e <= v))
        .collect()
}

/// Plug-in mutual information (nats) between two discrete label vectors of equal length:
/// `I(a; b) = Σ_ij (n_ij/n) · ln(n · n_ij / (n_i· n_·j))`, clipped at 0, and exactly 0 when either
/// vector takes a single value (scikit-learn `mutual_info_score`, used by disentanglement_lib).
pub fn discrete_mutual_information(a: &[usize], b: &[usize]) -> Result<f64, MetricsError> {
    if a.len() != b.len() {
        return Err(MetricsError::ShapeMismatch(format!(
            "label vectors of length {} and {}",
            a.len(),
            b.len()
        )));
    }
    if a.is_empty() {
        return Err(MetricsError::InvalidInput("empty label vectors".into()));
    }
    let (a_ids, num_a) = compress_labels(a);
    let (b_ids, num_b) = compress_labels(b);
    if num_a == 1 || num_b == 1 {
        return Ok(0.0);
    }
    let mut joint = vec![0usize; num_a * num_b];
    let mut count_a = vec![0usize; num_a];
    let mut count_b = vec![0usize; num_b];
    for (&i, &j) in a_ids.iter().zip(&b_ids) {
        joint[i * num_b + j] += 1;
        count_a[i] += 1;
        count_b[j] += 1;
    }
    let n = a.len() as f64;
    let ln_n = n.ln();
    let mut mi = 0.0;
    for i in 0..num_a {
        for j in 0..num_b {
            let nij = joint[i * num_b + j];
            if nij == 0 {
                continue;
            }
            let p = nij as f64 / n;
            let term = p
                * ((nij as f64).ln() + ln_n - (count_a[i] as f64).ln() - (count_b[j] as f64).ln());
            // scikit-learn zeroes terms below machine epsilon before summing.
            if term.abs() >= f64::EPSILON {
                mi += term;
            }
        }
    }
    Ok(mi.max(0.0))
}

/// Plug-in entropy (nats) of a discrete label vector, `H(a) = I(a; a) = −Σ_i (n_i/n) ln(n_i/n)`.
pub fn discrete_entropy(a: &[usize]) -> Result<f64, MetricsError> {
    discrete_mutual_information(a, a)
}

/// Mutual information matrix `mi[code][factor]` between discretised codes and factors.
pub fn mutual_information_matrix(
    discrete_codes: &DiscreteCodes,
    factors: &FactorMatrix,
) -> Result<Vec<Vec<f64>>, MetricsError> {
    let factor_columns: Vec<Vec<usize>> = (0..factors.num_factors())
        .map(|k| factors.column(k))
        .collect();
    discrete_codes
        .iter()
        .map(|code| {
            factor_columns
                .iter()
                .map(|f| discrete_mutual_information(code, f))
                .collect()
        })
        .collect()
}

/// Maps arbitrary labels to `0..num_distinct` in increasing label order.
pub(crate) fn compress_labels(labels: &[usize]) -> (Vec<usize>, usize) {
    let mut distinct = labels.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let ids = labels
        .iter()
        .map(|l| distinct.partition_point(|d| d < l))
        .collect();
    (ids, distinct.len())
}

/// Checks that codes and factors pair up row by row and that there are at least two samples.
pub(crate) fn check_paired(codes: &CodeMatrix, factors: &FactorMatrix) -> Result<(), MetricsError> {
    if codes.num_samples() != factors.len() {
        return Err(MetricsError::ShapeMismatch(format!(
            "{} code rows but {} factor rows",
            codes.num_samples(),
            factors.len()
        )));
    }
    if codes.num_samples() < 2 {
        return Err(MetricsError::InvalidInput(format!(
            "need at least 2 samples, got {}",
            codes.num_samples()
        )));
    }
    Ok(())
}

/// Rejects factors that take a single value in `factors` (their entropy is 0, so every
/// normalised score would divide by zero).
pub(crate) fn check_factors_vary(factors: &FactorMatrix) -> Result<(), MetricsError> {
    let Some(first_row) = factors.rows().next() else {
        return Err(MetricsError::InvalidInput("no factor rows".into()));
    };
    for (k, &first) in first_row.iter().enumerate() {
        if factors.rows().all(|r| r[k] == first) {
            return Err(MetricsError::InvalidInput(format!(
                "factor {k} takes a single value"
            )));
        }
    }
    Ok(())
}
