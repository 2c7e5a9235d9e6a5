//! Every Winograd algorithm against the definition of the cross-correlation and its adjoints,
//! through the shared drivers, and which geometries each applies to.

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
