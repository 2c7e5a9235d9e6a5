//! Issue #9's "no behaviour change": training the Burgess VAE with the `infobound-kernels`
//! layers ([`LayerImplementation::Kernels`]) follows the loss curve of Burn's own layers
//! ([`LayerImplementation::Burn`]) for a fixed seed; both networks are built from the same
//! configuration but for its `layers` field.
#![cfg(feature = "flex-kernels")]

mod common;

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use infobound_models::objectives::AlphaTcvaeConfig;
use infobound_models::{LayerImplementation, Likelihood, ObjectiveConfig, StepContext, VaeConfig};

const STEPS: usize = 100;
const BATCH: usize = 8;

/// The loss of every step of α-TCVAE on a fixed stream of batches (3-channel, Gaussian
/// likelihood), everything seeded.
fn loss_curve(layers: LayerImplementation) -> Vec<f32> {
    let device = Device::flex().autodiff();
    device.seed(11);
    let config = VaeConfig {
        channels: 3,
        likelihood: Likelihood::Gaussian,
        layers,
        ..VaeConfig::default()
    };
    let mut vae = config.init(&device).expect("valid config");
    let mut optimizer = AdamConfig::new().init();
    let objective = ObjectiveConfig::AlphaTcvae(AlphaTcvaeConfig::default());
    // A fixed pool of images and noise (drawn once, before either run trains).
    let images = Tensor::<4>::random(
        [4 * BATCH, 3, 64, 64],
        Distribution::Uniform(0.0, 1.0),
        &device,
    );
    let noise = Tensor::<2>::random([4 * BATCH, 10], Distribution::Normal(0.0, 1.0), &device);
    (0..STEPS)
        .map(|step| {
            let start = (step % 4) * BATCH;
            let x = images.clone().narrow(0, start, BATCH);
            let eps = noise.clone().narrow(0, start, BATCH);
            let forward = vae.forward(x, eps).expect("shapes");
            let context = StepContext {
                step,
                batch_size: BATCH,
                dataset_size: 480_000,
            };
            let out = objective
                .vae_loss(&forward, Likelihood::Gaussian, &context, None)
                .expect("loss");
            let value: f32 = out.loss.clone().detach().into_scalar();
            let grads = GradientsParams::from_grads(out.loss.backward(), &vae);
            vae = optimizer.step(5e-4, vae.clone(), grads);
            value
        })
        .collect()
}

#[test]
fn kernels_follow_the_generic_loss_curve() {
    let generic = loss_curve(LayerImplementation::Burn);
    let kernels = loss_curve(LayerImplementation::Kernels);
    // The last loss at least 4 % below the first.
    common::assert_curves_agree(&generic, &kernels, 0.04 * generic[0]);
}
