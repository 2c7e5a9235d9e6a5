//! Both directions against Python (`tests/python/roundtrip.py`): our export read by the
//! `safetensors` package and run through a NumPy forward pass of the same network; a state dict
//! written in Python with PyTorch's key names imported here. Outputs agree to 1e-5.
//!
//! The Python needs `numpy` and `safetensors`: `$INFOBOUND_WEIGHTS_PYTHON`, else the venv
//! `cargo xtask python` keeps in the target directory (`<target>/python-venv`), else `python3`.
//! Without one the tests are skipped with a message, unless `INFOBOUND_REQUIRE_WEIGHTS_PYTHON`
//! is set (as `cargo xtask python` / `ci` do), where they fail. With
//! `$INFOBOUND_WEIGHTS_TORCH_PYTHON` (a Python with `torch`, `numpy` and `safetensors`) the same
//! script also loads the networks into `torch.nn` modules with `load_state_dict(strict=True)`.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::module::{Module, Param};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Device, Distribution, Tensor};
use infobound_models::ssl::BackboneConfig;
use infobound_models::{LayerImplementation, VaeConfig};
use infobound_weights::{WeightsSource, export_backbone, export_vae, import_backbone, import_vae};

const TOLERANCE: f32 = 1e-5;
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/roundtrip.py");

/// Inputs and outputs of the VAE exchanged with the script.
#[derive(Module, Debug)]
struct VaeProbe {
    x: Param<Tensor<4>>,
    z: Param<Tensor<2>>,
    mu: Param<Tensor<2>>,
    logvar: Param<Tensor<2>>,
    logits: Param<Tensor<4>>,
}

/// Inputs and outputs of the backbone exchanged with the script.
#[derive(Module, Debug)]
struct ResnetProbe {
    x: Param<Tensor<4>>,
    features: Param<Tensor<2>>,
}

fn param<const D: usize>(t: Tensor<D>) -> Param<Tensor<D>> {
    Param::from_tensor(t)
}

fn save<M: Module>(module: &M, path: &Path) {
    let mut store = SafetensorsStore::from_file(path).overwrite(true);
    module.save_into(&mut store).expect("probe written");
}

fn load<M: Module>(mut module: M, path: &Path) -> M {
    let mut store = SafetensorsStore::from_file(path);
    module.load_from(&mut store).expect("probe read");
    module
}

fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar()
}

fn python_with(candidates: impl IntoIterator<Item = PathBuf>, modules: &str) -> Option<PathBuf> {
    candidates.into_iter().find(|python| {
        Command::new(python)
            .args(["-c", &format!("import {modules}")])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// A Python with numpy and safetensors, or `None` (skip) where none is required.
fn python() -> Option<PathBuf> {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(Path::to_path_buf);
    let candidates = std::env::var_os("INFOBOUND_WEIGHTS_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain(target.map(|t| t.join("python-venv").join("bin").join("python")))
        .chain([PathBuf::from("python3")]);
    let found = python_with(candidates, "numpy, safetensors");
    if found.is_none() {
        assert!(
            std::env::var_os("INFOBOUND_REQUIRE_WEIGHTS_PYTHON").is_none(),
            "INFOBOUND_REQUIRE_WEIGHTS_PYTHON is set but no Python with numpy and safetensors \
             was found (INFOBOUND_WEIGHTS_PYTHON, <target>/python-venv, python3)"
        );
        eprintln!(
            "SKIPPED: no Python with numpy and safetensors (set INFOBOUND_WEIGHTS_PYTHON or run \
             `cargo xtask python`); set INFOBOUND_REQUIRE_WEIGHTS_PYTHON to make this a failure"
        );
    }
    found
}

/// `$INFOBOUND_WEIGHTS_TORCH_PYTHON` if it imports torch, numpy and safetensors.
fn torch_python() -> Option<PathBuf> {
    let found = python_with(
        std::env::var_os("INFOBOUND_WEIGHTS_TORCH_PYTHON").map(PathBuf::from),
        "torch, numpy, safetensors",
    );
    if found.is_none() {
        eprintln!(
            "SKIPPED: set INFOBOUND_WEIGHTS_TORCH_PYTHON to a Python with torch and safetensors"
        );
    }
    found
}

fn script(python: &Path, args: &[&str]) {
    let out = Command::new(python)
        .arg(SCRIPT)
        .args(args)
        .output()
        .expect("python runs");
    eprintln!(
        "{} {}: {}{}",
        python.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "roundtrip.py {} failed", args[0]);
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn vae_config() -> VaeConfig {
    VaeConfig {
        channels: 1,
        ..VaeConfig::default()
    }
}

fn resnet_config() -> BackboneConfig {
    BackboneConfig::ResNetCifar {
        layers: [2, 2, 2, 2],
        base_width: 4,
        in_channels: 3,
        zero_init_residual: false,
    }
}

/// Our VAE exported with its outputs on fixed inputs; `roundtrip.py check-vae` recomputes them.
fn export_vae_case(python: &Path, extra: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (weights, probe) = (
        dir.path().join("vae.safetensors"),
        dir.path().join("probe.safetensors"),
    );
    let device = Device::flex();
    device.seed(11);
    let vae = vae_config().init(&device).expect("valid");
    export_vae(&vae, &vae_config(), &weights).expect("export");
    let x = Tensor::<4>::random([3, 1, 64, 64], Distribution::Uniform(0.0, 1.0), &device);
    let z = Tensor::<2>::random([3, 10], Distribution::Normal(0.0, 1.0), &device);
    let (mu, logvar) = vae.encode(x.clone()).expect("fits");
    let logits = vae.decode_logits(z.clone()).expect("fits");
    save(
        &VaeProbe {
            x: param(x),
            z: param(z),
            mu: param(mu),
            logvar: param(logvar),
            logits: param(logits),
        },
        &probe,
    );
    let mut args = vec!["check-vae", s(&weights), s(&probe)];
    args.extend_from_slice(extra);
    script(python, &args);
}

/// Our backbone (batch norms with moved running statistics) exported with its features.
fn export_resnet_case(python: &Path, extra: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (weights, probe) = (
        dir.path().join("resnet.safetensors"),
        dir.path().join("probe.safetensors"),
    );
    let config = resnet_config();
    let train = Device::flex().autodiff();
    train.seed(12);
    let backbone = config
        .init(LayerImplementation::default(), &train)
        .expect("valid");
    for _ in 0..3 {
        let x = Tensor::<4>::random([8, 3, 32, 32], Distribution::Normal(0.5, 1.0), &train);
        backbone.forward(x).expect("fits");
    }
    let backbone = backbone.valid();
    export_backbone(&backbone, &config, &weights).expect("export");
    let x = Tensor::<4>::random(
        [3, 3, 32, 32],
        Distribution::Normal(0.0, 1.0),
        &Device::flex(),
    );
    let features = backbone.forward(x.clone()).expect("fits");
    save(
        &ResnetProbe {
            x: param(x),
            features: param(features),
        },
        &probe,
    );
    let mut args = vec!["check-resnet", s(&weights), s(&probe)];
    args.extend_from_slice(extra);
    script(python, &args);
}

/// A VAE state dict made in Python, imported here; our outputs against NumPy's.
fn import_vae_case(python: &Path, extra: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (weights, probe) = (
        dir.path().join("vae.safetensors"),
        dir.path().join("probe.safetensors"),
    );
    let mut args = vec![
        "make-vae",
        s(&weights),
        s(&probe),
        "--channels",
        "1",
        "--latent",
        "10",
        "--seed",
        "5",
    ];
    args.extend_from_slice(extra);
    script(python, &args);
    let device = Device::flex();
    for source in sources(&weights, extra) {
        let vae = import_vae(
            vae_config().init(&device).expect("valid"),
            &vae_config(),
            &source,
        )
        .expect("import");
        let zeros = VaeProbe {
            x: param(Tensor::zeros([3, 1, 64, 64], &device)),
            z: param(Tensor::zeros([3, 10], &device)),
            mu: param(Tensor::zeros([3, 10], &device)),
            logvar: param(Tensor::zeros([3, 10], &device)),
            logits: param(Tensor::zeros([3, 1, 64, 64], &device)),
        };
        let reference = load(zeros, &probe);
        let (mu, logvar) = vae.encode(reference.x.val()).expect("fits");
        let logits = vae.decode_logits(reference.z.val()).expect("fits");
        let diffs = [
            ("mu", max_abs_diff(mu, reference.mu.val())),
            ("logvar", max_abs_diff(logvar, reference.logvar.val())),
            ("logits", max_abs_diff(logits, reference.logits.val())),
        ];
        eprintln!(
            "imported VAE ({}) vs NumPy: {diffs:?}",
            source.path.display()
        );
        for (name, diff) in diffs {
            assert!(diff <= TOLERANCE, "{name}: max |difference| {diff}");
        }
    }
}

/// The safetensors file, and with `--torch` also the Lightning-style `.pt` checkpoint the script
/// writes beside it (read by burn-store's `PytorchStore` under `state_dict`, prefix `net.`).
fn sources(weights: &Path, extra: &[&str]) -> Vec<WeightsSource> {
    let mut sources = vec![WeightsSource::new(weights).expect("format")];
    if extra.contains(&"--torch") {
        sources.push(WeightsSource {
            prefix: "net.".into(),
            top_level_key: Some("state_dict".into()),
            ..WeightsSource::new(weights.with_extension("pt")).expect("format")
        });
    }
    sources
}

/// A ResNet state dict made in Python (with `num_batches_tracked`), imported here.
fn import_resnet_case(python: &Path, extra: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (weights, probe) = (
        dir.path().join("resnet.safetensors"),
        dir.path().join("probe.safetensors"),
    );
    let mut args = vec![
        "make-resnet",
        s(&weights),
        s(&probe),
        "--in-channels",
        "3",
        "--width",
        "4",
        "--layers",
        "2,2,2,2",
        "--seed",
        "6",
    ];
    args.extend_from_slice(extra);
    script(python, &args);
    let device = Device::flex();
    let config = resnet_config();
    for source in sources(&weights, extra) {
        let backbone = import_backbone(
            config
                .init(LayerImplementation::default(), &device)
                .expect("valid"),
            &config,
            &source,
        )
        .expect("import");
        let zeros = ResnetProbe {
            x: param(Tensor::zeros([3, 3, 32, 32], &device)),
            features: param(Tensor::zeros([3, 32], &device)),
        };
        let reference = load(zeros, &probe);
        let features = backbone.forward(reference.x.val()).expect("fits");
        let diff = max_abs_diff(features, reference.features.val());
        eprintln!(
            "imported ResNet ({}) vs NumPy: features {diff}",
            source.path.display()
        );
        assert!(diff <= TOLERANCE, "features: max |difference| {diff}");
    }
}

#[test]
fn exported_vae_matches_numpy() {
    if let Some(python) = python() {
        export_vae_case(&python, &[]);
    }
}

#[test]
fn exported_resnet_matches_numpy() {
    if let Some(python) = python() {
        export_resnet_case(&python, &[]);
    }
}

#[test]
fn vae_from_python_matches_numpy() {
    if let Some(python) = python() {
        import_vae_case(&python, &[]);
    }
}

#[test]
fn resnet_from_python_matches_numpy() {
    if let Some(python) = python() {
        import_resnet_case(&python, &[]);
    }
}

#[test]
fn torch_modules_load_strictly_and_agree() {
    if let Some(python) = torch_python() {
        export_vae_case(&python, &["--torch"]);
        export_resnet_case(&python, &["--torch"]);
        import_vae_case(&python, &["--torch"]);
        import_resnet_case(&python, &["--torch"]);
    }
}
