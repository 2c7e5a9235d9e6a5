//! A fully connected layer `y = x·W + b` whose flex path runs faer's GEMM on the rayon pool,
//! forward and backward, recorded on Burn's autodiff graph like [`crate::conv2d`]; any other
//! backend or dtype takes Burn's `linear`.
//!
//! Flex's matmul uses the `gemm` crate's AVX2 kernels and, below 192³ multiply-adds, the
//! calling thread alone, which sits outside the rayon pool: a VAE's 512 → 256 layers at batch
//! 64 and a FactorVAE discriminator's 1000-wide layers ran there while the pool idled.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::backend::{
    Autodiff, DispatchKindConversion, DispatchTensor, Flex, GradientCheckpointingStrategy,
};
use burn::tensor::{Tensor, TensorData};
use faer::{Accum, MatMut, MatRef, Par};

use crate::KernelError;
use crate::cpu::{gemm, zeros};
use crate::ops::{
    Placement, Route, VALIDATED, autodiff_primitive, dense, flex_from_vec_1d, flex_primitive,
    placement, record, route, values,
};

/// Fewest multiply-adds that a GEMM spreads over the pool; below, waking the workers costs
/// more than it saves.
const PARALLEL_MIN_MACS: usize = 1 << 18;

/// The layer's sizes: `x: [batch, d_input]`, `W: [d_input, d_output]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LinearShape {
    batch: usize,
    d_input: usize,
    d_output: usize,
}

impl LinearShape {
    fn parallelism(self) -> Par {
        if self.batch * self.d_input * self.d_output >= PARALLEL_MIN_MACS {
            Par::rayon(0)
        } else {
            Par::Seq
        }
    }
}

/// `y = x·W + b` on flex primitives.
fn flex_linear(
    shape: LinearShape,
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
) -> Result<FlexTensor, KernelError> {
    let LinearShape {
        batch,
        d_input,
        d_output,
    } = shape;
    let (x, weight, bias) = (dense(x), dense(weight), bias.map(dense));
    let mut y = match &bias {
        Some(bias) => values(bias)?.repeat(batch),
        None => zeros(batch * d_output),
    };
    gemm(
        MatMut::from_row_major_slice_mut(&mut y, batch, d_output),
        Accum::Add,
        MatRef::from_row_major_slice(values(&x)?, batch, d_input),
        MatRef::from_row_major_slice(values(&weight)?, d_input, d_output),
        shape.parallelism(),
    );
    Ok(FlexTensor::from_data(TensorData::new(y, [batch, d_output])))
}

/// `∂L/∂x = ∂L/∂y · Wᵀ`.
fn flex_input_grad(shape: LinearShape, grad: &[f32], weight: &FlexTensor) -> FlexTensor {
    let weight = values(weight).expect(VALIDATED);
    let mut x_grad = zeros(shape.batch * shape.d_input);
    gemm(
        MatMut::from_row_major_slice_mut(&mut x_grad, shape.batch, shape.d_input),
        Accum::Replace,
        MatRef::from_row_major_slice(grad, shape.batch, shape.d_output),
        MatRef::from_row_major_slice(weight, shape.d_input, shape.d_output).transpose(),
        shape.parallelism(),
    );
    FlexTensor::from_data(TensorData::new(x_grad, [shape.batch, shape.d_input]))
}

/// `∂L/∂W = xᵀ · ∂L/∂y`.
fn flex_weight_grad(shape: LinearShape, grad: &[f32], x: &FlexTensor) -> FlexTensor {
    let x = values(x).expect(VALIDATED);
    let mut w_grad = zeros(shape.d_input * shape.d_output);
    gemm(
        MatMut::from_row_major_slice_mut(&mut w_grad, shape.d_input, shape.d_output),
        Accum::Replace,
        MatRef::from_row_major_slice(x, shape.batch, shape.d_input).transpose(),
        MatRef::from_row_major_slice(grad, shape.batch, shape.d_output),
        shape.parallelism(),
    );
    FlexTensor::from_data(TensorData::new(w_grad, [shape.d_input, shape.d_output]))
}

/// `∂L/∂b = Σ_n ∂L/∂y[n]`, accumulated in f64.
fn column_sums(grad: &[f32], shape: LinearShape) -> Vec<f32> {
    let mut sums = vec![0.0f64; shape.d_output];
    for row in grad.chunks_exact(shape.d_output) {
        for (sum, &g) in sums.iter_mut().zip(row) {
            *sum += f64::from(g);
        }
    }
    sums.into_iter().map(|sum| sum as f32).collect()
}

#[derive(Debug, Clone)]
struct LinearState {
    x: NodeId,
    weight: NodeId,
    shape: LinearShape,
}

/// Backward of [`linear`]; `N = 3` with a bias, `N = 2` without.
#[derive(Debug)]
struct LinearBackward<const N: usize>;

impl<const N: usize> Backward<Flex, N> for LinearBackward<N> {
    type State = LinearState;

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = dense(grads.consume::<Flex>(&ops.node));
        let state = ops.state;
        let dy = values(&grad).expect(VALIDATED);
        if let Some(Some(node)) = ops.parents.get(2) {
            grads.register::<Flex>(node.id, flex_from_vec_1d(column_sums(dy, state.shape)));
        }
        if let Some(node) = &ops.parents[0] {
            let weight = dense(checkpointer.retrieve_node_output::<FlexTensor>(state.weight));
            grads.register::<Flex>(node.id, flex_input_grad(state.shape, dy, &weight));
        }
        if let Some(node) = &ops.parents[1] {
            let x = dense(checkpointer.retrieve_node_output::<FlexTensor>(state.x));
            grads.register::<Flex>(node.id, flex_weight_grad(state.shape, dy, &x));
        }
    }
}

fn linear_autodiff<C>(
    shape: LinearShape,
    x: Tensor<2>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Result<Tensor<2>, KernelError>
where
    C: CheckpointStrategy,
    DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
{
    let x = autodiff_primitive::<C, 2>(x)?;
    let weight = autodiff_primitive::<C, 2>(weight)?;
    let bias = bias.map(autodiff_primitive::<C, 1>).transpose()?;
    let forward = || {
        let bias = bias.as_ref().map(|b| b.primitive().clone());
        flex_linear(
            shape,
            x.primitive().clone(),
            weight.primitive().clone(),
            bias,
        )
    };
    let state = |x, weight| LinearState { x, weight, shape };
    let output = match &bias {
        Some(b) => record::<_, _, C, 3>(LinearBackward::<3>, [&x, &weight, b], state, forward)?,
        None => record::<_, _, C, 2>(LinearBackward::<2>, [&x, &weight], state, forward)?,
    };
    Ok(Tensor::from_primitive::<Autodiff<Flex, C>>(output))
}

/// The fully connected layer `y[n, o] = b_o + Σ_i x[n, i] · W[i, o]`, the same operation and
/// shapes as `burn::tensor::module::linear` (and `burn::nn::Linear`): `x: [N, d_in]`,
/// `weight: [d_in, d_out]`, `bias: [d_out]`; gradients `∂L/∂x = ∂L/∂y·Wᵀ`,
/// `∂L/∂W = xᵀ·∂L/∂y`, `∂L/∂b = Σ_n ∂L/∂y[n]`.
///
/// On flex with `f32` operands the three products run faer's GEMM, on the rayon pool when
/// they have at least 2¹⁸ multiply-adds; everything else is Burn's `linear`.
///
/// # Errors
/// [`KernelError::Shape`] if the operands' shapes do not chain (checked on every backend);
/// [`KernelError::Backend`] if the backend refuses to hand over a primitive.
pub fn linear(
    x: Tensor<2>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Result<Tensor<2>, KernelError> {
    let ([batch, d_input], [weight_in, d_output]) = (x.dims(), weight.dims());
    let bias_len = bias.as_ref().map(|b| b.dims()[0]);
    if weight_in != d_input || bias_len.is_some_and(|len| len != d_output) {
        return Err(KernelError::Shape(format!(
            "linear layer: input {:?}, weight {:?}, bias {bias_len:?} do not chain",
            x.dims(),
            weight.dims()
        )));
    }
    let shape = LinearShape {
        batch,
        d_input,
        d_output,
    };
    let mut placements: Vec<Placement> = vec![placement(&x), placement(&weight)];
    placements.extend(bias.as_ref().map(placement));
    match route(&placements) {
        Route::Generic => Ok(burn::tensor::module::linear(x, weight, bias)),
        Route::Flex => {
            let bias = bias.map(flex_primitive).transpose()?;
            let y = flex_linear(shape, flex_primitive(x)?, flex_primitive(weight)?, bias)?;
            Ok(Tensor::from_primitive::<Flex>(y))
        }
        Route::AutodiffFlex(GradientCheckpointingStrategy::Disabled) => {
            linear_autodiff::<NoCheckpointing>(shape, x, weight, bias)
        }
        Route::AutodiffFlex(GradientCheckpointingStrategy::Balanced) => {
            linear_autodiff::<BalancedCheckpointing>(shape, x, weight, bias)
        }
    }
}
