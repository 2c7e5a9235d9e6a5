//! Self-supervised learning: ResNet backbones, MLP heads, the online/target networks and the
//! objectives of MVEB (Wen et al., TPAMI 2024) and its baselines SimSiam, BYOL and Barlow
//! Twins.
//!
//! A training step (MVEB, two global views `x1`, `x2` on an autodiff device):
//!
//! ```no_run
//! use burn::tensor::{Device, Distribution, Tensor};
//! use infobound_models::LayerImplementation;
//! use infobound_models::ssl::{
//!     BackboneConfig, MlpHeadConfig, SslNetworkConfig, SslObjectiveConfig, SslViews,
//!     cosine_momentum, ema_update,
//! };
//! # fn demo(device: &Device) -> Result<(), infobound_models::ModelError> {
//! let config = SslNetworkConfig {
//!     backbone: BackboneConfig::narrow_resnet_cifar(8),
//!     projector: MlpHeadConfig::mveb_projector(64, 128),
//!     predictor: None,
//!     layers: LayerImplementation::default(),
//!     view_batching: infobound_models::ssl::ViewBatching::PerView,
//! };
//! let online = config.init(device)?;
//! let target = config.init_target(&online, device)?;
//! let objective = SslObjectiveConfig::default().init()?;
//! let x1 = Tensor::<4>::random([16, 3, 32, 32], Distribution::Uniform(0.0, 1.0), device);
//! let x2 = Tensor::<4>::random([16, 3, 32, 32], Distribution::Uniform(0.0, 1.0), device);
//! let project = |net: &infobound_models::ssl::SslNetwork, x: &Tensor<4>| {
//!     Ok::<_, infobound_models::ModelError>(net.project(net.features(x.clone())?))
//! };
//! let views = SslViews {
//!     online: vec![project(&online, &x1)?, project(&online, &x2)?],
//!     predictions: None,
//!     target: Some(vec![project(&target, &x1)?.detach(), project(&target, &x2)?.detach()]),
//! };
//! let out = objective.loss(&views)?;
//! let _grads = out.loss.backward();
//! // … optimiser step on `online`, then:
//! let target = ema_update(target, &online, cosine_momentum(0.996, 0, 1000))?;
//! # Ok(()) }
//! ```

mod backbone;
mod ema;
mod head;
mod network;
pub mod objectives;

pub use backbone::{Backbone, BackboneConfig, BasicBlock, Bottleneck, ConvBn, ResidualBlock};
pub use ema::{cosine_momentum, ema_update};
pub use head::{HiddenLayer, MlpHead, MlpHeadConfig};
pub use network::{SslNetwork, SslNetworkConfig, ViewBatching, ViewEmbeddings};
pub use objectives::{
    BarlowTwinsConfig, ByolConfig, LocalScoreSupport, MvebConfig, ScoreSupport, SimSiamConfig,
    SslMethod, SslObjective, SslObjectiveConfig, SslViews, barlow_twins_loss, byol_loss,
    cross_view_pairs, mveb_loss, simsiam_loss,
};
