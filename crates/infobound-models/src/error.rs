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
    /// An estimator rejected its input.
    #[error(transparent)]
    Estimator(#[from] infobound_estimators::EstimatorError),
}
