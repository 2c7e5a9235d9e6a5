//! The cost of one data-parallel gradient exchange: `Collective::all_reduce_sum_f32` (header
//! all-gather + `MPI_Allreduce`) timed for the gradient sizes of this project's networks.
//!
//! ```text
//! cargo build -p infobound-collective --features mpi --example allreduce_bench
//! mpirun --oversubscribe --allow-run-as-root -np 2 --mca pml ob1 --mca btl self,tcp \
//!     --mca btl_tcp_if_include lo target/debug/examples/allreduce_bench
//! ```
//!
//! Prints, per size, the median and the minimum time of one call over the repetitions (each
//! the slowest rank's; the median resists the preemptions of a shared machine),
//! the payload (4 bytes per element), the algorithm bandwidth payload / time, and the bus
//! bandwidth algbw · 2 (n − 1) / n — the bytes a bandwidth-optimal all-reduce (ring:
//! reduce-scatter + all-gather) must move through each rank, the convention of NVIDIA's
//! nccl-tests (`doc/PERFORMANCE.md`). "header" is a call with 0 elements: the agreement
//! all-gather alone.

use std::time::Instant;

use infobound_collective::{Collective, MpiCollective, SingleProcess};

/// Parameters of a convolution or transposed convolution with bias: `c_in · c_out · k² + c_out`.
fn conv(c_in: usize, c_out: usize, k: usize) -> usize {
    c_in * c_out * k * k + c_out
}

/// Parameters of the Burgess et al. 2018 VAE for `channels`-channel 64×64 images, as built by
/// `infobound-models` (`src/vae/encoder.rs`, `decoder.rs`, `mod.rs`): encoder convs 32-32-64-64
/// (4×4, stride 2), FC 1024 → 256, head 256 → 2 · 10; decoder FC 10 → 256 → 1024, transposed
/// convs 64-64-32-32-channels (4×4, stride 2). 764 245 for dSprites (1 channel).
fn burgess_vae(channels: usize) -> usize {
    let encoder = conv(channels, 32, 4)
        + conv(32, 32, 4)
        + conv(32, 64, 4)
        + conv(64, 64, 4)
        + conv(64 * 16, 256, 1)
        + conv(256, 2 * 10, 1);
    let decoder = conv(10, 256, 1)
        + conv(256, 64 * 16, 1)
        + conv(64, 64, 4)
        + conv(64, 32, 4)
        + conv(32, 32, 4)
        + conv(32, channels, 4);
    encoder + decoder
}

/// Trainable parameters of the CIFAR ResNet-18 backbone (He et al. 2016; 3×3 stride-1 stem,
/// no max-pool, stages of two basic blocks at widths 64-128-256-512, bias-free convolutions
/// each followed by a batch norm's γ, β; 1×1 projection shortcuts where the shape changes;
/// no classifier), as `infobound-models`' `BackboneConfig::resnet18_cifar`: 11 168 832.
fn resnet18_cifar() -> usize {
    let conv_bn = |c_in: usize, c_out: usize, k: usize| c_in * c_out * k * k + 2 * c_out;
    let mut total = conv_bn(3, 64, 3);
    let mut c_in = 64;
    for (stage, width) in [64, 128, 256, 512].into_iter().enumerate() {
        for block in 0..2 {
            total += conv_bn(c_in, width, 3) + conv_bn(width, width, 3);
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            if stride != 1 || c_in != width {
                total += conv_bn(c_in, width, 1);
            }
            c_in = width;
        }
    }
    total
}

fn main() {
    let mut collective: Box<dyn Collective> = match MpiCollective::init() {
        Ok(Some(mpi)) => Box::new(mpi),
        Ok(None) => Box::new(SingleProcess),
        Err(e) => {
            eprintln!("allreduce_bench: {e}");
            std::process::exit(2);
        }
    };
    let c = collective.as_mut();
    let (rank, n) = (c.rank(), c.world_size());
    let sizes = [
        ("header (0 elements)", 0, 2001),
        ("1 element", 1, 2001),
        ("Burgess VAE, 1 channel", burgess_vae(1), 41),
        ("ResNet-18 CIFAR backbone", resnet18_cifar(), 11),
    ];
    if rank == 0 {
        println!(
            "{n} ranks; per call: the slowest rank's median and minimum; bandwidths from the median\n\
             {:<26} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "message", "elements", "bytes", "median ms", "min ms", "algbw GB/s", "busbw GB/s"
        );
    }
    for (name, len, reps) in sizes {
        let mut values = vec![1.0f32 / (rank + 1) as f32; len];
        for _ in 0..3 {
            c.all_reduce_sum_f32(&mut values)
                .expect("warm-up all-reduce");
        }
        c.barrier().expect("barrier");
        let mut seconds: Vec<f64> = (0..reps)
            .map(|_| {
                let start = Instant::now();
                c.all_reduce_sum_f32(&mut values).expect("all-reduce");
                start.elapsed().as_secs_f64()
            })
            .collect();
        seconds.sort_by(f64::total_cmp);
        let mine = [seconds[reps / 2] as f32, seconds[0] as f32];
        let all = c.all_gather_f32(&mine).expect("gathering the times");
        let slowest = |k: usize| all.iter().skip(k).step_by(2).fold(0f32, |a, &b| a.max(b)) as f64;
        let (median, min) = (slowest(0), slowest(1));
        if rank == 0 {
            let bytes = 4 * len;
            let algbw = bytes as f64 / median / 1e9;
            let busbw = algbw * 2.0 * (n - 1) as f64 / n as f64;
            println!(
                "{name:<26} {len:>10} {bytes:>10} {:>10.3} {:>10.3} {algbw:>10.3} {busbw:>10.3}",
                median * 1e3,
                min * 1e3
            );
        }
    }
    // The copy `all_reduce_sum_f32` makes of its buffer into a kept one (rsmpi has no safe
    // MPI_IN_PLACE), timed on its own: the second of two copies, as in a training run.
    if rank == 0 {
        let big = vec![1.0f32; resnet18_cifar()];
        let mut copy = Vec::new();
        copy.extend_from_slice(&big);
        copy.clear();
        let start = Instant::now();
        copy.extend_from_slice(&big);
        let copy_ms = start.elapsed().as_secs_f64() * 1e3;
        println!(
            "copy of the ResNet-18 gradient ({} elements): {copy_ms:.3} ms",
            copy.len()
        );
    }
}
