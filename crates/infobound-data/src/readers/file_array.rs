//! `.npy` arrays read range by range from disk, so a dataset larger than memory (MPI3D's
//! 12.7 GB `images`) costs only the bytes of the images a batch asks for.
//!
//! Reads are positional (`pread`), not memory-mapped: pages of a mapping count towards the
//! process's resident set once touched (and the kernel maps cached neighbours of every faulting
//! page along with it), so random sampling over a mapped 12.7 GB file grows the resident set
//! towards the file size; positional reads go through the page cache, which the kernel reclaims
//! under pressure and which is not part of the process. The measurement is in the crate README.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::npy::{self, NpyElement, NpyHeader};
use crate::DataError;

/// Bytes read per step by [`FileArray::for_each_chunk`].
const CHUNK_BYTES: usize = 1 << 20;

/// A C-order `.npy` array inside a file: its header and the byte offset of element 0. Reading
/// never loads more than the requested range.
#[derive(Debug)]
pub struct FileArray {
    file: File,
    path: PathBuf,
    what: String,
    header: NpyHeader,
    data_start: u64,
    data_len: usize,
}

impl FileArray {
    /// Opens a standalone `.npy` file, checking that its length is exactly header + Π shape ·
    /// item size.
    pub fn open_npy(path: &Path) -> Result<Self, DataError> {
        Self::open_at(path, 0, None, "array")
    }

    /// Opens the `.npy` stream starting at byte `start` of `path` (a stored `.npz` member, or a
    /// decompressed cache). `stream_len` is the stream's length (`None`: to the end of the file);
    /// `what` names the array in errors.
    pub(crate) fn open_at(
        path: &Path,
        start: u64,
        stream_len: Option<u64>,
        what: &str,
    ) -> Result<Self, DataError> {
        let io = |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let available = match stream_len {
            Some(len) if start.saturating_add(len) <= file_len => len,
            Some(len) => {
                return Err(DataError::InvalidFile {
                    path: path.to_path_buf(),
                    message: format!(
                        "{what}: {len} bytes at offset {start} run past the end of the {file_len}-byte file (truncated)"
                    ),
                });
            }
            None => file_len.saturating_sub(start),
        };
        let mut reader = PositionalReader {
            file: &file,
            position: start,
        };
        let header = npy::read_header(&mut reader, available, path, what)?;
        let data_len = header.data_len().ok_or_else(|| DataError::InvalidFile {
            path: path.to_path_buf(),
            message: format!("{what}: shape {:?} overflows", header.shape),
        })?;
        let after_header = available - header.data_offset as u64;
        if data_len as u64 != after_header {
            return Err(DataError::InvalidFile {
                path: path.to_path_buf(),
                message: format!(
                    "{what}: shape {:?} of {} needs {data_len} data bytes but {after_header} follow the header{}",
                    header.shape,
                    header.dtype.descr(),
                    if (data_len as u64) > after_header {
                        " (truncated)"
                    } else {
                        ""
                    }
                ),
            });
        }
        let data_start = start + header.data_offset as u64;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            what: what.to_string(),
            header,
            data_start,
            data_len,
        })
    }

    /// The parsed `.npy` header (dtype and shape).
    pub fn header(&self) -> &NpyHeader {
        &self.header
    }

    /// The file the bytes are read from (the archive itself, or its decompressed cache).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Byte offset of element 0 within [`FileArray::path`].
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// Number of data bytes, Π shape · item size.
    pub fn data_len(&self) -> usize {
        self.data_len
    }

    /// Fills `out` with data bytes `start..start + out.len()` (element bytes in C order).
    pub fn read_bytes(&self, start: usize, out: &mut [u8]) -> Result<(), DataError> {
        let end = start.checked_add(out.len()).filter(|&e| e <= self.data_len);
        if end.is_none() {
            return Err(DataError::InvalidArgument(format!(
                "{}: bytes {start}..{} of {} are outside its {} data bytes",
                self.path.display(),
                start.saturating_add(out.len()),
                self.what,
                self.data_len
            )));
        }
        read_exact_at(&self.file, out, self.data_start + start as u64)
            .map_err(|e| npy::read_error(&self.path, &self.what, e))
    }

    /// Reads the whole array as `T` (for small arrays such as labels); the dtype must be
    /// `T::DTYPE`.
    pub fn read_all<T: NpyElement>(&self) -> Result<Vec<T>, DataError> {
        self.check_dtype::<T>()?;
        let mut out = Vec::with_capacity(self.data_len / T::DTYPE.item_size());
        let mut valid = true;
        self.for_each_chunk(|_, bytes| {
            valid &= T::decode_into(bytes, &mut out);
            Ok(())
        })?;
        if !valid {
            return Err(DataError::InvalidFile {
                path: self.path.clone(),
                message: format!("{}: boolean element is neither 0 nor 1", self.what),
            });
        }
        Ok(out)
    }

    /// Fails unless the stored dtype is `T::DTYPE`.
    pub fn check_dtype<T: NpyElement>(&self) -> Result<(), DataError> {
        if self.header.dtype != T::DTYPE {
            return Err(DataError::InvalidFile {
                path: self.path.clone(),
                message: format!(
                    "{}: expected dtype {}, found {}",
                    self.what,
                    T::DTYPE.descr(),
                    self.header.dtype.descr()
                ),
            });
        }
        Ok(())
    }

    /// Streams the data in 1 MiB chunks of whole elements through `visit(byte_offset, bytes)`;
    /// a message returned by `visit` becomes an [`DataError::InvalidFile`] naming the array.
    pub fn for_each_chunk(
        &self,
        mut visit: impl FnMut(usize, &[u8]) -> Result<(), String>,
    ) -> Result<(), DataError> {
        let item = self.header.dtype.item_size();
        let mut buffer = vec![0u8; (CHUNK_BYTES / item * item).min(self.data_len)];
        let mut offset = 0;
        while offset < self.data_len {
            let take = buffer.len().min(self.data_len - offset);
            self.read_bytes(offset, &mut buffer[..take])?;
            visit(offset, &buffer[..take]).map_err(|message| DataError::InvalidFile {
                path: self.path.clone(),
                message: format!("{}: {message}", self.what),
            })?;
            offset += take;
        }
        Ok(())
    }
}

/// A `Read` over a file from a position, for parsing headers with the stream parser.
struct PositionalReader<'a> {
    file: &'a File,
    position: u64,
}

impl std::io::Read for PositionalReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        read_exact_at(self.file, buf, self.position)?;
        self.position += buf.len() as u64;
        Ok(buf.len())
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
