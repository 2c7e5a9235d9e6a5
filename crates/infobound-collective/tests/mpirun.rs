//! `examples/collective_check.rs` under a real `mpirun` (Open MPI) on this machine, over TCP on
//! the loopback interface, with 2 and 3 ranks: the checks pass on every rank, and every way of
//! failing a rank ends the job with a non-zero status within the time limit instead of hanging.
#![cfg(feature = "mpi")]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A job that runs longer than this is killed and the test fails (our choice: the checks take
/// about a second; a hang is what is being tested).
const LIMIT: Duration = Duration::from_secs(60);

/// One job at a time: the ranks of parallel jobs would share the machine's cores and turn
/// the time limit into a measure of the load.
static ONE_JOB_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The example's path, built once per test process.
fn example() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(build_example).clone()
}

/// Builds (or finds fresh) the example: `cargo test` only builds examples when no target
/// filter is given, so the test asks cargo itself.
fn build_example() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "-p",
            "infobound-collective",
            "--features",
            "mpi",
            "--example",
            "collective_check",
        ])
        .status()
        .expect("running cargo build for the example");
    assert!(
        status.success(),
        "cargo build --example collective_check: {status}"
    );
    // The test binary is target/<profile>/deps/mpirun-<hash>; examples are in
    // target/<profile>/examples.
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = profile_dir.join("examples").join("collective_check");
    assert!(path.exists(), "{} not found", path.display());
    path
}

struct Job {
    status: ExitStatus,
    output: String,
    elapsed: Duration,
}

/// Runs `collective_check mode` on `ranks` ranks over TCP on 127.0.0.1, killing the job after
/// [`LIMIT`].
fn mpirun(ranks: usize, mode: &str) -> Job {
    let exe = example();
    let _turn = ONE_JOB_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let start = Instant::now();
    let mut child = Command::new("mpirun")
        .args(["--oversubscribe", "--allow-run-as-root", "-np"])
        .arg(ranks.to_string())
        // ob1 is the point-to-point layer that uses the BTLs named next (a UCX build would
        // otherwise pick its own transports); self + tcp on `lo` only.
        .args(["--mca", "pml", "ob1", "--mca", "btl", "self,tcp"])
        .args([
            "--mca",
            "btl_tcp_if_include",
            "lo",
            "--mca",
            "oob_tcp_if_include",
            "lo",
        ])
        .arg(&exe)
        .arg(mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun (apt-get install openmpi-bin) could not start");
    let readers: Vec<_> = [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ]
    .into_iter()
    .map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    })
    .collect();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for mpirun") {
            break status;
        }
        if start.elapsed() > LIMIT {
            // SIGTERM first: mpirun then takes its ranks down with it.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            std::thread::sleep(Duration::from_secs(5));
            let _ = child.kill();
            let _ = child.wait();
            let output: Vec<String> = readers.into_iter().map(|r| r.join().unwrap()).collect();
            panic!(
                "mpirun -np {ranks} collective_check {mode} still ran after {LIMIT:?}: a hang.\n{}",
                output.concat()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = start.elapsed();
    let output = readers
        .into_iter()
        .map(|r| r.join().expect("pipe reader"))
        .collect::<Vec<_>>()
        .join("\n--- stderr ---\n");
    eprintln!("mpirun -np {ranks} {mode}: {status} after {elapsed:.2?}");
    Job {
        status,
        output,
        elapsed,
    }
}

fn checks_pass_on_every_rank(ranks: usize) {
    let job = mpirun(ranks, "check");
    assert!(job.status.success(), "{}\n{}", job.status, job.output);
    for rank in 0..ranks {
        let line = format!("rank {rank} of {ranks}: collective_check passed");
        assert!(
            job.output.contains(&line),
            "missing {line:?}:\n{}",
            job.output
        );
    }
    assert!(!job.output.contains("CHECK FAILED"), "{}", job.output);
}

#[test]
fn checks_pass_on_two_ranks() {
    checks_pass_on_every_rank(2);
}

#[test]
fn checks_pass_on_three_ranks() {
    checks_pass_on_every_rank(3);
}

/// Outside `mpirun` the example runs on `SingleProcess`.
#[test]
fn checks_pass_outside_mpirun() {
    let output = Command::new(example())
        .arg("check")
        .env_remove("OMPI_COMM_WORLD_SIZE")
        .env_remove("PMI_SIZE")
        .env_remove("PMIX_RANK")
        .output()
        .expect("running collective_check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("rank 0 of 1: collective_check passed"),
        "{stdout}"
    );
}

/// The job ends by itself, non-zero, and with `evidence` in its output.
fn job_fails(ranks: usize, mode: &str, evidence: &str) {
    let job = mpirun(ranks, mode);
    assert!(
        !job.status.success(),
        "mode {mode}: the job succeeded:\n{}",
        job.output
    );
    assert!(
        job.output.contains(evidence),
        "mode {mode}: {evidence:?} not in the output:\n{}",
        job.output
    );
    assert!(
        !job.output.contains("the all-reduce returned although"),
        "{}",
        job.output
    );
    assert!(job.elapsed < LIMIT);
}

#[test]
fn a_panicking_rank_aborts_the_job() {
    for ranks in [2, 3] {
        let job = mpirun(ranks, "panic");
        assert_eq!(
            job.status.code(),
            Some(infobound_collective::PANIC_EXIT_CODE),
            "{}",
            job.output
        );
        assert!(
            job.output.contains("deliberate panic on rank"),
            "{}",
            job.output
        );
        assert!(job.output.contains("calling MPI_Abort"), "{}", job.output);
    }
}

/// The panic hook at work: a thread's panic leaves the process running, so only the hook's
/// `MPI_Abort` keeps the other ranks from waiting for ever.
#[test]
fn a_panicking_thread_aborts_the_job() {
    let job = mpirun(2, "thread-panic");
    assert_eq!(
        job.status.code(),
        Some(infobound_collective::PANIC_EXIT_CODE),
        "{}",
        job.output
    );
    assert!(
        job.output.contains("deliberate panic in a thread"),
        "{}",
        job.output
    );
    assert!(job.output.contains("calling MPI_Abort"), "{}", job.output);
}

#[test]
fn collective_abort_ends_the_job_with_its_code() {
    let job = mpirun(3, "mpi-abort");
    assert_eq!(job.status.code(), Some(7), "{}", job.output);
}

#[test]
fn an_exiting_rank_ends_the_job() {
    job_fails(2, "exit", "failing now (exit)");
    job_fails(3, "exit-zero", "failing now (exit-zero)");
}

#[test]
fn a_killed_rank_ends_the_job() {
    job_fails(3, "kill", "failing now (kill)");
    job_fails(2, "signal-abort", "failing now (signal-abort)");
}
