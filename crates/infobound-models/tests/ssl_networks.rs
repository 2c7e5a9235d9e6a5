//! SSL backbones, heads and networks: output shapes, zero-init residuals, head layout, the
//! dimension chain, and Burn's train/inference switch of batch norm.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use infobound_models::ssl::{BackboneConfig, MlpHeadConfig, ResidualBlock, SslNetworkConfig};
use infobound_models::{LayerImplementation, ModelError};

fn device() -> Device {
    Device::flex().autodiff()
}

fn images(batch: usize, channels: usize, size: usize, device: &Device) -> Tensor<4> {
    device.seed(3);
    Tensor::random(
        [batch, channels, size, size],
        Distribution::Normal(0.0, 1.0),
        device,
    )
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec().expect("tensor readback")
}

#[test]
fn cifar_resnets_pool_any_input_size_to_their_feature_dim() {
    let device = device();
    for (config, blocks) in [
        (BackboneConfig::narrow_resnet_cifar(4), 4),
        (
            BackboneConfig::ResNetCifar {
                layers: [2, 1, 1, 2],
                base_width: 2,
                in_channels: 1,
                zero_init_residual: false,
            },
            6,
        ),
    ] {
        let backbone = config
            .init(LayerImplementation::default(), &device)
            .unwrap();
        assert_eq!(backbone.blocks.len(), blocks);
        assert!(backbone.stem_pool.is_none());
        let channels = match config {
            BackboneConfig::ResNetCifar { in_channels, .. } => in_channels,
            BackboneConfig::ResNet50 { .. } => unreachable!(),
        };
        for size in [8, 13, 32] {
            let features = backbone
                .forward(images(3, channels, size, &device))
                .unwrap();
            assert_eq!(
                features.dims(),
                [3, config.feature_dim()],
                "input {size} px"
            );
        }
    }
    assert_eq!(BackboneConfig::resnet18_cifar().feature_dim(), 512);
    assert_eq!(BackboneConfig::narrow_resnet_cifar(16).feature_dim(), 128);
}

#[test]
fn resnet18_cifar_has_eight_basic_blocks() {
    let backbone = BackboneConfig::resnet18_cifar()
        .init(LayerImplementation::default(), &device())
        .unwrap();
    assert_eq!(backbone.blocks.len(), 8);
    assert!(
        backbone
            .blocks
            .iter()
            .all(|b| matches!(b, ResidualBlock::Basic(_)))
    );
    // Projection shortcuts exactly where a stage starts with stride 2.
    let projected: Vec<bool> = backbone
        .blocks
        .iter()
        .map(|b| match b {
            ResidualBlock::Basic(block) => block.shortcut.is_some(),
            ResidualBlock::Bottleneck(_) => unreachable!(),
        })
        .collect();
    assert_eq!(
        projected,
        [false, false, true, false, true, false, true, false]
    );
}

#[test]
fn resnet50_gives_2048_features_on_a_tiny_input() {
    let device = device();
    let backbone = BackboneConfig::resnet50()
        .init(LayerImplementation::default(), &device)
        .unwrap();
    assert_eq!(backbone.blocks.len(), 16);
    assert!(backbone.stem_pool.is_some());
    let features = backbone
        .valid()
        .forward(images(1, 3, 16, &device.inner()))
        .unwrap();
    assert_eq!(features.dims(), [1, 2048]);
}

/// With `zero_init_residual` every block's last batch norm starts at γ = 0, so each block is
/// `relu(shortcut(x))` at initialisation.
#[test]
fn zero_init_residual_makes_every_block_its_shortcut() {
    let device = device();
    let config = BackboneConfig::ResNetCifar {
        layers: [2, 1, 1, 1],
        base_width: 4,
        in_channels: 3,
        zero_init_residual: true,
    };
    let backbone = config
        .init(LayerImplementation::default(), &device)
        .unwrap();
    let mut h = backbone.stem.forward(images(2, 3, 16, &device)).unwrap();
    for block in &backbone.blocks {
        assert!(
            host(block.last_norm().gamma.val())
                .iter()
                .all(|&g| g == 0.0)
        );
        let ResidualBlock::Basic(basic) = block else {
            unreachable!()
        };
        let shortcut = match &basic.shortcut {
            Some(projection) => projection.forward(h.clone()).unwrap(),
            None => h.clone(),
        };
        let expected = host(burn::tensor::activation::relu(shortcut));
        let actual = block.forward(h.clone()).unwrap();
        assert_eq!(host(actual.clone()), expected);
        h = actual;
    }
    // The other batch norms keep γ = 1, and without the flag the last one does too.
    let ResidualBlock::Basic(first) = &backbone.blocks[0] else {
        unreachable!()
    };
    assert!(host(first.first.norm.gamma.val()).iter().all(|&g| g == 1.0));
    let plain = BackboneConfig::narrow_resnet_cifar(4)
        .init(LayerImplementation::default(), &device)
        .unwrap();
    assert!(
        host(plain.blocks[0].last_norm().gamma.val())
            .iter()
            .all(|&g| g == 1.0)
    );
    // The released MVEB ResNet-50 zero-initialises its residual branches.
    let bottleneck = BackboneConfig::resnet50()
        .init(LayerImplementation::default(), &device)
        .unwrap();
    for block in &bottleneck.blocks {
        assert!(
            host(block.last_norm().gamma.val())
                .iter()
                .all(|&g| g == 0.0)
        );
    }
}

#[test]
fn head_presets_have_the_published_layouts() {
    let device = device();
    // (config, hidden layers, last bias, last BN, output dim)
    let cases = [
        (MlpHeadConfig::mveb_projector(16, 32), 2, true, false, 32),
        (MlpHeadConfig::simsiam_projector(16, 32), 2, false, true, 32),
        (MlpHeadConfig::byol_projector(16, 32, 8), 1, true, false, 8),
        (MlpHeadConfig::predictor(16, 4), 1, true, false, 16),
    ];
    for (config, hidden, last_bias, last_bn, output) in cases {
        let head = config.init(&device).unwrap();
        assert_eq!(head.hidden.len(), hidden, "{config:?}");
        assert!(head.hidden.iter().all(|l| l.linear.bias.is_none()));
        assert_eq!(head.last.bias.is_some(), last_bias, "{config:?}");
        assert_eq!(head.last_norm.is_some(), last_bn, "{config:?}");
        if let Some(norm) = &head.last_norm {
            // The last batch norm is non-affine: γ and β are not trained.
            assert!(!norm.gamma.val().is_require_grad());
            assert!(!norm.beta.val().is_require_grad());
        }
        assert!(head.last.weight.val().is_require_grad());
        device.seed(1);
        let x = Tensor::<2>::random([5, 16], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(head.forward(x).dims(), [5, output]);
    }
    let single = MlpHeadConfig {
        num_layers: 1,
        ..MlpHeadConfig::mveb_projector(16, 8)
    };
    assert!(single.init(&device).unwrap().hidden.is_empty());
    let empty = MlpHeadConfig {
        num_layers: 0,
        ..MlpHeadConfig::default()
    };
    assert!(matches!(
        empty.init(&device),
        Err(ModelError::InvalidConfig(_))
    ));
}

#[test]
fn network_checks_the_dimension_chain() {
    let device = device();
    let good = SslNetworkConfig {
        backbone: BackboneConfig::narrow_resnet_cifar(2),
        projector: MlpHeadConfig::simsiam_projector(16, 8),
        predictor: Some(MlpHeadConfig::predictor(8, 4)),
        layers: LayerImplementation::default(),
        view_batching: infobound_models::ssl::ViewBatching::PerView,
    };
    let net = good.init(&device).unwrap();
    let features = net.features(images(4, 3, 8, &device)).unwrap();
    assert_eq!(features.dims(), [4, 16]);
    let projection = net.project(features);
    assert_eq!(projection.dims(), [4, 8]);
    assert_eq!(net.predict(projection).unwrap().dims(), [4, 8]);

    let wrong_projector = SslNetworkConfig {
        projector: MlpHeadConfig::simsiam_projector(32, 8),
        ..good.clone()
    };
    let wrong_predictor = SslNetworkConfig {
        predictor: Some(MlpHeadConfig::predictor(16, 4)),
        ..good.clone()
    };
    let zero_width = SslNetworkConfig {
        backbone: BackboneConfig::narrow_resnet_cifar(0),
        ..good.clone()
    };
    for config in [wrong_projector, wrong_predictor, zero_width] {
        assert!(matches!(
            config.init(&device),
            Err(ModelError::InvalidConfig(_))
        ));
    }
    let without_predictor = SslNetworkConfig {
        predictor: None,
        ..good.clone()
    };
    let net = without_predictor.init(&device).unwrap();
    assert!(net.predict(Tensor::zeros([2, 8], &device)).is_none());

    let json = serde_json::to_string(&good).unwrap();
    assert!(json.contains(r#""kind":"resnet_cifar""#), "{json}");
    let parsed: SslNetworkConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed, good);
    let resnet50: BackboneConfig =
        serde_json::from_str(r#"{"kind":"res_net50","in_channels":3,"zero_init_residual":true}"#)
            .unwrap();
    assert_eq!(resnet50.feature_dim(), 2048);
    let current: BackboneConfig =
        serde_json::from_str(r#"{"kind":"resnet50","in_channels":3,"zero_init_residual":true}"#)
            .unwrap();
    assert_eq!(current, resnet50, "the old tag is an alias of the new one");
}

/// Burn 0.22's batch norm uses batch statistics (and updates its running averages) only on an
/// autodiff device with the training flag on; `valid()` switches to the running averages, and
/// `no_grad()` (a target network) keeps batch statistics.
#[test]
fn batch_norm_mode_follows_autodiff_and_the_training_flag() {
    let device = device();
    let head = MlpHeadConfig::byol_projector(4, 8, 3)
        .init(&device)
        .unwrap();
    device.seed(5);
    let x = Tensor::<2>::random([16, 4], Distribution::Normal(3.0, 2.0), &device);
    let running_before = host(head.hidden[0].norm.running_mean.value());

    let evaluated = head.valid().forward(x.clone().inner());
    assert_eq!(
        host(head.hidden[0].norm.running_mean.value()),
        running_before
    );

    let target = head.clone().no_grad();
    let target_out = target.forward(x.clone());
    assert!(!target_out.is_require_grad());
    let trained = head.forward(x);
    assert_eq!(host(target_out), host(trained.clone()));
    assert_ne!(host(trained), host(evaluated));
    assert_ne!(
        host(head.hidden[0].norm.running_mean.value()),
        running_before
    );
}

/// `zero_init_residual` starts each block's last batch norm at γ = 0 and keeps γ trainable: the
/// first backward gives it a gradient (a γ turned into a constant would silence the residual
/// branch for the whole run).
#[test]
fn zero_initialised_residual_gammas_are_trainable() {
    let device = device();
    let config = BackboneConfig::ResNetCifar {
        layers: [1, 1, 1, 1],
        base_width: 4,
        in_channels: 3,
        zero_init_residual: true,
    };
    let backbone = config
        .init(LayerImplementation::default(), &device)
        .unwrap();
    let ResidualBlock::Basic(block) = &backbone.blocks[0] else {
        panic!("a basic block");
    };
    let gamma = block.second.norm.gamma.val();
    let zeros: Vec<f32> = gamma.clone().into_data().try_to_vec().unwrap();
    assert!(zeros.iter().all(|&g| g == 0.0), "{zeros:?}");
    assert!(gamma.is_require_grad(), "γ = 0 became a constant");
    let loss = backbone
        .forward(images(4, 3, 16, &device))
        .unwrap()
        .square()
        .sum();
    let grads = loss.backward();
    let grad = gamma.grad(&grads).expect("γ received a gradient");
    let grad: Vec<f32> = grad.into_data().try_to_vec().unwrap();
    assert!(grad.iter().any(|&g| g != 0.0), "{grad:?}");
}
