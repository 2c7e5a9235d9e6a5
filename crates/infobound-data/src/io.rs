//! Atomic file writes: the one way this project writes a file.
//!
//! A file is written to a temporary name in the directory it will live in, flushed and
//! `fsync`ed, renamed over the destination (atomic on POSIX file systems when both names are in
//! the same directory), and then the directory itself is `fsync`ed so the rename survives a
//! crash. Readers therefore see either the old file or the complete new one, never a prefix.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::DataError;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, `fsync`, rename,
/// `fsync` of the directory).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes).map_err(io_error(path))?;
    file.commit()
}

/// A file being written under a temporary name; [`AtomicFile::commit`] moves it to its final
/// path, dropping it without committing deletes the temporary file.
///
/// For outputs too large to hold in memory (decompressed caches, generated benchmark inputs);
/// [`write_atomic`] covers the in-memory case.
#[derive(Debug)]
pub struct AtomicFile {
    writer: Option<BufWriter<File>>,
    temp: PathBuf,
    path: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file `.NAME.PID.N.tmp` next to `path` (same directory, hence same
    /// file system, which the final rename needs); `N` counts the files this process has
    /// started, so concurrent writers of one path never share a temporary file.
    pub fn create(path: &Path) -> Result<Self, DataError> {
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let file_name = path.file_name().ok_or_else(|| {
            DataError::InvalidArgument(format!("{} does not name a file", path.display()))
        })?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(file_name);
        temp_name.push(format!(
            ".{}.{}.tmp",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let temp = path.with_file_name(temp_name);
        let file = File::create(&temp).map_err(io_error(&temp))?;
        Ok(Self {
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
            temp,
            path: path.to_path_buf(),
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn writer(&mut self) -> std::io::Result<&mut BufWriter<File>> {
        self.writer
            .as_mut()
            .ok_or_else(|| std::io::Error::other("atomic file already committed"))
    }

    /// Flushes, `fsync`s, renames the temporary file to the final path and `fsync`s the
    /// directory.
    pub fn commit(mut self) -> Result<(), DataError> {
        let writer = self
            .writer
            .take()
            .ok_or_else(|| DataError::InvalidArgument("atomic file already committed".into()))?;
        let renamed = writer
            .into_inner()
            .map_err(|e| io_error(&self.temp)(e.into_error()))
            .and_then(|file| file.sync_all().map_err(io_error(&self.temp)))
            .and_then(|()| std::fs::rename(&self.temp, &self.path).map_err(io_error(&self.path)));
        if renamed.is_err() {
            // The temporary file is garbage; the error that made it so is what the caller needs.
            let _ = std::fs::remove_file(&self.temp);
        }
        renamed?;
        sync_parent(&self.path)
    }
}

/// `fsync`s the directory holding `path`, so a completed rename is durable. Only Unix can open
/// a directory for syncing; elsewhere the rename alone is what the platform offers.
fn sync_parent(path: &Path) -> Result<(), DataError> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error(parent))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            // Not committed: the temporary file is garbage, and there is no caller to tell.
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer()?.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer()?.flush()
    }
}

impl Seek for AtomicFile {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.writer()?.seek(pos)
    }
}
