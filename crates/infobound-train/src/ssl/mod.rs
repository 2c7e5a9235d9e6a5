//! Self-supervised training (MVEB, SimSiam, BYOL, Barlow Twins): the loop, probes, monitors and
//! run folders.
//!
//! ```no_run
//! use infobound_train::{RunDir, TrainOptions};
//! use infobound_train::ssl::{SslTrainConfig, evaluate_ssl, train_ssl_run, write_ssl_report};
//! # fn demo(device: &burn::tensor::Device) -> Result<(), infobound_train::TrainError> {
//! let config = SslTrainConfig::preset("mveb_quickstart")?;
//! let run = RunDir::new("runs/mveb-quickstart");
//! let options = TrainOptions { resume: false, progress: true };
//! let (trainer, summary) = train_ssl_run(config, std::slice::from_ref(device), &run, options)?;
//! let metrics = evaluate_ssl(&trainer, &run, Some(summary.wall_seconds))?;
//! println!("kNN accuracy {:.3}", metrics.knn.accuracy);
//! write_ssl_report(&run)?;
//! # Ok(()) }
//! ```

mod config;
mod data;
mod eval;
mod parallel;
mod probe;
mod report;
mod trainer;

pub use config::{
    DataParallelConfig, EntropySupport, EvalView, LabelledSplitConfig, SslMonitorConfig,
    SslOptimizerConfig, SslOptimizerMethod, SslTrainConfig,
};
pub use data::{SslData, SslSplit};
pub use eval::{
    FactorKnn, FeatureExtractor, ProbeScores, SslEvalReport, evaluate_ssl, knn_monitor, probe,
};
pub use probe::OnlineProbe;
pub use report::{read_ssl_metrics, write_ssl_report};
pub use trainer::{SslStepReport, SslTrainer, StepBatch, train_ssl_run};
