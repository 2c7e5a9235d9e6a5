//! `.npz` archives: a zip file whose entries `KEY.npy` are `.npy` arrays (numpy's `np.savez`
//! stores them, `np.savez_compressed` deflates them).
//!
//! Entries must be stored or deflated. Before any array is allocated, the size its header claims
//! is checked against the entry's declared uncompressed size, and that size against what its
//! compressed bytes can possibly expand to (deflate's maximum ratio is 1032:1), so a forged header
//! or zip directory cannot trigger a huge allocation. Reading an entry to its end also checks the
//! zip CRC-32.

use std::fs::File;
use std::io::{BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};

use zip::CompressionMethod;
use zip::result::ZipError;

use super::npy::{self, NpyArray, NpyElement, NpyHeader};
use crate::DataError;

/// Upper bound of deflate's expansion: a 258-byte match costs at least 2 bits, so one compressed
/// byte yields at most 1032 output bytes (zlib's technical notes).
const MAX_DEFLATE_RATIO: u64 = 1032;

/// An open `.npz` archive.
#[derive(Debug)]
pub struct NpzArchive<R> {
    archive: zip::ZipArchive<R>,
    path: PathBuf,
    archive_len: u64,
}

impl NpzArchive<BufReader<File>> {
    /// Opens the archive at `path`.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let file = File::open(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let len = file
            .metadata()
            .map_err(|source| DataError::Io {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        Self::from_reader(BufReader::new(file), len, path)
    }
}

impl<R: Read + Seek> NpzArchive<R> {
    /// Wraps a reader over `len` bytes of archive; `path` names it in error messages.
    pub fn from_reader(reader: R, len: u64, path: &Path) -> Result<Self, DataError> {
        let archive = zip::ZipArchive::new(reader).map_err(|e| zip_error(path, "archive", e))?;
        Ok(Self {
            archive,
            path: path.to_path_buf(),
            archive_len: len,
        })
    }

    /// The file this archive was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Array keys (entry names without the `.npy` suffix), in archive order.
    pub fn keys(&self) -> Vec<String> {
        self.archive
            .file_names()
            .map(|n| n.strip_suffix(".npy").unwrap_or(n).to_string())
            .collect()
    }

    fn entry_index(&self, key: &str) -> Result<usize, DataError> {
        self.archive
            .index_for_name(&format!("{key}.npy"))
            .or_else(|| self.archive.index_for_name(key))
            .ok_or_else(|| DataError::InvalidFile {
                path: self.path.clone(),
                message: format!("missing array `{key}` (found: {})", self.keys().join(", ")),
            })
    }

    /// Opens entry `key`, checks its zip metadata and returns it with its declared size.
    fn entry(&mut self, key: &str) -> Result<(zip::read::ZipFile<'_, R>, u64), DataError> {
        let index = self.entry_index(key)?;
        let what = format!("array `{key}`");
        let path = self.path.clone();
        let archive_len = self.archive_len;
        let entry = self
            .archive
            .by_index(index)
            .map_err(|e| zip_error(&path, &what, e))?;
        let size = entry.size();
        let compressed = entry.compressed_size();
        let bound = match entry.compression() {
            CompressionMethod::Stored => compressed,
            CompressionMethod::Deflated => compressed.saturating_mul(MAX_DEFLATE_RATIO),
            other => {
                return Err(DataError::InvalidFile {
                    path,
                    message: format!(
                        "{what}: unsupported compression {other} (expected stored or deflated)"
                    ),
                });
            }
        };
        if compressed > archive_len || size > bound {
            return Err(DataError::InvalidFile {
                path,
                message: format!(
                    "{what}: zip entry claims {size} bytes from {compressed} compressed bytes in a {archive_len}-byte file"
                ),
            });
        }
        Ok((entry, size))
    }

    /// The header of array `key`, read without loading its data (to check shapes cheaply).
    pub fn header(&mut self, key: &str) -> Result<NpyHeader, DataError> {
        let path = self.path.clone();
        let what = format!("array `{key}`");
        let (mut entry, size) = self.entry(key)?;
        npy::read_header(&mut entry, size, &path, &what)
    }

    /// Reads array `key` as element type `T` (the stored dtype must be `T::DTYPE`).
    pub fn read<T: NpyElement>(&mut self, key: &str) -> Result<NpyArray<T>, DataError> {
        let path = self.path.clone();
        let what = format!("array `{key}`");
        let (mut entry, size) = self.entry(key)?;
        let array = npy::read_npy(&mut entry, size, &path, &what)?;
        // Reading past the end makes the zip reader verify the CRC-32 and exposes entries whose
        // stream is longer than declared.
        let mut probe = [0u8; 1];
        match entry.read(&mut probe) {
            Ok(0) => Ok(array),
            Ok(_) => Err(DataError::InvalidFile {
                path,
                message: format!("{what}: entry holds more bytes than its zip header declares"),
            }),
            Err(e) => Err(npy::read_error(&path, &what, e)),
        }
    }
}

fn zip_error(path: &Path, what: &str, err: ZipError) -> DataError {
    match err {
        ZipError::Io(source)
            if !matches!(
                source.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
            ) =>
        {
            DataError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
        other => DataError::InvalidFile {
            path: path.to_path_buf(),
            message: format!("{what}: not a valid zip/npz archive ({other})"),
        },
    }
}

/// How [`NpzWriter`] stores entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpzCompression {
    /// Uncompressed, like `np.savez`.
    Stored,
    /// Deflated, like `np.savez_compressed`.
    Deflated,
}

/// Writes `.npz` archives (used to build fixtures and benchmark inputs, and to export arrays).
pub struct NpzWriter<W: Write + Seek> {
    writer: zip::ZipWriter<W>,
    compression: NpzCompression,
    path: PathBuf,
}

impl NpzWriter<File> {
    /// Creates (truncates) the archive at `path`.
    pub fn create(path: &Path, compression: NpzCompression) -> Result<Self, DataError> {
        let file = File::create(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::new(file, compression, path))
    }
}

impl<W: Write + Seek> NpzWriter<W> {
    /// Writes an archive into `writer`; `path` names it in error messages.
    pub fn new(writer: W, compression: NpzCompression, path: &Path) -> Self {
        Self {
            writer: zip::ZipWriter::new(writer),
            compression,
            path: path.to_path_buf(),
        }
    }

    /// Adds `array` as entry `KEY.npy`.
    pub fn add<T: NpyElement>(&mut self, key: &str, array: &NpyArray<T>) -> Result<(), DataError> {
        let method = match self.compression {
            NpzCompression::Stored => CompressionMethod::Stored,
            NpzCompression::Deflated => CompressionMethod::Deflated,
        };
        let bytes = npy::encode_npy(array);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(bytes.len() as u64 >= u64::from(u32::MAX));
        self.writer
            .start_file(format!("{key}.npy"), options)
            .map_err(|e| self.write_error(e))?;
        self.writer
            .write_all(&bytes)
            .map_err(|source| DataError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Writes the central directory and returns the underlying writer.
    pub fn finish(self) -> Result<W, DataError> {
        let path = self.path.clone();
        self.writer.finish().map_err(|e| match e {
            ZipError::Io(source) => DataError::Io { path, source },
            other => DataError::InvalidArgument(format!("cannot finish npz archive: {other}")),
        })
    }

    fn write_error(&self, err: ZipError) -> DataError {
        match err {
            ZipError::Io(source) => DataError::Io {
                path: self.path.clone(),
                source,
            },
            other => DataError::InvalidArgument(format!("cannot write npz entry: {other}")),
        }
    }
}
