//! LARS against an independent PyTorch implementation, its edge cases (excluded rank-1
//! parameters, zero gradients, zero parameters), state persistence for exact resume, config
//! validation, and the non-finite-gradient check.

use burn::module::{Module, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use infobound_train::TrainError;
use infobound_train::optim::{LarsConfig, gradients_are_finite};

/// One 2-d weight (LARS applies) and one bias (rank 1: excluded by default).
#[derive(Module, Debug)]
struct Tiny {
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
}

const WEIGHT: [[f32; 3]; 2] = [[0.5, -1.0, 0.25], [2.0, 0.0, -0.75]];
const BIAS: [f32; 3] = [0.1, -0.2, 0.3];

/// Gradients (dW, db) and learning rate of the two reference steps.
type Step = ([[f32; 3]; 2], [f32; 3], f64);
const STEPS: [Step; 2] = [
    (
        [[0.3, -0.2, 0.1], [0.05, 0.4, -0.6]],
        [1.0, -0.5, 0.25],
        0.5,
    ),
    ([[-0.1, 0.7, 0.2], [0.9, -0.3, 0.0]], [0.2, 0.0, -0.4], 0.4),
];

fn device() -> Device {
    Device::flex().autodiff()
}

fn tiny(weight: [[f32; 3]; 2], bias: [f32; 3], device: &Device) -> Tiny {
    Tiny {
        weight: Param::from_tensor(Tensor::from_floats(weight, device)),
        bias: Param::from_tensor(Tensor::from_floats(bias, device)),
    }
}

/// Gradients of `Σ W⊙A + Σ b⊙c`, which are exactly `A` and `c`.
fn linear_grads(model: &Tiny, weight_grad: [[f32; 3]; 2], bias_grad: [f32; 3]) -> GradientsParams {
    let device = model.weight.val().device();
    let loss = (model.weight.val() * Tensor::from_floats(weight_grad, &device)).sum()
        + (model.bias.val() * Tensor::from_floats(bias_grad, &device)).sum();
    GradientsParams::from_grads(loss.backward(), model)
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_to_vec::<f32>().unwrap()
}

fn assert_close(actual: &[f32], expected: &[f64], tolerance: f64) {
    assert_eq!(actual.len(), expected.len());
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (f64::from(a) - e).abs() <= tolerance,
            "element {i}: got {a}, expected {e} (all: {actual:?})"
        );
    }
}

fn reference_config() -> LarsConfig {
    LarsConfig {
        momentum: 0.9,
        weight_decay: 0.1,
        trust_coefficient: 0.02,
        exclude_one_dimensional: true,
        one_dimensional_lr_factor: 1.0,
    }
}

fn run_reference_steps(optimizer: &mut ModuleOptimizer, device: &Device) -> Vec<Tiny> {
    let mut model = tiny(WEIGHT, BIAS, device);
    let mut after = Vec::new();
    for (weight_grad, bias_grad, lr) in STEPS {
        let grads = linear_grads(&model, weight_grad, bias_grad);
        model = optimizer.step(lr, model, grads);
        after.push(model.clone());
    }
    after
}

/// Reference numbers printed by this PyTorch script (float64), run with
/// `/root/torch-cpu-venv/bin/python ref.py`; it implements LARS from the update equations, not
/// from this crate, and takes the gradients from autograd:
///
/// ```python
/// import torch
/// torch.set_default_dtype(torch.float64)
/// def lars_step(p, g, mu, lr, m, wd, eta, excluded):
///     if not excluded:
///         g = g + wd * p
///         pn, gn = p.norm(), g.norm()
///         q = eta * pn / gn if (pn > 0 and gn > 0) else torch.tensor(1.0)
///         g = q * g
///     mu = g.clone() if mu is None else m * mu + g
///     return p - lr * mu, mu
/// W = torch.tensor([[0.5, -1.0, 0.25], [2.0, 0.0, -0.75]])
/// b = torch.tensor([0.1, -0.2, 0.3])
/// grads = [(torch.tensor([[0.3, -0.2, 0.1], [0.05, 0.4, -0.6]]), torch.tensor([1.0, -0.5, 0.25]), 0.5),
///          (torch.tensor([[-0.1, 0.7, 0.2], [0.9, -0.3, 0.0]]), torch.tensor([0.2, 0.0, -0.4]), 0.4)]
/// muW = mub = None
/// for A, c, lr in grads:
///     Wt, bt = W.clone().requires_grad_(), b.clone().requires_grad_()
///     ((Wt * A).sum() + (bt * c).sum()).backward()
///     W, muW = lars_step(W, Wt.grad, muW, lr, 0.9, 0.1, 0.02, False)
///     b, mub = lars_step(b, bt.grad, mub, lr, 0.9, 0.1, 0.02, True)
///     print("W", [f"{v:.10f}" for v in W.flatten().tolist()])
///     print("b", [f"{v:.10f}" for v in b.flatten().tolist()])
/// ```
#[test]
fn two_steps_match_pytorch_reference() {
    let device = device();
    let mut optimizer = reference_config().init().unwrap();
    let after = run_reference_steps(&mut optimizer, &device);
    let expected_weight = [
        [
            0.4910885583,
            -0.9923616214,
            0.2468173423,
            1.9936346845,
            -0.0101845048,
            -0.7328136482,
        ],
        [
            0.4854201604,
            -0.9956901518,
            0.2412241536,
            1.9728966240,
            -0.0130939130,
            -0.7193626127,
        ],
    ];
    // The bias is excluded: plain heavy-ball SGD, b − lr·μ with μ ← 0.9μ + c.
    let expected_bias = [[-0.4, 0.05, 0.175], [-0.84, 0.23, 0.245]];
    for (model, (weight, bias)) in after
        .into_iter()
        .zip(expected_weight.iter().zip(expected_bias))
    {
        assert_close(&values(model.weight.val()), weight, 1e-6);
        assert_close(&values(model.bias.val()), &bias, 1e-6);
    }
}

/// With the exclusion switched off, the bias gets decay and the trust ratio too: one step from
/// zero momentum is `b − lr·η‖b‖/‖c + λb‖·(c + λb)`, evaluated here in f64.
#[test]
fn one_dimensional_parameters_get_lars_when_not_excluded() {
    let device = device();
    let config = LarsConfig {
        exclude_one_dimensional: false,
        ..reference_config()
    };
    let mut optimizer = config.init().unwrap();
    let (weight_grad, bias_grad, lr) = STEPS[0];
    let model = tiny(WEIGHT, BIAS, &device);
    let grads = linear_grads(&model, weight_grad, bias_grad);
    let model = optimizer.step(lr, model, grads);

    let decayed: Vec<f64> = BIAS
        .iter()
        .zip(bias_grad)
        .map(|(&b, c)| f64::from(c) + config.weight_decay * f64::from(b))
        .collect();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let bias: Vec<f64> = BIAS.iter().map(|&b| f64::from(b)).collect();
    let ratio = config.trust_coefficient * norm(&bias) / norm(&decayed);
    let expected: Vec<f64> = bias
        .iter()
        .zip(&decayed)
        .map(|(b, g)| b - lr * ratio * g)
        .collect();
    assert_close(&values(model.bias.val()), &expected, 1e-7);
    // And it differs from the excluded (plain SGD) update by far more than the tolerance.
    assert!((expected[0] - (0.1 - 0.5 * 1.0)).abs() > 0.1);
}

/// A zero gradient without decay leaves a weight unchanged (q falls back to 1, not NaN); with
/// decay only, `g = λp` so `q·g = η‖p‖/(λ‖p‖)·λp = ηp` and the weight shrinks to `(1 − lr·η)p`.
#[test]
fn zero_gradient_is_finite_and_decays_by_trust_coefficient() {
    let device = device();
    let zero = [[0.0; 3]; 2];
    for weight_decay in [0.0, 0.1] {
        let config = LarsConfig {
            weight_decay,
            ..reference_config()
        };
        let mut optimizer = config.init().unwrap();
        let model = tiny(WEIGHT, BIAS, &device);
        let grads = linear_grads(&model, zero, [0.0; 3]);
        let lr = 0.5;
        let model = optimizer.step(lr, model, grads);
        let shrink = if weight_decay > 0.0 {
            1.0 - lr * config.trust_coefficient
        } else {
            1.0
        };
        let expected: Vec<f64> = WEIGHT
            .iter()
            .flatten()
            .map(|&w| shrink * f64::from(w))
            .collect();
        assert_close(&values(model.weight.val()), &expected, 1e-7);
        let bias: Vec<f64> = BIAS.iter().map(|&b| f64::from(b)).collect();
        assert_close(&values(model.bias.val()), &bias, 0.0);
    }
}

/// A zero weight (e.g. a zero-initialised last layer) has ‖p‖ = 0, so q = 1 and the first step is
/// plain SGD, `p = −lr·g`; the trust ratio would otherwise freeze it at zero forever.
#[test]
fn zero_parameter_takes_plain_gradient_step() {
    let device = device();
    let mut optimizer = reference_config().init().unwrap();
    let (weight_grad, bias_grad, lr) = STEPS[0];
    let model = tiny([[0.0; 3]; 2], BIAS, &device);
    let grads = linear_grads(&model, weight_grad, bias_grad);
    let model = optimizer.step(lr, model, grads);
    let expected: Vec<f64> = weight_grad
        .iter()
        .flatten()
        .map(|&g| -lr * f64::from(g))
        .collect();
    assert_close(&values(model.weight.val()), &expected, 1e-7);
}

/// Steps 1–2 on one optimiser, then its state is saved (bytes and burnpack file) and step 3 is
/// taken by a fresh optimiser loaded from it: the parameters must equal those of the
/// uninterrupted run, and differ from a fresh optimiser without state (so the state matters).
#[test]
fn state_round_trip_resumes_identically() {
    let device = device();
    let config = reference_config();
    let mut original = config.init().unwrap();
    let model = run_reference_steps(&mut original, &device).pop().unwrap();
    let third = |optimizer: &mut ModuleOptimizer| {
        let grads = linear_grads(&model, [[0.4, 0.1, -0.3], [0.2, 0.2, 0.5]], [0.3, 0.1, 0.0]);
        let stepped = optimizer.step(0.3, model.clone(), grads);
        (values(stepped.weight.val()), values(stepped.bias.val()))
    };

    let bytes = original.into_bytes().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lars.bpk");
    original.save(&path).unwrap();
    let mut from_bytes = config.init().unwrap().from_bytes(bytes).unwrap();
    let mut from_file = config.init().unwrap().load(&path).unwrap();
    let mut fresh = config.init().unwrap();

    let expected = third(&mut original);
    assert_eq!(third(&mut from_bytes), expected);
    assert_eq!(third(&mut from_file), expected);
    let (fresh_weight, fresh_bias) = third(&mut fresh);
    assert_ne!(fresh_weight, expected.0);
    assert_ne!(fresh_bias, expected.1);
}

#[test]
fn invalid_configs_are_rejected() {
    let invalid = [
        LarsConfig {
            momentum: 1.0,
            ..LarsConfig::default()
        },
        LarsConfig {
            momentum: -0.1,
            ..LarsConfig::default()
        },
        LarsConfig {
            weight_decay: -1e-6,
            ..LarsConfig::default()
        },
        LarsConfig {
            weight_decay: f64::NAN,
            ..LarsConfig::default()
        },
        LarsConfig {
            trust_coefficient: 0.0,
            ..LarsConfig::default()
        },
        LarsConfig {
            trust_coefficient: f64::INFINITY,
            ..LarsConfig::default()
        },
        LarsConfig {
            one_dimensional_lr_factor: 0.0,
            ..LarsConfig::default()
        },
        LarsConfig {
            one_dimensional_lr_factor: f64::NAN,
            ..LarsConfig::default()
        },
    ];
    for config in invalid {
        assert!(
            matches!(config.init(), Err(TrainError::Config(_))),
            "accepted {config:?}"
        );
    }
    LarsConfig::default().init().unwrap();
}

#[test]
fn defaults_are_mveb_and_serde_fills_missing_fields() {
    let defaults = LarsConfig::default();
    assert_eq!(
        (
            defaults.momentum,
            defaults.weight_decay,
            defaults.trust_coefficient,
            defaults.exclude_one_dimensional
        ),
        (0.9, 1e-6, 1e-3, true)
    );
    let parsed: LarsConfig = serde_json::from_str(r#"{"weight_decay": 1.5e-6}"#).unwrap();
    assert_eq!(
        parsed,
        LarsConfig {
            weight_decay: 1.5e-6,
            ..LarsConfig::default()
        }
    );
    assert!(serde_json::from_str::<LarsConfig>(r#"{"eta": 0.001}"#).is_err());
}

#[test]
fn gradients_are_finite_detects_nan_and_infinity() {
    let device = device();
    let model = tiny(WEIGHT, BIAS, &device);
    assert!(gradients_are_finite(
        &model,
        &linear_grads(&model, STEPS[0].0, STEPS[0].1)
    ));
    let mut nan_weight = STEPS[0].0;
    nan_weight[1][2] = f32::NAN;
    assert!(!gradients_are_finite(
        &model,
        &linear_grads(&model, nan_weight, STEPS[0].1)
    ));
    let mut infinite_bias = STEPS[0].1;
    infinite_bias[0] = f32::NEG_INFINITY;
    assert!(!gradients_are_finite(
        &model,
        &linear_grads(&model, STEPS[0].0, infinite_bias)
    ));
    // Parameters without a gradient are not inspected.
    assert!(gradients_are_finite(&model, &GradientsParams::new()));
}

/// Barlow Twins' two learning rates (facebookresearch/barlowtwins@8e8d284 `main.py`: weights
/// at 0.2, biases and norm parameters at 0.0048, per unit of `batch/256`): with
/// `one_dimensional_lr_factor = ρ` the bias (rank 1, excluded: plain momentum SGD) moves by
/// exactly `ρ` times its update at ρ = 1, and the weight (rank 2) by the same amount as at ρ = 1.
#[test]
fn one_dimensional_parameters_step_at_their_own_rate() {
    let device = device();
    let step = |factor: f64| {
        let config = LarsConfig {
            one_dimensional_lr_factor: factor,
            ..reference_config()
        };
        let mut optimizer = config.init().unwrap();
        let (weight_grad, bias_grad, lr) = STEPS[0];
        let model = tiny(WEIGHT, BIAS, &device);
        let grads = linear_grads(&model, weight_grad, bias_grad);
        let model = optimizer.step(lr, model, grads);
        (values(model.weight.val()), values(model.bias.val()))
    };
    let (weight_1, bias_1) = step(1.0);
    let rho = 0.0048 / 0.2;
    let (weight_rho, bias_rho) = step(rho);
    assert_eq!(weight_1, weight_rho);
    let expected: Vec<f64> = BIAS
        .iter()
        .zip(&bias_1)
        .map(|(&b, &after)| f64::from(b) + rho * (f64::from(after) - f64::from(b)))
        .collect();
    assert_close(&bias_rho, &expected, 1e-6);
    assert!((f64::from(bias_rho[0]) - f64::from(bias_1[0])).abs() > 0.1);
}
