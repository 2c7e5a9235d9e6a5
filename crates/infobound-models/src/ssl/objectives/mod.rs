//! Self-supervised objectives, one short file per method: MVEB and its baselines SimSiam, BYOL
//! and Barlow Twins.
//!
//! Each maps the projector (and predictor / target-network) outputs of one batch, an
//! [`SslViews`], to an [`SslLossOutput`].

mod barlow_twins;
mod byol;
mod mveb;
mod simsiam;
mod support;

pub use barlow_twins::BarlowTwinsConfig;
pub use byol::ByolConfig;
pub use mveb::MvebConfig;
pub use simsiam::SimSiamConfig;
pub use support::{LocalScoreSupport, ScoreSupport};

use burn::tensor::Tensor;
use infobound_estimators::VmfScoreEstimator;
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Which SSL objective to train, with its hyper-parameters (serde tag `kind`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SslObjectiveConfig {
    /// MVEB (Wen, Wang, Liu, Xu, TPAMI 2024).
    Mveb(MvebConfig),
    /// SimSiam (Chen & He, CVPR 2021).
    SimSiam(SimSiamConfig),
    /// BYOL (Grill et al., NeurIPS 2020).
    Byol(ByolConfig),
    /// Barlow Twins (Zbontar et al., ICML 2021).
    BarlowTwins(BarlowTwinsConfig),
}

impl Default for SslObjectiveConfig {
    fn default() -> Self {
        Self::Mveb(MvebConfig::default())
    }
}

impl SslObjectiveConfig {
    /// Short name used in logs and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Mveb(_) => "mveb",
            Self::SimSiam(_) => "simsiam",
            Self::Byol(_) => "byol",
            Self::BarlowTwins(_) => "barlow_twins",
        }
    }

    /// Whether the method needs a momentum target network (MVEB, BYOL).
    pub fn uses_target_network(&self) -> bool {
        matches!(self, Self::Mveb(_) | Self::Byol(_))
    }

    /// Whether the method needs a predictor head (SimSiam, BYOL).
    pub fn uses_predictor(&self) -> bool {
        matches!(self, Self::SimSiam(_) | Self::Byol(_))
    }

    /// Whether the method consumes local (small-crop) views besides the two global ones: MVEB
    /// only; the others take the two global views.
    pub fn uses_local_views(&self) -> bool {
        matches!(self, Self::Mveb(_))
    }

    /// The base EMA momentum of the target network, for [`crate::ssl::cosine_momentum`].
    pub fn base_momentum(&self) -> Option<f64> {
        match self {
            Self::Mveb(c) => Some(c.base_momentum),
            Self::Byol(c) => Some(c.base_momentum),
            Self::SimSiam(_) | Self::BarlowTwins(_) => None,
        }
    }

    /// Checks hyper-parameter domains and builds the objective.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] for an out-of-domain hyper-parameter,
    /// [`ModelError::Estimator`] for an invalid MVEB score estimator configuration.
    pub fn init(&self) -> Result<SslObjective, ModelError> {
        let estimator = match self {
            Self::Mveb(c) => {
                c.validate()?;
                Some(VmfScoreEstimator::new(c.score)?)
            }
            Self::Byol(c) => {
                c.validate()?;
                None
            }
            Self::BarlowTwins(c) => {
                c.validate()?;
                None
            }
            Self::SimSiam(_) => None,
        };
        Ok(SslObjective {
            config: self.clone(),
            estimator,
        })
    }
}

/// An initialised SSL objective; see [`SslObjectiveConfig`].
#[derive(Debug, Clone)]
pub struct SslObjective {
    config: SslObjectiveConfig,
    estimator: Option<VmfScoreEstimator>,
}

/// The head outputs of one batch, every tensor `[B, d]` with the same B and d.
#[derive(Debug, Clone)]
pub struct SslViews {
    /// Online projector outputs of all V views, the 2 global views first; not normalised.
    pub online: Vec<Tensor<2>>,
    /// Predictor outputs of the 2 global views (SimSiam, BYOL).
    pub predictions: Option<Vec<Tensor<2>>>,
    /// Target-network projector outputs of the 2 global views (MVEB, BYOL). Treated as
    /// constants: the objectives detach them.
    pub target: Option<Vec<Tensor<2>>>,
}

/// A loss to minimise, its named parts (read back to the host, for logs) and, for MVEB, the
/// kernel width.
#[derive(Debug, Clone)]
pub struct SslLossOutput {
    /// Scalar loss, shape `[1]`.
    pub loss: Tensor<1>,
    /// Named scalar terms, the loss included.
    pub terms: Vec<(String, f64)>,
    /// MVEB: the vMF kernel width τ averaged over views; `None` for the other methods.
    pub kernel_width: Option<f64>,
}

impl SslObjective {
    /// The configuration this objective was built from.
    pub fn config(&self) -> &SslObjectiveConfig {
        &self.config
    }

    /// The loss of one batch.
    ///
    /// # Errors
    /// [`ModelError::Views`] for a wrong number of views or missing target / predictions,
    /// [`ModelError::Shape`] for tensors of different shapes, [`ModelError::Estimator`] if
    /// the MVEB score estimator rejects a view (e.g. B < 2 or non-finite values).
    pub fn loss(&self, views: &SslViews) -> Result<SslLossOutput, ModelError> {
        self.loss_with_support(views, &LocalScoreSupport)
    }

    /// The loss of one replica's shard under data-parallel training: as [`Self::loss`], with
    /// MVEB's score estimated on the samples `support` returns for each view (the other
    /// methods ignore it). With [`LocalScoreSupport`] this is [`Self::loss`].
    ///
    /// # Errors
    /// As [`Self::loss`], plus [`ModelError::DataParallel`] from `support`.
    pub fn loss_with_support(
        &self,
        views: &SslViews,
        support: &dyn ScoreSupport,
    ) -> Result<SslLossOutput, ModelError> {
        let shape = check_online(&self.config, &views.online)?;
        match &self.config {
            SslObjectiveConfig::Mveb(c) => {
                let target = required("target", &views.target, shape)?;
                let estimator = self.estimator.as_ref().ok_or_else(|| {
                    ModelError::InvalidConfig("MVEB objective built without its estimator".into())
                })?;
                c.loss(estimator, &views.online, target, support)
            }
            SslObjectiveConfig::SimSiam(c) => {
                let predictions = required("predictions", &views.predictions, shape)?;
                c.loss(&views.online, predictions)
            }
            SslObjectiveConfig::Byol(c) => {
                let predictions = required("predictions", &views.predictions, shape)?;
                let target = required("target", &views.target, shape)?;
                c.loss(predictions, target)
            }
            SslObjectiveConfig::BarlowTwins(c) => c.loss(&views.online),
        }
    }
}

/// Checks the online views: exactly 2 (≥ 2 for MVEB), all of one shape; returns that shape.
fn check_online(
    config: &SslObjectiveConfig,
    online: &[Tensor<2>],
) -> Result<[usize; 2], ModelError> {
    let count_ok = if config.uses_local_views() {
        online.len() >= 2
    } else {
        online.len() == 2
    };
    if !count_ok {
        let expected = if config.uses_local_views() {
            "at least 2"
        } else {
            "exactly 2"
        };
        return Err(ModelError::Views(format!(
            "{} takes {expected} online views, got {}",
            config.name(),
            online.len()
        )));
    }
    let shape = online[0].dims();
    for (index, view) in online.iter().enumerate() {
        if view.dims() != shape {
            return Err(ModelError::Shape(format!(
                "online view {index} is {:?}, view 0 is {shape:?}",
                view.dims()
            )));
        }
    }
    Ok(shape)
}

/// Returns the two global-view tensors of `name`, checking presence, count and shape.
fn required<'a>(
    name: &str,
    tensors: &'a Option<Vec<Tensor<2>>>,
    shape: [usize; 2],
) -> Result<&'a [Tensor<2>; 2], ModelError> {
    let tensors = tensors
        .as_ref()
        .ok_or_else(|| ModelError::Views(format!("this objective needs the {name} outputs")))?;
    let pair: &[Tensor<2>; 2] = tensors.as_slice().try_into().map_err(|_| {
        ModelError::Views(format!(
            "{name} must hold the 2 global views, got {}",
            tensors.len()
        ))
    })?;
    for (index, tensor) in pair.iter().enumerate() {
        if tensor.dims() != shape {
            return Err(ModelError::Shape(format!(
                "{name} view {index} is {:?}, online views are {shape:?}",
                tensor.dims()
            )));
        }
    }
    Ok(pair)
}

/// Row-wise L2 normalisation `x / max(‖x‖, 1e-12)` (PyTorch's `F.normalize`).
pub(crate) fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// Batch mean of the row-wise inner products, `mean_i ⟨a_i, b_i⟩`.
pub(crate) fn mean_inner(a: Tensor<2>, b: Tensor<2>) -> Tensor<1> {
    (a * b).sum_dim(1).mean().reshape([1])
}

/// Reads a `[1]` tensor back to the host.
pub(crate) fn scalar(t: &Tensor<1>) -> f64 {
    t.clone().detach().into_scalar::<f64>()
}

/// Checks that a hyper-parameter is finite and ≥ 0.
pub(crate) fn non_negative(name: &str, value: f64) -> Result<(), ModelError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(ModelError::InvalidConfig(format!(
            "{name} must be finite and >= 0, got {value}"
        )))
    }
}

/// Checks that a momentum lies in [0, 1].
pub(crate) fn unit_interval(name: &str, value: f64) -> Result<(), ModelError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(ModelError::InvalidConfig(format!(
            "{name} must lie in [0, 1], got {value}"
        )))
    }
}
