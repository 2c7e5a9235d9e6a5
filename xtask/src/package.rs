//! `cargo xtask package`: every library crate packages on its own. A crate that embeds a file
//! from outside its folder (`include_str!("../../../x")`) packages without it and fails to build
//! from crates.io; this step packages each crate and checks that every file its sources embed
//! is inside the crate and in the packaged file list.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The crates users pick one by one (the binary crate packages too, as a check).
const CRATES: [&str; 11] = [
    "infobound-backend",
    "infobound-collective",
    "infobound-estimators",
    "infobound-data",
    "infobound-metrics",
    "infobound-kernels",
    "infobound-models",
    "infobound-train",
    "infobound-weights",
    "infobound-cli",
    "infobound-py",
];

/// Packages every crate and checks the embedded files of each against its packaged list.
pub fn package(root: &Path) -> Result<(), String> {
    crate::run(
        "cargo",
        &[
            "package",
            "--workspace",
            "--exclude",
            "xtask",
            "--no-verify",
            "--allow-dirty",
        ],
        &[],
    )?;
    let mut checked = 0;
    for name in CRATES {
        let dir = root.join("crates").join(name);
        let listed = packaged_files(root, name)?;
        for (source, embedded) in embedded_files(&dir)? {
            let relative = embedded.strip_prefix(&dir).map_err(|_| {
                format!(
                    "{name}: {} embeds {}, which is outside the crate",
                    source.display(),
                    embedded.display()
                )
            })?;
            let relative = relative.to_string_lossy().replace('\\', "/");
            if !listed.contains(&relative) {
                return Err(format!(
                    "{name}: {} embeds {relative}, which `cargo package` leaves out",
                    source.display()
                ));
            }
            checked += 1;
        }
    }
    eprintln!(
        "xtask: {} crates package; {checked} embedded files are inside their crates and packaged",
        CRATES.len()
    );
    Ok(())
}

/// `cargo package --list` of one crate, as paths relative to the crate.
fn packaged_files(root: &Path, name: &str) -> Result<BTreeSet<String>, String> {
    let output = Command::new("cargo")
        .args(["package", "--list", "--allow-dirty", "-p", name])
        .current_dir(root)
        .output()
        .map_err(|e| format!("could not start cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo package --list -p {name} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// Every `include_str!` / `include_bytes!` target in the crate's `.rs` files, resolved against
/// the including file (following symbolic links), with the including file.
fn embedded_files(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>, String> {
    let mut sources = Vec::new();
    collect_rs(dir, &mut sources)?;
    let mut found = Vec::new();
    for source in sources {
        let text =
            std::fs::read_to_string(&source).map_err(|e| format!("{}: {e}", source.display()))?;
        // rustfmt may break the line after the parenthesis: the path is the first string
        // literal after it, whitespace allowed.
        for macro_name in ["include_str!(", "include_bytes!("] {
            for (start, _) in text.match_indices(macro_name) {
                let rest = text[start + macro_name.len()..].trim_start();
                let Some(rest) = rest.strip_prefix('"') else {
                    continue;
                };
                let Some(end) = rest.find('"') else { continue };
                let target = source.parent().unwrap_or(dir).join(&rest[..end]);
                let resolved = normalise(&target);
                found.push((source.clone(), resolved));
            }
        }
    }
    Ok(found)
}

/// `a/b/../c` → `a/c` without touching the file system (a missing file is reported by the
/// packaged-list check, not here).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            collect_rs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_components_are_resolved_lexically() {
        assert_eq!(
            normalise(Path::new("/w/crates/a/src/../../../configs/x.toml")),
            PathBuf::from("/w/configs/x.toml")
        );
        assert_eq!(
            normalise(Path::new("/w/crates/a/src/./../presets/x.toml")),
            PathBuf::from("/w/crates/a/presets/x.toml")
        );
    }
}
