//! The Vendi score (Friedman & Dieng, "The Vendi Score: A Diversity Evaluation Metric for Machine
//! Learning", TMLR 2023; reference implementation vertaix/Vendi-Score `vendi_score/vendi.py`).
//!
//! With a positive semi-definite kernel matrix `K` (n × n, `K_ii = 1`) and λ the eigenvalues of
//! `K / n` (a probability vector), the Vendi score of order q is the exponential of the Rényi
//! entropy of λ:
//!
//! `VS_q = exp( log(Σ_i λ_i^q) / (1 − q) )`, `VS_1 = exp(−Σ_i λ_i log λ_i)`, `VS_∞ = 1 / max_i λ_i`.
//!
//! It is the "effective number of distinct samples": n identical samples score 1, n mutually
//! orthogonal samples score n.

use infobound_data::ImageBatch;
use serde::{Deserialize, Serialize};

use crate::fid::{FeatureExtractor, PixelFeatures};
use crate::linalg::{column_gram, row_gram, symmetric_eigenvalues, unit_rows, view};
use crate::{CodeMatrix, MetricsError};

/// Version tag of the Vendi definition implemented here; bumped when a number would change.
pub const VENDI_VERSION: &str = "infobound-vendi/1";

/// Eigenvalues of `K / n` at or below this are treated as zero (as in the reference vectors): they
/// are round-off of a rank-deficient kernel, and `0 log 0 = 0`.
pub const VENDI_EIGENVALUE_FLOOR: f64 = 1e-12;

/// Side length the pixel Vendi score resizes images to (the Vendi-Score package's default).
pub const PIXEL_VENDI_SIDE: usize = 32;

/// Order q of the Rényi entropy behind the score.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VendiOrder {
    /// q = 1: Shannon entropy, `exp(−Σ λ log λ)` (the paper's default).
    #[default]
    Shannon,
    /// q = ∞: `1 / max λ`.
    Infinity,
    /// Any finite q ≥ 0; q = 1 is the Shannon limit and q = 0 counts the non-zero eigenvalues.
    Q(f64),
}

/// Which eigenproblem to solve for the cosine kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VendiForm {
    /// The smaller of the two (same non-zero spectrum).
    #[default]
    Auto,
    /// Eigenvalues of the n × n kernel `X̂ X̂ᵀ / n`.
    Primal,
    /// Eigenvalues of the d × d matrix `X̂ᵀ X̂ / n`, which has the same non-zero eigenvalues.
    Dual,
}

/// Parameters of [`vendi_score`].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VendiConfig {
    /// Order of the entropy.
    pub order: VendiOrder,
    /// Eigenproblem form.
    pub form: VendiForm,
}

/// A Vendi score and how it was computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VendiScore {
    /// `VS_q`, between 1 and n.
    pub score: f64,
    /// Order used.
    pub order: VendiOrder,
    /// Kernel: `cosine`, `pixel_cosine` or `user`.
    pub kernel: String,
    /// Form actually solved (never `Auto`).
    pub form: VendiForm,
    /// Number of samples n.
    pub num_samples: usize,
    /// Eigenvalues of `K / n` above [`VENDI_EIGENVALUE_FLOOR`].
    pub num_nonzero_eigenvalues: usize,
    /// Metric name and version, [`VENDI_VERSION`].
    pub metric_version: String,
}

/// Rényi entropy of order q of the probability vector `eigenvalues` (entries ≤ the floor dropped),
/// exponentiated: the Vendi score of that spectrum.
pub fn vendi_from_eigenvalues(eigenvalues: &[f64], order: VendiOrder) -> Result<f64, MetricsError> {
    let p: Vec<f64> = eigenvalues
        .iter()
        .copied()
        .filter(|&l| l > VENDI_EIGENVALUE_FLOOR)
        .collect();
    if p.is_empty() {
        return Err(MetricsError::InvalidInput(
            "the kernel has no eigenvalue above the floor".into(),
        ));
    }
    let shannon = |p: &[f64]| (-p.iter().map(|l| l * l.ln()).sum::<f64>()).exp();
    match order {
        VendiOrder::Shannon => Ok(shannon(&p)),
        VendiOrder::Infinity => Ok(1.0 / p.iter().copied().fold(f64::MIN, f64::max)),
        VendiOrder::Q(q) if !q.is_finite() || q < 0.0 => Err(MetricsError::InvalidParameter(
            format!("Vendi order q must be finite and ≥ 0 (use Infinity for q = ∞), got {q}"),
        )),
        VendiOrder::Q(1.0) => Ok(shannon(&p)),
        VendiOrder::Q(q) => Ok((p.iter().map(|l| l.powf(q)).sum::<f64>().ln() / (1.0 - q)).exp()),
    }
}

/// Vendi score of the rows of `features` under the cosine kernel `k(x, y) = x·y / (‖x‖‖y‖)`.
///
/// The eigenvalues come from `X̂ X̂ᵀ / n` (primal) or `X̂ᵀ X̂ / n` (dual), whichever `config.form`
/// asks for or, with `Auto`, whichever is smaller. Zero rows (no direction) are rejected.
pub fn vendi_score(
    features: &CodeMatrix,
    config: &VendiConfig,
) -> Result<VendiScore, MetricsError> {
    cosine_vendi(features, config, "cosine")
}

fn cosine_vendi(
    features: &CodeMatrix,
    config: &VendiConfig,
    kernel: &str,
) -> Result<VendiScore, MetricsError> {
    let n = features.num_samples();
    if n == 0 {
        return Err(MetricsError::InvalidInput(
            "the Vendi score needs at least one sample".into(),
        ));
    }
    let unit = unit_rows(features, "Vendi features")?;
    let form = match config.form {
        VendiForm::Auto if n <= unit.num_codes() => VendiForm::Primal,
        VendiForm::Auto => VendiForm::Dual,
        other => other,
    };
    let mut matrix = match form {
        VendiForm::Dual => column_gram(view(&unit)),
        _ => row_gram(view(&unit)),
    };
    let scale = 1.0 / n as f64;
    for j in 0..matrix.ncols() {
        for i in 0..matrix.nrows() {
            matrix[(i, j)] *= scale;
        }
    }
    let eigenvalues = symmetric_eigenvalues(matrix.as_ref())?;
    Ok(VendiScore {
        score: vendi_from_eigenvalues(&eigenvalues, config.order)?,
        order: config.order,
        kernel: kernel.into(),
        form,
        num_samples: n,
        num_nonzero_eigenvalues: count_nonzero(&eigenvalues),
        metric_version: VENDI_VERSION.into(),
    })
}

fn count_nonzero(eigenvalues: &[f64]) -> usize {
    eigenvalues
        .iter()
        .filter(|&&l| l > VENDI_EIGENVALUE_FLOOR)
        .count()
}

/// Vendi score of a user kernel matrix `kernel` (n × n, row-major), which must be symmetric with a
/// unit diagonal (`|K_ij − K_ji| ≤ 1e-9`, `|K_ii − 1| ≤ 1e-6`) so that the eigenvalues of `K / n` sum
/// to one. Positive semi-definiteness is the caller's promise; negative eigenvalues are dropped.
pub fn vendi_score_from_kernel(
    kernel: &[f64],
    num_samples: usize,
    order: VendiOrder,
) -> Result<VendiScore, MetricsError> {
    let n = num_samples;
    if n == 0 || kernel.len() != n * n {
        return Err(MetricsError::ShapeMismatch(format!(
            "a kernel for {n} samples needs {} entries, got {}",
            n * n,
            kernel.len()
        )));
    }
    let matrix = CodeMatrix::new(n, kernel.to_vec())?;
    for i in 0..n {
        if (matrix.row(i)[i] - 1.0).abs() > 1e-6 {
            return Err(MetricsError::InvalidInput(format!(
                "kernel diagonal entry {i} is {}, the Vendi score needs k(x, x) = 1",
                matrix.row(i)[i]
            )));
        }
        for j in 0..i {
            if (matrix.row(i)[j] - matrix.row(j)[i]).abs() > 1e-9 {
                return Err(MetricsError::InvalidInput(format!(
                    "kernel is not symmetric at ({i}, {j})"
                )));
            }
        }
    }
    let scaled: Vec<f64> = kernel.iter().map(|k| k / n as f64).collect();
    let scaled = CodeMatrix::new(n, scaled)?;
    let eigenvalues = symmetric_eigenvalues(view(&scaled))?;
    Ok(VendiScore {
        score: vendi_from_eigenvalues(&eigenvalues, order)?,
        order,
        kernel: "user".into(),
        form: VendiForm::Primal,
        num_samples: n,
        num_nonzero_eigenvalues: count_nonzero(&eigenvalues),
        metric_version: VENDI_VERSION.into(),
    })
}

/// Pixel Vendi score (the Vendi-Score package's `pixel_vendi_score`): every image is resized to
/// 32 × 32 per channel by area averaging ([`PixelFeatures`]), flattened, and the rows are scored
/// with the cosine kernel (L2-normalised rows, linear kernel). The package resizes with PIL; area
/// averaging is the anti-aliased equivalent for downsampling, so values agree only approximately.
pub fn pixel_vendi_score(
    images: &ImageBatch,
    config: &VendiConfig,
) -> Result<VendiScore, MetricsError> {
    let features = PixelFeatures::new(PIXEL_VENDI_SIDE)?.extract(images)?;
    cosine_vendi(&features, config, "pixel_cosine")
}

/// Registry entry of the Vendi score (`vendi`, default configuration).
pub(crate) const VENDI_SPEC: crate::suite::MetricSpec = crate::suite::MetricSpec {
    name: "vendi",
    input: crate::suite::MetricInput::Features,
    uses_test_split: false,
    run: |data| {
        let features = VENDI_SPEC.features(data)?;
        let r = vendi_score(features, &VendiConfig::default())?;
        crate::suite::MetricReport::new("vendi", &[("vendi", r.score)], &r)
    },
};
