//! Shared by the CLI test binaries: the binary, and the tiny runs they train (seconds each).
// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs the `infobound` binary with `args`, ignoring any `INFOBOUND_DEVICE` of the caller.
pub fn infobound(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_infobound"))
        .args(args)
        .env_remove("INFOBOUND_DEVICE")
        .output()
        .expect("the binary runs")
}

/// A finished command's stdout and stderr, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The configuration of a tiny β-TCVAE run (1-channel Bernoulli Burgess VAE on procedural
/// dSprites) with the given name, seed, batch and schedule.
pub fn tiny_vae(
    name: &str,
    seed: u64,
    batch_size: usize,
    steps: usize,
    log_every: usize,
    checkpoint_every: usize,
) -> String {
    format!(
        r#"
name = "{name}"
seed = {seed}
batch_size = {batch_size}
steps = {steps}
log_every = {log_every}
checkpoint_every = {checkpoint_every}

[dataset]
name = "dsprites"

[model]
channels = 1
likelihood = "bernoulli"

[objective]
kind = "beta_tcvae"
"#
    )
}

/// An `[eval]` table to append to [`tiny_vae`]: small sample counts, no FactorVAE score.
pub const TINY_EVAL: &str = r#"
[eval]
num_train = 64
num_test = 32
factor_vae_score = false
vendi_samples = 16
batch_size = 32
"#;

/// `--set` overrides that shrink an SSL quickstart preset to 24 + 12 images of 16 px and a
/// 4-wide network; the batch and the schedule are the caller's.
pub const TINY_SSL_NETWORK: [&str; 10] = [
    "--set",
    "dataset.num_train=24",
    "--set",
    "dataset.num_test=12",
    "--set",
    "dataset.image_size=16",
    "--set",
    "network.backbone.base_width=4",
    "--set",
    "network.projector={input_dim = 32, hidden_dim = 32, output_dim = 32, num_layers = 3, \
     last_bias = true, last_batch_norm = false}",
];
