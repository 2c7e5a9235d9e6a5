//! Arbitrary bytes as a whole dSprites `.npz` file: `DSpritesFile::open` (checksum, layout,
//! label grid, the 0/1 pixel scan, the deflated-member cache) on a file on disk, then a label
//! lookup. Reduced shapes are allowed so that the seed fixtures open.
#![no_main]

use std::path::PathBuf;

use infobound_data::readers::{DSpritesFile, ReadOptions};
use libfuzzer_sys::fuzz_target;

/// A folder of this process's own (libFuzzer may run several jobs side by side).
fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!("infobound-fuzz-dsprites-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let path = dir.join("dsprites.npz");
    std::fs::write(&path, data).expect("scratch file");
    let options = ReadOptions {
        strict_shapes: false,
        // A digest that never matches: the mismatch path (a warning, not an error) runs too.
        expected_sha256: Some("0".repeat(64)),
        cache_dir: Some(dir.join("cache")),
    };
    if let Ok(file) = DSpritesFile::open(&path, &options) {
        let _ = file.latent_values(&[0, 0, 0, 0, 0, 0]);
        let _ = file.latent_values(&[usize::MAX, 0, 0, 0, 0, 0]);
    }
});
