//! Winograd's minimal filtering (Lavin & Gray, *Fast Algorithms for Convolutional Neural
//! Networks*, CVPR 2016) for three kinds of layer ([`Kind`]): F(2×2, 3×3) for 3×3, stride-1,
//! "same"-padded ResNet layers ([`three_by_three`]), F(4×4, 3×3) for the same layers on images
//! with sides ≥ 16 ([`large_tiles`]), and F(2×2, 2×2) on the polyphase components of the
//! Burgess VAE's 4×4, stride-2 layers ([`strided`]). The three share the drivers here
//! ([`Transforms`]): blocks of images, the per-position GEMMs, and both gradients as the
//! adjoints of the transforms.
//!
//! All transforms are vectorised over channels: `V` and `M` are stored per position as
//! `tiles × C` (each `V_ξ`, `M_ξ` transposed, which faer multiplies as it is), and each image
//! row is gathered channel-minor ([`transpose`]) before its tiles are transformed, so every
//! step is a `C`-long lane-wise operation ([`lanes`]) whatever the image width. Vectorising
//! over a row of tiles instead (`W / 2` lanes) made ResNet's 8×8 and 4×4 stages slower than
//! im2col.

mod lanes;
mod large_tiles;
mod strided;
mod three_by_three;
mod transpose;

use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::{
    Conv2dGeometry, equal_blocks, gemm, inner_parallelism, sum_parts, with_scratch, zeros,
};
use three_by_three::ThreeByThree;
use transpose::{gather_row, scatter_row};

/// Fewest input and output channels that take a Winograd path: with fewer the GEMMs are too
/// thin to pay for the transforms (the 3-channel ResNet stem stays on im2col).
const MIN_CHANNELS: usize = 16;

/// Smallest image side that takes F(4×4, 3×3) instead of F(2×2, 3×3). Per ResNet-18 stage
/// at batch 64 (forward / both gradients): 32×32 12.3 / 23.2 → 9.7 / 17.6 ms and 16×16
/// 9.5 / 18.3 → 7.4 / 13.2 ms, but 8×8 even (9.0 / 16.9 against 9.5 / 16.5 ms) and 4×4
/// 14.3 / 25.0 → 24.4 / 44.6 ms: one tile per image leaves 32-column GEMMs against a 36 MiB
/// transformed filter.
const LARGE_TILES_MIN_SIDE: usize = 16;

/// Least GEMM width (tiles per block); as [`super::geometry::WIDE_WEIGHT_MIN_COLUMNS`].
const MIN_TILES: usize = 512;

/// Which minimal-filtering algorithm computes a geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// F(2×2, 3×3) for 3×3, stride-1, padding-1 convolutions (ResNets).
    ThreeByThree,
    /// F(4×4, 3×3) for the same layers on images whose sides are multiples of 4 and at least
    /// [`LARGE_TILES_MIN_SIDE`].
    ThreeByThreeLargeTiles,
    /// F(2×2, 2×2) on the polyphase components of 4×4, stride-2, padding-1 convolutions
    /// (the Burgess VAE's encoder, and through the adjoints its decoder).
    FourByFourStrideTwo,
}

impl Kind {
    /// The algorithm for `g`, if this module computes it.
    pub(super) fn of(g: &Conv2dGeometry) -> Option<Self> {
        if three_by_three::applies(g) {
            if g.out_size
                .iter()
                .all(|s| s % 4 == 0 && *s >= LARGE_TILES_MIN_SIDE)
            {
                Some(Self::ThreeByThreeLargeTiles)
            } else {
                Some(Self::ThreeByThree)
            }
        } else if strided::applies(g) {
            Some(Self::FourByFourStrideTwo)
        } else {
            None
        }
    }
}

/// One minimal-filtering algorithm as the linear maps around its GEMMs: per block of images,
/// `POSITIONS` GEMMs `M_ξ = V_ξ · U_ξᵀ` with `V_ξ` (`tiles × depth`) from the input,
/// `U_ξ` (`C_out × depth`) from the weight and `M_ξ` (`tiles × C_out`) mapped to the output.
/// Each `*_adjoint` is the transpose of its map, which is all the gradients need.
trait Transforms {
    /// Transformed positions `ξ` per tile (GEMMs per block).
    const POSITIONS: usize;

    /// Side of the output tiles.
    const TILE: usize;

    /// The GEMMs' inner dimension: transformed input values per tile and position.
    fn depth(g: &Conv2dGeometry) -> usize;

    /// `U` (`POSITIONS × C_out × depth`) of the weight.
    fn filter(g: &Conv2dGeometry, weight: &[f32]) -> Vec<f32>;

    /// The weight gradient `[C_out, C_in, k_h, k_w]` of `∂L/∂U`.
    fn filter_adjoint(g: &Conv2dGeometry, u: &[f32]) -> Vec<f32>;

    /// `V` (`POSITIONS × tiles × depth`) of a block of input images.
    fn input(g: &Conv2dGeometry, tiling: &Tiling, images: &[f32], v: &mut [f32]);

    /// The input gradient of a block of images (overwritten) from `∂L/∂V`.
    fn input_adjoint(g: &Conv2dGeometry, tiling: &Tiling, v: &[f32], images: &mut [f32]);

    /// A block of output images (overwritten) from `M` (`POSITIONS × tiles × C_out`).
    fn output(g: &Conv2dGeometry, tiling: &Tiling, m: &[f32], images: &mut [f32]);

    /// `∂L/∂M` of a block of output-gradient images.
    fn output_adjoint(g: &Conv2dGeometry, tiling: &Tiling, images: &[f32], m: &mut [f32]);
}

/// `T X Tᵀ` for a separable 1-D map `T` (`R` entries in, `C` out): `T` on every column of
/// `X`, then on every row of the result.
fn both_ways<const R: usize, const C: usize>(
    x: [[f32; R]; R],
    t: impl Fn([f32; R]) -> [f32; C],
) -> [[f32; C]; C] {
    // columns[j][i] = (T X)[i][j]
    let columns: [[f32; C]; R] = std::array::from_fn(|j| t(std::array::from_fn(|i| x[i][j])));
    std::array::from_fn(|i| t(std::array::from_fn(|j| columns[j][i])))
}

/// The padded image `x'` of one input image, channel-minor: `(H + 2) × (W + 2) × C`, zero on
/// the border (which no gather writes).
struct PaddedImage {
    size: [usize; 2],
    channels: usize,
    values: Vec<f32>,
}

impl PaddedImage {
    fn new(g: &Conv2dGeometry) -> Self {
        let [height, width] = g.in_size;
        Self {
            size: g.in_size,
            channels: g.in_channels,
            values: vec![0.0; (height + 2) * (width + 2) * g.in_channels],
        }
    }

    /// Where image row `h` lies: padded row `h + 1`, from padded column 1.
    fn interior_row(&self, h: usize) -> std::ops::Range<usize> {
        let start = ((h + 1) * (self.size[1] + 2) + 1) * self.channels;
        start..start + self.size[1] * self.channels
    }

    /// Copies one image (`[C, H, W]`) into the interior, channel-minor.
    fn load(&mut self, image: &[f32]) {
        for h in 0..self.size[0] {
            let row = self.interior_row(h);
            gather_row(image, self.size, h, &mut self.values[row]);
        }
    }

    /// Overwrites one image (`[C, H, W]`) with the interior.
    fn store(&self, image: &mut [f32]) {
        for h in 0..self.size[0] {
            scatter_row(&self.values[self.interior_row(h)], self.size, h, image);
        }
    }

    fn pixel(&self, row: usize, col: usize) -> &[f32] {
        self.pixels(row, col, 1)
    }

    fn pixel_mut(&mut self, row: usize, col: usize) -> &mut [f32] {
        self.pixels_mut(row, col, 1)
    }

    /// `count` consecutive pixels of padded row `row` from padded column `col`.
    fn pixels(&self, row: usize, col: usize, count: usize) -> &[f32] {
        let start = (row * (self.size[1] + 2) + col) * self.channels;
        &self.values[start..start + count * self.channels]
    }

    fn pixels_mut(&mut self, row: usize, col: usize, count: usize) -> &mut [f32] {
        let start = (row * (self.size[1] + 2) + col) * self.channels;
        &mut self.values[start..start + count * self.channels]
    }

    fn clear(&mut self) {
        self.values.fill(0.0);
    }
}

/// Output tiles along each dimension and per image.
struct Tiling {
    rows: usize,
    cols: usize,
}

impl Tiling {
    /// For output tiles of `side × side` pixels.
    fn new(g: &Conv2dGeometry, side: usize) -> Self {
        Self {
            rows: g.out_size[0] / side,
            cols: g.out_size[1] / side,
        }
    }

    fn per_image(&self) -> usize {
        self.rows * self.cols
    }

    /// Images per block: at least [`MIN_TILES`] tiles, in [`equal_blocks`].
    fn block_images(&self, batch: usize) -> usize {
        equal_blocks(batch, MIN_TILES.div_ceil(self.per_image()))
    }
}

/// Writes a block of output images `[n, C_out, H, W]` tile by tile: `tile(t, rows)` fills tile
/// `t`'s `S × S` pixels, channel-minor (`rows[i]` is its run of output row `S·ty + i`), and
/// each tile row's `S` output rows are then scattered into the images.
fn write_output_tiles<const S: usize>(
    g: &Conv2dGeometry,
    tiling: &Tiling,
    images: &mut [f32],
    mut tile: impl FnMut(usize, [&mut [f32]; S]),
) {
    let row_len = g.out_size[1] * g.out_channels;
    let tile_len = S * g.out_channels;
    debug_assert_eq!(tiling.rows * S, g.out_size[0], "tiles of side {S}");
    let mut rows = vec![0.0f32; S * row_len];
    for (n, image) in images.chunks_exact_mut(g.out_image_len()).enumerate() {
        for ty in 0..tiling.rows {
            for tx in 0..tiling.cols {
                let mut runs = rows.chunks_exact_mut(row_len);
                let tile_rows = std::array::from_fn(|_| {
                    &mut runs.next().expect("S rows")[tx * tile_len..(tx + 1) * tile_len]
                });
                tile(n * tiling.per_image() + ty * tiling.cols + tx, tile_rows);
            }
            for (i, row) in rows.chunks_exact(row_len).enumerate() {
                scatter_row(row, g.out_size, S * ty + i, image);
            }
        }
    }
}

/// Reads a block of output-gradient images tile by tile, the transpose of
/// [`write_output_tiles`]: each tile row's `S` rows are gathered channel-minor, then
/// `tile(t, rows)` reads tile `t`'s pixels.
fn read_output_tiles<const S: usize>(
    g: &Conv2dGeometry,
    tiling: &Tiling,
    images: &[f32],
    mut tile: impl FnMut(usize, [&[f32]; S]),
) {
    let row_len = g.out_size[1] * g.out_channels;
    let tile_len = S * g.out_channels;
    debug_assert_eq!(tiling.rows * S, g.out_size[0], "tiles of side {S}");
    let mut rows = vec![0.0f32; S * row_len];
    for (n, image) in images.chunks_exact(g.out_image_len()).enumerate() {
        for ty in 0..tiling.rows {
            for (i, row) in rows.chunks_exact_mut(row_len).enumerate() {
                gather_row(image, g.out_size, S * ty + i, row);
            }
            for tx in 0..tiling.cols {
                let tile_rows = std::array::from_fn(|i| {
                    &rows[i * row_len + tx * tile_len..i * row_len + (tx + 1) * tile_len]
                });
                tile(n * tiling.per_image() + ty * tiling.cols + tx, tile_rows);
            }
        }
    }
}

/// `dst_ξ (+)= op(a_ξ) · op(b_ξ)` for every position; each operand is stacked row-major
/// matrices, `transpose` says which to use transposed.
#[allow(clippy::too_many_arguments)]
fn position_gemms(
    dst: &mut [f32],
    dst_shape: [usize; 2],
    accum: Accum,
    a: &[f32],
    a_shape: [usize; 2],
    b: &[f32],
    b_shape: [usize; 2],
    transpose: [bool; 2],
    par: Par,
) {
    let lens = [dst_shape, a_shape, b_shape].map(|[r, c]| r * c);
    for ((dst, a), b) in dst
        .chunks_exact_mut(lens[0])
        .zip(a.chunks_exact(lens[1]))
        .zip(b.chunks_exact(lens[2]))
    {
        let a = MatRef::from_row_major_slice(a, a_shape[0], a_shape[1]);
        let b = MatRef::from_row_major_slice(b, b_shape[0], b_shape[1]);
        let a = if transpose[0] { a.transpose() } else { a };
        let b = if transpose[1] { b.transpose() } else { b };
        let dst = MatMut::from_row_major_slice_mut(dst, dst_shape[0], dst_shape[1]);
        gemm(dst, accum, a, b, par);
    }
}

/// One block's forward: `V` of `in_block` (left in `v` for the caller), the per-position
/// GEMMs `M_ξ = V_ξ · U_ξᵀ` into `m`, and `Y = Aᵀ M A` into `out_block`.
#[allow(clippy::too_many_arguments)]
fn forward_block<T: Transforms>(
    g: &Conv2dGeometry,
    tiling: &Tiling,
    u: &[f32],
    in_block: &[f32],
    out_block: &mut [f32],
    v: &mut [f32],
    m: &mut [f32],
    par: Par,
) {
    let columns = in_block.len() / g.in_image_len() * tiling.per_image();
    let (depth, c_out) = (T::depth(g), g.out_channels);
    T::input(g, tiling, in_block, v);
    position_gemms(
        m,
        [columns, c_out],
        Accum::Replace,
        v,
        [columns, depth],
        u,
        [c_out, depth],
        [false, true],
        par,
    );
    T::output(g, tiling, m, out_block);
}

/// Forward cross-correlation `y = conv2d(x, W)` (no bias) of a geometry of `kind`.
pub(super) fn forward(kind: Kind, g: &Conv2dGeometry, input: &[f32], weight: &[f32]) -> Vec<f32> {
    match kind {
        Kind::ThreeByThree => forward_with::<ThreeByThree>(g, input, weight),
        Kind::ThreeByThreeLargeTiles => forward_with::<large_tiles::LargeTiles>(g, input, weight),
        Kind::FourByFourStrideTwo => forward_with::<strided::FourByFourStrideTwo>(g, input, weight),
    }
}

fn forward_with<T: Transforms>(g: &Conv2dGeometry, input: &[f32], weight: &[f32]) -> Vec<f32> {
    let tiling = Tiling::new(g, T::TILE);
    let u = T::filter(g, weight);
    let (c_in, c_out) = (T::depth(g), g.out_channels);
    let block = tiling.block_images(g.batch);
    let par = inner_parallelism(g.batch, block);
    let mut output = zeros(g.batch * g.out_image_len());
    output
        .par_chunks_mut(block * g.out_image_len())
        .zip(input.par_chunks(block * g.in_image_len()))
        .for_each(|(out_block, in_block)| {
            let columns = in_block.len() / g.in_image_len() * tiling.per_image();
            with_scratch(
                [
                    T::POSITIONS * c_in * columns,
                    T::POSITIONS * c_out * columns,
                ],
                |v, m| forward_block::<T>(g, &tiling, &u, in_block, out_block, v, m, par),
            );
        });
    output
}

/// The forward `y` and the weight gradient `∂L/∂W` of a geometry of `kind` from one `V` per
/// block (a transposed convolution's input gradient and weight gradient).
pub(super) fn forward_and_weight_grad(
    kind: Kind,
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    output_grad: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    match kind {
        Kind::ThreeByThree => {
            forward_and_weight_grad_with::<ThreeByThree>(g, input, weight, output_grad)
        }
        Kind::ThreeByThreeLargeTiles => {
            forward_and_weight_grad_with::<large_tiles::LargeTiles>(g, input, weight, output_grad)
        }
        Kind::FourByFourStrideTwo => forward_and_weight_grad_with::<strided::FourByFourStrideTwo>(
            g,
            input,
            weight,
            output_grad,
        ),
    }
}

fn forward_and_weight_grad_with<T: Transforms>(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    output_grad: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let tiling = Tiling::new(g, T::TILE);
    let u = T::filter(g, weight);
    let (depth, c_out) = (T::depth(g), g.out_channels);
    let block = tiling.block_images(g.batch);
    let par = inner_parallelism(g.batch, block);
    let u_len = T::POSITIONS * c_out * depth;
    let mut output = zeros(g.batch * g.out_image_len());
    let block_both =
        |mut u_grad: Vec<f32>,
         ((out_block, in_block), grad_block): ((&mut [f32], &[f32]), &[f32])| {
            let columns = in_block.len() / g.in_image_len() * tiling.per_image();
            with_scratch(
                [
                    T::POSITIONS * depth * columns,
                    T::POSITIONS * c_out * columns,
                ],
                |v, m| {
                    forward_block::<T>(g, &tiling, &u, in_block, out_block, v, m, par);
                    // M's buffer now takes ∂L/∂M for the weight gradient.
                    T::output_adjoint(g, &tiling, grad_block, m);
                    position_gemms(
                        &mut u_grad,
                        [c_out, depth],
                        Accum::Add,
                        m,
                        [columns, c_out],
                        v,
                        [columns, depth],
                        [true, false],
                        par,
                    );
                },
            );
            u_grad
        };
    let parts = output
        .par_chunks_mut(block * g.out_image_len())
        .zip(input.par_chunks(block * g.in_image_len()))
        .zip(output_grad.par_chunks(block * g.out_image_len()))
        .fold(|| vec![0.0f32; u_len], block_both);
    let u_grad = sum_parts(parts, u_len);
    (output, T::filter_adjoint(g, &u_grad))
}

/// Input gradient `∂L/∂x` for the output gradient `∂L/∂y` of a geometry of `kind`.
pub(super) fn input_grad(
    kind: Kind,
    g: &Conv2dGeometry,
    output_grad: &[f32],
    weight: &[f32],
) -> Vec<f32> {
    let (input_grad, _) = backward(kind, g, None, Some(weight), output_grad);
    input_grad.unwrap_or_default()
}

/// Weight gradient `∂L/∂W` (`[C_out, C_in, k_h, k_w]` flat) of a geometry of `kind`.
pub(super) fn weight_grad(
    kind: Kind,
    g: &Conv2dGeometry,
    input: &[f32],
    output_grad: &[f32],
) -> Vec<f32> {
    let (_, weight_grad) = backward(kind, g, Some(input), None, output_grad);
    weight_grad.unwrap_or_default()
}

/// Both gradients of a geometry of `kind` from one `∂L/∂M` per block: `(∂L/∂x, ∂L/∂W)`.
pub(super) fn input_and_weight_grad(
    kind: Kind,
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    output_grad: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let (input_grad, weight_grad) = backward(kind, g, Some(input), Some(weight), output_grad);
    (
        input_grad.unwrap_or_default(),
        weight_grad.unwrap_or_default(),
    )
}

/// The gradients that the given operands allow: `∂L/∂x` from the `weight`, `∂L/∂W` from the
/// `input`. Each block transforms the output gradient once (`∂L/∂M`); the weight gradient's
/// GEMMs read `V` and `∂L/∂M`, after which `V`'s buffer takes `∂L/∂V` for the input gradient.
fn backward(
    kind: Kind,
    g: &Conv2dGeometry,
    input: Option<&[f32]>,
    weight: Option<&[f32]>,
    output_grad: &[f32],
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    match kind {
        Kind::ThreeByThree => backward_with::<ThreeByThree>(g, input, weight, output_grad),
        Kind::ThreeByThreeLargeTiles => {
            backward_with::<large_tiles::LargeTiles>(g, input, weight, output_grad)
        }
        Kind::FourByFourStrideTwo => {
            backward_with::<strided::FourByFourStrideTwo>(g, input, weight, output_grad)
        }
    }
}

fn backward_with<T: Transforms>(
    g: &Conv2dGeometry,
    input: Option<&[f32]>,
    weight: Option<&[f32]>,
    output_grad: &[f32],
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let tiling = Tiling::new(g, T::TILE);
    let u = weight.map(|weight| T::filter(g, weight));
    let (c_in, c_out) = (T::depth(g), g.out_channels);
    let block = tiling.block_images(g.batch);
    let par = inner_parallelism(g.batch, block);
    let u_len = if input.is_some() {
        T::POSITIONS * c_out * c_in
    } else {
        0
    };
    let mut input_grad = u.as_ref().map(|_| zeros(g.batch * g.in_image_len()));
    // One (optional) input-gradient block per output-gradient block.
    let dx_blocks: Vec<Option<&mut [f32]>> = match input_grad.as_mut() {
        Some(dx) => dx.chunks_mut(block * g.in_image_len()).map(Some).collect(),
        None => output_grad
            .chunks(block * g.out_image_len())
            .map(|_| None)
            .collect(),
    };
    let block_backward =
        |mut u_grad: Vec<f32>,
         ((index, dx_block), grad_block): ((usize, Option<&mut [f32]>), &[f32])| {
            let images = grad_block.len() / g.out_image_len();
            let columns = images * tiling.per_image();
            with_scratch(
                [
                    T::POSITIONS * c_in * columns,
                    T::POSITIONS * c_out * columns,
                ],
                |v, m| {
                    T::output_adjoint(g, &tiling, grad_block, m);
                    if let Some(input) = input {
                        let start = index * block * g.in_image_len();
                        let in_block = &input[start..start + images * g.in_image_len()];
                        T::input(g, &tiling, in_block, v);
                        position_gemms(
                            &mut u_grad,
                            [c_out, c_in],
                            Accum::Add,
                            m,
                            [columns, c_out],
                            v,
                            [columns, c_in],
                            [true, false],
                            par,
                        );
                    }
                    if let (Some(u), Some(dx_block)) = (&u, dx_block) {
                        position_gemms(
                            v,
                            [columns, c_in],
                            Accum::Replace,
                            m,
                            [columns, c_out],
                            u,
                            [c_out, c_in],
                            [false, false],
                            par,
                        );
                        T::input_adjoint(g, &tiling, v, dx_block);
                    }
                },
            );
            u_grad
        };
    let parts = dx_blocks
        .into_par_iter()
        .enumerate()
        .zip(output_grad.par_chunks(block * g.out_image_len()))
        .fold(|| vec![0.0f32; u_len], block_backward);
    let u_grad = sum_parts(parts, u_len);
    let weight_grad = input.map(|_| T::filter_adjoint(g, &u_grad));
    (input_grad, weight_grad)
}

#[cfg(test)]
mod tests;
