//! Identities and limiting cases the estimators must satisfy, checked against independent
//! host computations.

mod common;

use burn::tensor::DType;
use common::{assert_close, host, normal_samples, scalar, tensor_flat};
use infobound_estimators::{
    AlphaTcWeights, CebVariant, CebWeighting, EstimatorError, TcEstimator, alpha_tc_regulariser,
    annealed_capacity, ceb_term, kl_decomposition, logsumexp, spd_solve,
    spd_solve_conjugate_gradient, spd_solve_tensor_ops,
};

/// A factorised Gaussian "dataset": posterior means μ_ik ~ N(0, 1) independently per dimension,
/// a fixed posterior log-variance, and one sample z_ik = μ_ik + σ ε_ik per row.
fn factorised_batch(batch: usize, latent: usize, logvar: f64, seed: u64) -> [Vec<f64>; 3] {
    let mu = normal_samples(batch * latent, seed);
    let noise = normal_samples(batch * latent, seed + 1);
    let std = (0.5 * logvar).exp();
    let z = mu.iter().zip(&noise).map(|(m, e)| m + std * e).collect();
    [z, mu, vec![logvar; batch * latent]]
}

#[test]
fn decomposition_sums_to_kl_sample_estimate() {
    let device = common::device();
    let (batch, latent, n) = (24, 5, 5000);
    let mu = normal_samples(batch * latent, 1);
    let logvar: Vec<f64> = normal_samples(batch * latent, 2)
        .iter()
        .map(|v| 0.5 * v - 1.0)
        .collect();
    let noise = normal_samples(batch * latent, 3);
    let z: Vec<f64> = (0..batch * latent)
        .map(|i| mu[i] + (0.5 * logvar[i]).exp() * noise[i])
        .collect();
    // Independent host value of mean_i [log q(z_i|x_i) − log p(z_i)].
    let expected = (0..batch * latent)
        .map(|i| {
            let log_q = -0.5 * (logvar[i] + (z[i] - mu[i]).powi(2) / logvar[i].exp());
            let log_p = -0.5 * z[i] * z[i];
            log_q - log_p
        })
        .sum::<f64>()
        / batch as f64;
    for estimator in [
        TcEstimator::Mws,
        TcEstimator::MssReleased,
        TcEstimator::MssPaper,
    ] {
        let t = |v: &[f64]| tensor_flat(v, [batch, latent], DType::F64, &device);
        let values = kl_decomposition(t(&z), t(&mu), t(&logvar), n, estimator)
            .expect("valid")
            .values()
            .expect("readback");
        let sum = values.mutual_information + values.total_correlation + values.dimension_wise_kl;
        assert_close(
            &format!("{estimator:?} sum"),
            &[sum],
            &[expected],
            1e-10,
            1e-10,
        );
    }
}

#[test]
fn total_correlation_vanishes_for_a_factorised_gaussian() {
    let device = common::device();
    let (latent, n) = (3, 1_000_000);
    let logvar = (0.5f64).powi(2).ln();
    let tc = |batch: usize, estimator, dependent: bool| {
        let [mut z, mut mu, logvar] = factorised_batch(batch, latent, logvar, 11);
        if dependent {
            // Control: copy the first dimension into all others: same marginals, strongly
            // dependent dimensions.
            for row in z
                .chunks_exact_mut(latent)
                .chain(mu.chunks_exact_mut(latent))
            {
                let first = row[0];
                row.iter_mut().for_each(|v| *v = first);
            }
        }
        let t = |v: &[f64]| tensor_flat(v, [batch, latent], DType::F32, &device);
        let value = kl_decomposition(t(&z), t(&mu), t(&logvar), n, estimator)
            .expect("valid")
            .values()
            .expect("readback")
            .total_correlation;
        // MWS divides by B·N where the mixture has B terms: its TC carries the constant
        // (K − 1)·log N (see `TcEstimator::Mws`).
        match estimator {
            TcEstimator::Mws => value - (latent as f64 - 1.0) * (n as f64).ln(),
            _ => value,
        }
    };
    for estimator in [TcEstimator::Mws, TcEstimator::MssPaper] {
        let small = tc(256, estimator, false);
        let large = tc(1024, estimator, false);
        assert!(
            large.abs() < 0.05,
            "{estimator:?}: TC {large} of a factorised Gaussian"
        );
        assert!(
            large.abs() < small.abs(),
            "{estimator:?}: bias grew from B=256 ({small}) to 1024 ({large})"
        );
        let dependent = tc(1024, estimator, true);
        assert!(
            dependent > 1.0,
            "{estimator:?}: TC of dependent dimensions only {dependent}"
        );
    }
}

#[test]
fn alpha_zero_is_the_capacity_annealed_beta_vae() {
    let device = common::device();
    let (batch, latent) = (16, 6);
    let mu = normal_samples(batch * latent, 21);
    let logvar: Vec<f64> = normal_samples(batch * latent, 22)
        .iter()
        .map(|v| v - 0.5)
        .collect();
    let beta = 4.0;
    let capacity = annealed_capacity(25.0, 3, 9).expect("valid");
    assert_close("C_t", &[capacity], &[25.0 * 0.3], 1e-15, 0.0);
    // Independent host β · mean_i |KL_i − C_t|.
    let expected = beta
        * (0..batch)
            .map(|i| {
                let kl: f64 = (0..latent)
                    .map(|k| {
                        let (m, v) = (mu[i * latent + k], logvar[i * latent + k]);
                        0.5 * (m * m + v.exp() - 1.0 - v)
                    })
                    .sum();
                (kl - capacity).abs()
            })
            .sum::<f64>()
        / batch as f64;
    for weighting in [CebWeighting::ReleasedCode, CebWeighting::Mvtcae] {
        let weights = AlphaTcWeights::new(0.0, beta, latent, weighting).expect("valid");
        assert_eq!((weights.vib, weights.ceb), (beta, 0.0));
        for variant in [CebVariant::ReleasedCode, CebVariant::ProductOfExperts] {
            let t = |v: &[f64]| tensor_flat(v, [batch, latent], DType::F64, &device);
            let terms = alpha_tc_regulariser(t(&mu), t(&logvar), weights, variant, capacity)
                .expect("valid");
            assert_close(
                "α = 0 bound",
                &[scalar(terms.regulariser)],
                &[expected],
                1e-12,
                0.0,
            );
        }
    }
}

#[test]
fn alpha_weights_follow_the_published_formulas() {
    let (alpha, beta, k) = (0.25, 2.0, 10usize);
    let released = AlphaTcWeights::new(alpha, beta, k, CebWeighting::ReleasedCode).expect("ok");
    let mvtcae = AlphaTcWeights::new(alpha, beta, k, CebWeighting::Mvtcae).expect("ok");
    let vib = 2.0 * 0.75 / (1.0 - 0.025);
    assert_close("vib", &[released.vib, mvtcae.vib], &[vib, vib], 1e-15, 0.0);
    assert_close("ceb", &[released.ceb], &[2.5 / 9.75], 1e-15, 0.0);
    assert_close("ceb mvtcae", &[mvtcae.ceb], &[0.25 / 9.75], 1e-15, 0.0);
}

/// Independent per-sample CEB of the released code, from σ (not σ²) as that code does.
fn ceb_released_host(mu: &[f64], logvar: &[f64]) -> f64 {
    let eps = 1e-8;
    let std: Vec<f64> = logvar.iter().map(|v| (0.5 * v).exp()).collect();
    let w: Vec<f64> = std.iter().map(|s| 1.0 / (s + eps)).collect();
    let v_p: f64 = w.iter().sum();
    let mu_p = mu.iter().zip(&w).map(|(m, w)| m * w).sum::<f64>() / v_p;
    (0..mu.len())
        .map(|k| {
            0.5 * (-1.0 - (v_p + eps).ln()
                + (std[k] + eps).ln()
                + (mu_p - mu[k]).powi(2) * w[k]
                + v_p * w[k])
        })
        .sum()
}

/// Independent Σ_k KL(N(μ_k, σ_k²) ‖ N(μ_p, σ_p²)) for the precision-weighted product.
fn ceb_product_host(mu: &[f64], logvar: &[f64]) -> f64 {
    let precision: Vec<f64> = logvar.iter().map(|v| (-v).exp()).collect();
    let var_p = 1.0 / precision.iter().sum::<f64>();
    let mu_p = var_p * mu.iter().zip(&precision).map(|(m, p)| m * p).sum::<f64>();
    (0..mu.len())
        .map(|k| {
            let var_k = logvar[k].exp();
            0.5 * ((var_p / var_k).ln() + (var_k + (mu[k] - mu_p).powi(2)) / var_p - 1.0)
        })
        .sum()
}

#[test]
fn ceb_terms_match_independent_formulas() {
    let device = common::device();
    let (batch, latent) = (8, 5);
    let mu = normal_samples(batch * latent, 31);
    let logvar: Vec<f64> = normal_samples(batch * latent, 32)
        .iter()
        .map(|v| v - 1.0)
        .collect();
    for (variant, reference) in [
        (
            CebVariant::ReleasedCode,
            ceb_released_host as fn(&[f64], &[f64]) -> f64,
        ),
        (CebVariant::ProductOfExperts, ceb_product_host),
    ] {
        let expected: Vec<f64> = (0..batch)
            .map(|i| {
                let row = i * latent..(i + 1) * latent;
                reference(&mu[row.clone()], &logvar[row])
            })
            .collect();
        for (dtype, rtol) in [(DType::F32, 1e-4), (DType::F64, 1e-12)] {
            let t = |v: &[f64]| tensor_flat(v, [batch, latent], dtype, &device);
            let ceb = ceb_term(t(&mu), t(&logvar), variant).expect("valid");
            assert_close(
                &format!("{variant:?} {dtype:?}"),
                &host(ceb),
                &expected,
                rtol,
                rtol,
            );
        }
    }
    // Closed form: K identical experts N(μ, σ²) pool to N(μ, σ²/K), so each KL is
    // ½(−log K + K − 1).
    let k = 4.0f64;
    let same = tensor_flat(&[0.7; 4], [1, 4], DType::F64, &device);
    let ceb = ceb_term(
        same.clone(),
        same.mul_scalar(-1.0),
        CebVariant::ProductOfExperts,
    )
    .expect("valid");
    let expected = k * 0.5 * (-k.ln() + k - 1.0);
    assert_close("identical experts", &host(ceb), &[expected], 1e-12, 1e-12);
}

#[test]
fn logsumexp_is_stable_and_matches_the_naive_formula() {
    let device = common::device();
    let values = [0.5, -1.0, 2.0, 0.0, 3.0, -2.5];
    let x = tensor_flat(&values, [2, 3], DType::F64, &device);
    let naive: Vec<f64> = values
        .chunks(3)
        .map(|r| r.iter().map(|v| v.exp()).sum::<f64>().ln())
        .collect();
    assert_close(
        "rows",
        &host(logsumexp(x.clone(), 1).expect("dim")),
        &naive,
        1e-14,
        0.0,
    );
    let shifted = logsumexp(x.add_scalar(1000.0), 1).expect("dim");
    let expected: Vec<f64> = naive.iter().map(|v| v + 1000.0).collect();
    assert_close("shifted by 1000", &host(shifted), &expected, 1e-14, 0.0);
}

#[test]
fn host_and_tensor_op_solves_agree_and_solve_the_system() {
    let device = common::device();
    let n = 24;
    let m = 3;
    let g = normal_samples(n * n, 41);
    // A = G Gᵀ / n + 0.1 I is SPD.
    let a: Vec<f64> = (0..n * n)
        .map(|ij| {
            let (i, j) = (ij / n, ij % n);
            let dot: f64 = (0..n).map(|k| g[i * n + k] * g[j * n + k]).sum();
            dot / n as f64 + if i == j { 0.1 } else { 0.0 }
        })
        .collect();
    let r = normal_samples(n * m, 42);
    let matrix = tensor_flat(&a, [n, n], DType::F64, &device);
    let rhs = tensor_flat(&r, [n, m], DType::F64, &device);
    let host_solution = host(spd_solve(matrix.clone(), rhs.clone()).expect("SPD"));
    let device_solution = host(spd_solve_tensor_ops(matrix.clone(), rhs.clone()).expect("SPD"));
    assert_close("paths agree", &device_solution, &host_solution, 1e-9, 1e-9);
    // n = 24 conjugate-gradient steps end the method in exact arithmetic; 2n leave room for
    // rounding (A's condition number is ≈ 10²).
    let iterative =
        spd_solve_conjugate_gradient(matrix.clone(), rhs.clone(), 2 * n, 1e-10).expect("SPD");
    assert_close("CG agrees", &host(iterative), &host_solution, 1e-9, 1e-9);
    // Too few steps for 1e-10: the residual check reports it instead of returning the iterate.
    assert!(matches!(
        spd_solve_conjugate_gradient(matrix, rhs, 2, 1e-10),
        Err(EstimatorError::NotConverged { iterations: 2, .. })
    ));
    let residual: Vec<f64> = (0..n * m)
        .map(|ij| {
            let (i, j) = (ij / m, ij % m);
            (0..n)
                .map(|k| a[i * n + k] * host_solution[k * m + j])
                .sum()
        })
        .collect();
    assert_close("A X = R", &residual, &r, 1e-10, 1e-10);
}

/// The gradient of a weighted KL decomposition (what a β-TCVAE loss backpropagates) agrees with
/// central finite differences in f64, for z, μ and log σ².
#[test]
fn kl_decomposition_gradient_matches_finite_differences() {
    use burn::prelude::*;
    let device = Device::flex().autodiff();
    let (batch, latent, n) = (6, 3, 100);
    let inputs = [
        normal_samples(batch * latent, 51),
        normal_samples(batch * latent, 52),
        normal_samples(batch * latent, 53)
            .iter()
            .map(|v| 0.3 * v - 0.5)
            .collect(),
    ];
    for estimator in [TcEstimator::Mws, TcEstimator::MssPaper] {
        let loss = |values: &[Vec<f64>; 3], track: bool| {
            let tensors: Vec<Tensor<2>> = values
                .iter()
                .map(|v| {
                    let t = tensor_flat(v, [batch, latent], DType::F64, &device);
                    if track { t.require_grad() } else { t }
                })
                .collect();
            let d = kl_decomposition(
                tensors[0].clone(),
                tensors[1].clone(),
                tensors[2].clone(),
                n,
                estimator,
            )
            .expect("valid");
            let total = d.mutual_information.mul_scalar(0.5)
                + d.total_correlation.mul_scalar(2.0)
                + d.dimension_wise_kl.mul_scalar(0.25);
            (total, tensors)
        };
        let (total, tensors) = loss(&inputs, true);
        let gradients = total.backward();
        for (which, tensor) in tensors.iter().enumerate() {
            let analytic = host(tensor.grad(&gradients).expect("tracked"));
            for index in [0, 4, 11, 17] {
                let step = 1e-5;
                let mut plus = inputs.clone();
                plus[which][index] += step;
                let mut minus = inputs.clone();
                minus[which][index] -= step;
                let numeric =
                    (scalar(loss(&plus, false).0) - scalar(loss(&minus, false).0)) / (2.0 * step);
                assert_close(
                    &format!("{estimator:?} d/d(input {which})[{index}]"),
                    &[analytic[index]],
                    &[numeric],
                    1e-6,
                    1e-8,
                );
            }
        }
    }
}
