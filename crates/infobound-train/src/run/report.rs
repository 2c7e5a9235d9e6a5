//! What every run folder holds besides the family's own report: `environment.json`, the log
//! read back, and `loss.svg`.

use std::fmt::Write as _;

use serde::Serialize;

use super::RunDir;
use super::fsutil::{write_atomic, write_json_atomic};
use crate::TrainError;

/// Where and with what a run was produced.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    /// infobound version.
    pub infobound_version: &'static str,
    /// Burn version the build pins.
    pub burn_version: &'static str,
    /// Backend and device, as the CLI selected them (e.g. `flex`, `Device<Flex>`).
    pub backend: String,
    /// Debug form of the device.
    pub device: String,
    /// Threads available to the process.
    pub threads: usize,
    /// `RAYON_NUM_THREADS`, if set.
    pub rayon_num_threads: Option<String>,
    /// Operating system and architecture.
    pub os: String,
    /// `git rev-parse HEAD` of the working directory, if it is a repository.
    pub git_commit: Option<String>,
    /// Command line of the process.
    pub command_line: Vec<String>,
}

impl Environment {
    /// Collects the environment of this process for `backend` / `device`.
    pub fn capture(backend: &str, device: &burn::tensor::Device) -> Self {
        let git_commit = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        Self {
            infobound_version: env!("CARGO_PKG_VERSION"),
            burn_version: "0.22.1",
            backend: backend.to_string(),
            device: format!("{device:?}"),
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            rayon_num_threads: std::env::var("RAYON_NUM_THREADS").ok(),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            git_commit,
            command_line: std::env::args().collect(),
        }
    }

    /// Writes `environment.json` of `run`.
    pub fn write(&self, run: &RunDir) -> Result<(), TrainError> {
        write_json_atomic(&run.environment(), self)
    }
}

/// `name = value, …` for one JSONL log record without its step (numbers to 4 decimals).
pub fn format_log_values(record: &serde_json::Map<String, serde_json::Value>) -> String {
    record
        .iter()
        .filter(|(k, _)| k.as_str() != "step")
        .map(|(k, v)| {
            format!(
                "{k} = {}",
                v.as_f64().map_or(v.to_string(), |f| format!("{f:.4}"))
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads `train_log.jsonl` into rows of name → value (malformed lines are skipped).
///
/// # Errors
/// [`TrainError::Io`] if the log exists but cannot be read.
pub fn read_log(
    run: &RunDir,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, TrainError> {
    let path = run.train_log();
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.as_object().cloned())
        .collect())
}

const SKIP_CURVES: [&str; 4] = ["step", "learning_rate", "skipped_steps", "steps_per_second"];

/// Draws every logged term against the step, one panel per term, as `loss.svg`.
pub fn write_loss_svg(run: &RunDir) -> Result<(), TrainError> {
    let rows = read_log(run)?;
    let mut names: Vec<String> = Vec::new();
    for row in &rows {
        for name in row.keys() {
            if !SKIP_CURVES.contains(&name.as_str()) && !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    let (width, panel, margin) = (640.0, 110.0, 48.0);
    let height = margin + names.len() as f64 * (panel + 30.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let max_step = rows
        .iter()
        .filter_map(|r| r.get("step").and_then(|v| v.as_f64()))
        .fold(1.0_f64, f64::max);
    for (i, name) in names.iter().enumerate() {
        let top = 20.0 + i as f64 * (panel + 30.0);
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| Some((r.get("step")?.as_f64()?, r.get(name)?.as_f64()?)))
            .filter(|(_, v)| v.is_finite())
            .collect();
        let (lo, hi) = points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, v)| {
                (lo.min(*v), hi.max(*v))
            });
        let span = if hi > lo { hi - lo } else { 1.0 };
        let _ = writeln!(
            svg,
            "<text x=\"{margin}\" y=\"{}\">{name} (min {lo:.4}, max {hi:.4})</text>\n\
             <rect x=\"{margin}\" y=\"{}\" width=\"{}\" height=\"{panel}\" fill=\"none\" stroke=\"#bbb\"/>",
            top + 10.0,
            top + 14.0,
            width - 2.0 * margin
        );
        let path: Vec<String> = points
            .iter()
            .map(|(s, v)| {
                let x = margin + (s / max_step) * (width - 2.0 * margin);
                let y = top + 14.0 + panel - (v - lo) / span * panel;
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"{}\"/>",
            path.join(" ")
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{margin}\" y=\"{}\">step 0 … {max_step}</text>\n</svg>",
        height - 10.0
    );
    write_atomic(&run.file("loss.svg"), svg.as_bytes())
}

/// The newest logged value of every name in `train_log.jsonl` (later rows overwrite earlier
/// ones).
///
/// # Errors
/// [`TrainError::Io`] if the log exists but cannot be read.
pub fn last_log_values(
    run: &RunDir,
) -> Result<serde_json::Map<String, serde_json::Value>, TrainError> {
    let mut merged = serde_json::Map::new();
    for row in read_log(run)? {
        merged.extend(row);
    }
    Ok(merged)
}
