//! The vMF score's device path ([`ScoreSolver::DeviceInputDtype`]: conjugate gradients with
//! tensor ops, no host read) on wgpu, against the host path ([`ScoreSolver::Host`], f64 on the
//! CPU) on the same f32 samples. On a machine without a GPU `cargo xtask ci --full` runs it on
//! Mesa's lavapipe (`CUBECL_WGPU_DEFAULT_DEVICE=Cpu`); a missing adapter is an error only when
//! `INFOBOUND_EXPECT_WGPU=1`.
#![cfg(all(feature = "wgpu", feature = "flex"))]

use burn::tensor::{Device, Tensor, TensorData};
use infobound_backend::{BackendSpec, probe_device};
use infobound_estimators::{ScoreSolver, VmfScoreConfig, VmfScoreEstimator, VmfScoreVariant};

/// Unit-norm rows from a fixed integer recurrence (no random-number crate needed), as f32.
fn unit_rows(batch: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut values: Vec<f32> = (0..batch * dim)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32) / ((1u64 << 24) as f32) - 0.5
        })
        .collect();
    for row in values.chunks_exact_mut(dim) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        row.iter_mut().for_each(|v| *v /= norm);
    }
    values
}

/// The score (row-major, as f64) and the kernel width of `config` on `z` placed on `device`.
fn estimate(
    config: VmfScoreConfig,
    z: &[f32],
    shape: [usize; 2],
    device: &Device,
) -> (Vec<f64>, f64) {
    let estimator = VmfScoreEstimator::new(config).expect("valid config");
    let z = Tensor::<2>::from_data(TensorData::new(z.to_vec(), shape), device);
    let estimate = estimator.estimate(z).expect("valid samples");
    let width = estimate.kernel_width_value().expect("width readback");
    let score = estimate
        .score
        .try_into_vec_as::<f64>()
        .expect("score readback");
    (score, width)
}

/// Both solve orders (d < B: d right-hand sides; d > B: the B × B mixing matrix, then Z) and
/// both Stein identities. Tolerance: the device path computes in f32, whose kernel-matrix
/// rounding (≈ 6e-8 relative per entry) the solve amplifies by the condition number of
/// K + ηI (≈ 10²–10³ for such batches), compared entry by entry relative to
/// max(|S_ij|, 1e-3 · max|S|): the reference tests hold the same f32 path to 5e-3 on the
/// well-conditioned reference batches, and so does this test.
#[test]
fn vmf_device_solver_on_wgpu_matches_the_host_path() {
    let spec: BackendSpec = "wgpu:cpu".parse().expect("spec");
    let gpu = match probe_device(&spec) {
        Ok(device) => device,
        Err(e) if std::env::var("INFOBOUND_EXPECT_WGPU").as_deref() != Ok("1") => {
            eprintln!("no wgpu adapter here ({e}); set INFOBOUND_EXPECT_WGPU=1 to require one");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let cpu = Device::flex();
    for (batch, dim, seed) in [(64, 32, 1), (16, 40, 2)] {
        let z = unit_rows(batch, dim, seed);
        for variant in [VmfScoreVariant::Mveb, VmfScoreVariant::SphereStein] {
            let config = VmfScoreConfig {
                variant,
                ..VmfScoreConfig::default()
            };
            let (host, host_width) = estimate(config, &z, [batch, dim], &cpu);
            let device_config = VmfScoreConfig {
                solver: ScoreSolver::DeviceInputDtype,
                ..config
            };
            let (device, device_width) = estimate(device_config, &z, [batch, dim], &gpu);
            let what = format!("{variant:?} {batch}x{dim}");
            assert!(
                (device_width - host_width).abs() <= 1e-6 * host_width,
                "{what} width: wgpu {device_width}, host {host_width}"
            );
            let scale = host.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let error = device
                .iter()
                .zip(&host)
                .map(|(d, h)| (d - h).abs() / h.abs().max(1e-3 * scale))
                .fold(0.0, f64::max);
            eprintln!("{what}: max relative error wgpu vs host {error:e}");
            assert!(error <= 5e-3, "{what}: max relative error {error} > 5e-3");
        }
    }
}
