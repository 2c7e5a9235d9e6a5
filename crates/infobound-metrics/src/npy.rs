//! `.npy` files holding 2-D arrays as code and label matrices: the `[n, d]` float codes/features
//! and `[n, f]` integer factor labels the `infobound metrics` command reads, in any byte order and
//! memory order. Headers are read and written by infobound-data's one `.npy` module
//! (`read_header_layout`, `encode_header`); this module converts the element bytes. Malformed
//! input gives an [`NpyError`], never a panic.

use std::path::Path;

use infobound_data::FactorMatrix;
use infobound_data::readers::npy::{DType, encode_header, read_header_layout};

use crate::{CodeMatrix, MetricsError};

/// Why a `.npy` file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: std::path::PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The bytes are not a valid `.npy` file.
    #[error("not a valid .npy file: {0}")]
    Format(String),
    /// The element type is not one this reader accepts here.
    #[error("unsupported .npy dtype `{descr}` ({expected})")]
    UnsupportedDtype {
        /// The header's `descr`.
        descr: String,
        /// What was expected instead.
        expected: &'static str,
    },
    /// The array is not 2-D or its data has the wrong length.
    #[error("bad .npy shape: {0}")]
    Shape(String),
    /// The values are not acceptable (NaN codes, negative factor labels, ...).
    #[error(transparent)]
    Values(#[from] MetricsError),
}

/// Element types this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    Float { bytes: usize },
    Signed { bytes: usize },
    Unsigned { bytes: usize },
    Bool,
}

/// A parsed 2-D `.npy` array before conversion.
struct RawArray<'a> {
    dtype: Dtype,
    big_endian: bool,
    fortran_order: bool,
    rows: usize,
    cols: usize,
    data: &'a [u8],
    descr: String,
}

fn format_error(msg: impl Into<String>) -> NpyError {
    NpyError::Format(msg.into())
}

fn parse_dtype(descr: &str) -> Result<(Dtype, bool), NpyError> {
    let unsupported = || NpyError::UnsupportedDtype {
        descr: descr.into(),
        expected: "a little- or big-endian float, integer or bool scalar type",
    };
    let mut chars = descr.chars();
    let order = chars.next().ok_or_else(unsupported)?;
    let big_endian = match order {
        '<' | '|' | '=' => false,
        '>' => true,
        _ => return Err(unsupported()),
    };
    let kind = chars.next().ok_or_else(unsupported)?;
    let bytes: usize = chars.as_str().parse().map_err(|_| unsupported())?;
    let dtype = match (kind, bytes) {
        ('f', 4 | 8) => Dtype::Float { bytes },
        ('i', 1 | 2 | 4 | 8) => Dtype::Signed { bytes },
        ('u', 1 | 2 | 4 | 8) => Dtype::Unsigned { bytes },
        ('b', 1) => Dtype::Bool,
        _ => return Err(unsupported()),
    };
    Ok((dtype, big_endian))
}

/// The header through infobound-data's one `.npy` header reader ([`read_header_layout`]), then
/// this crate's 2-D checks; any byte order and memory order are converted later.
fn parse(bytes: &[u8]) -> Result<RawArray<'_>, NpyError> {
    let layout = read_header_layout(
        &mut std::io::Cursor::new(bytes),
        bytes.len() as u64,
        Path::new("<.npy bytes>"),
        ".npy",
    )
    .map_err(|e| format_error(e.to_string()))?;
    let descr = layout.descr;
    let (dtype, big_endian) = parse_dtype(&descr)?;
    let fortran_order = layout.fortran_order;
    let dims = layout.shape;
    let data_start = layout.data_offset;
    let shape_text = format!("{dims:?}");
    let [rows, cols] = dims[..] else {
        return Err(NpyError::Shape(format!(
            "expected a 2-D array [n, d], got shape {shape_text}"
        )));
    };
    let element = match dtype {
        Dtype::Float { bytes } | Dtype::Signed { bytes } | Dtype::Unsigned { bytes } => bytes,
        Dtype::Bool => 1,
    };
    let expected = rows
        .checked_mul(cols)
        .and_then(|c| c.checked_mul(element))
        .ok_or_else(|| NpyError::Shape(format!("shape {shape_text} overflows")))?;
    let data = &bytes[data_start..];
    if data.len() != expected {
        return Err(NpyError::Shape(format!(
            "shape {shape_text} of `{descr}` needs {expected} data bytes, the file has {}",
            data.len()
        )));
    }
    Ok(RawArray {
        dtype,
        big_endian,
        fortran_order,
        rows,
        cols,
        data,
        descr,
    })
}

impl RawArray<'_> {
    /// Element `k` of the storage order as raw little-endian-normalised bytes.
    fn element(&self, k: usize, width: usize) -> [u8; 8] {
        let mut buf = [0u8; 8];
        buf[..width].copy_from_slice(&self.data[k * width..(k + 1) * width]);
        if self.big_endian {
            buf[..width].reverse();
        }
        buf
    }

    /// Storage index of logical element (i, j).
    fn storage_index(&self, i: usize, j: usize) -> usize {
        if self.fortran_order {
            j * self.rows + i
        } else {
            i * self.cols + j
        }
    }

    fn to_f64(&self) -> Result<Vec<f64>, NpyError> {
        let Dtype::Float { bytes } = self.dtype else {
            return Err(NpyError::UnsupportedDtype {
                descr: self.descr.clone(),
                expected: "float32 or float64 codes",
            });
        };
        let mut out = Vec::with_capacity(self.rows * self.cols);
        for i in 0..self.rows {
            for j in 0..self.cols {
                let b = self.element(self.storage_index(i, j), bytes);
                out.push(if bytes == 4 {
                    f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                } else {
                    f64::from_le_bytes(b)
                });
            }
        }
        Ok(out)
    }

    fn to_labels(&self) -> Result<Vec<usize>, NpyError> {
        let mut out = Vec::with_capacity(self.rows * self.cols);
        for i in 0..self.rows {
            for j in 0..self.cols {
                let k = self.storage_index(i, j);
                let value: i128 = match self.dtype {
                    Dtype::Signed { bytes } => {
                        let b = self.element(k, bytes);
                        let shift = 64 - 8 * bytes as u32;
                        i128::from((i64::from_le_bytes(b) << shift) >> shift)
                    }
                    Dtype::Unsigned { bytes } => {
                        i128::from(u64::from_le_bytes(self.element(k, bytes)))
                    }
                    Dtype::Bool => i128::from(self.data[k] != 0),
                    Dtype::Float { .. } => {
                        return Err(NpyError::UnsupportedDtype {
                            descr: self.descr.clone(),
                            expected: "integer factor labels",
                        });
                    }
                };
                out.push(usize::try_from(value).map_err(|_| {
                    NpyError::Values(MetricsError::InvalidInput(format!(
                        "factor label {value} at row {i}, column {j} is not a non-negative index"
                    )))
                })?);
            }
        }
        Ok(out)
    }
}

/// Parses `.npy` bytes holding a float32/float64 `[n, d]` array into a [`CodeMatrix`] (d ≥ 1;
/// NaN or infinity is an error).
pub fn codes_from_npy_bytes(bytes: &[u8]) -> Result<CodeMatrix, NpyError> {
    let raw = parse(bytes)?;
    if raw.cols == 0 {
        return Err(NpyError::Shape(
            "a code matrix needs at least one column".into(),
        ));
    }
    Ok(CodeMatrix::new(raw.cols, raw.to_f64()?)?)
}

/// Parses `.npy` bytes holding a non-negative integer (or bool) `[n, f]` array of factor labels.
pub fn factors_from_npy_bytes(bytes: &[u8]) -> Result<FactorMatrix, NpyError> {
    let raw = parse(bytes)?;
    if raw.cols == 0 {
        return Err(NpyError::Shape(
            "a factor matrix needs at least one column".into(),
        ));
    }
    FactorMatrix::new(raw.cols, raw.to_labels()?)
        .map_err(|e| NpyError::Values(MetricsError::Data(e)))
}

fn read_file(path: &Path) -> Result<Vec<u8>, NpyError> {
    std::fs::read(path).map_err(|source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a float32/float64 `[n, d]` `.npy` file as codes or features.
pub fn read_codes_npy(path: &Path) -> Result<CodeMatrix, NpyError> {
    codes_from_npy_bytes(&read_file(path)?)
}

/// Reads a non-negative integer `[n, f]` `.npy` file as factor labels.
pub fn read_factors_npy(path: &Path) -> Result<FactorMatrix, NpyError> {
    factors_from_npy_bytes(&read_file(path)?)
}

/// `.npy` (format 1.0, little-endian float64, C order) bytes of `codes`.
pub fn codes_to_npy_bytes(codes: &CodeMatrix) -> Vec<u8> {
    let mut out = encode_header(DType::F64, &[codes.num_samples(), codes.num_codes()]);
    out.extend(codes.as_slice().iter().flat_map(|v| v.to_le_bytes()));
    out
}

/// `.npy` (format 1.0, little-endian int64, C order) bytes of `factors`; labels above `i64::MAX`
/// are rejected.
pub fn factors_to_npy_bytes(factors: &FactorMatrix) -> Result<Vec<u8>, NpyError> {
    let mut out = encode_header(DType::I64, &[factors.len(), factors.num_factors()]);
    for &v in factors.as_slice() {
        let v = i64::try_from(v).map_err(|_| {
            NpyError::Values(MetricsError::InvalidInput(format!(
                "factor label {v} exceeds int64"
            )))
        })?;
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so that a
/// reader never sees a half-written file (the project's one atomic writer,
/// [`infobound_data::io::write_atomic`]).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), NpyError> {
    infobound_data::io::write_atomic(path, bytes).map_err(|e| match e {
        infobound_data::DataError::Io { path, source } => NpyError::Io { path, source },
        other => NpyError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(other.to_string()),
        },
    })
}
