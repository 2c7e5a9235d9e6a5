//! Checkpoints that prove themselves.
//!
//! A checkpoint is a folder `step-<8 digits>` in a run's `checkpoints/`, holding one burnpack
//! file per module and optimiser, `state.json`, and — written last — `manifest.json`, which lists
//! every other file with its size and SHA-256 digest (FIPS 180-4) under a format version. A folder
//! whose manifest is missing, unreadable or of another format, or that disagrees with any file the
//! manifest lists, is **not** a checkpoint.
//!
//! Writing ([`save_checkpoint`]): every file is written atomically (a temporary sibling, fsync,
//! rename) into a temporary folder, the manifest last; the folder is then renamed into place and
//! `checkpoints/latest` (written atomically) names it. Older checkpoints beyond the newest
//! [`KEEP`] valid ones are deleted; invalid ones are never deleted, only set aside.
//!
//! Choosing ([`newest_valid_checkpoint`]): the `step-*` folders are verified newest-first by step
//! and the first that verifies is taken. `latest` is not trusted (it is a pointer for people and
//! old tools): when it names a folder that is gone, that is reported as a skip. With
//! [`Quarantine::MoveAside`] (for `--resume`, which holds the run's lock) each invalid folder is
//! renamed `<name>.invalid-<reason>`, so the user sees it and nothing is lost; with
//! [`Quarantine::Leave`] (for read-only commands such as `eval` and `probe`) nothing is touched.
//!
//! # Test hook
//!
//! When the environment variable [`FAULT_STOP_AFTER_FILES_ENV`]
//! (`INFOBOUND_FAULT_STOP_CHECKPOINT_AFTER_FILES`) holds a number `N`, [`save_checkpoint`] aborts
//! the process (`std::process::abort`) right after the `N`-th file of the checkpoint folder is in
//! place (`0`: before the first; the manifest is the last file), to test recovery from a crash in
//! the middle of a checkpoint. It is read only here, and changes no numerics: a run that does not
//! abort writes exactly the same bytes.

use std::collections::HashSet;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::fsutil::{temp_path, write_atomic};
use crate::TrainError;

/// Scalar state saved beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Number of completed steps.
    pub step: usize,
    /// Current learning rate (after any plateau decay).
    pub learning_rate: f64,
    /// Best mean loss seen by the plateau scheduler.
    pub plateau_best: Option<f64>,
    /// Log intervals without improvement.
    pub plateau_bad_intervals: usize,
    /// Steps skipped by the gradient-skip rule or the non-finite guard.
    pub skipped_steps: usize,
}

/// How many valid checkpoints are kept (older valid ones are deleted after a new one lands). Two,
/// so that a crash or a damaged copy of the newest leaves one to resume from (our choice).
pub const KEEP: usize = 2;

/// Name of the manifest inside a checkpoint folder, written last.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Version of the manifest format this code writes and accepts.
pub const MANIFEST_FORMAT: u32 = 1;

/// Name of the pointer file in the checkpoint folder naming the newest checkpoint (a hint only).
pub const LATEST_FILE: &str = "latest";

/// Test hook: abort the process after this many files of a checkpoint are written (see the
/// module documentation). Changes no numerics.
pub const FAULT_STOP_AFTER_FILES_ENV: &str = "INFOBOUND_FAULT_STOP_CHECKPOINT_AFTER_FILES";

const STATE_FILE: &str = "state.json";
const INVALID_MARK: &str = ".invalid-";

fn checkpoint_name(step: usize) -> String {
    format!("step-{step:08}")
}

/// The step of a folder named exactly as [`save_checkpoint`] names them.
fn parse_checkpoint_name(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("step-")?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = digits.parse().ok()?;
    (checkpoint_name(step) == name).then_some(step)
}

/// The manifest of a checkpoint: every file it holds, with its size and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointManifest {
    /// Format version ([`MANIFEST_FORMAT`]).
    pub format: u32,
    /// The step the checkpoint was taken at (the folder's name says the same).
    pub step: usize,
    /// Every file of the checkpoint except the manifest, in writing order.
    pub files: Vec<ManifestEntry>,
}

/// One file listed in a [`CheckpointManifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// File name inside the checkpoint folder.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the contents, lower-case hex.
    pub sha256: String,
}

/// Why a folder is not a usable checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidReason {
    /// The folder does not exist (e.g. `latest` names a folder that is gone).
    Missing,
    /// The folder has no `manifest.json`.
    NoManifest,
    /// A file could not be read.
    Unreadable {
        /// The file.
        file: String,
        /// The error.
        message: String,
    },
    /// `manifest.json` does not parse or does not describe this folder.
    BadManifest(String),
    /// `manifest.json` has a format version this code does not know.
    UnsupportedFormat {
        /// The version found.
        found: u32,
    },
    /// A file listed in the manifest is absent.
    MissingFile {
        /// The file.
        file: String,
    },
    /// A file has another size than the manifest says.
    WrongSize {
        /// The file.
        file: String,
        /// Size recorded in the manifest.
        expected: u64,
        /// Size on disk.
        found: u64,
    },
    /// A file's SHA-256 differs from the manifest's.
    DigestMismatch {
        /// The file.
        file: String,
    },
    /// A temporary folder left by a checkpoint write that never finished.
    InterruptedWrite,
}

impl InvalidReason {
    /// A short name for file names (`<checkpoint>.invalid-<slug>`).
    pub fn slug(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::NoManifest => "no-manifest",
            Self::Unreadable { .. } => "unreadable",
            Self::BadManifest(_) => "bad-manifest",
            Self::UnsupportedFormat { .. } => "unsupported-format",
            Self::MissingFile { .. } => "missing-file",
            Self::WrongSize {
                expected, found, ..
            } if found < expected => "truncated",
            Self::WrongSize { .. } => "wrong-size",
            Self::DigestMismatch { .. } => "digest-mismatch",
            Self::InterruptedWrite => "interrupted-write",
        }
    }
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => write!(f, "the folder does not exist"),
            Self::NoManifest => write!(
                f,
                "no {MANIFEST_FILE} (an interrupted write, or a checkpoint written by a version \
                 of infobound before checkpoint manifests, which cannot be verified)"
            ),
            Self::Unreadable { file, message } => write!(f, "cannot read {file}: {message}"),
            Self::BadManifest(message) => write!(f, "invalid {MANIFEST_FILE}: {message}"),
            Self::UnsupportedFormat { found } => write!(
                f,
                "{MANIFEST_FILE} has format {found}; this version reads format {MANIFEST_FORMAT}"
            ),
            Self::MissingFile { file } => write!(f, "{file} is listed in the manifest but absent"),
            Self::WrongSize {
                file,
                expected,
                found,
            } => write!(
                f,
                "{file} is {found} bytes, the manifest says {expected}{}",
                if found < expected { " (truncated)" } else { "" }
            ),
            Self::DigestMismatch { file } => {
                write!(f, "{file} does not match its SHA-256 in the manifest")
            }
            Self::InterruptedWrite => write!(f, "a checkpoint write that never finished"),
        }
    }
}

/// A folder passed over while looking for a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedCheckpoint {
    /// The folder (as it was named when found).
    pub path: PathBuf,
    /// Why it was passed over.
    pub reason: InvalidReason,
    /// Where it was moved ([`Quarantine::MoveAside`]); `None` when left in place or absent.
    pub moved_to: Option<PathBuf>,
}

impl fmt::Display for SkippedCheckpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "skipped checkpoint {}: {}",
            self.path.display(),
            self.reason
        )?;
        if let Some(to) = &self.moved_to {
            write!(f, "; moved aside to {}", to.display())?;
        }
        Ok(())
    }
}

/// What to do with invalid checkpoint folders found while choosing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quarantine {
    /// Touch nothing (read-only commands; a run may be writing concurrently).
    Leave,
    /// Rename each invalid folder `<name>.invalid-<reason>` (and leftover temporary folders of
    /// interrupted writes `.invalid-interrupted-write`). Only for the holder of the run's lock.
    MoveAside,
}

/// The outcome of [`newest_valid_checkpoint`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckpointSelection {
    /// The newest checkpoint that verified, if any.
    pub checkpoint: Option<PathBuf>,
    /// Everything newer that was passed over, newest first.
    pub skipped: Vec<SkippedCheckpoint>,
}

impl CheckpointSelection {
    /// The chosen checkpoint, or [`TrainError::NoValidCheckpoint`] naming what was skipped.
    pub fn require(self, dir: &Path) -> Result<PathBuf, TrainError> {
        self.checkpoint
            .ok_or_else(|| TrainError::NoValidCheckpoint {
                dir: dir.to_path_buf(),
                skipped: self.skipped,
            })
    }

    fn print_skipped(&self) {
        for skipped in &self.skipped {
            eprintln!("{skipped}");
        }
    }
}

/// Writes a checkpoint of `modules` (name → module) and optimisers for `state.step` into `dir`
/// (see the module documentation for the layout and the guarantees), then deletes valid
/// checkpoints older than the newest [`KEEP`] and sets invalid older ones aside. Returns the
/// checkpoint folder.
pub fn save_checkpoint(
    dir: &Path,
    state: &TrainerState,
    modules: &[(&str, &dyn SaveModule)],
    optimizers: &[(&str, &ModuleOptimizer)],
) -> Result<PathBuf, TrainError> {
    let stop_after = fault_stop_after_files()?;
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let name = checkpoint_name(state.step);
    let final_dir = dir.join(&name);
    let tmp_dir = temp_path(&final_dir);
    if tmp_dir.exists() {
        // Left by an earlier failed save of this very process: it never became a checkpoint.
        std::fs::remove_dir_all(&tmp_dir).map_err(|e| TrainError::io(&tmp_dir, e))?;
    }
    std::fs::create_dir_all(&tmp_dir).map_err(|e| TrainError::io(&tmp_dir, e))?;
    let mut writer = FolderWriter {
        dir: &tmp_dir,
        entries: Vec::new(),
        written: 0,
        stop_after,
    };
    writer.fault_point();
    for (module_name, module) in modules {
        let file = format!("{module_name}.bpk");
        let bytes = module.to_burnpack().map_err(|e| TrainError::Checkpoint {
            path: tmp_dir.join(&file),
            message: e.to_string(),
        })?;
        writer.write(&file, &bytes)?;
    }
    for (optimizer_name, optimizer) in optimizers {
        let file = format!("{optimizer_name}.bpk");
        let bytes = optimizer.into_bytes().map_err(|e| TrainError::Checkpoint {
            path: tmp_dir.join(&file),
            message: e.to_string(),
        })?;
        writer.write(&file, &bytes)?;
    }
    let state_json = serde_json::to_vec_pretty(state).map_err(|e| TrainError::Checkpoint {
        path: tmp_dir.join(STATE_FILE),
        message: e.to_string(),
    })?;
    writer.write(STATE_FILE, &state_json)?;
    writer.finish(state.step)?;
    sync_dir(&tmp_dir)?;

    // A folder of the same step can exist only from an earlier save of that step: a valid one is
    // replaced (after the new one is in place), an invalid one is set aside.
    let mut replaced = None;
    if final_dir.exists() {
        match verify_checkpoint(&final_dir) {
            Ok(_) => {
                let old = temp_path(&final_dir.with_extension("replaced"));
                std::fs::rename(&final_dir, &old).map_err(|e| TrainError::io(&final_dir, e))?;
                replaced = Some(old);
            }
            Err(reason) => {
                let moved_to = set_aside(&final_dir, reason.slug())?;
                eprintln!(
                    "{}",
                    SkippedCheckpoint {
                        path: final_dir.clone(),
                        reason,
                        moved_to: Some(moved_to),
                    }
                );
            }
        }
    }
    std::fs::rename(&tmp_dir, &final_dir).map_err(|e| TrainError::io(&final_dir, e))?;
    sync_dir(dir)?;
    if let Some(old) = replaced {
        std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
    }
    write_atomic(&dir.join(LATEST_FILE), name.as_bytes())?;
    for skipped in prune(dir, state.step)? {
        eprintln!("{skipped}");
    }
    Ok(final_dir)
}

/// Reads the test hook [`FAULT_STOP_AFTER_FILES_ENV`].
fn fault_stop_after_files() -> Result<Option<usize>, TrainError> {
    match std::env::var(FAULT_STOP_AFTER_FILES_ENV) {
        Ok(value) => value.trim().parse().map(Some).map_err(|_| {
            TrainError::Config(format!(
                "{FAULT_STOP_AFTER_FILES_ENV}={value:?}: expected a number of files"
            ))
        }),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(value)) => Err(TrainError::Config(format!(
            "{FAULT_STOP_AFTER_FILES_ENV}={value:?}: expected a number of files"
        ))),
    }
}

/// Writes the files of one checkpoint folder, recording each in the manifest.
struct FolderWriter<'a> {
    dir: &'a Path,
    entries: Vec<ManifestEntry>,
    /// Files in place so far, the manifest included (what the test hook counts).
    written: usize,
    stop_after: Option<usize>,
}

impl FolderWriter<'_> {
    fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), TrainError> {
        let path = self.dir.join(name);
        if !is_plain_file_name(name) || name == MANIFEST_FILE {
            return Err(TrainError::Checkpoint {
                path,
                message: "not a usable checkpoint file name".into(),
            });
        }
        if self.entries.iter().any(|e| e.name == name) {
            return Err(TrainError::Checkpoint {
                path,
                message: "two parts of the checkpoint have this file name".into(),
            });
        }
        write_atomic(&path, bytes)?;
        self.entries.push(ManifestEntry {
            name: name.to_owned(),
            bytes: bytes.len() as u64,
            sha256: hex(&Sha256::digest(bytes)),
        });
        self.written += 1;
        self.fault_point();
        Ok(())
    }

    fn finish(mut self, step: usize) -> Result<(), TrainError> {
        let manifest = CheckpointManifest {
            format: MANIFEST_FORMAT,
            step,
            files: std::mem::take(&mut self.entries),
        };
        let path = self.dir.join(MANIFEST_FILE);
        let text = serde_json::to_vec_pretty(&manifest).map_err(|e| TrainError::Checkpoint {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&path, &text)?;
        self.written += 1;
        self.fault_point();
        Ok(())
    }

    /// The test hook: abort once the requested number of files is in place.
    fn fault_point(&self) {
        if self.stop_after == Some(self.written) {
            std::process::abort();
        }
    }
}

/// Deletes valid checkpoints older than `newest_step` beyond the newest [`KEEP`] valid ones
/// (counting the one at `newest_step`) and sets invalid older ones aside. Folders at or after
/// `newest_step` are not touched, so the newest valid checkpoint is never deleted.
fn prune(dir: &Path, newest_step: usize) -> Result<Vec<SkippedCheckpoint>, TrainError> {
    let mut older: Vec<(usize, PathBuf)> = checkpoint_folders(dir)?
        .into_iter()
        .filter(|(step, _)| *step < newest_step)
        .collect();
    older.sort_by_key(|(step, _)| std::cmp::Reverse(*step));
    let mut kept = 1;
    let mut set_aside_list = Vec::new();
    for (_, path) in older {
        match verify_checkpoint(&path) {
            Ok(_) if kept < KEEP => kept += 1,
            Ok(_) => std::fs::remove_dir_all(&path).map_err(|e| TrainError::io(&path, e))?,
            Err(reason) => {
                let moved_to = set_aside(&path, reason.slug())?;
                set_aside_list.push(SkippedCheckpoint {
                    path,
                    reason,
                    moved_to: Some(moved_to),
                });
            }
        }
    }
    Ok(set_aside_list)
}

/// The folders of `dir` named like checkpoints, with their steps (unordered).
fn checkpoint_folders(dir: &Path) -> Result<Vec<(usize, PathBuf)>, TrainError> {
    Ok(folder_names(dir)?
        .into_iter()
        .filter_map(|name| parse_checkpoint_name(&name).map(|step| (step, dir.join(name))))
        .collect())
}

fn folder_names(dir: &Path) -> Result<Vec<String>, TrainError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| TrainError::io(dir, e))? {
        let entry = entry.map_err(|e| TrainError::io(dir, e))?;
        let is_dir = entry
            .file_type()
            .map_err(|e| TrainError::io(entry.path(), e))?
            .is_dir();
        if is_dir && let Some(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Whether `name` is a leftover temporary folder of a checkpoint write (`step-N.tmp-<pid>`).
fn is_interrupted_write(name: &str) -> bool {
    name.split_once(".tmp-").is_some_and(|(base, pid)| {
        parse_checkpoint_name(base).is_some() && pid.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Renames `path` to `<path>.invalid-<slug>` (with `-2`, `-3`, … if taken) and returns the new
/// path. Never deletes anything.
fn set_aside(path: &Path, slug: &str) -> Result<PathBuf, TrainError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = format!("{name}{INVALID_MARK}{slug}");
    let mut target = path.with_file_name(&base);
    let mut n = 2;
    while target.exists() {
        target = path.with_file_name(format!("{base}-{n}"));
        n += 1;
    }
    std::fs::rename(path, &target).map_err(|e| TrainError::io(path, e))?;
    Ok(target)
}

/// Verifies a checkpoint folder against its manifest: the manifest parses, has the known format
/// and this folder's step, and every file it lists exists with the listed size and SHA-256.
/// Files the manifest does not list are ignored.
pub fn verify_checkpoint(path: &Path) -> Result<CheckpointManifest, InvalidReason> {
    if !path.is_dir() {
        return Err(InvalidReason::Missing);
    }
    let manifest_path = path.join(MANIFEST_FILE);
    let text = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(InvalidReason::NoManifest);
        }
        Err(e) => {
            return Err(InvalidReason::Unreadable {
                file: MANIFEST_FILE.into(),
                message: e.to_string(),
            });
        }
    };
    let manifest: CheckpointManifest =
        serde_json::from_str(&text).map_err(|e| InvalidReason::BadManifest(e.to_string()))?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(InvalidReason::UnsupportedFormat {
            found: manifest.format,
        });
    }
    let folder_step = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_checkpoint_name);
    if let Some(folder_step) = folder_step
        && folder_step != manifest.step
    {
        return Err(InvalidReason::BadManifest(format!(
            "it is for step {}, the folder for step {folder_step}",
            manifest.step
        )));
    }
    let mut seen = HashSet::new();
    for entry in &manifest.files {
        if !is_plain_file_name(&entry.name) || entry.name == MANIFEST_FILE {
            return Err(InvalidReason::BadManifest(format!(
                "it lists {:?}, not a file of the folder",
                entry.name
            )));
        }
        if !seen.insert(entry.name.as_str()) {
            return Err(InvalidReason::BadManifest(format!(
                "it lists {} twice",
                entry.name
            )));
        }
    }
    if !seen.contains(STATE_FILE) {
        return Err(InvalidReason::BadManifest(format!(
            "it does not list {STATE_FILE}"
        )));
    }
    for entry in &manifest.files {
        verify_file(&path.join(&entry.name), entry)?;
    }
    Ok(manifest)
}

fn verify_file(path: &Path, entry: &ManifestEntry) -> Result<(), InvalidReason> {
    let unreadable = |e: std::io::Error| InvalidReason::Unreadable {
        file: entry.name.clone(),
        message: e.to_string(),
    };
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(InvalidReason::MissingFile {
                file: entry.name.clone(),
            });
        }
        Err(e) => return Err(unreadable(e)),
    };
    let found = file.metadata().map_err(unreadable)?.len();
    if found != entry.bytes {
        return Err(InvalidReason::WrongSize {
            file: entry.name.clone(),
            expected: entry.bytes,
            found,
        });
    }
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(unreadable)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    if hex(&hasher.finalize()) != entry.sha256.to_ascii_lowercase() {
        return Err(InvalidReason::DigestMismatch {
            file: entry.name.clone(),
        });
    }
    Ok(())
}

fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && Path::new(name).file_name() == Some(std::ffi::OsStr::new(name))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Flushes a folder's entries (renames into it) to disk; a no-op where folders cannot be opened.
fn sync_dir(dir: &Path) -> Result<(), TrainError> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| TrainError::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The newest checkpoint in `dir` that verifies ([`verify_checkpoint`]), scanning the `step-*`
/// folders newest-first by step, and everything newer that was skipped, with why. A `latest`
/// naming a folder that does not exist is reported as skipped. With [`Quarantine::MoveAside`]
/// invalid folders, and temporary folders of interrupted writes, are renamed
/// `<name>.invalid-<reason>` and `latest` is rewritten to name the chosen checkpoint; with
/// [`Quarantine::Leave`] nothing is touched. A missing `dir` has no checkpoint.
pub fn newest_valid_checkpoint(
    dir: &Path,
    quarantine: Quarantine,
) -> Result<CheckpointSelection, TrainError> {
    let mut selection = CheckpointSelection::default();
    if !dir.is_dir() {
        return Ok(selection);
    }
    let names = folder_names(dir)?;
    let latest_path = dir.join(LATEST_FILE);
    let latest = match std::fs::read_to_string(&latest_path) {
        Ok(text) => Some(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            selection.skipped.push(SkippedCheckpoint {
                path: latest_path.clone(),
                reason: InvalidReason::Unreadable {
                    file: LATEST_FILE.into(),
                    message: e.to_string(),
                },
                moved_to: None,
            });
            None
        }
    };
    if let Some(latest) = &latest
        && !names.contains(latest)
    {
        selection.skipped.push(SkippedCheckpoint {
            path: dir.join(latest),
            reason: InvalidReason::Missing,
            moved_to: None,
        });
    }
    if quarantine == Quarantine::MoveAside {
        let mut leftovers: Vec<&String> =
            names.iter().filter(|n| is_interrupted_write(n)).collect();
        leftovers.sort();
        for name in leftovers.into_iter().rev() {
            let path = dir.join(name);
            let reason = InvalidReason::InterruptedWrite;
            let moved_to = Some(set_aside(&path, reason.slug())?);
            selection.skipped.push(SkippedCheckpoint {
                path,
                reason,
                moved_to,
            });
        }
    }
    let mut candidates = checkpoint_folders(dir)?;
    candidates.sort_by_key(|(step, _)| std::cmp::Reverse(*step));
    for (_, path) in candidates {
        match verify_checkpoint(&path) {
            Ok(_) => {
                selection.checkpoint = Some(path);
                break;
            }
            Err(reason) => {
                let moved_to = match quarantine {
                    Quarantine::MoveAside => Some(set_aside(&path, reason.slug())?),
                    Quarantine::Leave => None,
                };
                selection.skipped.push(SkippedCheckpoint {
                    path,
                    reason,
                    moved_to,
                });
            }
        }
    }
    if quarantine == Quarantine::MoveAside
        && let Some(chosen) = &selection.checkpoint
        && let Some(name) = chosen.file_name().and_then(|n| n.to_str())
        && latest.as_deref() != Some(name)
    {
        write_atomic(&latest_path, name.as_bytes())?;
    }
    Ok(selection)
}

/// The newest valid checkpoint folder, if any, for read-only use (`eval`, `probe`): like
/// [`newest_valid_checkpoint`] with [`Quarantine::Leave`], printing each skipped folder and why on
/// stderr.
pub fn latest_checkpoint(dir: &Path) -> Result<Option<PathBuf>, TrainError> {
    let selection = newest_valid_checkpoint(dir, Quarantine::Leave)?;
    selection.print_skipped();
    Ok(selection.checkpoint)
}

/// The newest valid checkpoint folder to resume from, if any: like [`newest_valid_checkpoint`]
/// with [`Quarantine::MoveAside`], printing each skipped folder, why, and where it was moved on
/// stderr. Call it only while holding the run's [`RunLock`](super::lock::RunLock).
pub fn resume_checkpoint(dir: &Path) -> Result<Option<PathBuf>, TrainError> {
    let selection = newest_valid_checkpoint(dir, Quarantine::MoveAside)?;
    selection.print_skipped();
    Ok(selection.checkpoint)
}

/// Reads `state.json` of a checkpoint.
pub fn load_state(checkpoint: &Path) -> Result<TrainerState, TrainError> {
    let path = checkpoint.join(STATE_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint {
        path,
        message: e.to_string(),
    })
}

/// Loads a module's weights from `<checkpoint>/<name>.bpk`.
pub fn load_module<M: Module>(checkpoint: &Path, name: &str, module: M) -> Result<M, TrainError> {
    let path = checkpoint.join(format!("{name}.bpk"));
    module
        .try_load_file(&path)
        .map_err(|e| TrainError::Checkpoint {
            path,
            message: e.to_string(),
        })
}

/// Loads an optimiser's state from `<checkpoint>/<name>.bpk`.
pub fn load_optimizer(
    checkpoint: &Path,
    name: &str,
    optimizer: ModuleOptimizer,
) -> Result<ModuleOptimizer, TrainError> {
    let path = checkpoint.join(format!("{name}.bpk"));
    optimizer.load(&path).map_err(|e| TrainError::Checkpoint {
        path,
        message: e.to_string(),
    })
}

/// Object-safe serialisation of a module (Burn's record conversion consumes the module).
pub trait SaveModule {
    /// The weights as burnpack bytes (what `Module::save_file` would write).
    fn to_burnpack(&self) -> Result<burn::tensor::Bytes, burn::store::RecordError>;
}

impl<M: Module + Clone> SaveModule for M {
    fn to_burnpack(&self) -> Result<burn::tensor::Bytes, burn::store::RecordError> {
        self.clone().into_record().into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_names_round_trip_and_reject_look_alikes() {
        assert_eq!(parse_checkpoint_name("step-00000042"), Some(42));
        assert_eq!(parse_checkpoint_name("step-123456789"), Some(123_456_789));
        assert_eq!(parse_checkpoint_name("step-42"), None);
        assert_eq!(
            parse_checkpoint_name("step-00000042.invalid-truncated"),
            None
        );
        assert_eq!(parse_checkpoint_name("step-00000042.tmp-17"), None);
        assert!(is_interrupted_write("step-00000042.tmp-17"));
        assert!(!is_interrupted_write("step-00000042.replaced.tmp-x"));
    }

    #[test]
    fn reasons_have_file_name_slugs() {
        let truncated = InvalidReason::WrongSize {
            file: "a.bpk".into(),
            expected: 10,
            found: 3,
        };
        assert_eq!(truncated.slug(), "truncated");
        assert!(
            truncated
                .to_string()
                .contains("3 bytes, the manifest says 10")
        );
        let longer = InvalidReason::WrongSize {
            file: "a.bpk".into(),
            expected: 3,
            found: 10,
        };
        assert_eq!(longer.slug(), "wrong-size");
        assert!(
            InvalidReason::NoManifest
                .to_string()
                .contains("before checkpoint manifests")
        );
    }

    #[test]
    fn file_names_must_be_plain() {
        assert!(is_plain_file_name("vae.bpk"));
        for bad in ["", ".", "..", "a/b", "../x", "a\\b", "/abs"] {
            assert!(!is_plain_file_name(bad), "{bad:?}");
        }
    }
}
