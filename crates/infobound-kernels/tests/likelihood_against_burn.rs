//! The fused pixel likelihoods against the same terms composed from Burn's tensor ops on flex:
//! per-sample values and both gradients, including large logits where the naive forms overflow.

use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Distribution, Tensor};
use infobound_kernels::{KernelError, PixelLikelihood, pixel_negative_log_likelihood};

fn reference(kind: PixelLikelihood, logits: Tensor<4>, x: Tensor<4>) -> Tensor<1> {
    let per_pixel = match kind {
        PixelLikelihood::BernoulliLogits => {
            relu(logits.clone()) - logits.clone() * x + (-logits.abs()).exp().log1p()
        }
        PixelLikelihood::SigmoidSquaredError => (sigmoid(logits) - x).square(),
    };
    let per_sample: Tensor<2> = per_pixel.flatten(1, 3);
    per_sample.sum_dim(1).squeeze_dim(1)
}

fn to_vec<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_to_vec::<f32>().expect("f32 values")
}

fn max_relative_error(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// `(values, ∂/∂logits, ∂/∂x)` of `Σ_n w_n · nll_n` for fixed weights `w`.
fn evaluate(
    kind: PixelLikelihood,
    fused: bool,
    logits: &Tensor<4>,
    x: &Tensor<4>,
) -> [Vec<f32>; 3] {
    let (logits, x) = (logits.clone().require_grad(), x.clone().require_grad());
    let nll = if fused {
        pixel_negative_log_likelihood(kind, logits.clone(), x.clone()).expect("valid shapes")
    } else {
        reference(kind, logits.clone(), x.clone())
    };
    let weights = Tensor::<1>::from_floats([0.5, -1.0, 2.0], &nll.device());
    let grads = (nll.clone() * weights).sum().backward();
    [
        to_vec(nll),
        to_vec(logits.grad(&grads).expect("logits gradient")),
        to_vec(x.grad(&grads).expect("image gradient")),
    ]
}

#[test]
fn fused_likelihoods_match_burn_values_and_gradients() {
    let device = Device::flex().autodiff();
    // Logits up to ±30: e^{30} overflows neither form's stable branch.
    let logits = Tensor::<4>::random([3, 2, 5, 7], Distribution::Uniform(-30.0, 30.0), &device);
    let x = Tensor::<4>::random([3, 2, 5, 7], Distribution::Uniform(0.0, 1.0), &device);
    for kind in [
        PixelLikelihood::BernoulliLogits,
        PixelLikelihood::SigmoidSquaredError,
    ] {
        let fused = evaluate(kind, true, &logits, &x);
        let composed = evaluate(kind, false, &logits, &x);
        for (name, (a, b)) in ["values", "logits grad", "x grad"]
            .iter()
            .zip(fused.iter().zip(&composed))
        {
            assert!(a.iter().all(|v| v.is_finite()), "{kind:?} {name}: {a:?}");
            let error = max_relative_error(a, b);
            assert!(error <= 1e-5, "{kind:?} {name}: relative error {error}");
        }
    }
}

#[test]
fn mismatched_shapes_are_errors() {
    let device = Device::flex();
    let logits = Tensor::<4>::zeros([2, 1, 4, 4], &device);
    let x = Tensor::<4>::zeros([2, 1, 4, 5], &device);
    assert!(matches!(
        pixel_negative_log_likelihood(PixelLikelihood::BernoulliLogits, logits, x),
        Err(KernelError::Shape(_))
    ));
}
