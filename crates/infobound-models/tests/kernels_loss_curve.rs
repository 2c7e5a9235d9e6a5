//! Issue #9's "no behaviour change": training the Burgess VAE with the `infobound-kernels`
//! convolutions follows the loss curve of Burn's generic convolutions for a fixed seed. This is
//! its own test binary because the switch between the two paths is process-wide.
#![cfg(feature = "flex-kernels")]

mod common;

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use infobound_models::objectives::AlphaTcvaeConfig;
use infobound_models::{Likelihood, ObjectiveConfig, StepContext, VaeConfig, set_generic_layers};

const STEPS: usize = 100;
const BATCH: usize = 8;

/// The loss of every step of α-TCVAE on a fixed stream of batches (3-channel, Gaussian
/// likelihood), everything seeded.
fn loss_curve(generic: bool) -> Vec<f32> {
    set_generic_layers(generic);
    let device = Device::flex().autodiff();
    device.seed(11);
    let config = VaeConfig {
        channels: 3,
        likelihood: Likelihood::Gaussian,
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
    let generic = loss_curve(true);
    let kernels = loss_curve(false);
    set_generic_layers(false);
    // The last loss at least 4 % below the first.
    common::assert_curves_agree(&generic, &kernels, 0.04 * generic[0]);
}
