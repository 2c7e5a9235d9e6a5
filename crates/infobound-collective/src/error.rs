//! The crate's error type.

use crate::Operation;

/// Why a collective operation did not run.
///
/// Every error that comes out of a collective call is reached by **every** rank of the job
/// together: each call first exchanges a small header (operation, root, length) among all ranks
/// with an all-gather, and every rank decides from that same table whether the call can go on
/// (see [`crate::Collective`]). A rank that sees an error therefore knows that no other rank
/// went on into the data exchange, and the job does not hang. `rank` in each variant is the
/// rank that reports the error; the vectors are indexed by rank.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollectiveError {
    /// The ranks passed buffers of different lengths to an operation whose contributions must
    /// all have the same length (all-reduce, all-gather).
    #[error(
        "rank {rank}: {operation} needs the same length on every rank, got lengths {lengths:?} (indexed by rank)"
    )]
    LengthMismatch {
        /// The rank reporting the error.
        rank: usize,
        /// The operation called.
        operation: Operation,
        /// Each rank's buffer length, indexed by rank.
        lengths: Vec<usize>,
    },
    /// The ranks called different collective operations at the same point of the program
    /// (for instance one rank a barrier, another an all-reduce).
    #[error(
        "rank {rank}: the ranks called different collective operations: {operations:?} (indexed by rank)"
    )]
    OperationMismatch {
        /// The rank reporting the error.
        rank: usize,
        /// The operation each rank called, indexed by rank.
        operations: Vec<Operation>,
    },
    /// The ranks named different roots for a broadcast.
    #[error("rank {rank}: the ranks named different broadcast roots: {roots:?} (indexed by rank)")]
    RootMismatch {
        /// The rank reporting the error.
        rank: usize,
        /// The root each rank named, indexed by rank.
        roots: Vec<usize>,
    },
    /// The broadcast root is not a rank of the job.
    #[error("rank {rank}: broadcast root {root} is not a rank of a job of {world_size}")]
    InvalidRoot {
        /// The rank reporting the error.
        rank: usize,
        /// The root asked for.
        root: usize,
        /// The number of ranks.
        world_size: usize,
    },
    /// A message holds more elements than one MPI call can carry (MPI counts are C `int`s).
    #[error("rank {rank}: {operation} of {count} elements exceeds the MPI count limit {max}")]
    TooLarge {
        /// The rank reporting the error.
        rank: usize,
        /// The operation called.
        operation: Operation,
        /// The element count the call would need.
        count: usize,
        /// The largest count one call carries (`i32::MAX`).
        max: usize,
    },
    /// The header exchanged before an operation held a code no version of this crate writes:
    /// another rank runs a different program or build.
    #[error("rank {rank}: rank {from_rank} sent the unknown operation code {code}")]
    UnknownOperationCode {
        /// The rank reporting the error.
        rank: usize,
        /// The rank whose header held the code.
        from_rank: usize,
        /// The code received.
        code: u64,
    },
    /// MPI was initialised before [`crate::MpiCollective::init`] ran (by another library or a
    /// second call): this crate must own the single MPI initialisation of the process.
    #[error(
        "MPI is already initialised in this process; MpiCollective::init must be called once, before any other MPI use"
    )]
    AlreadyInitialised,
    /// The MPI library does not provide the thread support this crate needs.
    #[error("the MPI library provides thread level {provided}, but {required} is needed")]
    ThreadSupport {
        /// The level needed (`MPI_THREAD_SERIALIZED`).
        required: &'static str,
        /// The level the library provides.
        provided: &'static str,
    },
}
