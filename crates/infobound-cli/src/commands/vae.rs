//! The VAE family's run commands.

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use infobound_data::save_png_grid;
use infobound_metrics::{codes_to_npy_bytes, factors_to_npy_bytes};
use infobound_train::run::{check_run_folder, run_training_locked};
use infobound_train::{
    Environment, EvalReport, RunDir, RunLock, TrainConfig, TrainOptions, VaeTrainer,
    latest_checkpoint, scored_codes, write_atomic, write_loss_svg, write_report,
};
use rand::SeedableRng;

use super::runs::{EvalArgs, FamilyCommands, ProbeArgs, TrainArgs, TraverseArgs};
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
        let trainer = VaeTrainer::new(config.clone(), &device)?;
        // The run folder's lock is the first byte written, held through evaluation and report.
        let lock = RunLock::acquire(run.root())?;
        check_run_folder(run, resume)?;
        eprintln!(
            "infobound: training {} on {} ({} steps, batch {}) on {spec} into {}",
            config.objective.name(),
            config.dataset.name(),
            config.steps,
            config.batch_size,
            run.root().display()
        );
        Environment::capture(&spec.to_string(), &device).write(run)?;
        let options = TrainOptions {
            resume,
            progress: !args.quiet,
        };
        let (trainer, summary) = run_training_locked(trainer, run, &lock, options)?;
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

    fn compare_header(&self) -> String {
        format!(
            "{:<36} {:>12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10}",
            "run",
            "objective",
            "MIG",
            "SAP",
            "DCI-D",
            "DCI-C",
            "FVAE",
            "Vendi-S",
            "Vendi-T",
            "recon"
        )
    }

    fn compare_row(&self, run: &RunDir) -> Result<String, CliError> {
        let path = run.metrics();
        let text = std::fs::read_to_string(&path).map_err(|source| CliError::Io {
            path: path.clone(),
            source,
        })?;
        let m: EvalReport = serde_json::from_str(&text)
            .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
        let cell = |name: &str| {
            m.headline
                .get(name)
                .map_or("–".to_string(), |v| format!("{v:.4}"))
        };
        Ok(format!(
            "{:<36} {:>12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9.2} {:>9.2} {:>10.2}",
            run.root().display(),
            self.0.objective.name(),
            cell("dci.disentanglement"),
            cell("dci.completeness"),
            cell("snc.test"),
            cell("mig"),
            cell("sap_discrete"),
            m.factor_vae
                .as_ref()
                .map_or("–".to_string(), |f| format!("{:.4}", f.eval_accuracy)),
            m.vendi_prior_samples.score,
            m.vendi_aggregate_posterior.score,
            m.reconstruction_error
        ))
    }
}

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
