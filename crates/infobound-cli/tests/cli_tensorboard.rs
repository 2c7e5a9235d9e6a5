//! `infobound export tensorboard` on a freshly trained tiny run, read back by TensorBoard's own
//! reader (`tests/tensorboard_read.py`, `EventAccumulator`): every logged number, every
//! metrics.json number, the hyper-parameters, the config text and every PNG come back.
//!
//! The reader needs a Python with `tensorboard`: `$INFOBOUND_TENSORBOARD_PYTHON`, else the venv
//! `cargo xtask python` keeps in the target directory (`<target>/python-venv`), else `python3`.
//! Without one the reading test is skipped with a message, unless
//! `INFOBOUND_REQUIRE_TENSORBOARD` is set (as `cargo xtask python` / `ci` do), where it fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{TINY_EVAL, infobound, tiny_vae};

/// Ten steps of the tiny β-TCVAE run, logged every 5, with a small evaluation.
fn tiny_config() -> String {
    format!("{}{TINY_EVAL}", tiny_vae("tiny", 3, 8, 10, 5, 10))
}
use serde_json::Value;

/// The `(step, value)` events per tag of `tensorboard_read.py`'s JSON output.
fn scalars_read(read: &Value) -> BTreeMap<String, Vec<(i64, f32)>> {
    read["scalars"]
        .as_object()
        .expect("scalars")
        .iter()
        .map(|(tag, events)| {
            let events = events
                .as_array()
                .expect("events")
                .iter()
                .map(|e| {
                    (
                        e[0].as_i64().expect("step"),
                        e[1].as_f64().expect("value") as f32,
                    )
                })
                .collect();
            (tag.clone(), events)
        })
        .collect()
}

/// Trains the tiny run into `dir/run`, then damages it the ways a user's folder can be odd: a
/// half-written log line, a row with a string and a `null`, a `.png` that is no PNG.
fn tiny_run(dir: &Path) -> PathBuf {
    let config = dir.join("tiny.toml");
    std::fs::write(&config, tiny_config()).expect("config");
    let run = dir.join("run");
    let out = infobound(&[
        "train",
        "--config",
        config.to_str().expect("utf-8"),
        "--out",
        run.to_str().expect("utf-8"),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = run.join("train_log.jsonl");
    let mut text = std::fs::read_to_string(&log).expect("train log");
    text.push_str(
        "{\"step\": 10, \"note\": \"text\", \"gone\": null, \"extra\": 2.5}\n{\"step\": 1",
    );
    std::fs::write(&log, text).expect("train log");
    std::fs::write(run.join("broken.png"), b"not a png").expect("broken png");
    run
}

/// Runs `infobound export tensorboard` with `extra` arguments; returns stderr.
fn export(run: &Path, extra: &[&str]) -> String {
    let mut args = vec!["export", "tensorboard", run.to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    let out = infobound(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// The event files of `folder`.
fn event_files(folder: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(folder)
        .expect("output folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("events.out.tfevents."))
        })
        .collect()
}

/// A Python that imports `tensorboard`, if any.
fn tensorboard_python() -> Option<PathBuf> {
    let target = Path::new(env!("CARGO_BIN_EXE_infobound"))
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf);
    let candidates = std::env::var_os("INFOBOUND_TENSORBOARD_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain(target.map(|t| t.join("python-venv").join("bin").join("python")))
        .chain([PathBuf::from("python3")]);
    candidates.into_iter().find(|python| {
        Command::new(python)
            .args(["-c", "import tensorboard"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Every numeric leaf of `value` as (JSON pointer, value).
fn leaves(value: &Value, prefix: &str, out: &mut BTreeMap<String, f64>) {
    let escape = |k: &str| k.replace('~', "~0").replace('/', "~1");
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                leaves(v, &format!("{prefix}/{}", escape(k)), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                leaves(v, &format!("{prefix}/{i}"), out);
            }
        }
        Value::Number(n) => {
            out.insert(prefix.to_string(), n.as_f64().expect("f64"));
        }
        _ => {}
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn export_writes_one_event_file_per_run_and_replaces_earlier_exports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = tiny_run(dir.path());
    let stderr = export(&run, &[]);
    assert!(stderr.contains("broken.png: skipped"), "{stderr}");
    assert!(stderr.contains("train_log.jsonl:"), "{stderr}");
    let folder = run.join("tensorboard");
    assert_eq!(event_files(&folder).len(), 1);
    export(&run, &[]);
    let files = event_files(&folder);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(name.ends_with(".infobound"), "{name}");
    assert_eq!(
        std::fs::read_dir(&folder).expect("folder").count(),
        1,
        "no temporary file left"
    );

    let not_a_run = infobound(&["export", "tensorboard", dir.path().to_str().expect("utf-8")]);
    assert!(!not_a_run.status.success());
    let err = String::from_utf8_lossy(&not_a_run.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("config.toml"),
        "{err}"
    );
}

#[test]
fn tensorboards_reader_reads_back_every_scalar_image_text_and_hparam() {
    let Some(python) = tensorboard_python() else {
        if std::env::var_os("INFOBOUND_REQUIRE_TENSORBOARD").is_some() {
            panic!(
                "INFOBOUND_REQUIRE_TENSORBOARD is set but no Python with `tensorboard` was found \
                 (INFOBOUND_TENSORBOARD_PYTHON, <target>/python-venv, python3)"
            );
        }
        eprintln!(
            "SKIPPED: no Python with `tensorboard` (set INFOBOUND_TENSORBOARD_PYTHON or run \
             `cargo xtask python`); set INFOBOUND_REQUIRE_TENSORBOARD to make this a failure"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let run = tiny_run(dir.path());
    let logdir = dir.path().join("tb");
    export(&run, &["--out", logdir.to_str().expect("utf-8")]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tensorboard_read.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(logdir.join("run"))
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).expect("reader JSON");

    // Expected scalars, from the run's own files.
    let mut expected: BTreeMap<String, Vec<(i64, f32)>> = BTreeMap::new();
    let log = std::fs::read_to_string(run.join("train_log.jsonl")).expect("log");
    let mut last_step = 0;
    for line in log.lines() {
        let Ok(Value::Object(row)) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let step = row["step"].as_i64().expect("step");
        last_step = last_step.max(step);
        for (key, value) in &row {
            if let (false, Some(v)) = (key == "step", value.as_f64()) {
                expected
                    .entry(format!("train/{key}"))
                    .or_default()
                    .push((step, v as f32));
            }
        }
    }
    let metrics: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).expect("metrics"))
            .expect("metrics JSON");
    let final_step = metrics["step"].as_i64().unwrap_or(last_step);
    let mut eval = BTreeMap::new();
    leaves(&metrics, "", &mut eval);
    assert!(eval.len() > 20, "a VAE metrics.json has many numbers");
    for (path, v) in eval {
        expected
            .entry(format!("eval{path}"))
            .or_default()
            .push((final_step, v as f32));
    }
    let got = scalars_read(&read);
    assert_eq!(got, expected);
    assert!(got.contains_key("train/loss") && got.contains_key("train/extra"));
    assert!(!got.contains_key("train/note") && !got.contains_key("train/gone"));

    // Images: every valid PNG with its bytes and header size; the broken one is absent.
    let images = read["images"].as_object().expect("images");
    let mut pngs = Vec::new();
    for entry in std::fs::read_dir(&run).expect("run folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "png") && !path.ends_with("broken.png") {
            pngs.push(path);
        }
    }
    assert!(pngs.len() >= 3, "{pngs:?}");
    assert_eq!(images.len(), pngs.len(), "{:?}", images.keys());
    for png in pngs {
        let bytes = std::fs::read(&png).expect("png");
        let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let stem = png
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let event = &images[&format!("images/{stem}")][0];
        assert_eq!(event[0].as_i64(), Some(final_step));
        assert_eq!(
            event[1].as_u64(),
            Some(u64::from(be(16))),
            "width of {stem}"
        );
        assert_eq!(
            event[2].as_u64(),
            Some(u64::from(be(20))),
            "height of {stem}"
        );
        assert_eq!(
            event[3].as_str(),
            Some(hex(&bytes).as_str()),
            "bytes of {stem}"
        );
    }

    // The config: as text in a code block, and as one hyper-parameter per leaf.
    let config = std::fs::read_to_string(run.join("config.toml")).expect("config");
    let text = read["texts"]["config"][0][1].as_str().expect("config text");
    assert!(
        text.starts_with("```toml\n") && text.contains(config.trim()),
        "{text}"
    );
    let hparams = read["hparams"].as_object().expect("hparams");
    assert_eq!(hparams["name"]["string"], "tiny");
    assert_eq!(hparams["seed"]["number"], 3.0);
    assert_eq!(hparams["objective.kind"]["string"], "beta_tcvae");
    assert_eq!(hparams["eval.factor_vae_score"]["bool"], false);
    let table: toml::Table = config.parse().expect("config TOML");
    let mut count = 0;
    let mut stack: Vec<&toml::Table> = vec![&table];
    while let Some(t) = stack.pop() {
        for v in t.values() {
            match v {
                toml::Value::Table(inner) => stack.push(inner),
                _ => count += 1,
            }
        }
    }
    assert_eq!(hparams.len(), count, "one hyper-parameter per config leaf");
    assert_eq!(
        read["plugins"]["hparams"],
        serde_json::json!(["_hparams_/session_start_info"])
    );
}

#[test]
fn train_tensorboard_writes_the_logged_scalars_as_training_goes() {
    let Some(python) = tensorboard_python() else {
        assert!(
            std::env::var_os("INFOBOUND_REQUIRE_TENSORBOARD").is_none(),
            "INFOBOUND_REQUIRE_TENSORBOARD is set but no Python with `tensorboard` was found"
        );
        eprintln!("SKIPPED: no Python with `tensorboard`");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("tiny.toml");
    std::fs::write(&config, tiny_config()).expect("config");
    let run = dir.path().join("run");
    let out = infobound(&[
        "train",
        "--config",
        config.to_str().expect("utf-8"),
        "--out",
        run.to_str().expect("utf-8"),
        "--quiet",
        "--no-eval",
        "--tensorboard",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("tensorboard/live"), "{stderr}");
    let live = run.join("tensorboard").join("live");
    let files = event_files(&live);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].to_string_lossy().ends_with(".infobound-live"));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tensorboard_read.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&live)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).expect("reader JSON");

    // Every number of every log row, at its step, and nothing else.
    let mut expected: BTreeMap<String, Vec<(i64, f32)>> = BTreeMap::new();
    let log = std::fs::read_to_string(run.join("train_log.jsonl")).expect("log");
    for line in log.lines() {
        let row: Value = serde_json::from_str(line).expect("row");
        let step = row["step"].as_i64().expect("step");
        for (key, value) in row.as_object().expect("object") {
            if let (false, Some(v)) = (key == "step", value.as_f64()) {
                expected
                    .entry(format!("train/{key}"))
                    .or_default()
                    .push((step, v as f32));
            }
        }
    }
    assert!(expected.contains_key("train/loss"), "{expected:?}");
    let got = scalars_read(&read);
    assert_eq!(got, expected);
}
