//! The VAE family's trainer: one [`RunFamily`] for every VAE objective.
//!
//! One step t: draw the batch and the reparameterisation noise from (seed, t); forward; loss;
//! backward — per shard when the step is data-parallel (`data_parallel.replicas` in this
//! process, and the other ranks' shards in an MPI job, whose gradients and values are averaged
//! in one all-reduce); the optimiser step (and FactorVAE's discriminator step); then one read
//! of every logged value back to the host. A non-finite loss or gradient, or the α-TCVAE authors'
//! gradient-skip rule, puts back the parameters and optimiser state from before the step.

use std::sync::Arc;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use infobound_data::{GroundTruthDataset, ImageBatch, images_to_tensor};
use infobound_models::objectives::{Discriminator, permute_dims};
use infobound_models::{ModelError, ObjectiveConfig, StepContext, Vae};

use crate::optim::squared_gradient_norm;
use crate::rng::{Stream, shard_rng, standard_normal, step_rng};
use crate::run::{
    LoopSettings, Ranks, Reduction, RunDir, RunFamily, SaveModule, StepOutcome, StepRecord,
    TrainOptions, TrainSummary, TrainerState, build_seeded, load_module, load_optimizer,
    load_state, materialise, read_back, run_training, save_checkpoint, shard,
};
use crate::{TrainConfig, TrainError};

/// The model and optimiser state of a VAE run.
pub struct VaeTrainer {
    config: TrainConfig,
    device: Device,
    dataset: Arc<dyn GroundTruthDataset>,
    vae: Vae,
    optimizer: ModuleOptimizer,
    discriminator: Option<(Discriminator, ModuleOptimizer)>,
    state: TrainerState,
    ranks: Ranks,
}

impl VaeTrainer {
    /// Builds a fresh model (weights drawn from `config.seed`) on an autodiff `device`.
    ///
    /// # Errors
    /// [`TrainError::Config`] for an invalid configuration or a dataset whose images the model
    /// does not take; [`TrainError::Data`] if the dataset cannot be opened.
    pub fn new(config: TrainConfig, device: &Device) -> Result<Self, TrainError> {
        config.validate()?;
        let dataset = config.dataset.open_ground_truth()?;
        let shape = dataset.observation_shape();
        if shape.channels != config.model.channels || shape.height != 64 || shape.width != 64 {
            return Err(TrainError::Config(format!(
                "dataset `{}` has {}x{}x{} images but the model expects {}x64x64",
                config.dataset.name(),
                shape.channels,
                shape.height,
                shape.width,
                config.model.channels
            )));
        }
        let device = device.clone().autodiff();
        let (vae, discriminator) = build_seeded(
            &device,
            config.seed,
            || {
                let vae = config.model.init(&device)?;
                let discriminator = match &config.objective {
                    ObjectiveConfig::FactorVae(c) => {
                        Some(c.discriminator(config.model.latent_dim, config.model.layers, &device))
                    }
                    _ => None,
                };
                Ok((vae, discriminator))
            },
            |(vae, discriminator)| {
                materialise(vae);
                if let Some(d) = discriminator {
                    materialise(d);
                }
            },
        )?;
        let optimizer = adam(&config);
        // Kim & Mnih 2018 § 4 / disentanglement_lib `factor_vae.gin`: Adam β = (0.5, 0.9) for
        // the discriminator.
        let discriminator = discriminator.map(|d| {
            (
                d,
                AdamConfig::new().with_beta_1(0.5).with_beta_2(0.9).init(),
            )
        });
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
            ranks: Ranks::single(),
        })
    }

    /// The run's step-0 weights from `run.initial()`, if the run saved them (runs of earlier
    /// releases did not).
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] if the record exists but does not load.
    pub fn initial_vae(&self, run: &RunDir) -> Result<Option<Vae>, TrainError> {
        match crate::run::latest_checkpoint(&run.initial())? {
            Some(checkpoint) => Ok(Some(load_module(&checkpoint, "vae", self.vae.clone())?)),
            None => Ok(None),
        }
    }

    /// The model being trained.
    pub fn vae(&self) -> &Vae {
        &self.vae
    }

    /// Replaces the model by `vae`, e.g. weights trained elsewhere and read by
    /// `infobound-weights` into a clone of [`Self::vae`] (so that they live on this trainer's
    /// device); the optimiser state and counters are kept.
    pub fn replace_vae(&mut self, vae: Vae) {
        self.vae = vae;
    }

    /// The dataset being trained on.
    pub fn dataset(&self) -> &Arc<dyn GroundTruthDataset> {
        &self.dataset
    }

    /// The run's configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Completed steps.
    pub fn step(&self) -> usize {
        self.state.step
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

    /// Forward, loss and backward of one shard (global index `shard`) of step `step`'s batch,
    /// with the loss scaled by `1 / replicas` when the process runs several shards, and
    /// FactorVAE's discriminator loss and gradients on the shard's codes.
    fn shard_step(
        &self,
        step: usize,
        shard: usize,
        images: &ImageBatch,
        eps: Vec<f32>,
    ) -> Result<ShardOutput, ModelError> {
        let x = images_to_tensor(images, &self.device);
        let [b, _, _, _] = x.dims();
        let eps = Tensor::<2>::from_data(
            TensorData::new(eps, [b, self.config.model.latent_dim]),
            &self.device,
        );
        let forward = self.vae.forward(x, eps)?;
        let context = StepContext {
            step,
            batch_size: b,
            dataset_size: self.dataset.factor_space().len(),
        };
        let output = self.config.objective.vae_loss(
            &forward,
            self.config.model.likelihood,
            &context,
            self.discriminator.as_ref().map(|(d, _)| d),
        )?;
        let names = std::iter::once("loss")
            .chain(output.terms.iter().map(|(name, _)| *name))
            .map(str::to_string)
            .collect();
        let replicas = self.config.data_parallel.replicas;
        let scale = |loss: Tensor<1>| {
            if replicas == 1 {
                loss
            } else {
                loss.mul_scalar(1.0 / replicas as f64)
            }
        };
        let values = output.packed();
        let grads = GradientsParams::from_grads(scale(output.loss).backward(), &self.vae);
        let discriminator = match (&self.config.objective, &self.discriminator) {
            (ObjectiveConfig::FactorVae(_), Some((d, _))) => {
                let z = forward.z.detach();
                let mut rng = shard_rng(self.config.seed, step, Stream::Permutation, shard);
                let z_perm = permute_dims(z.clone(), &mut rng)?;
                let d_loss = d.loss(z, z_perm)?;
                let value = d_loss.clone().detach();
                Some((
                    value,
                    GradientsParams::from_grads(scale(d_loss).backward(), d),
                ))
            }
            _ => None,
        };
        Ok(ShardOutput {
            names,
            has_skip_statistic: output.gradient_skip_statistic.is_some(),
            values,
            grads,
            discriminator,
        })
    }

    /// Makes this trainer one rank of a data-parallel job (see
    /// [`VaeDataParallelConfig`](crate::VaeDataParallelConfig)).
    ///
    /// # Errors
    /// [`TrainError::DataParallel`] unless `batch_size` splits into `replicas × world size`
    /// shards of at least two images.
    pub fn with_ranks(mut self, ranks: Ranks) -> Result<Self, TrainError> {
        ranks.check_batch_split(
            self.config.batch_size,
            self.config.data_parallel.replicas,
            2,
        )?;
        self.ranks = ranks;
        Ok(self)
    }
}

/// What one shard of a step produced.
struct ShardOutput {
    /// `loss` then the objective's terms.
    names: Vec<String>,
    /// Whether `values` ends with the gradient-skip statistic.
    has_skip_statistic: bool,
    /// [loss, terms…, skip statistic?], detached.
    values: Tensor<1>,
    /// The encoder/decoder gradients of the (scaled) shard loss.
    grads: GradientsParams,
    /// FactorVAE: the discriminator's loss (detached) and gradients.
    discriminator: Option<(Tensor<1>, GradientsParams)>,
}

/// A step's values: still on the device (one process: read after the optimiser step), or
/// already on the host (several ranks: they came back with the gradients' all-reduce).
enum StepValues {
    Device(Box<Tensor<1>>),
    Host(Vec<f64>),
}

/// The mean of the shards' `[n]` value vectors (the vector itself for one shard).
fn mean_over_shards(mut parts: Vec<Tensor<1>>) -> Tensor<1> {
    if parts.len() == 1 {
        return parts.remove(0);
    }
    let (count, width) = (parts.len(), parts[0].dims()[0]);
    Tensor::cat(parts, 0)
        .reshape([count, width])
        .mean_dim(0)
        .reshape([width])
}

/// The sum of the shards' gradients of `module` (the gradients themselves for one shard).
fn sum_gradients<M: Module>(module: &M, mut grads: Vec<GradientsParams>) -> GradientsParams {
    if grads.len() == 1 {
        return grads.remove(0);
    }
    let mut accumulator = GradientsAccumulator::new();
    for g in grads {
        accumulator.accumulate(module, g);
    }
    accumulator.grads()
}

impl RunFamily for VaeTrainer {
    type Batch = ImageBatch;

    fn settings(&self) -> LoopSettings {
        LoopSettings {
            steps: self.config.steps,
            log_every: self.config.log_every,
            checkpoint_every: self.config.checkpoint_every,
            max_consecutive_nonfinite: self.config.max_consecutive_nonfinite,
        }
    }

    fn state(&self) -> &TrainerState {
        &self.state
    }

    fn state_mut(&mut self) -> &mut TrainerState {
        &mut self.state
    }

    fn ranks(&mut self) -> &mut Ranks {
        &mut self.ranks
    }

    fn broadcast_weights(&mut self) -> Result<(), TrainError> {
        self.vae = self.ranks.broadcast_module(self.vae.clone())?;
        if let Some((d, o)) = self.discriminator.take() {
            self.discriminator = Some((self.ranks.broadcast_module(d)?, o));
        }
        Ok(())
    }

    /// The batch of step t: `batch_size` images drawn from (seed, t).
    fn batch_maker(&self) -> Box<dyn Fn(usize) -> Result<ImageBatch, TrainError> + Send> {
        let dataset = Arc::clone(&self.dataset);
        let (seed, batch_size) = (self.config.seed, self.config.batch_size);
        Box::new(move |step| {
            let mut rng = step_rng(seed, step, Stream::Batch);
            dataset
                .sample(batch_size, &mut rng)
                .map(|(_, images)| images)
                .map_err(TrainError::from)
        })
    }

    fn train_step(&mut self, step: usize, batch: ImageBatch) -> Result<StepRecord, TrainError> {
        let local = self.config.data_parallel.replicas;
        let shards = local * self.ranks.world_size();
        let first = self.ranks.rank() * local;
        let k = self.config.model.latent_dim;
        // The whole batch's noise, so that shard g gets the rows a one-replica step would.
        let noise = standard_normal(
            &mut step_rng(self.config.seed, step, Stream::Noise),
            batch.len() * k,
        );
        let rows = batch.len() / shards;
        let outputs = (first..first + local)
            .map(|global| {
                let sharded;
                let images = if shards == 1 {
                    &batch
                } else {
                    sharded = shard(&batch, global, shards)?;
                    &sharded
                };
                let eps = noise[global * rows * k..(global + 1) * rows * k].to_vec();
                Ok(self.shard_step(step, global, images, eps)?)
            })
            .collect::<Result<Vec<_>, TrainError>>();
        // The total-correlation estimators check their inputs: non-finite codes (a NaN in the
        // batch) on any shard of any rank are a non-finite step, skipped like a non-finite
        // loss, before any update was computed.
        let Some(outputs) = self.ranks.agree_finite(outputs)? else {
            return Ok(StepRecord {
                terms: vec![("loss".into(), f64::NAN)],
                outcome: StepOutcome::NonFinite,
            });
        };
        let mut names = outputs[0].names.clone();
        let has_skip_statistic = outputs[0].has_skip_statistic;
        let mut values = mean_over_shards(outputs.iter().map(|o| o.values.clone()).collect());
        if self.discriminator.is_some() {
            let losses = outputs
                .iter()
                .filter_map(|o| o.discriminator.as_ref().map(|d| d.0.clone()))
                .collect();
            values = Tensor::cat(vec![values, mean_over_shards(losses)], 0);
        }
        let (vae_grads, discriminator_grads): (Vec<_>, Vec<_>) = outputs
            .into_iter()
            .map(|o| (o.grads, o.discriminator.map(|d| d.1)))
            .unzip();
        let discriminator_grads: Vec<GradientsParams> =
            discriminator_grads.into_iter().flatten().collect();
        // `values` is [loss, terms…, skip statistic?, discriminator loss?]; what is read back
        // has Σ‖g‖² inserted before the discriminator loss.
        let width = names.len() + usize::from(has_skip_statistic);
        let (grads, discriminator_grads, values) = if self.ranks.is_distributed() {
            let mut reduction = Reduction::default();
            let range = reduction.push_values(values);
            let slots = reduction.push_gradients(
                &self.vae,
                &vae_grads.iter().collect::<Vec<_>>(),
                &self.device,
            );
            let discriminator_slots = self.discriminator.as_ref().map(|(d, _)| {
                reduction.push_gradients(
                    d,
                    &discriminator_grads.iter().collect::<Vec<_>>(),
                    &self.device,
                )
            });
            let buffer = self.ranks.mean(reduction)?;
            let mut host: Vec<f64> = buffer[range].iter().map(|&v| f64::from(v)).collect();
            host.insert(width, slots.squared_norm(&buffer));
            let grads = slots.gradients(&self.vae, &buffer, &self.device);
            let discriminator_grads = match (&self.discriminator, discriminator_slots) {
                (Some((d, _)), Some(slots)) => Some(slots.gradients(d, &buffer, &self.device)),
                _ => None,
            };
            (grads, discriminator_grads, StepValues::Host(host))
        } else {
            let grads = sum_gradients(&self.vae, vae_grads);
            let discriminator_grads = self
                .discriminator
                .as_ref()
                .map(|(d, _)| sum_gradients(d, discriminator_grads));
            let norm = squared_gradient_norm(&self.vae, &grads)
                .unwrap_or_else(|| Tensor::zeros([1], &self.device));
            let packed = Tensor::cat(
                vec![values.clone().slice(0..width), norm, values.slice(width..)],
                0,
            );
            (
                grads,
                discriminator_grads,
                StepValues::Device(Box::new(packed)),
            )
        };
        // The update is applied now and put back below if the step's values ask for it: the
        // step's values then come back to the host in one read, after the optimiser step.
        let before = (self.vae.clone(), self.optimizer.clone());
        self.vae = self
            .optimizer
            .step(self.state.learning_rate, self.vae.clone(), grads);
        let discriminator_before = self.discriminator.clone();
        if let (ObjectiveConfig::FactorVae(c), Some(d_grads), Some((d, mut o))) = (
            &self.config.objective,
            discriminator_grads,
            self.discriminator.take(),
        ) {
            let d = o.step(c.discriminator_lr, d, d_grads);
            self.discriminator = Some((d, o));
        }
        let values = match values {
            StepValues::Host(values) => values,
            StepValues::Device(packed) => read_back(*packed)?,
        };
        let loss = values[0];
        let term_count = names.len();
        let skip_statistic = has_skip_statistic.then(|| values[term_count]);
        let grad_norm = values[width].sqrt();
        let mut terms: Vec<(String, f64)> = names.drain(..).zip(values.iter().copied()).collect();
        terms.push(("grad_norm".into(), grad_norm));
        if self.discriminator.is_some() {
            terms.push(("discriminator_loss".into(), values[values.len() - 1]));
        }
        let outcome = if !loss.is_finite() {
            StepOutcome::NonFinite
        } else if !grad_norm.is_finite()
            || match (&self.config.gradient_skip, skip_statistic) {
                (Some(rule), Some(w)) => {
                    w > rule.kl_threshold && grad_norm >= rule.grad_norm_threshold
                }
                _ => false,
            }
        {
            StepOutcome::Skipped
        } else {
            StepOutcome::Applied
        };
        match outcome {
            StepOutcome::Applied => {}
            // The rule skips the encoder/decoder update only; the discriminator learned from
            // this step's (finite) codes, as in the authors' trainer.
            StepOutcome::Skipped => (self.vae, self.optimizer) = before,
            StepOutcome::NonFinite => {
                (self.vae, self.optimizer) = before;
                self.discriminator = discriminator_before;
            }
        }
        Ok(StepRecord { terms, outcome })
    }

    fn after_interval(&mut self, interval: &crate::run::IntervalStats) {
        if let Some(mean) = interval.mean("loss") {
            self.plateau(mean);
        }
    }

    fn checkpoint(&self, run: &RunDir) -> Result<(), TrainError> {
        let mut modules: Vec<(&str, &dyn SaveModule)> = vec![("vae", &self.vae)];
        let mut optimizers = vec![("optimizer", &self.optimizer)];
        if let Some((d, o)) = &self.discriminator {
            modules.push(("discriminator", d));
            optimizers.push(("discriminator_optimizer", o));
        }
        save_checkpoint(&run.checkpoints(), &self.state, &modules, &optimizers)?;
        Ok(())
    }

    fn save_initial(&self, run: &RunDir) -> Result<(), TrainError> {
        save_checkpoint(&run.initial(), &self.state, &[("vae", &self.vae)], &[])?;
        Ok(())
    }

    fn restore(&mut self, checkpoint: &std::path::Path) -> Result<(), TrainError> {
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

    fn config_toml(&self) -> Result<String, TrainError> {
        self.config.to_toml()
    }
}

fn adam(config: &TrainConfig) -> ModuleOptimizer {
    AdamConfig::new()
        .with_beta_1(config.optimizer.beta_1)
        .with_beta_2(config.optimizer.beta_2)
        .with_epsilon(config.optimizer.epsilon)
        .init()
}

/// Trains `config` into `run` (fresh, or resumed from its newest checkpoint), writing
/// `config.toml` first. Returns the trainer (for evaluation) and the summary.
///
/// # Errors
/// As [`VaeTrainer::new`] and [`run_training`].
pub fn train_run(
    config: TrainConfig,
    device: &Device,
    run: &RunDir,
    options: TrainOptions,
) -> Result<(VaeTrainer, TrainSummary), TrainError> {
    run_training(VaeTrainer::new(config, device)?, run, options)
}
