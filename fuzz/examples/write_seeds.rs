//! Writes the seed corpora of the `dsprites`, `mpi3d` and `image_folder` targets into
//! `seeds/<target>/` from the real-format fixture writers of `infobound-data` (`fixtures`
//! feature) and its PNG writer. Run from `fuzz/`: `cargo +nightly run --example write_seeds`.

use std::path::Path;

use infobound_data::fixtures::{write_dsprites_npz, write_mpi3d_npz};
use infobound_data::readers::NpzCompression;
use infobound_data::{DataError, ImageBatch, ObservationShape, save_png_grid};

/// The MPI3D grid the `mpi3d` target opens with (keep in step with `fuzz_targets/mpi3d.rs`).
const MPI3D_SIZES: [usize; 7] = [1, 2, 1, 1, 1, 2, 2];

/// One image-folder record (see `fuzz_targets/image_folder.rs`).
fn record(out: &mut Vec<u8>, kind: u8, class: u8, bytes: &[u8]) {
    out.push(kind + 8 * class);
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn png(dir: &Path, side: usize, seed: usize) -> Result<Vec<u8>, DataError> {
    let shape = ObservationShape {
        channels: 3,
        height: side,
        width: side,
    };
    let pixels = (0..3 * side * side)
        .map(|i| ((i * 37 + seed * 11) % 256) as f32 / 255.0)
        .collect();
    let path = dir.join(format!("seed-{side}-{seed}.png"));
    save_png_grid(&ImageBatch::new(shape, pixels)?, 1, &path)?;
    let bytes = std::fs::read(&path).map_err(|e| DataError::InvalidArgument(e.to_string()))?;
    std::fs::remove_file(&path).map_err(|e| DataError::InvalidArgument(e.to_string()))?;
    Ok(bytes)
}

fn main() -> Result<(), DataError> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let io = |e: std::io::Error| DataError::InvalidArgument(e.to_string());
    for target in ["dsprites", "mpi3d", "image_folder"] {
        std::fs::create_dir_all(root.join(target)).map_err(io)?;
    }
    for (name, compression) in [
        ("stored", NpzCompression::Stored),
        ("deflated", NpzCompression::Deflated),
    ] {
        write_dsprites_npz(
            &root.join(format!("dsprites/{name}.npz")),
            [1, 2, 1, 2, 1, 2],
            4,
            compression,
        )?;
        write_mpi3d_npz(
            &root.join(format!("mpi3d/{name}.npz")),
            MPI3D_SIZES,
            4,
            compression,
        )?;
    }

    let dir = root.join("image_folder");
    let (a, b, c) = (png(&dir, 4, 0)?, png(&dir, 4, 1)?, png(&dir, 5, 2)?);
    // Two classes of same-size PNGs: opens and decodes.
    let mut good = vec![0u8];
    record(&mut good, 0, 0, &a);
    record(&mut good, 0, 1, &b);
    std::fs::write(dir.join("two_classes.bin"), &good).map_err(io)?;
    // Mixed sizes with a target size, a symlink to a file and a zero-byte file.
    let mut mixed = vec![0x35u8];
    record(&mut mixed, 0, 0, &a);
    record(&mut mixed, 0, 1, &c);
    record(&mut mixed, 4, 1, &[]);
    record(&mut mixed, 3, 2, &[]);
    std::fs::write(dir.join("mixed_sizes.bin"), &mixed).map_err(io)?;
    // A truncated PNG, a JPEG start named `.png`, dangling and looping symlinks, a folder.
    let jpeg_start = [
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00,
        0x01, 0x00, 0x01, 0x00, 0x00, 0xFF, 0xD9,
    ];
    let mut odd = vec![0u8];
    record(&mut odd, 0, 0, &a[..a.len() / 2]);
    record(&mut odd, 1, 1, &jpeg_start);
    record(&mut odd, 5, 2, &[]);
    record(&mut odd, 6, 2, &[]);
    record(&mut odd, 7, 0, &[]);
    std::fs::write(dir.join("odd_entries.bin"), &odd).map_err(io)?;
    Ok(())
}
