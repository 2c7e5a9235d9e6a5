//! `infobound train | probe | compare | report | eval` on a self-supervised run, shrunk with
//! `--set` so that it takes seconds.

use std::path::{Path, PathBuf};

mod common;
use common::{TINY_SSL_NETWORK, infobound, text};

/// Overrides for `mveb_quickstart` beside [`TINY_SSL_NETWORK`]: batch 8, the monitor every
/// 2 steps, a log row every step, no entropy term.
const SETS: [&str; 8] = [
    "--set",
    "batch_size=8",
    "--set",
    "monitor_every=2",
    "--set",
    "log_every=1",
    "--set",
    "objective.entropy_weight=0",
];

#[test]
fn an_ssl_preset_trains_evaluates_probes_and_compares() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("mveb");
    let run_arg = run.to_str().expect("utf-8 path");
    let mut args = vec![
        "train",
        "--preset",
        "mveb_quickstart",
        "--steps",
        "2",
        "--quiet",
        "--out",
        run_arg,
    ];
    args.extend(TINY_SSL_NETWORK);
    args.extend(SETS);
    let out = infobound(&args);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("kNN accuracy"), "{}", text(&out));
    for file in [
        "config.toml",
        "train_log.jsonl",
        "metrics.json",
        "retrieval.png",
        "views.png",
        "loss.svg",
        "environment.json",
        "report.md",
        "checkpoints/latest",
    ] {
        assert!(run.join(file).exists(), "missing {file}");
    }
    let config = std::fs::read_to_string(run.join("config.toml")).expect("config");
    assert!(config.contains("entropy_weight = 0.0"), "{config}");
    assert!(config.contains("steps = 2"), "{config}");

    let out = infobound(&["probe", run_arg]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("probes at step 2"), "{printed}");
    assert!(printed.contains("linear probe (test)"), "{printed}");

    let out = infobound(&["compare", run_arg]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("mveb"));

    let out = infobound(&["report", run_arg]);
    assert!(out.status.success(), "{}", text(&out));

    // Resuming a finished run with a larger budget continues it.
    let out = infobound(&[
        "train",
        "--resume",
        run_arg,
        "--steps",
        "3",
        "--quiet",
        "--no-eval",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let log = std::fs::read_to_string(run.join("train_log.jsonl")).expect("log");
    assert!(log.contains("\"step\":3"), "{log}");
}

#[test]
fn ssl_mistakes_are_one_line_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("x");
    let out_arg = out_dir.to_str().expect("utf-8");
    for args in [
        vec![
            "train",
            "--preset",
            "mveb_quickstart",
            "--set",
            "no_equals",
            "--out",
            out_arg,
        ],
        vec![
            "train",
            "--preset",
            "mveb_quickstart",
            "--set",
            "batch_sise=3",
            "--out",
            out_arg,
        ],
        vec![
            "train",
            "--preset",
            "byol_quickstart",
            "--set",
            "network.predictor=false",
        ],
        vec!["probe", "/nonexistent/run"],
        // Two devices for a run of one replica.
        vec![
            "train",
            "--preset",
            "mveb_quickstart",
            "--device",
            "flex,flex",
            "--out",
            out_arg,
        ],
        // A batch the replicas cannot share evenly.
        vec![
            "train",
            "--preset",
            "mveb_quickstart",
            "--set",
            "data_parallel.replicas=3",
            "--out",
            out_arg,
        ],
    ] {
        let out = infobound(&args);
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert!(!Path::new(&out_dir).join("config.toml").exists());
}

/// Trains two data-parallel replicas on `devices` for 2 steps; returns the run folder and its
/// training log.
fn train_data_parallel(dir: &Path, devices: &str, support: &str) -> (PathBuf, String) {
    let run = dir.join(format!("{}-{support}", devices.replace(',', "+")));
    let run_arg = run.to_str().expect("utf-8 path");
    let support = format!("data_parallel.entropy_support={support}");
    let mut args = vec![
        "train",
        "--preset",
        "mveb_quickstart",
        "--steps",
        "2",
        "--quiet",
        "--no-eval",
        "--device",
        devices,
        "--out",
        run_arg,
        "--set",
        "data_parallel.replicas=2",
        "--set",
        &support,
    ];
    args.extend(TINY_SSL_NETWORK);
    args.extend(SETS);
    let out = infobound(&args);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("2 replica(s)"), "{}", text(&out));
    let config = std::fs::read_to_string(run.join("config.toml")).expect("config");
    assert!(config.contains("replicas = 2"), "{config}");
    let log = std::fs::read_to_string(run.join("train_log.jsonl")).expect("log");
    (run, log)
}

#[test]
fn data_parallel_replicas_train_from_a_device_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    for support in ["per_replica", "gathered"] {
        let (run, log) = train_data_parallel(dir.path(), "flex,flex", support);
        assert!(log.contains("\"step\":2"), "{log}");
        assert!(log.contains("\"skipped_steps\":0"), "{log}");
        // A data-parallel run resumes like any other (its replicas are in config.toml).
        let run_arg = run.to_str().expect("utf-8 path");
        let out = infobound(&[
            "train",
            "--resume",
            run_arg,
            "--steps",
            "3",
            "--quiet",
            "--no-eval",
            "--device",
            "flex,flex",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let log = std::fs::read_to_string(run.join("train_log.jsonl")).expect("log");
        assert!(log.contains("\"step\":3"), "{log}");
    }
}

/// Two different backends as the two devices: parameters, gradients and the optimiser state
/// cross between flex and ndarray every step. Same seed, so the log must match the run on
/// two flex devices up to the backends' rounding. (`cargo xtask ci --full` runs it.)
#[cfg(feature = "ndarray")]
#[test]
fn data_parallel_replicas_run_on_two_backends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loss = |log: &str, step: usize| -> f64 {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("\"step\":{step},")) && l.contains("\"loss\""))
            .unwrap_or_else(|| panic!("no loss at step {step}: {log}"));
        let value: serde_json::Value = serde_json::from_str(line).expect("json");
        value["loss"].as_f64().expect("loss")
    };
    let (_, mixed) = train_data_parallel(dir.path(), "flex,ndarray", "gathered");
    let (_, flex) = train_data_parallel(dir.path(), "flex,flex", "gathered");
    for step in [1, 2] {
        let (a, b) = (loss(&mixed, step), loss(&flex, step));
        assert!((a - b).abs() <= 1e-3 * b.abs(), "step {step}: {a} vs {b}");
    }
}
