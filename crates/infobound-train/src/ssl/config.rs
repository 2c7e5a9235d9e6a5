//! Configuration of a self-supervised run: plain serde structs whose defaults follow the released
//! MVEB recipe (Wen et al., TPAMI 2024) where it applies, the shipped SSL presets, and the loader
//! that tells a VAE configuration from an SSL one.

use std::path::Path;

use infobound_data::DatasetSource;
use infobound_data::augment::MultiCropConfig;
use infobound_metrics::LogisticRegressionConfig;
use infobound_models::LayerImplementation;
use infobound_models::ssl::{BackboneConfig, MlpHeadConfig, SslNetworkConfig, SslObjectiveConfig};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::optim::CosineSpan;
use crate::run::RunConfig;

/// How a ground-truth source ([`DatasetSource::has_ground_truth`]) becomes the labelled
/// splits of a self-supervised run: images at factor states drawn from `seed`, labelled by one
/// factor, resized to `image_size`. CIFAR and image folders bring their own splits and classes
/// and ignore this table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabelledSplitConfig {
    /// The factor whose value is the class label (3DShapes `shape`: 4 classes).
    pub label_factor: String,
    /// Side of the stored images in pixels (the sources are 64 px; this resizes).
    pub image_size: usize,
    /// Training images (unlabelled during SSL; labelled for the kNN bank and probes).
    pub num_train: usize,
    /// Held-out test images of the kNN monitor and the probes.
    pub num_test: usize,
    /// Seed of the factor states drawn for the two splits.
    pub seed: u64,
}

impl Default for LabelledSplitConfig {
    /// 3DShapes at 32 px labelled by object shape (4 classes; hue would be destroyed by colour
    /// jitter), 4,000 training and 1,000 test images (our choice: what the quickstart budget
    /// encodes quickly).
    fn default() -> Self {
        Self {
            label_factor: "shape".into(),
            image_size: 32,
            num_train: 4_000,
            num_test: 1_000,
            seed: 7,
        }
    }
}

/// The default self-supervised source: procedural 3DShapes.
fn default_source() -> DatasetSource {
    DatasetSource::Procedural {
        name: "shapes3d".into(),
    }
}

/// The optimiser family and its parameters (serde tag `kind`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SslOptimizerMethod {
    /// LARS (You et al. 2017), MVEB's optimiser: SGD with momentum whose per-layer step is
    /// scaled by `trust · ‖w‖ / ‖g + wd·w‖`; one-dimensional parameters (biases, batch-norm
    /// affine) optionally get neither decay nor scaling.
    Lars {
        /// Heavy-ball momentum (MVEB: 0.9).
        momentum: f64,
        /// Decoupled-into-gradient weight decay (MVEB: 1e-6).
        weight_decay: f64,
        /// Trust coefficient η (MVEB: 0.001).
        trust_coefficient: f64,
        /// Exempt 1-d parameters from decay and LARS scaling (MVEB: true).
        exclude_one_dimensional: bool,
        /// Learning-rate multiplier of 1-d parameters (biases, batch-norm γ/β); default 1
        /// (MVEB). Barlow Twins: 0.024 (see [`crate::optim::LarsConfig::one_dimensional_lr_factor`]).
        #[serde(default = "unit_factor")]
        one_dimensional_lr_factor: f64,
    },
    /// SGD with momentum and L2 weight decay.
    Sgd {
        /// Heavy-ball momentum.
        momentum: f64,
        /// L2 weight decay.
        weight_decay: f64,
    },
    /// Adam (Kingma & Ba 2015) with L2 weight decay.
    Adam {
        /// L2 weight decay.
        weight_decay: f64,
    },
}

impl Default for SslOptimizerMethod {
    fn default() -> Self {
        Self::Lars {
            momentum: 0.9,
            weight_decay: 1e-6,
            trust_coefficient: 0.001,
            exclude_one_dimensional: true,
            one_dimensional_lr_factor: 1.0,
        }
    }
}

/// The default learning-rate multiplier of 1-d parameters: none.
fn unit_factor() -> f64 {
    1.0
}

/// Optimiser and learning-rate schedule of the encoder: peak rate `base_lr × batch / 256`
/// (Goyal et al. 2017's linear scaling), linear warm-up from 1e-3 × peak, then cosine decay to
/// 1e-3 × peak (MVEB's schedule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SslOptimizerConfig {
    /// Base learning rate at batch 256 (MVEB: 0.3).
    pub base_lr: f64,
    /// Warm-up steps (MVEB: 10 epochs); a run shorter than its warm-up (a smoke test with
    /// `--steps 2`) warms up for `steps − 1`.
    pub warmup_steps: usize,
    /// The optimiser.
    pub method: SslOptimizerMethod,
    /// What the cosine phase is divided by: `total` (T, the released MVEB code's
    /// `adjust_lr`, the default) or `after_warmup` (T − W, Barlow Twins' and solo-learn's).
    pub cosine_span: CosineSpan,
}

impl Default for SslOptimizerConfig {
    fn default() -> Self {
        Self {
            base_lr: 0.3,
            warmup_steps: 50_050,
            method: SslOptimizerMethod::default(),
            // wlj6816/MVEB@9ac7965 `project/pretrainer.py` `adjust_lr` divides by T.
            cosine_span: CosineSpan::Total,
        }
    }
}

/// Monitors during training and the evaluation at its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SslMonitorConfig {
    /// kNN neighbours (Wu et al. 2018: 200).
    pub knn_k: usize,
    /// kNN vote temperature (0.1).
    pub knn_temperature: f64,
    /// Training images in the kNN bank of the monitor (the first ones; 0 = all).
    pub monitor_bank_size: usize,
    /// Test images queried by the monitor (the first ones; 0 = all).
    pub monitor_test_size: usize,
    /// Steps between collapse diagnostics of the online embeddings (effective rank,
    /// uniformity, alignment, kernel width).
    pub diagnostics_every: usize,
    /// Adam learning rate of the online linear probe on detached backbone features.
    pub probe_learning_rate: f64,
    /// Batch size of feature extraction.
    pub eval_batch_size: usize,
    /// Logistic regression of the offline linear probe.
    pub linear_probe: LogisticRegressionConfig,
    /// Queries shown in `retrieval.png`.
    pub retrieval_queries: usize,
    /// How an evaluated image (kNN bank and queries, probes, retrieval) reaches the global
    /// view size.
    pub eval_view: EvalView,
}

/// The evaluation transform that brings a stored image to the global view size `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalView {
    /// Resize the whole image to `s × s`.
    #[default]
    Resize,
    /// Keep the central `s × s` pixels of an image at least that large. On images stored at
    /// 256 × 256 by [`ImageFit::ShorterSideCenterCrop`](infobound_data::readers::ImageFit)
    /// with `s = 224` this is torchvision's `Resize(256)` + `CenterCrop(224)`, the official MVEB
    /// evaluation transform (wlj6816/MVEB@9ac7965 `project/dataloader.py` `test_transform`).
    CenterCrop,
}

impl Default for SslMonitorConfig {
    fn default() -> Self {
        Self {
            knn_k: 200,
            knn_temperature: 0.1,
            monitor_bank_size: 0,
            monitor_test_size: 0,
            diagnostics_every: 50,
            probe_learning_rate: 1e-3,
            eval_batch_size: 256,
            linear_probe: LogisticRegressionConfig::default(),
            retrieval_queries: 8,
            eval_view: EvalView::Resize,
        }
    }
}

/// A whole self-supervised run: data, views, networks, objective, optimiser, schedule, monitors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SslTrainConfig {
    /// Run name (the default output folder is `runs/<name>-seed<seed>`).
    pub name: String,
    /// Seed of initial weights, batches and augmentations: the same seed gives the same run.
    pub seed: u64,
    /// Images per batch (each gives every view).
    pub batch_size: usize,
    /// Optimisation steps.
    pub steps: usize,
    /// Steps between log lines.
    pub log_every: usize,
    /// Steps between checkpoints (a final one is always written).
    pub checkpoint_every: usize,
    /// Steps between kNN-monitor evaluations (0 = only at the end).
    pub monitor_every: usize,
    /// Consecutive steps with a non-finite loss that are skipped before training stops (our
    /// choice, as for the VAE family; the released MVEB code skips such steps without limit).
    pub max_consecutive_nonfinite: usize,
    /// Where the images come from (any source: procedural, the real ground-truth files, CIFAR,
    /// image folders).
    #[serde(default = "default_source")]
    pub dataset: DatasetSource,
    /// How a ground-truth source becomes labelled splits.
    pub labels: LabelledSplitConfig,
    /// Multi-crop views; methods without local views use only the global ones.
    pub augmentation: MultiCropConfig,
    /// Backbone, projector and optional predictor.
    pub network: SslNetworkConfig,
    /// Objective.
    pub objective: SslObjectiveConfig,
    /// Optimiser and schedule.
    pub optimizer: SslOptimizerConfig,
    /// Monitors and evaluation.
    pub monitor: SslMonitorConfig,
    /// Data-parallel replicas (1 = a single device).
    pub data_parallel: DataParallelConfig,
}

/// Which samples MVEB's score estimator — and Barlow Twins' cross-correlation — sees when the
/// batch is split over replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntropySupport {
    /// Each replica estimates the score from its own `batch_size / replicas` embeddings per
    /// view, as the released MVEB code does on every GPU.
    #[default]
    PerReplica,
    /// Each replica estimates the score of its rows from every replica's embeddings of the view
    /// (moved, detached, between devices and, in an MPI job, all-gathered across the ranks):
    /// the score a single device would estimate on the whole batch. Barlow Twins then computes
    /// its loss on the whole batch's projections (the others' detached), as its paper's code
    /// does across GPUs; SimSiam and BYOL are unaffected.
    Gathered,
}

/// Synchronous data-parallel training: every step splits the batch into `replicas` equal,
/// contiguous shards, one per replica; each replica runs forward and backward on its shard
/// with the loss scaled by `1 / replicas`, and Burn's multi-device optimiser step
/// (`ModuleOptimizer::step_multi`) sums the replicas' gradients, each parameter on one of the
/// devices. Batch-norm statistics are per replica (as PyTorch DDP without SyncBatchNorm);
/// running statistics are averaged over replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataParallelConfig {
    /// Number of replicas; `batch_size` must be a multiple of it. The devices they run on are
    /// given at run time (one device for all, or one per replica).
    pub replicas: usize,
    /// MVEB's score-estimator samples (the paper: per replica).
    pub entropy_support: EntropySupport,
}

impl DataParallelConfig {
    /// Checks that `devices` devices can host the replicas: one device for all of them, or one
    /// device per replica.
    ///
    /// # Errors
    /// [`TrainError::DataParallel`] for any other count.
    pub fn check_device_count(&self, devices: usize) -> Result<(), TrainError> {
        if devices == 1 || devices == self.replicas {
            return Ok(());
        }
        Err(TrainError::DataParallel(format!(
            "{devices} devices for {} replica(s): give one device, or one per replica \
             (data_parallel.replicas)",
            self.replicas
        )))
    }
}

impl Default for DataParallelConfig {
    fn default() -> Self {
        Self {
            replicas: 1,
            entropy_support: EntropySupport::PerReplica,
        }
    }
}

impl Default for SslTrainConfig {
    /// MVEB's released ImageNet recipe: ResNet-50 with zero-initialised residual branches,
    /// 3 × 2048 projector without predictor, 2 × 224 px + 6 × 96 px views, LARS at
    /// 0.3 × batch/256, λ = 0.01.
    fn default() -> Self {
        let backbone = BackboneConfig::ResNet50 {
            in_channels: 3,
            zero_init_residual: true,
        };
        let width = backbone.feature_dim();
        Self {
            name: "mveb".into(),
            seed: 0,
            batch_size: 256,
            steps: 500_500,
            log_every: 50,
            checkpoint_every: 5_000,
            monitor_every: 5_000,
            max_consecutive_nonfinite: 20,
            dataset: default_source(),
            labels: LabelledSplitConfig::default(),
            augmentation: MultiCropConfig::mveb_imagenet(),
            network: SslNetworkConfig {
                projector: MlpHeadConfig::mveb_projector(width, width),
                backbone,
                predictor: None,
                layers: LayerImplementation::default(),
                view_batching: infobound_models::ssl::ViewBatching::PerView,
            },
            objective: SslObjectiveConfig::default(),
            optimizer: SslOptimizerConfig::default(),
            monitor: SslMonitorConfig::default(),
            data_parallel: DataParallelConfig::default(),
        }
    }
}

impl SslTrainConfig {
    /// Names of the shipped self-supervised presets.
    pub fn preset_names() -> Vec<&'static str> {
        RunConfig::preset_names()
            .into_iter()
            .filter(|name| matches!(RunConfig::preset(name, &[]), Ok(RunConfig::Ssl(_))))
            .collect()
    }

    /// A shipped self-supervised preset.
    ///
    /// # Errors
    /// [`TrainError::Config`] for an unknown preset or a VAE one.
    pub fn preset(name: &str) -> Result<Self, TrainError> {
        match RunConfig::preset(name, &[])? {
            RunConfig::Ssl(config) => Ok(*config),
            RunConfig::Vae(_) => Err(TrainError::Config(format!(
                "`{name}` is a VAE preset, not a self-supervised one"
            ))),
        }
    }

    /// Parses TOML (missing fields take their defaults, unknown fields are errors).
    pub fn from_toml(text: &str) -> Result<Self, TrainError> {
        let config: Self = toml::from_str(text).map_err(|e| TrainError::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads a `.toml` (or `.json`) file.
    pub fn from_file(path: &Path) -> Result<Self, TrainError> {
        match RunConfig::from_file(path, &[])? {
            RunConfig::Ssl(config) => Ok(*config),
            RunConfig::Vae(_) => Err(TrainError::Config(format!(
                "{} is a VAE configuration, not a self-supervised one",
                path.display()
            ))),
        }
    }

    /// The resolved configuration as TOML (written to `config.toml` of every run).
    pub fn to_toml(&self) -> Result<String, TrainError> {
        toml::to_string_pretty(self).map_err(|e| TrainError::Config(e.to_string()))
    }

    /// The peak learning rate `base_lr × batch / 256`.
    pub fn peak_learning_rate(&self) -> f64 {
        crate::optim::scaled_learning_rate(self.optimizer.base_lr, self.batch_size)
    }

    /// Checks every value that could otherwise fail deep inside training.
    pub fn validate(&self) -> Result<(), TrainError> {
        let fail = |m: &str| Err(TrainError::Config(m.to_string()));
        if self.batch_size < 2 {
            return fail("batch_size must be at least 2 (batch norm and the estimator need it)");
        }
        if self.steps == 0 || self.log_every == 0 || self.checkpoint_every == 0 {
            return fail("steps, log_every and checkpoint_every must be positive");
        }
        if !(self.optimizer.base_lr.is_finite() && self.optimizer.base_lr > 0.0) {
            return fail("optimizer.base_lr must be positive");
        }
        let replicas = self.data_parallel.replicas;
        if replicas == 0 || !self.batch_size.is_multiple_of(replicas) {
            return Err(TrainError::Config(format!(
                "data_parallel.replicas ({replicas}) must be positive and divide batch_size ({})",
                self.batch_size
            )));
        }
        if self.batch_size / replicas < 2 {
            return fail("each data-parallel replica needs at least 2 images per batch");
        }
        if self.augmentation.global_views.len() != 2 {
            return fail("augmentation needs exactly two global views");
        }
        if self.objective.uses_predictor() != self.network.predictor.is_some() {
            return fail(if self.objective.uses_predictor() {
                "this objective needs a predictor: set [network.predictor]"
            } else {
                "this objective uses no predictor: remove [network.predictor]"
            });
        }
        if self.monitor.knn_k == 0
            || !(self.monitor.knn_temperature.is_finite() && self.monitor.knn_temperature > 0.0)
        {
            return fail("monitor.knn_k and monitor.knn_temperature must be positive");
        }
        if !(self.monitor.probe_learning_rate.is_finite() && self.monitor.probe_learning_rate > 0.0)
            || self.monitor.eval_batch_size == 0
            || self.monitor.diagnostics_every == 0
        {
            return fail(
                "monitor.probe_learning_rate, eval_batch_size and diagnostics_every must be positive",
            );
        }
        let labels = &self.labels;
        if self.dataset.has_ground_truth()
            && (labels.image_size == 0 || labels.num_train < 2 || labels.num_test < 1)
        {
            return fail("labels needs image_size > 0, num_train >= 2 and num_test >= 1");
        }
        if let DatasetSource::ImageFolder {
            image_size: Some(0),
            ..
        } = &self.dataset
        {
            return fail("dataset.image_size must be positive");
        }
        Ok(())
    }
}
