//! SHA-256 file checksums (FIPS 180-4) checked against the expected digests of the manifests.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::DataError;

/// Outcome of comparing a file's SHA-256 with an expected digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChecksumStatus {
    /// No expected digest was given, so the file was not hashed.
    NotChecked,
    /// The digest matches.
    Matches,
    /// The digest differs.
    Mismatch {
        /// Expected lower-case hex digest.
        expected: String,
        /// Computed lower-case hex digest.
        actual: String,
    },
}

/// What a reader noticed while loading a file without failing on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadReport {
    /// The file that was read.
    pub path: PathBuf,
    /// Checksum comparison.
    pub checksum: ChecksumStatus,
}

impl ReadReport {
    /// Human-readable warnings (empty when nothing is wrong); callers decide whether to log them.
    pub fn warnings(&self) -> Vec<String> {
        match &self.checksum {
            ChecksumStatus::Mismatch { expected, actual } => vec![format!(
                "{}: SHA-256 {actual} differs from the expected {expected}; the file may be a re-packed or modified copy",
                self.path.display()
            )],
            ChecksumStatus::NotChecked | ChecksumStatus::Matches => Vec::new(),
        }
    }
}

/// Lower-case hex SHA-256 of the file at `path`, streamed in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> Result<String, DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Compares the SHA-256 of `path` with `expected` (hex, any case); hashes only when `expected`
/// is given.
pub fn verify_sha256(path: &Path, expected: Option<&str>) -> Result<ReadReport, DataError> {
    let checksum = match expected {
        None => ChecksumStatus::NotChecked,
        Some(expected) => {
            let expected = expected.trim().to_ascii_lowercase();
            if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(DataError::InvalidArgument(format!(
                    "expected SHA-256 `{expected}` is not 64 hex digits"
                )));
            }
            let actual = sha256_file(path)?;
            if actual == expected {
                ChecksumStatus::Matches
            } else {
                ChecksumStatus::Mismatch { expected, actual }
            }
        }
    };
    Ok(ReadReport {
        path: path.to_path_buf(),
        checksum,
    })
}
