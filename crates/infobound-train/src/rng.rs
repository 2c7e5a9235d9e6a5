//! Step-keyed random streams: the batch and the noise of step t depend only on (seed, t), so a
//! resumed run draws exactly what an uninterrupted one would have drawn.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Independent random streams of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Factor vectors of the training batch.
    Batch = 1,
    /// Reparameterisation noise ε.
    Noise = 2,
    /// FactorVAE's dimension permutations.
    Permutation = 3,
}

/// The generator for `stream` at `step` of a run seeded with `seed`.
pub fn step_rng(seed: u64, step: usize, stream: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream as u64);
    // 2^16 words per step is far more than one batch consumes, so streams never overlap.
    rng.set_word_pos((step as u128) << 16);
    rng
}

/// The generator for `stream` at `step` for the data-parallel shard `shard` of the step's
/// batch: shard 0 draws what [`step_rng`] draws (a run of one replica is unchanged), shard g > 0
/// an independent stream of its own, so every shard's draws depend on (seed, step, shard) only
/// and not on which process computes it.
pub fn shard_rng(seed: u64, step: usize, stream: Stream, shard: usize) -> ChaCha8Rng {
    let mut rng = step_rng(seed, step, stream);
    if shard > 0 {
        // Stream ids 1..=3 are the run's own; shards take ids above 2^8 (`stream + 256·g`).
        rng.set_stream(stream as u64 + ((shard as u64) << 8));
        rng.set_word_pos((step as u128) << 16);
    }
    rng
}

/// `n` standard normal samples (Box–Muller on the step's noise stream).
pub fn standard_normal(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    use rand::Rng;
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        out.push((r * theta.cos()) as f32);
        out.push((r * theta.sin()) as f32);
    }
    out.truncate(n);
    out
}
