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

/// A run folder `root/name` from the quickstart preset with `overrides` and, unless `None`, a
/// metrics.json with DCI-D and MIG.
fn write_config_run(
    root: &Path,
    name: &str,
    overrides: &[&str],
    dci_mig: Option<[f64; 2]>,
) -> String {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("run folder");
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let config = RunConfig::preset("quickstart", &overrides)
        .expect("quickstart preset")
        .to_toml()
        .expect("resolved TOML");
    std::fs::write(dir.join("config.toml"), config).expect("config.toml");
    if let Some([dci, mig]) = dci_mig {
        let metrics = serde_json::json!({
            "headline": { "dci.disentanglement": dci, "mig": mig },
        });
        std::fs::write(dir.join("metrics.json"), metrics.to_string()).expect("metrics.json");
    }
    dir.display().to_string()
}

fn success(args: &[&str]) -> (String, String) {
    let out = infobound(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}\n{stdout}{stderr}");
    (stdout, stderr)
}

fn json(args: &[&str]) -> serde_json::Value {
    let (stdout, _) = success(args);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Whether `a` and `b` agree to a few ulps: the document is written at full precision, but
/// serde_json's default float parser (without its `float_roundtrip` feature) may read the last
/// digit one ulp off.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 4.0 * f64::EPSILON * a.abs().max(b.abs())
}

fn number(row: &serde_json::Value, key: &str) -> f64 {
    row[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {row}"))
}

#[test]
fn json_holds_flat_rows_groups_and_tests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = runs(dir.path());
    let mut args = vec![
        "compare",
        "--grouped",
        "--baseline",
        "base",
        "--format",
        "json",
    ];
    args.extend(runs.iter().map(String::as_str));
    let doc = json(&args);
    for key in [
        "version", "grouping", "group_by", "baseline", "skipped", "metrics", "config", "rows",
        "groups", "tests",
    ] {
        assert!(doc.get(key).is_some(), "no {key} in {doc}");
    }
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["grouping"], "folder");
    assert_eq!(doc["baseline"], "base");
    assert_eq!(doc["skipped"], serde_json::json!([]));
    let metric_columns: Vec<&str> = doc["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|c| c["column"].as_str().expect("column"))
        .collect();
    assert_eq!(metric_columns[..3], ["DCI-D", "SNC", "MIG"]);
    let config_columns: Vec<&str> = doc["config"]
        .as_array()
        .expect("config")
        .iter()
        .map(|c| c["column"].as_str().expect("column"))
        .collect();
    for key in [
        "seed",
        "steps",
        "batch_size",
        "optimizer.learning_rate",
        "objective.kind",
        "objective.alpha",
        "objective.capacity_schedule.kind",
    ] {
        assert!(config_columns.contains(&key), "{key} in {config_columns:?}");
    }

    // pandas.DataFrame(doc["rows"]): one flat object per run, scalars only, every column.
    let rows = doc["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), runs.len());
    for (row, run) in rows.iter().zip(&runs) {
        let object = row.as_object().expect("row object");
        assert!(
            object.values().all(|v| !v.is_object() && !v.is_array()),
            "flat: {row}"
        );
        for key in ["run", "family", "method", "group"]
            .iter()
            .chain(&config_columns)
            .chain(&metric_columns)
        {
            assert!(object.contains_key(*key), "{key} in {row}");
        }
        assert_eq!(row["run"], run.as_str());
        assert_eq!(row["family"], "vae");
        assert_eq!(row["method"], "alpha_tcvae");
        assert_eq!(row["objective.kind"], "alpha_tcvae");
        assert_eq!(number(row, "objective.alpha"), 0.25);
        assert!(close(number(row, "optimizer.learning_rate"), 5e-4));
        assert_eq!(number(row, "steps"), 5000.0);
        assert_eq!(row["objective.capacity_schedule.kind"], "epoch_staircase");
        assert!(row["SNC"].is_null(), "SNC is in no metrics.json");
    }
    // runs() interleaves base and wide over seeds 0, 1, 2.
    for (i, row) in rows.iter().enumerate() {
        let (group, values) = if i % 2 == 0 {
            ("base", &BASE)
        } else {
            ("wide", &WIDE)
        };
        assert_eq!(row["group"], group);
        assert!(close(number(row, "DCI-D"), values[0][i / 2]), "{row}");
        assert!(close(number(row, "MIG"), values[1][i / 2]), "{row}");
        assert!(close(number(row, "recon"), values[2][i / 2]), "{row}");
    }

    let groups = doc["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[1]["group"], "wide");
    assert_eq!(groups[1]["n"], 3);
    assert!(close(number(&groups[1], "DCI-D mean"), mean(&WIDE[0])));
    assert!(close(number(&groups[1], "DCI-D sd"), sd(&WIDE[0])));
    assert_eq!(groups[1]["DCI-D n"], 3);
    assert!(groups[1]["SNC mean"].is_null() && groups[1]["SNC sd"].is_null());
    assert_eq!(groups[1]["SNC n"], 0);
    assert_eq!(number(&groups[1], "objective.alpha"), 0.25, "shared value");

    let tests = doc["tests"].as_array().expect("tests");
    assert_eq!(tests.len(), metric_columns.len(), "one per metric of wide");
    let mig = tests
        .iter()
        .find(|t| t["metric"] == "MIG")
        .expect("MIG test");
    assert_eq!(
        (&mig["group"], &mig["baseline"]),
        (&"wide".into(), &"base".into())
    );
    let test = welch_t_test(&WIDE[1], &BASE[1]).expect("valid samples");
    assert!(
        close(number(mig, "diff"), test.mean_difference),
        "diff: {mig}"
    );
    assert!(close(number(mig, "t"), test.t), "t: {mig}");
    assert!(
        close(number(mig, "df"), test.degrees_of_freedom),
        "df: {mig}"
    );
    assert!(close(number(mig, "p"), test.p_value), "p: {mig}");
    let snc = tests.iter().find(|t| t["metric"] == "SNC").expect("SNC");
    assert!(snc["t"].is_null() && snc["p"].is_null(), "undefined: {snc}");
}

/// Two runs of α = 0.25 (seeds 0, 1) and one of α = 0.5.
fn alpha_runs(root: &Path) -> Vec<String> {
    vec![
        write_config_run(root, "a-seed0", &["seed=0"], Some([0.1, 0.2])),
        write_config_run(root, "a-seed1", &["seed=1"], Some([0.3, 0.4])),
        write_config_run(
            root,
            "b-seed0",
            &["seed=0", "objective.alpha=0.5"],
            Some([0.5, 0.6]),
        ),
    ]
}

#[test]
fn text_tables_show_only_differing_config_columns_csv_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = alpha_runs(dir.path());
    let mut args = vec!["compare", "--format", "markdown"];
    args.extend(runs.iter().map(String::as_str));
    let (md, _) = success(&args);
    let header = markdown_row(&md, "run");
    assert_eq!(
        header[..5],
        ["run", "objective", "seed", "objective.alpha", "DCI-D"],
        "{md}"
    );
    let row = markdown_row(&md, &runs[2]);
    assert_eq!(row[2..5], ["0", "0.5", "0.5000"]);

    let mut args = vec!["compare", "--format", "markdown", "--grouped"];
    args.extend(runs.iter().map(String::as_str));
    let (md, _) = success(&args);
    let header = markdown_row(&md, "group");
    assert_eq!(
        header[..5],
        ["group", "objective", "n", "objective.alpha", "DCI-D"],
        "seed differs within group a, so it is left out: {md}"
    );
    assert_eq!(markdown_row(&md, "a")[3], "0.25");

    let mut args = vec!["compare", "--format", "csv"];
    args.extend(runs.iter().map(String::as_str));
    let (csv, _) = success(&args);
    let header: Vec<&str> = csv.lines().next().expect("header").split(',').collect();
    assert_eq!(header[..3], ["run", "objective", "DCI-D"], "{csv}");
    let at = header.iter().position(|h| *h == "seed").expect("seed");
    assert_eq!(
        header[at..at + 5],
        [
            "seed",
            "steps",
            "batch_size",
            "optimizer.learning_rate",
            "objective.kind"
        ]
    );
    assert!(header.contains(&"objective.beta"), "every column: {csv}");
    let b: Vec<&str> = csv.lines().nth(3).expect("run b").split(',').collect();
    assert_eq!(b[at..at + 5], ["0", "5000", "64", "0.0005", "alpha_tcvae"]);
}

#[test]
fn group_by_groups_by_config_values_and_tests_against_a_label() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Folder names that --grouped would put in one group; α splits them 3 + 2.
    let alphas = [0.25, 0.5, 0.25, 0.5, 0.25];
    let dci = [0.10, 0.52, 0.14, 0.61, 0.12];
    let mig = [0.05, 0.21, 0.07, 0.26, 0.06];
    let runs: Vec<String> = (0..5)
        .map(|i| {
            write_config_run(
                dir.path(),
                &format!("x-seed{i}"),
                &[
                    &format!("seed={i}"),
                    &format!("objective.alpha={}", alphas[i]),
                ],
                Some([dci[i], mig[i]]),
            )
        })
        .collect();
    let pick = |values: &[f64], alpha: f64| -> Vec<f64> {
        values
            .iter()
            .zip(alphas)
            .filter(|(_, a)| *a == alpha)
            .map(|(v, _)| *v)
            .collect()
    };
    let low = "objective.kind=alpha_tcvae,objective.alpha=0.25";
    let high = "objective.kind=alpha_tcvae,objective.alpha=0.5";
    let mut args = vec![
        "compare",
        "--group-by",
        "objective.kind,objective.alpha",
        "--baseline",
        low,
        "--format",
        "markdown",
    ];
    args.extend(runs.iter().map(String::as_str));
    let (md, _) = success(&args);
    let header = markdown_row(&md, "group");
    assert_eq!(
        header[..4],
        ["group", "objective", "n", "DCI-D"],
        "group-by keys are in the label, not repeated: {md}"
    );
    for (label, alpha) in [(low, 0.25), (high, 0.5)] {
        let row = markdown_row(&md, label);
        let d = pick(&dci, alpha);
        assert_eq!(row[2], d.len().to_string());
        assert_eq!(row[3], format!("{:.4} ± {:.4}", mean(&d), sd(&d)), "{md}");
    }
    assert!(
        md.contains(&format!("Welch's t-test against `{low}`")),
        "{md}"
    );
    let tests = md
        .lines()
        .filter(|l| l.starts_with(&format!("| {high} |")))
        .nth(1)
        .expect("t-test row");
    let cells = markdown_row(tests, high);
    let test = welch_t_test(&pick(&mig, 0.5), &pick(&mig, 0.25)).expect("valid");
    assert_eq!(
        cells[3],
        format!("{:+.4} (p={:.3})", test.mean_difference, test.p_value)
    );

    let mut args = vec![
        "compare",
        "--group-by",
        "objective.alpha",
        "--baseline",
        "objective.alpha=0.250",
        "--format",
        "json",
    ];
    args.extend(runs.iter().map(String::as_str));
    let doc = json(&args);
    assert_eq!(doc["grouping"], "config");
    assert_eq!(
        doc["baseline"], "objective.alpha=0.25",
        "0.250 names the group of 0.25"
    );
    assert_eq!(doc["group_by"], serde_json::json!(["objective.alpha"]));
    let groups = doc["groups"].as_array().expect("groups");
    let names: Vec<&str> = groups
        .iter()
        .map(|g| g["group"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["objective.alpha=0.25", "objective.alpha=0.5"]);
    for (group, alpha) in groups.iter().zip([0.25, 0.5]) {
        assert!((number(group, "MIG mean") - mean(&pick(&mig, alpha))).abs() < 1e-15);
        assert!((number(group, "MIG sd") - sd(&pick(&mig, alpha))).abs() < 1e-15);
        assert!(group["seed"].is_null(), "seeds differ within the group");
    }
    let mig_test = doc["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .find(|t| t["metric"] == "MIG")
        .expect("MIG test");
    assert!(close(number(mig_test, "p"), test.p_value), "{mig_test}");

    let out = infobound(&["compare", "--group-by", "objective.nope", &runs[0]]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: --group-by objective.nope: no compared run has this"),
        "{err}"
    );
    assert!(err.contains("objective.alpha"), "lists the keys: {err}");

    let out = infobound(&["compare", "--grouped", "--group-by", "seed", &runs[0]]);
    assert!(!out.status.success(), "one grouping at a time");
}

#[test]
fn a_run_without_metrics_is_skipped_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut runs = alpha_runs(dir.path());
    let training = write_config_run(dir.path(), "c-seed0", &[], None);
    runs.insert(1, training.clone());
    let mut args = vec!["compare", "--format", "csv"];
    args.extend(runs.iter().map(String::as_str));
    let (csv, stderr) = success(&args);
    assert_eq!(csv.lines().count(), 4, "header and three runs: {csv}");
    assert!(!csv.contains(&training), "{csv}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            format!("warning: skipped {training}: no metrics.json yet (still training?)"),
            "warning: 1 of 4 run folders skipped".to_string(),
        ]
    );

    let mut args = vec!["compare", "--format", "json"];
    args.extend(runs.iter().map(String::as_str));
    let doc = json(&args);
    assert_eq!(doc["skipped"], serde_json::json!([training]));
    assert_eq!(doc["rows"].as_array().expect("rows").len(), 3);

    let out = infobound(&["compare", &training]);
    assert!(!out.status.success(), "nothing to compare");
    assert!(String::from_utf8_lossy(&out.stderr).contains("none of the 1 run folder"));

    let not_a_run = dir.path().join("notes");
    std::fs::create_dir_all(&not_a_run).expect("folder");
    let out = infobound(&["compare", &runs[0], &not_a_run.display().to_string()]);
    assert!(!out.status.success(), "not a run folder stays an error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not an infobound run folder"), "{err}");
}
