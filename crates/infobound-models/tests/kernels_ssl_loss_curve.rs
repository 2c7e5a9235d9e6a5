//! Issue #9's "no behaviour change" for the self-supervised networks: MVEB on a narrow CIFAR
//! ResNet trained with the `infobound-kernels` convolutions and batch norms follows the loss
//! curve of Burn's own layers for a fixed seed: the same network configuration built with
//! [`LayerImplementation::Burn`] and with [`LayerImplementation::Kernels`].
#![cfg(feature = "flex-kernels")]

mod common;

use burn::module::Module;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Distribution, Tensor};
use infobound_models::LayerImplementation;
use infobound_models::ssl::{
    BackboneConfig, MlpHeadConfig, SslNetwork, SslNetworkConfig, SslObjectiveConfig, SslViews,
    ema_update,
};

const STEPS: usize = 30;
const BATCH: usize = 16;

fn project(network: &SslNetwork, x: Tensor<4>) -> Tensor<2> {
    network.project(network.features(x).expect("valid images"))
}

/// The MVEB loss of every step on a fixed stream of two-view batches, everything seeded.
fn loss_curve(layers: LayerImplementation) -> Vec<f32> {
    let device = Device::flex().autodiff();
    device.seed(5);
    let config = SslNetworkConfig {
        backbone: BackboneConfig::narrow_resnet_cifar(4),
        projector: MlpHeadConfig::mveb_projector(32, 64),
        predictor: None,
        layers,
        view_batching: infobound_models::ssl::ViewBatching::PerView,
    };
    let mut online = config.init(&device).expect("valid network");
    let mut target = config.init_target(&online, &device).expect("valid target");
    let objective = SslObjectiveConfig::default().init().expect("MVEB");
    let mut optimizer = SgdConfig::new().init();
    let images = Tensor::<4>::random(
        [2 * BATCH, 3, 16, 16],
        Distribution::Uniform(0.0, 1.0),
        &device,
    );
    let jitter = Tensor::<4>::random(
        [2 * BATCH, 3, 16, 16],
        Distribution::Normal(0.0, 0.1),
        &device,
    );
    (0..STEPS)
        .map(|step| {
            let start = (step % 2) * BATCH;
            let x1 = images.clone().narrow(0, start, BATCH);
            let x2 = x1.clone() + jitter.clone().narrow(0, start, BATCH);
            target = ema_update(target.clone(), &online, 0.99)
                .expect("same structure")
                .no_grad();
            let views = SslViews {
                online: vec![project(&online, x1.clone()), project(&online, x2.clone())],
                predictions: None,
                target: Some(vec![
                    project(&target, x1).detach(),
                    project(&target, x2).detach(),
                ]),
            };
            let out = objective.loss(&views).expect("loss");
            let value: f32 = out.loss.clone().detach().into_scalar();
            let grads = GradientsParams::from_grads(out.loss.backward(), &online);
            online = optimizer.step(0.05, online.clone(), grads);
            value
        })
        .collect()
}

#[test]
fn kernels_follow_the_generic_ssl_loss_curve() {
    let generic = loss_curve(LayerImplementation::Burn);
    let kernels = loss_curve(LayerImplementation::Kernels);
    common::assert_curves_agree(&generic, &kernels, 0.05);
}
