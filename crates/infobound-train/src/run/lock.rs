//! One writer per run folder: an operating-system advisory lock on `<run>/.lock`.
//!
//! [`RunLock::acquire`] takes an exclusive, non-blocking lock on the file (`flock` on Unix,
//! `LockFileEx` on Windows, through `std::fs::File::try_lock`) before the run writes anything
//! else, and holds it until the [`RunLock`] is dropped. Because the operating system releases the
//! lock when the holder's process ends — however it ends, `kill -9` included — a lock left by a
//! dead process never blocks; there is no PID file to go stale. After acquiring, the holder writes
//! who it is ([`LockHolder`]: pid, host, start time) into the file, so a second writer's error can
//! name it. (Advisory locks on network file systems are only as good as the file system's
//! support for them.)

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::TrainError;

/// Name of the lock file inside a run folder.
pub const LOCK_FILE: &str = ".lock";

/// Who holds a run's lock, as written into the lock file by the holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// When the lock was taken, UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub since: String,
}

impl LockHolder {
    fn current() -> Self {
        Self {
            pid: std::process::id(),
            host: host_name(),
            since: utc_timestamp(SystemTime::now()),
        }
    }
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "process {} on {} (since {})",
            self.pid, self.host, self.since
        )
    }
}

/// The exclusive lock on a run folder; released when dropped.
#[derive(Debug)]
pub struct RunLock {
    /// Holds the lock: closing the file releases it.
    file: File,
    path: PathBuf,
    holder: LockHolder,
}

impl RunLock {
    /// Creates `run_root` if needed and takes the lock on `<run_root>/.lock` without waiting.
    /// Fails with [`TrainError::RunLocked`], naming the holder, when another open of the file —
    /// in this process or another — holds it.
    pub fn acquire(run_root: &Path) -> Result<Self, TrainError> {
        std::fs::create_dir_all(run_root).map_err(|e| TrainError::io(run_root, e))?;
        let path = run_root.join(LOCK_FILE);
        // Not truncated on open: the holder's identity must survive a failed attempt.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| TrainError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(TrainError::RunLocked {
                    run: run_root.to_path_buf(),
                    holder: read_holder(&path),
                });
            }
            Err(TryLockError::Error(e)) => return Err(TrainError::io(&path, e)),
        }
        let holder = LockHolder::current();
        let text = serde_json::to_string(&holder).map_err(|e| TrainError::Checkpoint {
            path: path.clone(),
            message: e.to_string(),
        })?;
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(format!("{text}\n").as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(|e| TrainError::io(&path, e))?;
        Ok(Self { file, path, holder })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This process, as written into the lock file.
    pub fn holder(&self) -> &LockHolder {
        &self.holder
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes the release immediate
        // even if the descriptor was duplicated. An error here leaves the lock to the close.
        let _ = self.file.unlock();
    }
}

/// The holder's identity from the lock file; `None` when it has not written it yet (or the file
/// was written by something else).
fn read_holder(path: &Path) -> Option<LockHolder> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(text.trim()).ok()
}

/// This machine's name, from the kernel or the environment; `unknown host` if none says.
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .chain(
            ["HOSTNAME", "COMPUTERNAME"]
                .iter()
                .filter_map(|v| std::env::var(v).ok()),
        )
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown host".into())
}

/// `time` as `YYYY-MM-DDTHH:MM:SSZ` (UTC). Days to civil date by H. Hinnant's `civil_from_days`
/// ("chrono-Compatible Low-Level Date Algorithms", <https://howardhinnant.github.io/date_algorithms.html>).
fn utc_timestamp(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_match_known_dates() {
        let at = |secs: u64| utc_timestamp(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        // 2000-02-29 (a leap day of a century leap year) 12:34:56 UTC.
        assert_eq!(at(951_827_696), "2000-02-29T12:34:56Z");
        // 2100-03-01 00:00:00 UTC (2100 is not a leap year).
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z");
    }
}
