//! Peak resident memory of training-style sampling from a full-size MPI3D file.
//!
//! Writes (if absent) an `mpi3d_real.npz` of the official layout and size — `images`, `u8`
//! [1 036 800, 64, 64, 3], stored like the official file, 12.7 GB — then draws `BATCHES` batches
//! of `BATCH` uniformly random factor vectors and looks their images up, as a VAE trainer does,
//! and prints the process's peak resident set (`VmHWM` of `/proc/self/status`).
//!
//! ```text
//! cargo run -p infobound-data --features fixtures --example mpi3d_memory -- /tmp/mpi3d_real.npz [BATCHES] [BATCH] [reads|mmap]
//! ```
//!
//! `reads` (the default) samples through [`Mpi3dFile`], i.e. positional reads; `mmap` looks the
//! same images up in a memory map of the file instead, the alternative the crate decided against
//! (see the README for both figures). The file needs 12.7 GB of free disk; keep it out of the
//! repository.

use std::path::{Path, PathBuf};
use std::time::Instant;

use infobound_data::fixtures::write_mpi3d_npz;
use infobound_data::readers::{
    MPI3D_FACTOR_SIZES, Mpi3dFile, Mpi3dVariant, NpzArchive, NpzCompression, ReadOptions,
};
use infobound_data::{FactorSpace, GroundTruthDataset};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The `VmHWM` / `VmRSS` line of `/proc/self/status` (Linux only).
fn status_line(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(key)).map(str::to_string))
        .unwrap_or_else(|| format!("{key} unavailable (not Linux)"))
}

/// The trainer's lookups through [`Mpi3dFile`]; returns the sum of each batch's first pixel.
fn sample_with_reads(
    path: &Path,
    batches: usize,
    batch: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let data = Mpi3dFile::open(path, Mpi3dVariant::Real, &ReadOptions::default())?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut checksum = 0f64;
    for _ in 0..batches {
        let (_, images) = data.sample(batch, &mut rng)?;
        checksum += f64::from(images.pixels()[0]);
    }
    Ok(checksum)
}

/// The same lookups (same factor draws, same HWC → CHW `f32` conversion) in a memory map.
#[allow(unsafe_code)]
fn sample_with_mmap(
    path: &Path,
    batches: usize,
    batch: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let images = NpzArchive::open(path)?.file_array("images", None)?;
    let file = std::fs::File::open(images.path())?;
    // SAFETY: the mapping is read-only and lives only for this function; nothing truncates or
    // rewrites the benchmark file while it runs (a truncation would raise SIGBUS on access).
    let map = unsafe { memmap2::Mmap::map(&file)? };
    let start = usize::try_from(images.data_start())?;
    let names = (0..7).map(|k| format!("factor{k}")).collect();
    let space = FactorSpace::new(names, MPI3D_FACTOR_SIZES.to_vec())?;
    let (plane, image_bytes) = (64 * 64, 64 * 64 * 3);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut out = vec![0f32; batch * image_bytes];
    let mut checksum = 0f64;
    for _ in 0..batches {
        let factors = space.sample(batch, &mut rng);
        for (row, image) in factors.rows().zip(out.chunks_exact_mut(image_bytes)) {
            let offset = start + space.index_of(row)? * image_bytes;
            let hwc = &map[offset..offset + image_bytes];
            for (p, rgb) in hwc.chunks_exact(3).enumerate() {
                for (c, &v) in rgb.iter().enumerate() {
                    image[c * plane + p] = f32::from(v) / 255.0;
                }
            }
        }
        checksum += f64::from(out[0]);
    }
    Ok(checksum)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "/tmp/mpi3d_real.npz".to_string()),
    );
    let batches: usize = args.next().map_or(Ok(2_000), |a| a.parse())?;
    let batch: usize = args.next().map_or(Ok(64), |a| a.parse())?;
    let mode = args.next().unwrap_or_else(|| "reads".to_string());
    if !path.exists() {
        let start = Instant::now();
        write_mpi3d_npz(&path, MPI3D_FACTOR_SIZES, 64, NpzCompression::Stored)?;
        println!(
            "wrote {} in {:.1} s",
            path.display(),
            start.elapsed().as_secs_f64()
        );
    }
    println!("before sampling: {}", status_line("VmHWM"));
    let start = Instant::now();
    let checksum = match mode.as_str() {
        "reads" => sample_with_reads(&path, batches, batch)?,
        "mmap" => sample_with_mmap(&path, batches, batch)?,
        other => return Err(format!("mode must be `reads` or `mmap`, got `{other}`").into()),
    };
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{mode}: {batches} batches of {batch}: {seconds:.2} s ({:.0} images/s; checksum {checksum:.3})",
        (batches * batch) as f64 / seconds
    );
    println!("{}", status_line("VmHWM"));
    println!("{}", status_line("VmRSS"));
    Ok(())
}
