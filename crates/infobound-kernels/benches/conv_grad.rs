//! This crate's convolution kernels against Burn's generic path on flex, on the Burgess conv
//! VAE's layer shapes (batch 64, k4 s2 p1): per-layer weight gradient (encoder conv2d and
//! decoder conv_transpose2d), per-layer conv2d forward and input gradient, per-layer
//! conv_transpose2d forward, and forward + backward of the whole conv stack (encoder then
//! decoder) through autodiff; plus one ResNet 3×3 stride-1 layer. Each `ours`/`burn` pair runs back to
//! back so their ratio is measured under the same machine load.
//!
//! `cargo bench -p infobound-kernels --profile dev`
// criterion_group! generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use infobound_kernels::cpu::{self, Conv2dGeometry};
use infobound_kernels::{ConvAlgorithm, FastConv};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 64;

fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

fn flex(shape: [usize; 4], seed: u64) -> (Vec<f32>, FlexTensor) {
    let values = random(shape.iter().product(), seed);
    let tensor = FlexTensor::from_data(TensorData::new(values.clone(), shape));
    (values, tensor)
}

/// One layer's geometry and random operands (input, weight, output gradient), as host slices
/// for this crate's kernels and as flex tensors for Burn's ops.
struct Layer {
    geometry: Conv2dGeometry,
    x: Vec<f32>,
    x_flex: FlexTensor,
    w: Vec<f32>,
    w_flex: FlexTensor,
    dy: Vec<f32>,
    dy_flex: FlexTensor,
}

impl Layer {
    fn new(
        geometry: Conv2dGeometry,
        x_shape: [usize; 4],
        w_shape: [usize; 4],
        dy_shape: [usize; 4],
    ) -> Self {
        let (x, x_flex) = flex(x_shape, 1);
        let (w, w_flex) = flex(w_shape, 2);
        let (dy, dy_flex) = flex(dy_shape, 3);
        Self {
            geometry,
            x,
            x_flex,
            w,
            w_flex,
            dy,
            dy_flex,
        }
    }

    /// An encoder convolution, 4×4 kernel, `c_in → c_out` on `side × side` maps.
    fn encoder(c_in: usize, c_out: usize, side: usize, options: &ConvOptions<2>) -> Self {
        let (x_shape, w_shape) = ([BATCH, c_in, side, side], [c_out, c_in, 4, 4]);
        let geometry = Conv2dGeometry::conv2d(x_shape, w_shape, options).expect("valid");
        Self::new(
            geometry,
            x_shape,
            w_shape,
            [BATCH, c_out, side / 2, side / 2],
        )
    }

    /// A decoder transposed convolution, 4×4 kernel, `c_in → c_out` from `side × side` maps.
    fn decoder(c_in: usize, c_out: usize, side: usize, options: &ConvTransposeOptions<2>) -> Self {
        let (x_shape, w_shape) = ([BATCH, c_in, side, side], [c_in, c_out, 4, 4]);
        let geometry = Conv2dGeometry::conv_transpose2d(x_shape, w_shape, options).expect("valid");
        Self::new(
            geometry,
            x_shape,
            w_shape,
            [BATCH, c_out, side * 2, side * 2],
        )
    }
}

/// (name, input channels, output channels, input side) of the encoder convolutions; the
/// decoder runs the same shapes backwards as transposed convolutions.
const ENCODER: [(&str, usize, usize, usize); 4] = [
    ("64to32_c3to32", 3, 32, 64),
    ("32to16_c32to32", 32, 32, 32),
    ("16to8_c32to64", 32, 64, 16),
    ("8to4_c64to64", 64, 64, 8),
];
const DECODER: [(&str, usize, usize, usize); 4] = [
    ("4to8_c64to64", 64, 64, 4),
    ("8to16_c64to32", 64, 32, 8),
    ("16to32_c32to32", 32, 32, 16),
    ("32to64_c32to3", 32, 3, 32),
];

fn weight_gradients(c: &mut Criterion) {
    let mut group = c.benchmark_group("weight_grad");
    let options = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
    for (name, c_in, c_out, side) in ENCODER {
        let layer = Layer::encoder(c_in, c_out, side, &options);
        group.bench_function(BenchmarkId::new("conv2d_ours", name), |b| {
            b.iter(|| {
                black_box(
                    cpu::conv2d_weight_grad(
                        &layer.geometry,
                        &layer.x,
                        &layer.dy,
                        ConvAlgorithm::Auto,
                    )
                    .expect("valid"),
                )
            })
        });
        group.bench_function(BenchmarkId::new("conv2d_burn", name), |b| {
            b.iter(|| {
                black_box(Flex::conv2d_weight_backward(
                    layer.x_flex.clone(),
                    layer.w_flex.clone(),
                    layer.dy_flex.clone(),
                    options.clone(),
                ))
            })
        });
    }
    let options = ConvTransposeOptions::new([2, 2], [1, 1], [0, 0], [1, 1], 1);
    for (name, c_in, c_out, side) in DECODER {
        let layer = Layer::decoder(c_in, c_out, side, &options);
        group.bench_function(BenchmarkId::new("conv_transpose2d_ours", name), |b| {
            b.iter(|| {
                black_box(
                    cpu::conv2d_weight_grad(
                        &layer.geometry,
                        &layer.dy,
                        &layer.x,
                        ConvAlgorithm::Auto,
                    )
                    .expect("valid"),
                )
            })
        });
        group.bench_function(BenchmarkId::new("conv_transpose2d_burn", name), |b| {
            b.iter(|| {
                black_box(Flex::conv_transpose2d_weight_backward(
                    layer.x_flex.clone(),
                    layer.w_flex.clone(),
                    layer.dy_flex.clone(),
                    options.clone(),
                ))
            })
        });
    }
    group.finish();
}

fn forwards(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv2d_forward");
    let options = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
    for (name, c_in, c_out, side) in ENCODER {
        let layer = Layer::encoder(c_in, c_out, side, &options);
        group.bench_function(BenchmarkId::new("ours", name), |b| {
            b.iter(|| {
                black_box(
                    cpu::conv2d_forward(
                        &layer.geometry,
                        &layer.x,
                        &layer.w,
                        None,
                        ConvAlgorithm::Auto,
                    )
                    .expect("valid"),
                )
            })
        });
        group.bench_function(BenchmarkId::new("burn", name), |b| {
            b.iter(|| {
                black_box(Flex::conv2d(
                    layer.x_flex.clone(),
                    layer.w_flex.clone(),
                    None,
                    options.clone(),
                ))
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group("conv2d_input_grad");
    for (name, c_in, c_out, side) in ENCODER {
        let layer = Layer::encoder(c_in, c_out, side, &options);
        group.bench_function(BenchmarkId::new("ours", name), |b| {
            b.iter(|| {
                black_box(
                    cpu::conv2d_input_grad(
                        &layer.geometry,
                        &layer.dy,
                        &layer.w,
                        ConvAlgorithm::Auto,
                    )
                    .expect("valid"),
                )
            })
        });
        group.bench_function(BenchmarkId::new("burn", name), |b| {
            b.iter(|| {
                black_box(Flex::conv2d_x_backward(
                    layer.x_flex.clone(),
                    layer.w_flex.clone(),
                    layer.dy_flex.clone(),
                    options.clone(),
                ))
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group("conv_transpose2d_forward");
    let options = ConvTransposeOptions::new([2, 2], [1, 1], [0, 0], [1, 1], 1);
    for (name, c_in, c_out, side) in DECODER {
        let layer = Layer::decoder(c_in, c_out, side, &options);
        group.bench_function(BenchmarkId::new("ours", name), |b| {
            b.iter(|| {
                black_box(
                    cpu::conv2d_input_grad(
                        &layer.geometry,
                        &layer.x,
                        &layer.w,
                        ConvAlgorithm::Auto,
                    )
                    .expect("valid"),
                )
            })
        });
        group.bench_function(BenchmarkId::new("burn", name), |b| {
            b.iter(|| {
                black_box(Flex::conv_transpose2d(
                    layer.x_flex.clone(),
                    layer.w_flex.clone(),
                    None,
                    options.clone(),
                ))
            })
        });
    }
    group.finish();
}

/// A ResNet basic-block convolution (3×3, stride 1, padding 1, 64 → 64 channels on 16×16
/// feature maps, batch 64): forward, input gradient and weight gradient.
fn resnet_layer(c: &mut Criterion) {
    let mut group = c.benchmark_group("resnet_3x3_c64_16x16");
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let x_shape = [BATCH, 64, 16, 16];
    let w_shape = [64, 64, 3, 3];
    let geometry = Conv2dGeometry::conv2d(x_shape, w_shape, &options).expect("valid");
    let layer = Layer::new(geometry, x_shape, w_shape, x_shape);
    group.bench_function("forward_ours", |b| {
        b.iter(|| {
            black_box(
                cpu::conv2d_forward(
                    &layer.geometry,
                    &layer.x,
                    &layer.w,
                    None,
                    ConvAlgorithm::Auto,
                )
                .expect("valid"),
            )
        })
    });
    group.bench_function("forward_burn", |b| {
        b.iter(|| {
            black_box(Flex::conv2d(
                layer.x_flex.clone(),
                layer.w_flex.clone(),
                None,
                options.clone(),
            ))
        })
    });
    group.bench_function("input_grad_ours", |b| {
        b.iter(|| {
            black_box(
                cpu::conv2d_input_grad(&layer.geometry, &layer.dy, &layer.w, ConvAlgorithm::Auto)
                    .expect("valid"),
            )
        })
    });
    group.bench_function("input_grad_burn", |b| {
        b.iter(|| {
            black_box(Flex::conv2d_x_backward(
                layer.x_flex.clone(),
                layer.w_flex.clone(),
                layer.dy_flex.clone(),
                options.clone(),
            ))
        })
    });
    group.bench_function("weight_grad_ours", |b| {
        b.iter(|| {
            black_box(
                cpu::conv2d_weight_grad(&layer.geometry, &layer.x, &layer.dy, ConvAlgorithm::Auto)
                    .expect("valid"),
            )
        })
    });
    group.bench_function("weight_grad_burn", |b| {
        b.iter(|| {
            black_box(Flex::conv2d_weight_backward(
                layer.x_flex.clone(),
                layer.w_flex.clone(),
                layer.dy_flex.clone(),
                options.clone(),
            ))
        })
    });
    group.finish();
}

/// The Burgess VAE's convolutions without the linear bottleneck: 4 conv2d + ReLU, then
/// 4 conv_transpose2d (ReLU between), on 3-channel 64×64 images.
struct ConvStack {
    encoder: Vec<Conv2d>,
    decoder: Vec<ConvTranspose2d>,
}

impl ConvStack {
    fn new(device: &Device) -> Self {
        let encoder = ENCODER
            .iter()
            .map(|&(_, c_in, c_out, _)| {
                Conv2dConfig::new([c_in, c_out], [4, 4])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device)
            })
            .collect();
        let decoder = DECODER
            .iter()
            .map(|&(_, c_in, c_out, _)| {
                ConvTranspose2dConfig::new([c_in, c_out], [4, 4])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .init(device)
            })
            .collect();
        Self { encoder, decoder }
    }

    fn forward(&self, mut x: Tensor<4>, fast: bool) -> Tensor<4> {
        for conv in &self.encoder {
            x = relu(match fast {
                true => conv.forward_fast(x).expect("valid"),
                false => conv.forward(x),
            });
        }
        for (i, deconv) in self.decoder.iter().enumerate() {
            x = match fast {
                true => deconv.forward_fast(x).expect("valid"),
                false => deconv.forward(x),
            };
            if i + 1 < self.decoder.len() {
                x = relu(x);
            }
        }
        x
    }
}

fn conv_stack_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv_stack_fwd_bwd");
    let device = Device::flex().autodiff();
    let stack = ConvStack::new(&device);
    let x = Tensor::<4>::random([BATCH, 3, 64, 64], Distribution::Uniform(0.0, 1.0), &device);
    for (name, fast) in [("ours", true), ("burn", false)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let y = stack.forward(x.clone(), fast);
                black_box(y.powf_scalar(2.0).mean().backward())
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = weight_gradients, forwards, resnet_layer, conv_stack_step
}
criterion_main!(benches);
