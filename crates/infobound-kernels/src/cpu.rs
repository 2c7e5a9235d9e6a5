//! Slice-level 2-D convolution kernels: im2col / col2im around one GEMM per block of images,
//! or Winograd's minimal filtering where it applies and the caller's [`ConvAlgorithm`] allows.
//!
//! All buffers are dense row-major `f32` in NCHW order. With `K = C_in·k_h·k_w` patch entries
//! and `P = H_out·W_out` output pixels, the im2col matrix of an image is
//! `col[(c, i, j), (h, w)] = x[c, h·s_h − p_h + i·d_h, w·s_w − p_w + j·d_w]` (zero outside the
//! image), a `K × P` matrix (Chellapilla, Puri & Simard, *High Performance Convolutional Neural
//! Networks for Document Processing*, 2006). With `W` seen as the `C_out × K` matrix:
//!
//! * forward ([`conv2d_forward`]): `y_n = W · col_n (+ b)`;
//! * weight gradient ([`conv2d_weight_grad`]): `∂L/∂W = Σ_n (∂L/∂y_n) · col_nᵀ`, one GEMM of
//!   depth `Σ_n P` per block of images;
//! * input gradient ([`conv2d_input_grad`]): `∂L/∂x_n = col2im(Wᵀ · ∂L/∂y_n)`, col2im being
//!   the adjoint of im2col (it adds every patch back where it was read);
//! * bias gradient ([`bias_grad`]): `∂L/∂b_o = Σ_{n,h,w} ∂L/∂y[n, o, h, w]`.
//!
//! A transposed convolution is the adjoint of a cross-correlation, so the same three maps
//! serve it with the roles exchanged ([`Conv2dGeometry::conv_transpose2d`]): its forward is
//! [`conv2d_input_grad`], its input gradient [`conv2d_forward`] and its weight gradient
//! [`conv2d_weight_grad`] with `x` as the output gradient ([`conv2d_forward_and_weight_grad`]
//! computes the last two from one im2col).
//!
//! Burn's generic backward computes the weight gradient as a convolution whose kernel is the
//! output gradient; here it is a single tall-skinny GEMM over a batch block, which is what makes
//! it fast on CPU. Work is split over the batch into equal blocks (a multiple of the rayon
//! thread count, each im2col block at most 512 KiB) that rayon distributes by work stealing;
//! each worker keeps its im2col buffer between calls and, for weight gradients, its own
//! accumulator, summed at the end. GEMMs run on faer's `matmul`.
//!
//! Layout: `geometry` (sizes, validation, block sizes), `im2col` (the patch matrix and its
//! adjoint), `conv` (the drivers above), `algorithm` ([`ConvAlgorithm`], the caller's choice
//! between im2col and Winograd), `winograd` (the three minimal-filtering algorithms), `norm`
//! (batch norm), and below the helpers they share: batch blocks, scratch buffers, the GEMM.

use std::cell::RefCell;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

mod algorithm;
mod conv;
mod geometry;
mod im2col;
mod norm;
mod vector_state;
mod winograd;

pub use algorithm::ConvAlgorithm;
pub(crate) use conv::add_channel_bias;
pub use conv::{
    bias_grad, conv2d_forward, conv2d_forward_and_weight_grad, conv2d_input_and_weight_grad,
    conv2d_input_grad, conv2d_weight_grad,
};
pub use geometry::Conv2dGeometry;
pub(crate) use norm::lane_sum2;
pub use norm::{
    BatchNormGradients, BatchNormStatistics, batch_norm_train_backward, batch_norm_train_forward,
};

/// Images per block when `batch` images split into equal blocks of at most `largest` (at
/// least one): at least one block per rayon thread, and a multiple of the thread count when
/// the batch allows, so that work stealing keeps every core busy.
pub(super) fn equal_blocks(batch: usize, largest: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let blocks = batch.div_ceil(largest.max(1)).div_ceil(threads) * threads;
    batch.div_ceil(blocks.min(batch).max(1)).max(1)
}

/// The sum of the per-split accumulators of a `fold` (each `len` long; zeros if none).
pub(super) fn sum_parts(parts: impl ParallelIterator<Item = Vec<f32>>, len: usize) -> Vec<f32> {
    parts
        .reduce_with(|mut total, part| {
            total.iter_mut().zip(&part).for_each(|(t, p)| *t += p);
            total
        })
        .unwrap_or_else(|| vec![0.0; len])
}

/// `dst = lhs·rhs` (`Accum::Replace`) or `dst += lhs·rhs` (`Accum::Add`) by faer, then the
/// vector registers' upper halves cleared on the threads it ran on (see [`vector_state`]).
pub(crate) fn gemm(
    dst: MatMut<'_, f32>,
    accum: Accum,
    lhs: MatRef<'_, f32>,
    rhs: MatRef<'_, f32>,
    par: Par,
) {
    matmul(dst, accum, lhs, rhs, 1.0, par);
    vector_state::clear_after(par);
}

/// GEMM parallelism inside a block: the whole pool when the batch is a single block.
pub(super) fn inner_parallelism(batch: usize, block: usize) -> Par {
    if batch <= block {
        Par::rayon(0)
    } else {
        Par::Seq
    }
}

thread_local! {
    /// Per-thread im2col and regrouping buffers, kept between calls: rayon's workers live for
    /// the whole run, and fresh multi-MiB buffers per call would cost a page fault per 4 KiB.
    static SCRATCH: RefCell<[Vec<f32>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

/// Runs `work` with two scratch slices of the given lengths (contents unspecified), reusing
/// this thread's buffers unless a nested call on the same thread holds them already.
fn with_scratch<R>(lens: [usize; 2], work: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffers) => {
            let [first, second] = &mut *buffers;
            for (buffer, &len) in [&mut *first, &mut *second].into_iter().zip(&lens) {
                if buffer.len() < len {
                    buffer.resize(len, 0.0);
                }
            }
            work(&mut first[..lens[0]], &mut second[..lens[1]])
        }
        Err(_) => work(&mut vec![0.0; lens[0]], &mut vec![0.0; lens[1]]),
    })
}

/// `vec![0.0; len]` zero-filled by the rayon pool: the kernels' outputs are allocated on the
/// calling thread, where a multi-MiB `memset` left both workers idle (3.6 % of the ResNet-18
/// step, all of it serial).
pub(crate) fn zeros(len: usize) -> Vec<f32> {
    let mut values = Vec::with_capacity(len);
    values.par_extend(rayon::iter::repeat_n(0.0f32, len));
    values
}
