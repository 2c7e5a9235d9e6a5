//! A run's `train_log.jsonl` and its progress bar.

use std::io::Write;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use super::RunDir;
use super::fsutil::write_atomic;
use crate::TrainError;

/// The training progress bar (steps/s, ETA, running loss terms), hidden when `enabled` is false.
pub fn progress_bar(enabled: bool, start: usize, total: usize) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    bar.set_position(start as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} steps {per_sec} ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// Keeps only the log lines of steps ≤ `step` (a resumed run re-logs what came after its
/// checkpoint), rewriting the file atomically.
fn truncate_log(path: &Path, step: usize) -> Result<(), TrainError> {
    if !path.exists() {
        return Ok(());
    }
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    let kept: String = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s as usize <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    write_atomic(path, kept.as_bytes())
}

/// A run's append-only `train_log.jsonl`, opened for step `start_step` on: lines of later steps
/// (from before a resume) are dropped first. Every line is flushed as it is written, so a killed
/// run loses none.
pub struct TrainLog {
    /// `None` on the ranks of a data-parallel job other than rank 0, which write nothing.
    file: Option<(std::fs::File, std::path::PathBuf)>,
}

impl TrainLog {
    /// Opens (creating) the log of `run` for steps after `start_step`.
    pub fn open(run: &RunDir, start_step: usize) -> Result<Self, TrainError> {
        let path = run.train_log();
        truncate_log(&path, start_step)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| TrainError::io(&path, e))?;
        Ok(Self {
            file: Some((file, path)),
        })
    }

    /// A log that drops every line: the log of a rank other than 0 in a data-parallel job.
    pub fn discard() -> Self {
        Self { file: None }
    }

    /// Appends one JSON line.
    pub fn write(&mut self, line: &impl std::fmt::Display) -> Result<(), TrainError> {
        let Some((file, path)) = &mut self.file else {
            return Ok(());
        };
        writeln!(file, "{line}")
            .and_then(|()| file.flush())
            .map_err(|e| TrainError::io(&*path, e))
    }

    /// Appends one row `{"step": step, name: value, ...}` (non-finite values as `null`).
    pub fn write_row(&mut self, step: usize, values: &[(&str, f64)]) -> Result<(), TrainError> {
        let mut row = serde_json::Map::new();
        row.insert("step".into(), step.into());
        for (name, value) in values {
            insert_number(&mut row, name, *value);
        }
        self.write(&serde_json::Value::from(row))
    }
}

/// Inserts `value` under `name`, `null` where it is not finite (JSON has no NaN).
pub fn insert_number(row: &mut serde_json::Map<String, serde_json::Value>, name: &str, value: f64) {
    row.insert(
        name.into(),
        serde_json::Number::from_f64(value).map_or(serde_json::Value::Null, Into::into),
    );
}

/// Whether something done every `every` steps (logging, checkpoints) is due after `step` of
/// `total`: on multiples of `every` and always at the last step.
pub fn due(step: usize, every: usize, total: usize) -> bool {
    step.is_multiple_of(every) || step == total
}
