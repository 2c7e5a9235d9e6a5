//! [`Collective`] over the system's MPI library (rsmpi).

use std::sync::atomic::{AtomicBool, Ordering};

use mpi::collective::SystemOperation;
use mpi::environment::{Threading, Universe};
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Equivalence, Root};

use crate::header::{HEADER_WORDS, agree, header};
use crate::{Collective, CollectiveError, Operation};

/// The exit status of a job one of whose ranks panicked: the code the panic hook installed by
/// [`MpiCollective::init`] hands to `MPI_Abort`. 101 is the status of a Rust process whose main
/// thread panics (our choice, so that `mpirun` reports a panic as a single process would).
pub const PANIC_EXIT_CODE: i32 = 101;

/// Whether a live [`MpiCollective`] exists, so that the panic hook calls `MPI_Abort` only
/// between `MPI_Init` and `MPI_Finalize` (calling it after finalisation is erroneous, MPI 4.0
/// §11.2).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// How this process was started, read from the variables MPI launchers set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Launch {
    /// No MPI launcher's variable is set: a plain process.
    Plain,
    /// A launcher said how many ranks the job has.
    Ranks(usize),
    /// A launcher started us but did not say the size (MPI itself will).
    UnknownSize,
}

/// Reads the launch from the environment through `var`: `OMPI_COMM_WORLD_SIZE` (Open MPI's
/// `mpirun`), `PMI_SIZE` (MPICH's Hydra, Intel MPI), `PMIX_RANK` (PMIx launchers: Open MPI 5's
/// `prterun`, Slurm's `srun --mpi=pmix`).
fn launch(var: impl Fn(&str) -> Option<String>) -> Launch {
    for size_var in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"] {
        if let Some(value) = var(size_var) {
            return value
                .trim()
                .parse()
                .map_or(Launch::UnknownSize, Launch::Ranks);
        }
    }
    if var("PMIX_RANK").is_some() {
        Launch::UnknownSize
    } else {
        Launch::Plain
    }
}

/// The ranks of `MPI_COMM_WORLD` as a [`Collective`].
///
/// Owns the process's MPI initialisation: `MPI_Finalize` runs when it is dropped, and MPI
/// cannot be initialised again afterwards (MPI 4.0 §11.2), so a program creates it once, at
/// start, and keeps it for the whole run. Each operation is the MPI collective named in
/// [`Collective`], preceded by the header all-gather described in the crate docs; the sums use
/// MPI's built-in `MPI_SUM` on `MPI_FLOAT` / `MPI_DOUBLE`.
pub struct MpiCollective {
    rank: usize,
    world_size: usize,
    /// The send copies of the all-reduces, kept between calls so that a gradient-sized buffer
    /// is allocated (and its pages faulted in) once rather than per step.
    send_f32: Vec<f32>,
    send_f64: Vec<f64>,
    /// Dropped last: finalises MPI.
    _universe: Universe,
}

impl std::fmt::Debug for MpiCollective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpiCollective")
            .field("rank", &self.rank)
            .field("world_size", &self.world_size)
            .finish()
    }
}

impl MpiCollective {
    /// Initialises MPI (`MPI_Init_thread` asking for `MPI_THREAD_SERIALIZED`) when this process
    /// was started by an MPI launcher for a job of more than one rank, and installs a panic
    /// hook that, after the usual panic message, prints which rank panicked and calls
    /// `MPI_Abort(MPI_COMM_WORLD, PANIC_EXIT_CODE)`, so that a panic on any thread of any rank
    /// ends the whole job instead of leaving the other ranks waiting. The hook fires for every
    /// panic, even one that is later caught with `catch_unwind`: a rank that recovered on its
    /// own would fall out of step with the others' collectives.
    ///
    /// Returns `Ok(None)` — the caller then uses [`crate::SingleProcess`] — when no MPI
    /// launcher variable is set (see the private `launch`: `OMPI_COMM_WORLD_SIZE`, `PMI_SIZE`,
    /// `PMIX_RANK`; MPI is then not touched at all), or when the job has one rank (MPI is
    /// finalised again, or not initialised where the launcher gave the size).
    ///
    /// # Errors
    /// [`CollectiveError::AlreadyInitialised`] when MPI was initialised before (a second call,
    /// or another library), [`CollectiveError::ThreadSupport`] when the library does not
    /// provide `MPI_THREAD_SERIALIZED`.
    pub fn init() -> Result<Option<Self>, CollectiveError> {
        match launch(|name| std::env::var(name).ok()) {
            Launch::Plain | Launch::Ranks(0 | 1) => return Ok(None),
            Launch::Ranks(_) | Launch::UnknownSize => {}
        }
        let (universe, provided) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or(CollectiveError::AlreadyInitialised)?;
        if provided < Threading::Serialized {
            return Err(CollectiveError::ThreadSupport {
                required: "MPI_THREAD_SERIALIZED",
                provided: match provided {
                    Threading::Single => "MPI_THREAD_SINGLE",
                    _ => "MPI_THREAD_FUNNELED",
                },
            });
        }
        let world = universe.world();
        // MPI guarantees 0 ≤ rank < size and size ≥ 1 (MPI 4.0 §7.4.1), so the casts are exact.
        let (rank, world_size) = (world.rank() as usize, world.size() as usize);
        if world_size == 1 {
            return Ok(None);
        }
        install_panic_hook(rank, world_size);
        Ok(Some(Self {
            rank,
            world_size,
            send_f32: Vec::new(),
            send_f64: Vec::new(),
            _universe: universe,
        }))
    }

    /// Exchanges this rank's header for `operation` with every rank and applies the rule of
    /// [`crate::CollectiveError`]: every rank gets the same verdict.
    fn agree(
        &self,
        operation: Operation,
        root: usize,
        len: usize,
    ) -> Result<crate::header::Agreement, CollectiveError> {
        let mine = header(operation, root, len);
        let mut table = vec![0u64; HEADER_WORDS * self.world_size];
        world().all_gather_into(&mine[..], &mut table[..]);
        agree(self.rank, operation, &table)
    }

    /// `MPI_Allreduce` with `MPI_SUM` of `values` after the agreement; `send` is the kept
    /// buffer for the send copy (rsmpi has no safe `MPI_IN_PLACE`; the copy is small beside the
    /// exchange, see examples/allreduce_bench.rs).
    fn all_reduce_sum<T: Equivalence + Copy>(
        &self,
        operation: Operation,
        send: &mut Vec<T>,
        values: &mut [T],
    ) -> Result<(), CollectiveError> {
        self.agree(operation, 0, values.len())?;
        if values.is_empty() {
            return Ok(());
        }
        send.clear();
        send.extend_from_slice(values);
        world().all_reduce_into(&send[..], values, SystemOperation::sum());
        Ok(())
    }
}

/// `MPI_COMM_WORLD`. A handle made on each call rather than stored, so that [`MpiCollective`]
/// is `Send` (rsmpi's communicator handle holds a raw pointer); making it costs nothing.
fn world() -> SimpleCommunicator {
    SimpleCommunicator::world()
}

fn install_panic_hook(rank: usize, world_size: usize) {
    ACTIVE.store(true, Ordering::SeqCst);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        if ACTIVE.load(Ordering::SeqCst) {
            eprintln!(
                "infobound-collective: rank {rank} of {world_size} panicked; calling \
                 MPI_Abort(MPI_COMM_WORLD, {PANIC_EXIT_CODE}) to end the whole job"
            );
            world().abort(PANIC_EXIT_CODE);
        }
    }));
}

impl Drop for MpiCollective {
    /// Turns the panic hook's abort off, then `MPI_Finalize` runs (rsmpi's `Universe`).
    fn drop(&mut self) {
        ACTIVE.store(false, Ordering::SeqCst);
    }
}

impl Collective for MpiCollective {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.world_size
    }

    fn all_reduce_sum_f32(&mut self, values: &mut [f32]) -> Result<(), CollectiveError> {
        let mut send = std::mem::take(&mut self.send_f32);
        let result = self.all_reduce_sum(Operation::AllReduceSumF32, &mut send, values);
        self.send_f32 = send;
        result
    }

    fn all_reduce_sum_f64(&mut self, values: &mut [f64]) -> Result<(), CollectiveError> {
        let mut send = std::mem::take(&mut self.send_f64);
        let result = self.all_reduce_sum(Operation::AllReduceSumF64, &mut send, values);
        self.send_f64 = send;
        result
    }

    fn all_gather_f32(&mut self, values: &[f32]) -> Result<Vec<f32>, CollectiveError> {
        self.agree(Operation::AllGatherF32, 0, values.len())?;
        let mut gathered = vec![0f32; values.len() * self.world_size];
        if !values.is_empty() {
            world().all_gather_into(values, &mut gathered[..]);
        }
        Ok(gathered)
    }

    fn broadcast_bytes(&mut self, root: usize, bytes: &mut Vec<u8>) -> Result<(), CollectiveError> {
        let agreement = self.agree(Operation::BroadcastBytes, root, bytes.len())?;
        let len = agreement.lengths[root];
        if self.rank != root {
            bytes.clear();
            bytes.resize(len, 0);
        }
        if len > 0 {
            // `root < world_size ≤ i32::MAX` was checked by `agree`.
            world()
                .process_at_rank(root as i32)
                .broadcast_into(&mut bytes[..]);
        }
        Ok(())
    }

    fn barrier(&mut self) -> Result<(), CollectiveError> {
        self.agree(Operation::Barrier, 0, 0)?;
        world().barrier();
        Ok(())
    }

    fn abort(&self, code: i32) -> ! {
        world().abort(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn launch_is_read_from_the_launchers_variables() {
        assert_eq!(launch(env(&[])), Launch::Plain);
        assert_eq!(
            launch(env(&[("OMPI_COMM_WORLD_SIZE", "3")])),
            Launch::Ranks(3)
        );
        assert_eq!(launch(env(&[("PMI_SIZE", " 2\n")])), Launch::Ranks(2));
        assert_eq!(launch(env(&[("PMIX_RANK", "0")])), Launch::UnknownSize);
        assert_eq!(
            launch(env(&[("OMPI_COMM_WORLD_SIZE", "x")])),
            Launch::UnknownSize
        );
    }

    /// A trainer may move its collective into the thread that runs the steps.
    #[test]
    fn mpi_collective_is_send() {
        fn send<T: Send>() {}
        send::<MpiCollective>();
    }

    #[test]
    fn init_outside_a_launcher_is_none() {
        // `cargo test` is not started by mpirun (the CI and tests/mpirun.rs run it directly).
        if launch(|name| std::env::var(name).ok()) == Launch::Plain {
            assert!(MpiCollective::init().unwrap().is_none());
            assert!(!mpi::environment::is_initialized());
        }
    }
}
