//! One replica's forward and backward, and the orchestration of a data-parallel SSL step:
//! splitting a batch into shards, one thread per replica, and the exchange of detached
//! embeddings behind [`EntropySupport::Gathered`].
//!
//! Gradients are not exchanged here: each replica's `GradientsParams` go to Burn's
//! `ModuleOptimizer::step_multi`, which sums them (see `SslTrainer::train_step`).
//!
//! [`EntropySupport::Gathered`]: super::EntropySupport::Gathered

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use infobound_data::{ImageBatch, images_to_tensor};

use crate::run::{Ranks, shard};
use infobound_models::ModelError;
use infobound_models::ssl::{
    LocalScoreSupport, ScoreSupport, SslNetwork, SslObjective, SslViews, ViewBatching,
    ViewEmbeddings,
};

use super::config::{DataParallelConfig, EntropySupport};
use crate::TrainError;

/// What the replicas of one step have posted so far.
#[derive(Default)]
struct Posted {
    /// Detached unit embeddings by (view, replica).
    samples: BTreeMap<(usize, usize), Tensor<2>>,
    /// Every rank's embeddings of a view, in rank order, once all-gathered (jobs of several
    /// ranks only).
    across_ranks: BTreeMap<usize, Tensor<2>>,
    /// Set when a replica failed: the others stop waiting.
    failure: Option<String>,
}

/// The rendezvous of one data-parallel step: replica r posts its embeddings of view v and
/// receives every replica's, in replica order — this process's replicas, and in a job of
/// several ranks every rank's after them in rank order (global replica order).
pub(crate) struct EmbeddingExchange<'r> {
    replicas: usize,
    /// The job's other ranks: the replica that completes a view all-gathers its process's
    /// embeddings of the view across them, while the others wait. Every rank goes through the
    /// views in the same order, so the ranks' all-gathers pair up.
    ranks: Option<Mutex<&'r mut Ranks>>,
    /// This process's rank (0 without `ranks`).
    rank: usize,
    posted: Mutex<Posted>,
    changed: Condvar,
}

impl<'r> EmbeddingExchange<'r> {
    pub(crate) fn new(replicas: usize, ranks: Option<&'r mut Ranks>) -> Self {
        Self {
            replicas,
            rank: ranks.as_ref().map_or(0, |r| r.rank()),
            ranks: ranks.map(Mutex::new),
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
            let complete = posted.samples.range((view, 0)..(view + 1, 0)).count() == self.replicas;
            if complete && self.ranks.is_none() {
                break;
            }
            if complete && posted.across_ranks.contains_key(&view) {
                break;
            }
            if complete && let Some(ranks) = &self.ranks {
                // This replica completed the view: it all-gathers for the process, holding the
                // lock, so no other replica starts a second exchange of the same view.
                let mine: Vec<Tensor<2>> = posted
                    .samples
                    .range((view, 0)..(view + 1, 0))
                    .map(|(_, s)| s.clone().to_device(&device))
                    .collect();
                let gathered = ranks
                    .lock()
                    .map_err(|_| {
                        ModelError::DataParallel("a replica panicked during an all-gather".into())
                    })
                    .and_then(|mut ranks| {
                        ranks
                            .all_gather_rows(Tensor::cat(mine, 0))
                            .map_err(|e| ModelError::DataParallel(e.to_string()))
                    });
                match gathered {
                    Ok(all) => {
                        posted.across_ranks.insert(view, all);
                        self.changed.notify_all();
                        break;
                    }
                    Err(e) => {
                        posted.failure.get_or_insert_with(|| e.to_string());
                        self.changed.notify_all();
                        return Err(e);
                    }
                }
            }
            if let Some(failure) = &posted.failure {
                return Err(ModelError::DataParallel(failure.clone()));
            }
            posted = self
                .changed
                .wait(posted)
                .map_err(|_| ModelError::DataParallel("a replica panicked while waiting".into()))?;
        }
        let mine = posted.samples.range((view, 0)..(view + 1, 0));
        let first_row: usize = mine
            .clone()
            .filter(|((_, from), _)| *from < replica)
            .map(|(_, samples)| samples.dims()[0])
            .sum();
        match posted.across_ranks.get(&view) {
            // This process's rows follow those of the ranks before it.
            Some(all) => {
                let rows_here: usize = mine.map(|(_, samples)| samples.dims()[0]).sum();
                Ok((
                    all.clone().to_device(&device),
                    self.rank * rows_here + first_row,
                ))
            }
            None => {
                let parts = mine
                    .map(|(_, samples)| samples.clone().to_device(&device))
                    .collect();
                Ok((Tensor::cat(parts, 0), first_row))
            }
        }
    }
}

/// Replica `replica`'s view of an [`EmbeddingExchange`], as MVEB's [`ScoreSupport`].
pub(crate) struct GatheredScoreSupport<'a, 'r> {
    pub(crate) exchange: &'a EmbeddingExchange<'r>,
    pub(crate) replica: usize,
}

impl ScoreSupport for GatheredScoreSupport<'_, '_> {
    fn samples(&self, view: usize, local: Tensor<2>) -> Result<(Tensor<2>, usize), ModelError> {
        self.exchange.gather(view, self.replica, local)
    }
}

/// Marks a replica failed unless it finished: a replica that returns early (error or panic)
/// must not leave the others waiting for its embeddings.
pub(crate) struct FailOnDrop<'a, 'r> {
    pub(crate) exchange: &'a EmbeddingExchange<'r>,
    pub(crate) replica: usize,
    pub(crate) finished: bool,
}

impl Drop for FailOnDrop<'_, '_> {
    fn drop(&mut self) {
        if !self.finished {
            self.exchange
                .fail(self.replica, "it stopped before the exchange");
        }
    }
}

/// The networks one replica runs, on its device.
pub(super) struct Replica<'a> {
    pub(super) online: &'a SslNetwork,
    pub(super) target: Option<&'a SslNetwork>,
    pub(super) objective: &'a SslObjective,
    pub(super) device: &'a Device,
    /// How the views go through the networks.
    pub(super) batching: ViewBatching,
}

/// What one replica's forward and backward produced.
pub(super) struct ReplicaOutput {
    pub(super) grads: GradientsParams,
    pub(super) device: Device,
    /// `loss` then the objective's terms, as in `values`.
    pub(super) names: Vec<String>,
    /// The values of `names`, `[names.len()]`, detached, on the replica's device.
    pub(super) values: Tensor<1>,
    /// Detached backbone features of global view 1 (the online probe's input).
    pub(super) features: Tensor<2>,
    /// Detached online embeddings of the two global views.
    pub(super) embeddings: [Tensor<2>; 2],
}

impl Replica<'_> {
    /// Forward of every view through the online network and of the global views through the
    /// target, each view in its own forward unless `batching` concatenates the views of one
    /// resolution ([`ViewBatching`]); the predictor on each global view's projection; the loss,
    /// and its backward, scaled by `1 / replicas` when the batch is split.
    pub(super) fn forward_backward(
        &self,
        views: &[ImageBatch],
        support: &dyn ScoreSupport,
        replicas: Option<f64>,
    ) -> Result<ReplicaOutput, TrainError> {
        if views.len() < 2 {
            return Err(TrainError::Config(format!(
                "two global views expected, got {} view(s)",
                views.len()
            )));
        }
        let images: Vec<Tensor<4>> = views
            .iter()
            .map(|v| images_to_tensor(v, self.device))
            .collect();
        let globals = images[..2].to_vec();
        let ViewEmbeddings {
            features,
            projections: online,
        } = self.online.embed_views(images, self.batching)?;
        let predictions = self.online.predict_views(&online, self.batching)?;
        let target = match self.target {
            Some(t) => Some(
                t.embed_views(globals, self.batching)?
                    .projections
                    .into_iter()
                    .map(Tensor::detach)
                    .collect(),
            ),
            None => None,
        };
        let global_embeddings = [online[0].clone().detach(), online[1].clone().detach()];
        let output = self.objective.loss_with_support(
            &SslViews {
                online,
                predictions,
                target,
            },
            support,
        )?;
        let names = std::iter::once("loss")
            .chain(output.terms.iter().map(|(name, _)| *name))
            .map(str::to_string)
            .collect();
        let values = output.packed();
        let scaled = match replicas {
            Some(count) => output.loss.mul_scalar(1.0 / count),
            None => output.loss,
        };
        let grads = GradientsParams::from_grads(scaled.backward(), self.online);
        Ok(ReplicaOutput {
            grads,
            device: self.device.clone(),
            names,
            values,
            features: features[0].clone().detach(),
            embeddings: global_embeddings,
        })
    }
}

/// The networks every replica starts from (forked onto its device).
pub(super) struct ReplicaNetworks<'a> {
    /// The online network.
    pub(super) online: &'a SslNetwork,
    /// The EMA target, for methods that have one.
    pub(super) target: Option<&'a SslNetwork>,
    /// The objective.
    pub(super) objective: &'a SslObjective,
    /// How the views go through the networks.
    pub(super) batching: ViewBatching,
}

/// Where this process's replicas sit among the job's: global replicas `first..first +
/// replicas` of `shards`.
pub(super) struct Placement {
    /// The global index of this process's first replica (`rank × replicas`).
    pub(super) first: usize,
    /// Replicas in the whole job (`world size × replicas`).
    pub(super) shards: usize,
}

/// Forward and backward of every replica of this process on its shard, one thread per
/// replica; with gathered score samples in a job of several ranks, the replicas' embeddings
/// are all-gathered across `ranks`.
pub(super) fn replica_steps(
    networks: &ReplicaNetworks<'_>,
    devices: &[Device],
    parallel: &DataParallelConfig,
    views: &[ImageBatch],
    placement: &Placement,
    ranks: Option<&mut Ranks>,
) -> Result<Vec<ReplicaOutput>, TrainError> {
    let count = parallel.replicas;
    let gathered = parallel.entropy_support == EntropySupport::Gathered;
    let shards = (0..count)
        .map(|r| {
            views
                .iter()
                .map(|v| shard(v, placement.first + r, placement.shards))
                .collect()
        })
        .collect::<Result<Vec<Vec<ImageBatch>>, TrainError>>()?;
    let exchange = EmbeddingExchange::new(count, ranks.filter(|_| gathered));
    let outputs = std::thread::scope(|scope| {
        let handles: Vec<_> = shards
            .iter()
            .enumerate()
            .map(|(index, shard_views)| {
                let device = &devices[index % devices.len()];
                let (online, target) = (networks.online, networks.target);
                let (objective, exchange) = (networks.objective, &exchange);
                scope.spawn(move || {
                    let mut guard = FailOnDrop {
                        exchange,
                        replica: index,
                        finished: false,
                    };
                    // `fork` gives the replica its own autodiff leaves on its device; the
                    // parameter ids stay, so the gradients map back onto `online`.
                    let online = online.clone().fork(device);
                    let target = target.map(|t| t.clone().fork(device));
                    let replica = Replica {
                        online: &online,
                        target: target.as_ref(),
                        objective,
                        device,
                        batching: networks.batching,
                    };
                    let support = GatheredScoreSupport {
                        exchange,
                        replica: index,
                    };
                    let support: &dyn ScoreSupport = if gathered {
                        &support
                    } else {
                        &LocalScoreSupport
                    };
                    let output = replica.forward_backward(shard_views, support, Some(count as f64));
                    guard.finished = output.is_ok();
                    output
                })
            })
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(index, handle)| {
                handle
                    .join()
                    .map_err(|_| TrainError::DataParallel(format!("replica {index} panicked")))?
            })
            .collect::<Result<Vec<_>, TrainError>>()
    })?;
    // Each replica thread left its batch-norm statistics update keyed by its thread id;
    // `valid()` folds them into their mean now, while the next step's threads are new.
    let _ = networks.online.valid();
    if let Some(target) = &networks.target {
        let _ = target.valid();
    }
    Ok(outputs)
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
        let exchange = EmbeddingExchange::new(3, None);
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
        let exchange = EmbeddingExchange::new(2, None);
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
}
