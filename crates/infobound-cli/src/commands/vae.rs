//! The VAE family's run commands.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use infobound_data::save_png_grid;
use infobound_metrics::{codes_to_npy_bytes, factors_to_npy_bytes};
use infobound_train::run::{check_run_folder, run_training_locked};
use infobound_train::{
    Environment, EvalReport, RunDir, RunLock, TrainConfig, VaeTrainer, latest_checkpoint,
    scored_codes, write_atomic, write_loss_svg, write_report,
};
use infobound_weights::{ExportSummary, WeightsSource, export_vae, import_vae};
use rand::SeedableRng;

use super::compare::{CompareColumn, CompareColumns};
use super::live::LiveTensorboard;
use super::runs::{EvalArgs, FamilyCommands, ProbeArgs, TrainArgs, TraverseArgs, ranks_note};
use super::weights::{ImportRecord, write_imported_run};
use crate::error::CliError;

/// A VAE run's commands, for its resolved configuration.
pub(crate) struct VaeCommands(pub TrainConfig);

impl VaeCommands {
    fn load_trained(&self, run: &RunDir, device: &Device) -> Result<VaeTrainer, CliError> {
        let mut trainer = VaeTrainer::new(self.0.clone(), device)?;
        let checkpoint = latest_checkpoint(&run.checkpoints())?.ok_or_else(|| {
            CliError::Usage(format!(
                "{}: no checkpoint to evaluate",
                run.root().display()
            ))
        })?;
        infobound_train::RunFamily::restore(&mut trainer, &checkpoint)?;
        Ok(trainer)
    }

    fn evaluate(
        &self,
        trainer: &VaeTrainer,
        run: &RunDir,
        device: &Device,
    ) -> Result<EvalReport, CliError> {
        // The untrained floor: the run's own step-0 weights (`initial/`); runs of earlier
        // releases have none and get them re-drawn from the seed.
        let fresh = VaeTrainer::new(self.0.clone(), device)?;
        let untrained = match trainer.initial_vae(run)? {
            Some(vae) => vae,
            None => fresh.vae().clone(),
        };
        Ok(infobound_train::evaluate(
            trainer.vae(),
            Some(&untrained),
            trainer.dataset().as_ref(),
            &self.0,
            trainer.step(),
            device,
            run,
        )?)
    }
}

impl FamilyCommands for VaeCommands {
    fn train(&self, args: &TrainArgs, run: &RunDir, resume: bool) -> Result<(), CliError> {
        let (spec, device) = args.device.resolve()?;
        let config = &self.0;
        // Opens the dataset and builds the networks: a bad file or value stops here.
        let ranks = super::runs::job_ranks()?;
        let world = ranks.world_size();
        let trainer = VaeTrainer::new(config.clone(), &device)?.with_ranks(ranks)?;
        let options = args.options(resume);
        let Some(trainer) = super::runs::root_or_follow(trainer, run, options)? else {
            return Ok(());
        };
        // The run folder's lock is the first byte written, held through evaluation and report.
        let lock = RunLock::acquire(run.root())?;
        check_run_folder(run, resume)?;
        eprintln!(
            "infobound: training {} on {} ({} steps, batch {}) on {spec}{} into {}",
            config.objective.name(),
            config.dataset.name(),
            config.steps,
            config.batch_size,
            ranks_note(world),
            run.root().display()
        );
        Environment::capture(&spec.to_string(), &device).write(run)?;
        let live = args
            .tensorboard
            .then(|| LiveTensorboard::start_session(run, resume))
            .transpose()?;
        let (trainer, summary) = run_training_locked(trainer, run, &lock, options)?;
        if let Some(live) = live {
            live.finish()?;
        }
        eprintln!(
            "infobound: {} steps ({} skipped) at {:.2} steps/s, final loss {:.4}",
            summary.steps, summary.skipped_steps, summary.steps_per_second, summary.final_loss
        );
        write_loss_svg(run)?;
        if !args.no_eval {
            eprintln!("infobound: evaluating");
            let report = self.evaluate(&trainer, run, &device)?;
            print_summary(&report);
        }
        let path = write_report(run)?;
        println!("report: {}", path.display());
        Ok(())
    }

    fn eval(&self, args: &EvalArgs, run: &RunDir) -> Result<(), CliError> {
        let (_, device) = args.device.resolve()?;
        let trainer = self.load_trained(run, &device)?;
        let report = self.evaluate(&trainer, run, &device)?;
        print_summary(&report);
        if let Some(dir) = &args.export {
            let ((codes, factors), _) = scored_codes(
                &burn::module::Module::valid(trainer.vae()),
                trainer.dataset().as_ref(),
                &self.0.eval,
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
        write_report(run)?;
        Ok(())
    }

    fn traverse(&self, args: &TraverseArgs, run: &RunDir) -> Result<(), CliError> {
        let (_, device) = args.device.resolve()?;
        let trainer = self.load_trained(run, &device)?;
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

    fn probe(&self, _args: &ProbeArgs, run: &RunDir) -> Result<(), CliError> {
        Err(CliError::Usage(format!(
            "{}: `probe` reads self-supervised runs; this is a VAE run (use `eval`)",
            run.root().display()
        )))
    }

    fn report(&self, run: &RunDir) -> Result<PathBuf, CliError> {
        write_loss_svg(run)?;
        Ok(write_report(run)?)
    }

    fn export_weights(
        &self,
        run: &RunDir,
        out: &Path,
        device: &Device,
    ) -> Result<ExportSummary, CliError> {
        let trainer = self.load_trained(run, device)?;
        Ok(export_vae(trainer.vae(), &self.0.model, out)?)
    }

    fn import_weights(
        &self,
        source: &WeightsSource,
        record: &ImportRecord<'_>,
        run: &RunDir,
        device: &Device,
    ) -> Result<(), CliError> {
        let mut trainer = VaeTrainer::new(self.0.clone(), device)?;
        let imported = import_vae(trainer.vae().clone(), &self.0.model, source)?;
        write_imported_run(&mut trainer, run, record, |trainer| {
            trainer.replace_vae(imported);
            Ok(())
        })
    }

    fn compare_columns(&self) -> CompareColumns {
        CompareColumns {
            family: "vae",
            method_title: "objective",
            method: self.0.objective.name().to_string(),
            columns: COMPARE_COLUMNS,
        }
    }
}

/// The VAE columns of `infobound compare`: title and JSON pointer into `metrics.json`
/// ([`EvalReport`]); headline metrics first, then diversity and posterior diagnostics.
const COMPARE_COLUMNS: &[CompareColumn] = &[
    ("DCI-D", "/headline/dci.disentanglement"),
    ("SNC", "/headline/snc.test"),
    ("MIG", "/headline/mig"),
    ("FactorVAE", "/factor_vae/eval_accuracy"),
    ("DCI-I", "/headline/dci.informativeness_test"),
    ("Vendi prior", "/vendi_prior_samples/score"),
    ("Vendi agg. post.", "/vendi_aggregate_posterior/score"),
    ("Vendi trav.", "/vendi_active_traversals/score"),
    ("active", "/diagnostics/active_latents"),
    ("KL", "/diagnostics/total_kl"),
    ("|corr μ|", "/diagnostics/mean_abs_corr_mu"),
    ("prior gap", "/diagnostics/aggregate_gaussian_kl"),
    ("recon", "/reconstruction_error"),
];

fn print_summary(report: &EvalReport) {
    let untrained = report.untrained.as_ref();
    let show = |name: &str, t: f64, u: Option<f64>| match u {
        Some(u) => println!("  {name:<28} {t:>8.4}   (untrained {u:.4})"),
        None => println!("  {name:<28} {t:>8.4}"),
    };
    println!("metrics at step {}:", report.step);
    for (name, value) in &report.headline {
        show(name, *value, untrained.and_then(|u| u.get(name).copied()));
    }
    if let Some(f) = &report.factor_vae {
        show("FactorVAE score", f.eval_accuracy, None);
    }
    show(
        "Vendi (prior samples)",
        report.vendi_prior_samples.score,
        None,
    );
    show(
        "Vendi (aggregate posterior)",
        report.vendi_aggregate_posterior.score,
        None,
    );
    show(
        "Vendi (active traversals)",
        report.vendi_active_traversals.score,
        None,
    );
    show("reconstruction error", report.reconstruction_error, None);
}
