//! `relu` and a residual block's `relu(a + b)` whose flex path runs on the rayon pool, forward
//! and backward, recorded on Burn's autodiff graph like [`crate::conv2d`]; any other backend
//! or dtype takes Burn's own ops.
//!
//! Flex runs every element-wise op on the calling thread, which is outside the rayon pool: in
//! a convolutional training step the pool's workers sit idle through each activation and its
//! gradient (a profile of the 3-channel VAE step put Burn's ReLU at ≈ 6 % of all samples, all
//! on that one thread). Here both passes are split over the pool, and each writes into its
//! operand's buffer when nothing else holds it, as flex's own unary ops do.

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
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

use crate::KernelError;
use crate::ops::{
    Route, VALIDATED, autodiff_primitive, dense, flex_primitive, placement, route, values,
};

/// Elements per rayon task: large enough that a task outweighs its scheduling, small enough
/// that both workers get a share of a 64-image feature map.
const CHUNK: usize = 1 << 15;

/// `max(x, 0)`, with NaN passed through (as Burn's flex `relu` and PyTorch do).
#[inline(always)]
fn rectify(x: f32) -> f32 {
    if x <= 0.0 { 0.0 } else { x }
}

/// `g` where the ReLU's output `y` is positive (or NaN), else 0: `∂ max(x, 0)/∂x` applied to
/// the upstream gradient, read off the output since `y > 0 ⇔ x > 0`.
#[inline(always)]
fn gate(y: f32, g: f32) -> f32 {
    if y <= 0.0 { 0.0 } else { g }
}

/// `tensor` itself if its one dense f32 buffer can be written in place (nothing else holds
/// it), else `Err(tensor)`.
fn writable(mut tensor: FlexTensor) -> Result<FlexTensor, FlexTensor> {
    let dense = tensor.layout().is_contiguous() && tensor.layout().start_offset() == 0;
    if dense && tensor.try_storage_mut::<f32>().is_some() {
        Ok(tensor)
    } else {
        Err(tensor)
    }
}

/// The dense f32 storage of a tensor that [`writable`] accepted.
fn storage_mut(tensor: &mut FlexTensor) -> &mut [f32] {
    let len = tensor.layout().num_elements();
    let storage = tensor
        .try_storage_mut::<f32>()
        .expect("`writable` checked the buffer is unshared f32");
    &mut storage[..len]
}

/// `f` applied to every value of an f32 flex tensor, in parallel chunks: in place when the
/// buffer is unshared, else into a new buffer in the same pass.
fn map_values(tensor: FlexTensor, f: impl Fn(f32) -> f32 + Sync + Send) -> FlexTensor {
    match writable(tensor) {
        Ok(mut tensor) => {
            storage_mut(&mut tensor)
                .par_chunks_mut(CHUNK)
                .for_each(|chunk| chunk.iter_mut().for_each(|v| *v = f(*v)));
            tensor
        }
        Err(tensor) => {
            let tensor = dense(tensor);
            let source = values(&tensor).expect(VALIDATED);
            let mut mapped = Vec::with_capacity(source.len());
            mapped.par_extend(source.par_iter().with_min_len(CHUNK).map(|&v| f(v)));
            FlexTensor::from_data(TensorData::new(mapped, tensor.layout().shape().clone()))
        }
    }
}

/// `f(t, o)` for the values `t` of an f32 flex tensor and `o` of `other` (same length), in
/// parallel chunks: in `target`'s buffer when it is unshared, else into a new one.
fn zip_values(
    target: FlexTensor,
    other: &[f32],
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) -> FlexTensor {
    match writable(target) {
        Ok(mut target) => {
            storage_mut(&mut target)
                .par_chunks_mut(CHUNK)
                .zip(other.par_chunks(CHUNK))
                .for_each(|(t, o)| {
                    for (t, &o) in t.iter_mut().zip(o) {
                        *t = f(*t, o);
                    }
                });
            target
        }
        Err(target) => {
            let target = dense(target);
            let values = values(&target).expect(VALIDATED);
            let mut zipped = Vec::with_capacity(values.len());
            zipped.par_extend(
                values
                    .par_iter()
                    .zip(other.par_iter())
                    .with_min_len(CHUNK)
                    .map(|(&t, &o)| f(t, o)),
            );
            FlexTensor::from_data(TensorData::new(zipped, target.layout().shape().clone()))
        }
    }
}

/// `max(a + b, 0)` of two f32 flex tensors of one shape, written into `a`'s or `b`'s buffer
/// when one is unshared, else into a new one; in parallel chunks either way.
fn flex_add_relu(a: FlexTensor, b: FlexTensor) -> FlexTensor {
    let sum = |x: f32, y: f32| rectify(x + y);
    match writable(a) {
        Ok(a) => zip_values(a, values(&dense(b)).expect(VALIDATED), sum),
        Err(a) => zip_values(b, values(&dense(a)).expect(VALIDATED), sum),
    }
}

/// `∂L/∂x = gate(y, ∂L/∂y)` on flex primitives, written into the gradient's buffer if it can.
fn flex_relu_backward(output: &FlexTensor, grad: FlexTensor) -> FlexTensor {
    let output = dense(output.clone());
    zip_values(grad, values(&output).expect(VALIDATED), |g, y| gate(y, g))
}

/// Backward of [`relu`] (`N = 1`) and [`add_relu`] (`N = 2`, both operands get the same
/// gradient); the state is the forward's output.
#[derive(Debug)]
struct ReluBackward<const N: usize>;

impl<const N: usize> Backward<Flex, N> for ReluBackward<N> {
    type State = FlexTensor;

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<Flex>(&ops.node);
        let gated = flex_relu_backward(&ops.state, grad);
        for node in ops.parents.iter().flatten() {
            grads.register::<Flex>(node.id, gated.clone());
        }
    }
}

fn relu_autodiff<C, const D: usize>(x: Tensor<D>) -> Result<Tensor<D>, KernelError>
where
    C: CheckpointStrategy,
    DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
{
    let (primitive, node) = autodiff_primitive::<C, D>(x)?.into_parts();
    let output = map_values(primitive, rectify);
    let output = match ReluBackward::<1>
        .prepare::<C>([node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(output.clone(), output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    };
    Ok(Tensor::from_primitive::<Autodiff<Flex, C>>(output))
}

/// The rectified linear unit `max(x, 0)` element-wise (NaN stays NaN), with gradient
/// `∂L/∂x = ∂L/∂y · 1[x > 0]` (Nair & Hinton 2010).
///
/// On flex with `f32` values both passes run on the rayon pool, in place when the operand's
/// buffer is not shared; everything else is Burn's `relu`.
///
/// # Errors
/// [`KernelError::Backend`] if the backend refuses to hand over the tensor's primitive.
pub fn relu<const D: usize>(x: Tensor<D>) -> Result<Tensor<D>, KernelError> {
    match route(&[placement(&x)]) {
        Route::Generic => Ok(burn::tensor::activation::relu(x)),
        Route::Flex => Ok(Tensor::from_primitive::<Flex>(map_values(
            flex_primitive(x)?,
            rectify,
        ))),
        Route::AutodiffFlex(GradientCheckpointingStrategy::Disabled) => {
            relu_autodiff::<NoCheckpointing, D>(x)
        }
        Route::AutodiffFlex(GradientCheckpointingStrategy::Balanced) => {
            relu_autodiff::<BalancedCheckpointing, D>(x)
        }
    }
}

fn add_relu_autodiff<C, const D: usize>(
    a: Tensor<D>,
    b: Tensor<D>,
) -> Result<Tensor<D>, KernelError>
where
    C: CheckpointStrategy,
    DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
{
    let (a, a_node) = autodiff_primitive::<C, D>(a)?.into_parts();
    let (b, b_node) = autodiff_primitive::<C, D>(b)?.into_parts();
    let output = flex_add_relu(a, b);
    let output = match ReluBackward::<2>
        .prepare::<C>([a_node, b_node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(output.clone(), output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    };
    Ok(Tensor::from_primitive::<Autodiff<Flex, C>>(output))
}

/// `max(a + b, 0)` element-wise, as a residual block ends (He et al. 2016), with gradient
/// `∂L/∂a = ∂L/∂b = ∂L/∂y · 1[a + b > 0]`.
///
/// On flex with `f32` values this is one parallel pass each way, in the buffer of whichever
/// operand is unshared, where `relu(a + b)` is two passes plus an allocation; everything else
/// is Burn's `relu(a + b)`.
///
/// # Errors
/// [`KernelError::Shape`] if `a` and `b` differ in shape (no broadcasting);
/// [`KernelError::Backend`] if the backend refuses to hand over a primitive.
pub fn add_relu<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Result<Tensor<D>, KernelError> {
    if a.dims() != b.dims() {
        return Err(KernelError::Shape(format!(
            "add_relu operands {:?} and {:?} differ in shape",
            a.dims(),
            b.dims()
        )));
    }
    match route(&[placement(&a), placement(&b)]) {
        Route::Generic => Ok(burn::tensor::activation::relu(a + b)),
        Route::Flex => Ok(Tensor::from_primitive::<Flex>(flex_add_relu(
            flex_primitive(a)?,
            flex_primitive(b)?,
        ))),
        Route::AutodiffFlex(GradientCheckpointingStrategy::Disabled) => {
            add_relu_autodiff::<NoCheckpointing, D>(a, b)
        }
        Route::AutodiffFlex(GradientCheckpointingStrategy::Balanced) => {
            add_relu_autodiff::<BalancedCheckpointing, D>(a, b)
        }
    }
}
