//! The ranks of a data-parallel job as the trainers see them: one [`Collective`] (a single
//! process, or the processes of an MPI job) and the exchanges a training step needs — every
//! rank's gradients and logged values averaged in one host-staged all-reduce, module weights
//! broadcast from rank 0, batch-norm running statistics averaged, embeddings all-gathered.
//!
//! Semantics (docs/architecture.md, "Data parallelism across processes"): every rank draws the
//! whole step batch from `(seed, step)` and takes its shards — global replica
//! `rank · local + local index` of `world_size · local` — so a job of N ranks computes what the
//! in-process `data_parallel.replicas = N` run computes, up to the order of float additions.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use infobound_collective::{Collective, SingleProcess};
use infobound_data::ImageBatch;

use crate::TrainError;
use infobound_estimators::EstimatorError;
use infobound_models::ModelError;

/// This process's place in a data-parallel job and the collective that connects it to the
/// others. [`Ranks::single`] (the default) is a job of one process, where every exchange is the
/// identity and nothing is staged through the host.
///
/// # A rank that stops early
/// Dropped before [`Ranks::finish`] (training failed on this rank, or the caller gave up before
/// training), the collective of a job of several ranks is leaked rather than finalised: MPI's
/// finalisation waits for every rank, which would hang this one while the others wait in a
/// step's exchange. The process then exits (with the caller's error) without `MPI_Finalize`,
/// which MPI launchers treat as a failed job: `mpirun` ends every rank and exits non-zero.
pub struct Ranks {
    collective: Box<dyn Collective + Send>,
    finished: bool,
}

impl Drop for Ranks {
    fn drop(&mut self) {
        if self.is_distributed() && !self.finished {
            let collective = std::mem::replace(&mut self.collective, Box::new(SingleProcess));
            std::mem::forget(collective);
        }
    }
}

impl std::fmt::Debug for Ranks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ranks")
            .field("rank", &self.rank())
            .field("world_size", &self.world_size())
            .finish()
    }
}

impl Default for Ranks {
    fn default() -> Self {
        Self::single()
    }
}

impl Ranks {
    /// A job of one process.
    pub fn single() -> Self {
        Self::new(Box::new(SingleProcess))
    }

    /// The ranks connected by `collective` (e.g. `infobound_collective::MpiCollective`).
    pub fn new(collective: Box<dyn Collective + Send>) -> Self {
        Self {
            collective,
            finished: false,
        }
    }

    /// Marks this rank's training as complete: from now on dropping it finalises the
    /// collective (waiting, under MPI, for the other ranks to finish too).
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// This process's rank, `0 ≤ rank < world_size`.
    pub fn rank(&self) -> usize {
        self.collective.rank()
    }

    /// The number of processes in the job.
    pub fn world_size(&self) -> usize {
        self.collective.world_size()
    }

    /// Checks that a batch of `batch_size` splits into equal shards of at least `min_rows`
    /// rows, `replicas` per rank on every rank.
    ///
    /// # Errors
    /// [`TrainError::DataParallel`] naming the batch, the ranks and the replicas otherwise.
    pub fn check_batch_split(
        &self,
        batch_size: usize,
        replicas: usize,
        min_rows: usize,
    ) -> Result<(), TrainError> {
        let shards = replicas * self.world_size();
        if batch_size.is_multiple_of(shards) && batch_size / shards >= min_rows {
            return Ok(());
        }
        let at_least = if min_rows > 1 {
            format!(" of at least {min_rows} images")
        } else {
            String::new()
        };
        Err(TrainError::DataParallel(format!(
            "batch_size {batch_size} does not split into {} ranks × {replicas} replicas{at_least}",
            self.world_size()
        )))
    }

    /// Rank 0: the one process that writes the run folder, its log and its checkpoints.
    pub fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// More than one process.
    pub fn is_distributed(&self) -> bool {
        self.world_size() > 1
    }

    /// Ends the whole job with exit status `code` (a single process exits).
    pub fn abort(&self, code: i32) -> ! {
        self.collective.abort(code)
    }

    /// Whether `ok` holds on every rank (one small all-reduce; no exchange in one process).
    /// Every rank takes the same decision from it, so a rank whose step failed softly (a
    /// non-finite input) and the others skip the step together.
    ///
    /// # Errors
    /// [`TrainError::DataParallel`] if the exchange fails.
    pub fn all_ok(&mut self, ok: bool) -> Result<bool, TrainError> {
        if !self.is_distributed() {
            return Ok(ok);
        }
        let mut failed = [if ok { 0.0f32 } else { 1.0 }];
        self.collective
            .all_reduce_sum_f32(&mut failed)
            .map_err(collective_error)?;
        Ok(failed[0] == 0.0)
    }

    /// A step's forward and backward pass, agreed on across ranks: `Some(output)` if it
    /// succeeded on every rank; `None` if on any rank an estimator refused non-finite input
    /// (`EstimatorError::NonFinite`, raised before any loss exists), which every rank then
    /// treats as a non-finite step and skips, as one whose loss is NaN. Any other error is
    /// returned as it is, without the exchange (that rank stops).
    ///
    /// # Errors
    /// The step's own error other than a non-finite input; [`TrainError::DataParallel`] if
    /// the exchange fails.
    pub fn agree_finite<T>(
        &mut self,
        outcome: Result<T, TrainError>,
    ) -> Result<Option<T>, TrainError> {
        let output = match outcome {
            Ok(output) => Some(output),
            Err(TrainError::Model(ModelError::Estimator(EstimatorError::NonFinite { .. }))) => None,
            Err(e) => return Err(e),
        };
        let finite_everywhere = self.all_ok(output.is_some())?;
        Ok(output.filter(|_| finite_everywhere))
    }

    /// Rank 0's `text` on every rank: rank 0 passes `Some`, the others `None`.
    ///
    /// # Errors
    /// [`TrainError::DataParallel`] if the exchange fails or the bytes are not UTF-8.
    pub fn broadcast_text(&mut self, text: Option<String>) -> Result<String, TrainError> {
        let mut bytes = text.unwrap_or_default().into_bytes();
        if self.is_distributed() {
            self.collective
                .broadcast_bytes(0, &mut bytes)
                .map_err(collective_error)?;
        }
        String::from_utf8(bytes)
            .map_err(|e| TrainError::DataParallel(format!("rank 0 sent invalid text: {e}")))
    }

    /// The rows of every rank's `rows` (`[n, d]`, the same `n` on every rank), in rank order,
    /// on `rows`' device: `[world_size · n, d]`.
    ///
    /// # Errors
    /// [`TrainError::DataParallel`] if the exchange fails (e.g. the ranks' `n · d` differ).
    pub fn all_gather_rows(&mut self, rows: Tensor<2>) -> Result<Tensor<2>, TrainError> {
        if !self.is_distributed() {
            return Ok(rows);
        }
        let [n, d] = rows.dims();
        let device = rows.device();
        let local = host_f32(rows.reshape([n * d]))?;
        let all = self
            .collective
            .all_gather_f32(&local)
            .map_err(collective_error)?;
        let total = all.len() / d.max(1);
        Ok(Tensor::from_data(TensorData::new(all, [total, d]), &device))
    }

    /// Averages `reduction`'s buffer over the ranks: one read of the local buffer to the host,
    /// one all-reduce-sum, then division by the world size. Each rank contributes its local
    /// mean (of its replicas' losses, values and gradients), so the result is the mean over
    /// all replicas of the job.
    ///
    /// # Errors
    /// [`TrainError::DataParallel`] if the read or the exchange fails.
    pub(crate) fn mean(&mut self, reduction: Reduction) -> Result<Vec<f32>, TrainError> {
        let Reduction { parts, len } = reduction;
        let mut buffer = if parts.is_empty() {
            Vec::new()
        } else {
            host_f32(Tensor::cat(parts, 0))?
        };
        debug_assert_eq!(buffer.len(), len);
        self.collective
            .all_reduce_sum_f32(&mut buffer)
            .map_err(collective_error)?;
        let scale = 1.0 / self.world_size() as f32;
        if self.is_distributed() {
            buffer.iter_mut().for_each(|v| *v *= scale);
        }
        Ok(buffer)
    }

    /// `module` with rank 0's weights and buffers (batch-norm running statistics included) on
    /// every rank: the start of a run and a resume begin from the same state everywhere.
    ///
    /// # Errors
    /// [`TrainError::DataParallel`] if the exchange fails or the ranks' modules differ in size.
    pub fn broadcast_module<M: Module>(&mut self, module: M) -> Result<M, TrainError> {
        if !self.is_distributed() {
            return Ok(module);
        }
        // Rank 0 reads its weights to the host; the others only need their count.
        let count = value_count(&module);
        let mut bytes: Vec<u8> = if self.is_root() {
            host_f32(flat_values(&module))?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect()
        } else {
            Vec::new()
        };
        self.collective
            .broadcast_bytes(0, &mut bytes)
            .map_err(collective_error)?;
        if self.is_root() {
            return Ok(module);
        }
        if bytes.len() != count * 4 {
            return Err(TrainError::DataParallel(format!(
                "rank 0 sent {} weights, this rank's module has {count}",
                bytes.len() / 4
            )));
        }
        let received: Vec<f64> = bytes
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect();
        Ok(assign_values(module, &received))
    }

    /// `module` with every float tensor averaged over the ranks, in f64 (so tensors that are
    /// equal on every rank — the weights after identical updates — come back bit for bit, and
    /// the batch-norm running statistics, which each rank updates from its own shards, become
    /// their mean: the same as averaging them after every step, since the running average is
    /// linear in the batch statistics).
    ///
    /// # Errors
    /// [`TrainError::DataParallel`] if the exchange fails.
    pub fn average_module<M: Module>(&mut self, module: M) -> Result<M, TrainError> {
        if !self.is_distributed() {
            return Ok(module);
        }
        let mut values: Vec<f64> = host_f32(flat_values(&module))?
            .into_iter()
            .map(f64::from)
            .collect();
        self.collective
            .all_reduce_sum_f64(&mut values)
            .map_err(collective_error)?;
        let world = self.world_size() as f64;
        values.iter_mut().for_each(|v| *v /= world);
        Ok(assign_values(module, &values))
    }
}

/// Runs `build` — which draws modules' weights from `device`'s random generator — after seeding
/// that generator with `seed`, and draws every parameter of what it built (`materialise`)
/// before releasing a process-wide lock. Burn keeps one generator per device and initialises
/// parameters lazily, on first use; without the lock two trainers built at once on different
/// threads (parallel tests, a notebook) would interleave their draws, and their weights would
/// depend on timing instead of on `seed`.
///
/// # Errors
/// What `build` returns.
pub(crate) fn build_seeded<T>(
    device: &Device,
    seed: u64,
    build: impl FnOnce() -> Result<T, TrainError>,
    materialise: impl FnOnce(&T),
) -> Result<T, TrainError> {
    static SEEDED_DRAWS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = SEEDED_DRAWS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    device.seed(seed);
    let built = build()?;
    materialise(&built);
    Ok(built)
}

/// Draws every lazily initialised parameter of `module` now.
pub(crate) fn materialise<M: Module>(module: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
}

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

fn collective_error(e: infobound_collective::CollectiveError) -> TrainError {
    TrainError::DataParallel(e.to_string())
}

/// One read of `values` to the host, as f32.
fn host_f32(values: Tensor<1>) -> Result<Vec<f32>, TrainError> {
    values
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| TrainError::DataParallel(format!("cannot read values back: {e:?}")))
}

/// The number of values in every float tensor of `module`, without reading them.
fn value_count<M: Module>(module: &M) -> usize {
    struct Count(usize);
    impl ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0 += param.lazy_shape().num_elements();
        }
    }
    let mut count = Count(0);
    module.visit(&mut count);
    count.0
}

/// Every float tensor of `module` (parameters and running statistics, in visiting order),
/// flattened into one `[n]` tensor on the first tensor's device.
fn flat_values<M: Module>(module: &M) -> Tensor<1> {
    struct Collect {
        parts: Vec<Tensor<1>>,
        device: Option<Device>,
    }
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            let device = self.device.get_or_insert_with(|| value.device()).clone();
            let n = value.shape().num_elements();
            self.parts
                .push(value.detach().reshape([n]).to_device(&device));
        }
    }
    let mut collect = Collect {
        parts: Vec::new(),
        device: None,
    };
    module.visit(&mut collect);
    match collect.device {
        Some(_) => Tensor::cat(collect.parts, 0),
        None => Tensor::zeros([0], &Device::default()),
    }
}

/// `module` with its float tensors replaced, in visiting order, by consecutive slices of
/// `values` (each on its tensor's device, with its gradient requirement kept).
fn assign_values<M: Module>(module: M, values: &[f64]) -> M {
    struct Assign<'a> {
        values: &'a [f64],
        offset: usize,
    }
    impl ModuleMapper for Assign<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (values, offset) = (self.values, &mut self.offset);
            param.map(|tensor| {
                let shape = tensor.shape();
                let n = shape.num_elements();
                let slice = &values[*offset..*offset + n];
                *offset += n;
                let data = TensorData::new(slice.to_vec(), shape).convert_dtype(tensor.dtype());
                Tensor::<D>::from_data(data, &tensor.device())
                    .set_require_grad(tensor.is_require_grad())
            })
        }
    }
    module.map(&mut Assign { values, offset: 0 })
}

/// Where one module's gradients sit in a [`Reduction`]'s buffer.
pub(crate) struct GradientSlots {
    entries: Vec<GradientSlot>,
}

struct GradientSlot {
    id: ParamId,
    offset: usize,
    shape: Vec<usize>,
}

/// The local values of a step, packed into one buffer for [`Ranks::mean`]: logged values and
/// the gradients of each module.
#[derive(Default)]
pub(crate) struct Reduction {
    parts: Vec<Tensor<1>>,
    len: usize,
}

impl Reduction {
    /// Appends `values` (`[n]`); returns their range in the buffer.
    pub(crate) fn push_values(&mut self, values: Tensor<1>) -> std::ops::Range<usize> {
        let start = self.len;
        self.len += values.dims()[0];
        self.parts.push(values.detach());
        start..self.len
    }

    /// Appends the sum of `grads` (one per local replica, on any devices) for every parameter
    /// of `module` that has a gradient, moved to `device`.
    pub(crate) fn push_gradients<M: Module>(
        &mut self,
        module: &M,
        grads: &[&GradientsParams],
        device: &Device,
    ) -> GradientSlots {
        struct Slots<'a> {
            grads: &'a [&'a GradientsParams],
            device: &'a Device,
            reduction: &'a mut Reduction,
            entries: Vec<GradientSlot>,
        }
        impl ModuleVisitor for Slots<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let sum = self
                    .grads
                    .iter()
                    .filter_map(|g| g.get::<D>(param.id))
                    .map(|g| g.to_device(self.device))
                    .reduce(|a, b| a + b);
                if let Some(sum) = sum {
                    let shape = sum.dims().to_vec();
                    let n: usize = shape.iter().product();
                    self.entries.push(GradientSlot {
                        id: param.id,
                        offset: self.reduction.len,
                        shape,
                    });
                    self.reduction.len += n;
                    self.reduction.parts.push(sum.reshape([n]));
                }
            }
        }
        let mut slots = Slots {
            grads,
            device,
            reduction: self,
            entries: Vec::new(),
        };
        module.visit(&mut slots);
        GradientSlots {
            entries: slots.entries,
        }
    }
}

impl GradientSlots {
    /// The gradients read from the reduced `buffer`, on `device`.
    pub(crate) fn gradients<M: Module>(
        &self,
        module: &M,
        buffer: &[f32],
        device: &Device,
    ) -> GradientsParams {
        struct Build<'a> {
            slots: &'a GradientSlots,
            buffer: &'a [f32],
            device: &'a Device,
            grads: GradientsParams,
        }
        impl ModuleVisitor for Build<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if let Some(slot) = self.slots.entries.iter().find(|s| s.id == param.id) {
                    let n: usize = slot.shape.iter().product();
                    let values = self.buffer[slot.offset..slot.offset + n].to_vec();
                    let data = TensorData::new(values, slot.shape.clone());
                    self.grads
                        .register::<D>(param.id, Tensor::from_data(data, self.device));
                }
            }
        }
        let mut build = Build {
            slots: self,
            buffer,
            device,
            grads: GradientsParams::new(),
        };
        module.visit(&mut build);
        build.grads
    }

    /// Σ g² over this module's gradients in `buffer`, in f64.
    pub(crate) fn squared_norm(&self, buffer: &[f32]) -> f64 {
        self.entries
            .iter()
            .map(|slot| {
                let n: usize = slot.shape.iter().product();
                buffer[slot.offset..slot.offset + n]
                    .iter()
                    .map(|&g| f64::from(g) * f64::from(g))
                    .sum::<f64>()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};

    #[derive(Module, Debug)]
    struct Net {
        linear: Linear,
        norm: BatchNorm,
    }

    fn net(device: &Device) -> Net {
        Net {
            linear: LinearConfig::new(3, 2).init(device),
            norm: BatchNormConfig::new(2).init(device),
        }
    }

    fn values(module: &Net) -> Vec<f32> {
        host_f32(flat_values(module)).expect("values")
    }

    #[test]
    fn assigning_the_flat_values_back_is_the_identity_and_keeps_the_layout() {
        let device = Device::default().autodiff();
        let module = net(&device);
        let before = values(&module);
        // weight 3×2 + bias 2 + gamma 2 + beta 2 + running mean 2 + running var 2.
        assert_eq!(before.len(), 16);
        let shifted: Vec<f64> = before.iter().map(|&v| f64::from(v) + 1.0).collect();
        let module = assign_values(module, &shifted);
        let after = values(&module);
        for (a, b) in after.iter().zip(&before) {
            assert!((a - (b + 1.0)).abs() < 1e-6, "{a} vs {b} + 1");
        }
        assert!(module.linear.weight.val().is_require_grad());
    }

    #[test]
    fn one_rank_leaves_modules_and_values_unchanged() {
        let device = Device::default().autodiff();
        let mut ranks = Ranks::single();
        let module = net(&device);
        let before = values(&module);
        let module = ranks_broadcast(&mut ranks, module);
        let module = ranks.average_module(module).unwrap();
        assert_eq!(values(&module), before);
        assert!(ranks.all_ok(true).unwrap() && !ranks.all_ok(false).unwrap());
        assert!(ranks.check_batch_split(12, 3, 2).is_ok());
        let error = ranks.check_batch_split(12, 4, 4).unwrap_err().to_string();
        assert!(
            error.contains(
                "batch_size 12 does not split into 1 ranks × 4 replicas of at least 4 images"
            ),
            "{error}"
        );
        assert!(ranks.check_batch_split(10, 3, 1).is_err());
        assert_eq!(ranks.agree_finite(Ok(3)).unwrap(), Some(3));
        let non_finite = TrainError::Model(ModelError::Estimator(EstimatorError::NonFinite {
            what: "z",
        }));
        assert_eq!(ranks.agree_finite::<i32>(Err(non_finite)).unwrap(), None);
        let other = ranks.agree_finite::<i32>(Err(TrainError::Config("bad".into())));
        assert!(matches!(other, Err(TrainError::Config(_))));
        let mut reduction = Reduction::default();
        let range = reduction.push_values(Tensor::from_data([1.5f32, -2.0], &device));
        assert_eq!(ranks.mean(reduction).unwrap()[range], [1.5, -2.0]);
    }

    fn ranks_broadcast(ranks: &mut Ranks, module: Net) -> Net {
        ranks.broadcast_module(module).expect("broadcast")
    }

    #[test]
    fn gradients_survive_the_buffer_round_trip_and_replicas_are_summed() {
        let device = Device::default().autodiff();
        let module = net(&device);
        let x = Tensor::<2>::from_data([[1.0f32, 2.0, 3.0], [0.5, -1.0, 2.0]], &device);
        let grads_of = |scale: f32| {
            let loss = module.linear.forward(x.clone()).mul_scalar(scale).sum();
            GradientsParams::from_grads(loss.backward(), &module)
        };
        let (one, two) = (grads_of(1.0), grads_of(2.0));
        let mut reduction = Reduction::default();
        let slots = reduction.push_gradients(&module, &[&one, &two], &device);
        let buffer = Ranks::single().mean(reduction).unwrap();
        let rebuilt = slots.gradients(&module, &buffer, &device);
        let expected: Vec<f32> = one
            .get::<2>(module.linear.weight.id)
            .unwrap()
            .mul_scalar(3.0)
            .into_data()
            .try_to_vec()
            .unwrap();
        let got: Vec<f32> = rebuilt
            .get::<2>(module.linear.weight.id)
            .unwrap()
            .into_data()
            .try_to_vec()
            .unwrap();
        assert_eq!(got, expected);
        // Only the linear layer's weight and bias took part in the loss.
        assert_eq!(rebuilt.len(), 2);
        let norm: f64 = expected.iter().map(|&g| f64::from(g).powi(2)).sum::<f64>()
            + 3.0f64.powi(2) * 2.0 * 4.0;
        assert!((slots.squared_norm(&buffer) - norm).abs() < 1e-9 * norm);
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
