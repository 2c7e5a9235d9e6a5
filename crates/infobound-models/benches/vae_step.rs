//! One training step (forward, loss, backward, Adam) of the VAE family, per objective, image
//! channels and batch size — the workload of `../shared/bench/torch_reference.py --sections vae`.
//! The backend comes from `INFOBOUND_DEVICE` (default flex), e.g. `INFOBOUND_DEVICE=ndarray
//! cargo bench -p infobound-models --features infobound-backend/ndarray --profile dev`.
// criterion_group! generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::time::Duration;

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use infobound_backend::{BackendSpec, select_device};
use infobound_models::objectives::{AlphaTcvaeConfig, BetaTcvaeConfig, BetaVaeConfig};
use infobound_models::{Likelihood, ObjectiveConfig, StepContext, VaeConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn device() -> Device {
    let name = std::env::var("INFOBOUND_DEVICE").unwrap_or_else(|_| "flex".into());
    let spec: BackendSpec = name.parse().expect("a valid INFOBOUND_DEVICE");
    select_device(&spec)
        .expect("a compiled-in backend")
        .autodiff()
}

fn vae_step(c: &mut Criterion) {
    let device = device();
    let mut group = c.benchmark_group("vae_step");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    let objectives = [
        ObjectiveConfig::BetaVae(BetaVaeConfig::default()),
        ObjectiveConfig::BetaTcvae(BetaTcvaeConfig::default()),
        ObjectiveConfig::AlphaTcvae(AlphaTcvaeConfig::default()),
    ];
    let quick = std::env::var("INFOBOUND_BENCH_QUICK").is_ok();
    for (channels, likelihood) in [(1, Likelihood::Bernoulli), (3, Likelihood::Gaussian)] {
        for batch in [64usize, 256] {
            if quick && batch == 256 {
                continue;
            }
            for objective in &objectives {
                let config = VaeConfig {
                    channels,
                    likelihood,
                    ..VaeConfig::default()
                };
                let mut vae = config.init(&device).expect("valid config");
                let mut optimizer = AdamConfig::new().init();
                let x = Tensor::<4>::random(
                    [batch, channels, 64, 64],
                    Distribution::Uniform(0.0, 1.0),
                    &device,
                );
                let eps = Tensor::<2>::random([batch, 10], Distribution::Normal(0.0, 1.0), &device);
                let context = StepContext {
                    step: 100,
                    dataset_size: 480_000,
                };
                let id = BenchmarkId::new(objective.name(), format!("{channels}ch_b{batch}"));
                group.bench_function(id, |b| {
                    b.iter(|| {
                        let forward = vae.forward(x.clone(), eps.clone()).expect("shapes");
                        let out = objective
                            .vae_loss(&forward, likelihood, &context, None)
                            .expect("loss");
                        let grads = GradientsParams::from_grads(out.loss.backward(), &vae);
                        vae = optimizer.step(1e-4, vae.clone(), grads);
                        // Wait for the device so asynchronous backends are timed honestly.
                        let _: f32 = out.terms[0].1.clone().into_scalar();
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, vae_step);
criterion_main!(benches);
