//! Winograd's minimal filtering F(2×2, 3×3) for the 3×3, stride-1, "same"-padded convolutions
//! of ResNets (Lavin & Gray, *Fast Algorithms for Convolutional Neural Networks*, CVPR 2016).
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

use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::{
    Conv2dGeometry, equal_blocks, gemm, inner_parallelism, sum_parts, with_scratch, zeros,
};

/// Tile positions `ξ` of the 4×4 transformed tiles.
const POSITIONS: usize = 16;

/// Fewest input and output channels that take this path: with fewer the 16 GEMMs are too
/// thin to pay for the transforms (the 3-channel ResNet stem stays on im2col).
const MIN_CHANNELS: usize = 16;

/// Narrowest image that takes this path: the transforms work on one row of `W / 2` tiles at
/// a time, which below 8 tiles costs more per tile than the GEMMs save.
const MIN_WIDTH: usize = 16;

/// Least GEMM width (tiles per block); as [`super::WIDE_WEIGHT_MIN_COLUMNS`].
const MIN_TILES: usize = 512;

/// Filters per rayon task in the filter transforms (a 512 × 512 layer has 262 144).
const FILTERS_PER_TASK: usize = 4096;

/// Whether `geometry` is one this module computes: a 3×3 cross-correlation with stride 1,
/// padding 1 and dilation 1 on an even-sized image (so the 2×2 tiles cover it), with at least
/// [`MIN_CHANNELS`] channels in and out.
pub(super) fn applies(g: &Conv2dGeometry) -> bool {
    g.kernel_size == [3, 3]
        && g.stride == [1, 1]
        && g.padding == [1, 1]
        && g.dilation == [1, 1]
        && g.groups == 1
        && g.out_size == g.in_size
        && g.in_size.iter().all(|s| s % 2 == 0 && *s > 0)
        && g.in_size[1] >= MIN_WIDTH
        && g.in_channels >= MIN_CHANNELS
        && g.out_channels >= MIN_CHANNELS
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

/// Tiles along each dimension and per image.
struct Tiling {
    rows: usize,
    cols: usize,
}

impl Tiling {
    fn new(g: &Conv2dGeometry) -> Self {
        Self {
            rows: g.in_size[0] / 2,
            cols: g.in_size[1] / 2,
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

/// Scratch for the input transform of one channel plane: the even and odd columns of every
/// padded row (`cols + 1` each) and 16 lane arrays of `cols` tiles.
struct PlaneScratch {
    cols: usize,
    even: Vec<f32>,
    odd: Vec<f32>,
    lanes: Vec<f32>,
}

impl PlaneScratch {
    /// For `padded_rows = H + 2` rows of `cols = W / 2` tiles.
    fn new(padded_rows: usize, cols: usize) -> Self {
        Self {
            cols,
            even: vec![0.0; padded_rows * (cols + 1)],
            odd: vec![0.0; padded_rows * (cols + 1)],
            lanes: vec![0.0; padded_rows * 4 * cols],
        }
    }

    /// The even and odd columns of padded row `p`.
    fn row(&self, p: usize) -> (&[f32], &[f32]) {
        let at = p * (self.cols + 1)..(p + 1) * (self.cols + 1);
        (&self.even[at.clone()], &self.odd[at])
    }

    fn row_mut(&mut self, p: usize) -> (&mut [f32], &mut [f32]) {
        let at = p * (self.cols + 1)..(p + 1) * (self.cols + 1);
        (&mut self.even[at.clone()], &mut self.odd[at])
    }
}

/// `out[t] = f(a[t], b[t])`: one lane-wise step of a transform, vectorised over tiles.
fn lanes2(out: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) {
    out.iter_mut()
        .zip(a.iter().zip(b))
        .for_each(|(o, (&a, &b))| *o = f(a, b));
}

/// `out[t] = f(a[t], b[t], c[t])`.
fn lanes3(out: &mut [f32], a: &[f32], b: &[f32], c: &[f32], f: impl Fn(f32, f32, f32) -> f32) {
    out.iter_mut()
        .zip(a.iter().zip(b).zip(c))
        .for_each(|(o, ((&a, &b), &c))| *o = f(a, b, c));
}

/// `V[ξ, c, t] = (Bᵀ d B)_ξ` for every channel `c` and tile `t` of a block of `images`
/// (`[n, C, H, W]`); `v` is `16 × C × (n·tiles)`, row-major.
///
/// Vectorised over a tile row: tile `t` reads padded columns `2t … 2t + 3`, i.e.
/// `even[t], odd[t], even[t + 1], odd[t + 1]` of the padded row split into even and odd
/// columns, so every step is a contiguous lane-wise operation. `Bᵀ` along the rows runs once
/// per padded row (`e[p][j]`, shared by the two tile rows that read it), `Bᵀ` down the columns
/// once per tile row, straight into `V`'s 16 contiguous runs.
fn transform_input(g: &Conv2dGeometry, tiling: &Tiling, images: &[f32], v: &mut [f32]) {
    let [height, width] = g.in_size;
    let columns = images.len() / g.in_image_len() * tiling.per_image();
    let plane_stride = g.in_channels * columns;
    let cols = tiling.cols;
    let padded_rows = height + 2;
    let mut scratch = PlaneScratch::new(padded_rows, cols);
    for (n, image) in images.chunks_exact(g.in_image_len()).enumerate() {
        for (c, plane) in image.chunks_exact(height * width).enumerate() {
            // Padded row p is input row p − 1 (zero for p = 0 and p = H + 1); padded column
            // q is input column q − 1.
            for p in 0..padded_rows {
                let (even, odd) = scratch.row_mut(p);
                match p.checked_sub(1).filter(|&h| h < height) {
                    Some(h) => {
                        let row = &plane[h * width..(h + 1) * width];
                        even[0] = 0.0;
                        even[1..]
                            .iter_mut()
                            .zip(row[1..].chunks(2))
                            .for_each(|(e, pair)| *e = pair[0]);
                        odd[..cols]
                            .iter_mut()
                            .zip(row.chunks_exact(2))
                            .for_each(|(o, pair)| *o = pair[0]);
                        odd[cols] = 0.0;
                    }
                    None => {
                        even.fill(0.0);
                        odd.fill(0.0);
                    }
                }
            }
            // Bᵀ along each padded row: e[p][j] in lanes (4p + j).
            let PlaneScratch {
                even, odd, lanes, ..
            } = &mut scratch;
            for ((e, ev), od) in lanes
                .chunks_exact_mut(4 * cols)
                .zip(even.chunks_exact(cols + 1))
                .zip(odd.chunks_exact(cols + 1))
            {
                let (e0, rest) = e.split_at_mut(cols);
                let (e1, rest) = rest.split_at_mut(cols);
                let (e2, e3) = rest.split_at_mut(cols);
                lanes2(e0, &ev[..cols], &ev[1..], |a, b| a - b);
                lanes2(e1, &od[..cols], &ev[1..], |a, b| a + b);
                lanes2(e2, &ev[1..], &od[..cols], |a, b| a - b);
                lanes2(e3, &od[..cols], &od[1..], |a, b| a - b);
            }
            // Bᵀ down each column of tile row ty (padded rows 2ty … 2ty + 3), into V.
            let lane = |p: usize, j: usize| &lanes[(4 * p + j) * cols..(4 * p + j + 1) * cols];
            for ty in 0..tiling.rows {
                let base = c * columns + n * tiling.per_image() + ty * cols;
                for j in 0..4 {
                    let r = |k: usize| lane(2 * ty + k, j);
                    let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
                    let at = |i: usize| (4 * i + j) * plane_stride + base;
                    lanes2(&mut v[at(0)..at(0) + cols], r0, r2, |a, b| a - b);
                    lanes2(&mut v[at(1)..at(1) + cols], r1, r2, |a, b| a + b);
                    lanes2(&mut v[at(2)..at(2) + cols], r2, r1, |a, b| a - b);
                    lanes2(&mut v[at(3)..at(3) + cols], r1, r3, |a, b| a - b);
                }
            }
        }
    }
}

/// `U[ξ, o, c] = (G g Gᵀ)_ξ` of the weight `[C_out, C_in, 3, 3]`, over the rayon pool: each
/// filter's 16 values first, then one plane per position `ξ` (two passes, so that no task
/// writes another's entries).
fn transform_filter(g: &Conv2dGeometry, weight: &[f32]) -> Vec<f32> {
    let pairs = g.out_channels * g.in_channels;
    let transformed: Vec<[f32; POSITIONS]> = weight
        .par_chunks_exact(9)
        .with_min_len(FILTERS_PER_TASK)
        .map(|filter| {
            let f: [[f32; 3]; 3] =
                std::array::from_fn(|i| std::array::from_fn(|j| filter[3 * i + j]));
            let t = both_ways(f, filter_transform);
            std::array::from_fn(|xi| t[xi / 4][xi % 4])
        })
        .collect();
    let mut u = zeros(POSITIONS * pairs);
    u.par_chunks_exact_mut(pairs)
        .enumerate()
        .for_each(|(xi, plane)| {
            for (value, filter) in plane.iter_mut().zip(&transformed) {
                *value = filter[xi];
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

/// The adjoint of [`transform_input`]: adds `B (∂L/∂V) Bᵀ` of every tile onto `images`.
/// Per tile row, `B` down the columns gives `w[r][j]`; `B` along the rows is added into the
/// even / odd columns of padded rows `2ty … 2ty + 3` (tile `t` adds at `even[t], odd[t],
/// even[t + 1], odd[t + 1]`, where neighbouring tiles overlap), and each padded row is added
/// onto its image row once per plane.
fn transform_input_adjoint(g: &Conv2dGeometry, tiling: &Tiling, v: &[f32], images: &mut [f32]) {
    let [height, width] = g.in_size;
    let columns = images.len() / g.in_image_len() * tiling.per_image();
    let plane_stride = g.in_channels * columns;
    let cols = tiling.cols;
    let padded_rows = height + 2;
    let mut scratch = PlaneScratch::new(padded_rows, cols);
    for (n, image) in images.chunks_exact_mut(g.in_image_len()).enumerate() {
        for (c, plane) in image.chunks_exact_mut(height * width).enumerate() {
            scratch.even.fill(0.0);
            scratch.odd.fill(0.0);
            for ty in 0..tiling.rows {
                let base = c * columns + n * tiling.per_image() + ty * cols;
                let dv = |i: usize, j: usize| {
                    let at = (4 * i + j) * plane_stride + base;
                    &v[at..at + cols]
                };
                // B down each column: w[r][j] in lanes (4r + j).
                let lanes = &mut scratch.lanes[..POSITIONS * cols];
                for j in 0..4 {
                    let (v0, v1, v2, v3) = (dv(0, j), dv(1, j), dv(2, j), dv(3, j));
                    let mut w = lanes.chunks_exact_mut(cols).skip(j).step_by(4);
                    let mut next = || w.next().expect("four rows of lanes");
                    next().copy_from_slice(v0);
                    lanes3(next(), v1, v2, v3, |a, b, c| a - b + c);
                    lanes3(next(), v1, v2, v0, |a, b, c| a + b - c);
                    lanes2(next(), v3, v3, |a, _| -a);
                }
                // B along each row, accumulated into padded row 2ty + r.
                for r in 0..4 {
                    let w = &scratch.lanes[4 * r * cols..4 * (r + 1) * cols];
                    let (w0, rest) = w.split_at(cols);
                    let (w1, rest) = rest.split_at(cols);
                    let (w2, w3) = rest.split_at(cols);
                    let at = (2 * ty + r) * (cols + 1)..(2 * ty + r + 1) * (cols + 1);
                    let ev = &mut scratch.even[at.clone()];
                    ev[..cols].iter_mut().zip(w0).for_each(|(e, &a)| *e += a);
                    ev[1..]
                        .iter_mut()
                        .zip(w1.iter().zip(w2).zip(w0))
                        .for_each(|(e, ((&a, &b), &c))| *e += a + b - c);
                    let od = &mut scratch.odd[at];
                    od[..cols]
                        .iter_mut()
                        .zip(w1.iter().zip(w2).zip(w3))
                        .for_each(|(o, ((&a, &b), &c))| *o += a - b + c);
                    od[1..].iter_mut().zip(w3).for_each(|(o, &a)| *o -= a);
                }
            }
            // Padded row p is input row p − 1; input column 2k gets odd[k], 2k + 1 gets
            // even[k + 1] (even[0] and odd[cols] are padding).
            for (h, row) in plane.chunks_exact_mut(width).enumerate() {
                let (ev, od) = scratch.row(h + 1);
                row.chunks_exact_mut(2)
                    .zip(od[..cols].iter().zip(&ev[1..]))
                    .for_each(|(pair, (&o, &e))| {
                        pair[0] += o;
                        pair[1] += e;
                    });
            }
        }
    }
}

/// `Y = Aᵀ M A` of every tile into a block of output images `[n, C_out, H, W]`, a tile row
/// at a time, vectorised over its tiles.
fn transform_output(g: &Conv2dGeometry, tiling: &Tiling, m: &[f32], images: &mut [f32]) {
    let [height, width] = g.out_size;
    let columns = images.len() / g.out_image_len() * tiling.per_image();
    let plane_stride = g.out_channels * columns;
    let cols = tiling.cols;
    let mut lanes = vec![0.0f32; 8 * cols];
    for (n, image) in images.chunks_exact_mut(g.out_image_len()).enumerate() {
        for (o, plane) in image.chunks_exact_mut(height * width).enumerate() {
            for ty in 0..tiling.rows {
                let base = o * columns + n * tiling.per_image() + ty * cols;
                let mv = |i: usize, j: usize| {
                    let at = (4 * i + j) * plane_stride + base;
                    &m[at..at + cols]
                };
                // Aᵀ down each column: s[a][j] in lanes (4a + j).
                for j in 0..4 {
                    let (m0, m1, m2, m3) = (mv(0, j), mv(1, j), mv(2, j), mv(3, j));
                    let (s0, s1) = lanes.split_at_mut(4 * cols);
                    lanes3(&mut s0[j * cols..(j + 1) * cols], m0, m1, m2, |a, b, c| {
                        a + b + c
                    });
                    lanes3(&mut s1[j * cols..(j + 1) * cols], m1, m2, m3, |a, b, c| {
                        a - b - c
                    });
                }
                // Aᵀ along each row, interleaved into output rows 2ty and 2ty + 1.
                for (a, s) in lanes.chunks_exact(4 * cols).enumerate() {
                    let (s0, rest) = s.split_at(cols);
                    let (s1, rest) = rest.split_at(cols);
                    let (s2, s3) = rest.split_at(cols);
                    let h = 2 * ty + a;
                    plane[h * width..(h + 1) * width]
                        .chunks_exact_mut(2)
                        .zip(s0.iter().zip(s1).zip(s2.iter().zip(s3)))
                        .for_each(|(pair, ((&a, &b), (&c, &d)))| {
                            pair[0] = a + b + c;
                            pair[1] = b - c - d;
                        });
                }
            }
        }
    }
}

/// The adjoint of [`transform_output`]: `∂L/∂M = A (∂L/∂Y) Aᵀ` of every tile.
fn transform_output_adjoint(g: &Conv2dGeometry, tiling: &Tiling, images: &[f32], m: &mut [f32]) {
    let [height, width] = g.out_size;
    let columns = images.len() / g.out_image_len() * tiling.per_image();
    let plane_stride = g.out_channels * columns;
    let cols = tiling.cols;
    let mut lanes = vec![0.0f32; 8 * cols];
    for (n, image) in images.chunks_exact(g.out_image_len()).enumerate() {
        for (o, plane) in image.chunks_exact(height * width).enumerate() {
            for ty in 0..tiling.rows {
                // A along each row: z[a][j] in lanes (4a + j), from output row 2ty + a.
                for (a, z) in lanes.chunks_exact_mut(4 * cols).enumerate() {
                    let h = 2 * ty + a;
                    let row = &plane[h * width..(h + 1) * width];
                    let (z0, rest) = z.split_at_mut(cols);
                    let (z1, rest) = rest.split_at_mut(cols);
                    let (z2, z3) = rest.split_at_mut(cols);
                    for ((((pair, z0), z1), z2), z3) in row
                        .chunks_exact(2)
                        .zip(z0.iter_mut())
                        .zip(z1.iter_mut())
                        .zip(z2.iter_mut())
                        .zip(z3.iter_mut())
                    {
                        let (y0, y1) = (pair[0], pair[1]);
                        *z0 = y0;
                        *z1 = y0 + y1;
                        *z2 = y0 - y1;
                        *z3 = -y1;
                    }
                }
                // A down each column, straight into ∂L/∂M.
                let base = o * columns + n * tiling.per_image() + ty * cols;
                let (first, second) = lanes.split_at(4 * cols);
                for j in 0..4 {
                    let z0 = &first[j * cols..(j + 1) * cols];
                    let z1 = &second[j * cols..(j + 1) * cols];
                    let at = |i: usize| (4 * i + j) * plane_stride + base;
                    m[at(0)..at(0) + cols].copy_from_slice(z0);
                    lanes2(&mut m[at(1)..at(1) + cols], z0, z1, |a, b| a + b);
                    lanes2(&mut m[at(2)..at(2) + cols], z0, z1, |a, b| a - b);
                    lanes2(&mut m[at(3)..at(3) + cols], z1, z1, |a, _| -a);
                }
            }
        }
    }
}

/// `dst_ξ (+)= op(a_ξ) · op(b_ξ)` for the 16 positions; each operand is 16 stacked row-major
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

/// Forward cross-correlation of a geometry that [`applies`]: `y = conv2d(x, W)` (no bias).
pub(super) fn forward(g: &Conv2dGeometry, input: &[f32], weight: &[f32]) -> Vec<f32> {
    let tiling = Tiling::new(g);
    let u = transform_filter(g, weight);
    let (c_in, c_out) = (g.in_channels, g.out_channels);
    let block = tiling.block_images(g.batch);
    let par = inner_parallelism(g.batch, block);
    let mut output = zeros(g.batch * g.out_image_len());
    output
        .par_chunks_mut(block * g.out_image_len())
        .zip(input.par_chunks(block * g.in_image_len()))
        .for_each(|(out_block, in_block)| {
            let columns = in_block.len() / g.in_image_len() * tiling.per_image();
            with_scratch(
                [POSITIONS * c_in * columns, POSITIONS * c_out * columns],
                |v, m| {
                    transform_input(g, &tiling, in_block, v);
                    position_gemms(
                        m,
                        [c_out, columns],
                        Accum::Replace,
                        &u,
                        [c_out, c_in],
                        v,
                        [c_in, columns],
                        [false, false],
                        par,
                    );
                    transform_output(g, &tiling, m, out_block);
                },
            );
        });
    output
}

/// Input gradient of a geometry that [`applies`]: `∂L/∂x` for the output gradient `∂L/∂y`.
pub(super) fn input_grad(g: &Conv2dGeometry, output_grad: &[f32], weight: &[f32]) -> Vec<f32> {
    let (input_grad, _) = backward(g, None, Some(weight), output_grad);
    input_grad.unwrap_or_default()
}

/// Weight gradient of a geometry that [`applies`]: `∂L/∂W`, `[C_out, C_in, 3, 3]` flat.
pub(super) fn weight_grad(g: &Conv2dGeometry, input: &[f32], output_grad: &[f32]) -> Vec<f32> {
    let (_, weight_grad) = backward(g, Some(input), None, output_grad);
    weight_grad.unwrap_or_default()
}

/// Both gradients of a geometry that [`applies`] from one `∂L/∂M` per block:
/// `(∂L/∂x, ∂L/∂W)`.
pub(super) fn input_and_weight_grad(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    output_grad: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let (input_grad, weight_grad) = backward(g, Some(input), Some(weight), output_grad);
    (
        input_grad.unwrap_or_default(),
        weight_grad.unwrap_or_default(),
    )
}

/// The gradients that the given operands allow: `∂L/∂x` from the `weight`, `∂L/∂W` from the
/// `input`. Each block transforms the output gradient once (`∂L/∂M`); the weight gradient's
/// GEMMs read `V` and `∂L/∂M`, after which `V`'s buffer takes `∂L/∂V` for the input gradient.
fn backward(
    g: &Conv2dGeometry,
    input: Option<&[f32]>,
    weight: Option<&[f32]>,
    output_grad: &[f32],
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let tiling = Tiling::new(g);
    let u = weight.map(|weight| transform_filter(g, weight));
    let (c_in, c_out) = (g.in_channels, g.out_channels);
    let block = tiling.block_images(g.batch);
    let par = inner_parallelism(g.batch, block);
    let u_len = if input.is_some() {
        POSITIONS * c_out * c_in
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
                [POSITIONS * c_in * columns, POSITIONS * c_out * columns],
                |v, m| {
                    transform_output_adjoint(g, &tiling, grad_block, m);
                    if let Some(input) = input {
                        let start = index * block * g.in_image_len();
                        let in_block = &input[start..start + images * g.in_image_len()];
                        transform_input(g, &tiling, in_block, v);
                        position_gemms(
                            &mut u_grad,
                            [c_out, c_in],
                            Accum::Add,
                            m,
                            [c_out, columns],
                            v,
                            [c_in, columns],
                            [false, true],
                            par,
                        );
                    }
                    if let (Some(u), Some(dx_block)) = (&u, dx_block) {
                        position_gemms(
                            v,
                            [c_in, columns],
                            Accum::Replace,
                            u,
                            [c_out, c_in],
                            m,
                            [c_out, columns],
                            [true, false],
                            par,
                        );
                        transform_input_adjoint(g, &tiling, v, dx_block);
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
    let weight_grad = input.map(|_| transform_filter_adjoint(g, &u_grad));
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

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7919 + seed * 104_729) % 1013) as f32 / 1013.0 - 0.5) * 2.0)
            .collect()
    }

    /// `x[n, c, h + i − 1, w + j − 1]`, zero outside: the definition's read.
    fn read(g: &Conv2dGeometry, n: usize, c: usize, h: usize, w: usize) -> Option<usize> {
        let [height, width] = g.in_size;
        let (h, w) = (h.wrapping_sub(1), w.wrapping_sub(1));
        (h < height && w < width).then(|| ((n * g.in_channels + c) * height + h) * width + w)
    }

    /// The three maps by their definitions, in f64: `y`, `∂L/∂x`, `∂L/∂W`.
    fn direct(g: &Conv2dGeometry, x: &[f32], w: &[f32], r: &[f32]) -> [Vec<f64>; 3] {
        let [height, width] = g.in_size;
        let (c_in, c_out) = (g.in_channels, g.out_channels);
        let mut y = vec![0.0; g.batch * g.out_image_len()];
        let mut dx = vec![0.0; x.len()];
        let mut dw = vec![0.0; w.len()];
        for n in 0..g.batch {
            for o in 0..c_out {
                for h in 0..height {
                    for v in 0..width {
                        let out = ((n * c_out + o) * height + h) * width + v;
                        for c in 0..c_in {
                            for i in 0..3 {
                                for j in 0..3 {
                                    let Some(at) = read(g, n, c, h + i, v + j) else {
                                        continue;
                                    };
                                    let k = ((o * c_in + c) * 3 + i) * 3 + j;
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

    fn assert_close(what: &str, actual: &[f32], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len(), "{what} length");
        let scale = expected.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!(
                (f64::from(*a) - e).abs() <= 1e-5 * scale,
                "{what}[{i}]: {a} vs {e} (scale {scale})"
            );
        }
    }

    #[test]
    fn transforms_reproduce_the_definition_and_its_adjoints() {
        // Ragged blocks (3 images in blocks of 2), a single tile row, an odd number of tile
        // columns, and channel counts that differ.
        for (batch, c_in, c_out, size) in [
            (3, 16, 24, [6, 16]),
            (2, 20, 16, [2, 16]),
            (1, 16, 16, [4, 18]),
        ] {
            let g = geometry(batch, c_in, c_out, size);
            assert!(applies(&g), "{g:?}");
            let x = values(batch * g.in_image_len(), 1);
            let w = values(c_out * c_in * 9, 2);
            let r = values(batch * g.out_image_len(), 3);
            let [y, dx, dw] = direct(&g, &x, &w, &r);
            assert_close("y", &forward(&g, &x, &w), &y);
            assert_close("∂L/∂x", &input_grad(&g, &r, &w), &dx);
            assert_close("∂L/∂W", &weight_grad(&g, &x, &r), &dw);
            let (fused_dx, fused_dw) = input_and_weight_grad(&g, &x, &w, &r);
            assert_close("fused ∂L/∂x", &fused_dx, &dx);
            assert_close("fused ∂L/∂W", &fused_dw, &dw);
        }
    }

    #[test]
    fn other_geometries_do_not_apply() {
        let g = geometry(2, 16, 16, [8, 16]);
        assert!(applies(&g));
        let odd = geometry(2, 16, 16, [7, 16]);
        assert!(!applies(&odd));
        let narrow = geometry(2, 16, 16, [16, 8]);
        assert!(!applies(&narrow));
        let thin = geometry(2, 3, 64, [16, 16]);
        assert!(!applies(&thin));
        let strided = Conv2dGeometry::conv2d(
            [2, 16, 16, 16],
            [16, 16, 3, 3],
            &ConvOptions::new([2, 2], [1, 1], [1, 1], 1),
        )
        .expect("valid geometry");
        assert!(!applies(&strided));
    }
}
