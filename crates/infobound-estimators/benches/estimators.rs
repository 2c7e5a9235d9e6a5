//! Criterion benchmarks of the estimators on the flex CPU backend:
//! total correlation (MWS, MSS) forward and forward + backward — by the default algorithm
//! (fused streaming kernels on flex) and over the materialised B × B × K cross term — the vMF
//! score, and the three SPD solve paths. Run with `cargo bench -p infobound-estimators --profile dev -- --quick`.

// `criterion_group!` expands to an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use burn::prelude::*;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use infobound_estimators::{
    ScoreSolver, TcAlgorithm, TcEstimator, VmfScoreConfig, VmfScoreEstimator,
    kl_decomposition_with, spd_solve, spd_solve_conjugate_gradient, spd_solve_tensor_ops,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const LATENT: usize = 10;
const DATASET_SIZE: usize = 737_280;

/// Standard-normal draws (Box–Muller) from a seeded stream.
fn normal(count: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random::<f64>();
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect()
}

fn tensor(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Unit-norm rows of Gaussian draws.
fn unit_rows(batch: usize, dim: usize, seed: u64, device: &Device) -> Tensor<2> {
    let z = tensor(normal(batch * dim, seed), [batch, dim], device);
    let norm = z.clone().square().sum_dim(1).sqrt();
    z / norm
}

fn total_correlation(c: &mut Criterion) {
    let mut group = c.benchmark_group("total_correlation");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    for batch in [64, 256, 1024] {
        let shape = [batch, LATENT];
        let mu = normal(batch * LATENT, 1);
        let logvar: Vec<f32> = normal(batch * LATENT, 2)
            .iter()
            .map(|v| 0.3 * v - 1.0)
            .collect();
        let z: Vec<f32> = normal(batch * LATENT, 3)
            .iter()
            .zip(&mu)
            .zip(&logvar)
            .map(|((e, m), v)| m + (0.5 * v).exp() * e)
            .collect();
        // `mws_forward/B` etc. are the default path (the fused kernels on flex), the ids that
        // `cargo xtask bench` pairs with PyTorch; `*_materialised_*` is Burn's tensor ops over
        // the B × B × K cross term, for comparison.
        for (algorithm, suffix) in [
            (TcAlgorithm::Auto, ""),
            (TcAlgorithm::Materialised, "_materialised"),
        ] {
            for (name, estimator) in [("mws", TcEstimator::Mws), ("mss", TcEstimator::MssPaper)] {
                let device = Device::flex();
                let id = BenchmarkId::new(format!("{name}{suffix}_forward"), batch);
                group.bench_function(id, |b| {
                    b.iter(|| {
                        let d = kl_decomposition_with(
                            tensor(z.clone(), shape, &device),
                            tensor(mu.clone(), shape, &device),
                            tensor(logvar.clone(), shape, &device),
                            DATASET_SIZE,
                            estimator,
                            algorithm,
                        )
                        .expect("valid");
                        black_box(d.values().expect("readback"))
                    })
                });
                let device = Device::flex().autodiff();
                let id = BenchmarkId::new(format!("{name}{suffix}_forward_backward"), batch);
                group.bench_function(id, |b| {
                    b.iter(|| {
                        let inputs = [&z, &mu, &logvar]
                            .map(|v| tensor(v.clone(), shape, &device).require_grad());
                        let [z_t, mu_t, logvar_t] = inputs.clone();
                        let d = kl_decomposition_with(
                            z_t,
                            mu_t,
                            logvar_t,
                            DATASET_SIZE,
                            estimator,
                            algorithm,
                        )
                        .expect("valid");
                        let loss = d.mutual_information
                            + d.total_correlation.mul_scalar(5.0)
                            + d.dimension_wise_kl;
                        let gradients = loss.backward();
                        black_box(inputs[0].grad(&gradients).expect("tracked").into_data())
                    })
                });
            }
        }
    }
    group.finish();
}

fn vmf_score(c: &mut Criterion) {
    let mut group = c.benchmark_group("vmf_score");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    let device = Device::flex();
    let estimator = VmfScoreEstimator::new(VmfScoreConfig::default()).expect("valid");
    for (batch, dim) in [(128, 2048), (256, 256), (512, 128)] {
        let z = unit_rows(batch, dim, 7, &device);
        group.bench_function(BenchmarkId::from_parameter(format!("{batch}x{dim}")), |b| {
            b.iter(|| {
                let estimate = estimator.estimate(z.clone()).expect("valid");
                black_box(estimate.score.into_data())
            })
        });
    }
    // The device paths on the same CPU device (no host round trip; what a GPU step runs):
    // 64 conjugate-gradient steps of tensor ops, in f64 and in the input's f32.
    for (solver, name) in [
        (ScoreSolver::DeviceF64, "device_f64_256x256"),
        (ScoreSolver::DeviceInputDtype, "device_f32_256x256"),
    ] {
        let on_device = VmfScoreEstimator::new(VmfScoreConfig {
            solver,
            ..VmfScoreConfig::default()
        })
        .expect("valid");
        let z = unit_rows(256, 256, 7, &device);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let estimate = on_device.estimate(z.clone()).expect("valid");
                black_box(estimate.score.into_data())
            })
        });
    }
    group.finish();
}

fn spd_solves(c: &mut Criterion) {
    let mut group = c.benchmark_group("spd_solve");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2));
    let device = Device::flex();
    let rhs_columns = 128;
    for batch in [128, 256, 512, 1024] {
        // A vMF kernel matrix of random unit vectors plus MVEB's ridge, as the score solves.
        let z = unit_rows(batch, 64, 11, &device);
        let kernel = z.clone().matmul(z.transpose()).mul_scalar(2.0).exp();
        let matrix = kernel + Tensor::<2>::eye(batch, &device).mul_scalar(0.01);
        let rhs = tensor(
            normal(batch * rhs_columns, 12),
            [batch, rhs_columns],
            &device,
        );
        group.bench_function(BenchmarkId::new("host_faer_f64", batch), |b| {
            b.iter(|| {
                black_box(
                    spd_solve(matrix.clone(), rhs.clone())
                        .expect("SPD")
                        .into_data(),
                )
            })
        });
        group.bench_function(
            BenchmarkId::new("device_conjugate_gradient_64", batch),
            |b| {
                b.iter(|| {
                    black_box(
                        spd_solve_conjugate_gradient(matrix.clone(), rhs.clone(), 64, 1e-2)
                            .expect("converged")
                            .into_data(),
                    )
                })
            },
        );
        group.bench_function(BenchmarkId::new("device_tensor_ops", batch), |b| {
            b.iter(|| {
                black_box(
                    spd_solve_tensor_ops(matrix.clone(), rhs.clone())
                        .expect("SPD")
                        .into_data(),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, total_correlation, vmf_score, spd_solves);
criterion_main!(benches);
