//! Project automation: `cargo xtask ci [--full]`, `cargo xtask bench [--quick] [--only AREA]`,
//! `cargo xtask study [--seeds 0,1,2,3,4]`, `cargo xtask package`, `cargo xtask python`,
//! `cargo xtask faults [--kills N] [--seed S]`.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

mod package;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(flag("--full")),
        Some("bench") => bench(flag("--quick"), option(&args, "--only").as_deref()),
        Some("study") => study(
            if flag("--ssl") {
                &SSL_STUDY
            } else {
                &VAE_STUDY
            },
            option(&args, "--seeds").as_deref().unwrap_or("0,1,2,3,4"),
            flag("--table-only"),
        ),
        Some("faults") => faults(
            option(&args, "--kills").as_deref().unwrap_or("20"),
            option(&args, "--seed").as_deref().unwrap_or("1"),
            flag("--ssl-exact"),
        ),
        Some("fmt") => run("cargo", &["fmt", "--all"], &[]),
        Some("package") => package::package(&workspace_root()),
        Some("python") => mpi_features().and_then(|features| python_tests(&features)),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 ci [--full]     fmt check, clippy -D warnings, tests (flex), package, the Python\n\
                 \x20               package's pytest (maturin develop into a venv); --full adds\n\
                 \x20               the ndarray, wgpu (lavapipe smoke test), cuda and hdf5 builds;\n\
                 \x20               with Open MPI installed, the tests include the mpirun ones\n\
                 bench [--quick] [--only vae,vae_more,ssl,tc,mveb,metrics]\n\
                 \x20               criterion benches + the PyTorch reference in the same run, with\n\
                 \x20               the time ratio and the peak memory per workload:\n\
                 \x20               target/bench-summary.json and docs/bench-latest.md\n\
                 study [--ssl] [--seeds 0,1,2,3,4] [--table-only]\n\
                 \x20               α-TCVAE study v2 (configs/study/*.toml) over seeds, resumable;\n\
                 \x20               tables of `infobound compare` with Welch tests: docs/study-v2.md;\n\
                 \x20               --ssl: the fair SSL study (issue #19): docs/ssl-study.md\n\
                 package         cargo package of every crate; every embedded file inside its\n\
                 \x20               crate and in the packaged list (part of `ci`)\n\
                 python          builds the Python package into a venv in the target directory\n\
                 \x20               (maturin develop) and runs its pytest suite, then the\n\
                 \x20               TensorBoard export test with TensorBoard's own reader and\n\
                 \x20               the weights round trip with `safetensors` and NumPy\n\
                 \x20               (part of `ci`)\n\
                 faults [--kills 20] [--seed 1] [--ssl-exact]\n\
                 \x20               fault injection against real training runs (VAE and SSL):\n\
                 \x20               kill -9, aborts inside checkpoint writes, damaged checkpoints,\n\
                 \x20               a full disk; counts into docs/reliability.md\n\
                 fmt             cargo fmt --all"
            );
            Err("no command given".into())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The value after `name` on the command line, if any.
fn option(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub(crate) fn run(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    let started = Instant::now();
    eprintln!("xtask: $ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("could not start {program}: {e}"))?;
    eprintln!(
        "xtask: finished in {:.1} s: {program} {}",
        started.elapsed().as_secs_f64(),
        args.join(" ")
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

/// Whether to build and run data parallelism over MPI (the CLI's `mpi` feature): where Open
/// MPI's compiler wrapper and launcher are installed, or where `INFOBOUND_REQUIRE_MPI` is set
/// (`.ci/run` installs Open MPI and sets it, so CI cannot skip the MPI tests silently).
fn mpi_wanted() -> Result<bool, String> {
    let found = ["mpicc", "mpirun"].iter().all(|tool| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let required = std::env::var_os("INFOBOUND_REQUIRE_MPI").is_some();
    match (found, required) {
        (true, _) => Ok(true),
        (false, true) => Err(
            "INFOBOUND_REQUIRE_MPI is set but Open MPI is not installed \
             (apt-get install openmpi-bin libopenmpi-dev libclang-dev)"
                .into(),
        ),
        (false, false) => {
            eprintln!(
                "xtask: Open MPI not found (mpicc, mpirun): the MPI data-parallel tests are \
                 skipped; apt-get install openmpi-bin libopenmpi-dev libclang-dev to run them"
            );
            Ok(false)
        }
    }
}

/// The cargo features of the test build: the CLI's `mpi` where [`mpi_wanted`].
fn mpi_features() -> Result<Vec<&'static str>, String> {
    Ok(if mpi_wanted()? {
        vec!["--features", "infobound-cli/mpi"]
    } else {
        Vec::new()
    })
}

/// The CI gate. The default job compiles one CPU backend (flex) only: Burn is slow to build on
/// two cores, and every extra backend rebuilds the whole Burn stack. Where Open MPI is
/// installed the workspace is built and tested with the CLI's `mpi` feature (one feature set
/// for clippy and the tests, so Burn is built once), which adds the `mpirun` tests of
/// `infobound-collective` and `infobound-cli` (`cli_mpi`).
fn ci(full: bool) -> Result<(), String> {
    run("cargo", &["fmt", "--all", "--", "--check"], &[])?;
    let features = mpi_features()?;
    let features = features.as_slice();
    let clippy = [
        &["clippy", "--workspace", "--all-targets"][..],
        features,
        &["--", "-D", "warnings"],
    ]
    .concat();
    run("cargo", &clippy, &[])?;
    let test = [&["test", "--workspace", "--no-fail-fast"][..], features].concat();
    run("cargo", &test, &[])?;
    package::package(&workspace_root())?;
    python_tests(features)?;
    if full {
        run(
            "cargo",
            &[
                "clippy",
                "-p",
                "infobound-backend",
                "-p",
                "infobound-cli",
                "--features",
                "infobound-backend/ndarray,infobound-backend/wgpu",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )?;
        run(
            "cargo",
            &["test", "-p", "infobound-backend", "--features", "ndarray"],
            &[],
        )?;
        // Data-parallel SSL replicas on two backends at once (flex + ndarray).
        run(
            "cargo",
            &[
                "test",
                "-p",
                "infobound-cli",
                "--features",
                "ndarray",
                "--test",
                "cli_ssl",
            ],
            &[],
        )?;
        // wgpu without a GPU runs on Mesa's lavapipe (apt-get install mesa-vulkan-drivers
        // libvulkan1); slow, but enough to show the GPU code path is correct.
        let lavapipe = [
            ("CUBECL_WGPU_DEFAULT_DEVICE", "Cpu"),
            ("XDG_RUNTIME_DIR", "/tmp"),
            ("INFOBOUND_EXPECT_WGPU", "1"),
        ];
        run(
            "cargo",
            &["test", "-p", "infobound-backend", "--features", "wgpu"],
            &lavapipe,
        )?;
        // The vMF score's device path (conjugate gradients) against its host path on lavapipe.
        run(
            "cargo",
            &[
                "test",
                "-p",
                "infobound-cli",
                "--features",
                "wgpu",
                "--test",
                "vmf_score_device",
            ],
            &lavapipe,
        )?;
        run(
            "cargo",
            &["check", "-p", "infobound-cli", "--features", "cuda"],
            &[],
        )?;
        // The networks without infobound-kernels (Burn's own convolutions everywhere).
        run(
            "cargo",
            &[
                "clippy",
                "-p",
                "infobound-models",
                "--no-default-features",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )?;
        // The real 3dshapes.h5 reader links the system libhdf5 (apt-get install libhdf5-dev).
        run(
            "cargo",
            &["test", "-p", "infobound-data", "--features", "hdf5"],
            &[],
        )?;
    }
    Ok(())
}

/// The Python package `infobound` (crates/infobound-py): builds it with maturin (dev profile)
/// into a venv kept in the cargo target directory, and runs its pytest suite; then the
/// `cli_tensorboard` test with that venv's `tensorboard` required, and `infobound-weights`'
/// `python_roundtrip` test with its `safetensors` required. Needs `python3` with `venv`
/// (Debian: `python3-venv`; `.ci/run` installs it) and PyPI for maturin, numpy, pytest and
/// scikit-learn (the live comparisons), tensorboard and safetensors; a second run reuses the
/// venv.
fn python_tests(features: &[&str]) -> Result<(), String> {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let venv = target.join("python-venv");
    let python = venv.join("bin").join("python");
    let venv_str = venv.to_string_lossy().into_owned();
    let python_str = python.to_string_lossy().into_owned();
    if !python.exists() {
        run("python3", &["-m", "venv", &venv_str], &[])?;
    }
    run(
        &python_str,
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            // Python compiles the modules the tests import on first use, instead of all of
            // SciPy / scikit-learn up front (a 14-minute install on the loaded 2-core machine).
            "--no-compile",
            "maturin>=1.9,<2",
            "numpy",
            "pytest",
            "scikit-learn",
            // TensorBoard's own event-file reader for `infobound export tensorboard`'s test.
            "tensorboard",
            // The reader of `infobound-weights`' round-trip test (a NumPy forward pass of the
            // exported networks; no torch, too heavy for CI).
            "safetensors",
        ],
        &[],
    )?;
    let maturin = venv.join("bin").join("maturin");
    run(
        &maturin.to_string_lossy(),
        &[
            "develop",
            "--manifest-path",
            "crates/infobound-py/Cargo.toml",
        ],
        &[("VIRTUAL_ENV", &venv_str)],
    )?;
    run(
        &python_str,
        &["-m", "pytest", "-q", "crates/infobound-py/tests"],
        &[],
    )?;
    // The event files of `infobound export tensorboard` read by TensorBoard itself. The test
    // skips where it finds no Python with `tensorboard`; INFOBOUND_REQUIRE_TENSORBOARD makes
    // that a failure here, so CI cannot pass without having run it.
    // `--workspace` and `features`: the feature set of `ci`'s test build, so nothing is
    // rebuilt for these two test targets.
    let tensorboard_test = [
        &["test", "--workspace", "--test", "cli_tensorboard"][..],
        features,
    ]
    .concat();
    run(
        "cargo",
        &tensorboard_test,
        &[
            ("INFOBOUND_TENSORBOARD_PYTHON", &python_str),
            ("INFOBOUND_REQUIRE_TENSORBOARD", "1"),
        ],
    )?;
    // Exported weights read by the `safetensors` package into a NumPy forward pass of the same
    // networks, and state dicts written there imported by us; INFOBOUND_REQUIRE_WEIGHTS_PYTHON
    // turns the test's skip (no Python with numpy and safetensors) into a failure.
    let roundtrip_test = [
        &["test", "--workspace", "--test", "python_roundtrip"][..],
        features,
    ]
    .concat();
    run(
        "cargo",
        &roundtrip_test,
        &[
            ("INFOBOUND_WEIGHTS_PYTHON", &python_str),
            ("INFOBOUND_REQUIRE_WEIGHTS_PYTHON", "1"),
        ],
    )
}

/// Benchmark areas: the criterion group that measures ours and the PyTorch section that measures
/// the same workload in `../shared/bench/torch_reference.py`.
const AREAS: [(&str, &str, &str); 6] = [
    ("vae", "vae_step", "vae"),
    ("vae_more", "vae_more", "vae_more"),
    ("ssl", "ssl_step", "ssl"),
    ("tc", "total_correlation", "tc"),
    ("mveb", "vmf_score", "mveb"),
    (
        "metrics",
        "disentanglement_10000x10|vendi_d128|knn_k200|logistic_regression",
        "metrics",
    ),
];

/// Runs the criterion benches (bench profile: everything at opt-level 3, as PyTorch's own
/// kernels are compiled; our crates run ≈ 5–10 % slower in the dev profile that `cargo test`
/// uses), then the PyTorch reference in the same run if a torch interpreter is available, and
/// writes every median with the ratio ours / PyTorch where the workloads are the same, and the
/// peak memory of each workload: ours from the bench binaries' counting allocator
/// ([`read_bench_memory`]), PyTorch's from the peak resident set of its process
/// ([`torch_section`]).
fn bench(quick: bool, only: Option<&str>) -> Result<(), String> {
    let areas: Vec<&(&str, &str, &str)> = match only {
        Some(names) => names
            .split(',')
            .map(|name| {
                AREAS
                    .iter()
                    .find(|(a, _, _)| *a == name.trim())
                    .ok_or_else(|| format!("unknown bench area `{name}`"))
            })
            .collect::<Result<_, _>>()?,
        None => AREAS.iter().collect(),
    };
    // `--benches`: only the criterion targets (libtest targets reject criterion options).
    let mut args = vec!["bench", "--workspace", "--benches", "--"];
    // One criterion filter (a regex) selecting every chosen area's group; none = everything.
    let filter = areas
        .iter()
        .map(|(_, group, _)| *group)
        .filter(|group| !group.is_empty())
        .collect::<Vec<_>>()
        .join("|");
    if only.is_some() && !filter.is_empty() {
        args.push(&filter);
    }
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    // The bench binaries append one line per measured bench: start from an empty file.
    let memory_file = target.join("bench-memory.jsonl");
    match std::fs::remove_file(&memory_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("{}: {e}", memory_file.display()));
        }
        _ => {}
    }
    let memory_path = memory_file.to_string_lossy().into_owned();
    let mut envs = vec![("INFOBOUND_BENCH_MEMORY", memory_path.as_str())];
    if quick {
        envs.push(("INFOBOUND_BENCH_QUICK", "1"));
    }
    // Criterion keeps every earlier result under target/criterion: only this run's count.
    let started = std::time::SystemTime::now();
    run("cargo", &args, &envs)?;
    let memory = read_bench_memory(&memory_file)?;
    let mut rows = Vec::new();
    let criterion = target.join("criterion");
    collect_criterion(&criterion, &criterion, started, &mut rows);
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let sections = areas
        .iter()
        .map(|(_, _, section)| *section)
        .collect::<Vec<_>>()
        .join(",");
    let torch = torch_reference(&sections);
    let ratios = ratios(&rows, &memory, &torch);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let summary = serde_json::json!({
        "commit": commit,
        "loadavg": load.trim(),
        "infobound": rows.iter().map(|(name, ms)| serde_json::json!({
            "bench": name, "median_ms": ms, "peak_mib": memory.get(name),
        })).collect::<Vec<_>>(),
        "pytorch": torch,
        "ratios": ratios.iter().map(|r| serde_json::json!({
            "workload": r.workload, "infobound_bench": r.ours, "infobound_ms": r.ours_ms,
            "pytorch_ms": r.torch_ms, "ratio": r.ours_ms / r.torch_ms,
            "infobound_peak_mib": r.ours_peak_mib, "pytorch_peak_mib": r.torch_peak_mib,
        })).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    write_atomic(&target.join("bench-summary.json"), &text)?;
    let mut md = format!(
        "# Latest `cargo xtask bench`\n\ncommit {commit}, load average {} (1, 5, 15 min)\n\n",
        load.trim()
    );
    md.push_str(MEMORY_NOTE);
    if !ratios.is_empty() {
        md.push_str(
            "## Same workload, same run: infobound vs PyTorch CPU\n\n\
             ratio = infobound median / PyTorch median (< 1: infobound is faster)\n\n",
        );
        md.push_str(
            "| workload | infobound bench | infobound ms | PyTorch ms | ratio | \
             infobound peak MiB | PyTorch peak MiB |\n|---|---|---|---|---|---|---|\n",
        );
        for r in &ratios {
            md.push_str(&format!(
                "| {} | {} | {:.2} | {:.2} | {:.2} | {} | {} |\n",
                r.workload,
                r.ours,
                r.ours_ms,
                r.torch_ms,
                r.ours_ms / r.torch_ms,
                mib(r.ours_peak_mib),
                mib(r.torch_peak_mib),
            ));
        }
        md.push('\n');
    }
    md.push_str(
        "## Every infobound median\n\npeak MiB: - for benches whose binary has no counting \
         allocator\n\n| bench | median ms | peak MiB |\n|---|---|---|\n",
    );
    for (name, ms) in &rows {
        md.push_str(&format!(
            "| {name} | {ms:.3} | {} |\n",
            mib(memory.get(name).copied())
        ));
    }
    if !torch.is_empty() {
        md.push_str("\n## PyTorch CPU, same run (raw records)\n\n```\n");
        for l in &torch {
            md.push_str(&format!("{l}\n"));
        }
        md.push_str("```\n");
    }
    write_atomic(&root.join("docs/bench-latest.md"), &md)?;
    eprint!("{md}");
    eprintln!(
        "xtask: wrote {} and docs/bench-latest.md",
        target.join("bench-summary.json").display()
    );
    Ok(())
}

/// What the `peak MiB` columns of docs/bench-latest.md measure.
const MEMORY_NOTE: &str = "peak MiB, infobound: the most heap bytes live during one step after \
    warm-up, minus those live before the workload was built (parameters, optimiser state, inputs \
    and the step's temporaries; bytes asked of the allocator, from a counting wrapper around \
    mimalloc in the bench binary; what the process allocates on first use and keeps, ≈ 200 MiB \
    on flex, is left out by throwaway steps before the first baseline and printed on stderr). \
    PyTorch: the process's peak resident set (VmHWM) while the \
    workload was built, warmed up and timed, minus its resident set after `import torch` \
    (pages, so it also counts allocator slack and libraries paged in on first use, in the \
    section's first workload; memory that glibc kept from an earlier workload of the same section \
    counts again): an upper bound. Each PyTorch section runs in its own \
    process.\n\n";

/// A figure in MiB with one decimal, or `-` when it was not measured.
fn mib(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

/// One workload measured by both sides.
struct Ratio {
    workload: String,
    ours: String,
    ours_ms: f64,
    torch_ms: f64,
    /// Our peak heap (MiB), if the bench binary reported it.
    ours_peak_mib: Option<f64>,
    /// PyTorch's peak resident set above its baseline (MiB), if /proc gave it.
    torch_peak_mib: Option<f64>,
}

/// The criterion bench that runs the same workload as a PyTorch record, by the naming of
/// `torch_reference.py` (its `bench` and `case` fields) and of our bench groups.
fn matching_bench(torch: &serde_json::Value) -> Option<String> {
    let bench = torch["bench"].as_str()?;
    let case = torch["case"].as_str()?;
    match bench {
        // Torch: rec + KL + (β−1)·TC_mws with β = 6 = our β-TCVAE defaults (α = γ = 1, MWS).
        "vae_train_step" => {
            let channels = torch["channels"].as_u64()?;
            let batch = torch["batch"].as_u64()?;
            Some(format!("vae_step/beta_tcvae/{channels}ch_b{batch}"))
        }
        "tc_estimator" => {
            let batch = torch["B"].as_u64()?;
            let pass = if case.ends_with("_forward_backward") {
                "forward_backward"
            } else {
                "forward"
            };
            Some(format!("total_correlation/mws_{pass}/{batch}"))
        }
        "mveb_score" if case.ends_with("_float32_solve") => {
            let mut parts = case.trim_start_matches('B').split("_d");
            let batch = parts.next()?;
            let dim = parts.next()?.split('_').next()?;
            Some(format!("vmf_score/{batch}x{dim}"))
        }
        "ssl_train_step" => {
            let batch = torch["batch"].as_u64()?;
            Some(format!("ssl_step/mveb_2views_resnet18cifar/b{batch}"))
        }
        // Torch's `bench_vae_more`: the same networks, losses, optimisers and inputs as our
        // `vae_more` group (crates/infobound-models/benches/vae_step.rs).
        "factorvae_train_step" if case.starts_with("burgess_") => {
            let channels = torch["channels"].as_u64()?;
            let batch = torch["batch"].as_u64()?;
            Some(format!("vae_more/factor_vae/{channels}ch_b{batch}"))
        }
        "alpha_tcvae_train_step" => {
            let networks = if case.starts_with("burgess_") {
                "burgess"
            } else if case.starts_with("spatial_broadcast_") {
                "spatial_broadcast"
            } else {
                return None;
            };
            let channels = torch["channels"].as_u64()?;
            let batch = torch["batch"].as_u64()?;
            Some(format!(
                "vae_more/alpha_tcvae_{networks}/{channels}ch_b{batch}"
            ))
        }
        _ => None,
    }
}

fn ratios(
    rows: &[(String, f64)],
    memory: &HashMap<String, f64>,
    torch: &[serde_json::Value],
) -> Vec<Ratio> {
    torch
        .iter()
        .filter_map(|record| {
            let ours = matching_bench(record)?;
            let (_, ours_ms) = rows.iter().find(|(name, _)| *name == ours)?;
            let torch_ms = record["ms_median"].as_f64()?;
            Some(Ratio {
                workload: format!("{}/{}", record["bench"].as_str()?, record["case"].as_str()?),
                ours_peak_mib: memory.get(&ours).copied(),
                torch_peak_mib: record[TORCH_PEAK_FIELD].as_f64(),
                ours,
                ours_ms: *ours_ms,
                torch_ms,
            })
        })
        .collect()
}

/// An equal-budget comparison over seeds: which runs, where, and which tables of
/// `infobound compare` report it.
struct Study {
    /// Title of the written document.
    title: &'static str,
    /// What the runs share, for the document's preamble.
    setup: &'static str,
    /// Method names (run folders are `<runs>/<method>-seed<seed>`, so a method is a group of
    /// `infobound compare --grouped`) and the `train` arguments that start one.
    methods: &'static [(&'static str, &'static [&'static str])],
    /// Run folder, relative to the workspace root.
    runs: &'static str,
    /// Where the record of each finished run ([`RUN_RECORD`]) is kept in the repository,
    /// relative to the workspace root; the tables are computed from it, so a clone regenerates
    /// them without the checkpoints.
    archive: &'static str,
    /// The document, relative to the workspace root.
    table: &'static str,
    /// Tables: (title, baseline method of the Welch tests, methods in the table).
    tables: &'static [(&'static str, &'static str, &'static [&'static str])],
    /// Whether the document ends with the SSL floors: chance and the untrained network's kNN
    /// per factor and linear probe, per method (each run evaluates its own step-0 weights).
    floors: bool,
}

/// α-TCVAE study v2 (issue #18): the paper's ablation (α = 0 is its β-VAE) at equal C and
/// schedule, the authors' baselines, the capacity's sensitivity.
const VAE_STUDY: Study = Study {
    title: "α-TCVAE study v2 (`cargo xtask study`)",
    setup: "procedural 3DShapes, Burgess networks, batch 64, 1,000 Adam steps at lr 5e-4 \
            (64,000 images, 0.33 % of the authors' 19.2 M); configs/study/*.toml, one --set per \
            row",
    methods: &[
        (
            "alpha_0",
            &[
                "--config",
                "configs/study/alpha_tcvae.toml",
                "--set",
                "objective.alpha=0",
            ],
        ),
        (
            "alpha_0.25",
            &[
                "--config",
                "configs/study/alpha_tcvae.toml",
                "--set",
                "objective.alpha=0.25",
            ],
        ),
        (
            "alpha_0.5",
            &[
                "--config",
                "configs/study/alpha_tcvae.toml",
                "--set",
                "objective.alpha=0.5",
            ],
        ),
        (
            "alpha_0.75",
            &[
                "--config",
                "configs/study/alpha_tcvae.toml",
                "--set",
                "objective.alpha=0.75",
            ],
        ),
        (
            "beta_tcvae_b3",
            &["--config", "configs/study/beta_tcvae.toml"],
        ),
        (
            "factorvae_g10",
            &["--config", "configs/study/factorvae.toml"],
        ),
        ("beta_vae_b4", &["--config", "configs/study/beta_vae.toml"]),
        (
            "alpha_0.25_ramp560",
            &[
                "--config",
                "configs/study/alpha_tcvae.toml",
                "--set",
                "objective.capacity_schedule={kind=\"linear\",warmup_steps=560}",
            ],
        ),
        (
            "alpha_0.25_C10",
            &[
                "--config",
                "configs/study/alpha_tcvae.toml",
                "--set",
                "objective.capacity_max=10",
            ],
        ),
        (
            "alpha_0.25_C0",
            &[
                "--config",
                "configs/study/alpha_tcvae.toml",
                "--set",
                "objective.capacity_max=0",
            ],
        ),
    ],
    runs: "runs/study-v2",
    archive: "docs/study-v2/runs",
    table: "docs/study-v2.md",
    tables: &[
        (
            "α ablation at equal C = 30 and staircase (α = 0 is the paper's β-VAE)",
            "alpha_0",
            &["alpha_0", "alpha_0.25", "alpha_0.5", "alpha_0.75"],
        ),
        (
            "The authors' baselines and a Higgins β-VAE reference, against α = 0.25",
            "alpha_0.25",
            &[
                "alpha_0.25",
                "beta_tcvae_b3",
                "factorvae_g10",
                "beta_vae_b4",
            ],
        ),
        (
            "Capacity: the staircase against study v1's linear ramp (0 → 30 nats in 560 steps), \
             and C = 10, 0",
            "alpha_0.25",
            &[
                "alpha_0.25",
                "alpha_0.25_ramp560",
                "alpha_0.25_C10",
                "alpha_0.25_C0",
            ],
        ),
    ],
    floors: false,
};

/// The study budget of every SSL row: half the quickstart presets' 1,000 steps of batch 64
/// (our choice: 45 runs fit a working session on two cores), evaluated once at the end.
macro_rules! ssl_study_row {
    ($preset:literal, $warmup:literal $(, $extra:literal)*) => {
        &[
            "--preset", $preset,
            "--set", "steps=500",
            "--set", "checkpoint_every=250",
            "--set", "monitor_every=500",
            "--set", $warmup
            $(, "--set", $extra)*
        ]
    };
}

/// The fair SSL comparison (issue #19): every method with its published optimiser recipe
/// (MVEB's own; Barlow Twins' 1-D learning rate and loss scale, SimSiam's SGD, BYOL's CIFAR
/// momentum), each with the two global views alone and with the same two local crops, per-view
/// batch norm, five seeds; MVEB's λ = 0 ablation; Barlow Twins at the quickstart budget with
/// its published recipe and with MVEB's LARS. Warm-ups keep each recipe's proportion of the
/// schedule (MVEB, BYOL 10 %; Barlow Twins 1 %; SimSiam none).
const SSL_STUDY: Study = Study {
    title: "Fair SSL study (`cargo xtask study --ssl`)",
    setup: "procedural 3DShapes at 32 px (3,000 train / 600 test images), CIFAR ResNet of width 8, \
            batch 64, 500 steps (32,000 images; half the quickstart presets' budget), per-view \
            forwards; configs/{mveb_quickstart,simsiam_published_quickstart,\
            byol_published_quickstart,barlow_twins_published_quickstart}.toml with the --set of \
            each row (`_global`: no local views; `_local`: two 16 px local views, MVEB's); the \
            `_1000` rows are the presets unchanged (1,000 steps)",
    methods: &[
        (
            "mveb",
            ssl_study_row!("mveb_quickstart", "optimizer.warmup_steps=50"),
        ),
        (
            "mveb_global",
            ssl_study_row!(
                "mveb_quickstart",
                "optimizer.warmup_steps=50",
                "augmentation.num_local_views=0"
            ),
        ),
        (
            "simsiam",
            ssl_study_row!("simsiam_published_quickstart", "optimizer.warmup_steps=0"),
        ),
        (
            "simsiam_local",
            ssl_study_row!(
                "simsiam_published_quickstart",
                "optimizer.warmup_steps=0",
                "augmentation.num_local_views=2"
            ),
        ),
        (
            "byol",
            ssl_study_row!("byol_published_quickstart", "optimizer.warmup_steps=50"),
        ),
        (
            "byol_local",
            ssl_study_row!(
                "byol_published_quickstart",
                "optimizer.warmup_steps=50",
                "augmentation.num_local_views=2"
            ),
        ),
        (
            "barlow_twins",
            ssl_study_row!(
                "barlow_twins_published_quickstart",
                "optimizer.warmup_steps=5"
            ),
        ),
        (
            "barlow_twins_local",
            ssl_study_row!(
                "barlow_twins_published_quickstart",
                "optimizer.warmup_steps=5",
                "augmentation.num_local_views=2"
            ),
        ),
        (
            "mveb_lambda0",
            ssl_study_row!(
                "mveb_quickstart",
                "optimizer.warmup_steps=50",
                "objective.entropy_weight=0.0"
            ),
        ),
        // Barlow Twins at the quickstart budget (1,000 steps, the presets unchanged): its
        // published recipe, and MVEB's LARS recipe that gave the below-untrained result of
        // the earlier study.
        (
            "barlow_twins_1000",
            &[
                "--preset",
                "barlow_twins_published_quickstart",
                "--set",
                "monitor_every=1000",
            ],
        ),
        (
            "barlow_twins_mveb_lars_1000",
            &[
                "--preset",
                "barlow_twins_quickstart",
                "--set",
                "monitor_every=1000",
            ],
        ),
    ],
    runs: "runs/ssl-study-v2",
    archive: "docs/ssl-study/runs",
    table: "docs/ssl-study.md",
    tables: &[
        (
            "Two global views (each method's published recipe)",
            "mveb_global",
            &["mveb_global", "simsiam", "byol", "barlow_twins"],
        ),
        (
            "Two global + two local views",
            "mveb",
            &["mveb", "simsiam_local", "byol_local", "barlow_twins_local"],
        ),
        ("Local crops: MVEB", "mveb_global", &["mveb_global", "mveb"]),
        (
            "Local crops: SimSiam",
            "simsiam",
            &["simsiam", "simsiam_local"],
        ),
        ("Local crops: BYOL", "byol", &["byol", "byol_local"]),
        (
            "Local crops: Barlow Twins",
            "barlow_twins",
            &["barlow_twins", "barlow_twins_local"],
        ),
        (
            "MVEB's entropy term (λ = 0.01 vs 0)",
            "mveb",
            &["mveb", "mveb_lambda0"],
        ),
        (
            "Barlow Twins at the quickstart budget (1,000 steps): published recipe vs MVEB's LARS",
            "barlow_twins_1000",
            &["barlow_twins_1000", "barlow_twins_mveb_lars_1000"],
        ),
    ],
    floors: true,
};

/// Trains every method of `study` for every seed, seeds outermost so that an interrupted study
/// has every method at the same count (finished runs are skipped, interrupted ones resumed),
/// and rewrites the document after each run; `table_only` skips the training.
fn study(study: &Study, seeds: &str, table_only: bool) -> Result<(), String> {
    let seeds: Vec<u64> = seeds
        .split(',')
        .map(|s| s.trim().parse().map_err(|e| format!("seed `{s}`: {e}")))
        .collect::<Result<_, _>>()?;
    let root = workspace_root();
    let runs = root.join(study.runs);
    let archive = root.join(study.archive);
    for seed in seeds.iter().filter(|_| !table_only) {
        for (method, start) in study.methods {
            let out = runs.join(format!("{method}-seed{seed}"));
            if out.join("metrics.json").exists() {
                continue;
            }
            let seed = seed.to_string();
            let resume = out.exists();
            let out = out.to_string_lossy().into_owned();
            let mut args = vec!["train", "--quiet"];
            if resume {
                args.extend(["--resume", &out]);
            } else {
                args.extend(start.iter().copied());
                args.extend(["--seed", &seed, "--out", &out]);
            }
            infobound(&args)?;
            archive_runs(study, &runs, &archive, &seeds)?;
            // A table that cannot be written now is written at the end; it never stops the
            // training of the remaining runs.
            match study_document(study, &archive, &seeds) {
                Ok(md) => write_atomic(&root.join(study.table), &md)?,
                Err(e) => eprintln!("xtask: table not written yet: {e}"),
            }
        }
    }
    archive_runs(study, &runs, &archive, &seeds)?;
    let md = study_document(study, &archive, &seeds)?;
    write_atomic(&root.join(study.table), &md)?;
    print!("{md}");
    Ok(())
}

/// The files of a finished run that the repository keeps: enough for `infobound compare` and
/// `infobound report`, without checkpoints and pictures.
const RUN_RECORD: &[&str] = &[
    "config.toml",
    "environment.json",
    "metrics.json",
    "train_log.jsonl",
    "report.md",
];

/// Copies [`RUN_RECORD`] of every finished run of `study` from `runs` into `archive`.
fn archive_runs(study: &Study, runs: &Path, archive: &Path, seeds: &[u64]) -> Result<(), String> {
    for (method, _) in study.methods {
        for seed in seeds {
            let name = format!("{method}-seed{seed}");
            let run = runs.join(&name);
            if !run.join("metrics.json").exists() {
                continue;
            }
            let kept = archive.join(&name);
            std::fs::create_dir_all(&kept).map_err(|e| format!("{}: {e}", kept.display()))?;
            for file in RUN_RECORD {
                let from = run.join(file);
                if from.exists() {
                    let text = std::fs::read_to_string(&from)
                        .map_err(|e| format!("{}: {e}", from.display()))?;
                    write_atomic(&kept.join(file), &text)?;
                }
            }
        }
    }
    Ok(())
}

/// `infobound ARGS` from the workspace root: the binary named by `INFOBOUND_BIN` (a long study
/// then runs one fixed build while the tree changes), else `cargo run -p infobound-cli`.
fn infobound_command(args: &[&str]) -> Command {
    let mut cmd = match std::env::var_os("INFOBOUND_BIN") {
        Some(bin) => Command::new(bin),
        None => {
            let mut cmd = Command::new("cargo");
            cmd.args(["run", "-q", "-p", "infobound-cli", "--"]);
            cmd
        }
    };
    cmd.args(args).current_dir(workspace_root());
    cmd
}

/// Runs `infobound ARGS` (see [`infobound_command`]) with inherited output.
fn infobound(args: &[&str]) -> Result<(), String> {
    let status = infobound_command(args)
        .status()
        .map_err(|e| format!("infobound {}: {e}", args.join(" ")))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("infobound {} failed: {status}", args.join(" ")))
    }
}

/// The study's document: each table is `infobound compare --grouped --baseline B
/// --format markdown` over the finished runs of its methods, so the CLI alone regenerates it.
fn study_document(study: &Study, records: &Path, seeds: &[u64]) -> Result<String, String> {
    let mut md = format!(
        "# {}\n\n{}; seeds {seeds:?}. Each run's record (config, environment with the commit \
         of the checkout, metrics, training log, report) is in `{}`; the tables below are \
         `infobound compare` over those records and regenerate with `cargo xtask study \
         --table-only`. Each cell is mean ± sample standard deviation over the finished seeds \
         (n); each test table is Welch's two-sided t-test of a row against the table's \
         baseline.\n",
        study.title, study.setup, study.archive
    );
    let seed_list = seeds
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    for (title, baseline, methods) in study.tables {
        let folders: Vec<String> = methods
            .iter()
            .flat_map(|method| seeds.iter().map(move |seed| format!("{method}-seed{seed}")))
            .filter(|name| records.join(name).join("metrics.json").exists())
            .map(|name| format!("{}/{name}", study.archive))
            .collect();
        md.push_str(&format!("\n## {title}\n\n"));
        if folders.is_empty() {
            md.push_str("No finished runs yet.\n");
            continue;
        }
        let mut args = vec![
            "compare",
            "--grouped",
            "--format",
            "markdown",
            "--baseline",
            baseline,
        ];
        args.extend(folders.iter().map(String::as_str));
        let output = infobound_command(&args)
            .output()
            .map_err(|e| format!("infobound compare: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "infobound compare failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        md.push_str(&format!(
            "`infobound compare --grouped --format markdown --baseline {baseline} \
             {}/{{{}}}-seed{{{seed_list}}}`\n\n",
            study.archive,
            methods.join(","),
        ));
        md.push_str(&String::from_utf8_lossy(&output.stdout));
    }
    if study.floors {
        md.push_str(&ssl_floors(study, records, seeds)?);
    }
    Ok(md)
}

/// The factors of the SSL columns of `infobound compare` (procedural 3DShapes factor index,
/// name).
const SSL_FLOOR_FACTORS: &[(usize, &str)] = &[
    (0, "floor hue"),
    (1, "wall hue"),
    (2, "object hue"),
    (4, "shape"),
];

/// The floors of an SSL study: per method, the untrained network's kNN accuracy per factor and
/// its linear probe (mean ± sd over the finished seeds), and chance per factor.
fn ssl_floors(study: &Study, records: &Path, seeds: &[u64]) -> Result<String, String> {
    let mut md = String::from(
        "\n## Floors\n\nThe untrained network: each run's own step-0 weights (`initial/`) \
         evaluated like the trained ones; mean ± sd over the finished seeds. Chance is the \
         majority class of the test split.\n\n| method | runs |",
    );
    for (_, factor) in SSL_FLOOR_FACTORS {
        md.push_str(&format!(" untrained kNN {factor} |"));
    }
    md.push_str(" untrained linear probe |\n|---|---|");
    md.push_str(&"---|".repeat(SSL_FLOOR_FACTORS.len() + 1));
    md.push('\n');
    let mut chance: Option<Vec<f64>> = None;
    for (method, _) in study.methods {
        let metrics: Vec<serde_json::Value> = seeds
            .iter()
            .map(|seed| records.join(format!("{method}-seed{seed}/metrics.json")))
            .filter(|path| path.exists())
            .map(|path| {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
            })
            .collect::<Result<_, String>>()?;
        if metrics.is_empty() {
            continue;
        }
        let column = |pointer: &str| -> Result<String, String> {
            let values: Vec<f64> = metrics
                .iter()
                .map(|m| {
                    m.pointer(pointer)
                        .and_then(serde_json::Value::as_f64)
                        .ok_or_else(|| format!("{method}: no {pointer} in metrics.json"))
                })
                .collect::<Result<_, _>>()?;
            Ok(mean_sd(&values))
        };
        md.push_str(&format!("| {method} | {} |", metrics.len()));
        for (index, _) in SSL_FLOOR_FACTORS {
            md.push_str(&format!(
                " {} |",
                column(&format!("/factor_knn/{index}/untrained_knn_accuracy"))?
            ));
        }
        md.push_str(&format!(
            " {} |\n",
            column("/untrained_linear_probe_accuracy")?
        ));
        if chance.is_none() {
            chance = SSL_FLOOR_FACTORS
                .iter()
                .map(|(index, _)| {
                    metrics[0]
                        .pointer(&format!("/factor_knn/{index}/chance_level"))
                        .and_then(serde_json::Value::as_f64)
                })
                .collect();
        }
    }
    if let Some(chance) = chance {
        md.push_str("| chance | |");
        for value in chance {
            md.push_str(&format!(" {value:.3} |"));
        }
        md.push_str(" |\n");
    }
    Ok(md)
}

/// `mean ± sd` (sample standard deviation; the mean alone for one value), three decimals.
fn mean_sd(values: &[f64]) -> String {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return format!("{mean:.3}");
    }
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    format!("{mean:.3} ± {:.3}", variance.sqrt())
}

/// Medians (ms) of every criterion benchmark under `root`, named by their path below it.
fn collect_criterion(
    root: &Path,
    dir: &Path,
    since: std::time::SystemTime,
    rows: &mut Vec<(String, f64)>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
        let estimates = path.join("new/estimates.json");
        if !estimates.exists() {
            collect_criterion(root, &path, since, rows);
            continue;
        }
        let fresh = std::fs::metadata(&estimates)
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified >= since);
        let median_ns = std::fs::read_to_string(&estimates)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|v| v["median"]["point_estimate"].as_f64());
        if let (true, Some(ns)) = (fresh, median_ns) {
            let name = path.strip_prefix(root).unwrap_or(&path);
            rows.push((name.to_string_lossy().into_owned(), ns / 1e6));
        }
    }
}

/// Peak heap per bench (MiB) from the lines that the bench binaries append to `path` (module
/// docs of crates/infobound-models/benches/peak_memory/mod.rs: `{"bench", "peak_bytes", …}`);
/// empty when no bench wrote any.
///
/// # Errors
/// A line that is not such a record.
fn read_bench_memory(path: &Path) -> Result<HashMap<String, f64>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let record: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?;
            match (record["bench"].as_str(), record["peak_bytes"].as_u64()) {
                (Some(bench), Some(bytes)) => {
                    Ok((bench.to_string(), bytes as f64 / (1024.0 * 1024.0)))
                }
                _ => Err(format!(
                    "{} line {}: expected {{\"bench\": …, \"peak_bytes\": …}}, got {line}",
                    path.display(),
                    i + 1
                )),
            }
        })
        .collect()
}

/// The field that [`torch_section`] adds to each PyTorch record: its peak resident set above
/// the interpreter's (MiB).
const TORCH_PEAK_FIELD: &str = "xtask_peak_rss_mib";

/// Runs `../shared/bench/torch_reference.py` with the interpreter in `INFOBOUND_TORCH_PYTHON`
/// or `$HOME/torch-cpu-venv/bin/python`, one process per section ([`torch_section`]); returns
/// its JSON lines (the first `env` record only), or nothing if neither interpreter exists.
/// Always with the script's own repeat counts: its `--quick` (one warm-up, two repeats) put the
/// first VAE workload at 121.8 ms against 58.8 ms measured properly, which no ratio survives.
fn torch_reference(sections: &str) -> Vec<serde_json::Value> {
    let python = std::env::var("INFOBOUND_TORCH_PYTHON").ok().or_else(|| {
        std::env::var("HOME")
            .ok()
            .map(|h| format!("{h}/torch-cpu-venv/bin/python"))
    });
    let script = workspace_root().join("../shared/bench/torch_reference.py");
    let Some(python) = python.filter(|p| Path::new(p).exists()) else {
        eprintln!("xtask: no torch interpreter (set INFOBOUND_TORCH_PYTHON); skipping PyTorch");
        return Vec::new();
    };
    if !script.exists() {
        eprintln!("xtask: {} not found; skipping PyTorch", script.display());
        return Vec::new();
    }
    let mut records: Vec<serde_json::Value> = Vec::new();
    for section in sections.split(',') {
        match torch_section(&python, &script, section) {
            Ok(section_records) => {
                let have_env = records.iter().any(|r| r["bench"] == "env");
                records.extend(
                    section_records
                        .into_iter()
                        .filter(|r| !(have_env && r["bench"] == "env")),
                );
            }
            Err(e) => eprintln!("xtask: PyTorch section {section}: {e}"),
        }
    }
    records
}

/// One section of the torch script in a process of its own (memory that one section's
/// workloads leave with the allocator is not counted in another's). The script prints its
/// `env` record after `import torch`, then one record per workload when that workload's
/// timing ends; at each line this reads the process's VmHWM and VmRSS in /proc/<pid>/status
/// and restarts VmHWM (`echo 5 > /proc/<pid>/clear_refs`, Linux ≥ 4.0), so each workload
/// record gets [`TORCH_PEAK_FIELD`] = (VmHWM since the previous record − VmRSS at the `env`
/// record) / 1024 (MiB). The script runs on while a line is read, so a workload's first
/// allocations can count towards the record before it; without /proc the field is left out.
///
/// # Errors
/// The interpreter cannot be started or its output read.
fn torch_section(
    python: &str,
    script: &Path,
    section: &str,
) -> Result<Vec<serde_json::Value>, String> {
    let mut child = Command::new(python)
        .arg(script)
        .args(["--sections", section])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{python} did not start: {e}"))?;
    let pid = child.id();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| format!("{python}: no stdout"))?;
    let mut baseline_kib: Option<u64> = None;
    let mut records = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("{python}: reading its output: {e}"))?;
        let Ok(mut record) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let hwm_kib = proc_status_kib(pid, "VmHWM");
        if record["bench"] == "env" {
            baseline_kib = proc_status_kib(pid, "VmRSS");
        } else if let (Some(hwm), Some(baseline), Some(fields)) =
            (hwm_kib, baseline_kib, record.as_object_mut())
        {
            fields.insert(
                TORCH_PEAK_FIELD.into(),
                serde_json::json!(
                    (hwm.saturating_sub(baseline) as f64 / 1024.0 * 10.0).round() / 10.0
                ),
            );
        }
        // Without the reset the next record's peak would be this one's.
        if std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_err() {
            baseline_kib = None;
        }
        records.push(record);
    }
    let status = child
        .wait()
        .map_err(|e| format!("{python}: waiting for it: {e}"))?;
    if !status.success() {
        eprintln!("xtask: PyTorch section {section} ended with {status}");
    }
    Ok(records)
}

/// A `kB` field (`VmHWM`, `VmRSS`) of /proc/<pid>/status, if the system has it.
fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Markers around the generated part of docs/reliability.md.
const FAULTS_BEGIN: &str = "<!-- cargo xtask faults: begin -->";
const FAULTS_END: &str = "<!-- cargo xtask faults: end -->";

/// The long fault campaign: the ignored test `long_fault_campaign` of
/// crates/infobound-cli/tests/faults.rs (random chains until each family has taken `kills`
/// kills), then its counts as a table between the markers of docs/reliability.md.
fn faults(kills: &str, seed: &str, ssl_exact: bool) -> Result<(), String> {
    for (name, value) in [("--kills", kills), ("--seed", seed)] {
        value
            .parse::<u64>()
            .map_err(|_| format!("{name} {value:?}: expected a whole number"))?;
    }
    let root = workspace_root();
    let json = root.join("target").join("faults-latest.json");
    if let Some(dir) = json.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let json_text = json.to_string_lossy().into_owned();
    let started = Instant::now();
    run(
        "cargo",
        &[
            "test",
            "-p",
            "infobound-cli",
            "--test",
            "faults",
            "--",
            "--ignored",
            "--exact",
            "long_fault_campaign",
            "--nocapture",
        ],
        &[
            ("INFOBOUND_FAULT_KILLS", kills),
            ("INFOBOUND_FAULT_SEED", seed),
            ("INFOBOUND_FAULT_REPORT", &json_text),
            (
                "INFOBOUND_FAULT_SSL_EXACT",
                if ssl_exact { "1" } else { "0" },
            ),
        ],
    )?;
    let text = std::fs::read_to_string(&json).map_err(|e| format!("{}: {e}", json.display()))?;
    let report: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", json.display()))?;
    let table = faults_table(&report, started.elapsed().as_secs_f64());
    println!("{table}");
    let doc = root.join("docs").join("reliability.md");
    let current = std::fs::read_to_string(&doc).map_err(|e| format!("{}: {e}", doc.display()))?;
    let (Some(begin), Some(end)) = (current.find(FAULTS_BEGIN), current.find(FAULTS_END)) else {
        return Err(format!(
            "{}: markers {FAULTS_BEGIN} / {FAULTS_END} not found",
            doc.display()
        ));
    };
    let updated = format!(
        "{}{FAULTS_BEGIN}\n{table}{}",
        &current[..begin],
        &current[end..]
    );
    write_atomic(&doc, &updated)
}

/// The campaign's counts as Markdown: one row per family and fault kind.
fn faults_table(report: &serde_json::Value, seconds: f64) -> String {
    let mut out = format!(
        "Campaign of {} (seed {}, {:.0} s wall, `cargo xtask faults`):\n\n\
         | family | fault | injected | survived |\n| --- | --- | ---: | ---: |\n",
        chrono_free_date(),
        report["seed"],
        seconds
    );
    let mut totals = Vec::new();
    for family in ["vae", "ssl"] {
        let counts = &report[family];
        for kind in counts["kinds"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "| {family} | {} | {} | {} |\n",
                kind["kind"].as_str().unwrap_or("?"),
                kind["injected"],
                kind["survived"]
            ));
        }
        let injected: u64 = counts["kinds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k["injected"].as_u64())
            .sum();
        totals.push(format!(
            "- {family}: {injected} faults injected in {} chains ({} processes), {} kills \
             (kill -9 or an abort inside a checkpoint write), all survived; {} \
             bytes lost; {} kills came after the run had finished and are not counted; \
             {} stray `.tmp-<pid>` files after failed reports; results {}.\n",
            counts["chains"],
            counts["processes"],
            counts["kills"],
            counts["bytes_lost"],
            counts["late_kills_not_counted"],
            counts["stray_temp_files_after_failed_report"],
            if counts["bit_identical_checked"].as_bool() == Some(true) {
                "bit-identical to the uninterrupted run (log rows and every checkpoint tensor)"
            } else {
                "NOT checked for bit-identity (a resumed SSL run differs; see above), \
                 every other invariant checked"
            }
        ));
    }
    out.push('\n');
    out.extend(totals);
    out
}

/// Today's date (UTC) as `YYYY-MM-DD`, from the system clock (days since 1970 converted with
/// the civil-from-days algorithm of H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
fn chrono_free_date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vae_more_records_map_to_the_vae_more_group() {
        let record = |bench: &str, case: &str, channels: u64| serde_json::json!({"bench": bench, "case": case, "batch": 64, "channels": channels});
        let cases = [
            (
                record("factorvae_train_step", "burgess_1ch_bernoulli_b64", 1),
                Some("vae_more/factor_vae/1ch_b64"),
            ),
            (
                record("factorvae_train_step", "burgess_3ch_gaussian_b64", 3),
                Some("vae_more/factor_vae/3ch_b64"),
            ),
            (
                record("alpha_tcvae_train_step", "burgess_3ch_b64", 3),
                Some("vae_more/alpha_tcvae_burgess/3ch_b64"),
            ),
            (
                record("alpha_tcvae_train_step", "spatial_broadcast_3ch_b64", 3),
                Some("vae_more/alpha_tcvae_spatial_broadcast/3ch_b64"),
            ),
            (record("alpha_tcvae_train_step", "other_3ch_b64", 3), None),
        ];
        for (torch, ours) in cases {
            assert_eq!(matching_bench(&torch).as_deref(), ours, "{torch}");
        }
    }

    #[test]
    fn ratios_carry_both_peaks() {
        let rows = vec![("vae_more/factor_vae/1ch_b64".to_string(), 90.0)];
        let memory = HashMap::from([("vae_more/factor_vae/1ch_b64".to_string(), 12.5)]);
        let torch = vec![serde_json::json!({
            "bench": "factorvae_train_step", "case": "burgess_1ch_bernoulli_b64", "batch": 64,
            "channels": 1, "ms_median": 180.0, TORCH_PEAK_FIELD: 40.0,
        })];
        let ratios = ratios(&rows, &memory, &torch);
        assert_eq!(ratios.len(), 1);
        assert_eq!(ratios[0].ours_ms / ratios[0].torch_ms, 0.5);
        assert_eq!(ratios[0].ours_peak_mib, Some(12.5));
        assert_eq!(ratios[0].torch_peak_mib, Some(40.0));
    }

    #[test]
    fn bench_memory_lines_are_read_and_bad_lines_rejected() {
        let dir = std::env::temp_dir().join(format!("xtask-memory-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bench-memory.jsonl");
        assert!(read_bench_memory(&path).unwrap().is_empty());
        std::fs::write(
            &path,
            "{\"bench\": \"a/b/c\", \"peak_bytes\": 3145728, \"resident_bytes\": 1, \"step_bytes\": 2}\n",
        )
        .unwrap();
        assert_eq!(read_bench_memory(&path).unwrap()["a/b/c"], 3.0);
        std::fs::write(&path, "{\"bench\": \"a/b/c\"}\n").unwrap();
        let error = read_bench_memory(&path).unwrap_err();
        assert!(error.contains("line 1"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The live PyTorch path of `cargo xtask bench --only vae_more`: the script's `vae_more`
    /// section through [`torch_reference`] (minutes; needs the torch interpreter of
    /// [`torch_reference`] and ../shared/bench): every workload maps to a bench of our
    /// `vae_more` group and carries its peak resident set.
    #[test]
    #[ignore = "runs PyTorch for minutes"]
    fn torch_vae_more_records_map_and_carry_peak_memory() {
        let records = torch_reference("vae_more");
        let workloads: Vec<(String, f64)> = records
            .iter()
            .filter_map(|r| Some((matching_bench(r)?, r[TORCH_PEAK_FIELD].as_f64()?)))
            .collect();
        eprintln!("{workloads:?}");
        let mut names: Vec<&str> = workloads.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "vae_more/alpha_tcvae_burgess/3ch_b64",
                "vae_more/alpha_tcvae_spatial_broadcast/3ch_b64",
                "vae_more/factor_vae/1ch_b64",
                "vae_more/factor_vae/3ch_b64",
            ],
            "{records:?}"
        );
        assert!(workloads.iter().all(|(_, mib)| *mib > 0.0), "{workloads:?}");
    }

    /// The mechanism of [`torch_section`], on this process: VmHWM rises by what a touched
    /// allocation adds, and `5` in clear_refs brings it back once that memory is freed.
    #[test]
    #[cfg(target_os = "linux")]
    fn proc_peak_rises_and_restarts() {
        const MIB: u64 = 1024;
        let pid = std::process::id();
        let before = proc_status_kib(pid, "VmHWM").expect("Linux /proc");
        let block = vec![1u8; 64 << 20];
        let during = proc_status_kib(pid, "VmHWM").expect("Linux /proc");
        assert!(
            during >= before + 60 * MIB,
            "VmHWM {before} kB, then {during} kB"
        );
        drop(std::hint::black_box(block));
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("clear_refs");
        let after = proc_status_kib(pid, "VmHWM").expect("Linux /proc");
        assert!(
            after + 60 * MIB <= during,
            "VmHWM {during} kB, after the reset {after} kB"
        );
        assert_eq!(proc_status_kib(pid, "NoSuchField"), None);
    }
}
