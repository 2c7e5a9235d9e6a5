//! The VAE family's trainer: one [`RunFamily`] for every VAE objective.
//!
//! One step t: draw the batch and the reparameterisation noise from (seed, t); forward; loss;
//! backward; the optimiser step (and FactorVAE's discriminator step); then one read of every
//! logged value back to the host. A non-finite loss or gradient, or the α-TCVAE authors'
//! gradient-skip rule, puts back the parameters and optimiser state from before the step.

use std::sync::Arc;

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use infobound_data::{GroundTruthDataset, ImageBatch, images_to_tensor};
use infobound_estimators::EstimatorError;
use infobound_models::objectives::{Discriminator, permute_dims};
use infobound_models::{ModelError, ObjectiveConfig, StepContext, Vae};

use crate::optim::squared_gradient_norm;
use crate::rng::{Stream, standard_normal, step_rng};
use crate::run::{
    LoopSettings, RunDir, RunFamily, SaveModule, StepOutcome, StepRecord, TrainOptions,
    TrainSummary, TrainerState, load_module, load_optimizer, load_state, read_back, run_training,
    save_checkpoint,
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
        device.seed(config.seed);
        let vae = config.model.init(&device)?;
        let optimizer = adam(&config);
        let discriminator = match &config.objective {
            // Kim & Mnih 2018 § 4 / disentanglement_lib `factor_vae.gin`: Adam β = (0.5, 0.9)
            // for the discriminator.
            ObjectiveConfig::FactorVae(c) => Some((
                c.discriminator(config.model.latent_dim, config.model.layers, &device),
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
        let x = images_to_tensor(&batch, &self.device);
        let [b, _, _, _] = x.dims();
        let k = self.config.model.latent_dim;
        let eps = standard_normal(&mut step_rng(self.config.seed, step, Stream::Noise), b * k);
        let eps = Tensor::<2>::from_data(TensorData::new(eps, [b, k]), &self.device);
        let forward = self.vae.forward(x, eps)?;
        let context = StepContext {
            step,
            batch_size: b,
            dataset_size: self.dataset.factor_space().len(),
        };
        let output = match self.config.objective.vae_loss(
            &forward,
            self.config.model.likelihood,
            &context,
            self.discriminator.as_ref().map(|(d, _)| d),
        ) {
            Ok(output) => output,
            // The total-correlation estimators check their inputs: non-finite codes (a NaN in
            // the batch) are a non-finite step, skipped like a non-finite loss, before any
            // update was computed.
            Err(ModelError::Estimator(EstimatorError::NonFinite { .. })) => {
                return Ok(StepRecord {
                    terms: vec![("loss".into(), f64::NAN)],
                    outcome: StepOutcome::NonFinite,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let mut names: Vec<String> = std::iter::once("loss")
            .chain(output.terms.iter().map(|(name, _)| *name))
            .map(str::to_string)
            .collect();
        let mut packed = vec![output.packed()];
        let grads = GradientsParams::from_grads(output.loss.backward(), &self.vae);
        packed.push(
            squared_gradient_norm(&self.vae, &grads)
                .unwrap_or_else(|| Tensor::zeros([1], &self.device)),
        );
        // The update is applied now and put back below if the step's values ask for it: the
        // step's values then come back to the host in one read, after the optimiser step.
        let before = (self.vae.clone(), self.optimizer.clone());
        self.vae = self
            .optimizer
            .step(self.state.learning_rate, self.vae.clone(), grads);
        let discriminator_before = self.discriminator.clone();
        if let (ObjectiveConfig::FactorVae(c), Some((d, _))) =
            (&self.config.objective, self.discriminator.as_ref())
        {
            // The loss is computed from a borrow, so that an error leaves the trainer with its
            // discriminator; it is taken out only for the optimiser step, which cannot fail.
            let z = forward.z.detach();
            let mut rng = step_rng(self.config.seed, step, Stream::Permutation);
            let z_perm = permute_dims(z.clone(), &mut rng)?;
            let d_loss = d.loss(z, z_perm)?;
            packed.push(d_loss.clone().detach());
            let d_grads = GradientsParams::from_grads(d_loss.backward(), d);
            if let Some((d, mut o)) = self.discriminator.take() {
                let d = o.step(c.discriminator_lr, d, d_grads);
                self.discriminator = Some((d, o));
            }
        }
        let values = read_back(Tensor::cat(packed, 0))?;
        let has_skip_statistic = output.gradient_skip_statistic.is_some();
        let loss = values[0];
        let term_count = names.len();
        let skip_statistic = has_skip_statistic.then(|| values[term_count]);
        let grad_norm = values[term_count + usize::from(has_skip_statistic)].sqrt();
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
