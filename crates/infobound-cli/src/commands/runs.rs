//! `infobound train | eval | traverse | report | compare`: the VAE runs.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use clap::Args;
use infobound_backend::{BackendSpec, DEVICE_ENV_VAR, probe_device};
use infobound_data::save_png_grid;
use infobound_metrics::{codes_to_npy_bytes, factors_to_npy_bytes};
use infobound_train::ssl::RunConfig;
use infobound_train::{
    EvalReport, RunDir, TrainConfig, TrainOptions, VaeTrainer, latest_checkpoint, scored_codes,
    train_run, write_atomic, write_loss_svg, write_report,
};

use crate::commands::ssl;
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
    #[command(flatten)]
    pub device: DeviceArgs,
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

/// `infobound compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run folders with a metrics.json.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
}

fn load_trained(run: &RunDir, device: &Device) -> Result<VaeTrainer, CliError> {
    let config = run.load_config()?;
    let mut trainer = VaeTrainer::new(config, device)?;
    let checkpoint = latest_checkpoint(&run.checkpoints())?.ok_or_else(|| {
        CliError::Usage(format!(
            "{}: no checkpoint to evaluate",
            run.root().display()
        ))
    })?;
    trainer.restore(&checkpoint)?;
    Ok(trainer)
}

fn evaluate_run(
    trainer: &VaeTrainer,
    run: &RunDir,
    device: &Device,
) -> Result<EvalReport, CliError> {
    let config = run.load_config()?;
    // The untrained floor: the run's initial weights, rebuilt from its seed.
    let untrained = VaeTrainer::new(config.clone(), device)?;
    Ok(infobound_train::evaluate(
        trainer.vae(),
        Some(untrained.vae()),
        trainer.dataset().as_ref(),
        &config,
        trainer.step(),
        device,
        run,
    )?)
}

fn print_summary(report: &EvalReport) {
    let h = &report.headline;
    let u = report.untrained.as_ref();
    let show = |name: &str, t: f64, u: Option<f64>| match u {
        Some(u) => println!("  {name:<24} {t:>8.4}   (untrained {u:.4})"),
        None => println!("  {name:<24} {t:>8.4}"),
    };
    println!("metrics at step {}:", report.step);
    show("MIG", h.mig, u.map(|u| u.mig));
    show("SAP", h.sap, u.map(|u| u.sap));
    show(
        "DCI disentanglement",
        h.dci_disentanglement,
        u.map(|u| u.dci_disentanglement),
    );
    show(
        "DCI completeness",
        h.dci_completeness,
        u.map(|u| u.dci_completeness),
    );
    show(
        "DCI informativeness",
        h.dci_informativeness,
        u.map(|u| u.dci_informativeness),
    );
    if let Some(f) = &report.factor_vae {
        show("FactorVAE score", f.eval_accuracy, None);
    }
    show(
        "Vendi (prior samples)",
        report.vendi_prior_samples.score,
        None,
    );
    show("Vendi (traversals)", report.vendi_traversals.score, None);
    show("reconstruction error", report.reconstruction_error, None);
}

/// Trains (or resumes), then evaluates and writes the report.
pub fn train(args: TrainArgs) -> Result<(), CliError> {
    let (config, resumed) = match (&args.resume, &args.preset, &args.config) {
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
    let mut config: TrainConfig = match config {
        RunConfig::Vae(config) => *config,
        RunConfig::Ssl(config) => return ssl::train(*config, &args, resumed),
    };
    let (spec, device) = args.device.resolve()?;
    if let Some(steps) = args.steps {
        config.steps = steps;
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    let resume = resumed.is_some();
    let run = resumed.unwrap_or_else(|| {
        RunDir::new(args.out.clone().unwrap_or_else(|| {
            Path::new("runs").join(format!("{}-seed{}", config.name, config.seed))
        }))
    });
    eprintln!(
        "infobound: training {} on {} ({} steps, batch {}) on {spec} into {}",
        config.objective.name(),
        config.dataset.name,
        config.steps,
        config.batch_size,
        run.root().display()
    );
    infobound_train::Environment::capture(&spec.to_string(), &device).write(&run)?;
    let options = TrainOptions {
        resume,
        progress: !args.quiet,
    };
    let (trainer, summary) = train_run(config, &device, &run, options)?;
    eprintln!(
        "infobound: {} steps ({} skipped) at {:.2} steps/s, final loss {:.4}",
        summary.steps, summary.skipped_steps, summary.steps_per_second, summary.final_loss
    );
    write_loss_svg(&run)?;
    if !args.no_eval {
        eprintln!("infobound: evaluating");
        let report = evaluate_run(&trainer, &run, &device)?;
        print_summary(&report);
    }
    let path = write_report(&run)?;
    println!("report: {}", path.display());
    Ok(())
}

/// Re-evaluates a run from its newest checkpoint.
pub fn eval(args: EvalArgs) -> Result<(), CliError> {
    let run = RunDir::new(&args.run);
    if ssl::is_ssl_run(&args.run) {
        return ssl::eval(&run, &args.device);
    }
    let (_, device) = args.device.resolve()?;
    let trainer = load_trained(&run, &device)?;
    let report = evaluate_run(&trainer, &run, &device)?;
    print_summary(&report);
    if let Some(dir) = &args.export {
        let config = run.load_config()?;
        let ((codes, factors), _) = scored_codes(
            &burn::module::Module::valid(trainer.vae()),
            trainer.dataset().as_ref(),
            &config.eval,
            &device,
        )?;
        let factor_bytes = factors_to_npy_bytes(&factors)
            .map_err(|e| CliError::Usage(format!("cannot encode factors: {e}")))?;
        write_atomic(&dir.join("codes.npy"), &codes_to_npy_bytes(&codes))?;
        write_atomic(&dir.join("factors.npy"), &factor_bytes)?;
        println!(
            "exported {} codes to {}",
            codes.num_samples(),
            dir.join("codes.npy").display()
        );
    }
    write_report(&run)?;
    Ok(())
}

/// Writes a latent traversal grid of a run's newest checkpoint.
pub fn traverse(args: TraverseArgs) -> Result<(), CliError> {
    use burn::tensor::{Tensor, TensorData};
    use rand::SeedableRng;
    let (_, device) = args.device.resolve()?;
    let run = RunDir::new(&args.run);
    let trainer = load_trained(&run, &device)?;
    let vae = burn::module::Module::valid(trainer.vae());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
    let (_, image) = trainer.dataset().sample(1, &mut rng)?;
    let (mu, _) = vae
        .encode(infobound_data::images_to_tensor(&image, &device))
        .map_err(infobound_train::TrainError::from)?;
    let base: Vec<f32> = mu
        .into_data()
        .try_to_vec()
        .map_err(|e| CliError::Usage(format!("{e:?}")))?;
    let k = base.len();
    let codes = infobound_train::traversal_codes(&base, args.steps.max(2));
    let n = codes.len() / k;
    let decoded = vae
        .decode(Tensor::<2>::from_data(
            TensorData::new(codes, [n, k]),
            &device,
        ))
        .map_err(infobound_train::TrainError::from)?;
    let pixels: Vec<f32> = decoded
        .into_data()
        .try_to_vec()
        .map_err(|e| CliError::Usage(format!("{e:?}")))?;
    let images = infobound_data::ImageBatch::new(image.shape(), pixels)?;
    save_png_grid(&images, args.steps.max(2), &args.out)?;
    println!("traversals: {}", args.out.display());
    Ok(())
}

/// Rewrites `loss.svg` and `report.md` of a run.
pub fn report(args: ReportArgs) -> Result<(), CliError> {
    let run = RunDir::new(&args.run);
    if ssl::is_ssl_run(&args.run) {
        return ssl::report(&run);
    }
    write_loss_svg(&run)?;
    let path = write_report(&run)?;
    println!("report: {}", path.display());
    Ok(())
}

/// Prints one table across runs.
pub fn compare(args: CompareArgs) -> Result<(), CliError> {
    let (ssl_runs, vae_runs): (Vec<PathBuf>, Vec<PathBuf>) =
        args.runs.into_iter().partition(|dir| ssl::is_ssl_run(dir));
    if !ssl_runs.is_empty() {
        ssl::compare(&ssl_runs)?;
        if vae_runs.is_empty() {
            return Ok(());
        }
        println!();
    }
    println!(
        "{:<36} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10}",
        "run", "MIG", "SAP", "DCI-D", "DCI-C", "FVAE", "Vendi-S", "Vendi-T", "recon"
    );
    for dir in &vae_runs {
        let path = RunDir::new(dir).metrics();
        let text = std::fs::read_to_string(&path).map_err(|source| CliError::Io {
            path: path.clone(),
            source,
        })?;
        let m: EvalReport = serde_json::from_str(&text)
            .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
        let h = &m.headline;
        println!(
            "{:<36} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8} {:>9.2} {:>9.2} {:>10.2}",
            dir.display(),
            h.mig,
            h.sap,
            h.dci_disentanglement,
            h.dci_completeness,
            m.factor_vae
                .as_ref()
                .map_or("–".to_string(), |f| format!("{:.4}", f.eval_accuracy)),
            m.vendi_prior_samples.score,
            m.vendi_traversals.score,
            m.reconstruction_error
        );
    }
    Ok(())
}
