//! Writers of reduced dataset files in the official layouts, for the tests of this and other
//! crates and for benchmark inputs (feature `fixtures`).
//!
//! Every file has the official keys, dtypes and array ranks, over a factor grid the caller picks
//! (read them with `strict_shapes = false`). Pixels follow documented formulas
//! ([`dsprites_fixture_pixel`], [`mpi3d_fixture_byte`]) so a test can check any image it reads
//! back without keeping a copy. Files are written atomically.

use std::path::Path;

use crate::DataError;
use crate::readers::npy::DType;
use crate::readers::{NpyArray, NpzCompression, NpzWriter};

/// The pickle protocol 2 stream of an empty dict (`\x80\x02` PROTO 2, `}` EMPTY_DICT, `q\x00`
/// BINPUT 0, `.` STOP): the payload of the fixture's `metadata` member. The readers never
/// interpret it; it only has to look like what numpy writes for an object array.
const PICKLED_EMPTY_DICT: &[u8] = b"\x80\x02}q\x00.";

/// Row-major unravelling of `index` over `sizes` (last factor fastest).
fn unravel(mut index: usize, sizes: &[usize]) -> Vec<usize> {
    let mut out = vec![0; sizes.len()];
    for k in (0..sizes.len()).rev() {
        out[k] = index % sizes[k];
        index /= sizes[k];
    }
    out
}

fn grid_len(sizes: &[usize]) -> Result<usize, DataError> {
    sizes
        .iter()
        .try_fold(1usize, |acc, &s| acc.checked_mul(s))
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            DataError::InvalidArgument(format!("factor sizes {sizes:?} give no or too many images"))
        })
}

/// Pixel `p` (row-major within the image) of fixture dSprites image `index`: bit `p mod 6` of
/// `index`, so every image of up to 64 states is distinct.
pub fn dsprites_fixture_pixel(index: usize, p: usize) -> u8 {
    ((index >> (p % 6)) & 1) as u8
}

/// The bytes of an object-dtype `.npy` holding a pickle, as the official dSprites `metadata`
/// member is stored (header `{'descr': '|O', 'fortran_order': False, 'shape': (), }`).
pub fn pickled_metadata_npy() -> Vec<u8> {
    let header = "{'descr': '|O', 'fortran_order': False, 'shape': (), }";
    let unpadded = 10 + header.len() + 1;
    let padded = format!(
        "{header}{}\n",
        " ".repeat(unpadded.next_multiple_of(64) - unpadded)
    );
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(padded.len() as u16).to_le_bytes());
    out.extend_from_slice(padded.as_bytes());
    out.extend_from_slice(PICKLED_EMPTY_DICT);
    out
}

/// Writes a dSprites archive over `factor_sizes` (color, shape, scale, orientation, posX, posY)
/// with `side` × `side` images: `imgs` `u8` [N, side, side] ([`dsprites_fixture_pixel`]),
/// `latents_classes` `i64` [N, 6] (the row-major grid), `latents_values` `f64` [N, 6] (class
/// × 0.5) and, like the official file, a pickled `metadata` member
/// ([`pickled_metadata_npy`]).
pub fn write_dsprites_npz(
    path: &Path,
    factor_sizes: [usize; 6],
    side: usize,
    compression: NpzCompression,
) -> Result<(), DataError> {
    let n = grid_len(&factor_sizes)?;
    let pixels = (0..n)
        .flat_map(|i| (0..side * side).map(move |p| dsprites_fixture_pixel(i, p)))
        .collect();
    let classes: Vec<i64> = (0..n)
        .flat_map(|i| unravel(i, &factor_sizes).into_iter().map(|c| c as i64))
        .collect();
    let values = classes.iter().map(|&c| c as f64 * 0.5).collect();
    let mut writer = NpzWriter::create(path, compression)?;
    writer.add("imgs", &NpyArray::new(vec![n, side, side], pixels)?)?;
    writer.add("latents_classes", &NpyArray::new(vec![n, 6], classes)?)?;
    writer.add("latents_values", &NpyArray::new(vec![n, 6], values)?)?;
    writer.add_raw("metadata", &pickled_metadata_npy())?;
    writer.finish()
}

/// Byte of fixture MPI3D image `index` at row `y`, column `x`, channel `c` (HWC).
pub fn mpi3d_fixture_byte(index: usize, y: usize, x: usize, c: usize) -> u8 {
    ((index * 31 + y * 7 + x * 3 + c * 101) % 256) as u8
}

/// Writes an MPI3D archive over `factor_sizes` with `side` × `side` RGB images: one array
/// `images`, `u8` [N, side, side, 3] ([`mpi3d_fixture_byte`]), as the official files hold.
///
/// The pixels are streamed image by image, so the full official size
/// ([`crate::readers::MPI3D_FACTOR_SIZES`], 64 px: 12.7 GB) can be written with a few
/// kilobytes of memory.
pub fn write_mpi3d_npz(
    path: &Path,
    factor_sizes: [usize; 7],
    side: usize,
    compression: NpzCompression,
) -> Result<(), DataError> {
    let n = grid_len(&factor_sizes)?;
    let mut writer = NpzWriter::create(path, compression)?;
    writer.add_streamed("images", DType::U8, &[n, side, side, 3], |out| {
        let mut image = vec![0u8; side * side * 3];
        for i in 0..n {
            let mut bytes = image.iter_mut();
            for y in 0..side {
                for x in 0..side {
                    for c in 0..3 {
                        if let Some(byte) = bytes.next() {
                            *byte = mpi3d_fixture_byte(i, y, x, c);
                        }
                    }
                }
            }
            out.write_all(&image)?;
        }
        Ok(())
    })?;
    writer.finish()
}
