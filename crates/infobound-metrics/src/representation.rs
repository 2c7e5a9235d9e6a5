//! Sampling codes from a [`GroundTruthDataset`] through a representation function, the
//! disentanglement_lib split between data, representation and metric kernel.

use infobound_data::{FactorMatrix, GroundTruthDataset, ImageBatch};
use rand::RngCore;

use crate::{CodeMatrix, MetricsError};

/// Maps a batch of observations to one code row per image (e.g. the encoder mean μ).
pub trait Representation {
    /// Codes of `images`, one row per image, in order.
    fn represent(&mut self, images: &ImageBatch) -> Result<CodeMatrix, MetricsError>;
}

impl<F> Representation for F
where
    F: FnMut(&ImageBatch) -> Result<CodeMatrix, MetricsError>,
{
    fn represent(&mut self, images: &ImageBatch) -> Result<CodeMatrix, MetricsError> {
        self(images)
    }
}

/// Draws `num_points` uniform factor vectors, renders them and encodes them in batches of
/// `batch_size` (disentanglement_lib `utils.generate_batch_factor_code`).
pub fn sample_codes(
    dataset: &dyn GroundTruthDataset,
    representation: &mut dyn Representation,
    num_points: usize,
    batch_size: usize,
    rng: &mut dyn RngCore,
) -> Result<(CodeMatrix, FactorMatrix), MetricsError> {
    if num_points == 0 || batch_size == 0 {
        return Err(MetricsError::InvalidParameter(
            "num_points and batch_size must be positive".into(),
        ));
    }
    let num_factors = dataset.factor_space().num_factors();
    let mut codes: Vec<f64> = Vec::new();
    let mut factors: Vec<usize> = Vec::with_capacity(num_points * num_factors);
    let mut num_codes = 0;
    let mut done = 0;
    while done < num_points {
        let n = batch_size.min(num_points - done);
        let (f, images) = dataset.sample(n, rng)?;
        let c = representation.represent(&images)?;
        if c.num_samples() != n {
            return Err(MetricsError::Representation(format!(
                "returned {} codes for {n} images",
                c.num_samples()
            )));
        }
        if num_codes == 0 {
            num_codes = c.num_codes();
        } else if c.num_codes() != num_codes {
            return Err(MetricsError::Representation(format!(
                "code width changed from {num_codes} to {}",
                c.num_codes()
            )));
        }
        codes.extend_from_slice(c.as_slice());
        factors.extend_from_slice(f.as_slice());
        done += n;
    }
    Ok((
        CodeMatrix::new(num_codes, codes)?,
        FactorMatrix::new(num_factors, factors)?,
    ))
}

/// A train split of `num_train` and a test split of `num_test` points, drawn one after the other
/// from `rng` with [`sample_codes`] (disentanglement_lib's two `generate_batch_factor_code` calls).
#[allow(clippy::type_complexity)]
pub fn sample_train_test(
    dataset: &dyn GroundTruthDataset,
    representation: &mut dyn Representation,
    num_train: usize,
    num_test: usize,
    batch_size: usize,
    rng: &mut dyn RngCore,
) -> Result<((CodeMatrix, FactorMatrix), (CodeMatrix, FactorMatrix)), MetricsError> {
    let train = sample_codes(dataset, representation, num_train, batch_size, rng)?;
    let test = sample_codes(dataset, representation, num_test, batch_size, rng)?;
    Ok((train, test))
}
