//! The header every rank contributes before a collective's data exchange, and the rule by which
//! every rank decides from all headers whether the exchange goes ahead.

use std::fmt;

use crate::CollectiveError;

/// A collective operation of [`crate::Collective`], as named in errors and in the header
/// exchanged before each call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// [`crate::Collective::all_reduce_sum_f32`].
    AllReduceSumF32,
    /// [`crate::Collective::all_reduce_sum_f64`].
    AllReduceSumF64,
    /// [`crate::Collective::all_gather_f32`].
    AllGatherF32,
    /// [`crate::Collective::broadcast_bytes`].
    BroadcastBytes,
    /// [`crate::Collective::barrier`].
    Barrier,
}

impl Operation {
    /// The code written into the header (our choice; 0 is left unused so that a zeroed header
    /// is never a valid one).
    pub(crate) fn code(self) -> u64 {
        match self {
            Self::AllReduceSumF32 => 1,
            Self::AllReduceSumF64 => 2,
            Self::AllGatherF32 => 3,
            Self::BroadcastBytes => 4,
            Self::Barrier => 5,
        }
    }

    fn from_code(code: u64) -> Option<Self> {
        [
            Self::AllReduceSumF32,
            Self::AllReduceSumF64,
            Self::AllGatherF32,
            Self::BroadcastBytes,
            Self::Barrier,
        ]
        .into_iter()
        .find(|op| op.code() == code)
    }

    /// Whether every rank must contribute the same number of elements.
    fn needs_equal_lengths(self) -> bool {
        matches!(
            self,
            Self::AllReduceSumF32 | Self::AllReduceSumF64 | Self::AllGatherF32
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AllReduceSumF32 => "all-reduce-sum (f32)",
            Self::AllReduceSumF64 => "all-reduce-sum (f64)",
            Self::AllGatherF32 => "all-gather (f32)",
            Self::BroadcastBytes => "broadcast (bytes)",
            Self::Barrier => "barrier",
        })
    }
}

/// Words per header: operation code, root, element count.
pub(crate) const HEADER_WORDS: usize = 3;

/// The largest element count one MPI call carries: MPI counts are C `int`s.
pub(crate) const MAX_COUNT: usize = i32::MAX as usize;

/// This rank's header for `operation` with `root` (0 where the operation has none) and `len`
/// elements.
pub(crate) fn header(operation: Operation, root: usize, len: usize) -> [u64; HEADER_WORDS] {
    [operation.code(), root as u64, len as u64]
}

/// What the ranks agreed on: the broadcast root and every rank's element count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Agreement {
    /// The common root (0 for operations without one).
    pub(crate) root: usize,
    /// Each rank's element count, indexed by rank.
    pub(crate) lengths: Vec<usize>,
}

/// Decides, from the all-gathered `headers` (`HEADER_WORDS` words per rank, in rank order),
/// whether `operation` called on `rank` can go ahead. Every rank runs this on the same table,
/// so every rank reaches the same verdict; only `rank` in the error differs.
pub(crate) fn agree(
    rank: usize,
    operation: Operation,
    headers: &[u64],
) -> Result<Agreement, CollectiveError> {
    let world_size = headers.len() / HEADER_WORDS;
    let rows = || headers.chunks_exact(HEADER_WORDS);
    let mut operations = Vec::with_capacity(world_size);
    for (from_rank, row) in rows().enumerate() {
        let op = Operation::from_code(row[0]).ok_or(CollectiveError::UnknownOperationCode {
            rank,
            from_rank,
            code: row[0],
        })?;
        operations.push(op);
    }
    if operations.iter().any(|&op| op != operations[0]) {
        return Err(CollectiveError::OperationMismatch { rank, operations });
    }
    // Saturating: a count beyond usize (a 32-bit peer cannot send one) is then caught by the
    // `MAX_COUNT` checks below.
    let as_usize = |word: u64| usize::try_from(word).unwrap_or(usize::MAX);
    let roots: Vec<usize> = rows().map(|row| as_usize(row[1])).collect();
    let lengths: Vec<usize> = rows().map(|row| as_usize(row[2])).collect();
    if roots.iter().any(|&r| r != roots[0]) {
        return Err(CollectiveError::RootMismatch { rank, roots });
    }
    let root = roots[0];
    let too_large = |count: usize| CollectiveError::TooLarge {
        rank,
        operation,
        count,
        max: MAX_COUNT,
    };
    if operation == Operation::BroadcastBytes {
        if root >= world_size {
            return Err(CollectiveError::InvalidRoot {
                rank,
                root,
                world_size,
            });
        }
        if lengths[root] > MAX_COUNT {
            return Err(too_large(lengths[root]));
        }
    }
    if operation.needs_equal_lengths() {
        if lengths.iter().any(|&n| n != lengths[0]) {
            return Err(CollectiveError::LengthMismatch {
                rank,
                operation,
                lengths,
            });
        }
        let total = if operation == Operation::AllGatherF32 {
            lengths[0].saturating_mul(world_size)
        } else {
            lengths[0]
        };
        if total > MAX_COUNT {
            return Err(too_large(total));
        }
    }
    Ok(Agreement { root, lengths })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[[u64; HEADER_WORDS]]) -> Vec<u64> {
        rows.iter().flatten().copied().collect()
    }

    #[test]
    fn equal_headers_agree() {
        let op = Operation::AllReduceSumF32;
        let t = table(&[header(op, 0, 5), header(op, 0, 5), header(op, 0, 5)]);
        let a = agree(1, op, &t).unwrap();
        assert_eq!(a.lengths, vec![5, 5, 5]);
        assert_eq!(a.root, 0);
    }

    #[test]
    fn length_mismatch_names_every_rank_length() {
        let op = Operation::AllGatherF32;
        let t = table(&[header(op, 0, 1), header(op, 0, 2), header(op, 0, 1)]);
        for rank in 0..3 {
            assert_eq!(
                agree(rank, op, &t),
                Err(CollectiveError::LengthMismatch {
                    rank,
                    operation: op,
                    lengths: vec![1, 2, 1]
                })
            );
        }
    }

    #[test]
    fn operation_mismatch_is_reported_before_lengths() {
        let t = table(&[
            header(Operation::Barrier, 0, 0),
            header(Operation::AllReduceSumF64, 0, 7),
        ]);
        assert_eq!(
            agree(0, Operation::Barrier, &t),
            Err(CollectiveError::OperationMismatch {
                rank: 0,
                operations: vec![Operation::Barrier, Operation::AllReduceSumF64]
            })
        );
    }

    #[test]
    fn broadcast_lengths_may_differ_and_roots_must_not() {
        let op = Operation::BroadcastBytes;
        let ok = table(&[header(op, 1, 0), header(op, 1, 9)]);
        assert_eq!(agree(0, op, &ok).unwrap().lengths[1], 9);
        let roots = table(&[header(op, 0, 0), header(op, 1, 9)]);
        assert_eq!(
            agree(1, op, &roots),
            Err(CollectiveError::RootMismatch {
                rank: 1,
                roots: vec![0, 1]
            })
        );
        let invalid = table(&[header(op, 2, 0), header(op, 2, 9)]);
        assert_eq!(
            agree(0, op, &invalid),
            Err(CollectiveError::InvalidRoot {
                rank: 0,
                root: 2,
                world_size: 2
            })
        );
    }

    #[test]
    fn counts_beyond_an_mpi_int_are_refused() {
        let op = Operation::AllGatherF32;
        let n = MAX_COUNT / 2 + 1;
        let t = table(&[header(op, 0, n), header(op, 0, n)]);
        assert_eq!(
            agree(0, op, &t),
            Err(CollectiveError::TooLarge {
                rank: 0,
                operation: op,
                count: 2 * n,
                max: MAX_COUNT
            })
        );
        let op = Operation::AllReduceSumF32;
        let t = table(&[header(op, 0, n), header(op, 0, n)]);
        assert!(agree(0, op, &t).is_ok());
    }

    #[test]
    fn unknown_codes_name_the_sender() {
        let mut t = table(&[
            header(Operation::Barrier, 0, 0),
            header(Operation::Barrier, 0, 0),
        ]);
        t[HEADER_WORDS] = 99;
        assert_eq!(
            agree(0, Operation::Barrier, &t),
            Err(CollectiveError::UnknownOperationCode {
                rank: 0,
                from_rank: 1,
                code: 99
            })
        );
    }
}
