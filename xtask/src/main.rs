//! Project automation: `cargo xtask ci [--full]`, `cargo xtask bench [--quick] [--only AREA]`,
//! `cargo xtask study [--seeds 0,1,2]`, `cargo xtask package`,
//! `cargo xtask faults [--kills N] [--seed S]`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
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
            option(&args, "--seeds").as_deref().unwrap_or("0,1,2"),
            flag("--table-only"),
        ),
        Some("faults") => faults(
            option(&args, "--kills").as_deref().unwrap_or("20"),
            option(&args, "--seed").as_deref().unwrap_or("1"),
            flag("--ssl-exact"),
        ),
        Some("fmt") => run("cargo", &["fmt", "--all"], &[]),
        Some("package") => package::package(&workspace_root()),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 ci [--full]     fmt check, clippy -D warnings, tests (flex); --full adds the\n\
                 \x20               ndarray, wgpu (lavapipe smoke test), cuda and hdf5 builds\n\
                 bench [--quick] [--only vae,ssl,tc,mveb,metrics]\n\
                 \x20               criterion benches + the PyTorch reference in the same run, with\n\
                 \x20               the time ratio per workload: target/bench-summary.json and\n\
                 \x20               docs/bench-latest.md\n\
                 study [--ssl] [--seeds 0,1,2] [--table-only]\n\
                 \x20               the equal-budget VAE study (configs/study/*.toml) over seeds,\n\
                 \x20               mean and spread per method: docs/study-latest.md; --ssl: the\n\
                 \x20               four SSL quickstart presets: docs/ssl-study-latest.md\n\
                 package         cargo package of every crate; every embedded file inside its\n\
                 \x20               crate and in the packaged list (part of `ci`)\n\
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

/// The CI gate. The default job compiles one CPU backend (flex) only: Burn is slow to build on
/// two cores, and every extra backend rebuilds the whole Burn stack.
fn ci(full: bool) -> Result<(), String> {
    run("cargo", &["fmt", "--all", "--", "--check"], &[])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    run("cargo", &["test", "--workspace", "--no-fail-fast"], &[])?;
    package::package(&workspace_root())?;
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
        run(
            "cargo",
            &["test", "-p", "infobound-backend", "--features", "wgpu"],
            &[
                ("CUBECL_WGPU_DEFAULT_DEVICE", "Cpu"),
                ("XDG_RUNTIME_DIR", "/tmp"),
                ("INFOBOUND_EXPECT_WGPU", "1"),
            ],
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

/// Benchmark areas: the criterion group that measures ours and the PyTorch section that measures
/// the same workload in `../shared/bench/torch_reference.py`.
const AREAS: [(&str, &str, &str); 5] = [
    ("vae", "vae_step", "vae"),
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
/// writes every median with the ratio ours / PyTorch where the workloads are the same.
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
    let mut envs = Vec::new();
    if quick {
        envs.push(("INFOBOUND_BENCH_QUICK", "1"));
    }
    // Criterion keeps every earlier result under target/criterion: only this run's count.
    let started = std::time::SystemTime::now();
    run("cargo", &args, &envs)?;
    let root = workspace_root();
    let mut rows = Vec::new();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let criterion = target.join("criterion");
    collect_criterion(&criterion, &criterion, started, &mut rows);
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let sections = areas
        .iter()
        .map(|(_, _, section)| *section)
        .collect::<Vec<_>>()
        .join(",");
    let torch = torch_reference(&sections);
    let ratios = ratios(&rows, &torch);
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
        "infobound": rows.iter().map(|(name, ms)| serde_json::json!({"bench": name, "median_ms": ms})).collect::<Vec<_>>(),
        "pytorch": torch,
        "ratios": ratios.iter().map(|r| serde_json::json!({
            "workload": r.workload, "infobound_bench": r.ours, "infobound_ms": r.ours_ms,
            "pytorch_ms": r.torch_ms, "ratio": r.ours_ms / r.torch_ms,
        })).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    write_atomic(&target.join("bench-summary.json"), &text)?;
    let mut md = format!(
        "# Latest `cargo xtask bench`\n\ncommit {commit}, load average {} (1, 5, 15 min)\n\n",
        load.trim()
    );
    if !ratios.is_empty() {
        md.push_str(
            "## Same workload, same run: infobound vs PyTorch CPU\n\n\
             ratio = infobound median / PyTorch median (< 1: infobound is faster)\n\n\
             | workload | infobound bench | infobound ms | PyTorch ms | ratio |\n|---|---|---|---|---|\n",
        );
        for r in &ratios {
            md.push_str(&format!(
                "| {} | {} | {:.2} | {:.2} | {:.2} |\n",
                r.workload,
                r.ours,
                r.ours_ms,
                r.torch_ms,
                r.ours_ms / r.torch_ms
            ));
        }
        md.push('\n');
    }
    md.push_str("## Every infobound median\n\n| bench | median ms |\n|---|---|\n");
    for (name, ms) in &rows {
        md.push_str(&format!("| {name} | {ms:.3} |\n"));
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

/// One workload measured by both sides.
struct Ratio {
    workload: String,
    ours: String,
    ours_ms: f64,
    torch_ms: f64,
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
        _ => None,
    }
}

fn ratios(rows: &[(String, f64)], torch: &[serde_json::Value]) -> Vec<Ratio> {
    torch
        .iter()
        .filter_map(|record| {
            let ours = matching_bench(record)?;
            let (_, ours_ms) = rows.iter().find(|(name, _)| *name == ours)?;
            let torch_ms = record["ms_median"].as_f64()?;
            Some(Ratio {
                workload: format!("{}/{}", record["bench"].as_str()?, record["case"].as_str()?),
                ours,
                ours_ms: *ours_ms,
                torch_ms,
            })
        })
        .collect()
}

/// The methods of the equal-budget VAE study, one config each in `configs/study/`.
/// An equal-budget comparison over seeds: which runs, where, and what the table reports.
struct Study {
    /// Table title.
    title: &'static str,
    /// What the runs share, for the table's preamble.
    setup: &'static str,
    /// Method names (run folders are `<runs>/<method>-seed<seed>`) and the `train` arguments
    /// that start one.
    methods: &'static [(&'static str, &'static [&'static str])],
    /// Run folder, relative to the workspace root.
    runs: &'static str,
    /// The table, relative to the workspace root.
    table: &'static str,
    /// (column title, JSON pointer into metrics.json).
    scores: &'static [(&'static str, &'static str)],
}

/// The equal-budget VAE study (issue #7).
const VAE_STUDY: Study = Study {
    title: "Equal-budget VAE study (`cargo xtask study`)",
    setup: "procedural 3DShapes, configs/study/*.toml",
    methods: &[
        (
            "alpha_tcvae",
            &["--config", "configs/study/alpha_tcvae.toml"],
        ),
        ("beta_vae", &["--config", "configs/study/beta_vae.toml"]),
        ("beta_tcvae", &["--config", "configs/study/beta_tcvae.toml"]),
        ("factorvae", &["--config", "configs/study/factorvae.toml"]),
    ],
    runs: "runs/study",
    table: "docs/study-latest.md",
    scores: &[
        ("DCI-D", "/headline/dci_disentanglement"),
        ("MIG", "/headline/mig"),
        ("SAP", "/headline/sap"),
        ("FactorVAE", "/factor_vae/eval_accuracy"),
        ("DCI-I", "/headline/dci_informativeness"),
        ("Vendi prior", "/vendi_prior_samples/score"),
        ("Vendi trav.", "/vendi_traversals/score"),
        ("recon. err.", "/reconstruction_error"),
        ("train s", "/train_seconds"),
    ],
};

/// The equal-budget SSL comparison (issue #8): the four quickstart presets. `factor_knn` lists
/// the 3DShapes factors in their fixed order (floor hue, wall hue, object hue, scale, shape,
/// orientation).
const SSL_STUDY: Study = Study {
    title: "Equal-budget SSL study (`cargo xtask study --ssl`)",
    setup: "procedural 3DShapes at 32 px, configs/{mveb,simsiam,byol,barlow_twins}_quickstart.toml",
    methods: &[
        ("mveb", &["--preset", "mveb_quickstart"]),
        ("simsiam", &["--preset", "simsiam_quickstart"]),
        ("byol", &["--preset", "byol_quickstart"]),
        ("barlow_twins", &["--preset", "barlow_twins_quickstart"]),
    ],
    runs: "runs/ssl-study",
    table: "docs/ssl-study-latest.md",
    scores: &[
        ("kNN floor hue", "/factor_knn/0/knn_accuracy"),
        ("kNN wall hue", "/factor_knn/1/knn_accuracy"),
        ("kNN object hue", "/factor_knn/2/knn_accuracy"),
        ("kNN shape", "/factor_knn/4/knn_accuracy"),
        ("linear probe", "/linear_probe/test_accuracy"),
        ("emb. eff. rank", "/embedding_collapse/effective_rank"),
        ("uniformity", "/embedding_collapse/uniformity"),
        ("train s", "/train_seconds"),
    ],
};

/// Trains every method of `study` for every seed (skipping finished runs and resuming
/// interrupted ones), then writes mean ± sample standard deviation per method; `table_only`
/// skips the training.
fn study(study: &Study, seeds: &str, table_only: bool) -> Result<(), String> {
    let seeds: Vec<u64> = seeds
        .split(',')
        .map(|s| s.trim().parse().map_err(|e| format!("seed `{s}`: {e}")))
        .collect::<Result<_, _>>()?;
    let root = workspace_root();
    let runs = root.join(study.runs);
    for seed in seeds.iter().filter(|_| !table_only) {
        for (method, start) in study.methods {
            let out = runs.join(format!("{method}-seed{seed}"));
            if out.join("metrics.json").exists() {
                continue;
            }
            let seed = seed.to_string();
            let resume = out.exists();
            let out = out.to_string_lossy().into_owned();
            let mut args = vec!["run", "-p", "infobound-cli", "--", "train", "--quiet"];
            if resume {
                args.extend(["--resume", &out]);
            } else {
                args.extend(start.iter().copied());
                args.extend(["--seed", &seed, "--out", &out]);
            }
            run("cargo", &args, &[])?;
        }
    }
    let md = study_table(study, &runs, &seeds)?;
    write_atomic(&root.join(study.table), &md)?;
    print!("{md}");
    Ok(())
}

/// Training time of a run: its wall time minus the evaluation, from the file times (the run
/// folder is created when training starts; metrics.json is written when evaluation ends).
fn train_seconds(run: &Path, metrics: &serde_json::Value) -> Option<f64> {
    let created = std::fs::metadata(run.join("config.toml"))
        .ok()?
        .modified()
        .ok()?;
    let finished = std::fs::metadata(run.join("metrics.json"))
        .ok()?
        .modified()
        .ok()?;
    let wall = finished.duration_since(created).ok()?.as_secs_f64();
    Some(wall - metrics["eval_seconds"].as_f64()?)
}

fn study_table(study: &Study, runs: &Path, seeds: &[u64]) -> Result<String, String> {
    let mut md = format!(
        "# {}\n\n{}, seeds {seeds:?}; mean ± sample standard deviation over the seeds that \
         finished.\n\n| method | runs |",
        study.title, study.setup
    );
    for (title, _) in study.scores {
        md.push_str(&format!(" {title} |"));
    }
    md.push_str(&format!(
        "\n|---|---|{}\n",
        "---|".repeat(study.scores.len())
    ));
    for (method, _) in study.methods {
        let mut columns = vec![Vec::new(); study.scores.len()];
        let mut finished = 0;
        for seed in seeds {
            let run = runs.join(format!("{method}-seed{seed}"));
            let Ok(text) = std::fs::read_to_string(run.join("metrics.json")) else {
                continue;
            };
            let mut metrics: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("{}: {e}", run.join("metrics.json").display()))?;
            // SSL runs record their training time; VAE runs get it from the file times.
            if metrics.get("train_seconds").is_none()
                && let Some(seconds) = train_seconds(&run, &metrics)
            {
                metrics["train_seconds"] = serde_json::json!(seconds);
            }
            finished += 1;
            for (column, (_, pointer)) in columns.iter_mut().zip(study.scores) {
                if let Some(v) = metrics.pointer(pointer).and_then(serde_json::Value::as_f64) {
                    column.push(v);
                }
            }
        }
        md.push_str(&format!("| {method} | {finished} |"));
        for column in &columns {
            md.push_str(&format!(" {} |", mean_and_spread(column)));
        }
        md.push('\n');
    }
    Ok(md)
}

/// "mean ± sd" (sample standard deviation), the value alone for one run, "–" for none.
fn mean_and_spread(values: &[f64]) -> String {
    let n = values.len() as f64;
    match values.len() {
        0 => "–".into(),
        1 => format!("{:.3}", values[0]),
        _ => {
            let mean = values.iter().sum::<f64>() / n;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
            format!("{mean:.3} ± {:.3}", var.sqrt())
        }
    }
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

/// Runs `../shared/bench/torch_reference.py` with the interpreter in `INFOBOUND_TORCH_PYTHON`
/// or `$HOME/torch-cpu-venv/bin/python`; returns its JSON lines, or nothing if neither exists.
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
    let mut cmd = Command::new(python);
    cmd.arg(&script).args(["--sections", sections]);
    match cmd.output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        Err(e) => {
            eprintln!("xtask: torch reference failed to start: {e}");
            Vec::new()
        }
    }
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
