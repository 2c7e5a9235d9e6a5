//! Shared by the tests that compare the kernels with Burn's generic ops.

use burn::tensor::Tensor;

/// The tensor's values, read back to the host.
pub fn to_vec<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_to_vec::<f32>().expect("f32 data")
}

/// Largest |a − b| relative to the reference's largest magnitude (at least 1).
pub fn relative_error(ours: &[f32], reference: &[f32]) -> f32 {
    assert_eq!(ours.len(), reference.len(), "lengths differ");
    let scale = reference.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    ours.iter()
        .zip(reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
        / scale
}
