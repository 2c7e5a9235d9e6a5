//! Atomic file writes: a reader never sees a half-written file, and a crash leaves the old one.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::TrainError;

/// Path of the temporary sibling used while `path` is being written.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    }
    let tmp = temp_path(path);
    let mut file = std::fs::File::create(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| TrainError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| TrainError::Config(format!("cannot serialise {}: {e}", path.display())))?;
    write_atomic(path, text.as_bytes())
}
