//! LARS: layer-wise adaptive rate scaling (You, Gitman & Ginsburg 2017, "Large Batch Training of
//! Convolutional Networks"), in the variant of BYOL, Barlow Twins and MVEB.

use burn::optim::{LearningRate, ModuleOptimizer, Optimizer, RecordState, StateSink, StateSource};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// Hyper-parameters of [`Lars`]. Defaults are those of the released MVEB code (Wen et al. 2024):
/// momentum 0.9, trust coefficient η = 0.001, weight decay 1e-6, and parameters with one
/// dimension (biases, batch-norm affine parameters) excluded from both weight decay and the trust
/// ratio.
///
/// Values built by deserialisation are checked by [`init`](Self::init) (or
/// [`validate`](Self::validate)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LarsConfig {
    /// Heavy-ball momentum `m` in `μ ← m·μ + g`, in `[0, 1)`.
    pub momentum: f64,
    /// L2 weight decay `λ` added to the gradient (`g ← g + λ·p`), finite and ≥ 0.
    pub weight_decay: f64,
    /// Trust coefficient `η` of the layer-wise ratio `η‖p‖/‖g‖`, finite and > 0.
    pub trust_coefficient: f64,
    /// Whether rank-1 parameters (biases, norm scales/shifts) skip weight decay and the trust
    /// ratio (BYOL, Barlow Twins and MVEB all do).
    pub exclude_one_dimensional: bool,
    /// Multiplier `ρ` of the learning rate of rank-1 parameters (biases, norm scales/shifts),
    /// finite and > 0: they step at `ρ·lr`. 1 (MVEB, BYOL); Barlow Twins trains them at
    /// `0.0048 / 0.2 = 0.024` of the weights' rate (facebookresearch/barlowtwins@8e8d284
    /// `main.py`: `--learning-rate-weights 0.2`, `--learning-rate-biases 0.0048`, the two
    /// parameter groups split by `param.ndim == 1`).
    pub one_dimensional_lr_factor: f64,
}

impl Default for LarsConfig {
    fn default() -> Self {
        Self {
            momentum: 0.9,
            weight_decay: 1e-6,
            trust_coefficient: 1e-3,
            exclude_one_dimensional: true,
            one_dimensional_lr_factor: 1.0,
        }
    }
}

impl LarsConfig {
    /// Checks the invariants listed on the fields.
    ///
    /// # Errors
    /// [`TrainError::Config`] naming the first violated invariant.
    pub fn validate(&self) -> Result<(), TrainError> {
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(TrainError::Config(format!(
                "LARS momentum must lie in [0, 1), got {}",
                self.momentum
            )));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(TrainError::Config(format!(
                "LARS weight_decay must be finite and >= 0, got {}",
                self.weight_decay
            )));
        }
        if !(self.trust_coefficient.is_finite() && self.trust_coefficient > 0.0) {
            return Err(TrainError::Config(format!(
                "LARS trust_coefficient must be finite and > 0, got {}",
                self.trust_coefficient
            )));
        }
        if !(self.one_dimensional_lr_factor.is_finite() && self.one_dimensional_lr_factor > 0.0) {
            return Err(TrainError::Config(format!(
                "LARS one_dimensional_lr_factor must be finite and > 0, got {}",
                self.one_dimensional_lr_factor
            )));
        }
        Ok(())
    }

    /// The per-parameter optimiser, for [`ModuleOptimizer::with_group`] (e.g. to train a linear
    /// probe with another optimiser).
    ///
    /// # Errors
    /// [`TrainError::Config`] if the configuration is invalid (see [`validate`](Self::validate)).
    pub fn build(&self) -> Result<Lars, TrainError> {
        self.validate()?;
        Ok(Lars {
            config: self.clone(),
        })
    }

    /// A whole-module optimiser: `optimizer.step(lr, module, grads)` applies [`Lars`] to every
    /// parameter, and `optimizer.save(path)` / `load(path)` (burnpack) or `into_bytes` /
    /// `from_bytes` persist the momentum buffers so that a resumed run continues identically.
    ///
    /// # Errors
    /// [`TrainError::Config`] if the configuration is invalid (see [`validate`](Self::validate)).
    pub fn init(&self) -> Result<ModuleOptimizer, TrainError> {
        Ok(ModuleOptimizer::from(self.build()?))
    }
}

/// LARS with heavy-ball momentum, per parameter `p` with gradient `g` at learning rate `lr`:
///
/// ```text
/// if p is not excluded:
///     g ← g + λ·p
///     q ← η‖p‖/‖g‖  if ‖p‖ > 0 and ‖g‖ > 0, else 1
///     g ← q·g
/// μ ← m·μ + g          (μ starts at 0)
/// p ← p − lr·μ          (ρ·lr for rank-1 p, ρ = one_dimensional_lr_factor)
/// ```
///
/// This is the variant of the released MVEB code (`LARS` in `project/pretrainer.py`, itself the
/// Barlow Twins optimiser): the trust ratio multiplies the gradient *before* the momentum buffer
/// and the learning rate is applied *outside* it (You et al.'s Algorithm 1 puts `lr` inside the
/// local rate; the two differ only when `lr` changes between steps), there is no ε in the ratio,
/// no dampening and no Nesterov term. "Excluded" means rank 1 when
/// [`LarsConfig::exclude_one_dimensional`] is set (MVEB passes both filters to its LARS), so
/// biases and norm parameters get plain SGD with momentum. Norms are Frobenius norms over the
/// whole parameter tensor.
#[derive(Debug, Clone)]
pub struct Lars {
    config: LarsConfig,
}

/// Per-parameter state of [`Lars`]: the momentum buffer `μ`.
#[derive(Clone)]
pub struct LarsState<const D: usize> {
    /// The momentum buffer `μ`, shaped like the parameter.
    pub momentum: Tensor<D>,
}

/// Leaf name of the momentum buffer in the burnpack record.
const MOMENTUM_LEAF: &str = "momentum";

impl<const D: usize> RecordState for LarsState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_tensor(prefix, MOMENTUM_LEAF, self.momentum.to_data());
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let data = src.take_tensor(prefix, MOMENTUM_LEAF)?;
        Some(Self {
            momentum: Tensor::from_data(data, device),
        })
    }
}

impl Lars {
    /// `q·(g + λ·p)`, the rescaled gradient of a non-excluded parameter.
    fn adapted_gradient<const D: usize>(&self, tensor: &Tensor<D>, grad: Tensor<D>) -> Tensor<D> {
        let grad = grad + tensor.clone().mul_scalar(self.config.weight_decay);
        let param_norm = tensor.clone().square().sum().sqrt();
        let grad_norm = grad.clone().square().sum().sqrt();
        // A zero norm would make the ratio 0 or NaN; like the reference, fall back to q = 1.
        let degenerate = param_norm
            .clone()
            .lower_equal_elem(0.0)
            .bool_or(grad_norm.clone().lower_equal_elem(0.0));
        let trust_ratio = (param_norm.mul_scalar(self.config.trust_coefficient) / grad_norm)
            .mask_fill(degenerate, 1.0);
        grad * trust_ratio.reshape([1; D])
    }
}

impl Optimizer for Lars {
    type State<const D: usize> = LarsState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let excluded = self.config.exclude_one_dimensional && D == 1;
        let grad = if excluded {
            grad
        } else {
            self.adapted_gradient(&tensor, grad)
        };
        let momentum = match state {
            Some(state) => state.momentum.mul_scalar(self.config.momentum) + grad,
            None => grad,
        };
        let lr = if D == 1 {
            lr * self.config.one_dimensional_lr_factor
        } else {
            lr
        };
        let updated = tensor - momentum.clone().mul_scalar(lr);
        (updated, Some(LarsState { momentum }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        LarsState {
            momentum: state.momentum.to_device(device),
        }
    }
}
