//! Tensor-level training-mode batch normalisation whose flex path runs
//! [`crate::cpu::batch_norm_train_forward`] / [`crate::cpu::batch_norm_train_backward`],
//! recorded on Burn's autodiff graph like the convolutions of [`crate::conv2d`]; any other
//! backend or dtype takes Burn's `batch_norm_train`.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{
    Autodiff, DispatchKindConversion, DispatchTensor, Flex, GradientCheckpointingStrategy,
};
use burn::tensor::module::BatchNormTrainOutput;
use burn::tensor::{Tensor, TensorData};

use crate::KernelError;
use crate::cpu;
use crate::ops::{
    AutodiffFlexTensor, Route, VALIDATED, autodiff_primitive, dense, flex_from_vec_1d,
    flex_primitive, placement, route, values,
};

/// Sizes of one batch normalisation: the input's dims, seen as `[N, C, P]` with P the product
/// of the trailing sizes.
#[derive(Debug, Clone)]
struct NormShape {
    dims: Vec<usize>,
    channels: usize,
    pixels: usize,
}

/// What the backward needs: the checkpointed input, γ and the forward's statistics.
#[derive(Debug, Clone)]
struct BatchNormState {
    x: NodeId,
    gamma: Vec<f32>,
    mean: Vec<f32>,
    inverse_std: Vec<f32>,
    shape: NormShape,
}

/// Backward of [`batch_norm_train`]: parents `[x, γ, β]`.
#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 3> for BatchNormBackward {
    type State = BatchNormState;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = dense(grads.consume::<Flex>(&ops.node));
        let state = ops.state;
        let x = dense(checkpointer.retrieve_node_output::<FlexTensor>(state.x));
        let gradients = cpu::batch_norm_train_backward(
            values(&x).expect(VALIDATED),
            values(&grad).expect(VALIDATED),
            state.shape.channels,
            state.shape.pixels,
            &state.gamma,
            &state.mean,
            &state.inverse_std,
        )
        .expect(VALIDATED);
        let [x_node, gamma_node, beta_node] = ops.parents;
        if let Some(node) = x_node {
            let x_grad = FlexTensor::from_data(TensorData::new(gradients.x, state.shape.dims));
            grads.register::<Flex>(node.id, x_grad);
        }
        if let Some(node) = gamma_node {
            grads.register::<Flex>(node.id, flex_from_vec_1d(gradients.gamma));
        }
        if let Some(node) = beta_node {
            grads.register::<Flex>(node.id, flex_from_vec_1d(gradients.beta));
        }
    }
}

/// The forward on flex primitives: `(y, statistics)`.
fn flex_forward(
    shape: &NormShape,
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f64,
) -> Result<(FlexTensor, cpu::BatchNormStatistics), KernelError> {
    let (output, statistics) = cpu::batch_norm_train_forward(
        values(x)?,
        shape.channels,
        shape.pixels,
        values(gamma)?,
        values(beta)?,
        epsilon,
    )?;
    Ok((
        FlexTensor::from_data(TensorData::new(output, shape.dims.clone())),
        statistics,
    ))
}

fn batch_norm_autodiff<C, const D: usize>(
    shape: NormShape,
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> Result<BatchNormTrainOutput<D>, KernelError>
where
    C: CheckpointStrategy,
    DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
{
    let x = autodiff_primitive::<C, D>(x)?;
    let gamma = autodiff_primitive::<C, 1>(gamma)?;
    let beta = autodiff_primitive::<C, 1>(beta)?;
    let (x_values, gamma_values, beta_values) = (
        dense(x.primitive().clone()),
        dense(gamma.primitive().clone()),
        dense(beta.primitive().clone()),
    );
    let (output, statistics) =
        flex_forward(&shape, &x_values, &gamma_values, &beta_values, epsilon)?;
    let constant = |values: &[f32]| {
        Tensor::<1>::from_primitive::<Autodiff<Flex, C>>(AutodiffFlexTensor::new(flex_from_vec_1d(
            values.to_vec(),
        )))
    };
    let (mean, variance) = (constant(&statistics.mean), constant(&statistics.variance));
    let nodes = [x.node(), gamma.node(), beta.node()];
    let output = match BatchNormBackward
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let state = BatchNormState {
                x: prep.checkpoint(&x),
                gamma: values(&gamma_values)?.to_vec(),
                mean: statistics.mean,
                inverse_std: statistics.inverse_std,
                shape,
            };
            prep.finish(state, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    };
    Ok(BatchNormTrainOutput {
        output: Tensor::from_primitive::<Autodiff<Flex, C>>(output),
        mean,
        variance,
    })
}

/// Training-mode batch normalisation with the batch's own statistics (Ioffe & Szegedy, ICML
/// 2015): `y = γ_c (x − μ_c) / √(σ²_c + ε) + β_c` over every dimension but the channel one, the
/// same operation, shapes and outputs as `burn::tensor::module::batch_norm_train` (`x` is
/// `[N, C, …]`; the returned mean and biased variance are detached).
///
/// On flex with `f32` operands the forward and the gradients with respect to x, γ and β run
/// the two-pass kernels of [`crate::cpu::batch_norm_train_forward`]; everything else calls
/// Burn's `batch_norm_train`.
///
/// # Errors
/// [`KernelError::Shape`] if `x` has rank < 2, no elements, or γ / β do not have C entries.
pub fn batch_norm_train<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> Result<BatchNormTrainOutput<D>, KernelError> {
    let dims = x.dims();
    if D < 2 || dims.contains(&0) {
        return Err(KernelError::Shape(format!(
            "batch norm needs a non-empty [N, C, …] input, got {dims:?}"
        )));
    }
    let channels = dims[1];
    for (name, len) in [("gamma", gamma.dims()[0]), ("beta", beta.dims()[0])] {
        if len != channels {
            return Err(KernelError::Shape(format!(
                "{name} has {len} entries for {channels} channels"
            )));
        }
    }
    let shape = NormShape {
        dims: dims.to_vec(),
        channels,
        pixels: dims[2..].iter().product(),
    };
    match route(&[placement(&x), placement(&gamma), placement(&beta)]) {
        Route::Generic => Ok(burn::tensor::module::batch_norm_train(
            x, gamma, beta, epsilon,
        )),
        Route::Flex => {
            let (output, statistics) = flex_forward(
                &shape,
                &dense(flex_primitive(x)?),
                &dense(flex_primitive(gamma)?),
                &dense(flex_primitive(beta)?),
                epsilon,
            )?;
            Ok(BatchNormTrainOutput {
                output: Tensor::from_primitive::<Flex>(output),
                mean: Tensor::from_primitive::<Flex>(flex_from_vec_1d(statistics.mean)),
                variance: Tensor::from_primitive::<Flex>(flex_from_vec_1d(statistics.variance)),
            })
        }
        Route::AutodiffFlex(GradientCheckpointingStrategy::Disabled) => {
            batch_norm_autodiff::<NoCheckpointing, D>(shape, x, gamma, beta, epsilon)
        }
        Route::AutodiffFlex(GradientCheckpointingStrategy::Balanced) => {
            batch_norm_autodiff::<BalancedCheckpointing, D>(shape, x, gamma, beta, epsilon)
        }
    }
}
