//! Lane-wise steps of the Winograd transforms: each is one operation over a `C`-long run of
//! channels, so it vectorises whatever the image width. The small non-generic helpers are
//! `#[inline]` because their callers live in other modules, which an incremental (dev-profile)
//! build puts in other codegen units, where they would otherwise stay calls.

use wide::f32x4;

/// `out[i] (+)= Σ_l t[i][l] · x[l]` lane-wise over channels for a constant matrix `t` (the
/// transforms of [`super::large_tiles`]), four lanes at a time in SSE registers; after
/// inlining, the zero and ±1 entries of `t` cost nothing.
#[inline(always)]
pub(super) fn lane_matrix<const M: usize, const N: usize, const ADD: bool>(
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

/// `out[c] = f(a[c], b[c])`: one step of a transform, vectorised over channels.
pub(super) fn lanes2(out: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) {
    out.iter_mut()
        .zip(a.iter().zip(b))
        .for_each(|(o, (&a, &b))| *o = f(a, b));
}

/// `out[c] = f(a[c], b[c], d[c])`.
pub(super) fn lanes3(
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    d: &[f32],
    f: impl Fn(f32, f32, f32) -> f32,
) {
    out.iter_mut()
        .zip(a.iter().zip(b).zip(d))
        .for_each(|(o, ((&a, &b), &d))| *o = f(a, b, d));
}

/// `out[c] += f(a[c], b[c], d[c])`.
pub(super) fn add_lanes3(
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    d: &[f32],
    f: impl Fn(f32, f32, f32) -> f32,
) {
    out.iter_mut()
        .zip(a.iter().zip(b).zip(d))
        .for_each(|(o, ((&a, &b), &d))| *o += f(a, b, d));
}

/// The `k`-th of the consecutive `len`-long runs of `buffer`.
#[inline]
pub(super) fn run(buffer: &[f32], k: usize, len: usize) -> &[f32] {
    &buffer[k * len..(k + 1) * len]
}

#[inline]
pub(super) fn run_mut(buffer: &mut [f32], k: usize, len: usize) -> &mut [f32] {
    &mut buffer[k * len..(k + 1) * len]
}
