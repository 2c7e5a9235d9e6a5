//! Detecting non-finite gradients so a training loop can skip the step instead of corrupting the
//! weights and the LARS momentum.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// Whether every gradient that `grads` holds for a float parameter of `module` is finite (no NaN,
/// no ±∞).
///
/// The released MVEB code (Wen et al. 2024, `skip_nan_grad_backward`) drops a step whose
/// gradients contain NaN or ∞; call this before `optimizer.step(..)` to do the same. Parameters
/// without a gradient (frozen, or not on the loss path) are ignored. All gradients must be on one
/// device (one replica's); the check costs one device→host read per call.
pub fn gradients_are_finite<M: Module>(module: &M, grads: &GradientsParams) -> bool {
    // One host read: Σ‖g‖² is finite when every gradient is (and not for gradients so large,
    // ≳ 1e19, that their squares overflow f32, which no step should apply either).
    squared_gradient_norm(module, grads).is_none_or(|norm| norm.into_scalar::<f32>().is_finite())
}

/// Σ_params ‖g‖² over every gradient `grads` holds for a float parameter of `module`, as a
/// `[1]` device tensor (zero when there are none): its square root is the global gradient norm,
/// and it is NaN or ∞ exactly when a gradient is. Nothing is read back to the host.
pub fn squared_gradient_norm<M: Module>(module: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
    struct SquaredNorm<'a> {
        grads: &'a GradientsParams,
        parts: Vec<Tensor<1>>,
    }
    impl ModuleVisitor for SquaredNorm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.parts.push(g.square().sum());
            }
        }
    }
    let mut visitor = SquaredNorm {
        grads,
        parts: Vec::new(),
    };
    module.visit(&mut visitor);
    (!visitor.parts.is_empty()).then(|| Tensor::cat(visitor.parts, 0).sum())
}
