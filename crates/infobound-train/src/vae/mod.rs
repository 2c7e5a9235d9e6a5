//! The VAE family: configuration, trainer, evaluation and report.

mod config;
mod diagnostics;
mod eval;
mod report;
mod trainer;

pub use config::{
    EvalConfig, GradientSkipConfig, OptimizerConfig, PlateauConfig, TrainConfig,
    VaeDataParallelConfig,
};
pub use diagnostics::{
    ACTIVITY_THRESHOLD, LatentDiagnostics, authors_traversal_offsets, latent_diagnostics,
    posterior_traversal_codes,
};
pub use eval::{
    EvalReport, HeadlineScores, TraversalVendi, encode_means, evaluate, scored_codes,
    traversal_codes,
};
pub use report::write_report;
pub use trainer::{VaeTrainer, train_run};
