//! Weights in and out: infobound's Burgess VAE and ResNet backbones as safetensors files with
//! the key names of the equivalent PyTorch modules, and such PyTorch state dicts (safetensors,
//! or `torch.save` `.pt` files) loaded into our networks, so that a model trained elsewhere is
//! scored with infobound's metrics, traversals and probes.
//!
//! Everything goes through Burn's burn-store: `SafetensorsStore` writes and reads, `PytorchStore`
//! reads `.pt`; its `BurnToPyTorchAdapter` / `PyTorchToBurnAdapter` transpose linear weights
//! (Burn `[in, out]`, PyTorch `[out, in]`) and rename batch norms' γ/β to `weight`/`bias`; a
//! [`KeyMap`] per network renames module paths to the PyTorch module's keys
//! ([`vae_key_map`], [`backbone_key_map`] document the mapping and its sources). An import is
//! checked before anything is loaded: every missing, unexpected or mis-shaped key is a
//! [`WeightsError`] naming it.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use infobound_models::VaeConfig;
//! use infobound_weights::{WeightsSource, export_vae, import_vae};
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = VaeConfig::default();
//! let vae = config.init(&Device::flex())?;
//! export_vae(&vae, &config, "vae.safetensors".as_ref())?;
//! let again = import_vae(config.init(&Device::flex())?, &config, &WeightsSource::new("vae.safetensors")?)?;
//! # Ok(()) }
//! ```

/// The README's example, compiled as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;

mod error;
mod io;
mod keymap;

pub use error::WeightsError;
pub use io::{
    ExportSummary, WeightsFormat, WeightsSource, export_backbone, export_vae, import_backbone,
    import_vae,
};
pub use keymap::{KeyMap, backbone_key_map, vae_key_map};
