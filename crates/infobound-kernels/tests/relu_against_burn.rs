//! The pool-parallel `relu` and `add_relu` against Burn's on flex: values and gradients bit for
//! bit, on tensors spanning several rayon chunks, with and without gradient checkpointing, and
//! with buffers shared elsewhere (which the in-place path must leave untouched).

use burn::tensor::{Device, Distribution, Tensor};

fn to_vec<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_to_vec::<f32>().expect("f32 data")
}

/// A `[3, 5, 61, 67]` tensor (61 305 values, two rayon chunks) in
/// `[−1, 1]` with a run of exact zeros, whose gradient is defined as Burn's (0 at 0).
fn input(device: &Device) -> Tensor<4> {
    let x = Tensor::<4>::random([3, 5, 61, 67], Distribution::Uniform(-1.0, 1.0), device);
    x.slice_assign(
        [0..1, 0..1, 0..2, 0..67],
        Tensor::zeros([1, 1, 2, 67], device),
    )
}

/// `(relu(2·a), ∂/∂a)` of `Σ w · (relu(2·a) + 2·a)`: the ReLU's operand is an intermediate
/// that the sum also reads, so an in-place forward would corrupt the second term.
fn evaluate(ours: bool, a: &Tensor<4>, w: &Tensor<4>) -> [Vec<f32>; 2] {
    let a = a.clone().require_grad();
    let doubled = a.clone() * 2.0;
    let y = if ours {
        infobound_kernels::relu(doubled.clone()).expect("flex tensor")
    } else {
        burn::tensor::activation::relu(doubled.clone())
    };
    let grads = ((y.clone() + doubled) * w.clone()).sum().backward();
    [to_vec(y), to_vec(a.grad(&grads).expect("a gradient"))]
}

#[test]
fn relu_matches_burn_values_and_gradients() {
    for device in [
        Device::flex().autodiff(),
        Device::flex().autodiff().gradient_checkpointing(),
    ] {
        let a = input(&device);
        let w = Tensor::<4>::random(a.dims(), Distribution::Normal(0.0, 1.0), &device);
        let ours = evaluate(true, &a, &w);
        let burn = evaluate(false, &a, &w);
        assert_eq!(ours[0], burn[0], "values");
        assert_eq!(ours[1], burn[1], "gradients");
        // Both branches taken: zeros (negative and exactly-zero inputs) and positive values.
        assert!(ours[0].contains(&0.0) && ours[0].iter().any(|&v| v > 0.0));
    }
}

#[test]
fn relu_writes_in_place_only_when_nothing_else_holds_the_buffer() {
    let device = Device::flex();
    let x = input(&device);
    let expected = to_vec(burn::tensor::activation::relu(x.clone()));
    let before = to_vec(x.clone());
    // Shared: `x` must keep its values.
    let shared = infobound_kernels::relu(x.clone()).expect("flex tensor");
    assert_eq!(to_vec(shared), expected);
    assert_eq!(to_vec(x.clone()), before);
    // Unshared (the last handle): same result, computed in the tensor's own buffer.
    let owned = infobound_kernels::relu(x).expect("flex tensor");
    assert_eq!(to_vec(owned), expected);
    // A view: a slice of a larger tensor.
    let base = input(&device);
    let view = base.clone().slice([1..3, 0..5, 10..50, 0..67]);
    assert_eq!(
        to_vec(infobound_kernels::relu(view.clone()).expect("flex tensor")),
        to_vec(burn::tensor::activation::relu(view))
    );
}

#[test]
fn relu_passes_nan_through_as_burn_does() {
    let device = Device::flex();
    let x = Tensor::<1>::from_floats([f32::NAN, -1.0, 0.0, 2.0], &device);
    let ours = to_vec(infobound_kernels::relu(x).expect("flex tensor"));
    assert!(ours[0].is_nan());
    assert_eq!(ours[1..], [0.0, 0.0, 2.0]);
}

#[test]
fn relu_on_another_dtype_takes_burns_op() {
    let device = Device::flex().autodiff();
    let x = Tensor::<2>::from_floats([[-1.0, 3.0]], &device).cast(burn::tensor::DType::F64);
    let y = infobound_kernels::relu(x).expect("generic route");
    let values = y
        .into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .expect("f64");
    assert_eq!(values, [0.0, 3.0]);
}

/// `(relu(a + 2·b), ∂/∂a, ∂/∂b)` of `Σ w · (relu(a + 2·b) + 2·b)`: the second operand is an
/// intermediate the sum reads again, the first a leaf that `a` still holds.
fn evaluate_sum(ours: bool, a: &Tensor<4>, b: &Tensor<4>, w: &Tensor<4>) -> [Vec<f32>; 3] {
    let (a, b) = (a.clone().require_grad(), b.clone().require_grad());
    let doubled = b.clone() * 2.0;
    let y = if ours {
        infobound_kernels::add_relu(a.clone(), doubled.clone()).expect("same shapes")
    } else {
        burn::tensor::activation::relu(a.clone() + doubled.clone())
    };
    let grads = ((y.clone() + doubled) * w.clone()).sum().backward();
    [
        to_vec(y),
        to_vec(a.grad(&grads).expect("a gradient")),
        to_vec(b.grad(&grads).expect("b gradient")),
    ]
}

#[test]
fn add_relu_matches_burn_values_and_gradients() {
    for device in [
        Device::flex().autodiff(),
        Device::flex().autodiff().gradient_checkpointing(),
    ] {
        let a = input(&device);
        let b = Tensor::<4>::random(a.dims(), Distribution::Uniform(-1.0, 1.0), &device);
        let w = Tensor::<4>::random(a.dims(), Distribution::Normal(0.0, 1.0), &device);
        let ours = evaluate_sum(true, &a, &b, &w);
        let burn = evaluate_sum(false, &a, &b, &w);
        assert_eq!(ours, burn);
        assert!(ours[0].contains(&0.0) && ours[0].iter().any(|&v| v > 0.0));
    }
}

#[test]
fn add_relu_writes_into_whichever_operand_is_unshared() {
    let device = Device::flex();
    let (a, b) = (input(&device), input(&device).flip([3]));
    let expected = to_vec(burn::tensor::activation::relu(a.clone() + b.clone()));
    let (a_before, b_before) = (to_vec(a.clone()), to_vec(b.clone()));
    // Both shared (`b` a flipped view); then only `b`'s buffer unshared; then `a`'s.
    let both_shared = infobound_kernels::add_relu(a.clone(), b.clone()).expect("same shapes");
    assert_eq!(to_vec(both_shared), expected);
    assert_eq!(
        (to_vec(a.clone()), to_vec(b.clone())),
        (a_before.clone(), b_before)
    );
    let b_owned = infobound_kernels::add_relu(a.clone(), b.clone() * 1.0).expect("same shapes");
    assert_eq!(to_vec(b_owned), expected);
    assert_eq!(to_vec(a.clone()), a_before);
    let a_owned = infobound_kernels::add_relu(a, b).expect("same shapes");
    assert_eq!(to_vec(a_owned), expected);
}

#[test]
fn add_relu_rejects_operands_of_different_shapes() {
    let device = Device::flex();
    let error = infobound_kernels::add_relu(
        Tensor::<2>::zeros([2, 3], &device),
        Tensor::<2>::zeros([3, 2], &device),
    );
    assert!(matches!(
        error,
        Err(infobound_kernels::KernelError::Shape(_))
    ));
}
