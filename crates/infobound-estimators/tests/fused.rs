//! The default [`TcAlgorithm::Auto`] (infobound-kernels' streaming kernels on flex) against
//! [`TcAlgorithm::Materialised`] (Burn's tensor ops over the B × B × K cross term): values and
//! the gradients of a β-TCVAE loss with respect to z, μ and log σ² for every estimator, and
//! the reference vectors through the autodiff path.
#![cfg(feature = "flex-kernels")]

mod common;

use burn::prelude::*;
use burn::tensor::DType;
use common::{
    assert_close, host, load_reference, matrix, normal_samples, tensor_flat, tensor2, vector,
};
use infobound_estimators::{TcAlgorithm, TcEstimator, kl_decomposition_with};

const DATASET_SIZE: usize = 5_000;
const ESTIMATORS: [TcEstimator; 3] = [
    TcEstimator::Mws,
    TcEstimator::MssReleased,
    TcEstimator::MssPaper,
];

/// Largest |a − b| relative to the reference's largest magnitude (at least 1e-3).
fn relative_error(ours: &[f64], reference: &[f64]) -> f64 {
    assert_eq!(ours.len(), reference.len(), "lengths differ");
    let scale = reference.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    ours.iter()
        .zip(reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
        / scale
}

/// Host values of `(z, μ, log σ²)`, z drawn from its own posterior.
fn draws(batch: usize, latent: usize, seed: u64) -> [Vec<f64>; 3] {
    let n = batch * latent;
    let mu: Vec<f64> = normal_samples(n, seed);
    let logvar: Vec<f64> = normal_samples(n, seed + 1)
        .iter()
        .map(|v| 0.5 * v - 1.0)
        .collect();
    let z = normal_samples(n, seed + 2)
        .iter()
        .zip(&mu)
        .zip(&logvar)
        .map(|((e, m), v)| m + (0.5 * v).exp() * e)
        .collect();
    [z, mu, logvar]
}

/// `[log_qzx, log_qz, log_qz_product, ∂/∂z, ∂/∂μ, ∂/∂log σ²]` of the loss
/// `MI + 5·TC + dim-KL + mean(log_qzx · a)` (the last term weighs the rows unevenly).
fn evaluate(
    values: &[Vec<f64>; 3],
    shape: [usize; 2],
    dtype: DType,
    estimator: TcEstimator,
    algorithm: TcAlgorithm,
) -> Vec<Vec<f64>> {
    let device = Device::flex().autodiff();
    let [z, mu, logvar] = values
        .clone()
        .map(|v| tensor_flat(&v, shape, dtype, &device).require_grad());
    let d = kl_decomposition_with(
        z.clone(),
        mu.clone(),
        logvar.clone(),
        DATASET_SIZE,
        estimator,
        algorithm,
    )
    .expect("valid input");
    let a = Tensor::<1>::from_data(
        TensorData::new(
            (0..shape[0]).map(|i| (i as f64 * 0.9).cos()).collect(),
            [shape[0]],
        ),
        (&device, dtype),
    );
    let loss = d.mutual_information.clone()
        + d.total_correlation.clone().mul_scalar(5.0)
        + d.dimension_wise_kl.clone()
        + (d.log_qzx.clone() * a).mean();
    let grads = loss.backward();
    vec![
        host(d.log_qzx),
        host(d.log_qz),
        host(d.log_qz_product),
        host(z.grad(&grads).expect("z gradient")),
        host(mu.grad(&grads).expect("mu gradient")),
        host(logvar.grad(&grads).expect("logvar gradient")),
    ]
}

#[test]
fn fused_equals_materialised_values_and_gradients() {
    let names = [
        "log_qzx",
        "log_qz",
        "log_qz_product",
        "dz",
        "dmu",
        "dlogvar",
    ];
    for (dtype, tolerance) in [(DType::F32, 1e-5), (DType::F64, 1e-11)] {
        for batch in [2, 3, 17, 64] {
            for latent in [1, 10] {
                let values = draws(batch, latent, (batch * 31 + latent) as u64);
                for estimator in ESTIMATORS {
                    let shape = [batch, latent];
                    let fused = evaluate(&values, shape, dtype, estimator, TcAlgorithm::Auto);
                    let materialised =
                        evaluate(&values, shape, dtype, estimator, TcAlgorithm::Materialised);
                    for (name, (ours, reference)) in
                        names.iter().zip(fused.iter().zip(&materialised))
                    {
                        let error = relative_error(ours, reference);
                        assert!(
                            error <= tolerance,
                            "{estimator:?} {dtype:?} B={batch} K={latent} {name}: {error}"
                        );
                    }
                }
            }
        }
    }
}

/// The reference vectors through the fused path, plain and recorded (autodiff), in f64 to
/// 1e-9 and in f32 to 1e-5 relative.
#[test]
fn fused_path_matches_reference() {
    let cases = load_reference("total_correlation.json");
    for (case, device) in cases
        .as_array()
        .expect("cases")
        .iter()
        .flat_map(|case| [(case, Device::flex()), (case, Device::flex().autodiff())])
    {
        let dataset_size = case["dataset_size"].as_u64().expect("N") as usize;
        for (estimator, key) in [
            (TcEstimator::Mws, "mws"),
            (TcEstimator::MssReleased, "mss"),
            (TcEstimator::MssPaper, "mss_paper"),
        ] {
            for (dtype, rtol, atol) in [(DType::F32, 1e-5, 1e-5), (DType::F64, 1e-9, 1e-10)] {
                let [z, mu, logvar] =
                    ["z", "mu", "logvar"].map(|k| tensor2(&matrix(&case[k]), dtype, &device));
                let d = kl_decomposition_with(
                    z,
                    mu,
                    logvar,
                    dataset_size,
                    estimator,
                    TcAlgorithm::Auto,
                )
                .expect("valid");
                for (name, tensor) in [
                    ("log_qzx", d.log_qzx),
                    ("log_qz", d.log_qz),
                    ("log_qz_product", d.log_qz_product),
                ] {
                    assert_close(
                        &format!("{key} {dtype:?} {name}"),
                        &host(tensor),
                        &vector(&case[key][name]),
                        rtol,
                        atol,
                    );
                }
            }
        }
    }
}
