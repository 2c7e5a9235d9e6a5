//! `batch_norm_train` and `FastBatchNorm` against Burn's generic `batch_norm_train` /
//! `BatchNorm::forward` on the same flex device: output, batch statistics, the gradients of
//! `Σ y ⊙ r` with respect to x, γ and β, and the running statistics after several steps.

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::{Device, Tensor, TensorData};
use infobound_kernels::{FastBatchNorm, KernelError, batch_norm_train};
use proptest::prelude::*;

mod common;
use common::{relative_error, to_vec};

fn values(len: usize, seed: usize, offset: f32) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 2_654_435_761 + seed * 40_503) % 2001) as f32 / 1000.0 - 1.0 + offset)
        .collect()
}

fn tensor<const D: usize>(
    shape: [usize; D],
    seed: usize,
    offset: f32,
    device: &Device,
) -> Tensor<D> {
    let len = shape.iter().product();
    Tensor::from_data(TensorData::new(values(len, seed, offset), shape), device)
}

/// Output, mean, variance and the gradients of x, γ, β of `Σ batch_norm(x) ⊙ r`.
fn differentiate<const D: usize>(shape: [usize; D], offset: f32, fast: bool) -> [Vec<f32>; 6] {
    let device = Device::flex().autodiff();
    let channels = shape[1];
    let x = tensor(shape, 1, offset, &device).require_grad();
    let gamma = tensor([channels], 2, 1.0, &device).require_grad();
    let beta = tensor([channels], 3, 0.0, &device).require_grad();
    let result = if fast {
        batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5).expect("valid shapes")
    } else {
        burn::tensor::module::batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5)
    };
    let r = tensor(shape, 4, 0.0, &device);
    let grads = (result.output.clone() * r).sum().backward();
    [
        to_vec(result.output),
        to_vec(result.mean),
        to_vec(result.variance),
        to_vec(x.grad(&grads).expect("x gradient")),
        to_vec(gamma.grad(&grads).expect("gamma gradient")),
        to_vec(beta.grad(&grads).expect("beta gradient")),
    ]
}

fn assert_matches<const D: usize>(shape: [usize; D], offset: f32) {
    let ours = differentiate(shape, offset, true);
    let reference = differentiate(shape, offset, false);
    for (name, (a, b)) in [
        "output",
        "mean",
        "variance",
        "x grad",
        "gamma grad",
        "beta grad",
    ]
    .iter()
    .zip(ours.iter().zip(&reference))
    {
        let error = relative_error(a, b);
        assert!(
            error < 1e-4,
            "{shape:?} offset {offset}: {name} differs by {error}"
        );
    }
}

#[test]
fn batch_norm_matches_burn_on_the_resnet_and_head_shapes() {
    assert_matches([8, 16, 8, 8], 0.0);
    assert_matches([4, 3, 5, 7], 2.5);
    assert_matches([16, 32], 0.0);
    assert_matches([2, 4, 3], -1.0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn batch_norm_matches_burn_on_any_shape(
        batch in 2usize..6,
        channels in 1usize..6,
        height in 1usize..6,
        width in 1usize..6,
        offset in -3.0f32..3.0,
    ) {
        assert_matches([batch, channels, height, width], offset);
    }
}

#[test]
fn plain_flex_forward_matches_burn() {
    let device = Device::flex();
    let x = tensor([4, 3, 5, 5], 1, 0.5, &device);
    let gamma = tensor([3], 2, 1.0, &device);
    let beta = tensor([3], 3, 0.0, &device);
    let ours = batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5).expect("valid");
    let reference = burn::tensor::module::batch_norm_train(x, gamma, beta, 1e-5);
    assert!(relative_error(&to_vec(ours.output), &to_vec(reference.output)) < 1e-5);
    assert!(relative_error(&to_vec(ours.variance), &to_vec(reference.variance)) < 1e-5);
}

fn running_statistics(norm: &BatchNorm) -> Vec<f32> {
    let mut all = to_vec(norm.running_mean.value_sync());
    all.extend(to_vec(norm.running_var.value_sync()));
    all
}

/// Three training steps through `forward_fast` and through `forward` leave the same running
/// statistics and produce the same outputs; in inference (no autodiff) both use the running
/// statistics.
#[test]
fn the_module_updates_running_statistics_as_burn_does() {
    let device = Device::flex().autodiff();
    let fast = BatchNormConfig::new(6).init(&device);
    let reference = BatchNormConfig::new(6).init(&device);
    for step in 0..3 {
        let x = tensor([5, 6, 4, 4], step, step as f32, &device);
        let ours = fast.forward_fast(x.clone()).expect("valid shape");
        let theirs = reference.forward(x);
        assert!(relative_error(&to_vec(ours), &to_vec(theirs)) < 1e-4);
    }
    let error = relative_error(&running_statistics(&fast), &running_statistics(&reference));
    assert!(error < 1e-5, "running statistics differ by {error}");

    let (fast, reference) = (fast.valid(), reference.valid());
    let x = tensor([3, 6, 2, 2], 9, 0.0, &Device::flex());
    let ours = fast.forward_fast(x.clone()).expect("valid shape");
    let theirs = reference.forward(x);
    assert!(relative_error(&to_vec(ours), &to_vec(theirs)) < 1e-4);
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let device = Device::flex();
    let gamma = tensor([3], 2, 1.0, &device);
    let beta = tensor([3], 3, 0.0, &device);
    let wrong_channels = tensor([4, 2, 3, 3], 1, 0.0, &device);
    assert!(matches!(
        batch_norm_train(wrong_channels, gamma.clone(), beta.clone(), 1e-5),
        Err(KernelError::Shape(_))
    ));
    let empty = Tensor::<4>::zeros([0, 3, 2, 2], &device);
    assert!(batch_norm_train(empty, gamma, beta, 1e-5).is_err());
    let norm = BatchNormConfig::new(3).init(&device.clone().autodiff());
    let x = tensor([2, 5, 2, 2], 1, 0.0, &device.autodiff());
    assert!(matches!(norm.forward_fast(x), Err(KernelError::Shape(_))));
}
