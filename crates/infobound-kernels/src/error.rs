//! The one error type of the kernels crate.

/// Why a convolution could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// Tensor shapes do not fit together (channels, kernel, bias length, output size).
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// An option is out of its domain (zero stride, dilation or groups).
    #[error("invalid convolution options: {0}")]
    Options(String),
    /// A tensor could not be moved between Burn's dispatch layer and the flex backend.
    #[error("backend conversion failed: {0}")]
    Backend(String),
}
