//! The caller's choice of convolution algorithm, passed with every call (a layer's or a run's
//! configuration, never a process-global switch).

use serde::{Deserialize, Serialize};

use super::Conv2dGeometry;
use super::winograd;

/// Which algorithm computes a convolution and its gradients on the flex fast path.
///
/// Both choices compute the same cross-correlation
/// `y[n, o, h, w] = Σ_{c,i,j} W[o, c, i, j] · x[n, c, h·s_h − p_h + i·d_h, w·s_w − p_w + j·d_w]`
/// and its adjoints; they differ in float rounding only. Serialised in `snake_case`
/// (`"auto"`, `"im2col"`), so a layer or run configuration can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConvAlgorithm {
    /// Winograd's minimal filtering (Lavin & Gray, *Fast Algorithms for Convolutional Neural
    /// Networks*, CVPR 2016) on the geometries it computes, im2col + GEMM on every other one:
    /// with at least 16 channels in and out, F(2×2, 3×3) and — on images whose sides are
    /// multiples of 4 and at least 16 — F(4×4, 3×3) for 3×3, stride-1, padding-1 layers
    /// (2.25× and 4× fewer products), and F(2×2, 2×2) on the polyphase components of 4×4,
    /// stride-2, padding-1 layers (1.78× fewer). Winograd agrees with the direct definition
    /// to float rounding, ≈ 1e-6 relative to the output's largest magnitude (≈ 1e-5 for
    /// F(4×4, 3×3), whose transforms have larger entries), not bit for bit. The default
    /// (our choice: the faster path, as measured in `docs/benchmarks.md`).
    #[default]
    Auto,
    /// im2col / col2im + one GEMM per block of images for every geometry: exactly the direct
    /// definition's products, summed in the GEMM's order; for comparing against Winograd or
    /// timing im2col.
    Im2col,
}

/// The [`winograd`] algorithm that runs `geometry` under `algorithm`, if any: Winograd
/// allowed, a geometry it computes, and images.
pub(super) fn winograd_kind(
    geometry: &Conv2dGeometry,
    algorithm: ConvAlgorithm,
) -> Option<winograd::Kind> {
    match algorithm {
        ConvAlgorithm::Auto if geometry.batch > 0 => winograd::Kind::of(geometry),
        ConvAlgorithm::Auto | ConvAlgorithm::Im2col => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::ops::ConvOptions;

    #[test]
    fn names_round_trip_in_snake_case() {
        for (algorithm, name) in [
            (ConvAlgorithm::Auto, "\"auto\""),
            (ConvAlgorithm::Im2col, "\"im2col\""),
        ] {
            let written = serde_json::to_string(&algorithm).expect("serialisable");
            assert_eq!(written, name);
            let read: ConvAlgorithm = serde_json::from_str(&written).expect("deserialisable");
            assert_eq!(read, algorithm);
        }
        assert!(serde_json::from_str::<ConvAlgorithm>("\"winograd\"").is_err());
        assert_eq!(ConvAlgorithm::default(), ConvAlgorithm::Auto);
    }

    #[test]
    fn only_auto_takes_winograd() {
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let resnet = Conv2dGeometry::conv2d([2, 16, 8, 8], [16, 16, 3, 3], &options)
            .expect("valid geometry");
        assert!(winograd_kind(&resnet, ConvAlgorithm::Auto).is_some());
        assert_eq!(winograd_kind(&resnet, ConvAlgorithm::Im2col), None);
        let empty = Conv2dGeometry { batch: 0, ..resnet };
        assert_eq!(winograd_kind(&empty, ConvAlgorithm::Auto), None);
        let stem =
            Conv2dGeometry::conv2d([2, 3, 8, 8], [16, 3, 3, 3], &options).expect("valid geometry");
        assert_eq!(winograd_kind(&stem, ConvAlgorithm::Auto), None);
    }
}
