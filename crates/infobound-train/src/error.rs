//! The one error type of the training crate.

use std::path::PathBuf;

/// Why training, evaluation or reporting failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The configuration is invalid (unknown preset, bad value, unparsable file).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A run folder is missing something or cannot be resumed.
    #[error("run folder {path}: {message}")]
    RunDir {
        /// The folder.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A checkpoint could not be written or read.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// No checkpoint in the folder verifies against its manifest.
    #[error("no valid checkpoint in {}{}", .dir.display(), describe_skipped(.skipped))]
    NoValidCheckpoint {
        /// The checkpoint folder searched.
        dir: PathBuf,
        /// What was found and why each was passed over, newest first.
        skipped: Vec<crate::run::checkpoint::SkippedCheckpoint>,
    },
    /// Another process (or another open of the lock file) holds the run folder's lock.
    #[error("run folder {} is in use by {}", .run.display(), describe_holder(.holder.as_ref()))]
    RunLocked {
        /// The run folder.
        run: PathBuf,
        /// Who holds it, as written in the lock file (`None` if not yet written).
        holder: Option<crate::run::lock::LockHolder>,
    },
    /// The loss stayed non-finite; the last good checkpoint is kept untouched.
    #[error(
        "training diverged: the loss was non-finite for {consecutive} consecutive steps at step {step}"
    )]
    Diverged {
        /// Step at which training stopped.
        step: usize,
        /// Number of consecutive non-finite losses.
        consecutive: usize,
    },
    /// A self-supervised loss was NaN or infinite: the run stops, keeping its last checkpoint.
    #[error("training stopped: the loss was {value} at step {step}")]
    NonFiniteLoss {
        /// Step whose loss was non-finite.
        step: usize,
        /// The loss value.
        value: f64,
    },
    /// A data-parallel replica failed or its devices do not fit the configuration.
    #[error("data-parallel training: {0}")]
    DataParallel(String),
    /// The model rejected its configuration or input.
    #[error(transparent)]
    Model(#[from] infobound_models::ModelError),
    /// The dataset failed.
    #[error(transparent)]
    Data(#[from] infobound_data::DataError),
    /// A metric failed.
    #[error(transparent)]
    Metrics(#[from] infobound_metrics::MetricsError),
}

fn describe_skipped(skipped: &[crate::run::checkpoint::SkippedCheckpoint]) -> String {
    if skipped.is_empty() {
        return ": no checkpoint yet".into();
    }
    skipped.iter().map(|s| format!("; {s}")).collect()
}

fn describe_holder(holder: Option<&crate::run::lock::LockHolder>) -> String {
    holder.map_or_else(
        || "another process (it has not yet written who it is)".into(),
        ToString::to_string,
    )
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
