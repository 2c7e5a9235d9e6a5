//! The run folder's lock: one holder at a time (another open in the same process, a racing
//! thread, or another process is refused with the holder named), released on drop, and a lock
//! left by a process killed with SIGKILL does not block.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};

use infobound_train::run::lock::{LOCK_FILE, LockHolder};
use infobound_train::{RunLock, TrainError};

/// Set (to a run folder) only in the child process started by [`killed_holder_does_not_block`].
const HOLD_ENV: &str = "INFOBOUND_TEST_HOLD_RUN_LOCK";

fn holder_of(error: TrainError) -> Option<LockHolder> {
    match error {
        TrainError::RunLocked { holder, .. } => holder,
        other => panic!("expected RunLocked, got {other}"),
    }
}

#[test]
fn the_lock_is_the_first_thing_written_and_names_its_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("runs").join("a");
    let lock = RunLock::acquire(&run).unwrap();
    assert_eq!(lock.path(), run.join(LOCK_FILE));
    let entries: Vec<_> = std::fs::read_dir(&run).unwrap().collect();
    assert_eq!(entries.len(), 1, "only the lock file");
    assert_eq!(lock.holder().pid, std::process::id());
    let written: LockHolder =
        serde_json::from_str(std::fs::read_to_string(lock.path()).unwrap().trim()).unwrap();
    assert_eq!(&written, lock.holder());
}

#[test]
fn a_second_writer_is_refused_with_the_holder_named_until_the_first_drops() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path();
    let first = RunLock::acquire(run).unwrap();
    let error = RunLock::acquire(run).unwrap_err();
    let message = error.to_string();
    let holder = holder_of(error).expect("the holder wrote its identity");
    assert_eq!(&holder, first.holder());
    assert!(
        message.contains(&format!("process {}", std::process::id()))
            && message.contains(&holder.host)
            && message.contains(&holder.since),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");
    drop(first);
    RunLock::acquire(run).unwrap();
}

#[test]
fn racing_writers_never_both_win() {
    const RACERS: usize = 4;
    for round in 0..20 {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join(format!("run-{round}"));
        let barrier = Arc::new(Barrier::new(RACERS));
        let handles: Vec<_> = (0..RACERS)
            .map(|_| {
                let run = run.clone();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    let result = RunLock::acquire(&run);
                    // Hold a winning lock until every racer has tried.
                    barrier.wait();
                    result.is_ok()
                })
            })
            .collect();
        let winners = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&won| won)
            .count();
        assert_eq!(winners, 1, "round {round}");
    }
}

/// In the child process only: take the lock, say so, and wait to be killed.
#[test]
fn lock_holder_child() {
    let Ok(run) = std::env::var(HOLD_ENV) else {
        return;
    };
    let _lock = RunLock::acquire(Path::new(&run)).unwrap();
    println!("locked {}", std::process::id());
    std::thread::sleep(std::time::Duration::from_secs(120));
}

#[test]
fn killed_holder_does_not_block() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_holder_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_ENV, &run)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The harness prints `test lock_holder_child ... ` on the same line before the announcement.
    let announced = lines
        .by_ref()
        .find_map(|l| Some(l.unwrap().split_once("locked ")?.1.trim().to_owned()))
        .expect("the child took the lock");
    assert_eq!(announced, child.id().to_string());

    let holder = holder_of(RunLock::acquire(&run).unwrap_err()).unwrap();
    assert_eq!(holder.pid, child.id());

    child.kill().unwrap(); // SIGKILL on Unix: the child gets no chance to clean up.
    child.wait().unwrap();
    let lock = RunLock::acquire(&run).unwrap();
    assert_eq!(lock.holder().pid, std::process::id());
}
