//! `report.md` of a VAE run folder.

use std::fmt::Write as _;

use super::eval::{EvalReport, HeadlineScores};
use crate::run::{format_log_values, read_log};
use crate::{RunDir, TrainConfig, TrainError, write_atomic};

fn row(name: &str, trained: f64, untrained: Option<f64>) -> String {
    match untrained {
        Some(u) => format!("| {name} | {trained:.4} | {u:.4} |\n"),
        None => format!("| {name} | {trained:.4} | – |\n"),
    }
}

/// One row per headline number of the trained encoder, with the untrained floor beside it.
fn headline_rows(h: &HeadlineScores, u: Option<&HeadlineScores>) -> String {
    h.iter()
        .map(|(name, value)| row(name, *value, u.and_then(|u| u.get(name).copied())))
        .collect()
}

/// Writes `report.md` from the run folder's config, log, metrics and pictures.
pub fn write_report(run: &RunDir) -> Result<std::path::PathBuf, TrainError> {
    let config: TrainConfig = run.load_config()?;
    let metrics: Option<EvalReport> = std::fs::read_to_string(run.metrics())
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let log = read_log(run)?;
    let last = log.last();
    let mut md = format!(
        "# Run `{}`\n\n{} on `{}`, seed {}, {} steps of batch {} ({} networks, K = {}).\n\n",
        config.name,
        config.objective.name(),
        config.dataset.name(),
        config.seed,
        config.steps,
        config.batch_size,
        serde_json::to_value(config.model.architecture)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        config.model.latent_dim
    );
    if let Some(last) = last {
        let _ = writeln!(
            md,
            "Final log interval (step {}): {}\n",
            last.get("step").cloned().unwrap_or_default(),
            format_log_values(last)
        );
    }
    match &metrics {
        Some(m) => {
            md.push_str("## Metrics (`metrics.json`)\n\n| metric | trained | untrained encoder |\n|---|---|---|\n");
            md.push_str(&headline_rows(&m.headline, m.untrained.as_ref()));
            if let Some(f) = &m.factor_vae {
                md.push_str(&row("FactorVAE score (eval acc.)", f.eval_accuracy, None));
            }
            md.push_str(&row(
                "Vendi, prior samples (pixels)",
                m.vendi_prior_samples.score,
                None,
            ));
            md.push_str(&row(
                "Vendi, aggregate-posterior samples (pixels)",
                m.vendi_aggregate_posterior.score,
                None,
            ));
            md.push_str(&row(
                "Vendi, active-latent traversals at ±25σ (pixels)",
                m.vendi_active_traversals.score,
                None,
            ));
            if let Some(d) = &m.diagnostics {
                md.push_str(&row(
                    "Active latents (Var μ > 0.01)",
                    d.active_latents as f64,
                    None,
                ));
                md.push_str(&row("Rate E KL(q(z|x) ‖ p(z)) (nats)", d.total_kl, None));
                md.push_str(&row(
                    "Aggregate posterior vs prior (moment-matched KL, nats)",
                    d.aggregate_gaussian_kl,
                    None,
                ));
                if let Some(c) = d.mean_abs_corr_mu {
                    md.push_str(&row("Mean |corr μ| of active latents", c, None));
                }
            }
            md.push_str(&row(
                "Reconstruction error (per image)",
                m.reconstruction_error,
                None,
            ));
            let _ = writeln!(
                md,
                "\nEvaluated at step {} on {} in {:.1} s.\n",
                m.step, m.dataset, m.eval_seconds
            );
        }
        None => md.push_str("No `metrics.json` yet: run `infobound eval <run>`.\n\n"),
    }
    for (title, file) in [
        (
            "Reconstructions (top: data, bottom: reconstruction from μ)",
            "reconstructions.png",
        ),
        (
            "Latent traversals (one row per latent, z_k from −3 to +3)",
            "traversals.png",
        ),
        ("Prior samples", "samples.png"),
        ("Training curves", "loss.svg"),
    ] {
        if run.file(file).exists() {
            let _ = writeln!(md, "## {title}\n\n![{file}]({file})\n");
        }
    }
    md.push_str("Files: `config.toml` (resolved configuration), `train_log.jsonl`, `checkpoints/`, `environment.json`.\n");
    let path = run.file("report.md");
    write_atomic(&path, md.as_bytes())?;
    Ok(path)
}
