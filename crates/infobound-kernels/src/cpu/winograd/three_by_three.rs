//! Winograd's F(2×2, 3×3) for 3×3, stride-1, padding-1 convolutions (Lavin & Gray, *Fast
//! Algorithms for Convolutional Neural Networks*, CVPR 2016).
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
//! Every transform runs lane-wise over channels on rows gathered channel-minor (the parent
//! module's docs).

use rayon::prelude::*;

use super::lanes::{add_lanes3, lanes2, lanes3, run, run_mut};
use super::transpose::{gather_row, scatter_row};
use super::{
    Conv2dGeometry, MIN_CHANNELS, Tiling, Transforms, both_ways, read_output_tiles,
    write_output_tiles,
};
use crate::cpu::zeros;

/// Tile positions `ξ` of F(2×2, 3×3)'s 4×4 transformed tiles.
const POSITIONS: usize = 16;

/// Filters per rayon task in the filter transforms (a 512 × 512 layer has 262 144).
const FILTERS_PER_TASK: usize = 4096;

/// Whether `g` is a 3×3 cross-correlation with stride 1, padding 1 and dilation 1 on an
/// even-sized image (so the 2×2 tiles cover it), with at least [`MIN_CHANNELS`] channels in
/// and out.
pub(super) fn applies(g: &Conv2dGeometry) -> bool {
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

/// F(2×2, 3×3) (the module docs).
pub(super) struct ThreeByThree;

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
