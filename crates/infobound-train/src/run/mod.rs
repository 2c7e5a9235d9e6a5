//! What every run needs, whatever the model family: the run configuration loader with its
//! preset registry and `--set` overrides, the run folder and its atomic files, checkpoints and
//! resume, the log and progress bar, prefetched batches, interval statistics, the non-finite
//! policy and the one driver ([`run_training`]) that the VAE and SSL trainers plug into through
//! [`RunFamily`].

pub mod checkpoint;
mod config;
mod driver;
mod fsutil;
mod interval;
pub mod lock;
mod log;
mod prefetch;
mod ranks;
mod report;
mod run_dir;
mod step;

pub use checkpoint::{
    SaveModule, TrainerState, latest_checkpoint, load_module, load_optimizer, load_state,
    resume_checkpoint, save_checkpoint,
};
pub use config::{Family, RunConfig, apply_override};
pub use driver::{
    FAULT_NAN_AT_STEP_ENV, LoopSettings, PoisonableBatch, RunFamily, TrainOptions, TrainSummary,
    check_run_folder, follow_training, run_training, run_training_locked, train_loop,
};
pub use fsutil::{write_atomic, write_json_atomic};
pub use interval::IntervalStats;
pub use lock::RunLock;
pub use log::{TrainLog, due, insert_number, progress_bar};
pub use prefetch::prefetch;
pub use ranks::Ranks;
pub(crate) use ranks::{Reduction, build_seeded, materialise, shard};
pub use report::{Environment, format_log_values, last_log_values, read_log, write_loss_svg};
pub use run_dir::RunDir;
pub use step::{NonFinitePolicy, StepOutcome, StepRecord, read_back};
