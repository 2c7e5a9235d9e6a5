//! The pieces of a data-parallel SSL step that are not Burn's: splitting a batch into shards,
//! and the exchange of detached embeddings behind [`EntropySupport::Gathered`].
//!
//! Gradients are not exchanged here: each replica's `GradientsParams` go to Burn's
//! `ModuleOptimizer::step_multi`, which sums them (see `SslTrainer::train_step`).
//!
//! [`EntropySupport::Gathered`]: super::EntropySupport::Gathered

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use burn::tensor::Tensor;
use infobound_data::ImageBatch;
use infobound_models::ModelError;
use infobound_models::ssl::ScoreSupport;

use crate::TrainError;

/// Images `[replica·n, (replica + 1)·n)` of `batch`, with `n = len / replicas`.
pub(crate) fn shard(
    batch: &ImageBatch,
    replica: usize,
    replicas: usize,
) -> Result<ImageBatch, TrainError> {
    let per_replica = batch.len() / replicas;
    let image_len = batch.shape().numel();
    let start = replica * per_replica * image_len;
    let pixels = batch.pixels()[start..start + per_replica * image_len].to_vec();
    Ok(ImageBatch::new(batch.shape(), pixels)?)
}

/// What the replicas of one step have posted so far.
#[derive(Default)]
struct Posted {
    /// Detached unit embeddings by (view, replica).
    samples: BTreeMap<(usize, usize), Tensor<2>>,
    /// Set when a replica failed: the others stop waiting.
    failure: Option<String>,
}

/// The rendezvous of one data-parallel step: replica r posts its embeddings of view v and
/// receives every replica's, in replica order.
pub(crate) struct EmbeddingExchange {
    replicas: usize,
    posted: Mutex<Posted>,
    changed: Condvar,
}

impl EmbeddingExchange {
    pub(crate) fn new(replicas: usize) -> Self {
        Self {
            replicas,
            posted: Mutex::new(Posted::default()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Posted>, ModelError> {
        self.posted
            .lock()
            .map_err(|_| ModelError::DataParallel("a replica panicked during the exchange".into()))
    }

    /// Releases every waiting replica with an error: `replica` cannot post any more.
    pub(crate) fn fail(&self, replica: usize, reason: &str) {
        if let Ok(mut posted) = self.posted.lock() {
            posted
                .failure
                .get_or_insert_with(|| format!("replica {replica} failed: {reason}"));
        }
        self.changed.notify_all();
    }

    /// Posts `local` as `replica`'s embeddings of `view`, waits for all replicas' and returns
    /// them concatenated in replica order on `local`'s device, with the first row of `local`.
    fn gather(
        &self,
        view: usize,
        replica: usize,
        local: Tensor<2>,
    ) -> Result<(Tensor<2>, usize), ModelError> {
        let device = local.device();
        let mut posted = self.lock()?;
        posted.samples.insert((view, replica), local);
        self.changed.notify_all();
        loop {
            // Completeness first: a replica that fails after posting its last view has already
            // given the others everything they wait for.
            if posted.samples.range((view, 0)..(view + 1, 0)).count() == self.replicas {
                break;
            }
            if let Some(failure) = &posted.failure {
                return Err(ModelError::DataParallel(failure.clone()));
            }
            posted = self
                .changed
                .wait(posted)
                .map_err(|_| ModelError::DataParallel("a replica panicked while waiting".into()))?;
        }
        let mut first_row = 0;
        let mut parts = Vec::with_capacity(self.replicas);
        for ((_, from), samples) in posted.samples.range((view, 0)..(view + 1, 0)) {
            if *from < replica {
                first_row += samples.dims()[0];
            }
            parts.push(samples.clone().to_device(&device));
        }
        Ok((Tensor::cat(parts, 0), first_row))
    }
}

/// Replica `replica`'s view of an [`EmbeddingExchange`], as MVEB's [`ScoreSupport`].
pub(crate) struct GatheredScoreSupport<'a> {
    pub(crate) exchange: &'a EmbeddingExchange,
    pub(crate) replica: usize,
}

impl ScoreSupport for GatheredScoreSupport<'_> {
    fn samples(&self, view: usize, local: Tensor<2>) -> Result<(Tensor<2>, usize), ModelError> {
        self.exchange.gather(view, self.replica, local)
    }
}

/// Marks a replica failed unless it finished: a replica that returns early (error or panic)
/// must not leave the others waiting for its embeddings.
pub(crate) struct FailOnDrop<'a> {
    pub(crate) exchange: &'a EmbeddingExchange,
    pub(crate) replica: usize,
    pub(crate) finished: bool,
}

impl Drop for FailOnDrop<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.exchange
                .fail(self.replica, "it stopped before the exchange");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn rows(values: &[f32], device: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(values.to_vec(), [values.len(), 1]), device)
    }

    #[test]
    fn every_replica_receives_all_samples_in_replica_order() {
        let device = Device::default();
        let exchange = EmbeddingExchange::new(3);
        let results: Vec<(Vec<f32>, usize)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..3)
                .rev()
                .map(|replica| {
                    let (exchange, device) = (&exchange, device.clone());
                    scope.spawn(move || {
                        let local = rows(
                            &[replica as f32 * 10.0, replica as f32 * 10.0 + 1.0],
                            &device,
                        );
                        let support = GatheredScoreSupport { exchange, replica };
                        let (all, first) = support.samples(0, local).expect("gather");
                        (all.into_data().try_to_vec::<f32>().expect("f32"), first)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        // Spawned in reverse: results[0] is replica 2.
        for (index, (all, first)) in results.iter().enumerate() {
            assert_eq!(all, &[0.0, 1.0, 10.0, 11.0, 20.0, 21.0]);
            assert_eq!(*first, 2 * (2 - index));
        }
    }

    #[test]
    fn a_failed_replica_releases_the_waiting_ones() {
        let device = Device::default();
        let exchange = EmbeddingExchange::new(2);
        let outcome = std::thread::scope(|scope| {
            let waiting = scope.spawn(|| {
                GatheredScoreSupport {
                    exchange: &exchange,
                    replica: 0,
                }
                .samples(0, rows(&[1.0, 2.0], &device))
            });
            scope.spawn(|| {
                let _guard = FailOnDrop {
                    exchange: &exchange,
                    replica: 1,
                    finished: false,
                };
            });
            waiting.join().expect("thread")
        });
        let message = outcome.expect_err("must not wait forever").to_string();
        assert!(message.contains("replica 1 failed"), "{message}");
    }

    #[test]
    fn shards_are_contiguous_and_cover_the_batch() {
        let shape = infobound_data::ObservationShape {
            channels: 1,
            height: 1,
            width: 2,
        };
        let batch = ImageBatch::new(shape, (0..8).map(|v| v as f32).collect()).expect("batch");
        let parts: Vec<Vec<f32>> = (0..2)
            .map(|r| shard(&batch, r, 2).expect("shard").into_pixels())
            .collect();
        assert_eq!(
            parts,
            vec![vec![0.0, 1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0, 7.0]]
        );
    }
}
