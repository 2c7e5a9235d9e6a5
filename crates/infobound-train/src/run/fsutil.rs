//! Atomic file writes: a reader never sees a half-written file, and a crash leaves the old one.

use std::path::{Path, PathBuf};

use crate::TrainError;

/// Path of the temporary sibling used while `path` is being written.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `bytes` to `path` through a synced temporary file and a rename (the project's one
/// atomic writer, [`infobound_data::io::write_atomic`]), creating the folder first.
///
/// # Errors
/// [`TrainError::Io`] naming the folder or file that failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    }
    infobound_data::io::write_atomic(path, bytes).map_err(|e| match e {
        infobound_data::DataError::Io { path, source } => TrainError::Io { path, source },
        other => TrainError::Data(other),
    })
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| TrainError::Config(format!("cannot serialise {}: {e}", path.display())))?;
    write_atomic(path, text.as_bytes())
}
