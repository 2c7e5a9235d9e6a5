//! The job of one process.

use crate::{Collective, CollectiveError};

/// A job of one rank: rank 0, world size 1, and every collective the identity (the sum, the
/// concatenation and the broadcast over one rank leave the data as it is).
///
/// What a trainer uses without the `mpi` feature, or when [`crate::MpiCollective::init`]
/// returns `None`, so that it runs exactly as before data parallelism existed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }

    fn world_size(&self) -> usize {
        1
    }

    fn all_reduce_sum_f32(&mut self, _values: &mut [f32]) -> Result<(), CollectiveError> {
        Ok(())
    }

    fn all_reduce_sum_f64(&mut self, _values: &mut [f64]) -> Result<(), CollectiveError> {
        Ok(())
    }

    fn all_gather_f32(&mut self, values: &[f32]) -> Result<Vec<f32>, CollectiveError> {
        Ok(values.to_vec())
    }

    fn broadcast_bytes(
        &mut self,
        root: usize,
        _bytes: &mut Vec<u8>,
    ) -> Result<(), CollectiveError> {
        if root == 0 {
            Ok(())
        } else {
            Err(CollectiveError::InvalidRoot {
                rank: 0,
                root,
                world_size: 1,
            })
        }
    }

    fn barrier(&mut self) -> Result<(), CollectiveError> {
        Ok(())
    }

    /// Exits the process with status `code` (`std::process::exit`: destructors do not run).
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rank_is_the_identity() {
        let mut c = SingleProcess;
        assert_eq!((c.rank(), c.world_size()), (0, 1));
        let mut a = vec![1.5f32, -2.0, 3.25];
        c.all_reduce_sum_f32(&mut a).unwrap();
        assert_eq!(a, [1.5, -2.0, 3.25]);
        let mut b = vec![1e300f64, f64::MIN_POSITIVE];
        c.all_reduce_sum_f64(&mut b).unwrap();
        assert_eq!(b, [1e300, f64::MIN_POSITIVE]);
        assert_eq!(c.all_gather_f32(&a).unwrap(), a);
        let mut bytes = b"abc".to_vec();
        c.broadcast_bytes(0, &mut bytes).unwrap();
        assert_eq!(bytes, b"abc");
        c.barrier().unwrap();
    }

    #[test]
    fn a_root_other_than_zero_is_an_error() {
        let mut bytes = vec![7u8];
        assert_eq!(
            SingleProcess.broadcast_bytes(1, &mut bytes),
            Err(CollectiveError::InvalidRoot {
                rank: 0,
                root: 1,
                world_size: 1
            })
        );
        assert_eq!(bytes, [7]);
    }

    #[test]
    fn usable_as_a_trait_object() {
        let mut boxed: Box<dyn Collective + Send> = Box::new(SingleProcess);
        assert_eq!(boxed.all_gather_f32(&[]).unwrap(), Vec::<f32>::new());
        assert_eq!(boxed.world_size(), 1);
    }
}
