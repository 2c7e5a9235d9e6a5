//! Residual networks (He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition",
//! CVPR 2016) as SSL backbones: the image goes through a stem and four stages of residual
//! blocks and is global-average-pooled to one feature vector.
//!
//! Layout follows torchvision's "ResNet v1.5" (the stride of a bottleneck sits on its 3×3
//! convolution), which is what the released MVEB code and solo-learn use; convolutions have no
//! bias and are He-initialised (normal, fan-out, gain √2), batch norms start at γ = 1, β = 0.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::layers::{self, LayerImplementation};

/// Which residual network to build (serde tag `kind`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BackboneConfig {
    /// Basic-block ResNet with the CIFAR stem (3×3 conv stride 1, no max-pool); the four
    /// stages have widths `base_width · (1, 2, 4, 8)` and strides (1, 2, 2, 2); features are
    /// `8 · base_width`-dimensional. Serde tag `resnet_cifar` (`res_net_cifar` in earlier
    /// releases).
    #[serde(rename = "resnet_cifar", alias = "res_net_cifar")]
    ResNetCifar {
        /// Number of basic blocks per stage (ResNet-18: `[2, 2, 2, 2]`).
        layers: [usize; 4],
        /// Channels of the stem and the first stage.
        base_width: usize,
        /// Image channels.
        in_channels: usize,
        /// Start the last batch norm of every block at γ = 0, so that each block is its
        /// shortcut at initialisation (Goyal et al. 2017).
        zero_init_residual: bool,
    },
    /// ImageNet ResNet-50: 7×7 stride-2 stem + 3×3 stride-2 max-pool, bottleneck blocks
    /// `[3, 4, 6, 3]` with widths 64·(1, 2, 4, 8) and expansion 4, 2048-d features. Serde
    /// tag `resnet50` (`res_net50` in earlier releases).
    #[serde(rename = "resnet50", alias = "res_net50")]
    ResNet50 {
        /// Image channels.
        in_channels: usize,
        /// Start the last batch norm of every block at γ = 0 (see `ResNetCifar`).
        zero_init_residual: bool,
    },
}

impl Default for BackboneConfig {
    fn default() -> Self {
        Self::resnet18_cifar()
    }
}

/// Output channels of a bottleneck block relative to its inner width.
const BOTTLENECK_EXPANSION: usize = 4;

impl BackboneConfig {
    /// CIFAR ResNet-18: `[2, 2, 2, 2]` basic blocks, width 64, RGB input, 512-d features (the
    /// small-scale backbone of MVEB). Residual branches start at their usual initialisation
    /// (`zero_init_residual: false`, torchvision's and solo-learn's default; the small-scale
    /// MVEB code is not released).
    pub fn resnet18_cifar() -> Self {
        Self::ResNetCifar {
            layers: [2, 2, 2, 2],
            base_width: 64,
            in_channels: 3,
            zero_init_residual: false,
        }
    }

    /// A narrow CIFAR ResNet, one basic block per stage at `base_width`, for quick experiments
    /// and tests; `8 · base_width`-d features.
    pub fn narrow_resnet_cifar(base_width: usize) -> Self {
        Self::ResNetCifar {
            layers: [1, 1, 1, 1],
            base_width,
            in_channels: 3,
            zero_init_residual: false,
        }
    }

    /// ImageNet ResNet-50 on RGB input with zero-initialised residual branches: the backbone
    /// of the released MVEB code, which builds torchvision's `resnet50(zero_init_residual=True)`.
    pub fn resnet50() -> Self {
        Self::ResNet50 {
            in_channels: 3,
            zero_init_residual: true,
        }
    }

    /// Dimension of the pooled features.
    pub fn feature_dim(&self) -> usize {
        match self {
            Self::ResNetCifar { base_width, .. } => 8 * base_width,
            Self::ResNet50 { .. } => 8 * 64 * BOTTLENECK_EXPANSION,
        }
    }

    /// Checks that every width and depth is positive.
    pub fn validate(&self) -> Result<(), ModelError> {
        let (layers, base_width, in_channels) = match self {
            Self::ResNetCifar {
                layers,
                base_width,
                in_channels,
                ..
            } => (layers, *base_width, *in_channels),
            Self::ResNet50 { in_channels, .. } => (&[3, 4, 6, 3], 64, *in_channels),
        };
        if layers.contains(&0) || base_width == 0 || in_channels == 0 {
            return Err(ModelError::InvalidConfig(format!(
                "backbone needs >= 1 block per stage and positive widths, got layers {layers:?}, \
                 base_width {base_width}, in_channels {in_channels}"
            )));
        }
        Ok(())
    }

    /// Builds the network on `device`, its layers run by `layers`.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] for a zero depth or width.
    pub fn init(
        &self,
        layers: LayerImplementation,
        device: &Device,
    ) -> Result<Backbone, ModelError> {
        self.validate()?;
        let backbone = match *self {
            Self::ResNetCifar {
                layers: depths,
                base_width,
                in_channels,
                zero_init_residual,
            } => {
                let stem = ConvBn::new(in_channels, base_width, 3, 1, false, layers, device);
                let mut blocks = Vec::new();
                let mut c_in = base_width;
                for (stage, &depth) in depths.iter().enumerate() {
                    let width = base_width << stage;
                    for index in 0..depth {
                        let stride = if stage > 0 && index == 0 { 2 } else { 1 };
                        blocks.push(ResidualBlock::Basic(BasicBlock::new(
                            c_in,
                            width,
                            stride,
                            zero_init_residual,
                            layers,
                            device,
                        )));
                        c_in = width;
                    }
                }
                Backbone {
                    stem,
                    stem_pool: None,
                    blocks,
                    feature_dim: c_in,
                    layers,
                }
            }
            Self::ResNet50 {
                in_channels,
                zero_init_residual,
            } => {
                let stem = ConvBn::new(in_channels, 64, 7, 2, false, layers, device);
                let stem_pool = MaxPool2dConfig::new([3, 3])
                    .with_strides([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init();
                let mut blocks = Vec::new();
                let mut c_in = 64;
                for (stage, depth) in [3usize, 4, 6, 3].into_iter().enumerate() {
                    let width = 64 << stage;
                    for index in 0..depth {
                        let stride = if stage > 0 && index == 0 { 2 } else { 1 };
                        blocks.push(ResidualBlock::Bottleneck(Bottleneck::new(
                            c_in,
                            width,
                            stride,
                            zero_init_residual,
                            layers,
                            device,
                        )));
                        c_in = width * BOTTLENECK_EXPANSION;
                    }
                }
                Backbone {
                    stem,
                    stem_pool: Some(stem_pool),
                    blocks,
                    feature_dim: c_in,
                    layers,
                }
            }
        };
        Ok(backbone)
    }
}

/// A bias-free convolution followed by batch normalisation.
#[derive(Module, Debug)]
pub struct ConvBn {
    /// The convolution (no bias: the batch norm's β plays that role).
    pub conv: Conv2d,
    /// The batch normalisation after it.
    pub norm: BatchNorm,
    /// What computes both.
    #[module(skip)]
    pub layers: LayerImplementation,
}

impl ConvBn {
    /// `kernel`×`kernel` convolution with "same" padding ⌊kernel/2⌋ and the given stride; with
    /// `zero_gamma` the batch norm starts at γ = 0.
    fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        zero_gamma: bool,
        layers: LayerImplementation,
        device: &Device,
    ) -> Self {
        let pad = kernel / 2;
        let conv = Conv2dConfig::new([c_in, c_out], [kernel, kernel])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_bias(false)
            .with_initializer(Initializer::KaimingNormal {
                gain: std::f64::consts::SQRT_2,
                fan_out_only: true,
            })
            .init(device);
        let mut norm = BatchNormConfig::new(c_out).init(device);
        if zero_gamma {
            // `zeros_like` is a fresh, untracked tensor: keep the parameter trainable, or the
            // residual branch would stay at γ = 0 (and silent) until a checkpoint reload
            // re-activated it.
            norm.gamma = norm.gamma.map(|gamma| {
                let tracked = gamma.is_require_grad();
                gamma.zeros_like().set_require_grad(tracked)
            });
        }
        Self { conv, norm, layers }
    }

    /// `BN(conv(x))`.
    ///
    /// # Errors
    /// [`ModelError`] if `x` does not fit the convolution.
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<4>, ModelError> {
        let with = self.layers;
        layers::batch_norm(&self.norm, layers::conv2d(&self.conv, x, with)?, with)
    }
}

/// The projection shortcut (1×1 conv + BN) where a block changes resolution or width, else
/// `None` (identity).
fn shortcut(
    c_in: usize,
    c_out: usize,
    stride: usize,
    layers: LayerImplementation,
    device: &Device,
) -> Option<ConvBn> {
    (stride != 1 || c_in != c_out)
        .then(|| ConvBn::new(c_in, c_out, 1, stride, false, layers, device))
}

/// Basic block: `relu(BN(conv3×3(relu(BN(conv3×3(x))))) + shortcut(x))`.
#[derive(Module, Debug)]
pub struct BasicBlock {
    /// First 3×3 convolution (carries the stride) and its batch norm.
    pub first: ConvBn,
    /// Second 3×3 convolution and the block's last batch norm.
    pub second: ConvBn,
    /// Projection shortcut, `None` for the identity.
    pub shortcut: Option<ConvBn>,
    /// What computes the block's ReLUs and residual sum.
    #[module(skip)]
    pub layers: LayerImplementation,
}

impl BasicBlock {
    fn new(
        c_in: usize,
        width: usize,
        stride: usize,
        zero_init: bool,
        layers: LayerImplementation,
        device: &Device,
    ) -> Self {
        Self {
            first: ConvBn::new(c_in, width, 3, stride, false, layers, device),
            second: ConvBn::new(width, width, 3, 1, zero_init, layers, device),
            shortcut: shortcut(c_in, width, stride, layers, device),
            layers,
        }
    }

    /// Applies the block to `[B, C, H, W]`.
    ///
    /// # Errors
    /// [`ModelError`] if `x` does not fit the block.
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<4>, ModelError> {
        let with = self.layers;
        let residual = layers::relu(self.first.forward(x.clone())?, with)?;
        let residual = self.second.forward(residual)?;
        layers::add_relu(residual, apply_shortcut(self.shortcut.as_ref(), x)?, with)
    }
}

/// Bottleneck block (v1.5): 1×1 reduce, 3×3 with the stride, 1×1 expand ×4, each with BN,
/// ReLU between, then `relu(· + shortcut(x))`.
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// 1×1 reduction to the inner width.
    pub reduce: ConvBn,
    /// 3×3 convolution at the inner width (carries the stride).
    pub spatial: ConvBn,
    /// 1×1 expansion to 4× the inner width, with the block's last batch norm.
    pub expand: ConvBn,
    /// Projection shortcut, `None` for the identity.
    pub shortcut: Option<ConvBn>,
    /// What computes the block's ReLUs and residual sum.
    #[module(skip)]
    pub layers: LayerImplementation,
}

impl Bottleneck {
    fn new(
        c_in: usize,
        width: usize,
        stride: usize,
        zero_init: bool,
        layers: LayerImplementation,
        device: &Device,
    ) -> Self {
        let c_out = width * BOTTLENECK_EXPANSION;
        Self {
            reduce: ConvBn::new(c_in, width, 1, 1, false, layers, device),
            spatial: ConvBn::new(width, width, 3, stride, false, layers, device),
            expand: ConvBn::new(width, c_out, 1, 1, zero_init, layers, device),
            shortcut: shortcut(c_in, c_out, stride, layers, device),
            layers,
        }
    }

    /// Applies the block to `[B, C, H, W]`.
    ///
    /// # Errors
    /// [`ModelError`] if `x` does not fit the block.
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<4>, ModelError> {
        let with = self.layers;
        let residual = layers::relu(self.reduce.forward(x.clone())?, with)?;
        let residual = layers::relu(self.spatial.forward(residual)?, with)?;
        let residual = self.expand.forward(residual)?;
        layers::add_relu(residual, apply_shortcut(self.shortcut.as_ref(), x)?, with)
    }
}

fn apply_shortcut(shortcut: Option<&ConvBn>, x: Tensor<4>) -> Result<Tensor<4>, ModelError> {
    match shortcut {
        Some(projection) => projection.forward(x),
        None => Ok(x),
    }
}

/// One residual block of either family.
// The variants differ by ~500 bytes, but Burn's `Module` derive has no `Box<M>` impl, and a
// network holds at most a few dozen blocks.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ResidualBlock {
    /// Two 3×3 convolutions (ResNet-18/34).
    Basic(BasicBlock),
    /// 1×1–3×3–1×1 bottleneck (ResNet-50 and deeper).
    Bottleneck(Bottleneck),
}

impl ResidualBlock {
    /// Applies the block to `[B, C, H, W]`.
    ///
    /// # Errors
    /// [`ModelError`] if `x` does not fit the block.
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<4>, ModelError> {
        match self {
            Self::Basic(block) => block.forward(x),
            Self::Bottleneck(block) => block.forward(x),
        }
    }

    /// The batch norm just before the residual sum (the one `zero_init_residual` zeroes).
    pub fn last_norm(&self) -> &BatchNorm {
        match self {
            Self::Basic(block) => &block.second.norm,
            Self::Bottleneck(block) => &block.expand.norm,
        }
    }
}

/// A ResNet without its classifier: `[B, C, H, W]` images to `[B, feature_dim]`
/// global-average-pooled features.
///
/// **Train vs. inference mode.** Burn 0.22's `BatchNorm` normalises with the batch statistics
/// (and updates its running averages) only when its input lives on an autodiff device *and*
/// the module's training flag is on; otherwise it uses the running averages. So: train on a
/// `device.autodiff()` device; evaluate (linear probe, k-NN) on `backbone.valid()`, which turns
/// the flags off and drops autodiff; and run a target network (BYOL, MVEB) made by
/// [`crate::ssl::SslNetworkConfig::init_target`] (parameters frozen with `no_grad()`) on the
/// autodiff device, which keeps batch statistics like the PyTorch reference (a target under
/// `torch.no_grad()` in train mode) while tracking no gradients.
///
/// Note that `Module::clone` shares batch-norm running statistics between the clones (Burn's
/// `RunningState` is an `Arc<Mutex<_>>`), so a clone is no independent target network.
#[derive(Module, Debug)]
pub struct Backbone {
    /// Stem convolution and batch norm.
    pub stem: ConvBn,
    /// The ImageNet stem's 3×3 stride-2 max-pool (`None` for the CIFAR stem).
    pub stem_pool: Option<MaxPool2d>,
    /// The residual blocks of the four stages, in order.
    pub blocks: Vec<ResidualBlock>,
    feature_dim: usize,
    #[module(skip)]
    layers: LayerImplementation,
}

impl Backbone {
    /// `[B, C, H, W]` (any H, W ≥ 8) → `[B, feature_dim]`.
    ///
    /// # Errors
    /// [`ModelError`] if `images` have the wrong channel count or are smaller than a kernel.
    pub fn forward(&self, images: Tensor<4>) -> Result<Tensor<2>, ModelError> {
        let mut h = layers::relu(self.stem.forward(images)?, self.layers)?;
        if let Some(pool) = &self.stem_pool {
            h = pool.forward(h);
        }
        for block in &self.blocks {
            h = block.forward(h)?;
        }
        let pooled: Tensor<3> = h.flatten(2, 3);
        Ok(pooled.mean_dim(2).squeeze_dim(2))
    }

    /// Dimension of the pooled features.
    pub fn feature_dim(&self) -> usize {
        self.feature_dim
    }

    /// What computes the layers.
    pub fn layers(&self) -> LayerImplementation {
        self.layers
    }
}
