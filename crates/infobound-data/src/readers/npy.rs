//! A strict reader and writer for numpy's `.npy` format (versions 1.0, 2.0 and 3.0), as specified
//! in numpy's `numpy/lib/format.py` ("NEP 1 — A simple file format for NumPy arrays").
//!
//! A file is the magic string `\x93NUMPY`, a major and minor version byte, the header length
//! (little-endian `u16` in version 1, `u32` in versions 2 and 3), an ASCII (UTF-8 in version 3)
//! Python dict literal `{'descr': ..., 'fortran_order': ..., 'shape': (...), }` padded with spaces
//! and a newline, then the raw C-order element bytes.
//!
//! Only little-endian numeric and boolean dtypes in C order are accepted. Every size the header
//! claims is checked against the bytes that are actually available *before* anything is allocated,
//! so a malicious header cannot make the reader reserve more memory than the file holds.

use std::io::Read;
use std::path::Path;

use crate::DataError;

/// The six magic bytes that open every `.npy` file.
pub const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Longest header this reader accepts. numpy's own reader refuses headers over 10 000 bytes by
/// default; the margin keeps hand-written files working while bounding the header allocation.
pub const MAX_HEADER_LEN: usize = 1 << 16;

/// Bytes of data decoded per read; keeps the transient byte buffer small for wide dtypes.
const READ_CHUNK_BYTES: usize = 1 << 20;

/// Element types this reader understands (numpy `descr` strings in parentheses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// `|b1`: one byte, 0 or 1.
    Bool,
    /// `|u1`.
    U8,
    /// `|i1`.
    I8,
    /// `<u2`.
    U16,
    /// `<i2`.
    I16,
    /// `<u4`.
    U32,
    /// `<i4`.
    I32,
    /// `<u8`.
    U64,
    /// `<i8`.
    I64,
    /// `<f4`.
    F32,
    /// `<f8`.
    F64,
}

impl DType {
    /// Bytes per element.
    pub fn item_size(self) -> usize {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
        }
    }

    /// The `descr` string numpy writes for this type.
    pub fn descr(self) -> &'static str {
        match self {
            DType::Bool => "|b1",
            DType::U8 => "|u1",
            DType::I8 => "|i1",
            DType::U16 => "<u2",
            DType::I16 => "<i2",
            DType::U32 => "<u4",
            DType::I32 => "<i4",
            DType::U64 => "<u8",
            DType::I64 => "<i8",
            DType::F32 => "<f4",
            DType::F64 => "<f8",
        }
    }

    /// Parses a `descr` string. One-byte types may carry any byte-order mark (`|`, `<`, `>`,
    /// `=`) since order is meaningless for them; wider types must be explicitly little-endian.
    pub fn from_descr(descr: &str) -> Result<Self, String> {
        let mut chars = descr.chars();
        let order = chars.next().ok_or("empty dtype descr")?;
        let code = chars.as_str();
        let dtype = match code {
            "b1" => DType::Bool,
            "u1" => DType::U8,
            "i1" => DType::I8,
            "u2" => DType::U16,
            "i2" => DType::I16,
            "u4" => DType::U32,
            "i4" => DType::I32,
            "u8" => DType::U64,
            "i8" => DType::I64,
            "f4" => DType::F32,
            "f8" => DType::F64,
            _ => return Err(format!("unsupported dtype `{descr}`")),
        };
        let order_ok = match order {
            '<' => true,
            '|' | '>' | '=' => dtype.item_size() == 1,
            _ => false,
        };
        if !order_ok {
            return Err(format!(
                "unsupported byte order in dtype `{descr}` (only little-endian `<` is read)"
            ));
        }
        Ok(dtype)
    }
}

/// Rust element types an `.npy` array can be decoded into; the array's dtype must match
/// [`NpyElement::DTYPE`] exactly (no silent conversion).
pub trait NpyElement: Copy + Send + Sync + 'static {
    /// The numpy dtype stored for this type.
    const DTYPE: DType;
    /// Decodes one little-endian element of `DTYPE.item_size()` bytes; `None` for an invalid
    /// bit pattern (a boolean byte other than 0 or 1).
    fn decode(bytes: &[u8]) -> Option<Self>;
    /// Appends the little-endian encoding of `self`.
    fn encode(self, out: &mut Vec<u8>);
    /// Decodes a run of whole elements onto `out`; `false` on an invalid bit pattern. Byte
    /// types override it with a plain copy, which is what makes multi-gigabyte `u8` image arrays
    /// read at memory speed.
    fn decode_into(bytes: &[u8], out: &mut Vec<Self>) -> bool {
        for chunk in bytes.chunks_exact(Self::DTYPE.item_size()) {
            match Self::decode(chunk) {
                Some(value) => out.push(value),
                None => return false,
            }
        }
        true
    }
}

macro_rules! numeric_element {
    ($ty:ty, $dtype:expr) => {
        impl NpyElement for $ty {
            const DTYPE: DType = $dtype;
            fn decode(bytes: &[u8]) -> Option<Self> {
                Some(<$ty>::from_le_bytes(bytes.try_into().ok()?))
            }
            fn encode(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    };
}

numeric_element!(i8, DType::I8);
numeric_element!(u16, DType::U16);
numeric_element!(i16, DType::I16);
numeric_element!(u32, DType::U32);
numeric_element!(i32, DType::I32);
numeric_element!(u64, DType::U64);
numeric_element!(i64, DType::I64);
numeric_element!(f32, DType::F32);
numeric_element!(f64, DType::F64);

impl NpyElement for u8 {
    const DTYPE: DType = DType::U8;
    fn decode(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [b] => Some(*b),
            _ => None,
        }
    }
    fn encode(self, out: &mut Vec<u8>) {
        out.push(self);
    }
    fn decode_into(bytes: &[u8], out: &mut Vec<Self>) -> bool {
        out.extend_from_slice(bytes);
        true
    }
}

impl NpyElement for bool {
    const DTYPE: DType = DType::Bool;
    fn decode(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [0] => Some(false),
            [1] => Some(true),
            _ => None,
        }
    }
    fn encode(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
}

/// The parsed header of an `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// Format version `(major, minor)`: (1, 0), (2, 0) or (3, 0).
    pub version: (u8, u8),
    /// Element type.
    pub dtype: DType,
    /// Array shape (empty for a 0-d scalar).
    pub shape: Vec<usize>,
    /// Byte offset of the first element: magic, version, length field and header text.
    pub data_offset: usize,
}

impl NpyHeader {
    /// Number of elements, Π shape; `None` on overflow.
    pub fn num_elements(&self) -> Option<usize> {
        self.shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// Number of data bytes, Π shape · item size; `None` on overflow.
    pub fn data_len(&self) -> Option<usize> {
        self.num_elements()?.checked_mul(self.dtype.item_size())
    }
}

/// An n-dimensional C-order array.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray<T> {
    shape: Vec<usize>,
    data: Vec<T>,
}

impl<T: NpyElement> NpyArray<T> {
    /// Wraps C-order `data`; `data.len()` must equal Π shape.
    pub fn new(shape: Vec<usize>, data: Vec<T>) -> Result<Self, DataError> {
        let numel = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| DataError::InvalidArgument("array shape overflows usize".into()))?;
        if numel != data.len() {
            return Err(DataError::InvalidArgument(format!(
                "shape {shape:?} holds {numel} elements but {} were given",
                data.len()
            )));
        }
        Ok(Self { shape, data })
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The C-order elements.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// Consumes the array, returning shape and C-order elements.
    pub fn into_parts(self) -> (Vec<usize>, Vec<T>) {
        (self.shape, self.data)
    }
}

fn invalid(path: &Path, message: impl Into<String>) -> DataError {
    DataError::InvalidFile {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Maps a read failure inside a file to a typed error: running out of bytes or undecodable
/// (e.g. corrupt deflate) data is a bad file, anything else is the operating system's.
pub(crate) fn read_error(path: &Path, what: &str, err: std::io::Error) -> DataError {
    match err.kind() {
        std::io::ErrorKind::UnexpectedEof => invalid(path, format!("{what}: file is truncated")),
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => {
            invalid(path, format!("{what}: corrupt data ({err})"))
        }
        _ => DataError::Io {
            path: path.to_path_buf(),
            source: err,
        },
    }
}

/// Reads and parses the header from the start of `reader`, of which at most `available` bytes
/// exist. `what` names the array in error messages (e.g. `array \`imgs\``).
pub fn read_header<R: Read>(
    reader: &mut R,
    available: u64,
    path: &Path,
    what: &str,
) -> Result<NpyHeader, DataError> {
    let layout = read_header_layout(reader, available, path, what)?;
    if layout.fortran_order {
        return Err(invalid(
            path,
            format!(
                "{what}: fortran_order is True; only C-order arrays are supported (save with np.ascontiguousarray)"
            ),
        ));
    }
    let dtype =
        DType::from_descr(&layout.descr).map_err(|m| invalid(path, format!("{what}: {m}")))?;
    Ok(NpyHeader {
        version: layout.version,
        dtype,
        shape: layout.shape,
        data_offset: layout.data_offset,
    })
}

/// What an `.npy` header says, before any restriction on the dtype or the memory order: the
/// format version, the raw `descr` (any byte order), `fortran_order`, the shape and where the
/// data starts. [`read_header`] is this plus the checks the typed readers need; consumers that
/// convert other layouts themselves (the metrics crate's code and label matrices accept
/// big-endian and Fortran-order arrays) read this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyLayout {
    /// Format version `(major, minor)`.
    pub version: (u8, u8),
    /// The dtype string as written, e.g. `<f4`, `>i8`, `|b1`.
    pub descr: String,
    /// Whether the data is stored column-major.
    pub fortran_order: bool,
    /// Array shape.
    pub shape: Vec<usize>,
    /// Byte offset of the first element.
    pub data_offset: usize,
}

/// Reads and validates an `.npy` header (magic, version, length, the dict literal) without
/// restricting its dtype or memory order; see [`NpyLayout`].
///
/// # Errors
/// [`DataError::InvalidFile`] naming `path` and `what` for a missing magic string, an unknown
/// version, a header longer than the limit or than the file, or a malformed dict.
pub fn read_header_layout<R: Read>(
    reader: &mut R,
    available: u64,
    path: &Path,
    what: &str,
) -> Result<NpyLayout, DataError> {
    let mut prefix = [0u8; 8];
    if available < prefix.len() as u64 {
        return Err(invalid(
            path,
            format!("{what}: {available} bytes cannot hold an .npy header"),
        ));
    }
    reader
        .read_exact(&mut prefix)
        .map_err(|e| read_error(path, what, e))?;
    if &prefix[..6] != NPY_MAGIC {
        return Err(invalid(
            path,
            format!("{what}: missing the .npy magic string \\x93NUMPY"),
        ));
    }
    let version = (prefix[6], prefix[7]);
    let (len_field_size, utf8) = match version {
        (1, 0) => (2usize, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        (major, minor) => {
            return Err(invalid(
                path,
                format!(
                    "{what}: unsupported .npy version {major}.{minor} (expected 1.0, 2.0 or 3.0)"
                ),
            ));
        }
    };
    let mut len_bytes = [0u8; 4];
    reader
        .read_exact(&mut len_bytes[..len_field_size])
        .map_err(|e| read_error(path, what, e))?;
    let header_len = u32::from_le_bytes(len_bytes) as usize;
    let data_offset = 8 + len_field_size + header_len;
    if header_len > MAX_HEADER_LEN {
        return Err(invalid(
            path,
            format!("{what}: header of {header_len} bytes exceeds the {MAX_HEADER_LEN}-byte limit"),
        ));
    }
    if data_offset as u64 > available {
        return Err(invalid(
            path,
            format!("{what}: header claims {header_len} bytes but the file is shorter"),
        ));
    }
    let mut text = vec![0u8; header_len];
    reader
        .read_exact(&mut text)
        .map_err(|e| read_error(path, what, e))?;
    let text = if utf8 {
        String::from_utf8(text)
            .map_err(|_| invalid(path, format!("{what}: header is not UTF-8")))?
    } else if text.is_ascii() {
        String::from_utf8(text)
            .map_err(|_| invalid(path, format!("{what}: header is not ASCII")))?
    } else {
        return Err(invalid(path, format!("{what}: header is not ASCII")));
    };
    let dict = parse_header_dict(&text).map_err(|m| invalid(path, format!("{what}: {m}")))?;
    Ok(NpyLayout {
        version,
        descr: dict.descr,
        fortran_order: dict.fortran_order,
        shape: dict.shape,
        data_offset,
    })
}

/// Reads a whole `.npy` stream of exactly `available` bytes into a typed array.
///
/// Fails with [`DataError::InvalidFile`] when the dtype is not `T::DTYPE`, when the data length
/// Π shape · item size differs from the bytes after the header (truncated or trailing bytes), or
/// on any malformed header. Allocation is bounded by `available`.
pub fn read_npy<T: NpyElement, R: Read>(
    reader: &mut R,
    available: u64,
    path: &Path,
    what: &str,
) -> Result<NpyArray<T>, DataError> {
    let header = read_header(reader, available, path, what)?;
    read_data(reader, &header, available, path, what)
}

/// Reads the data that follows an already-parsed `header` (see [`read_npy`]).
pub fn read_data<T: NpyElement, R: Read>(
    reader: &mut R,
    header: &NpyHeader,
    available: u64,
    path: &Path,
    what: &str,
) -> Result<NpyArray<T>, DataError> {
    if header.dtype != T::DTYPE {
        return Err(invalid(
            path,
            format!(
                "{what}: expected dtype {}, found {}",
                T::DTYPE.descr(),
                header.dtype.descr()
            ),
        ));
    }
    let data_len = header
        .data_len()
        .ok_or_else(|| invalid(path, format!("{what}: shape {:?} overflows", header.shape)))?;
    let remaining = available.saturating_sub(header.data_offset as u64);
    if data_len as u64 != remaining {
        return Err(invalid(
            path,
            format!(
                "{what}: shape {:?} of {} needs {data_len} data bytes but {remaining} follow the header",
                header.shape,
                header.dtype.descr()
            ),
        ));
    }
    let item = header.dtype.item_size();
    let numel = data_len / item;
    let mut data = Vec::with_capacity(numel);
    let mut buffer = vec![0u8; READ_CHUNK_BYTES.min(data_len).max(item)];
    let mut left = data_len;
    while left > 0 {
        let take = (buffer.len() / item * item).min(left);
        reader
            .read_exact(&mut buffer[..take])
            .map_err(|e| read_error(path, what, e))?;
        if !T::decode_into(&buffer[..take], &mut data) {
            return Err(invalid(
                path,
                format!("{what}: boolean element is neither 0 nor 1"),
            ));
        }
        left -= take;
    }
    Ok(NpyArray {
        shape: header.shape.clone(),
        data,
    })
}

/// Parses an in-memory `.npy` file.
pub fn parse_npy<T: NpyElement>(bytes: &[u8], path: &Path) -> Result<NpyArray<T>, DataError> {
    let mut reader = bytes;
    read_npy(&mut reader, bytes.len() as u64, path, "array")
}

/// Reads an `.npy` file from disk; the file length bounds every allocation.
pub fn read_npy_file<T: NpyElement>(path: &Path) -> Result<NpyArray<T>, DataError> {
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
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
    let mut reader = std::io::BufReader::new(file);
    read_npy(&mut reader, len, path, "array")
}

/// Writes `array` to `path` as `.npy` ([`encode_npy`]), atomically ([`crate::io::write_atomic`]).
pub fn write_npy_file<T: NpyElement>(path: &Path, array: &NpyArray<T>) -> Result<(), DataError> {
    crate::io::write_atomic(path, &encode_npy(array))
}

/// An array of whichever supported dtype the file holds, for callers that accept several
/// (e.g. codes stored as `f4` or `f8`, labels as any integer type) and convert themselves.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyNpyArray {
    /// `|b1`.
    Bool(NpyArray<bool>),
    /// `|u1`.
    U8(NpyArray<u8>),
    /// `|i1`.
    I8(NpyArray<i8>),
    /// `<u2`.
    U16(NpyArray<u16>),
    /// `<i2`.
    I16(NpyArray<i16>),
    /// `<u4`.
    U32(NpyArray<u32>),
    /// `<i4`.
    I32(NpyArray<i32>),
    /// `<u8`.
    U64(NpyArray<u64>),
    /// `<i8`.
    I64(NpyArray<i64>),
    /// `<f4`.
    F32(NpyArray<f32>),
    /// `<f8`.
    F64(NpyArray<f64>),
}

impl AnyNpyArray {
    /// The stored dtype.
    pub fn dtype(&self) -> DType {
        match self {
            AnyNpyArray::Bool(_) => DType::Bool,
            AnyNpyArray::U8(_) => DType::U8,
            AnyNpyArray::I8(_) => DType::I8,
            AnyNpyArray::U16(_) => DType::U16,
            AnyNpyArray::I16(_) => DType::I16,
            AnyNpyArray::U32(_) => DType::U32,
            AnyNpyArray::I32(_) => DType::I32,
            AnyNpyArray::U64(_) => DType::U64,
            AnyNpyArray::I64(_) => DType::I64,
            AnyNpyArray::F32(_) => DType::F32,
            AnyNpyArray::F64(_) => DType::F64,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            AnyNpyArray::Bool(a) => a.shape(),
            AnyNpyArray::U8(a) => a.shape(),
            AnyNpyArray::I8(a) => a.shape(),
            AnyNpyArray::U16(a) => a.shape(),
            AnyNpyArray::I16(a) => a.shape(),
            AnyNpyArray::U32(a) => a.shape(),
            AnyNpyArray::I32(a) => a.shape(),
            AnyNpyArray::U64(a) => a.shape(),
            AnyNpyArray::I64(a) => a.shape(),
            AnyNpyArray::F32(a) => a.shape(),
            AnyNpyArray::F64(a) => a.shape(),
        }
    }
}

/// Reads a whole `.npy` stream of exactly `available` bytes in whatever dtype it stores (the
/// same checks and allocation bound as [`read_npy`]).
pub fn read_npy_any<R: Read>(
    reader: &mut R,
    available: u64,
    path: &Path,
    what: &str,
) -> Result<AnyNpyArray, DataError> {
    let header = &read_header(reader, available, path, what)?;
    Ok(match header.dtype {
        DType::Bool => AnyNpyArray::Bool(read_data(reader, header, available, path, what)?),
        DType::U8 => AnyNpyArray::U8(read_data(reader, header, available, path, what)?),
        DType::I8 => AnyNpyArray::I8(read_data(reader, header, available, path, what)?),
        DType::U16 => AnyNpyArray::U16(read_data(reader, header, available, path, what)?),
        DType::I16 => AnyNpyArray::I16(read_data(reader, header, available, path, what)?),
        DType::U32 => AnyNpyArray::U32(read_data(reader, header, available, path, what)?),
        DType::I32 => AnyNpyArray::I32(read_data(reader, header, available, path, what)?),
        DType::U64 => AnyNpyArray::U64(read_data(reader, header, available, path, what)?),
        DType::I64 => AnyNpyArray::I64(read_data(reader, header, available, path, what)?),
        DType::F32 => AnyNpyArray::F32(read_data(reader, header, available, path, what)?),
        DType::F64 => AnyNpyArray::F64(read_data(reader, header, available, path, what)?),
    })
}

/// Parses an in-memory `.npy` file of any supported dtype.
pub fn parse_npy_any(bytes: &[u8], path: &Path) -> Result<AnyNpyArray, DataError> {
    let mut reader = bytes;
    read_npy_any(&mut reader, bytes.len() as u64, path, "array")
}

/// Encodes `array` as a version 1.0 `.npy` file (version 2.0 when the header needs more than
/// 65 535 bytes), padding the header so the data starts on a 64-byte boundary as numpy does.
pub fn encode_npy<T: NpyElement>(array: &NpyArray<T>) -> Vec<u8> {
    let mut out = encode_header(T::DTYPE, &array.shape);
    out.reserve(array.data.len() * T::DTYPE.item_size());
    for &value in &array.data {
        value.encode(&mut out);
    }
    out
}

/// The header [`encode_npy`] writes for an array of `dtype` and `shape`: magic, version,
/// length and the padded dict. The C-order element bytes follow it.
pub fn encode_header(dtype: DType, shape: &[usize]) -> Vec<u8> {
    let shape = match shape {
        [d] => format!("({d},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        dtype.descr()
    );
    let len_field = if header.len() + 1 + 10 > usize::from(u16::MAX) {
        4
    } else {
        2
    };
    let unpadded = 8 + len_field + header.len() + 1;
    header.extend(std::iter::repeat_n(
        ' ',
        unpadded.next_multiple_of(64) - unpadded,
    ));
    header.push('\n');
    let mut out = Vec::with_capacity(8 + len_field + header.len());
    out.extend_from_slice(NPY_MAGIC);
    if len_field == 2 {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    out
}

struct HeaderDict {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// Parses the header's Python dict literal. Accepts exactly the three keys numpy writes, in any
/// order, single- or double-quoted strings, `True`/`False`, and integer tuples whose entries may
/// carry Python 2's `L` suffix (old files such as dSprites were written by Python 2).
fn parse_header_dict(text: &str) -> Result<HeaderDict, String> {
    let mut parser = DictParser {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let mut descr = None;
    let mut fortran_order = None;
    let mut shape = None;
    parser.expect(b'{')?;
    loop {
        parser.skip_ws();
        if parser.eat(b'}') {
            break;
        }
        let key = parser.string()?;
        parser.expect(b':')?;
        match key.as_str() {
            "descr" if descr.is_none() => {
                parser.skip_ws();
                if parser.peek() == Some(b'[') {
                    return Err("structured dtypes are not supported".into());
                }
                descr = Some(parser.string()?);
            }
            "fortran_order" if fortran_order.is_none() => fortran_order = Some(parser.boolean()?),
            "shape" if shape.is_none() => shape = Some(parser.tuple()?),
            other => return Err(format!("unexpected or repeated header key `{other}`")),
        }
        parser.skip_ws();
        if !parser.eat(b',') {
            parser.expect(b'}')?;
            break;
        }
    }
    if parser.bytes[parser.pos..]
        .iter()
        .any(|b| !b.is_ascii_whitespace() && *b != 0)
    {
        return Err("unexpected text after the header dict".into());
    }
    Ok(HeaderDict {
        descr: descr.ok_or("header lacks `descr`")?,
        fortran_order: fortran_order.ok_or("header lacks `fortran_order`")?,
        shape: shape.ok_or("header lacks `shape`")?,
    })
}

struct DictParser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl DictParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        self.skip_ws();
        if self.eat(byte) {
            Ok(())
        } else {
            Err(format!(
                "malformed header: expected `{}` at byte {}",
                byte as char, self.pos
            ))
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.skip_ws();
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => {
                return Err(format!(
                    "malformed header: expected a string at byte {}",
                    self.pos
                ));
            }
        };
        self.pos += 1;
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == quote {
                let s = std::str::from_utf8(&self.bytes[start..self.pos])
                    .map_err(|_| "malformed header: string is not UTF-8".to_string())?
                    .to_string();
                self.pos += 1;
                return Ok(s);
            }
            if b == b'\\' {
                return Err("malformed header: escapes in strings are not supported".into());
            }
            self.pos += 1;
        }
        Err("malformed header: unterminated string".into())
    }

    fn boolean(&mut self) -> Result<bool, String> {
        self.skip_ws();
        let rest = &self.bytes[self.pos..];
        if rest.starts_with(b"True") {
            self.pos += 4;
            Ok(true)
        } else if rest.starts_with(b"False") {
            self.pos += 5;
            Ok(false)
        } else {
            Err("malformed header: fortran_order must be True or False".into())
        }
    }

    fn tuple(&mut self) -> Result<Vec<usize>, String> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(b')') {
                break;
            }
            let start = self.pos;
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
            }
            if start == self.pos {
                return Err("malformed header: shape entries must be non-negative integers".into());
            }
            let digits = std::str::from_utf8(&self.bytes[start..self.pos])
                .map_err(|_| "malformed header: bad digits".to_string())?;
            dims.push(
                digits
                    .parse::<usize>()
                    .map_err(|_| format!("shape entry {digits} does not fit in usize"))?,
            );
            self.eat(b'L');
            self.skip_ws();
            if !self.eat(b',') {
                self.expect(b')')?;
                break;
            }
        }
        Ok(dims)
    }
}
