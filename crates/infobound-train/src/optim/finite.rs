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
    let mut visitor = FiniteGradients {
        grads,
        parts: Vec::new(),
    };
    module.visit(&mut visitor);
    if visitor.parts.is_empty() {
        return true;
    }
    // One host read per step instead of one per parameter: `g − g` is 0 where g is finite and
    // NaN where it is ±∞ or NaN, and a NaN survives the sum.
    let total: f32 = Tensor::cat(visitor.parts, 0).sum().into_scalar();
    total.is_finite()
}

struct FiniteGradients<'a> {
    grads: &'a GradientsParams,
    parts: Vec<Tensor<1>>,
}

impl ModuleVisitor for FiniteGradients<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            self.parts.push((grad.clone() - grad).sum());
        }
    }
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
