//! The checkpoint writer's test hook `INFOBOUND_FAULT_STOP_CHECKPOINT_AFTER_FILES=N`: a child
//! process aborts after the N-th file of a checkpoint, and the checkpoint before it is still the
//! one chosen; the unfinished folder is never taken and is set aside by a resume.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use burn::nn::{Linear, LinearConfig};
use burn::optim::AdamConfig;
use burn::tensor::Device;
use infobound_train::TrainError;
use infobound_train::run::checkpoint::{
    FAULT_STOP_AFTER_FILES_ENV, InvalidReason, MANIFEST_FILE, Quarantine, SaveModule, TrainerState,
    newest_valid_checkpoint, save_checkpoint,
};

/// Set (to a checkpoint folder) only in the child process started by [`run_child`].
const CHILD_DIR_ENV: &str = "INFOBOUND_TEST_FAULT_CHILD_DIR";

fn save(dir: &Path, step: usize) -> Result<PathBuf, TrainError> {
    let model: Linear = LinearConfig::new(3, 2).init(&Device::flex());
    let modules: [(&str, &dyn SaveModule); 1] = [("linear", &model)];
    let state = TrainerState {
        step,
        learning_rate: 1e-3,
        plateau_best: None,
        plateau_bad_intervals: 0,
        skipped_steps: 0,
    };
    save_checkpoint(
        dir,
        &state,
        &modules,
        &[("optimizer", &AdamConfig::new().init())],
    )
}

/// In the child process only: save step 2 under the hook (aborting, or failing on a bad value).
#[test]
fn fault_hook_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    match save(Path::new(&dir), 2) {
        Ok(_) => println!("saved"),
        Err(TrainError::Config(message)) => println!("config error: {message}"),
        Err(other) => panic!("{other}"),
    }
}

fn run_child(dir: &Path, stop_after: &str) -> (ExitStatus, String, u32) {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "fault_hook_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir)
        .env(FAULT_STOP_AFTER_FILES_ENV, stop_after)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        pid,
    )
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[cfg(unix)]
fn aborted(status: ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(6) // SIGABRT
}

#[cfg(not(unix))]
fn aborted(status: ExitStatus) -> bool {
    !status.success()
}

#[test]
fn a_crash_between_files_leaves_the_previous_checkpoint_chosen() {
    // linear.bpk, optimizer.bpk, state.json, then the manifest: stop before any, after each.
    for stop_after in 0..=4usize {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let previous = save(dir, 1).unwrap();
        let (status, stdout, pid) = run_child(dir, &stop_after.to_string());
        assert!(aborted(status), "N={stop_after}: {status:?} {stdout}");
        assert!(!stdout.contains("saved"), "N={stop_after}");

        let unfinished = dir.join(format!("step-00000002.tmp-{pid}"));
        let mut in_place = files_in(&unfinished);
        in_place.retain(|n| !n.contains(".tmp-"));
        assert_eq!(in_place.len(), stop_after, "N={stop_after}: {in_place:?}");
        assert_eq!(
            in_place.contains(&MANIFEST_FILE.to_owned()),
            stop_after == 4,
            "N={stop_after}: the manifest is the last file"
        );
        assert!(!dir.join("step-00000002").exists());

        let seen = newest_valid_checkpoint(dir, Quarantine::Leave).unwrap();
        assert_eq!(seen.checkpoint.as_ref(), Some(&previous), "N={stop_after}");
        assert!(seen.skipped.is_empty(), "a write may be in progress");

        let resumed = newest_valid_checkpoint(dir, Quarantine::MoveAside).unwrap();
        assert_eq!(
            resumed.checkpoint.as_ref(),
            Some(&previous),
            "N={stop_after}"
        );
        assert_eq!(resumed.skipped.len(), 1, "N={stop_after}");
        assert_eq!(resumed.skipped[0].reason, InvalidReason::InterruptedWrite);
        let moved = resumed.skipped[0].moved_to.clone().unwrap();
        assert!(!unfinished.exists());
        assert_eq!(
            moved.file_name().unwrap().to_string_lossy(),
            format!("step-00000002.tmp-{pid}.invalid-interrupted-write")
        );
        assert!(moved.is_dir(), "set aside, not deleted");
    }
}

#[test]
fn a_hook_count_beyond_the_files_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (status, stdout, _) = run_child(tmp.path(), "5");
    assert!(status.success(), "{status:?}");
    assert!(stdout.contains("saved"), "{stdout}");
    let selection = newest_valid_checkpoint(tmp.path(), Quarantine::Leave).unwrap();
    assert_eq!(selection.checkpoint, Some(tmp.path().join("step-00000002")));
}

#[test]
fn a_malformed_hook_value_is_an_error_not_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let (status, stdout, _) = run_child(tmp.path(), "three");
    assert!(status.success(), "{status:?}");
    assert!(
        stdout.contains("config error") && stdout.contains(FAULT_STOP_AFTER_FILES_ENV),
        "{stdout}"
    );
    assert!(!tmp.path().join("step-00000002").exists());
}
