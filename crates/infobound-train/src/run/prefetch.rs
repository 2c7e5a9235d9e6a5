//! Batches prepared on a background thread, two steps ahead of the trainer.

use std::sync::mpsc::{Receiver, sync_channel};

use crate::TrainError;

/// Runs `make(step)` for `start..end` on a background thread, keeping at most two results
/// ahead of the consumer. The batch of step t must depend only on t (and what `make` captured),
/// so a resumed run sees the same batches as an uninterrupted one.
pub fn prefetch<T, F>(start: usize, end: usize, make: F) -> Receiver<Result<T, TrainError>>
where
    T: Send + 'static,
    F: Fn(usize) -> Result<T, TrainError> + Send + 'static,
{
    let (tx, rx) = sync_channel(2);
    std::thread::spawn(move || {
        for step in start..end {
            if tx.send(make(step)).is_err() {
                break;
            }
        }
    });
    rx
}
