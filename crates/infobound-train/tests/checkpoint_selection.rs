//! Checkpoints that prove themselves: the manifest written with every checkpoint, pruning to the
//! newest valid ones, and the choice of the newest valid checkpoint when newer ones are truncated,
//! corrupted, without manifest, or named by a `latest` whose folder is gone — the damaged ones
//! are set aside, never deleted.

use std::path::{Path, PathBuf};

use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::tensor::Device;
use infobound_train::TrainError;
use infobound_train::latest_checkpoint;
use infobound_train::run::checkpoint::{
    CheckpointManifest, InvalidReason, KEEP, LATEST_FILE, MANIFEST_FILE, MANIFEST_FORMAT,
    Quarantine, SaveModule, TrainerState, load_module, load_state, newest_valid_checkpoint,
    save_checkpoint, verify_checkpoint,
};
use sha2::{Digest, Sha256};

fn state(step: usize) -> TrainerState {
    TrainerState {
        step,
        learning_rate: 1e-3,
        plateau_best: Some(0.5),
        plateau_bad_intervals: 1,
        skipped_steps: 0,
    }
}

fn linear() -> Linear {
    LinearConfig::new(3, 2).init(&Device::flex())
}

fn save_with(dir: &Path, step: usize, model: &Linear, optimizer: &ModuleOptimizer) -> PathBuf {
    let modules: [(&str, &dyn SaveModule); 1] = [("linear", model)];
    save_checkpoint(dir, &state(step), &modules, &[("optimizer", optimizer)]).unwrap()
}

fn save(dir: &Path, step: usize) -> PathBuf {
    save_with(dir, step, &linear(), &AdamConfig::new().init())
}

fn name(step: usize) -> String {
    format!("step-{step:08}")
}

fn values(model: &Linear) -> Vec<f32> {
    model.weight.val().into_data().try_to_vec::<f32>().unwrap()
}

fn folder_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn read_manifest(checkpoint: &Path) -> CheckpointManifest {
    serde_json::from_str(&std::fs::read_to_string(checkpoint.join(MANIFEST_FILE)).unwrap()).unwrap()
}

#[test]
fn a_checkpoint_records_size_and_sha256_of_every_file_and_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("checkpoints");
    let model = linear();
    let path = save_with(&dir, 7, &model, &AdamConfig::new().init());
    assert_eq!(path, dir.join(name(7)));

    let manifest = read_manifest(&path);
    assert_eq!(manifest.format, MANIFEST_FORMAT);
    assert_eq!(manifest.step, 7);
    let mut listed: Vec<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    listed.sort_unstable();
    assert_eq!(listed, ["linear.bpk", "optimizer.bpk", "state.json"]);
    for entry in &manifest.files {
        let bytes = std::fs::read(path.join(&entry.name)).unwrap();
        assert_eq!(entry.bytes, bytes.len() as u64, "{}", entry.name);
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(entry.sha256, digest, "{}", entry.name);
    }
    assert_eq!(verify_checkpoint(&path), Ok(manifest));

    // Only the checkpoint and the pointer: no temporary files or folders are left behind.
    assert_eq!(folder_names(&dir), [LATEST_FILE.to_owned(), name(7)]);
    assert_eq!(
        std::fs::read_to_string(dir.join(LATEST_FILE)).unwrap(),
        name(7)
    );
    let mut files = folder_names(&path);
    files.retain(|f| f != MANIFEST_FILE);
    assert_eq!(files, ["linear.bpk", "optimizer.bpk", "state.json"]);

    assert_eq!(load_state(&path).unwrap(), state(7));
    let loaded = load_module(&path, "linear", linear()).unwrap();
    assert_eq!(values(&loaded), values(&model));
    assert_eq!(latest_checkpoint(&dir).unwrap(), Some(path));
}

#[test]
fn the_newest_valid_checkpoints_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for step in 1..=4 {
        save(dir, step);
    }
    let expected: Vec<String> = (5 - KEEP..=4).map(name).collect();
    let mut found = folder_names(dir);
    found.retain(|n| n != LATEST_FILE);
    assert_eq!(found, expected);
}

#[test]
fn saving_the_same_step_again_replaces_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    save(dir, 1);
    let second = linear();
    let path = save_with(dir, 1, &second, &AdamConfig::new().init());
    assert!(verify_checkpoint(&path).is_ok());
    let loaded = load_module(&path, "linear", linear()).unwrap();
    assert_eq!(values(&loaded), values(&second));
    assert_eq!(folder_names(dir), [LATEST_FILE.to_owned(), name(1)]);
}

/// Ways the newest checkpoint gets damaged, and the reason slug each must be reported with.
fn damage(kind: &str, checkpoint: &Path) -> &'static str {
    match kind {
        "truncate" => {
            let file = checkpoint.join("linear.bpk");
            let len = std::fs::metadata(&file).unwrap().len();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&file)
                .unwrap()
                .set_len(len / 2)
                .unwrap();
            "truncated"
        }
        "flip" => {
            let file = checkpoint.join("optimizer.bpk");
            let mut bytes = std::fs::read(&file).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x01;
            std::fs::write(&file, bytes).unwrap();
            "digest-mismatch"
        }
        "no-manifest" => {
            std::fs::remove_file(checkpoint.join(MANIFEST_FILE)).unwrap();
            "no-manifest"
        }
        "missing-file" => {
            std::fs::remove_file(checkpoint.join("state.json")).unwrap();
            "missing-file"
        }
        "bad-manifest" => {
            std::fs::write(checkpoint.join(MANIFEST_FILE), b"{\"format\": 1, \"st").unwrap();
            "bad-manifest"
        }
        other => unreachable!("no damage {other}"),
    }
}

const DAMAGES: [&str; 5] = [
    "truncate",
    "flip",
    "no-manifest",
    "missing-file",
    "bad-manifest",
];

#[test]
fn a_damaged_newest_checkpoint_falls_back_to_the_previous_and_is_moved_aside() {
    for kind in DAMAGES {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let previous = save(dir, 1);
        let newest = save(dir, 2);
        let slug = damage(kind, &newest);
        let damaged_files = folder_names(&newest);

        // Read-only choice: the previous checkpoint, and nothing moves.
        let seen = newest_valid_checkpoint(dir, Quarantine::Leave).unwrap();
        assert_eq!(seen.checkpoint.as_ref(), Some(&previous), "{kind}");
        assert_eq!(seen.skipped.len(), 1, "{kind}: {:?}", seen.skipped);
        assert_eq!(seen.skipped[0].path, newest, "{kind}");
        assert_eq!(seen.skipped[0].reason.slug(), slug, "{kind}");
        assert_eq!(seen.skipped[0].moved_to, None, "{kind}");
        assert!(newest.is_dir(), "{kind}: Leave must not move anything");
        assert_eq!(latest_checkpoint(dir).unwrap(), Some(previous.clone()));

        // Resume's choice: the same, with the damaged folder renamed (contents kept).
        let resumed = newest_valid_checkpoint(dir, Quarantine::MoveAside).unwrap();
        assert_eq!(resumed.checkpoint.as_ref(), Some(&previous), "{kind}");
        let moved_to = resumed.skipped[0].moved_to.clone().unwrap();
        assert_eq!(
            moved_to,
            dir.join(format!("{}.invalid-{slug}", name(2))),
            "{kind}"
        );
        assert!(!newest.exists(), "{kind}");
        assert_eq!(folder_names(&moved_to), damaged_files, "{kind}");
        assert_eq!(
            std::fs::read_to_string(dir.join(LATEST_FILE)).unwrap(),
            name(1),
            "{kind}: latest names the chosen checkpoint"
        );
        let message = resumed.skipped[0].to_string();
        assert!(
            message.contains(&name(2)) && message.contains(".invalid-"),
            "{message}"
        );

        // Afterwards the moved folder is no candidate, and a later save keeps it.
        let again = newest_valid_checkpoint(dir, Quarantine::MoveAside).unwrap();
        assert_eq!(again.checkpoint.as_ref(), Some(&previous), "{kind}");
        assert!(again.skipped.is_empty(), "{kind}: {:?}", again.skipped);
        save(dir, 2);
        save(dir, 3);
        assert!(moved_to.is_dir(), "{kind}: pruning must not delete it");
    }
}

#[test]
fn a_latest_naming_a_missing_folder_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let previous = save(dir, 1);
    let newest = save(dir, 2);
    std::fs::remove_dir_all(&newest).unwrap();

    let selection = newest_valid_checkpoint(dir, Quarantine::MoveAside).unwrap();
    assert_eq!(selection.checkpoint, Some(previous));
    assert_eq!(selection.skipped.len(), 1);
    assert_eq!(selection.skipped[0].path, newest);
    assert_eq!(selection.skipped[0].reason, InvalidReason::Missing);
    assert_eq!(selection.skipped[0].moved_to, None);
    assert_eq!(
        std::fs::read_to_string(dir.join(LATEST_FILE)).unwrap(),
        name(1)
    );
}

#[test]
fn the_newest_valid_checkpoint_wins_over_latest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    save(dir, 1);
    let newest = save(dir, 2);
    std::fs::write(dir.join(LATEST_FILE), name(1)).unwrap();
    let selection = newest_valid_checkpoint(dir, Quarantine::Leave).unwrap();
    assert_eq!(selection.checkpoint, Some(newest));
    assert!(selection.skipped.is_empty());
}

#[test]
fn checkpoints_without_manifest_from_older_versions_are_invalid_and_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let old = dir.join(name(5));
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("state.json"), b"{}").unwrap();
    std::fs::write(dir.join(LATEST_FILE), name(5)).unwrap();

    let selection = newest_valid_checkpoint(dir, Quarantine::Leave).unwrap();
    assert_eq!(selection.checkpoint, None);
    assert_eq!(selection.skipped.len(), 1);
    assert_eq!(selection.skipped[0].reason, InvalidReason::NoManifest);
    assert!(
        selection.skipped[0]
            .to_string()
            .contains("before checkpoint manifests"),
        "{}",
        selection.skipped[0]
    );
}

#[test]
fn a_folder_where_every_checkpoint_is_invalid_has_none() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let first = save(dir, 1);
    let second = save(dir, 2);
    damage("flip", &first);
    damage("truncate", &second);

    let selection = newest_valid_checkpoint(dir, Quarantine::MoveAside).unwrap();
    assert_eq!(selection.checkpoint, None);
    let slugs: Vec<&str> = selection.skipped.iter().map(|s| s.reason.slug()).collect();
    assert_eq!(slugs, ["truncated", "digest-mismatch"]);
    for skipped in &selection.skipped {
        assert!(skipped.moved_to.as_ref().unwrap().is_dir());
    }
    let error = selection.require(dir).unwrap_err();
    let message = error.to_string();
    assert!(matches!(
        &error,
        TrainError::NoValidCheckpoint { skipped, .. } if skipped.len() == 2
    ));
    assert!(
        message.contains(&name(1)) && message.contains(&name(2)),
        "{message}"
    );
    assert_eq!(latest_checkpoint(dir).unwrap(), None);
}

#[test]
fn an_empty_or_missing_folder_has_no_checkpoint_yet() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in [tmp.path().to_path_buf(), tmp.path().join("absent")] {
        let selection = newest_valid_checkpoint(&dir, Quarantine::MoveAside).unwrap();
        assert_eq!(selection.checkpoint, None);
        assert!(selection.skipped.is_empty());
        let message = selection.require(&dir).unwrap_err().to_string();
        assert!(message.contains("no checkpoint yet"), "{message}");
    }
}

#[test]
fn pruning_keeps_enough_valid_checkpoints_and_sets_invalid_ones_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let first = save(dir, 1);
    let second = save(dir, 2);
    damage("flip", &second);
    let third = save(dir, 3);

    // Step 2 is damaged, so step 1 is still one of the KEEP = 2 valid checkpoints.
    assert!(verify_checkpoint(&first).is_ok());
    assert!(verify_checkpoint(&third).is_ok());
    assert!(!second.exists());
    let moved = dir.join(format!("{}.invalid-digest-mismatch", name(2)));
    assert!(moved.is_dir(), "{:?}", folder_names(dir));

    // One more valid checkpoint: now step 1 is beyond KEEP and goes; the damaged one stays.
    save(dir, 4);
    assert!(!first.exists());
    assert!(moved.is_dir());
    let selection = newest_valid_checkpoint(dir, Quarantine::Leave).unwrap();
    assert_eq!(selection.checkpoint, Some(dir.join(name(4))));
}

#[test]
fn a_manifest_for_another_step_or_format_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = save(dir, 3);
    let manifest = std::fs::read_to_string(path.join(MANIFEST_FILE)).unwrap();

    let other_step = manifest.replace("\"step\": 3", "\"step\": 4");
    assert_ne!(other_step, manifest);
    std::fs::write(path.join(MANIFEST_FILE), &other_step).unwrap();
    assert!(matches!(
        verify_checkpoint(&path),
        Err(InvalidReason::BadManifest(m)) if m.contains("step 4")
    ));

    let other_format = manifest.replace("\"format\": 1", "\"format\": 99");
    assert_ne!(other_format, manifest);
    std::fs::write(path.join(MANIFEST_FILE), &other_format).unwrap();
    assert_eq!(
        verify_checkpoint(&path),
        Err(InvalidReason::UnsupportedFormat { found: 99 })
    );

    let escaping = manifest.replace("\"state.json\"", "\"../state.json\"");
    assert_ne!(escaping, manifest);
    std::fs::write(path.join(MANIFEST_FILE), &escaping).unwrap();
    assert!(matches!(
        verify_checkpoint(&path),
        Err(InvalidReason::BadManifest(_))
    ));
}
