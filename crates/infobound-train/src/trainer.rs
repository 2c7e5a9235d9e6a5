//! The training loop shared by every VAE objective.

use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use infobound_data::{GroundTruthDataset, ImageBatch, dataset_by_name, images_to_tensor};
use infobound_models::objectives::{Discriminator, permute_dims};
use infobound_models::{ObjectiveConfig, StepContext, Vae};
use serde::Serialize;

use crate::checkpoint::{
    TrainerState, latest_checkpoint, load_module, load_optimizer, load_state, save_checkpoint,
};
use crate::fsutil::write_atomic;
use crate::rng::{Stream, standard_normal, step_rng};
use crate::{RunDir, TrainConfig, TrainError};

/// What a finished (or resumed and finished) run reports.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    /// Steps completed.
    pub steps: usize,
    /// Steps skipped (gradient-skip rule or non-finite loss).
    pub skipped_steps: usize,
    /// Mean loss over the last log interval.
    pub final_loss: f64,
    /// Wall time of this invocation in seconds.
    pub wall_seconds: f64,
    /// Optimisation steps per second in this invocation.
    pub steps_per_second: f64,
}

/// Options that do not change the result of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainOptions {
    /// Continue from the newest checkpoint of the run folder.
    pub resume: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// The model and optimiser state of a VAE run.
pub struct VaeTrainer {
    config: TrainConfig,
    device: Device,
    dataset: Arc<dyn GroundTruthDataset>,
    vae: Vae,
    optimizer: ModuleOptimizer,
    discriminator: Option<(Discriminator, ModuleOptimizer)>,
    state: TrainerState,
}

impl VaeTrainer {
    /// Builds a fresh model (weights drawn from `config.seed`) on an autodiff `device`.
    pub fn new(config: TrainConfig, device: &Device) -> Result<Self, TrainError> {
        config.validate()?;
        let dataset: Arc<dyn GroundTruthDataset> =
            Arc::from(dataset_by_name(&config.dataset.name)?);
        let shape = dataset.observation_shape();
        if shape.channels != config.model.channels || shape.height != 64 || shape.width != 64 {
            return Err(TrainError::Config(format!(
                "dataset `{}` has {}x{}x{} images but the model expects {}x64x64",
                config.dataset.name,
                shape.channels,
                shape.height,
                shape.width,
                config.model.channels
            )));
        }
        let device = device.clone().autodiff();
        device.seed(config.seed);
        let vae = config.model.init(&device)?;
        let optimizer = adam(&config);
        let discriminator = match &config.objective {
            ObjectiveConfig::FactorVae(c) => Some((
                c.discriminator(config.model.latent_dim, &device),
                AdamConfig::new().with_beta_1(0.5).with_beta_2(0.9).init(),
            )),
            _ => None,
        };
        let state = TrainerState {
            step: 0,
            learning_rate: config.optimizer.learning_rate,
            plateau_best: None,
            plateau_bad_intervals: 0,
            skipped_steps: 0,
        };
        Ok(Self {
            config,
            device,
            dataset,
            vae,
            optimizer,
            discriminator,
            state,
        })
    }

    /// Restores weights, optimiser moments and counters from a checkpoint folder.
    pub fn restore(&mut self, checkpoint: &std::path::Path) -> Result<(), TrainError> {
        self.state = load_state(checkpoint)?;
        self.vae = load_module(checkpoint, "vae", self.vae.clone())?;
        self.optimizer = load_optimizer(checkpoint, "optimizer", self.optimizer.clone())?;
        if let Some((d, o)) = self.discriminator.take() {
            self.discriminator = Some((
                load_module(checkpoint, "discriminator", d)?,
                load_optimizer(checkpoint, "discriminator_optimizer", o)?,
            ));
        }
        Ok(())
    }

    /// The model being trained.
    pub fn vae(&self) -> &Vae {
        &self.vae
    }

    /// The dataset being trained on.
    pub fn dataset(&self) -> &Arc<dyn GroundTruthDataset> {
        &self.dataset
    }

    /// Completed steps.
    pub fn step(&self) -> usize {
        self.state.step
    }

    fn checkpoint(&self, run: &RunDir) -> Result<(), TrainError> {
        let mut modules: Vec<(&str, &dyn crate::checkpoint::SaveModule)> = vec![("vae", &self.vae)];
        let mut optimizers = vec![("optimizer", &self.optimizer)];
        if let Some((d, o)) = &self.discriminator {
            modules.push(("discriminator", d));
            optimizers.push(("discriminator_optimizer", o));
        }
        save_checkpoint(&run.checkpoints(), &self.state, &modules, &optimizers)?;
        Ok(())
    }

    /// Trains until `config.steps`, logging to `run`'s `train_log.jsonl` and checkpointing.
    pub fn train(
        &mut self,
        run: &RunDir,
        options: TrainOptions,
    ) -> Result<TrainSummary, TrainError> {
        let started = Instant::now();
        let start_step = self.state.step;
        let mut log = TrainLog::open(run, start_step)?;
        let total = self.config.steps;
        let bar = progress_bar(options.progress, start_step, total);
        let batches = prefetch(
            Arc::clone(&self.dataset),
            self.config.seed,
            self.config.batch_size,
            start_step,
            total,
        );
        let context_size = self.dataset.factor_space().len();
        let mut interval = IntervalStats::default();
        let mut consecutive_nonfinite = 0usize;
        let mut last_mean = f64::NAN;
        let mut interval_started = Instant::now();
        for (step, batch) in (start_step..total).zip(batches.iter()) {
            let batch = batch?;
            let x = images_to_tensor(&batch, &self.device);
            let outcome = self.train_step(step, x, context_size)?;
            match outcome {
                StepOutcome::NonFinite => {
                    consecutive_nonfinite += 1;
                    self.state.skipped_steps += 1;
                    if consecutive_nonfinite > self.config.max_consecutive_nonfinite {
                        return Err(TrainError::Diverged {
                            step,
                            consecutive: consecutive_nonfinite,
                        });
                    }
                }
                StepOutcome::Done { terms, skipped } => {
                    consecutive_nonfinite = 0;
                    if skipped {
                        self.state.skipped_steps += 1;
                    }
                    interval.add(&terms);
                }
            }
            self.state.step = step + 1;
            bar.inc(1);
            if due(self.state.step, self.config.log_every, total) {
                let elapsed = interval_started.elapsed().as_secs_f64();
                let line = interval.log_line(
                    self.state.step,
                    self.state.learning_rate,
                    self.state.skipped_steps,
                    interval.count as f64 / elapsed.max(1e-9),
                );
                if let Some(mean) = interval.mean("loss") {
                    last_mean = mean;
                    self.plateau(mean);
                }
                bar.set_message(interval.short());
                log.write(&line)?;
                interval = IntervalStats::default();
                interval_started = Instant::now();
            }
            if due(self.state.step, self.config.checkpoint_every, total) {
                self.checkpoint(run)?;
            }
        }
        bar.finish_and_clear();
        let wall = started.elapsed().as_secs_f64();
        Ok(TrainSummary {
            steps: self.state.step,
            skipped_steps: self.state.skipped_steps,
            final_loss: last_mean,
            wall_seconds: wall,
            steps_per_second: (self.state.step - start_step) as f64 / wall.max(1e-9),
        })
    }

    fn train_step(
        &mut self,
        step: usize,
        x: Tensor<4>,
        dataset_size: usize,
    ) -> Result<StepOutcome, TrainError> {
        let [b, _, _, _] = x.dims();
        let k = self.config.model.latent_dim;
        let eps = standard_normal(&mut step_rng(self.config.seed, step, Stream::Noise), b * k);
        let eps = Tensor::<2>::from_data(TensorData::new(eps, [b, k]), &self.device);
        let forward = self.vae.forward(x, eps)?;
        let context = StepContext { step, dataset_size };
        let output = self.config.objective.vae_loss(
            &forward,
            self.config.model.likelihood,
            &context,
            self.discriminator.as_ref().map(|(d, _)| d),
        )?;
        // One host round-trip per step for every logged scalar.
        let mut scalars = vec![output.loss.clone().detach()];
        scalars.extend(output.terms.iter().map(|(_, t)| t.clone()));
        if let Some(w) = &output.weighted_kl {
            scalars.push(w.clone());
        }
        let values: Vec<f32> = Tensor::cat(scalars, 0)
            .into_data()
            .try_to_vec()
            .map_err(|e| TrainError::Config(format!("cannot read the loss: {e:?}")))?;
        let loss = values[0] as f64;
        if !loss.is_finite() {
            return Ok(StepOutcome::NonFinite);
        }
        let mut terms: Vec<(String, f64)> = vec![("loss".into(), loss)];
        terms.extend(
            output
                .terms
                .iter()
                .zip(&values[1..])
                .map(|((name, _), v)| (name.to_string(), *v as f64)),
        );
        let weighted_kl = output
            .weighted_kl
            .as_ref()
            .map(|_| values[values.len() - 1] as f64);
        let grads = GradientsParams::from_grads(output.loss.backward(), &self.vae);
        let grad_norm = gradient_norm(&self.vae, &grads);
        terms.push(("grad_norm".into(), grad_norm));
        let skip = !grad_norm.is_finite()
            || match (&self.config.gradient_skip, weighted_kl) {
                (Some(rule), Some(w)) => {
                    w > rule.kl_threshold && grad_norm >= rule.grad_norm_threshold
                }
                _ => false,
            };
        if !skip {
            self.vae = self
                .optimizer
                .step(self.state.learning_rate, self.vae.clone(), grads);
        }
        if let (ObjectiveConfig::FactorVae(c), Some((d, _))) =
            (&self.config.objective, self.discriminator.as_ref())
        {
            // The loss is computed from a borrow, so that an error leaves the trainer with its
            // discriminator; it is taken out only for the optimiser step, which cannot fail.
            let z = forward.z.detach();
            let mut rng = step_rng(self.config.seed, step, Stream::Permutation);
            let z_perm = permute_dims(z.clone(), &mut rng)?;
            let d_loss = d.loss(z, z_perm)?;
            let d_value: f32 = d_loss.clone().detach().into_scalar();
            terms.push(("discriminator_loss".into(), d_value as f64));
            let d_grads = GradientsParams::from_grads(d_loss.backward(), d);
            if let Some((d, mut o)) = self.discriminator.take() {
                let d = o.step(c.discriminator_lr, d, d_grads);
                self.discriminator = Some((d, o));
            }
        }
        Ok(StepOutcome::Done {
            terms,
            skipped: skip,
        })
    }

    fn plateau(&mut self, mean_loss: f64) {
        let Some(rule) = &self.config.plateau else {
            return;
        };
        match self.state.plateau_best {
            Some(best) if mean_loss >= best * (1.0 - rule.threshold) => {
                self.state.plateau_bad_intervals += 1;
                if self.state.plateau_bad_intervals > rule.patience {
                    self.state.learning_rate =
                        (self.state.learning_rate * rule.factor).max(rule.min_learning_rate);
                    self.state.plateau_bad_intervals = 0;
                }
            }
            _ => {
                self.state.plateau_best = Some(mean_loss);
                self.state.plateau_bad_intervals = 0;
            }
        }
    }
}

fn adam(config: &TrainConfig) -> ModuleOptimizer {
    AdamConfig::new()
        .with_beta_1(config.optimizer.beta_1)
        .with_beta_2(config.optimizer.beta_2)
        .with_epsilon(config.optimizer.epsilon)
        .init()
}

enum StepOutcome {
    NonFinite,
    Done {
        terms: Vec<(String, f64)>,
        skipped: bool,
    },
}

/// L2 norm of all gradients of `module`: √(Σ_params ‖g‖²).
fn gradient_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    struct SquaredNorm<'a> {
        grads: &'a GradientsParams,
        parts: Vec<Tensor<1>>,
    }
    impl ModuleVisitor for SquaredNorm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.parts.push(g.square().sum());
            }
        }
    }
    let mut visitor = SquaredNorm {
        grads,
        parts: Vec::new(),
    };
    module.visit(&mut visitor);
    if visitor.parts.is_empty() {
        return 0.0;
    }
    let total: f32 = Tensor::cat(visitor.parts, 0).sum().into_scalar();
    (total as f64).sqrt()
}

/// Running sums of the logged terms over one log interval.
#[derive(Default)]
struct IntervalStats {
    names: Vec<String>,
    sums: Vec<f64>,
    count: usize,
}

impl IntervalStats {
    fn add(&mut self, terms: &[(String, f64)]) {
        if self.names.is_empty() {
            self.names = terms.iter().map(|(n, _)| n.clone()).collect();
            self.sums = vec![0.0; terms.len()];
        }
        for (sum, (_, v)) in self.sums.iter_mut().zip(terms) {
            *sum += v;
        }
        self.count += 1;
    }

    fn mean(&self, name: &str) -> Option<f64> {
        let i = self.names.iter().position(|n| n == name)?;
        (self.count > 0).then(|| self.sums[i] / self.count as f64)
    }

    fn log_line(&self, step: usize, lr: f64, skipped: usize, steps_per_second: f64) -> String {
        let mut map = serde_json::Map::new();
        map.insert("step".into(), step.into());
        for (name, sum) in self.names.iter().zip(&self.sums) {
            let mean = sum / self.count.max(1) as f64;
            map.insert(
                name.clone(),
                serde_json::Number::from_f64(mean).map_or(serde_json::Value::Null, Into::into),
            );
        }
        map.insert("learning_rate".into(), lr.into());
        map.insert("skipped_steps".into(), skipped.into());
        map.insert("steps_per_second".into(), steps_per_second.into());
        serde_json::Value::Object(map).to_string()
    }

    fn short(&self) -> String {
        self.names
            .iter()
            .zip(&self.sums)
            .filter(|(n, _)| n.as_str() != "grad_norm")
            .map(|(n, s)| format!("{n} {:.3}", s / self.count.max(1) as f64))
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

/// The training progress bar (steps/s, ETA, running loss terms), hidden when `enabled` is false.
pub(crate) fn progress_bar(enabled: bool, start: usize, total: usize) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    bar.set_position(start as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} steps {per_sec} ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// Keeps only the log lines of steps ≤ `step` (a resumed run re-logs what came after its
/// checkpoint), rewriting the file atomically.
fn truncate_log(path: &std::path::Path, step: usize) -> Result<(), TrainError> {
    if !path.exists() {
        return Ok(());
    }
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    let kept: String = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s as usize <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    write_atomic(path, kept.as_bytes())
}

/// A run's append-only `train_log.jsonl`, opened for step `start_step` on: lines of later steps
/// (from before a resume) are dropped first. Every line is flushed as it is written, so a killed
/// run loses none.
pub(crate) struct TrainLog {
    file: std::fs::File,
    path: std::path::PathBuf,
}

impl TrainLog {
    pub(crate) fn open(run: &RunDir, start_step: usize) -> Result<Self, TrainError> {
        let path = run.train_log();
        truncate_log(&path, start_step)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| TrainError::io(&path, e))?;
        Ok(Self { file, path })
    }

    /// Appends one JSON line.
    pub(crate) fn write(&mut self, line: &impl std::fmt::Display) -> Result<(), TrainError> {
        writeln!(self.file, "{line}")
            .and_then(|()| self.file.flush())
            .map_err(|e| TrainError::io(&self.path, e))
    }
}

/// Whether something done every `every` steps (logging, checkpoints) is due after `step` of
/// `total`: on multiples of `every` and always at the last step.
pub(crate) fn due(step: usize, every: usize, total: usize) -> bool {
    step.is_multiple_of(every) || step == total
}

/// Renders batches `start..end` on a background thread, two ahead of the trainer. The batch of
/// step t depends only on (seed, t).
fn prefetch(
    dataset: Arc<dyn GroundTruthDataset>,
    seed: u64,
    batch_size: usize,
    start: usize,
    end: usize,
) -> Receiver<Result<ImageBatch, TrainError>> {
    let (tx, rx) = sync_channel(2);
    std::thread::spawn(move || {
        for step in start..end {
            let mut rng = step_rng(seed, step, Stream::Batch);
            let batch = dataset
                .sample(batch_size, &mut rng)
                .map(|(_, images)| images)
                .map_err(TrainError::from);
            if tx.send(batch).is_err() {
                break;
            }
        }
    });
    rx
}

/// Trains `config` into `run` (fresh, or resumed from its newest checkpoint), writing
/// `config.toml` first. Returns the trainer (for evaluation) and the summary.
pub fn train_run(
    config: TrainConfig,
    device: &Device,
    run: &RunDir,
    options: TrainOptions,
) -> Result<(VaeTrainer, TrainSummary), TrainError> {
    let mut trainer = VaeTrainer::new(config, device)?;
    if options.resume {
        match latest_checkpoint(&run.checkpoints())? {
            Some(checkpoint) => trainer.restore(&checkpoint)?,
            None => {
                return Err(TrainError::RunDir {
                    path: run.root().to_path_buf(),
                    message: "nothing to resume: no checkpoint yet".into(),
                });
            }
        }
        // A resume may extend the step budget (`--steps`); config.toml records what ran.
        write_atomic(&run.config(), trainer.config.to_toml()?.as_bytes())?;
    } else {
        if run.config().exists() {
            return Err(TrainError::RunDir {
                path: run.root().to_path_buf(),
                message:
                    "already holds a run; pass --resume to continue it or choose another --out"
                        .into(),
            });
        }
        write_atomic(&run.config(), trainer.config.to_toml()?.as_bytes())?;
    }
    let summary = trainer.train(run, options)?;
    Ok((trainer, summary))
}
