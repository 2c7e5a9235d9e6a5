//! What every objective of both families returns: the scalar to minimise and its named parts as
//! detached device tensors, so a trainer reads them all back in one transfer after the
//! optimiser step instead of one read per term.

use burn::tensor::{Device, Tensor};

/// A loss to minimise and its named, detached parts.
///
/// # Shapes
/// - `loss`: `[1]`, attached to the autodiff graph.
/// - every term and `gradient_skip_statistic`: `[1]`, detached.
#[derive(Debug, Clone)]
pub struct LossOutput {
    /// Scalar loss, shape `[1]`.
    pub loss: Tensor<1>,
    /// Named scalar terms (the total loss is not among them; a trainer logs it as `loss`).
    pub terms: Vec<(&'static str, Tensor<1>)>,
    /// The quantity the α-TCVAE authors' gradient-skip rule compares with its threshold
    /// (the VAE family only; `None` where an objective has none).
    pub gradient_skip_statistic: Option<Tensor<1>>,
}

impl LossOutput {
    /// A loss with its terms and no gradient-skip statistic.
    pub fn new(loss: Tensor<1>, terms: Vec<(&'static str, Tensor<1>)>) -> Self {
        Self {
            loss,
            terms,
            gradient_skip_statistic: None,
        }
    }

    /// Sets the gradient-skip statistic (detached).
    pub fn with_gradient_skip_statistic(mut self, statistic: &Tensor<1>) -> Self {
        self.gradient_skip_statistic = Some(detached(statistic));
        self
    }

    /// Every value a trainer logs, in one `[1 + terms (+ 1)]` tensor: the loss, the terms in
    /// order, then the gradient-skip statistic if present. One host read of this tensor gives
    /// the whole step's log line.
    pub fn packed(&self) -> Tensor<1> {
        let mut parts = Vec::with_capacity(self.terms.len() + 2);
        parts.push(detached(&self.loss));
        parts.extend(self.terms.iter().map(|(_, t)| t.clone()));
        if let Some(s) = &self.gradient_skip_statistic {
            parts.push(s.clone());
        }
        Tensor::cat(parts, 0)
    }
}

/// A detached copy of a `[1]` tensor, for [`LossOutput::terms`].
pub fn detached(t: &Tensor<1>) -> Tensor<1> {
    t.clone().detach()
}

/// A host value as a `[1]` term tensor on `device` (schedule values such as the capacity C_t,
/// or the vMF kernel width, which the estimator computes on the host).
pub fn host_term(value: f64, device: &Device) -> Tensor<1> {
    Tensor::from_floats([value as f32], device)
}
