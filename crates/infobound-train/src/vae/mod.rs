//! The VAE family: configuration, trainer, evaluation and report.

mod config;
mod eval;
mod report;
mod trainer;

pub use config::{EvalConfig, GradientSkipConfig, OptimizerConfig, PlateauConfig, TrainConfig};
pub use eval::{EvalReport, HeadlineScores, encode_means, evaluate, scored_codes, traversal_codes};
pub use report::write_report;
pub use trainer::{VaeTrainer, train_run};
