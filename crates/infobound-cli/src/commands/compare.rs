//! `infobound compare`: tables of runs' metrics and configuration, one per model family,
//! optionally one row per group of runs (mean ± sample standard deviation) and Welch's t-test
//! against a baseline group.
//!
//! # Configuration columns
//!
//! Read from each run's resolved configuration (its `config.toml` loaded and written back, so
//! defaults added since the run was made are filled in): the top-level `seed`, `steps` and
//! `batch_size`; the learning rate `optimizer.learning_rate` (VAE family) or `optimizer.base_lr`
//! (self-supervised family); every value under `[objective]` flattened to a dotted key
//! (`objective.kind`, `objective.alpha`, `objective.capacity_schedule.kind`, ...). An array is
//! one value, written as JSON text. CSV and JSON get every configuration column. The text and
//! Markdown tables (our choice, to keep them narrow) get only the columns whose value differs
//! between two rows that both have it, where a row is a run, or with grouping a group whose
//! runs all agree on the key (a key on which a group's runs disagree, like `seed`, is left out);
//! `objective.kind` is left out there because the method column shows it, and so are the
//! `--group-by` keys, which the group label shows.
//!
//! # Groups
//!
//! `--grouped`: a run's group is its folder name without a trailing `-seed<digits>`.
//! `--group-by KEY,...`: a run's group is the label `KEY=VALUE,KEY=VALUE` of its values of the
//! given configuration columns, in the order given; VALUE is the cell text (strings bare, numbers
//! in shortest round-trip form such as `0.5`, `3.0` or `1e-6`, arrays as JSON), empty where
//! the run has no such key. `--baseline` names a group in the same form, numbers compared by
//! value (`objective.alpha=0` names the group `objective.alpha=0.0`).
//!
//! # JSON document (`--format json`)
//!
//! One object, meant for `pandas.DataFrame(doc["rows"])` (or `"groups"`, `"tests"`); every
//! missing or undefined number is `null`:
//!
//! ```text
//! {
//!   "version": 1,
//!   "grouping": "none" | "folder" | "config",
//!   "group_by": ["objective.kind", ...],     // the --group-by keys, [] otherwise
//!   "baseline": "GROUP" | null,
//!   "skipped": ["runs/x-seed4", ...],        // run folders without metrics.json
//!   "metrics": [{"family": "vae", "column": "DCI-D",
//!                "pointer": "/headline/dci.disentanglement"}, ...],
//!   "config":  [{"family": "vae", "column": "objective.alpha"}, ...],
//!   "rows":    [{"run": "runs/a-seed0", "family": "vae", "method": "alpha_tcvae",
//!                "group": "a", <config column>: value | null, ...,
//!                <metric column>: number | null, ...}, ...],
//!   "groups":  [{"group": "a", "family": "vae", "method": "alpha_tcvae", "n": 5,
//!                <config column>: value shared by the group's runs | null, ...,
//!                "<metric> mean": number | null, "<metric> sd": number | null,
//!                "<metric> n": count, ...}, ...],   // [] without grouping
//!   "tests":   [{"family": "vae", "group": "b", "baseline": "a", "metric": "DCI-D",
//!                "diff": number | null, "t": number | null, "df": number | null,
//!                "p": number | null}, ...]           // [] without --baseline
//! }
//! ```
//!
//! A row has the configuration and metric columns of its family (`metrics` and `config` list
//! them); `group` is the group under the active grouping (the folder group without one); `sd` is
//! the sample standard deviation (divisor n − 1, null below two values); `diff` is the group's
//! mean minus the baseline's, `t`, `df` and `p` Welch's statistic, degrees of freedom and
//! two-sided p-value (null where the test is undefined: fewer than two values on a side, or
//! both sides constant).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use infobound_metrics::welch_t_test;
use infobound_train::RunDir;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

use crate::error::CliError;

/// One column of a family's table: title and JSON pointer (RFC 6901) into the run's
/// `metrics.json`.
pub(crate) type CompareColumn = (&'static str, &'static str);

/// What a family puts in `infobound compare`.
pub(crate) struct CompareColumns {
    /// Name of the family, which keeps its runs in their own table.
    pub family: &'static str,
    /// Title of the column that names the run's objective or method.
    pub method_title: &'static str,
    /// The run's objective or method.
    pub method: String,
    /// The metric columns.
    pub columns: &'static [CompareColumn],
}

/// Output format of `infobound compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    /// Aligned plain-text columns.
    Text,
    /// GitHub-flavoured Markdown tables.
    Markdown,
    /// Comma-separated values (RFC 4180 quoting), full precision.
    Csv,
    /// One JSON document with flat per-run, per-group and per-test rows for pandas (schema in
    /// the module documentation).
    Json,
}

/// How runs are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grouping<'a> {
    /// One row per run.
    None,
    /// By folder name without `-seed<digits>` (`--grouped`).
    Folder,
    /// By the values of these configuration columns (`--group-by`).
    Config(&'a [String]),
}

/// The options of one `infobound compare`.
pub(crate) struct CompareOptions<'a> {
    pub format: CompareFormat,
    pub grouping: Grouping<'a>,
    pub baseline: Option<&'a str>,
}

/// What `infobound compare` prints, and the run folders it left out.
pub(crate) struct CompareOutput {
    /// The tables (or the JSON document).
    pub text: String,
    /// Run folders without a metrics.json (a run still training), in the order given.
    pub skipped: Vec<PathBuf>,
}

/// The missing-value mark of the text and Markdown tables.
const MISSING: &str = "–";

/// Top-level keys of the resolved configuration that become columns.
const TOP_LEVEL_KEYS: [&str; 3] = ["seed", "steps", "batch_size"];

/// `[optimizer]` keys that hold the learning rate: `learning_rate` (VAE family), `base_lr`
/// (self-supervised family).
const LEARNING_RATE_KEYS: [&str; 2] = ["learning_rate", "base_lr"];

/// The configuration column of the objective's kind, which the method column already shows.
const KIND_KEY: &str = "objective.kind";

/// One run: its label, group, method, configuration columns and one value per metric column
/// (`None`: missing).
struct RunRow {
    label: String,
    group: String,
    method: String,
    config: Vec<(String, Value)>,
    values: Vec<Option<f64>>,
}

impl RunRow {
    fn config(&self, key: &str) -> Option<&Value> {
        self.config.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// The runs of one family and the union of their configuration keys in order of first
/// appearance.
struct Table {
    family: &'static str,
    method_title: &'static str,
    columns: &'static [CompareColumn],
    config_keys: Vec<String>,
    runs: Vec<RunRow>,
}

/// A configuration value over a group's runs.
#[derive(Debug, Clone, PartialEq)]
enum Shared {
    /// No run of the group has the key.
    Absent,
    /// Every run has this value.
    Same(Value),
    /// The runs disagree (or only some have the key).
    Mixed,
}

/// The runs of one group: the distinct methods in order, the number of runs, each
/// configuration key's shared value and every column's present values.
#[derive(Debug, PartialEq)]
struct Group {
    name: String,
    methods: Vec<String>,
    runs: usize,
    config: Vec<Shared>,
    values: Vec<Vec<f64>>,
}

/// The group of the run folder `dir`: its folder name without a trailing `-seed<digits>`
/// (`runs/study/alpha0-seed3` → `alpha0`).
fn group_name(dir: &Path) -> String {
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    if let Some(at) = name.rfind("-seed") {
        let digits = &name[at + "-seed".len()..];
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return name[..at].to_string();
        }
    }
    name
}

/// The config column of the SSL views' local crop count.
const LOCAL_VIEWS_KEY: &str = "augmentation.num_local_views";

/// The configuration columns of a resolved configuration (see the module documentation), in
/// a fixed order: `seed`, `steps`, `batch_size`, the learning rate, the SSL local crop count,
/// `objective.kind`, then the other objective keys.
fn config_columns(config: &Value) -> Vec<(String, Value)> {
    let mut columns = Vec::new();
    for key in TOP_LEVEL_KEYS {
        if let Some(value) = config.get(key) {
            push_leaf(key.to_string(), value, &mut columns);
        }
    }
    if let Some(optimizer) = config.get("optimizer") {
        for key in LEARNING_RATE_KEYS {
            if let Some(value) = optimizer.get(key) {
                push_leaf(format!("optimizer.{key}"), value, &mut columns);
            }
        }
    }
    // The SSL studies' one data-side difference between rows: how many local crops a step
    // draws.
    if let Some(views) = config.pointer("/augmentation/num_local_views") {
        push_leaf(LOCAL_VIEWS_KEY.to_string(), views, &mut columns);
    }
    if let Some(objective) = config.get("objective") {
        if let Some(kind) = objective.get("kind") {
            push_leaf(KIND_KEY.to_string(), kind, &mut columns);
        }
        flatten("objective", objective, &mut columns);
    }
    columns
}

/// Every leaf under `value` as `prefix.key.key...` (except `objective.kind`, placed first).
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let path = format!("{prefix}.{key}");
                if path != KIND_KEY {
                    flatten(&path, value, out);
                }
            }
        }
        _ => push_leaf(prefix.to_string(), value, out),
    }
}

/// A scalar as it is; an array (or table) as its JSON text so that every cell is flat.
fn push_leaf(key: String, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Null => {}
        Value::Array(_) | Value::Object(_) => out.push((key, Value::String(value.to_string()))),
        _ => out.push((key, value.clone())),
    }
}

/// A configuration value as a cell: strings bare, everything else as JSON.
fn config_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The `--group-by` label of a run: `KEY=VALUE` per key, joined by `,`.
fn config_label(run: &[(String, Value)], keys: &[String]) -> String {
    keys.iter()
        .map(|key| {
            let value = run
                .iter()
                .find(|(k, _)| k == key)
                .map_or_else(String::new, |(_, v)| config_text(v));
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The value at `pointer` in `metrics`: a finite number, or `None` (absent, `null`, not a
/// number) so that runs written before a field existed still compare.
fn metric_value(metrics: &Value, pointer: &str) -> Option<f64> {
    metrics
        .pointer(pointer)
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite())
}

/// Reads `run`'s `metrics.json` into one row with the configuration columns of `config`.
fn read_row(
    dir: &Path,
    run: &RunDir,
    columns: &CompareColumns,
    config: &Value,
    grouping: Grouping<'_>,
) -> Result<RunRow, CliError> {
    let path = run.metrics();
    let text = std::fs::read_to_string(&path).map_err(|source| CliError::Io {
        path: path.clone(),
        source,
    })?;
    let metrics: Value = serde_json::from_str(&text).map_err(|e| CliError::RunFile {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let config = config_columns(config);
    let group = match grouping {
        Grouping::Config(keys) => config_label(&config, keys),
        Grouping::None | Grouping::Folder => group_name(dir),
    };
    Ok(RunRow {
        label: dir.display().to_string(),
        group,
        method: columns.method.clone(),
        config,
        values: columns
            .columns
            .iter()
            .map(|(_, pointer)| metric_value(&metrics, pointer))
            .collect(),
    })
}

/// The runs grouped by [`RunRow::group`], groups in the order of first appearance.
fn groups(runs: &[RunRow], columns: usize, config_keys: &[String]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for run in runs {
        let index = match groups.iter().position(|g| g.name == run.group) {
            Some(index) => index,
            None => {
                groups.push(Group {
                    name: run.group.clone(),
                    methods: Vec::new(),
                    runs: 0,
                    config: Vec::new(),
                    values: vec![Vec::new(); columns],
                });
                groups.len() - 1
            }
        };
        let group = &mut groups[index];
        let shared = config_keys.iter().map(|key| {
            run.config(key)
                .map_or(Shared::Absent, |v| Shared::Same(v.clone()))
        });
        if group.runs == 0 {
            group.config = shared.collect();
        } else {
            for (have, value) in group.config.iter_mut().zip(shared) {
                if *have != value {
                    *have = Shared::Mixed;
                }
            }
        }
        group.runs += 1;
        if !group.methods.contains(&run.method) {
            group.methods.push(run.method.clone());
        }
        for (values, value) in group.values.iter_mut().zip(&run.values) {
            values.extend(*value);
        }
    }
    groups
}

/// Whether two of `values` differ.
fn any_differ<'a>(mut values: impl Iterator<Item = &'a Value>) -> bool {
    match values.next() {
        Some(first) => values.any(|v| v != first),
        None => false,
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Sample standard deviation (divisor `n − 1`, the variance Welch's test uses); `None` below
/// two values.
fn sample_sd(values: &[f64]) -> Option<f64> {
    infobound_metrics::sample_mean_and_variance(values)
        .ok()
        .map(|(_, variance)| variance.sqrt())
}

/// Decimals shown for a number of magnitude `|v|`: about four significant digits (our choice:
/// enough to tell seeds apart, short enough for a table row).
fn decimals(v: f64) -> usize {
    match v.abs() {
        a if a >= 1000.0 => 1,
        a if a >= 100.0 => 2,
        a if a >= 10.0 => 3,
        _ => 4,
    }
}

fn format_value(v: f64) -> String {
    format!("{v:.*}", decimals(v))
}

/// `mean ± sd` of the present values with the mean's decimals; one value alone; `–` for none.
fn format_mean_sd(values: &[f64]) -> String {
    match (values.is_empty(), sample_sd(values)) {
        (true, _) => MISSING.to_string(),
        (false, None) => format_value(values[0]),
        (false, Some(sd)) => {
            let m = mean(values);
            let d = decimals(m);
            format!("{m:.d$} ± {sd:.d$}")
        }
    }
}

/// The two-sided p-value, three decimals or scientific below 0.001.
fn format_p(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

/// `+0.031 (p=0.012)`: Welch's t-test of `group` against `baseline`, or `–` where it is
/// undefined (fewer than two values on a side, or both sides constant).
fn format_test(group: &[f64], baseline: &[f64]) -> String {
    match welch_t_test(group, baseline) {
        Ok(test) => format!(
            "{:+.*} (p={})",
            decimals(test.mean_difference),
            test.mean_difference,
            format_p(test.p_value)
        ),
        Err(_) => MISSING.to_string(),
    }
}

/// The formats rendered as grids of cells (JSON is one document, [`json_document`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GridFormat {
    Text,
    Markdown,
    Csv,
}

/// A table of cells; the first `labels` columns are names (left-aligned), the rest numbers.
struct Grid {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    labels: usize,
}

impl Grid {
    fn render(&self, format: GridFormat, out: &mut String) {
        match format {
            GridFormat::Text => self.render_text(out),
            GridFormat::Markdown => self.render_markdown(out),
            GridFormat::Csv => self.render_csv(out),
        }
    }

    fn render_text(&self, out: &mut String) {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|row| row[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (cell, &w))| {
                    if c < self.labels {
                        format!("{cell:<w$}")
                    } else {
                        format!("{cell:>w$}")
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        }
    }

    fn render_markdown(&self, out: &mut String) {
        // A `|` inside a cell (the title `|corr μ|`) would end the cell.
        let line = |row: &[String]| {
            let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
            format!("| {} |", cells.join(" | "))
        };
        let _ = writeln!(out, "{}", line(&self.header));
        let rule: Vec<&str> = (0..self.header.len())
            .map(|c| if c < self.labels { ":---" } else { "---:" })
            .collect();
        let _ = writeln!(out, "|{}|", rule.join("|"));
        for row in &self.rows {
            let _ = writeln!(out, "{}", line(row));
        }
    }

    fn render_csv(&self, out: &mut String) {
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let cells: Vec<String> = row.iter().map(|c| csv_field(c)).collect();
            let _ = writeln!(out, "{}", cells.join(","));
        }
    }
}

/// RFC 4180: a field with a comma, quote or line break is quoted, inner quotes doubled.
fn csv_field(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}

/// A number at full precision for CSV; empty when missing.
fn csv_number(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

impl Table {
    /// The indices of the configuration columns of a text or Markdown table of the runs: those
    /// on which two runs that both have the key differ, without `objective.kind`.
    fn differing_run_config(&self) -> Vec<usize> {
        (0..self.config_keys.len())
            .filter(|&k| {
                let key = &self.config_keys[k];
                key != KIND_KEY && any_differ(self.runs.iter().filter_map(|run| run.config(key)))
            })
            .collect()
    }

    /// The indices of the configuration columns of a text or Markdown table of `groups`: keys
    /// every group's runs agree on (or all lack) and on which two groups differ, without
    /// `objective.kind` and the `--group-by` keys.
    fn differing_group_config(&self, groups: &[Group], group_by: &[String]) -> Vec<usize> {
        (0..self.config_keys.len())
            .filter(|&k| {
                let key = &self.config_keys[k];
                key != KIND_KEY
                    && !group_by.contains(key)
                    && groups.iter().all(|g| g.config[k] != Shared::Mixed)
                    && any_differ(groups.iter().filter_map(|g| match &g.config[k] {
                        Shared::Same(v) => Some(v),
                        Shared::Absent | Shared::Mixed => None,
                    }))
            })
            .collect()
    }

    /// One row per run: in CSV every configuration column after the metrics (so that the
    /// metric columns keep their positions), in text and Markdown the differing ones after the
    /// method.
    fn runs_grid(&self, format: GridFormat) -> Grid {
        let config: Vec<usize> = match format {
            GridFormat::Csv => (0..self.config_keys.len()).collect(),
            GridFormat::Text | GridFormat::Markdown => self.differing_run_config(),
        };
        let csv = format == GridFormat::Csv;
        let config_titles = config.iter().map(|&k| self.config_keys[k].clone());
        let mut header = vec!["run".to_string(), self.method_title.to_string()];
        if !csv {
            header.extend(config_titles.clone());
        }
        header.extend(self.columns.iter().map(|(title, _)| title.to_string()));
        if csv {
            header.extend(config_titles);
        }
        let rows = self
            .runs
            .iter()
            .map(|run| {
                let config_cells = config.iter().map(|&k| {
                    run.config(&self.config_keys[k]).map_or_else(
                        || {
                            if csv {
                                String::new()
                            } else {
                                MISSING.to_string()
                            }
                        },
                        config_text,
                    )
                });
                let mut row = vec![run.label.clone(), run.method.clone()];
                if !csv {
                    row.extend(config_cells.clone());
                }
                row.extend(run.values.iter().map(|v| {
                    if csv {
                        csv_number(*v)
                    } else {
                        v.map_or_else(|| MISSING.to_string(), format_value)
                    }
                }));
                if csv {
                    row.extend(config_cells);
                }
                row
            })
            .collect();
        Grid {
            header,
            rows,
            labels: 2,
        }
    }

    /// One row per group; CSV gets a mean and an sd column per metric and every configuration
    /// column (the group's shared value) at the end, text and Markdown the differing ones
    /// after n.
    fn groups_grid(&self, groups: &[Group], group_by: &[String], format: GridFormat) -> Grid {
        let csv = format == GridFormat::Csv;
        let config: Vec<usize> = if csv {
            (0..self.config_keys.len()).collect()
        } else {
            self.differing_group_config(groups, group_by)
        };
        let config_titles = config.iter().map(|&k| self.config_keys[k].clone());
        let mut header = vec![
            "group".to_string(),
            self.method_title.to_string(),
            "n".to_string(),
        ];
        if !csv {
            header.extend(config_titles.clone());
        }
        for (title, _) in self.columns {
            if csv {
                header.push(format!("{title} mean"));
                header.push(format!("{title} sd"));
            } else {
                header.push(title.to_string());
            }
        }
        if csv {
            header.extend(config_titles);
        }
        let rows = groups
            .iter()
            .map(|group| {
                let config_cells = config.iter().map(|&k| match &group.config[k] {
                    Shared::Same(v) => config_text(v),
                    Shared::Absent | Shared::Mixed if csv => String::new(),
                    Shared::Absent | Shared::Mixed => MISSING.to_string(),
                });
                let mut row = vec![
                    group.name.clone(),
                    group.methods.join("+"),
                    group.runs.to_string(),
                ];
                if !csv {
                    row.extend(config_cells.clone());
                }
                for values in &group.values {
                    if csv {
                        row.push(csv_number((!values.is_empty()).then(|| mean(values))));
                        row.push(csv_number(sample_sd(values)));
                    } else {
                        row.push(format_mean_sd(values));
                    }
                }
                if csv {
                    row.extend(config_cells);
                }
                row
            })
            .collect();
        Grid {
            header,
            rows,
            labels: 2,
        }
    }

    /// Welch's t-test of every other group against `baseline`, column by column; CSV gets one
    /// line per group and column.
    fn tests_grid(&self, groups: &[Group], baseline: &Group, format: GridFormat) -> Grid {
        let others = groups.iter().filter(|g| g.name != baseline.name);
        if format == GridFormat::Csv {
            let header = ["group", "baseline", "column", "diff", "t", "dof", "p"]
                .map(String::from)
                .to_vec();
            let mut rows = Vec::new();
            for group in others {
                for ((title, _), (values, base)) in self
                    .columns
                    .iter()
                    .zip(group.values.iter().zip(&baseline.values))
                {
                    let mut row =
                        vec![group.name.clone(), baseline.name.clone(), title.to_string()];
                    match welch_t_test(values, base) {
                        Ok(test) => row.extend(
                            [
                                test.mean_difference,
                                test.t,
                                test.degrees_of_freedom,
                                test.p_value,
                            ]
                            .map(|v| v.to_string()),
                        ),
                        Err(_) => row.extend(std::iter::repeat_n(String::new(), 4)),
                    }
                    rows.push(row);
                }
            }
            return Grid {
                header,
                rows,
                labels: 3,
            };
        }
        let mut header = vec!["group".to_string()];
        header.extend(self.columns.iter().map(|(title, _)| title.to_string()));
        let rows = others
            .map(|group| {
                let mut row = vec![group.name.clone()];
                row.extend(
                    group
                        .values
                        .iter()
                        .zip(&baseline.values)
                        .map(|(values, base)| format_test(values, base)),
                );
                row
            })
            .collect();
        Grid {
            header,
            rows,
            labels: 1,
        }
    }
}

/// A JSON object whose keys keep their insertion order (serde_json's `Map` sorts its keys
/// unless the crate-wide `preserve_order` feature is on, which would reorder every JSON file
/// the workspace writes).
struct Ordered(Vec<(String, Value)>);

impl Serialize for Ordered {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// A JSON number, `null` when missing or not finite.
fn json_number(value: Option<f64>) -> Value {
    value
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// The `--format json` document (schema in the module documentation).
#[derive(Serialize)]
struct JsonDocument<'a> {
    version: u32,
    grouping: &'static str,
    group_by: &'a [String],
    baseline: Option<&'a str>,
    skipped: Vec<String>,
    metrics: Vec<Ordered>,
    config: Vec<Ordered>,
    rows: Vec<Ordered>,
    groups: Vec<Ordered>,
    tests: Vec<Ordered>,
}

fn text(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

/// The `--format json` document of `tables`.
fn json_document(
    tables: &[Table],
    options: &CompareOptions<'_>,
    skipped: &[PathBuf],
) -> Result<String, CliError> {
    let (grouping, group_by): (&str, &[String]) = match options.grouping {
        Grouping::None => ("none", &[]),
        Grouping::Folder => ("folder", &[]),
        Grouping::Config(keys) => ("config", keys),
    };
    let mut doc = JsonDocument {
        version: 1,
        grouping,
        group_by,
        baseline: options.baseline,
        skipped: skipped.iter().map(|p| p.display().to_string()).collect(),
        metrics: Vec::new(),
        config: Vec::new(),
        rows: Vec::new(),
        groups: Vec::new(),
        tests: Vec::new(),
    };
    for table in tables {
        let family = || ("family".to_string(), text(table.family));
        doc.metrics
            .extend(table.columns.iter().map(|(title, pointer)| {
                Ordered(vec![
                    family(),
                    ("column".into(), text(*title)),
                    ("pointer".into(), text(*pointer)),
                ])
            }));
        doc.config.extend(
            table
                .config_keys
                .iter()
                .map(|key| Ordered(vec![family(), ("column".into(), text(key.as_str()))])),
        );
        for run in &table.runs {
            let mut row = vec![
                ("run".to_string(), text(run.label.as_str())),
                family(),
                ("method".into(), text(run.method.as_str())),
                ("group".into(), text(run.group.as_str())),
            ];
            row.extend(
                table
                    .config_keys
                    .iter()
                    .map(|key| (key.clone(), run.config(key).cloned().unwrap_or(Value::Null))),
            );
            row.extend(
                table
                    .columns
                    .iter()
                    .zip(&run.values)
                    .map(|((title, _), v)| (title.to_string(), json_number(*v))),
            );
            doc.rows.push(Ordered(row));
        }
        if options.grouping == Grouping::None {
            continue;
        }
        let groups = groups(&table.runs, table.columns.len(), &table.config_keys);
        for group in &groups {
            let mut row = vec![
                ("group".to_string(), text(group.name.as_str())),
                family(),
                ("method".into(), text(group.methods.join("+"))),
                ("n".into(), Value::from(group.runs)),
            ];
            row.extend(
                table
                    .config_keys
                    .iter()
                    .zip(&group.config)
                    .map(|(key, shared)| {
                        let value = match shared {
                            Shared::Same(v) => v.clone(),
                            Shared::Absent | Shared::Mixed => Value::Null,
                        };
                        (key.clone(), value)
                    }),
            );
            for ((title, _), values) in table.columns.iter().zip(&group.values) {
                let m = (!values.is_empty()).then(|| mean(values));
                row.push((format!("{title} mean"), json_number(m)));
                row.push((format!("{title} sd"), json_number(sample_sd(values))));
                row.push((format!("{title} n"), Value::from(values.len())));
            }
            doc.groups.push(Ordered(row));
        }
        let Some(baseline) = options
            .baseline
            .and_then(|name| groups.iter().find(|g| g.name == name))
        else {
            continue;
        };
        for group in groups.iter().filter(|g| g.name != baseline.name) {
            for ((title, _), (values, base)) in table
                .columns
                .iter()
                .zip(group.values.iter().zip(&baseline.values))
            {
                let test = welch_t_test(values, base).ok();
                doc.tests.push(Ordered(vec![
                    family(),
                    ("group".into(), text(group.name.as_str())),
                    ("baseline".into(), text(baseline.name.as_str())),
                    ("metric".into(), text(*title)),
                    (
                        "diff".into(),
                        json_number(test.as_ref().map(|t| t.mean_difference)),
                    ),
                    ("t".into(), json_number(test.as_ref().map(|t| t.t))),
                    (
                        "df".into(),
                        json_number(test.as_ref().map(|t| t.degrees_of_freedom)),
                    ),
                    ("p".into(), json_number(test.as_ref().map(|t| t.p_value))),
                ]));
            }
        }
    }
    let mut out = serde_json::to_string_pretty(&doc)
        .map_err(|e| CliError::Usage(format!("cannot encode the comparison as JSON: {e}")))?;
    out.push('\n');
    Ok(out)
}

/// The group labels of `tables`' runs, each once, in order of first appearance.
fn group_labels(tables: &[Table]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for run in tables.iter().flat_map(|t| &t.runs) {
        if !names.contains(&run.group.as_str()) {
            names.push(&run.group);
        }
    }
    names
}

/// The values of a `--group-by` label in the order of `keys`, or `None` when `label` is not
/// `KEY=VALUE,...` over exactly these keys (a value may itself hold commas, e.g. an array).
fn label_values<'a>(label: &'a str, keys: &[String]) -> Option<Vec<&'a str>> {
    let mut rest = label;
    let mut values = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        rest = rest.strip_prefix(key.as_str())?.strip_prefix('=')?;
        let end = match keys.get(i + 1) {
            Some(next) => rest.find(&format!(",{next}="))?,
            None => rest.len(),
        };
        values.push(&rest[..end]);
        rest = rest[end..].strip_prefix(',').unwrap_or(&rest[end..]);
    }
    Some(values)
}

/// The group label `baseline` names among `labels`: itself, or under `--group-by` the label
/// whose values equal it value by value, numbers compared as numbers (so that
/// `objective.alpha=0` names `objective.alpha=0.0`).
fn resolve_baseline<'a>(baseline: &str, keys: &[String], labels: &[&'a str]) -> Option<&'a str> {
    if let Some(label) = labels.iter().find(|l| **l == baseline) {
        return Some(label);
    }
    if keys.is_empty() {
        return None;
    }
    let wanted = label_values(baseline, keys)?;
    let same = |a: &str, b: &str| {
        a == b || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
    };
    labels.iter().copied().find(|label| {
        label_values(label, keys)
            .is_some_and(|values| values.iter().zip(&wanted).all(|(a, b)| same(a, b)))
    })
}

/// Reads every run (`open` gives a folder's run, its family's columns and its resolved
/// configuration) and renders the tables; a run folder without metrics.json is left out and
/// listed in [`CompareOutput::skipped`].
///
/// # Errors
/// Whatever `open` fails with (a folder that is not a run folder), an unreadable metrics.json,
/// [`CliError::NoFinishedRuns`] when every folder is skipped,
/// [`CliError::UnknownConfigKey`] for a `--group-by` key no run has, and
/// [`CliError::Usage`] for a `--baseline` that names no group.
pub(crate) fn compare_runs(
    dirs: &[PathBuf],
    open: impl Fn(&Path) -> Result<(RunDir, CompareColumns, Value), CliError>,
    options: &CompareOptions<'_>,
) -> Result<CompareOutput, CliError> {
    let mut tables: Vec<Table> = Vec::new();
    let mut skipped = Vec::new();
    for dir in dirs {
        let (run, columns, config) = open(dir)?;
        if !run.metrics().exists() {
            skipped.push(dir.clone());
            continue;
        }
        let row = read_row(dir, &run, &columns, &config, options.grouping)?;
        let table = match tables.iter().position(|t| t.family == columns.family) {
            Some(index) => &mut tables[index],
            None => {
                tables.push(Table {
                    family: columns.family,
                    method_title: columns.method_title,
                    columns: columns.columns,
                    config_keys: Vec::new(),
                    runs: Vec::new(),
                });
                let last = tables.len() - 1;
                &mut tables[last]
            }
        };
        for (key, _) in &row.config {
            if !table.config_keys.contains(key) {
                table.config_keys.push(key.clone());
            }
        }
        table.runs.push(row);
    }
    if tables.is_empty() {
        return Err(CliError::NoFinishedRuns {
            folders: dirs.len(),
        });
    }
    if let Grouping::Config(keys) = options.grouping {
        let mut known: Vec<&str> = Vec::new();
        for key in tables.iter().flat_map(|t| &t.config_keys) {
            if !known.contains(&key.as_str()) {
                known.push(key);
            }
        }
        if let Some(key) = keys.iter().find(|k| !known.contains(&k.as_str())) {
            return Err(CliError::UnknownConfigKey {
                key: key.clone(),
                known: known.join(", "),
            });
        }
    }
    let baseline = match options.baseline {
        None => None,
        Some(baseline) => {
            let labels = group_labels(&tables);
            let group_by = match options.grouping {
                Grouping::Config(keys) => keys,
                Grouping::None | Grouping::Folder => &[],
            };
            match resolve_baseline(baseline, group_by, &labels) {
                Some(label) => Some(label.to_string()),
                None => {
                    return Err(CliError::Usage(format!(
                        "--baseline {baseline}: no such group among the runs (groups: {})",
                        labels.join(", ")
                    )));
                }
            }
        }
    };
    // The baseline as the group label it names (`objective.alpha=0` → `objective.alpha=0.0`).
    let options = &CompareOptions {
        format: options.format,
        grouping: options.grouping,
        baseline: baseline.as_deref(),
    };
    let format = match options.format {
        CompareFormat::Json => {
            return Ok(CompareOutput {
                text: json_document(&tables, options, &skipped)?,
                skipped,
            });
        }
        CompareFormat::Text => GridFormat::Text,
        CompareFormat::Markdown => GridFormat::Markdown,
        CompareFormat::Csv => GridFormat::Csv,
    };
    let group_by = match options.grouping {
        Grouping::Config(keys) => keys,
        Grouping::None | Grouping::Folder => &[],
    };
    let mut out = String::new();
    for table in &tables {
        if !out.is_empty() {
            out.push('\n');
        }
        if options.grouping == Grouping::None {
            table.runs_grid(format).render(format, &mut out);
            continue;
        }
        let groups = groups(&table.runs, table.columns.len(), &table.config_keys);
        table
            .groups_grid(&groups, group_by, format)
            .render(format, &mut out);
        let Some(baseline) = options
            .baseline
            .and_then(|name| groups.iter().find(|g| g.name == name))
        else {
            continue;
        };
        out.push('\n');
        match format {
            GridFormat::Csv => {}
            GridFormat::Text => {
                let _ = writeln!(
                    out,
                    "Welch's t-test against {}: difference of means (two-sided p)",
                    baseline.name
                );
            }
            GridFormat::Markdown => {
                let _ = writeln!(
                    out,
                    "Welch's t-test against `{}`: difference of means (two-sided p)\n",
                    baseline.name
                );
            }
        }
        table
            .tests_grid(&groups, baseline, format)
            .render(format, &mut out);
    }
    Ok(CompareOutput { text: out, skipped })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str, values: &[Option<f64>]) -> RunRow {
        RunRow {
            label: label.to_string(),
            group: group_name(Path::new(label)),
            method: "beta_vae".to_string(),
            config: Vec::new(),
            values: values.to_vec(),
        }
    }

    #[test]
    fn group_names_drop_only_a_trailing_seed_number() {
        for (dir, group) in [
            ("runs/study/alpha0-seed3", "alpha0"),
            ("runs/study/alpha0-seed12/", "alpha0"),
            ("alpha0-seed3", "alpha0"),
            ("runs/beta-seed-seed0", "beta-seed"),
            ("runs/alpha0-seed", "alpha0-seed"),
            ("runs/alpha0-seed3x", "alpha0-seed3x"),
            ("runs/alpha0-seed3-long", "alpha0-seed3-long"),
            ("runs/quickstart", "quickstart"),
        ] {
            assert_eq!(group_name(Path::new(dir)), group, "{dir}");
        }
    }

    #[test]
    fn groups_keep_the_order_of_first_appearance_and_skip_missing_values() {
        let runs = [
            row("r/b-seed0", &[Some(1.0), None]),
            row("r/a-seed0", &[Some(5.0), Some(2.0)]),
            row("r/b-seed1", &[Some(3.0), Some(4.0)]),
            row("r/a-seed1", &[Some(7.0), None]),
            row("r/c", &[None, None]),
        ];
        let groups = groups(&runs, 2, &[]);
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["b", "a", "c"]);
        assert_eq!(groups[0].runs, 2);
        assert_eq!(groups[0].values, [vec![1.0, 3.0], vec![4.0]]);
        assert_eq!(groups[1].values, [vec![5.0, 7.0], vec![2.0]]);
        assert_eq!(groups[2].runs, 1);
        assert_eq!(groups[2].values, [Vec::<f64>::new(), Vec::new()]);
        assert_eq!(groups[0].methods, ["beta_vae"]);
    }

    #[test]
    fn config_columns_flatten_the_objective_after_the_fixed_keys() {
        let config = serde_json::json!({
            "name": "x",
            "seed": 3,
            "steps": 10,
            "batch_size": 4,
            "optimizer": { "learning_rate": 0.001, "beta_1": 0.9 },
            "objective": {
                "kind": "alpha_tcvae",
                "alpha": 0.5,
                "capacity_schedule": { "kind": "linear", "warmup_steps": 5 },
                "scale": [0.05, 0.4],
            },
            "eval": { "seed": 2024 },
        });
        let columns = config_columns(&config);
        let keys: Vec<&str> = columns.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "seed",
                "steps",
                "batch_size",
                "optimizer.learning_rate",
                "objective.kind",
                "objective.alpha",
                "objective.capacity_schedule.kind",
                "objective.capacity_schedule.warmup_steps",
                "objective.scale",
            ]
        );
        let texts: Vec<String> = columns.iter().map(|(_, v)| config_text(v)).collect();
        assert_eq!(
            texts,
            [
                "3",
                "10",
                "4",
                "0.001",
                "alpha_tcvae",
                "0.5",
                "linear",
                "5",
                "[0.05,0.4]"
            ]
        );
        let ssl = config_columns(&serde_json::json!({ "optimizer": { "base_lr": 0.3 } }));
        assert_eq!(
            ssl,
            [("optimizer.base_lr".to_string(), serde_json::json!(0.3))]
        );
    }

    #[test]
    fn group_labels_name_every_key_and_leave_a_missing_value_empty() {
        let run = vec![
            ("objective.kind".to_string(), serde_json::json!("beta_vae")),
            ("objective.beta".to_string(), serde_json::json!(4.0)),
        ];
        let keys = ["objective.kind", "objective.alpha", "objective.beta"].map(String::from);
        assert_eq!(
            config_label(&run, &keys),
            "objective.kind=beta_vae,objective.alpha=,objective.beta=4.0"
        );
    }

    #[test]
    fn a_baseline_label_matches_numbers_by_value() {
        let keys = ["objective.kind", "objective.scale"].map(String::from);
        let labels = [
            "objective.kind=mveb,objective.scale=[0.05,0.4]",
            "objective.kind=byol,objective.scale=0.0",
        ];
        assert_eq!(
            label_values(labels[0], &keys),
            Some(vec!["mveb", "[0.05,0.4]"])
        );
        assert_eq!(
            resolve_baseline("objective.kind=byol,objective.scale=0", &keys, &labels),
            Some(labels[1])
        );
        assert_eq!(resolve_baseline(labels[0], &keys, &labels), Some(labels[0]));
        assert_eq!(
            resolve_baseline("objective.kind=byol,objective.scale=1", &keys, &labels),
            None
        );
        assert_eq!(
            resolve_baseline("objective.kind=byol", &keys, &labels),
            None
        );
        assert_eq!(resolve_baseline("byol", &[], &["byol"]), Some("byol"));
        assert_eq!(
            resolve_baseline("0", &[], &["0.0"]),
            None,
            "folder groups are names"
        );
    }

    #[test]
    fn a_groups_config_value_is_shared_only_where_every_run_agrees() {
        let keys = ["seed", "objective.alpha", "objective.gamma"].map(String::from);
        let run = |label: &str, seed: u64, gamma: Option<f64>| {
            let mut config = vec![
                ("seed".to_string(), serde_json::json!(seed)),
                ("objective.alpha".to_string(), serde_json::json!(0.5)),
            ];
            config.extend(gamma.map(|g| ("objective.gamma".to_string(), serde_json::json!(g))));
            RunRow {
                config,
                ..row(label, &[])
            }
        };
        let runs = [
            run("r/a-seed0", 0, None),
            run("r/a-seed1", 1, None),
            run("r/b-seed0", 0, Some(1.0)),
            run("r/b-seed1", 1, None),
        ];
        let groups = groups(&runs, 0, &keys);
        assert_eq!(
            groups[0].config,
            [
                Shared::Mixed,
                Shared::Same(serde_json::json!(0.5)),
                Shared::Absent
            ]
        );
        assert_eq!(groups[1].config[2], Shared::Mixed, "only one run has gamma");
    }

    #[test]
    fn mean_and_sample_sd_are_formatted_with_the_means_decimals() {
        // mean 2, sample sd sqrt(((1-2)² + 0 + (3-2)²)/2) = 1.
        assert_eq!(format_mean_sd(&[1.0, 2.0, 3.0]), "2.0000 ± 1.0000");
        assert_eq!(format_mean_sd(&[0.25, 0.35]), "0.3000 ± 0.0707");
        assert_eq!(format_mean_sd(&[150.0, 152.0]), "151.00 ± 1.41");
        assert_eq!(format_mean_sd(&[12.5]), "12.500");
        assert_eq!(format_mean_sd(&[]), MISSING);
    }

    #[test]
    fn test_cells_show_the_signed_difference_and_p_or_a_dash() {
        let group = [0.61, 0.64, 0.66];
        let base = [0.52, 0.55, 0.51];
        let test = welch_t_test(&group, &base).expect("valid");
        assert_eq!(
            format_test(&group, &base),
            format!("+0.1100 (p={:.3})", test.p_value)
        );
        assert!(format_test(&base, &group).starts_with("-0.1100 (p="));
        assert_eq!(format_test(&[0.5], &base), MISSING);
        assert_eq!(format_test(&[0.5, 0.5], &[0.4, 0.4]), MISSING);
        assert_eq!(format_p(0.0004), "4.0e-4");
    }

    #[test]
    fn markdown_escapes_pipes_and_csv_quotes_commas() {
        let grid = Grid {
            header: vec!["run".into(), "|corr μ|".into()],
            rows: vec![vec!["a,b".into(), "say \"x\"".into()]],
            labels: 1,
        };
        let mut md = String::new();
        grid.render(GridFormat::Markdown, &mut md);
        assert_eq!(
            md,
            "| run | \\|corr μ\\| |\n|:---|---:|\n| a,b | say \"x\" |\n"
        );
        let mut csv = String::new();
        grid.render(GridFormat::Csv, &mut csv);
        assert_eq!(csv, "run,|corr μ|\n\"a,b\",\"say \"\"x\"\"\"\n");
        let mut text = String::new();
        grid.render(GridFormat::Text, &mut text);
        assert_eq!(text, "run  |corr μ|\na,b   say \"x\"\n");
    }
}
