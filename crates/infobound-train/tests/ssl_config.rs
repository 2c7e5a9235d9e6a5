//! SSL configuration: presets, round trips, unknown fields, the family switch and `--set`.

use infobound_models::ssl::SslObjectiveConfig;
use infobound_train::ssl::SslTrainConfig;
use infobound_train::{RunConfig, TrainConfig, apply_override};

#[test]
fn every_ssl_preset_loads_validates_and_round_trips_through_toml() {
    for name in SslTrainConfig::preset_names() {
        let config = SslTrainConfig::preset(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(config.name, name);
        let text = config.to_toml().expect("serialises");
        let back = SslTrainConfig::from_toml(&text).expect("parses back");
        assert_eq!(back, config, "{name}");
        match RunConfig::preset(name, &[]).expect("loads") {
            RunConfig::Ssl(c) => assert_eq!(*c, config),
            RunConfig::Vae(_) => panic!("{name} loaded as a VAE config"),
        }
    }
}

#[test]
fn quickstart_presets_differ_only_in_objective_and_heads() {
    let mveb = SslTrainConfig::preset("mveb_quickstart").expect("preset");
    for name in [
        "simsiam_quickstart",
        "byol_quickstart",
        "barlow_twins_quickstart",
    ] {
        let other = SslTrainConfig::preset(name).expect("preset");
        assert_eq!(other.dataset, mveb.dataset, "{name}");
        // The same views, of which the baselines' two-view recipes take no local ones.
        assert_eq!(other.augmentation.num_local_views, 0, "{name}");
        let mut views = other.augmentation.clone();
        views.num_local_views = mveb.augmentation.num_local_views;
        assert_eq!(views, mveb.augmentation, "{name}");
        assert_eq!(other.network.backbone, mveb.network.backbone, "{name}");
        assert_eq!(other.optimizer, mveb.optimizer, "{name}");
        assert_eq!(other.monitor, mveb.monitor, "{name}");
        assert_eq!(
            (other.batch_size, other.steps, other.seed),
            (mveb.batch_size, mveb.steps, mveb.seed)
        );
        assert_ne!(other.objective, mveb.objective);
    }
}

/// Each `*_published_quickstart` preset keeps its quickstart's data, views, network, monitors
/// and budget, and carries the published recipe's numbers (see the presets' citations).
#[test]
fn published_presets_change_only_the_recipe_of_their_quickstart() {
    use infobound_models::ssl::BarlowTwinsConfig;
    use infobound_train::optim::CosineSpan;
    use infobound_train::ssl::SslOptimizerMethod;
    for (published, quickstart) in [
        ("simsiam_published_quickstart", "simsiam_quickstart"),
        ("byol_published_quickstart", "byol_quickstart"),
        (
            "barlow_twins_published_quickstart",
            "barlow_twins_quickstart",
        ),
    ] {
        let p = SslTrainConfig::preset(published).expect("preset");
        let q = SslTrainConfig::preset(quickstart).expect("preset");
        assert_eq!(p.dataset, q.dataset, "{published}");
        assert_eq!(p.labels, q.labels, "{published}");
        assert_eq!(p.augmentation, q.augmentation, "{published}");
        assert_eq!(p.network, q.network, "{published}");
        assert_eq!(p.monitor, q.monitor, "{published}");
        assert_eq!(
            (p.batch_size, p.steps, p.seed),
            (q.batch_size, q.steps, q.seed),
            "{published}"
        );
        assert_eq!(
            std::mem::discriminant(&p.objective),
            std::mem::discriminant(&q.objective)
        );
        assert_ne!((&p.objective, &p.optimizer), (&q.objective, &q.optimizer));
    }
    let barlow = SslTrainConfig::preset("barlow_twins_published_quickstart").expect("preset");
    assert_eq!(
        barlow.objective,
        SslObjectiveConfig::BarlowTwins(BarlowTwinsConfig {
            lambda: 0.0051,
            loss_scale: 0.1,
        })
    );
    assert_eq!(barlow.optimizer.base_lr, 0.2);
    assert_eq!(barlow.optimizer.cosine_span, CosineSpan::AfterWarmup);
    assert_eq!(
        barlow.optimizer.method,
        SslOptimizerMethod::Lars {
            momentum: 0.9,
            weight_decay: 1e-6,
            trust_coefficient: 0.001,
            exclude_one_dimensional: true,
            one_dimensional_lr_factor: 0.024,
        }
    );
    let simsiam = SslTrainConfig::preset("simsiam_published_quickstart").expect("preset");
    assert_eq!(simsiam.optimizer.base_lr, 0.05);
    assert_eq!(simsiam.optimizer.warmup_steps, 0);
    assert_eq!(
        simsiam.optimizer.method,
        SslOptimizerMethod::Sgd {
            momentum: 0.9,
            weight_decay: 1e-4,
        }
    );
    let byol = SslTrainConfig::preset("byol_published_quickstart").expect("preset");
    assert_eq!(byol.objective.base_momentum(), Some(0.99));
    for name in ["mveb_quickstart", "mveb_cifar10", "mveb_imagenet"] {
        let mveb = SslTrainConfig::preset(name).expect("preset");
        assert_eq!(mveb.optimizer.cosine_span, CosineSpan::Total, "{name}");
    }
    // ImageNet: the official evaluation's Resize(256) + CenterCrop(224), no squashing.
    let imagenet = SslTrainConfig::preset("mveb_imagenet").expect("preset");
    assert!(matches!(
        imagenet.dataset,
        infobound_data::DatasetSource::ImageFolder {
            image_size: Some(256),
            fit: infobound_data::readers::ImageFit::ShorterSideCenterCrop,
            ..
        }
    ));
    assert_eq!(
        imagenet.monitor.eval_view,
        infobound_train::ssl::EvalView::CenterCrop
    );
    assert_eq!(imagenet.augmentation.global_views[0].size, 224);
}

#[test]
fn unknown_fields_are_errors_at_every_level() {
    let base = "[objective]\nkind = \"mveb\"\n";
    for bad in [
        format!("{base}batch_sise = 4\n"),
        format!("{base}[optimizer]\nbase_rate = 0.1\n"),
        format!("{base}[optimizer.method]\nkind = \"lars\"\nmomentun = 0.9\n"),
        format!("{base}[monitor]\nknn = 5\n"),
        "[objective]\nkind = \"mveb\"\nentropy_wieght = 0.1\n".to_string(),
        format!("{base}[dataset]\nsource = \"cifar10\"\npath = \"x\"\nsize = 3\n"),
    ] {
        let err = RunConfig::from_value(
            bad.parse::<toml::Table>()
                .map(toml::Value::Table)
                .expect("toml"),
            &[],
        );
        assert!(err.is_err(), "accepted:\n{bad}");
    }
}

#[test]
fn vae_presets_still_load_as_vae_configs() {
    for name in TrainConfig::preset_names() {
        match RunConfig::preset(name, &[]).expect("loads") {
            RunConfig::Vae(c) => assert_eq!(*c, TrainConfig::preset(name).expect("preset")),
            RunConfig::Ssl(_) => panic!("{name} loaded as SSL"),
        }
    }
}

#[test]
fn ssl_kind_list_matches_the_objective_tags() {
    for objective in [
        SslObjectiveConfig::default(),
        SslObjectiveConfig::SimSiam(Default::default()),
        SslObjectiveConfig::Byol(Default::default()),
        SslObjectiveConfig::BarlowTwins(Default::default()),
    ] {
        let value = toml::Value::try_from(&objective).expect("serialises");
        let kind = value.get("kind").and_then(|k| k.as_str()).expect("tagged");
        assert!(SslObjectiveConfig::KINDS.contains(&kind), "{kind}");
    }
}

#[test]
fn set_overrides_reach_both_families() {
    let overrides = [
        "objective.entropy_weight=0".to_string(),
        "batch_size = 16".to_string(),
        "labels.label_factor=floor_hue".to_string(),
        "network.backbone.layers=[2, 1, 1, 1]".to_string(),
    ];
    let RunConfig::Ssl(config) = RunConfig::preset("mveb_quickstart", &overrides).expect("applies")
    else {
        panic!("not SSL");
    };
    let SslObjectiveConfig::Mveb(mveb) = &config.objective else {
        panic!("not MVEB");
    };
    assert_eq!(mveb.entropy_weight, 0.0);
    assert_eq!(config.batch_size, 16);
    assert_eq!(config.labels.label_factor, "floor_hue");
    let toml = config.to_toml().expect("toml");
    assert!(
        toml.contains("layers = [\n    2,") || toml.contains("layers = [2, 1, 1, 1]"),
        "{toml}"
    );

    let RunConfig::Vae(vae) = RunConfig::preset(
        "quickstart",
        &["steps=7".into(), "optimizer.learning_rate=1e-3".into()],
    )
    .expect("applies") else {
        panic!("not VAE");
    };
    assert_eq!(vae.steps, 7);
    assert_eq!(vae.optimizer.learning_rate, 1e-3);

    // Switching the objective kind switches the family.
    let switched = RunConfig::preset("mveb_quickstart", &["objective.kind=\"byol\"".into()]);
    assert!(
        switched.is_err(),
        "BYOL without a predictor must be rejected by validation"
    );
}

#[test]
fn malformed_overrides_are_errors() {
    let mut value = toml::Value::Table(toml::Table::new());
    assert!(apply_override(&mut value, "no_equals_sign").is_err());
    assert!(apply_override(&mut value, "a..b=1").is_err());
    apply_override(&mut value, "a=1").expect("sets");
    assert!(
        apply_override(&mut value, "a.b=2").is_err(),
        "a is not a table"
    );
    assert!(RunConfig::preset("no_such_preset", &[]).is_err());
    assert!(RunConfig::preset("mveb_quickstart", &["batch_size=\"many\"".into()]).is_err());
}

#[test]
fn the_defaults_are_the_released_imagenet_recipe_of_the_preset() {
    let defaults = SslTrainConfig::default();
    defaults.validate().expect("valid");
    let preset = SslTrainConfig::preset("mveb_imagenet").expect("preset");
    assert_eq!(defaults.network, preset.network);
    assert_eq!(defaults.objective, preset.objective);
    assert_eq!(defaults.optimizer, preset.optimizer);
    assert_eq!(defaults.augmentation, preset.augmentation);
    assert_eq!(
        (defaults.batch_size, defaults.steps),
        (preset.batch_size, preset.steps)
    );
    assert_eq!(defaults.peak_learning_rate(), 0.3);
}
