//! Errors of the `infobound` command: one line on stderr, non-zero exit.

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The user asked for something invalid (bad flag combination, unknown name, ...).
    #[error("{0}")]
    Usage(String),
    /// Backend selection failed.
    #[error(transparent)]
    Backend(#[from] infobound_backend::BackendError),
    /// A dataset could not be built or read.
    #[error(transparent)]
    Data(#[from] infobound_data::DataError),
    /// A metric could not be computed.
    #[error(transparent)]
    Metrics(#[from] infobound_metrics::MetricsError),
    /// Training, evaluation or reporting failed.
    #[error(transparent)]
    Train(#[from] infobound_train::TrainError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: std::path::PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A run file (config.toml, metrics.json) cannot be parsed.
    #[error("{}: {reason}", path.display())]
    Parse {
        /// File involved.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Bytes meant as a PNG image are not a PNG file.
    #[error("{name}: {reason}")]
    Png {
        /// The image's file or tag.
        name: String,
        /// What is wrong.
        reason: String,
    },
}
