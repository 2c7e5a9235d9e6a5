//! The Fréchet distance between Gaussians fitted to two feature sets (Heusel et al., "GANs Trained
//! by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017; pytorch-fid
//! `calculate_frechet_distance`):
//!
//! `d² = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2})`.
//!
//! `tr((Σ₁Σ₂)^{1/2})` is computed as `Σ_i √λ_i(Σ₁^{1/2} Σ₂ Σ₁^{1/2})` with two symmetric
//! eigendecompositions, which avoids the non-symmetric `sqrtm` and its complex round-off.
//!
//! The original FID uses Inception-v3 pool3 features. Those weights cannot be obtained here, so the
//! shipped extractor is [`PixelFeatures`]; distances computed with it are *not* comparable with
//! published (Inception) FID numbers. Plug in another [`FeatureExtractor`] for those.

use infobound_data::ImageBatch;
use serde::{Deserialize, Serialize};

use crate::linalg::{mean_and_covariance, product, psd_sqrt, symmetric_eigenvalues, symmetrised};
use crate::{CodeMatrix, MetricsError};

/// Version tag of the Fréchet-distance definition implemented here.
pub const FID_VERSION: &str = "infobound-frechet-distance/1";

/// Maps a batch of images to one feature row per image.
pub trait FeatureExtractor {
    /// Short name recorded in the result (e.g. `pixels32`).
    fn name(&self) -> String;
    /// Features of `images`, one row per image, in order.
    fn extract(&mut self, images: &ImageBatch) -> Result<CodeMatrix, MetricsError>;
}

/// Raw pixels as features: each channel is resized to `side × side` by area averaging (every output
/// pixel is the overlap-weighted mean of the input pixels its footprint covers; for upsampling this
/// is nearest-neighbour-like), then the image is flattened channel-major (C·side·side features).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelFeatures {
    side: usize,
}

impl PixelFeatures {
    /// Extractor resizing to `side × side` (side ≥ 1).
    pub fn new(side: usize) -> Result<Self, MetricsError> {
        if side == 0 {
            return Err(MetricsError::InvalidParameter(
                "pixel feature side must be positive".into(),
            ));
        }
        Ok(Self { side })
    }
}

/// Area-resampling weights along one axis: for each output index, `(input index, weight)` pairs
/// whose weights sum to one.
fn area_weights(input: usize, output: usize) -> Vec<Vec<(usize, f64)>> {
    let ratio = input as f64 / output as f64;
    (0..output)
        .map(|o| {
            let start = o as f64 * ratio;
            let end = (o + 1) as f64 * ratio;
            let first = start.floor() as usize;
            let last = (end.ceil() as usize).min(input);
            (first..last)
                .filter_map(|i| {
                    let overlap = end.min((i + 1) as f64) - start.max(i as f64);
                    (overlap > 0.0).then_some((i, overlap / ratio))
                })
                .collect()
        })
        .collect()
}

impl FeatureExtractor for PixelFeatures {
    fn name(&self) -> String {
        format!("pixels{}", self.side)
    }

    fn extract(&mut self, images: &ImageBatch) -> Result<CodeMatrix, MetricsError> {
        let shape = images.shape();
        let rows_w = area_weights(shape.height, self.side);
        let cols_w = area_weights(shape.width, self.side);
        let per_image = shape.channels * self.side * self.side;
        let mut values = Vec::with_capacity(images.len() * per_image);
        let mut row_resized = vec![0.0f64; self.side * shape.width];
        for i in 0..images.len() {
            let image = images.image(i);
            for c in 0..shape.channels {
                let plane = &image[c * shape.height * shape.width..][..shape.height * shape.width];
                for (oy, weights) in rows_w.iter().enumerate() {
                    let out = &mut row_resized[oy * shape.width..][..shape.width];
                    out.fill(0.0);
                    for &(y, w) in weights {
                        let src = &plane[y * shape.width..][..shape.width];
                        out.iter_mut()
                            .zip(src)
                            .for_each(|(o, &s)| *o += w * f64::from(s));
                    }
                }
                for oy in 0..self.side {
                    let row = &row_resized[oy * shape.width..][..shape.width];
                    values.extend(
                        cols_w
                            .iter()
                            .map(|weights| weights.iter().map(|&(x, w)| w * row[x]).sum::<f64>()),
                    );
                }
            }
        }
        CodeMatrix::new(per_image, values)
    }
}

/// A Fréchet distance and its two terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrechetDistance {
    /// `d²` (the quantity reported as "FID"), clamped at 0 against round-off.
    pub score: f64,
    /// `‖μ₁ − μ₂‖²`.
    pub mean_term: f64,
    /// `tr(Σ₁ + Σ₂ − 2 (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2})`.
    pub covariance_term: f64,
    /// Samples in the first set.
    pub num_samples_a: usize,
    /// Samples in the second set.
    pub num_samples_b: usize,
    /// Feature dimension.
    pub feature_dim: usize,
    /// Feature extractor name, or `features` when the caller passed features directly.
    pub extractor: String,
    /// Metric name and version, [`FID_VERSION`].
    pub metric_version: String,
}

/// Fréchet distance between Gaussians with means `mean_a`, `mean_b` and covariances `cov_a`, `cov_b`
/// (d × d, row-major, symmetric positive semi-definite).
pub fn frechet_distance_gaussians(
    mean_a: &[f64],
    cov_a: &[f64],
    mean_b: &[f64],
    cov_b: &[f64],
) -> Result<(f64, f64), MetricsError> {
    let d = mean_a.len();
    if mean_b.len() != d || cov_a.len() != d * d || cov_b.len() != d * d || d == 0 {
        return Err(MetricsError::ShapeMismatch(format!(
            "means of length {} and {} need covariances of {} entries, got {} and {}",
            d,
            mean_b.len(),
            d * d,
            cov_a.len(),
            cov_b.len()
        )));
    }
    let cov_a = CodeMatrix::new(d, cov_a.to_vec())?;
    let cov_b = CodeMatrix::new(d, cov_b.to_vec())?;
    let a = crate::linalg::view(&cov_a);
    let b = crate::linalg::view(&cov_b);
    let mean_term: f64 = mean_a
        .iter()
        .zip(mean_b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    let sqrt_a = psd_sqrt(symmetrised(a).as_ref())?;
    let middle = product(product(sqrt_a.as_ref(), b).as_ref(), sqrt_a.as_ref());
    let trace_sqrt: f64 = symmetric_eigenvalues(symmetrised(middle.as_ref()).as_ref())?
        .iter()
        .map(|l| l.max(0.0).sqrt())
        .sum();
    let trace = |m: faer::MatRef<'_, f64>| (0..d).map(|i| m[(i, i)]).sum::<f64>();
    let covariance_term = trace(a) + trace(b) - 2.0 * trace_sqrt;
    Ok((mean_term, covariance_term))
}

/// Fréchet distance between Gaussians fitted (mean, unbiased covariance) to the rows of
/// `features_a` and `features_b` (each n ≥ 2, same width).
pub fn frechet_distance(
    features_a: &CodeMatrix,
    features_b: &CodeMatrix,
) -> Result<FrechetDistance, MetricsError> {
    if features_a.num_codes() != features_b.num_codes() {
        return Err(MetricsError::ShapeMismatch(format!(
            "feature sets of width {} and {}",
            features_a.num_codes(),
            features_b.num_codes()
        )));
    }
    let (mean_a, cov_a) = mean_and_covariance(features_a)?;
    let (mean_b, cov_b) = mean_and_covariance(features_b)?;
    let d = features_a.num_codes();
    let flat = |m: &faer::Mat<f64>| -> Vec<f64> {
        (0..d)
            .flat_map(|i| (0..d).map(move |j| (i, j)))
            .map(|(i, j)| m[(i, j)])
            .collect()
    };
    let (mean_term, covariance_term) =
        frechet_distance_gaussians(&mean_a, &flat(&cov_a), &mean_b, &flat(&cov_b))?;
    Ok(FrechetDistance {
        score: (mean_term + covariance_term).max(0.0),
        mean_term,
        covariance_term,
        num_samples_a: features_a.num_samples(),
        num_samples_b: features_b.num_samples(),
        feature_dim: d,
        extractor: "features".into(),
        metric_version: FID_VERSION.into(),
    })
}

/// FID between two image sets through `extractor` (Fréchet distance of the extracted features).
/// With [`PixelFeatures`] this is *not* the Inception FID of the literature.
pub fn fid(
    images_a: &ImageBatch,
    images_b: &ImageBatch,
    extractor: &mut dyn FeatureExtractor,
) -> Result<FrechetDistance, MetricsError> {
    let a = extractor.extract(images_a)?;
    let b = extractor.extract(images_b)?;
    Ok(FrechetDistance {
        extractor: extractor.name(),
        ..frechet_distance(&a, &b)?
    })
}

/// Registry entry of the Fréchet distance between two feature sets (`fid`).
pub(crate) const FID_SPEC: crate::suite::MetricSpec = crate::suite::MetricSpec {
    name: "fid",
    input: crate::suite::MetricInput::FeaturePair,
    uses_test_split: false,
    run: |data| {
        let (a, b) = FID_SPEC.feature_pair(data)?;
        let r = frechet_distance(a, b)?;
        crate::suite::MetricReport::new("fid", &[("fid", r.score)], &r)
    },
};
