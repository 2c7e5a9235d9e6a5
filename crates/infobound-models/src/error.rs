//! The one error type of the models crate.

/// Why a model could not be built or a loss computed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A configuration value is out of its domain.
    #[error("invalid model configuration: {0}")]
    InvalidConfig(String),
    /// An input tensor has the wrong shape.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A self-supervised loss got the wrong number of views, or lacks the target-network
    /// projections or predictor outputs its method needs.
    #[error("invalid SSL views: {0}")]
    Views(String),
    /// Two modules that must share one structure (online and target network) differ.
    #[error("module structure mismatch: {0}")]
    StructureMismatch(String),
    /// A data-parallel replica could not exchange samples with the others (another replica
    /// failed, or the exchange was broken).
    #[error("data-parallel exchange failed: {0}")]
    DataParallel(String),
    /// A convolution kernel rejected its input.
    #[cfg(feature = "flex-kernels")]
    #[error(transparent)]
    Kernel(#[from] infobound_kernels::KernelError),
    /// An estimator rejected its input.
    #[error(transparent)]
    Estimator(#[from] infobound_estimators::EstimatorError),
}
