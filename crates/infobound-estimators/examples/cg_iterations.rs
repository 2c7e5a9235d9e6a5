//! Measures the conjugate-gradient steps the vMF score's device solvers need: for each batch,
//! the fewest steps whose score is within 1e-4 / 1e-6 / 1e-9 (max relative error, entries below
//! 1e-3 of the largest compared absolutely) of the reference, in f64, and the best error the
//! f32 solver reaches with its step. The reference is `reference/vmf_score.json`'s score for its
//! batches and this crate's host (Cholesky, f64) solve for Gaussian unit rows as in the bench.
//! Prints the table of `score.rs`'s module docs:
//!
//! ```text
//! cargo run --release -p infobound-estimators --example cg_iterations
//! ```

use burn::prelude::*;
use burn::tensor::DType;
use faer::Mat;
use infobound_estimators::{ScoreSolver, VmfScoreConfig, VmfScoreEstimator};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The error tolerances of the table's f64 columns.
const TOLERANCES: [f64; 3] = [1e-4, 1e-6, 1e-9];
/// Most steps tried.
const MOST_STEPS: usize = 160;

struct Batch {
    name: String,
    rows: usize,
    dim: usize,
    z: Vec<f64>,
    config: VmfScoreConfig,
    /// The score to compare with, or `None` for the host solve's.
    reference: Option<Vec<f64>>,
}

fn main() {
    let device = Device::flex();
    println!(
        "| batch (B × d) | κ(K + ηI) | 1e-4 | 1e-6 | 1e-9 | f32: best (at step) | default steps |"
    );
    println!("|---|---|---|---|---|---|---|");
    for batch in batches() {
        let z64 = Tensor::<2>::from_data(
            TensorData::new(batch.z.clone(), [batch.rows, batch.dim]),
            (&device, DType::F64),
        );
        let reference = batch.reference.clone().unwrap_or_else(|| {
            let host = VmfScoreEstimator::new(batch.config).expect("valid");
            values(host.estimate(z64.clone()).expect("host solve").score)
        });
        let error_after = |solver: ScoreSolver, steps: usize| {
            let estimator = VmfScoreEstimator::new(VmfScoreConfig {
                solver,
                device_iterations: Some(steps),
                ..batch.config
            })
            .expect("valid");
            let z = match solver {
                ScoreSolver::DeviceInputDtype => z64.clone().cast(DType::F32),
                _ => z64.clone(),
            };
            max_relative_error(
                &values(estimator.estimate(z).expect("device solve").score),
                &reference,
            )
        };
        // Conjugate gradients shrink the error's energy norm monotonically, so the fewest
        // steps to a tolerance are found by bisection.
        let steps: Vec<String> = TOLERANCES
            .iter()
            .map(|&tolerance| {
                let reaches =
                    |steps: usize| error_after(ScoreSolver::DeviceF64, steps) <= tolerance;
                if !reaches(MOST_STEPS) {
                    return format!("> {MOST_STEPS}");
                }
                let (mut low, mut high) = (0, MOST_STEPS);
                while high - low > 1 {
                    let middle = (low + high) / 2;
                    if reaches(middle) {
                        high = middle;
                    } else {
                        low = middle;
                    }
                }
                high.to_string()
            })
            .collect();
        let (best_error, best_steps) = (1..=MOST_STEPS / 4)
            .map(|quarter| {
                let steps = quarter * 4 - 3;
                (error_after(ScoreSolver::DeviceInputDtype, steps), steps)
            })
            .fold((f64::INFINITY, 0), |best, next| {
                if next.0 < best.0 { next } else { best }
            });
        println!(
            "| {} {} × {} | {:.2e} | {} | {} | {} | {:.1e} ({}) | {} |",
            batch.name,
            batch.rows,
            batch.dim,
            condition_number(&batch),
            steps[0],
            steps[1],
            steps[2],
            best_error,
            best_steps,
            batch.config.device_iterations_for(batch.rows),
        );
    }
}

/// The reference file's batches, then Gaussian unit rows at the bench's sizes.
fn batches() -> Vec<Batch> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../reference/vmf_score.json"
    );
    let text = std::fs::read_to_string(path).expect("reference/vmf_score.json");
    let cases: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let matrix = |value: &serde_json::Value| -> Vec<Vec<f64>> {
        value
            .as_array()
            .expect("rows")
            .iter()
            .map(|row| {
                row.as_array()
                    .expect("row")
                    .iter()
                    .map(|v| v.as_f64().expect("number"))
                    .collect()
            })
            .collect()
    };
    let mut batches: Vec<Batch> = cases
        .as_array()
        .expect("cases")
        .iter()
        .map(|case| {
            let rows = matrix(&case["z"]);
            Batch {
                name: case["name"].as_str().expect("name").to_owned(),
                rows: rows.len(),
                dim: rows[0].len(),
                z: rows.concat(),
                config: VmfScoreConfig {
                    eta: case["eta"].as_f64().expect("eta"),
                    min_width: case["min_width"].as_f64().expect("min_width"),
                    ..VmfScoreConfig::default()
                },
                reference: Some(matrix(&case["score"]).concat()),
            }
        })
        .collect();
    for (rows, dim) in [(128, 2048), (256, 256), (512, 128), (1024, 128)] {
        batches.push(Batch {
            name: "gaussian".to_owned(),
            rows,
            dim,
            z: unit_rows(rows, dim, 7),
            config: VmfScoreConfig::default(),
            reference: None,
        });
    }
    batches
}

/// Unit-norm rows of standard-normal draws (Box–Muller from a seeded stream).
fn unit_rows(rows: usize, dim: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut z: Vec<f64> = (0..rows * dim)
        .map(|_| {
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random::<f64>();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect();
    for row in z.chunks_exact_mut(dim) {
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        row.iter_mut().for_each(|v| *v /= norm);
    }
    z
}

/// κ(K + ηI) of the batch, from its eigenvalues, with the width the estimator uses.
fn condition_number(batch: &Batch) -> f64 {
    let device = Device::flex();
    let z = Tensor::<2>::from_data(
        TensorData::new(batch.z.clone(), [batch.rows, batch.dim]),
        (&device, DType::F64),
    );
    let estimator = VmfScoreEstimator::new(batch.config).expect("valid");
    let width = estimator
        .estimate(z)
        .expect("host solve")
        .kernel_width_value()
        .expect("width");
    let row = |i: usize| &batch.z[i * batch.dim..(i + 1) * batch.dim];
    let ridged = Mat::<f64>::from_fn(batch.rows, batch.rows, |i, j| {
        let dot: f64 = row(i).iter().zip(row(j)).map(|(a, b)| a * b).sum();
        (dot / width).exp() + if i == j { batch.config.eta } else { 0.0 }
    });
    let eigenvalues = ridged
        .self_adjoint_eigenvalues(faer::Side::Lower)
        .expect("eigenvalues");
    let largest = eigenvalues
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let smallest = eigenvalues.iter().copied().fold(f64::INFINITY, f64::min);
    largest / smallest
}

fn values(tensor: Tensor<2>) -> Vec<f64> {
    tensor
        .cast(DType::F64)
        .into_data()
        .try_to_vec::<f64>()
        .expect("f64")
}

/// Max relative error; entries below 1e-3 of the largest reference entry compared absolutely
/// (against that floor).
fn max_relative_error(actual: &[f64], expected: &[f64]) -> f64 {
    let floor = 1e-3 * expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    actual
        .iter()
        .zip(expected)
        .map(|(a, e)| (a - e).abs() / e.abs().max(floor))
        .fold(0.0, f64::max)
}
