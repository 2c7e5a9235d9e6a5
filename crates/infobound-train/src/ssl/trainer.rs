//! The self-supervised training loop shared by MVEB, SimSiam, BYOL and Barlow Twins.
//!
//! One step t (as the released MVEB code): draw the batch and its views from (seed, t); update
//! the EMA target with momentum m_t = 1 − (1 − m₀)(cos(πt/T) + 1)/2; forward every view through
//! the online network and the two global views through the target, each view in its own
//! forward (batch-norm statistics per view, as the official code of every objective; see
//! `ViewBatching`); loss; backward; skip the update when a gradient is
//! non-finite; optimiser step at the warm-up + cosine rate. An online linear probe learns from
//! the detached backbone features of global view 1 with its own Adam.

use std::sync::Arc;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, MultiGradientsParams, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use indicatif::ProgressBar;
use infobound_data::ImageBatch;
use infobound_data::augment::MultiCropAugmenter;
use infobound_metrics::{CodeMatrix, CollapseConfig, collapse_diagnostics};
use infobound_models::ssl::{
    Backbone, LocalScoreSupport, SslNetwork, SslObjective, cosine_momentum, ema_update,
};

use super::config::EntropySupport;
use super::config::{SslOptimizerMethod, SslTrainConfig};
use super::data::{SslData, sample_indices};
use super::eval::{FeatureExtractor, knn_monitor};
use super::parallel::{Placement, Replica, ReplicaNetworks, ReplicaOutput, replica_steps};
use super::probe::{OnlineProbe, accuracy};
use crate::TrainError;
use crate::optim::{LarsConfig, WarmupCosineSchedule, squared_gradient_norm};
use crate::rng::{Stream, step_rng};
use crate::run::{
    LoopSettings, Ranks, Reduction, RunDir, RunFamily, SaveModule, StepOutcome, StepRecord,
    TrainLog, TrainOptions, TrainSummary, TrainerState, build_seeded, load_module, load_optimizer,
    load_state, materialise, read_back, run_training, save_checkpoint, shard,
};

/// Networks, optimisers and counters of a self-supervised run, on one device or data-parallel
/// over several (`config.data_parallel`).
pub struct SslTrainer {
    config: SslTrainConfig,
    /// Autodiff devices: replica r runs on `devices[r % len]`; the networks, the probe and the
    /// optimiser state start on `devices[0]`.
    devices: Vec<Device>,
    inference_device: Device,
    data: Arc<SslData>,
    augmenter: MultiCropAugmenter,
    online: SslNetwork,
    target: Option<SslNetwork>,
    objective: SslObjective,
    optimizer: ModuleOptimizer,
    schedule: WarmupCosineSchedule,
    probe: OnlineProbe,
    probe_optimizer: ModuleOptimizer,
    state: TrainerState,
    /// The last step's embeddings of the global views, when its diagnostics are due.
    pending_embeddings: Option<(CodeMatrix, CodeMatrix)>,
    /// The processes of the job ([`Ranks::single`] unless [`SslTrainer::with_ranks`]).
    ranks: Ranks,
}

/// What one step produced, for the log.
#[derive(Debug, Clone)]
pub struct SslStepReport {
    /// Named scalars: loss, the objective's terms (MVEB: `kernel_width`), the target's EMA
    /// `momentum`, `grad_norm`, probe loss and accuracy.
    pub terms: Vec<(String, f64)>,
    /// What happened to the encoder update.
    pub outcome: StepOutcome,
    /// Online embeddings of the two global views (host copies), for the collapse diagnostics.
    pub embeddings: Option<(CodeMatrix, CodeMatrix)>,
}

impl SslStepReport {
    /// The value of the term `name`, if logged.
    pub fn term(&self, name: &str) -> Option<f64> {
        self.terms.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

impl SslTrainer {
    /// Builds fresh networks (weights drawn from `config.seed`) and loads the data. `device`
    /// is a plain device; training runs on its autodiff decorator.
    pub fn new(config: SslTrainConfig, device: &Device) -> Result<Self, TrainError> {
        let data = Arc::new(SslData::load(&config.dataset, &config.labels)?);
        Self::with_data(config, device, data)
    }

    /// As [`SslTrainer::new`] with already loaded data (tests and `infobound probe` share it).
    pub fn with_data(
        config: SslTrainConfig,
        device: &Device,
        data: Arc<SslData>,
    ) -> Result<Self, TrainError> {
        Self::with_devices(config, std::slice::from_ref(device), data)
    }

    /// A data-parallel trainer: the `config.data_parallel.replicas` replicas run on `devices`
    /// (plain devices; one for all replicas, or one per replica). The networks are built on
    /// `devices[0]`, and evaluation runs there.
    ///
    /// # Errors
    /// [`TrainError::DataParallel`] unless `devices` holds one device or one per replica;
    /// otherwise as [`SslTrainer::new`].
    pub fn with_devices(
        config: SslTrainConfig,
        devices: &[Device],
        data: Arc<SslData>,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        config.data_parallel.check_device_count(devices.len())?;
        if data.train().is_empty() || data.test().is_empty() {
            return Err(TrainError::Config(
                "the dataset needs training and test images".into(),
            ));
        }
        let augmenter = MultiCropAugmenter::new(config.augmentation.clone())?;
        let inference_device = devices[0].clone();
        let devices: Vec<Device> = devices.iter().map(|d| d.clone().autodiff()).collect();
        let device = devices[0].clone();
        let (online, target, probe) = build_seeded(
            &device,
            config.seed,
            || {
                let online = config.network.init(&device)?;
                // The target starts as a copy of the online parameters with batch-norm
                // statistics of its own; it tracks no gradients but normalises with batch
                // statistics, as the released code's target in train mode.
                let target = if config.objective.uses_target_network() {
                    Some(config.network.init_target(&online, &device)?)
                } else {
                    None
                };
                let probe = OnlineProbe::new(
                    config.network.backbone.feature_dim(),
                    data.num_classes(),
                    &device,
                );
                Ok((online, target, probe))
            },
            |(online, target, probe)| {
                materialise(online);
                if let Some(target) = target {
                    materialise(target);
                }
                materialise(probe);
            },
        )?;
        let objective = config.objective.init()?;
        let optimizer = encoder_optimizer(&config.optimizer.method)?;
        let schedule = WarmupCosineSchedule::new(
            config.peak_learning_rate(),
            config.optimizer.warmup_steps.min(config.steps - 1),
            config.steps,
        )?
        .with_cosine_span(config.optimizer.cosine_span);
        let probe_optimizer = AdamConfig::new().init();
        let state = TrainerState {
            step: 0,
            learning_rate: schedule.learning_rate(0),
            plateau_best: None,
            plateau_bad_intervals: 0,
            skipped_steps: 0,
        };
        Ok(Self {
            config,
            devices,
            inference_device,
            data,
            augmenter,
            online,
            target,
            objective,
            optimizer,
            schedule,
            probe,
            probe_optimizer,
            state,
            pending_embeddings: None,
            ranks: Ranks::single(),
        })
    }

    /// Makes this trainer one rank of a data-parallel job: each rank runs
    /// `data_parallel.replicas` replicas of the job's `replicas × world size`, on its shards of
    /// every step's batch; gradients and logged values are averaged over the ranks in one
    /// all-reduce per step, gathered score samples and the online probe's features are
    /// all-gathered, and batch-norm running statistics are averaged before every checkpoint.
    ///
    /// # Errors
    /// [`TrainError::DataParallel`] unless `batch_size` splits into `replicas × world size`
    /// equal shards.
    pub fn with_ranks(mut self, ranks: Ranks) -> Result<Self, TrainError> {
        ranks.check_batch_split(
            self.config.batch_size,
            self.config.data_parallel.replicas,
            1,
        )?;
        self.ranks = ranks;
        Ok(self)
    }

    /// Restores networks, optimiser moments and counters from a checkpoint folder.
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] if the checkpoint does not fit this configuration.
    pub fn restore(&mut self, checkpoint: &std::path::Path) -> Result<(), TrainError> {
        self.state = load_state(checkpoint)?;
        self.online = load_module(checkpoint, "online", self.online.clone())?;
        if let Some(target) = self.target.take() {
            self.target = Some(load_module(checkpoint, "target", target)?.no_grad());
        }
        self.optimizer = load_optimizer(checkpoint, "optimizer", self.optimizer.clone())?;
        self.probe = load_module(checkpoint, "probe", self.probe.clone())?;
        self.probe_optimizer =
            load_optimizer(checkpoint, "probe_optimizer", self.probe_optimizer.clone())?;
        Ok(())
    }

    /// Replaces the online network by the run's step-0 weights from `run.initial()`, if the
    /// run saved them; returns whether it did.
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] if the record exists but does not load.
    pub fn load_initial(&mut self, run: &RunDir) -> Result<bool, TrainError> {
        match crate::run::latest_checkpoint(&run.initial())? {
            Some(checkpoint) => {
                self.online = load_module(&checkpoint, "online", self.online.clone())?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Replaces the online network's backbone by `backbone`, e.g. weights trained elsewhere and
    /// read by `infobound-weights` into a clone of the online backbone (so that they live on this
    /// trainer's device); a target network is made again from the online network as at step 0
    /// (a copy of its parameters with batch-norm statistics of its own). The projector,
    /// predictor, probe, optimiser state and counters are kept.
    ///
    /// # Errors
    /// [`TrainError::Model`] if the target network cannot be made.
    pub fn replace_backbone(&mut self, backbone: Backbone) -> Result<(), TrainError> {
        self.online.backbone = backbone;
        if self.target.is_some() {
            self.target = Some(
                self.config
                    .network
                    .init_target(&self.online, &self.devices[0])?,
            );
        }
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &SslTrainConfig {
        &self.config
    }

    /// The online network (backbone, projector, predictor).
    pub fn online(&self) -> &SslNetwork {
        &self.online
    }

    /// The EMA target network, for methods that have one.
    pub fn target(&self) -> Option<&SslNetwork> {
        self.target.as_ref()
    }

    /// The online linear probe.
    pub fn probe(&self) -> &OnlineProbe {
        &self.probe
    }

    /// The data.
    pub fn data(&self) -> &Arc<SslData> {
        &self.data
    }

    /// Completed steps.
    pub fn step(&self) -> usize {
        self.state.step
    }

    /// Steps whose update was skipped.
    pub fn skipped_steps(&self) -> usize {
        self.state.skipped_steps
    }

    /// The plain (non-autodiff) device evaluation runs on.
    pub fn inference_device(&self) -> &Device {
        &self.inference_device
    }

    /// Backbone features of images, computed by the online network in inference mode.
    pub fn feature_extractor(&self) -> FeatureExtractor {
        FeatureExtractor::new(&self.online, &self.config, &self.inference_device)
    }

    fn write_checkpoint(&self, run: &RunDir) -> Result<(), TrainError> {
        // Burn's `RunningState` applies each batch-norm statistics update one update late, and
        // saving reads the applied value; `valid()` applies the pending update first, so the
        // checkpoint holds the statistics the next step will use.
        let _ = self.online.valid();
        if let Some(target) = &self.target {
            let _ = target.valid();
        }
        let _ = self.probe.valid();
        let mut modules: Vec<(&str, &dyn SaveModule)> =
            vec![("online", &self.online), ("probe", &self.probe)];
        if let Some(target) = &self.target {
            modules.push(("target", target));
        }
        let optimizers = [
            ("optimizer", &self.optimizer),
            ("probe_optimizer", &self.probe_optimizer),
        ];
        save_checkpoint(&run.checkpoints(), &self.state, &modules, &optimizers)?;
        Ok(())
    }

    /// The views and labels of step `step` (what the background thread prepares).
    pub fn batch(&self, step: usize) -> Result<StepBatch, TrainError> {
        step_batch(
            &self.data,
            &self.augmenter,
            self.config.seed,
            self.config.batch_size,
            step,
        )
    }

    /// One optimisation step on prepared `views` (globals first) with the class `labels` of
    /// the images (used only by the online probe). With `data_parallel.replicas > 1` the batch
    /// is split over the replicas, each on its own thread and device (see
    /// [`DataParallelConfig`](super::DataParallelConfig)).
    ///
    /// The update is applied, then every logged value is read back in one transfer; a
    /// non-finite gradient puts the encoder and its optimiser back as they were (`Skipped`), a
    /// non-finite loss also the online probe (`NonFinite`). With `wants_embeddings` the global
    /// views' embeddings are read back too, for the collapse diagnostics.
    ///
    /// # Errors
    /// [`TrainError::Model`] from the networks or the objective, [`TrainError::DataParallel`]
    /// from a replica.
    pub fn train_step(
        &mut self,
        step: usize,
        views: &[ImageBatch],
        labels: &[usize],
        wants_embeddings: bool,
    ) -> Result<SslStepReport, TrainError> {
        let momentum = self
            .config
            .objective
            .base_momentum()
            .map(|base| cosine_momentum(base, step, self.config.steps));
        if let (Some(m), Some(target)) = (momentum, self.target.take()) {
            self.target = Some(ema_update(target, &self.online, m)?.no_grad());
        }
        // Batch norm's running statistics sit behind handles that a module clone shares and
        // that the forward updates in place; `train()` gives the copies new handles (Burn
        // 0.22 `RunningState::train`) without a host read, so a step on non-finite input can
        // put the statistics back.
        let statistics = (
            self.online.clone().train(),
            self.target.clone().map(Module::train),
        );
        let local = self.config.data_parallel.replicas;
        let shards = local * self.ranks.world_size();
        let placement = Placement {
            first: self.ranks.rank() * local,
            shards,
        };
        let gathered_across_ranks = self.ranks.is_distributed()
            && self.config.data_parallel.entropy_support == EntropySupport::Gathered;
        let replicas = if local == 1 && !gathered_across_ranks {
            let sharded: Vec<ImageBatch>;
            let views = if shards == 1 {
                views
            } else {
                sharded = views
                    .iter()
                    .map(|v| shard(v, placement.first, shards))
                    .collect::<Result<_, _>>()?;
                &sharded
            };
            let replica = Replica {
                online: &self.online,
                target: self.target.as_ref(),
                objective: &self.objective,
                device: &self.devices[0],
                batching: self.config.network.view_batching,
            };
            replica
                .forward_backward(views, &LocalScoreSupport, None)
                .map(|output| vec![output])
        } else {
            replica_steps(
                &ReplicaNetworks {
                    online: &self.online,
                    target: self.target.as_ref(),
                    objective: &self.objective,
                    batching: self.config.network.view_batching,
                },
                &self.devices,
                &self.config.data_parallel,
                views,
                &placement,
                Some(&mut self.ranks),
            )
        };
        // The score estimator refuses non-finite input before any loss exists: on any rank,
        // the step is non-finite on all of them, as one whose loss is.
        let Some(replicas) = self.ranks.agree_finite(replicas)? else {
            self.restore_statistics(statistics);
            return Ok(SslStepReport {
                terms: vec![("loss".into(), f64::NAN)],
                outcome: StepOutcome::NonFinite,
                embeddings: None,
            });
        };
        let main = self.devices[0].clone();
        let gather = |pick: fn(&ReplicaOutput) -> Tensor<2>| {
            Tensor::cat(
                replicas.iter().map(|r| pick(r).to_device(&main)).collect(),
                0,
            )
        };
        let features = gather(|r| r.features.clone());
        let embeddings = if wants_embeddings {
            let z1 = self
                .ranks
                .all_gather_rows(gather(|r| r.embeddings[0].clone()))?;
            let z2 = self
                .ranks
                .all_gather_rows(gather(|r| r.embeddings[1].clone()))?;
            Some((to_codes(z1)?, to_codes(z2)?))
        } else {
            None
        };
        // The replicas' loss and terms averaged on the main device.
        let names = replicas[0].names.clone();
        let width = names.len();
        let mean_values = Tensor::cat(
            replicas
                .iter()
                .map(|r| r.values.clone().to_device(&main).reshape([1, width]))
                .collect(),
            0,
        )
        .mean_dim(0)
        .reshape([width]);
        let before = (self.online.clone(), self.optimizer.clone());
        let probe_before = (self.probe.clone(), self.probe_optimizer.clone());
        // What is read back: [loss, terms…, Σ‖g‖², probe loss, probe accuracy].
        let values = if self.ranks.is_distributed() {
            // The online probe learns from every rank's features (a few numbers per image,
            // all-gathered) with every label, so each rank takes the same probe step as a
            // single process on the whole batch — its batch norm included. One all-reduce then
            // averages the ranks' values and encoder gradients.
            let features = self.ranks.all_gather_rows(features)?;
            let (probe_loss, probe_accuracy) = self.probe_step(features, labels);
            let mut reduction = Reduction::default();
            let range = reduction.push_values(Tensor::cat(
                vec![mean_values, probe_loss, probe_accuracy],
                0,
            ));
            let grads: Vec<&GradientsParams> = replicas.iter().map(|r| &r.grads).collect();
            let slots = reduction.push_gradients(&self.online, &grads, &main);
            let buffer = self.ranks.mean(reduction)?;
            let mut host: Vec<f64> = buffer[range].iter().map(|&v| f64::from(v)).collect();
            host.insert(width, slots.squared_norm(&buffer));
            let grads = slots.gradients(&self.online, &buffer, &main);
            let lr = self.schedule.learning_rate(self.state.step);
            self.online = self.optimizer.step(lr, self.online.clone(), grads);
            host
        } else {
            // The replicas' Σ‖g‖² summed.
            let squared_norm = replicas
                .iter()
                .filter_map(|r| squared_gradient_norm(&self.online, &r.grads))
                .map(|n| n.to_device(&main))
                .reduce(|a, b| a + b)
                .unwrap_or_else(|| Tensor::zeros([1], &main));
            self.apply_gradients(replicas.into_iter().map(|r| (r.grads, r.device)).collect());
            let (probe_loss, probe_accuracy) = self.probe_step(features, labels);
            read_back(Tensor::cat(
                vec![mean_values, squared_norm, probe_loss, probe_accuracy],
                0,
            ))?
        };
        let (loss, grad_norm) = (values[0], values[width].sqrt());
        let mut terms: Vec<(String, f64)> = names.into_iter().zip(values.iter().copied()).collect();
        if let Some(m) = momentum {
            terms.push(("momentum".into(), m));
        }
        terms.push(("grad_norm".into(), grad_norm));
        terms.push(("probe_loss".into(), values[width + 1]));
        terms.push(("probe_accuracy".into(), values[width + 2]));
        let outcome = step_outcome(loss, grad_norm);
        if outcome != StepOutcome::Applied {
            (self.online, self.optimizer) = before;
        }
        if outcome == StepOutcome::NonFinite {
            (self.probe, self.probe_optimizer) = probe_before;
            self.restore_statistics(statistics);
        }
        Ok(SslStepReport {
            terms,
            outcome,
            embeddings,
        })
    }

    /// Puts back the online and target networks (parameters and batch-norm running
    /// statistics) copied before a step's forward.
    fn restore_statistics(&mut self, (online, target): (SslNetwork, Option<SslNetwork>)) {
        self.online = online;
        self.target = target.map(Module::no_grad);
    }

    /// Applies the replicas' gradients to the online network at the step's learning rate.
    /// Several replicas' gradients are summed by Burn's `ModuleOptimizer::step_multi`, which
    /// updates each parameter on one of the replicas' devices.
    fn apply_gradients(&mut self, mut grads: Vec<(GradientsParams, Device)>) {
        let lr = self.schedule.learning_rate(self.state.step);
        self.online = if grads.len() == 1 {
            let (grads, _) = grads.remove(0);
            self.optimizer.step(lr, self.online.clone(), grads)
        } else {
            self.optimizer
                .step_multi(lr, self.online.clone(), MultiGradientsParams { grads })
        };
    }

    /// One Adam step of the online probe on detached features; returns its cross-entropy and
    /// its accuracy on this batch before the step, as `[1]` device tensors.
    fn probe_step(&mut self, features: Tensor<2>, labels: &[usize]) -> (Tensor<1>, Tensor<1>) {
        let targets = Tensor::<1, Int>::from_data(
            TensorData::new(
                labels.iter().map(|&l| l as i64).collect::<Vec<_>>(),
                [labels.len()],
            ),
            &self.devices[0],
        );
        let logits = self.probe.forward(features);
        let batch_accuracy = accuracy(logits.clone(), targets.clone());
        let loss = CrossEntropyLossConfig::new()
            .init(&self.devices[0])
            .forward(logits, targets);
        let value = loss.clone().detach();
        let grads = GradientsParams::from_grads(loss.backward(), &self.probe);
        self.probe = self.probe_optimizer.step(
            self.config.monitor.probe_learning_rate,
            self.probe.clone(),
            grads,
        );
        (value, batch_accuracy)
    }
}

/// A step's outcome from its loss and gradient norm: a non-finite loss discards the step, a
/// non-finite gradient (as the released MVEB code's `skip_nan_grad_backward`) skips the update.
fn step_outcome(loss: f64, grad_norm: f64) -> StepOutcome {
    if !loss.is_finite() {
        StepOutcome::NonFinite
    } else if !grad_norm.is_finite() {
        StepOutcome::Skipped
    } else {
        StepOutcome::Applied
    }
}

/// The augmented views (globals first) and the class labels of one step's images.
pub type StepBatch = (Vec<ImageBatch>, Vec<usize>);

fn step_batch(
    data: &SslData,
    augmenter: &MultiCropAugmenter,
    seed: u64,
    batch_size: usize,
    step: usize,
) -> Result<StepBatch, TrainError> {
    let mut rng = step_rng(seed, step, Stream::Batch);
    let indices = sample_indices(&mut rng, data.train().len(), batch_size);
    let images = data.train().images(&indices)?;
    let labels = indices.iter().map(|&i| data.train().labels()[i]).collect();
    let views = augmenter.augment(&images, seed, step as u64)?;
    Ok((views, labels))
}

fn encoder_optimizer(method: &SslOptimizerMethod) -> Result<ModuleOptimizer, TrainError> {
    Ok(match *method {
        SslOptimizerMethod::Lars {
            momentum,
            weight_decay,
            trust_coefficient,
            exclude_one_dimensional,
            one_dimensional_lr_factor,
        } => LarsConfig {
            momentum,
            weight_decay,
            trust_coefficient,
            exclude_one_dimensional,
            one_dimensional_lr_factor,
        }
        .init()?,
        SslOptimizerMethod::Sgd {
            momentum,
            weight_decay,
        } => SgdConfig::new()
            .with_momentum(Some(
                // PyTorch's SGD: no dampening.
                MomentumConfig::new()
                    .with_momentum(momentum)
                    .with_dampening(0.0),
            ))
            .with_weight_decay(
                (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32)),
            )
            .init(),
        SslOptimizerMethod::Adam { weight_decay } => AdamConfig::new()
            .with_weight_decay(
                (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32)),
            )
            .init(),
    })
}

fn to_codes(z: Tensor<2>) -> Result<CodeMatrix, TrainError> {
    let [_, dim] = z.dims();
    let values: Vec<f32> = z
        .into_data()
        .try_to_vec()
        .map_err(|e| TrainError::Config(format!("cannot read embeddings: {e:?}")))?;
    Ok(CodeMatrix::new(
        dim,
        values.into_iter().map(f64::from).collect(),
    )?)
}

impl RunFamily for SslTrainer {
    type Batch = StepBatch;

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
        self.online = self.ranks.broadcast_module(self.online.clone())?;
        if let Some(target) = self.target.take() {
            self.target = Some(self.ranks.broadcast_module(target)?.no_grad());
        }
        self.probe = self.ranks.broadcast_module(self.probe.clone())?;
        Ok(())
    }

    /// Averages the online and target networks over the ranks: their weights are equal, and
    /// their batch-norm running statistics, which each rank updates from its own shards,
    /// become the job's.
    fn synchronise(&mut self) -> Result<(), TrainError> {
        self.online = self.ranks.average_module(self.online.clone())?;
        if let Some(target) = self.target.take() {
            self.target = Some(self.ranks.average_module(target)?.no_grad());
        }
        Ok(())
    }

    /// The views and labels of step t, from (seed, t) alone.
    fn batch_maker(&self) -> Box<dyn Fn(usize) -> Result<StepBatch, TrainError> + Send> {
        let data = Arc::clone(&self.data);
        let augmenter = self.augmenter.clone();
        let (seed, batch_size) = (self.config.seed, self.config.batch_size);
        Box::new(move |step| step_batch(&data, &augmenter, seed, batch_size, step))
    }

    fn train_step(&mut self, step: usize, batch: StepBatch) -> Result<StepRecord, TrainError> {
        let (views, labels) = batch;
        let wants_embeddings = (step + 1).is_multiple_of(self.config.monitor.diagnostics_every);
        let report = SslTrainer::train_step(self, step, &views, &labels, wants_embeddings)?;
        self.pending_embeddings = report.embeddings;
        Ok(StepRecord {
            terms: report.terms,
            outcome: report.outcome,
        })
    }

    /// The learning rate of the next step; the collapse diagnostics and the kNN monitor on
    /// their cadence, as rows of their own in the log.
    fn after_step(&mut self, log: &mut TrainLog, bar: &ProgressBar) -> Result<(), TrainError> {
        let step = self.state.step;
        self.state.learning_rate = self.schedule.learning_rate(step);
        let root = self.ranks.is_root();
        if let Some((z1, z2)) = self.pending_embeddings.take()
            && root
        {
            let d = collapse_diagnostics(&z1, Some(&z2), &CollapseConfig::default())?;
            let mut row = vec![
                ("embedding_effective_rank", d.effective_rank),
                ("embedding_uniformity", d.uniformity),
            ];
            if let Some(a) = d.alignment {
                row.push(("embedding_alignment", a));
            }
            log.write_row(step, &row)?;
        }
        let monitor_every = self.config.monitor_every;
        if monitor_every > 0 && step.is_multiple_of(monitor_every) {
            // The monitor reads the batch-norm running statistics: the job's, not rank 0's.
            self.synchronise()?;
            if root {
                let knn = knn_monitor(&self.feature_extractor(), &self.data, &self.config)?;
                log.write_row(step, &[("knn_accuracy", knn.accuracy)])?;
                bar.println(format!("step {step}: kNN accuracy {:.4}", knn.accuracy));
            }
        }
        Ok(())
    }

    fn checkpoint(&self, run: &RunDir) -> Result<(), TrainError> {
        self.write_checkpoint(run)
    }

    fn save_initial(&self, run: &RunDir) -> Result<(), TrainError> {
        save_checkpoint(
            &run.initial(),
            &self.state,
            &[("online", &self.online)],
            &[],
        )?;
        Ok(())
    }

    fn restore(&mut self, checkpoint: &std::path::Path) -> Result<(), TrainError> {
        SslTrainer::restore(self, checkpoint)
    }

    fn config_toml(&self) -> Result<String, TrainError> {
        self.config.to_toml()
    }
}

/// Trains `config` into `run` (fresh, or resumed from its newest checkpoint) on `devices` (one
/// device, or one per data-parallel replica; see [`SslTrainer::with_devices`]), writing
/// `config.toml` first. Returns the trainer (for evaluation) and the summary.
///
/// # Errors
/// As [`SslData::load`], [`SslTrainer::with_devices`] and [`run_training`].
pub fn train_ssl_run(
    config: SslTrainConfig,
    devices: &[Device],
    run: &RunDir,
    options: TrainOptions,
) -> Result<(SslTrainer, TrainSummary), TrainError> {
    let data = Arc::new(SslData::load(&config.dataset, &config.labels)?);
    let trainer = SslTrainer::with_devices(config, devices, data)?;
    run_training(trainer, run, options)
}

#[cfg(test)]
mod tests {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::{Distribution, Tensor, TensorData};
    use infobound_data::augment::MultiCropConfig;
    use infobound_models::ssl::{BackboneConfig, MlpHeadConfig, ViewBatching};

    use super::*;
    use crate::run::shard;
    use crate::ssl::{EntropySupport, LabelledSplitConfig};
    use burn::optim::GradientsAccumulator;
    use infobound_data::DatasetSource;

    fn tiny_trainer() -> SslTrainer {
        SslTrainer::new(tiny_config(), &Device::flex()).expect("builds")
    }

    fn tiny_config() -> SslTrainConfig {
        let mut config = SslTrainConfig::preset("mveb_quickstart").expect("preset");
        config.batch_size = 8;
        config.steps = 4;
        config.dataset = DatasetSource::Procedural {
            name: "shapes3d".into(),
        };
        config.labels = LabelledSplitConfig {
            label_factor: "shape".into(),
            image_size: 16,
            num_train: 16,
            num_test: 8,
            seed: 3,
        };
        config.augmentation = MultiCropConfig::mveb(16, 8, 0);
        config.network.backbone = BackboneConfig::narrow_resnet_cifar(4);
        config.network.projector = MlpHeadConfig::mveb_projector(32, 32);
        config.optimizer.warmup_steps = 1;
        config
    }

    /// Trainable parameters only: batch-norm running statistics (`running_*`) are skipped.
    fn parameter_values<M: Module>(module: &M) -> Vec<f32> {
        #[derive(Default)]
        struct Collect {
            path: Vec<String>,
            values: Vec<f32>,
        }
        impl ModuleVisitor for Collect {
            fn enter_module(&mut self, name: &str, _container_type: &str) {
                self.path.push(name.to_string());
            }
            fn exit_module(&mut self, _name: &str, _container_type: &str) {
                self.path.pop();
            }
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if !self.path.last().is_some_and(|n| n.starts_with("running_")) {
                    let v: Vec<f32> = param.val().into_data().try_to_vec().expect("f32");
                    self.values.extend(v);
                }
            }
        }
        let mut c = Collect::default();
        module.visit(&mut c);
        c.values
    }

    fn max_relative_difference(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
            / scale
    }

    /// Two replicas on their own threads (and forked parameters) must update the network
    /// exactly as the sum of the two shards' gradients computed one after the other on one
    /// network and applied by a plain optimiser step: this checks the sharding, the 1/2 loss
    /// scaling and Burn's multi-device reduction in `step_multi`.
    #[test]
    fn two_replicas_apply_the_summed_gradients_of_their_shards() {
        let mut config = tiny_config();
        config.augmentation = MultiCropConfig::mveb(16, 8, 2);
        config.data_parallel.replicas = 2;
        let devices = [Device::flex(), Device::flex()];
        let data = Arc::new(SslData::load(&config.dataset, &config.labels).expect("data"));
        let mut parallel =
            SslTrainer::with_devices(config.clone(), &devices, Arc::clone(&data)).expect("builds");
        let mut reference = SslTrainer::with_devices(config, &devices[..1], data).expect("builds");
        let initial = parameter_values(&reference.online);
        assert_eq!(parameter_values(&parallel.online), initial);

        // Step 1: past the one warm-up step, at the peak learning rate.
        let step = 1;
        parallel.state.step = step;
        let (views, labels) = parallel.batch(step).expect("batch");
        let report = parallel
            .train_step(step, &views, &labels, false)
            .expect("step");
        assert_eq!(report.outcome, StepOutcome::Applied);

        let base = reference
            .config
            .objective
            .base_momentum()
            .expect("MVEB has a target");
        let momentum = cosine_momentum(base, step, reference.config.steps);
        let target = reference.target.take().expect("target");
        reference.target = Some(
            ema_update(target, &reference.online, momentum)
                .unwrap()
                .no_grad(),
        );
        let mut accumulator = GradientsAccumulator::new();
        for index in 0..2 {
            let shard_views: Vec<ImageBatch> = views
                .iter()
                .map(|v| shard(v, index, 2).expect("shard"))
                .collect();
            let replica = Replica {
                online: &reference.online,
                target: reference.target.as_ref(),
                objective: &reference.objective,
                device: &reference.devices[0],
                batching: reference.config.network.view_batching,
            };
            let output = replica
                .forward_backward(&shard_views, &LocalScoreSupport, Some(2.0))
                .expect("shard step");
            accumulator.accumulate(&reference.online, output.grads);
        }
        let lr = reference.schedule.learning_rate(step);
        reference.online =
            reference
                .optimizer
                .step(lr, reference.online.clone(), accumulator.grads());

        let update = |after: Vec<f32>| -> Vec<f32> {
            after.iter().zip(&initial).map(|(a, b)| a - b).collect()
        };
        let expected = update(parameter_values(&reference.online));
        let actual = update(parameter_values(&parallel.online));
        let size = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(size > 1e-4, "the step barely changed the network ({size})");
        let difference = max_relative_difference(&actual, &expected);
        assert!(
            difference < 1e-3,
            "replicas' update differs from the summed gradients' by {difference}"
        );
    }

    /// With gathered score samples, the replicas exchange their embeddings every view (a
    /// rendezvous that must neither deadlock nor mix up views), and the entropy surrogate sees
    /// the whole batch: MVEB's surrogate grows with the number of samples, so it must differ
    /// from the per-replica estimate.
    #[test]
    fn gathered_score_samples_run_through_the_replicas() {
        let mut config = tiny_config();
        config.augmentation = MultiCropConfig::mveb(16, 8, 2);
        config.data_parallel.replicas = 2;
        let surrogate = |support: EntropySupport| {
            let mut config = config.clone();
            config.data_parallel.entropy_support = support;
            let mut trainer = SslTrainer::new(config, &Device::flex()).expect("builds");
            let (views, labels) = trainer.batch(0).expect("batch");
            let report = trainer.train_step(0, &views, &labels, true).expect("step");
            assert!(
                report.embeddings.is_some(),
                "diagnostics need both shards' embeddings"
            );
            report
                .terms
                .iter()
                .find(|(name, _)| name == "entropy_surrogate")
                .expect("MVEB term")
                .1
        };
        let (per_replica, gathered) = (
            surrogate(EntropySupport::PerReplica),
            surrogate(EntropySupport::Gathered),
        );
        assert!(per_replica.is_finite() && gathered.is_finite());
        assert!(
            (gathered - per_replica).abs() > 1e-3 * per_replica.abs(),
            "gathered {gathered} vs per-replica {per_replica}"
        );
    }

    /// A four-image step of the preset `name` at 16 px with narrow heads and two local views.
    fn tiny_method_config(name: &str) -> SslTrainConfig {
        let mut config = SslTrainConfig::preset(name).expect("preset");
        let base = tiny_config();
        config.batch_size = 4;
        config.steps = 4;
        config.dataset = base.dataset;
        config.labels = base.labels;
        config.augmentation = MultiCropConfig::mveb(16, 8, 2);
        config.optimizer.warmup_steps = 1;
        config.network.projector.hidden_dim = 32;
        config.network.projector.output_dim = 32;
        if let Some(predictor) = &mut config.network.predictor {
            predictor.input_dim = 32;
            predictor.hidden_dim = 16;
            predictor.output_dim = 32;
        }
        config
    }

    /// Per-channel running mean of a batch norm, with its pending update applied.
    fn running_mean(norm: &burn::nn::BatchNorm) -> Vec<f32> {
        norm.valid()
            .running_mean
            .value()
            .into_data()
            .try_to_vec()
            .expect("f32")
    }

    /// The running mean a batch norm (momentum `m`, starting at 0) holds after normalising
    /// the groups of `views` in turn, each group concatenated: r ← (1 − m)·r + m·μ(group).
    fn expected_running_mean(means: &[Vec<f32>], groups: &[usize], momentum: f32) -> Vec<f32> {
        let mut running = vec![0.0f32; means[0].len()];
        let mut view = 0;
        for &size in groups {
            for (c, r) in running.iter_mut().enumerate() {
                let group_mean =
                    means[view..view + size].iter().map(|m| m[c]).sum::<f32>() / size as f32;
                *r = (1.0 - momentum) * *r + momentum * group_mean;
            }
            view += size;
        }
        running
    }

    /// One step of the objective of preset `name` on views whose brightness differs by 0.8 per
    /// view: the stem batch norm's running mean (online and, if any, target) must be the EMA
    /// of each view's own batch mean, one update per view (per-view forwards), or of each
    /// resolution's concatenated batch (the `Concatenated` option). The two differ, so the
    /// test sees which forward ran.
    fn check_view_batch_statistics(name: &str) {
        for batching in [ViewBatching::PerView, ViewBatching::Concatenated] {
            let mut config = tiny_method_config(name);
            config.network.view_batching = batching;
            let trainer = SslTrainer::new(config, &Device::flex()).expect("builds");
            let (views, _) = trainer.batch(0).expect("batch");
            let views: Vec<ImageBatch> = views
                .iter()
                .enumerate()
                .map(|(k, v)| {
                    let pixels = v.pixels().iter().map(|p| p + 0.8 * k as f32).collect();
                    ImageBatch::new(v.shape(), pixels).expect("same shape")
                })
                .collect();
            assert_eq!(views.len(), 4, "{name}");
            // The stem convolution's per-channel batch means of every view, before the step.
            let stem = trainer.online.valid().backbone.stem.conv;
            let means: Vec<Vec<f32>> = views
                .iter()
                .map(|v| {
                    let x = infobound_data::images_to_tensor(v, &trainer.inference_device);
                    let y: Tensor<4> = stem.forward(x);
                    let [_, c, _, _] = y.dims();
                    let m: Tensor<1> = y
                        .permute([1, 0, 2, 3])
                        .reshape([c as i32, -1])
                        .mean_dim(1)
                        .reshape([c]);
                    m.into_data().try_to_vec().expect("f32")
                })
                .collect();
            let replica = Replica {
                online: &trainer.online,
                target: trainer.target.as_ref(),
                objective: &trainer.objective,
                device: &trainer.devices[0],
                batching,
            };
            replica
                .forward_backward(&views, &LocalScoreSupport, None)
                .expect("step");
            let momentum = trainer.online.backbone.stem.norm.momentum as f32;
            let per_view = vec![1; views.len()];
            let concatenated = vec![2, 2];
            let (online_groups, alternative_groups, target_groups) = match batching {
                ViewBatching::PerView => (per_view, concatenated, vec![1, 1]),
                ViewBatching::Concatenated => (concatenated, per_view, vec![2]),
            };
            let close = |actual: &[f32], expected: &[f32], what: &str| {
                let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let error = max_relative_difference(actual, expected);
                assert!(scale > 1e-3, "{name} {what}: means too small ({scale})");
                assert!(
                    error < 1e-3,
                    "{name} {batching:?} {what}: running mean {actual:?}, expected {expected:?}"
                );
            };
            let online = running_mean(&trainer.online.backbone.stem.norm);
            close(
                &online,
                &expected_running_mean(&means, &online_groups, momentum),
                "online",
            );
            // The other forward's statistics are far off: the test tells the two apart.
            let alternative = expected_running_mean(&means, &alternative_groups, momentum);
            assert!(
                max_relative_difference(&online, &alternative) > 0.05,
                "{name} {batching:?}: per-view and concatenated statistics coincide"
            );
            if let Some(target) = &trainer.target {
                close(
                    &running_mean(&target.backbone.stem.norm),
                    &expected_running_mean(&means[..2], &target_groups, momentum),
                    "target",
                );
            }
        }
    }

    #[test]
    fn mveb_forwards_each_view_with_its_own_batch_statistics() {
        check_view_batch_statistics("mveb_quickstart");
    }

    #[test]
    fn simsiam_forwards_each_view_with_its_own_batch_statistics() {
        check_view_batch_statistics("simsiam_quickstart");
    }

    #[test]
    fn byol_forwards_each_view_with_its_own_batch_statistics() {
        check_view_batch_statistics("byol_quickstart");
    }

    #[test]
    fn barlow_twins_forwards_each_view_with_its_own_batch_statistics() {
        check_view_batch_statistics("barlow_twins_quickstart");
    }

    #[test]
    fn devices_must_be_one_or_one_per_replica() {
        let mut config = tiny_config();
        config.data_parallel.replicas = 2;
        let data = Arc::new(SslData::load(&config.dataset, &config.labels).expect("data"));
        let three = [Device::flex(), Device::flex(), Device::flex()];
        let error = SslTrainer::with_devices(config.clone(), &three, data)
            .err()
            .expect("three devices for two replicas");
        assert!(matches!(error, TrainError::DataParallel(_)), "{error}");
        config.data_parallel.replicas = 3;
        assert!(matches!(config.validate(), Err(TrainError::Config(_))));
    }

    fn values<M: Module>(module: &M) -> Vec<f32> {
        struct Collect(Vec<f32>);
        impl ModuleVisitor for Collect {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let v: Vec<f32> = param.val().into_data().try_to_vec().expect("f32");
                self.0.extend(v);
            }
        }
        let mut c = Collect(Vec::new());
        module.visit(&mut c);
        c.0
    }

    /// Gradients of Σ features on a random batch: finite, one per backbone parameter.
    fn finite_gradients(trainer: &SslTrainer) -> GradientsParams {
        let x = Tensor::<4>::random([4, 3, 16, 16], Distribution::Default, &trainer.devices[0]);
        let loss = trainer.online.features(x).expect("fits").sum();
        GradientsParams::from_grads(loss.backward(), &trainer.online)
    }

    #[test]
    fn a_non_finite_gradient_skips_the_update_and_a_finite_one_applies_it() {
        let mut trainer = tiny_trainer();
        let before = values(&trainer.online);
        let mut grads = finite_gradients(&trainer);
        let weight = &trainer.online.backbone.stem.conv.weight;
        let shape = weight.val().dims();
        grads.register::<4>(
            weight.id,
            Tensor::<4>::full(shape, f32::NAN, &trainer.devices[0]),
        );
        let device = trainer.devices[0].clone();
        let norm = read_back(squared_gradient_norm(&trainer.online, &grads).expect("grads"))
            .expect("reads")[0]
            .sqrt();
        assert_eq!(step_outcome(1.0, norm), StepOutcome::Skipped, "norm {norm}");
        assert_eq!(step_outcome(f64::NAN, norm), StepOutcome::NonFinite);
        let kept = (trainer.online.clone(), trainer.optimizer.clone());
        trainer.apply_gradients(vec![(grads, device.clone())]);
        assert_ne!(values(&trainer.online), before, "the update ran");
        (trainer.online, trainer.optimizer) = kept;
        assert_eq!(
            values(&trainer.online),
            before,
            "the kept state was put back"
        );
        let grads = finite_gradients(&trainer);
        let norm = read_back(squared_gradient_norm(&trainer.online, &grads).expect("grads"))
            .expect("reads")[0];
        assert_eq!(step_outcome(1.0, norm.sqrt()), StepOutcome::Applied);
        trainer.apply_gradients(vec![(grads, device)]);
        assert_ne!(values(&trainer.online), before);
    }

    #[test]
    fn the_online_probe_beats_chance_on_separable_features() {
        let mut trainer = tiny_trainer();
        let dim = trainer.config.network.backbone.feature_dim();
        // Four classes, each a Gaussian blob around its own basis direction (scale 3, noise
        // 0.5): linearly separable, so Adam on cross-entropy must reach high accuracy.
        let mut rng = step_rng(1, 0, Stream::Batch);
        let labels: Vec<usize> = (0..64).map(|i| i % 4).collect();
        let mut last = 0.0;
        // 800 steps: the probe's initial weights come from the device RNG, which parallel
        // tests share, and a few initialisations need more than 200 steps at this rate.
        for _ in 0..800 {
            let noise = crate::rng::standard_normal(&mut rng, labels.len() * dim);
            let features: Vec<f32> = labels
                .iter()
                .enumerate()
                .flat_map(|(i, &l)| {
                    (0..dim)
                        .map(move |j| if j == l { 3.0 } else { 0.0 })
                        .zip(noise[i * dim..(i + 1) * dim].to_vec())
                        .map(|(m, n)| m + 0.5 * n)
                })
                .collect();
            let x = Tensor::<2>::from_data(
                TensorData::new(features, [labels.len(), dim]),
                &trainer.devices[0],
            );
            let (_, accuracy) = trainer.probe_step(x, &labels);
            last = read_back(accuracy).expect("reads")[0];
        }
        assert!(
            last > 0.9,
            "online probe accuracy {last} after 800 steps (chance 0.25)"
        );
    }
}
