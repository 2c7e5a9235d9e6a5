//! Which Burn backends infobound is compiled with, and how a user picks one at run time.
//!
//! Burn 0.22 dispatches to a backend through its runtime [`Device`]; cargo features only decide
//! which backends exist in the binary. This crate is the one place that names backends:
//! every other infobound crate takes a `&Device`.
//!
//! | feature | backend | notes |
//! |---|---|---|
//! | `flex` (default) | pure-Rust CPU | fastest CPU backend of Burn 0.22 |
//! | `ndarray` | ndarray CPU | deprecated upstream; its `conv_transpose2d` is a naive loop |
//! | `wgpu` | Vulkan / Metal / DX12 GPUs | `CUBECL_WGPU_DEFAULT_DEVICE=Cpu` picks a CPU adapter (lavapipe) |
//! | `cuda` | NVIDIA GPUs through CubeCL | |
//!
//! ```
//! use infobound_backend::{BackendSpec, select_device};
//! let spec: BackendSpec = "flex".parse().unwrap();
//! let device = select_device(&spec).unwrap().autodiff();
//! assert!(device.is_autodiff());
//! ```

use std::fmt;
use std::str::FromStr;

pub use burn::tensor::Device;

/// mimalloc's `mi_option_purge_delay`: position 15 of `mi_option_e` in both the v2 and the v3
/// `mimalloc.h` that libmimalloc-sys 0.1.49 builds; the Rust binding does not name it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps the memory a process frees for its own reuse instead of handing it back to the OS
/// (mimalloc's `purge_delay = -1`), unless `MIMALLOC_PURGE_DELAY` is set, which then decides.
///
/// Why: a CPU training step allocates and frees the same large activation buffers every step.
/// With mimalloc's default (purge 10 ms after a free) the OS takes those pages back, and the
/// next step faults them in again and the kernel zero-fills them: `clear_page_erms` was 26 % of
/// the ResNet-18 SSL step's profile, and keeping the memory made that step 23 % faster
/// (docs/benchmarks.md). The cost is that the resident size stays at its peak. Call it at the
/// start of `main` in a binary whose global allocator is `mimalloc::MiMalloc`; elsewhere it
/// changes nothing.
#[allow(unsafe_code)]
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: `mi_option_set` stores one integer in mimalloc's option table; the option is a
    // valid index of that table and -1 is a documented value ("no purging at all").
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

/// Environment variable the CLI reads when `--device` is not given.
pub const DEVICE_ENV_VAR: &str = "INFOBOUND_DEVICE";

/// Errors of backend selection.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The name is not one of `flex`, `ndarray`, `wgpu`, `cuda`.
    #[error(
        "unknown device `{0}`: expected flex, ndarray, wgpu[:cpu|:discrete:N|:integrated:N] or cuda[:N]"
    )]
    Unknown(String),
    /// The backend exists but this binary was built without its cargo feature.
    #[error(
        "the {backend} backend is not compiled into this build; rebuild with `--features {backend}` \
         (e.g. `cargo run -p infobound-cli --features {backend} -- ...`)"
    )]
    NotCompiled {
        /// Backend name, which is also the cargo feature that enables it.
        backend: &'static str,
    },
    /// The backend is compiled in but failed to initialise (no GPU adapter, no driver, ...).
    #[error("the {backend} backend did not initialise: {reason}")]
    Unavailable {
        /// Backend name.
        backend: &'static str,
        /// What went wrong.
        reason: String,
    },
}

/// The backends infobound knows about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Pure-Rust CPU backend (`burn-flex`).
    Flex,
    /// ndarray CPU backend (deprecated upstream).
    Ndarray,
    /// wgpu (Vulkan / Metal / DX12).
    Wgpu,
    /// CUDA through CubeCL.
    Cuda,
}

impl BackendKind {
    /// Every backend, in the order `infobound devices` lists them.
    pub const ALL: [BackendKind; 4] = [Self::Flex, Self::Ndarray, Self::Wgpu, Self::Cuda];

    /// Lower-case name, equal to the cargo feature that compiles it in.
    pub fn name(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::Ndarray => "ndarray",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }

    /// Whether this binary was built with the backend's feature.
    pub fn is_compiled(self) -> bool {
        match self {
            Self::Flex => cfg!(feature = "flex"),
            Self::Ndarray => cfg!(feature = "ndarray"),
            Self::Wgpu => cfg!(feature = "wgpu"),
            Self::Cuda => cfg!(feature = "cuda"),
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which adapter a wgpu device should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WgpuAdapter {
    /// The best adapter wgpu finds (honours `CUBECL_WGPU_DEFAULT_DEVICE`).
    #[default]
    Default,
    /// A CPU adapter (Mesa lavapipe): correct but slow, for smoke tests.
    Cpu,
    /// The N-th discrete GPU.
    Discrete(usize),
    /// The N-th integrated GPU.
    Integrated(usize),
}

/// A parsed `--device` value: a backend plus an optional index or adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendSpec {
    /// Backend.
    pub kind: BackendKind,
    /// GPU index for `cuda:N`.
    pub index: usize,
    /// Adapter for `wgpu[:...]`.
    pub adapter: WgpuAdapter,
}

impl BackendSpec {
    /// The default spec for a backend (index 0, default adapter).
    pub fn new(kind: BackendKind) -> Self {
        Self {
            kind,
            index: 0,
            adapter: WgpuAdapter::Default,
        }
    }
}

impl Default for BackendSpec {
    fn default() -> Self {
        Self::new(BackendKind::Flex)
    }
}

impl fmt::Display for BackendSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, self.adapter) {
            (BackendKind::Cuda, _) => write!(f, "cuda:{}", self.index),
            (BackendKind::Wgpu, WgpuAdapter::Default) => f.write_str("wgpu"),
            (BackendKind::Wgpu, WgpuAdapter::Cpu) => f.write_str("wgpu:cpu"),
            (BackendKind::Wgpu, WgpuAdapter::Discrete(i)) => write!(f, "wgpu:discrete:{i}"),
            (BackendKind::Wgpu, WgpuAdapter::Integrated(i)) => write!(f, "wgpu:integrated:{i}"),
            (kind, _) => f.write_str(kind.name()),
        }
    }
}

impl FromStr for BackendSpec {
    type Err = BackendError;

    /// Parses `flex`, `ndarray`, `cuda`, `cuda:N`, `wgpu`, `wgpu:cpu`, `wgpu:discrete:N`,
    /// `wgpu:integrated:N` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split(':').collect();
        let unknown = || BackendError::Unknown(s.to_string());
        let index = |p: &str| p.parse::<usize>().map_err(|_| unknown());
        let spec = match parts.as_slice() {
            ["flex"] => Self::new(BackendKind::Flex),
            ["ndarray"] => Self::new(BackendKind::Ndarray),
            ["cuda"] => Self::new(BackendKind::Cuda),
            ["cuda", i] => Self {
                index: index(i)?,
                ..Self::new(BackendKind::Cuda)
            },
            ["wgpu"] => Self::new(BackendKind::Wgpu),
            ["wgpu", "cpu"] => Self {
                adapter: WgpuAdapter::Cpu,
                ..Self::new(BackendKind::Wgpu)
            },
            ["wgpu", "discrete", i] => Self {
                adapter: WgpuAdapter::Discrete(index(i)?),
                ..Self::new(BackendKind::Wgpu)
            },
            ["wgpu", "integrated", i] => Self {
                adapter: WgpuAdapter::Integrated(index(i)?),
                ..Self::new(BackendKind::Wgpu)
            },
            _ => return Err(unknown()),
        };
        Ok(spec)
    }
}

/// Backends compiled into this build.
pub fn compiled_backends() -> Vec<BackendKind> {
    BackendKind::ALL
        .into_iter()
        .filter(|k| k.is_compiled())
        .collect()
}

/// The (non-autodiff) device for `spec`; call `.autodiff()` on it for training.
///
/// Fails with [`BackendError::NotCompiled`] naming the cargo feature when the backend is absent.
/// Creating a GPU device is lazy: use [`probe_device`] to check that it really initialises.
pub fn select_device(spec: &BackendSpec) -> Result<Device, BackendError> {
    if !spec.kind.is_compiled() {
        return Err(BackendError::NotCompiled {
            backend: spec.kind.name(),
        });
    }
    Ok(make_device(spec))
}

#[cfg(feature = "flex")]
fn flex_device() -> Device {
    Device::flex()
}

#[cfg(not(feature = "flex"))]
fn flex_device() -> Device {
    unreachable!("select_device checks that flex is compiled in")
}

// The deprecation of burn-ndarray is acknowledged here, in the one place that constructs it.
#[cfg(feature = "ndarray")]
#[allow(deprecated)]
fn ndarray_device() -> Device {
    Device::ndarray()
}

#[cfg(not(feature = "ndarray"))]
fn ndarray_device() -> Device {
    unreachable!("select_device checks that ndarray is compiled in")
}

#[cfg(feature = "wgpu")]
fn wgpu_device(adapter: WgpuAdapter) -> Device {
    use burn::tensor::DeviceKind;
    let kind = match adapter {
        WgpuAdapter::Default => DeviceKind::DefaultDevice,
        WgpuAdapter::Cpu => DeviceKind::Cpu,
        WgpuAdapter::Discrete(i) => DeviceKind::DiscreteGpu(i),
        WgpuAdapter::Integrated(i) => DeviceKind::IntegratedGpu(i),
    };
    Device::wgpu(kind)
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device(_adapter: WgpuAdapter) -> Device {
    unreachable!("select_device checks that wgpu is compiled in")
}

#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Device {
    Device::cuda(index)
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_index: usize) -> Device {
    unreachable!("select_device checks that cuda is compiled in")
}

fn make_device(spec: &BackendSpec) -> Device {
    match spec.kind {
        BackendKind::Flex => flex_device(),
        BackendKind::Ndarray => ndarray_device(),
        BackendKind::Wgpu => wgpu_device(spec.adapter),
        BackendKind::Cuda => cuda_device(spec.index),
    }
}

/// Creates the device for `spec` and runs a small matrix product on it, turning an
/// initialisation panic inside the backend (no adapter, no driver) into
/// [`BackendError::Unavailable`].
pub fn probe_device(spec: &BackendSpec) -> Result<Device, BackendError> {
    use burn::tensor::Tensor;
    let device = select_device(spec)?;
    let probe = device.clone();
    let outcome = std::panic::catch_unwind(move || {
        let a = Tensor::<2>::ones([8, 8], &probe);
        let s: f32 = a.clone().matmul(a).sum().into_scalar();
        s
    });
    match outcome {
        Ok(s) if (s - 512.0).abs() < 1e-3 => Ok(device),
        Ok(s) => Err(BackendError::Unavailable {
            backend: spec.kind.name(),
            reason: format!("an 8x8 ones matmul summed to {s}, expected 512"),
        }),
        Err(payload) => {
            let reason = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the backend panicked while initialising".into());
            Err(BackendError::Unavailable {
                backend: spec.kind.name(),
                reason,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        assert_eq!(
            "flex".parse::<BackendSpec>().unwrap().kind,
            BackendKind::Flex
        );
        assert_eq!("CUDA:3".parse::<BackendSpec>().unwrap().index, 3);
        assert_eq!(
            "wgpu:discrete:1".parse::<BackendSpec>().unwrap().adapter,
            WgpuAdapter::Discrete(1)
        );
        assert_eq!(
            "wgpu:cpu".parse::<BackendSpec>().unwrap().adapter,
            WgpuAdapter::Cpu
        );
        for s in [
            "flex",
            "ndarray",
            "cuda:2",
            "wgpu",
            "wgpu:cpu",
            "wgpu:integrated:0",
        ] {
            assert_eq!(s.parse::<BackendSpec>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_unknown_names() {
        for s in ["tpu", "cuda:x", "wgpu:gpu", "", "flex:1"] {
            assert!(matches!(
                s.parse::<BackendSpec>(),
                Err(BackendError::Unknown(_))
            ));
        }
    }

    #[test]
    fn missing_features_name_the_feature() {
        for kind in BackendKind::ALL {
            let result = select_device(&BackendSpec::new(kind));
            if kind.is_compiled() {
                assert!(result.is_ok());
            } else {
                let message = result.unwrap_err().to_string();
                assert!(message.contains(&format!("--features {}", kind.name())));
            }
        }
    }

    /// GPU code-path smoke test: on a machine without a GPU it runs on Mesa's lavapipe
    /// (`CUBECL_WGPU_DEFAULT_DEVICE=Cpu`, set by `cargo xtask ci --full`). A missing adapter is
    /// an error only when `INFOBOUND_EXPECT_WGPU=1`, so builds on machines without Vulkan pass.
    #[cfg(all(feature = "wgpu", feature = "flex"))]
    #[test]
    fn wgpu_matches_flex_on_a_convolution() {
        use burn::tensor::module::conv2d;
        use burn::tensor::ops::ConvOptions;
        use burn::tensor::{Tensor, TensorData};
        let spec: BackendSpec = "wgpu:cpu".parse().unwrap();
        let gpu = match probe_device(&spec) {
            Ok(device) => device,
            Err(e) if std::env::var("INFOBOUND_EXPECT_WGPU").as_deref() != Ok("1") => {
                eprintln!("no wgpu adapter here ({e}); set INFOBOUND_EXPECT_WGPU=1 to require one");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let cpu = Device::flex();
        let x: Vec<f32> = (0..2 * 3 * 8 * 8)
            .map(|i| ((i * 37 % 101) as f32) / 101.0)
            .collect();
        let w: Vec<f32> = (0..4 * 3 * 3 * 3)
            .map(|i| ((i * 53 % 97) as f32) / 97.0 - 0.5)
            .collect();
        let run = |device: &Device| -> Vec<f32> {
            let x = Tensor::<4>::from_data(TensorData::new(x.clone(), [2, 3, 8, 8]), device);
            let w = Tensor::<4>::from_data(TensorData::new(w.clone(), [4, 3, 3, 3]), device);
            let options = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
            conv2d(x, w, None, options)
                .into_data()
                .try_to_vec()
                .unwrap()
        };
        let (a, b) = (run(&gpu), run(&cpu));
        assert_eq!(a.len(), b.len());
        for (u, v) in a.iter().zip(&b) {
            assert!((u - v).abs() <= 1e-4 * (1.0 + v.abs()), "{u} vs {v}");
        }
    }

    #[cfg(feature = "flex")]
    #[test]
    fn flex_probes_successfully() {
        let device = probe_device(&BackendSpec::new(BackendKind::Flex)).unwrap();
        assert!(!device.is_autodiff());
        assert!(compiled_backends().contains(&BackendKind::Flex));
    }
}

/// The crate README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctest;
