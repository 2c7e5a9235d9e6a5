//! Peak resident memory of training-style sampling from a full-size MPI3D file.
//!
//! Writes (if absent) an `mpi3d_real.npz` of the official layout and size — `images`, `u8`
//! [1 036 800, 64, 64, 3], stored like the official file, 12.7 GB — then draws `BATCHES` batches
//! of `BATCH` uniformly random factor vectors and looks their images up, as a VAE trainer does,
//! and prints the process's peak resident set (`VmHWM` of `/proc/self/status`).
//!
//! ```text
//! cargo run -p infobound-data --features fixtures --example mpi3d_memory -- /tmp/mpi3d_real.npz [BATCHES] [BATCH]
//! ```
//!
//! The file needs 12.7 GB of free disk; keep it out of the repository.

use std::path::PathBuf;
use std::time::Instant;

use infobound_data::GroundTruthDataset;
use infobound_data::fixtures::write_mpi3d_npz;
use infobound_data::readers::{
    MPI3D_FACTOR_SIZES, Mpi3dFile, Mpi3dVariant, NpzCompression, ReadOptions,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The `VmHWM` / `VmRSS` line of `/proc/self/status` (Linux only).
fn status_line(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(key)).map(str::to_string))
        .unwrap_or_else(|| format!("{key} unavailable (not Linux)"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "/tmp/mpi3d_real.npz".to_string()),
    );
    let batches: usize = args.next().map_or(Ok(2_000), |a| a.parse())?;
    let batch: usize = args.next().map_or(Ok(64), |a| a.parse())?;
    if !path.exists() {
        let start = Instant::now();
        write_mpi3d_npz(&path, MPI3D_FACTOR_SIZES, 64, NpzCompression::Stored)?;
        println!(
            "wrote {} in {:.1} s",
            path.display(),
            start.elapsed().as_secs_f64()
        );
    }
    println!("after generation: {}", status_line("VmHWM"));
    let start = Instant::now();
    let data = Mpi3dFile::open(&path, Mpi3dVariant::Real, &ReadOptions::default())?;
    println!(
        "opened {} ({} images) in {:.2} s",
        path.display(),
        data.factor_space().len(),
        start.elapsed().as_secs_f64()
    );
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let start = Instant::now();
    let mut checksum = 0f64;
    for _ in 0..batches {
        let (_, images) = data.sample(batch, &mut rng)?;
        checksum += f64::from(images.pixels()[0]);
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{batches} batches of {batch}: {:.2} s ({:.0} images/s; checksum {checksum:.3})",
        seconds,
        (batches * batch) as f64 / seconds
    );
    println!("{}", status_line("VmHWM"));
    println!("{}", status_line("VmRSS"));
    Ok(())
}
