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
    /// A sample of a statistical test has too few values.
    #[error("sample {sample} has {len} value(s); the test needs at least 2")]
    SampleTooSmall {
        /// Which sample (`"a"` or `"b"`, the argument names of the test).
        sample: &'static str,
        /// Its number of values.
        len: usize,
    },
    /// A sample of a statistical test holds NaN or infinity.
    #[error("sample {sample} holds the non-finite value {value} at index {index}")]
    NonFiniteSample {
        /// Which sample (`"a"` or `"b"`).
        sample: &'static str,
        /// Index of the first offending value.
        index: usize,
        /// That value.
        value: f64,
    },
    /// Both samples of a two-sample t-test are constant, so the t statistic is undefined.
    #[error("both samples have zero variance (means {mean_a} and {mean_b}); t is undefined")]
    ZeroVariance {
        /// Mean of sample a.
        mean_a: f64,
        /// Mean of sample b.
        mean_b: f64,
    },
    /// A numerical routine (eigensolver, ...) did not succeed.
    #[error("numerical failure: {0}")]
    Numerical(String),
}
