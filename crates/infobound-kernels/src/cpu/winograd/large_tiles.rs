//! Winograd's F(4×4, 3×3) for 3×3, stride-1, padding-1 convolutions (Lavin & Gray 2016, with
//! the interpolation points 0, ±1, ±2 and ∞): each 4×4 output tile is computed from the 6×6
//! input tile it reads as `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, so the 36 GEMMs multiply
//! `36 / (16·9) = 1/4` of im2col's products (F(2×2, 3×3): 1/2.25), and `V` holds 2.25 values
//! per input pixel and channel (F(2×2, 3×3): 4).
//!
//! ```text
//!      ⎡4  0 −5  0  1  0⎤        ⎡ 1/4    0     0 ⎤
//!      ⎢0 −4 −4  1  1  0⎥        ⎢−1/6  −1/6  −1/6⎥        ⎡1  1  1  1  1  0⎤
//! Bᵀ = ⎢0  4 −4 −1  1  0⎥    G = ⎢−1/6   1/6  −1/6⎥   Aᵀ = ⎢0  1 −1  2 −2  0⎥
//!      ⎢0 −2 −1  2  1  0⎥        ⎢1/24  1/12   1/6⎥        ⎢0  1  1  4  4  0⎥
//!      ⎢0  2 −1 −2  1  0⎥        ⎢1/24 −1/12   1/6⎥        ⎣0  1 −1  8 −8  1⎦
//!      ⎣0  4  0 −5  0  1⎦        ⎣  0     0     1 ⎦
//! ```
//!
//! The larger entries cost accuracy: results agree with the definition to ≈ 1e-5 relative
//! rather than F(2×2, 3×3)'s ≈ 1e-6. In image coordinates, output tile `(ty, tx)` reads padded
//! rows and columns `4ty … 4ty + 5` and `4tx … 4tx + 5`.

use rayon::prelude::*;

use super::lanes::{lane_matrix, run};
use super::{
    Conv2dGeometry, PaddedImage, Tiling, Transforms, both_ways, read_output_tiles,
    write_output_tiles,
};

/// Side of the transformed tiles.
const SIDE: usize = 6;

/// Output channels per rayon task in the filter transforms.
const OUTPUTS_PER_TASK: usize = 8;

#[rustfmt::skip]
const BT: [[f32; 6]; 6] = [
    [4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
    [0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
    [0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
    [0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
    [0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
    [0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
];

#[rustfmt::skip]
const AT: [[f32; 6]; 4] = [
    [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
    [0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
    [0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
];

/// `Mᵀ` of a matrix.
const fn transposed<const R: usize, const C: usize>(m: [[f32; C]; R]) -> [[f32; R]; C] {
    let mut t = [[0.0; R]; C];
    let mut i = 0;
    while i < R {
        let mut j = 0;
        while j < C {
            t[j][i] = m[i][j];
            j += 1;
        }
        i += 1;
    }
    t
}

const B: [[f32; 6]; 6] = transposed(BT);
const A: [[f32; 4]; 6] = transposed(AT);

/// `G v` for one column (or row) of a 3×3 filter.
fn filter_transform(v: [f32; 3]) -> [f32; 6] {
    let (a, b, c) = (v[0], v[1], v[2]);
    [
        a / 4.0,
        -(a + b + c) / 6.0,
        -(a - b + c) / 6.0,
        a / 24.0 + b / 12.0 + c / 6.0,
        a / 24.0 - b / 12.0 + c / 6.0,
        c,
    ]
}

/// `Gᵀ v`, the adjoint of [`filter_transform`].
fn filter_adjoint(v: [f32; 6]) -> [f32; 3] {
    [
        v[0] / 4.0 - (v[1] + v[2]) / 6.0 + (v[3] + v[4]) / 24.0,
        (v[2] - v[1]) / 6.0 + (v[3] - v[4]) / 12.0,
        -(v[1] + v[2]) / 6.0 + (v[3] + v[4]) / 6.0 + v[5],
    ]
}

/// F(4×4, 3×3).
pub(in crate::cpu) struct LargeTiles;

impl Transforms for LargeTiles {
    const POSITIONS: usize = SIDE * SIDE;
    const TILE: usize = 4;

    fn depth(g: &Conv2dGeometry) -> usize {
        g.in_channels
    }

    /// `U[ξ, o, c] = (G g Gᵀ)_ξ`, [`OUTPUTS_PER_TASK`] output channels per rayon task (each
    /// writes its rows of every plane).
    fn filter(g: &Conv2dGeometry, weight: &[f32]) -> Vec<f32> {
        let (c_in, c_out) = (g.in_channels, g.out_channels);
        let rows = OUTPUTS_PER_TASK * c_in;
        let mut u = vec![0.0f32; Self::POSITIONS * c_out * c_in];
        let mut tasks: Vec<Vec<&mut [f32]>> = (0..c_out.div_ceil(OUTPUTS_PER_TASK))
            .map(|_| Vec::with_capacity(Self::POSITIONS))
            .collect();
        for plane in u.chunks_exact_mut(c_out * c_in) {
            for (task, run) in tasks.iter_mut().zip(plane.chunks_mut(rows)) {
                task.push(run);
            }
        }
        tasks
            .into_par_iter()
            .zip(weight.par_chunks(9 * rows))
            .for_each(|(mut planes, filters)| {
                for (k, filter) in filters.chunks_exact(9).enumerate() {
                    let f: [[f32; 3]; 3] =
                        std::array::from_fn(|i| std::array::from_fn(|j| filter[3 * i + j]));
                    let t = both_ways(f, filter_transform);
                    for (plane, value) in planes.iter_mut().zip(t.iter().flatten()) {
                        plane[k] = *value;
                    }
                }
            });
        u
    }

    /// The adjoint of [`Self::filter`]: `∂L/∂g = Gᵀ (∂L/∂U) G` per `(o, c)`.
    fn filter_adjoint(g: &Conv2dGeometry, u: &[f32]) -> Vec<f32> {
        let pairs = g.out_channels * g.in_channels;
        let mut weight = vec![0.0f32; pairs * 9];
        weight
            .par_chunks_exact_mut(9)
            .with_min_len(OUTPUTS_PER_TASK * g.in_channels)
            .enumerate()
            .for_each(|(pair, filter)| {
                let t: [[f32; SIDE]; SIDE] = std::array::from_fn(|r| {
                    std::array::from_fn(|s| u[(SIDE * r + s) * pairs + pair])
                });
                let f = both_ways(t, filter_adjoint);
                for (value, out) in f.iter().flatten().zip(filter.iter_mut()) {
                    *out = *value;
                }
            });
        weight
    }

    /// `V[ξ, t, c] = (Bᵀ d B)_ξ`: per tile, `Bᵀ` along each of its six padded rows into
    /// `e[k][b]`, then down each column straight into the planes of `V`.
    fn input(g: &Conv2dGeometry, tiling: &Tiling, images: &[f32], v: &mut [f32]) {
        let c = g.in_channels;
        let columns = images.len() / g.in_image_len() * tiling.per_image();
        let mut planes: Vec<&mut [f32]> = v.chunks_exact_mut(columns * c).collect();
        let mut padded = PaddedImage::new(g);
        let mut e = vec![0.0f32; SIDE * SIDE * c];
        for (n, image) in images.chunks_exact(g.in_image_len()).enumerate() {
            padded.load(image);
            for ty in 0..tiling.rows {
                for tx in 0..tiling.cols {
                    let t = n * tiling.per_image() + ty * tiling.cols + tx;
                    for (k, e) in e.chunks_exact_mut(SIDE * c).enumerate() {
                        let d = padded.pixels(4 * ty + k, 4 * tx, SIDE);
                        lane_matrix::<6, 6, false>(&BT, lanes(d, c), lanes_mut(e, c));
                    }
                    for b in 0..SIDE {
                        let column = std::array::from_fn(|k| run(&e, SIDE * k + b, c));
                        let outputs = planes
                            .get_disjoint_mut(std::array::from_fn::<_, SIDE, _>(|a| SIDE * a + b))
                            .expect("distinct positions");
                        let outputs = outputs.map(|plane| &mut plane[t * c..(t + 1) * c]);
                        lane_matrix::<6, 6, false>(&BT, column, outputs);
                    }
                }
            }
        }
    }

    /// The adjoint of [`Self::input`]: `B (∂L/∂V) Bᵀ` of every tile added onto the padded
    /// gradient image, whose interior then overwrites the image.
    fn input_adjoint(g: &Conv2dGeometry, tiling: &Tiling, v: &[f32], images: &mut [f32]) {
        let c = g.in_channels;
        let columns = images.len() / g.in_image_len() * tiling.per_image();
        let planes: Vec<&[f32]> = v.chunks_exact(columns * c).collect();
        let mut padded = PaddedImage::new(g);
        let mut f = vec![0.0f32; SIDE * SIDE * c];
        for (n, image) in images.chunks_exact_mut(g.in_image_len()).enumerate() {
            padded.clear();
            for ty in 0..tiling.rows {
                for tx in 0..tiling.cols {
                    let t = n * tiling.per_image() + ty * tiling.cols + tx;
                    // B down each column: f[k][b] in run 6k + b.
                    for b in 0..SIDE {
                        let dv = std::array::from_fn(|a| &planes[SIDE * a + b][t * c..(t + 1) * c]);
                        let mut rows = f.chunks_exact_mut(c).skip(b).step_by(SIDE);
                        let out = std::array::from_fn(|_| rows.next().expect("six rows"));
                        lane_matrix::<6, 6, false>(&B, dv, out);
                    }
                    // B along each row, added onto padded row 4ty + k.
                    for k in 0..SIDE {
                        let row = lanes(&f[SIDE * k * c..SIDE * (k + 1) * c], c);
                        let d = padded.pixels_mut(4 * ty + k, 4 * tx, SIDE);
                        lane_matrix::<6, 6, true>(&B, row, lanes_mut(d, c));
                    }
                }
            }
            padded.store(image);
        }
    }

    /// `Y = Aᵀ M A` of every tile.
    fn output(g: &Conv2dGeometry, tiling: &Tiling, m: &[f32], images: &mut [f32]) {
        let o = g.out_channels;
        let columns = images.len() / g.out_image_len() * tiling.per_image();
        let planes: Vec<&[f32]> = m.chunks_exact(columns * o).collect();
        let mut s = vec![0.0f32; 4 * SIDE * o];
        write_output_tiles::<4>(g, tiling, images, |t, rows| {
            // Aᵀ down each column: s[i][b] in run 6i + b.
            for b in 0..SIDE {
                let column = std::array::from_fn(|a| &planes[SIDE * a + b][t * o..(t + 1) * o]);
                let mut out_rows = s.chunks_exact_mut(o).skip(b).step_by(SIDE);
                let out = std::array::from_fn(|_| out_rows.next().expect("four rows"));
                lane_matrix::<4, 6, false>(&AT, column, out);
            }
            // Aᵀ along each row: the tile's four pixels of output row i.
            for (i, y) in rows.into_iter().enumerate() {
                let si = lanes(&s[SIDE * i * o..SIDE * (i + 1) * o], o);
                lane_matrix::<4, 6, false>(&AT, si, lanes_mut(y, o));
            }
        });
    }

    /// The adjoint of [`Self::output`]: `∂L/∂M = A (∂L/∂Y) Aᵀ` of every tile.
    fn output_adjoint(g: &Conv2dGeometry, tiling: &Tiling, images: &[f32], m: &mut [f32]) {
        let o = g.out_channels;
        let columns = images.len() / g.out_image_len() * tiling.per_image();
        let mut planes: Vec<&mut [f32]> = m.chunks_exact_mut(columns * o).collect();
        let mut z = vec![0.0f32; 4 * SIDE * o];
        read_output_tiles::<4>(g, tiling, images, |t, rows| {
            // A along each row: z[i][b] in run 6i + b.
            for (zi, y) in z.chunks_exact_mut(SIDE * o).zip(rows) {
                lane_matrix::<6, 4, false>(&A, lanes(y, o), lanes_mut(zi, o));
            }
            // A down each column, straight into ∂L/∂M.
            for b in 0..SIDE {
                let column = std::array::from_fn(|i| run(&z, SIDE * i + b, o));
                let outputs = planes
                    .get_disjoint_mut(std::array::from_fn::<_, SIDE, _>(|a| SIDE * a + b))
                    .expect("distinct positions");
                let outputs = outputs.map(|plane| &mut plane[t * o..(t + 1) * o]);
                lane_matrix::<6, 4, false>(&A, column, outputs);
            }
        });
    }
}

/// The `N` consecutive `len`-long runs of `values`.
fn lanes<const N: usize>(values: &[f32], len: usize) -> [&[f32]; N] {
    std::array::from_fn(|k| run(values, k, len))
}

/// The `N` consecutive `len`-long runs of `values`, mutably.
fn lanes_mut<const N: usize>(values: &mut [f32], len: usize) -> [&mut [f32]; N] {
    let mut runs = values.chunks_exact_mut(len);
    std::array::from_fn(|_| runs.next().expect("N runs"))
}
