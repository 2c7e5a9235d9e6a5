//! TensorBoard event files: a writer of scalar, image, text and hyper-parameter summaries.
//!
//! An event file is a sequence of TFRecord records, each framing one serialised `Event`
//! protobuf:
//!
//! ```text
//! u64 (little endian) length | u32 masked_crc32c(length bytes) | data | u32 masked_crc32c(data)
//! masked_crc32c(x) = ((c >> 15) | (c << 17)) + 0xa282ead8,  c = CRC-32C(x)   (wrapping u32)
//! ```
//!
//! (repo tensorflow/tensorboard: `tensorboard/summary/writer/record_writer.py` for the framing,
//! `masked_crc32c` of `tensorboard/compat/tensorflow_stub/pywrap_tensorflow.py` for the mask).
//! The first event of a file carries `file_version = "brain.Event:2"`.
//!
//! The messages below are the few fields of TensorBoard's protobuf definitions that this writer
//! sets, with the field numbers of (repo tensorflow/tensorboard):
//! `tensorboard/compat/proto/event.proto` (`Event`), `tensorboard/compat/proto/summary.proto`
//! (`Summary`, `Summary.Value`, `Summary.Image`, `SummaryMetadata`),
//! `tensorboard/compat/proto/tensor.proto` (`TensorProto`),
//! `tensorboard/compat/proto/tensor_shape.proto` (`TensorShapeProto`),
//! `tensorboard/plugins/hparams/plugin_data.proto` (`HParamsPluginData`, `SessionStartInfo`), and
//! of `google.protobuf.Value` (repo protocolbuffers/protobuf, `src/google/protobuf/struct.proto`).
//! Enum fields (`dtype`, `data_class`) are declared `int32`, their wire encoding. Besides
//! TensorBoard's reader (`tests/cli_tensorboard.rs`), TensorBoard 2.21's server was checked by
//! hand on an exported SSL run: scalars, images, text and the HParams session table load with
//! both its Python and its Rust (`--load_fast`) data loader.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use crate::error::CliError;

/// `Event` (`tensorboard/compat/proto/event.proto`): one record of an event file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch (field 1).
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// Global step (field 2).
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// The `what` oneof: file version (3) or summary (5).
    #[prost(oneof = "EventKind", tags = "3, 5")]
    pub what: Option<EventKind>,
}

/// The `what` oneof of [`Event`] as far as this writer uses it.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum EventKind {
    /// `string file_version = 3`: "brain.Event:2" in the first event of a file.
    #[prost(string, tag = "3")]
    FileVersion(String),
    /// `Summary summary = 5`.
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// `Summary` (`tensorboard/compat/proto/summary.proto`): `repeated Value value = 1`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The values of this summary.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `Summary.Value`: a tag, optional plugin metadata (9) and one value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    /// `string tag = 1`.
    #[prost(string, tag = "1")]
    pub tag: String,
    /// `SummaryMetadata metadata = 9`.
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
    /// The `value` oneof: simple_value (2), image (4), tensor (8).
    #[prost(oneof = "ValueKind", tags = "2, 4, 8")]
    pub value: Option<ValueKind>,
}

/// The `value` oneof of [`SummaryValue`] as far as this writer uses it.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ValueKind {
    /// `float simple_value = 2`: a scalar.
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    /// `Image image = 4`.
    #[prost(message, tag = "4")]
    Image(Image),
    /// `TensorProto tensor = 8`.
    #[prost(message, tag = "8")]
    Tensor(TensorProto),
}

/// `Summary.Image`: an encoded image and its size.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    /// `int32 height = 1`.
    #[prost(int32, tag = "1")]
    pub height: i32,
    /// `int32 width = 2`.
    #[prost(int32, tag = "2")]
    pub width: i32,
    /// `int32 colorspace = 3`: 1 grayscale, 2 grayscale + alpha, 3 RGB, 4 RGBA.
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    /// `bytes encoded_image_string = 4`: the PNG file.
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

/// `SummaryMetadata`: which plugin reads a value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    /// `PluginData plugin_data = 1`.
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
    /// `DataClass data_class = 4` (2 = `DATA_CLASS_TENSOR`).
    #[prost(int32, tag = "4")]
    pub data_class: i32,
}

/// `SummaryMetadata.PluginData`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginData {
    /// `string plugin_name = 1`.
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    /// `bytes content = 2`: the plugin's own serialised message.
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

/// `TensorProto` (`tensorboard/compat/proto/tensor.proto`), string and float values only.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// `DataType dtype = 1` (`types.proto`: 1 = `DT_FLOAT`, 7 = `DT_STRING`).
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    /// `TensorShapeProto tensor_shape = 2`.
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    /// `repeated float float_val = 5 [packed = true]`.
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    /// `repeated bytes string_val = 8`.
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
}

/// `TensorShapeProto` (`tensorboard/compat/proto/tensor_shape.proto`): `repeated Dim dim = 2`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// The dimensions, outermost first (none: a scalar).
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<TensorShapeDim>,
}

/// `TensorShapeProto.Dim`: `int64 size = 1`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeDim {
    /// Size of the dimension.
    #[prost(int64, tag = "1")]
    pub size: i64,
}

/// `HParamsPluginData` (`tensorboard/plugins/hparams/plugin_data.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamsPluginData {
    /// `int32 version = 1`: 0 (`PLUGIN_DATA_VERSION` of `tensorboard/plugins/hparams/metadata.py`).
    #[prost(int32, tag = "1")]
    pub version: i32,
    /// `SessionStartInfo session_start_info = 3` (a member of the `data` oneof).
    #[prost(message, optional, tag = "3")]
    pub session_start_info: Option<SessionStartInfo>,
}

/// `SessionStartInfo`: the hyper-parameter values of one session (run).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionStartInfo {
    /// `map<string, google.protobuf.Value> hparams = 1`.
    #[prost(btree_map = "string, message", tag = "1")]
    pub hparams: BTreeMap<String, HParamValue>,
    /// `double start_time_secs = 5`.
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

/// `google.protobuf.Value` (`src/google/protobuf/struct.proto`), scalar kinds only.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamValue {
    /// The `kind` oneof.
    #[prost(oneof = "HParamKind", tags = "2, 3, 4")]
    pub kind: Option<HParamKind>,
}

/// The scalar members of `google.protobuf.Value`'s `kind` oneof.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HParamKind {
    /// `double number_value = 2`.
    #[prost(double, tag = "2")]
    Number(f64),
    /// `string string_value = 3`.
    #[prost(string, tag = "3")]
    String(String),
    /// `bool bool_value = 4`.
    #[prost(bool, tag = "4")]
    Bool(bool),
}

/// `DT_FLOAT` of `tensorboard/compat/proto/types.proto`.
const DT_FLOAT: i32 = 1;
/// `DT_STRING` of `tensorboard/compat/proto/types.proto`.
const DT_STRING: i32 = 7;
/// `DATA_CLASS_TENSOR` of `summary.proto`: the text plugin's data class.
const DATA_CLASS_TENSOR: i32 = 2;
/// The tag under which TensorBoard's HParams plugin looks for a session's hyper-parameters
/// (`SESSION_START_INFO_TAG` of `tensorboard/plugins/hparams/metadata.py`).
pub const HPARAMS_SESSION_START_TAG: &str = "_hparams_/session_start_info";

/// The CRC-32C of `data`, masked as TFRecord stores it (`masked_crc32c` of
/// `tensorboard/compat/tensorflow_stub/pywrap_tensorflow.py`, repo tensorflow/tensorboard).
pub fn masked_crc32c(data: &[u8]) -> u32 {
    // (crc >> 15) | (crc << 17) is a rotation right by 15 bits.
    crc32c::crc32c(data)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

/// Size and TensorBoard colour space of a PNG, from its IHDR chunk (PNG specification, W3C
/// 2003, §5.2 signature and §11.2.2 IHDR: width and height big-endian u32 at bytes 16..24,
/// colour type at byte 25).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PngHeader {
    /// Width in pixels.
    pub width: i32,
    /// Height in pixels.
    pub height: i32,
    /// `Summary.Image.colorspace`: 1 grayscale, 2 grayscale + alpha, 3 RGB (also palette), 4 RGBA.
    pub colorspace: i32,
}

impl PngHeader {
    /// Reads the header of the PNG file `bytes`; `name` names it in the error.
    ///
    /// # Errors
    /// [`CliError::Png`] if the signature or the IHDR chunk is missing, a size is zero or above
    /// `i32::MAX`, or the colour type is not one of the five of the specification.
    pub fn parse(name: &str, bytes: &[u8]) -> Result<Self, CliError> {
        const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
        let fail = |reason: String| CliError::Png {
            name: name.to_string(),
            reason,
        };
        if bytes.len() < 26 || bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
            return Err(fail(format!(
                "not a PNG file (no signature and IHDR chunk in its first 26 of {} bytes)",
                bytes.len()
            )));
        }
        let size = |at: usize| {
            let v = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
            i32::try_from(v).ok().filter(|&v| v > 0)
        };
        let (Some(width), Some(height)) = (size(16), size(20)) else {
            return Err(fail("width or height is 0 or above 2^31 - 1".into()));
        };
        let colorspace = match bytes[25] {
            0 => 1,
            4 => 2,
            2 | 3 => 3,
            6 => 4,
            other => return Err(fail(format!("unknown colour type {other}"))),
        };
        Ok(Self {
            width,
            height,
            colorspace,
        })
    }
}

/// Seconds since the Unix epoch, as `Event.wall_time` holds them.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Writes one TensorBoard event file. Made by [`EventWriter::create`], atomically: events go to
/// a hidden temporary file in the target's folder (a name without `tfevents`, so a watching
/// TensorBoard ignores it), which [`EventWriter::finish`] renames onto the target; dropped
/// unfinished, the writer removes its temporary file and leaves no event file. Made by
/// [`EventWriter::create_live`], the events go straight into the target, which TensorBoard reads
/// as it grows: an append-only file cannot be renamed into place, so a crash leaves the events
/// written so far (each [`EventWriter::flush`]ed record is whole; TensorBoard's reader stops at
/// a truncated last record).
pub struct EventWriter {
    path: PathBuf,
    temp: PathBuf,
    file: Option<BufWriter<File>>,
    live: bool,
}

impl EventWriter {
    /// Starts the event file `path` (its folder must exist) with the file-version event.
    ///
    /// # Errors
    /// [`CliError::Io`] if the temporary file cannot be created or written.
    pub fn create(path: &Path) -> Result<Self, CliError> {
        let folder = path.parent().unwrap_or(Path::new("."));
        let temp = folder.join(format!(".infobound-events-{}.tmp", std::process::id()));
        Self::start(path, temp, false)
    }

    /// Starts the live event file `path` (its folder must exist), written in place.
    ///
    /// # Errors
    /// [`CliError::Io`] if the file cannot be created or written.
    pub fn create_live(path: &Path) -> Result<Self, CliError> {
        let mut writer = Self::start(path, path.to_path_buf(), true)?;
        writer.flush()?;
        Ok(writer)
    }

    fn start(path: &Path, temp: PathBuf, live: bool) -> Result<Self, CliError> {
        let file = File::create(&temp).map_err(|source| CliError::Io {
            path: temp.clone(),
            source,
        })?;
        let mut writer = Self {
            path: path.to_path_buf(),
            temp,
            file: Some(BufWriter::new(file)),
            live,
        };
        writer.write_event(&Event {
            wall_time: now_secs(),
            step: 0,
            what: Some(EventKind::FileVersion("brain.Event:2".into())),
        })?;
        Ok(writer)
    }

    /// Appends `event` as one TFRecord record.
    ///
    /// # Errors
    /// [`CliError::Io`] if the temporary file cannot be written.
    pub fn write_event(&mut self, event: &Event) -> Result<(), CliError> {
        let data = event.encode_to_vec();
        let length = (data.len() as u64).to_le_bytes();
        let io = |source| CliError::Io {
            path: self.temp.clone(),
            source,
        };
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io(std::io::Error::other("the event file was already finished")))?;
        file.write_all(&length)
            .and_then(|()| file.write_all(&masked_crc32c(&length).to_le_bytes()))
            .and_then(|()| file.write_all(&data))
            .and_then(|()| file.write_all(&masked_crc32c(&data).to_le_bytes()))
            .map_err(io)
    }

    /// Hands every record written so far to the operating system, so that a reader sees it.
    ///
    /// # Errors
    /// [`CliError::Io`] if the file cannot be written.
    pub fn flush(&mut self) -> Result<(), CliError> {
        match self.file.as_mut() {
            Some(file) => file.flush().map_err(|source| CliError::Io {
                path: self.temp.clone(),
                source,
            }),
            None => Ok(()),
        }
    }

    /// Appends one summary event of `values` at `step`.
    fn write_summary(&mut self, step: i64, values: Vec<SummaryValue>) -> Result<(), CliError> {
        self.write_event(&Event {
            wall_time: now_secs(),
            step,
            what: Some(EventKind::Summary(Summary { value: values })),
        })
    }

    /// Scalars `(tag, value)` at `step`, as one summary event of `simple_value`s (what
    /// TensorBoard's scalar dashboard reads); nothing is written for no values.
    ///
    /// # Errors
    /// [`CliError::Io`] if the file cannot be written.
    pub fn add_scalars(&mut self, step: i64, values: &[(String, f32)]) -> Result<(), CliError> {
        if values.is_empty() {
            return Ok(());
        }
        self.write_summary(
            step,
            values
                .iter()
                .map(|(tag, value)| SummaryValue {
                    tag: tag.clone(),
                    metadata: None,
                    value: Some(ValueKind::SimpleValue(*value)),
                })
                .collect(),
        )
    }

    /// The PNG file `png` as image `tag` at `step`, its size and colour space from its header.
    ///
    /// # Errors
    /// [`CliError::Png`] if `png` is not a PNG file ([`PngHeader::parse`]), [`CliError::Io`] if
    /// the file cannot be written.
    pub fn add_png(&mut self, tag: &str, step: i64, png: Vec<u8>) -> Result<(), CliError> {
        let header = PngHeader::parse(tag, &png)?;
        self.write_summary(
            step,
            vec![SummaryValue {
                tag: tag.to_string(),
                metadata: None,
                value: Some(ValueKind::Image(Image {
                    height: header.height,
                    width: header.width,
                    colorspace: header.colorspace,
                    encoded_image_string: png,
                })),
            }],
        )
    }

    /// Markdown `text` as text summary `tag` at `step`: a scalar `DT_STRING` tensor for the
    /// plugin "text" (as `tensorboard/plugins/text/summary_v2.py` writes it; its
    /// `TextPluginData` content of version 0 serialises to no bytes).
    ///
    /// # Errors
    /// [`CliError::Io`] if the file cannot be written.
    pub fn add_text(&mut self, tag: &str, step: i64, text: &str) -> Result<(), CliError> {
        self.write_summary(
            step,
            vec![SummaryValue {
                tag: tag.to_string(),
                metadata: Some(SummaryMetadata {
                    plugin_data: Some(PluginData {
                        plugin_name: "text".into(),
                        content: Vec::new(),
                    }),
                    data_class: DATA_CLASS_TENSOR,
                }),
                value: Some(ValueKind::Tensor(TensorProto {
                    dtype: DT_STRING,
                    tensor_shape: Some(TensorShapeProto::default()),
                    float_val: Vec::new(),
                    string_val: vec![text.as_bytes().to_vec()],
                })),
            }],
        )
    }

    /// The hyper-parameters of this run for TensorBoard's HParams plugin: a `SessionStartInfo`
    /// under [`HPARAMS_SESSION_START_TAG`], with the empty float tensor TensorBoard's own writer
    /// attaches (`NULL_TENSOR` of `tensorboard/plugins/hparams/metadata.py`). The plugin builds
    /// the experiment (hyper-parameter and metric columns) from the sessions it finds.
    ///
    /// # Errors
    /// [`CliError::Io`] if the file cannot be written.
    pub fn add_hparams(
        &mut self,
        hparams: BTreeMap<String, HParamKind>,
        start_time_secs: f64,
    ) -> Result<(), CliError> {
        let content = HParamsPluginData {
            version: 0,
            session_start_info: Some(SessionStartInfo {
                hparams: hparams
                    .into_iter()
                    .map(|(name, kind)| (name, HParamValue { kind: Some(kind) }))
                    .collect(),
                start_time_secs,
            }),
        };
        self.write_summary(
            0,
            vec![SummaryValue {
                tag: HPARAMS_SESSION_START_TAG.into(),
                metadata: Some(SummaryMetadata {
                    plugin_data: Some(PluginData {
                        plugin_name: "hparams".into(),
                        content: content.encode_to_vec(),
                    }),
                    data_class: 0,
                }),
                value: Some(ValueKind::Tensor(TensorProto {
                    dtype: DT_FLOAT,
                    tensor_shape: Some(TensorShapeProto {
                        dim: vec![TensorShapeDim { size: 0 }],
                    }),
                    float_val: Vec::new(),
                    string_val: Vec::new(),
                })),
            }],
        )
    }

    /// Flushes and syncs the temporary file and renames it onto the target path (a live file:
    /// flushes and syncs it).
    ///
    /// # Errors
    /// [`CliError::Io`] if the file cannot be flushed, synced or renamed.
    pub fn finish(mut self) -> Result<PathBuf, CliError> {
        let io = |path: &Path, source| CliError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(file) = self.file.take() {
            let file = file
                .into_inner()
                .map_err(|e| io(&self.temp, e.into_error()))?;
            file.sync_all().map_err(|e| io(&self.temp, e))?;
        }
        if !self.live {
            std::fs::rename(&self.temp, &self.path).map_err(|e| io(&self.path, e))?;
        }
        Ok(self.path.clone())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        // A live file keeps what it holds: its readers have seen it already.
        if self.file.take().is_some() && !self.live {
            // Unfinished (an error on the way): no partial event file is left behind. A failed
            // removal leaves only a hidden temporary file, so its error is not worth a panic.
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Decodes the event file `bytes`: TFRecord framing with both checksums checked, then each
/// record as an [`Event`]. Test-only: the export never reads event files.
#[cfg(test)]
pub fn read_events(bytes: &[u8]) -> Result<Vec<Event>, String> {
    let mut events = Vec::new();
    let mut at = 0;
    let word = |at: usize| -> Result<u32, String> {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| format!("truncated checksum at byte {at}"))
    };
    while at < bytes.len() {
        let length_bytes = bytes
            .get(at..at + 8)
            .ok_or_else(|| format!("truncated length at byte {at}"))?;
        if word(at + 8)? != masked_crc32c(length_bytes) {
            return Err(format!("length checksum mismatch at byte {at}"));
        }
        let length = u64::from_le_bytes(length_bytes.try_into().map_err(|_| "length")?) as usize;
        let data = bytes
            .get(at + 12..at + 12 + length)
            .ok_or_else(|| format!("truncated record at byte {at}"))?;
        if word(at + 12 + length)? != masked_crc32c(data) {
            return Err(format!("data checksum mismatch at byte {at}"));
        }
        events.push(Event::decode(data).map_err(|e| e.to_string())?);
        at += 12 + length + 4;
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start of a PNG file: signature, IHDR (`width`, `height`, depth 8, `colour_type`), then
    /// bytes standing for the rest of the file, which the writer copies unread.
    fn png(width: u32, height: u32, colour_type: u8) -> Vec<u8> {
        let mut bytes = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
        bytes.extend_from_slice(&13u32.to_be_bytes());
        bytes.extend_from_slice(b"IHDR");
        bytes.extend_from_slice(&width.to_be_bytes());
        bytes.extend_from_slice(&height.to_be_bytes());
        bytes.extend_from_slice(&[8, colour_type, 0, 0, 0]);
        bytes.extend_from_slice(b"rest of the file");
        bytes
    }

    /// The CRC-32C check value of "123456789" is 0xE3069283 (Castagnoli; the catalogue of
    /// parametrised CRC algorithms, CRC-32/ISCSI); masked with the TFRecord formula in Python,
    /// `((c >> 15 | c << 17) & 0xffffffff) + 0xa282ead8 & 0xffffffff`, it is 0xC78AB0E5.
    #[test]
    fn masked_crc_matches_the_check_value() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(masked_crc32c(b"123456789"), 0xC78A_B0E5);
    }

    #[test]
    fn events_round_trip_through_the_framing_and_protobuf() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.out.tfevents.1.host.infobound");
        let image = png(3, 2, 6);
        let mut writer = EventWriter::create(&path).expect("create");
        writer
            .add_scalars(25, &[("train/loss".into(), 1.5), ("train/kl".into(), 3.0)])
            .expect("scalars");
        writer.add_scalars(40, &[]).expect("no scalars");
        writer
            .add_scalars(50, &[("train/loss".into(), -0.25)])
            .expect("scalar");
        writer.add_png("images/a", 50, image.clone()).expect("png");
        writer
            .add_text("config", 0, "```toml\na = 1\n```")
            .expect("text");
        let hparams = BTreeMap::from([
            ("objective.alpha".to_string(), HParamKind::Number(0.25)),
            ("model.init".to_string(), HParamKind::String("burn".into())),
        ]);
        writer.add_hparams(hparams.clone(), 7.0).expect("hparams");
        assert!(!path.exists(), "nothing at the target before finish");
        assert_eq!(writer.finish().expect("finish"), path);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "only the event file: {leftovers:?}");

        let events = read_events(&std::fs::read(&path).expect("read")).expect("decode");
        assert_eq!(events.len(), 6);
        assert_eq!(
            events[0].what,
            Some(EventKind::FileVersion("brain.Event:2".into()))
        );
        let single = |event: &Event| match &event.what {
            Some(EventKind::Summary(summary)) if summary.value.len() == 1 => {
                (event.step, summary.value[0].clone())
            }
            other => panic!("not a one-value summary: {other:?}"),
        };
        let Some(EventKind::Summary(first)) = &events[1].what else {
            panic!("a summary")
        };
        assert_eq!(events[1].step, 25);
        let pairs: Vec<_> = first
            .value
            .iter()
            .map(|v| (v.tag.as_str(), v.value.clone()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("train/loss", Some(ValueKind::SimpleValue(1.5))),
                ("train/kl", Some(ValueKind::SimpleValue(3.0))),
            ]
        );
        let (step, value) = single(&events[2]);
        assert_eq!(step, 50);
        assert_eq!(value.value, Some(ValueKind::SimpleValue(-0.25)));
        let (step, value) = single(&events[3]);
        assert_eq!((step, value.tag.as_str()), (50, "images/a"));
        assert_eq!(
            value.value,
            Some(ValueKind::Image(Image {
                height: 2,
                width: 3,
                colorspace: 4,
                encoded_image_string: image,
            }))
        );
        let (_, value) = single(&events[4]);
        let Some(ValueKind::Tensor(tensor)) = value.value else {
            panic!("text is a tensor")
        };
        assert_eq!((tensor.dtype, value.tag.as_str()), (DT_STRING, "config"));
        assert_eq!(tensor.string_val, vec![b"```toml\na = 1\n```".to_vec()]);
        let (_, value) = single(&events[5]);
        assert_eq!(value.tag, HPARAMS_SESSION_START_TAG);
        let plugin = value
            .metadata
            .and_then(|m| m.plugin_data)
            .expect("plugin data");
        assert_eq!(plugin.plugin_name, "hparams");
        let data = HParamsPluginData::decode(plugin.content.as_slice()).expect("hparams data");
        let start = data.session_start_info.expect("start info");
        assert_eq!(start.start_time_secs, 7.0);
        let decoded: BTreeMap<_, _> = start
            .hparams
            .into_iter()
            .map(|(k, v)| (k, v.kind.expect("kind")))
            .collect();
        assert_eq!(decoded, hparams);
    }

    #[test]
    fn a_corrupted_byte_fails_the_checksum() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.out.tfevents.1.host.infobound");
        let mut writer = EventWriter::create(&path).expect("create");
        writer.add_scalars(1, &[("x".into(), 2.0)]).expect("scalar");
        writer.finish().expect("finish");
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 6;
        bytes[last] ^= 1;
        let error = read_events(&bytes).expect_err("corrupt");
        assert!(error.contains("checksum"), "{error}");
    }

    #[test]
    fn png_headers_give_size_and_colour_space_or_a_typed_error() {
        let header = PngHeader::parse("a", &png(640, 480, 0)).expect("gray");
        assert_eq!(
            (header.width, header.height, header.colorspace),
            (640, 480, 1)
        );
        assert_eq!(
            PngHeader::parse("a", &png(1, 1, 2))
                .map(|h| h.colorspace)
                .ok(),
            Some(3)
        );
        for bad in [
            b"GIF89a, not a png at all....".to_vec(),
            png(0, 4, 2),
            png(4, u32::MAX, 2),
            png(4, 4, 5),
            png(4, 4, 2)[..20].to_vec(),
        ] {
            let error = PngHeader::parse("grid", &bad).expect_err("bad png");
            assert!(
                matches!(&error, CliError::Png { name, .. } if name == "grid"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_writer_dropped_unfinished_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.out.tfevents.1.host.infobound");
        let mut writer = EventWriter::create(&path).expect("create");
        writer.add_scalars(1, &[("x".into(), 2.0)]).expect("scalar");
        drop(writer);
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    }
}
