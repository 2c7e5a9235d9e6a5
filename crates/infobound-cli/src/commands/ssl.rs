//! The self-supervised family's run commands (MVEB, SimSiam, BYOL, Barlow Twins).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use infobound_train::run::{check_run_folder, run_training_locked};
use infobound_train::ssl::{
    SslData, SslEvalReport, SslTrainConfig, SslTrainer, evaluate_ssl, probe, write_ssl_report,
};
use infobound_train::{Environment, RunDir, RunFamily, RunLock, latest_checkpoint, write_loss_svg};

use super::compare::{CompareColumn, CompareColumns};
use super::live::LiveTensorboard;
use super::runs::{EvalArgs, FamilyCommands, ProbeArgs, TrainArgs, TraverseArgs, ranks_note};
use super::weights::{ImportRecord, write_imported_run};
use crate::error::CliError;
use infobound_weights::{ExportSummary, WeightsSource, export_backbone, import_backbone};

/// A self-supervised run's commands, for its resolved configuration.
pub(crate) struct SslCommands(pub SslTrainConfig);

impl SslCommands {
    fn load_trained(&self, run: &RunDir, device: &Device) -> Result<SslTrainer, CliError> {
        let checkpoint = latest_checkpoint(&run.checkpoints())?.ok_or_else(|| {
            CliError::Usage(format!(
                "{}: no checkpoint to evaluate",
                run.root().display()
            ))
        })?;
        let mut trainer = SslTrainer::new(self.0.clone(), device)?;
        trainer.restore(&checkpoint)?;
        Ok(trainer)
    }
}

impl FamilyCommands for SslCommands {
    fn train(&self, args: &TrainArgs, run: &RunDir, resume: bool) -> Result<(), CliError> {
        let resolved = args.device.resolve_all()?;
        let names: Vec<String> = resolved.iter().map(|(spec, _)| spec.to_string()).collect();
        let spec = names.join(",");
        let devices: Vec<Device> = resolved.into_iter().map(|(_, device)| device).collect();
        let config = &self.0;
        config.data_parallel.check_device_count(devices.len())?;
        // Loads the data and builds the networks: a bad file or value stops here.
        let data = Arc::new(SslData::load(&config.dataset, &config.labels)?);
        let ranks = super::runs::job_ranks()?;
        let world = ranks.world_size();
        let trainer =
            SslTrainer::with_devices(config.clone(), &devices, data)?.with_ranks(ranks)?;
        let options = args.options(resume);
        let Some(trainer) = super::runs::root_or_follow(trainer, run, options)? else {
            return Ok(());
        };
        // The run folder's lock is the first byte written, held through evaluation and report.
        let lock = RunLock::acquire(run.root())?;
        check_run_folder(run, resume)?;
        eprintln!(
            "infobound: training {} ({} steps, batch {}, {} replica(s)) on {spec}{} into {}",
            config.objective.name(),
            config.steps,
            config.batch_size,
            config.data_parallel.replicas,
            ranks_note(world),
            run.root().display()
        );
        Environment::capture(&spec, &devices[0]).write(run)?;
        let live = args
            .tensorboard
            .then(|| LiveTensorboard::start_session(run, resume))
            .transpose()?;
        let (trainer, summary) = run_training_locked(trainer, run, &lock, options)?;
        if let Some(live) = live {
            live.finish()?;
        }
        eprintln!(
            "infobound: {} steps ({} skipped) at {:.2} steps/s in {:.1} s, final loss {:.4}",
            summary.steps,
            summary.skipped_steps,
            summary.steps_per_second,
            summary.wall_seconds,
            summary.final_loss
        );
        write_loss_svg(run)?;
        if !args.no_eval {
            eprintln!("infobound: evaluating");
            let report = evaluate_ssl(&trainer, run, Some(summary.wall_seconds))?;
            print_report(&report);
        }
        let path = write_ssl_report(run)?;
        println!("report: {}", path.display());
        Ok(())
    }

    fn eval(&self, args: &EvalArgs, run: &RunDir) -> Result<(), CliError> {
        if args.export.is_some() {
            return Err(CliError::Usage(
                "--export writes a VAE run's scored codes; for a self-supervised run use `probe`"
                    .into(),
            ));
        }
        let (_, device) = args.device.resolve()?;
        let trainer = self.load_trained(run, &device)?;
        let report = evaluate_ssl(&trainer, run, None)?;
        print_report(&report);
        write_ssl_report(run)?;
        Ok(())
    }

    fn traverse(&self, _args: &TraverseArgs, run: &RunDir) -> Result<(), CliError> {
        Err(CliError::Usage(format!(
            "{}: latent traversals need a VAE run; this is a self-supervised run",
            run.root().display()
        )))
    }

    fn probe(&self, args: &ProbeArgs, run: &RunDir) -> Result<(), CliError> {
        let (_, device) = args.device.resolve()?;
        let trainer = self.load_trained(run, &device)?;
        let scores = probe(&trainer)?;
        println!("probes at step {}:", trainer.state().step);
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

    fn report(&self, run: &RunDir) -> Result<PathBuf, CliError> {
        write_loss_svg(run)?;
        Ok(write_ssl_report(run)?)
    }

    fn export_weights(
        &self,
        run: &RunDir,
        out: &Path,
        device: &Device,
    ) -> Result<ExportSummary, CliError> {
        let trainer = self.load_trained(run, device)?;
        Ok(export_backbone(
            &trainer.online().backbone,
            &self.0.network.backbone,
            out,
        )?)
    }

    fn import_weights(
        &self,
        source: &WeightsSource,
        record: &ImportRecord<'_>,
        run: &RunDir,
        device: &Device,
    ) -> Result<(), CliError> {
        let mut trainer = SslTrainer::new(self.0.clone(), device)?;
        let imported = import_backbone(
            trainer.online().backbone.clone(),
            &self.0.network.backbone,
            source,
        )?;
        write_imported_run(&mut trainer, run, record, |trainer| {
            Ok(trainer.replace_backbone(imported)?)
        })
    }

    fn compare_columns(&self) -> CompareColumns {
        CompareColumns {
            family: "ssl",
            method_title: "method",
            method: self.0.objective.name().to_string(),
            columns: COMPARE_COLUMNS,
        }
    }
}

/// The self-supervised columns of `infobound compare`: title and JSON pointer into
/// `metrics.json` ([`SslEvalReport`]); the set of the SSL study (`cargo xtask study --ssl`):
/// kNN readouts of the procedural 3DShapes factors floor hue, wall hue, object hue and shape
/// (factor indices 0, 1, 2, 4), the linear probe, the embeddings' collapse diagnostics and
/// the training time.
const COMPARE_COLUMNS: &[CompareColumn] = &[
    ("kNN floor hue", "/factor_knn/0/knn_accuracy"),
    ("kNN wall hue", "/factor_knn/1/knn_accuracy"),
    ("kNN object hue", "/factor_knn/2/knn_accuracy"),
    ("kNN shape", "/factor_knn/4/knn_accuracy"),
    ("linear probe", "/linear_probe/test_accuracy"),
    ("emb. eff. rank", "/embedding_collapse/effective_rank"),
    ("uniformity", "/embedding_collapse/uniformity"),
    ("train s", "/train_seconds"),
];

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
