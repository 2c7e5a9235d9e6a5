//! A VAE trained end to end from the CLI on files in the real dSprites and MPI3D layouts
//! (generated here with the real keys, dtypes and shapes, at 64 × 64 on a reduced factor grid),
//! evaluated on their true factors; and bad files rejected before anything is written.

mod common;

use std::path::Path;

use common::{TINY_EVAL, infobound};
use infobound_data::fixtures::{write_dsprites_npz, write_mpi3d_npz};
use infobound_data::readers::NpzCompression;

/// A short β-TCVAE run on `dataset` (a `[dataset]` TOML table body) with a small evaluation.
fn config(dataset: &str, channels: usize, likelihood: &str) -> String {
    format!(
        r#"
name = "real_file"
seed = 1
batch_size = 8
steps = 6
log_every = 3
checkpoint_every = 3

[dataset]
{dataset}

[model]
channels = {channels}
likelihood = "{likelihood}"

[objective]
kind = "beta_tcvae"
{TINY_EVAL}"#
    )
}

/// Trains `config` into `dir/run` and returns the run's `metrics.json`.
fn train_and_evaluate(dir: &Path, config: &str) -> serde_json::Value {
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    let run = dir.join("run");
    let out = infobound(&[
        "train",
        "--config",
        path.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(run.join("metrics.json")).expect("metrics.json");
    serde_json::from_str(&text).expect("json")
}

/// How many factors MIG was scored on (the length of its factor entropies).
fn scored_factor_count(metrics: &serde_json::Value) -> usize {
    metrics["metrics"]
        .as_array()
        .and_then(|all| all.iter().find(|m| m["metric"] == "mig"))
        .and_then(|mig| mig["factor_entropy"].as_array())
        .map_or(0, Vec::len)
}

#[test]
fn a_vae_trains_on_a_dsprites_npz_and_is_scored_on_its_factors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir
        .path()
        .join("dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz");
    // color × shape × scale × orientation × x × y, the real file's factor order.
    write_dsprites_npz(&file, [1, 3, 2, 2, 2, 2], 64, NpzCompression::Deflated).unwrap();
    let dataset = format!(
        "source = \"dsprites_npz\"\npath = \"{}\"\nstrict_shapes = false",
        file.display()
    );
    let metrics = train_and_evaluate(dir.path(), &config(&dataset, 1, "bernoulli"));
    assert_eq!(metrics["step"], 6);
    let mig = metrics["headline"]["mig"].as_f64().expect("MIG");
    assert!((0.0..=1.0).contains(&mig), "MIG {mig}");
    // The real file's six factors less `color`, which takes one value.
    assert_eq!(scored_factor_count(&metrics), 5);
    assert!(
        metrics["dataset"]
            .as_str()
            .is_some_and(|d| d.contains("dsprites")),
        "{}",
        metrics["dataset"]
    );
}

#[test]
fn a_vae_trains_on_an_mpi3d_npz_and_is_scored_on_its_factors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mpi3d_toy.npz");
    // object colour, shape, size, camera height, background colour, horizontal, vertical axis.
    let sizes = [2, 2, 2, 2, 2, 2, 2];
    write_mpi3d_npz(&file, sizes, 64, NpzCompression::Stored).unwrap();
    let dataset = format!(
        "source = \"mpi3d_npz\"\nvariant = \"toy\"\npath = \"{}\"\nstrict_shapes = false\n\
         factor_sizes = [2, 2, 2, 2, 2, 2, 2]",
        file.display()
    );
    let metrics = train_and_evaluate(dir.path(), &config(&dataset, 3, "gaussian"));
    assert_eq!(metrics["step"], 6);
    assert_eq!(scored_factor_count(&metrics), 7);
    let dci = metrics["headline"]["dci.disentanglement"]
        .as_f64()
        .expect("DCI");
    assert!((0.0..=1.0).contains(&dci), "DCI {dci}");
    assert!(
        metrics["dataset"]
            .as_str()
            .is_some_and(|d| d.contains("mpi3d")),
        "{}",
        metrics["dataset"]
    );
}

#[test]
fn a_bad_file_is_rejected_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("truncated.npz");
    std::fs::write(&file, b"PK\x03\x04 not really a zip").unwrap();
    let dataset = format!(
        "source = \"dsprites_npz\"\npath = \"{}\"\nstrict_shapes = false",
        file.display()
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config(&dataset, 1, "bernoulli")).unwrap();
    let run = dir.path().join("run");
    let out = infobound(&[
        "train",
        "--config",
        path.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("truncated.npz"),
        "the error names the file: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!run.exists(), "the rejected run wrote {}", run.display());
}
