//! Layout changes between the images' planes (`[C, H, W]`) and the channel-minor rows
//! (`W × C`) that the Winograd transforms run lane-wise on: blocks moved as contiguous loads
//! and stores and transposed in registers, 8×8 in AVX registers where the CPU has AVX2
//! (pulp's safe intrinsics under its run-time dispatch), 4×4 in SSE registers (`wide`) for
//! the edges and without AVX2.

#[cfg(target_arch = "x86_64")]
use pulp::x86::V3;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::__m256;
use wide::f32x4;

/// `out[w·C + c] = image[c, h, w]`: row `h` of every channel plane, channel-minor.
#[inline]
pub(super) fn gather_row(image: &[f32], [height, width]: [usize; 2], h: usize, out: &mut [f32]) {
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
#[inline]
pub(super) fn scatter_row(row: &[f32], [height, width]: [usize; 2], h: usize, image: &mut [f32]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7919 + seed * 104_729) % 1013) as f32 / 1013.0 - 0.5) * 2.0)
            .collect()
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
}
