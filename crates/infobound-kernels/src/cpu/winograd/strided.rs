//! Winograd's F(2×2, 2×2) on the four polyphase components of a 4×4, stride-2, padding-1
//! convolution (the Burgess VAE's encoder layers, and as their adjoints its decoder's
//! transposed convolutions).
//!
//! With `x'` the input padded by one pixel, `y[h, w] = Σ_{i,j<4} W[i, j] · x'[2h + i, 2w + j]`.
//! Splitting each tap as `i = 2p + r`, `j = 2q + s` gives four stride-1 2×2 correlations, one
//! per phase `φ = (r, s)`: `y[h, w] = Σ_φ Σ_{p,q<2} W[2p + r, 2q + s] · x'_φ[h + p, w + q]` with
//! `x'_φ[a, b] = x'[2a + r, 2b + s]`. Each phase runs F(2×2, 2×2): a 2×2 output tile reads a
//! 3×3 tile `d_φ` of its phase, and
//!
//! ```text
//!      ⎡1 −1  0⎤        ⎡1  0⎤
//! Bᵀ = ⎢0  1  0⎥    G = ⎢1  1⎥    Aᵀ = ⎡1  1  0⎤
//!      ⎣0 −1  1⎦        ⎣0  1⎦         ⎣0  1  1⎦
//! ```
//!
//! `Y = Aᵀ [Σ_φ (G g_φ Gᵀ) ⊙ (Bᵀ d_φ B)] A`. The sum over phases and channels is the GEMM's
//! inner dimension (`4·C_in`, phase-major), so 9 GEMMs multiply `9/16` of im2col's products.
//! In image coordinates, output tile `(ty, tx)` reads padded rows and columns
//! `4ty … 4ty + 5` and `4tx … 4tx + 5`.

use rayon::prelude::*;

use super::lanes::{add_lanes3, lanes2, lanes3, run, run_mut};
use super::{
    Conv2dGeometry, MIN_CHANNELS, PaddedImage, Tiling, Transforms, both_ways, read_output_tiles,
    write_output_tiles,
};

/// Phases `φ = 2r + s` of the input.
const PHASES: usize = 4;

/// F(2×2, 2×2) on the phases of a 4×4, stride-2, padding-1 convolution.
pub(in crate::cpu) struct FourByFourStrideTwo;

/// Whether `g` is a 4×4 cross-correlation with stride 2, padding 1 and dilation 1 on an image
/// whose sides are multiples of 4 (so the 2×2 output tiles cover the output), with at least
/// [`MIN_CHANNELS`] channels in and out. (With fewer input channels, such as an RGB input
/// layer, the 9 output-sized operands `M_ξ` cost more memory traffic than im2col saves.)
pub(super) fn applies(g: &Conv2dGeometry) -> bool {
    g.kernel_size == [4, 4]
        && g.stride == [2, 2]
        && g.padding == [1, 1]
        && g.dilation == [1, 1]
        && g.groups == 1
        && g.in_size.iter().all(|s| s % 4 == 0 && *s > 0)
        && g.out_size == g.in_size.map(|s| s / 2)
        && g.in_channels >= MIN_CHANNELS
        && g.out_channels >= MIN_CHANNELS
}

/// `G v` for one column (or row) of a 2×2 phase filter.
fn filter_transform(v: [f32; 2]) -> [f32; 3] {
    [v[0], v[0] + v[1], v[1]]
}

/// `Gᵀ v`, the adjoint of [`filter_transform`].
fn filter_adjoint(v: [f32; 3]) -> [f32; 2] {
    [v[0] + v[1], v[1] + v[2]]
}

impl Transforms for FourByFourStrideTwo {
    const POSITIONS: usize = 9;
    const TILE: usize = 2;

    fn depth(g: &Conv2dGeometry) -> usize {
        PHASES * g.in_channels
    }

    /// `U[ξ, o, φ·C_in + c] = (G g_φ Gᵀ)_ξ` with `g_φ[p][q] = W[o, c, 2p + r, 2q + s]`, one
    /// output channel per rayon task (each writes its row of every plane).
    fn filter(g: &Conv2dGeometry, weight: &[f32]) -> Vec<f32> {
        let (c_in, c_out) = (g.in_channels, g.out_channels);
        let depth = Self::depth(g);
        let mut u = vec![0.0f32; Self::POSITIONS * c_out * depth];
        let mut rows: Vec<Vec<&mut [f32]>> = (0..c_out)
            .map(|_| Vec::with_capacity(Self::POSITIONS))
            .collect();
        for plane in u.chunks_exact_mut(c_out * depth) {
            for (row, run) in rows.iter_mut().zip(plane.chunks_exact_mut(depth)) {
                row.push(run);
            }
        }
        rows.into_par_iter()
            .zip(weight.par_chunks_exact(c_in * 16))
            .for_each(|(mut planes, filters)| {
                for (c, filter) in filters.chunks_exact(16).enumerate() {
                    for phase in 0..PHASES {
                        let (r, s) = (phase / 2, phase % 2);
                        let f: [[f32; 2]; 2] = std::array::from_fn(|p| {
                            std::array::from_fn(|q| filter[(2 * p + r) * 4 + 2 * q + s])
                        });
                        let t = both_ways(f, filter_transform);
                        for (plane, value) in planes.iter_mut().zip(t.iter().flatten()) {
                            plane[phase * c_in + c] = *value;
                        }
                    }
                }
            });
        u
    }

    /// The adjoint of [`Self::filter`]: `∂L/∂g_φ = Gᵀ (∂L/∂U_φ) G`, scattered back to the taps
    /// `(2p + r, 2q + s)`.
    fn filter_adjoint(g: &Conv2dGeometry, u: &[f32]) -> Vec<f32> {
        let (c_in, c_out) = (g.in_channels, g.out_channels);
        let depth = Self::depth(g);
        let mut weight = vec![0.0f32; c_out * c_in * 16];
        weight
            .par_chunks_exact_mut(c_in * 16)
            .enumerate()
            .for_each(|(o, filters)| {
                for (c, filter) in filters.chunks_exact_mut(16).enumerate() {
                    for phase in 0..PHASES {
                        let (r, s) = (phase / 2, phase % 2);
                        let at = |xi: usize| (xi * c_out + o) * depth + phase * c_in + c;
                        let t: [[f32; 3]; 3] =
                            std::array::from_fn(|a| std::array::from_fn(|b| u[at(3 * a + b)]));
                        let f = both_ways(t, filter_adjoint);
                        for (p, row) in f.iter().enumerate() {
                            for (q, value) in row.iter().enumerate() {
                                filter[(2 * p + r) * 4 + 2 * q + s] = *value;
                            }
                        }
                    }
                }
            });
        weight
    }

    /// `V[ξ, t, φ·C + c] = (Bᵀ d_φ B)_ξ`: per tile and phase, `Bᵀ` along the rows of the 3×3
    /// phase tile into `e[k][b]`, then down its columns straight into `V`.
    fn input(g: &Conv2dGeometry, tiling: &Tiling, images: &[f32], v: &mut [f32]) {
        let c = g.in_channels;
        let columns = images.len() / g.in_image_len() * tiling.per_image();
        let mut padded = PaddedImage::new(g);
        let mut e = vec![0.0f32; 9 * c];
        for (n, image) in images.chunks_exact(g.in_image_len()).enumerate() {
            padded.load(image);
            for ty in 0..tiling.rows {
                for tx in 0..tiling.cols {
                    let t = n * tiling.per_image() + ty * tiling.cols + tx;
                    for phase in 0..PHASES {
                        let (r, s) = (phase / 2, phase % 2);
                        let d = |k: usize, l: usize| {
                            padded.pixel(4 * ty + 2 * k + r, 4 * tx + 2 * l + s)
                        };
                        for k in 0..3 {
                            lanes2(run_mut(&mut e, 3 * k, c), d(k, 0), d(k, 1), |a, b| a - b);
                            run_mut(&mut e, 3 * k + 1, c).copy_from_slice(d(k, 1));
                            lanes2(run_mut(&mut e, 3 * k + 2, c), d(k, 2), d(k, 1), |a, b| {
                                a - b
                            });
                        }
                        for b in 0..3 {
                            let ek = |k: usize| run(&e, 3 * k + b, c);
                            let at = |a: usize| ((3 * a + b) * columns + t) * PHASES + phase;
                            lanes2(run_mut(v, at(0), c), ek(0), ek(1), |a, b| a - b);
                            run_mut(v, at(1), c).copy_from_slice(ek(1));
                            lanes2(run_mut(v, at(2), c), ek(2), ek(1), |a, b| a - b);
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`Self::input`]: `B (∂L/∂V_φ) Bᵀ` of every tile and phase added onto the
    /// padded gradient image, whose interior then overwrites the image.
    fn input_adjoint(g: &Conv2dGeometry, tiling: &Tiling, v: &[f32], images: &mut [f32]) {
        let c = g.in_channels;
        let columns = images.len() / g.in_image_len() * tiling.per_image();
        let mut padded = PaddedImage::new(g);
        let mut f = vec![0.0f32; 9 * c];
        for (n, image) in images.chunks_exact_mut(g.in_image_len()).enumerate() {
            padded.clear();
            for ty in 0..tiling.rows {
                for tx in 0..tiling.cols {
                    let t = n * tiling.per_image() + ty * tiling.cols + tx;
                    for phase in 0..PHASES {
                        let (r, s) = (phase / 2, phase % 2);
                        // B down the columns: f[k][b] from ∂L/∂V[a][b].
                        for b in 0..3 {
                            let dv =
                                |a: usize| run(v, ((3 * a + b) * columns + t) * PHASES + phase, c);
                            run_mut(&mut f, b, c).copy_from_slice(dv(0));
                            lanes3(run_mut(&mut f, 3 + b, c), dv(0), dv(1), dv(2), |a, b, d| {
                                b - a - d
                            });
                            run_mut(&mut f, 6 + b, c).copy_from_slice(dv(2));
                        }
                        // B along the rows, added at padded (4ty + 2k + r, 4tx + 2l + s).
                        for k in 0..3 {
                            let fk = |b: usize| run(&f, 3 * k + b, c);
                            let row = 4 * ty + 2 * k + r;
                            let col = |l: usize| 4 * tx + 2 * l + s;
                            padded
                                .pixel_mut(row, col(0))
                                .iter_mut()
                                .zip(fk(0))
                                .for_each(|(x, &a)| *x += a);
                            add_lanes3(
                                padded.pixel_mut(row, col(1)),
                                fk(0),
                                fk(1),
                                fk(2),
                                |a, b, d| b - a - d,
                            );
                            padded
                                .pixel_mut(row, col(2))
                                .iter_mut()
                                .zip(fk(2))
                                .for_each(|(x, &a)| *x += a);
                        }
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
        let mut s = vec![0.0f32; 6 * o];
        write_output_tiles::<2>(g, tiling, images, |t, rows| {
            // Aᵀ down each column: s[i][b] = M[i][b] + M[i + 1][b].
            for b in 0..3 {
                let mv = |a: usize| run(m, (3 * a + b) * columns + t, o);
                lanes2(run_mut(&mut s, b, o), mv(0), mv(1), |a, b| a + b);
                lanes2(run_mut(&mut s, 3 + b, o), mv(1), mv(2), |a, b| a + b);
            }
            // Aᵀ along each row: y[i][j] = s[i][j] + s[i][j + 1].
            for (i, row) in rows.into_iter().enumerate() {
                let si = |b: usize| run(&s, 3 * i + b, o);
                let (y0, y1) = row.split_at_mut(o);
                lanes2(y0, si(0), si(1), |a, b| a + b);
                lanes2(y1, si(1), si(2), |a, b| a + b);
            }
        });
    }

    /// The adjoint of [`Self::output`]: `∂L/∂M = A (∂L/∂Y) Aᵀ` of every tile.
    fn output_adjoint(g: &Conv2dGeometry, tiling: &Tiling, images: &[f32], m: &mut [f32]) {
        let o = g.out_channels;
        let columns = images.len() / g.out_image_len() * tiling.per_image();
        let mut z = vec![0.0f32; 6 * o];
        read_output_tiles::<2>(g, tiling, images, |t, rows| {
            // A along each row: z[i][b].
            for (i, row) in rows.into_iter().enumerate() {
                let (y0, y1) = (run(row, 0, o), run(row, 1, o));
                run_mut(&mut z, 3 * i, o).copy_from_slice(y0);
                lanes2(run_mut(&mut z, 3 * i + 1, o), y0, y1, |a, b| a + b);
                run_mut(&mut z, 3 * i + 2, o).copy_from_slice(y1);
            }
            // A down each column, straight into ∂L/∂M.
            for b in 0..3 {
                let (z0, z1) = (run(&z, b, o), run(&z, 3 + b, o));
                let at = |a: usize| (3 * a + b) * columns + t;
                run_mut(m, at(0), o).copy_from_slice(z0);
                lanes2(run_mut(m, at(1), o), z0, z1, |a, b| a + b);
                run_mut(m, at(2), o).copy_from_slice(z1);
            }
        });
    }
}
