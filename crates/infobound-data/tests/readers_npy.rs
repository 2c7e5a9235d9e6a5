//! .npy / .npz parsing against files written by numpy itself, round trips through the crate's
//! writer, and every rejection path (bad magic, versions, dtypes, orders, shapes, truncation,
//! hostile sizes, missing keys, corrupt archives).

use std::io::Cursor;
use std::path::Path;

use infobound_data::DataError;
use infobound_data::readers::npy::{
    AnyNpyArray, encode_npy, parse_npy, parse_npy_any, read_npy_file, write_npy_file,
};
use infobound_data::readers::{
    DType, FileArray, NpyArray, NpyElement, NpzArchive, NpzCompression, NpzWriter,
};
use proptest::prelude::*;

/// `np.save(f, np.arange(6, dtype='<i2').reshape(2, 3))` (numpy 2.x).
const NUMPY_I2: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<i2', 'fortran_order': False, 'shape': (2, 3), }                                                          \n\x00\x00\x01\x00\x02\x00\x03\x00\x04\x00\x05\x00";
/// `np.save(f, np.array([True, False]))`.
const NUMPY_BOOL: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }                                                            \n\x01\x00";
/// `np.save(f, np.array(3, dtype='u1'))` (0-d).
const NUMPY_SCALAR: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': False, 'shape': (), }                                                              \n\x03";
/// `np.save(f, np.array([[1.5, -2.0]]))`, hex.
const NUMPY_F8_HEX: &str = "934e554d5059010076007b276465736372273a20273c6638272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028312c2032292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a000000000000f83f00000000000000c0";
/// `np.savez_compressed(f, a=np.arange(12, dtype='<i4').reshape(3, 4), b=np.array([0.5, 1.0], dtype='<f4'))`
/// (zip64 local headers, deflated), hex.
const NUMPY_NPZ_DEFLATED_HEX: &str = "504b03042d000000080000002100b8891ac5ffffffffffffffff05001400612e6e707901001000b00000000000000064000000000000009bec17ea1b10c9c850c650ad9e925a9c5ca46ea5a06e9369a2aea3a09e965f54529498179f5f94920a12774bcc294e058a17672416a402f91ac63a0a269a3a0ab50a64032e06206004622620660662162066056236206607620e20e6046290426e200600504b03042d000000080000002100a42a2202ffffffffffffffff05001400622e6e70790100100088000000000000004c000000000000009bec17ea1b10c9c850c650ad9e925a9c5ca46ea5a06e9366a2aea3a09e965f54529498179f5f94920a12774bcc294e058a17672416a402f91a463a9a3a0ab50a14002e0606067b0686067b00504b01022d032d000000080000002100b8891ac564000000b0000000050000000000000000000000800100000000612e6e7079504b01022d032d000000080000002100a42a22024c0000008800000005000000000000000000000080019b000000622e6e7079504b05060000000002000200660000001e0100000000";
/// The same arrays through `np.savez` (stored), hex.
const NUMPY_NPZ_STORED_HEX: &str = "504b03042d000000000000002100b8891ac5ffffffffffffffff05001400612e6e707901001000b000000000000000b000000000000000934e554d5059010076007b276465736372273a20273c6934272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028332c2034292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a000000000100000002000000030000000400000005000000060000000700000008000000090000000a0000000b000000504b03042d000000000000002100a42a2202ffffffffffffffff05001400622e6e70790100100088000000000000008800000000000000934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a0000003f0000803f504b01022d032d000000000000002100b8891ac5b0000000b0000000050000000000000000000000800100000000612e6e7079504b01022d032d000000000000002100a42a220288000000880000000500000000000000000000008001e7000000622e6e7079504b0506000000000200020066000000a60100000000";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn fixture_path() -> &'static Path {
    Path::new("fixture.npy")
}

fn expect_invalid<T: std::fmt::Debug>(result: Result<T, DataError>, needle: &str) {
    match result {
        Err(DataError::InvalidFile { message, .. }) => assert!(
            message.contains(needle),
            "message `{message}` lacks `{needle}`"
        ),
        other => panic!("expected InvalidFile containing `{needle}`, got {other:?}"),
    }
}

/// Rewrites the header text of an encoded file, keeping its length field consistent.
fn with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn parses_files_written_by_numpy() {
    let a = parse_npy::<i16>(NUMPY_I2, fixture_path()).unwrap();
    assert_eq!(a.shape(), &[2, 3]);
    assert_eq!(a.data(), &[0, 1, 2, 3, 4, 5]);
    let b = parse_npy::<bool>(NUMPY_BOOL, fixture_path()).unwrap();
    assert_eq!(b.data(), &[true, false]);
    let s = parse_npy::<u8>(NUMPY_SCALAR, fixture_path()).unwrap();
    assert!(s.shape().is_empty());
    assert_eq!(s.data(), &[3]);
    let f = parse_npy::<f64>(&hex(NUMPY_F8_HEX), fixture_path()).unwrap();
    assert_eq!(f.shape(), &[1, 2]);
    assert_eq!(f.data(), &[1.5, -2.0]);
}

#[test]
fn encoder_writes_the_bytes_numpy_writes() {
    let a = NpyArray::new(vec![2, 3], vec![0i16, 1, 2, 3, 4, 5]).unwrap();
    assert_eq!(encode_npy(&a), NUMPY_I2);
    let b = NpyArray::new(vec![2], vec![true, false]).unwrap();
    assert_eq!(encode_npy(&b), NUMPY_BOOL);
    let f = NpyArray::new(vec![1, 2], vec![1.5f64, -2.0]).unwrap();
    assert_eq!(encode_npy(&f), hex(NUMPY_F8_HEX));
}

fn round_trip<T: NpyElement + PartialEq + std::fmt::Debug>(shape: Vec<usize>, data: Vec<T>) {
    let array = NpyArray::new(shape, data).unwrap();
    let bytes = encode_npy(&array);
    assert_eq!(
        (bytes.len() - array.data().len() * T::DTYPE.item_size()) % 64,
        0
    );
    assert_eq!(parse_npy::<T>(&bytes, fixture_path()).unwrap(), array);
}

proptest! {
    #[test]
    fn every_dtype_round_trips(rows in 0usize..4, cols in 1usize..5, seed in any::<u64>()) {
        let n = rows * cols;
        let v: Vec<u64> = (0..n as u64).map(|i| seed.wrapping_mul(i + 1).rotate_left(i as u32)).collect();
        round_trip(vec![rows, cols], v.iter().map(|&x| x as u8).collect::<Vec<_>>());
        round_trip(vec![rows, cols], v.iter().map(|&x| x as i8).collect::<Vec<_>>());
        round_trip(vec![rows, cols], v.iter().map(|&x| x as u16).collect::<Vec<_>>());
        round_trip(vec![rows, cols], v.iter().map(|&x| x as i16).collect::<Vec<_>>());
        round_trip(vec![rows, cols], v.iter().map(|&x| x as u32).collect::<Vec<_>>());
        round_trip(vec![rows, cols], v.iter().map(|&x| x as i32).collect::<Vec<_>>());
        round_trip(vec![rows, cols], v.clone());
        round_trip(vec![rows, cols], v.iter().map(|&x| x as i64).collect::<Vec<_>>());
        round_trip(vec![rows, cols], v.iter().map(|&x| (x as i32) as f32).collect::<Vec<_>>());
        round_trip(vec![rows, cols], v.iter().map(|&x| x as f64 * 0.5).collect::<Vec<_>>());
        round_trip(vec![rows, cols], v.iter().map(|&x| x % 2 == 0).collect::<Vec<_>>());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_npy::<u8>(&bytes, fixture_path());
        let mut prefixed = NUMPY_I2[..10].to_vec();
        prefixed.extend_from_slice(&bytes);
        let _ = parse_npy::<i16>(&prefixed, fixture_path());
    }

    #[test]
    fn every_truncation_is_rejected(cut in 0usize..NUMPY_I2.len()) {
        prop_assert!(parse_npy::<i16>(&NUMPY_I2[..cut], fixture_path()).is_err());
    }
}

#[test]
fn versions_two_and_three_and_python2_long_suffix_are_read() {
    let header = "{'descr': '<i2', 'shape': (2L, 3L), 'fortran_order': False}\n";
    for version in [2u8, 3] {
        let mut bytes = vec![0x93, b'N', b'U', b'M', b'P', b'Y', version, 0];
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&NUMPY_I2[NUMPY_I2.len() - 12..]);
        let a = parse_npy::<i16>(&bytes, fixture_path()).unwrap();
        assert_eq!(a.shape(), &[2, 3]);
        assert_eq!(a.data()[5], 5);
    }
}

#[test]
fn rejects_malformed_headers() {
    let data = &NUMPY_I2[NUMPY_I2.len() - 12..];
    let mut bad_magic = NUMPY_I2.to_vec();
    bad_magic[1] = b'X';
    expect_invalid(parse_npy::<i16>(&bad_magic, fixture_path()), "magic");
    let mut bad_version = NUMPY_I2.to_vec();
    bad_version[6] = 4;
    expect_invalid(
        parse_npy::<i16>(&bad_version, fixture_path()),
        "version 4.0",
    );
    let fortran = with_header(
        "{'descr': '<i2', 'fortran_order': True, 'shape': (2, 3), }\n",
        data,
    );
    expect_invalid(
        parse_npy::<i16>(&fortran, fixture_path()),
        "fortran_order is True",
    );
    let big_endian = with_header(
        "{'descr': '>i2', 'fortran_order': False, 'shape': (2, 3), }\n",
        data,
    );
    expect_invalid(parse_npy::<i16>(&big_endian, fixture_path()), "byte order");
    let structured = with_header(
        "{'descr': [('a', '<i2')], 'fortran_order': False, 'shape': (6,), }\n",
        data,
    );
    expect_invalid(parse_npy::<i16>(&structured, fixture_path()), "structured");
    let complex = with_header(
        "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }\n",
        &data[..8],
    );
    expect_invalid(
        parse_npy::<i16>(&complex, fixture_path()),
        "unsupported dtype",
    );
    let missing = with_header("{'descr': '<i2', 'shape': (2, 3), }\n", data);
    expect_invalid(parse_npy::<i16>(&missing, fixture_path()), "fortran_order");
    let repeated = with_header(
        "{'descr': '<i2', 'descr': '<i2', 'fortran_order': False, 'shape': (6,)}\n",
        data,
    );
    expect_invalid(parse_npy::<i16>(&repeated, fixture_path()), "repeated");
    let negative = with_header(
        "{'descr': '<i2', 'fortran_order': False, 'shape': (-6,)}\n",
        data,
    );
    expect_invalid(parse_npy::<i16>(&negative, fixture_path()), "non-negative");
    let garbage = with_header(
        "{'descr': '<i2', 'fortran_order': False, 'shape': (6,)} x\n",
        data,
    );
    expect_invalid(
        parse_npy::<i16>(&garbage, fixture_path()),
        "after the header",
    );
    let mut non_ascii = with_header(
        "{'descr': '<i2', 'fortran_order': False, 'shape': (6,)} \n",
        data,
    );
    non_ascii[15] = 0xC3;
    expect_invalid(parse_npy::<i16>(&non_ascii, fixture_path()), "ASCII");
}

#[test]
fn rejects_wrong_dtype_and_size_mismatches() {
    expect_invalid(
        parse_npy::<f32>(NUMPY_I2, fixture_path()),
        "expected dtype <f4, found <i2",
    );
    let truncated = &NUMPY_I2[..NUMPY_I2.len() - 1];
    expect_invalid(
        parse_npy::<i16>(truncated, fixture_path()),
        "needs 12 data bytes but 11",
    );
    let mut trailing = NUMPY_I2.to_vec();
    trailing.push(0);
    expect_invalid(
        parse_npy::<i16>(&trailing, fixture_path()),
        "needs 12 data bytes but 13",
    );
    let mut bad_bool = NUMPY_BOOL.to_vec();
    *bad_bool.last_mut().unwrap() = 2;
    expect_invalid(
        parse_npy::<bool>(&bad_bool, fixture_path()),
        "neither 0 nor 1",
    );
    let mut long_header = NUMPY_I2.to_vec();
    long_header[8] = 0xff;
    long_header[9] = 0xff;
    expect_invalid(parse_npy::<i16>(&long_header, fixture_path()), "shorter");
}

#[test]
fn hostile_shapes_are_rejected_before_allocation() {
    let data = &NUMPY_I2[NUMPY_I2.len() - 12..];
    // 2^62 elements of 8 bytes: the product overflows usize.
    let overflow = with_header(
        "{'descr': '<i8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }\n",
        data,
    );
    expect_invalid(parse_npy::<i64>(&overflow, fixture_path()), "overflow");
    // A terabyte claimed by a 100-byte file must fail on the size check, not on allocation.
    let huge = with_header(
        "{'descr': '<i8', 'fortran_order': False, 'shape': (137438953472,), }\n",
        data,
    );
    expect_invalid(parse_npy::<i64>(&huge, fixture_path()), "data bytes");
    let too_many_digits = with_header(
        "{'descr': '<i8', 'fortran_order': False, 'shape': (99999999999999999999999,), }\n",
        data,
    );
    expect_invalid(
        parse_npy::<i64>(&too_many_digits, fixture_path()),
        "does not fit",
    );
}

#[test]
fn reads_npy_files_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    std::fs::write(&path, NUMPY_I2).unwrap();
    assert_eq!(read_npy_file::<i16>(&path).unwrap().data()[4], 4);
    let missing = dir.path().join("missing.npy");
    assert!(matches!(
        read_npy_file::<i16>(&missing),
        Err(DataError::Io { .. })
    ));
    std::fs::write(&path, &NUMPY_I2[..40]).unwrap();
    match read_npy_file::<i16>(&path) {
        Err(DataError::InvalidFile { path: p, .. }) => assert_eq!(p, path),
        other => panic!("expected InvalidFile, got {other:?}"),
    }
}

#[test]
fn any_dtype_reads_and_atomic_npy_files_round_trip() {
    match parse_npy_any(NUMPY_I2, Path::new("a.npy")).unwrap() {
        AnyNpyArray::I16(a) => assert_eq!(a.data(), &[0, 1, 2, 3, 4, 5]),
        other => panic!("expected I16, got {other:?}"),
    }
    let bools = parse_npy_any(NUMPY_BOOL, Path::new("b.npy")).unwrap();
    assert_eq!((bools.dtype(), bools.shape()), (DType::Bool, &[2usize][..]));
    expect_invalid(
        parse_npy_any(&NUMPY_I2[..NUMPY_I2.len() - 1], Path::new("a.npy")),
        "needs 12 data bytes but 11 follow",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    let array = NpyArray::new(vec![2, 3], vec![0.5f32, 1.0, -2.0, 3.0, 4.0, 5.5]).unwrap();
    write_npy_file(&path, &array).unwrap();
    assert_eq!(read_npy_file::<f32>(&path).unwrap(), array);
    let on_disk = FileArray::open_npy(&path).unwrap();
    assert_eq!(on_disk.header().shape, vec![2, 3]);
    let mut third = [0u8; 4];
    on_disk.read_bytes(8, &mut third).unwrap();
    assert_eq!(f32::from_le_bytes(third), -2.0);
    assert!(matches!(
        on_disk.read_bytes(22, &mut third),
        Err(DataError::InvalidArgument(_))
    ));
    assert_eq!(on_disk.read_all::<f32>().unwrap(), array.data());
    expect_invalid(on_disk.read_all::<f64>(), "expected dtype <f8, found <f4");
}

#[test]
fn numpy_archives_are_read_in_place_or_through_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    for (name, hex_text, cached) in [
        ("stored.npz", NUMPY_NPZ_STORED_HEX, false),
        ("deflated.npz", NUMPY_NPZ_DEFLATED_HEX, true),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, hex(hex_text)).unwrap();
        let mut archive = NpzArchive::open(&path).unwrap();
        let a = archive.file_array("a", None).unwrap();
        assert_eq!(a.header().shape, vec![3, 4]);
        assert_eq!(a.read_all::<i32>().unwrap(), (0..12).collect::<Vec<i32>>());
        let mut element = [0u8; 4];
        a.read_bytes(4 * 7, &mut element).unwrap();
        assert_eq!(i32::from_le_bytes(element), 7);
        let b = archive.file_array("b", None).unwrap();
        assert_eq!(b.read_all::<f32>().unwrap(), vec![0.5, 1.0]);
        assert_eq!(a.path() != path, cached, "{name}");
    }
}

fn numpy_npz(hex_text: &str) -> NpzArchive<Cursor<Vec<u8>>> {
    let bytes = hex(hex_text);
    let len = bytes.len() as u64;
    NpzArchive::from_reader(Cursor::new(bytes), len, Path::new("numpy.npz")).unwrap()
}

#[test]
fn reads_npz_archives_written_by_numpy() {
    for text in [NUMPY_NPZ_DEFLATED_HEX, NUMPY_NPZ_STORED_HEX] {
        let mut npz = numpy_npz(text);
        assert_eq!(npz.keys(), vec!["a".to_string(), "b".to_string()]);
        let header = npz.header("a").unwrap();
        assert_eq!(
            (header.dtype, header.shape.clone()),
            (DType::I32, vec![3, 4])
        );
        let a = npz.read::<i32>("a").unwrap();
        assert_eq!(a.data(), (0..12).collect::<Vec<i32>>().as_slice());
        assert_eq!(npz.read::<f32>("b").unwrap().data(), &[0.5, 1.0]);
        expect_invalid(
            npz.read::<i32>("latents"),
            "missing array `latents` (found: a, b)",
        );
        expect_invalid(
            npz.read::<i64>("a"),
            "array `a`: expected dtype <i8, found <i4",
        );
    }
}

fn written_npz(compression: NpzCompression) -> Vec<u8> {
    let mut writer = NpzWriter::new(Cursor::new(Vec::new()), compression, Path::new("w.npz"));
    writer
        .add(
            "imgs",
            &NpyArray::new(vec![2, 2, 2], vec![0u8, 1, 1, 0, 1, 1, 0, 0]).unwrap(),
        )
        .unwrap();
    writer
        .add(
            "values",
            &NpyArray::new(vec![3], vec![0.25f64, -1.0, 7.0]).unwrap(),
        )
        .unwrap();
    writer.finish().unwrap().into_inner()
}

#[test]
fn npz_writer_round_trips_stored_and_deflated() {
    for compression in [NpzCompression::Stored, NpzCompression::Deflated] {
        let bytes = written_npz(compression);
        let len = bytes.len() as u64;
        let mut npz = NpzArchive::from_reader(Cursor::new(bytes), len, Path::new("w.npz")).unwrap();
        assert_eq!(npz.read::<u8>("imgs").unwrap().shape(), &[2, 2, 2]);
        assert_eq!(
            npz.read::<f64>("values").unwrap().data(),
            &[0.25, -1.0, 7.0]
        );
    }
}

#[test]
fn damaged_archives_fail_with_typed_errors() {
    for compression in [NpzCompression::Stored, NpzCompression::Deflated] {
        let bytes = written_npz(compression);
        // Cut the central directory off.
        let cut = bytes[..bytes.len() - 30].to_vec();
        let len = cut.len() as u64;
        expect_invalid(
            NpzArchive::from_reader(Cursor::new(cut), len, Path::new("w.npz")),
            "not a valid zip",
        );
        // Flip every byte of the entry data in turn: each must fail cleanly or (when the byte
        // is irrelevant padding) still read, never panic.
        for i in 30..bytes.len() / 2 {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x5a;
            let len = damaged.len() as u64;
            if let Ok(mut npz) =
                NpzArchive::from_reader(Cursor::new(damaged), len, Path::new("w.npz"))
                && let Err(e) = npz.read::<u8>("imgs")
            {
                assert!(matches!(e, DataError::InvalidFile { .. }), "{e:?}");
            }
        }
    }
    let not_zip = b"definitely not a zip archive".to_vec();
    let len = not_zip.len() as u64;
    expect_invalid(
        NpzArchive::from_reader(Cursor::new(not_zip), len, Path::new("x.npz")),
        "not a valid zip",
    );
}

#[test]
fn corrupt_stored_payload_is_caught_by_the_crc() {
    let bytes = written_npz(NpzCompression::Stored);
    // The last data byte of  sits right before the second local header.
    let second = bytes
        .windows(4)
        .enumerate()
        .skip(4)
        .find(|(_, w)| *w == b"PK\x03\x04")
        .map(|(i, _)| i)
        .unwrap();
    let mut damaged = bytes.clone();
    damaged[second - 1] ^= 1;
    let len = damaged.len() as u64;
    let mut npz = NpzArchive::from_reader(Cursor::new(damaged), len, Path::new("w.npz")).unwrap();
    expect_invalid(npz.read::<u8>("imgs"), "corrupt");
}
