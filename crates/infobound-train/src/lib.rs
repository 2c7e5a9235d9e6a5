//! Training, evaluation and reports for infobound's two model families, siblings on one run
//! machinery: [`run`] (configuration loading, run folders, checkpoints and resume, the log,
//! cadence, prefetch, the non-finite policy and the driver), [`vae`] (β-VAE … α-TCVAE) and
//! [`ssl`] (MVEB, SimSiam, BYOL, Barlow Twins).
//!
//! ```no_run
//! use infobound_train::{RunConfig, RunDir, TrainOptions, VaeTrainer, run_training};
//! # fn demo(device: &burn::tensor::Device) -> Result<(), infobound_train::TrainError> {
//! let RunConfig::Vae(config) = RunConfig::preset("quickstart", &[])? else { unreachable!() };
//! let run = RunDir::new("runs/quickstart-0");
//! let trainer = VaeTrainer::new(*config, device)?;
//! let (trainer, summary) = run_training(trainer, &run, TrainOptions { resume: false, progress: true })?;
//! # Ok(()) }
//! ```

mod error;
pub mod optim;
mod rng;
pub mod run;
pub mod ssl;
pub mod vae;

pub use error::TrainError;
pub use run::{
    Environment, Family, RunConfig, RunDir, RunFamily, RunLock, TrainOptions, TrainSummary,
    TrainerState, apply_override, latest_checkpoint, resume_checkpoint, run_training, write_atomic,
    write_json_atomic, write_loss_svg,
};
pub use vae::{
    EvalConfig, EvalReport, GradientSkipConfig, HeadlineScores, OptimizerConfig, PlateauConfig,
    TrainConfig, VaeDataParallelConfig, VaeTrainer, encode_means, evaluate, scored_codes,
    train_run, traversal_codes, write_report,
};

/// The crate README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctest;
