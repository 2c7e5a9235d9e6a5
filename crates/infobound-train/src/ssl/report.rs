//! `report.md` of a self-supervised run: what ran, the probe accuracies against chance, the
//! collapse diagnostics, and the pictures.

use std::fmt::Write as _;

use super::config::SslTrainConfig;
use super::eval::SslEvalReport;
use crate::run::{RunConfig, format_log_values, last_log_values};
use crate::{RunDir, TrainError, write_atomic};

/// Reads `metrics.json` of an SSL run, if it has one.
pub fn read_ssl_metrics(run: &RunDir) -> Option<SslEvalReport> {
    std::fs::read_to_string(run.metrics())
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
}

/// Writes `report.md` from the run folder's config, log, metrics and pictures.
pub fn write_ssl_report(run: &RunDir) -> Result<std::path::PathBuf, TrainError> {
    let config: SslTrainConfig = match RunConfig::from_run(run)? {
        RunConfig::Ssl(config) => *config,
        RunConfig::Vae(_) => {
            return Err(TrainError::RunDir {
                path: run.root().to_path_buf(),
                message: "holds a VAE run, not a self-supervised one".into(),
            });
        }
    };
    let views = config.augmentation.clone();
    let mut md = format!(
        "# Run `{}`\n\n{} self-supervised training, seed {}, {} steps of batch {}, {} views \
         ({} global at {} px, {} local at {} px), peak learning rate {:.4}.\n\n",
        config.name,
        config.objective.name(),
        config.seed,
        config.steps,
        config.batch_size,
        views.global_views.len() + views.num_local_views,
        views.global_views.len(),
        views.global_views[0].size,
        views.num_local_views,
        views.local_view.size,
        config.peak_learning_rate(),
    );
    let last = last_log_values(run)?;
    if !last.is_empty() {
        let _ = writeln!(
            md,
            "Newest logged values (step {}): {}\n",
            last.get("step").cloned().unwrap_or_default(),
            format_log_values(&last)
        );
    }
    match read_ssl_metrics(run) {
        Some(m) => {
            let _ = writeln!(
                md,
                "## Metrics (`metrics.json`)\n\nData: {} ({} classes), backbone features of \
                 dimension {}, evaluated at step {}.\n\n| metric | value |\n|---|---|",
                m.dataset, m.num_classes, m.feature_dim, m.step
            );
            for (name, value) in [
                (
                    format!(
                        "kNN accuracy (k = {}, τ = {}, cosine; bank {}, queries {})",
                        m.knn.config.k,
                        m.knn.config.temperature,
                        m.knn.bank_size,
                        m.knn.num_queries
                    ),
                    m.knn.accuracy,
                ),
                (
                    "kNN accuracy of the untrained network (initial weights)".to_string(),
                    m.untrained_knn_accuracy,
                ),
                (
                    "Linear probe, test accuracy".to_string(),
                    m.linear_probe.test_accuracy,
                ),
                (
                    "Linear probe of the untrained network, test accuracy".to_string(),
                    m.untrained_linear_probe_accuracy,
                ),
                (
                    "Linear probe, train accuracy".to_string(),
                    m.linear_probe.train_accuracy,
                ),
                (
                    "Online probe, test accuracy".to_string(),
                    m.online_probe_accuracy,
                ),
                (
                    "Chance (most frequent test class)".to_string(),
                    m.chance_level,
                ),
                (
                    "Effective rank, embeddings".to_string(),
                    m.embedding_collapse.effective_rank,
                ),
                (
                    "Uniformity, embeddings (t = 2)".to_string(),
                    m.embedding_collapse.uniformity,
                ),
                (
                    "Alignment, embeddings of two views".to_string(),
                    m.embedding_collapse.alignment.unwrap_or(f64::NAN),
                ),
                (
                    "Effective rank, backbone features".to_string(),
                    m.feature_effective_rank,
                ),
            ] {
                let _ = writeln!(md, "| {name} | {value:.4} |");
            }
            if !m.factor_knn.is_empty() {
                md.push_str(
                    "\nkNN readout of every ground-truth factor (same features, each factor as \
                     the label):\n\n| factor | kNN | untrained | chance |\n|---|---|---|---|\n",
                );
                for f in &m.factor_knn {
                    let _ = writeln!(
                        md,
                        "| {} | {:.4} | {:.4} | {:.4} |",
                        f.factor, f.knn_accuracy, f.untrained_knn_accuracy, f.chance_level
                    );
                }
            }
            let train = m
                .train_seconds
                .map_or(String::new(), |s| format!("training took {s:.1} s, "));
            let _ = writeln!(md, "\n{train}evaluation {:.1} s.\n", m.eval_seconds);
        }
        None => md.push_str("No `metrics.json` yet: run `infobound probe <run>`.\n\n"),
    }
    for (title, file) in [
        (
            "Nearest neighbours (one row per test query, then its 8 nearest training images by \
             cosine similarity of backbone features)",
            "retrieval.png",
        ),
        (
            "Views (one row per image: the image, then the global and local views a step draws)",
            "views.png",
        ),
        ("Training curves", "loss.svg"),
    ] {
        if run.file(file).exists() {
            let _ = writeln!(md, "## {title}\n\n![{file}]({file})\n");
        }
    }
    md.push_str(
        "Files: `config.toml` (resolved configuration), `train_log.jsonl`, `checkpoints/`, \
         `environment.json`.\n",
    );
    let path = run.file("report.md");
    write_atomic(&path, md.as_bytes())?;
    Ok(path)
}
