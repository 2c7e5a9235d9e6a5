//! Slice-level 2-D convolution kernels: im2col / col2im around one GEMM per block of images.
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

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::KernelError;

mod norm;
mod vector_state;
mod winograd;
pub(crate) use norm::lane_sum2;
pub use norm::{
    BatchNormGradients, BatchNormStatistics, batch_norm_train_backward, batch_norm_train_forward,
};

/// Upper bound, in `f32` elements, of one block's im2col matrix (512 KiB): it stays in a
/// core's L2 cache between being written and being read by the GEMM. Measured on the Burgess
/// VAE's conv stack (2 cores): 512 KiB and 256 KiB blocks ran the step ≈ 10–20 % faster than
/// 1–4 MiB blocks, where the GEMM's longer depth did not pay for the cache misses.
const COL_BLOCK_ELEMENTS: usize = 1 << 17;

/// Least GEMM width `n·P` of a block whose weight matrix is larger than
/// [`COL_BLOCK_ELEMENTS`]. With few output pixels (ResNet's 8×8 and 4×4 stages) a one-image
/// block gives GEMMs of 16–64 columns: the forward runs on faer's narrow edge kernels, and
/// each weight-gradient GEMM reads and writes the whole multi-MiB gradient for a reduction
/// of depth 16–64. Measured on ResNet-18 at 32 px, batch 64 (2 cores): 512 columns ran the
/// training step 12 % faster than one-image blocks, 256 and 1024 columns slightly slower than
/// 512; the VAE's small weights keep their L2-sized blocks.
const WIDE_WEIGHT_MIN_COLUMNS: usize = 512;

static WINOGRAD: AtomicBool = AtomicBool::new(true);

/// Whether convolutions with at least 16 channels in and out run Winograd's minimal filtering
/// (default) or im2col + GEMM like every other geometry: F(2×2, 3×3) and, on images with sides
/// ≥ 16 that are multiples of 4, F(4×4, 3×3) for 3×3, stride-1, padding-1 layers (2.25× and
/// 4× fewer products), and F(2×2, 2×2) on the polyphase components of 4×4, stride-2,
/// padding-1 layers (1.78× fewer). Winograd agrees with the direct definition to float
/// rounding (≈ 1e-6 relative; ≈ 1e-5 for F(4×4, 3×3)), not bit for bit; switch it off to
/// compare the two or to time im2col.
pub fn set_winograd(enabled: bool) {
    WINOGRAD.store(enabled, Ordering::Relaxed);
}

/// The [`winograd`] algorithm that runs `geometry`, if any: switched on, a geometry it
/// computes, and images.
fn winograd_kind(geometry: &Conv2dGeometry) -> Option<winograd::Kind> {
    if WINOGRAD.load(Ordering::Relaxed) && geometry.batch > 0 {
        winograd::Kind::of(geometry)
    } else {
        None
    }
}

/// Sizes of one 2-D cross-correlation (the kernels here run `groups = 1` only):
/// `y[n, o, h, w] = Σ_{c,i,j} W[o, c, i, j] · x[n, c, h·s_h − p_h + i·d_h, w·s_w − p_w + j·d_w]`,
/// where out-of-image reads are zero (the definition of `torch.nn.functional.conv2d` and of
/// Burn's `conv2d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dGeometry {
    /// Number of images `N`.
    pub batch: usize,
    /// Input channels `C_in`.
    pub in_channels: usize,
    /// Input height and width.
    pub in_size: [usize; 2],
    /// Output channels `C_out`.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel_size: [usize; 2],
    /// Stride `s` per spatial dimension.
    pub stride: [usize; 2],
    /// Leading (top, left) zero padding `p`; trailing padding only enters through `out_size`.
    pub padding: [usize; 2],
    /// Dilation `d` per spatial dimension.
    pub dilation: [usize; 2],
    /// Output height and width.
    pub out_size: [usize; 2],
    /// Channel groups; the kernels of this module require 1.
    pub groups: usize,
}

impl Conv2dGeometry {
    /// The geometry of `conv2d(x, weight, options)` for `x: [N, C_in, H, W]` and
    /// `weight: [C_out, C_in / groups, k_h, k_w]`; output size
    /// `⌊(H + p_begin + p_end − d·(k − 1) − 1) / s⌋ + 1` per dimension.
    ///
    /// # Errors
    /// [`KernelError::Options`] for a zero stride, dilation or group count,
    /// [`KernelError::Shape`] if channels disagree with the groups, a size is zero, or the
    /// dilated kernel is larger than the padded input.
    pub fn conv2d(
        x_shape: [usize; 4],
        weight_shape: [usize; 4],
        options: &ConvOptions<2>,
    ) -> Result<Self, KernelError> {
        check_options(options.stride, options.dilation, options.groups)?;
        let [batch, in_channels, height, width] = x_shape;
        let [out_channels, weight_in, kernel_h, kernel_w] = weight_shape;
        check_groups(in_channels, weight_in, out_channels, options.groups)?;
        check_nonzero(&[in_channels, out_channels, height, width, kernel_h, kernel_w])?;
        let out_size = [0, 1].map(|dim| {
            let [input, kernel] = [[height, kernel_h], [width, kernel_w]][dim];
            let (begin, end) = options.padding[dim];
            let span = options.dilation[dim] * (kernel - 1) + 1;
            let padded = input + begin + end;
            (padded >= span).then(|| (padded - span) / options.stride[dim] + 1)
        });
        let [Some(out_h), Some(out_w)] = out_size else {
            return Err(KernelError::Shape(format!(
                "dilated kernel {:?} larger than padded input {:?}",
                [kernel_h, kernel_w],
                [height, width]
            )));
        };
        Ok(Self {
            batch,
            in_channels,
            in_size: [height, width],
            out_channels,
            kernel_size: [kernel_h, kernel_w],
            stride: options.stride,
            padding: options.padding_begin(),
            dilation: options.dilation,
            out_size: [out_h, out_w],
            groups: options.groups,
        })
    }

    /// For `conv_transpose2d(x, weight, options)` with `x: [N, C_in, H, W]` and
    /// `weight: [C_in, C_out / groups, k_h, k_w]`, the cross-correlation whose *input* is the transposed
    /// convolution's output (gradient) `[N, C_out, H_out, W_out]`,
    /// `H_out = (H − 1)·s − 2p + d·(k − 1) + p_out + 1`, and whose output grid is `x`'s `H × W`.
    ///
    /// Since `y[n, o, h·s − p + i·d, w·s − p + j·d] += x[n, c, h, w] · W[c, o, i, j]`, the weight
    /// gradient `∂L/∂W[c, o, i, j] = Σ_{n,h,w} x[n, c, h, w] · ∂L/∂y[n, o, h·s − p + i·d, w·s − p + j·d]`
    /// is exactly [`conv2d_weight_grad`] of this geometry with `x` as the output gradient.
    ///
    /// # Errors
    /// As [`Conv2dGeometry::conv2d`], and [`KernelError::Shape`] if the output would be empty.
    pub fn conv_transpose2d(
        x_shape: [usize; 4],
        weight_shape: [usize; 4],
        options: &ConvTransposeOptions<2>,
    ) -> Result<Self, KernelError> {
        check_options(options.stride, options.dilation, options.groups)?;
        let [batch, in_channels, height, width] = x_shape;
        let [weight_in, group_out_channels, kernel_h, kernel_w] = weight_shape;
        if weight_in != in_channels || !in_channels.is_multiple_of(options.groups) {
            return Err(KernelError::Shape(format!(
                "input has {in_channels} channels, the weight expects {weight_in} in {} groups",
                options.groups
            )));
        }
        let out_channels = group_out_channels * options.groups;
        check_nonzero(&[in_channels, out_channels, height, width, kernel_h, kernel_w])?;
        let out_size = [0, 1].map(|dim| {
            let [input, kernel] = [[height, kernel_h], [width, kernel_w]][dim];
            let full = (input - 1) * options.stride[dim]
                + options.dilation[dim] * (kernel - 1)
                + options.padding_out[dim]
                + 1;
            full.checked_sub(2 * options.padding[dim])
                .filter(|&size| size > 0)
        });
        let [Some(out_h), Some(out_w)] = out_size else {
            return Err(KernelError::Shape(format!(
                "padding {:?} leaves no output for input {:?}",
                options.padding,
                [height, width]
            )));
        };
        Ok(Self {
            batch,
            in_channels: out_channels,
            in_size: [out_h, out_w],
            out_channels: in_channels,
            kernel_size: [kernel_h, kernel_w],
            stride: options.stride,
            padding: options.padding,
            dilation: options.dilation,
            out_size: [height, width],
            groups: options.groups,
        })
    }

    /// Entries of one im2col column, `K = C_in·k_h·k_w`.
    pub fn patch_len(&self) -> usize {
        self.in_channels * self.kernel_size[0] * self.kernel_size[1]
    }

    /// Output pixels per channel, `P = H_out·W_out`.
    pub fn out_pixels(&self) -> usize {
        self.out_size[0] * self.out_size[1]
    }

    /// Elements of one input image, `C_in·H·W`.
    pub fn in_image_len(&self) -> usize {
        self.in_channels * self.in_size[0] * self.in_size[1]
    }

    /// Elements of one output image, `C_out·P`.
    pub fn out_image_len(&self) -> usize {
        self.out_channels * self.out_pixels()
    }

    /// Images per block: the im2col block stays within [`COL_BLOCK_ELEMENTS`] unless the
    /// weight is larger than that ([`WIDE_WEIGHT_MIN_COLUMNS`]), in [`equal_blocks`].
    fn block_images(&self) -> usize {
        let per_image = self.patch_len() * self.out_pixels();
        let min_columns = if self.out_channels * self.patch_len() > COL_BLOCK_ELEMENTS {
            WIDE_WEIGHT_MIN_COLUMNS
        } else {
            0
        };
        let largest = (COL_BLOCK_ELEMENTS / per_image.max(1))
            .max(min_columns.div_ceil(self.out_pixels().max(1)));
        equal_blocks(self.batch, largest)
    }

    fn check_lengths(&self, named: &[(&str, usize, usize)]) -> Result<(), KernelError> {
        for &(name, got, expected) in named {
            if got != expected {
                return Err(KernelError::Shape(format!(
                    "{name} has {got} elements, geometry {self:?} needs {expected}"
                )));
            }
        }
        Ok(())
    }
}

fn check_options(
    stride: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
) -> Result<(), KernelError> {
    if stride.contains(&0) || dilation.contains(&0) || groups == 0 {
        return Err(KernelError::Options(format!(
            "stride {stride:?}, dilation {dilation:?} and groups {groups} must be non-zero"
        )));
    }
    Ok(())
}

/// `conv2d` channels: `C_in = groups · (weight's C_in)`, and `groups` divides `C_out`.
fn check_groups(
    in_channels: usize,
    weight_in: usize,
    out_channels: usize,
    groups: usize,
) -> Result<(), KernelError> {
    if in_channels != weight_in * groups || !out_channels.is_multiple_of(groups) {
        return Err(KernelError::Shape(format!(
            "input has {in_channels} channels, the weight has {weight_in} in and {out_channels} \
             out channels, in {groups} groups"
        )));
    }
    Ok(())
}

/// The kernels of this module compute one dense group.
fn check_single_group(geometry: &Conv2dGeometry) -> Result<(), KernelError> {
    if geometry.groups != 1 {
        return Err(KernelError::Options(format!(
            "the im2col kernels need groups = 1, got {}",
            geometry.groups
        )));
    }
    Ok(())
}

fn check_nonzero(sizes: &[usize]) -> Result<(), KernelError> {
    if sizes.contains(&0) {
        return Err(KernelError::Shape(format!(
            "channels, spatial sizes and kernel sizes must be non-zero, got {sizes:?}"
        )));
    }
    Ok(())
}

/// Writes the im2col matrix of a block of `n` consecutive `images` into `col`, row-major
/// `K × (n·P)`: row `(c, i, j)` holds, image after image, the value that tap `(i, j)` of
/// channel `c` reads under every output pixel. Tap-major rows turn each output row of a tap
/// into one run of `W_out` writes from one input row — a plain copy at stride 1 — and the
/// block's GEMMs read `col` as `W · col` (forward) or `r · colᵀ` (weight gradient).
fn im2col(geometry: &Conv2dGeometry, images: &[f32], col: &mut [f32]) {
    match geometry.stride[1] {
        1 => im2col_at_stride::<1>(geometry, images, col),
        2 => im2col_at_stride::<2>(geometry, images, col),
        _ => im2col_at_stride::<0>(geometry, images, col),
    }
}

/// [`im2col`] for horizontal stride `S` (`0`: any stride, read from the geometry), so that the
/// model layers' strides get a copy loop without a stride multiply.
///
/// Most rows are shifted copies of an earlier row ([`Shift`]): one long copy within `col`
/// plus the one output row (or column) that the shift brings in, which leaves the strided
/// gather to the first `s` kernel rows and columns only.
fn im2col_at_stride<const S: usize>(geometry: &Conv2dGeometry, images: &[f32], col: &mut [f32]) {
    let g = geometry;
    let taps = Taps::new(g);
    let [out_h, out_w] = g.out_size;
    let pixels = g.out_pixels();
    let columns = images.len() / g.in_image_len() * pixels;
    taps.for_each(g.in_channels, false, |index, tap| {
        let (earlier, rest) = col.split_at_mut(index * columns);
        let row = &mut rest[..columns];
        // A shifted row is one copy over the whole block; what it carries across an image
        // boundary (the next image's first row or column) is overwritten by the fix-up.
        if let Some((from, shift)) = tap.shift.map(|s| s.source(out_w)) {
            let src = &earlier[from * columns..][..columns];
            row[..columns - shift].copy_from_slice(&src[shift..]);
        }
        for (image, dst) in images
            .chunks_exact(g.in_image_len())
            .zip(row.chunks_exact_mut(pixels))
        {
            let plane = &image[tap.plane.clone()];
            match tap.shift {
                Some(Shift::Rows(_)) => {
                    let last = out_h - 1;
                    tap.gather_row::<S>(g, plane, last, &mut dst[last * out_w..]);
                }
                Some(Shift::Columns(_)) => {
                    for (oh, out_row) in dst.chunks_exact_mut(out_w).enumerate() {
                        out_row[out_w - 1] = tap.read(g, plane, oh, out_w - 1);
                    }
                }
                None => {
                    for (oh, out_row) in dst.chunks_exact_mut(out_w).enumerate() {
                        tap.gather_row::<S>(g, plane, oh, out_row);
                    }
                }
            }
        }
    });
}

/// The adjoint of [`im2col`]: adds every entry of `col` (layout as in [`im2col`]) back onto
/// the input pixel it was read from, dropping taps that fall in the padding. `col` is
/// consumed as scratch: a shifted row is added onto the row it was copied from (the adjoint
/// of the copy in [`im2col_at_stride`]), so rows are visited last to first.
fn col2im(geometry: &Conv2dGeometry, col: &mut [f32], images: &mut [f32]) {
    match geometry.stride[1] {
        1 => col2im_at_stride::<1>(geometry, col, images),
        2 => col2im_at_stride::<2>(geometry, col, images),
        _ => col2im_at_stride::<0>(geometry, col, images),
    }
}

/// [`col2im`] for horizontal stride `S` (`0`: any stride), as [`im2col_at_stride`].
fn col2im_at_stride<const S: usize>(
    geometry: &Conv2dGeometry,
    col: &mut [f32],
    images: &mut [f32],
) {
    let g = geometry;
    let taps = Taps::new(g);
    let [out_h, out_w] = g.out_size;
    let pixels = g.out_pixels();
    let columns = images.len() / g.in_image_len() * pixels;
    taps.for_each(g.in_channels, true, |index, tap| {
        let (earlier, rest) = col.split_at_mut(index * columns);
        let row = &mut rest[..columns];
        // The entries that the copy in `im2col` brought in from outside the source row are
        // added to the image directly and zeroed, so that one block-wide add onto the source
        // row carries the others.
        for (image, src) in images
            .chunks_exact_mut(g.in_image_len())
            .zip(row.chunks_exact_mut(pixels))
        {
            let plane = &mut image[tap.plane.clone()];
            match tap.shift {
                Some(Shift::Rows(_)) => {
                    let last = out_h - 1;
                    let last_row = &mut src[last * out_w..];
                    tap.scatter_row::<S>(g, last_row, last, plane);
                    last_row.fill(0.0);
                }
                Some(Shift::Columns(_)) => {
                    for (oh, out_row) in src.chunks_exact_mut(out_w).enumerate() {
                        tap.accumulate(g, plane, oh, out_w - 1, out_row[out_w - 1]);
                        out_row[out_w - 1] = 0.0;
                    }
                }
                None => {
                    for (oh, out_row) in src.chunks_exact(out_w).enumerate() {
                        tap.scatter_row::<S>(g, out_row, oh, plane);
                    }
                }
            }
        }
        if let Some((from, shift)) = tap.shift.map(|s| s.source(out_w)) {
            let dst = &mut earlier[from * columns..][..columns];
            add_assign(&mut dst[shift..], &row[..columns - shift]);
        }
    });
}

fn add_assign(dst: &mut [f32], src: &[f32]) {
    dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
}

/// How an im2col row repeats an earlier one. With `m·d = s` (stride a multiple of the
/// dilation), tap `i` under output row `h` reads input row `h·s + i·d − p`, which tap `i − m`
/// reads under output row `h + 1`: row `(c, i, j)` is row `(c, i − m, j)` moved up one output
/// row, and likewise one output column left for `j`.
#[derive(Debug, Clone, Copy)]
enum Shift {
    /// Copy of the given im2col row moved up one output row; the last output row is new.
    Rows(usize),
    /// Copy of the given im2col row moved left one output column; the last column is new.
    Columns(usize),
}

impl Shift {
    /// The source row and the offset of the copy along `col`'s row: one output row
    /// (`W_out` entries) or one output column (one entry).
    fn source(self, out_w: usize) -> (usize, usize) {
        match self {
            Self::Rows(from) => (from, out_w),
            Self::Columns(from) => (from, 1),
        }
    }
}

/// One im2col row `(c, i, j)`: channel `c`'s plane and the windows of kernel row `i` and
/// kernel column `j`.
struct Tap {
    plane: std::ops::Range<usize>,
    rows: Window,
    cols: Window,
    shift: Option<Shift>,
}

impl Tap {
    /// Input offset of output pixel `(oh, ow)` in the channel plane, if inside the image.
    fn position(&self, g: &Conv2dGeometry, oh: usize, ow: usize) -> Option<usize> {
        let ih = self.rows.position(oh, g.stride[0])?;
        let iw = self.cols.position(ow, g.stride[1])?;
        Some(ih * g.in_size[1] + iw)
    }

    fn read(&self, g: &Conv2dGeometry, plane: &[f32], oh: usize, ow: usize) -> f32 {
        self.position(g, oh, ow).map_or(0.0, |at| plane[at])
    }

    fn accumulate(&self, g: &Conv2dGeometry, plane: &mut [f32], oh: usize, ow: usize, v: f32) {
        if let Some(at) = self.position(g, oh, ow) {
            plane[at] += v;
        }
    }

    /// Output row `oh` of this tap into `out` (at least `W_out` long).
    fn gather_row<const S: usize>(
        &self,
        g: &Conv2dGeometry,
        plane: &[f32],
        oh: usize,
        out: &mut [f32],
    ) {
        let out = &mut out[..g.out_size[1]];
        match self.rows.position(oh, g.stride[0]) {
            Some(ih) => self
                .cols
                .gather::<S>(&plane[ih * g.in_size[1]..], out, g.stride[1]),
            None => out.fill(0.0),
        }
    }

    /// The adjoint of [`Tap::gather_row`].
    fn scatter_row<const S: usize>(
        &self,
        g: &Conv2dGeometry,
        row: &[f32],
        oh: usize,
        plane: &mut [f32],
    ) {
        if let Some(ih) = self.rows.position(oh, g.stride[0]) {
            self.cols.scatter_add::<S>(
                &row[..g.out_size[1]],
                &mut plane[ih * g.in_size[1]..],
                g.stride[1],
            );
        }
    }
}

/// The output positions `[lo, hi)` along one dimension whose tap lands inside the input, the
/// first of them reading input position `first`: output `o` reads `o·s + offset − p`, inside
/// `[0, len)` for `⌈(p − offset)/s⌉ ≤ o < ⌈(len + p − offset)/s⌉`.
#[derive(Debug, Clone, Copy)]
struct Window {
    lo: usize,
    hi: usize,
    first: usize,
}

impl Window {
    fn new(offset: usize, stride: usize, pad: usize, in_len: usize, out_len: usize) -> Self {
        let lo = pad.saturating_sub(offset).div_ceil(stride).min(out_len);
        let hi = (in_len + pad)
            .checked_sub(offset)
            .map_or(0, |limit| limit.div_ceil(stride))
            .min(out_len)
            .max(lo);
        Self {
            lo,
            hi,
            first: (lo * stride + offset).saturating_sub(pad),
        }
    }

    /// Input position read by output position `o`, if inside the input.
    fn position(&self, o: usize, stride: usize) -> Option<usize> {
        (self.lo..self.hi)
            .contains(&o)
            .then(|| self.first + (o - self.lo) * stride)
    }

    /// `out[o] = src[first + (o − lo)·s]` on `[lo, hi)`, zero elsewhere (`S = 0`: stride `s`).
    fn gather<const S: usize>(&self, src: &[f32], out: &mut [f32], stride: usize) {
        let (left, rest) = out.split_at_mut(self.lo);
        let (inside, right) = rest.split_at_mut(self.hi - self.lo);
        left.fill(0.0);
        right.fill(0.0);
        if inside.is_empty() {
            return;
        }
        let src = &src[self.first..];
        match S {
            1 => inside.copy_from_slice(&src[..inside.len()]),
            2 => strided_copy::<2>(src, inside),
            _ => inside
                .iter_mut()
                .zip(src.iter().step_by(stride))
                .for_each(|(d, s)| *d = *s),
        }
    }

    /// `dst[first + (o − lo)·s] += row[o]` on `[lo, hi)`: the adjoint of [`Window::gather`].
    fn scatter_add<const S: usize>(&self, row: &[f32], dst: &mut [f32], stride: usize) {
        let inside = &row[self.lo..self.hi];
        if inside.is_empty() {
            return;
        }
        let dst = &mut dst[self.first..];
        match S {
            1 => dst.iter_mut().zip(inside).for_each(|(d, s)| *d += s),
            2 => strided_add::<2>(inside, dst),
            _ => dst
                .iter_mut()
                .step_by(stride)
                .zip(inside)
                .for_each(|(d, s)| *d += s),
        }
    }
}

/// The windows of every kernel row and column of a geometry, computed once per im2col call.
struct Taps {
    kernel: [usize; 2],
    plane_len: usize,
    /// The tap offset `m = s / d` of [`Shift`] per dimension, if the stride is a multiple of
    /// the dilation and the output has a second row (column) to shift into.
    shift: [Option<usize>; 2],
    rows: Vec<Window>,
    cols: Vec<Window>,
}

impl Taps {
    fn new(g: &Conv2dGeometry) -> Self {
        let windows = |dim: usize| {
            (0..g.kernel_size[dim])
                .map(|i| {
                    Window::new(
                        i * g.dilation[dim],
                        g.stride[dim],
                        g.padding[dim],
                        g.in_size[dim],
                        g.out_size[dim],
                    )
                })
                .collect()
        };
        let shift = |dim: usize| {
            (g.stride[dim].is_multiple_of(g.dilation[dim]) && g.out_size[dim] > 1)
                .then(|| g.stride[dim] / g.dilation[dim])
        };
        Self {
            kernel: g.kernel_size,
            plane_len: g.in_size[0] * g.in_size[1],
            shift: [shift(0), shift(1)],
            rows: windows(0),
            cols: windows(1),
        }
    }

    /// Calls `visit` on every im2col row `(c, i, j)` with its index `(c·k_h + i)·k_w + j`, in
    /// order or in `reverse` (nested loops: a division per row cost more than the copies of
    /// the small late ResNet stages).
    fn for_each(&self, channels: usize, reverse: bool, mut visit: impl FnMut(usize, Tap)) {
        let [kernel_h, kernel_w] = self.kernel;
        let order = |len: usize, at: usize| if reverse { len - 1 - at } else { at };
        for c in 0..channels {
            let channel = order(channels, c);
            for i in 0..kernel_h {
                let i = order(kernel_h, i);
                for j in 0..kernel_w {
                    let j = order(kernel_w, j);
                    let index = (channel * kernel_h + i) * kernel_w + j;
                    visit(index, self.tap(channel, i, j, index));
                }
            }
        }
    }

    fn tap(&self, channel: usize, i: usize, j: usize, index: usize) -> Tap {
        let shift = match self.shift {
            [Some(m), _] if i >= m => Some(Shift::Rows(index - m * self.kernel[1])),
            [_, Some(m)] if j >= m => Some(Shift::Columns(index - m)),
            _ => None,
        };
        Tap {
            plane: channel * self.plane_len..(channel + 1) * self.plane_len,
            rows: self.rows[i],
            cols: self.cols[j],
            shift,
        }
    }
}

/// `out[o] = src[o·S]`: whole `S`-chunks for all but the last element, so the loop
/// vectorises without a bounds test per element.
fn strided_copy<const S: usize>(src: &[f32], out: &mut [f32]) {
    let Some((last, body)) = out.split_last_mut() else {
        return;
    };
    body.iter_mut()
        .zip(src.chunks_exact(S))
        .for_each(|(d, chunk)| *d = chunk[0]);
    *last = src[body.len() * S];
}

/// `dst[o·S] += row[o]`, the adjoint of [`strided_copy`].
fn strided_add<const S: usize>(row: &[f32], dst: &mut [f32]) {
    let Some((last, body)) = row.split_last() else {
        return;
    };
    dst.chunks_exact_mut(S)
        .zip(body)
        .for_each(|(chunk, s)| chunk[0] += s);
    dst[body.len() * S] += last;
}

/// Copies a block of `[n, C, P]` images into `rows` as the `C × (n·P)` matrix
/// `rows[c, n·P + q] = images[n, c, q]`, so one GEMM covers the whole block.
fn regroup_channels(images: &[f32], channels: usize, pixels: usize, rows: &mut [f32]) {
    let columns = images.len() / channels;
    for (image, planes) in images.chunks_exact(channels * pixels).enumerate() {
        for (channel, plane) in planes.chunks_exact(pixels).enumerate() {
            let start = channel * columns + image * pixels;
            rows[start..start + pixels].copy_from_slice(plane);
        }
    }
}

/// The inverse of [`regroup_channels`]: `images[n, c, q] = rows[c, n·P + q]`.
fn ungroup_channels(rows: &[f32], channels: usize, pixels: usize, images: &mut [f32]) {
    let columns = images.len() / channels;
    for (image, planes) in images.chunks_exact_mut(channels * pixels).enumerate() {
        for (channel, plane) in planes.chunks_exact_mut(pixels).enumerate() {
            let start = channel * columns + image * pixels;
            plane.copy_from_slice(&rows[start..start + pixels]);
        }
    }
}

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

/// Forward cross-correlation `y_n = W · col_n + b` (see the module docs), returning
/// `y: [N, C_out, H_out, W_out]` as a flat vector.
///
/// `input` is `[N, C_in, H, W]`, `weight` is `[C_out, C_in, k_h, k_w]`, `bias` is `[C_out]`.
///
/// # Errors
/// [`KernelError::Shape`] if a slice length disagrees with `geometry`,
/// [`KernelError::Options`] if `geometry.groups ≠ 1`.
pub fn conv2d_forward(
    geometry: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
) -> Result<Vec<f32>, KernelError> {
    let g = geometry;
    check_single_group(g)?;
    let (k, pixels, out_channels) = (g.patch_len(), g.out_pixels(), g.out_channels);
    g.check_lengths(&[
        ("input", input.len(), g.batch * g.in_image_len()),
        ("weight", weight.len(), out_channels * k),
    ])?;
    if let Some(bias) = bias {
        g.check_lengths(&[("bias", bias.len(), out_channels)])?;
    }
    if g.batch == 0 {
        return Ok(Vec::new());
    }
    if let Some(kind) = winograd_kind(g) {
        let mut output = winograd::forward(kind, g, input, weight);
        if let Some(bias) = bias {
            add_channel_bias(&mut output, bias, pixels);
        }
        return Ok(output);
    }
    let mut output = zeros(g.batch * g.out_image_len());
    let block = g.block_images();
    let par = inner_parallelism(g.batch, block);
    let weight_matrix = MatRef::from_row_major_slice(weight, out_channels, k);
    let forward_block = |(out_block, in_block): (&mut [f32], &[f32])| {
        let images = in_block.len() / g.in_image_len();
        let columns = images * pixels;
        with_scratch([columns * k, out_channels * columns], |col, product| {
            im2col(g, in_block, col);
            let rhs = MatRef::from_row_major_slice(&*col, k, columns);
            if images == 1 {
                let dst = MatMut::from_row_major_slice_mut(&mut *out_block, out_channels, columns);
                gemm(dst, Accum::Replace, weight_matrix, rhs, par);
            } else {
                let dst = MatMut::from_row_major_slice_mut(&mut *product, out_channels, columns);
                gemm(dst, Accum::Replace, weight_matrix, rhs, par);
                ungroup_channels(product, out_channels, pixels, out_block);
            }
        });
        if let Some(bias) = bias {
            add_channel_bias(out_block, bias, pixels);
        }
    };
    output
        .par_chunks_mut(block * g.out_image_len())
        .zip(input.par_chunks(block * g.in_image_len()))
        .for_each(forward_block);
    Ok(output)
}

/// Weight gradient `∂L/∂W = Σ_n (∂L/∂y_n) · col_nᵀ` of the cross-correlation `geometry`,
/// returned as `[C_out, C_in, k_h, k_w]`, flat.
///
/// `input` is `[N, C_in, H, W]`, `output_grad` is `[N, C_out, H_out, W_out]`.
///
/// # Errors
/// [`KernelError::Shape`] if a slice length disagrees with `geometry`,
/// [`KernelError::Options`] if `geometry.groups ≠ 1`.
pub fn conv2d_weight_grad(
    geometry: &Conv2dGeometry,
    input: &[f32],
    output_grad: &[f32],
) -> Result<Vec<f32>, KernelError> {
    let g = geometry;
    check_single_group(g)?;
    let (k, pixels, out_channels) = (g.patch_len(), g.out_pixels(), g.out_channels);
    g.check_lengths(&[
        ("input", input.len(), g.batch * g.in_image_len()),
        (
            "output gradient",
            output_grad.len(),
            g.batch * g.out_image_len(),
        ),
    ])?;
    if let Some(kind) = winograd_kind(g) {
        return Ok(winograd::weight_grad(kind, g, input, output_grad));
    }
    let block = g.block_images();
    let par = inner_parallelism(g.batch, block);
    let accumulate_block = |mut gradient: Vec<f32>, (in_block, grad_block): (&[f32], &[f32])| {
        let images = in_block.len() / g.in_image_len();
        let columns = images * pixels;
        with_scratch([columns * k, out_channels * columns], |col, grad_rows| {
            im2col(g, in_block, col);
            // One image's gradient is already the C_out × P matrix; a block of several is
            // regrouped as grad_rows[o, n·P + q] = ∂L/∂y[n, o, q] so one GEMM covers the block.
            let lhs = if images == 1 {
                grad_block
            } else {
                regroup_channels(grad_block, out_channels, pixels, grad_rows);
                &*grad_rows
            };
            let lhs = MatRef::from_row_major_slice(lhs, out_channels, columns);
            let rhs = MatRef::from_row_major_slice(&*col, k, columns).transpose();
            let dst = MatMut::from_row_major_slice_mut(&mut gradient, out_channels, k);
            gemm(dst, Accum::Add, lhs, rhs, par);
        });
        gradient
    };
    // One accumulator per rayon split (not per block), summed at the end.
    let parts = input
        .par_chunks(block * g.in_image_len())
        .zip(output_grad.par_chunks(block * g.out_image_len()))
        .fold(|| vec![0.0f32; out_channels * k], accumulate_block);
    let gradient = sum_parts(parts, out_channels * k);
    Ok(gradient)
}

/// Forward output and weight gradient of the cross-correlation `geometry` in one pass over
/// the input: `y_n = W · col_n` and `∂L/∂W = Σ_n r_n · col_nᵀ` share each block's im2col.
///
/// This is the backward of a transposed convolution: with the geometry of
/// [`Conv2dGeometry::conv_transpose2d`], `input` is the transposed convolution's output
/// gradient, `y` its input gradient and `r` its input `x`, so both gradients cost one im2col.
/// Returns `(y, ∂L/∂W)`, flat `[N, C_out, H_out, W_out]` and `[C_out, C_in, k_h, k_w]`.
///
/// `input` is `[N, C_in, H, W]`, `weight` is `[C_out, C_in, k_h, k_w]`, `output_grad` (`r`)
/// is `[N, C_out, H_out, W_out]`.
///
/// # Errors
/// [`KernelError::Shape`] if a slice length disagrees with `geometry`,
/// [`KernelError::Options`] if `geometry.groups ≠ 1`.
pub fn conv2d_forward_and_weight_grad(
    geometry: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    output_grad: &[f32],
) -> Result<(Vec<f32>, Vec<f32>), KernelError> {
    let g = geometry;
    check_single_group(g)?;
    let (k, pixels, out_channels) = (g.patch_len(), g.out_pixels(), g.out_channels);
    g.check_lengths(&[
        ("input", input.len(), g.batch * g.in_image_len()),
        ("weight", weight.len(), out_channels * k),
        (
            "output gradient",
            output_grad.len(),
            g.batch * g.out_image_len(),
        ),
    ])?;
    if let Some(kind) = winograd_kind(g) {
        return Ok(winograd::forward_and_weight_grad(
            kind,
            g,
            input,
            weight,
            output_grad,
        ));
    }
    let mut output = zeros(g.batch * g.out_image_len());
    let block = g.block_images();
    let par = inner_parallelism(g.batch, block);
    let weight_matrix = MatRef::from_row_major_slice(weight, out_channels, k);
    let both_block =
        |mut gradient: Vec<f32>,
         ((out_block, in_block), grad_block): ((&mut [f32], &[f32]), &[f32])| {
            let images = in_block.len() / g.in_image_len();
            let columns = images * pixels;
            with_scratch([columns * k, out_channels * columns], |col, rows| {
                im2col(g, in_block, col);
                // Forward: rows[o, n·P + q] = (W · col)[o, n·P + q], then scattered to y[n, o, q].
                let col = MatRef::from_row_major_slice(&*col, k, columns);
                let dst = MatMut::from_row_major_slice_mut(&mut *rows, out_channels, columns);
                gemm(dst, Accum::Replace, weight_matrix, col, par);
                ungroup_channels(rows, out_channels, pixels, out_block);
                // Weight gradient from the same col, with r regrouped into the freed `rows`.
                regroup_channels(grad_block, out_channels, pixels, rows);
                let lhs = MatRef::from_row_major_slice(&*rows, out_channels, columns);
                let dst = MatMut::from_row_major_slice_mut(&mut gradient, out_channels, k);
                gemm(dst, Accum::Add, lhs, col.transpose(), par);
            });
            gradient
        };
    let parts = output
        .par_chunks_mut(block * g.out_image_len())
        .zip(input.par_chunks(block * g.in_image_len()))
        .zip(output_grad.par_chunks(block * g.out_image_len()))
        .fold(|| vec![0.0f32; out_channels * k], both_block);
    let gradient = sum_parts(parts, out_channels * k);
    Ok((output, gradient))
}

/// Both gradients of the cross-correlation `geometry`: `(∂L/∂x, ∂L/∂W)`, as
/// [`conv2d_input_grad`] and [`conv2d_weight_grad`]. Winograd geometries share one
/// transformed output gradient per block between the two; the others run the two kernels.
///
/// # Errors
/// [`KernelError::Shape`] if a slice length disagrees with `geometry`,
/// [`KernelError::Options`] if `geometry.groups ≠ 1`.
pub fn conv2d_input_and_weight_grad(
    geometry: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    output_grad: &[f32],
) -> Result<(Vec<f32>, Vec<f32>), KernelError> {
    let g = geometry;
    check_single_group(g)?;
    g.check_lengths(&[
        ("input", input.len(), g.batch * g.in_image_len()),
        ("weight", weight.len(), g.out_channels * g.patch_len()),
        (
            "output gradient",
            output_grad.len(),
            g.batch * g.out_image_len(),
        ),
    ])?;
    if let Some(kind) = winograd_kind(g) {
        return Ok(winograd::input_and_weight_grad(
            kind,
            g,
            input,
            weight,
            output_grad,
        ));
    }
    Ok((
        conv2d_input_grad(g, output_grad, weight)?,
        conv2d_weight_grad(g, input, output_grad)?,
    ))
}

/// Input gradient `∂L/∂x = col2im(Wᵀ · ∂L/∂y)` of the cross-correlation `geometry`, i.e.
/// `∂L/∂x[n, c, h', w'] = Σ W[o, c, i, j] · ∂L/∂y[n, o, h, w]` over `h' = h·s_h − p_h + i·d_h`,
/// `w' = w·s_w − p_w + j·d_w`; returned as `[N, C_in, H, W]`, flat.
///
/// The same map is the forward pass of a transposed convolution: for the geometry of
/// [`Conv2dGeometry::conv_transpose2d`], `output_grad` is the transposed convolution's input
/// `x` and the result its output (before the bias).
///
/// `output_grad` is `[N, C_out, H_out, W_out]`, `weight` is `[C_out, C_in, k_h, k_w]`.
///
/// # Errors
/// [`KernelError::Shape`] if a slice length disagrees with `geometry`,
/// [`KernelError::Options`] if `geometry.groups ≠ 1`.
pub fn conv2d_input_grad(
    geometry: &Conv2dGeometry,
    output_grad: &[f32],
    weight: &[f32],
) -> Result<Vec<f32>, KernelError> {
    let g = geometry;
    check_single_group(g)?;
    let (k, pixels, out_channels) = (g.patch_len(), g.out_pixels(), g.out_channels);
    g.check_lengths(&[
        (
            "output gradient",
            output_grad.len(),
            g.batch * g.out_image_len(),
        ),
        ("weight", weight.len(), out_channels * k),
    ])?;
    if g.batch == 0 {
        return Ok(Vec::new());
    }
    if let Some(kind) = winograd_kind(g) {
        return Ok(winograd::input_grad(kind, g, output_grad, weight));
    }
    let mut input_grad = zeros(g.batch * g.in_image_len());
    let block = g.block_images();
    let par = inner_parallelism(g.batch, block);
    let weight_matrix = MatRef::from_row_major_slice(weight, out_channels, k);
    let input_grad_block = |(in_block, grad_block): (&mut [f32], &[f32])| {
        let images = grad_block.len() / g.out_image_len();
        let columns = images * pixels;
        with_scratch([columns * k, out_channels * columns], |col, grad_rows| {
            let grad_rows = if images == 1 {
                grad_block
            } else {
                regroup_channels(grad_block, out_channels, pixels, grad_rows);
                &*grad_rows
            };
            // col[(c, i, j), n·P + q] = Σ_o W[o, (c, i, j)] · ∂L/∂y[n, o, q]
            let rhs = MatRef::from_row_major_slice(grad_rows, out_channels, columns);
            let dst = MatMut::from_row_major_slice_mut(&mut *col, k, columns);
            gemm(dst, Accum::Replace, weight_matrix.transpose(), rhs, par);
            col2im(g, col, in_block);
        });
    };
    input_grad
        .par_chunks_mut(block * g.in_image_len())
        .zip(output_grad.par_chunks(block * g.out_image_len()))
        .for_each(input_grad_block);
    Ok(input_grad)
}

/// `vec![0.0; len]` zero-filled by the rayon pool: the kernels' outputs are allocated on the
/// calling thread, where a multi-MiB `memset` left both workers idle (3.6 % of the ResNet-18
/// step, all of it serial).
pub(crate) fn zeros(len: usize) -> Vec<f32> {
    let mut values = Vec::with_capacity(len);
    values.par_extend(rayon::iter::repeat_n(0.0f32, len));
    values
}

/// Adds `bias[c]` to every pixel of channel `c` of consecutive `[C, pixels]` images.
/// Planes are spread over the rayon pool (a whole output's worth would otherwise be one
/// serial pass on the calling thread).
pub(crate) fn add_channel_bias(values: &mut [f32], bias: &[f32], pixels: usize) {
    if pixels == 0 || bias.is_empty() {
        return;
    }
    let min_planes = (1 << 14) / pixels;
    values
        .par_chunks_exact_mut(pixels)
        .with_min_len(min_planes.max(1))
        .enumerate()
        .for_each(|(plane, values)| {
            let b = bias[plane % bias.len()];
            values.iter_mut().for_each(|v| *v += b);
        });
}

/// Bias gradient `∂L/∂b_o = Σ_{n,h,w} ∂L/∂y[n, o, h, w]` of an `[N, C, H, W]` output gradient.
///
/// # Errors
/// [`KernelError::Shape`] if `output_grad.len()` is not a multiple of `channels · pixels`.
pub fn bias_grad(
    output_grad: &[f32],
    channels: usize,
    pixels: usize,
) -> Result<Vec<f32>, KernelError> {
    let image_len = channels * pixels;
    if image_len == 0 || !output_grad.len().is_multiple_of(image_len) {
        return Err(KernelError::Shape(format!(
            "output gradient of {} elements is not a whole number of {channels}×{pixels} images",
            output_grad.len()
        )));
    }
    // Channels in parallel, each summed over its planes in f64.
    Ok((0..channels)
        .into_par_iter()
        .map(|c| {
            output_grad
                .chunks_exact(image_len)
                .map(|image| norm::lane_sum(&image[c * pixels..(c + 1) * pixels], |v| v))
                .sum::<f64>() as f32
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct seven-loop cross-correlation: the definition, with no im2col and no GEMM.
    fn direct_forward(g: &Conv2dGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
        let [h, wd] = g.in_size;
        let [oh_n, ow_n] = g.out_size;
        let [kh_n, kw_n] = g.kernel_size;
        let mut y = vec![0.0f32; g.batch * g.out_image_len()];
        for n in 0..g.batch {
            for o in 0..g.out_channels {
                for oh in 0..oh_n {
                    for ow in 0..ow_n {
                        let mut acc = 0.0;
                        for c in 0..g.in_channels {
                            for i in 0..kh_n {
                                for j in 0..kw_n {
                                    let ih = (oh * g.stride[0] + i * g.dilation[0]) as isize
                                        - g.padding[0] as isize;
                                    let iw = (ow * g.stride[1] + j * g.dilation[1]) as isize
                                        - g.padding[1] as isize;
                                    if ih >= 0 && iw >= 0 && (ih as usize) < h && (iw as usize) < wd
                                    {
                                        let xv = x[((n * g.in_channels + c) * h + ih as usize)
                                            * wd
                                            + iw as usize];
                                        acc +=
                                            xv * w[((o * g.in_channels + c) * kh_n + i) * kw_n + j];
                                    }
                                }
                            }
                        }
                        y[((n * g.out_channels + o) * oh_n + oh) * ow_n + ow] = acc;
                    }
                }
            }
        }
        y
    }

    fn sequence(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919 + seed * 104_729) % 97) as f32 / 48.0 - 1.0)
            .collect()
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn hand_computed_two_by_two_kernel() {
        // x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], W = [[1, 0], [0, -1]], stride 1, no padding:
        // y[h, w] = x[h, w] − x[h + 1, w + 1] = −4 everywhere.
        let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        let g = Conv2dGeometry::conv2d([1, 1, 3, 3], [1, 1, 2, 2], &options).expect("valid");
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let y = conv2d_forward(&g, &x, &[1.0, 0.0, 0.0, -1.0], Some(&[0.5])).expect("valid");
        assert_eq!(y, vec![-3.5; 4]);
        // With ∂L/∂y = 1: ∂L/∂W[i, j] = Σ_{h,w} x[h + i, w + j] = 12, 16, 24, 28.
        let dw = conv2d_weight_grad(&g, &x, &[1.0; 4]).expect("valid");
        assert_eq!(dw, vec![12.0, 16.0, 24.0, 28.0]);
        // ∂L/∂x counts, per pixel, the kernel taps that reach it with sign: +1 for the top-left
        // tap, −1 for the bottom-right one.
        let dx = conv2d_input_grad(&g, &[1.0; 4], &[1.0, 0.0, 0.0, -1.0]).expect("valid");
        assert_eq!(dx, vec![1.0, 1.0, 0.0, 1.0, 0.0, -1.0, 0.0, -1.0, -1.0]);
        assert_eq!(
            bias_grad(&[1.0, 2.0, 3.0, 4.0], 1, 4).expect("valid"),
            vec![10.0]
        );
    }

    /// Weight and input gradients are the adjoints of the forward map: for any x, W, r,
    /// ⟨r, conv(x, W)⟩ = ⟨∂/∂W, W⟩ = ⟨∂/∂x, x⟩, both against the direct forward.
    #[test]
    fn kernels_agree_with_the_direct_definition_and_its_adjoints() {
        let shapes = [
            ([3, 2, 9, 8], [4, 2, 4, 4], [2, 2], [(1, 1), (1, 1)], [1, 1]),
            ([2, 3, 7, 7], [5, 3, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1]),
            (
                [2, 2, 10, 9],
                [3, 2, 3, 2],
                [3, 2],
                [(2, 0), (0, 1)],
                [2, 3],
            ),
            ([1, 1, 6, 6], [2, 1, 5, 1], [1, 3], [(0, 0), (2, 2)], [1, 1]),
        ];
        for (x_shape, w_shape, stride, padding, dilation) in shapes {
            let options = ConvOptions::new_with_padding(stride, padding, dilation, 1);
            let g = Conv2dGeometry::conv2d(x_shape, w_shape, &options).expect("valid");
            let x = sequence(g.batch * g.in_image_len(), 1);
            let w = sequence(g.out_channels * g.patch_len(), 2);
            let r = sequence(g.batch * g.out_image_len(), 3);
            let direct = direct_forward(&g, &x, &w);
            let ours = conv2d_forward(&g, &x, &w, None).expect("valid");
            assert!(max_abs_diff(&ours, &direct) < 1e-4, "forward {g:?}");
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f32>();
            let objective = dot(&r, &direct);
            let dw = conv2d_weight_grad(&g, &x, &r).expect("valid");
            let dx = conv2d_input_grad(&g, &r, &w).expect("valid");
            let (fused_y, fused_dw) =
                conv2d_forward_and_weight_grad(&g, &x, &w, &r).expect("valid");
            assert!(max_abs_diff(&fused_y, &ours) < 1e-5, "fused forward {g:?}");
            assert!(
                max_abs_diff(&fused_dw, &dw) < 1e-4,
                "fused weight grad {g:?}"
            );
            assert!(
                (dot(&dw, &w) - objective).abs() < 1e-3 * objective.abs().max(1.0),
                "⟨dW, W⟩ {g:?}"
            );
            assert!(
                (dot(&dx, &x) - objective).abs() < 1e-3 * objective.abs().max(1.0),
                "⟨dx, x⟩ {g:?}"
            );
        }
    }

    #[test]
    fn geometry_matches_pytorch_output_sizes() {
        // torch.nn.Conv2d(1, 1, 4, stride=2, padding=1)(torch.zeros(1, 1, 64, 64)).shape[-1] == 32
        let options = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
        let g = Conv2dGeometry::conv2d([1, 1, 64, 64], [1, 1, 4, 4], &options).expect("valid");
        assert_eq!(g.out_size, [32, 32]);
        // torch.nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1) maps 4×4 to 8×8, and with
        // output_padding=1, dilation=2: (4 − 1)·2 − 2 + 2·3 + 1 + 1 = 12.
        let t = ConvTransposeOptions::new([2, 2], [1, 1], [0, 0], [1, 1], 1);
        let g = Conv2dGeometry::conv_transpose2d([1, 1, 4, 4], [1, 1, 4, 4], &t).expect("valid");
        assert_eq!((g.in_size, g.out_size), ([8, 8], [4, 4]));
        let t = ConvTransposeOptions::new([2, 2], [1, 1], [1, 1], [2, 2], 1);
        let g = Conv2dGeometry::conv_transpose2d([1, 1, 4, 4], [1, 1, 4, 4], &t).expect("valid");
        assert_eq!(g.in_size, [12, 12]);
    }

    #[test]
    fn grouped_geometry_is_validated_but_not_computed() {
        let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 2);
        let g = Conv2dGeometry::conv2d([1, 4, 5, 5], [6, 2, 3, 3], &options).expect("valid");
        let x = vec![0.0; g.batch * g.in_image_len()];
        assert!(matches!(
            conv2d_forward(&g, &x, &[0.0; 36], None),
            Err(KernelError::Options(_))
        ));
        let bad = Conv2dGeometry::conv2d([1, 4, 5, 5], [5, 2, 3, 3], &options);
        assert!(matches!(bad, Err(KernelError::Shape(_))));
    }

    #[test]
    fn wrong_slice_lengths_are_errors() {
        let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        let g = Conv2dGeometry::conv2d([2, 1, 4, 4], [1, 1, 2, 2], &options).expect("valid");
        assert!(conv2d_weight_grad(&g, &[0.0; 31], &[0.0; 18]).is_err());
        assert!(conv2d_input_grad(&g, &[0.0; 18], &[0.0; 3]).is_err());
        assert!(bias_grad(&[0.0; 7], 2, 2).is_err());
    }
}
