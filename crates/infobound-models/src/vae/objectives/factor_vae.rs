//! FactorVAE (Kim & Mnih, ICML 2018): L = E[−log p(x|z)] + KL(q(z|x) ‖ N(0, I)) + γ·TC(z),
//! with TC estimated by the density-ratio trick: a discriminator D separates samples of q(z)
//! from samples of Π_k q(z_k) (each latent dimension permuted independently across the batch),
//! and TC ≈ E[D_0(z) − D_1(z)] (logit of "joint" minus logit of "permuted").

use burn::module::Module;
use burn::nn::{LeakyRelu, LeakyReluConfig, Linear, LinearConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use infobound_estimators::kl_to_standard_normal;
use rand::RngCore;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::{StepContext, VaeObjective, non_negative};
use crate::loss::detached;
use crate::layers::{self, LayerImplementation};
use crate::{LossOutput, ModelError, VaeForward};

/// Hyper-parameters; defaults from Kim & Mnih 2018 and disentanglement_lib: γ = 10 (the lowest
/// value of disentanglement_lib's sweep), discriminator 6 × 1000 LeakyReLU(0.2), Adam lr 1e-4,
/// β = (0.5, 0.9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FactorVaeConfig {
    /// Weight γ of the TC estimate.
    pub gamma: f64,
    /// Hidden width of the discriminator.
    pub discriminator_hidden: usize,
    /// Number of hidden layers of the discriminator.
    pub discriminator_layers: usize,
    /// Learning rate of the discriminator's Adam.
    pub discriminator_lr: f64,
}

impl Default for FactorVaeConfig {
    fn default() -> Self {
        Self {
            gamma: 10.0,
            discriminator_hidden: 1000,
            discriminator_layers: 6,
            discriminator_lr: 1e-4,
        }
    }
}

impl FactorVaeConfig {
    /// The discriminator for latent size `latent_dim`, its linear layers run by `implementation`
    /// (the VAE's [`crate::VaeConfig::layers`]).
    pub fn discriminator(
        &self,
        latent_dim: usize,
        implementation: LayerImplementation,
        device: &Device,
    ) -> Discriminator {
        let mut layers = Vec::with_capacity(self.discriminator_layers);
        let mut width = latent_dim;
        for _ in 0..self.discriminator_layers {
            layers.push(LinearConfig::new(width, self.discriminator_hidden).init(device));
            width = self.discriminator_hidden;
        }
        Discriminator {
            layers,
            out: LinearConfig::new(width, 2).init(device),
            activation: LeakyReluConfig::new().with_negative_slope(0.2).init(),
            implementation,
        }
    }
}

/// FactorVAE loss: `reconstruction + mean_i KL_i + γ · mean_i (D_0(z_i) − D_1(z_i))`, with
/// `discriminator_logits` = D(z) (column 0: "from q(z)", column 1: "from Π_k q(z_k)").
///
/// # Shapes
/// - `reconstruction`: `[1]`
/// - `mu`, `logvar`: `[B, K]`
/// - `discriminator_logits`: `[B, 2]`
///
/// Terms: `reconstruction`, `kl`, `total_correlation`; the gradient-skip statistic is
/// KL + γ·TC.
///
/// # Errors
/// [`ModelError::Shape`] unless the logits are `[B, 2]`; [`ModelError::Estimator`] for
/// mismatched or non-finite moments.
pub fn factor_vae_loss(
    reconstruction: Tensor<1>,
    mu: Tensor<2>,
    logvar: Tensor<2>,
    discriminator_logits: Tensor<2>,
    gamma: f64,
) -> Result<LossOutput, ModelError> {
    let [b, _] = mu.dims();
    if discriminator_logits.dims() != [b, 2] {
        return Err(ModelError::Shape(format!(
            "discriminator logits are {:?}, expected [{b}, 2] for a batch of {b}",
            discriminator_logits.dims()
        )));
    }
    let kl = kl_to_standard_normal(mu, logvar)?.mean();
    let tc = (discriminator_logits.clone().narrow(1, 0, 1) - discriminator_logits.narrow(1, 1, 1))
        .mean()
        .reshape([1]);
    let weighted = kl.clone() + tc.clone() * gamma;
    Ok(LossOutput::new(
        reconstruction.clone() + weighted.clone(),
        vec![
            ("reconstruction", detached(&reconstruction)),
            ("kl", detached(&kl)),
            ("total_correlation", detached(&tc)),
        ],
    )
    .with_gradient_skip_statistic(&weighted))
}

impl VaeObjective for FactorVaeConfig {
    fn validate(&self, _latent_dim: usize) -> Result<(), ModelError> {
        non_negative("gamma", self.gamma)?;
        if self.discriminator_hidden == 0 || self.discriminator_layers == 0 {
            return Err(ModelError::InvalidConfig(format!(
                "the FactorVAE discriminator needs layers and width, got {} layers of {}",
                self.discriminator_layers, self.discriminator_hidden
            )));
        }
        if !(self.discriminator_lr.is_finite() && self.discriminator_lr > 0.0) {
            return Err(ModelError::InvalidConfig(format!(
                "discriminator_lr must be positive, got {}",
                self.discriminator_lr
            )));
        }
        Ok(())
    }

    fn loss(
        &self,
        forward: &VaeForward,
        reconstruction: Tensor<1>,
        _context: &StepContext,
        discriminator: Option<&Discriminator>,
    ) -> Result<LossOutput, ModelError> {
        let discriminator = discriminator
            .ok_or_else(|| ModelError::InvalidConfig("FactorVAE needs its discriminator".into()))?;
        factor_vae_loss(
            reconstruction,
            forward.mu.clone(),
            forward.logvar.clone(),
            discriminator.forward(forward.z.clone())?,
            self.gamma,
        )
    }
}

/// MLP discriminator D: z ↦ two logits (0 = sample of q(z), 1 = sample of Π_k q(z_k)).
#[derive(Module, Debug)]
pub struct Discriminator {
    layers: Vec<Linear>,
    out: Linear,
    activation: LeakyRelu,
    #[module(skip)]
    implementation: LayerImplementation,
}

impl Discriminator {
    /// Logits [B, 2].
    ///
    /// # Errors
    /// [`ModelError::Shape`] if `z` does not have the discriminator's latent width.
    pub fn forward(&self, z: Tensor<2>) -> Result<Tensor<2>, ModelError> {
        let mut h = z;
        for layer in &self.layers {
            h = self
                .activation
                .forward(layers::linear(layer, h, self.implementation)?);
        }
        layers::linear(&self.out, h, self.implementation)
    }

    /// Cross-entropy of classifying `z` (detached codes of q(z)) as class 0 and `z_permuted`
    /// (from [`permute_dims`]) as class 1: ½(E[−log softmax(D(z))_0] + E[−log softmax(D(z̃))_1]).
    ///
    /// # Errors
    /// [`ModelError::Shape`] if the codes do not have the discriminator's latent width.
    pub fn loss(&self, z: Tensor<2>, z_permuted: Tensor<2>) -> Result<Tensor<1>, ModelError> {
        let joint = log_softmax(self.forward(z)?, 1).narrow(1, 0, 1).mean();
        let product = log_softmax(self.forward(z_permuted)?, 1)
            .narrow(1, 1, 1)
            .mean();
        Ok(-(joint + product) * 0.5)
    }
}

/// Samples of Π_k q(z_k): each column of `z` [B, K] permuted independently, with permutations
/// drawn from `rng` (so a run is reproducible from its seed).
pub fn permute_dims(z: Tensor<2>, rng: &mut dyn RngCore) -> Result<Tensor<2>, ModelError> {
    let [b, k] = z.dims();
    if b < 2 {
        return Err(ModelError::Shape(
            "permuting latent dimensions needs a batch of at least 2".into(),
        ));
    }
    let device = z.device();
    let mut columns = Vec::with_capacity(k);
    let mut order: Vec<i64> = (0..b as i64).collect();
    for j in 0..k {
        order.shuffle(rng);
        let index = Tensor::<1, Int>::from_data(TensorData::new(order.clone(), [b]), &device);
        columns.push(z.clone().narrow(1, j, 1).select(0, index));
    }
    Ok(Tensor::cat(columns, 1))
}
