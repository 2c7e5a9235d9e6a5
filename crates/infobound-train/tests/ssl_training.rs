//! The SSL loop end to end on a tiny network: run-folder files, exact resume, and the EMA
//! target.

use std::sync::Arc;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use infobound_data::DatasetSource;
use infobound_data::augment::MultiCropConfig;
use infobound_models::ssl::{BackboneConfig, MlpHeadConfig, SslObjectiveConfig};
use infobound_train::run::train_loop;
use infobound_train::ssl::{
    LabelledSplitConfig, SslData, SslTrainConfig, SslTrainer, evaluate_ssl, train_ssl_run,
    write_ssl_report,
};
use infobound_train::{Environment, RunDir, TrainOptions, latest_checkpoint, write_loss_svg};

fn device() -> Device {
    Device::flex()
}

/// MVEB on 16 px procedural 3DShapes with a 4-wide one-block ResNet (32-d features), batch 8,
/// 2 global + 2 local views.
fn tiny_config(steps: usize) -> SslTrainConfig {
    let mut config = SslTrainConfig::preset("mveb_quickstart").expect("preset");
    config.name = "tiny".into();
    config.batch_size = 8;
    config.steps = steps;
    config.log_every = 1;
    config.checkpoint_every = 2;
    config.monitor_every = steps;
    config.dataset = DatasetSource::Procedural {
        name: "shapes3d".into(),
    };
    config.labels = LabelledSplitConfig {
        label_factor: "shape".into(),
        image_size: 16,
        num_train: 24,
        num_test: 12,
        seed: 3,
    };
    config.augmentation = MultiCropConfig::mveb(16, 8, 2);
    config.network.backbone = BackboneConfig::narrow_resnet_cifar(4);
    config.network.projector = MlpHeadConfig::mveb_projector(32, 32);
    config.optimizer.warmup_steps = 1;
    config.monitor.diagnostics_every = 1;
    config.monitor.eval_batch_size = 16;
    config.monitor.retrieval_queries = 3;
    config
}

fn tiny_data(config: &SslTrainConfig) -> Arc<SslData> {
    Arc::new(SslData::load(&config.dataset, &config.labels).expect("renders"))
}

/// Every float tensor (parameters and batch-norm statistics) of `module`, flattened; `valid()`
/// first applies the batch-norm statistics update Burn keeps pending.
fn values<M: Module>(module: &M) -> Vec<f32> {
    let module = module.valid();
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let v: Vec<f32> = param.val().into_data().try_to_vec().expect("f32");
            self.0.extend(v);
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

/// Asserts bitwise equality of every float tensor, reporting the first difference only.
fn assert_same<M: Module>(what: &str, a: &M, b: &M) {
    let (a, b) = (values(a), values(b));
    assert_eq!(a.len(), b.len(), "{what}: sizes");
    let differing = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    let first = a.iter().zip(&b).position(|(x, y)| x != y);
    assert_eq!(
        differing,
        0,
        "{what}: {differing} of {} values differ, first at {first:?}",
        a.len()
    );
}

const OPTIONS: TrainOptions = TrainOptions {
    resume: false,
    progress: false,
};

#[test]
fn a_three_step_run_writes_every_run_folder_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = RunDir::new(dir.path().join("run"));
    let device = device();
    Environment::capture("flex", &device)
        .write(&run)
        .expect("environment");
    let (trainer, summary) =
        train_ssl_run(tiny_config(3), std::slice::from_ref(&device), &run, OPTIONS)
            .expect("trains");
    assert_eq!(summary.steps, 3);
    assert!(summary.final_loss.is_finite());
    let report = evaluate_ssl(&trainer, &run, Some(summary.wall_seconds)).expect("evaluates");
    write_loss_svg(&run).expect("svg");
    write_ssl_report(&run).expect("report");
    for file in [
        "config.toml",
        "train_log.jsonl",
        "metrics.json",
        "retrieval.png",
        "views.png",
        "loss.svg",
        "environment.json",
        "report.md",
    ] {
        assert!(run.file(file).exists(), "missing {file}");
    }
    let checkpoint = latest_checkpoint(&run.checkpoints())
        .expect("readable")
        .expect("a checkpoint");
    for part in ["online", "target", "probe", "optimizer", "probe_optimizer"] {
        assert!(checkpoint.join(format!("{part}.bpk")).exists(), "{part}");
    }
    let log = std::fs::read_to_string(run.train_log()).expect("log");
    for name in [
        "\"loss\"",
        "\"learning_rate\"",
        "\"momentum\"",
        "\"probe_accuracy\"",
        "\"kernel_width\"",
        "\"embedding_effective_rank\"",
        "\"embedding_uniformity\"",
        "\"embedding_alignment\"",
        "\"knn_accuracy\"",
    ] {
        assert!(log.contains(name), "log lacks {name}:\n{log}");
    }
    assert_eq!(report.step, 3);
    assert_eq!(report.num_classes, 4);
    assert!((0.0..=1.0).contains(&report.knn.accuracy));
    assert!((0.0..=1.0).contains(&report.linear_probe.test_accuracy));
    assert_eq!(report.knn.bank_size, 24);
    assert_eq!(report.knn.num_queries, 12);
    // Procedural data: one kNN readout per 3DShapes factor, and the class label's entry is the
    // headline kNN accuracy (same features, same label).
    let factors: Vec<&str> = report
        .factor_knn
        .iter()
        .map(|f| f.factor.as_str())
        .collect();
    assert_eq!(
        factors,
        [
            "floor_hue",
            "wall_hue",
            "object_hue",
            "scale",
            "shape",
            "orientation"
        ]
    );
    for f in &report.factor_knn {
        assert!((0.0..=1.0).contains(&f.knn_accuracy), "{f:?}");
        assert!((0.0..=1.0).contains(&f.untrained_knn_accuracy), "{f:?}");
        assert!(f.chance_level > 0.0 && f.chance_level <= 1.0, "{f:?}");
    }
    let shape = &report.factor_knn[4];
    assert!((shape.knn_accuracy - report.knn.accuracy).abs() < 1e-12);
    assert!((shape.untrained_knn_accuracy - report.untrained_knn_accuracy).abs() < 1e-12);
    assert!((shape.chance_level - report.chance_level).abs() < 1e-12);
    let md = std::fs::read_to_string(run.file("report.md")).expect("report");
    assert!(
        md.contains("kNN accuracy") && md.contains("retrieval.png"),
        "{md}"
    );
    // retrieval.png: 3 queries × (query + 8 neighbours) of 16 px with 2 px separators.
    let png = image::open(run.file("retrieval.png")).expect("png");
    assert_eq!(
        (png.width(), png.height()),
        (9 * 16 + 8 * 2, 3 * 16 + 2 * 2)
    );
}

#[test]
fn a_resumed_run_reaches_the_parameters_of_an_uninterrupted_one() {
    let device = device();
    let config = tiny_config(4);
    let data = tiny_data(&config);
    let dir = tempfile::tempdir().expect("tempdir");
    let run = RunDir::new(dir.path());
    let mut uninterrupted =
        SslTrainer::with_data(config.clone(), &device, Arc::clone(&data)).expect("builds");
    train_loop(&mut uninterrupted, &run, OPTIONS).expect("trains");
    // Drop the step-4 checkpoint so that `latest` names step 2, as after a kill at step 3.
    std::fs::remove_dir_all(run.checkpoints().join("step-00000004")).expect("removes");
    std::fs::write(run.checkpoints().join("latest"), "step-00000002").expect("points");
    let mut resumed = SslTrainer::with_data(config, &device, data).expect("builds");
    let checkpoint = latest_checkpoint(&run.checkpoints())
        .expect("readable")
        .expect("exists");
    resumed.restore(&checkpoint).expect("restores");
    assert_eq!(resumed.step(), 2);
    train_loop(&mut resumed, &run, OPTIONS).expect("resumes");
    assert_eq!(resumed.step(), 4);
    assert_same(
        "online backbone",
        &resumed.online().backbone,
        &uninterrupted.online().backbone,
    );
    assert_same(
        "online projector",
        &resumed.online().projector,
        &uninterrupted.online().projector,
    );
    assert_same(
        "target",
        resumed.target().expect("target"),
        uninterrupted.target().expect("target"),
    );
    assert_same("probe", resumed.probe(), uninterrupted.probe());
    // The log holds each step once.
    let log = std::fs::read_to_string(run.train_log()).expect("log");
    let loss_lines = log.lines().filter(|l| l.contains("\"loss\"")).count();
    assert_eq!(loss_lines, 4, "{log}");
}

#[test]
fn the_target_equals_the_online_network_at_step_0_and_lags_it_after_steps() {
    let device = device();
    let config = tiny_config(3);
    let data = tiny_data(&config);
    let mut trainer = SslTrainer::with_data(config, &device, data).expect("builds");
    let online = values(trainer.online());
    assert_eq!(values(trainer.target().expect("MVEB has a target")), online);
    for step in 0..2 {
        let (views, labels) = trainer.batch(step).expect("batch");
        assert_eq!(views.len(), 4, "2 global + 2 local views");
        trainer
            .train_step(step, &views, &labels, false)
            .expect("steps");
    }
    let online_after = values(trainer.online());
    let target_after = values(trainer.target().expect("target"));
    assert_ne!(online_after, online, "the online network trained");
    assert_ne!(
        target_after, online_after,
        "the target lags the online network"
    );
    assert_ne!(
        target_after, online,
        "the target moved towards the online network"
    );
}

/// A method without a target network (SimSiam) trains on the views the configuration asks
/// for: the two global views alone, or with the local crops (issue #19: every method takes
/// the same local crops when they are configured).
#[test]
fn methods_without_target_train_on_the_configured_views() {
    let device = device();
    for local_views in [0, 2] {
        let mut config = tiny_config(2);
        config.augmentation.num_local_views = local_views;
        config.objective = SslObjectiveConfig::SimSiam(Default::default());
        config.network.projector = MlpHeadConfig::simsiam_projector(32, 32);
        config.network.predictor = Some(MlpHeadConfig::predictor(32, 8));
        let data = tiny_data(&config);
        let mut trainer = SslTrainer::with_data(config, &device, data).expect("builds");
        assert!(trainer.target().is_none());
        let (views, labels) = trainer.batch(0).expect("batch");
        assert_eq!(views.len(), 2 + local_views);
        let report = trainer.train_step(0, &views, &labels, true).expect("steps");
        assert!(report.term("momentum").is_none());
        assert!(report.embeddings.is_some());
        assert!(report.terms.iter().all(|(_, v)| v.is_finite()));
    }
}

#[test]
fn batches_depend_only_on_seed_and_step() {
    let config = tiny_config(3);
    let data = tiny_data(&config);
    let device = device();
    let a = SslTrainer::with_data(config.clone(), &device, Arc::clone(&data)).expect("builds");
    let b = SslTrainer::with_data(config, &device, data).expect("builds");
    let (views_a, labels_a) = a.batch(2).expect("batch");
    let (views_b, labels_b) = b.batch(2).expect("batch");
    assert_eq!(labels_a, labels_b);
    assert_eq!(views_a, views_b);
    let (views_c, _) = a.batch(1).expect("batch");
    assert_ne!(views_a[0], views_c[0]);
}
