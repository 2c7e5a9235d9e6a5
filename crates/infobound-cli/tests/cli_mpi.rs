//! Data-parallel training across the ranks of a real MPI job (Open MPI's `mpirun`, TCP on the
//! loopback interface, 2 and 3 ranks on this machine): an N-rank job ends with the parameters
//! of the in-process `data_parallel.replicas = N` run (VAE, SSL with per-replica and gathered
//! score samples), and a rank killed mid-run ends the whole job non-zero, in bounded time,
//! with a checkpoint from which the resumed job reaches the uninterrupted job's parameters.
//! Built with the CLI's `mpi` feature only (`cargo xtask ci` turns it on where Open MPI is
//! installed).
#![cfg(feature = "mpi")]

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod common;
use common::{TINY_SSL_NETWORK, tiny_vae};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use infobound_train::{RunConfig, RunDir, latest_checkpoint};

const BIN: &str = env!("CARGO_BIN_EXE_infobound");

/// A job still running after this is killed and its test fails (our choice: the jobs here
/// take seconds; what is tested is that none hangs).
const LIMIT: Duration = Duration::from_secs(240);

/// One job at a time: the ranks of parallel jobs would share the machine's two cores.
static ONE_JOB_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `mpirun` with `ranks` ranks over TCP on 127.0.0.1 running `infobound args…`.
fn mpirun(ranks: usize, args: &[String]) -> Command {
    let mut command = Command::new("mpirun");
    command
        .args(["--oversubscribe", "--allow-run-as-root", "-np"])
        .arg(ranks.to_string())
        // Open MPI binds each of up to two ranks to one core by default, which gives each
        // rank a one-thread pool and so another summation order in the GEMMs than the
        // two-thread in-process run it is compared with; unbound, the ranks reproduce it.
        .args(["--bind-to", "none"])
        // ob1 with the self + tcp transports on `lo` only (no shared-memory or UCX transport
        // is assumed to work in a container).
        .args(["--mca", "pml", "ob1", "--mca", "btl", "self,tcp"])
        .args(["--mca", "btl_tcp_if_include", "lo"])
        .arg(BIN)
        .args(args)
        .env_remove("INFOBOUND_DEVICE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits for `child` up to [`LIMIT`], killing it then; returns its status and output.
fn wait(mut child: Child) -> (ExitStatus, String) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let output = child.wait_with_output().expect("output");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            return (status, text);
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "the job ran past {LIMIT:?}:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `infobound args…` under `mpirun -np ranks` (or alone for one rank) and demands success.
fn train(ranks: usize, args: &[String]) {
    let _turn = ONE_JOB_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let child = if ranks == 1 {
        Command::new(BIN)
            .args(args)
            .env_remove("INFOBOUND_DEVICE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    } else {
        mpirun(ranks, args).spawn()
    }
    .expect("the job starts");
    let (status, output) = wait(child);
    assert!(
        status.success(),
        "{ranks} rank(s) {args:?}: {status}\n{output}"
    );
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// A β-TCVAE run on dSprites at batch 12 (shards of 6, 4 or 12 images).
fn vae_args(dir: &Path, out: &Path, steps: usize, replicas: usize) -> Vec<String> {
    let config = dir.join("vae.toml");
    std::fs::write(&config, tiny_vae("mpi", 5, 12, 8, 2, 4)).expect("config");
    let mut args = strings(&["train", "--quiet", "--no-eval", "--config"]);
    args.push(config.display().to_string());
    args.extend(["--out".into(), out.display().to_string()]);
    args.extend(["--steps".into(), steps.to_string()]);
    args.extend(["--set".into(), format!("data_parallel.replicas={replicas}")]);
    args
}

/// `preset` (`mveb_quickstart`, `barlow_twins_quickstart`) shrunk to 16 px, batch 12 and a
/// 4-wide network, with `support` samples over `replicas` replicas per process.
fn ssl_args(preset: &str, out: &Path, replicas: usize, support: &str) -> Vec<String> {
    let mut args = strings(&[
        "train",
        "--preset",
        preset,
        "--steps",
        "6",
        "--quiet",
        "--no-eval",
    ]);
    args.extend(["--out".into(), out.display().to_string()]);
    args.extend(strings(&TINY_SSL_NETWORK));
    for set in [
        "batch_size=12".to_string(),
        "monitor_every=0".into(),
        "log_every=2".into(),
        "checkpoint_every=3".into(),
        format!("data_parallel.replicas={replicas}"),
        format!("data_parallel.entropy_support=\"{support}\""),
    ] {
        args.extend(["--set".into(), set]);
    }
    args
}

/// The float tensors of the newest checkpoint's network — the VAE, or the SSL online network
/// — in visiting order, each with whether it is a batch-norm running statistic.
fn checkpoint_tensors(run: &Path) -> Vec<(bool, Vec<f32>)> {
    #[derive(Default)]
    struct Collect {
        path: Vec<String>,
        tensors: Vec<(bool, Vec<f32>)>,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let statistic = self
                .path
                .last()
                .is_some_and(|name| name.starts_with("running_"));
            let values = param
                .val()
                .into_data()
                .convert::<f32>()
                .try_to_vec()
                .unwrap();
            self.tensors.push((statistic, values));
        }
    }
    let run = RunDir::new(run);
    let latest = latest_checkpoint(&run.checkpoints())
        .expect("checkpoints")
        .expect("a checkpoint");
    let device = Device::flex();
    let mut collect = Collect::default();
    match RunConfig::from_run(&run).expect("config") {
        RunConfig::Vae(config) => config
            .model
            .init(&device)
            .expect("vae")
            .load_file(latest.join("vae.bpk"))
            .visit(&mut collect),
        RunConfig::Ssl(config) => config
            .network
            .init(&device)
            .expect("network")
            .load_file(latest.join("online.bpk"))
            .visit(&mut collect),
    }
    assert!(
        collect.tensors.iter().any(|(statistic, _)| !statistic),
        "no parameter found"
    );
    collect.tensors
}

/// How far two runs' checkpoints are apart: the relative difference ‖a − b‖ / ‖a‖ of all
/// parameters taken together, and of all batch-norm running statistics taken together.
fn relative_differences(a: &Path, b: &Path) -> (f64, f64) {
    let (a, b) = (checkpoint_tensors(a), checkpoint_tensors(b));
    assert_eq!(a.len(), b.len(), "different networks");
    let (mut parameters_diff, mut parameters_norm) = (0.0f64, 0.0f64);
    let (mut statistics_diff, mut statistics_norm) = (0.0f64, 0.0f64);
    for ((statistic, x), (_, y)) in a.iter().zip(&b) {
        assert_eq!(x.len(), y.len());
        let norm = x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>();
        let diff = x
            .iter()
            .zip(y)
            .map(|(p, q)| f64::from(p - q).powi(2))
            .sum::<f64>();
        if *statistic {
            statistics_diff += diff;
            statistics_norm += norm;
        } else {
            parameters_diff += diff;
            parameters_norm += norm;
        }
    }
    (
        (parameters_diff / parameters_norm.max(1e-24)).sqrt(),
        (statistics_diff / statistics_norm.max(1e-24)).sqrt(),
    )
}

/// The parameters agree to 1e-6 (relative, all of them together: the batch-norm shifts of a
/// few steps are ≈ 1e-2 in norm, so rounding is larger relative to them alone). The batch-norm running statistics are
/// compared loosely: an N-rank job averages the ranks' running statistics, the exact mean of
/// their updates, while the in-process replicas' threads fold theirs into Burn's shared
/// `RunningState` in arrival order (burn-core 0.22.1 `module/param/running.rs`: each update
/// reads a value up to one update old), so those depend on thread timing.
fn assert_same_parameters(a: &Path, b: &Path, what: &str) {
    let (parameters, statistics) = relative_differences(a, b);
    assert!(
        parameters <= 1e-6,
        "{what}: parameters differ by {parameters:e} (relative)"
    );
    assert!(
        statistics <= 0.25,
        "{what}: running statistics differ by {statistics:e}"
    );
}

#[test]
fn vae_ranks_end_where_the_in_process_replicas_end() {
    let dir = tempfile::tempdir().unwrap();
    for ranks in [2, 3] {
        let replicas = dir.path().join(format!("replicas{ranks}"));
        let job = dir.path().join(format!("ranks{ranks}"));
        let with_adam = |mut args: Vec<String>| {
            if ranks == 3 {
                // Two ranks sum and halve exactly as the in-process replicas do (halving is
                // exact in binary), so Adam's own step is compared. A third of a gradient is
                // rounded in another place by the two, and Adam's step lr·m̂/(√v̂ + ε) turns
                // rounding in an entry that is zero up to cancellation into a step of ±lr; with
                // ε = 1e6 its step is gradient descent at rate 1e-5, where rounding stays
                // rounding and the gradients themselves are compared.
                for set in ["optimizer.learning_rate=10", "optimizer.epsilon=1e6"] {
                    args.extend(["--set".into(), set.into()]);
                }
            }
            args
        };
        train(1, &with_adam(vae_args(dir.path(), &replicas, 8, ranks)));
        train(ranks, &with_adam(vae_args(dir.path(), &job, 8, 1)));
        assert_same_parameters(&replicas, &job, &format!("VAE, {ranks} ranks"));
    }
    // Only rank 0 wrote: one log line per logged step, not one per rank.
    let log = std::fs::read_to_string(dir.path().join("ranks3/train_log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 4, "{log}");
}

#[test]
fn ssl_ranks_end_where_the_in_process_replicas_end() {
    let dir = tempfile::tempdir().unwrap();
    for (preset, ranks, support) in [
        ("mveb_quickstart", 2, "gathered"),
        ("mveb_quickstart", 3, "per_replica"),
        ("mveb_quickstart", 3, "gathered"),
        // The whole batch's cross-correlation across the ranks.
        ("barlow_twins_quickstart", 2, "gathered"),
    ] {
        let replicas = dir.path().join(format!("replicas{ranks}{support}{preset}"));
        let job = dir.path().join(format!("ranks{ranks}{support}{preset}"));
        train(1, &ssl_args(preset, &replicas, ranks, support));
        train(ranks, &ssl_args(preset, &job, 1, support));
        assert_same_parameters(
            &replicas,
            &job,
            &format!("{preset} {support}, {ranks} ranks"),
        );
    }
    // Gathered samples change the estimate, so the runs above did exchange embeddings.
    let per_replica = dir.path().join("ranks3per_replicamveb_quickstart");
    let gathered = dir.path().join("ranks3gatheredmveb_quickstart");
    assert!(relative_differences(&per_replica, &gathered).0 > 1e-4);
}

/// The process ids of `mpirun`'s children that are rank `rank` of the job.
fn rank_pids(mpirun: u32, rank: usize) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Field 4 of /proc/PID/stat, after the parenthesised command name, is the parent.
        let parent = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split(' ').nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if parent != Some(mpirun) {
            continue;
        }
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let wanted = format!("OMPI_COMM_WORLD_RANK={rank}");
        if environ
            .split(|&b| b == 0)
            .any(|var| var == wanted.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

fn newest_checkpoint_step(run: &Path) -> Option<usize> {
    latest_checkpoint(&RunDir::new(run).checkpoints())
        .ok()
        .flatten()
        .and_then(|c| std::fs::read_to_string(c.join("state.json")).ok())
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v["step"].as_u64())
        .map(|s| s as usize)
}

#[test]
fn a_killed_rank_ends_the_job_and_the_resumed_job_reaches_the_uninterrupted_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let steps = 80;
    let uninterrupted = dir.path().join("uninterrupted");
    train(2, &vae_args(dir.path(), &uninterrupted, steps, 1));

    let killed = dir.path().join("killed");
    let _turn = ONE_JOB_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut args = vae_args(dir.path(), &killed, steps, 1);
    args.extend(["--set".into(), "checkpoint_every=2".into()]);
    let child = mpirun(2, &args).spawn().expect("mpirun starts");
    let mpirun_pid = child.id();
    let started = Instant::now();
    while newest_checkpoint_step(&killed).is_none_or(|s| s < 4) {
        assert!(started.elapsed() < LIMIT, "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let victims = rank_pids(mpirun_pid, 1);
    assert_eq!(
        victims.len(),
        1,
        "rank 1 of mpirun {mpirun_pid}: {victims:?}"
    );
    let killed_at = Instant::now();
    let status = Command::new("kill")
        .args(["-KILL", &victims[0].to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let (status, output) = wait(child);
    let ended_after = killed_at.elapsed();
    drop(_turn);
    assert!(
        !status.success(),
        "the job survived a killed rank:\n{output}"
    );
    assert!(
        ended_after < Duration::from_secs(60),
        "the job took {ended_after:?} to end after the kill"
    );
    let stopped_at = newest_checkpoint_step(&killed).expect("the last checkpoint is intact");
    assert!(stopped_at < steps, "the run finished before the kill");

    let mut resume = strings(&["train", "--quiet", "--no-eval", "--resume"]);
    resume.push(killed.display().to_string());
    train(2, &resume);
    assert_eq!(newest_checkpoint_step(&killed), Some(steps));
    assert_same_parameters(&uninterrupted, &killed, "resumed after a killed rank");
}
