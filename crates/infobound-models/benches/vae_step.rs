//! One training step (forward, loss, backward, Adam) of the VAE family, per objective, image
//! channels and batch size — the workload of `../shared/bench/torch_reference.py --sections vae`.
//! The backend comes from `INFOBOUND_DEVICE` (default flex), e.g. `INFOBOUND_DEVICE=ndarray
//! cargo bench -p infobound-models --features infobound-backend/ndarray --profile dev`.
// criterion_group! generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::time::Duration;

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use infobound_backend::{BackendSpec, select_device};
use infobound_models::objectives::{
    AlphaTcvaeConfig, AnnealedBetaVaeConfig, BetaTcvaeConfig, BetaVaeConfig, Discriminator,
    FactorVaeConfig, permute_dims,
};
use infobound_models::{Architecture, Likelihood, ObjectiveConfig, StepContext, Vae, VaeConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn device() -> Device {
    let name = std::env::var("INFOBOUND_DEVICE").unwrap_or_else(|_| "flex".into());
    let spec: BackendSpec = name.parse().expect("a valid INFOBOUND_DEVICE");
    select_device(&spec)
        .expect("a compiled-in backend")
        .autodiff()
}

/// One Adam step of `vae` under `objective` (plus, for FactorVAE, the discriminator's own Adam
/// step on permuted codes, as the trainer does).
struct Workload {
    vae: Vae,
    optimizer: ModuleOptimizer,
    discriminator: Option<(Discriminator, ModuleOptimizer)>,
    objective: ObjectiveConfig,
    likelihood: Likelihood,
    x: Tensor<4>,
    eps: Tensor<2>,
    rng: ChaCha8Rng,
}

impl Workload {
    fn new(
        architecture: Architecture,
        channels: usize,
        likelihood: Likelihood,
        batch: usize,
        objective: &ObjectiveConfig,
        device: &Device,
    ) -> Self {
        let config = VaeConfig {
            architecture,
            channels,
            likelihood,
            ..VaeConfig::default()
        };
        let discriminator = match objective {
            ObjectiveConfig::FactorVae(c) => Some((
                c.discriminator(config.latent_dim, config.layers, device),
                AdamConfig::new().init(),
            )),
            _ => None,
        };
        Self {
            vae: config.init(device).expect("valid config"),
            optimizer: AdamConfig::new().init(),
            discriminator,
            objective: objective.clone(),
            likelihood,
            x: Tensor::<4>::random(
                [batch, channels, 64, 64],
                Distribution::Uniform(0.0, 1.0),
                device,
            ),
            eps: Tensor::<2>::random([batch, 10], Distribution::Normal(0.0, 1.0), device),
            rng: ChaCha8Rng::seed_from_u64(0),
        }
    }

    fn step(&mut self) {
        let context = StepContext {
            step: 100,
            batch_size: 64,
            dataset_size: 480_000,
        };
        let forward = self
            .vae
            .forward(self.x.clone(), self.eps.clone())
            .expect("shapes");
        let out = self
            .objective
            .vae_loss(
                &forward,
                self.likelihood,
                &context,
                self.discriminator.as_ref().map(|(d, _)| d),
            )
            .expect("loss");
        let grads = GradientsParams::from_grads(out.loss.backward(), &self.vae);
        self.vae = self.optimizer.step(1e-4, self.vae.clone(), grads);
        if let Some((d, mut o)) = self.discriminator.take() {
            let z = forward.z.detach();
            let permuted = permute_dims(z.clone(), &mut self.rng).expect("codes");
            let loss = d.loss(z, permuted).expect("codes");
            let grads = GradientsParams::from_grads(loss.backward(), &d);
            self.discriminator = Some((o.step(1e-4, d, grads), o));
        }
        // Wait for the device so asynchronous backends are timed honestly.
        let _: f32 = out.terms[0].1.clone().into_scalar();
    }
}

fn vae_step(c: &mut Criterion) {
    // As the `infobound` binary runs; `MIMALLOC_PURGE_DELAY=10` measures mimalloc's default.
    infobound_backend::keep_freed_memory();
    let device = device();
    let mut group = c.benchmark_group("vae_step");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    let objectives = [
        ObjectiveConfig::BetaVae(BetaVaeConfig::default()),
        ObjectiveConfig::AnnealedBetaVae(AnnealedBetaVaeConfig::default()),
        ObjectiveConfig::BetaTcvae(BetaTcvaeConfig::default()),
        ObjectiveConfig::FactorVae(FactorVaeConfig::default()),
        ObjectiveConfig::AlphaTcvae(AlphaTcvaeConfig::default()),
    ];
    let quick = std::env::var("INFOBOUND_BENCH_QUICK").is_ok();
    for (channels, likelihood) in [(1, Likelihood::Bernoulli), (3, Likelihood::Gaussian)] {
        for batch in [64usize, 256] {
            if quick && batch == 256 {
                continue;
            }
            for objective in &objectives {
                let mut workload = Workload::new(
                    Architecture::Burgess,
                    channels,
                    likelihood,
                    batch,
                    objective,
                    &device,
                );
                let id = BenchmarkId::new(objective.name(), format!("{channels}ch_b{batch}"));
                group.bench_function(id, |b| b.iter(|| workload.step()));
            }
        }
        // The authors' spatial-broadcast family, for its own objective only: every objective
        // shares the network cost measured above.
        if !quick {
            let objective = ObjectiveConfig::AlphaTcvae(AlphaTcvaeConfig::default());
            let mut workload = Workload::new(
                Architecture::SpatialBroadcast,
                channels,
                likelihood,
                64,
                &objective,
                &device,
            );
            let id = BenchmarkId::new("alpha_tcvae_spatial_broadcast", format!("{channels}ch_b64"));
            group.bench_function(id, |b| b.iter(|| workload.step()));
        }
    }
    group.finish();
}

criterion_group!(benches, vae_step);
criterion_main!(benches);
