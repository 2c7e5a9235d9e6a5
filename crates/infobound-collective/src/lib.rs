//! The collective operations that data-parallel training needs, behind one small trait.
//!
//! A data-parallel trainer runs one copy of the model per process ("rank"), each on its own
//! share of every minibatch, and sums the gradients of all ranks before each optimiser step so
//! that every copy takes the same step. [`Collective`] is all it needs to know about the other
//! ranks: its [`rank`](Collective::rank) and the [`world_size`](Collective::world_size), an
//! element-wise sum over ranks ([`all_reduce_sum_f32`](Collective::all_reduce_sum_f32),
//! `_f64`), the rank-ordered concatenation of one buffer per rank
//! ([`all_gather_f32`](Collective::all_gather_f32)), one rank's bytes sent to all
//! ([`broadcast_bytes`](Collective::broadcast_bytes)), a [`barrier`](Collective::barrier) and
//! [`abort`](Collective::abort), which ends the whole job.
//!
//! Two implementations: [`SingleProcess`] (rank 0 of 1, every operation the identity), and,
//! behind the cargo feature `mpi`, [`MpiCollective`] over the system's MPI library (rsmpi, the
//! `mpi` crate). A program calls [`MpiCollective::init`] once and falls back to
//! [`SingleProcess`] when it returns `None` (not launched by `mpirun`, or a job of one rank),
//! so that a build without the feature and a one-rank job behave alike.
//!
//! # Agreement before every exchange
//!
//! MPI's collectives are erroneous — in practice a hang or garbage — when the ranks disagree
//! on the operation, the root or the element count (MPI 4.0 §6.1 asks the amount of data
//! sent to match the amount the receiver specifies; §6.4 asks every rank's type signature of
//! a broadcast to equal the root's). So every
//! [`MpiCollective`] operation first all-gathers a three-word header from every rank
//! (operation, root, element count) and every rank decides from that same table, with the same
//! rule ([`CollectiveError`]), whether the data exchange goes ahead: either all ranks run it,
//! or all ranks return the same error. The header costs one extra small all-gather per call;
//! its latency is measured by `examples/allreduce_bench.rs` (the "header" line).
//!
//! # A failing rank ends the job
//!
//! A rank that stops calling collectives while the others wait would hang the job, so under
//! MPI every way a rank can fail ends the whole job with a non-zero exit instead:
//! [`Collective::abort`] calls `MPI_Abort` on `MPI_COMM_WORLD` (MPI 4.0 §11.2, "The World
//! Model"; §8.7 in MPI 3.1; Open MPI's `mpirun` then terminates every rank and exits with the code);
//! [`MpiCollective::init`] installs a panic hook that prints the panic and calls `MPI_Abort`
//! with [`PANIC_EXIT_CODE`]; and a rank that exits or is killed without `MPI_Finalize` is
//! detected by the launcher (Open MPI's `mpirun` aborts the job, exit status non-zero), while
//! the remaining ranks' communication errors go to `MPI_COMM_WORLD`'s default error handler,
//! `MPI_ERRORS_ARE_FATAL`, which aborts the job (MPI 4.0 §9.3). `tests/mpirun.rs` checks each
//! of these paths under `mpirun -np 2` and `-np 3`.
// The docs link the `mpi` feature's items (`MpiCollective`, `PANIC_EXIT_CODE`), which exist
// only with the feature; without it those links render as plain text.
#![cfg_attr(not(feature = "mpi"), allow(rustdoc::broken_intra_doc_links))]

mod error;
// The agreement rule is used by the MPI implementation only; its unit tests run in every build.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
mod header;
#[cfg(feature = "mpi")]
mod mpi_collective;
mod single;

pub use error::CollectiveError;
pub use header::Operation;
#[cfg(feature = "mpi")]
pub use mpi_collective::{MpiCollective, PANIC_EXIT_CODE};
pub use single::SingleProcess;

/// The collective operations of a data-parallel job, as seen from one rank.
///
/// Every rank of the job must call the same operations in the same order (a *collective*
/// call, MPI 4.0 §6.1): a rank that skips one leaves the others waiting, which under MPI is a
/// hang unless that rank fails (see the crate docs, "A failing rank ends the job"). Mismatched
/// lengths, roots or operations are not a hang: every rank returns the same
/// [`CollectiveError`]. The operations take `&mut self` so that one thread at a time calls
/// into the library (`MPI_THREAD_SERIALIZED`, the thread level [`MpiCollective`] asks of
/// `MPI_Init_thread`; MPI 3.1 §12.4.3).
pub trait Collective {
    /// This process's rank, `0 ≤ rank < world_size`.
    fn rank(&self) -> usize;

    /// The number of ranks in the job (≥ 1).
    fn world_size(&self) -> usize;

    /// Replaces `values` on every rank by the element-wise sum over all ranks,
    /// `values[i] ← Σ_r values_r[i]` (`MPI_Allreduce` with `MPI_SUM`, MPI 4.0 §6.9.6).
    ///
    /// The order of the additions, and so the rounding, is the MPI library's: the standard
    /// does not promise the same bits on every rank (MPI 4.0 §6.9.1 only advises
    /// implementations to give the same result for the same arguments in the same order).
    /// `examples/collective_check.rs` reports whether this build gave identical bits.
    ///
    /// # Errors
    /// [`CollectiveError::LengthMismatch`] when the ranks' lengths differ,
    /// [`CollectiveError::OperationMismatch`] when another rank called a different operation,
    /// [`CollectiveError::TooLarge`] beyond `i32::MAX` elements; `values` is then unchanged.
    fn all_reduce_sum_f32(&mut self, values: &mut [f32]) -> Result<(), CollectiveError>;

    /// [`all_reduce_sum_f32`](Collective::all_reduce_sum_f32) for `f64`.
    ///
    /// # Errors
    /// As [`all_reduce_sum_f32`](Collective::all_reduce_sum_f32).
    fn all_reduce_sum_f64(&mut self, values: &mut [f64]) -> Result<(), CollectiveError>;

    /// The concatenation of every rank's `values` in rank order, on every rank: element
    /// `r · n + i` is rank `r`'s `values[i]`, with `n` the common length (`MPI_Allgather`,
    /// MPI 4.0 §6.7).
    ///
    /// # Errors
    /// [`CollectiveError::LengthMismatch`] when the ranks' lengths differ,
    /// [`CollectiveError::OperationMismatch`], [`CollectiveError::TooLarge`] when
    /// `world_size · n` exceeds `i32::MAX`.
    fn all_gather_f32(&mut self, values: &[f32]) -> Result<Vec<f32>, CollectiveError>;

    /// Makes `bytes` on every rank a copy of `bytes` on rank `root` (`MPI_Bcast`, MPI 4.0
    /// §6.4). Lengths may differ: the root's length travels in the header exchanged before
    /// the data, and the other ranks' buffers are resized to it (their old contents are
    /// dropped).
    ///
    /// # Errors
    /// [`CollectiveError::InvalidRoot`] when `root ≥ world_size`,
    /// [`CollectiveError::RootMismatch`] when the ranks named different roots,
    /// [`CollectiveError::OperationMismatch`], [`CollectiveError::TooLarge`] beyond
    /// `i32::MAX` bytes; `bytes` is then unchanged.
    fn broadcast_bytes(&mut self, root: usize, bytes: &mut Vec<u8>) -> Result<(), CollectiveError>;

    /// Returns on a rank only once every rank has called it (`MPI_Barrier`, MPI 4.0 §6.3).
    ///
    /// # Errors
    /// [`CollectiveError::OperationMismatch`] when another rank called a different operation.
    fn barrier(&mut self) -> Result<(), CollectiveError>;

    /// Ends the whole job with exit status `code`, from any one rank, without waiting for the
    /// others (`MPI_Abort` on `MPI_COMM_WORLD`, MPI 4.0 §11.2; a single process exits).
    /// Destructors do not run.
    fn abort(&self, code: i32) -> !;
}

/// The crate README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctest;
