//! Shared by the CLI test binaries.

use std::process::{Command, Output};

/// Runs the `infobound` binary with `args`, ignoring any `INFOBOUND_DEVICE` of the caller.
pub fn infobound(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_infobound"))
        .args(args)
        .env_remove("INFOBOUND_DEVICE")
        .output()
        .expect("the binary runs")
}
