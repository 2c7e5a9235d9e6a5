//! Tensor-level `conv2d` / `conv_transpose2d` whose flex path runs the kernels of [`crate::cpu`],
//! with a hand-written autodiff backward; any other backend or dtype takes Burn's generic op.
//!
//! Burn 0.22's backend-extension API (`burn/extension`) is used directly: a tensor is downcast
//! with `Tensor::try_into_primitive::<Autodiff<Flex, C>>()`, the operation is recorded on the
//! autodiff graph the way burn-autodiff records its own convolutions (`Backward::prepare`,
//! `OpsKind::Tracked`, checkpointed inputs), and the result is wrapped back with
//! `Tensor::from_primitive`. The `#[backend_extension]` macro is not needed for this: it only
//! generates the same dispatch for a trait, and still requires this hand-written autodiff
//! implementation.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{
    Autodiff, BackendTypes, DispatchAutodiffContext, DispatchKindConversion, DispatchTensor,
    DispatchTensorKind, Flex, GradientCheckpointingStrategy,
};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{DType, Tensor, TensorData};

use crate::KernelError;
use crate::cpu::{self, Conv2dGeometry, ConvAlgorithm};

/// The autodiff tensor primitive of `Autodiff<Flex, C>` (the same type for every strategy `C`).
pub(crate) type AutodiffFlexTensor = <Autodiff<Flex> as BackendTypes>::FloatTensorPrimitive;

/// Where a float tensor lives, as far as the fast path cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    Flex,
    AutodiffFlex(GradientCheckpointingStrategy),
    Other,
}

/// Which implementation one call takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Flex,
    AutodiffFlex(GradientCheckpointingStrategy),
    Generic,
}

pub(crate) fn placement<const D: usize>(tensor: &Tensor<D>) -> Placement {
    if tensor.dtype() != DType::F32 {
        return Placement::Other;
    }
    backend_placement(tensor)
}

/// [`placement`] whatever the dtype (for kernels that also run in `f64`).
pub(crate) fn backend_placement<const D: usize>(tensor: &Tensor<D>) -> Placement {
    let dispatch = tensor.clone().into_dispatch();
    match (&dispatch.kind, dispatch.autodiff) {
        (DispatchTensorKind::Flex(_), DispatchAutodiffContext::Disabled) => Placement::Flex,
        (DispatchTensorKind::Autodiff(inner), DispatchAutodiffContext::Enabled(strategy))
            if matches!(**inner, DispatchTensorKind::Flex(_)) =>
        {
            Placement::AutodiffFlex(strategy)
        }
        _ => Placement::Other,
    }
}

/// The fast path needs every operand on flex in `f32`; a plain flex tensor mixed with autodiff
/// ones joins the graph as a constant, as Burn's dispatch does.
pub(crate) fn route(placements: &[Placement]) -> Route {
    let mut strategy = None;
    for &placement in placements {
        match placement {
            Placement::Other => return Route::Generic,
            Placement::Flex => {}
            Placement::AutodiffFlex(s) => match strategy {
                Some(previous) if previous != s => return Route::Generic,
                _ => strategy = Some(s),
            },
        }
    }
    strategy.map_or(Route::Flex, Route::AutodiffFlex)
}

pub(crate) fn backend_error(error: impl core::fmt::Debug) -> KernelError {
    KernelError::Backend(format!("{error:?}"))
}

pub(crate) fn flex_primitive<const D: usize>(tensor: Tensor<D>) -> Result<FlexTensor, KernelError> {
    tensor.try_into_primitive::<Flex>().map_err(backend_error)
}

pub(crate) fn autodiff_primitive<C, const D: usize>(
    tensor: Tensor<D>,
) -> Result<AutodiffFlexTensor, KernelError>
where
    C: CheckpointStrategy,
    DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
{
    if placement(&tensor) == Placement::Flex {
        return Ok(AutodiffFlexTensor::new(flex_primitive(tensor)?));
    }
    tensor
        .try_into_primitive::<Autodiff<Flex, C>>()
        .map_err(backend_error)
}

/// A flex tensor whose storage is one dense row-major block (copied only if it is a view).
pub(crate) fn dense(tensor: FlexTensor) -> FlexTensor {
    if tensor.as_slice::<f32>().is_some() {
        tensor
    } else {
        tensor.to_contiguous()
    }
}

pub(crate) fn values(tensor: &FlexTensor) -> Result<&[f32], KernelError> {
    tensor
        .as_slice::<f32>()
        .ok_or_else(|| KernelError::Backend("flex tensor is not dense f32".into()))
}

fn flex_from_vec(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

pub(crate) fn flex_from_vec_1d(values: Vec<f32>) -> FlexTensor {
    let len = values.len();
    FlexTensor::from_data(TensorData::new(values, [len]))
}

/// `[N, C_in, H, W]`: the input space of `geometry`.
fn input_shape(g: &Conv2dGeometry) -> [usize; 4] {
    [g.batch, g.in_channels, g.in_size[0], g.in_size[1]]
}

/// `[N, C_out, H_out, W_out]`: the output space of `geometry`.
fn output_shape(g: &Conv2dGeometry) -> [usize; 4] {
    [g.batch, g.out_channels, g.out_size[0], g.out_size[1]]
}

/// `[C_out, C_in, k_h, k_w]`: the weight of `geometry`.
fn weight_shape(g: &Conv2dGeometry) -> [usize; 4] {
    [
        g.out_channels,
        g.in_channels,
        g.kernel_size[0],
        g.kernel_size[1],
    ]
}

/// Forward of [`conv2d`] on flex primitives through [`cpu::conv2d_forward`].
fn flex_conv2d(
    geometry: &Conv2dGeometry,
    algorithm: ConvAlgorithm,
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
) -> Result<FlexTensor, KernelError> {
    let (x, weight, bias) = (dense(x), dense(weight), bias.map(dense));
    let bias_values = bias.as_ref().map(values).transpose()?;
    let output = cpu::conv2d_forward(
        geometry,
        values(&x)?,
        values(&weight)?,
        bias_values,
        algorithm,
    )?;
    Ok(flex_from_vec(output, output_shape(geometry)))
}

/// `∂L/∂x` of the cross-correlation `geometry` (plus a per-channel `bias`) on flex primitives
/// through [`cpu::conv2d_input_grad`]; with the geometry of
/// [`Conv2dGeometry::conv_transpose2d`] it is the transposed convolution's forward pass.
fn flex_input_grad(
    geometry: &Conv2dGeometry,
    algorithm: ConvAlgorithm,
    output_grad: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
) -> Result<FlexTensor, KernelError> {
    let (output_grad, weight, bias) = (dense(output_grad), dense(weight), bias.map(dense));
    let mut input_grad =
        cpu::conv2d_input_grad(geometry, values(&output_grad)?, values(&weight)?, algorithm)?;
    let [height, width] = geometry.in_size;
    if let Some(bias) = &bias {
        cpu::add_channel_bias(&mut input_grad, values(bias)?, height * width);
    }
    Ok(flex_from_vec(input_grad, input_shape(geometry)))
}

/// `∂L/∂W` of the cross-correlation `geometry` on flex primitives.
fn flex_weight_grad(
    geometry: &Conv2dGeometry,
    algorithm: ConvAlgorithm,
    input: FlexTensor,
    output_grad: FlexTensor,
) -> Result<FlexTensor, KernelError> {
    let (input, output_grad) = (dense(input), dense(output_grad));
    let gradient =
        cpu::conv2d_weight_grad(geometry, values(&input)?, values(&output_grad)?, algorithm)?;
    Ok(flex_from_vec(gradient, weight_shape(geometry)))
}

/// [`cpu::conv2d_input_and_weight_grad`] on flex primitives: `(∂L/∂x, ∂L/∂W)`.
fn flex_input_and_weight_grad(
    geometry: &Conv2dGeometry,
    algorithm: ConvAlgorithm,
    input: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
) -> Result<(FlexTensor, FlexTensor), KernelError> {
    let (input, weight, output_grad) = (dense(input), dense(weight), dense(output_grad));
    let (input_grad, gradient) = cpu::conv2d_input_and_weight_grad(
        geometry,
        values(&input)?,
        values(&weight)?,
        values(&output_grad)?,
        algorithm,
    )?;
    Ok((
        flex_from_vec(input_grad, input_shape(geometry)),
        flex_from_vec(gradient, weight_shape(geometry)),
    ))
}

/// [`cpu::conv2d_forward_and_weight_grad`] on flex primitives: `(y, ∂L/∂W)`.
fn flex_forward_and_weight_grad(
    geometry: &Conv2dGeometry,
    algorithm: ConvAlgorithm,
    input: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
) -> Result<(FlexTensor, FlexTensor), KernelError> {
    let (input, weight, output_grad) = (dense(input), dense(weight), dense(output_grad));
    let (output, gradient) = cpu::conv2d_forward_and_weight_grad(
        geometry,
        values(&input)?,
        values(&weight)?,
        values(&output_grad)?,
        algorithm,
    )?;
    Ok((
        flex_from_vec(output, output_shape(geometry)),
        flex_from_vec(gradient, weight_shape(geometry)),
    ))
}

fn flex_bias_grad(
    output_grad: FlexTensor,
    channels: usize,
    pixels: usize,
) -> Result<FlexTensor, KernelError> {
    let output_grad = dense(output_grad);
    Ok(flex_from_vec_1d(cpu::bias_grad(
        values(&output_grad)?,
        channels,
        pixels,
    )?))
}

/// What the backward of [`conv2d`] and [`conv_transpose2d`] needs: the checkpointed operands,
/// the geometry and the forward's algorithm. For a transposed convolution the geometry is the cross-correlation of
/// [`Conv2dGeometry::conv_transpose2d`], whose input space is that layer's output: its forward
/// (col2im), input and weight gradients (im2col) all run on it.
#[derive(Debug, Clone)]
struct ConvState {
    x: NodeId,
    weight: NodeId,
    geometry: Conv2dGeometry,
    algorithm: ConvAlgorithm,
}

impl ConvState {
    /// The checkpointed input and weight.
    fn retrieve(&self, checkpointer: &mut Checkpointer) -> (FlexTensor, FlexTensor) {
        let x = checkpointer.retrieve_node_output::<FlexTensor>(self.x);
        let weight = checkpointer.retrieve_node_output::<FlexTensor>(self.weight);
        (x, weight)
    }
}

/// The backward kernels run on tensors whose geometry the forward pass validated, so they
/// cannot reject them: a failure here is a bug in this crate, not bad input.
pub(crate) const VALIDATED: &str = "geometry validated in the forward pass";

/// Backward of [`conv2d`]; `N = 3` with a bias, `N = 2` without.
#[derive(Debug)]
struct Conv2dBackward<const N: usize>;

impl<const N: usize> Backward<Flex, N> for Conv2dBackward<N> {
    type State = ConvState;

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, weight) = ops.state.retrieve(checkpointer);
        let ConvState {
            geometry,
            algorithm,
            ..
        } = ops.state;
        if let Some(Some(node)) = ops.parents.get(2) {
            let b_grad = flex_bias_grad(grad.clone(), geometry.out_channels, geometry.out_pixels())
                .expect(VALIDATED);
            grads.register::<Flex>(node.id, b_grad);
        }
        match (&ops.parents[0], &ops.parents[1]) {
            (Some(x_node), Some(w_node)) => {
                let (x_grad, w_grad) =
                    flex_input_and_weight_grad(&geometry, algorithm, x, weight, grad)
                        .expect(VALIDATED);
                grads.register::<Flex>(x_node.id, x_grad);
                grads.register::<Flex>(w_node.id, w_grad);
            }
            (Some(x_node), None) => {
                let x_grad =
                    flex_input_grad(&geometry, algorithm, grad, weight, None).expect(VALIDATED);
                grads.register::<Flex>(x_node.id, x_grad);
            }
            (None, Some(w_node)) => {
                let w_grad = flex_weight_grad(&geometry, algorithm, x, grad).expect(VALIDATED);
                grads.register::<Flex>(w_node.id, w_grad);
            }
            (None, None) => {}
        }
    }
}

/// Backward of [`conv_transpose2d`]; `N = 3` with a bias, `N = 2` without.
#[derive(Debug)]
struct ConvTranspose2dBackward<const N: usize>;

impl<const N: usize> Backward<Flex, N> for ConvTranspose2dBackward<N> {
    type State = ConvState;

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, weight) = ops.state.retrieve(checkpointer);
        let ConvState {
            geometry,
            algorithm,
            ..
        } = ops.state;
        if let Some(Some(node)) = ops.parents.get(2) {
            let pixels = geometry.in_size[0] * geometry.in_size[1];
            let b_grad =
                flex_bias_grad(grad.clone(), geometry.in_channels, pixels).expect(VALIDATED);
            grads.register::<Flex>(node.id, b_grad);
        }
        // Both gradients read the output gradient through the same im2col (the geometry's
        // input): ∂L/∂x[n, c, h, w] = Σ_{o,i,j} W[c, o, i, j] · ∂L/∂y[n, o, h·s − p + i·d, …] is
        // the geometry's forward with W seen as [C_in, C_out·k_h·k_w], and ∂L/∂W its weight
        // gradient with `x` in the role of the output gradient, laid out [C_in, C_out, k_h, k_w].
        match (&ops.parents[0], &ops.parents[1]) {
            (Some(x_node), Some(w_node)) => {
                let (x_grad, w_grad) =
                    flex_forward_and_weight_grad(&geometry, algorithm, grad, weight, x)
                        .expect(VALIDATED);
                grads.register::<Flex>(x_node.id, x_grad);
                grads.register::<Flex>(w_node.id, w_grad);
            }
            (Some(x_node), None) => {
                let x_grad =
                    flex_conv2d(&geometry, algorithm, grad, weight, None).expect(VALIDATED);
                grads.register::<Flex>(x_node.id, x_grad);
            }
            (None, Some(w_node)) => {
                let w_grad = flex_weight_grad(&geometry, algorithm, grad, x).expect(VALIDATED);
                grads.register::<Flex>(w_node.id, w_grad);
            }
            (None, None) => {}
        }
    }
}

/// Records `forward` on the autodiff graph with `backward` as its gradient, checkpointing the
/// input and the weight (the first two operands; a bias is not needed by the backward).
pub(crate) fn record<BO, S, C, const N: usize>(
    backward: BO,
    operands: [&AutodiffFlexTensor; N],
    state: impl FnOnce(NodeId, NodeId) -> S,
    forward: impl FnOnce() -> Result<FlexTensor, KernelError>,
) -> Result<AutodiffFlexTensor, KernelError>
where
    BO: Backward<Flex, N, State = S>,
    S: Clone + Send + core::fmt::Debug + 'static,
    C: CheckpointStrategy,
{
    let nodes = operands.map(|tensor| tensor.node());
    match backward.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let x = prep.checkpoint(operands[0]);
            let weight = prep.checkpoint(operands[1]);
            Ok(prep.finish(state(x, weight), forward()?))
        }
        OpsKind::UnTracked(prep) => Ok(prep.finish(forward()?)),
    }
}

/// Which convolution an autodiff call records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConvKind {
    Conv2d,
    ConvTranspose2d,
}

/// The flex forward pass of [`conv2d`] or [`conv_transpose2d`] (by `kind`); a transposed
/// convolution's forward is a convolution's input gradient.
fn flex_forward(
    kind: ConvKind,
    geometry: &Conv2dGeometry,
    algorithm: ConvAlgorithm,
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
) -> Result<FlexTensor, KernelError> {
    match kind {
        ConvKind::Conv2d => flex_conv2d(geometry, algorithm, x, weight, bias),
        ConvKind::ConvTranspose2d => flex_input_grad(geometry, algorithm, x, weight, bias),
    }
}

/// Runs [`conv2d`] or [`conv_transpose2d`] (by `kind`, shapes already checked into
/// `geometry`) where its operands live: Burn's `generic` op on other backends and for
/// grouped convolutions, the flex kernels, or the flex kernels recorded on flex's autodiff
/// graph with their hand-written backward.
fn run_conv(
    kind: ConvKind,
    geometry: Conv2dGeometry,
    algorithm: ConvAlgorithm,
    (x, weight, bias): (Tensor<4>, Tensor<4>, Option<Tensor<1>>),
    generic: impl FnOnce(Tensor<4>, Tensor<4>, Option<Tensor<1>>) -> Tensor<4>,
) -> Result<Tensor<4>, KernelError> {
    let route = match geometry.groups {
        1 => route(&placements(&x, &weight, bias.as_ref())),
        _ => Route::Generic,
    };
    match route {
        Route::Generic => Ok(generic(x, weight, bias)),
        Route::Flex => {
            let bias = bias.map(flex_primitive).transpose()?;
            let (x, weight) = (flex_primitive(x)?, flex_primitive(weight)?);
            let output = flex_forward(kind, &geometry, algorithm, x, weight, bias)?;
            Ok(Tensor::from_primitive::<Flex>(output))
        }
        Route::AutodiffFlex(GradientCheckpointingStrategy::Disabled) => {
            conv_autodiff::<NoCheckpointing>(kind, geometry, algorithm, x, weight, bias)
        }
        Route::AutodiffFlex(GradientCheckpointingStrategy::Balanced) => {
            conv_autodiff::<BalancedCheckpointing>(kind, geometry, algorithm, x, weight, bias)
        }
    }
}

/// Records [`conv2d`] or [`conv_transpose2d`] (by `kind`) on the autodiff graph of
/// `Autodiff<Flex, C>`, with the matching hand-written backward.
fn conv_autodiff<C>(
    kind: ConvKind,
    geometry: Conv2dGeometry,
    algorithm: ConvAlgorithm,
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
) -> Result<Tensor<4>, KernelError>
where
    C: CheckpointStrategy,
    DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
{
    let x = autodiff_primitive::<C, 4>(x)?;
    let weight = autodiff_primitive::<C, 4>(weight)?;
    let bias = bias.map(autodiff_primitive::<C, 1>).transpose()?;
    let forward = || {
        let (x, weight) = (x.primitive().clone(), weight.primitive().clone());
        let bias = bias.as_ref().map(|b| b.primitive().clone());
        flex_forward(kind, &geometry, algorithm, x, weight, bias)
    };
    let state = |x, weight| ConvState {
        x,
        weight,
        geometry,
        algorithm,
    };
    let output = match (kind, &bias) {
        (ConvKind::Conv2d, Some(b)) => {
            record::<_, _, C, 3>(Conv2dBackward::<3>, [&x, &weight, b], state, forward)?
        }
        (ConvKind::Conv2d, None) => {
            record::<_, _, C, 2>(Conv2dBackward::<2>, [&x, &weight], state, forward)?
        }
        (ConvKind::ConvTranspose2d, Some(b)) => record::<_, _, C, 3>(
            ConvTranspose2dBackward::<3>,
            [&x, &weight, b],
            state,
            forward,
        )?,
        (ConvKind::ConvTranspose2d, None) => {
            record::<_, _, C, 2>(ConvTranspose2dBackward::<2>, [&x, &weight], state, forward)?
        }
    };
    Ok(Tensor::from_primitive::<Autodiff<Flex, C>>(output))
}

fn check_bias(bias: Option<&Tensor<1>>, channels: usize) -> Result<(), KernelError> {
    match bias.map(|b| b.dims()[0]) {
        Some(len) if len != channels => Err(KernelError::Shape(format!(
            "bias has {len} entries for {channels} output channels"
        ))),
        _ => Ok(()),
    }
}

fn placements(x: &Tensor<4>, weight: &Tensor<4>, bias: Option<&Tensor<1>>) -> Vec<Placement> {
    let mut all = vec![placement(x), placement(weight)];
    all.extend(bias.map(placement));
    all
}

/// 2-D cross-correlation `y[n, o, h, w] = b_o + Σ_{c,i,j} W[o, c, i, j] ·
/// x[n, c, h·s_h − p_h + i·d_h, w·s_w − p_w + j·d_w]` (zero outside the image), the same
/// operation and shapes as `burn::tensor::module::conv2d`: `x: [N, C_in, H, W]`,
/// `weight: [C_out, C_in / groups, k_h, k_w]`, `bias: [C_out]`.
///
/// On flex with `f32` operands and `groups = 1` the forward pass and the input, weight and bias
/// gradients run the kernels of [`crate::cpu`] with the default [`ConvAlgorithm::Auto`]
/// (Winograd where it applies, else im2col + GEMM; [`conv2d_with`] chooses); everything else
/// calls Burn's generic `conv2d`, so the result is the same operation on every backend.
///
/// # Errors
/// [`KernelError::Shape`] / [`KernelError::Options`] for operands that do not form a
/// convolution (checked before anything runs, on every backend).
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Result<Tensor<4>, KernelError> {
    conv2d_with(x, weight, bias, options, ConvAlgorithm::default())
}

/// [`conv2d`] with the flex path's algorithm chosen by the caller (see [`ConvAlgorithm`] for
/// what each computes and how far their results differ); the forward pass and every gradient
/// recorded for it use the same `algorithm`. Other backends ignore it.
///
/// # Errors
/// As [`conv2d`].
pub fn conv2d_with(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
    algorithm: ConvAlgorithm,
) -> Result<Tensor<4>, KernelError> {
    let geometry = Conv2dGeometry::conv2d(x.dims(), weight.dims(), &options)?;
    check_bias(bias.as_ref(), geometry.out_channels)?;
    run_conv(
        ConvKind::Conv2d,
        geometry,
        algorithm,
        (x, weight, bias),
        |x, weight, bias| burn::tensor::module::conv2d(x, weight, bias, options),
    )
}

/// 2-D transposed convolution `y[n, o, h·s − p + i·d, w·s − p + j·d] += x[n, c, h, w] ·
/// W[c, o, i, j]` (plus `b_o`), output size `(H − 1)·s − 2p + d·(k − 1) + p_out + 1`, the same
/// operation and shapes as `burn::tensor::module::conv_transpose2d`: `x: [N, C_in, H, W]`,
/// `weight: [C_in, C_out / groups, k_h, k_w]`, `bias: [C_out]`.
///
/// On flex with `f32` operands and `groups = 1` the forward pass (col2im) and the input,
/// weight and bias gradients (im2col) run the kernels of [`crate::cpu`] with the default
/// [`ConvAlgorithm::Auto`] ([`conv_transpose2d_with`] chooses); everything else calls Burn's
/// generic `conv_transpose2d`.
///
/// # Errors
/// [`KernelError::Shape`] / [`KernelError::Options`] for operands that do not form a
/// transposed convolution.
pub fn conv_transpose2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvTransposeOptions<2>,
) -> Result<Tensor<4>, KernelError> {
    conv_transpose2d_with(x, weight, bias, options, ConvAlgorithm::default())
}

/// [`conv_transpose2d`] with the flex path's algorithm chosen by the caller (see
/// [`ConvAlgorithm`]); the forward pass and every gradient recorded for it use the same
/// `algorithm`. Other backends ignore it.
///
/// # Errors
/// As [`conv_transpose2d`].
pub fn conv_transpose2d_with(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvTransposeOptions<2>,
    algorithm: ConvAlgorithm,
) -> Result<Tensor<4>, KernelError> {
    let geometry = Conv2dGeometry::conv_transpose2d(x.dims(), weight.dims(), &options)?;
    check_bias(bias.as_ref(), geometry.in_channels)?;
    run_conv(
        ConvKind::ConvTranspose2d,
        geometry,
        algorithm,
        (x, weight, bias),
        |x, weight, bias| burn::tensor::module::conv_transpose2d(x, weight, bias, options),
    )
}
