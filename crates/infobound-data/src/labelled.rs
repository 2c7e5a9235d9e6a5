//! A labelled image set carved out of a factor dataset, for SSL smoke runs and kNN evaluation
//! where CIFAR cannot be downloaded.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{DataError, FactorMatrix, GroundTruthDataset, ImageBatch};

/// `size` images of a [`GroundTruthDataset`] at uniformly drawn factor states (seeded ChaCha8),
/// each labelled by its value of one factor (e.g. 3DShapes `shape`: 4 classes, or `object_hue`:
/// 10 classes).
///
/// The factor states are drawn once at construction; images are rendered on demand, so the
/// set costs `size` factor vectors of memory (add a cache to the dataset to keep pixels).
pub struct LabelledImages {
    dataset: Arc<dyn GroundTruthDataset>,
    factors: FactorMatrix,
    label_factor: usize,
}

impl std::fmt::Debug for LabelledImages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabelledImages")
            .field("dataset", &self.dataset.name())
            .field("len", &self.len())
            .field("label_factor", &self.label_factor_name())
            .finish()
    }
}

impl LabelledImages {
    /// Draws `size` states of `dataset` with `seed`, labelled by the factor named `label_factor`.
    pub fn new(
        dataset: Arc<dyn GroundTruthDataset>,
        label_factor: &str,
        size: usize,
        seed: u64,
    ) -> Result<Self, DataError> {
        let space = dataset.factor_space();
        let label_factor = space
            .names()
            .iter()
            .position(|n| n == label_factor)
            .ok_or_else(|| {
                DataError::InvalidArgument(format!(
                    "dataset `{}` has no factor `{label_factor}` (factors: {})",
                    dataset.name(),
                    space.names().join(", ")
                ))
            })?;
        if space.sizes()[label_factor] < 2 {
            return Err(DataError::InvalidArgument(format!(
                "factor `{}` has a single value and cannot serve as a label",
                space.names()[label_factor]
            )));
        }
        if size == 0 {
            return Err(DataError::InvalidArgument(
                "a labelled image set needs at least one image".into(),
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let factors = space.sample(size, &mut rng);
        Ok(Self {
            dataset,
            factors,
            label_factor,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.factors.len()
    }

    /// Always false: construction rejects empty sets.
    pub fn is_empty(&self) -> bool {
        self.factors.is_empty()
    }

    /// Number of classes: the number of values of the label factor.
    pub fn num_classes(&self) -> usize {
        self.dataset.factor_space().sizes()[self.label_factor]
    }

    /// Name of the label factor.
    pub fn label_factor_name(&self) -> &str {
        &self.dataset.factor_space().names()[self.label_factor]
    }

    /// Labels of all images, in index order.
    pub fn labels(&self) -> Vec<usize> {
        self.factors.column(self.label_factor)
    }

    /// The full factor vectors of all images.
    pub fn factors(&self) -> &FactorMatrix {
        &self.factors
    }

    /// Image `index` (CHW, `f32` in [0, 1]) and its label.
    pub fn get(&self, index: usize) -> Result<(Vec<f32>, usize), DataError> {
        let (images, labels) = self.batch(&[index])?;
        let label = labels[0];
        Ok((images.into_pixels(), label))
    }

    /// Images `indices` (rendered in parallel) and their labels.
    pub fn batch(&self, indices: &[usize]) -> Result<(ImageBatch, Vec<usize>), DataError> {
        let num_factors = self.factors.num_factors();
        let mut values = Vec::with_capacity(indices.len() * num_factors);
        for &i in indices {
            if i >= self.len() {
                return Err(DataError::IndexOutOfRange {
                    index: i,
                    len: self.len(),
                });
            }
            values.extend_from_slice(self.factors.row(i));
        }
        let factors = FactorMatrix::new(num_factors, values)?;
        let labels = factors.column(self.label_factor);
        // Procedural datasets ignore the noise generator; a fixed one keeps `get` deterministic
        // for any dataset with observation noise as well.
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let images = self.dataset.observations_from_factors(&factors, &mut rng)?;
        Ok((images, labels))
    }
}
