//! Bad input yields a typed `EstimatorError`, never a panic.

mod common;

use burn::prelude::*;
use burn::tensor::DType;
use common::{normal_samples, tensor_flat, unit_rows};
use infobound_estimators::{
    AlphaTcWeights, CebVariant, CebWeighting, EstimatorError, MssLayout, RbfSteinConfig,
    RbfSteinEstimator, TcEstimator, VmfScoreConfig, VmfScoreEstimator, alpha_tc_regulariser,
    annealed_capacity, capacity_penalty, ceb_term, kl_decomposition, kl_to_standard_normal,
    log_normal_diag, logsumexp, mss_log_importance_weights, spd_solve,
    spd_solve_conjugate_gradient, spd_solve_tensor_ops, vib_term,
};

fn random(shape: [usize; 2], seed: u64) -> Tensor<2> {
    let device = common::device();
    tensor_flat(
        &normal_samples(shape[0] * shape[1], seed),
        shape,
        DType::F32,
        &device,
    )
}

fn with_value(shape: [usize; 2], index: usize, value: f64) -> Tensor<2> {
    let mut values = normal_samples(shape[0] * shape[1], 9);
    values[index] = value;
    tensor_flat(&values, shape, DType::F32, &common::device())
}

#[test]
fn kl_decomposition_rejects_bad_input() {
    let shape = [8, 3];
    let ok = || random(shape, 1);
    let decompose = |z, mu, logvar, n| kl_decomposition(z, mu, logvar, n, TcEstimator::MssPaper);
    assert!(matches!(
        decompose(ok(), random([8, 4], 2), ok(), 100),
        Err(EstimatorError::ShapeMismatch { what: "mu", .. })
    ));
    assert!(matches!(
        decompose(ok(), ok(), random([7, 3], 2), 100),
        Err(EstimatorError::ShapeMismatch { what: "logvar", .. })
    ));
    assert!(matches!(
        decompose(random([1, 3], 1), random([1, 3], 2), random([1, 3], 3), 100),
        Err(EstimatorError::BatchTooSmall {
            batch: 1,
            minimum: 2
        })
    ));
    assert!(matches!(
        decompose(ok(), ok(), ok(), 7),
        Err(EstimatorError::DatasetSmallerThanBatch {
            dataset_size: 7,
            batch: 8
        })
    ));
    for (what, bad) in [("z", 0), ("mu", 1), ("logvar", 2)] {
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut args = [ok(), ok(), ok()];
            args[bad] = with_value(shape, 5, value);
            let [z, mu, logvar] = args;
            assert_eq!(
                decompose(z, mu, logvar, 100).err(),
                Some(EstimatorError::NonFinite { what }),
                "{what} = {value}"
            );
        }
    }
    assert!(matches!(
        mss_log_importance_weights(1, 10, MssLayout::Paper),
        Err(EstimatorError::BatchTooSmall { .. })
    ));
    assert!(matches!(
        mss_log_importance_weights(10, 9, MssLayout::Released),
        Err(EstimatorError::DatasetSmallerThanBatch { .. })
    ));
}

#[test]
fn gaussian_helpers_reject_mismatched_shapes() {
    assert!(matches!(
        log_normal_diag(random([4, 2], 1), random([4, 3], 2), random([4, 2], 3)),
        Err(EstimatorError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        kl_to_standard_normal(random([4, 2], 1), random([5, 2], 2)),
        Err(EstimatorError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        logsumexp(random([4, 2], 1), 2),
        Err(EstimatorError::InvalidParameter { name: "dim", .. })
    ));
}

#[test]
fn alpha_tc_rejects_bad_parameters() {
    for alpha in [-0.1, 1.0, 1.5, f64::NAN] {
        assert!(
            matches!(
                AlphaTcWeights::new(alpha, 1.0, 10, CebWeighting::default()),
                Err(EstimatorError::InvalidParameter { name: "alpha", .. })
            ),
            "alpha = {alpha}"
        );
    }
    assert!(matches!(
        AlphaTcWeights::new(0.5, 1.0, 1, CebWeighting::default()),
        Err(EstimatorError::InvalidParameter {
            name: "latent_dim",
            ..
        })
    ));
    assert!(matches!(
        AlphaTcWeights::new(0.5, -1.0, 4, CebWeighting::default()),
        Err(EstimatorError::InvalidParameter { name: "beta", .. })
    ));
    assert!(matches!(
        ceb_term(random([4, 1], 1), random([4, 1], 2), CebVariant::default()),
        Err(EstimatorError::InvalidParameter {
            name: "latent_dim",
            ..
        })
    ));
    assert!(matches!(
        ceb_term(random([4, 3], 1), random([4, 2], 2), CebVariant::default()),
        Err(EstimatorError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        vib_term(random([4, 3], 1), random([3, 3], 2)),
        Err(EstimatorError::ShapeMismatch { .. })
    ));
    let kl = random([4, 3], 1).sum_dim(1).squeeze_dim::<1>(1);
    assert!(matches!(
        capacity_penalty(kl, -1.0),
        Err(EstimatorError::InvalidParameter {
            name: "capacity",
            ..
        })
    ));
    assert!(annealed_capacity(f64::NAN, 1, 1).is_err());
    let weights = AlphaTcWeights::new(0.5, 1.0, 3, CebWeighting::default()).expect("valid");
    assert!(
        alpha_tc_regulariser(
            random([4, 3], 1),
            random([4, 2], 2),
            weights,
            CebVariant::default(),
            0.0
        )
        .is_err()
    );
}

#[test]
fn score_estimators_reject_bad_input_and_config() {
    let vmf = VmfScoreEstimator::new(VmfScoreConfig::default()).expect("valid");
    let rbf = RbfSteinEstimator::new(RbfSteinConfig::default()).expect("valid");
    let device = common::device();
    let unit = |batch: usize, dim: usize| {
        tensor_flat(
            &unit_rows(&normal_samples(batch * dim, 3), dim),
            [batch, dim],
            DType::F32,
            &device,
        )
    };
    assert!(matches!(
        vmf.estimate(unit(1, 4)),
        Err(EstimatorError::BatchTooSmall { .. })
    ));
    assert!(matches!(
        rbf.estimate(unit(1, 4)),
        Err(EstimatorError::BatchTooSmall { .. })
    ));
    assert!(matches!(
        vmf.estimate(unit(6, 4).mul_scalar(2.0)),
        Err(EstimatorError::NotUnitNorm { row: 0, .. })
    ));
    let mut values = unit_rows(&normal_samples(24, 3), 4);
    values[7] = f64::NAN;
    let with_nan = tensor_flat(&values, [6, 4], DType::F32, &device);
    assert_eq!(
        vmf.estimate(with_nan.clone()).err(),
        Some(EstimatorError::NonFinite { what: "z" })
    );
    assert_eq!(
        rbf.estimate(with_nan).err(),
        Some(EstimatorError::NonFinite { what: "z" })
    );
    let estimate = vmf.estimate(unit(6, 4)).expect("valid");
    assert!(matches!(
        estimate.entropy_surrogate(unit(5, 4)),
        Err(EstimatorError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        estimate.tangential(unit(6, 3)),
        Err(EstimatorError::ShapeMismatch { .. })
    ));

    for config in [
        VmfScoreConfig {
            eta: 0.0,
            ..VmfScoreConfig::default()
        },
        VmfScoreConfig {
            min_width: -1.0,
            ..VmfScoreConfig::default()
        },
        VmfScoreConfig {
            fixed_width: Some(f64::INFINITY),
            ..VmfScoreConfig::default()
        },
    ] {
        assert!(matches!(
            VmfScoreEstimator::new(config),
            Err(EstimatorError::InvalidParameter { .. })
        ));
    }
    assert!(matches!(
        RbfSteinEstimator::new(RbfSteinConfig {
            eta: f64::NAN,
            ..RbfSteinConfig::default()
        }),
        Err(EstimatorError::InvalidParameter { name: "eta", .. })
    ));
}

#[test]
fn spd_solves_reject_bad_matrices() {
    let device = common::device();
    // Symmetric but indefinite: eigenvalues 3 and −1.
    let indefinite = tensor_flat(&[1.0, 2.0, 2.0, 1.0], [2, 2], DType::F64, &device);
    let rhs = tensor_flat(&[1.0, 1.0], [2, 1], DType::F64, &device);
    assert_eq!(
        spd_solve(indefinite.clone(), rhs.clone()).err(),
        Some(EstimatorError::NotPositiveDefinite { size: 2 })
    );
    assert_eq!(
        spd_solve_tensor_ops(indefinite, rhs.clone()).err(),
        Some(EstimatorError::NotPositiveDefinite { size: 2 })
    );
    let not_square = tensor_flat(&[1.0, 0.0, 0.0, 1.0, 0.0, 0.0], [2, 3], DType::F64, &device);
    assert!(matches!(
        spd_solve(not_square, rhs.clone()),
        Err(EstimatorError::ShapeMismatch { .. })
    ));
    let with_nan = tensor_flat(&[1.0, f64::NAN, f64::NAN, 1.0], [2, 2], DType::F64, &device);
    assert!(matches!(
        spd_solve(with_nan.clone(), rhs.clone()),
        Err(EstimatorError::NonFinite { .. })
    ));
    assert!(matches!(
        spd_solve_tensor_ops(with_nan.clone(), rhs.clone()),
        Err(EstimatorError::NonFinite { .. })
    ));
    assert!(matches!(
        spd_solve_conjugate_gradient(with_nan, rhs.clone(), 4, 1e-6),
        Err(EstimatorError::NonFinite { .. })
    ));
    // Conjugate gradients on an indefinite matrix need not fail loudly on their own: the
    // residual check is what catches it.
    let along_first_axis = tensor_flat(&[1.0, 0.0], [2, 1], DType::F64, &device);
    assert!(matches!(
        spd_solve_conjugate_gradient(swap_matrix(&device), along_first_axis, 4, 1e-6),
        Err(EstimatorError::NotConverged { .. })
    ));
    let spd = tensor_flat(&[2.0, 0.0, 0.0, 2.0], [2, 2], DType::F64, &device);
    assert!(matches!(
        spd_solve_conjugate_gradient(spd, rhs, 0, 1e-6),
        Err(EstimatorError::InvalidParameter {
            name: "iterations",
            ..
        })
    ));
}

/// A symmetric indefinite matrix (eigenvalues 1 and −1) on which conjugate gradients fail
/// for the right-hand side (1, 0): pᵀAp = 0 at the first step, so the guarded step is huge
/// and the residual does not shrink.
fn swap_matrix(device: &Device) -> Tensor<2> {
    tensor_flat(&[0.0, 1.0, 1.0, 0.0], [2, 2], DType::F64, device)
}
