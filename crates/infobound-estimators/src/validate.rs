//! Input checks shared by the estimators; each turns a bad argument into an [`EstimatorError`].

use burn::prelude::*;

use crate::EstimatorError;

/// Fails unless `tensor` has exactly the `expected` shape.
pub(crate) fn same_shape<const D: usize>(
    what: &'static str,
    tensor: &Tensor<D>,
    expected: [usize; D],
) -> Result<(), EstimatorError> {
    let found = tensor.dims();
    if found == expected {
        Ok(())
    } else {
        Err(EstimatorError::ShapeMismatch {
            what,
            expected: expected.to_vec(),
            found: found.to_vec(),
        })
    }
}

/// Fails unless the batch has at least `minimum` rows.
pub(crate) fn batch_at_least(batch: usize, minimum: usize) -> Result<(), EstimatorError> {
    if batch >= minimum {
        Ok(())
    } else {
        Err(EstimatorError::BatchTooSmall { batch, minimum })
    }
}

/// Fails if any entry of `tensor` is NaN or infinite.
///
/// The reduction runs on the tensor's device; only one boolean is read back.
pub(crate) fn all_finite<const D: usize>(
    what: &'static str,
    tensor: &Tensor<D>,
) -> Result<(), EstimatorError> {
    let finite = tensor
        .clone()
        .detach()
        .is_finite()
        .all()
        .try_into_scalar::<bool>()?;
    if finite {
        Ok(())
    } else {
        Err(EstimatorError::NonFinite { what })
    }
}

/// Fails if any value of a host slice is NaN or infinite.
pub(crate) fn all_finite_host(what: &'static str, values: &[f64]) -> Result<(), EstimatorError> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(EstimatorError::NonFinite { what })
    }
}

/// Fails unless `value` is finite and strictly positive.
pub(crate) fn positive(name: &'static str, value: f64) -> Result<(), EstimatorError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(EstimatorError::InvalidParameter {
            name,
            value,
            requirement: "must be finite and > 0",
        })
    }
}

/// Fails unless a count is at least 1.
pub(crate) fn at_least_one(name: &'static str, value: usize) -> Result<(), EstimatorError> {
    if value >= 1 {
        Ok(())
    } else {
        Err(EstimatorError::InvalidParameter {
            name,
            value: value as f64,
            requirement: "must be at least 1",
        })
    }
}

/// Fails unless `value` is finite and non-negative.
pub(crate) fn non_negative(name: &'static str, value: f64) -> Result<(), EstimatorError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(EstimatorError::InvalidParameter {
            name,
            value,
            requirement: "must be finite and >= 0",
        })
    }
}
