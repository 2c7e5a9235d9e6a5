//! Every rank of an MPI job runs this: `collective_check [MODE]`.
//!
//! `check` (the default) runs every operation of `Collective` against closed-form results and
//! every disagreement between ranks against its typed error, then prints
//! `rank R of N: collective_check passed`; a failed check prints `CHECK FAILED` and aborts the
//! job with status 2. The other modes make the last rank fail after one good all-reduce while
//! the others wait in the next one, so that the job must end by itself with a non-zero status:
//! `panic`, `thread-panic` (a spawned thread panics, the main thread goes on), `exit` (status 3 without `MPI_Finalize`), `exit-zero` (status 0 without it),
//! `kill` (SIGKILL from `kill(1)`), `signal-abort` (`std::process::abort`, SIGABRT) and
//! `mpi-abort` (`Collective::abort(7)`). Run by `tests/mpirun.rs`; outside `mpirun` it checks
//! `SingleProcess`.

use infobound_collective::{Collective, CollectiveError, MpiCollective, Operation, SingleProcess};

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "check".into());
    let mut collective: Box<dyn Collective> = match MpiCollective::init() {
        Ok(Some(mpi)) => Box::new(mpi),
        Ok(None) => Box::new(SingleProcess),
        Err(e) => {
            eprintln!("collective_check: {e}");
            std::process::exit(2);
        }
    };
    let c = collective.as_mut();
    let (rank, n) = (c.rank(), c.world_size());
    let outcome = match mode.as_str() {
        "check" => check(c),
        failure => fail(c, failure),
    };
    if let Err(message) = outcome {
        eprintln!("rank {rank} of {n}: CHECK FAILED: {message}");
        c.abort(2);
    }
    println!("rank {rank} of {n}: collective_check passed");
}

/// `Err(message)` unless `got == want`.
fn expect<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn check(c: &mut dyn Collective) -> Result<(), String> {
    let (rank, n) = (c.rank(), c.world_size());
    let e = |err: CollectiveError| err.to_string();
    // Sums of small integers are exact in f32 and f64 whatever the order of the additions.
    let triangle = (n * (n + 1) / 2) as f32;
    let mut a: Vec<f32> = (0..1000).map(|i| ((rank + 1) * (i + 1)) as f32).collect();
    c.all_reduce_sum_f32(&mut a).map_err(e)?;
    let want: Vec<f32> = (0..1000).map(|i| (i + 1) as f32 * triangle).collect();
    expect("all-reduce f32", a, want)?;

    let mut b: Vec<f64> = (0..257).map(|i| 0.5 * rank as f64 + i as f64).collect();
    c.all_reduce_sum_f64(&mut b).map_err(e)?;
    let half_pairs = 0.25 * (n * (n - 1)) as f64;
    let want: Vec<f64> = (0..257).map(|i| (n * i) as f64 + half_pairs).collect();
    expect("all-reduce f64", b, want)?;

    // Beyond Open MPI's eager and segment sizes: the pipelined algorithms.
    let mut big = vec![(rank + 1) as f32; 1_000_003];
    c.all_reduce_sum_f32(&mut big).map_err(e)?;
    expect(
        "all-reduce of 1 000 003 f32",
        big.iter().all(|&x| x == triangle),
        true,
    )?;

    let mine: Vec<f32> = (0..4).map(|j| (10 * rank + j) as f32).collect();
    let gathered = c.all_gather_f32(&mine).map_err(e)?;
    let want: Vec<f32> = (0..n)
        .flat_map(|r| (0..4).map(move |j| (10 * r + j) as f32))
        .collect();
    expect("all-gather", gathered, want)?;
    expect(
        "empty all-gather",
        c.all_gather_f32(&[]).map_err(e)?,
        vec![],
    )?;

    for root in 0..n {
        let message: Vec<u8> = format!("from rank {root}: ")
            .into_bytes()
            .into_iter()
            .chain((0..1000 * root + 7).map(|i| (i % 251) as u8))
            .collect();
        let mut bytes = if rank == root {
            message.clone()
        } else {
            vec![0xAB; rank + 3]
        };
        c.broadcast_bytes(root, &mut bytes).map_err(e)?;
        expect(&format!("broadcast from rank {root}"), bytes, message)?;
    }
    let mut bytes = if rank == 0 { vec![] } else { vec![1, 2, 3] };
    c.broadcast_bytes(0, &mut bytes).map_err(e)?;
    expect("empty broadcast", bytes, vec![])?;

    if n > 1 {
        check_disagreements(c)?;
    }

    // Do all ranks get the same bits from a float sum whose rounding depends on the order?
    // Reported, not required (MPI 4.0 §6.9.1 does not promise it).
    let mut r: Vec<f32> = (0..1000)
        .map(|i| 1.0 / ((rank * 7919 + i * 104_729) % 1013 + 1) as f32)
        .collect();
    c.all_reduce_sum_f32(&mut r).map_err(e)?;
    let all = c.all_gather_f32(&r).map_err(e)?;
    let identical = all.chunks_exact(r.len()).all(|chunk| {
        chunk
            .iter()
            .zip(&r)
            .all(|(x, y)| x.to_bits() == y.to_bits())
    });
    println!("rank {rank} of {n}: all-reduce gave identical bits on every rank: {identical}");

    c.barrier().map_err(e)
}

/// Every disagreement gives the same typed error on every rank, leaves the buffers alone, and
/// the job goes on afterwards.
fn check_disagreements(c: &mut dyn Collective) -> Result<(), String> {
    let (rank, n) = (c.rank(), c.world_size());
    let mut uneven = vec![1.0f32; rank + 1];
    expect(
        "all-reduce with lengths 1..=n",
        c.all_reduce_sum_f32(&mut uneven),
        Err(CollectiveError::LengthMismatch {
            rank,
            operation: Operation::AllReduceSumF32,
            lengths: (1..=n).collect(),
        }),
    )?;
    expect(
        "buffer after a refused all-reduce",
        uneven,
        vec![1.0; rank + 1],
    )?;
    expect(
        "all-gather with lengths 0..n",
        c.all_gather_f32(&vec![0.0; rank]),
        Err(CollectiveError::LengthMismatch {
            rank,
            operation: Operation::AllGatherF32,
            lengths: (0..n).collect(),
        }),
    )?;
    let mut bytes = vec![9u8; 5];
    expect(
        "broadcast with root = own rank",
        c.broadcast_bytes(rank, &mut bytes),
        Err(CollectiveError::RootMismatch {
            rank,
            roots: (0..n).collect(),
        }),
    )?;
    expect(
        "broadcast from root n",
        c.broadcast_bytes(n, &mut bytes),
        Err(CollectiveError::InvalidRoot {
            rank,
            root: n,
            world_size: n,
        }),
    )?;
    expect("bytes after refused broadcasts", bytes, vec![9u8; 5])?;
    let result = if rank == 0 {
        c.barrier()
    } else {
        c.all_reduce_sum_f64(&mut [1.0, 2.0])
    };
    let operations = (0..n)
        .map(|r| {
            if r == 0 {
                Operation::Barrier
            } else {
                Operation::AllReduceSumF64
            }
        })
        .collect();
    expect(
        "barrier on rank 0, all-reduce elsewhere",
        result,
        Err(CollectiveError::OperationMismatch { rank, operations }),
    )?;
    let mut ones = vec![1.0f64; 3];
    c.all_reduce_sum_f64(&mut ones)
        .map_err(|err| err.to_string())?;
    expect("all-reduce after the refusals", ones, vec![n as f64; 3])
}

/// One good all-reduce, then the last rank fails as `mode` says while the others wait in the
/// next all-reduce, which must never return.
fn fail(c: &mut dyn Collective, mode: &str) -> Result<(), String> {
    let (rank, n) = (c.rank(), c.world_size());
    if n < 2 {
        return Err(format!("mode {mode} needs at least 2 ranks, got {n}"));
    }
    let mut x = vec![1.0f32; 16];
    c.all_reduce_sum_f32(&mut x).map_err(|e| e.to_string())?;
    if rank == n - 1 {
        eprintln!("rank {rank} of {n}: failing now ({mode})");
        match mode {
            "panic" => panic!("deliberate panic on rank {rank} (collective_check panic mode)"),
            // A worker thread's panic does not end the process by itself: without the hook
            // this rank would sleep on and the others wait in the all-reduce for ever.
            "thread-panic" => {
                std::thread::spawn(move || panic!("deliberate panic in a thread of rank {rank}"));
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
            "exit" => std::process::exit(3),
            "exit-zero" => std::process::exit(0),
            "kill" => {
                let pid = std::process::id().to_string();
                std::process::Command::new("kill")
                    .args(["-KILL", &pid])
                    .status()
                    .map_err(|e| format!("kill -KILL {pid}: {e}"))?;
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
            "signal-abort" => std::process::abort(),
            "mpi-abort" => c.abort(7),
            other => return Err(format!("unknown mode {other}")),
        }
    }
    c.all_reduce_sum_f32(&mut x).map_err(|e| e.to_string())?;
    Err(format!(
        "rank {rank} of {n}: the all-reduce returned although rank {} failed",
        n - 1
    ))
}
