//! Log-densities of a minibatch's diagonal-Gaussian mixture at its own samples — the terms of
//! the total-correlation estimators of β-TCVAE (Chen, Li, Grosse & Duvenaud, *Isolating
//! Sources of Disentanglement in VAEs*, NeurIPS 2018, §3 and Appendix C) — in one pass forward
//! and one backward on flex, recorded on Burn's autodiff graph like [`crate::conv2d`].
//!
//! With `ℓ_ijk = log N(z_ik; μ_jk, σ²_jk) = −½ [ln 2π + v_jk + (z_ik − μ_jk)² e^{−v_jk}]`
//! (`v = log σ²`) and log-weights `w_ij`, the three per-sample terms are
//!
//! ```text
//! own_i     = Σ_k ℓ_iik                                   log q(z_i | x_i)
//! mixture_i = logsumexp_j (Σ_k ℓ_ijk + w_ij)              log q(z_i)
//! product_i = Σ_k logsumexp_j (ℓ_ijk + w_ij)              log Π_k q(z_ik)
//! ```
//!
//! Burn's tensor ops materialise the `B × B × K` array `ℓ` and several temporaries of its
//! size (more under autodiff). Here each sample `i` streams over the posteriors `j`, one latent
//! dimension at a time, with the parameters laid out `[K, B]` so that every inner loop runs
//! over `j` in vector lanes: a row of `B` log-densities is formed, reduced by a two-pass
//! logsumexp (maximum, then the sum of exponentials) and added to the joint row, whose
//! logsumexp closes the sample. Memory: `O(B·K)` for the outputs, the saved per-dimension
//! logsumexps and the transposed parameters, plus two rows of `B` per thread; under autodiff
//! also the `B × B` log responsibilities `log p_ij` of the joint logsumexp, so that the
//! backward recomputes only `ℓ` per dimension (not the joint rows). The backward holds
//! `O(B·K)` gradient accumulators per row block; the blocks are fixed by `B` and `K` (at most
//! `ROW_BLOCKS`), so the summation order — and the result — does not depend on the thread
//! count. The loops run under pulp's run-time dispatch (AVX2 where the CPU has it), and a
//! batch with fewer than `TASK_TERMS` terms `(i, j, k)` stays on the calling thread.
//!
//! The backward uses `∂ℓ_ijk/∂z_ik = −P_jk d_ijk`, `∂ℓ_ijk/∂μ_jk = P_jk d_ijk` and
//! `∂ℓ_ijk/∂v_jk = ½ (P_jk d_ijk² − 1)` with `d_ijk = z_ik − μ_jk`, `P_jk = e^{−v_jk}`; the
//! upstream gradients `g_i` (mixture) and `h_i` (product) reach `ℓ_ijk` with the softmax
//! weights `g_i p_ij + h_i r_ijk`, `p_ij = e^{Σ_k ℓ_ijk + w_ij − mixture_i}`,
//! `r_ijk = e^{ℓ_ijk + w_ij − lse_ik}`.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Add, AddAssign, Mul, Sub};
use std::sync::Arc;

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
use burn::tensor::{DType, Tensor, TensorData};
use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;

use crate::KernelError;
use crate::ops::{Route, VALIDATED, autodiff_primitive, backend_placement, flex_primitive, route};

/// ln(2π).
const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// Vector lanes of the reductions over `j` (eight `f32` fill an AVX register).
const LANES: usize = 8;

/// Most row blocks of the backward, each with its own `μ`/`log σ²` gradient accumulators:
/// enough to keep 16 threads busy, few enough that the accumulators stay `O(B·K)` (our
/// choice).
const ROW_BLOCKS: usize = 16;

/// Fewest terms `(i, j, k)` per parallel task: handing a task to another thread costs
/// microseconds (tens on a busy machine), the time of ≈ 10⁵ vectorised terms, so a batch
/// with `B²K` below this runs on the calling thread (our choice; at `K = 10` batches up to
/// `B ≈ 114`).
const TASK_TERMS: usize = 1 << 17;

/// The log-weights `w_ij` of the mixture components.
#[derive(Debug, Clone, PartialEq)]
pub enum MixtureLogWeights {
    /// The same log-weight for every component, e.g. `−log(B·N)` for minibatch weighted
    /// sampling (Chen et al. 2018, §3).
    Uniform(f64),
    /// A row-major `B × B` matrix: entry `(i, j)` weighs posterior `j` in the mixture
    /// evaluated at sample `i` (minibatch stratified sampling, Chen et al. 2018, Appendix C).
    Matrix(Vec<f64>),
}

/// The three per-sample log-densities of [`gaussian_mixture_log_densities`], each `[B]`.
#[derive(Debug, Clone)]
pub struct MixtureLogDensities {
    /// `Σ_k log N(z_ik; μ_ik, σ²_ik)`: each sample under its own posterior, log q(z_i | x_i).
    pub own: Tensor<1>,
    /// `logsumexp_j (Σ_k log N(z_ik; μ_jk, σ²_jk) + w_ij)`: the mixture, log q(z_i).
    pub mixture: Tensor<1>,
    /// `Σ_k logsumexp_j (log N(z_ik; μ_jk, σ²_jk) + w_ij)`: the product of the mixture's
    /// marginals, log Π_k q(z_ik).
    pub product_of_marginals: Tensor<1>,
}

impl MixtureLogDensities {
    /// Splits the `[3, B]` result of the kernels into its rows.
    fn from_rows(rows: Tensor<2>) -> Self {
        let [_, batch] = rows.dims();
        let row = |r: usize| rows.clone().slice([r..r + 1, 0..batch]).reshape([batch]);
        Self {
            own: row(0),
            mixture: row(1),
            product_of_marginals: row(2),
        }
    }
}

/// The float types the kernels run in, with what they need of each.
pub(crate) trait Real:
    Copy
    + Send
    + Sync
    + Debug
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + AddAssign
    + 'static
{
    const ZERO: Self;
    const NEG_INFINITY: Self;
    /// `e^x` as the inner loops compute it (vectorisable for `f32`).
    fn exp_fast(self) -> Self;
    fn ln(self) -> Self;
    fn of(value: f64) -> Self;
    fn to_f64(self) -> f64;
    fn slice(tensor: &FlexTensor) -> Option<&[Self]>;
    fn flex(values: Vec<Self>, shape: [usize; 2]) -> FlexTensor;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    #[inline(always)]
    fn exp_fast(self) -> Self {
        exp_f32(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f32::ln(self)
    }
    #[inline(always)]
    fn of(value: f64) -> Self {
        value as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn slice(tensor: &FlexTensor) -> Option<&[Self]> {
        tensor.as_slice::<f32>()
    }
    fn flex(values: Vec<Self>, shape: [usize; 2]) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(values, shape))
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    #[inline(always)]
    fn exp_fast(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f64::ln(self)
    }
    #[inline(always)]
    fn of(value: f64) -> Self {
        value
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    fn slice(tensor: &FlexTensor) -> Option<&[Self]> {
        tensor.as_slice::<f64>()
    }
    fn flex(values: Vec<Self>, shape: [usize; 2]) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(values, shape))
    }
}

/// `e^x` for `f32` with only operations that vectorise: `x = k·ln 2 + r` with `k` rounded to
/// nearest by adding and subtracting 1.5·2²³ (exact for |x·log₂e| < 2²²; `x` is clamped to
/// `[−87, 88]`), so neither a float→int conversion nor a library call is needed; `e^r` by the
/// same Cephes polynomial as the pixel likelihood's exponential (relative error ≈ 2e-7),
/// evaluated with fused multiply-adds: one instruction each under the dispatched AVX2 + FMA
/// (≈ 15 % off both passes), libm's `fmaf` on baseline x86-64 (slow, but the same correctly
/// rounded result, so the values do not depend on the instruction set).
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let kf = shifted - ROUND;
    let r = x - kf * 0.693_359_4 + kf * 2.121_944_4e-4;
    let p = 1.987_569_1e-4f32;
    let p = p.mul_add(r, 1.398_199_9e-3);
    let p = p.mul_add(r, 8.333_452e-3);
    let p = p.mul_add(r, 4.166_579_6e-2);
    let p = p.mul_add(r, 0.166_666_65);
    let p = p.mul_add(r, 0.5);
    let y = (p * r).mul_add(r, r) + 1.0;
    // The low mantissa bits of `shifted` hold k + 2²² in two's complement.
    let k = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    y * f32::from_bits(k.wrapping_add(127) << 23)
}

/// A dense copy of `tensor`'s values (copied only if it is a view).
fn host<T: Real>(tensor: FlexTensor) -> Result<Vec<T>, KernelError> {
    let tensor = if T::slice(&tensor).is_some() {
        tensor
    } else {
        tensor.to_contiguous()
    };
    T::slice(&tensor)
        .map(<[T]>::to_vec)
        .ok_or_else(|| KernelError::Backend("flex tensor is not dense in its dtype".into()))
}

/// The posteriors, laid out `[K, B]`: means, precisions `e^{−v}` and normalisers
/// `−½ (ln 2π + v)`, and the log-weights in `T`.
#[derive(Debug, Clone)]
struct Mixture<T> {
    batch: usize,
    latent: usize,
    mean: Vec<T>,
    precision: Vec<T>,
    normaliser: Vec<T>,
    /// `B × B` log-weights; a row of zeros (shared by all samples) for uniform weights.
    weights: Vec<T>,
    uniform: bool,
    /// The uniform log-weight (zero for a matrix), added after the logsumexps.
    offset: f64,
}

/// `(μ_·k, P_·k, c_·k)`: the parameters of one latent dimension over all posteriors `j`.
#[derive(Clone, Copy)]
struct Dimension<'a, T> {
    mean: &'a [T],
    precision: &'a [T],
    normaliser: &'a [T],
}

impl<T: Real> Mixture<T> {
    fn new(
        mu: &[T],
        logvar: &[T],
        [batch, latent]: [usize; 2],
        weights: &MixtureLogWeights,
    ) -> Self {
        let len = batch * latent;
        let (mut mean, mut precision, mut normaliser) =
            (vec![T::ZERO; len], vec![T::ZERO; len], vec![T::ZERO; len]);
        for j in 0..batch {
            for k in 0..latent {
                let (from, to) = (j * latent + k, k * batch + j);
                let v = logvar[from].to_f64();
                mean[to] = mu[from];
                precision[to] = T::of((-v).exp());
                normaliser[to] = T::of(-0.5 * (LN_2PI + v));
            }
        }
        let (weights, uniform, offset) = match weights {
            MixtureLogWeights::Uniform(w) => (vec![T::ZERO; batch], true, *w),
            MixtureLogWeights::Matrix(w) => (w.iter().map(|&v| T::of(v)).collect(), false, 0.0),
        };
        Self {
            batch,
            latent,
            mean,
            precision,
            normaliser,
            weights,
            uniform,
            offset,
        }
    }

    /// `w_i·`, the log-weights of sample `i`'s mixture.
    fn weights_of(&self, i: usize) -> &[T] {
        if self.uniform {
            &self.weights
        } else {
            &self.weights[i * self.batch..(i + 1) * self.batch]
        }
    }

    fn dimension(&self, k: usize) -> Dimension<'_, T> {
        let range = k * self.batch..(k + 1) * self.batch;
        Dimension {
            mean: &self.mean[range.clone()],
            precision: &self.precision[range.clone()],
            normaliser: &self.normaliser[range],
        }
    }

    /// `ℓ_ijk = c_jk − ½ P_jk (z_ik − μ_jk)²` for one `(j, k)`, as every pass computes it.
    #[inline(always)]
    fn log_density(&self, z: T, j: usize, k: usize) -> T {
        let at = k * self.batch + j;
        let d = z - self.mean[at];
        self.normaliser[at] - T::of(0.5) * (self.precision[at] * d) * d
    }

    /// Rows of samples per parallel task of a pass over `(i, j, k)`: the batch split evenly
    /// into as many tasks as there are [`TASK_TERMS`] terms in it.
    fn rows_per_task(&self) -> usize {
        let terms = self.batch * self.batch * self.latent;
        self.batch.div_ceil(terms.div_ceil(TASK_TERMS))
    }
}

/// The larger of two values (the lanes' `max`; inputs are never NaN for finite operands).
#[inline(always)]
fn larger<T: Real>(a: T, b: T) -> T {
    if b > a { b } else { a }
}

/// One latent dimension of the forward for sample `i` (`z = z_ik`), in one pass over `j`:
/// `row_j = ℓ_ijk + w_ij`, `joint_j += ℓ_ijk`. An element-wise loop with no reduction in it,
/// so that the compiler vectorises it.
#[inline(always)]
fn densities_row<T: Real>(
    z: T,
    dimension: Dimension<'_, T>,
    weights: &[T],
    joint: &mut [T],
    row: &mut [T],
) {
    let half = T::of(0.5);
    for (((((row, joint), &m), &p), &c), &w) in row
        .iter_mut()
        .zip(joint)
        .zip(dimension.mean)
        .zip(dimension.precision)
        .zip(dimension.normaliser)
        .zip(weights)
    {
        let d = z - m;
        let l = c - half * (p * d) * d;
        *joint += l;
        *row = l + w;
    }
}

/// `max_j x_j` in vector lanes.
#[inline(always)]
fn maximum<T: Real>(x: &[T]) -> T {
    let mut lanes = [T::NEG_INFINITY; LANES];
    let (chunks, tail) = x.as_chunks::<LANES>();
    for chunk in chunks {
        for lane in 0..LANES {
            lanes[lane] = larger(lanes[lane], chunk[lane]);
        }
    }
    lanes
        .iter()
        .chain(tail)
        .fold(T::NEG_INFINITY, |m, &v| larger(m, v))
}

/// `log Σ_j e^{x_j}` as `m + log Σ_j e^{x_j − m}` for `m = max_j x_j`, in vector lanes.
#[inline(always)]
fn logsumexp_from<T: Real>(x: &[T], max: T) -> T {
    let mut lanes = [T::ZERO; LANES];
    let (chunks, tail) = x.as_chunks::<LANES>();
    for chunk in chunks {
        for lane in 0..LANES {
            lanes[lane] += (chunk[lane] - max).exp_fast();
        }
    }
    let sum = tail.iter().fold(T::ZERO, |s, &v| s + (v - max).exp_fast())
        + lanes.iter().fold(T::ZERO, |s, &v| s + v);
    max + sum.ln()
}

/// `Σ_j x_j` in fixed vector lanes (the order does not depend on the instruction set).
#[inline(always)]
fn lane_sum<T: Real>(x: &[T]) -> T {
    let mut lanes = [T::ZERO; LANES];
    let (chunks, tail) = x.as_chunks::<LANES>();
    for chunk in chunks {
        for lane in 0..LANES {
            lanes[lane] += chunk[lane];
        }
    }
    let tail = tail.iter().fold(T::ZERO, |s, &v| s + v);
    lanes.iter().fold(tail, |s, &v| s + v)
}

/// The forward pass: `[3, B]` rows (own, mixture, product), the per-dimension logsumexps
/// `lse_ik` (without the uniform offset) and, for the backward, the log responsibilities
/// `log p_ij` (`B × B`, empty if not asked for).
struct Forward<T> {
    rows: Vec<T>,
    per_dimension: Vec<T>,
    log_responsibilities: Vec<T>,
}

/// The forward for a run of samples `first..` (each output holds that run's rows), under
/// pulp's run-time dispatch: `with_simd` and the helpers it calls are `#[inline(always)]`,
/// so that the loops over `j` compile with the dispatched instruction set (a closure body
/// that the compiler leaves out of line runs the baseline x86-64 code).
struct ForwardRows<'a, T> {
    mixture: &'a Mixture<T>,
    z: &'a [T],
    first: usize,
    own: &'a mut [T],
    joint: &'a mut [T],
    product: &'a mut [T],
    per_dimension: &'a mut [T],
    /// `[rows, B]` log responsibilities to fill, or `None` if the backward will not run.
    log_responsibilities: Option<&'a mut [T]>,
}

impl<T: Real> WithSimd for ForwardRows<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let mixture = self.mixture;
        let (batch, latent) = (mixture.batch, mixture.latent);
        let mut row = vec![T::ZERO; batch];
        let mut scratch = Vec::new();
        let mut log_responsibilities = self.log_responsibilities;
        let save = log_responsibilities.is_some();
        for (local, z_i) in self.z.chunks_exact(latent).enumerate() {
            let i = self.first + local;
            let weights = mixture.weights_of(i);
            let joint = match log_responsibilities.as_deref_mut() {
                Some(rows) => &mut rows[local * batch..(local + 1) * batch],
                None => {
                    scratch.resize(batch, T::ZERO);
                    &mut scratch[..]
                }
            };
            joint.copy_from_slice(weights);
            let lse = &mut self.per_dimension[local * latent..(local + 1) * latent];
            let mut own = T::ZERO;
            let mut product = 0.0;
            for (k, (&z_ik, lse)) in z_i.iter().zip(lse.iter_mut()).enumerate() {
                own += mixture.log_density(z_ik, i, k);
                densities_row(z_ik, mixture.dimension(k), weights, joint, &mut row);
                *lse = logsumexp_from(&row, maximum(&row));
                product += lse.to_f64() + mixture.offset;
            }
            let log_mixture = logsumexp_from(joint, maximum(joint));
            if save {
                for value in joint.iter_mut() {
                    *value = *value - log_mixture;
                }
            }
            self.own[local] = own;
            self.joint[local] = T::of(log_mixture.to_f64() + mixture.offset);
            self.product[local] = T::of(product);
        }
    }
}

/// The forward over all samples, in parallel tasks of [`Mixture::rows_per_task`] samples;
/// `save` also keeps the log responsibilities for the backward.
fn forward<T: Real>(mixture: &Mixture<T>, z: &[T], save: bool) -> Forward<T> {
    let (batch, latent) = (mixture.batch, mixture.latent);
    let rows = mixture.rows_per_task();
    let mut own = vec![T::ZERO; batch];
    let mut joint = vec![T::ZERO; batch];
    let mut product = vec![T::ZERO; batch];
    let mut per_dimension = vec![T::ZERO; batch * latent];
    let mut log_responsibilities = vec![T::ZERO; if save { batch * batch } else { 0 }];
    let saved: Vec<Option<&mut [T]>> = if save {
        log_responsibilities
            .chunks_mut(rows * batch)
            .map(Some)
            .collect()
    } else {
        (0..batch.div_ceil(rows)).map(|_| None).collect()
    };
    own.par_chunks_mut(rows)
        .zip(joint.par_chunks_mut(rows))
        .zip(product.par_chunks_mut(rows))
        .zip(per_dimension.par_chunks_mut(rows * latent))
        .zip(z.par_chunks(rows * latent))
        .zip(saved)
        .enumerate()
        .for_each(
            |(task, (((((own, joint), product), per_dimension), z), log_responsibilities))| {
                Arch::new().dispatch(ForwardRows {
                    mixture,
                    z,
                    first: task * rows,
                    own,
                    joint,
                    product,
                    per_dimension,
                    log_responsibilities,
                });
            },
        );
    let mut rows = own;
    rows.extend(joint);
    rows.extend(product);
    Forward {
        rows,
        per_dimension,
        log_responsibilities,
    }
}

/// What the backward reuses from the forward: the posteriors, the samples `[B, K]`, the
/// per-dimension logsumexps `lse_ik` `[B, K]` and the log responsibilities `log p_ij`
/// `[B, B]`.
#[derive(Debug)]
struct Saved<T> {
    mixture: Mixture<T>,
    z: Vec<T>,
    per_dimension: Vec<T>,
    log_responsibilities: Vec<T>,
}

/// Adds `c_j P_j d_j` and `c_j (½ P_j d_j² − ½)` (`c_j = g_i p_ij + h_i r_ijk`) to the
/// `μ`/`log σ²` gradients of every posterior `j` for one `(i, k)`, and returns
/// `Σ_j c_j P_j d_j` (the negated `z_ik` gradient). The terms go through `scratch` so that the
/// loop over `j` is element-wise (which the compiler vectorises) and the sum is taken in
/// fixed lanes after it.
#[inline(always)]
#[expect(
    clippy::too_many_arguments,
    reason = "the operands of one inlined inner loop"
)]
fn accumulate<T: Real>(
    z: T,
    h: T,
    lse: T,
    dimension: Dimension<'_, T>,
    weights: &[T],
    coefficient: &[T],
    mean_grad: &mut [T],
    logvar_grad: &mut [T],
    scratch: &mut [T],
) -> T {
    let half = T::of(0.5);
    for (((((((mean_grad, logvar_grad), scratch), &m), &p), &c), &w), &coefficient) in mean_grad
        .iter_mut()
        .zip(logvar_grad)
        .zip(scratch.iter_mut())
        .zip(dimension.mean)
        .zip(dimension.precision)
        .zip(dimension.normaliser)
        .zip(weights)
        .zip(coefficient)
    {
        let d = z - m;
        let pd = p * d;
        let l = c - half * pd * d;
        let weight = coefficient + h * (l + w - lse).exp_fast();
        let dm = weight * pd;
        *scratch = dm;
        *mean_grad += dm;
        *logvar_grad += weight * (half * pd * d - half);
    }
    lane_sum(scratch)
}

/// One block of rows of the backward (samples `first..`), under pulp's dispatch like
/// [`ForwardRows`]: fills the block's `z` gradients and adds its contributions to its own
/// `μ`/`log σ²` accumulators (`[K, B]`).
struct BackwardRows<'a, T> {
    saved: &'a Saved<T>,
    g_mixture: &'a [T],
    g_product: &'a [T],
    first: usize,
    z_grad: &'a mut [T],
    mean_grad: &'a mut [T],
    logvar_grad: &'a mut [T],
}

impl<T: Real> WithSimd for BackwardRows<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let saved = self.saved;
        let mixture = &saved.mixture;
        let (batch, latent) = (mixture.batch, mixture.latent);
        let mut coefficient = vec![T::ZERO; batch];
        let mut scratch = vec![T::ZERO; batch];
        for (local, z_grad) in self.z_grad.chunks_exact_mut(latent).enumerate() {
            let i = self.first + local;
            let (g, h) = (self.g_mixture[local], self.g_product[local]);
            let weights = mixture.weights_of(i);
            let rows = i * latent..(i + 1) * latent;
            let (z_i, lse) = (&saved.z[rows.clone()], &saved.per_dimension[rows]);
            // g_i p_ij, the mixture's share of every posterior's coefficient.
            let log_p = &saved.log_responsibilities[i * batch..(i + 1) * batch];
            for (c, &log_p) in coefficient.iter_mut().zip(log_p) {
                *c = g * log_p.exp_fast();
            }
            for (k, ((&z_ik, &lse_k), z_grad)) in z_i.iter().zip(lse).zip(z_grad).enumerate() {
                let range = k * batch..(k + 1) * batch;
                let sum = accumulate(
                    z_ik,
                    h,
                    lse_k,
                    mixture.dimension(k),
                    weights,
                    &coefficient,
                    &mut self.mean_grad[range.clone()],
                    &mut self.logvar_grad[range],
                    &mut scratch,
                );
                *z_grad = T::ZERO - sum;
            }
        }
    }
}

/// Gradients with respect to `(z, μ, log σ²)`, each `[B, K]`, for the upstream gradient
/// `grad` of the `[3, B]` rows. The rows are split into blocks by the amount of work
/// (`B²K` / [`TASK_TERMS`], at most [`ROW_BLOCKS`]), each with its own `μ`/`log σ²`
/// accumulators summed in block order, so that the result does not depend on the number of
/// threads.
fn backward<T: Real>(saved: &Saved<T>, grad: &[T]) -> [Vec<T>; 3] {
    let mixture = &saved.mixture;
    let (batch, latent) = (mixture.batch, mixture.latent);
    let (g_own, rest) = grad.split_at(batch);
    let (g_mixture, g_product) = rest.split_at(batch);
    let block = mixture.rows_per_task().max(batch.div_ceil(ROW_BLOCKS));
    let blocks = batch.div_ceil(block);
    let mut z_grad = vec![T::ZERO; batch * latent];
    let mut accumulators = vec![T::ZERO; blocks * 2 * batch * latent];
    z_grad
        .par_chunks_mut(block * latent)
        .zip(accumulators.par_chunks_mut(2 * batch * latent))
        .zip(g_mixture.par_chunks(block).zip(g_product.par_chunks(block)))
        .enumerate()
        .for_each(|(b, ((z_grad, accumulator), (g_mixture, g_product)))| {
            let (mean_grad, logvar_grad) = accumulator.split_at_mut(batch * latent);
            Arch::new().dispatch(BackwardRows {
                saved,
                g_mixture,
                g_product,
                first: b * block,
                z_grad,
                mean_grad,
                logvar_grad,
            });
        });
    let mut parts = accumulators.chunks_exact(2 * batch * latent);
    let mut totals = parts.next().map(<[T]>::to_vec).unwrap_or_default();
    for part in parts {
        for (total, &value) in totals.iter_mut().zip(part) {
            *total += value;
        }
    }
    let (mean_grad, logvar_grad) = totals.split_at(batch * latent);
    // Back to [B, K], plus the own-posterior term `u_i ℓ_iik`.
    let half = T::of(0.5);
    let z = &saved.z;
    let mut mu_grad = vec![T::ZERO; batch * latent];
    let mut lv_grad = vec![T::ZERO; batch * latent];
    for (i, &u) in g_own.iter().enumerate() {
        for k in 0..latent {
            let (at, t) = (i * latent + k, k * batch + i);
            let d = z[at] - mixture.mean[t];
            let pd = mixture.precision[t] * d;
            z_grad[at] = z_grad[at] - u * pd;
            mu_grad[at] = mean_grad[t] + u * pd;
            lv_grad[at] = logvar_grad[t] + u * (half * pd * d - half);
        }
    }
    [z_grad, mu_grad, lv_grad]
}

#[derive(Debug, Clone)]
struct MixtureState<T> {
    saved: Arc<Saved<T>>,
    dims: [usize; 2],
}

/// Backward of [`gaussian_mixture_log_densities`]: parents `[z, μ, log σ²]`.
#[derive(Debug)]
struct MixtureBackward<T>(PhantomData<T>);

impl<T: Real> Backward<Flex, 3> for MixtureBackward<T> {
    type State = MixtureState<T>;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = host::<T>(grads.consume::<Flex>(&ops.node)).expect(VALIDATED);
        let state = ops.state;
        let gradients = backward(&state.saved, &grad);
        for (parent, gradient) in ops.parents.into_iter().zip(gradients) {
            if let Some(node) = parent {
                grads.register::<Flex>(node.id, T::flex(gradient, state.dims));
            }
        }
    }
}

fn mixture_autodiff<C, T>(
    z: Tensor<2>,
    mu: Tensor<2>,
    logvar: Tensor<2>,
    weights: &MixtureLogWeights,
) -> Result<Tensor<2>, KernelError>
where
    C: CheckpointStrategy,
    T: Real,
    DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
{
    let dims = z.dims();
    let operands = [z, mu, logvar].map(autodiff_primitive::<C, 2>);
    let [z, mu, logvar] = operands;
    let (z, mu, logvar) = (z?, mu?, logvar?);
    let mixture = Mixture::new(
        &host::<T>(mu.primitive().clone())?,
        &host::<T>(logvar.primitive().clone())?,
        dims,
        weights,
    );
    let z_values = host::<T>(z.primitive().clone())?;
    let output = |rows: Vec<T>| T::flex(rows, [3, dims[0]]);
    let nodes = [z.node(), mu.node(), logvar.node()];
    let result = match MixtureBackward::<T>(PhantomData)
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let Forward {
                rows,
                per_dimension,
                log_responsibilities,
            } = forward(&mixture, &z_values, true);
            let saved = Saved {
                mixture,
                z: z_values,
                per_dimension,
                log_responsibilities,
            };
            let state = MixtureState {
                saved: Arc::new(saved),
                dims,
            };
            prep.finish(state, output(rows))
        }
        OpsKind::UnTracked(prep) => prep.finish(output(forward(&mixture, &z_values, false).rows)),
    };
    Ok(Tensor::from_primitive::<Autodiff<Flex, C>>(result))
}

fn mixture_flex<T: Real>(
    z: Tensor<2>,
    mu: Tensor<2>,
    logvar: Tensor<2>,
    weights: &MixtureLogWeights,
) -> Result<Tensor<2>, KernelError> {
    let dims = z.dims();
    let mixture = Mixture::new(
        &host::<T>(flex_primitive(mu)?)?,
        &host::<T>(flex_primitive(logvar)?)?,
        dims,
        weights,
    );
    let Forward { rows, .. } = forward(&mixture, &host::<T>(flex_primitive(z)?)?, false);
    Ok(Tensor::from_primitive::<Flex>(T::flex(rows, [3, dims[0]])))
}

/// The same `[3, B]` rows from Burn's tensor ops, materialising `ℓ` as `[B, B, K]`.
fn generic(
    z: Tensor<2>,
    mu: Tensor<2>,
    logvar: Tensor<2>,
    weights: &MixtureLogWeights,
) -> Tensor<2> {
    let [batch, _] = z.dims();
    let neg_half_precision = logvar.clone().neg().exp().mul_scalar(-0.5);
    let normaliser = logvar.add_scalar(LN_2PI).mul_scalar(-0.5);
    let own = ((z.clone() - mu.clone()).square() * neg_half_precision.clone() + normaliser.clone())
        .sum_dim(1);
    let cross: Tensor<3> = (z.unsqueeze_dim::<3>(1) - mu.unsqueeze_dim::<3>(0)).square()
        * neg_half_precision.unsqueeze_dim::<3>(0)
        + normaliser.unsqueeze_dim::<3>(0);
    let joint = cross.clone().sum_dim(2);
    let (joint, cross, offset) = match weights {
        MixtureLogWeights::Uniform(w) => (joint, cross, *w),
        MixtureLogWeights::Matrix(w) => {
            let w = Tensor::<3>::from_data(
                TensorData::new(w.clone(), [batch, batch, 1]),
                (&cross.device(), cross.dtype()),
            );
            (joint + w.clone(), cross + w, 0.0)
        }
    };
    let lse = |x: Tensor<3>| {
        let shift = x.clone().max_dim(1).detach();
        (x - shift.clone()).exp().sum_dim(1).log() + shift
    };
    let [_, _, latent] = cross.dims();
    let mixture = lse(joint).reshape([batch, 1]).add_scalar(offset);
    let product = lse(cross)
        .sum_dim(2)
        .reshape([batch, 1])
        .add_scalar(offset * latent as f64);
    Tensor::cat(vec![own, mixture, product], 1).transpose()
}

/// The route for three `[B, K]` operands: the kernels need all three on flex in one float
/// dtype they run in.
fn mixture_route(operands: [&Tensor<2>; 3]) -> (Route, DType) {
    let dtype = operands[0].dtype();
    let supported =
        matches!(dtype, DType::F32 | DType::F64) && operands.iter().all(|t| t.dtype() == dtype);
    if !supported {
        return (Route::Generic, dtype);
    }
    (route(&operands.map(backend_placement)), dtype)
}

/// [`MixtureLogDensities`] of the samples `z` under the mixture of the diagonal Gaussians
/// `N(μ_j, diag e^{v_j})` with log-weights `weights` (all three tensors `[B, K]`, row `j` the
/// posterior of sample `j`; see the module docs for the formulas).
///
/// On flex with `f32` or `f64` operands the forward pass and the gradients with respect to all
/// three operands stream over the posteriors without forming the `B × B × K` array of
/// log-densities (`O(B·K)` memory besides a few rows of `B` per thread, and `B × B`
/// responsibilities kept for the backward when the operands are tracked); any other backend or
/// dtype materialises it with Burn's tensor ops, so the result is the same function
/// everywhere. In `f32` the kernels' exponential has ≈ 2e-7 relative error.
///
/// # Errors
/// [`KernelError::Shape`] if the operands differ in shape or are empty, or if a weight matrix
/// does not have `B²` entries.
pub fn gaussian_mixture_log_densities(
    z: Tensor<2>,
    mu: Tensor<2>,
    logvar: Tensor<2>,
    weights: &MixtureLogWeights,
) -> Result<MixtureLogDensities, KernelError> {
    let dims = z.dims();
    if mu.dims() != dims || logvar.dims() != dims || dims.contains(&0) {
        return Err(KernelError::Shape(format!(
            "z {dims:?}, mu {:?} and logvar {:?} must have the same non-empty shape",
            mu.dims(),
            logvar.dims()
        )));
    }
    if let MixtureLogWeights::Matrix(w) = weights
        && w.len() != dims[0] * dims[0]
    {
        return Err(KernelError::Shape(format!(
            "{} log-weights for a batch of {} (needs {})",
            w.len(),
            dims[0],
            dims[0] * dims[0]
        )));
    }
    let rows = match mixture_route([&z, &mu, &logvar]) {
        (Route::Generic, _) => generic(z, mu, logvar, weights),
        (Route::Flex, DType::F64) => mixture_flex::<f64>(z, mu, logvar, weights)?,
        (Route::Flex, _) => mixture_flex::<f32>(z, mu, logvar, weights)?,
        (Route::AutodiffFlex(strategy), dtype) => match (strategy, dtype) {
            (GradientCheckpointingStrategy::Disabled, DType::F64) => {
                mixture_autodiff::<NoCheckpointing, f64>(z, mu, logvar, weights)?
            }
            (GradientCheckpointingStrategy::Disabled, _) => {
                mixture_autodiff::<NoCheckpointing, f32>(z, mu, logvar, weights)?
            }
            (GradientCheckpointingStrategy::Balanced, DType::F64) => {
                mixture_autodiff::<BalancedCheckpointing, f64>(z, mu, logvar, weights)?
            }
            (GradientCheckpointingStrategy::Balanced, _) => {
                mixture_autodiff::<BalancedCheckpointing, f32>(z, mu, logvar, weights)?
            }
        },
    };
    Ok(MixtureLogDensities::from_rows(rows))
}

#[cfg(test)]
mod tests {
    use super::exp_f32;

    #[test]
    fn exp_f32_matches_the_library_function() {
        for i in 0..=20_000 {
            let x = -87.0 + 175.0 * i as f32 / 20_000.0;
            let (ours, std) = (exp_f32(x), x.exp());
            assert!(
                ((ours - std) / std).abs() < 5e-7,
                "exp({x}) = {ours}, std {std}"
            );
        }
        assert_eq!(exp_f32(-1e4), exp_f32(-87.0));
        assert_eq!(exp_f32(0.0), 1.0);
    }
}
