//! The one dataset configuration of every run: where the images come from.
//!
//! [`DatasetSource`] is a serde enum tagged by `source` (snake_case, unknown fields rejected):
//!
//! ```toml
//! [dataset]
//! source = "mpi3d_npz"
//! path = "data/mpi3d_real.npz"
//! variant = "real"
//! ```
//!
//! [`SourceKind`] is the table of sources, each with its tag and description.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::readers::{
    CIFAR_IMAGE_BYTES, Cifar100Label, DSpritesFile, ImageFit, ImageFolder, MPI3D_FACTOR_SIZES,
    Mpi3dFile, Mpi3dVariant, ReadOptions,
};
use crate::registry::procedural_entry;
use crate::{DataError, GroundTruthDataset};

const CIFAR10_BATCH_IMAGES: u64 = 10_000;
const CIFAR100_TRAIN_IMAGES: u64 = 50_000;
const CIFAR100_TEST_IMAGES: u64 = 10_000;

fn strict() -> bool {
    true
}

/// Where a run's images come from (serde tag `source`).
///
/// Real-file variants take `sha256` (expected digest of the file; a mismatch is a warning in the
/// reader's report, see [`ReadOptions::expected_sha256`]) and `strict_shapes` (default `true`:
/// only the official shapes pass; `false` accepts reduced files with the official layout, such
/// as test fixtures).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum DatasetSource {
    /// A procedural dataset from [`crate::registry::PROCEDURAL`], rendered on demand.
    Procedural {
        /// Registry name: `dsprites` or `shapes3d` (older configs call it `dataset`).
        #[serde(alias = "dataset")]
        name: String,
    },
    /// The official dSprites `.npz` (`dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`).
    DspritesNpz {
        /// The archive.
        path: PathBuf,
        /// Expected SHA-256 (hex) of the archive.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        /// Require the official 737 280 × 64 × 64 grid.
        #[serde(default = "strict")]
        strict_shapes: bool,
        /// Folder of the decompressed `imgs` cache (default: next to the archive).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_dir: Option<PathBuf>,
    },
    /// The official 3DShapes `3dshapes.h5`; reading it needs the cargo feature `hdf5`.
    Shapes3dH5 {
        /// The HDF5 file.
        path: PathBuf,
        /// Expected SHA-256 (hex) of the file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        /// Require the official 480 000 × 64 × 64 × 3 grid.
        #[serde(default = "strict")]
        strict_shapes: bool,
    },
    /// One of the MPI3D `.npz` files (`mpi3d_toy`, `mpi3d_realistic`, `mpi3d_real`).
    Mpi3dNpz {
        /// The archive.
        path: PathBuf,
        /// Which rendering: `toy`, `realistic` or `real`.
        variant: Mpi3dVariant,
        /// Expected SHA-256 (hex) of the archive.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        /// Require the official 1 036 800 × 64 × 64 × 3 grid.
        #[serde(default = "strict")]
        strict_shapes: bool,
        /// Factor sizes of a reduced file (needs `strict_shapes = false`); default the official
        /// `[6, 6, 2, 3, 3, 40, 40]`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        factor_sizes: Option<[usize; 7]>,
        /// Folder of the decompressed `images` cache for a deflated archive (default: next to
        /// the archive).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_dir: Option<PathBuf>,
    },
    /// CIFAR-10, the extracted `cifar-10-batches-bin` folder.
    Cifar10 {
        /// The folder holding `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`.
        path: PathBuf,
        /// Require the official 10 000 images per batch.
        #[serde(default = "strict")]
        strict_shapes: bool,
    },
    /// CIFAR-100, the extracted `cifar-100-binary` folder.
    Cifar100 {
        /// The folder holding `train.bin` and `test.bin`.
        path: PathBuf,
        /// Which label: `fine` (100 classes, the default) or `coarse` (20 superclasses).
        #[serde(default = "fine")]
        label: Cifar100Label,
        /// Require the official 50 000 / 10 000 images.
        #[serde(default = "strict")]
        strict_shapes: bool,
    },
    /// PNG images in class sub-folders (`root/CLASS/*.png`, the ImageNet layout).
    ImageFolder {
        /// Training folder.
        path: PathBuf,
        /// Held-out folder with the same classes (ImageNet `val/`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        test_path: Option<PathBuf>,
        /// Resize every image to `image_size` × `image_size`; without it every image must have
        /// the size of the first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image_size: Option<usize>,
        /// How an image reaches `image_size` (default `stretch`; `shorter_side_center_crop`
        /// keeps the aspect ratio).
        #[serde(default, skip_serializing_if = "ImageFit::is_stretch")]
        fit: ImageFit,
    },
}

fn fine() -> Cifar100Label {
    Cifar100Label::Fine
}

impl Default for DatasetSource {
    /// Procedural 3DShapes, the α-TCVAE paper's dataset (our choice of default among its
    /// datasets: the only one with a procedural look-alike of RGB images).
    fn default() -> Self {
        Self::Procedural {
            name: "shapes3d".into(),
        }
    }
}

/// The kinds of [`DatasetSource`]: the table of sources, one entry per variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// [`DatasetSource::Procedural`].
    Procedural,
    /// [`DatasetSource::DspritesNpz`].
    DspritesNpz,
    /// [`DatasetSource::Shapes3dH5`].
    Shapes3dH5,
    /// [`DatasetSource::Mpi3dNpz`].
    Mpi3dNpz,
    /// [`DatasetSource::Cifar10`].
    Cifar10,
    /// [`DatasetSource::Cifar100`].
    Cifar100,
    /// [`DatasetSource::ImageFolder`].
    ImageFolder,
}

impl SourceKind {
    /// Every kind, in listing order.
    pub const ALL: [SourceKind; 7] = [
        SourceKind::Procedural,
        SourceKind::DspritesNpz,
        SourceKind::Shapes3dH5,
        SourceKind::Mpi3dNpz,
        SourceKind::Cifar10,
        SourceKind::Cifar100,
        SourceKind::ImageFolder,
    ];

    /// The serde tag (`source = "..."`).
    pub fn tag(self) -> &'static str {
        match self {
            SourceKind::Procedural => "procedural",
            SourceKind::DspritesNpz => "dsprites_npz",
            SourceKind::Shapes3dH5 => "shapes3d_h5",
            SourceKind::Mpi3dNpz => "mpi3d_npz",
            SourceKind::Cifar10 => "cifar10",
            SourceKind::Cifar100 => "cifar100",
            SourceKind::ImageFolder => "image_folder",
        }
    }

    /// One sentence on what the source reads.
    pub fn description(self) -> &'static str {
        match self {
            SourceKind::Procedural => {
                "a procedural look-alike rendered on demand (dsprites, shapes3d): exact factor grid, no files"
            }
            SourceKind::DspritesNpz => {
                "the official dSprites .npz (Matthey et al. 2017): 737,280 64x64 binary sprites with 6 factors"
            }
            SourceKind::Shapes3dH5 => {
                "the official 3dshapes.h5 (Burgess & Kim 2018): 480,000 64x64 RGB scenes with 6 factors (feature `hdf5`)"
            }
            SourceKind::Mpi3dNpz => {
                "an MPI3D .npz (Gondal et al. 2019), toy, realistic or real: 1,036,800 64x64 RGB robot-arm images with 7 factors"
            }
            SourceKind::Cifar10 => {
                "CIFAR-10 binary batches (Krizhevsky 2009): 60,000 32x32 RGB images in 10 classes, no factors"
            }
            SourceKind::Cifar100 => {
                "CIFAR-100 binary files (Krizhevsky 2009): 60,000 32x32 RGB images in 100 fine or 20 coarse classes, no factors"
            }
            SourceKind::ImageFolder => {
                "PNG images in class sub-folders (ImageNet layout), decoded batch by batch, no factors"
            }
        }
    }

    /// Whether sources of this kind have ground-truth factors of variation.
    pub fn has_ground_truth(self) -> bool {
        match self {
            SourceKind::Procedural
            | SourceKind::DspritesNpz
            | SourceKind::Shapes3dH5
            | SourceKind::Mpi3dNpz => true,
            SourceKind::Cifar10 | SourceKind::Cifar100 | SourceKind::ImageFolder => false,
        }
    }

    /// A representative source of this kind (for listings, documentation and the registry
    /// test).
    pub fn example(self) -> DatasetSource {
        match self {
            SourceKind::Procedural => DatasetSource::default(),
            SourceKind::DspritesNpz => DatasetSource::DspritesNpz {
                path: crate::readers::DSPRITES_FILE_NAME.into(),
                sha256: None,
                strict_shapes: true,
                cache_dir: None,
            },
            SourceKind::Shapes3dH5 => DatasetSource::Shapes3dH5 {
                path: "3dshapes.h5".into(),
                sha256: None,
                strict_shapes: true,
            },
            SourceKind::Mpi3dNpz => DatasetSource::Mpi3dNpz {
                path: Mpi3dVariant::Real.file_name().into(),
                variant: Mpi3dVariant::Real,
                sha256: None,
                strict_shapes: true,
                factor_sizes: None,
                cache_dir: None,
            },
            SourceKind::Cifar10 => DatasetSource::Cifar10 {
                path: "cifar-10-batches-bin".into(),
                strict_shapes: true,
            },
            SourceKind::Cifar100 => DatasetSource::Cifar100 {
                path: "cifar-100-binary".into(),
                label: Cifar100Label::Fine,
                strict_shapes: true,
            },
            SourceKind::ImageFolder => DatasetSource::ImageFolder {
                path: "imagenet/train".into(),
                test_path: Some("imagenet/val".into()),
                image_size: Some(224),
                fit: ImageFit::Stretch,
            },
        }
    }
}

fn ground_truth_tags() -> String {
    SourceKind::ALL
        .iter()
        .filter(|k| k.has_ground_truth())
        .map(|k| k.tag())
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_options(
    sha256: &Option<String>,
    strict_shapes: bool,
    cache_dir: Option<&Path>,
) -> ReadOptions {
    ReadOptions {
        strict_shapes,
        expected_sha256: sha256.clone(),
        cache_dir: cache_dir.map(Path::to_path_buf),
    }
}

/// Fails with the operating system's error unless `path` exists (as a file or folder).
fn require_exists(path: &Path) -> Result<(), DataError> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Checks that the CIFAR file at `path` holds whole `record`-byte records, exactly `expected`
/// of them when `strict`.
fn check_cifar_file(
    path: &Path,
    record: u64,
    expected: u64,
    strict: bool,
) -> Result<(), DataError> {
    let len = std::fs::metadata(path)
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if len == 0 || !len.is_multiple_of(record) {
        return Err(DataError::InvalidFile {
            path: path.to_path_buf(),
            message: format!(
                "{len} bytes is not a positive multiple of the {record}-byte CIFAR record"
            ),
        });
    }
    if strict && len / record != expected {
        return Err(DataError::InvalidFile {
            path: path.to_path_buf(),
            message: format!(
                "expected the official {expected} images, found {}",
                len / record
            ),
        });
    }
    Ok(())
}

impl DatasetSource {
    /// Which kind of source this is.
    pub fn kind(&self) -> SourceKind {
        match self {
            DatasetSource::Procedural { .. } => SourceKind::Procedural,
            DatasetSource::DspritesNpz { .. } => SourceKind::DspritesNpz,
            DatasetSource::Shapes3dH5 { .. } => SourceKind::Shapes3dH5,
            DatasetSource::Mpi3dNpz { .. } => SourceKind::Mpi3dNpz,
            DatasetSource::Cifar10 { .. } => SourceKind::Cifar10,
            DatasetSource::Cifar100 { .. } => SourceKind::Cifar100,
            DatasetSource::ImageFolder { .. } => SourceKind::ImageFolder,
        }
    }

    /// Dataset name: the procedural name, `dsprites`, `shapes3d`, `mpi3d_toy` /
    /// `mpi3d_realistic` / `mpi3d_real`, `cifar10`, `cifar100` or `image_folder`. For sources
    /// with factors it equals the opened dataset's [`GroundTruthDataset::name`].
    pub fn name(&self) -> &str {
        match self {
            DatasetSource::Procedural { name } => name,
            DatasetSource::DspritesNpz { .. } => "dsprites",
            DatasetSource::Shapes3dH5 { .. } => "shapes3d",
            DatasetSource::Mpi3dNpz { variant, .. } => variant.dataset_name(),
            DatasetSource::Cifar10 { .. } => "cifar10",
            DatasetSource::Cifar100 { .. } => "cifar100",
            DatasetSource::ImageFolder { .. } => "image_folder",
        }
    }

    /// The file or folder read (`None` for procedural sources).
    pub fn path(&self) -> Option<&Path> {
        match self {
            DatasetSource::Procedural { .. } => None,
            DatasetSource::DspritesNpz { path, .. }
            | DatasetSource::Shapes3dH5 { path, .. }
            | DatasetSource::Mpi3dNpz { path, .. }
            | DatasetSource::Cifar10 { path, .. }
            | DatasetSource::Cifar100 { path, .. }
            | DatasetSource::ImageFolder { path, .. } => Some(path),
        }
    }

    /// One line for logs and run records: what is read and from where.
    pub fn description(&self) -> String {
        match self {
            DatasetSource::Procedural { name } => match procedural_entry(name) {
                Ok(entry) => format!("`{name}`: {}", entry.description),
                Err(_) => format!("`{name}`: unknown procedural dataset"),
            },
            other => {
                let path = other.path().map(Path::display);
                match path {
                    Some(path) => format!(
                        "`{}` from {path}: {}",
                        other.name(),
                        other.kind().description()
                    ),
                    None => other.kind().description().to_string(),
                }
            }
        }
    }

    /// Whether the source has ground-truth factors ([`DatasetSource::open_ground_truth`]
    /// succeeds on a valid file).
    pub fn has_ground_truth(&self) -> bool {
        self.kind().has_ground_truth()
    }

    /// Cheap checks before a run writes anything: the procedural name is registered; the file
    /// or folder exists; `.npz` keys, dtypes and shapes are right (from the array headers, no
    /// pixel is read); CIFAR files hold whole records (exactly the official count when strict);
    /// image folders index (every PNG header is read). A `3dshapes.h5` without the `hdf5`
    /// feature fails with [`DataError::FeatureDisabled`]; with it, the file is opened in full.
    pub fn validate(&self) -> Result<(), DataError> {
        match self {
            DatasetSource::Procedural { name } => procedural_entry(name).map(|_| ()),
            DatasetSource::DspritesNpz {
                path,
                sha256,
                strict_shapes,
                cache_dir,
            } => {
                require_exists(path)?;
                DSpritesFile::validate(
                    path,
                    &read_options(sha256, *strict_shapes, cache_dir.as_deref()),
                )
            }
            DatasetSource::Shapes3dH5 { .. } => self.open_ground_truth().map(|_| ()),
            DatasetSource::Mpi3dNpz {
                path,
                sha256,
                strict_shapes,
                factor_sizes,
                cache_dir,
                ..
            } => {
                require_exists(path)?;
                Mpi3dFile::validate(
                    path,
                    factor_sizes.unwrap_or(MPI3D_FACTOR_SIZES),
                    &read_options(sha256, *strict_shapes, cache_dir.as_deref()),
                )
            }
            DatasetSource::Cifar10 {
                path,
                strict_shapes,
            } => {
                require_exists(path)?;
                let record = 1 + CIFAR_IMAGE_BYTES as u64;
                let files = (1..=5)
                    .map(|i| format!("data_batch_{i}.bin"))
                    .chain(["test_batch.bin".to_string()]);
                for name in files {
                    check_cifar_file(
                        &path.join(name),
                        record,
                        CIFAR10_BATCH_IMAGES,
                        *strict_shapes,
                    )?;
                }
                Ok(())
            }
            DatasetSource::Cifar100 {
                path,
                strict_shapes,
                ..
            } => {
                require_exists(path)?;
                let record = 2 + CIFAR_IMAGE_BYTES as u64;
                check_cifar_file(
                    &path.join("train.bin"),
                    record,
                    CIFAR100_TRAIN_IMAGES,
                    *strict_shapes,
                )?;
                check_cifar_file(
                    &path.join("test.bin"),
                    record,
                    CIFAR100_TEST_IMAGES,
                    *strict_shapes,
                )
            }
            DatasetSource::ImageFolder {
                path,
                test_path,
                image_size,
                fit,
            } => {
                let size = image_size.map(|s| (s, s));
                let train = ImageFolder::open(path, size)?.with_fit(*fit);
                if let Some(test_path) = test_path {
                    let test = ImageFolder::open(test_path, size)?.with_fit(*fit);
                    if test.class_names() != train.class_names() {
                        return Err(DataError::InvalidFile {
                            path: test_path.clone(),
                            message: format!(
                                "test classes {:?} differ from the training classes {:?} of {}",
                                test.class_names(),
                                train.class_names(),
                                path.display()
                            ),
                        });
                    }
                }
                Ok(())
            }
        }
    }

    /// Opens the source as a ground-truth dataset (images looked up or rendered by factor
    /// vector). CIFAR and image folders fail with [`DataError::NoGroundTruth`].
    pub fn open_ground_truth(&self) -> Result<Arc<dyn GroundTruthDataset>, DataError> {
        match self {
            DatasetSource::Procedural { name } => Ok(Arc::from((procedural_entry(name)?.build)())),
            DatasetSource::DspritesNpz {
                path,
                sha256,
                strict_shapes,
                cache_dir,
            } => Ok(Arc::new(DSpritesFile::open(
                path,
                &read_options(sha256, *strict_shapes, cache_dir.as_deref()),
            )?)),
            DatasetSource::Shapes3dH5 {
                path,
                sha256,
                strict_shapes,
            } => open_shapes3d(path, &read_options(sha256, *strict_shapes, None)),
            DatasetSource::Mpi3dNpz {
                path,
                variant,
                sha256,
                strict_shapes,
                factor_sizes,
                cache_dir,
            } => Ok(Arc::new(Mpi3dFile::open_with_factor_sizes(
                path,
                *variant,
                factor_sizes.unwrap_or(MPI3D_FACTOR_SIZES),
                &read_options(sha256, *strict_shapes, cache_dir.as_deref()),
            )?)),
            DatasetSource::Cifar10 { path, .. }
            | DatasetSource::Cifar100 { path, .. }
            | DatasetSource::ImageFolder { path, .. } => Err(DataError::NoGroundTruth {
                source_name: self.kind().tag().to_string(),
                what: path.display().to_string(),
                with_factors: ground_truth_tags(),
            }),
        }
    }
}

#[cfg(feature = "hdf5")]
fn open_shapes3d(
    path: &Path,
    options: &ReadOptions,
) -> Result<Arc<dyn GroundTruthDataset>, DataError> {
    Ok(Arc::new(crate::readers::Shapes3dFile::open(path, options)?))
}

#[cfg(not(feature = "hdf5"))]
fn open_shapes3d(
    path: &Path,
    _options: &ReadOptions,
) -> Result<Arc<dyn GroundTruthDataset>, DataError> {
    Err(DataError::FeatureDisabled {
        what: format!("reading the 3DShapes HDF5 file {}", path.display()),
        feature: "hdf5",
    })
}
