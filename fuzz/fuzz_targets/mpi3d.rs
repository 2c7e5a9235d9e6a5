//! Arbitrary bytes as a whole MPI3D `.npz` file: `Mpi3dFile::validate` and
//! `Mpi3dFile::open_with_factor_sizes` over the grid of the seed fixtures (checksum, `images`
//! header against the grid, the deflated-member cache), on a file on disk.
#![no_main]

use std::path::PathBuf;

use infobound_data::readers::{Mpi3dFile, Mpi3dVariant, ReadOptions};
use libfuzzer_sys::fuzz_target;

/// The factor grid of the seeds (`examples/write_seeds.rs`).
const SIZES: [usize; 7] = [1, 2, 1, 1, 1, 2, 2];

fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!("infobound-fuzz-mpi3d-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let path = dir.join("mpi3d.npz");
    std::fs::write(&path, data).expect("scratch file");
    let options = ReadOptions {
        strict_shapes: false,
        expected_sha256: Some("0".repeat(64)),
        cache_dir: Some(dir.join("cache")),
    };
    let _ = Mpi3dFile::validate(&path, SIZES, &options);
    let _ = Mpi3dFile::open_with_factor_sizes(&path, Mpi3dVariant::Toy, SIZES, &options);
    // The official grid with strict shapes: every seed must be refused, never trusted.
    let _ = Mpi3dFile::open(&path, Mpi3dVariant::Toy, &ReadOptions::default());
});
