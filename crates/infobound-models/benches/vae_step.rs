//! One training step (forward, loss, backward, Adam) of the VAE family, with its peak heap
//! memory ([`peak_memory`]), in two groups:
//! - `vae_step`: every objective on the Burgess networks, per image channels and batch size —
//!   the network cost is shared, so the objectives compare; its β-TCVAE rows are the workload
//!   of `../shared/bench/torch_reference.py --sections vae`.
//! - `vae_more`: the workloads of `torch_reference.py --sections vae_more`, each as that script
//!   runs it: the FactorVAE step (VAE step and discriminator step, batch 64, 1 and 3 channels)
//!   and the α-TCVAE step on the Burgess networks and on the authors' 3DShapes networks
//!   (spatial-broadcast decoder, their initialisation), 3 channels, batch 64.
//!
//! The backend comes from `INFOBOUND_DEVICE` (default flex), e.g. `INFOBOUND_DEVICE=ndarray
//! cargo bench -p infobound-models --features infobound-backend/ndarray --profile dev`.
//! `INFOBOUND_BENCH_QUICK=1` leaves out batch 256 and `vae_step`'s spatial-broadcast row.
// criterion_group! generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

mod peak_memory;

use std::time::Duration;

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Tensor};
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use infobound_backend::{BackendSpec, select_device};
use infobound_models::objectives::{
    AlphaTcvaeConfig, AnnealedBetaVaeConfig, BetaTcvaeConfig, BetaVaeConfig, Discriminator,
    FactorVaeConfig, permute_dims,
};
use infobound_models::{
    Architecture, Initialisation, Likelihood, ObjectiveConfig, StepContext, Vae, VaeConfig,
};
use peak_memory::{CountingAllocator, record_step};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator::new();

fn device() -> Device {
    let name = std::env::var("INFOBOUND_DEVICE").unwrap_or_else(|_| "flex".into());
    let spec: BackendSpec = name.parse().expect("a valid INFOBOUND_DEVICE");
    select_device(&spec)
        .expect("a compiled-in backend")
        .autodiff()
}

/// One Adam step of `vae` under `objective` (plus, for FactorVAE, the discriminator's own Adam
/// step on permuted codes, as `infobound-train`'s `VaeTrainer::train_step` does it).
struct Workload {
    vae: Vae,
    optimizer: ModuleOptimizer,
    learning_rate: f64,
    /// The discriminator, its Adam and its learning rate.
    discriminator: Option<(Discriminator, ModuleOptimizer, f64)>,
    objective: ObjectiveConfig,
    likelihood: Likelihood,
    x: Tensor<4>,
    eps: Tensor<2>,
    rng: ChaCha8Rng,
}

impl Workload {
    /// `pixels`: the law of the input images (the torch script's Bernoulli(0.2) images for the
    /// Bernoulli likelihood of `vae_more`, uniform ones elsewhere).
    fn new(
        config: VaeConfig,
        batch: usize,
        objective: &ObjectiveConfig,
        learning_rate: f64,
        pixels: Distribution,
        device: &Device,
    ) -> Self {
        let discriminator = match objective {
            // As the trainer: Adam β = (0.5, 0.9) (Kim & Mnih 2018 § 4, disentanglement_lib
            // `factor_vae.gin`), the objective's discriminator learning rate.
            ObjectiveConfig::FactorVae(c) => Some((
                c.discriminator(config.latent_dim, config.layers, device),
                AdamConfig::new().with_beta_1(0.5).with_beta_2(0.9).init(),
                c.discriminator_lr,
            )),
            _ => None,
        };
        Self {
            vae: config.init(device).expect("valid config"),
            optimizer: AdamConfig::new().init(),
            learning_rate,
            discriminator,
            objective: objective.clone(),
            likelihood: config.likelihood,
            x: Tensor::<4>::random([batch, config.channels, 64, 64], pixels, device),
            eps: Tensor::<2>::random(
                [batch, config.latent_dim],
                Distribution::Normal(0.0, 1.0),
                device,
            ),
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
                self.discriminator.as_ref().map(|(d, _, _)| d),
            )
            .expect("loss");
        let grads = GradientsParams::from_grads(out.loss.backward(), &self.vae);
        self.vae = self
            .optimizer
            .step(self.learning_rate, self.vae.clone(), grads);
        if let Some((d, mut o, lr)) = self.discriminator.take() {
            let z = forward.z.detach();
            let permuted = permute_dims(z.clone(), &mut self.rng).expect("codes");
            let loss = d.loss(z, permuted).expect("codes");
            let grads = GradientsParams::from_grads(loss.backward(), &d);
            self.discriminator = Some((o.step(lr, d, grads), o, lr));
        }
        // Wait for the device so asynchronous backends are timed honestly.
        let _: f32 = out.terms[0].1.clone().into_scalar();
    }
}

/// Times the workload that `build` makes as `<group_name>/<name>/<parameter>` (`group_name`:
/// the name `group` was made with), then records its peak memory if criterion ran it (a bench
/// that the filter leaves out is neither built nor measured).
fn bench_workload(
    group: &mut BenchmarkGroup<'_, WallTime>,
    group_name: &str,
    name: &str,
    parameter: &str,
    build: impl FnOnce() -> Workload,
) {
    let baseline = GLOBAL.live();
    let mut workload: Option<Workload> = None;
    let mut build = Some(build);
    // `BenchmarkId`, not one string: criterion names its folders `<group>/<name>/<parameter>`
    // (the id xtask reads back), and would flatten a `/` inside one string.
    group.bench_function(BenchmarkId::new(name, parameter), |b| {
        let workload =
            workload.get_or_insert_with(|| (build.take().expect("built on the first call"))());
        b.iter(|| workload.step());
    });
    if let Some(mut workload) = workload {
        let id = format!("{group_name}/{name}/{parameter}");
        record_step(&GLOBAL, &id, baseline, || workload.step());
    }
}

/// Two throwaway FactorVAE steps (Burgess, 1 channel, batch 64: convolutions, transposed
/// convolutions and the discriminator's linear layers), once per process, before any bench.
/// What the process allocates on first use and keeps (≈ 200 MiB on flex: buffers kept for the
/// process's life) would otherwise count in whichever bench runs first, so a figure would
/// depend on the criterion filter; this puts it in no bench's figure and prints it instead.
fn settle_process(device: &Device) {
    static SETTLED: std::sync::Once = std::sync::Once::new();
    SETTLED.call_once(|| {
        let before = GLOBAL.live();
        let objective = ObjectiveConfig::FactorVae(FactorVaeConfig::default());
        let config = burgess(1, Likelihood::Bernoulli);
        let uniform = Distribution::Uniform(0.0, 1.0);
        let mut workload = Workload::new(config, 64, &objective, 1e-4, uniform, device);
        workload.step();
        workload.step();
        drop(workload);
        eprintln!(
            "peak memory: {:.1} MiB kept by the process after two throwaway steps (in no bench's \
             figure)",
            GLOBAL.live().saturating_sub(before) as f64 / (1024.0 * 1024.0)
        );
    });
}

fn burgess(channels: usize, likelihood: Likelihood) -> VaeConfig {
    VaeConfig {
        architecture: Architecture::Burgess,
        channels,
        likelihood,
        ..VaeConfig::default()
    }
}

fn vae_step(c: &mut Criterion) {
    // As the `infobound` binary runs; `MIMALLOC_PURGE_DELAY=10` measures mimalloc's default.
    infobound_backend::keep_freed_memory();
    let device = device();
    settle_process(&device);
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
    let uniform = Distribution::Uniform(0.0, 1.0);
    for (channels, likelihood) in [(1, Likelihood::Bernoulli), (3, Likelihood::Gaussian)] {
        for batch in [64usize, 256] {
            if quick && batch == 256 {
                continue;
            }
            for objective in &objectives {
                bench_workload(
                    &mut group,
                    "vae_step",
                    objective.name(),
                    &format!("{channels}ch_b{batch}"),
                    || {
                        let config = burgess(channels, likelihood);
                        Workload::new(config, batch, objective, 1e-4, uniform, &device)
                    },
                );
            }
        }
    }
    // The authors' spatial-broadcast family at 1 channel (3 channels: `vae_more`), for its own
    // objective only: every objective shares the network cost measured above.
    if !quick {
        bench_workload(
            &mut group,
            "vae_step",
            "alpha_tcvae_spatial_broadcast",
            "1ch_b64",
            || {
                let config = VaeConfig {
                    architecture: Architecture::SpatialBroadcast,
                    channels: 1,
                    likelihood: Likelihood::Gaussian,
                    init: Initialisation::AlphaTcvaeAuthors,
                    ..VaeConfig::default()
                };
                let objective = ObjectiveConfig::AlphaTcvae(AlphaTcvaeConfig::default());
                Workload::new(config, 64, &objective, 3e-4, uniform, &device)
            },
        );
    }
    group.finish();
}

/// The workloads of `torch_reference.py --sections vae_more` (`bench_vae_more`), each with the
/// script's networks, loss weights, optimiser settings, batch and input law.
fn vae_more(c: &mut Criterion) {
    infobound_backend::keep_freed_memory();
    let device = device();
    settle_process(&device);
    let mut group = c.benchmark_group("vae_more");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    // FactorVAE, γ = 10, discriminator 6 × 1000 LeakyReLU(0.2) (our defaults = the script's);
    // VAE Adam lr 1e-4 β (0.9, 0.999), discriminator Adam lr 1e-4 β (0.5, 0.9); Bernoulli(0.2)
    // images with the Bernoulli likelihood, uniform ones with the Gaussian (MSE-sum) one.
    for (channels, likelihood, pixels) in [
        (1, Likelihood::Bernoulli, Distribution::Bernoulli(0.2)),
        (3, Likelihood::Gaussian, Distribution::Uniform(0.0, 1.0)),
    ] {
        bench_workload(
            &mut group,
            "vae_more",
            "factor_vae",
            &format!("{channels}ch_b64"),
            || {
                let objective = ObjectiveConfig::FactorVae(FactorVaeConfig::default());
                let config = burgess(channels, likelihood);
                Workload::new(config, 64, &objective, 1e-4, pixels, &device)
            },
        );
    }
    // α-TCVAE (the authors' TC_Bound: α = 0.25, β = 3, C = 30, released-code CEB and weights,
    // our defaults = the script's), Adam lr 3e-4, uniform images, Gaussian (MSE-sum) likelihood.
    let spatial_broadcast = VaeConfig {
        architecture: Architecture::SpatialBroadcast,
        channels: 3,
        likelihood: Likelihood::Gaussian,
        init: Initialisation::AlphaTcvaeAuthors,
        ..VaeConfig::default()
    };
    for (name, config) in [
        ("alpha_tcvae_burgess", burgess(3, Likelihood::Gaussian)),
        ("alpha_tcvae_spatial_broadcast", spatial_broadcast),
    ] {
        bench_workload(&mut group, "vae_more", name, "3ch_b64", || {
            let objective = ObjectiveConfig::AlphaTcvae(AlphaTcvaeConfig::default());
            Workload::new(
                config,
                64,
                &objective,
                3e-4,
                Distribution::Uniform(0.0, 1.0),
                &device,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, vae_step, vae_more);
criterion_main!(benches);
