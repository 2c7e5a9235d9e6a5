//! The BYOL/MVEB target network: EMA of parameters only, momentum schedule, independent copy.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Distribution, Tensor};
use infobound_models::ssl::{
    BackboneConfig, MlpHead, MlpHeadConfig, SslNetworkConfig, cosine_momentum, ema_update,
};
use infobound_models::{LayerImplementation, ModelError};

fn device() -> Device {
    Device::flex().autodiff()
}

/// Every float tensor of a module with its field path, split into parameters and buffers
/// (batch-norm running statistics), read back independently of the code under test.
#[derive(Default)]
struct Snapshot {
    path: Vec<String>,
    parameters: Vec<(String, Vec<f32>)>,
    buffers: Vec<(String, Vec<f32>)>,
}

impl ModuleVisitor for Snapshot {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let name = self.path.join(".");
        let values = param.val().into_data().try_to_vec().unwrap();
        if name.ends_with("running_mean") || name.ends_with("running_var") {
            self.buffers.push((name, values));
        } else {
            self.parameters.push((name, values));
        }
    }
}

/// Reads through `valid()`, which folds pending running-statistic updates in: Burn's
/// `RunningState` shows an update only after the next forward pass or a `valid()`/`train()`.
fn snapshot<M: Module>(module: &M) -> Snapshot {
    let mut snapshot = Snapshot::default();
    module.valid().visit(&mut snapshot);
    snapshot
}

fn head(device: &Device) -> MlpHead {
    MlpHeadConfig::byol_projector(4, 6, 3).init(device).unwrap()
}

/// An online head whose running statistics have moved away from their initial values.
fn trained_online(device: &Device) -> MlpHead {
    let online = head(device);
    device.seed(11);
    let x = Tensor::<2>::random([8, 4], Distribution::Normal(2.0, 3.0), device);
    let _ = online.forward(x);
    online
}

#[test]
fn momentum_zero_copies_one_keeps_half_averages_parameters_only() {
    let device = device();
    let online = trained_online(&device);
    let target = head(&device).no_grad();
    let (on, tg) = (snapshot(&online), snapshot(&target));
    assert_eq!(on.parameters.len(), 5); // hidden W, BN γ and β, last W and b
    assert_eq!(on.buffers.len(), 2);
    assert_ne!(
        on.buffers, tg.buffers,
        "the forward pass moved the online statistics"
    );
    assert_ne!(on.parameters, tg.parameters);

    let copied = snapshot(&ema_update(target.clone(), &online, 0.0).unwrap());
    assert_eq!(copied.parameters, on.parameters);
    assert_eq!(copied.buffers, tg.buffers);

    let kept = snapshot(&ema_update(target.clone(), &online, 1.0).unwrap());
    assert_eq!(kept.parameters, tg.parameters);
    assert_eq!(kept.buffers, tg.buffers);

    let averaged = snapshot(&ema_update(target.clone(), &online, 0.5).unwrap());
    for ((name, avg), ((_, a), (_, b))) in averaged
        .parameters
        .iter()
        .zip(on.parameters.iter().zip(&tg.parameters))
    {
        for ((m, x), y) in avg.iter().zip(a).zip(b) {
            assert!((m - (x + y) / 2.0).abs() < 1e-6, "{name}: {m} vs {x}, {y}");
        }
    }
    assert_eq!(averaged.buffers, tg.buffers);
}

#[test]
fn updated_target_carries_no_gradient_path_to_the_online_network() {
    let device = device();
    let online = trained_online(&device);
    // A target that still requires gradients keeps that setting but gets leaf values.
    let target = ema_update(head(&device), &online, 0.9).unwrap();
    assert!(target.last.weight.val().is_require_grad());
    let frozen = ema_update(head(&device).no_grad(), &online, 0.9).unwrap();
    assert!(!frozen.last.weight.val().is_require_grad());

    let x = Tensor::<2>::random([8, 4], Distribution::Normal(0.0, 1.0), &device);
    let grads = target.forward(x).sum().backward();
    assert!(online.last.weight.val().grad(&grads).is_none());
    assert!(target.last.weight.val().grad(&grads).is_some());
}

#[test]
fn mismatched_modules_and_bad_momenta_are_errors() {
    let device = device();
    let online = head(&device);
    let wider = MlpHeadConfig::byol_projector(4, 7, 3)
        .init(&device)
        .unwrap();
    let deeper = MlpHeadConfig {
        num_layers: 3,
        ..MlpHeadConfig::byol_projector(4, 6, 3)
    }
    .init(&device)
    .unwrap();
    assert!(matches!(
        ema_update(wider, &online, 0.5),
        Err(ModelError::StructureMismatch(_))
    ));
    assert!(matches!(
        ema_update(deeper, &online, 0.5),
        Err(ModelError::StructureMismatch(_))
    ));
    for momentum in [-0.1, 1.1, f64::NAN] {
        assert!(matches!(
            ema_update(head(&device), &online, momentum),
            Err(ModelError::InvalidConfig(_))
        ));
    }
}

#[test]
fn cosine_momentum_rises_from_base_to_one() {
    let base = 0.996;
    assert_eq!(cosine_momentum(base, 0, 1000), base);
    assert!((cosine_momentum(base, 500, 1000) - (1.0 + base) / 2.0).abs() < 1e-15);
    assert_eq!(cosine_momentum(base, 1000, 1000), 1.0);
    assert_eq!(cosine_momentum(base, 5000, 1000), 1.0);
    assert_eq!(cosine_momentum(base, 0, 0), 1.0);
    let schedule: Vec<f64> = (0..=100).map(|t| cosine_momentum(base, t, 100)).collect();
    assert!(schedule.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn init_target_copies_parameters_and_owns_its_statistics() {
    let device = device();
    let config = SslNetworkConfig {
        backbone: BackboneConfig::narrow_resnet_cifar(2),
        projector: MlpHeadConfig::byol_projector(16, 8, 4),
        predictor: None,
        layers: LayerImplementation::default(),
        view_batching: infobound_models::ssl::ViewBatching::PerView,
    };
    let online = config.init(&device).unwrap();
    let target = config.init_target(&online, &device).unwrap();
    let (on, tg) = (snapshot(&online), snapshot(&target));
    assert_eq!(on.parameters, tg.parameters);
    assert!(!target.projector.last.weight.val().is_require_grad());

    device.seed(2);
    let x = Tensor::<4>::random([4, 3, 8, 8], Distribution::Normal(1.0, 1.0), &device);
    let online_out = online.project(online.features(x.clone()).expect("fits"));
    let target_out = target.project(target.features(x).expect("fits"));
    // Both use batch statistics (autodiff device, training flags on) …
    assert_eq!(
        online_out.into_data().try_to_vec::<f32>().unwrap(),
        target_out.into_data().try_to_vec::<f32>().unwrap()
    );
    // … and each updated only its own running averages, once.
    let (on_after, tg_after) = (snapshot(&online), snapshot(&target));
    assert_eq!(on_after.buffers, tg_after.buffers);
    assert_ne!(on_after.buffers, on.buffers);
    let shared = online.clone();
    let _ = shared.project(
        shared
            .features(Tensor::zeros([4, 3, 8, 8], &device))
            .expect("fits"),
    );
    assert_ne!(
        snapshot(&online).buffers,
        on_after.buffers,
        "clones share statistics"
    );
    assert_eq!(snapshot(&target).buffers, tg_after.buffers);
}
