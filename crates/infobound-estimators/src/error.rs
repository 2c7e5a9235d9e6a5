//! The error type shared by every estimator in this crate.

use thiserror::Error;

/// Why an estimator refused its input or could not finish.
///
/// Every public function of this crate validates its arguments and returns one of these
/// instead of panicking, so that a bad minibatch (a NaN from a diverging encoder, a batch
/// larger than the dataset, …) surfaces as a value the training loop can log or act on.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum EstimatorError {
    /// Two tensors that must agree in shape do not.
    #[error("shape mismatch for {what}: expected {expected:?}, found {found:?}")]
    ShapeMismatch {
        /// Which argument has the wrong shape.
        what: &'static str,
        /// The shape that was required.
        expected: Vec<usize>,
        /// The shape that was passed.
        found: Vec<usize>,
    },
    /// The minibatch has fewer rows than the estimator needs.
    #[error("batch size {batch} is too small: at least {minimum} samples are needed")]
    BatchTooSmall {
        /// Rows in the minibatch.
        batch: usize,
        /// Smallest supported number of rows.
        minimum: usize,
    },
    /// The dataset size N given to a total-correlation estimator is smaller than the batch.
    #[error("dataset size {dataset_size} is smaller than the batch size {batch}")]
    DatasetSmallerThanBatch {
        /// The dataset size N that was passed.
        dataset_size: usize,
        /// Rows in the minibatch.
        batch: usize,
    },
    /// An input tensor holds NaN or ±∞.
    #[error("{what} contains non-finite values (NaN or infinity)")]
    NonFinite {
        /// Which argument holds the non-finite values.
        what: &'static str,
    },
    /// A scalar hyper-parameter lies outside its valid range.
    #[error("invalid {name} = {value}: {requirement}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// The value that was passed.
        value: f64,
        /// The range or condition it must satisfy.
        requirement: &'static str,
    },
    /// A row that must lie on the unit sphere does not.
    #[error("row {row} of z has norm {norm}, but the vMF kernel needs unit-norm rows")]
    NotUnitNorm {
        /// Index of the first offending row.
        row: usize,
        /// Its Euclidean norm.
        norm: f64,
    },
    /// The Cholesky factorisation of a matrix that should be symmetric positive definite failed.
    #[error("matrix of size {size} is not numerically symmetric positive definite")]
    NotPositiveDefinite {
        /// The matrix dimension.
        size: usize,
    },
    /// An iterative solve ended with a residual above the tolerance it was given.
    #[error(
        "conjugate gradients: relative residual {relative_residual:e} after {iterations} \
         iterations exceeds the tolerance {tolerance:e}"
    )]
    NotConverged {
        /// Iterations run.
        iterations: usize,
        /// Largest `‖A x − r‖ / ‖r‖` over the right-hand sides.
        relative_residual: f64,
        /// The tolerance that was asked for.
        tolerance: f64,
    },
    /// A fused kernel of `infobound-kernels` refused its operands (a bug of this crate: the
    /// estimators validate them first).
    #[error("kernel failed: {0}")]
    Kernel(String),
    /// Reading a tensor back to the host failed.
    #[error("could not read tensor data: {0}")]
    TensorRead(String),
}

impl From<burn::tensor::TensorReadError> for EstimatorError {
    fn from(err: burn::tensor::TensorReadError) -> Self {
        Self::TensorRead(err.to_string())
    }
}
