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

use super::file_array::FileArray;
use super::npy::{self, DType, NpyArray, NpyElement, NpyHeader};
use crate::DataError;
use crate::io::AtomicFile;

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

    /// Array `key` as a [`FileArray`]: its elements are read range by range, never loaded
    /// whole.
    ///
    /// A stored (uncompressed, `np.savez`) member is read in place inside the archive. A deflated
    /// (`np.savez_compressed`) member is decompressed once into the cache file
    /// `DIR/ARCHIVE_NAME.KEY.CRC32.npy`, where `DIR` is `cache_dir` or, when `None`, the
    /// archive's own directory, and `CRC32` is the member's zip checksum (so a different archive
    /// under the same name gets a different cache). The cache is written atomically
    /// ([`crate::io::AtomicFile`]) after the zip CRC-32 of the whole member has been verified; an
    /// existing cache whose header and length agree with the member is reused as is.
    pub fn file_array(
        &mut self,
        key: &str,
        cache_dir: Option<&Path>,
    ) -> Result<FileArray, DataError> {
        let what = format!("array `{key}`");
        let path = self.path.clone();
        let (mut entry, size) = self.entry(key)?;
        if entry.compression() == CompressionMethod::Stored {
            let start = entry.data_start();
            drop(entry);
            return FileArray::open_at(&path, start, Some(size), &what);
        }
        // The header is checked before anything is decompressed to disk.
        let header = npy::read_header(&mut entry, size, &path, &what)?;
        let cache = cache_path(&path, key, entry.crc32(), cache_dir)?;
        drop(entry);
        if let Ok(cached) = FileArray::open_at(&cache, 0, None, &what)
            && cached.header().dtype == header.dtype
            && cached.header().shape == header.shape
        {
            return Ok(cached);
        }
        let (mut entry, size) = self.entry(key)?;
        let mut out = AtomicFile::create(&cache)?;
        let copied = std::io::copy(&mut entry, &mut out).map_err(|e| {
            // Reading fails on corrupt deflate data or a CRC-32 mismatch; writing on the cache.
            match e.kind() {
                std::io::ErrorKind::InvalidData
                | std::io::ErrorKind::InvalidInput
                | std::io::ErrorKind::UnexpectedEof => npy::read_error(&path, &what, e),
                _ => DataError::Io {
                    path: cache.clone(),
                    source: e,
                },
            }
        })?;
        if copied != size {
            return Err(DataError::InvalidFile {
                path,
                message: format!(
                    "{what}: decompressed to {copied} bytes but the zip header declares {size}"
                ),
            });
        }
        out.commit()?;
        FileArray::open_at(&cache, 0, None, &what)
    }
}

/// `DIR/ARCHIVE_NAME.KEY.CRC32.npy` (see [`NpzArchive::file_array`]).
fn cache_path(
    archive: &Path,
    key: &str,
    crc: u32,
    cache_dir: Option<&Path>,
) -> Result<PathBuf, DataError> {
    let name = archive.file_name().ok_or_else(|| {
        DataError::InvalidArgument(format!("{} does not name a file", archive.display()))
    })?;
    if key.contains(['/', '\\']) || key.starts_with('.') {
        return Err(DataError::InvalidFile {
            path: archive.to_path_buf(),
            message: format!("array key `{key}` cannot name a cache file"),
        });
    }
    let dir = match cache_dir {
        Some(dir) => dir.to_path_buf(),
        None => archive.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let mut file_name = name.to_os_string();
    file_name.push(format!(".{key}.{crc:08x}.npy"));
    Ok(dir.join(file_name))
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

/// Writes `.npz` archives into any seekable writer (used to build fixtures and benchmark inputs,
/// and to export arrays); [`NpzFileWriter`] writes one to a path atomically.
pub struct NpzWriter<W: Write + Seek> {
    writer: zip::ZipWriter<W>,
    compression: NpzCompression,
    path: PathBuf,
}

impl NpzWriter<AtomicFile> {
    /// Starts the archive at `path`, written atomically: nothing appears at `path` until
    /// [`NpzFileWriter::finish`] succeeds.
    pub fn create(path: &Path, compression: NpzCompression) -> Result<NpzFileWriter, DataError> {
        let file = AtomicFile::create(path)?;
        Ok(NpzFileWriter {
            inner: Self::new(file, compression, path),
        })
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

    fn io_error(&self) -> impl FnOnce(std::io::Error) -> DataError + '_ {
        |source| DataError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn start_entry(&mut self, name: &str, len: u64) -> Result<(), DataError> {
        let method = match self.compression {
            NpzCompression::Stored => CompressionMethod::Stored,
            NpzCompression::Deflated => CompressionMethod::Deflated,
        };
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(len >= u64::from(u32::MAX));
        self.writer
            .start_file(name, options)
            .map_err(|e| self.write_error(e))
    }

    /// Adds `array` as entry `KEY.npy`.
    pub fn add<T: NpyElement>(&mut self, key: &str, array: &NpyArray<T>) -> Result<(), DataError> {
        let bytes = npy::encode_npy(array);
        self.add_raw(key, &bytes)
    }

    /// Adds entry `KEY.npy` holding `bytes` as they are, which need not be a valid `.npy`
    /// stream (fixtures use it for members the readers must skip, such as dSprites' pickled
    /// `metadata`).
    pub fn add_raw(&mut self, key: &str, bytes: &[u8]) -> Result<(), DataError> {
        self.start_entry(&format!("{key}.npy"), bytes.len() as u64)?;
        self.writer.write_all(bytes).map_err(self.io_error())
    }

    /// Adds entry `KEY.npy` of `dtype` and `shape` whose C-order element bytes `fill` streams
    /// into the writer it is given, for arrays too large to hold in memory. `fill` must write
    /// exactly Π shape · item size bytes.
    pub fn add_streamed(
        &mut self,
        key: &str,
        dtype: DType,
        shape: &[usize],
        fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<(), DataError> {
        let header = npy::encode_header(dtype, shape);
        let data_len = shape
            .iter()
            .try_fold(dtype.item_size(), |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| DataError::InvalidArgument(format!("shape {shape:?} overflows")))?;
        self.start_entry(&format!("{key}.npy"), (header.len() + data_len) as u64)?;
        self.writer.write_all(&header).map_err(self.io_error())?;
        let mut counting = CountingWriter {
            inner: &mut self.writer,
            written: 0,
        };
        let filled = fill(&mut counting);
        let written = counting.written;
        filled.map_err(self.io_error())?;
        if written != data_len {
            return Err(DataError::InvalidArgument(format!(
                "array `{key}` of shape {shape:?} needs {data_len} data bytes, {written} were written"
            )));
        }
        Ok(())
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

/// An `.npz` archive being written to a path atomically ([`NpzWriter::create`]).
pub struct NpzFileWriter {
    inner: NpzWriter<AtomicFile>,
}

impl NpzFileWriter {
    /// Adds `array` as entry `KEY.npy` ([`NpzWriter::add`]).
    pub fn add<T: NpyElement>(&mut self, key: &str, array: &NpyArray<T>) -> Result<(), DataError> {
        self.inner.add(key, array)
    }

    /// Adds raw entry `KEY.npy` ([`NpzWriter::add_raw`]).
    pub fn add_raw(&mut self, key: &str, bytes: &[u8]) -> Result<(), DataError> {
        self.inner.add_raw(key, bytes)
    }

    /// Adds a streamed entry ([`NpzWriter::add_streamed`]).
    pub fn add_streamed(
        &mut self,
        key: &str,
        dtype: DType,
        shape: &[usize],
        fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<(), DataError> {
        self.inner.add_streamed(key, dtype, shape, fill)
    }

    /// Writes the central directory and moves the finished archive to its path.
    pub fn finish(self) -> Result<(), DataError> {
        self.inner.finish()?.commit()
    }
}

struct CountingWriter<'a, W: Write> {
    inner: &'a mut W,
    written: usize,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
