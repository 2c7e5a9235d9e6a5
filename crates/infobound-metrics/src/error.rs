//! The one error type of the metrics crate.

/// Why a metric could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Two inputs disagree in shape.
    #[error("shape mismatch: {0}")]
    ShapeMismatch(String),
    /// An input holds NaN or infinity.
    #[error("{what} contains a non-finite value at row {row}, column {col}")]
    NonFinite {
        /// Which input.
        what: String,
        /// Row of the first offending value.
        row: usize,
        /// Column of the first offending value.
        col: usize,
    },
    /// Too few samples, a factor with one value, k larger than the bank, ...
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A parameter is out of its domain.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// The representation function or dataset failed.
    #[error(transparent)]
    Data(#[from] infobound_data::DataError),
    /// A caller-supplied representation function failed.
    #[error("representation function failed: {0}")]
    Representation(String),
    /// A numerical routine (eigensolver, ...) did not succeed.
    #[error("numerical failure: {0}")]
    Numerical(String),
}
