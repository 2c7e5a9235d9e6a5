//! Symmetries of the kernel score estimators (property tests) and the gradient of MVEB's
//! entropy surrogate (autodiff check).

mod common;

use burn::prelude::*;
use burn::tensor::DType;
use common::{assert_close, host, normal_samples, tensor_flat, unit_rows};
use infobound_estimators::{
    RbfSteinConfig, RbfSteinEstimator, ScoreEstimate, ScoreSolver, VmfScoreConfig,
    VmfScoreEstimator, VmfScoreVariant,
};
use proptest::prelude::*;

/// A score estimator under test, as a closure from samples to an estimate.
type Estimate = Box<dyn Fn(Tensor<2>) -> ScoreEstimate>;

/// The three estimators under test, by name.
fn estimators() -> Vec<(&'static str, Estimate)> {
    let mveb = VmfScoreEstimator::new(VmfScoreConfig::default()).expect("valid");
    let sphere = VmfScoreEstimator::new(VmfScoreConfig {
        variant: VmfScoreVariant::SphereStein,
        ..VmfScoreConfig::default()
    })
    .expect("valid");
    let on_device = |config: VmfScoreConfig| {
        VmfScoreEstimator::new(VmfScoreConfig {
            solver: ScoreSolver::DeviceF64,
            ..config
        })
        .expect("valid")
    };
    let mveb_device = on_device(VmfScoreConfig::default());
    let sphere_device = on_device(VmfScoreConfig {
        variant: VmfScoreVariant::SphereStein,
        ..VmfScoreConfig::default()
    });
    let rbf = RbfSteinEstimator::new(RbfSteinConfig::default()).expect("valid");
    vec![
        ("mveb", Box::new(move |z| mveb.estimate(z).expect("valid"))),
        (
            "sphere",
            Box::new(move |z| sphere.estimate(z).expect("valid")),
        ),
        (
            "mveb_device",
            Box::new(move |z| mveb_device.estimate(z).expect("valid")),
        ),
        (
            "sphere_device",
            Box::new(move |z| sphere_device.estimate(z).expect("valid")),
        ),
        ("rbf", Box::new(move |z| rbf.estimate(z).expect("valid"))),
    ]
}

/// Z R for the rotation R = H(u) H(v), a product of two Householder reflections
/// H(w) = I − 2 w wᵀ / ‖w‖², applied row by row.
fn rotate(z: &[f64], dim: usize, u: &[f64], v: &[f64]) -> Vec<f64> {
    let reflect = |row: &mut [f64], w: &[f64]| {
        let ww: f64 = w.iter().map(|x| x * x).sum();
        let rw: f64 = row.iter().zip(w).map(|(a, b)| a * b).sum();
        row.iter_mut()
            .zip(w)
            .for_each(|(a, b)| *a -= 2.0 * rw / ww * b);
    };
    let mut out = z.to_vec();
    for row in out.chunks_exact_mut(dim) {
        reflect(row, u);
        reflect(row, v);
    }
    out
}

fn scale_of(values: &[f64]) -> f64 {
    values.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Integration tests have no lib.rs next to them to persist failures beside.
        failure_persistence: None,
        ..ProptestConfig::with_cases(24)
    })]

    /// Permuting the rows of Z permutes the rows of S; the width is unchanged.
    #[test]
    fn score_is_permutation_equivariant(
        batch in 4usize..24,
        dim in 2usize..32,
        seed in 0u64..1_000_000,
        rotation in 1usize..23,
    ) {
        let device = common::device();
        let z = unit_rows(&normal_samples(batch * dim, seed), dim);
        // A cyclic shift by `rotation` rows followed by swapping the first two rows.
        let mut order: Vec<usize> = (0..batch).map(|i| (i + rotation) % batch).collect();
        order.swap(0, 1);
        let permuted: Vec<f64> = order.iter().flat_map(|&i| z[i * dim..(i + 1) * dim].to_vec()).collect();
        for (name, estimate) in estimators() {
            let base = estimate(tensor_flat(&z, [batch, dim], DType::F64, &device));
            let moved = estimate(tensor_flat(&permuted, [batch, dim], DType::F64, &device));
            let base_score = host(base.score.clone());
            let expected: Vec<f64> = order.iter().flat_map(|&i| base_score[i * dim..(i + 1) * dim].to_vec()).collect();
            let tol = 1e-9 * scale_of(&expected);
            assert_close(&format!("{name} permuted score"), &host(moved.score.clone()), &expected, 1e-9, tol);
            prop_assert!((base.kernel_width_value().unwrap() - moved.kernel_width_value().unwrap()).abs() < 1e-12);
        }
    }

    /// Rotating Z → Z R rotates S → S R (all three estimators depend on Z only through inner
    /// products and are linear in Z otherwise).
    #[test]
    fn score_is_rotation_equivariant(
        batch in 4usize..24,
        dim in 2usize..32,
        seed in 0u64..1_000_000,
    ) {
        let device = common::device();
        let z = unit_rows(&normal_samples(batch * dim, seed), dim);
        let u = normal_samples(dim, seed + 1);
        let v = normal_samples(dim, seed + 2);
        let rotated = rotate(&z, dim, &u, &v);
        for (name, estimate) in estimators() {
            let base = estimate(tensor_flat(&z, [batch, dim], DType::F64, &device));
            let moved = estimate(tensor_flat(&rotated, [batch, dim], DType::F64, &device));
            let expected = rotate(&host(base.score.clone()), dim, &u, &v);
            let tol = 1e-8 * scale_of(&expected);
            assert_close(&format!("{name} rotated score"), &host(moved.score.clone()), &expected, 1e-8, tol);
            prop_assert!((base.kernel_width_value().unwrap() - moved.kernel_width_value().unwrap()).abs() < 1e-9);
        }
    }
}

/// d/dz of mean_i ⟨−sg(S_i), z_i⟩ is −S / B, through Burn's autodiff.
#[test]
fn entropy_surrogate_gradient_is_minus_score_over_batch() {
    let device = Device::flex().autodiff();
    let (batch, dim) = (12, 5);
    let values = unit_rows(&normal_samples(batch * dim, 77), dim);
    for (name, estimate) in estimators() {
        let z = tensor_flat(&values, [batch, dim], DType::F64, &device).require_grad();
        let estimate = estimate(z.clone());
        let surrogate = estimate.entropy_surrogate(z.clone()).expect("shape");
        let gradients = surrogate.backward();
        let gradient = host(z.grad(&gradients).expect("z is tracked"));
        let expected: Vec<f64> = host(estimate.score)
            .iter()
            .map(|s| -s / batch as f64)
            .collect();
        assert_close(
            &format!("{name} gradient"),
            &gradient,
            &expected,
            1e-12,
            1e-12,
        );
    }
}

/// A fixed width overrides the data-driven one and is reported back.
#[test]
fn fixed_width_is_used_and_reported() {
    let device = common::device();
    let (batch, dim) = (10, 4);
    let z = tensor_flat(
        &unit_rows(&normal_samples(batch * dim, 5), dim),
        [batch, dim],
        DType::F64,
        &device,
    );
    let fixed = VmfScoreEstimator::new(VmfScoreConfig {
        fixed_width: Some(0.37),
        ..VmfScoreConfig::default()
    })
    .expect("valid");
    let free = VmfScoreEstimator::new(VmfScoreConfig::default()).expect("valid");
    let with_fixed = fixed.estimate(z.clone()).expect("valid");
    assert_eq!(with_fixed.kernel_width_value().unwrap(), 0.37);
    let with_free = free.estimate(z).expect("valid");
    assert_ne!(with_free.kernel_width_value().unwrap(), 0.37);
    assert_ne!(host(with_fixed.score), host(with_free.score));
}

/// Which estimator a naive reference computes.
#[derive(Clone, Copy, Debug)]
enum Naive {
    Mveb,
    Sphere,
    Rbf,
}

/// The estimators' definitions written out naively from their equations (sort for the width,
/// Gaussian elimination with partial pivoting for the solve): an independent check of the
/// kernels, the Stein terms and both solve orders of the crate (d < B solves for Ψ, d > B solves
/// for the B×B mixing matrix first).
fn naive_score(z: &[f64], batch: usize, dim: usize, kind: Naive) -> (Vec<f64>, f64) {
    let row = |i: usize| &z[i * dim..(i + 1) * dim];
    let dot = |i: usize, j: usize| -> f64 { row(i).iter().zip(row(j)).map(|(a, b)| a * b).sum() };
    let sq_dist = |i: usize, j: usize| -> f64 {
        row(i)
            .iter()
            .zip(row(j))
            .map(|(a, b)| (a - b).powi(2))
            .sum()
    };
    // Pairwise products and distances once, so that wide batches stay cheap.
    let dots: Vec<f64> = (0..batch * batch)
        .map(|ij| dot(ij / batch, ij % batch))
        .collect();
    let sq_dists: Vec<f64> = (0..batch * batch)
        .map(|ij| sq_dist(ij / batch, ij % batch))
        .collect();
    let dot = |i: usize, j: usize| dots[i * batch + j];
    let sq_dist = |i: usize, j: usize| sq_dists[i * batch + j];
    let mut spread: Vec<f64> = (0..batch * batch)
        .map(|ij| match kind {
            Naive::Rbf => sq_dist(ij / batch, ij % batch).sqrt(),
            _ => 1.0 - dot(ij / batch, ij % batch),
        })
        .collect();
    spread.sort_by(|a, b| b.total_cmp(a));
    let min_width = if matches!(kind, Naive::Rbf) {
        1e-3
    } else {
        0.1
    };
    let width = spread[batch * batch / 2 - 1].max(min_width);
    let kernels: Vec<f64> = (0..batch * batch)
        .map(|ij| {
            let (i, j) = (ij / batch, ij % batch);
            match kind {
                Naive::Rbf => (-sq_dist(i, j) / (2.0 * width * width)).exp(),
                _ => (dot(i, j) / width).exp(),
            }
        })
        .collect();
    let kernel = |i: usize, j: usize| kernels[i * batch + j];
    let stein = |i: usize, t: usize| -> f64 {
        (0..batch)
            .map(|j| {
                let k = kernel(i, j);
                match kind {
                    Naive::Mveb => k * z[i * dim + t] / width,
                    Naive::Sphere => {
                        k * z[i * dim + t] / width
                            - k * (dot(j, i) * z[j * dim + t] / width
                                + (dim as f64 - 1.0) * z[j * dim + t])
                    }
                    Naive::Rbf => k * (z[i * dim + t] - z[j * dim + t]) / (width * width),
                }
            })
            .sum()
    };
    // Augmented system [K + ηI | Ψ].
    let columns = batch + dim;
    let mut system: Vec<f64> = (0..batch * columns)
        .map(|ic| {
            let (i, c) = (ic / columns, ic % columns);
            if c < batch {
                kernel(i, c) + if i == c { 0.01 } else { 0.0 }
            } else {
                stein(i, c - batch)
            }
        })
        .collect();
    for col in 0..batch {
        let pivot = (col..batch)
            .max_by(|&a, &b| {
                system[a * columns + col]
                    .abs()
                    .total_cmp(&system[b * columns + col].abs())
            })
            .expect("rows");
        for c in 0..columns {
            system.swap(col * columns + c, pivot * columns + c);
        }
        for r in 0..batch {
            if r != col {
                let factor = system[r * columns + col] / system[col * columns + col];
                for c in 0..columns {
                    system[r * columns + c] -= factor * system[col * columns + c];
                }
            }
        }
    }
    let score = (0..batch * dim)
        .map(|ij| {
            let (i, j) = (ij / dim, ij % dim);
            -system[i * columns + batch + j] / system[i * columns + i]
        })
        .collect();
    (score, width)
}

#[test]
fn scores_match_naive_implementations_for_both_solve_orders() {
    let device = common::device();
    let estimators = estimators();
    for (name, estimate) in &estimators {
        let kind = match *name {
            "mveb" | "mveb_device" => Naive::Mveb,
            "sphere" | "sphere_device" => Naive::Sphere,
            _ => Naive::Rbf,
        };
        // The last two are wide enough (B·d > 2¹⁵, d > B) for the host path to multiply Z in
        // column blocks (two and four blocks, split in two halves).
        for (batch, dim, seed) in [
            (6, 20, 1),
            (20, 6, 2),
            (8, 8, 3),
            (5, 64, 4),
            (6, 6000, 5),
            (9, 12_000, 6),
        ] {
            let z = unit_rows(&normal_samples(batch * dim, seed), dim);
            let (expected, width) = naive_score(&z, batch, dim, kind);
            let estimate = estimate(tensor_flat(&z, [batch, dim], DType::F64, &device));
            assert_close(
                &format!("{name} width"),
                &[estimate.kernel_width_value().expect("width")],
                &[width],
                1e-12,
                0.0,
            );
            let tol = 1e-9 * scale_of(&expected);
            let what = format!("{name} score {batch}x{dim}");
            assert_close(&what, &host(estimate.score), &expected, 1e-9, tol);
        }
    }
}

/// The host path widens f32 samples exactly and computes in f64 either way, so f32 input gives
/// the f64 result of the same (f32-representable) samples rounded once to f32: bit for bit, on
/// the whole-matrix path and on the column-block path (B·d > 2¹⁵, d > B).
#[test]
fn host_scores_of_f32_samples_are_the_f64_scores_rounded() {
    let device = common::device();
    let host_estimators = estimators()
        .into_iter()
        .filter(|(name, _)| !name.ends_with("_device"));
    for (name, estimate) in host_estimators {
        for (batch, dim, seed) in [(12, 40, 7), (40, 12, 8), (8, 9000, 9)] {
            let z = unit_rows(&normal_samples(batch * dim, seed), dim);
            let rounded: Vec<f64> = z.iter().map(|&v| f64::from(v as f32)).collect();
            let single = estimate(tensor_flat(&rounded, [batch, dim], DType::F32, &device));
            let double = estimate(tensor_flat(&rounded, [batch, dim], DType::F64, &device));
            assert_eq!(single.score.dtype(), DType::F32);
            let expected: Vec<f64> = host(double.score)
                .iter()
                .map(|&v| f64::from(v as f32))
                .collect();
            assert_eq!(
                host(single.score),
                expected,
                "{name} {batch}x{dim}: f32 input differs from the rounded f64 result"
            );
        }
    }
}

/// The device solvers' default step count (scaled with B) brings the f64 conjugate-gradient
/// score to the host Cholesky solve's within 1e-7 on Gaussian unit rows, where a fixed small
/// count does not (the check can fail).
#[test]
fn device_default_steps_reach_the_host_solve() {
    let device = common::device();
    let host_estimator = VmfScoreEstimator::new(VmfScoreConfig::default()).expect("valid");
    let on_device = |device_iterations| {
        VmfScoreEstimator::new(VmfScoreConfig {
            solver: ScoreSolver::DeviceF64,
            device_iterations,
            ..VmfScoreConfig::default()
        })
        .expect("valid")
    };
    for (batch, dim, seed) in [(64, 32, 10), (512, 128, 11), (96, 400, 12)] {
        let z = tensor_flat(
            &unit_rows(&normal_samples(batch * dim, seed), dim),
            [batch, dim],
            DType::F64,
            &device,
        );
        let expected = host(host_estimator.estimate(z.clone()).expect("valid").score);
        let floor = 1e-3 * scale_of(&expected);
        let error = |estimator: VmfScoreEstimator| {
            common::max_rel_error(
                &host(estimator.estimate(z.clone()).expect("valid").score),
                &expected,
                floor,
            )
        };
        let default_error = error(on_device(None));
        assert!(
            default_error <= 1e-7,
            "{batch}x{dim}: {} default steps leave {default_error:e}",
            VmfScoreConfig::default().device_iterations_for(batch)
        );
        let few_error = error(on_device(Some(8)));
        assert!(
            few_error > 1e-4,
            "{batch}x{dim}: 8 steps already reach {few_error:e}"
        );
    }
}

/// For samples of N(0, I) the true score is −z; the RBF Stein estimator must point that way.
#[test]
fn rbf_score_of_a_standard_normal_points_to_minus_z() {
    let device = common::device();
    let (batch, dim) = (400, 2);
    let z = normal_samples(batch * dim, 8);
    let rbf = RbfSteinEstimator::new(RbfSteinConfig::default()).expect("valid");
    let score = host(
        rbf.estimate(tensor_flat(&z, [batch, dim], DType::F64, &device))
            .expect("valid")
            .score,
    );
    let mean_cosine = (0..batch)
        .map(|i| {
            let (s, x) = (&score[i * dim..(i + 1) * dim], &z[i * dim..(i + 1) * dim]);
            let dot: f64 = s.iter().zip(x).map(|(a, b)| -a * b).sum();
            let norms = s.iter().map(|v| v * v).sum::<f64>().sqrt()
                * x.iter().map(|v| v * v).sum::<f64>().sqrt();
            dot / norms
        })
        .sum::<f64>()
        / batch as f64;
    assert!(
        mean_cosine > 0.9,
        "mean cosine between S and −z is {mean_cosine}"
    );
}

/// Configs deserialise with MVEB's defaults for missing fields, so run files can stay short.
#[test]
fn configs_deserialise_with_paper_defaults() {
    let empty: VmfScoreConfig = serde_json::from_str("{}").expect("valid JSON");
    assert_eq!(empty, VmfScoreConfig::default());
    assert_eq!(
        (empty.eta, empty.min_width, empty.fixed_width),
        (0.01, 0.1, None)
    );
    let sphere: VmfScoreConfig =
        serde_json::from_str(r#"{"variant": "sphere_stein", "fixed_width": 0.5}"#).expect("valid");
    assert_eq!(sphere.variant, VmfScoreVariant::SphereStein);
    assert_eq!(sphere.fixed_width, Some(0.5));
    let rbf: RbfSteinConfig = serde_json::from_str(r#"{"eta": 0.1}"#).expect("valid JSON");
    assert_eq!(rbf.eta, 0.1);
    assert_eq!(rbf.min_width, RbfSteinConfig::default().min_width);
}
