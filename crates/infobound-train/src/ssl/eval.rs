//! Evaluation of a self-supervised encoder: kNN accuracy (k = 200, τ = 0.1, cosine; Wu et al.
//! 2018) and the linear probe on frozen backbone features, the online probe on the test split,
//! collapse diagnostics, and the pictures of the run folder (`retrieval.png`, `views.png`).

use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use infobound_data::augment::{MultiCropAugmenter, NormalizationConfig, normalize};
use infobound_data::{ImageBatch, ObservationShape, images_to_tensor, save_png_grid};
use infobound_metrics::{
    CodeMatrix, CollapseConfig, CollapseDiagnostics, KnnAccuracy, KnnConfig, LinearProbeConfig,
    LinearProbeScore, collapse_diagnostics, effective_rank, knn_accuracy, linear_probe,
};
use infobound_models::ssl::SslNetwork;
use serde::{Deserialize, Serialize};

use super::config::EvalView;
use super::config::SslTrainConfig;
use super::data::{SslData, SslSplit, center_crop_batch, resize_batch};
use super::probe::{OnlineProbe, accuracy};
use super::trainer::SslTrainer;
use crate::run::read_back;
use crate::{RunDir, TrainError, write_json_atomic};

/// Seed of the augmentations drawn for evaluation (kept apart from every training step).
const EVAL_AUGMENTATION_SEED: u64 = 0x5eed_e7a1;
/// Test images whose two augmented global views feed the collapse diagnostics (uniformity is
/// quadratic in this number).
const COLLAPSE_SAMPLES: usize = 512;
/// Neighbours shown per query in `retrieval.png`.
const RETRIEVAL_NEIGHBOURS: usize = 8;
/// Images whose views `views.png` shows.
const VIEW_EXAMPLES: usize = 4;

/// Backbone features of images, from a network snapshot in inference mode (batch norm with
/// running statistics, no autodiff), with the views' size and normalisation applied first.
pub struct FeatureExtractor {
    network: SslNetwork,
    normalization: Option<NormalizationConfig>,
    size: usize,
    view: EvalView,
    batch_size: usize,
    device: Device,
}

impl FeatureExtractor {
    /// Snapshots `online` for inference on the plain `device`.
    pub fn new(online: &SslNetwork, config: &SslTrainConfig, device: &Device) -> Self {
        let first = &config.augmentation.global_views[0];
        Self {
            // After a data-parallel step each parameter lives on the device that updated it;
            // `valid()` gives the snapshot its own running statistics, so moving it is safe.
            network: online.valid().to_device(device),
            normalization: first.normalization.clone(),
            size: first.size,
            view: config.monitor.eval_view,
            batch_size: config.monitor.eval_batch_size,
            device: device.clone(),
        }
    }

    /// Dimension of the backbone features.
    pub fn feature_dim(&self) -> usize {
        self.network.backbone.feature_dim()
    }

    /// Brings images to the global view size as [`EvalView`] says and normalises as the views
    /// are.
    fn prepare(&self, images: &ImageBatch) -> Result<ImageBatch, TrainError> {
        let resized = match self.view {
            EvalView::Resize => resize_batch(images, self.size)?,
            EvalView::CenterCrop => center_crop_batch(images, self.size)?,
        };
        let Some(norm) = &self.normalization else {
            return Ok(resized);
        };
        let shape = resized.shape();
        let mut pixels = resized.into_pixels();
        for image in pixels.chunks_mut(shape.numel()) {
            normalize(image, shape, &norm.mean, &norm.std)?;
        }
        Ok(ImageBatch::new(shape, pixels)?)
    }

    /// Backbone features of `split`'s images at `indices`, one row per image.
    pub fn features(&self, split: &SslSplit, indices: &[usize]) -> Result<CodeMatrix, TrainError> {
        let mut rows = Vec::new();
        for chunk in indices.chunks(self.batch_size) {
            let images = self.prepare(&split.images(chunk)?)?;
            let features = self
                .network
                .features(images_to_tensor(&images, &self.device))?;
            rows.extend(host_values(features)?);
        }
        Ok(CodeMatrix::new(self.feature_dim(), rows)?)
    }

    /// Projector outputs of already prepared views (normalised, at view size).
    fn embeddings(&self, views: &ImageBatch) -> Result<CodeMatrix, TrainError> {
        let mut rows = Vec::new();
        let shape = views.shape();
        for start in (0..views.len()).step_by(self.batch_size) {
            let end = (start + self.batch_size).min(views.len());
            let chunk = ImageBatch::new(
                shape,
                views.pixels()[start * shape.numel()..end * shape.numel()].to_vec(),
            )?;
            let z = self.network.project(
                self.network
                    .features(images_to_tensor(&chunk, &self.device))?,
            );
            rows.extend(host_values(z)?);
        }
        Ok(CodeMatrix::new(rows.len() / views.len().max(1), rows)?)
    }

    /// Online-probe accuracy on `features` (a snapshot of `probe` in inference mode).
    fn probe_accuracy(
        &self,
        probe: &OnlineProbe,
        features: &CodeMatrix,
        labels: &[usize],
    ) -> Result<f64, TrainError> {
        let probe = probe.valid();
        let x = Tensor::<2>::from_data(
            TensorData::new(
                features.as_slice().iter().map(|&v| v as f32).collect(),
                [features.num_samples(), features.num_codes()],
            ),
            &self.device,
        );
        let targets = Tensor::<1, Int>::from_data(
            TensorData::new(
                labels.iter().map(|&l| l as i64).collect::<Vec<_>>(),
                [labels.len()],
            ),
            &self.device,
        );
        Ok(read_back(accuracy(probe.forward(x), targets))?[0])
    }
}

fn host_values<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f64>, TrainError> {
    let values: Vec<f32> = tensor
        .into_data()
        .try_to_vec()
        .map_err(|e| TrainError::Config(format!("cannot read features: {e:?}")))?;
    Ok(values.into_iter().map(f64::from).collect())
}

fn first(n: usize, len: usize) -> Vec<usize> {
    let n = if n == 0 { len } else { n.min(len) };
    (0..n).collect()
}

fn knn_config(config: &SslTrainConfig, bank_size: usize) -> KnnConfig {
    KnnConfig {
        k: config.monitor.knn_k.min(bank_size),
        temperature: config.monitor.knn_temperature,
    }
}

/// The kNN monitor: backbone features of the first `monitor_bank_size` un-augmented training
/// images as the bank, queried by the first `monitor_test_size` test images.
pub fn knn_monitor(
    extractor: &FeatureExtractor,
    data: &SslData,
    config: &SslTrainConfig,
) -> Result<KnnAccuracy, TrainError> {
    let bank_indices = first(config.monitor.monitor_bank_size, data.train().len());
    let query_indices = first(config.monitor.monitor_test_size, data.test().len());
    let bank = extractor.features(data.train(), &bank_indices)?;
    let queries = extractor.features(data.test(), &query_indices)?;
    let bank_labels: Vec<usize> = bank_indices
        .iter()
        .map(|&i| data.train().labels()[i])
        .collect();
    let query_labels: Vec<usize> = query_indices
        .iter()
        .map(|&i| data.test().labels()[i])
        .collect();
    Ok(knn_accuracy(
        &bank,
        &bank_labels,
        &queries,
        &query_labels,
        knn_config(config, bank_indices.len()),
    )?)
}

/// Everything `metrics.json` of an SSL run holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SslEvalReport {
    /// Steps the evaluated encoder was trained for.
    pub step: usize,
    /// Objective name (serde tag).
    pub method: String,
    /// What the data is.
    pub dataset: String,
    /// Number of classes.
    pub num_classes: usize,
    /// Accuracy of always predicting the most frequent test class.
    pub chance_level: f64,
    /// kNN accuracy of test images against the whole training split.
    pub knn: KnnAccuracy,
    /// The same kNN accuracy for the untrained network with the run's initial weights (the floor
    /// that self-supervised training must clear: random convolutional features already cluster
    /// simple images).
    pub untrained_knn_accuracy: f64,
    /// Linear-probe test accuracy of the untrained network (the same floor for the probe).
    pub untrained_linear_probe_accuracy: f64,
    /// For procedural data: the kNN readout of every ground-truth factor, trained vs untrained
    /// (which factors the representation encodes and which its augmentations removed).
    #[serde(default)]
    pub factor_knn: Vec<FactorKnn>,
    /// Offline linear probe (logistic regression on frozen, standardised backbone features).
    pub linear_probe: LinearProbeScore,
    /// Accuracy of the online probe on the test split's backbone features.
    pub online_probe_accuracy: f64,
    /// Collapse diagnostics of the projector embeddings of two augmented global views of test
    /// images (alignment is between the views).
    pub embedding_collapse: CollapseDiagnostics,
    /// Effective rank of the test split's backbone features.
    pub feature_effective_rank: f64,
    /// Backbone feature dimension.
    pub feature_dim: usize,
    /// Wall time of the training invocation that preceded this evaluation, if known.
    pub train_seconds: Option<f64>,
    /// Wall time of the evaluation in seconds.
    pub eval_seconds: f64,
    /// Wall time of each part of the evaluation in seconds.
    pub timings: Vec<(String, f64)>,
}

/// kNN accuracy of one ground-truth factor used as the class label.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FactorKnn {
    /// Factor name.
    pub factor: String,
    /// Accuracy of always predicting the most frequent test value.
    pub chance_level: f64,
    /// kNN accuracy of the trained backbone's features.
    pub knn_accuracy: f64,
    /// kNN accuracy of the untrained network's features.
    pub untrained_knn_accuracy: f64,
}

/// The kNN readout of every factor of procedural data, on the features already computed for
/// the class label (so it costs only the neighbour searches).
fn factor_knn(
    config: &SslTrainConfig,
    data: &SslData,
    trained: &SplitFeatures,
    untrained: &SplitFeatures,
) -> Result<Vec<FactorKnn>, TrainError> {
    let (Some(train), Some(test)) = (data.train().factors(), data.test().factors()) else {
        return Ok(Vec::new());
    };
    let knn = knn_config(config, data.train().len());
    data.factor_names()
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let bank_labels = train.column(k);
            let query_labels = test.column(k);
            let mut counts = std::collections::HashMap::new();
            for &v in &query_labels {
                *counts.entry(v).or_insert(0usize) += 1;
            }
            let most = counts.values().copied().max().unwrap_or(0);
            let score = |f: &SplitFeatures| {
                knn_accuracy(&f.train, &bank_labels, &f.test, &query_labels, knn)
                    .map(|a| a.accuracy)
            };
            Ok(FactorKnn {
                factor: name.clone(),
                chance_level: most as f64 / query_labels.len().max(1) as f64,
                knn_accuracy: score(trained)?,
                untrained_knn_accuracy: score(untrained)?,
            })
        })
        .collect()
}

/// kNN and linear-probe accuracy of a trainer's backbone (what `infobound probe` prints).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeScores {
    /// kNN accuracy.
    pub knn: KnnAccuracy,
    /// Linear probe.
    pub linear_probe: LinearProbeScore,
    /// Online probe on the test split.
    pub online_probe_accuracy: f64,
    /// Chance level.
    pub chance_level: f64,
}

struct SplitFeatures {
    train: CodeMatrix,
    test: CodeMatrix,
}

fn split_features(trainer: &SslTrainer) -> Result<SplitFeatures, TrainError> {
    let extractor = trainer.feature_extractor();
    let data = trainer.data();
    let train: Vec<usize> = (0..data.train().len()).collect();
    let test: Vec<usize> = (0..data.test().len()).collect();
    Ok(SplitFeatures {
        train: extractor.features(data.train(), &train)?,
        test: extractor.features(data.test(), &test)?,
    })
}

fn probe_scores(trainer: &SslTrainer, features: &SplitFeatures) -> Result<ProbeScores, TrainError> {
    let data = trainer.data();
    let config = trainer.config();
    let knn = knn_accuracy(
        &features.train,
        data.train().labels(),
        &features.test,
        data.test().labels(),
        knn_config(config, data.train().len()),
    )?;
    let linear_probe = linear_probe(
        &features.train,
        data.train().labels(),
        &features.test,
        data.test().labels(),
        &LinearProbeConfig {
            logistic: config.monitor.linear_probe,
        },
    )?;
    let online_probe_accuracy = trainer.feature_extractor().probe_accuracy(
        trainer.probe(),
        &features.test,
        data.test().labels(),
    )?;
    Ok(ProbeScores {
        knn,
        linear_probe,
        online_probe_accuracy,
        chance_level: data.chance_level(),
    })
}

/// kNN, linear-probe and online-probe accuracy of the trainer's current backbone.
pub fn probe(trainer: &SslTrainer) -> Result<ProbeScores, TrainError> {
    probe_scores(trainer, &split_features(trainer)?)
}

/// Evaluates the trainer's networks, writes `metrics.json`, `retrieval.png` and `views.png`
/// into `run`, and returns the report.
pub fn evaluate_ssl(
    trainer: &SslTrainer,
    run: &RunDir,
    train_seconds: Option<f64>,
) -> Result<SslEvalReport, TrainError> {
    let started = Instant::now();
    let mut timings = Vec::new();
    let mut lap = |name: &str, since: &mut Instant| {
        timings.push((name.to_string(), since.elapsed().as_secs_f64()));
        *since = Instant::now();
    };
    let mut since = Instant::now();
    let config = trainer.config();
    let data = trainer.data();
    let features = split_features(trainer)?;
    lap("features", &mut since);
    let scores = probe_scores(trainer, &features)?;
    lap("knn_and_probes", &mut since);
    // The untrained floor: the run's own step-0 weights (`initial/`); runs of earlier releases
    // have none and get them re-drawn from the seed.
    let mut untrained =
        SslTrainer::with_data(config.clone(), trainer.inference_device(), Arc::clone(data))?;
    untrained.load_initial(run)?;
    let untrained_features = split_features(&untrained)?;
    let untrained_knn = knn_accuracy(
        &untrained_features.train,
        data.train().labels(),
        &untrained_features.test,
        data.test().labels(),
        knn_config(config, data.train().len()),
    )?;
    let untrained_probe = linear_probe(
        &untrained_features.train,
        data.train().labels(),
        &untrained_features.test,
        data.test().labels(),
        &LinearProbeConfig {
            logistic: config.monitor.linear_probe,
        },
    )?;
    lap("untrained_floor", &mut since);
    let factor_knn = factor_knn(config, data, &features, &untrained_features)?;
    lap("factor_knn", &mut since);
    let (embedding_collapse, feature_effective_rank) = collapse(trainer, &features.test)?;
    lap("collapse", &mut since);
    write_retrieval(trainer, &features, &run.file("retrieval.png"))?;
    write_views(trainer, &run.file("views.png"))?;
    lap("pictures", &mut since);
    let report = SslEvalReport {
        step: trainer.step(),
        method: config.objective.name().to_string(),
        dataset: data.description().to_string(),
        num_classes: data.num_classes(),
        chance_level: scores.chance_level,
        knn: scores.knn,
        untrained_knn_accuracy: untrained_knn.accuracy,
        untrained_linear_probe_accuracy: untrained_probe.test_accuracy,
        factor_knn,
        linear_probe: scores.linear_probe,
        online_probe_accuracy: scores.online_probe_accuracy,
        embedding_collapse,
        feature_effective_rank,
        feature_dim: features.test.num_codes(),
        train_seconds,
        eval_seconds: started.elapsed().as_secs_f64(),
        timings,
    };
    write_json_atomic(&run.metrics(), &report)?;
    Ok(report)
}

fn collapse(
    trainer: &SslTrainer,
    test_features: &CodeMatrix,
) -> Result<(CollapseDiagnostics, f64), TrainError> {
    let data = trainer.data();
    let mut globals = trainer.config().augmentation.clone();
    globals.num_local_views = 0;
    let augmenter = MultiCropAugmenter::new(globals)?;
    let indices: Vec<usize> = (0..data.test().len().min(COLLAPSE_SAMPLES)).collect();
    let images = data.test().images(&indices)?;
    let views = augmenter.augment(&images, EVAL_AUGMENTATION_SEED, 0)?;
    let extractor = trainer.feature_extractor();
    let z1 = extractor.embeddings(&views[0])?;
    let z2 = extractor.embeddings(&views[1])?;
    let diagnostics = collapse_diagnostics(&z1, Some(&z2), &CollapseConfig::default())?;
    Ok((diagnostics, effective_rank(test_features)?))
}

fn unit_rows(x: &CodeMatrix) -> Vec<Vec<f64>> {
    x.rows()
        .map(|r| {
            let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
            r.iter().map(|v| v / norm).collect()
        })
        .collect()
}

/// `retrieval.png`: one row per query (the first test images): the query, then its
/// [`RETRIEVAL_NEIGHBOURS`] nearest training images by cosine similarity of backbone features.
fn write_retrieval(
    trainer: &SslTrainer,
    features: &SplitFeatures,
    path: &std::path::Path,
) -> Result<(), TrainError> {
    let data = trainer.data();
    let queries = trainer
        .config()
        .monitor
        .retrieval_queries
        .min(data.test().len());
    if queries == 0 {
        return Ok(());
    }
    let bank = unit_rows(&features.train);
    let query_rows = unit_rows(&features.test);
    let neighbours = RETRIEVAL_NEIGHBOURS.min(bank.len());
    let shape = data.test().shape();
    let mut pixels = Vec::new();
    for (q, query) in query_rows.iter().take(queries).enumerate() {
        let mut order: Vec<(usize, f64)> = bank
            .iter()
            .enumerate()
            .map(|(i, b)| (i, b.iter().zip(query).map(|(x, y)| x * y).sum()))
            .collect();
        order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        pixels.extend(data.test().images(&[q])?.into_pixels());
        let nearest: Vec<usize> = order.iter().take(neighbours).map(|(i, _)| *i).collect();
        pixels.extend(data.train().images(&nearest)?.into_pixels());
    }
    let grid = ImageBatch::new(shape, pixels)?;
    save_png_grid(&grid, neighbours + 1, path)?;
    Ok(())
}

/// `views.png`: one row per training image: the image, then every view a step draws from it
/// (global views first, local views upscaled to the global size, normalisation undone).
fn write_views(trainer: &SslTrainer, path: &std::path::Path) -> Result<(), TrainError> {
    let config = trainer.config();
    let data = trainer.data();
    let augmenter = MultiCropAugmenter::new(config.augmentation.clone())?;
    let indices: Vec<usize> = (0..data.train().len().min(VIEW_EXAMPLES)).collect();
    let images = data.train().images(&indices)?;
    let views = augmenter.augment(&images, config.seed, 0)?;
    let size = config.augmentation.global_views[0].size;
    let originals = resize_batch(&images, size)?;
    let displayed: Vec<ImageBatch> = augmenter
        .config()
        .views()
        .zip(&views)
        .map(|(view_config, batch)| {
            let shown = denormalize(batch, view_config.normalization.as_ref())?;
            resize_batch(&shown, size)
        })
        .collect::<Result<_, _>>()?;
    let shape = ObservationShape {
        channels: images.shape().channels,
        height: size,
        width: size,
    };
    let mut pixels = Vec::new();
    for i in 0..indices.len() {
        pixels.extend_from_slice(originals.image(i));
        for batch in &displayed {
            pixels.extend_from_slice(batch.image(i));
        }
    }
    save_png_grid(&ImageBatch::new(shape, pixels)?, displayed.len() + 1, path)?;
    Ok(())
}

/// Undoes the views' normalisation, x · std + mean per channel, for display.
fn denormalize(
    batch: &ImageBatch,
    norm: Option<&NormalizationConfig>,
) -> Result<ImageBatch, TrainError> {
    let Some(norm) = norm else {
        return Ok(batch.clone());
    };
    let shape = batch.shape();
    let plane = shape.height * shape.width;
    let mut pixels = batch.pixels().to_vec();
    for image in pixels.chunks_mut(shape.numel()) {
        for (c, channel) in image.chunks_mut(plane).enumerate() {
            let (mean, std) = (norm.mean[c % norm.mean.len()], norm.std[c % norm.std.len()]);
            for v in channel {
                *v = *v * std + mean;
            }
        }
    }
    Ok(ImageBatch::new(shape, pixels)?)
}
