//! Networks and objectives of the VAE family: β-VAE, capacity-annealed β-VAE, β-TCVAE,
//! FactorVAE and α-TCVAE on one shared [`Vae`] base; and, in [`ssl`], the self-supervised
//! networks (ResNet backbones, projector/predictor heads, EMA targets) with MVEB, SimSiam, BYOL
//! and Barlow Twins as one short objective file each.
//!
//! ```no_run
//! use burn::tensor::{Device, Distribution, Tensor};
//! use infobound_models::{Likelihood, ObjectiveConfig, StepContext, VaeConfig};
//! # fn demo(device: &Device) -> Result<(), infobound_models::ModelError> {
//! let vae = VaeConfig::default().init(device)?;
//! let x = Tensor::<4>::random([8, 3, 64, 64], Distribution::Uniform(0.0, 1.0), device);
//! let eps = Tensor::<2>::random([8, 10], Distribution::Normal(0.0, 1.0), device);
//! let forward = vae.forward(x, eps)?;
//! let context = StepContext { step: 0, batch_size: 8, dataset_size: 480_000 };
//! let loss = ObjectiveConfig::default().vae_loss(&forward, Likelihood::Gaussian, &context, None)?;
//! # Ok(()) }
//! ```

/// The README's examples, compiled (and the first one run) as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;

mod error;
mod layers;
mod loss;
mod registry;
pub mod ssl;
pub mod vae;

pub use error::ModelError;
pub use layers::LayerImplementation;
pub use loss::{LossOutput, detached, host_term};
pub use vae::objectives::{self, ObjectiveConfig, StepContext, VaeObjective};
pub use vae::{
    Architecture, ConvEncoder, Decoder, Initialisation, Likelihood, SpatialBroadcastDecoder,
    TransposedConvDecoder, Vae, VaeConfig, VaeForward,
};
