//! `infobound export weights` and `infobound import weights`: a run's network as a safetensors
//! file with PyTorch's key names, and a PyTorch state dict made into a run folder that `eval`,
//! `traverse` and `probe` accept (crates/infobound-weights documents the key names).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use infobound_train::run::{check_run_folder, write_json_atomic};
use infobound_train::{RunConfig, RunDir, RunFamily, RunLock, write_atomic};
use infobound_weights::{ExportSummary, WeightsSource};
use serde::Serialize;

use super::runs::{DeviceArgs, family, open_run};
use crate::error::CliError;

/// The file formats `infobound export weights` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WeightsFileFormat {
    /// safetensors with PyTorch's key names (load with `safetensors.torch.load_file`).
    Safetensors,
}

/// `infobound export weights`.
#[derive(Debug, Args)]
pub struct ExportWeightsArgs {
    /// Run folder (its newest checkpoint is exported).
    pub run: PathBuf,
    /// Output file (`.safetensors`; replaced if it exists).
    #[arg(long)]
    pub out: PathBuf,
    /// File format.
    #[arg(long, value_enum, default_value_t = WeightsFileFormat::Safetensors)]
    pub format: WeightsFileFormat,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// `infobound import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// What to import.
    #[command(subcommand)]
    pub what: ImportKind,
}

/// What `infobound import` reads.
#[derive(Debug, Subcommand)]
pub enum ImportKind {
    /// Make a run folder from a PyTorch state dict, to score a model trained elsewhere.
    ///
    /// FILE is a safetensors file or a `torch.save` pickle (.pt, .pth) holding the state dict of
    /// the PyTorch counterpart of the configuration's network, with its key names: for a VAE
    /// run the Burgess encoder and decoder (`encoder.model.{0,2,4,6,9,11}.*`,
    /// `decoder.model.{0,2,5,7,9,11}.*`, disent's EncoderConv64/DecoderConv64 with padding 1);
    /// for a self-supervised run the backbone (torchvision's ResNet keys `conv1`, `bn1`,
    /// `layer1.0.conv1`, ..., without `fc`). Every key must be there with its shape, and no
    /// other (batch norms' `num_batches_tracked` are ignored); --prefix reads only the keys
    /// under a prefix, e.g. `backbone.` of a solo-learn checkpoint.
    ///
    /// The run folder gets the resolved config.toml, the seed's untrained weights in initial/
    /// (the floor that `eval` reports), a step-0 checkpoint holding the imported weights (a
    /// self-supervised run's projector, predictor and online probe are the seed's untrained
    /// ones), and imported_weights.json naming the source. Then `infobound eval RUN` computes
    /// the metrics, `traverse` the latent traversals (VAE), `probe` the kNN and linear probes
    /// (self-supervised).
    Weights(ImportWeightsArgs),
}

/// `infobound import weights`.
#[derive(Debug, Args)]
pub struct ImportWeightsArgs {
    /// The state dict (.safetensors, .pt or .pth).
    pub file: PathBuf,
    /// A shipped preset (configs/NAME.toml) describing the network and the data to score on.
    #[arg(long, conflicts_with = "config")]
    pub preset: Option<String>,
    /// A TOML or JSON configuration file instead of a preset.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override any configuration value (repeatable), as for `train`.
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub set: Vec<String>,
    /// The run folder to create.
    #[arg(long)]
    pub out: PathBuf,
    /// Read only the keys starting with this, without it (e.g. `backbone.`).
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// .pt/.pth files: the entry of the pickled dict holding the state dict (e.g. `state_dict`
    /// of a PyTorch Lightning checkpoint).
    #[arg(long)]
    pub top_level_key: Option<String>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// `infobound export weights`.
pub fn export(args: &ExportWeightsArgs) -> Result<(), CliError> {
    let WeightsFileFormat::Safetensors = args.format;
    let (_, device) = args.device.resolve()?;
    let (run, family) = open_run(&args.run)?;
    let summary = family.export_weights(&run, &args.out, &device)?;
    print_summary(&summary);
    Ok(())
}

fn print_summary(summary: &ExportSummary) {
    println!(
        "weights: {} ({} tensors, {} values)",
        summary.path.display(),
        summary.tensors.len(),
        summary.values()
    );
}

/// What `imported_weights.json` records about the source of an imported run.
#[derive(Debug, Serialize)]
pub(crate) struct ImportRecord<'a> {
    source: &'a std::path::Path,
    prefix: &'a str,
    top_level_key: Option<&'a str>,
}

/// `infobound import`.
pub fn import(args: ImportArgs) -> Result<(), CliError> {
    let ImportKind::Weights(args) = args.what;
    let config = match (&args.preset, &args.config) {
        (Some(preset), None) => RunConfig::preset(preset, &args.set)?,
        (None, Some(path)) => RunConfig::from_file(path, &args.set)?,
        _ => {
            return Err(CliError::Usage(
                "give one of --preset NAME or --config FILE".into(),
            ));
        }
    };
    config.validate()?;
    let (_, device) = args.device.resolve()?;
    let source = WeightsSource {
        prefix: args.prefix.clone(),
        top_level_key: args.top_level_key.clone(),
        ..WeightsSource::new(&args.file)?
    };
    let record = ImportRecord {
        source: &args.file,
        prefix: &args.prefix,
        top_level_key: args.top_level_key.as_deref(),
    };
    let run = RunDir::new(&args.out);
    family(config).import_weights(&source, &record, &run, &device)?;
    println!(
        "imported {} into {}; score it with `infobound eval {}`",
        args.file.display(),
        run.root().display(),
        run.root().display()
    );
    Ok(())
}

/// Writes a run folder around `family`, a fresh trainer whose network `imported` replaces:
/// `initial/` with the seed-drawn weights (the untrained floor of `eval`), then — after
/// `replace` — a step-0 checkpoint, `config.toml` and `imported_weights.json`, all under the
/// run's lock. The caller reads and checks the weights before, so a file that does not fit
/// leaves nothing behind.
pub(crate) fn write_imported_run<F: RunFamily>(
    family: &mut F,
    run: &RunDir,
    record: &ImportRecord<'_>,
    replace: impl FnOnce(&mut F) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let lock = RunLock::acquire(run.root())?;
    check_run_folder(run, false)?;
    family.save_initial(run)?;
    replace(family)?;
    family.checkpoint(run)?;
    write_json_atomic(&run.file("imported_weights.json"), record)?;
    // Written last: a folder with config.toml is a run.
    write_atomic(&run.config(), family.config_toml()?.as_bytes())?;
    drop(lock);
    Ok(())
}
