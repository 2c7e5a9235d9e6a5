//! Procedural dSprites (Matthey, Higgins, Hassabis & Lerchner 2017, deepmind/dsprites-dataset).

use std::f64::consts::PI;

use rand::RngCore;

use super::cache::RenderCache;
use super::{check_factor_index, linspace, linspace_at, render_batch};
use crate::registry::ProceduralDataset;
use crate::{
    DataError, FactorMatrix, FactorSpace, GroundTruthDataset, ImageBatch, ObservationShape,
};

/// Image side in pixels.
const SIDE: usize = 64;
/// Sprite centres span [`CENTRE_MIN`, `CENTRE_MIN` + `CENTRE_RANGE`] = [16, 48] px.
const CENTRE_MIN: f64 = 16.0;
/// Width of the range of sprite centres in pixels.
const CENTRE_RANGE: f64 = 32.0;
/// Half side of the square at scale 1, in pixels. Every shape fits in a disc of radius
/// √2·`UNIT_PX`·scale ≈ 14.2 px, so a sprite centred at 16 or 48 stays ≥ 1.8 px off the border.
const UNIT_PX: f64 = 10.0;
/// Supersampling grid per pixel side (4×4 samples); a pixel is on when ≥ half its samples are.
const SUPERSAMPLE: usize = 4;

/// The three dSprites shapes, in the order of the `shape` factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DSpritesShape {
    /// Axis-aligned square at orientation 0.
    Square,
    /// Ellipse with semi-axes 1.35 and 0.7 square half-sides, long axis horizontal at orientation 0.
    Ellipse,
    /// Heart, tip down at orientation 0.
    Heart,
}

impl DSpritesShape {
    /// The shapes in factor order.
    pub const ALL: [Self; 3] = [Self::Square, Self::Ellipse, Self::Heart];

    /// Whether the point (u, v) of the shape's unit frame (v up) lies inside the shape.
    fn contains(self, u: f32, v: f32) -> bool {
        match self {
            Self::Square => u.abs() <= 1.0 && v.abs() <= 1.0,
            Self::Ellipse => (u * u) / (1.35 * 1.35) + (v * v) / (0.7 * 0.7) <= 1.0,
            Self::Heart => {
                // The sextic heart (x² + y² − 1)³ − x²y³ ≤ 0 spans y ∈ [−1, 1.25]; shifting by
                // 0.12 centres it vertically so it rotates about its middle.
                let (x, y) = (u * 1.05, v * 1.05 + 0.12);
                let r = x * x + y * y - 1.0;
                r * r * r - x * x * y * y * y <= 0.0
            }
        }
    }
}

/// Procedural dSprites: 64×64 binary images of a white sprite on black.
///
/// Factors (names and grids of the real `.npz` file, last factor fastest): `color` 1, `shape` 3
/// (square, ellipse, heart), `scale` 6 = linspace(0.5, 1, 6), `orientation` 40 =
/// linspace(0, 2π, 40), `posX` 32 and `posY` 32 = linspace(0, 1, 32); 737,280 states. The sprite
/// centre is 16 + 32·pos pixels; it is supersampled 4×4 per pixel and binarised at half coverage.
#[derive(Debug)]
pub struct DSprites {
    space: FactorSpace,
    cache: Option<RenderCache>,
}

impl Default for DSprites {
    fn default() -> Self {
        Self::new()
    }
}

impl DSprites {
    /// Factor names in storage order, as in the real file's `latents_names`.
    pub const FACTOR_NAMES: [&'static str; 6] =
        ["color", "shape", "scale", "orientation", "posX", "posY"];
    /// Number of values of each factor.
    pub const FACTOR_SIZES: [usize; 6] = [1, 3, 6, 40, 32, 32];

    /// This dataset's entry in the procedural registry ([`crate::registry::PROCEDURAL`]).
    pub const REGISTRATION: ProceduralDataset = ProceduralDataset {
        name: "dsprites",
        description: "procedural dSprites look-alike (Matthey et al. 2017): a white square, ellipse or heart on black, 64x64 binary; exact factor grid of the real file",
        build: || Box::new(DSprites::new()),
    };

    /// The dataset without a cache: every image is rendered when asked for.
    pub fn new() -> Self {
        let names = Self::FACTOR_NAMES.iter().map(|s| s.to_string()).collect();
        let space = FactorSpace::new(names, Self::FACTOR_SIZES.to_vec())
            .unwrap_or_else(|e| unreachable!("the dSprites factor grid is valid: {e}"));
        Self { space, cache: None }
    }

    /// Keeps up to `max_images` rendered images in memory (4 KiB each, one `u8` per pixel).
    pub fn with_cache(mut self, max_images: usize) -> Self {
        self.cache = Some(RenderCache::new(max_images));
        self
    }

    /// Number of images currently cached (0 without a cache).
    pub fn cached_images(&self) -> usize {
        self.cache.as_ref().map_or(0, RenderCache::len)
    }

    /// The real file's `latents_values` grid of factor `factor`: colour 1.0; shape 1, 2, 3; scale,
    /// orientation and positions as `linspace` above.
    pub fn factor_values(&self, factor: usize) -> Result<Vec<f64>, DataError> {
        check_factor_index(&self.space, factor)?;
        Ok(match factor {
            0 => vec![1.0],
            1 => vec![1.0, 2.0, 3.0],
            2 => linspace(0.5, 1.0, 6),
            3 => linspace(0.0, 2.0 * PI, 40),
            _ => linspace(0.0, 1.0, 32),
        })
    }

    /// Renders one image (64·64 `u8`, 0 or 255) for a validated factor vector.
    fn render(&self, factors: &[usize], out: &mut [u8]) {
        out.fill(0);
        let shape = DSpritesShape::ALL[factors[1]];
        let scale = linspace_at(0.5, 1.0, 6, factors[2]);
        let angle = linspace_at(0.0, 2.0 * PI, 40, factors[3]);
        let centre_x = CENTRE_MIN + CENTRE_RANGE * linspace_at(0.0, 1.0, 32, factors[4]);
        let centre_y = CENTRE_MIN + CENTRE_RANGE * linspace_at(0.0, 1.0, 32, factors[5]);
        // Trigonometry in f64, rounded to f32 once: f64 sin/cos agree across libms to far below
        // f32 precision, so the binarised pixels are the same on every machine.
        let (sin, cos) = angle.sin_cos();
        let inv_size = 1.0 / (UNIT_PX * scale);
        let (sin, cos) = ((sin * inv_size) as f32, (cos * inv_size) as f32);
        let reach = UNIT_PX * scale * std::f64::consts::SQRT_2 + 1.0;
        let first = |c: f64| ((c - reach).floor().max(0.0)) as usize;
        let last = |c: f64| ((c + reach).ceil().min(SIDE as f64)) as usize;
        let (cx, cy) = (centre_x as f32, centre_y as f32);
        let step = 1.0 / SUPERSAMPLE as f32;
        let threshold = SUPERSAMPLE * SUPERSAMPLE / 2;
        for row in first(centre_y)..last(centre_y) {
            for col in first(centre_x)..last(centre_x) {
                let mut covered = 0;
                for sy in 0..SUPERSAMPLE {
                    // Image rows grow downwards; the shape frame's v axis points up.
                    let dy = cy - (row as f32 + (sy as f32 + 0.5) * step);
                    for sx in 0..SUPERSAMPLE {
                        let dx = col as f32 + (sx as f32 + 0.5) * step - cx;
                        let u = cos * dx + sin * dy;
                        let v = cos * dy - sin * dx;
                        covered += usize::from(shape.contains(u, v));
                    }
                }
                if covered >= threshold {
                    out[row * SIDE + col] = 255;
                }
            }
        }
    }
}

impl GroundTruthDataset for DSprites {
    fn name(&self) -> &str {
        Self::REGISTRATION.name
    }

    fn factor_space(&self) -> &FactorSpace {
        &self.space
    }

    fn observation_shape(&self) -> ObservationShape {
        ObservationShape {
            channels: 1,
            height: SIDE,
            width: SIDE,
        }
    }

    fn observations_from_factors(
        &self,
        factors: &FactorMatrix,
        _rng: &mut dyn RngCore,
    ) -> Result<ImageBatch, DataError> {
        render_batch(
            &self.space,
            self.observation_shape(),
            factors,
            self.cache.as_ref(),
            |row, out| self.render(row, out),
        )
    }
}
