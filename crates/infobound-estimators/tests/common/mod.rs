//! Helpers shared by the integration tests: device, tensor conversion, reference files.

#![allow(dead_code)] // each test binary uses a different subset of these helpers

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::DType;

/// The CPU device every test runs on.
pub fn device() -> Device {
    Device::flex()
}

/// A `[rows, cols]` tensor of the given dtype from nested rows.
pub fn tensor2(rows: &[Vec<f64>], dtype: DType, device: &Device) -> Tensor<2> {
    let cols = rows.first().map_or(0, Vec::len);
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), cols]), (device, dtype))
}

/// A `[rows, cols]` tensor of the given dtype from a row-major slice.
pub fn tensor_flat(values: &[f64], shape: [usize; 2], dtype: DType, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), (device, dtype))
}

/// All values of a tensor as f64, row-major.
pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.try_into_vec_as::<f64>().expect("tensor readback")
}

/// A one-element tensor as f64.
pub fn scalar(t: Tensor<1>) -> f64 {
    t.into_scalar::<f64>()
}

/// Asserts |actual − expected| ≤ atol + rtol·|expected| elementwise, naming the quantity.
pub fn assert_close(what: &str, actual: &[f64], expected: &[f64], rtol: f64, atol: f64) {
    assert_eq!(actual.len(), expected.len(), "{what}: length differs");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let tolerance = atol + rtol * e.abs();
        assert!(
            (a - e).abs() <= tolerance,
            "{what}[{i}]: got {a}, expected {e} (|diff| {} > tol {tolerance})",
            (a - e).abs()
        );
    }
}

/// Largest relative error max_i |a_i − e_i| / max(|e_i|, floor).
pub fn max_rel_error(actual: &[f64], expected: &[f64], floor: f64) -> f64 {
    actual
        .iter()
        .zip(expected)
        .map(|(a, e)| (a - e).abs() / e.abs().max(floor))
        .fold(0.0, f64::max)
}

/// Directory of the reference vectors: `INFOBOUND_REFERENCE_DIR`, or the copy in the
/// repository's `reference/` folder.
pub fn reference_dir() -> PathBuf {
    std::env::var_os("INFOBOUND_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../reference")))
}

/// Parses one reference file; a missing or malformed file fails the test.
pub fn load_reference(name: &str) -> serde_json::Value {
    let path = reference_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON in {name}: {e}"))
}

/// A JSON array of arrays of numbers as nested rows.
pub fn matrix(value: &serde_json::Value) -> Vec<Vec<f64>> {
    value
        .as_array()
        .expect("matrix")
        .iter()
        .map(vector)
        .collect()
}

/// A JSON array of numbers.
pub fn vector(value: &serde_json::Value) -> Vec<f64> {
    value
        .as_array()
        .expect("vector")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect()
}

/// `count` standard-normal draws (Box–Muller on a seeded ChaCha stream).
pub fn normal_samples(count: usize, seed: u64) -> Vec<f64> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random::<f64>();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect()
}

/// `batch` rows of `dim` values, each row scaled to unit norm.
pub fn unit_rows(values: &[f64], dim: usize) -> Vec<f64> {
    values
        .chunks_exact(dim)
        .flat_map(|row| {
            let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
            row.iter().map(move |v| v / norm)
        })
        .collect()
}
