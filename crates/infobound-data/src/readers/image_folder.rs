//! A folder of PNG images with one sub-folder per class (torchvision's `ImageFolder` /
//! ImageNet layout): `root/CLASS/IMAGE.png`.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::cifar::LabelledBatch;
use crate::{DataError, ImageBatch, ObservationShape};

/// An indexed image folder; images are decoded on demand by [`ImageFolder::load`], so datasets
/// larger than memory (ImageNet) can be served batch by batch.
///
/// Class names are the sub-folder names sorted by byte order and labelled 0, 1, …; files within
/// a class are sorted by name. Only files ending in `.png` (any case) are read; other files are
/// ignored, and a class folder without PNG files is an error. Every image becomes 3-channel RGB
/// (grayscale is replicated, alpha dropped).
///
/// Size policy: with `target_size = Some((h, w))` every image is brought to h × w with
/// Catmull-Rom bicubic interpolation (`image::imageops::resize`) as [`ImageFit`] says (default
/// [`ImageFit::Stretch`]: aspect ratio not kept; see [`ImageFolder::with_fit`]); with `None`
/// every image must already have the size of the first one, which [`ImageFolder::open`]
/// checks by reading each PNG header.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    root: PathBuf,
    class_names: Vec<String>,
    samples: Vec<(PathBuf, usize)>,
    height: usize,
    width: usize,
    resize: bool,
    fit: ImageFit,
}

/// How an image folder with a target size h × w brings an image of another size to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageFit {
    /// Resize to h × w, the aspect ratio not kept.
    #[default]
    Stretch,
    /// Scale by `max(h/H, w/W)` (aspect ratio kept; for a square target the shorter side
    /// becomes h, as torchvision's `Resize(h)`), then keep the central h × w (torchvision's
    /// `CenterCrop`). With h = w = 256 a later central 224 crop equals torchvision's
    /// `Resize(256)` + `CenterCrop(224)`, the evaluation transform of the official MVEB code
    /// (wlj6816/MVEB@9ac7965 `project/dataloader.py` `test_transform`).
    ShorterSideCenterCrop,
}

impl ImageFit {
    /// Whether this is the default, [`ImageFit::Stretch`] (for `skip_serializing_if`).
    pub fn is_stretch(&self) -> bool {
        *self == Self::Stretch
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(io_error(dir))?
        .map(|e| e.map(|e| e.path()).map_err(io_error(dir)))
        .collect::<Result<Vec<_>, _>>()?;
    entries.sort();
    Ok(entries)
}

fn is_png(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("png"))
}

fn invalid(path: &Path, message: String) -> DataError {
    DataError::InvalidFile {
        path: path.to_path_buf(),
        message,
    }
}

impl ImageFolder {
    /// Indexes `root` (see the type's documentation for the size policy).
    pub fn open(root: &Path, target_size: Option<(usize, usize)>) -> Result<Self, DataError> {
        if let Some((h, w)) = target_size
            && (h == 0 || w == 0 || u32::try_from(h).is_err() || u32::try_from(w).is_err())
        {
            return Err(DataError::InvalidArgument(format!(
                "target size {h} x {w} must be positive and fit in u32"
            )));
        }
        let mut class_names = Vec::new();
        let mut samples = Vec::new();
        for class_dir in sorted_entries(root)?.into_iter().filter(|p| p.is_dir()) {
            let name = class_dir
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| invalid(&class_dir, "class folder name is not UTF-8".into()))?
                .to_string();
            let label = class_names.len();
            let before = samples.len();
            samples.extend(
                sorted_entries(&class_dir)?
                    .into_iter()
                    .filter(|p| is_png(p))
                    .map(|p| (p, label)),
            );
            if samples.len() == before {
                return Err(invalid(
                    &class_dir,
                    "class folder holds no .png file".into(),
                ));
            }
            class_names.push(name);
        }
        if class_names.is_empty() {
            return Err(invalid(root, "no class sub-folders found".into()));
        }
        let (height, width, resize) = match target_size {
            Some((h, w)) => (h, w, true),
            None => {
                let sizes = samples
                    .par_iter()
                    .map(|(path, _)| {
                        image::image_dimensions(path)
                            .map_err(|e| invalid(path, format!("cannot read PNG header: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let (w, h) = sizes[0];
                if let Some(i) = sizes.iter().position(|&s| s != (w, h)) {
                    return Err(invalid(
                        &samples[i].0,
                        format!(
                            "image is {} x {} but the first image is {h} x {w}; pass a target size to resize",
                            sizes[i].1, sizes[i].0
                        ),
                    ));
                }
                (h as usize, w as usize, false)
            }
        };
        Ok(Self {
            root: root.to_path_buf(),
            class_names,
            samples,
            height,
            width,
            resize,
            fit: ImageFit::Stretch,
        })
    }

    /// This folder with images brought to the target size as `fit` says (no effect without a
    /// target size).
    pub fn with_fit(self, fit: ImageFit) -> Self {
        Self { fit, ..self }
    }

    /// The folder that was indexed.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when the folder holds no image (never, for an opened folder).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Class names in label order.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Label of every image, in index order.
    pub fn labels(&self) -> Vec<usize> {
        self.samples.iter().map(|(_, l)| *l).collect()
    }

    /// Shape of every loaded image.
    pub fn observation_shape(&self) -> ObservationShape {
        ObservationShape {
            channels: 3,
            height: self.height,
            width: self.width,
        }
    }

    /// Decodes the images at `indices` (in parallel) into CHW `f32` in [0, 1].
    pub fn load(&self, indices: &[usize]) -> Result<LabelledBatch, DataError> {
        let shape = self.observation_shape();
        let images = indices
            .par_iter()
            .map(|&i| {
                let (path, _) = self.samples.get(i).ok_or(DataError::IndexOutOfRange {
                    index: i,
                    len: self.samples.len(),
                })?;
                self.decode(path)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let labels = indices.iter().map(|&i| self.samples[i].1).collect();
        Ok(LabelledBatch {
            images: ImageBatch::new(shape, images.concat())?,
            labels,
            class_names: self.class_names.clone(),
        })
    }

    /// Decodes every image.
    pub fn load_all(&self) -> Result<LabelledBatch, DataError> {
        self.load(&(0..self.len()).collect::<Vec<_>>())
    }

    fn decode(&self, path: &Path) -> Result<Vec<f32>, DataError> {
        let decoded = image::open(path)
            .map_err(|e| invalid(path, format!("cannot decode PNG: {e}")))?
            .into_rgb8();
        let rgb = if self.resize {
            // Sizes were checked to fit in u32 in `open`.
            let (width, height) = (self.width as u32, self.height as u32);
            match self.fit {
                ImageFit::Stretch => {
                    image::imageops::resize(&decoded, width, height, FilterType::CatmullRom)
                }
                ImageFit::ShorterSideCenterCrop => {
                    let (w, h) = (decoded.width(), decoded.height());
                    let scale =
                        (f64::from(width) / f64::from(w)).max(f64::from(height) / f64::from(h));
                    // Rounded as torchvision's `Resize` does, never below the target.
                    let scaled_w = ((f64::from(w) * scale).round() as u32).max(width);
                    let scaled_h = ((f64::from(h) * scale).round() as u32).max(height);
                    let scaled = image::imageops::resize(
                        &decoded,
                        scaled_w,
                        scaled_h,
                        FilterType::CatmullRom,
                    );
                    image::imageops::crop_imm(
                        &scaled,
                        (scaled_w - width) / 2,
                        (scaled_h - height) / 2,
                        width,
                        height,
                    )
                    .to_image()
                }
            }
        } else if (decoded.height() as usize, decoded.width() as usize) == (self.height, self.width)
        {
            decoded
        } else {
            return Err(invalid(
                path,
                format!(
                    "image is {} x {}, expected {} x {}",
                    decoded.height(),
                    decoded.width(),
                    self.height,
                    self.width
                ),
            ));
        };
        let plane = self.height * self.width;
        let mut chw = vec![0f32; 3 * plane];
        for (p, pixel) in rgb.pixels().enumerate() {
            for c in 0..3 {
                chw[c * plane + p] = f32::from(pixel.0[c]) / 255.0;
            }
        }
        Ok(chw)
    }
}
