//! One two-view MVEB training step (forward of both views, loss, backward, SGD) — the workload
//! of `../shared/bench/torch_reference.py --sections ssl`: CIFAR ResNet-18, projector
//! 512 → 2048 (BN, ReLU) → 2048, 32×32 images, batch 64 and 128, loss
//! `−mean⟨z¹, z²⟩ − 0.01 · ½ Σ_v mean⟨−sg(S^v), z^v⟩` with the MVEB score estimate, SGD with
//! lr 0.06, momentum 0.9, weight decay 5e-4; plus the narrow ResNet (one block per stage,
//! width 16) under the same head and loss, and both with multi-crop views (2 × 32 px + 6 × 16 px)
//! at batch 64.
//!
//! The reference aligns the two online views with each other; here the second view's
//! projection is passed as the "target" of [`SslObjective`]. With two views
//! MVEB's alignment `½[⟨z¹, t²⟩ + ⟨z², t¹⟩]` with `t = z` is the reference's `⟨z¹, z²⟩`; the
//! objective detaches its target, which changes the gradient values but not the work done.
//! The backend comes from `INFOBOUND_DEVICE` (default flex); `INFOBOUND_BENCH_QUICK` skips
//! batch 128. Each bench also reports its peak heap memory ([`peak_memory`]; the baseline is
//! taken before the network is built, so the multi-crop rows also count the two-view inputs).
// criterion_group! generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

mod peak_memory;

use std::time::Duration;

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use infobound_backend::{BackendSpec, select_device};
use infobound_models::LayerImplementation;
use infobound_models::ssl::{
    BackboneConfig, MlpHeadConfig, SslNetwork, SslNetworkConfig, SslObjective, SslObjectiveConfig,
    SslViews,
};
use peak_memory::{CountingAllocator, record_step};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator::new();

fn device() -> Device {
    let name = std::env::var("INFOBOUND_DEVICE").unwrap_or_else(|_| "flex".into());
    let spec: BackendSpec = name.parse().expect("a valid INFOBOUND_DEVICE");
    select_device(&spec)
        .expect("a compiled-in backend")
        .autodiff()
}

fn projections(net: &SslNetwork, x: &Tensor<4>) -> Tensor<2> {
    net.project(net.features(x.clone()).expect("fits"))
}

/// Views, loss, backward and SGD update; returns the loss read back to the host, which also
/// waits for asynchronous backends. `views` are the 2 global views, then any local ones
/// (multi-crop); the global views' projections are also the target.
fn step(
    net: SslNetwork,
    optimizer: &mut ModuleOptimizer,
    objective: &SslObjective,
    views: &[Tensor<4>],
) -> (SslNetwork, f32) {
    let online: Vec<Tensor<2>> = views.iter().map(|x| projections(&net, x)).collect();
    let views = SslViews {
        target: Some(online[..2].to_vec()),
        online,
        predictions: None,
    };
    let out = objective.loss(&views).expect("loss");
    let grads = GradientsParams::from_grads(out.loss.backward(), &net);
    let net = optimizer.step(0.06, net, grads);
    (net, out.loss.into_scalar())
}

fn ssl_step(c: &mut Criterion) {
    // As the `infobound` binary runs; `MIMALLOC_PURGE_DELAY=10` measures mimalloc's default.
    infobound_backend::keep_freed_memory();
    let device = device();
    let mut group = c.benchmark_group("ssl_step");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    let quick = std::env::var("INFOBOUND_BENCH_QUICK").is_ok();
    let objective = SslObjectiveConfig::default()
        .init()
        .expect("MVEB objective");
    let backbones = [
        ("resnet18cifar", BackboneConfig::resnet18_cifar()),
        ("narrow16", BackboneConfig::narrow_resnet_cifar(16)),
    ];
    let network = |backbone: &BackboneConfig| SslNetworkConfig {
        projector: MlpHeadConfig::byol_projector(backbone.feature_dim(), 2048, 2048),
        backbone: backbone.clone(),
        predictor: None,
        layers: LayerImplementation::default(),
        view_batching: infobound_models::ssl::ViewBatching::PerView,
    };
    let sgd = || {
        SgdConfig::new()
            .with_momentum(Some(MomentumConfig::new().with_momentum(0.9)))
            .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
            .init()
    };
    // One throwaway ResNet-18 step: what the process allocates on first use and keeps would
    // otherwise count in whichever bench runs first (`peak_memory` module docs).
    {
        let before = GLOBAL.live();
        let net = network(&backbones[0].1)
            .init(&device)
            .expect("valid network");
        let views = [32, 32].map(|side| {
            Tensor::<4>::random([64, 3, side, side], Distribution::Normal(0.0, 1.0), &device)
        });
        drop(step(net, &mut sgd(), &objective, &views));
        eprintln!(
            "peak memory: {:.1} MiB kept by the process after a throwaway step (in no bench's \
             figure)",
            GLOBAL.live().saturating_sub(before) as f64 / (1024.0 * 1024.0)
        );
    }
    for batch in [64usize, 128] {
        if quick && batch == 128 {
            continue;
        }
        for (name, backbone) in &backbones {
            let baseline = GLOBAL.live();
            let mut net = network(backbone).init(&device).expect("valid network");
            let mut optimizer = sgd();
            let view = |side: usize| {
                Tensor::<4>::random(
                    [batch, 3, side, side],
                    Distribution::Normal(0.0, 1.0),
                    &device,
                )
            };
            let two_views = [view(32), view(32)];
            let id = BenchmarkId::new(format!("mveb_2views_{name}"), format!("b{batch}"));
            let mut ran = false;
            group.bench_function(id, |b| {
                ran = true;
                b.iter(|| {
                    let (updated, loss) = step(net.clone(), &mut optimizer, &objective, &two_views);
                    net = updated;
                    loss
                })
            });
            if ran {
                let id = format!("ssl_step/mveb_2views_{name}/b{batch}");
                record_step(&GLOBAL, &id, baseline, || {
                    net = step(net.clone(), &mut optimizer, &objective, &two_views).0;
                });
            }
            // Multi-crop (Caron et al. 2020) as configs/mveb_cifar10.toml draws it: 2 × 32 px global
            // and 6 × 16 px local views; no PyTorch workload to compare with.
            if batch == 64 {
                let multi_crop: Vec<Tensor<4>> =
                    (0..8).map(|v| view(if v < 2 { 32 } else { 16 })).collect();
                let id = BenchmarkId::new(format!("mveb_multicrop_2x32_6x16_{name}"), "b64");
                let mut ran = false;
                group.bench_function(id, |b| {
                    ran = true;
                    b.iter(|| {
                        let (updated, loss) =
                            step(net.clone(), &mut optimizer, &objective, &multi_crop);
                        net = updated;
                        loss
                    })
                });
                if ran {
                    let id = format!("ssl_step/mveb_multicrop_2x32_6x16_{name}/b64");
                    record_step(&GLOBAL, &id, baseline, || {
                        net = step(net.clone(), &mut optimizer, &objective, &multi_crop).0;
                    });
                }
            }
        }
    }
    group.finish();
}

criterion_group!(benches, ssl_step);
criterion_main!(benches);
