//! The streaming mixture log-densities against the same terms composed from Burn's tensor ops
//! over the materialised `B × B × K` array, on flex: values and the gradients with respect to
//! `z`, `μ` and `log σ²` in `f32` and `f64`, uniform and matrix weights; and the `f64`
//! gradients against central finite differences.

use burn::tensor::{DType, Device, Distribution, Tensor, TensorData};
use infobound_kernels::{
    KernelError, MixtureLogDensities, MixtureLogWeights, gaussian_mixture_log_densities,
};

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// The three rows by the definition: `ℓ[i, j, k]` materialised, logsumexp over `j`.
fn reference(
    z: Tensor<2>,
    mu: Tensor<2>,
    logvar: Tensor<2>,
    weights: &MixtureLogWeights,
) -> [Tensor<1>; 3] {
    let [batch, _] = z.dims();
    let diff = z.clone().unsqueeze_dim::<3>(1) - mu.clone().unsqueeze_dim::<3>(0);
    let logvar3 = logvar.clone().unsqueeze_dim::<3>(0);
    let cross =
        (diff.square() * logvar3.clone().neg().exp() + logvar3.add_scalar(LN_2PI)).mul_scalar(-0.5);
    let own = ((z - mu).square() * logvar.clone().neg().exp() + logvar.add_scalar(LN_2PI))
        .mul_scalar(-0.5)
        .sum_dim(1)
        .reshape([batch]);
    let w = match weights {
        MixtureLogWeights::Uniform(w) => vec![*w; batch * batch],
        MixtureLogWeights::Matrix(w) => w.clone(),
    };
    let w = Tensor::<3>::from_data(
        TensorData::new(w, [batch, batch, 1]),
        (&cross.device(), cross.dtype()),
    );
    let lse = |x: Tensor<3>| {
        let shift = x.clone().max_dim(1).detach();
        (x - shift.clone()).exp().sum_dim(1).log() + shift
    };
    let mixture = lse(cross.clone().sum_dim(2) + w.clone()).reshape([batch]);
    let product = lse(cross + w).sum_dim(2).reshape([batch]);
    [own, mixture, product]
}

fn host<const D: usize>(tensor: Tensor<D>) -> Vec<f64> {
    tensor.try_into_vec_as::<f64>().expect("readback")
}

/// Largest |a − b| relative to the reference's largest magnitude (at least 1e-3).
fn relative_error(ours: &[f64], reference: &[f64]) -> f64 {
    assert_eq!(ours.len(), reference.len(), "lengths differ");
    let scale = reference.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    ours.iter()
        .zip(reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
        / scale
}

fn leaf(values: Vec<f64>, shape: [usize; 2], dtype: DType, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, shape), (device, dtype))
}

/// Samples drawn from their own posteriors (leaf tensors of `dtype` on `device`).
fn inputs(batch: usize, latent: usize, dtype: DType, device: &Device) -> [Tensor<2>; 3] {
    let plain = Device::flex();
    let random = |low, high| {
        Tensor::<2>::random([batch, latent], Distribution::Uniform(low, high), &plain)
            .cast(DType::F64)
    };
    let mu = random(-2.0, 2.0);
    let logvar = random(-3.0, 1.0);
    let z = mu.clone() + random(-1.5, 1.5) * logvar.clone().mul_scalar(0.5).exp();
    [z, mu, logvar].map(|t| leaf(host(t), [batch, latent], dtype, device))
}

fn weight_choices(batch: usize) -> Vec<MixtureLogWeights> {
    let matrix = (0..batch * batch)
        .map(|e| -((e * 7 % 13) as f64) * 0.3 - (batch as f64).ln())
        .collect();
    vec![
        MixtureLogWeights::Uniform(-(batch as f64 * 1000.0).ln()),
        MixtureLogWeights::Matrix(matrix),
    ]
}

/// `(rows, ∂/∂z, ∂/∂μ, ∂/∂log σ²)` of `Σ_i a_i own_i + b_i mixture_i + c_i product_i` for
/// fixed coefficients.
fn evaluate(fused: bool, operands: &[Tensor<2>; 3], weights: &MixtureLogWeights) -> [Vec<f64>; 4] {
    let [z, mu, logvar] = operands.clone().map(Tensor::require_grad);
    let rows = if fused {
        let MixtureLogDensities {
            own,
            mixture,
            product_of_marginals,
        } = gaussian_mixture_log_densities(z.clone(), mu.clone(), logvar.clone(), weights)
            .expect("valid operands");
        [own, mixture, product_of_marginals]
    } else {
        reference(z.clone(), mu.clone(), logvar.clone(), weights)
    };
    let [batch, _] = z.dims();
    let coefficients = |seed: f64| {
        let values: Vec<f64> = (0..batch)
            .map(|i| ((i as f64 + seed) * 1.7).sin())
            .collect();
        Tensor::<1>::from_data(TensorData::new(values, [batch]), (&z.device(), z.dtype()))
    };
    let loss = rows
        .iter()
        .enumerate()
        .map(|(r, row)| (row.clone() * coefficients(r as f64)).sum())
        .reduce(|a, b| a + b)
        .expect("three rows");
    let grads = loss.backward();
    let values = rows.into_iter().flat_map(host).collect();
    [
        values,
        host(z.grad(&grads).expect("z gradient")),
        host(mu.grad(&grads).expect("mu gradient")),
        host(logvar.grad(&grads).expect("logvar gradient")),
    ]
}

#[test]
fn fused_values_and_gradients_match_the_materialised_definition() {
    let device = Device::flex().autodiff();
    for (dtype, tolerance) in [(DType::F32, 1e-5), (DType::F64, 1e-11)] {
        // B = 203, K = 10 (412k terms) splits both passes into several parallel tasks and
        // the backward into several accumulator blocks, the last one short.
        for batch in [2, 3, 17, 64, 203] {
            for latent in [1, 10] {
                let operands = inputs(batch, latent, dtype, &device);
                for weights in weight_choices(batch) {
                    let fused = evaluate(true, &operands, &weights);
                    let reference = evaluate(false, &operands, &weights);
                    for (what, (ours, theirs)) in ["values", "dz", "dmu", "dlogvar"]
                        .iter()
                        .zip(fused.iter().zip(&reference))
                    {
                        let error = relative_error(ours, theirs);
                        assert!(
                            error <= tolerance,
                            "{dtype:?} B={batch} K={latent} {weights:?}: {what} off by {error}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn fused_f64_gradients_match_finite_differences() {
    let device = Device::flex().autodiff();
    let (batch, latent) = (5, 3);
    let operands = inputs(batch, latent, DType::F64, &device);
    let plain = Device::flex();
    let values: Vec<Vec<f64>> = operands.iter().map(|t| host(t.clone())).collect();
    for weights in weight_choices(batch) {
        let [_, dz, dmu, dlogvar] = evaluate(true, &operands, &weights);
        let analytic = [dz, dmu, dlogvar];
        // The same scalar loss on the plain (forward-only) flex path.
        let loss = |values: &[Vec<f64>]| {
            let t = |v: &Vec<f64>| {
                Tensor::<2>::from_data(
                    TensorData::new(v.clone(), [batch, latent]),
                    (&plain, DType::F64),
                )
            };
            let d = gaussian_mixture_log_densities(
                t(&values[0]),
                t(&values[1]),
                t(&values[2]),
                &weights,
            )
            .expect("valid");
            [d.own, d.mixture, d.product_of_marginals]
                .into_iter()
                .enumerate()
                .map(|(r, row)| {
                    host(row)
                        .iter()
                        .enumerate()
                        .map(|(i, v)| v * ((i as f64 + r as f64) * 1.7).sin())
                        .sum::<f64>()
                })
                .sum::<f64>()
        };
        let h = 1e-6;
        for (operand, gradient) in analytic.iter().enumerate() {
            for entry in 0..batch * latent {
                let mut plus = values.clone();
                plus[operand][entry] += h;
                let mut minus = values.clone();
                minus[operand][entry] -= h;
                let numeric = (loss(&plus) - loss(&minus)) / (2.0 * h);
                let error = (numeric - gradient[entry]).abs() / numeric.abs().max(1.0);
                assert!(
                    error < 1e-6,
                    "{weights:?} operand {operand} entry {entry}: analytic {} numeric {numeric}",
                    gradient[entry]
                );
            }
        }
    }
}

#[test]
fn forward_only_flex_equals_the_autodiff_path() {
    let tracked_device = Device::flex().autodiff();
    // One task, and (B = 203, K = 10) several.
    for shape in [[9, 4], [203, 10]] {
        let operands = inputs(shape[0], shape[1], DType::F32, &tracked_device);
        for weights in weight_choices(shape[0]) {
            let [z, mu, logvar] = operands
                .clone()
                .map(|t| leaf(host(t), shape, DType::F32, &Device::flex()));
            let plain = gaussian_mixture_log_densities(z, mu, logvar, &weights).expect("valid");
            let tracked = evaluate(true, &operands, &weights);
            let plain: Vec<f64> = [plain.own, plain.mixture, plain.product_of_marginals]
                .into_iter()
                .flat_map(host)
                .collect();
            assert_eq!(plain, tracked[0]);
        }
    }
}

#[test]
fn mismatched_operands_are_refused() {
    let device = Device::flex();
    let a = Tensor::<2>::zeros([4, 3], &device);
    let b = Tensor::<2>::zeros([4, 2], &device);
    let uniform = MixtureLogWeights::Uniform(0.0);
    assert!(matches!(
        gaussian_mixture_log_densities(a.clone(), b, a.clone(), &uniform),
        Err(KernelError::Shape(_))
    ));
    let short = MixtureLogWeights::Matrix(vec![0.0; 15]);
    assert!(matches!(
        gaussian_mixture_log_densities(a.clone(), a.clone(), a, &short),
        Err(KernelError::Shape(_))
    ));
}

/// On a gradient-checkpointing device (Burn's `Balanced` strategy, which may recompute the
/// memory-bound ops around the kernel in the backward pass) the gradients equal those of the
/// plain autodiff device bit for bit: the kernel's backward reads only what its forward saved.
#[test]
fn checkpointed_autodiff_equals_the_plain_autodiff_path() {
    let (batch, latent) = (203, 10);
    let values = inputs(batch, latent, DType::F32, &Device::flex()).map(host);
    let gradients = |device: &Device, weights: &MixtureLogWeights| -> Vec<Vec<f64>> {
        let [z, mu, logvar] = values
            .clone()
            .map(|v| leaf(v, [batch, latent], DType::F32, device).require_grad());
        // Element-wise ops before the kernel, which the checkpointing strategy may recompute.
        let d = gaussian_mixture_log_densities(
            z.clone().mul_scalar(1.5),
            mu.clone().tanh(),
            logvar.clone().mul_scalar(0.5),
            weights,
        )
        .expect("valid operands");
        let loss = (d.mixture - d.product_of_marginals).sum() + d.own.mul_scalar(0.3).sum();
        let grads = loss.backward();
        [z, mu, logvar]
            .iter()
            .map(|t| host(t.grad(&grads).expect("gradient")))
            .collect()
    };
    for weights in weight_choices(batch) {
        let plain = gradients(&Device::flex().autodiff(), &weights);
        let checkpointed = gradients(
            &Device::flex().autodiff().gradient_checkpointing(),
            &weights,
        );
        assert_eq!(plain, checkpointed, "{weights:?}");
    }
}
