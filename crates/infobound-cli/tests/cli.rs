//! The `infobound` binary as a user runs it: device listing, one-line errors, and a run killed
//! with SIGKILL that resumes to the parameters of an uninterrupted run.

use std::path::Path;
use std::process::{Command, Stdio};

mod common;
use common::{TINY_EVAL, infobound, tiny_vae};
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use infobound_train::{RunDir, latest_checkpoint};

#[test]
fn devices_lists_flex_as_usable_and_the_others_as_not_compiled() {
    let out = infobound(&["devices"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("flex") && l.contains("usable")),
        "{text}"
    );
    for (name, feature) in [("ndarray", "ndarray"), ("wgpu", "wgpu"), ("cuda", "cuda")] {
        let compiled = match name {
            "ndarray" => cfg!(feature = "ndarray"),
            "wgpu" => cfg!(feature = "wgpu"),
            _ => cfg!(feature = "cuda"),
        };
        let line = text.lines().find(|l| l.starts_with(name)).expect("listed");
        assert_eq!(line.contains("not compiled in"), !compiled, "{line}");
        if !compiled {
            assert!(line.contains(feature));
        }
    }
}

#[test]
fn user_mistakes_are_one_line_errors_without_a_panic() {
    for args in [
        vec!["train", "--preset", "no_such_preset"],
        vec!["train", "--preset", "quickstart", "--device", "tpu"],
        vec!["eval", "/nonexistent/run"],
        vec![
            "metrics",
            "--codes",
            "/nonexistent/c.npy",
            "--factors",
            "/nonexistent/f.npy",
        ],
        vec!["datasets", "show", "no_such_dataset"],
    ] {
        let out = infobound(&args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// Every parameter value of the newest checkpoint's VAE.
fn final_parameters(run: &Path) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0
                .extend(param.val().into_data().try_to_vec::<f32>().expect("f32"));
        }
    }
    let run = RunDir::new(run);
    let checkpoint = latest_checkpoint(&run.checkpoints()).unwrap().unwrap();
    let config = run.load_config().unwrap();
    let vae = config
        .model
        .init(&Device::flex())
        .unwrap()
        .load_file(checkpoint.join("vae.bpk"));
    let mut collect = Collect(Vec::new());
    vae.visit(&mut collect);
    collect.0
}

#[test]
fn a_run_killed_with_sigkill_resumes_to_the_uninterrupted_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    std::fs::write(&config, tiny_vae("tiny", 3, 8, 30, 5, 5)).unwrap();
    let config = config.to_str().unwrap();
    let whole = dir.path().join("whole");
    let killed = dir.path().join("killed");

    let out = infobound(&[
        "train",
        "--config",
        config,
        "--out",
        whole.to_str().unwrap(),
        "--no-eval",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_infobound"))
        .args([
            "train",
            "--config",
            config,
            "--out",
            killed.to_str().unwrap(),
            "--no-eval",
            "--quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let latest = killed.join("checkpoints/latest");
    let started = Instant::now();
    while !latest.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let at_kill = std::fs::read_to_string(&latest).unwrap();
    assert_ne!(
        at_kill.trim(),
        "step-00000030",
        "the kill came too late to test anything"
    );

    let out = infobound(&[
        "train",
        "--resume",
        killed.to_str().unwrap(),
        "--no-eval",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(final_parameters(&whole), final_parameters(&killed));
}

/// The untrained floor is the run's own step-0 weights (`initial/`), not weights re-drawn from
/// the seed: a run of zero steps scores exactly its floor.
#[test]
fn a_zero_step_run_scores_exactly_its_untrained_floor() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    let tiny = tiny_vae("tiny", 3, 8, 30, 5, 5);
    std::fs::write(&config, format!("{tiny}{TINY_EVAL}")).unwrap();
    let run = dir.path().join("run");
    let out = infobound(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--steps",
        "0",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(run.join("initial").is_dir(), "no initial/ record");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    let trained = metrics["headline"].as_object().expect("headline");
    assert!(!trained.is_empty());
    assert_eq!(metrics["headline"], metrics["untrained"]);
}
