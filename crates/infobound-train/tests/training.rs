//! End-to-end behaviour of the training loop on tiny runs: logging, checkpoints, resume
//! reproducibility, refusal to overwrite, evaluation outputs and config presets.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use infobound_models::ObjectiveConfig;
use infobound_models::objectives::FactorVaeConfig;
use infobound_train::{
    EvalConfig, RunDir, TrainConfig, TrainError, TrainOptions, evaluate, latest_checkpoint,
    train_run, write_loss_svg, write_report,
};

fn tiny(objective: Option<ObjectiveConfig>) -> TrainConfig {
    let mut config = TrainConfig::preset("quickstart").unwrap();
    config.batch_size = 8;
    config.steps = 6;
    config.log_every = 2;
    config.checkpoint_every = 2;
    if let Some(objective) = objective {
        config.objective = objective;
    }
    config.eval = EvalConfig {
        num_train: 64,
        num_test: 32,
        factor_vae_score: true,
        factor_vae_train_votes: 20,
        factor_vae_eval_votes: 10,
        vendi_samples: 64,
        batch_size: 32,
        seed: 1,
        ..EvalConfig::default()
    };
    config
}

fn options(resume: bool) -> TrainOptions {
    TrainOptions {
        resume,
        progress: false,
    }
}

/// Every parameter value of the newest checkpoint's VAE, in visiting order.
fn checkpoint_values(run: &RunDir) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0
                .extend(param.val().into_data().try_to_vec::<f32>().unwrap());
        }
    }
    let latest = latest_checkpoint(&run.checkpoints()).unwrap().unwrap();
    let config = run.load_config().unwrap();
    let vae = config
        .model
        .init(&Device::flex())
        .unwrap()
        .load_file(latest.join("vae.bpk"));
    let mut collect = Collect(Vec::new());
    vae.visit(&mut collect);
    collect.0
}

#[test]
fn resumed_run_reaches_the_uninterrupted_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let whole = RunDir::new(dir.path().join("whole"));
    train_run(tiny(None), &device, &whole, options(false)).unwrap();

    let split = RunDir::new(dir.path().join("split"));
    let mut first_half = tiny(None);
    first_half.steps = 4;
    train_run(first_half, &device, &split, options(false)).unwrap();
    // The resumed run reads config.toml, so extend its step budget there as `--steps` would.
    let (_, summary) = train_run(tiny(None), &device, &split, options(true)).unwrap();
    assert_eq!(summary.steps, 6);
    let (a, b) = (checkpoint_values(&whole), checkpoint_values(&split));
    assert_eq!(a.len(), b.len());
    let max_diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(
        max_diff == 0.0,
        "resumed parameters differ by up to {max_diff}"
    );

    let log = std::fs::read_to_string(split.train_log()).unwrap();
    let steps: Vec<u64> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, vec![2, 4, 6], "each logged step exactly once");
}

#[test]
fn a_different_seed_gives_different_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let a = RunDir::new(dir.path().join("a"));
    let b = RunDir::new(dir.path().join("b"));
    train_run(tiny(None), &device, &a, options(false)).unwrap();
    let mut other = tiny(None);
    other.seed = 1;
    train_run(other, &device, &b, options(false)).unwrap();
    assert!(checkpoint_values(&a) != checkpoint_values(&b));
}

#[test]
fn a_finished_run_is_never_overwritten_and_resume_needs_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let run = RunDir::new(dir.path().join("run"));
    train_run(tiny(None), &device, &run, options(false)).unwrap();
    assert!(matches!(
        train_run(tiny(None), &device, &run, options(false)),
        Err(TrainError::RunDir { .. })
    ));
    let empty = RunDir::new(dir.path().join("empty"));
    assert!(matches!(
        train_run(tiny(None), &device, &empty, options(true)),
        Err(TrainError::RunDir { .. })
    ));
}

#[test]
fn factor_vae_trains_and_the_run_folder_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let run = RunDir::new(dir.path().join("fvae"));
    let objective = ObjectiveConfig::FactorVae(FactorVaeConfig {
        discriminator_hidden: 32,
        discriminator_layers: 2,
        ..FactorVaeConfig::default()
    });
    let config = tiny(Some(objective));
    let (trainer, _) = train_run(config.clone(), &device, &run, options(false)).unwrap();
    let latest = latest_checkpoint(&run.checkpoints()).unwrap().unwrap();
    assert!(latest.join("discriminator.bpk").exists());
    let report = evaluate(
        trainer.vae(),
        None,
        trainer.dataset().as_ref(),
        &config,
        trainer.step(),
        &device,
        &run,
    )
    .unwrap();
    for name in [
        "mig",
        "sap_discrete",
        "dci.disentanglement",
        "snc.test",
        "modularity",
    ] {
        let value = report.headline[name];
        assert!((0.0..=1.0).contains(&value), "{name} = {value}");
    }
    assert_eq!(report.metrics.len(), config.eval.metrics.len());
    assert!(report.vendi_aggregate_posterior.score >= 1.0);
    assert!(report.vendi_prior_samples.score >= 1.0);
    write_loss_svg(&run).unwrap();
    write_report(&run).unwrap();
    for file in [
        "config.toml",
        "train_log.jsonl",
        "metrics.json",
        "reconstructions.png",
        "traversals.png",
        "samples.png",
        "loss.svg",
        "report.md",
    ] {
        assert!(run.file(file).exists(), "{file} missing");
    }
    let checkpoints: Vec<_> = std::fs::read_dir(run.checkpoints())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("step-"))
        .collect();
    assert_eq!(
        checkpoints.len(),
        2,
        "only the two newest checkpoints are kept"
    );
}

#[test]
fn every_preset_parses_validates_and_round_trips() {
    for name in TrainConfig::preset_names() {
        let config = TrainConfig::preset(name).unwrap();
        config.validate().unwrap();
        assert_eq!(config.name, name);
        let again = TrainConfig::from_toml(&config.to_toml().unwrap()).unwrap();
        assert_eq!(config, again, "{name}");
    }
    assert!(TrainConfig::preset("nope").is_err());
    assert!(
        TrainConfig::from_toml("batch_size = 1")
            .unwrap()
            .validate()
            .is_err()
    );
    assert!(TrainConfig::from_toml("unknown_key = 3").is_err());
}

/// A configuration whose Adam step is plain gradient descent at rate lr / ε = 1e-5 (ε = 1e6 ≫
/// √v̂, for gradients far below 1e6): Adam's
/// usual step, lr · m̂ / (√v̂ + ε) with a tiny ε, is ±lr for every gradient entry, so entries
/// that are zero up to rounding would flip sign between two equal computations summed in
/// another order, and hide whether the gradients agree.
fn linear_adam(objective: Option<ObjectiveConfig>) -> TrainConfig {
    let mut config = tiny(objective);
    config.optimizer.learning_rate = 10.0;
    config.optimizer.epsilon = 1e6;
    config.gradient_skip = None;
    config
}

/// β-VAE's loss is a batch mean of per-image terms, so two shards of four images whose
/// gradients are averaged (`data_parallel.replicas = 2`, one after the other in this process;
/// the same as two MPI ranks) take the step the whole batch of eight takes — up to the order of
/// float additions.
#[test]
fn vae_replicas_of_a_per_image_objective_take_the_whole_batch_step() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let beta_vae = Some(ObjectiveConfig::BetaVae(Default::default()));
    let whole = RunDir::new(dir.path().join("whole"));
    train_run(
        linear_adam(beta_vae.clone()),
        &device,
        &whole,
        options(false),
    )
    .unwrap();
    let sharded = RunDir::new(dir.path().join("sharded"));
    let mut config = linear_adam(beta_vae);
    config.data_parallel.replicas = 2;
    train_run(config, &device, &sharded, options(false)).unwrap();
    let (a, b) = (checkpoint_values(&whole), checkpoint_values(&sharded));
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    let max_diff = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        max_diff <= 1e-5 * scale,
        "replicas moved the parameters by {max_diff} (largest |w| {scale})"
    );
}

#[test]
fn vae_replicas_must_split_the_batch_into_shards_of_two() {
    let mut config = tiny(None);
    config.data_parallel.replicas = 3;
    assert!(matches!(config.validate(), Err(TrainError::Config(_))));
    config.data_parallel.replicas = 8;
    assert!(matches!(config.validate(), Err(TrainError::Config(_))));
    config.data_parallel.replicas = 4;
    config.validate().unwrap();
}
