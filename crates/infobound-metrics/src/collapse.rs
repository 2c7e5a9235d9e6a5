//! Representation-collapse diagnostics for self-supervised features.
//!
//! - Effective rank (Roy & Vetterli, "The effective rank: a measure of effective dimensionality",
//!   EUSIPCO 2007): with singular values σ of the n × d feature matrix and `p_k = σ_k / Σ σ`,
//!   `erank = exp(−Σ_k p_k log p_k)` (`0 log 0 = 0`), between 1 and min(n, d).
//! - Uniformity (Wang & Isola, "Understanding Contrastive Representation Learning through Alignment
//!   and Uniformity on the Hypersphere", ICML 2020): `log( mean_{i<j} exp(−t ‖z_i − z_j‖²) )`, t = 2.
//! - Alignment (same paper): `mean_i ‖z_i − z'_i‖^α` over two views, α = 2.
//!
//! The paper evaluates uniformity and alignment on L2-normalised features, which is the default here.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::linalg::{column_gram, row_gram, symmetric_eigenvalues, unit_rows, view};
use crate::{CodeMatrix, MetricsError};

/// Version tag of the collapse diagnostics implemented here.
pub const COLLAPSE_VERSION: &str = "infobound-collapse/1";

/// Parameters of [`collapse_diagnostics`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CollapseConfig {
    /// Uniformity temperature t.
    pub uniformity_t: f64,
    /// Alignment exponent α.
    pub alignment_alpha: f64,
    /// L2-normalise rows before uniformity and alignment (the effective rank uses the raw features).
    pub normalize: bool,
}

impl Default for CollapseConfig {
    fn default() -> Self {
        Self {
            uniformity_t: 2.0,
            alignment_alpha: 2.0,
            normalize: true,
        }
    }
}

/// Collapse diagnostics of one feature set (and, for alignment, its second view).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollapseDiagnostics {
    /// Effective rank of the first view's features.
    pub effective_rank: f64,
    /// Uniformity of the first view (lower is more uniform; ≤ 0).
    pub uniformity: f64,
    /// Alignment between the views, when a second view was given.
    pub alignment: Option<f64>,
    /// Number of samples.
    pub num_samples: usize,
    /// Feature dimension.
    pub feature_dim: usize,
    /// Parameters used.
    pub config: CollapseConfig,
    /// Metric name and version, [`COLLAPSE_VERSION`].
    pub metric_version: String,
}

/// Effective rank `exp(H(σ / Σσ))` of `features` (n × d), from the eigenvalues of the smaller Gram
/// matrix (σ_k² are its eigenvalues). Rejects an all-zero matrix.
pub fn effective_rank(features: &CodeMatrix) -> Result<f64, MetricsError> {
    let x = view(features);
    let gram = if features.num_samples() <= features.num_codes() {
        row_gram(x)
    } else {
        column_gram(x)
    };
    let singular: Vec<f64> = symmetric_eigenvalues(gram.as_ref())?
        .iter()
        .map(|l| l.max(0.0).sqrt())
        .collect();
    let total: f64 = singular.iter().sum();
    if total <= 0.0 {
        return Err(MetricsError::InvalidInput(
            "the effective rank of an all-zero matrix is undefined".into(),
        ));
    }
    let entropy: f64 = singular
        .iter()
        .map(|s| s / total)
        .filter(|&p| p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    Ok(entropy.exp())
}

/// Uniformity `log mean_{i<j} exp(−t ‖z_i − z_j‖²)` over all pairs of rows (n ≥ 2), computed with
/// a log-sum-exp per row so that large t or distances do not underflow.
pub fn uniformity(features: &CodeMatrix, t: f64) -> Result<f64, MetricsError> {
    let n = features.num_samples();
    if n < 2 {
        return Err(MetricsError::InvalidInput(format!(
            "uniformity needs at least 2 samples, got {n}"
        )));
    }
    if !(t.is_finite() && t > 0.0) {
        return Err(MetricsError::InvalidParameter(format!(
            "uniformity t must be positive, got {t}"
        )));
    }
    let row_terms: Vec<(f64, f64)> = (0..n - 1)
        .into_par_iter()
        .map(|i| {
            let zi = features.row(i);
            let exponents: Vec<f64> = (i + 1..n)
                .map(|j| {
                    let d2: f64 = zi
                        .iter()
                        .zip(features.row(j))
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum();
                    -t * d2
                })
                .collect();
            let max = exponents.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (max, exponents.iter().map(|e| (e - max).exp()).sum::<f64>())
        })
        .collect();
    let max = row_terms
        .iter()
        .map(|r| r.0)
        .fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = row_terms.iter().map(|(m, s)| s * (m - max).exp()).sum();
    let pairs = (n * (n - 1) / 2) as f64;
    Ok(max + sum.ln() - pairs.ln())
}

/// Alignment `mean_i ‖a_i − b_i‖^α` between paired rows of two views.
pub fn alignment(
    view_a: &CodeMatrix,
    view_b: &CodeMatrix,
    alpha: f64,
) -> Result<f64, MetricsError> {
    if view_a.num_samples() != view_b.num_samples() || view_a.num_codes() != view_b.num_codes() {
        return Err(MetricsError::ShapeMismatch(format!(
            "views of shape {}×{} and {}×{}",
            view_a.num_samples(),
            view_a.num_codes(),
            view_b.num_samples(),
            view_b.num_codes()
        )));
    }
    if view_a.num_samples() == 0 {
        return Err(MetricsError::InvalidInput(
            "alignment of empty views".into(),
        ));
    }
    if !(alpha.is_finite() && alpha > 0.0) {
        return Err(MetricsError::InvalidParameter(format!(
            "alignment alpha must be positive, got {alpha}"
        )));
    }
    let total: f64 = view_a
        .rows()
        .zip(view_b.rows())
        .map(|(a, b)| {
            let d2: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
            d2.sqrt().powf(alpha)
        })
        .sum();
    Ok(total / view_a.num_samples() as f64)
}

/// Effective rank, uniformity and (with a second view) alignment of `view_a`.
pub fn collapse_diagnostics(
    view_a: &CodeMatrix,
    view_b: Option<&CodeMatrix>,
    config: &CollapseConfig,
) -> Result<CollapseDiagnostics, MetricsError> {
    let prepare = |x: &CodeMatrix| {
        if config.normalize {
            unit_rows(x, "collapse diagnostics")
        } else {
            Ok(x.clone())
        }
    };
    let a = prepare(view_a)?;
    let alignment = match view_b {
        Some(b) => Some(alignment(&a, &prepare(b)?, config.alignment_alpha)?),
        None => None,
    };
    Ok(CollapseDiagnostics {
        effective_rank: effective_rank(view_a)?,
        uniformity: uniformity(&a, config.uniformity_t)?,
        alignment,
        num_samples: view_a.num_samples(),
        feature_dim: view_a.num_codes(),
        config: *config,
        metric_version: COLLAPSE_VERSION.into(),
    })
}

/// Registry entry of the collapse diagnostics (`collapse`, default configuration).
pub(crate) const COLLAPSE_SPEC: crate::suite::MetricSpec = crate::suite::MetricSpec {
    name: "collapse",
    input: crate::suite::MetricInput::Features,
    uses_test_split: false,
    run: |data| {
        let features = COLLAPSE_SPEC.features(data)?;
        let r = collapse_diagnostics(features, None, &CollapseConfig::default())?;
        let mut headline = vec![
            ("collapse.effective_rank", r.effective_rank),
            ("collapse.uniformity", r.uniformity),
        ];
        headline.extend(r.alignment.map(|a| ("collapse.alignment", a)));
        crate::suite::MetricReport::new("collapse", &headline, &r)
    },
};
