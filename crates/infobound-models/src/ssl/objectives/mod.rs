//! Self-supervised objectives, one short file per method: MVEB and its baselines SimSiam, BYOL
//! and Barlow Twins.
//!
//! Every file holds a public pure loss function on tensors (e.g. [`simsiam_loss`]) that a user
//! with their own loop can call, and a serde config implementing [`SslMethod`] that maps one
//! batch's head outputs, an [`SslViews`], to it. [`SslObjectiveConfig`] is the one registry:
//! adding a method is its file plus one line in the `objective_registry!` invocation below (and a
//! preset).

mod support;

pub use support::{LocalScoreSupport, ScoreSupport};

use burn::tensor::Tensor;

use crate::registry::objective_registry;
use crate::{LossOutput, ModelError};

/// One self-supervised method's configuration: what networks it needs and the loss of a batch.
pub trait SslMethod {
    /// Checks hyper-parameter domains.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the offending value.
    fn validate(&self) -> Result<(), ModelError>;

    /// Whether the method needs a momentum target network.
    fn uses_target_network(&self) -> bool {
        false
    }

    /// Whether the method needs a predictor head.
    fn uses_predictor(&self) -> bool {
        false
    }

    /// The base EMA momentum of the target network, for [`crate::ssl::cosine_momentum`].
    fn base_momentum(&self) -> Option<f64> {
        None
    }

    /// The loss of one batch (views already checked: ≥ 2 online views, the 2 global ones
    /// first, then the local ones, all of one shape). `support` supplies the samples of a score estimator
    /// under data-parallel training; methods without one ignore it.
    ///
    /// # Errors
    /// [`ModelError::Views`] / [`ModelError::Shape`] for missing or mis-shaped inputs,
    /// [`ModelError::Estimator`] from an estimator.
    fn loss(&self, views: &SslViews, support: &dyn ScoreSupport) -> Result<LossOutput, ModelError>;
}

objective_registry! {
    /// Which SSL objective to train, with its hyper-parameters (serde tag `kind`).
    SslObjectiveConfig, SslMethod, method;

    /// MVEB (Wen, Wang, Liu, Xu, TPAMI 2024).
    Mveb(mveb::MvebConfig) = "mveb";
    /// SimSiam (Chen & He, CVPR 2021); `sim_siam` is the tag of earlier releases.
    SimSiam(simsiam::SimSiamConfig) = "simsiam" | "sim_siam";
    /// BYOL (Grill et al., NeurIPS 2020).
    Byol(byol::ByolConfig) = "byol";
    /// Barlow Twins (Zbontar et al., ICML 2021).
    BarlowTwins(barlow_twins::BarlowTwinsConfig) = "barlow_twins";
}

impl Default for SslObjectiveConfig {
    fn default() -> Self {
        Self::Mveb(MvebConfig::default())
    }
}

impl SslObjectiveConfig {
    /// Whether the method needs a momentum target network (MVEB, BYOL).
    pub fn uses_target_network(&self) -> bool {
        self.method().uses_target_network()
    }

    /// Whether the method needs a predictor head (SimSiam, BYOL).
    pub fn uses_predictor(&self) -> bool {
        self.method().uses_predictor()
    }

    /// The base EMA momentum of the target network, for [`crate::ssl::cosine_momentum`].
    pub fn base_momentum(&self) -> Option<f64> {
        self.method().base_momentum()
    }

    /// Checks hyper-parameter domains and builds the objective.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] for an out-of-domain hyper-parameter,
    /// [`ModelError::Estimator`] for an invalid MVEB score estimator configuration.
    pub fn init(&self) -> Result<SslObjective, ModelError> {
        self.method().validate()?;
        Ok(SslObjective {
            config: self.clone(),
        })
    }
}

/// A validated SSL objective; see [`SslObjectiveConfig`].
#[derive(Debug, Clone)]
pub struct SslObjective {
    config: SslObjectiveConfig,
}

/// The head outputs of one batch, every tensor `[B, d]` with the same B and d.
#[derive(Debug, Clone)]
pub struct SslViews {
    /// Online projector outputs of all V views, the 2 global views first; not normalised.
    pub online: Vec<Tensor<2>>,
    /// Predictor outputs of all V views, in the order of `online` (SimSiam, BYOL).
    pub predictions: Option<Vec<Tensor<2>>>,
    /// Target-network projector outputs of the 2 global views (MVEB, BYOL). Treated as
    /// constants: the objectives detach them.
    pub target: Option<Vec<Tensor<2>>>,
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
    pub fn loss(&self, views: &SslViews) -> Result<LossOutput, ModelError> {
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
    ) -> Result<LossOutput, ModelError> {
        check_online(&self.config, &views.online)?;
        self.config.method().loss(views, support)
    }
}

/// Checks the online views: at least the 2 global ones, all of one shape; returns that shape.
fn check_online(
    config: &SslObjectiveConfig,
    online: &[Tensor<2>],
) -> Result<[usize; 2], ModelError> {
    if online.len() < 2 {
        return Err(ModelError::Views(format!(
            "{} takes at least the 2 global online views, got {}",
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

/// Returns the `count` tensors of `name` (predictions of every view, target projections of the
/// 2 global views), checking presence, count and shape.
pub(crate) fn required<'a>(
    name: &str,
    tensors: &'a Option<Vec<Tensor<2>>>,
    count: usize,
    shape: [usize; 2],
) -> Result<&'a [Tensor<2>], ModelError> {
    let tensors = tensors
        .as_ref()
        .ok_or_else(|| ModelError::Views(format!("this objective needs the {name} outputs")))?;
    if tensors.len() != count {
        return Err(ModelError::Views(format!(
            "{name} must hold {count} views, got {}",
            tensors.len()
        )));
    }
    for (index, tensor) in tensors.iter().enumerate() {
        if tensor.dims() != shape {
            return Err(ModelError::Shape(format!(
                "{name} view {index} is {:?}, online views are {shape:?}",
                tensor.dims()
            )));
        }
    }
    Ok(tensors)
}

/// The multi-crop pairs `(g, v)` of a batch of `views` views: each global view g ∈ {0, 1} as
/// the target of every other view v ≠ g, solo-learn's convention for methods with a predictor
/// (vturrisi/solo-learn@9187ea3 `solo/methods/byol.py`: `for v1 in range(num_large_crops):
/// for v2 in np.delete(range(num_crops), v1)`). With 2 views: (0, 1), (1, 0).
pub fn cross_view_pairs(views: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..2.min(views)).flat_map(move |g| (0..views).filter(move |&v| v != g).map(move |v| (g, v)))
}

/// `(Σ_(g,v) mean_i cos(p_i^v, t_i^g), P)` over the P [`cross_view_pairs`] of `predictions`
/// (one per view) against `targets` (the 2 global views, already detached by the caller).
pub(crate) fn cross_view_cosines(
    loss: &str,
    predictions: &[Tensor<2>],
    targets: [Tensor<2>; 2],
) -> Result<(Tensor<1>, usize), ModelError> {
    let p: Vec<Tensor<2>> = predictions.iter().cloned().map(l2_normalize).collect();
    let t = targets.map(l2_normalize);
    let pairs: Vec<(usize, usize)> = cross_view_pairs(predictions.len()).collect();
    let sum = pairs
        .iter()
        .map(|&(g, v)| mean_inner(p[v].clone(), t[g].clone()))
        .reduce(|a, b| a + b)
        .ok_or_else(|| ModelError::Views(format!("{loss} needs a view pair")))?;
    Ok((sum, pairs.len()))
}

/// Checks that a pure loss got the 2 global views and, for `per_view` (name, count), one
/// tensor per view.
pub(crate) fn check_view_counts(
    loss: &str,
    views: usize,
    per_view: Option<(&str, usize)>,
) -> Result<(), ModelError> {
    if views < 2 {
        return Err(ModelError::Views(format!(
            "{loss} needs the 2 global views, got {views}"
        )));
    }
    match per_view {
        Some((name, count)) if count != views => Err(ModelError::Views(format!(
            "{loss} needs one {name} per view: {views} views, {count} {name}"
        ))),
        _ => Ok(()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks the registry: every method's tag round-trips through serde, is unique and is what
    /// `name()` reports; every default builds.
    #[test]
    fn every_registered_method_round_trips() {
        let registered = SslObjectiveConfig::registered();
        assert_eq!(registered.len(), SslObjectiveConfig::KINDS.len());
        let mut seen = std::collections::BTreeSet::new();
        for (config, kind) in registered.iter().zip(SslObjectiveConfig::KINDS) {
            assert!(seen.insert(*kind), "duplicate tag {kind}");
            assert_eq!(config.name(), *kind);
            let text = serde_json::to_string(config).expect("serialises");
            assert!(text.contains(&format!("\"kind\":\"{kind}\"")), "{text}");
            let back: SslObjectiveConfig = serde_json::from_str(&text).expect("parses");
            assert_eq!(&back, config);
            config.init().expect("defaults are valid");
        }
    }

    #[test]
    fn the_old_simsiam_tag_is_an_alias() {
        let old: SslObjectiveConfig = serde_json::from_str(r#"{"kind":"sim_siam"}"#).unwrap();
        assert_eq!(old, SslObjectiveConfig::SimSiam(SimSiamConfig::default()));
    }
}
