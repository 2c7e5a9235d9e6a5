//! Fast CPU convolutions and batch norm for Burn 0.22's flex backend.
//!
//! Flex has no convolution backward kernels of its own: Burn's generic formula computes each
//! weight gradient as a convolution whose kernel is the output gradient, plus layout copies,
//! which dominates a conv-VAE training step on CPU. This crate computes forward and weight
//! gradient of a 2-D convolution as im2col + one GEMM per batch block ([`cpu`]) — or, with at
//! least 16 channels, as Winograd's minimal filtering: F(2×2, 3×3) or F(4×4, 3×3) for 3×3
//! stride-1 "same" convolutions, F(2×2, 2×2) on the polyphase components of 4×4 stride-2 ones —
//! and plugs them into Burn's autodiff graph with a hand-written backward ([`conv2d`],
//! [`conv_transpose2d`]). Which of the two runs is the caller's [`ConvAlgorithm`], passed with
//! each call ([`conv2d_with`], [`FastConv::forward_fast_with`]; the default
//! [`ConvAlgorithm::Auto`] takes Winograd where it applies): there is no global switch.
//! Training-mode batch norm gets the same treatment ([`batch_norm_train`]: two passes forward
//! and two backward instead of Burn's generic composition of reductions and broadcasts), and so
//! does a VAE decoder's per-sample pixel likelihood ([`pixel_negative_log_likelihood`]: one
//! pass each way instead of five to eight element-wise ops). [`relu`] and [`add_relu`] run
//! both their passes on the rayon pool, where flex's element-wise ops run on the calling
//! thread alone, and [`linear`] runs its three products through faer's GEMM on the pool.
//! [`gaussian_mixture_log_densities`] computes the terms of the total-correlation estimators
//! of β-TCVAE (log q(z_i), log Π_k q(z_ik), log q(z_i|x_i)) by streaming over the minibatch's
//! posteriors, forward and backward, without the `B × B × K` array of log-densities (`f32`
//! and `f64`).
//! Operands on any other backend, dtype or with `groups > 1` take Burn's generic ops, so
//! calling these functions is always the same mathematical operation.
//!
//! [`FastConv`] gives `burn::nn::conv::Conv2d` and `ConvTranspose2d` a `forward_fast` that uses
//! them, and [`FastLinear`] and [`FastBatchNorm`] do the same for `burn::nn::Linear` and
//! `burn::nn::BatchNorm`, while the modules, their parameters and their saved records stay
//! Burn's own:
//!
//! ```
//! use burn::nn::PaddingConfig2d;
//! use burn::nn::conv::Conv2dConfig;
//! use burn::tensor::{Device, Distribution, Tensor};
//! use infobound_kernels::FastConv;
//!
//! let device = Device::flex().autodiff();
//! let conv = Conv2dConfig::new([1, 32], [4, 4])
//!     .with_stride([2, 2])
//!     .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
//!     .init(&device);
//! let x = Tensor::<4>::random([8, 1, 64, 64], Distribution::Default, &device);
//! let y = conv.forward_fast(x)?; // same value and gradients as `conv.forward(x)`
//! assert_eq!(y.dims(), [8, 32, 32, 32]);
//! let grads = y.sum().backward();
//! assert!(conv.weight.val().grad(&grads).is_some());
//! # Ok::<(), infobound_kernels::KernelError>(())
//! ```

mod activation;
mod batch_norm;
pub mod cpu;
mod error;
mod likelihood;
mod linear;
mod mixture;
mod modules;
mod ops;

/// The README's example, compiled and run as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;

pub use activation::{add_relu, relu};
pub use batch_norm::batch_norm_train;
pub use cpu::ConvAlgorithm;
pub use error::KernelError;
pub use likelihood::{PixelLikelihood, pixel_negative_log_likelihood};
pub use linear::linear;
pub use mixture::{MixtureLogDensities, MixtureLogWeights, gaussian_mixture_log_densities};
pub use modules::{FastBatchNorm, FastConv, FastLinear};
pub use ops::{conv_transpose2d, conv_transpose2d_with, conv2d, conv2d_with};
