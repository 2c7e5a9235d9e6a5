//! Arbitrary bytes as the `manifest.json` of a checkpoint folder that also holds a `state.json`
//! and a small `vae.bpk`: `latest_checkpoint` (the read-only choice that `eval` and `probe`
//! make, verifying sizes and SHA-256 digests of what the manifest lists) must accept or skip the
//! folder, never panic or read outside it.
#![no_main]

use std::path::PathBuf;

use infobound_train::latest_checkpoint;
use libfuzzer_sys::fuzz_target;

fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!("infobound-fuzz-manifest-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let root = scratch();
    let checkpoint = root.join("step-00000001");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&checkpoint).expect("scratch folder");
    std::fs::write(checkpoint.join("state.json"), b"{}").expect("scratch file");
    std::fs::write(checkpoint.join("vae.bpk"), b"burnpack").expect("scratch file");
    std::fs::write(checkpoint.join("manifest.json"), data).expect("scratch file");
    let _ = latest_checkpoint(&root);
});
