//! Fault injection against the real `infobound` binary: training runs (VAE and self-supervised)
//! are killed with SIGKILL at chosen steps, stopped in the middle of a checkpoint write (the
//! `INFOBOUND_FAULT_STOP_CHECKPOINT_AFTER_FILES` hook), given a newest checkpoint that is
//! truncated, corrupted or missing a file, and run out of file space (`ulimit -f`, with SIGXFSZ
//! ignored so writes fail with `EFBIG`, and with it delivered so the process dies mid-write),
//! during a checkpoint and during `infobound report`. After each fault the run is resumed; at the
//! end of a chain of faults it must match an uninterrupted run of the same configuration exactly.
//!
//! What "matches" means (the most robust equality the files allow):
//! - `train_log.jsonl`: every row equal, value for value, except `steps_per_second` (a wall-clock
//!   rate). A resumed run drops the rows after its checkpoint and logs them again, so the final
//!   log holds rows written by every process of the chain: each resume's trajectory is checked;
//! - the final and the one older kept checkpoint: `state.json` byte for byte, and every tensor
//!   of every `.bpk` file (modules and optimiser state), by name, dtype, shape and raw bytes.
//!   Burnpack files also store random parameter ids (and optimiser entries are keyed by them),
//!   so the files are compared after decoding: ids are replaced by the module path they belong
//!   to.
//!
//! Invariants checked after every process: every `step-NNNNNNNN` folder either matches its
//! `manifest.json` (sizes and SHA-256 through `sha256sum`) or is one this test damaged and the
//! next resume has not reached yet; a damaged checkpoint ends up renamed `<name>.invalid-*` with
//! all its bytes (bytes lost = 0); no output says `panicked`.
//!
//! The short chains run in CI. `long_fault_campaign` (ignored; `cargo xtask faults`) runs
//! random chains until each family has taken `INFOBOUND_FAULT_KILLS` kills (default 20) and
//! writes the counts as JSON to `INFOBOUND_FAULT_REPORT`.
//!
//! Not covered: a NaN injected into a batch, for want of a hook in the trainer that could do it.
//!
//! Unix only: it uses signals, `sh`'s `ulimit -f` and `sha256sum`.
#![cfg(unix)]

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{TINY_SSL_NETWORK, tiny_vae};

const BIN: &str = env!("CARGO_BIN_EXE_infobound");
const HOOK: &str = "INFOBOUND_FAULT_STOP_CHECKPOINT_AFTER_FILES";
const SIGKILL: i32 = 9;
const SIGABRT: i32 = 6;
const SIGXFSZ: i32 = 25;

// ---------------------------------------------------------------------------------------------
// Burnpack decoding (just enough to compare tensors without their random parameter ids).

/// The subset of CBOR (RFC 8949) that burnpack metadata uses.
#[derive(Debug, Clone)]
enum Cbor {
    Uint(u64),
    Other,
    Text(String),
    Array(Vec<Cbor>),
    Map(Vec<(Cbor, Cbor)>),
}

impl Cbor {
    fn get(&self, key: &str) -> Option<&Cbor> {
        match self {
            Cbor::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Cbor::Text(t) if t == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

struct CborReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl CborReader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or("CBOR: truncated")?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn argument(&mut self, info: u8) -> Result<u64, String> {
        Ok(match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes(self.take(2)?.try_into().unwrap())),
            26 => u64::from(u32::from_be_bytes(self.take(4)?.try_into().unwrap())),
            27 => u64::from_be_bytes(self.take(8)?.try_into().unwrap()),
            _ => return Err(format!("CBOR: unsupported additional info {info}")),
        })
    }

    fn value(&mut self) -> Result<Cbor, String> {
        let initial = self.take(1)?[0];
        let (major, info) = (initial >> 5, initial & 31);
        if major == 7 {
            // Simple values and floats: skip their payload.
            let skip = match info {
                24 => 1,
                25 => 2,
                26 => 4,
                27 => 8,
                _ => 0,
            };
            self.take(skip)?;
            return Ok(Cbor::Other);
        }
        let arg = self.argument(info)?;
        let len = usize::try_from(arg).map_err(|e| e.to_string())?;
        Ok(match major {
            0 => Cbor::Uint(arg),
            1 => Cbor::Other,
            2 => {
                self.take(len)?;
                Cbor::Other
            }
            3 => {
                Cbor::Text(String::from_utf8(self.take(len)?.to_vec()).map_err(|e| e.to_string())?)
            }
            4 => Cbor::Array((0..len).map(|_| self.value()).collect::<Result<_, _>>()?),
            5 => Cbor::Map(
                (0..len)
                    .map(|_| Ok((self.value()?, self.value()?)))
                    .collect::<Result<_, String>>()?,
            ),
            _ => {
                // A tag: the tagged value follows.
                self.value()?;
                Cbor::Other
            }
        })
    }
}

/// One tensor of a burnpack file: name, dtype text, shape, parameter id, hash and length of its
/// raw bytes.
struct PackTensor {
    name: String,
    header: String,
    param_id: Option<u64>,
    digest: (u64, usize),
    /// Whether every value is finite (float tensors; true for the others).
    finite: bool,
}

fn digest(bytes: &[u8]) -> (u64, usize) {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    (hasher.finish(), bytes.len())
}

/// Decodes a burnpack file (format of burn-pack 0.22.1, `base.rs`: magic, u16 version, u32 LE
/// metadata size, CBOR metadata, data section aligned to 256 bytes).
fn read_burnpack(path: &Path) -> Result<Vec<PackTensor>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let size_field = bytes.get(6..10).ok_or("burnpack: short header")?;
    let meta_len = u32::from_le_bytes(size_field.try_into().unwrap()) as usize;
    let meta = bytes
        .get(10..10 + meta_len)
        .ok_or("burnpack: short metadata")?;
    let data_start = (10 + meta_len).div_ceil(256) * 256;
    let root = CborReader { bytes: meta, at: 0 }.value()?;
    let Some(Cbor::Map(tensors)) = root.get("tensors") else {
        return Err("burnpack: no tensor map".into());
    };
    let mut out = Vec::new();
    for (name, entry) in tensors {
        let Cbor::Text(name) = name else {
            return Err("burnpack: tensor name is not text".into());
        };
        let Some(Cbor::Array(offsets)) = entry.get("data_offsets") else {
            return Err(format!("burnpack: {name} has no offsets"));
        };
        let [Cbor::Uint(start), Cbor::Uint(end)] = offsets.as_slice() else {
            return Err(format!("burnpack: {name} has bad offsets"));
        };
        let range = data_start + *start as usize..data_start + *end as usize;
        let data = bytes
            .get(range)
            .ok_or(format!("burnpack: {name} out of file"))?;
        let dtype = format!("{:?}", entry.get("dtype"));
        out.push(PackTensor {
            name: name.clone(),
            finite: all_finite(&dtype, data),
            header: format!("{dtype} {:?}", entry.get("shape")),
            param_id: match entry.get("param_id") {
                Some(Cbor::Uint(id)) => Some(*id),
                _ => None,
            },
            digest: digest(data),
        });
    }
    Ok(out)
}

/// Whether the little-endian `data` of a tensor of `dtype` (the CBOR entry, printed) holds only
/// finite values; tensors of other than F32 / F64 count as finite.
fn all_finite(dtype: &str, data: &[u8]) -> bool {
    if dtype.contains("F32") {
        data.chunks_exact(4)
            .all(|b| f32::from_le_bytes(b.try_into().unwrap()).is_finite())
    } else if dtype.contains("F64") {
        data.chunks_exact(8)
            .all(|b| f64::from_le_bytes(b.try_into().unwrap()).is_finite())
    } else {
        true
    }
}

/// The tensors of a checkpoint's `.bpk` files that hold a non-finite value, as `file:tensor`.
fn non_finite_tensors(checkpoint: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut float_tensors = 0;
    for entry in std::fs::read_dir(checkpoint).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "bpk") {
            continue;
        }
        for t in read_burnpack(&path).unwrap() {
            float_tensors += usize::from(t.header.contains("F32") || t.header.contains("F64"));
            if !t.finite {
                found.push(format!("{}:{}", path.display(), t.name));
            }
        }
    }
    assert!(
        float_tensors > 0,
        "{}: no float tensor",
        checkpoint.display()
    );
    found
}

/// What a checkpoint holds, independent of parameter ids: `state.json` and, per `.bpk` file,
/// every tensor keyed by module path (optimiser entries `<param id>.<slot>` become
/// `<module file>:<path>.<slot>`).
fn fingerprint(checkpoint: &Path) -> Result<BTreeMap<String, String>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(checkpoint)
        .map_err(|e| format!("{}: {e}", checkpoint.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "bpk"))
        .collect();
    files.sort();
    let decoded: Vec<(String, Vec<PackTensor>)> = files
        .iter()
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            read_burnpack(p).map(|t| (stem, t))
        })
        .collect::<Result<_, _>>()?;
    let mut paths_of_id: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for (stem, tensors) in &decoded {
        for t in tensors {
            if let Some(id) = t.param_id
                && !stem.contains("optimizer")
            {
                paths_of_id
                    .entry(id)
                    .or_default()
                    .insert(format!("{stem}:{}", t.name));
            }
        }
    }
    let mut out = BTreeMap::new();
    for (stem, tensors) in decoded {
        for t in tensors {
            let key = match t.name.split_once('.') {
                Some((id, slot)) if stem.contains("optimizer") => {
                    let id: u64 = id.parse().map_err(|_| format!("{stem}: key {}", t.name))?;
                    let owners = paths_of_id
                        .get(&id)
                        .ok_or(format!("{stem}: no module holds parameter {id}"))?;
                    let owners: Vec<&str> = owners.iter().map(String::as_str).collect();
                    format!("{stem}/{}.{slot}", owners.join("|"))
                }
                _ => format!("{stem}/{}", t.name),
            };
            out.insert(key, format!("{} {:?}", t.header, t.digest));
        }
    }
    let state = std::fs::read_to_string(checkpoint.join("state.json"))
        .map_err(|e| format!("{}: state.json: {e}", checkpoint.display()))?;
    out.insert("state.json".into(), state);
    Ok(out)
}

/// The first few entries in which two fingerprints differ.
fn differences(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .take(6)
        .map(|k| format!("{k}: {:?} vs {:?}", a.get(k), b.get(k)))
        .collect()
}

/// The training log without wall-clock fields.
fn log_rows(run: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(run.join("train_log.jsonl")).unwrap_or_default();
    text.lines()
        .map(|line| {
            let mut row: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: bad log line {line:?}: {e}", run.display()));
            if let Some(map) = row.as_object_mut() {
                map.remove("steps_per_second");
            }
            row
        })
        .collect()
}

/// The step of the last log row (0 when none).
fn logged_step(run: &Path) -> usize {
    let text = std::fs::read_to_string(run.join("train_log.jsonl")).unwrap_or_default();
    text.lines()
        .rev()
        .find_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .and_then(|row| row["step"].as_u64())
        .map_or(0, |s| s as usize)
}

// ---------------------------------------------------------------------------------------------
// Checkpoint folders.

fn step_of(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("step-")?;
    (digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// `step-NNNNNNNN` folders, oldest first.
fn checkpoints(run: &Path) -> Vec<(usize, PathBuf)> {
    let mut out: Vec<(usize, PathBuf)> = std::fs::read_dir(run.join("checkpoints"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    step_of(&name).map(|s| (s, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Whether every file the manifest lists has its size and SHA-256 (checked with `sha256sum`,
/// independently of the code under test), and no other file is there.
fn manifest_holds(checkpoint: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(checkpoint.join("manifest.json")) else {
        return false;
    };
    let Ok(manifest) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    let Some(files) = manifest["files"].as_array() else {
        return false;
    };
    let mut listed = BTreeSet::from(["manifest.json".to_string()]);
    for file in files {
        let (Some(name), Some(bytes), Some(sha)) = (
            file["name"].as_str(),
            file["bytes"].as_u64(),
            file["sha256"].as_str(),
        ) else {
            return false;
        };
        let path = checkpoint.join(name);
        if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(bytes) {
            return false;
        }
        let out = Command::new("sha256sum")
            .arg(&path)
            .output()
            .expect("sha256sum runs");
        if !String::from_utf8_lossy(&out.stdout).starts_with(sha) {
            return false;
        }
        listed.insert(name.to_string());
    }
    let present: BTreeSet<String> = std::fs::read_dir(checkpoint)
        .map(|e| {
            e.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    present == listed
}

fn folder_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|e| {
            e.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// The faults.

/// One fault of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// SIGKILL once the log reaches this step.
    Kill(usize),
    /// The checkpoint hook: abort after this many files of the next checkpoint.
    StopInCheckpoint(usize),
    /// Cut the largest file of the newest checkpoint to half its length.
    Truncate,
    /// Flip one bit in the middle of the largest file of the newest checkpoint.
    Corrupt,
    /// Delete `state.json` (even count) or `manifest.json` (odd) of the newest checkpoint.
    DeleteFile(usize),
    /// Resume under a file-size limit below the largest checkpoint file, SIGXFSZ ignored: a
    /// checkpoint write fails with `EFBIG` (a full disk as the program sees it).
    DiskFullError,
    /// The same with SIGXFSZ delivered: the process dies in the middle of a write.
    DiskFullSignal,
}

impl Fault {
    fn kind(self) -> &'static str {
        match self {
            Fault::Kill(_) => "kill -9 at a step",
            Fault::StopInCheckpoint(_) => "abort inside a checkpoint write (hook)",
            Fault::Truncate => "newest checkpoint truncated",
            Fault::Corrupt => "newest checkpoint corrupted (one bit)",
            Fault::DeleteFile(_) => "newest checkpoint file deleted",
            Fault::DiskFullError => "file space exhausted during a checkpoint (EFBIG)",
            Fault::DiskFullSignal => "file space exhausted during a checkpoint (SIGXFSZ)",
        }
    }

    fn is_kill(self) -> bool {
        matches!(self, Fault::Kill(_) | Fault::StopInCheckpoint(_))
    }

    fn damages_checkpoint(self) -> bool {
        matches!(
            self,
            Fault::Truncate | Fault::Corrupt | Fault::DeleteFile(_)
        )
    }
}

/// A training family: how to start a fresh run, and its reference (uninterrupted) run.
struct Family {
    name: &'static str,
    /// Arguments after `train` for a fresh run, without `--out`.
    fresh: Vec<String>,
    steps: usize,
    checkpoint_every: usize,
    /// Files in one checkpoint, the manifest included (the hook's range is 0..=files).
    checkpoint_files: usize,
    /// Whether a resumed run must equal the uninterrupted one exactly. Off only where a known
    /// defect makes it differ (then everything else is still checked).
    exact: bool,
}

/// How a process ended.
#[derive(Debug)]
enum Ended {
    Exited(ExitStatus),
    KilledByUs,
}

/// Counts of one campaign, per fault kind.
#[derive(Debug, Default)]
struct Tally {
    /// kind -> (injected, survived)
    kinds: BTreeMap<String, (usize, usize)>,
    kills: usize,
    chains: usize,
    bytes_lost: u64,
    processes: usize,
    late_kills: usize,
    /// Temporary files (`.NAME.PID.N.tmp`, `NAME.tmp-PID`) a killed report left in the run folder.
    stray_temp_files: usize,
}

impl Tally {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "chains": self.chains,
            "processes": self.processes,
            "kills": self.kills,
            "late_kills_not_counted": self.late_kills,
            "bytes_lost": self.bytes_lost,
            "stray_temp_files_after_failed_report": self.stray_temp_files,
            "kinds": self.kinds.iter().map(|(k, (i, s))| {
                serde_json::json!({"kind": k, "injected": i, "survived": s})
            }).collect::<Vec<_>>(),
        })
    }
}

struct Lab {
    dir: tempfile::TempDir,
    family: Family,
    reference: PathBuf,
    reference_log: Vec<serde_json::Value>,
    /// Fingerprints of the reference's kept checkpoints, by step.
    reference_checkpoints: BTreeMap<usize, BTreeMap<String, String>>,
    /// Block count for `ulimit -f`: below the largest checkpoint file in 512- and 1024-byte
    /// units alike, above every log and report file.
    fsize_blocks: u64,
}

fn run_args(args: &[String]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("INFOBOUND_DEVICE")
        .env_remove(HOOK);
    command
}

/// The command under `sh -c 'ulimit -f N'`; `deliver` leaves SIGXFSZ at its default (death).
fn limited(args: &[String], blocks: u64, deliver: bool) -> Command {
    let trap = if deliver { "" } else { "trap '' XFSZ; " };
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("{trap}ulimit -f {blocks} && exec \"$0\" \"$@\""))
        .arg(BIN)
        .args(args)
        .env_remove("INFOBOUND_DEVICE")
        .env_remove(HOOK);
    command
}

fn signal_of(ended: &Ended) -> Option<i32> {
    match ended {
        Ended::Exited(status) => status.signal(),
        Ended::KilledByUs => Some(SIGKILL),
    }
}

impl Lab {
    fn new(family: Family) -> Lab {
        let dir = tempfile::tempdir().expect("tempdir");
        let reference = dir.path().join(format!("{}-reference", family.name));
        let mut args = vec!["train".to_string()];
        args.extend(family.fresh.iter().cloned());
        args.extend(["--out".into(), reference.to_str().unwrap().into()]);
        let out = run_args(&args).output().expect("binary runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reference_checkpoints: BTreeMap<_, _> = checkpoints(&reference)
            .into_iter()
            .map(|(step, path)| (step, fingerprint(&path).expect("reference checkpoint")))
            .collect();
        assert!(reference_checkpoints.contains_key(&family.steps));
        let largest = checkpoints(&reference)
            .iter()
            .flat_map(|(_, p)| std::fs::read_dir(p).unwrap().filter_map(|e| e.ok()))
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .max()
            .unwrap();
        let fsize_blocks = largest / 1024;
        let logs = ["train_log.jsonl", "report.md", "loss.svg", "config.toml"]
            .iter()
            .filter_map(|f| std::fs::metadata(reference.join(f)).ok())
            .map(|m| m.len())
            .max()
            .unwrap();
        assert!(
            fsize_blocks * 512 > 2 * logs,
            "checkpoint files ({largest} B) too small next to the logs ({logs} B) for a file-size limit between them"
        );
        Lab {
            reference_log: log_rows(&reference),
            reference,
            reference_checkpoints,
            fsize_blocks,
            family,
            dir,
        }
    }

    fn resume_args(&self, run: &Path) -> Vec<String> {
        [
            "train",
            "--resume",
            run.to_str().unwrap(),
            "--no-eval",
            "--quiet",
        ]
        .map(String::from)
        .to_vec()
    }

    /// Runs `command` to its end, or SIGKILLs it once the log of `run` reaches `kill_at`.
    fn launch(
        &self,
        mut command: Command,
        run: &Path,
        kill_at: Option<usize>,
        tally: &mut Tally,
    ) -> (Ended, String) {
        tally.processes += 1;
        let stderr_path = self.dir.path().join("stderr.txt");
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut child = command
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("binary starts");
        let started = Instant::now();
        // The log may still hold rows of an earlier process beyond the resumed checkpoint until
        // the new process cuts it: kill only once it has been seen below the target.
        let mut armed = false;
        let ended = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Ended::Exited(status);
            }
            let step = logged_step(run);
            armed |= kill_at.is_some_and(|target| step < target);
            if armed && kill_at.is_some_and(|target| step >= target) {
                child.kill().unwrap();
                child.wait().unwrap();
                break Ended::KilledByUs;
            }
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "{}: a process ran for 5 minutes",
                self.family.name
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        assert!(!stderr.contains("panicked"), "{stderr}");
        (ended, stderr)
    }

    /// Every `step-*` folder is a true checkpoint, except those in `damaged` (not yet reached by
    /// a resume).
    fn check_folders(&self, run: &Path, damaged: &[(String, u64)]) {
        for (step, path) in checkpoints(run) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if damaged.iter().any(|(d, _)| *d == name) {
                continue;
            }
            assert!(
                manifest_holds(&path),
                "{}: {} is accepted as a checkpoint but does not match its manifest",
                self.family.name,
                path.display()
            );
            if let Some(reference) = self.reference_checkpoints.get(&step)
                && self.family.exact
            {
                let found = fingerprint(&path).unwrap();
                assert!(
                    &found == reference,
                    "{}: checkpoint {} differs from the uninterrupted run's: {:?}",
                    self.family.name,
                    path.display(),
                    differences(&found, reference)
                );
            }
        }
    }

    /// Runs one chain: a fresh run killed at `first_kill`, then each fault followed by a resume,
    /// then resumes until done. Panics (failing the test) on any difference.
    fn chain(&self, index: usize, first_kill: usize, faults: &[Fault], tally: &mut Tally) {
        let name = self.family.name;
        let run = self.dir.path().join(format!("{name}-chain-{index}"));
        let mut args = vec!["train".to_string()];
        args.extend(self.family.fresh.iter().cloned());
        args.extend(["--out".into(), run.to_str().unwrap().into()]);
        let (ended, _) = self.launch(run_args(&args), &run, Some(first_kill), tally);
        assert!(
            matches!(ended, Ended::KilledByUs),
            "{name}: the first run ended before its kill"
        );
        tally.kills += 1;
        let mut injected: Vec<Fault> = vec![Fault::Kill(first_kill)];
        // Damaged folders the next resume must set aside: name and bytes.
        let mut damaged: Vec<(String, u64)> = Vec::new();
        let mut all_damaged: Vec<(String, u64)> = Vec::new();
        for &fault in faults {
            self.check_folders(&run, &damaged);
            if fault.damages_checkpoint() {
                let valid: Vec<(usize, PathBuf)> = checkpoints(&run)
                    .into_iter()
                    .filter(|(_, p)| manifest_holds(p))
                    .collect();
                // Damaging the only checkpoint leaves nothing to resume: not a fault to survive.
                if valid.len() < 2 {
                    continue;
                }
                let (_, newest) = valid.last().unwrap();
                damage(newest, fault);
                let entry = (
                    newest.file_name().unwrap().to_string_lossy().into_owned(),
                    folder_bytes(newest),
                );
                damaged.push(entry.clone());
                all_damaged.push(entry);
                injected.push(fault);
                continue;
            }
            let resume = self.resume_args(&run);
            let (ended, stderr) = match fault {
                Fault::Kill(step) => {
                    // After the checkpoint the resume starts from, so that it is a kill at a step.
                    let start = checkpoints(&run)
                        .into_iter()
                        .filter(|(_, p)| manifest_holds(p))
                        .map(|(s, _)| s)
                        .max()
                        .unwrap_or(0);
                    let target = step.max(start + 1);
                    self.launch(run_args(&resume), &run, Some(target), tally)
                }
                Fault::StopInCheckpoint(files) => {
                    let mut command = run_args(&resume);
                    command.env(HOOK, files.to_string());
                    self.launch(command, &run, None, tally)
                }
                Fault::DiskFullError => self.launch(
                    limited(&resume, self.fsize_blocks, false),
                    &run,
                    None,
                    tally,
                ),
                Fault::DiskFullSignal => {
                    self.launch(limited(&resume, self.fsize_blocks, true), &run, None, tally)
                }
                _ => unreachable!("damage faults are handled above"),
            };
            damaged.clear();
            match (fault, &ended) {
                (_, Ended::Exited(status)) if status.success() => {
                    // The process finished before the fault struck: nothing was injected.
                    tally.late_kills += 1;
                    break;
                }
                (Fault::Kill(_), Ended::KilledByUs) => {}
                (Fault::StopInCheckpoint(_), e) => {
                    assert_eq!(
                        signal_of(e),
                        Some(SIGABRT),
                        "{name}: hook did not abort: {stderr}"
                    )
                }
                (Fault::DiskFullError, Ended::Exited(status)) => {
                    assert!(
                        status.code().is_some(),
                        "{name}: EFBIG killed the process: {status}"
                    );
                    assert!(
                        stderr.contains("error: "),
                        "{name}: no error line: {stderr}"
                    );
                }
                (Fault::DiskFullSignal, e) => {
                    assert_eq!(signal_of(e), Some(SIGXFSZ), "{name}: {stderr}")
                }
                (f, e) => panic!("{name}: {f:?} ended as {e:?}: {stderr}"),
            }
            if fault.is_kill() {
                tally.kills += 1;
            }
            injected.push(fault);
        }
        // Resume to the end (a damaged newest checkpoint is set aside on the way).
        loop {
            self.check_folders(&run, &damaged);
            if logged_step(&run) >= self.family.steps
                && checkpoints(&run)
                    .last()
                    .is_some_and(|(s, p)| *s == self.family.steps && manifest_holds(p))
            {
                break;
            }
            let (ended, stderr) = self.launch(run_args(&self.resume_args(&run)), &run, None, tally);
            damaged.clear();
            assert!(
                matches!(ended, Ended::Exited(status) if status.success()),
                "{name}: the final resume failed: {stderr}"
            );
        }
        self.check_folders(&run, &[]);

        // Equal to the uninterrupted run (without `exact`: the same rows, steps and keys).
        let rows = log_rows(&run);
        if self.family.exact {
            assert_eq!(
                rows, self.reference_log,
                "{name}: chain {index} ({injected:?}) logged other values than the uninterrupted run"
            );
        } else {
            let shape = |rows: &[serde_json::Value]| -> Vec<(u64, Vec<String>)> {
                rows.iter()
                    .map(|r| {
                        let keys = r.as_object().unwrap().keys().cloned().collect();
                        (r["step"].as_u64().unwrap(), keys)
                    })
                    .collect()
            };
            assert_eq!(
                shape(&rows),
                shape(&self.reference_log),
                "{name}: chain {index}"
            );
        }
        let kept: BTreeMap<usize, BTreeMap<String, String>> = checkpoints(&run)
            .into_iter()
            .map(|(s, p)| (s, fingerprint(&p).unwrap()))
            .collect();
        if self.family.exact {
            assert_eq!(
                kept, self.reference_checkpoints,
                "{name}: chain {index} ({injected:?}) ended at other parameters"
            );
        } else {
            assert_eq!(
                kept.keys().collect::<Vec<_>>(),
                self.reference_checkpoints.keys().collect::<Vec<_>>()
            );
        }

        // Nothing the user had is gone: every damaged folder is there under an `.invalid-` name.
        let names: Vec<PathBuf> = std::fs::read_dir(run.join("checkpoints"))
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        for (folder, bytes) in &all_damaged {
            let kept = names.iter().find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&format!("{folder}.invalid-"))
                    && folder_bytes(p) == *bytes
            });
            if kept.is_none() {
                tally.bytes_lost += bytes;
            }
        }
        assert_eq!(
            tally.bytes_lost, 0,
            "{name}: damaged checkpoints were not kept: {names:?}"
        );

        tally.chains += 1;
        for fault in injected {
            let entry = tally.kinds.entry(fault.kind().to_string()).or_default();
            entry.0 += 1;
            entry.1 += 1;
        }
    }

    /// `infobound report` under a file-size limit of one block: it must fail with an error line,
    /// keep the previous report files byte for byte and leave no stray file; then succeed.
    fn report_disk_full(&self, tally: &mut Tally) {
        let run = &self.reference;
        let files = |run: &Path| -> BTreeMap<String, Vec<u8>> {
            std::fs::read_dir(run)
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name != ".lock" && !is_temporary(&name)
                })
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    (name, std::fs::read(e.path()).unwrap())
                })
                .collect()
        };
        let before = files(run);
        let fingerprints = self.reference_checkpoints.clone();
        let args = ["report", run.to_str().unwrap()].map(String::from).to_vec();
        for deliver in [false, true] {
            let (ended, stderr) = self.launch(limited(&args, 1, deliver), run, None, tally);
            match ended {
                Ended::Exited(status) if deliver => {
                    assert_eq!(status.signal(), Some(SIGXFSZ), "{stderr}")
                }
                Ended::Exited(status) => {
                    assert!(!status.success(), "the report fit in one block?");
                    assert!(stderr.starts_with("error: "), "{stderr}");
                    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
                }
                Ended::KilledByUs => unreachable!(),
            }
            let after = files(run);
            assert_eq!(
                before.keys().collect::<Vec<_>>(),
                after.keys().collect::<Vec<_>>(),
                "a failed report left or removed files"
            );
            assert!(before == after, "a failed report changed a file");
            tally.stray_temp_files += std::fs::read_dir(run)
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| is_temporary(&e.file_name().to_string_lossy()))
                .inspect(|e| {
                    let _ = std::fs::remove_file(e.path());
                })
                .count();
            let now: BTreeMap<_, _> = checkpoints(run)
                .into_iter()
                .map(|(s, p)| (s, fingerprint(&p).unwrap()))
                .collect();
            assert_eq!(now, fingerprints);
            let kind = if deliver {
                "file space exhausted during the report (SIGXFSZ)"
            } else {
                "file space exhausted during the report (EFBIG)"
            };
            let entry = tally.kinds.entry(kind.into()).or_default();
            entry.0 += 1;
            entry.1 += 1;
        }
        let out = run_args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Applies a damage fault to the checkpoint folder `path`.
fn damage(path: &Path, fault: Fault) {
    let largest = std::fs::read_dir(path)
        .unwrap()
        .filter_map(|e| e.ok())
        .max_by_key(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .unwrap()
        .path();
    match fault {
        Fault::Truncate => {
            let len = std::fs::metadata(&largest).unwrap().len();
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&largest)
                .unwrap();
            file.set_len(len / 2).unwrap();
        }
        Fault::Corrupt => {
            let mut bytes = std::fs::read(&largest).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x10;
            std::fs::write(&largest, bytes).unwrap();
        }
        Fault::DeleteFile(n) => {
            let file = if n % 2 == 0 {
                "state.json"
            } else {
                "manifest.json"
            };
            std::fs::remove_file(path.join(file)).unwrap();
        }
        _ => unreachable!("not a damage fault"),
    }
}

// ---------------------------------------------------------------------------------------------
// Families.

fn vae_family(dir: &Path) -> Family {
    let config = dir.join("faults-vae.toml");
    std::fs::write(&config, tiny_vae("faults", 11, 8, 30, 1, 5)).unwrap();
    Family {
        name: "vae",
        fresh: ["--config", config.to_str().unwrap(), "--quiet", "--no-eval"]
            .map(String::from)
            .to_vec(),
        steps: 30,
        checkpoint_every: 5,
        // vae.bpk, optimizer.bpk, state.json, manifest.json
        checkpoint_files: 4,
        exact: true,
    }
}

/// `mveb_quickstart` shrunk to 16 px, batch 8, a 4-wide network (as in `cli_ssl.rs`). `exact`:
/// whether to demand bit-identical results, which a resumed self-supervised run does not give
/// yet (its first resumed step logs the same loss but another `grad_norm`; docs/reliability.md).
fn ssl_family(exact: bool) -> Family {
    let mut fresh: Vec<String> = [
        "--preset",
        "mveb_quickstart",
        "--steps",
        "24",
        "--quiet",
        "--no-eval",
    ]
    .map(String::from)
    .to_vec();
    fresh.extend(TINY_SSL_NETWORK.map(String::from));
    for set in [
        "batch_size=8",
        "monitor_every=4",
        "log_every=1",
        "checkpoint_every=4",
        "objective.entropy_weight=0",
    ] {
        fresh.extend(["--set".to_string(), set.to_string()]);
    }
    Family {
        name: "ssl",
        fresh,
        steps: 24,
        checkpoint_every: 4,
        // online, target, probe, optimizer, probe_optimizer, state.json, manifest.json
        checkpoint_files: 7,
        exact,
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn a_vae_run_survives_kills_a_damaged_checkpoint_and_a_full_disk() {
    let scratch = tempfile::tempdir().unwrap();
    let lab = Lab::new(vae_family(scratch.path()));
    let mut tally = Tally::default();
    lab.chain(
        0,
        7,
        &[
            Fault::Kill(13),
            Fault::StopInCheckpoint(2),
            Fault::Kill(18),
            Fault::Truncate,
            Fault::Kill(24),
            Fault::Corrupt,
            Fault::DiskFullError,
            Fault::DiskFullSignal,
        ],
        &mut tally,
    );
    lab.report_disk_full(&mut tally);
    assert!(tally.kills >= 4, "{tally:?}");
    assert_eq!(tally.bytes_lost, 0);
}

/// A NaN in one step's input (the driver's `INFOBOUND_FAULT_NAN_AT_STEP` hook): the guard
/// skips that step and puts back the parameters of before it. Had a NaN reached the
/// parameters, every later step would be non-finite too and the run would end `Diverged`
/// after 20 of them; it must instead finish with exactly one skipped step, finite losses
/// after it, every checkpoint matching its manifest and holding finite tensors only — batch
/// norm's running statistics included, which the poisoned forward updates in place (SSL) and
/// a training-mode loss never reads, so only the checkpoint shows them.
fn nan_in_a_batch(family: &Family, scratch: &Path) {
    let run = scratch.join("poisoned");
    let mut args = vec!["train".to_string()];
    args.extend(family.fresh.iter().cloned());
    args.extend(["--out".into(), run.to_str().unwrap().into()]);
    let out = run_args(&args)
        .env("INFOBOUND_FAULT_NAN_AT_STEP", "3")
        .output()
        .expect("binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = log_rows(&run);
    let last = rows
        .iter()
        .rev()
        .find(|r| r["loss"].is_number())
        .expect("a logged row");
    assert_eq!(last["step"].as_u64(), Some(family.steps as u64), "{last}");
    assert_eq!(last["skipped_steps"].as_u64(), Some(1), "{last}");
    for row in rows
        .iter()
        .filter(|r| r["step"].as_u64().is_some_and(|s| s > 4) && r["loss"].is_number())
    {
        let loss = row["loss"].as_f64().unwrap_or(f64::NAN);
        assert!(loss.is_finite(), "{row}");
    }
    let kept = checkpoints(&run);
    assert!(!kept.is_empty());
    for (_, checkpoint) in kept {
        assert!(manifest_holds(&checkpoint), "{}", checkpoint.display());
        let poisoned = non_finite_tensors(&checkpoint);
        assert!(poisoned.is_empty(), "non-finite tensors: {poisoned:?}");
    }
}

#[test]
fn a_nan_in_a_vae_batch_is_skipped_and_never_reaches_the_parameters() {
    let scratch = tempfile::tempdir().unwrap();
    nan_in_a_batch(&vae_family(scratch.path()), scratch.path());
}

#[test]
fn a_nan_in_an_ssl_batch_is_skipped_and_never_reaches_parameters_or_batch_norm_statistics() {
    let scratch = tempfile::tempdir().unwrap();
    nan_in_a_batch(&ssl_family(false), scratch.path());
}

#[test]
fn an_ssl_run_survives_kills_and_a_damaged_checkpoint() {
    ssl_chain(false);
}

#[test]
fn an_ssl_run_resumes_bit_identically_after_faults() {
    ssl_chain(true);
}

fn ssl_chain(exact: bool) {
    let lab = Lab::new(ssl_family(exact));
    let mut tally = Tally::default();
    lab.chain(
        0,
        9,
        &[
            Fault::StopInCheckpoint(4),
            Fault::Kill(17),
            Fault::DeleteFile(0),
            Fault::DiskFullError,
        ],
        &mut tally,
    );
    assert!(tally.kills >= 2, "{tally:?}");
    assert_eq!(tally.bytes_lost, 0);
}

/// A small deterministic generator (SplitMix64) for the random campaign.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }
}

/// Random chains until each family has taken `INFOBOUND_FAULT_KILLS` kills; counts as JSON to
/// `INFOBOUND_FAULT_REPORT`. Run by `cargo xtask faults`.
#[test]
#[ignore = "minutes long: run by `cargo xtask faults`"]
fn long_fault_campaign() {
    let kills: usize = std::env::var("INFOBOUND_FAULT_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("INFOBOUND_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut rng = SplitMix(seed);
    let scratch = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut report = serde_json::Map::new();
    let exact_ssl = std::env::var("INFOBOUND_FAULT_SSL_EXACT").is_ok_and(|v| v == "1");
    for family in [vae_family(scratch.path()), ssl_family(exact_ssl)] {
        let lab = Lab::new(family);
        let mut tally = Tally::default();
        let (steps, every, files) = (
            lab.family.steps,
            lab.family.checkpoint_every,
            lab.family.checkpoint_files,
        );
        let mut index = 0;
        while tally.kills < kills {
            // A kill before the first checkpoint leaves a run that cannot be resumed (see the
            // report): the first kill comes after it.
            let first = rng.range(every + 1, steps);
            let mut faults = Vec::new();
            for _ in 0..rng.range(3, 7) {
                faults.push(match rng.range(0, 10) {
                    0..=2 => Fault::Kill(rng.range(every + 1, steps)),
                    3 | 4 => Fault::StopInCheckpoint(rng.range(0, files + 1)),
                    5 => Fault::Truncate,
                    6 => Fault::Corrupt,
                    7 => Fault::DeleteFile(rng.range(0, 2)),
                    8 => Fault::DiskFullError,
                    _ => Fault::DiskFullSignal,
                });
            }
            eprintln!(
                "{}: chain {index}: first kill at {first}, then {faults:?}",
                lab.family.name
            );
            lab.chain(index, first, &faults, &mut tally);
            index += 1;
        }
        lab.report_disk_full(&mut tally);
        eprintln!("{}: {tally:?}", lab.family.name);
        let mut counts = tally.to_json();
        counts["bit_identical_checked"] = lab.family.exact.into();
        report.insert(lab.family.name.into(), counts);
    }
    report.insert("seed".into(), seed.into());
    report.insert("seconds".into(), started.elapsed().as_secs_f64().into());
    if let Ok(path) = std::env::var("INFOBOUND_FAULT_REPORT") {
        std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    }
}

/// A writer's temporary file: `.NAME.PID.N.tmp` (the atomic writer) or `NAME.tmp-PID` (checkpoint
/// folders). A process killed by a signal while writing cannot remove it; the campaign counts
/// them.
fn is_temporary(name: &str) -> bool {
    name.contains(".tmp-") || (name.starts_with('.') && name.ends_with(".tmp"))
}
