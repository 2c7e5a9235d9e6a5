//! Project automation: `cargo xtask ci [--full]`, `cargo xtask bench [--quick]`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(flag("--full")),
        Some("bench") => bench(flag("--quick")),
        Some("fmt") => run("cargo", &["fmt", "--all"], &[]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 ci [--full]     fmt check, clippy -D warnings, tests (flex); --full adds the\n\
                 \x20               ndarray, wgpu (lavapipe smoke test), cuda and hdf5 builds\n\
                 bench [--quick] every criterion bench + the PyTorch reference, summary in\n\
                 \x20               target/bench-summary.json and docs/bench-latest.md\n\
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

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn run(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
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
        // The real 3dshapes.h5 reader links the system libhdf5 (apt-get install libhdf5-dev).
        run(
            "cargo",
            &["test", "-p", "infobound-data", "--features", "hdf5"],
            &[],
        )?;
    }
    Ok(())
}

/// Runs every criterion bench (dev profile: dependencies are built at opt-level 3 there, so no
/// second 20-minute optimised build is needed), then the PyTorch reference if a torch
/// interpreter is available, and collects the medians.
fn bench(quick: bool) -> Result<(), String> {
    let mut args = vec!["bench", "--workspace", "--profile", "dev"];
    if quick {
        args.extend(["--", "--warm-up-time", "1", "--measurement-time", "3"]);
    }
    run("cargo", &args, &[])?;
    let root = workspace_root();
    let mut rows = Vec::new();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let criterion = target.join("criterion");
    collect_criterion(&criterion, &criterion, &mut rows);
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let torch = torch_reference(quick);
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
    });
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    write_atomic(&target.join("bench-summary.json"), &text)?;
    let mut md = format!(
        "# Latest `cargo xtask bench`\n\ncommit {commit}, load average {}\n\n| bench | median ms |\n|---|---|\n",
        load.trim()
    );
    for (name, ms) in &rows {
        md.push_str(&format!("| {name} | {ms:.3} |\n"));
    }
    if let Some(lines) = summary["pytorch"].as_array() {
        md.push_str("\n## PyTorch CPU, same run\n\n```\n");
        for l in lines {
            md.push_str(&format!("{l}\n"));
        }
        md.push_str("```\n");
    }
    write_atomic(&root.join("docs/bench-latest.md"), &md)?;
    eprintln!(
        "xtask: wrote {} and docs/bench-latest.md",
        target.join("bench-summary.json").display()
    );
    Ok(())
}

/// Medians (ms) of every criterion benchmark under `root`, named by their path below it.
fn collect_criterion(root: &Path, dir: &Path, rows: &mut Vec<(String, f64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
        let estimates = path.join("new/estimates.json");
        let median_ns = std::fs::read_to_string(&estimates)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|v| v["median"]["point_estimate"].as_f64());
        match median_ns {
            Some(ns) => {
                let name = path.strip_prefix(root).unwrap_or(&path);
                rows.push((name.to_string_lossy().into_owned(), ns / 1e6));
            }
            None => collect_criterion(root, &path, rows),
        }
    }
}

/// Runs `../shared/bench/torch_reference.py` with the interpreter in `INFOBOUND_TORCH_PYTHON`
/// or `$HOME/torch-cpu-venv/bin/python`; returns its JSON lines, or nothing if neither exists.
fn torch_reference(quick: bool) -> Vec<serde_json::Value> {
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
    cmd.arg(&script).args(["--sections", "vae,mveb,tc,metrics"]);
    if quick {
        cmd.arg("--quick");
    }
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

fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}
