//! The kernels against Burn's generic path on the same flex device: forward values and the
//! input, weight and bias gradients of `Σ y ⊙ r` for a fixed non-uniform `r`, to 1e-4 of the
//! reference's largest magnitude, over stride / padding / dilation / kernel / batch shapes.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Tensor, TensorData};
use infobound_kernels::{
    ConvAlgorithm, FastConv, KernelError, conv_transpose2d, conv_transpose2d_with, conv2d,
    conv2d_with,
};
use proptest::prelude::*;

mod common;
use common::{relative_error, to_vec};

/// Deterministic values in [-1, 1) that differ from element to element and between tensors.
fn values(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 2_654_435_761 + seed * 40_503) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

fn tensor<const D: usize>(shape: [usize; D], seed: usize, device: &Device) -> Tensor<D> {
    let len = shape.iter().product();
    Tensor::from_data(TensorData::new(values(len, seed), shape), device)
}

/// Both flex paths: Winograd where it applies (the default), and im2col everywhere.
const ALGORITHMS: [ConvAlgorithm; 2] = [ConvAlgorithm::Auto, ConvAlgorithm::Im2col];

/// Output, then gradients of x, weight and bias, of `Σ op(x, w, b) ⊙ r`.
type Results = [Vec<f32>; 4];

fn differentiate(
    x_shape: [usize; 4],
    w_shape: [usize; 4],
    bias_len: Option<usize>,
    op: impl FnOnce(Tensor<4>, Tensor<4>, Option<Tensor<1>>) -> Tensor<4>,
) -> Results {
    differentiate_on(&Device::flex().autodiff(), x_shape, w_shape, bias_len, op)
}

fn differentiate_on(
    device: &Device,
    x_shape: [usize; 4],
    w_shape: [usize; 4],
    bias_len: Option<usize>,
    op: impl FnOnce(Tensor<4>, Tensor<4>, Option<Tensor<1>>) -> Tensor<4>,
) -> Results {
    let x = tensor(x_shape, 1, device).require_grad();
    let w = tensor(w_shape, 2, device).require_grad();
    let b = bias_len.map(|len| tensor([len], 3, device).require_grad());
    let y = op(x.clone(), w.clone(), b.clone());
    let r = tensor(y.dims(), 4, device);
    let grads = (y.clone() * r).sum().backward();
    let grad = |t: &Tensor<4>| to_vec(t.grad(&grads).expect("a gradient"));
    [
        to_vec(y),
        grad(&x),
        grad(&w),
        b.map_or_else(Vec::new, |b| {
            to_vec(b.grad(&grads).expect("a bias gradient"))
        }),
    ]
}

fn assert_close(ours: &Results, reference: &Results, case: &str) {
    for (name, (a, b)) in ["output", "x grad", "weight grad", "bias grad"]
        .iter()
        .zip(ours.iter().zip(reference))
    {
        let error = relative_error(a, b);
        assert!(error <= 1e-4, "{case}: {name} relative error {error}");
    }
}

struct Conv2dCase {
    x: [usize; 4],
    w: [usize; 4],
    stride: [usize; 2],
    padding: [(usize, usize); 2],
    dilation: [usize; 2],
    bias: bool,
}

impl Conv2dCase {
    fn check(&self) {
        let options = ConvOptions::new_with_padding(self.stride, self.padding, self.dilation, 1);
        let bias = self.bias.then_some(self.w[0]);
        let reference = differentiate(self.x, self.w, bias, |x, w, b| {
            burn::tensor::module::conv2d(x, w, b, options.clone())
        });
        for algorithm in ALGORITHMS {
            let ours = differentiate(self.x, self.w, bias, |x, w, b| {
                conv2d_with(x, w, b, options.clone(), algorithm).expect("a valid convolution")
            });
            let case = format!(
                "conv2d {algorithm:?} x {:?} w {:?} s {:?} p {:?} d {:?}",
                self.x, self.w, self.stride, self.padding, self.dilation
            );
            assert_close(&ours, &reference, &case);
        }
    }
}

#[test]
fn conv2d_matches_burn_on_the_model_layers_and_edge_geometries() {
    let cases = [
        // Burgess encoder layers, reduced batch: k4 s2 p1.
        (
            [3, 3, 16, 16],
            [8, 3, 4, 4],
            [2, 2],
            [(1, 1), (1, 1)],
            [1, 1],
            true,
        ),
        (
            [5, 8, 8, 8],
            [6, 8, 4, 4],
            [2, 2],
            [(1, 1), (1, 1)],
            [1, 1],
            true,
        ),
        // On the polyphase Winograd path (≥ 16 channels, sides multiples of 4).
        (
            [3, 16, 8, 12],
            [20, 16, 4, 4],
            [2, 2],
            [(1, 1), (1, 1)],
            [1, 1],
            true,
        ),
        // ResNet-style 3×3 s1 p1 on Winograd's F(4×4, 3×3) (≥ 16 channels, sides multiples
        // of 4 and ≥ 16).
        (
            [2, 16, 16, 20],
            [24, 16, 3, 3],
            [1, 1],
            [(1, 1), (1, 1)],
            [1, 1],
            true,
        ),
        // ResNet-style 3×3 s1 p1 (the first on Winograd's F(2×2, 3×3): ≥ 16 channels, even
        // sizes; the second, odd-sized, on im2col) and 1×1 s2, no bias.
        (
            [3, 16, 6, 16],
            [20, 16, 3, 3],
            [1, 1],
            [(1, 1), (1, 1)],
            [1, 1],
            true,
        ),
        (
            [2, 4, 9, 7],
            [5, 4, 3, 3],
            [1, 1],
            [(1, 1), (1, 1)],
            [1, 1],
            false,
        ),
        (
            [3, 6, 8, 8],
            [4, 6, 1, 1],
            [2, 2],
            [(0, 0), (0, 0)],
            [1, 1],
            false,
        ),
        // Dilation, stride 3, asymmetric padding, rectangular kernel.
        (
            [2, 3, 11, 10],
            [4, 3, 3, 2],
            [3, 1],
            [(2, 0), (0, 3)],
            [2, 3],
            true,
        ),
        // Kernel as large as the padded input: a single output pixel.
        (
            [1, 2, 5, 5],
            [3, 2, 7, 7],
            [1, 1],
            [(1, 1), (1, 1)],
            [1, 1],
            true,
        ),
    ];
    for (x, w, stride, padding, dilation, bias) in cases {
        Conv2dCase {
            x,
            w,
            stride,
            padding,
            dilation,
            bias,
        }
        .check();
    }
}

fn check_conv_transpose2d(
    x: [usize; 4],
    w: [usize; 4],
    stride: [usize; 2],
    padding: [usize; 2],
    padding_out: [usize; 2],
    dilation: [usize; 2],
) {
    let options = ConvTransposeOptions::new(stride, padding, padding_out, dilation, 1);
    let reference = differentiate(x, w, Some(w[1]), |x, w, b| {
        burn::tensor::module::conv_transpose2d(x, w, b, options.clone())
    });
    for algorithm in ALGORITHMS {
        let ours = differentiate(x, w, Some(w[1]), |x, w, b| {
            conv_transpose2d_with(x, w, b, options.clone(), algorithm)
                .expect("a valid transposed convolution")
        });
        let case = format!(
            "conv_transpose2d {algorithm:?} x {x:?} w {w:?} s {stride:?} p {padding:?} \
             d {dilation:?}"
        );
        assert_close(&ours, &reference, &case);
    }
}

#[test]
fn conv_transpose2d_matches_burn_on_the_decoder_layers_and_edge_geometries() {
    // Burgess decoder layers, reduced batch: k4 s2 p1.
    check_conv_transpose2d([3, 8, 4, 4], [8, 8, 4, 4], [2, 2], [1, 1], [0, 0], [1, 1]);
    check_conv_transpose2d([2, 6, 8, 8], [6, 1, 4, 4], [2, 2], [1, 1], [0, 0], [1, 1]);
    // On the polyphase Winograd path (the adjoint conv has ≥ 16 channels, sides 8 × 12).
    check_conv_transpose2d(
        [2, 16, 4, 6],
        [16, 24, 4, 4],
        [2, 2],
        [1, 1],
        [0, 0],
        [1, 1],
    );
    // Output padding, dilation, stride 3, rectangular.
    check_conv_transpose2d([2, 3, 5, 4], [3, 4, 3, 2], [3, 2], [1, 0], [2, 1], [1, 2]);
    check_conv_transpose2d([1, 2, 3, 3], [2, 3, 3, 3], [1, 1], [0, 0], [0, 0], [2, 2]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn conv2d_matches_burn_for_random_geometries(
        batch in 1usize..4, c_in in 1usize..4, c_out in 1usize..5,
        h in 3usize..10, w in 3usize..10, kh in 1usize..4, kw in 1usize..4,
        sh in 1usize..4, sw in 1usize..4, dh in 1usize..3, dw in 1usize..3,
        pads in prop::array::uniform4(0usize..3), bias in any::<bool>(),
    ) {
        let fits = |size: usize, before: usize, after: usize, k: usize, d: usize| {
            size + before + after > d * (k - 1)
        };
        prop_assume!(fits(h, pads[0], pads[1], kh, dh) && fits(w, pads[2], pads[3], kw, dw));
        Conv2dCase {
            x: [batch, c_in, h, w],
            w: [c_out, c_in, kh, kw],
            stride: [sh, sw],
            padding: [(pads[0], pads[1]), (pads[2], pads[3])],
            dilation: [dh, dw],
            bias,
        }
        .check();
    }

    #[test]
    fn conv_transpose2d_matches_burn_for_random_geometries(
        batch in 1usize..4, c_in in 1usize..4, c_out in 1usize..4,
        h in 1usize..6, w in 1usize..6, k in 1usize..5, s in 1usize..4,
        p in 0usize..2, d in 1usize..3, out_pad in 0usize..2,
    ) {
        // PyTorch's rule, which Burn follows: output padding below stride or dilation.
        prop_assume!(out_pad < s.max(d));
        prop_assume!((h - 1) * s + d * (k - 1) + out_pad + 1 > 2 * p);
        prop_assume!((w - 1) * s + d * (k - 1) + out_pad + 1 > 2 * p);
        check_conv_transpose2d([batch, c_in, h, w], [c_in, c_out, k, k], [s, s], [p, p], [out_pad, out_pad], [d, d]);
    }
}

/// A conv → ReLU → transposed-conv chain on a gradient-checkpointing device (Burn's
/// `Balanced` strategy), where the autodiff graph may recompute the ReLU in the backward pass.
#[test]
fn checkpointed_autodiff_matches_burn() {
    let device = Device::flex().autodiff().gradient_checkpointing();
    let conv = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
    let deconv = ConvTransposeOptions::new([2, 2], [1, 1], [0, 0], [1, 1], 1);
    let chain = |fast: bool| {
        let (conv, deconv) = (conv.clone(), deconv.clone());
        move |x: Tensor<4>, w: Tensor<4>, b: Option<Tensor<1>>| {
            // Reusing W as the transposed convolution's [C_in = 5, C_out = 3, 4, 4] weight.
            let w_t = w.clone();
            if fast {
                let h = burn::tensor::activation::relu(conv2d(x, w, b, conv).expect("valid"));
                conv_transpose2d(h, w_t, None, deconv).expect("valid")
            } else {
                let h = burn::tensor::activation::relu(burn::tensor::module::conv2d(x, w, b, conv));
                burn::tensor::module::conv_transpose2d(h, w_t, None, deconv)
            }
        }
    };
    let ours = differentiate_on(&device, [2, 3, 8, 8], [5, 3, 4, 4], Some(5), chain(true));
    let reference = differentiate_on(&device, [2, 3, 8, 8], [5, 3, 4, 4], Some(5), chain(false));
    assert_close(
        &ours,
        &reference,
        "checkpointed conv → relu → conv_transpose",
    );
}

#[test]
fn plain_flex_forward_matches_burn() {
    let device = Device::flex();
    let options = ConvOptions::new([2, 1], [1, 0], [1, 2], 1);
    let x = tensor([3, 4, 9, 8], 5, &device);
    let w = tensor([6, 4, 3, 2], 6, &device);
    let b = tensor([6], 7, &device);
    let ours = conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone()).expect("valid");
    let reference = burn::tensor::module::conv2d(x, w, Some(b), options);
    assert!(relative_error(&to_vec(ours), &to_vec(reference)) <= 1e-4);
    let options = ConvTransposeOptions::new([2, 3], [1, 0], [1, 2], [1, 1], 1);
    let x = tensor([2, 4, 5, 4], 5, &device);
    let w = tensor([4, 3, 3, 4], 6, &device);
    let b = tensor([3], 7, &device);
    let ours =
        conv_transpose2d(x.clone(), w.clone(), Some(b.clone()), options.clone()).expect("valid");
    let reference = burn::tensor::module::conv_transpose2d(x, w, Some(b), options);
    assert!(relative_error(&to_vec(ours), &to_vec(reference)) <= 1e-4);
}

#[test]
fn grouped_convolutions_take_the_generic_path_with_identical_results() {
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 2);
    let opts = options.clone();
    let ours = differentiate([2, 4, 6, 6], [6, 2, 3, 3], Some(6), |x, w, b| {
        conv2d(x, w, b, opts).expect("valid")
    });
    let reference = differentiate([2, 4, 6, 6], [6, 2, 3, 3], Some(6), |x, w, b| {
        burn::tensor::module::conv2d(x, w, b, options)
    });
    assert_close(&ours, &reference, "grouped conv2d");
}

#[test]
fn constant_input_without_autodiff_joins_the_graph_as_a_constant() {
    let device = Device::flex().autodiff();
    let x = tensor([2, 3, 8, 8], 1, &device.clone().without_autodiff());
    let w = tensor([4, 3, 4, 4], 2, &device).require_grad();
    let options = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
    let ours = conv2d(x.clone(), w.clone(), None, options.clone()).expect("valid");
    let ours_grad = to_vec(w.grad(&ours.sum().backward()).expect("weight grad"));
    let w_ref = tensor([4, 3, 4, 4], 2, &device).require_grad();
    let x_ref = tensor([2, 3, 8, 8], 1, &device);
    let reference = burn::tensor::module::conv2d(x_ref, w_ref.clone(), None, options);
    let ref_grad = to_vec(
        w_ref
            .grad(&reference.sum().backward())
            .expect("weight grad"),
    );
    assert!(relative_error(&ours_grad, &ref_grad) <= 1e-4);
}

#[test]
fn modules_forward_fast_matches_forward_for_every_padding_mode() {
    let device = Device::flex().autodiff();
    let paddings = [
        PaddingConfig2d::Valid,
        PaddingConfig2d::Same,
        PaddingConfig2d::Explicit(1, 0, 2, 1),
    ];
    for padding in paddings {
        let conv = Conv2dConfig::new([3, 5], [3, 4])
            .with_stride([2, 1])
            .with_padding(padding.clone())
            .init(&device);
        let x = tensor([2, 3, 9, 10], 8, &device);
        let fast = differentiate_module(&conv.weight.val(), || {
            conv.forward_fast(x.clone()).expect("valid")
        });
        let reference = differentiate_module(&conv.weight.val(), || conv.forward(x.clone()));
        assert_close(&fast, &reference, &format!("Conv2d {padding:?}"));
    }
    let deconv = ConvTranspose2dConfig::new([4, 2], [4, 4])
        .with_stride([2, 2])
        .with_padding([1, 1])
        .init(&device);
    let x = tensor([2, 4, 5, 5], 9, &device);
    let fast = differentiate_module(&deconv.weight.val(), || {
        deconv.forward_fast(x.clone()).expect("valid")
    });
    let reference = differentiate_module(&deconv.weight.val(), || deconv.forward(x.clone()));
    assert_close(&fast, &reference, "ConvTranspose2d");
}

/// On geometries that Winograd computes (≥ 16 channels: F(4×4, 3×3) at 16×16, F(2×2, 2×2) on
/// the polyphase components of a 4×4 stride-2 layer and of its transposed adjoint), each
/// choice passed to `forward_fast_with` matches Burn's `forward`, and the two choices really
/// run different algorithms: their outputs differ in rounding.
#[test]
fn modules_forward_fast_with_runs_the_chosen_algorithm() {
    let device = Device::flex().autodiff();
    let resnet = Conv2dConfig::new([16, 16], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(&device);
    let x = tensor([2, 16, 16, 16], 10, &device);
    check_algorithms(
        "3×3 s1",
        |algorithm| {
            differentiate_module(&resnet.weight.val(), || {
                resnet
                    .forward_fast_with(x.clone(), algorithm)
                    .expect("valid")
            })
        },
        differentiate_module(&resnet.weight.val(), || resnet.forward(x.clone())),
    );
    let encoder = Conv2dConfig::new([16, 24], [4, 4])
        .with_stride([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(&device);
    check_algorithms(
        "4×4 s2",
        |algorithm| {
            differentiate_module(&encoder.weight.val(), || {
                encoder
                    .forward_fast_with(x.clone(), algorithm)
                    .expect("valid")
            })
        },
        differentiate_module(&encoder.weight.val(), || encoder.forward(x.clone())),
    );
    let decoder = ConvTranspose2dConfig::new([24, 16], [4, 4])
        .with_stride([2, 2])
        .with_padding([1, 1])
        .init(&device);
    let h = tensor([2, 24, 8, 8], 11, &device);
    check_algorithms(
        "transposed 4×4 s2",
        |algorithm| {
            differentiate_module(&decoder.weight.val(), || {
                decoder
                    .forward_fast_with(h.clone(), algorithm)
                    .expect("valid")
            })
        },
        differentiate_module(&decoder.weight.val(), || decoder.forward(h.clone())),
    );
}

/// `run` under each algorithm against `reference`, and the two algorithms' outputs not
/// bit-identical (so the choice reached the kernels).
fn check_algorithms(name: &str, run: impl Fn(ConvAlgorithm) -> Results, reference: Results) {
    let auto = run(ConvAlgorithm::Auto);
    let im2col = run(ConvAlgorithm::Im2col);
    assert_close(&auto, &reference, &format!("{name} Auto"));
    assert_close(&im2col, &reference, &format!("{name} Im2col"));
    assert_ne!(
        auto[0], im2col[0],
        "{name}: Auto and Im2col gave identical outputs"
    );
}

/// Output and weight gradient of `Σ y ⊙ r` for a module's forward (bias slots left empty).
fn differentiate_module(weight: &Tensor<4>, forward: impl FnOnce() -> Tensor<4>) -> Results {
    let y = forward();
    let r = tensor(y.dims(), 4, &y.device());
    let grads = (y.clone() * r).sum().backward();
    let w_grad = to_vec(weight.grad(&grads).expect("weight grad"));
    [to_vec(y), Vec::new(), w_grad, Vec::new()]
}

#[test]
fn bad_operands_are_errors_not_panics() {
    let device = Device::flex().autodiff();
    let x = tensor([1, 3, 8, 8], 1, &device);
    let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
    let wrong_channels = conv2d(
        x.clone(),
        tensor([4, 2, 3, 3], 2, &device),
        None,
        options.clone(),
    );
    assert!(matches!(wrong_channels, Err(KernelError::Shape(_))));
    let wrong_bias = conv2d(
        x.clone(),
        tensor([4, 3, 3, 3], 2, &device),
        Some(tensor([5], 3, &device)),
        options.clone(),
    );
    assert!(matches!(wrong_bias, Err(KernelError::Shape(_))));
    let kernel_too_large = conv2d(x.clone(), tensor([4, 3, 9, 9], 2, &device), None, options);
    assert!(matches!(kernel_too_large, Err(KernelError::Shape(_))));
    let mut zero_stride = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
    zero_stride.stride = [0, 1];
    let zero_stride = conv2d(
        x.clone(),
        tensor([4, 3, 3, 3], 2, &device),
        None,
        zero_stride,
    );
    assert!(matches!(zero_stride, Err(KernelError::Options(_))));
    let empty_output = conv_transpose2d(
        tensor([1, 3, 1, 1], 1, &device),
        tensor([3, 2, 1, 1], 2, &device),
        None,
        ConvTransposeOptions::new([1, 1], [1, 1], [0, 0], [1, 1], 1),
    );
    assert!(matches!(empty_output, Err(KernelError::Shape(_))));
}

/// The loss of every step of `steps` Adam updates at rate `lr` from `initial`.
fn adam_loss_curve<M: Module>(
    initial: &M,
    steps: usize,
    lr: f64,
    loss: impl Fn(&M) -> Tensor<1>,
) -> Vec<f32> {
    let mut model = initial.clone();
    let mut optimizer = AdamConfig::new().init();
    (0..steps)
        .map(|_| {
            let value = loss(&model);
            let reading = value.clone().into_scalar::<f32>();
            let grads = GradientsParams::from_grads(value.backward(), &model);
            model = optimizer.step(lr, model.clone(), grads);
            reading
        })
        .collect()
}

/// A tiny conv autoencoder trained for a few Adam steps from the same initial parameters with
/// `forward` and with `forward_fast`: the loss curves agree to float tolerance.
#[test]
fn training_with_forward_fast_follows_the_same_loss_curve() {
    use burn::nn::conv::{Conv2d, ConvTranspose2d};

    #[derive(Module, Debug)]
    struct AutoEncoder {
        encoder: Conv2d,
        decoder: ConvTranspose2d,
    }

    impl AutoEncoder {
        fn loss(&self, x: Tensor<4>, fast: bool) -> Tensor<1> {
            let y = if fast {
                let h = self.encoder.forward_fast(x.clone()).expect("valid");
                let h = burn::tensor::activation::relu(h);
                self.decoder.forward_fast(h).expect("valid")
            } else {
                let h = burn::tensor::activation::relu(self.encoder.forward(x.clone()));
                self.decoder.forward(h)
            };
            (y - x).powf_scalar(2.0).mean()
        }
    }

    let device = Device::flex().autodiff();
    let initial = AutoEncoder {
        encoder: Conv2dConfig::new([2, 6], [4, 4])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device),
        decoder: ConvTranspose2dConfig::new([6, 2], [4, 4])
            .with_stride([2, 2])
            .with_padding([1, 1])
            .init(&device),
    };
    let x = tensor([4, 2, 12, 12], 11, &device);
    let curve = |fast: bool| adam_loss_curve(&initial, 8, 1e-2, |m| m.loss(x.clone(), fast));
    let (fast, reference) = (curve(true), curve(false));
    assert!(
        reference[0] > reference[7],
        "the reference run must learn: {reference:?}"
    );
    assert!(
        relative_error(&fast, &reference) <= 1e-4,
        "{fast:?} vs {reference:?}"
    );
}

/// Two 3×3 "same" convolutions with 16 channels on 16-px images — the geometry that runs
/// Winograd's F(4×4, 3×3) — trained for 200 Adam steps with `forward_fast` and with
/// `forward` from the same parameters: the loss curves agree to float tolerance throughout.
#[test]
fn winograd_training_follows_the_same_loss_curve() {
    use burn::nn::conv::Conv2d;

    #[derive(Module, Debug)]
    struct TwoConvs {
        first: Conv2d,
        second: Conv2d,
    }

    impl TwoConvs {
        fn loss(&self, x: Tensor<4>, fast: bool) -> Tensor<1> {
            let y = if fast {
                let h = self.first.forward_fast(x.clone()).expect("valid");
                let h = burn::tensor::activation::relu(h);
                self.second.forward_fast(h).expect("valid")
            } else {
                let h = burn::tensor::activation::relu(self.first.forward(x.clone()));
                self.second.forward(h)
            };
            (y - x).powf_scalar(2.0).mean()
        }
    }

    const STEPS: usize = 200;
    let device = Device::flex().autodiff();
    let layer = |channels: [usize; 2]| {
        Conv2dConfig::new(channels, [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device)
    };
    let initial = TwoConvs {
        first: layer([16, 24]),
        second: layer([24, 16]),
    };
    let x = tensor([3, 16, 16, 16], 12, &device);
    let curve = |fast: bool| adam_loss_curve(&initial, STEPS, 1e-3, |m| m.loss(x.clone(), fast));
    let (fast, reference) = (curve(true), curve(false));
    assert!(
        reference[STEPS - 1] < 0.5 * reference[0],
        "the reference run must learn: {reference:?}"
    );
    assert!(
        relative_error(&fast, &reference) <= 1e-4,
        "{fast:?} vs {reference:?}"
    );
}
