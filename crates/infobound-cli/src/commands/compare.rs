//! `infobound compare`: tables of runs' metrics, one per model family, optionally one row per
//! group of seeds (mean ± sample standard deviation) and Welch's t-test against a baseline
//! group.

use std::fmt::Write as _;
use std::path::Path;

use clap::ValueEnum;
use infobound_metrics::welch_t_test;
use infobound_train::RunDir;
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
}

/// The missing-value mark of the text and Markdown tables.
const MISSING: &str = "–";

/// One run: its label, group, method and one value per column (`None`: missing).
struct RunRow {
    label: String,
    group: String,
    method: String,
    values: Vec<Option<f64>>,
}

/// The runs of one family.
struct Table {
    family: &'static str,
    method_title: &'static str,
    columns: &'static [CompareColumn],
    runs: Vec<RunRow>,
}

/// The runs of one group: the distinct methods in order, the number of runs and every
/// column's present values.
#[derive(Debug, PartialEq)]
struct Group {
    name: String,
    methods: Vec<String>,
    runs: usize,
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

/// The value at `pointer` in `metrics`: a finite number, or `None` (absent, `null`, not a
/// number) so that runs written before a field existed still compare.
fn metric_value(metrics: &Value, pointer: &str) -> Option<f64> {
    metrics
        .pointer(pointer)
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite())
}

/// Reads `run`'s `metrics.json` into one row.
fn read_row(dir: &Path, run: &RunDir, columns: &CompareColumns) -> Result<RunRow, CliError> {
    let path = run.metrics();
    let text = std::fs::read_to_string(&path).map_err(|source| CliError::Io {
        path: path.clone(),
        source,
    })?;
    let metrics: Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    Ok(RunRow {
        label: dir.display().to_string(),
        group: group_name(dir),
        method: columns.method.clone(),
        values: columns
            .columns
            .iter()
            .map(|(_, pointer)| metric_value(&metrics, pointer))
            .collect(),
    })
}

/// The runs grouped by [`RunRow::group`], groups in the order of first appearance.
fn groups(runs: &[RunRow], columns: usize) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for run in runs {
        let index = match groups.iter().position(|g| g.name == run.group) {
            Some(index) => index,
            None => {
                groups.push(Group {
                    name: run.group.clone(),
                    methods: Vec::new(),
                    runs: 0,
                    values: vec![Vec::new(); columns],
                });
                groups.len() - 1
            }
        };
        let group = &mut groups[index];
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

/// A table of cells; the first `labels` columns are names (left-aligned), the rest numbers.
struct Grid {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    labels: usize,
}

impl Grid {
    fn render(&self, format: CompareFormat, out: &mut String) {
        match format {
            CompareFormat::Text => self.render_text(out),
            CompareFormat::Markdown => self.render_markdown(out),
            CompareFormat::Csv => self.render_csv(out),
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
    /// One row per run.
    fn runs_grid(&self, format: CompareFormat) -> Grid {
        let mut header = vec!["run".to_string(), self.method_title.to_string()];
        header.extend(self.columns.iter().map(|(title, _)| title.to_string()));
        let rows = self
            .runs
            .iter()
            .map(|run| {
                let mut row = vec![run.label.clone(), run.method.clone()];
                row.extend(run.values.iter().map(|v| match format {
                    CompareFormat::Csv => csv_number(*v),
                    _ => v.map_or_else(|| MISSING.to_string(), format_value),
                }));
                row
            })
            .collect();
        Grid {
            header,
            rows,
            labels: 2,
        }
    }

    /// One row per group; CSV gets a mean and an sd column per metric.
    fn groups_grid(&self, groups: &[Group], format: CompareFormat) -> Grid {
        let mut header = vec![
            "group".to_string(),
            self.method_title.to_string(),
            "n".to_string(),
        ];
        for (title, _) in self.columns {
            if format == CompareFormat::Csv {
                header.push(format!("{title} mean"));
                header.push(format!("{title} sd"));
            } else {
                header.push(title.to_string());
            }
        }
        let rows = groups
            .iter()
            .map(|group| {
                let mut row = vec![
                    group.name.clone(),
                    group.methods.join("+"),
                    group.runs.to_string(),
                ];
                for values in &group.values {
                    if format == CompareFormat::Csv {
                        row.push(csv_number((!values.is_empty()).then(|| mean(values))));
                        row.push(csv_number(sample_sd(values)));
                    } else {
                        row.push(format_mean_sd(values));
                    }
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
    fn tests_grid(&self, groups: &[Group], baseline: &Group, format: CompareFormat) -> Grid {
        let others = groups.iter().filter(|g| g.name != baseline.name);
        if format == CompareFormat::Csv {
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

/// The options of one `infobound compare`.
pub(crate) struct CompareOptions<'a> {
    pub format: CompareFormat,
    pub grouped: bool,
    pub baseline: Option<&'a str>,
}

/// Reads every run (`open` gives a folder's run and its family's columns) and renders the
/// tables.
pub(crate) fn compare_runs(
    dirs: &[std::path::PathBuf],
    open: impl Fn(&Path) -> Result<(RunDir, CompareColumns), CliError>,
    options: &CompareOptions<'_>,
) -> Result<String, CliError> {
    let mut tables: Vec<Table> = Vec::new();
    for dir in dirs {
        let (run, columns) = open(dir)?;
        let row = read_row(dir, &run, &columns)?;
        match tables.iter_mut().find(|t| t.family == columns.family) {
            Some(table) => table.runs.push(row),
            None => tables.push(Table {
                family: columns.family,
                method_title: columns.method_title,
                columns: columns.columns,
                runs: vec![row],
            }),
        }
    }
    if let Some(baseline) = options.baseline
        && !tables
            .iter()
            .any(|t| t.runs.iter().any(|r| r.group == baseline))
    {
        let mut names: Vec<&str> = Vec::new();
        for run in tables.iter().flat_map(|t| &t.runs) {
            if !names.contains(&run.group.as_str()) {
                names.push(&run.group);
            }
        }
        return Err(CliError::Usage(format!(
            "--baseline {baseline}: no such group among the runs (groups: {})",
            names.join(", ")
        )));
    }
    let mut out = String::new();
    for table in &tables {
        if !out.is_empty() {
            out.push('\n');
        }
        if !options.grouped {
            table
                .runs_grid(options.format)
                .render(options.format, &mut out);
            continue;
        }
        let groups = groups(&table.runs, table.columns.len());
        table
            .groups_grid(&groups, options.format)
            .render(options.format, &mut out);
        let Some(baseline) = options
            .baseline
            .and_then(|name| groups.iter().find(|g| g.name == name))
        else {
            continue;
        };
        out.push('\n');
        match options.format {
            CompareFormat::Csv => {}
            CompareFormat::Text => {
                let _ = writeln!(
                    out,
                    "Welch's t-test against {}: difference of means (two-sided p)",
                    baseline.name
                );
            }
            CompareFormat::Markdown => {
                let _ = writeln!(
                    out,
                    "Welch's t-test against `{}`: difference of means (two-sided p)\n",
                    baseline.name
                );
            }
        }
        table
            .tests_grid(&groups, baseline, options.format)
            .render(options.format, &mut out);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str, values: &[Option<f64>]) -> RunRow {
        RunRow {
            label: label.to_string(),
            group: group_name(Path::new(label)),
            method: "beta_vae".to_string(),
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
        let groups = groups(&runs, 2);
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
        grid.render(CompareFormat::Markdown, &mut md);
        assert_eq!(
            md,
            "| run | \\|corr μ\\| |\n|:---|---:|\n| a,b | say \"x\" |\n"
        );
        let mut csv = String::new();
        grid.render(CompareFormat::Csv, &mut csv);
        assert_eq!(csv, "run,|corr μ|\n\"a,b\",\"say \"\"x\"\"\"\n");
        let mut text = String::new();
        grid.render(CompareFormat::Text, &mut text);
        assert_eq!(text, "run  |corr μ|\na,b   say \"x\"\n");
    }
}
