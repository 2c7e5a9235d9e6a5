//! `infobound export tensorboard`: a run folder as one TensorBoard event file.
//!
//! What goes in (tags are our choice):
//! - every finite number of every `train_log.jsonl` row except `step`, as scalar
//!   `train/<key>` at the row's step (monitor rows included; `null`, strings and booleans are
//!   skipped, numbers outside the `f32` range of `simple_value` are skipped and counted in a
//!   warning);
//! - every finite numeric leaf of `metrics.json` as scalar `eval/<path>` at the final step, where
//!   `<path>` is the leaf's JSON pointer (RFC 6901) without its leading `/`
//!   (`{"headline": {"mig": 0.1}}` → `eval/headline/mig`);
//! - `config.toml` as hyper-parameters of the HParams plugin (one per leaf, dotted key path;
//!   arrays as their TOML text) and as text summary `config` (the TOML in a Markdown code block);
//! - every `*.png` of the run folder as image `images/<file stem>` at the final step.
//!
//! The final step is `metrics.json`'s `step`, else the largest logged step, else 0. A
//! malformed `train_log.jsonl` line (a run killed mid-write) and a file ending in `.png` that is
//! not a PNG are skipped with a warning on stderr; a missing `train_log.jsonl` or `metrics.json`
//! (a run trained with `--no-eval`) is a warning too. A missing or unparsable `config.toml` and
//! an unparsable `metrics.json` are errors: the folder is not a run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::Value;

use crate::error::CliError;
use crate::tensorboard::{EventWriter, HParamKind, now_secs};

/// `infobound export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The format to export to.
    #[command(subcommand)]
    pub format: ExportFormat,
}

/// The formats of `infobound export`.
#[derive(Debug, Subcommand)]
pub enum ExportFormat {
    /// Write each run as a TensorBoard event file (scalars, eval metrics, config, images).
    ///
    /// One file `events.out.tfevents.<time>.<host>.infobound` per run, in RUN/tensorboard/ or,
    /// with --out DIR, in DIR/<run folder name>/ (so that `tensorboard --logdir DIR` lists the
    /// runs by name); an earlier export's file in that folder is replaced.
    ///
    /// Contents: train_log.jsonl numbers as scalars `train/<key>` at their steps; metrics.json
    /// numbers as `eval/<json/pointer/path>` at the final step (metrics.json's `step`);
    /// config.toml as hyper-parameters (HParams tab) and as text `config`; every *.png of the
    /// run folder as image `images/<name>`.
    ///
    /// A malformed train_log.jsonl line, a missing train_log.jsonl or metrics.json and a .png
    /// that is not a PNG are skipped with a warning on stderr; a folder without a readable
    /// config.toml is an error.
    ///
    /// Open with `tensorboard --logdir DIR`; `wandb sync DIR/<run>` imports the files into
    /// Weights & Biases.
    Tensorboard(TensorboardArgs),
    /// Write a run's network as a safetensors file with the key names of the equivalent PyTorch
    /// module, from the run's newest checkpoint.
    ///
    /// VAE runs (Burgess networks): encoder and decoder under `encoder.model.{0,2,4,6,9,11}.*`
    /// and `decoder.model.{0,2,5,7,9,11}.*`, disent's EncoderConv64 / DecoderConv64 (with
    /// padding 1 in the encoder; μ is the first half of `encoder.model.11`'s output, log σ² the
    /// second). Self-supervised runs: the backbone with torchvision's ResNet keys (`conv1`,
    /// `bn1`, `layer1.0.conv1`, ..., `downsample.0`/`.1`; no `fc`; the CIFAR stem is a 3×3
    /// stride-1 padding-1 conv without max-pool). Batch norms carry their running statistics but
    /// no `num_batches_tracked` (PyTorch fills it in on load). In PyTorch:
    /// `model.load_state_dict(safetensors.torch.load_file(FILE), strict=True)`.
    Weights(super::weights::ExportWeightsArgs),
}

/// `infobound export tensorboard`.
#[derive(Debug, Args)]
pub struct TensorboardArgs {
    /// Run folders.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Write DIR/<run folder name>/ instead of RUN/tensorboard/.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `infobound export`.
pub fn run(args: ExportArgs) -> Result<(), CliError> {
    match args.format {
        ExportFormat::Tensorboard(args) => tensorboard(&args),
        ExportFormat::Weights(args) => super::weights::export(&args),
    }
}

/// The folder name of run `dir` (`runs/quickstart-seed0/` → `quickstart-seed0`; `.` → the
/// current folder's name).
fn run_name(dir: &Path) -> String {
    let full = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    full.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// `infobound export tensorboard`: every run's output folder is decided (and distinct) before
/// the first file is written.
fn tensorboard(args: &TensorboardArgs) -> Result<(), CliError> {
    let mut targets: Vec<(&Path, PathBuf)> = Vec::new();
    for dir in &args.runs {
        let out = match &args.out {
            Some(out) => out.join(run_name(dir)),
            None => dir.join("tensorboard"),
        };
        if let Some((other, _)) = targets.iter().find(|(_, o)| *o == out) {
            return Err(CliError::Usage(format!(
                "{} and {} would both be written to {}; give runs with distinct folder names",
                other.display(),
                dir.display(),
                out.display()
            )));
        }
        targets.push((dir, out));
    }
    for (dir, out) in targets {
        let path = export_run(dir, &out)?;
        println!("{}: {}", dir.display(), path.display());
    }
    Ok(())
}

/// This machine's name for event file names (TensorFlow's convention
/// `events.out.tfevents.<time>.<host>`), reduced to characters safe in a file name.
pub(crate) fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// Reads `path` to a string.
fn read_text(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// One `train_log.jsonl` row: its step and its numbers.
pub(crate) struct LogRow {
    /// The row's `step`.
    pub(crate) step: i64,
    /// Every other key with a number.
    pub(crate) values: Vec<(String, f64)>,
}

/// The row of the log line `line`, if it is a JSON object with a non-negative integer `step`.
pub(crate) fn parse_log_row(line: &str) -> Option<LogRow> {
    let value = serde_json::from_str::<Value>(line).ok()?;
    let object = value.as_object()?;
    let step = i64::try_from(object.get("step")?.as_u64()?).ok()?;
    let values = object
        .iter()
        .filter(|(key, _)| key.as_str() != "step")
        .filter_map(|(key, value)| Some((key.clone(), value.as_f64()?)))
        .collect();
    Some(LogRow { step, values })
}

/// The finite `values` that fit TensorBoard's `f32` scalars, tagged `<prefix><key>`; counts the
/// finite ones outside the `f32` range in `out_of_range`.
pub(crate) fn scalar_values(
    prefix: &str,
    values: &[(String, f64)],
    out_of_range: &mut usize,
) -> Vec<(String, f32)> {
    values
        .iter()
        .filter(|(_, v)| v.is_finite())
        .filter_map(|(key, v)| {
            let single = *v as f32;
            if single.is_finite() {
                Some((format!("{prefix}{key}"), single))
            } else {
                *out_of_range += 1;
                None
            }
        })
        .collect()
}

/// The rows of `path`; unreadable lines are skipped with a warning, a missing file is a warning
/// and no rows.
fn read_train_log(path: &Path) -> Result<Vec<LogRow>, CliError> {
    if !path.exists() {
        eprintln!(
            "warning: {}: missing, no train/ scalars exported",
            path.display()
        );
        return Ok(Vec::new());
    }
    let text = read_text(path)?;
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_log_row(line) {
            Some(row) => rows.push(row),
            None => eprintln!(
                "warning: {}:{}: skipped (not a JSON object with a non-negative integer step)",
                path.display(),
                index + 1
            ),
        }
    }
    Ok(rows)
}

/// Every numeric leaf of `value` under `prefix` with its path: object keys and array indices
/// joined by `/`, each escaped as in a JSON pointer (RFC 6901 §3: `~` → `~0`, `/` → `~1`).
fn numeric_leaves(value: &Value, prefix: &str, out: &mut Vec<(String, f64)>) {
    let child = |key: &str| format!("{prefix}/{}", key.replace('~', "~0").replace('/', "~1"));
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                numeric_leaves(value, &child(key), out);
            }
        }
        Value::Array(items) => {
            for (index, value) in items.iter().enumerate() {
                numeric_leaves(value, &child(&index.to_string()), out);
            }
        }
        Value::Number(number) => out.extend(number.as_f64().map(|v| (prefix.to_string(), v))),
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}

/// `metrics.json` of the run (`None`, with a warning, where it is missing).
fn read_metrics(path: &Path) -> Result<Option<Value>, CliError> {
    if !path.exists() {
        eprintln!(
            "warning: {}: missing, no eval/ scalars exported",
            path.display()
        );
        return Ok(None);
    }
    serde_json::from_str(&read_text(path)?)
        .map(Some)
        .map_err(|e| CliError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

/// Every leaf of the TOML `table` under the dotted key path `prefix` as a hyper-parameter.
fn hparams(table: &toml::Table, prefix: &str, out: &mut BTreeMap<String, HParamKind>) {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let kind = match value {
            toml::Value::Table(table) => {
                hparams(table, &name, out);
                continue;
            }
            toml::Value::String(s) => HParamKind::String(s.clone()),
            toml::Value::Integer(i) => HParamKind::Number(*i as f64),
            toml::Value::Float(f) => HParamKind::Number(*f),
            toml::Value::Boolean(b) => HParamKind::Bool(*b),
            toml::Value::Array(_) | toml::Value::Datetime(_) => {
                HParamKind::String(value.to_string())
            }
        };
        out.insert(name, kind);
    }
}

/// `text` in a Markdown code block whose fence is longer than any run of backticks inside.
fn code_block(text: &str, language: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{language}\n{}\n{fence}", text.trim_end())
}

/// The `*.png` files of `dir`, by name.
fn png_files(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CliError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| CliError::Io {
                path: dir.to_path_buf(),
                source,
            })?
            .path();
        if path.is_file()
            && path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("png"))
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Exports run `dir` into the folder `out`; returns the event file written. Earlier exports'
/// event files (`events.out.tfevents.*.infobound`) in `out` are removed once the new one is in
/// place, so that TensorBoard does not show the run twice.
fn export_run(dir: &Path, out: &Path) -> Result<PathBuf, CliError> {
    let config_path = dir.join("config.toml");
    let config_text = read_text(&config_path)?;
    let config: toml::Table =
        config_text
            .parse()
            .map_err(|e: toml::de::Error| CliError::Parse {
                path: config_path.clone(),
                reason: e.to_string(),
            })?;
    let log = read_train_log(&dir.join("train_log.jsonl"))?;
    let metrics = read_metrics(&dir.join("metrics.json"))?;
    let final_step = metrics
        .as_ref()
        .and_then(|m| m.get("step")?.as_u64())
        .and_then(|s| i64::try_from(s).ok())
        .or_else(|| log.iter().map(|r| r.step).max())
        .unwrap_or(0);
    let images = png_files(dir)?;

    std::fs::create_dir_all(out).map_err(|source| CliError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let started = now_secs();
    let name = format!(
        "events.out.tfevents.{:010}.{}.infobound",
        started as u64,
        host_name()
    );
    let path = out.join(name);
    let mut writer = EventWriter::create(&path)?;
    let mut hyper = BTreeMap::new();
    hparams(&config, "", &mut hyper);
    writer.add_hparams(hyper, started)?;
    writer.add_text("config", 0, &code_block(&config_text, "toml"))?;

    let mut out_of_range = 0usize;
    for row in &log {
        writer.add_scalars(
            row.step,
            &scalar_values("train/", &row.values, &mut out_of_range),
        )?;
    }
    if let Some(metrics) = &metrics {
        let mut leaves = Vec::new();
        numeric_leaves(metrics, "", &mut leaves);
        writer.add_scalars(
            final_step,
            &scalar_values("eval", &leaves, &mut out_of_range),
        )?;
    }
    if out_of_range > 0 {
        eprintln!(
            "warning: {}: {out_of_range} values outside the f32 range of TensorBoard scalars skipped",
            dir.display()
        );
    }
    for image in images {
        let bytes = std::fs::read(&image).map_err(|source| CliError::Io {
            path: image.clone(),
            source,
        })?;
        let stem = image
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        match writer.add_png(&format!("images/{stem}"), final_step, bytes) {
            Ok(()) => {}
            Err(CliError::Png { reason, .. }) => {
                eprintln!("warning: {}: skipped: {reason}", image.display());
            }
            Err(other) => return Err(other),
        }
    }
    let path = writer.finish()?;
    remove_earlier_exports(out, &path)?;
    Ok(path)
}

/// Removes every `events.out.tfevents.*.infobound` file of `out` but `keep`.
fn remove_earlier_exports(out: &Path, keep: &Path) -> Result<(), CliError> {
    let io = |path: &Path, source| CliError::Io {
        path: path.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(out).map_err(|e| io(out, e))? {
        let path = entry.map_err(|e| io(out, e))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let ours = name
            .is_some_and(|n| n.starts_with("events.out.tfevents.") && n.ends_with(".infobound"));
        if ours && path != keep {
            std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_leaves_are_pointer_paths_of_numbers_only() {
        let metrics = serde_json::json!({
            "step": 5,
            "headline": {"mig": 0.25, "a/b~c": 1},
            "metrics": [{"metric": "dci", "score": 0.5}, null, true],
        });
        let mut leaves = Vec::new();
        numeric_leaves(&metrics, "", &mut leaves);
        leaves.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            leaves,
            vec![
                ("/headline/a~1b~0c".to_string(), 1.0),
                ("/headline/mig".to_string(), 0.25),
                ("/metrics/0/score".to_string(), 0.5),
                ("/step".to_string(), 5.0),
            ]
        );
        for (path, value) in &leaves {
            assert_eq!(metrics.pointer(path).and_then(Value::as_f64), Some(*value));
        }
    }

    #[test]
    fn config_leaves_become_dotted_hyper_parameters() {
        let table: toml::Table = "seed = 3\n[objective]\nalpha = 0.5\nkind = \"x\"\nflag = true\n\
                                  sizes = [1, 2]\n"
            .parse()
            .expect("toml");
        let mut out = BTreeMap::new();
        hparams(&table, "", &mut out);
        assert_eq!(out["seed"], HParamKind::Number(3.0));
        assert_eq!(out["objective.alpha"], HParamKind::Number(0.5));
        assert_eq!(out["objective.kind"], HParamKind::String("x".into()));
        assert_eq!(out["objective.flag"], HParamKind::Bool(true));
        assert_eq!(out["objective.sizes"], HParamKind::String("[1, 2]".into()));
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn code_blocks_outgrow_backtick_runs() {
        assert_eq!(code_block("a = 1\n", "toml"), "```toml\na = 1\n```");
        assert_eq!(code_block("s = \"````\"", ""), "`````\ns = \"````\"\n`````");
    }

    #[test]
    fn run_names_ignore_a_trailing_slash() {
        assert_eq!(
            run_name(Path::new("runs/quickstart-seed0/")),
            "quickstart-seed0"
        );
        assert_eq!(run_name(Path::new("a")), "a");
    }
}
