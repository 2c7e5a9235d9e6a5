//! The labelled images of a self-supervised run: a training split (unlabelled for the encoder,
//! labelled for the kNN bank and probes) and a held-out test split.

use std::sync::Arc;

use infobound_data::augment::{CropBox, resized_crop};
use infobound_data::readers::{
    CifarSplit, ImageFolder, LabelledBatch, ReadOptions, read_cifar10, read_cifar100,
};
use infobound_data::{
    DataError, DatasetSource, FactorMatrix, GroundTruthDataset, ImageBatch, LabelledImages,
    ObservationShape,
};
use rand_chacha::ChaCha8Rng;

use super::config::LabelledSplitConfig;
use crate::TrainError;

/// Pixels of one split: decoded once, or decoded batch by batch from an image folder.
enum Pixels {
    InMemory(ImageBatch),
    Folder(ImageFolder),
}

/// One split: images and their class labels.
pub struct SslSplit {
    pixels: Pixels,
    labels: Vec<usize>,
    factors: Option<FactorMatrix>,
}

impl SslSplit {
    fn in_memory(images: ImageBatch, labels: Vec<usize>) -> Self {
        Self {
            pixels: Pixels::InMemory(images),
            labels,
            factors: None,
        }
    }

    /// Every ground-truth factor of every image (rows in index order) for procedural data,
    /// `None` for datasets that only have class labels.
    pub fn factors(&self) -> Option<&FactorMatrix> {
        self.factors.as_ref()
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Class labels, in index order.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Shape of every image (CHW).
    pub fn shape(&self) -> ObservationShape {
        match &self.pixels {
            Pixels::InMemory(images) => images.shape(),
            Pixels::Folder(folder) => folder.observation_shape(),
        }
    }

    /// The images at `indices` (CHW `f32` in [0, 1]).
    pub fn images(&self, indices: &[usize]) -> Result<ImageBatch, TrainError> {
        match &self.pixels {
            Pixels::InMemory(images) => {
                let shape = images.shape();
                let mut pixels = Vec::with_capacity(indices.len() * shape.numel());
                for &i in indices {
                    if i >= images.len() {
                        return Err(DataError::IndexOutOfRange {
                            index: i,
                            len: images.len(),
                        }
                        .into());
                    }
                    pixels.extend_from_slice(images.image(i));
                }
                Ok(ImageBatch::new(shape, pixels)?)
            }
            Pixels::Folder(folder) => Ok(folder.load(indices)?.images),
        }
    }
}

/// Training and test splits of a run.
pub struct SslData {
    train: SslSplit,
    test: SslSplit,
    factor_names: Vec<String>,
    num_classes: usize,
    description: String,
}

impl std::fmt::Debug for SslData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SslData")
            .field("description", &self.description)
            .field("train", &self.train.len())
            .field("test", &self.test.len())
            .field("num_classes", &self.num_classes)
            .finish()
    }
}

impl SslData {
    /// Loads (or renders) the splits of `source`: a ground-truth source becomes labelled
    /// splits as `labels` says; CIFAR and image folders bring their own splits and classes.
    ///
    /// # Errors
    /// [`TrainError::Data`] for a missing or malformed file, [`TrainError::Config`] for an
    /// image folder without a test folder or with different classes in the two.
    pub fn load(source: &DatasetSource, labels: &LabelledSplitConfig) -> Result<Self, TrainError> {
        if source.has_ground_truth() {
            return Self::from_ground_truth(source, labels);
        }
        match source {
            DatasetSource::Cifar10 {
                path,
                strict_shapes,
            } => {
                let options = ReadOptions {
                    strict_shapes: *strict_shapes,
                    ..ReadOptions::default()
                };
                let train = read_cifar10(path, CifarSplit::Train, &options)?;
                let test = read_cifar10(path, CifarSplit::Test, &options)?;
                Ok(Self::labelled(
                    train,
                    test,
                    format!("CIFAR-10 from {}", path.display()),
                ))
            }
            DatasetSource::Cifar100 {
                path,
                label,
                strict_shapes,
            } => {
                let options = ReadOptions {
                    strict_shapes: *strict_shapes,
                    ..ReadOptions::default()
                };
                let train = read_cifar100(path, CifarSplit::Train, *label, &options)?;
                let test = read_cifar100(path, CifarSplit::Test, *label, &options)?;
                Ok(Self::labelled(
                    train,
                    test,
                    format!("CIFAR-100 from {}", path.display()),
                ))
            }
            DatasetSource::ImageFolder {
                path,
                test_path,
                image_size,
                fit,
            } => {
                let test_path = test_path.as_ref().ok_or_else(|| {
                    TrainError::Config(format!(
                        "image folder {}: self-supervised runs need dataset.test_path (the \
                         held-out folder of the kNN monitor and the probes)",
                        path.display()
                    ))
                })?;
                let size = image_size.map(|side| (side, side));
                let train = ImageFolder::open(path, size)?.with_fit(*fit);
                let test = ImageFolder::open(test_path, size)?.with_fit(*fit);
                if train.class_names() != test.class_names() {
                    return Err(TrainError::Config(format!(
                        "{} and {} hold different classes",
                        path.display(),
                        test_path.display()
                    )));
                }
                Ok(Self {
                    num_classes: train.class_names().len(),
                    train: SslSplit {
                        labels: train.labels(),
                        pixels: Pixels::Folder(train),
                        factors: None,
                    },
                    test: SslSplit {
                        labels: test.labels(),
                        pixels: Pixels::Folder(test),
                        factors: None,
                    },
                    factor_names: Vec::new(),
                    description: format!("image folder {}", path.display()),
                })
            }
            other => Err(TrainError::Config(format!(
                "dataset `{}` cannot be used for self-supervised training",
                other.name()
            ))),
        }
    }

    /// Splits of a class-labelled set read into memory.
    fn labelled(train: LabelledBatch, test: LabelledBatch, description: String) -> Self {
        Self {
            num_classes: train.class_names.len(),
            train: SslSplit::in_memory(train.images, train.labels),
            test: SslSplit::in_memory(test.images, test.labels),
            factor_names: Vec::new(),
            description,
        }
    }

    /// `num_train + num_test` images of a ground-truth source at factor states drawn from
    /// `labels.seed`, labelled by one factor and resized to `labels.image_size`.
    fn from_ground_truth(
        source: &DatasetSource,
        labels: &LabelledSplitConfig,
    ) -> Result<Self, TrainError> {
        let LabelledSplitConfig {
            label_factor,
            image_size,
            num_train,
            num_test,
            seed,
        } = labels;
        let dataset: Arc<dyn GroundTruthDataset> = source.open_ground_truth()?;
        let source_factor_names = dataset.factor_space().names().to_vec();
        let labelled = LabelledImages::new(dataset, label_factor, num_train + num_test, *seed)?;
        let all: Vec<usize> = (0..labelled.len()).collect();
        let (images, classes) = labelled.batch(&all)?;
        let images = to_rgb(&resize_batch(&images, *image_size)?)?;
        let shape = images.shape();
        let (train_pixels, test_pixels) = images.pixels().split_at(num_train * shape.numel());
        let train = ImageBatch::new(shape, train_pixels.to_vec())?;
        let test = ImageBatch::new(shape, test_pixels.to_vec())?;
        let factors = labelled.factors();
        let width = factors.num_factors();
        let (train_factors, test_factors) = factors.as_slice().split_at(num_train * width);
        Ok(Self {
            train: SslSplit {
                factors: Some(FactorMatrix::new(width, train_factors.to_vec())?),
                ..SslSplit::in_memory(train, classes[..*num_train].to_vec())
            },
            test: SslSplit {
                factors: Some(FactorMatrix::new(width, test_factors.to_vec())?),
                ..SslSplit::in_memory(test, classes[*num_train..].to_vec())
            },
            factor_names: source_factor_names,
            num_classes: labelled.num_classes(),
            description: format!(
                "`{}` at {image_size} px labelled by `{label_factor}`",
                source.name()
            ),
        })
    }

    /// Names of the ground-truth factors of procedural data (the columns of
    /// [`SslSplit::factors`]); empty for class-labelled datasets.
    pub fn factor_names(&self) -> &[String] {
        &self.factor_names
    }

    /// The training split.
    pub fn train(&self) -> &SslSplit {
        &self.train
    }

    /// The held-out test split.
    pub fn test(&self) -> &SslSplit {
        &self.test
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Accuracy of always guessing the most frequent test class (the floor a probe must beat).
    pub fn chance_level(&self) -> f64 {
        let mut counts = vec![0usize; self.num_classes.max(1)];
        for &l in self.test.labels() {
            if let Some(c) = counts.get_mut(l) {
                *c += 1;
            }
        }
        counts.iter().copied().max().unwrap_or(0) as f64 / self.test.len().max(1) as f64
    }

    /// One line saying what the data is.
    pub fn description(&self) -> &str {
        &self.description
    }
}

/// `batch_size` distinct training indices for one step (with replacement only when the split
/// is smaller than the batch), drawn from the step's generator.
pub fn sample_indices(rng: &mut ChaCha8Rng, len: usize, batch_size: usize) -> Vec<usize> {
    use rand::Rng;
    if batch_size <= len {
        rand::seq::index::sample(rng, len, batch_size).into_vec()
    } else {
        (0..batch_size).map(|_| rng.random_range(0..len)).collect()
    }
}

/// Replicates a grayscale batch to three channels (one augmentation pipeline, with its RGB
/// colour jitter and normalisation, then serves every dataset, as the image-folder reader does
/// for grayscale files); RGB batches pass through.
pub fn to_rgb(images: &ImageBatch) -> Result<ImageBatch, TrainError> {
    let shape = images.shape();
    if shape.channels != 1 {
        return Ok(images.clone());
    }
    let plane = shape.height * shape.width;
    let mut pixels = Vec::with_capacity(images.len() * 3 * plane);
    for i in 0..images.len() {
        for _ in 0..3 {
            pixels.extend_from_slice(images.image(i));
        }
    }
    Ok(ImageBatch::new(
        ObservationShape {
            channels: 3,
            ..shape
        },
        pixels,
    )?)
}

/// Resizes every image of `images` to `size` × `size` (bilinear, the whole image as the crop).
pub fn resize_batch(images: &ImageBatch, size: usize) -> Result<ImageBatch, TrainError> {
    let shape = images.shape();
    if shape.height == size && shape.width == size {
        return Ok(images.clone());
    }
    let whole = CropBox {
        top: 0,
        left: 0,
        height: shape.height,
        width: shape.width,
    };
    let out = ObservationShape {
        channels: shape.channels,
        height: size,
        width: size,
    };
    let mut pixels = Vec::with_capacity(images.len() * out.numel());
    for i in 0..images.len() {
        pixels.extend(resized_crop(images.image(i), shape, whole, size, size)?);
    }
    Ok(ImageBatch::new(out, pixels)?)
}

/// The central `size × size` pixels of every image of `images`.
///
/// # Errors
/// [`TrainError::Config`] if the images are smaller than `size` on a side.
pub fn center_crop_batch(images: &ImageBatch, size: usize) -> Result<ImageBatch, TrainError> {
    let shape = images.shape();
    if shape.height < size || shape.width < size {
        return Err(TrainError::Config(format!(
            "center crop of {size} x {size} from images of {} x {}: store the images at least \
             that large (dataset.image_size) or evaluate with monitor.eval_view = \"resize\"",
            shape.height, shape.width
        )));
    }
    let (top, left) = ((shape.height - size) / 2, (shape.width - size) / 2);
    let out = ObservationShape {
        channels: shape.channels,
        height: size,
        width: size,
    };
    let mut pixels = Vec::with_capacity(images.len() * out.numel());
    for i in 0..images.len() {
        let image = images.image(i);
        for c in 0..shape.channels {
            for row in top..top + size {
                let start = (c * shape.height + row) * shape.width + left;
                pixels.extend_from_slice(&image[start..start + size]);
            }
        }
    }
    Ok(ImageBatch::new(out, pixels)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The central 2 × 2 of a 4 × 4 ramp per channel, the rows and channels kept apart; a
    /// crop larger than the image is an error.
    #[test]
    fn center_crop_keeps_the_central_pixels() {
        let shape = ObservationShape {
            channels: 2,
            height: 4,
            width: 4,
        };
        let pixels: Vec<f32> = (0..32).map(|v| v as f32).collect();
        let batch = ImageBatch::new(shape, pixels).expect("batch");
        let crop = center_crop_batch(&batch, 2).expect("fits");
        assert_eq!(
            crop.into_pixels(),
            vec![5.0, 6.0, 9.0, 10.0, 21.0, 22.0, 25.0, 26.0]
        );
        assert!(matches!(
            center_crop_batch(&batch, 5),
            Err(TrainError::Config(_))
        ));
    }
}
