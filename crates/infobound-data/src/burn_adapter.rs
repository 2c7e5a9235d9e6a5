//! Burn `Dataset`/`Batcher` over a [`GroundTruthDataset`], and tensor conversions for trainers.
//!
//! Dataset items are factor vectors (cheap); the batcher renders a whole batch at once, in
//! parallel, and uploads it as one NCHW tensor — so a `DataLoader` never renders image by image.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

use crate::{DataError, FactorMatrix, GroundTruthDataset, ImageBatch};

/// NCHW float tensor holding `batch` on `device` (values as stored, i.e. in [0, 1]).
pub fn images_to_tensor(batch: &ImageBatch, device: &Device) -> Tensor<4> {
    let shape = batch.shape();
    let data = TensorData::new(
        batch.pixels().to_vec(),
        [batch.len(), shape.channels, shape.height, shape.width],
    );
    Tensor::from_data(data, device)
}

/// `[n, num_factors]` integer tensor of factor class indices.
pub fn factors_to_tensor(factors: &FactorMatrix, device: &Device) -> Tensor<2, Int> {
    let values: Vec<i64> = factors.as_slice().iter().map(|&v| v as i64).collect();
    let data = TensorData::new(values, [factors.len(), factors.num_factors()]);
    Tensor::from_data(data, device)
}

/// One item of a [`GroundTruthStates`] dataset: a flat state index and its factor vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroundTruthItem {
    /// Row-major flat index in the factor space.
    pub index: usize,
    /// Factor class indices, in storage order.
    pub factors: Vec<usize>,
}

/// A Burn [`Dataset`] over the states of a [`GroundTruthDataset`]: all of them in flat-index
/// order, or a seeded random subset.
pub struct GroundTruthStates {
    dataset: Arc<dyn GroundTruthDataset>,
    indices: Option<Vec<usize>>,
}

impl std::fmt::Debug for GroundTruthStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroundTruthStates")
            .field("dataset", &self.dataset.name())
            .field("len", &self.len())
            .finish()
    }
}

impl GroundTruthStates {
    /// Every state of `dataset`, item `i` being flat index `i`.
    pub fn all(dataset: Arc<dyn GroundTruthDataset>) -> Self {
        Self {
            dataset,
            indices: None,
        }
    }

    /// `size` distinct states drawn uniformly without replacement (seeded ChaCha8), sorted by
    /// flat index.
    pub fn random_subset(
        dataset: Arc<dyn GroundTruthDataset>,
        size: usize,
        seed: u64,
    ) -> Result<Self, DataError> {
        let len = dataset.factor_space().len();
        if size > len {
            return Err(DataError::InvalidArgument(format!(
                "cannot draw {size} distinct states from a space of {len}"
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut indices = sample(&mut rng, len, size).into_vec();
        indices.sort_unstable();
        Ok(Self {
            dataset,
            indices: Some(indices),
        })
    }

    /// The dataset the states belong to.
    pub fn dataset(&self) -> &Arc<dyn GroundTruthDataset> {
        &self.dataset
    }
}

impl Dataset<GroundTruthItem> for GroundTruthStates {
    fn get(&self, index: usize) -> Result<GroundTruthItem, DatasetError> {
        let flat = match &self.indices {
            Some(indices) => *indices.get(index).ok_or_else(|| {
                DatasetError::new(DataError::IndexOutOfRange {
                    index,
                    len: indices.len(),
                })
            })?,
            None => index,
        };
        let factors = self
            .dataset
            .factor_space()
            .factors_of(flat)
            .map_err(DatasetError::new)?;
        Ok(GroundTruthItem {
            index: flat,
            factors,
        })
    }

    fn len(&self) -> usize {
        self.indices
            .as_ref()
            .map_or(self.dataset.factor_space().len(), Vec::len)
    }
}

/// A rendered batch: images `[n, C, H, W]` in [0, 1] and factors `[n, num_factors]`.
#[derive(Debug, Clone)]
pub struct GroundTruthBatch {
    /// NCHW images.
    pub images: Tensor<4>,
    /// Factor class indices.
    pub factors: Tensor<2, Int>,
    /// Flat state index of each row.
    pub indices: Vec<usize>,
}

/// Renders [`GroundTruthItem`]s of one dataset into a [`GroundTruthBatch`] (rayon-parallel).
///
/// The output is a `Result` because items can be built by hand: factors outside the dataset's
/// space give an error instead of a panic inside the data loader.
pub struct GroundTruthBatcher {
    dataset: Arc<dyn GroundTruthDataset>,
}

impl std::fmt::Debug for GroundTruthBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroundTruthBatcher")
            .field("dataset", &self.dataset.name())
            .finish()
    }
}

impl GroundTruthBatcher {
    /// A batcher rendering with `dataset`.
    pub fn new(dataset: Arc<dyn GroundTruthDataset>) -> Self {
        Self { dataset }
    }

    /// Renders `items` and uploads them to `device`.
    pub fn try_batch(
        &self,
        items: &[GroundTruthItem],
        device: &Device,
    ) -> Result<GroundTruthBatch, DataError> {
        let num_factors = self.dataset.factor_space().num_factors();
        let mut values = Vec::with_capacity(items.len() * num_factors);
        for item in items {
            self.dataset.factor_space().validate(&item.factors)?;
            values.extend_from_slice(&item.factors);
        }
        let factors = FactorMatrix::new(num_factors, values)?;
        // Procedural datasets draw no noise; a fixed generator keeps batches reproducible for
        // any dataset that does.
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let images = self.dataset.observations_from_factors(&factors, &mut rng)?;
        Ok(GroundTruthBatch {
            images: images_to_tensor(&images, device),
            factors: factors_to_tensor(&factors, device),
            indices: items.iter().map(|item| item.index).collect(),
        })
    }
}

impl Batcher<GroundTruthItem, Result<GroundTruthBatch, DataError>> for GroundTruthBatcher {
    fn batch(
        &self,
        items: Vec<GroundTruthItem>,
        device: &Device,
    ) -> Result<GroundTruthBatch, DataError> {
        self.try_batch(&items, device)
    }
}
