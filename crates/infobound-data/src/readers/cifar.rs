//! CIFAR-10 and CIFAR-100 binary versions (Krizhevsky 2009,
//! <https://www.cs.toronto.edu/~kriz/cifar.html>): fixed-size records of label byte(s) followed by
//! a 32 × 32 RGB image stored channel-major (1024 red, 1024 green, 1024 blue bytes, rows in
//! order), which is already CHW.

use std::path::{Path, PathBuf};

use super::ReadOptions;
use crate::{DataError, ImageBatch, ObservationShape};

/// Bytes of one CIFAR image, 3 × 32 × 32.
pub const CIFAR_IMAGE_BYTES: usize = 3 * 32 * 32;
/// CIFAR-10 class names in label order (`batches.meta.txt`).
pub const CIFAR10_CLASS_NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
const CIFAR10_BATCH_IMAGES: usize = 10_000;
const CIFAR100_TRAIN_IMAGES: usize = 50_000;
const CIFAR100_TEST_IMAGES: usize = 10_000;
const CIFAR100_FINE_CLASSES: usize = 100;
const CIFAR100_COARSE_CLASSES: usize = 20;

/// Images with one class label each.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledBatch {
    /// The images, NCHW `f32` in [0, 1].
    pub images: ImageBatch,
    /// Class index of each image, in `0..class_names.len()`.
    pub labels: Vec<usize>,
    /// Class names in label order.
    pub class_names: Vec<String>,
}

/// Which part of a dataset to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CifarSplit {
    /// CIFAR-10 `data_batch_1.bin` … `data_batch_5.bin`; CIFAR-100 `train.bin`.
    Train,
    /// CIFAR-10 `test_batch.bin`; CIFAR-100 `test.bin`.
    Test,
}

/// Which CIFAR-100 label to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cifar100Label {
    /// One of 20 superclasses (first label byte).
    Coarse,
    /// One of 100 classes (second label byte).
    Fine,
}

/// Parses records of `label_bytes` label bytes + 3072 pixel bytes, keeping label byte
/// `label_at`, which must be below `num_classes`.
fn parse_records(
    bytes: &[u8],
    path: &Path,
    label_bytes: usize,
    label_at: usize,
    class_names: Vec<String>,
) -> Result<LabelledBatch, DataError> {
    let record = label_bytes + CIFAR_IMAGE_BYTES;
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(DataError::InvalidFile {
            path: path.to_path_buf(),
            message: format!(
                "{} bytes is not a positive multiple of the {record}-byte CIFAR record ({label_bytes} label byte(s) + 3072 pixels)",
                bytes.len()
            ),
        });
    }
    let n = bytes.len() / record;
    let mut labels = Vec::with_capacity(n);
    let mut pixels = Vec::with_capacity(n * CIFAR_IMAGE_BYTES);
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let label = usize::from(rec[label_at]);
        if label >= class_names.len() {
            return Err(DataError::InvalidFile {
                path: path.to_path_buf(),
                message: format!(
                    "record {i}: label {label} is outside the {} classes",
                    class_names.len()
                ),
            });
        }
        labels.push(label);
        pixels.extend(rec[label_bytes..].iter().map(|&v| f32::from(v) / 255.0));
    }
    let shape = ObservationShape {
        channels: 3,
        height: 32,
        width: 32,
    };
    Ok(LabelledBatch {
        images: ImageBatch::new(shape, pixels)?,
        labels,
        class_names,
    })
}

/// Parses one CIFAR-10 batch held in memory (1 label byte + 3072 pixel bytes per record).
pub fn parse_cifar10(bytes: &[u8], path: &Path) -> Result<LabelledBatch, DataError> {
    let names = CIFAR10_CLASS_NAMES.iter().map(|s| s.to_string()).collect();
    parse_records(bytes, path, 1, 0, names)
}

/// Parses one CIFAR-100 file held in memory (coarse byte, fine byte, 3072 pixel bytes). Class
/// names are the label indices as text, since the names live in a separate metadata file.
pub fn parse_cifar100(
    bytes: &[u8],
    path: &Path,
    label: Cifar100Label,
) -> Result<LabelledBatch, DataError> {
    let (label_at, classes) = match label {
        Cifar100Label::Coarse => (0, CIFAR100_COARSE_CLASSES),
        Cifar100Label::Fine => (1, CIFAR100_FINE_CLASSES),
    };
    parse_records(
        bytes,
        path,
        2,
        label_at,
        (0..classes).map(|c| c.to_string()).collect(),
    )
}

fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn check_count(path: &Path, got: usize, expected: usize, strict: bool) -> Result<(), DataError> {
    if strict && got != expected {
        return Err(DataError::InvalidFile {
            path: path.to_path_buf(),
            message: format!("expected the official {expected} images, found {got}"),
        });
    }
    Ok(())
}

fn concatenate(parts: Vec<LabelledBatch>) -> Result<LabelledBatch, DataError> {
    let mut iter = parts.into_iter();
    let first = iter
        .next()
        .ok_or_else(|| DataError::InvalidArgument("no CIFAR files to read".into()))?;
    let shape = first.images.shape();
    let class_names = first.class_names;
    let mut labels = first.labels;
    let mut pixels = first.images.into_pixels();
    for part in iter {
        labels.extend(part.labels);
        pixels.extend(part.images.into_pixels());
    }
    Ok(LabelledBatch {
        images: ImageBatch::new(shape, pixels)?,
        labels,
        class_names,
    })
}

/// Reads CIFAR-10 from the extracted `cifar-10-batches-bin` folder: the five training batches
/// in order, or the test batch. With [`ReadOptions::strict_shapes`] every batch must hold the
/// official 10 000 images.
pub fn read_cifar10(
    dir: &Path,
    split: CifarSplit,
    options: &ReadOptions,
) -> Result<LabelledBatch, DataError> {
    let files: Vec<PathBuf> = match split {
        CifarSplit::Train => (1..=5)
            .map(|i| dir.join(format!("data_batch_{i}.bin")))
            .collect(),
        CifarSplit::Test => vec![dir.join("test_batch.bin")],
    };
    let parts = files
        .iter()
        .map(|path| {
            let part = parse_cifar10(&read_file(path)?, path)?;
            check_count(
                path,
                part.labels.len(),
                CIFAR10_BATCH_IMAGES,
                options.strict_shapes,
            )?;
            Ok(part)
        })
        .collect::<Result<Vec<_>, DataError>>()?;
    concatenate(parts)
}

/// Reads CIFAR-100 from the extracted `cifar-100-binary` folder (`train.bin` or `test.bin`).
/// With [`ReadOptions::strict_shapes`] the file must hold the official 50 000 / 10 000 images.
pub fn read_cifar100(
    dir: &Path,
    split: CifarSplit,
    label: Cifar100Label,
    options: &ReadOptions,
) -> Result<LabelledBatch, DataError> {
    let (name, expected) = match split {
        CifarSplit::Train => ("train.bin", CIFAR100_TRAIN_IMAGES),
        CifarSplit::Test => ("test.bin", CIFAR100_TEST_IMAGES),
    };
    let path = dir.join(name);
    let images = parse_cifar100(&read_file(&path)?, &path, label)?;
    check_count(&path, images.labels.len(), expected, options.strict_shapes)?;
    Ok(images)
}
