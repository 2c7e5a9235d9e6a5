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
    /// A run file (metrics.json, the resolved configuration) could not be parsed or encoded.
    #[error("{path}: {message}")]
    RunFile {
        /// File involved.
        path: std::path::PathBuf,
        /// What the parser or encoder reported.
        message: String,
    },
    /// `infobound compare --group-by` named a configuration key that no compared run has.
    #[error("--group-by {key}: no compared run has this configuration key (keys: {known})")]
    UnknownConfigKey {
        /// The key asked for.
        key: String,
        /// The configuration keys of the compared runs, comma-separated.
        known: String,
    },
    /// `infobound compare` found no run folder with a metrics.json.
    #[error("none of the {folders} run folder(s) has a metrics.json yet: nothing to compare")]
    NoFinishedRuns {
        /// Number of run folders given (all skipped).
        folders: usize,
    },
    /// Weights could not be exported or imported.
    #[error(transparent)]
    Weights(#[from] infobound_weights::WeightsError),
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
