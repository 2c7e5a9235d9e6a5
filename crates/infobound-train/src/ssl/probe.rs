//! The online linear probe: a non-affine batch norm followed by a linear classifier, trained on
//! detached backbone features during self-supervised training (the probe head of MAE's linear
//! evaluation, He et al., CVPR 2022). The batch norm makes the probe indifferent to the scale of
//! the features, which drifts while the encoder trains.

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};

/// `BN(affine = false) → Linear(feature_dim → classes)`.
#[derive(Module, Debug)]
pub struct OnlineProbe {
    /// Standardises each feature with batch statistics (running statistics in inference).
    pub norm: BatchNorm,
    /// The classifier.
    pub linear: Linear,
}

impl OnlineProbe {
    /// A probe for `feature_dim`-d features and `classes` classes on `device`.
    pub fn new(feature_dim: usize, classes: usize, device: &Device) -> Self {
        let mut norm = BatchNormConfig::new(feature_dim).init(device);
        norm.gamma = norm.gamma.set_require_grad(false);
        norm.beta = norm.beta.set_require_grad(false);
        Self {
            norm,
            linear: LinearConfig::new(feature_dim, classes).init(device),
        }
    }

    /// Class logits, `[B, feature_dim]` → `[B, classes]`.
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        let standardised = self
            .norm
            .forward(features.unsqueeze_dim::<3>(2))
            .squeeze_dim(2);
        self.linear.forward(standardised)
    }
}

/// The fraction of rows of `logits` whose arg-max is the class in `targets`, as a `[1]` device
/// tensor (no host read).
pub(crate) fn accuracy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [rows, _] = logits.dims();
    let predicted = logits.detach().argmax(1).reshape([rows]);
    predicted.equal(targets).float().mean().reshape([1])
}
