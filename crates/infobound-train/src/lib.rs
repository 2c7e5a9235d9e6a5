//! Training loop, checkpoints, run folders, evaluation and reports for the infobound VAE family.
//!
//! ```no_run
//! use infobound_train::{RunDir, TrainConfig, TrainOptions, train_run};
//! # fn demo(device: &burn::tensor::Device) -> Result<(), infobound_train::TrainError> {
//! let config = TrainConfig::preset("quickstart")?;
//! let run = RunDir::new("runs/quickstart-0");
//! let (trainer, summary) = train_run(config, device, &run, TrainOptions { resume: false, progress: true })?;
//! # Ok(()) }
//! ```

pub mod checkpoint;
mod config;
mod error;
mod eval;
mod fsutil;
pub mod lock;
pub mod optim;
mod report;
mod rng;
mod run_dir;
pub mod ssl;
mod trainer;

pub use checkpoint::{TrainerState, latest_checkpoint, resume_checkpoint};
pub use config::{
    DatasetConfig, EvalConfig, GradientSkipConfig, OptimizerConfig, PlateauConfig, TrainConfig,
};
pub use error::TrainError;
pub use eval::{EvalReport, HeadlineScores, encode_means, evaluate, scored_codes, traversal_codes};
pub use fsutil::{write_atomic, write_json_atomic};
pub use lock::RunLock;
pub use report::{Environment, write_loss_svg, write_report};
pub use run_dir::RunDir;
pub use trainer::{TrainOptions, TrainSummary, VaeTrainer, train_run};
