//! Winograd's minimal filtering (Lavin & Gray, *Fast Algorithms for Convolutional Neural
//! Networks*, CVPR 2016) for three kinds of layer ([`Kind`]): F(2×2, 3×3) below, F(4×4, 3×3)
//! for the same 3×3, stride-1, "same"-padded ResNet layers on images with sides ≥ 16
//! ([`large_tiles`]), and F(2×2, 2×2) on the polyphase components of the Burgess VAE's 4×4,
//! stride-2 layers ([`strided`]). The three share the drivers here ([`Transforms`]): blocks of
//! images, the per-position GEMMs, and both gradients as the adjoints of the transforms.
//!
//! Each 2×2 output tile `Y` is computed from the 4×4 input tile `d` it reads (rows and columns
//! `2t − 1 … 2t + 2`, zero outside the image) and the 3×3 filter `g` as
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` with
//!
//! ```text
//!      ⎡1  0 −1  0⎤        ⎡ 1    0    0 ⎤        ⎡1  1  1  0⎤
//! Bᵀ = ⎢0  1  1  0⎥    G = ⎢1/2  1/2  1/2⎥   Aᵀ = ⎣0  1 −1 −1⎦
//!      ⎢0 −1  1  0⎥        ⎢1/2 −1/2  1/2⎥
//!      ⎣0  1  0 −1⎦        ⎣ 0    0    1 ⎦
//! ```
//!
//! Summed over input channels, the element-wise product becomes 16 GEMMs, one per tile
//! position `ξ`: `M_ξ = U_ξ · V_ξ` with `U_ξ = (G g Gᵀ)_ξ` (`C_out × C_in`) and
//! `V_ξ = (Bᵀ d B)_ξ` (`C_in × tiles`). They multiply `16 / (4·9) = 1/2.25` of the im2col
//! GEMM's products. The gradients are the adjoints of the same linear maps:
//! `∂L/∂M = A (∂L/∂Y) Aᵀ`, then `∂L/∂V_ξ = U_ξᵀ · ∂L/∂M_ξ` scattered back through
//! `∂L/∂d = B (∂L/∂V) Bᵀ` onto the overlapping input tiles, and `∂L/∂U_ξ = Σ ∂L/∂M_ξ · V_ξᵀ`
//! gathered into `∂L/∂g = Gᵀ (∂L/∂U) G`.
//!
//! All transforms are vectorised over channels: `V` and `M` are stored per position as
//! `tiles × C` (each `V_ξ`, `M_ξ` transposed, which faer multiplies as it is), and each image
//! row is gathered channel-minor before its tiles are transformed, so every step is a
//! `C`-long lane-wise operation whatever the image width. Vectorising over a row of tiles
//! instead (`W / 2` lanes) made ResNet's 8×8 and 4×4 stages slower than im2col.

mod large_tiles;
mod strided;

use faer::{Accum, MatMut, MatRef, Par};
#[cfg(target_arch = "x86_64")]
use pulp::x86::V3;
use rayon::prelude::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::__m256;
use wide::f32x4;

use super::{
    Conv2dGeometry, equal_blocks, gemm, inner_parallelism, sum_parts, with_scratch, zeros,
};

/// Tile positions `ξ` of F(2×2, 3×3)'s 4×4 transformed tiles.
const POSITIONS: usize = 16;

/// Fewest input and output channels that take a Winograd path: with fewer the GEMMs are too
/// thin to pay for the transforms (the 3-channel ResNet stem stays on im2col).
const MIN_CHANNELS: usize = 16;

/// Smallest image side that takes F(4×4, 3×3) instead of F(2×2, 3×3). Per ResNet-18 stage
/// at batch 64 (forward / both gradients): 32×32 12.3 / 23.2 → 9.7 / 17.6 ms and 16×16
/// 9.5 / 18.3 → 7.4 / 13.2 ms, but 8×8 even (9.0 / 16.9 against 9.5 / 16.5 ms) and 4×4
/// 14.3 / 25.0 → 24.4 / 44.6 ms: one tile per image leaves 32-column GEMMs against a 36 MiB
/// transformed filter.
const LARGE_TILES_MIN_SIDE: usize = 16;

/// Least GEMM width (tiles per block); as [`super::WIDE_WEIGHT_MIN_COLUMNS`].
const MIN_TILES: usize = 512;

/// Filters per rayon task in the filter transforms (a 512 × 512 layer has 262 144).
const FILTERS_PER_TASK: usize = 4096;

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
        if three_by_three_applies(g) {
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

/// Whether `g` is a 3×3 cross-correlation with stride 1, padding 1 and dilation 1 on an
/// even-sized image (so the 2×2 tiles cover it), with at least [`MIN_CHANNELS`] channels in
/// and out.
fn three_by_three_applies(g: &Conv2dGeometry) -> bool {
    g.kernel_size == [3, 3]
        && g.stride == [1, 1]
        && g.padding == [1, 1]
        && g.dilation == [1, 1]
        && g.groups == 1
        && g.out_size == g.in_size
        && g.in_size.iter().all(|s| s % 2 == 0 && *s > 0)
        && g.in_channels >= MIN_CHANNELS
        && g.out_channels >= MIN_CHANNELS
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

/// F(2×2, 3×3) (the module docs).
struct ThreeByThree;

impl Transforms for ThreeByThree {
    const POSITIONS: usize = POSITIONS;
    const TILE: usize = 2;

    fn depth(g: &Conv2dGeometry) -> usize {
        g.in_channels
    }

    fn filter(g: &Conv2dGeometry, weight: &[f32]) -> Vec<f32> {
        transform_filter(g, weight)
    }

    fn filter_adjoint(g: &Conv2dGeometry, u: &[f32]) -> Vec<f32> {
        transform_filter_adjoint(g, u)
    }

    fn input(g: &Conv2dGeometry, tiling: &Tiling, images: &[f32], v: &mut [f32]) {
        transform_input(g, tiling, images, v);
    }

    fn input_adjoint(g: &Conv2dGeometry, tiling: &Tiling, v: &[f32], images: &mut [f32]) {
        transform_input_adjoint(g, tiling, v, images);
    }

    fn output(g: &Conv2dGeometry, tiling: &Tiling, m: &[f32], images: &mut [f32]) {
        transform_output(g, tiling, m, images);
    }

    fn output_adjoint(g: &Conv2dGeometry, tiling: &Tiling, images: &[f32], m: &mut [f32]) {
        transform_output_adjoint(g, tiling, images, m);
    }
}

/// `G v` for one column (or row) of a 3×3 filter.
fn filter_transform(v: [f32; 3]) -> [f32; 4] {
    [
        v[0],
        0.5 * (v[0] + v[1] + v[2]),
        0.5 * (v[0] - v[1] + v[2]),
        v[2],
    ]
}

/// `Gᵀ v`, the adjoint of [`filter_transform`].
fn filter_adjoint(v: [f32; 4]) -> [f32; 3] {
    [
        v[0] + 0.5 * (v[1] + v[2]),
        0.5 * (v[1] - v[2]),
        0.5 * (v[1] + v[2]) + v[3],
    ]
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

/// `out[i] (+)= Σ_l t[i][l] · x[l]` lane-wise over channels for a constant matrix `t` (the
/// transforms of [`large_tiles`]), four lanes at a time in SSE registers; after inlining, the
/// zero and ±1 entries of `t` cost nothing.
#[inline(always)]
fn lane_matrix<const M: usize, const N: usize, const ADD: bool>(
    t: &[[f32; N]; M],
    x: [&[f32]; N],
    out: [&mut [f32]; M],
) {
    let len = out.first().map_or(0, |o| o.len());
    let whole = len / 4 * 4;
    let mut out = out;
    for at in (0..whole).step_by(4) {
        let xs: [f32x4; N] = std::array::from_fn(|l| {
            let lanes: [f32; 4] = x[l][at..at + 4].try_into().expect("four lanes");
            f32x4::from(lanes)
        });
        for (row, o) in t.iter().zip(out.iter_mut()) {
            let mut sum = f32x4::ZERO;
            for (&coefficient, &value) in row.iter().zip(&xs) {
                if coefficient != 0.0 {
                    sum += value * f32x4::splat(coefficient);
                }
            }
            let o = &mut o[at..at + 4];
            if ADD {
                sum += f32x4::from(<[f32; 4]>::try_from(&*o).expect("four lanes"));
            }
            o.copy_from_slice(&sum.to_array());
        }
    }
    for at in whole..len {
        for (row, o) in t.iter().zip(out.iter_mut()) {
            let sum: f32 = row.iter().zip(&x).map(|(&c, x)| c * x[at]).sum();
            if ADD {
                o[at] += sum;
            } else {
                o[at] = sum;
            }
        }
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

/// `out[w·C + c] = image[c, h, w]`: row `h` of every channel plane, channel-minor.
fn gather_row(image: &[f32], [height, width]: [usize; 2], h: usize, out: &mut [f32]) {
    let channels = out.len() / width;
    transpose(
        &image[h * width..],
        height * width,
        out,
        channels,
        [channels, width],
    );
}

/// The inverse of [`gather_row`]: `image[c, h, w] = row[w·C + c]`.
fn scatter_row(row: &[f32], [height, width]: [usize; 2], h: usize, image: &mut [f32]) {
    let channels = row.len() / width;
    transpose(
        row,
        channels,
        &mut image[h * width..],
        height * width,
        [width, channels],
    );
}

/// `dst[j·dst_stride + i] = src[i·src_stride + j]` for `i < rows`, `j < cols`: blocks moved
/// as contiguous loads and stores and transposed in registers, where an element-wise loop
/// makes every store (or load) strided and scalar. 8×8 blocks in AVX registers where the CPU
/// has AVX2 (pulp's safe intrinsics, under its run-time dispatch), 4×4 blocks in SSE
/// registers for the rest.
fn transpose(
    src: &[f32],
    src_stride: usize,
    dst: &mut [f32],
    dst_stride: usize,
    [rows, cols]: [usize; 2],
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = V3::try_new() {
        transpose_avx(simd, src, src_stride, dst, dst_stride, [rows, cols]);
        return;
    }
    transpose_sse(src, src_stride, dst, dst_stride, [0..rows, 0..cols]);
}

/// [`transpose`] in 8×8 AVX blocks, the edges in [`transpose_sse`].
#[cfg(target_arch = "x86_64")]
fn transpose_avx(
    simd: V3,
    src: &[f32],
    src_stride: usize,
    dst: &mut [f32],
    dst_stride: usize,
    [rows, cols]: [usize; 2],
) {
    let (rows8, cols8) = (rows / 8 * 8, cols / 8 * 8);
    simd.vectorize(|| {
        for i0 in (0..rows8).step_by(8) {
            for j0 in (0..cols8).step_by(8) {
                let block: [__m256; 8] = std::array::from_fn(|i| {
                    let at = (i0 + i) * src_stride + j0;
                    let lanes: [f32; 8] = src[at..at + 8].try_into().expect("eight lanes");
                    pulp::cast(lanes)
                });
                for (j, column) in transpose_8x8(simd, block).into_iter().enumerate() {
                    let at = (j0 + j) * dst_stride + i0;
                    let lanes: [f32; 8] = pulp::cast(column);
                    dst[at..at + 8].copy_from_slice(&lanes);
                }
            }
        }
    });
    transpose_sse(src, src_stride, dst, dst_stride, [0..rows8, cols8..cols]);
    transpose_sse(src, src_stride, dst, dst_stride, [rows8..rows, 0..cols]);
}

/// An 8×8 block transposed in AVX registers: pairs interleaved, then 2-lane pairs, then the
/// 128-bit halves swapped across rows four apart.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn transpose_8x8(simd: V3, r: [__m256; 8]) -> [__m256; 8] {
    let avx = simd.avx;
    let t: [__m256; 8] = std::array::from_fn(|k| {
        let (a, b) = (r[2 * (k / 2)], r[2 * (k / 2) + 1]);
        if k % 2 == 0 {
            avx._mm256_unpacklo_ps(a, b)
        } else {
            avx._mm256_unpackhi_ps(a, b)
        }
    });
    // t[0..4] hold rows 0–3, t[4..8] rows 4–7; u[q] and u[4 + q] gather lanes q of the halves.
    let u: [__m256; 8] = std::array::from_fn(|k| {
        let base = 4 * (k / 4);
        let (lo, hi) = (t[base + (k % 4) / 2], t[base + 2 + (k % 4) / 2]);
        if k % 2 == 0 {
            avx._mm256_shuffle_ps::<0x44>(lo, hi)
        } else {
            avx._mm256_shuffle_ps::<0xEE>(lo, hi)
        }
    });
    std::array::from_fn(|j| {
        let (a, b) = (u[j % 4], u[4 + j % 4]);
        if j < 4 {
            avx._mm256_permute2f128_ps::<0x20>(a, b)
        } else {
            avx._mm256_permute2f128_ps::<0x31>(a, b)
        }
    })
}

/// [`transpose`] of the sub-block `rows × cols` in 4×4 SSE blocks (`wide`), the ragged edge
/// element by element.
fn transpose_sse(
    src: &[f32],
    src_stride: usize,
    dst: &mut [f32],
    dst_stride: usize,
    [rows, cols]: [std::ops::Range<usize>; 2],
) {
    let load = |at: usize| {
        let lanes: [f32; 4] = src[at..at + 4].try_into().expect("four lanes");
        f32x4::from(lanes)
    };
    for i0 in rows.clone().step_by(4) {
        for j0 in cols.clone().step_by(4) {
            if i0 + 4 <= rows.end && j0 + 4 <= cols.end {
                let block: [f32x4; 4] = std::array::from_fn(|i| load((i0 + i) * src_stride + j0));
                for (j, column) in f32x4::transpose(block).iter().enumerate() {
                    let at = (j0 + j) * dst_stride + i0;
                    dst[at..at + 4].copy_from_slice(&column.to_array());
                }
            } else {
                for i in i0..rows.end.min(i0 + 4) {
                    for j in j0..cols.end.min(j0 + 4) {
                        dst[j * dst_stride + i] = src[i * src_stride + j];
                    }
                }
            }
        }
    }
}

/// `out[c] = f(a[c], b[c])`: one step of a transform, vectorised over channels.
fn lanes2(out: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) {
    out.iter_mut()
        .zip(a.iter().zip(b))
        .for_each(|(o, (&a, &b))| *o = f(a, b));
}

/// `out[c] = f(a[c], b[c], d[c])`.
fn lanes3(out: &mut [f32], a: &[f32], b: &[f32], d: &[f32], f: impl Fn(f32, f32, f32) -> f32) {
    out.iter_mut()
        .zip(a.iter().zip(b).zip(d))
        .for_each(|(o, ((&a, &b), &d))| *o = f(a, b, d));
}

/// `out[c] += f(a[c], b[c], d[c])`.
fn add_lanes3(out: &mut [f32], a: &[f32], b: &[f32], d: &[f32], f: impl Fn(f32, f32, f32) -> f32) {
    out.iter_mut()
        .zip(a.iter().zip(b).zip(d))
        .for_each(|(o, ((&a, &b), &d))| *o += f(a, b, d));
}

/// The `k`-th of the consecutive `len`-long runs of `buffer`.
fn run(buffer: &[f32], k: usize, len: usize) -> &[f32] {
    &buffer[k * len..(k + 1) * len]
}

fn run_mut(buffer: &mut [f32], k: usize, len: usize) -> &mut [f32] {
    &mut buffer[k * len..(k + 1) * len]
}

/// `V[ξ, t, c] = (Bᵀ d B)_ξ` for every tile `t` and channel `c` of a block of `images`
/// (`[n, C, H, W]`); `v` is `16 × (n·tiles) × C`, row-major, i.e. each `V_ξ` stored transposed.
///
/// Vectorised over channels: each padded image row is first gathered channel-minor
/// (`(W + 2) × C`, zero at both ends), so every step below is a contiguous `C`-long lane-wise
/// operation. `Bᵀ` along the row runs once per padded row and tile column (`e[p][t][j]`,
/// shared by the two tile rows that read row `p`; four rows kept in a ring), `Bᵀ` down the
/// columns once per tile, straight into `V`.
fn transform_input(g: &Conv2dGeometry, tiling: &Tiling, images: &[f32], v: &mut [f32]) {
    let [height, width] = g.in_size;
    let c = g.in_channels;
    let cols = tiling.cols;
    let columns = images.len() / g.in_image_len() * tiling.per_image();
    let mut row = vec![0.0f32; (width + 2) * c];
    let mut ring = vec![0.0f32; 4 * cols * 4 * c];
    for (n, image) in images.chunks_exact(g.in_image_len()).enumerate() {
        // Padded row p is image row p − 1 (zero for p = 0 and p = H + 1).
        for p in 0..height + 2 {
            match p.checked_sub(1).filter(|&h| h < height) {
                Some(h) => gather_row(image, g.in_size, h, &mut row[c..(width + 1) * c]),
                None => row.fill(0.0),
            }
            let e = run_mut(&mut ring, p % 4, cols * 4 * c);
            for (tx, e) in e.chunks_exact_mut(4 * c).enumerate() {
                let d = |k: usize| run(&row, 2 * tx + k, c);
                lanes2(run_mut(e, 0, c), d(0), d(2), |a, b| a - b);
                lanes2(run_mut(e, 1, c), d(1), d(2), |a, b| a + b);
                lanes2(run_mut(e, 2, c), d(2), d(1), |a, b| a - b);
                lanes2(run_mut(e, 3, c), d(1), d(3), |a, b| a - b);
            }
            // Tile row ty reads padded rows 2ty … 2ty + 3: complete once p = 2ty + 3.
            if p < 3 || p % 2 == 0 {
                continue;
            }
            let ty = (p - 3) / 2;
            for tx in 0..cols {
                let t = n * tiling.per_image() + ty * cols + tx;
                for j in 0..4 {
                    let r = |k: usize| run(&ring, (((2 * ty + k) % 4) * cols + tx) * 4 + j, c);
                    let at = |i: usize| (4 * i + j) * columns + t;
                    lanes2(run_mut(v, at(0), c), r(0), r(2), |a, b| a - b);
                    lanes2(run_mut(v, at(1), c), r(1), r(2), |a, b| a + b);
                    lanes2(run_mut(v, at(2), c), r(2), r(1), |a, b| a - b);
                    lanes2(run_mut(v, at(3), c), r(1), r(3), |a, b| a - b);
                }
            }
        }
    }
}

/// `U[ξ, o, c] = (G g Gᵀ)_ξ` of the weight `[C_out, C_in, 3, 3]`, over the rayon pool: each
/// task transforms [`FILTERS_PER_TASK`] consecutive filters and writes them into its own run
/// of each of the 16 planes, so every plane is written sequentially and nothing is read twice.
fn transform_filter(g: &Conv2dGeometry, weight: &[f32]) -> Vec<f32> {
    let pairs = g.out_channels * g.in_channels;
    let mut u = zeros(POSITIONS * pairs);
    let mut tasks: Vec<Vec<&mut [f32]>> = (0..pairs.div_ceil(FILTERS_PER_TASK))
        .map(|_| Vec::with_capacity(POSITIONS))
        .collect();
    for plane in u.chunks_exact_mut(pairs) {
        for (runs, run) in tasks.iter_mut().zip(plane.chunks_mut(FILTERS_PER_TASK)) {
            runs.push(run);
        }
    }
    tasks
        .into_par_iter()
        .zip(weight.par_chunks(9 * FILTERS_PER_TASK))
        .for_each(|(mut runs, filters)| {
            for (k, filter) in filters.chunks_exact(9).enumerate() {
                let f: [[f32; 3]; 3] =
                    std::array::from_fn(|i| std::array::from_fn(|j| filter[3 * i + j]));
                let t = both_ways(f, filter_transform);
                for (run, value) in runs.iter_mut().zip(t.iter().flatten()) {
                    run[k] = *value;
                }
            }
        });
    u
}

/// The adjoint of [`transform_filter`]: `∂L/∂g = Gᵀ (∂L/∂U) G` per `(o, c)`.
fn transform_filter_adjoint(g: &Conv2dGeometry, u: &[f32]) -> Vec<f32> {
    let pairs = g.out_channels * g.in_channels;
    let mut weight = zeros(pairs * 9);
    weight
        .par_chunks_exact_mut(9)
        .with_min_len(FILTERS_PER_TASK)
        .enumerate()
        .for_each(|(pair, filter)| {
            let t: [[f32; 4]; 4] =
                std::array::from_fn(|r| std::array::from_fn(|s| u[(4 * r + s) * pairs + pair]));
            let f = both_ways(t, filter_adjoint);
            for (value, out) in f.iter().flatten().zip(filter.iter_mut()) {
                *out = *value;
            }
        });
    weight
}

/// The adjoint of [`transform_input`]: `∂L/∂x` of a block of images (`[n, C, H, W]`,
/// overwritten) as the sum of `B (∂L/∂V) Bᵀ` over the overlapping tiles.
///
/// Per tile, `B` down the columns gives `w[k][j]` (scratch), then `B` along the rows adds it
/// into padded rows `2ty … 2ty + 3` (a ring of four channel-minor rows). Padded rows `2ty` and
/// `2ty + 1` receive nothing after tile row `ty`, so they are scattered to the image then.
fn transform_input_adjoint(g: &Conv2dGeometry, tiling: &Tiling, v: &[f32], images: &mut [f32]) {
    let [height, width] = g.in_size;
    let c = g.in_channels;
    let cols = tiling.cols;
    let columns = images.len() / g.in_image_len() * tiling.per_image();
    let row_len = (width + 2) * c;
    let mut ring = vec![0.0f32; 4 * row_len];
    let mut w = vec![0.0f32; POSITIONS * c];
    let flush = |ring: &mut [f32], p: usize, image: &mut [f32]| {
        let padded = run_mut(ring, p % 4, row_len);
        if let Some(h) = p.checked_sub(1).filter(|&h| h < height) {
            scatter_row(&padded[c..(width + 1) * c], g.in_size, h, image);
        }
        padded.fill(0.0);
    };
    for (n, image) in images.chunks_exact_mut(g.in_image_len()).enumerate() {
        ring.fill(0.0);
        for ty in 0..tiling.rows {
            for tx in 0..cols {
                let t = n * tiling.per_image() + ty * cols + tx;
                for j in 0..4 {
                    let dv = |i: usize| run(v, (4 * i + j) * columns + t, c);
                    let (v0, v1, v2, v3) = (dv(0), dv(1), dv(2), dv(3));
                    run_mut(&mut w, j, c).copy_from_slice(v0);
                    lanes3(run_mut(&mut w, 4 + j, c), v1, v2, v3, |a, b, d| a - b + d);
                    lanes3(run_mut(&mut w, 8 + j, c), v1, v2, v0, |a, b, d| a + b - d);
                    lanes2(run_mut(&mut w, 12 + j, c), v3, v3, |a, _| -a);
                }
                for k in 0..4 {
                    let padded = run_mut(&mut ring, (2 * ty + k) % 4, row_len);
                    let d = &mut padded[2 * tx * c..(2 * tx + 4) * c];
                    let wk = |j: usize| run(&w, 4 * k + j, c);
                    let (d0, rest) = d.split_at_mut(c);
                    let (d1, rest) = rest.split_at_mut(c);
                    let (d2, d3) = rest.split_at_mut(c);
                    d0.iter_mut().zip(wk(0)).for_each(|(d, &a)| *d += a);
                    add_lanes3(d1, wk(1), wk(2), wk(3), |a, b, e| a - b + e);
                    add_lanes3(d2, wk(1), wk(2), wk(0), |a, b, e| a + b - e);
                    d3.iter_mut().zip(wk(3)).for_each(|(d, &a)| *d -= a);
                }
            }
            flush(&mut ring, 2 * ty, image);
            flush(&mut ring, 2 * ty + 1, image);
        }
        flush(&mut ring, height, image);
    }
}

/// `Y = Aᵀ M A` of every tile into a block of output images `[n, C_out, H, W]`: per tile row,
/// its two output rows are assembled channel-minor and then scattered.
fn transform_output(g: &Conv2dGeometry, tiling: &Tiling, m: &[f32], images: &mut [f32]) {
    let o = g.out_channels;
    let columns = images.len() / g.out_image_len() * tiling.per_image();
    let mut s = vec![0.0f32; 8 * o];
    write_output_tiles::<2>(g, tiling, images, |t, rows| {
        // Aᵀ down each column: s[a][j] in run 4a + j.
        for j in 0..4 {
            let mv = |i: usize| run(m, (4 * i + j) * columns + t, o);
            let (m0, m1, m2, m3) = (mv(0), mv(1), mv(2), mv(3));
            lanes3(run_mut(&mut s, j, o), m0, m1, m2, |a, b, c| a + b + c);
            lanes3(run_mut(&mut s, 4 + j, o), m1, m2, m3, |a, b, c| a - b - c);
        }
        // Aᵀ along each row: the tile's two pixels of output row a.
        for (a, row) in rows.into_iter().enumerate() {
            let sa = |j: usize| run(&s, 4 * a + j, o);
            let (y0, y1) = row.split_at_mut(o);
            lanes3(y0, sa(0), sa(1), sa(2), |a, b, c| a + b + c);
            lanes3(y1, sa(1), sa(2), sa(3), |a, b, c| a - b - c);
        }
    });
}

/// The adjoint of [`transform_output`]: `∂L/∂M = A (∂L/∂Y) Aᵀ` of every tile, from the tile
/// row's two output-gradient rows gathered channel-minor.
fn transform_output_adjoint(g: &Conv2dGeometry, tiling: &Tiling, images: &[f32], m: &mut [f32]) {
    let o = g.out_channels;
    let columns = images.len() / g.out_image_len() * tiling.per_image();
    let mut z = vec![0.0f32; 8 * o];
    read_output_tiles::<2>(g, tiling, images, |t, rows| {
        // A along each row: z[a][j] in run 4a + j.
        for (a, row) in rows.into_iter().enumerate() {
            let (y0, y1) = (run(row, 0, o), run(row, 1, o));
            run_mut(&mut z, 4 * a, o).copy_from_slice(y0);
            lanes2(run_mut(&mut z, 4 * a + 1, o), y0, y1, |a, b| a + b);
            lanes2(run_mut(&mut z, 4 * a + 2, o), y0, y1, |a, b| a - b);
            lanes2(run_mut(&mut z, 4 * a + 3, o), y1, y1, |a, _| -a);
        }
        // A down each column, straight into ∂L/∂M.
        for j in 0..4 {
            let (z0, z1) = (run(&z, j, o), run(&z, 4 + j, o));
            let at = |i: usize| (4 * i + j) * columns + t;
            run_mut(m, at(0), o).copy_from_slice(z0);
            lanes2(run_mut(m, at(1), o), z0, z1, |a, b| a + b);
            lanes2(run_mut(m, at(2), o), z0, z1, |a, b| a - b);
            lanes2(run_mut(m, at(3), o), z1, z1, |a, _| -a);
        }
    });
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
mod tests {
    use super::*;
    use burn::tensor::ops::ConvOptions;

    fn geometry(batch: usize, c_in: usize, c_out: usize, size: [usize; 2]) -> Conv2dGeometry {
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        Conv2dGeometry::conv2d(
            [batch, c_in, size[0], size[1]],
            [c_out, c_in, 3, 3],
            &options,
        )
        .expect("valid geometry")
    }

    /// A 4×4, stride-2, padding-1 layer.
    fn strided(batch: usize, c_in: usize, c_out: usize, size: [usize; 2]) -> Conv2dGeometry {
        let options = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
        Conv2dGeometry::conv2d(
            [batch, c_in, size[0], size[1]],
            [c_out, c_in, 4, 4],
            &options,
        )
        .expect("valid geometry")
    }

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7919 + seed * 104_729) % 1013) as f32 / 1013.0 - 0.5) * 2.0)
            .collect()
    }

    /// `x[n, c, h·s + i − p, w·s + j − p]`, zero outside: the definition's read.
    fn read(
        g: &Conv2dGeometry,
        n: usize,
        c: usize,
        [h, w]: [usize; 2],
        [i, j]: [usize; 2],
    ) -> Option<usize> {
        let [height, width] = g.in_size;
        let h = (h * g.stride[0] + i).wrapping_sub(g.padding[0]);
        let w = (w * g.stride[1] + j).wrapping_sub(g.padding[1]);
        (h < height && w < width).then(|| ((n * g.in_channels + c) * height + h) * width + w)
    }

    /// The three maps by their definitions, in f64: `y`, `∂L/∂x`, `∂L/∂W`.
    fn direct(g: &Conv2dGeometry, x: &[f32], w: &[f32], r: &[f32]) -> [Vec<f64>; 3] {
        let [out_h, out_w] = g.out_size;
        let [k_h, k_w] = g.kernel_size;
        let (c_in, c_out) = (g.in_channels, g.out_channels);
        let mut y = vec![0.0; g.batch * g.out_image_len()];
        let mut dx = vec![0.0; x.len()];
        let mut dw = vec![0.0; w.len()];
        for n in 0..g.batch {
            for o in 0..c_out {
                for h in 0..out_h {
                    for v in 0..out_w {
                        let out = ((n * c_out + o) * out_h + h) * out_w + v;
                        for c in 0..c_in {
                            for i in 0..k_h {
                                for j in 0..k_w {
                                    let Some(at) = read(g, n, c, [h, v], [i, j]) else {
                                        continue;
                                    };
                                    let k = ((o * c_in + c) * k_h + i) * k_w + j;
                                    y[out] += f64::from(w[k]) * f64::from(x[at]);
                                    dx[at] += f64::from(w[k]) * f64::from(r[out]);
                                    dw[k] += f64::from(r[out]) * f64::from(x[at]);
                                }
                            }
                        }
                    }
                }
            }
        }
        [y, dx, dw]
    }

    /// `actual` within `tolerance` of `expected`, relative to the largest `|expected|`.
    fn assert_close(what: &str, actual: &[f32], expected: &[f64], tolerance: f64) {
        assert_eq!(actual.len(), expected.len(), "{what} length");
        let scale = expected.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
        let worst = actual
            .iter()
            .zip(expected)
            .map(|(a, e)| (f64::from(*a) - e).abs() / scale)
            .fold(0.0f64, f64::max);
        assert!(
            worst <= tolerance,
            "{what}: relative error {worst:e} (scale {scale})"
        );
    }

    /// Every entry point of `kind` on `g` against the definition, to `tolerance` relative.
    fn check_against_definition(g: &Conv2dGeometry, kind: Kind, tolerance: f64) {
        let x = values(g.batch * g.in_image_len(), 1);
        let w = values(g.out_channels * g.patch_len(), 2);
        let r = values(g.batch * g.out_image_len(), 3);
        let [y, dx, dw] = direct(g, &x, &w, &r);
        assert_close("y", &forward(kind, g, &x, &w), &y, tolerance);
        assert_close("∂L/∂x", &input_grad(kind, g, &r, &w), &dx, tolerance);
        assert_close("∂L/∂W", &weight_grad(kind, g, &x, &r), &dw, tolerance);
        let (fused_dx, fused_dw) = input_and_weight_grad(kind, g, &x, &w, &r);
        assert_close("fused ∂L/∂x", &fused_dx, &dx, tolerance);
        assert_close("fused ∂L/∂W", &fused_dw, &dw, tolerance);
        let (fused_y, fused_dw) = forward_and_weight_grad(kind, g, &x, &w, &r);
        assert_close("fused y", &fused_y, &y, tolerance);
        assert_close("fused ∂L/∂W (with y)", &fused_dw, &dw, tolerance);
    }

    #[test]
    fn transforms_reproduce_the_definition_and_its_adjoints() {
        // Ragged blocks (3 images in blocks of 2), a single tile row, a single tile column,
        // an odd number of tile columns, ResNet's 4×4 stage, and channel counts that differ;
        // F(4×4, 3×3) on the sizes that are multiples of 4.
        for (batch, c_in, c_out, size) in [
            (3, 16, 24, [6, 16]),
            (2, 20, 16, [2, 16]),
            (2, 16, 20, [8, 2]),
            (1, 16, 16, [4, 18]),
            (3, 32, 16, [4, 4]),
            (2, 16, 24, [8, 12]),
            (3, 24, 16, [12, 4]),
        ] {
            let g = geometry(batch, c_in, c_out, size);
            check_against_definition(&g, Kind::ThreeByThree, 1e-5);
            if g.out_size.iter().all(|s| s % 4 == 0) {
                check_against_definition(&g, Kind::ThreeByThreeLargeTiles, 1e-4);
            }
        }
    }

    #[test]
    fn strided_transforms_reproduce_the_definition_and_its_adjoints() {
        // The smallest image (one tile), a single tile row, an odd number of tile columns,
        // ragged blocks, and channel counts that differ.
        for (batch, c_in, c_out, size) in [
            (2, 16, 16, [4, 4]),
            (3, 16, 24, [4, 12]),
            (2, 24, 16, [8, 20]),
            (1, 16, 32, [16, 8]),
        ] {
            let g = strided(batch, c_in, c_out, size);
            assert_eq!(Kind::of(&g), Some(Kind::FourByFourStrideTwo), "{g:?}");
            check_against_definition(&g, Kind::FourByFourStrideTwo, 1e-5);
        }
    }

    #[test]
    fn transpose_moves_every_element_for_ragged_and_whole_blocks() {
        // Whole 8×8 blocks, a 4-wide edge, a ragged edge, and strides wider than the block.
        for (rows, cols, src_stride, dst_stride) in [
            (16, 24, 24, 16),
            (13, 19, 21, 15),
            (4, 12, 12, 4),
            (8, 3, 5, 9),
        ] {
            let src = values(rows * src_stride, 5);
            let mut dst = vec![f32::NAN; cols * dst_stride];
            transpose(&src, src_stride, &mut dst, dst_stride, [rows, cols]);
            for i in 0..rows {
                for j in 0..cols {
                    assert_eq!(
                        dst[j * dst_stride + i],
                        src[i * src_stride + j],
                        "({i}, {j})"
                    );
                }
            }
        }
    }

    #[test]
    fn other_geometries_do_not_apply() {
        assert_eq!(
            Kind::of(&geometry(2, 16, 16, [8, 16])),
            Some(Kind::ThreeByThree)
        );
        assert_eq!(Kind::of(&geometry(2, 16, 16, [7, 16])), None);
        assert_eq!(Kind::of(&geometry(2, 3, 64, [16, 16])), None);
        assert_eq!(
            Kind::of(&strided(2, 16, 16, [8, 8])),
            Some(Kind::FourByFourStrideTwo)
        );
        // An RGB input layer, and sides that are even but not multiples of 4.
        assert_eq!(Kind::of(&strided(2, 3, 32, [64, 64])), None);
        assert_eq!(Kind::of(&strided(2, 16, 16, [6, 8])), None);
        let strided_3x3 = Conv2dGeometry::conv2d(
            [2, 16, 16, 16],
            [16, 16, 3, 3],
            &ConvOptions::new([2, 2], [1, 1], [1, 1], 1),
        )
        .expect("valid geometry");
        assert_eq!(Kind::of(&strided_3x3), None);
    }
}
