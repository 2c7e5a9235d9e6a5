//! Export → import round trips in Rust, and every refusal of a state dict that does not fit.

use burn::module::Module;
use burn::store::{ModuleStore, SafetensorsStore};
use burn::tensor::{Device, Distribution, Tensor};
use infobound_models::ssl::{Backbone, BackboneConfig};
use infobound_models::{Architecture, LayerImplementation, Vae, VaeConfig};
use infobound_weights::{
    WeightsError, WeightsSource, backbone_key_map, export_backbone, export_vae, import_backbone,
    import_vae,
};

fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar()
}

fn vae_config() -> VaeConfig {
    VaeConfig {
        channels: 1,
        ..VaeConfig::default()
    }
}

fn vae(seed: u64, device: &Device) -> Vae {
    device.seed(seed);
    vae_config().init(device).expect("valid config")
}

fn resnet(layers: [usize; 4], base_width: usize) -> BackboneConfig {
    BackboneConfig::ResNetCifar {
        layers,
        base_width,
        in_channels: 3,
        zero_init_residual: false,
    }
}

/// A backbone whose batch norms have seen a few training batches (running statistics away from
/// 0 and 1), in inference mode.
fn trained_backbone(config: &BackboneConfig, seed: u64) -> Backbone {
    let device = Device::flex().autodiff();
    device.seed(seed);
    let backbone = config
        .init(LayerImplementation::default(), &device)
        .expect("valid config");
    for _ in 0..3 {
        let x = Tensor::<4>::random([8, 3, 32, 32], Distribution::Normal(0.5, 1.0), &device);
        backbone.forward(x).expect("fits");
    }
    let moved: f32 = backbone
        .stem
        .norm
        .running_mean
        .value()
        .abs()
        .sum()
        .into_scalar();
    assert!(moved > 1e-3, "the training batches moved the running mean");
    backbone.valid()
}

fn keys(path: &std::path::Path) -> Vec<(String, Vec<usize>)> {
    let mut store = SafetensorsStore::from_file(path);
    store
        .get_all_tensors()
        .expect("readable")
        .iter()
        .map(|(k, t)| (k.clone(), t.shape.to_vec()))
        .collect()
}

#[test]
fn vae_round_trip_gives_the_same_network() {
    let device = Device::flex();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vae.safetensors");
    let original = vae(1, &device);
    let summary = export_vae(&original, &vae_config(), &path).expect("export");
    assert_eq!(summary.tensors.len(), 24);
    assert_eq!(summary.tensors["encoder.model.9.weight"], vec![256, 1024]);
    assert_eq!(
        summary.tensors["decoder.model.5.weight"],
        vec![64, 64, 4, 4]
    );
    assert_eq!(
        summary.tensors["decoder.model.11.weight"],
        vec![32, 1, 4, 4]
    );
    let written = keys(&path);
    assert_eq!(
        written,
        summary.tensors.clone().into_iter().collect::<Vec<_>>(),
        "the file holds exactly the summarised keys"
    );

    let imported = import_vae(
        vae(2, &device),
        &vae_config(),
        &WeightsSource::new(&path).expect("format"),
    )
    .expect("import");
    let x = Tensor::<4>::random([3, 1, 64, 64], Distribution::Uniform(0.0, 1.0), &device);
    let z = Tensor::<2>::random([3, 10], Distribution::Normal(0.0, 1.0), &device);
    let (mu_a, logvar_a) = original.encode(x.clone()).expect("fits");
    let (mu_b, logvar_b) = imported.encode(x).expect("fits");
    assert_eq!(max_abs_diff(mu_a.clone(), mu_b), 0.0);
    assert_eq!(max_abs_diff(logvar_a, logvar_b), 0.0);
    let logits_a = original.decode_logits(z.clone()).expect("fits");
    assert_eq!(
        max_abs_diff(
            logits_a.clone(),
            imported.decode_logits(z.clone()).expect("fits")
        ),
        0.0
    );
    // A differently seeded network differs, so the equalities above test the import.
    let other = vae(2, &device);
    assert!(max_abs_diff(logits_a, other.decode_logits(z).expect("fits")) > 1e-3);
}

#[test]
fn backbone_round_trip_carries_running_statistics() {
    let config = resnet([2, 2, 2, 2], 4);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("resnet.safetensors");
    let original = trained_backbone(&config, 3);
    let summary = export_backbone(&original, &config, &path).expect("export");
    for key in [
        "conv1.weight",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "layer1.1.conv2.weight",
        "layer2.0.downsample.0.weight",
        "layer4.1.bn2.running_var",
    ] {
        assert!(
            summary.tensors.contains_key(key),
            "{key} missing from the export"
        );
    }
    assert!(!summary.tensors.contains_key("layer1.0.downsample.0.weight"));
    assert!(
        summary
            .tensors
            .keys()
            .all(|k| !k.contains("gamma") && !k.contains("beta"))
    );

    let device = Device::flex();
    let fresh = config
        .init(LayerImplementation::default(), &device)
        .expect("valid config");
    let imported = import_backbone(fresh, &config, &WeightsSource::new(&path).expect("format"))
        .expect("import");
    let x = Tensor::<4>::random([4, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let a = original.forward(x.clone()).expect("fits");
    let b = imported.forward(x.clone()).expect("fits");
    assert!(max_abs_diff(a.clone(), b) <= 1e-6);
    let untrained = config
        .init(LayerImplementation::default(), &device)
        .expect("valid config");
    assert!(max_abs_diff(a, untrained.forward(x).expect("fits")) > 1e-3);
}

#[test]
fn resnet50_keys_are_torchvisions() {
    let config = BackboneConfig::resnet50();
    let map = backbone_key_map(&config);
    let torch: Vec<&str> = map.pairs().iter().map(|(_, t)| t.as_str()).collect();
    for key in [
        "conv1.",
        "bn1.",
        "layer1.0.conv3.",
        "layer1.0.downsample.1.",
        "layer3.5.bn3.",
        "layer4.2.conv2.",
    ] {
        assert!(torch.contains(&key), "{key}");
    }
    assert_eq!(
        map.to_torch("blocks.3.expand.norm.weight").as_deref(),
        Some("layer2.0.bn3.weight")
    );
    assert_eq!(
        map.to_torch("blocks.15.spatial.conv.weight").as_deref(),
        Some("layer4.2.conv2.weight")
    );
}

#[test]
fn imports_name_what_does_not_fit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let device = Device::flex();
    let narrow = resnet([2, 2, 2, 2], 4);
    let path = dir.path().join("narrow.safetensors");
    export_backbone(&trained_backbone(&narrow, 1), &narrow, &path).expect("export");
    let source = WeightsSource::new(&path).expect("format");
    let init = |c: &BackboneConfig| c.init(LayerImplementation::Burn, &device).expect("valid");

    let wide = resnet([2, 2, 2, 2], 8);
    match import_backbone(init(&wide), &wide, &source) {
        Err(WeightsError::ShapeMismatch {
            key,
            expected,
            found,
            ..
        }) => {
            assert_eq!(key, "bn1.bias");
            assert_eq!((expected, found), (vec![8], vec![4]));
        }
        other => panic!("expected a shape mismatch, got {other:?}"),
    }

    let shallow = resnet([1, 1, 1, 1], 4);
    match import_backbone(init(&shallow), &shallow, &source) {
        Err(WeightsError::UnexpectedKeys { keys, .. }) => {
            assert!(
                keys.contains(&"layer1.1.conv1.weight".to_string()),
                "{keys:?}"
            );
            assert_eq!(keys.len(), 4 * 10, "{keys:?}");
        }
        other => panic!("expected unexpected keys, got {other:?}"),
    }

    let deep = resnet([3, 2, 2, 2], 4);
    match import_backbone(init(&deep), &deep, &source) {
        Err(e @ WeightsError::MissingKeys { .. }) => {
            let message = e.to_string();
            assert!(message.contains("layer1.2.conv1.weight"), "{message}");
            assert!(message.contains("10 key(s) missing"), "{message}");
        }
        other => panic!("expected missing keys, got {other:?}"),
    }

    // Under a prefix nothing is found; a VAE file read as a backbone lacks every key.
    let prefixed = WeightsSource {
        prefix: "backbone.".into(),
        ..source.clone()
    };
    assert!(matches!(
        import_backbone(init(&narrow), &narrow, &prefixed),
        Err(WeightsError::MissingKeys { .. })
    ));
    let vae_path = dir.path().join("vae.safetensors");
    export_vae(&vae(1, &device), &vae_config(), &vae_path).expect("export");
    assert!(matches!(
        import_backbone(
            init(&narrow),
            &narrow,
            &WeightsSource::new(&vae_path).expect("format")
        ),
        Err(WeightsError::MissingKeys { .. })
    ));
    // A VAE of three channels needs other shapes than the one-channel file.
    let rgb = VaeConfig::default();
    match import_vae(
        rgb.init(&device).expect("valid"),
        &rgb,
        &WeightsSource::new(&vae_path).expect("format"),
    ) {
        Err(WeightsError::ShapeMismatch { key, .. }) => assert_eq!(key, "decoder.model.11.bias"),
        other => panic!("expected a shape mismatch, got {other:?}"),
    }

    let missing_file = WeightsSource::new(dir.path().join("absent.safetensors")).expect("format");
    assert!(matches!(
        import_backbone(init(&narrow), &narrow, &missing_file),
        Err(WeightsError::Store { .. })
    ));
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a safetensors file").expect("write");
    assert!(matches!(
        import_backbone(
            init(&narrow),
            &narrow,
            &WeightsSource::new(&garbage).expect("format")
        ),
        Err(WeightsError::Store { .. })
    ));
    let garbage_pt = dir.path().join("garbage.pt");
    std::fs::write(&garbage_pt, b"not a pickle").expect("write");
    assert!(matches!(
        import_backbone(
            init(&narrow),
            &narrow,
            &WeightsSource::new(&garbage_pt).expect("format")
        ),
        Err(WeightsError::Store { .. })
    ));
}

#[test]
fn formats_and_networks_without_a_pytorch_counterpart_are_refused() {
    assert!(matches!(
        WeightsSource::new("weights.bin"),
        Err(WeightsError::UnknownFormat { .. })
    ));
    let device = Device::flex();
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        export_vae(&vae(1, &device), &vae_config(), &dir.path().join("vae.pt")),
        Err(WeightsError::ExportFormat { .. })
    ));
    let broadcast = VaeConfig {
        architecture: Architecture::SpatialBroadcast,
        ..vae_config()
    };
    let model = broadcast.init(&device).expect("valid");
    assert!(matches!(
        export_vae(&model, &broadcast, &dir.path().join("vae.safetensors")),
        Err(WeightsError::UnsupportedNetwork { .. })
    ));
    // A configuration that does not describe the module: a second block in the first stage that
    // the configuration does not know.
    let shallow = resnet([1, 1, 1, 1], 4);
    assert!(matches!(
        export_backbone(
            &resnet([2, 1, 1, 1], 4)
                .init(LayerImplementation::Burn, &device)
                .expect("valid"),
            &shallow,
            &dir.path().join("mismatch.safetensors"),
        ),
        Err(WeightsError::ConfigMismatch { .. })
    ));
}
