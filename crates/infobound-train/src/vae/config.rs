//! Run configuration: plain serde structs whose defaults reproduce the α-TCVAE paper's 3DShapes
//! setup, plus the shipped presets in `configs/`.

use infobound_data::DatasetSource;
use serde::{Deserialize, Serialize};

use infobound_models::{ObjectiveConfig, VaeConfig};

use crate::TrainError;
use crate::run::RunConfig;

/// The default source: procedural 3DShapes, the α-TCVAE paper's main dataset.
fn default_source() -> DatasetSource {
    DatasetSource::Procedural {
        name: "shapes3d".into(),
    }
}

/// Adam (Kingma & Ba 2015) hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Learning rate (α-TCVAE: 3e-4).
    pub learning_rate: f64,
    /// First-moment decay β₁.
    pub beta_1: f32,
    /// Second-moment decay β₂.
    pub beta_2: f32,
    /// Denominator ε.
    pub epsilon: f32,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            learning_rate: 3e-4,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
        }
    }
}

/// ReduceLROnPlateau (PyTorch semantics, mode "min"): after `patience` log intervals whose mean
/// loss did not improve on the best by `threshold` (relative), multiply the rate by `factor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlateauConfig {
    /// Multiplicative decay.
    pub factor: f64,
    /// Log intervals without improvement before decaying.
    pub patience: usize,
    /// Relative improvement that counts.
    pub threshold: f64,
    /// Lower bound of the rate.
    pub min_learning_rate: f64,
}

impl Default for PlateauConfig {
    fn default() -> Self {
        Self {
            factor: 0.5,
            patience: 10,
            threshold: 1e-4,
            min_learning_rate: 1e-6,
        }
    }
}

/// The α-TCVAE authors' gradient-skip rule: skip the update when the objective's skip
/// statistic (for α-TCVAE their `reg_loss`, β(1−α)/(1−α/K)·mean KL_VIB) exceeds
/// `kl_threshold` and the gradient norm is at least `grad_norm_threshold` (or NaN). Defaults
/// from Cmeo97/benchmark_VAE @2777974 `src/pythae/trainers/base_trainer/base_trainer.py`
/// (`reg_loss > 1000`, `gradient_skip_threshold = 800.`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GradientSkipConfig {
    /// Level of the skip statistic above which large gradients are skipped.
    pub kl_threshold: f64,
    /// Gradient norm at or above which the step is skipped.
    pub grad_norm_threshold: f64,
}

impl Default for GradientSkipConfig {
    fn default() -> Self {
        Self {
            kl_threshold: 1000.0,
            grad_norm_threshold: 800.0,
        }
    }
}

/// What `infobound eval` and the end of training compute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Points encoded for the train split of MIG/SAP/DCI (disentanglement_lib: 10,000).
    pub num_train: usize,
    /// Points encoded for the test split (disentanglement_lib: 5,000).
    pub num_test: usize,
    /// Compute the FactorVAE score (sampling metric; costs ~ (train + eval votes) × 64 encodes).
    pub factor_vae_score: bool,
    /// Training votes of the FactorVAE score (disentanglement_lib: 10,000).
    pub factor_vae_train_votes: usize,
    /// Evaluation votes of the FactorVAE score (disentanglement_lib: 5,000).
    pub factor_vae_eval_votes: usize,
    /// Prior samples decoded for the Vendi score.
    pub vendi_samples: usize,
    /// Encoder batch size during evaluation.
    pub batch_size: usize,
    /// Seed of the evaluation samples (kept apart from the training seed).
    pub seed: u64,
    /// Metrics of the suite (names of `infobound_metrics::REGISTRY`) scored on the μ codes.
    pub metrics: Vec<String>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            num_train: 10_000,
            num_test: 5_000,
            factor_vae_score: true,
            factor_vae_train_votes: 10_000,
            factor_vae_eval_votes: 5_000,
            vendi_samples: 1_000,
            batch_size: 256,
            seed: 2024,
            // The α-TCVAE paper's table (DCI, SNC, MIG) and disentanglement_lib's other
            // code metrics (SAP with SVMs, modularity, explicitness); our choice of set.
            metrics: [
                "dci",
                "snc",
                "mig",
                "sap_discrete",
                "modularity",
                "explicitness",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// A whole run: data, model, objective, optimiser, schedule, logging and evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Run name (the default output folder is `runs/<name>-<seed>`).
    pub name: String,
    /// Seed of initial weights, batches and noise: the same seed gives the same run.
    pub seed: u64,
    /// Training data: any ground-truth source (procedural, or the real dSprites / 3DShapes /
    /// MPI3D files); the model is evaluated on its true factors.
    #[serde(default = "default_source")]
    pub dataset: DatasetSource,
    /// Networks.
    pub model: VaeConfig,
    /// Objective.
    pub objective: ObjectiveConfig,
    /// Adam.
    pub optimizer: OptimizerConfig,
    /// Optional ReduceLROnPlateau.
    pub plateau: Option<PlateauConfig>,
    /// Optional gradient-skip rule (on by default, as in the α-TCVAE code).
    pub gradient_skip: Option<GradientSkipConfig>,
    /// Batch size.
    pub batch_size: usize,
    /// Number of optimisation steps.
    pub steps: usize,
    /// Steps between log lines.
    pub log_every: usize,
    /// Steps between checkpoints (a final one is always written).
    pub checkpoint_every: usize,
    /// Consecutive non-finite losses tolerated (skipped) before training stops.
    pub max_consecutive_nonfinite: usize,
    /// Evaluation.
    pub eval: EvalConfig,
    /// Data parallelism: the batch split into shards whose gradients are averaged.
    #[serde(default)]
    pub data_parallel: VaeDataParallelConfig,
}

/// Synchronous data parallelism for the VAE family: every step splits the batch into
/// `replicas` equal, contiguous shards; each shard's loss is computed on its own — the
/// total-correlation estimators see the shard's codes, with the shard's size as batch size, as
/// every GPU does under PyTorch's DistributedDataParallel — and the update uses the mean of the
/// shards' gradients. In one process the shards run one after the other (gradient
/// accumulation); in an MPI job of N ranks each rank runs `replicas` shards of
/// `N · replicas`. One replica (the default) is the plain step on the whole batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaeDataParallelConfig {
    /// Shards per process; `batch_size` must be a multiple of `replicas × ranks`.
    pub replicas: usize,
}

impl Default for VaeDataParallelConfig {
    fn default() -> Self {
        Self { replicas: 1 }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            name: "alpha_tcvae_shapes3d".into(),
            seed: 0,
            dataset: default_source(),
            model: VaeConfig::default(),
            objective: ObjectiveConfig::default(),
            optimizer: OptimizerConfig::default(),
            plateau: None,
            gradient_skip: Some(GradientSkipConfig::default()),
            batch_size: 256,
            steps: 300_000,
            log_every: 50,
            checkpoint_every: 5_000,
            max_consecutive_nonfinite: 20,
            eval: EvalConfig::default(),
            data_parallel: VaeDataParallelConfig::default(),
        }
    }
}

impl TrainConfig {
    /// Names of the shipped VAE presets.
    pub fn preset_names() -> Vec<&'static str> {
        RunConfig::preset_names()
            .into_iter()
            .filter(|name| matches!(RunConfig::preset(name, &[]), Ok(RunConfig::Vae(_))))
            .collect()
    }

    /// A shipped VAE preset (`presets/<name>.toml`).
    ///
    /// # Errors
    /// [`TrainError::Config`] for an unknown preset or a self-supervised one.
    pub fn preset(name: &str) -> Result<Self, TrainError> {
        match RunConfig::preset(name, &[])? {
            RunConfig::Vae(config) => Ok(*config),
            RunConfig::Ssl(_) => Err(TrainError::Config(format!(
                "`{name}` is a self-supervised preset, not a VAE one"
            ))),
        }
    }

    /// Parses TOML (missing fields take their defaults).
    pub fn from_toml(text: &str) -> Result<Self, TrainError> {
        toml::from_str(text).map_err(|e| TrainError::Config(e.to_string()))
    }

    /// Parses JSON (missing fields take their defaults).
    pub fn from_json(text: &str) -> Result<Self, TrainError> {
        serde_json::from_str(text).map_err(|e| TrainError::Config(e.to_string()))
    }

    /// Reads a `.toml` or `.json` file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Self::from_json(&text),
            _ => Self::from_toml(&text),
        }
    }

    /// The resolved configuration as TOML (written to `config.toml` of every run).
    pub fn to_toml(&self) -> Result<String, TrainError> {
        toml::to_string_pretty(self).map_err(|e| TrainError::Config(e.to_string()))
    }

    /// Checks every value that could otherwise fail deep inside training.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.batch_size < 2 {
            return Err(TrainError::Config("batch_size must be at least 2".into()));
        }
        if self.log_every == 0 || self.checkpoint_every == 0 {
            return Err(TrainError::Config(
                "log_every and checkpoint_every must be positive".into(),
            ));
        }
        if !(self.optimizer.learning_rate > 0.0 && self.optimizer.learning_rate.is_finite()) {
            return Err(TrainError::Config("learning_rate must be positive".into()));
        }
        if self.eval.num_train < 2 || self.eval.num_test < 2 || self.eval.batch_size == 0 {
            return Err(TrainError::Config(
                "eval needs num_train, num_test >= 2 and a positive batch_size".into(),
            ));
        }
        if !self.dataset.has_ground_truth() {
            return Err(TrainError::Config(format!(
                "dataset `{}` has no ground-truth factors: VAE runs train and are evaluated on \
                 procedural dSprites / 3DShapes or the real dSprites, 3DShapes and MPI3D files",
                self.dataset.name()
            )));
        }
        for name in &self.eval.metrics {
            name.parse::<infobound_metrics::MetricName>()
                .map_err(|e| TrainError::Config(format!("eval.metrics: {e}")))?;
        }
        let replicas = self.data_parallel.replicas;
        if replicas == 0
            || !self.batch_size.is_multiple_of(replicas)
            || self.batch_size / replicas < 2
        {
            return Err(TrainError::Config(format!(
                "data_parallel.replicas = {replicas} must be positive and split batch_size = {} \
                 into shards of at least 2",
                self.batch_size
            )));
        }
        self.objective.validate(self.model.latent_dim)?;
        Ok(())
    }
}
