//! The exponential-moving-average target network of BYOL (Grill et al., NeurIPS 2020), also
//! used by the released MVEB code.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

use crate::ModelError;

/// Field-name prefix of Burn's buffers (`BatchNorm::running_mean`, `running_var`): they are
/// `RunningState`s, which module traversal hands to visitors and mappers as float tensors
/// exactly like parameters, so the field name is what tells them apart.
const BUFFER_PREFIX: &str = "running_";

/// One float tensor of a module, flattened, in traversal order.
struct Entry {
    values: Tensor<1>,
    dims: Vec<usize>,
    is_buffer: bool,
}

/// Collects every float tensor of a module with its shape and whether it is a buffer.
#[derive(Default)]
struct Collector {
    path: Vec<String>,
    entries: Vec<Entry>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val().detach();
        let dims = tensor.dims().to_vec();
        let count = dims.iter().product::<usize>();
        self.entries.push(Entry {
            values: tensor.reshape([count]),
            dims,
            is_buffer: self
                .path
                .last()
                .is_some_and(|name| name.starts_with(BUFFER_PREFIX)),
        });
    }
}

/// Replaces every parameter of the target by its moving average with the online one.
struct Averager {
    online: std::vec::IntoIter<Entry>,
    momentum: f64,
}

impl ModuleMapper for Averager {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        // `ema_update` checked beforehand that both modules list the same tensors.
        let Some(online) = self.online.next() else {
            return param;
        };
        if online.is_buffer {
            return param;
        }
        let momentum = self.momentum;
        param.map(|target| {
            let tracked = target.is_require_grad();
            let online = online
                .values
                .to_device(&target.device())
                .reshape(target.shape());
            (target.mul_scalar(momentum) + online.mul_scalar(1.0 - momentum))
                .detach()
                .set_require_grad(tracked)
        })
    }
}

/// BYOL's target update `θ_target ← m·θ_target + (1 − m)·θ_online` for every parameter.
///
/// Buffers (batch-norm running statistics) keep the target's own values, as in BYOL and the
/// released MVEB code, which average `parameters()` only. The new values carry no autodiff
/// history; each parameter keeps the target's gradient setting, so a target made by
/// [`crate::ssl::SslNetworkConfig::init_target`] stays gradient-free while its batch norms
/// still use batch statistics on an autodiff device.
///
/// # Errors
/// [`ModelError::InvalidConfig`] unless `momentum` ∈ [0, 1]; [`ModelError::StructureMismatch`]
/// if the two modules do not have the same tensors in the same order and shapes.
pub fn ema_update<M: Module>(target: M, online: &M, momentum: f64) -> Result<M, ModelError> {
    if !(0.0..=1.0).contains(&momentum) {
        return Err(ModelError::InvalidConfig(format!(
            "EMA momentum must lie in [0, 1], got {momentum}"
        )));
    }
    let mut online_tensors = Collector::default();
    online.visit(&mut online_tensors);
    let mut target_tensors = Collector::default();
    target.visit(&mut target_tensors);
    if online_tensors.entries.len() != target_tensors.entries.len() {
        return Err(ModelError::StructureMismatch(format!(
            "online module has {} float tensors, target {}",
            online_tensors.entries.len(),
            target_tensors.entries.len()
        )));
    }
    for (index, (a, b)) in online_tensors
        .entries
        .iter()
        .zip(&target_tensors.entries)
        .enumerate()
    {
        if a.dims != b.dims || a.is_buffer != b.is_buffer {
            return Err(ModelError::StructureMismatch(format!(
                "tensor #{index}: online {:?} (buffer: {}), target {:?} (buffer: {})",
                a.dims, a.is_buffer, b.dims, b.is_buffer
            )));
        }
    }
    let mut averager = Averager {
        online: online_tensors.entries.into_iter(),
        momentum,
    };
    Ok(target.map(&mut averager))
}

/// BYOL's momentum schedule `m_t = 1 − (1 − m_base)(cos(π t / T) + 1) / 2`: `m_base` at step 0,
/// rising to 1 at step `T` (Grill et al., NeurIPS 2020, §3.2; used by MVEB with
/// `m_base = 0.996`). Steps past `T`, and `T = 0`, give 1.
pub fn cosine_momentum(base: f64, step: usize, total_steps: usize) -> f64 {
    if step >= total_steps {
        return 1.0;
    }
    let progress = step as f64 / total_steps as f64;
    1.0 - (1.0 - base) * ((std::f64::consts::PI * progress).cos() + 1.0) / 2.0
}
