//! `infobound export weights` and `infobound import weights`: a tiny trained run's network
//! goes out as safetensors and comes back as a new run folder, which `eval`, `traverse` and
//! `probe` score exactly as the original; a state dict that does not fit is refused before
//! anything is written.

use std::path::Path;

mod common;
use common::{TINY_EVAL, TINY_SSL_NETWORK, infobound, text, tiny_vae};

/// Overrides for `mveb_quickstart` beside [`TINY_SSL_NETWORK`]: batch 8, no entropy term.
const SSL_SETS: [&str; 4] = [
    "--set",
    "batch_size=8",
    "--set",
    "objective.entropy_weight=0",
];

fn ok(args: &[&str]) -> String {
    let out = infobound(args);
    assert!(out.status.success(), "{args:?}\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// metrics.json without the fields that describe the run rather than the network: the step,
/// the timings and the evaluation time.
fn metrics(run: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("metrics.json")).expect("metrics.json");
    let mut value: serde_json::Value = serde_json::from_str(&text).expect("json");
    let object = value.as_object_mut().expect("object");
    object.remove("step");
    object.remove("timings");
    object.remove("eval_seconds");
    value
}

#[test]
fn a_vae_run_goes_out_and_back_in_and_scores_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("tiny.toml");
    std::fs::write(
        &config,
        format!("{}{TINY_EVAL}", tiny_vae("tiny", 3, 8, 6, 3, 6)),
    )
    .expect("config");
    let (run, imported) = (dir.path().join("run"), dir.path().join("imported"));
    ok(&[
        "train",
        "--config",
        s(&config),
        "--out",
        s(&run),
        "--quiet",
        "--no-eval",
    ]);

    let weights = dir.path().join("vae.safetensors");
    let printed = ok(&[
        "export",
        "weights",
        s(&run),
        "--out",
        s(&weights),
        "--format",
        "safetensors",
    ]);
    assert!(printed.contains("24 tensors"), "{printed}");
    assert!(weights.exists());

    let printed = ok(&[
        "import",
        "weights",
        s(&weights),
        "--config",
        s(&config),
        "--out",
        s(&imported),
    ]);
    assert!(printed.contains("infobound eval"), "{printed}");
    for file in [
        "config.toml",
        "imported_weights.json",
        "checkpoints/latest",
        "initial/latest",
    ] {
        assert!(imported.join(file).exists(), "missing {file}");
    }
    let record = std::fs::read_to_string(imported.join("imported_weights.json")).expect("record");
    assert!(record.contains("vae.safetensors"), "{record}");

    let (codes_a, codes_b) = (dir.path().join("codes_a"), dir.path().join("codes_b"));
    ok(&["eval", s(&run), "--export", s(&codes_a)]);
    ok(&["eval", s(&imported), "--export", s(&codes_b)]);
    let read = |d: &Path| std::fs::read(d.join("codes.npy")).expect("codes.npy");
    assert_eq!(
        read(&codes_a),
        read(&codes_b),
        "the imported encoder gives the same codes"
    );
    // Every metric (and the untrained floor: the imported run's initial/ holds the same seed's
    // weights as the original's) is the same.
    let (a, b) = (metrics(&run), metrics(&imported));
    assert!(a["headline"].is_object(), "{a}");
    assert!(a == b, "metrics.json differ:\n{a}\n{b}");

    let (grid_a, grid_b) = (dir.path().join("a.png"), dir.path().join("b.png"));
    ok(&["traverse", s(&run), "--out", s(&grid_a)]);
    ok(&["traverse", s(&imported), "--out", s(&grid_b)]);
    assert_eq!(
        std::fs::read(grid_a).expect("png"),
        std::fs::read(grid_b).expect("png")
    );

    // The folder now holds a run: a second import into it is refused.
    let out = infobound(&[
        "import",
        "weights",
        s(&weights),
        "--config",
        s(&config),
        "--out",
        s(&imported),
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("already holds a run"), "{}", text(&out));
}

#[test]
fn an_ssl_backbone_goes_out_and_back_in_and_probes_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (run, imported) = (dir.path().join("run"), dir.path().join("imported"));
    let mut args = vec![
        "train",
        "--preset",
        "mveb_quickstart",
        "--steps",
        "2",
        "--quiet",
        "--no-eval",
        "--out",
        s(&run),
    ];
    args.extend(TINY_SSL_NETWORK);
    args.extend(SSL_SETS);
    ok(&args);

    let weights = dir.path().join("resnet.safetensors");
    ok(&["export", "weights", s(&run), "--out", s(&weights)]);

    let mut args = vec![
        "import",
        "weights",
        s(&weights),
        "--preset",
        "mveb_quickstart",
        "--out",
        s(&imported),
    ];
    args.extend(TINY_SSL_NETWORK);
    args.extend(SSL_SETS);
    ok(&args);

    // kNN and the linear probe read the backbone only; the online probe is the imported run's
    // untrained one, so its line differs.
    let probes = |run: &Path| -> Vec<String> {
        ok(&["probe", s(run)])
            .lines()
            .filter(|l| l.contains("kNN accuracy") || l.contains("linear probe"))
            .map(str::to_string)
            .collect()
    };
    let original = probes(&run);
    assert_eq!(original.len(), 3, "{original:?}");
    assert_eq!(original, probes(&imported));
}

#[test]
fn a_state_dict_that_does_not_fit_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("tiny.toml");
    std::fs::write(
        &config,
        format!("{}{TINY_EVAL}", tiny_vae("tiny", 3, 8, 6, 3, 6)),
    )
    .expect("config");
    let run = dir.path().join("run");
    ok(&[
        "train",
        "--config",
        s(&config),
        "--out",
        s(&run),
        "--quiet",
        "--no-eval",
    ]);
    let weights = dir.path().join("vae.safetensors");
    ok(&["export", "weights", s(&run), "--out", s(&weights)]);

    // VAE weights for a self-supervised configuration: every backbone key is missing.
    let target = dir.path().join("ssl");
    let mut args = vec![
        "import",
        "weights",
        s(&weights),
        "--preset",
        "mveb_quickstart",
        "--out",
        s(&target),
    ];
    args.extend(TINY_SSL_NETWORK);
    args.extend(SSL_SETS);
    let out = infobound(&args);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("key(s) missing: bn1.bias"),
        "{}",
        text(&out)
    );
    assert!(!target.exists(), "nothing is written for a refused import");

    // A three-channel VAE cannot take the one-channel file.
    let target = dir.path().join("rgb");
    let out = infobound(&[
        "import",
        "weights",
        s(&weights),
        "--config",
        s(&config),
        "--set",
        "model.channels=3",
        "--set",
        "dataset.name=\"shapes3d\"",
        "--out",
        s(&target),
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("has shape"), "{}", text(&out));
    assert!(!target.exists());

    let out = infobound(&[
        "export",
        "weights",
        s(&run),
        "--out",
        s(&dir.path().join("vae.pt")),
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("safetensors only"), "{}", text(&out));
    let out = infobound(&[
        "import",
        "weights",
        s(&dir.path().join("w.bin")),
        "--config",
        s(&config),
        "--out",
        s(&target),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("unknown weights format"),
        "{}",
        text(&out)
    );
}
