//! `infobound train | eval | probe | report | compare` for self-supervised runs (MVEB, SimSiam,
//! BYOL, Barlow Twins).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use clap::Args;
use infobound_train::ssl::{
    RunConfig, SslEvalReport, SslTrainConfig, SslTrainOptions, SslTrainer, evaluate_ssl, probe,
    read_ssl_metrics, train_ssl_run, write_ssl_report,
};
use infobound_train::{RunDir, latest_checkpoint, write_loss_svg};

use super::runs::{DeviceArgs, TrainArgs};
use crate::error::CliError;

/// `infobound probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Run folder of a self-supervised run.
    pub run: PathBuf,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Trains (or resumes) a self-supervised run, then evaluates it and writes the report.
pub fn train(
    mut config: SslTrainConfig,
    args: &TrainArgs,
    resumed: Option<RunDir>,
) -> Result<(), CliError> {
    let resolved = args.device.resolve_all()?;
    let names: Vec<String> = resolved.iter().map(|(spec, _)| spec.to_string()).collect();
    let spec = names.join(",");
    let devices: Vec<Device> = resolved.into_iter().map(|(_, device)| device).collect();
    if let Some(steps) = args.steps {
        config.steps = steps;
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    config.validate()?;
    // Before anything is written to the run folder.
    config.data_parallel.check_device_count(devices.len())?;
    let resume = resumed.is_some();
    let run = resumed.unwrap_or_else(|| {
        RunDir::new(args.out.clone().unwrap_or_else(|| {
            Path::new("runs").join(format!("{}-seed{}", config.name, config.seed))
        }))
    });
    eprintln!(
        "infobound: training {} ({} steps, batch {}, {} replica(s)) on {spec} into {}",
        config.objective.name(),
        config.steps,
        config.batch_size,
        config.data_parallel.replicas,
        run.root().display()
    );
    infobound_train::Environment::capture(&spec, &devices[0]).write(&run)?;
    let options = SslTrainOptions {
        resume,
        progress: !args.quiet,
    };
    let (trainer, summary) = train_ssl_run(config, &devices, &run, options)?;
    eprintln!(
        "infobound: {} steps ({} skipped) at {:.2} steps/s in {:.1} s, final loss {:.4}",
        summary.steps,
        summary.skipped_steps,
        summary.steps_per_second,
        summary.wall_seconds,
        summary.final_loss
    );
    write_loss_svg(&run)?;
    if !args.no_eval {
        eprintln!("infobound: evaluating");
        let report = evaluate_ssl(&trainer, &run, Some(summary.wall_seconds))?;
        print_report(&report);
    }
    let path = write_ssl_report(&run)?;
    println!("report: {}", path.display());
    Ok(())
}

fn load_trained(run: &RunDir, device: &Device) -> Result<SslTrainer, CliError> {
    let RunConfig::Ssl(config) = RunConfig::from_run(run)? else {
        return Err(CliError::Usage(format!(
            "{}: not a self-supervised run",
            run.root().display()
        )));
    };
    let checkpoint = latest_checkpoint(&run.checkpoints())?.ok_or_else(|| {
        CliError::Usage(format!(
            "{}: no checkpoint to evaluate",
            run.root().display()
        ))
    })?;
    let mut trainer = SslTrainer::new(*config, device)?;
    trainer.restore(&checkpoint)?;
    Ok(trainer)
}

fn print_report(report: &SslEvalReport) {
    println!("metrics at step {} ({}):", report.step, report.method);
    println!("  {:<28} {:>8.4}", "kNN accuracy", report.knn.accuracy);
    println!(
        "  {:<28} {:>8.4}",
        "kNN accuracy (untrained)", report.untrained_knn_accuracy
    );
    println!(
        "  {:<28} {:>8.4}",
        "linear probe (test)", report.linear_probe.test_accuracy
    );
    println!(
        "  {:<28} {:>8.4}",
        "linear probe (untrained)", report.untrained_linear_probe_accuracy
    );
    println!(
        "  {:<28} {:>8.4}",
        "online probe (test)", report.online_probe_accuracy
    );
    println!("  {:<28} {:>8.4}", "chance", report.chance_level);
    if !report.factor_knn.is_empty() {
        println!("  kNN per factor (trained / untrained / chance):");
        for f in &report.factor_knn {
            println!(
                "    {:<26} {:>8.4} {:>8.4} {:>8.4}",
                f.factor, f.knn_accuracy, f.untrained_knn_accuracy, f.chance_level
            );
        }
    }
    println!(
        "  {:<28} {:>8.2}",
        "effective rank (embeddings)", report.embedding_collapse.effective_rank
    );
    println!(
        "  {:<28} {:>8.4}",
        "uniformity (embeddings)", report.embedding_collapse.uniformity
    );
}

/// Re-runs the kNN and linear probes from the newest checkpoint and prints them.
pub fn probe_run(args: ProbeArgs) -> Result<(), CliError> {
    let (_, device) = args.device.resolve()?;
    let run = RunDir::new(&args.run);
    let trainer = load_trained(&run, &device)?;
    let scores = probe(&trainer)?;
    println!("probes at step {}:", trainer.step());
    println!("  {:<28} {:>8.4}", "kNN accuracy", scores.knn.accuracy);
    println!(
        "  {:<28} {:>8.4}",
        "linear probe (test)", scores.linear_probe.test_accuracy
    );
    println!(
        "  {:<28} {:>8.4}",
        "linear probe (train)", scores.linear_probe.train_accuracy
    );
    println!(
        "  {:<28} {:>8.4}",
        "online probe (test)", scores.online_probe_accuracy
    );
    println!("  {:<28} {:>8.4}", "chance", scores.chance_level);
    Ok(())
}

/// Re-evaluates a self-supervised run (metrics.json, pictures, report).
pub fn eval(run: &RunDir, device_args: &DeviceArgs) -> Result<(), CliError> {
    let (_, device) = device_args.resolve()?;
    let trainer = load_trained(run, &device)?;
    let report = evaluate_ssl(&trainer, run, None)?;
    print_report(&report);
    write_ssl_report(run)?;
    Ok(())
}

/// Rewrites `loss.svg` and `report.md` of a self-supervised run.
pub fn report(run: &RunDir) -> Result<(), CliError> {
    write_loss_svg(run)?;
    let path = write_ssl_report(run)?;
    println!("report: {}", path.display());
    Ok(())
}

/// Prints one table of self-supervised runs.
pub fn compare(runs: &[PathBuf]) -> Result<(), CliError> {
    println!(
        "{:<36} {:>12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10}",
        "run", "method", "kNN", "kNN-init", "linear", "online", "chance", "eff-rank", "uniformity"
    );
    for dir in runs {
        let run = RunDir::new(dir);
        let m = read_ssl_metrics(&run).ok_or_else(|| {
            CliError::Usage(format!(
                "{}: no readable self-supervised metrics.json",
                run.metrics().display()
            ))
        })?;
        println!(
            "{:<36} {:>12} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>9.2} {:>10.4}",
            dir.display(),
            m.method,
            m.knn.accuracy,
            m.untrained_knn_accuracy,
            m.linear_probe.test_accuracy,
            m.online_probe_accuracy,
            m.chance_level,
            m.embedding_collapse.effective_rank,
            m.embedding_collapse.uniformity
        );
    }
    Ok(())
}

/// True when `dir` holds a self-supervised run.
pub fn is_ssl_run(dir: &Path) -> bool {
    matches!(
        RunConfig::from_run(&RunDir::new(dir)),
        Ok(RunConfig::Ssl(_))
    )
}
