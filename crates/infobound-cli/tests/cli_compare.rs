//! `infobound compare` over hand-written run folders (a resolved `quickstart` config.toml and a
//! metrics.json with a few of the table's fields): grouping by seed, mean ± sd, and Welch's
//! t-test against a baseline group.

use std::path::Path;

mod common;
use common::infobound;
use infobound_metrics::welch_t_test;
use infobound_train::RunConfig;

/// DCI-D, MIG and reconstruction error of three seeds per group; SNC is absent everywhere.
const BASE: [[f64; 3]; 3] = [
    [0.10, 0.20, 0.30],
    [0.05, 0.07, 0.06],
    [150.0, 152.0, 149.5],
];
const WIDE: [[f64; 3]; 3] = [
    [0.50, 0.55, 0.70],
    [0.21, 0.19, 0.26],
    [140.0, 139.0, 141.5],
];

fn write_run(root: &Path, name: &str, seed: usize, values: &[[f64; 3]; 3]) -> String {
    let dir = root.join(format!("{name}-seed{seed}"));
    std::fs::create_dir_all(&dir).expect("run folder");
    let config = RunConfig::preset("quickstart", &[])
        .expect("quickstart preset")
        .to_toml()
        .expect("resolved TOML");
    std::fs::write(dir.join("config.toml"), config).expect("config.toml");
    let metrics = serde_json::json!({
        "headline": {
            "dci.disentanglement": values[0][seed],
            "mig": values[1][seed],
        },
        "reconstruction_error": values[2][seed],
    });
    std::fs::write(dir.join("metrics.json"), metrics.to_string()).expect("metrics.json");
    dir.display().to_string()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn sd(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// The cells of the Markdown row whose first cell is `first`.
fn markdown_row(text: &str, first: &str) -> Vec<String> {
    text.lines()
        .find(|l| l.starts_with(&format!("| {first} |")))
        .unwrap_or_else(|| panic!("no row {first} in\n{text}"))
        .trim_matches('|')
        .split(" | ")
        .map(|c| c.trim().to_string())
        .collect()
}

/// Interleaved seeds, so the groups' order is that of first appearance, not of the folders.
fn runs(root: &Path) -> Vec<String> {
    let mut runs = Vec::new();
    for seed in 0..3 {
        runs.push(write_run(root, "base", seed, &BASE));
        runs.push(write_run(root, "wide", seed, &WIDE));
    }
    runs
}

#[test]
fn grouped_markdown_shows_means_counts_and_welch_p_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = runs(dir.path());
    let mut args = vec![
        "compare",
        "--grouped",
        "--baseline",
        "base",
        "--format",
        "markdown",
    ];
    args.extend(runs.iter().map(String::as_str));
    let out = infobound(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let header = markdown_row(&text, "group");
    assert_eq!(
        header[..6],
        ["group", "objective", "n", "DCI-D", "SNC", "MIG"]
    );
    let recon = header.iter().position(|h| h == "recon").expect("recon");
    for (group, values) in [("base", &BASE), ("wide", &WIDE)] {
        let row = markdown_row(&text, group);
        assert_eq!(row[1], "alpha_tcvae");
        assert_eq!(row[2], "3");
        assert_eq!(
            row[3],
            format!("{:.4} ± {:.4}", mean(&values[0]), sd(&values[0]))
        );
        assert_eq!(row[4], "–", "SNC is in no metrics.json");
        assert_eq!(
            row[5],
            format!("{:.4} ± {:.4}", mean(&values[1]), sd(&values[1]))
        );
        assert_eq!(
            row[recon],
            format!("{:.2} ± {:.2}", mean(&values[2]), sd(&values[2]))
        );
    }
    let groups: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            ["| base |", "| wide |"]
                .into_iter()
                .find(|g| l.starts_with(g))
        })
        .collect();
    assert_eq!(groups, ["| base |", "| wide |", "| wide |"], "{text}");

    assert!(text.contains("Welch's t-test against `base`"), "{text}");
    let tests = text
        .lines()
        .filter(|l| l.starts_with("| wide |"))
        .nth(1)
        .expect("t-test row");
    let cells = markdown_row(tests, "wide");
    for (column, index) in [(1, 0), (3, 1)] {
        let test = welch_t_test(&WIDE[index], &BASE[index]).expect("valid samples");
        assert!(test.p_value < 0.05, "the groups differ: {test:?}");
        assert_eq!(
            cells[column],
            format!("{:+.4} (p={:.3})", test.mean_difference, test.p_value),
            "{text}"
        );
    }
    assert_eq!(cells[2], "–", "no SNC values, no test");
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("| base |") && l.contains("(p=")),
        "the baseline is not tested against itself: {text}"
    );
}

#[test]
fn grouped_csv_holds_full_precision_statistics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = runs(dir.path());
    let mut args = vec![
        "compare",
        "--grouped",
        "--baseline",
        "base",
        "--format",
        "csv",
    ];
    args.extend(runs.iter().map(String::as_str));
    let out = infobound(&args);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("group,objective,n,DCI-D mean,DCI-D sd,SNC mean,SNC sd,"),
        "{text}"
    );
    let wide: Vec<&str> = lines[2].split(',').collect();
    assert_eq!(wide[..3], ["wide", "alpha_tcvae", "3"]);
    let parse = |s: &str| s.parse::<f64>().expect("number");
    assert!((parse(wide[3]) - mean(&WIDE[0])).abs() < 1e-15);
    assert!((parse(wide[4]) - sd(&WIDE[0])).abs() < 1e-15);
    assert_eq!(wide[5..7], ["", ""], "SNC is missing");

    let test_header = lines
        .iter()
        .position(|l| *l == "group,baseline,column,diff,t,dof,p")
        .expect("t-test table");
    let mig: Vec<&str> = lines[test_header + 1..]
        .iter()
        .find(|l| l.starts_with("wide,base,MIG,"))
        .expect("MIG test line")
        .split(',')
        .collect();
    let test = welch_t_test(&WIDE[1], &BASE[1]).expect("valid samples");
    assert_eq!(parse(mig[3]), test.mean_difference);
    assert_eq!(parse(mig[4]), test.t);
    assert_eq!(parse(mig[5]), test.degrees_of_freedom);
    assert_eq!(parse(mig[6]), test.p_value);
    assert!(
        lines.contains(&"wide,base,SNC,,,,"),
        "undefined test: {text}"
    );
}

#[test]
fn a_baseline_needs_grouping_and_an_existing_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = write_run(dir.path(), "base", 0, &BASE);
    let out = infobound(&["compare", "--baseline", "base", &run]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--grouped"));

    let out = infobound(&["compare", "--grouped", "--baseline", "nope", &run]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: --baseline nope"), "{err}");
    assert!(err.contains("groups: base"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}
