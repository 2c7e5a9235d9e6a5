//! The one error type of the data crate.

use std::path::PathBuf;

/// Everything that can go wrong when describing, rendering, reading or batching data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A factor vector has the wrong number of entries.
    #[error("expected {expected} factor values per sample, got {got}")]
    FactorCount {
        /// Number of factors of the space.
        expected: usize,
        /// Number of values supplied.
        got: usize,
    },
    /// A factor value is outside `0..size`.
    #[error("factor `{name}` has {size} values, got index {value}")]
    FactorOutOfRange {
        /// Factor name.
        name: String,
        /// Number of values of the factor.
        size: usize,
        /// Offending value.
        value: usize,
    },
    /// A flat index is outside the state space.
    #[error("index {index} is outside a state space of {len} states")]
    IndexOutOfRange {
        /// Offending index.
        index: usize,
        /// Number of states.
        len: usize,
    },
    /// A caller-supplied argument is invalid (empty factor list, zero size, bad crop scale, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A dataset name is not known.
    #[error("unknown dataset `{name}`; known datasets: {known}")]
    UnknownDataset {
        /// Requested name.
        name: String,
        /// Comma-separated list of known names.
        known: String,
    },
    /// A dataset source has only class labels (CIFAR, image folders), so it cannot serve a run
    /// or metric that needs the true factors of variation.
    #[error(
        "dataset source `{source_name}` ({what}) has no ground-truth factors; a VAE run and the disentanglement metrics need one of: {with_factors}"
    )]
    NoGroundTruth {
        /// Serde tag of the source, e.g. `cifar10`.
        source_name: String,
        /// The path or name it points at.
        what: String,
        /// Comma-separated tags of the sources that do have factors.
        with_factors: String,
    },
    /// The source needs a cargo feature this build was compiled without.
    #[error("{what} needs the cargo feature `{feature}`; rebuild with `--features {feature}`")]
    FeatureDisabled {
        /// What was asked for, e.g. the path of a `3dshapes.h5`.
        what: String,
        /// The missing feature, e.g. `hdf5`.
        feature: &'static str,
    },
    /// A file exists but does not hold what was expected.
    #[error("{path}: {message}")]
    InvalidFile {
        /// File that was read.
        path: PathBuf,
        /// What was expected and what was found.
        message: String,
    },
    /// The operating system refused a read or write.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}
