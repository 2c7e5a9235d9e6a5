//! `infobound train | eval | traverse | report | compare | probe`: the arguments, then one
//! dispatch on the loaded run configuration ([`family`]) to the family's commands
//! ([`super::vae`], [`super::ssl`]).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use clap::{ArgGroup, Args};
use infobound_backend::{BackendSpec, DEVICE_ENV_VAR, probe_device};
use infobound_train::{RunConfig, RunDir};
use infobound_weights::{ExportSummary, WeightsSource};

use super::compare::{CompareColumns, CompareFormat, CompareOptions, Grouping, compare_runs};
use super::weights::ImportRecord;
use super::{ssl, vae};
use crate::error::CliError;

/// Backend selection shared by every command that runs a model.
#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// Backend: flex (default), ndarray, wgpu[:cpu|:discrete:N|:integrated:N], cuda[:N]. A
    /// self-supervised run with `data_parallel.replicas > 1` takes a comma-separated list, one
    /// device per replica (e.g. cuda:0,cuda:1), or one device for all.
    #[arg(long, env = DEVICE_ENV_VAR, default_value = "flex")]
    pub device: String,
}

impl DeviceArgs {
    /// The one device of a command that runs on a single device.
    pub(crate) fn resolve(&self) -> Result<(BackendSpec, Device), CliError> {
        let mut devices = self.resolve_all()?;
        if devices.len() != 1 {
            return Err(CliError::Usage(format!(
                "--device {}: this command runs on one device; device lists are for \
                 data-parallel self-supervised training",
                self.device
            )));
        }
        Ok(devices.remove(0))
    }

    /// Every device of a comma-separated `--device` list, each probed.
    pub(crate) fn resolve_all(&self) -> Result<Vec<(BackendSpec, Device)>, CliError> {
        self.device
            .split(',')
            .map(|item| {
                let spec: BackendSpec = item.trim().parse()?;
                let device = probe_device(&spec)?;
                Ok((spec, device))
            })
            .collect()
    }
}

/// `infobound train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// A shipped preset (configs/NAME.toml), e.g. quickstart, alpha_tcvae_shapes3d.
    #[arg(long, conflicts_with_all = ["config", "resume"])]
    pub preset: Option<String>,
    /// A TOML or JSON configuration file.
    #[arg(long, conflicts_with = "resume")]
    pub config: Option<PathBuf>,
    /// Continue the run in this folder from its newest checkpoint.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Run folder (default runs/<name>-seed<seed>).
    #[arg(long, conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Override the number of steps.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Override the seed.
    #[arg(long, conflicts_with = "resume")]
    pub seed: Option<u64>,
    /// Override any configuration value, e.g. `--set objective.entropy_weight=0` (repeatable;
    /// applied to the TOML before it is read).
    #[arg(long = "set", value_name = "KEY.PATH=VALUE", conflicts_with = "resume")]
    pub set: Vec<String>,
    /// Skip the evaluation and report after training.
    #[arg(long)]
    pub no_eval: bool,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Write the logged scalars to a TensorBoard event file as training goes
    /// (RUN/tensorboard/live/; `tensorboard --logdir RUN/tensorboard`). The file is appended to
    /// and flushed per log row, not written atomically; `infobound export tensorboard RUN` adds
    /// the evaluation, configuration and images afterwards.
    #[arg(long)]
    pub tensorboard: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl TrainArgs {
    /// The options of this invocation that do not change the run's result.
    pub(crate) fn options(&self, resume: bool) -> infobound_train::TrainOptions {
        infobound_train::TrainOptions {
            resume,
            progress: !self.quiet,
        }
    }
}

/// `infobound eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Run folder.
    pub run: PathBuf,
    /// Also write the scored μ codes and factor indices as codes.npy / factors.npy here.
    #[arg(long)]
    pub export: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// `infobound traverse`.
#[derive(Debug, Args)]
pub struct TraverseArgs {
    /// Run folder.
    pub run: PathBuf,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the image whose code is traversed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Images per row.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// `infobound report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run folder.
    pub run: PathBuf,
}

/// `infobound compare` (the long help is on `Command::Compare` in main.rs).
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("grouping").args(["grouped", "group_by"])))]
pub struct CompareArgs {
    /// Run folders (a run folder without metrics.json yet is skipped with a warning).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Output format (json: one document for pandas, see the long help).
    #[arg(long, value_enum, default_value_t = CompareFormat::Text)]
    pub format: CompareFormat,
    /// One row per group of seeds (folder name without `-seed<digits>`): mean ± sd and n.
    #[arg(long)]
    pub grouped: bool,
    /// One row per distinct value of these configuration columns (e.g.
    /// objective.kind,objective.alpha); the group label is `KEY=VALUE,KEY=VALUE`.
    #[arg(long, value_name = "KEY[,KEY...]", value_delimiter = ',')]
    pub group_by: Vec<String>,
    /// Welch's t-test of every group against this one (needs --grouped or --group-by).
    #[arg(long, value_name = "GROUP", requires = "grouping")]
    pub baseline: Option<String>,
}

/// `infobound probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Run folder of a self-supervised run.
    pub run: PathBuf,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// What a model family does for each run command; [`family`] is the one place that picks it.
pub(crate) trait FamilyCommands {
    /// Trains (or resumes) into `run`, then evaluates and writes the report. Everything that
    /// can reject the run (configuration, dataset, devices, run folder) is checked before the
    /// first byte is written.
    fn train(&self, args: &TrainArgs, run: &RunDir, resume: bool) -> Result<(), CliError>;
    /// Re-evaluates a run from its newest checkpoint.
    fn eval(&self, args: &EvalArgs, run: &RunDir) -> Result<(), CliError>;
    /// A latent traversal grid (VAE runs).
    fn traverse(&self, args: &TraverseArgs, run: &RunDir) -> Result<(), CliError>;
    /// The kNN and linear probes (SSL runs).
    fn probe(&self, args: &ProbeArgs, run: &RunDir) -> Result<(), CliError>;
    /// Rewrites `loss.svg` and `report.md`.
    fn report(&self, run: &RunDir) -> Result<PathBuf, CliError>;
    /// This family's columns in `infobound compare` and the run's objective or method.
    fn compare_columns(&self) -> CompareColumns;
    /// Writes the network of `run`'s newest checkpoint (VAE: encoder and decoder; SSL: the
    /// backbone) to `out` with PyTorch's key names.
    fn export_weights(
        &self,
        run: &RunDir,
        out: &Path,
        device: &Device,
    ) -> Result<ExportSummary, CliError>;
    /// Creates the run folder `run` with `source`'s weights as its step-0 checkpoint
    /// ([`super::weights::write_imported_run`]).
    fn import_weights(
        &self,
        source: &WeightsSource,
        record: &ImportRecord<'_>,
        run: &RunDir,
        device: &Device,
    ) -> Result<(), CliError>;
}

/// The commands of the family `config` belongs to.
pub(crate) fn family(config: RunConfig) -> Box<dyn FamilyCommands> {
    match config {
        RunConfig::Vae(config) => Box::new(vae::VaeCommands(*config)),
        RunConfig::Ssl(config) => Box::new(ssl::SslCommands(*config)),
    }
}

/// The run folder `dir` with its configuration and family.
pub(crate) fn open_run(dir: &Path) -> Result<(RunDir, Box<dyn FamilyCommands>), CliError> {
    let run = RunDir::new(dir);
    let config = RunConfig::from_run(&run)?;
    Ok((run, family(config)))
}

/// The processes of this job: with the cargo feature `mpi`, under an MPI launcher (`mpirun`,
/// `srun`) with more than one rank, the ranks of `MPI_COMM_WORLD`; otherwise one process.
/// MPI is initialised here, once per process.
pub(crate) fn job_ranks() -> Result<infobound_train::run::Ranks, CliError> {
    #[cfg(feature = "mpi")]
    if let Some(mpi) = infobound_collective::MpiCollective::init()
        .map_err(|e| CliError::Usage(format!("cannot start MPI: {e}")))?
    {
        return Ok(infobound_train::run::Ranks::new(Box::new(mpi)));
    }
    Ok(infobound_train::run::Ranks::single())
}

/// Rank 0's trainer back, to train holding the run folder's lock; on any other rank of an MPI
/// job, trains beside rank 0 (writing nothing) and returns `None`.
pub(crate) fn root_or_follow<F: infobound_train::RunFamily>(
    mut trainer: F,
    run: &RunDir,
    options: infobound_train::TrainOptions,
) -> Result<Option<F>, CliError> {
    if trainer.ranks().is_root() {
        return Ok(Some(trainer));
    }
    infobound_train::run::follow_training(trainer, run, options)?;
    Ok(None)
}

/// " × N MPI ranks" for a job of several processes, nothing for one.
pub(crate) fn ranks_note(world: usize) -> String {
    if world > 1 {
        format!(" × {world} MPI ranks")
    } else {
        String::new()
    }
}

/// `infobound train`.
pub fn train(args: TrainArgs) -> Result<(), CliError> {
    let (mut config, resumed) = match (&args.resume, &args.preset, &args.config) {
        (Some(dir), _, _) => {
            let run = RunDir::new(dir);
            (RunConfig::from_run(&run)?, Some(run))
        }
        (None, Some(preset), None) => (RunConfig::preset(preset, &args.set)?, None),
        (None, None, Some(path)) => (RunConfig::from_file(path, &args.set)?, None),
        _ => {
            return Err(CliError::Usage(
                "give one of --preset NAME, --config FILE or --resume DIR".into(),
            ));
        }
    };
    if let Some(steps) = args.steps {
        config.set_steps(steps);
    }
    if let Some(seed) = args.seed {
        config.set_seed(seed);
    }
    config.validate()?;
    let resume = resumed.is_some();
    let run = resumed.unwrap_or_else(|| {
        RunDir::new(args.out.clone().unwrap_or_else(|| {
            Path::new("runs").join(format!("{}-seed{}", config.name(), config.seed()))
        }))
    });
    family(config).train(&args, &run, resume)
}

/// `infobound eval`.
pub fn eval(args: EvalArgs) -> Result<(), CliError> {
    let (run, family) = open_run(&args.run)?;
    family.eval(&args, &run)
}

/// `infobound traverse`.
pub fn traverse(args: TraverseArgs) -> Result<(), CliError> {
    let (run, family) = open_run(&args.run)?;
    family.traverse(&args, &run)
}

/// `infobound probe`.
pub fn probe(args: ProbeArgs) -> Result<(), CliError> {
    let (run, family) = open_run(&args.run)?;
    family.probe(&args, &run)
}

/// `infobound report`.
pub fn report(args: ReportArgs) -> Result<(), CliError> {
    let (run, family) = open_run(&args.run)?;
    let path = family.report(&run)?;
    println!("report: {}", path.display());
    Ok(())
}

/// `infobound compare`: one table per family, runs (or groups) in the order given; a run folder
/// without metrics.json is named in a warning on stderr and left out.
pub fn compare(args: CompareArgs) -> Result<(), CliError> {
    let grouping = if !args.group_by.is_empty() {
        Grouping::Config(&args.group_by)
    } else if args.grouped {
        Grouping::Folder
    } else {
        Grouping::None
    };
    let options = CompareOptions {
        format: args.format,
        grouping,
        baseline: args.baseline.as_deref(),
    };
    let output = compare_runs(
        &args.runs,
        |dir| {
            let run = RunDir::new(dir);
            let config = RunConfig::from_run(&run)?;
            // The resolved configuration as written to a new run's config.toml (defaults filled
            // in, legacy keys migrated), read back as plain values: numbers exactly as in TOML.
            let resolved: serde_json::Value =
                toml::from_str(&config.to_toml()?).map_err(|e| CliError::RunFile {
                    path: run.config(),
                    message: format!("resolved configuration: {e}"),
                })?;
            Ok((run, family(config).compare_columns(), resolved))
        },
        &options,
    )?;
    for dir in &output.skipped {
        eprintln!(
            "warning: skipped {}: no metrics.json yet (still training?)",
            dir.display()
        );
    }
    if !output.skipped.is_empty() {
        eprintln!(
            "warning: {} of {} run folders skipped",
            output.skipped.len(),
            args.runs.len()
        );
    }
    print!("{}", output.text);
    Ok(())
}
