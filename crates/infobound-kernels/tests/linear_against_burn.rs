//! The faer-backed `linear` against Burn's on flex: values and the gradients of input, weight
//! and bias, with and without a bias, at sizes below and above the pool threshold, with a
//! column-major (transposed-view) weight, and on a gradient-checkpointing device.

use burn::nn::{Linear, LinearConfig, LinearLayout};
use burn::tensor::{Device, Distribution, Tensor};
use infobound_kernels::{FastLinear, KernelError};

mod common;
use common::{relative_error, to_vec};

/// `[y, ∂x, ∂W, ∂b]` of `Σ w ⊙ layer(x)` through `forward_fast` or Burn's `forward`.
fn evaluate(fast: bool, layer: &Linear, x: &Tensor<2>, w: &Tensor<2>) -> Vec<Vec<f32>> {
    let x = x.clone().require_grad();
    let y = if fast {
        layer.forward_fast(x.clone()).expect("shapes chain")
    } else {
        layer.forward(x.clone())
    };
    let grads = (y.clone() * w.clone()).sum().backward();
    let mut out = vec![
        to_vec(y),
        to_vec(x.grad(&grads).expect("input gradient")),
        to_vec(layer.weight.val().grad(&grads).expect("weight gradient")),
    ];
    if let Some(bias) = &layer.bias {
        out.push(to_vec(bias.val().grad(&grads).expect("bias gradient")));
    }
    out
}

#[test]
fn linear_matches_burn_values_and_gradients() {
    let cases = [
        (5, 7, 3, true, LinearLayout::Row),
        (5, 7, 3, false, LinearLayout::Row),
        (64, 512, 256, true, LinearLayout::Row),
        (33, 130, 70, true, LinearLayout::Col),
    ];
    for device in [
        Device::flex().autodiff(),
        Device::flex().autodiff().gradient_checkpointing(),
    ] {
        for (batch, d_in, d_out, bias, layout) in cases {
            let config = LinearConfig::new(d_in, d_out)
                .with_bias(bias)
                .with_layout(layout);
            let x = Tensor::<2>::random([batch, d_in], Distribution::Normal(0.0, 1.0), &device);
            let w = Tensor::<2>::random([batch, d_out], Distribution::Normal(0.0, 1.0), &device);
            let layer = config.init(&device);
            let ours = evaluate(true, &layer, &x, &w);
            let burn = evaluate(false, &layer, &x, &w);
            assert_eq!(ours.len(), 3 + usize::from(bias));
            for (name, (a, b)) in ["y", "x grad", "W grad", "b grad"]
                .iter()
                .zip(ours.iter().zip(&burn))
            {
                let error = relative_error(a, b);
                assert!(
                    error <= 1e-5,
                    "{batch}×{d_in}→{d_out} {layout:?} {name}: relative error {error}"
                );
            }
        }
    }
}

#[test]
fn linear_without_autodiff_matches_burn() {
    let device = Device::flex();
    let x = Tensor::<2>::random([9, 300], Distribution::Normal(0.0, 1.0), &device);
    let weight = Tensor::<2>::random([300, 200], Distribution::Normal(0.0, 1.0), &device);
    let bias = Tensor::<1>::random([200], Distribution::Normal(0.0, 1.0), &device);
    let ours = infobound_kernels::linear(x.clone(), weight.clone(), Some(bias.clone()))
        .expect("shapes chain");
    let burn = burn::tensor::module::linear(x, weight, Some(bias));
    assert!(relative_error(&to_vec(ours), &to_vec(burn)) <= 1e-5);
}

#[test]
fn linear_rejects_shapes_that_do_not_chain() {
    let device = Device::flex();
    let x = Tensor::<2>::zeros([4, 3], &device);
    let weight = Tensor::<2>::zeros([3, 2], &device);
    let wrong_weight = Tensor::<2>::zeros([4, 2], &device);
    let wrong_bias = Tensor::<1>::zeros([3], &device);
    assert!(matches!(
        infobound_kernels::linear(x.clone(), wrong_weight, None),
        Err(KernelError::Shape(_))
    ));
    assert!(matches!(
        infobound_kernels::linear(x, weight, Some(wrong_bias)),
        Err(KernelError::Shape(_))
    ));
}
