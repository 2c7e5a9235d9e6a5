//! Procedural 3DShapes (Burgess & Kim 2018, deepmind/3d-shapes): a small ray-caster.
//!
//! Scene (world units, y up): an infinite floor y = 0 and a room corner made of the walls
//! x = −[`WALL_DISTANCE`] and z = −[`WALL_DISTANCE`]; the object stands on the floor at the
//! origin; one point light above and in front of it. The camera looks at the object from the
//! corner's diagonal; the `orientation` factor rotates the scene about the vertical axis through
//! the object, which is the same as orbiting the camera (and keeping the light fixed to the scene).
//! Shading is Lambert with an ambient term and a shadow from the object, anti-aliased at edges.

use rand::RngCore;

use super::cache::RenderCache;
use super::{check_factor_index, linspace, linspace_at, render_batch, to_u8};
use crate::registry::ProceduralDataset;
use crate::{
    DataError, FactorMatrix, FactorSpace, GroundTruthDataset, ImageBatch, ObservationShape,
};

/// Image side in pixels.
const SIDE: usize = 64;
/// Distance from the object to each of the two walls.
const WALL_DISTANCE: f32 = 3.0;
/// Camera distance from the point it looks at.
const CAMERA_DISTANCE: f32 = 5.6;
/// Camera elevation above the horizontal, in radians.
const CAMERA_ELEVATION: f64 = 0.22;
/// Height of the point the camera looks at.
const CAMERA_TARGET_HEIGHT: f32 = 1.2;
/// tan(vertical field of view / 2).
const TAN_HALF_FOV: f32 = 0.5;
/// Azimuth of the camera at orientation 0: on the corner's diagonal.
const BASE_AZIMUTH_DEG: f64 = 45.0;
/// Point light position in scene coordinates.
const LIGHT: Vec3 = Vec3::new(1.8, 5.0, 2.6);
/// Share of light that does not depend on the surface normal or the shadow.
const AMBIENT: f32 = 0.35;
/// Object size at scale 1 (sphere radius, cube half side, ...).
const OBJECT_UNIT: f32 = 1.0;
/// Offset of secondary rays from their surface, against self-intersection.
const EPSILON: f32 = 1e-3;

/// The four 3DShapes objects, in the order of the `shape` factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shapes3DShape {
    /// Cube resting on a face.
    Cube,
    /// Upright cylinder.
    Cylinder,
    /// Sphere.
    Sphere,
    /// Capsule (cylinder with hemispherical ends) lying along the scene's x axis.
    Capsule,
}

impl Shapes3DShape {
    /// The shapes in factor order.
    pub const ALL: [Self; 4] = [Self::Cube, Self::Cylinder, Self::Sphere, Self::Capsule];
}

/// A point, direction or RGB colour.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Vec3 {
    x: f32,
    y: f32,
    z: f32,
}

impl Vec3 {
    const fn new(x: f32, y: f32, z: f32) -> Self {
        Self { x, y, z }
    }
    fn dot(self, o: Self) -> f32 {
        self.x * o.x + self.y * o.y + self.z * o.z
    }
    fn cross(self, o: Self) -> Self {
        Self::new(
            self.y * o.z - self.z * o.y,
            self.z * o.x - self.x * o.z,
            self.x * o.y - self.y * o.x,
        )
    }
    fn add(self, o: Self) -> Self {
        Self::new(self.x + o.x, self.y + o.y, self.z + o.z)
    }
    fn sub(self, o: Self) -> Self {
        Self::new(self.x - o.x, self.y - o.y, self.z - o.z)
    }
    fn scale(self, s: f32) -> Self {
        Self::new(self.x * s, self.y * s, self.z * s)
    }
    fn normalized(self) -> Self {
        self.scale(1.0 / self.dot(self).sqrt())
    }
}

/// The object of one image: its shape, size and bounding sphere.
#[derive(Debug, Clone, Copy)]
struct Object {
    shape: Shapes3DShape,
    /// Size unit: `OBJECT_UNIT` · scale.
    size: f32,
    bound_centre: Vec3,
    bound_radius_sq: f32,
}

impl Object {
    fn new(shape: Shapes3DShape, scale: f32) -> Self {
        let size = OBJECT_UNIT * scale;
        // Centre and radius of a sphere enclosing each shape (see `hit` for the dimensions).
        let (centre_y, radius) = match shape {
            Shapes3DShape::Cube => (0.8 * size, 0.8 * size * 3f32.sqrt()),
            Shapes3DShape::Cylinder => (0.9 * size, (0.81f32 + 0.81).sqrt() * size),
            Shapes3DShape::Sphere => (size, size),
            Shapes3DShape::Capsule => (0.6 * size, 1.6 * size),
        };
        Self {
            shape,
            size,
            bound_centre: Vec3::new(0.0, centre_y, 0.0),
            bound_radius_sq: radius * radius * 1.0001,
        }
    }

    /// Nearest hit `t > EPSILON` of the ray o + t·d (d unit length) with the object, and the
    /// outward normal there.
    fn hit(&self, o: Vec3, d: Vec3) -> Option<(f32, Vec3)> {
        // Bounding-sphere rejection keeps the per-pixel cost low for the many rays that miss.
        let oc = o.sub(self.bound_centre);
        let b = oc.dot(d);
        let c = oc.dot(oc) - self.bound_radius_sq;
        if c > 0.0 && (b > 0.0 || b * b < c) {
            return None;
        }
        let s = self.size;
        match self.shape {
            Shapes3DShape::Sphere => hit_sphere(o, d, Vec3::new(0.0, s, 0.0), s),
            Shapes3DShape::Cube => hit_box(o, d, Vec3::new(0.8 * s, 0.8 * s, 0.8 * s), 0.8 * s),
            Shapes3DShape::Cylinder => hit_cylinder(o, d, 0.9 * s, 1.8 * s),
            Shapes3DShape::Capsule => hit_capsule(o, d, s, 0.6 * s),
        }
    }
}

/// Ray–sphere intersection.
fn hit_sphere(o: Vec3, d: Vec3, centre: Vec3, radius: f32) -> Option<(f32, Vec3)> {
    let oc = o.sub(centre);
    let b = oc.dot(d);
    let c = oc.dot(oc) - radius * radius;
    let disc = b * b - c;
    if disc < 0.0 {
        return None;
    }
    let root = disc.sqrt();
    let t = if -b - root > EPSILON {
        -b - root
    } else {
        -b + root
    };
    (t > EPSILON).then(|| (t, o.add(d.scale(t)).sub(centre).scale(1.0 / radius)))
}

/// Ray–axis-aligned-box intersection (slab method): half sizes `half_extent`, centre at
/// (0, `centre_y`, 0).
fn hit_box(o: Vec3, d: Vec3, half_extent: Vec3, centre_y: f32) -> Option<(f32, Vec3)> {
    let oc = Vec3::new(o.x, o.y - centre_y, o.z);
    let mut t_near = f32::NEG_INFINITY;
    let mut t_far = f32::INFINITY;
    let mut normal = Vec3::new(0.0, 0.0, 0.0);
    for (axis, (oa, da, ha)) in [
        (oc.x, d.x, half_extent.x),
        (oc.y, d.y, half_extent.y),
        (oc.z, d.z, half_extent.z),
    ]
    .into_iter()
    .enumerate()
    {
        if da.abs() < 1e-12 {
            if oa.abs() > ha {
                return None;
            }
            continue;
        }
        let t1 = (-ha - oa) / da;
        let t2 = (ha - oa) / da;
        let (lo, hi) = if t1 < t2 { (t1, t2) } else { (t2, t1) };
        if lo > t_near {
            t_near = lo;
            // The entry face faces against the ray.
            let sign = if da > 0.0 { -1.0 } else { 1.0 };
            normal = match axis {
                0 => Vec3::new(sign, 0.0, 0.0),
                1 => Vec3::new(0.0, sign, 0.0),
                _ => Vec3::new(0.0, 0.0, sign),
            };
        }
        t_far = t_far.min(hi);
    }
    (t_near <= t_far && t_near > EPSILON).then_some((t_near, normal))
}

/// Ray–upright-cylinder intersection: radius `radius`, from the floor to height `height`,
/// closed by a flat top.
fn hit_cylinder(o: Vec3, d: Vec3, radius: f32, height: f32) -> Option<(f32, Vec3)> {
    let mut best: Option<(f32, Vec3)> = None;
    let a = d.x * d.x + d.z * d.z;
    if a > 1e-12 {
        let b = o.x * d.x + o.z * d.z;
        let c = o.x * o.x + o.z * o.z - radius * radius;
        let disc = b * b - a * c;
        if disc >= 0.0 {
            let t = (-b - disc.sqrt()) / a;
            let y = o.y + t * d.y;
            if t > EPSILON && (0.0..=height).contains(&y) {
                let p = o.add(d.scale(t));
                best = Some((t, Vec3::new(p.x / radius, 0.0, p.z / radius)));
            }
        }
    }
    if d.y.abs() > 1e-12 {
        let t = (height - o.y) / d.y;
        let p = o.add(d.scale(t));
        if t > EPSILON && p.x * p.x + p.z * p.z <= radius * radius && best.is_none_or(|b| t < b.0) {
            best = Some((t, Vec3::new(0.0, 1.0, 0.0)));
        }
    }
    best
}

/// Ray–capsule intersection: the capsule of radius `radius` around the segment from
/// (−`half_length`, `radius`, 0) to (`half_length`, `radius`, 0), i.e. lying on the floor along x.
fn hit_capsule(o: Vec3, d: Vec3, half_length: f32, radius: f32) -> Option<(f32, Vec3)> {
    let mut best: Option<(f32, Vec3)> = None;
    // Side: the infinite cylinder (y − r)² + z² = r², kept where |x| ≤ half_length.
    let (oy, oz) = (o.y - radius, o.z);
    let a = d.y * d.y + d.z * d.z;
    if a > 1e-12 {
        let b = oy * d.y + oz * d.z;
        let c = oy * oy + oz * oz - radius * radius;
        let disc = b * b - a * c;
        if disc >= 0.0 {
            let t = (-b - disc.sqrt()) / a;
            let x = o.x + t * d.x;
            if t > EPSILON && x.abs() <= half_length {
                let p = o.add(d.scale(t));
                best = Some((t, Vec3::new(0.0, (p.y - radius) / radius, p.z / radius)));
            }
        }
    }
    for end in [-half_length, half_length] {
        if let Some(hit) = hit_sphere(o, d, Vec3::new(end, radius, 0.0), radius)
            && best.is_none_or(|b| hit.0 < b.0)
        {
            best = Some(hit);
        }
    }
    best
}

/// HSV → RGB at full saturation and value (the colours of the real dataset's hue factors).
fn hue_to_rgb(hue: f32) -> Vec3 {
    let h = hue.rem_euclid(1.0) * 6.0;
    let sector = h.floor();
    let f = h - sector;
    let (q, t) = (1.0 - f, f);
    match sector as u32 {
        0 => Vec3::new(1.0, t, 0.0),
        1 => Vec3::new(q, 1.0, 0.0),
        2 => Vec3::new(0.0, 1.0, t),
        3 => Vec3::new(0.0, q, 1.0),
        4 => Vec3::new(t, 0.0, 1.0),
        _ => Vec3::new(1.0, 0.0, q),
    }
}

/// A pinhole camera: position and the image plane's axes scaled by the field of view.
#[derive(Debug, Clone, Copy)]
struct Camera {
    position: Vec3,
    forward: Vec3,
    right: Vec3,
    up: Vec3,
}

impl Camera {
    /// The camera for a scene rotated by `orientation_deg` about the vertical axis.
    fn new(orientation_deg: f64) -> Self {
        let azimuth = (BASE_AZIMUTH_DEG + orientation_deg).to_radians();
        // Trigonometry in f64 rounded once to f32 so every libm gives the same camera.
        let (sin_az, cos_az) = azimuth.sin_cos();
        let (sin_el, cos_el) = CAMERA_ELEVATION.sin_cos();
        let target = Vec3::new(0.0, CAMERA_TARGET_HEIGHT, 0.0);
        let back = Vec3::new(
            (sin_az * cos_el) as f32,
            sin_el as f32,
            (cos_az * cos_el) as f32,
        );
        let position = target.add(back.scale(CAMERA_DISTANCE));
        let forward = back.scale(-1.0);
        let right = forward.cross(Vec3::new(0.0, 1.0, 0.0)).normalized();
        let up = right.cross(forward);
        Self {
            position,
            forward,
            right: right.scale(TAN_HALF_FOV),
            up: up.scale(TAN_HALF_FOV),
        }
    }

    /// Unit direction of the ray through the image point (y, x), in pixels from the top left.
    fn ray(&self, y: f32, x: f32) -> Vec3 {
        let x = x / SIDE as f32 * 2.0 - 1.0;
        let y = 1.0 - y / SIDE as f32 * 2.0;
        self.forward
            .add(self.right.scale(x))
            .add(self.up.scale(y))
            .normalized()
    }
}

/// Procedural 3DShapes: 64×64 RGB images of an object in a room corner.
///
/// Factors (names and grids of the real `3dshapes.h5`, last factor fastest): `floor_hue`,
/// `wall_hue`, `object_hue` 10 each with HSV hue 0.0, 0.1, …, 0.9 (full saturation and value),
/// `scale` 8 = linspace(0.75, 1.25, 8), `shape` 4 (cube, cylinder, sphere, capsule), `orientation`
/// 15 = linspace(−30°, 30°, 15); 480,000 states.
#[derive(Debug)]
pub struct Shapes3D {
    space: FactorSpace,
    cache: Option<RenderCache>,
}

impl Default for Shapes3D {
    fn default() -> Self {
        Self::new()
    }
}

impl Shapes3D {
    /// Factor names in storage order, as in the real file's label columns.
    pub const FACTOR_NAMES: [&'static str; 6] = [
        "floor_hue",
        "wall_hue",
        "object_hue",
        "scale",
        "shape",
        "orientation",
    ];
    /// Number of values of each factor.
    pub const FACTOR_SIZES: [usize; 6] = [10, 10, 10, 8, 4, 15];

    /// This dataset's entry in the procedural registry ([`crate::registry::PROCEDURAL`]).
    pub const REGISTRATION: ProceduralDataset = ProceduralDataset {
        name: "shapes3d",
        description: "procedural 3DShapes look-alike (Burgess & Kim 2018): a ray-traced object in a room corner, 64x64 RGB; exact factor grid of the real file",
        build: || Box::new(Shapes3D::new()),
    };

    /// The dataset without a cache: every image is rendered when asked for.
    pub fn new() -> Self {
        let names = Self::FACTOR_NAMES.iter().map(|s| s.to_string()).collect();
        let space = FactorSpace::new(names, Self::FACTOR_SIZES.to_vec())
            .unwrap_or_else(|e| unreachable!("the 3DShapes factor grid is valid: {e}"));
        Self { space, cache: None }
    }

    /// Keeps up to `max_images` rendered images in memory (12 KiB each, one `u8` per value).
    pub fn with_cache(mut self, max_images: usize) -> Self {
        self.cache = Some(RenderCache::new(max_images));
        self
    }

    /// Number of images currently cached (0 without a cache).
    pub fn cached_images(&self) -> usize {
        self.cache.as_ref().map_or(0, RenderCache::len)
    }

    /// The real file's label values of factor `factor`: hues k/10, scale linspace(0.75, 1.25, 8),
    /// shape 0, 1, 2, 3, orientation linspace(−30, 30, 15) in degrees.
    pub fn factor_values(&self, factor: usize) -> Result<Vec<f64>, DataError> {
        check_factor_index(&self.space, factor)?;
        Ok(match factor {
            0..=2 => (0..10).map(|k| k as f64 / 10.0).collect(),
            3 => linspace(0.75, 1.25, 8),
            4 => vec![0.0, 1.0, 2.0, 3.0],
            _ => linspace(-30.0, 30.0, 15),
        })
    }

    /// Renders one image (CHW `u8`) for a validated factor vector.
    ///
    /// Anti-aliasing is adaptive: every pixel is first shaded through its centre; pixels whose
    /// surface (floor, wall, object, in or out of shadow) differs from a 4-neighbour's are then
    /// re-shaded as the mean of 4 rotated-grid samples, which smooths silhouettes and shadow
    /// edges at a fraction of the cost of supersampling everything.
    fn render(&self, factors: &[usize], out: &mut [u8]) {
        let scene = Scene {
            camera: Camera::new(linspace_at(-30.0, 30.0, 15, factors[5])),
            object: Object::new(
                Shapes3DShape::ALL[factors[4]],
                linspace_at(0.75, 1.25, 8, factors[3]) as f32,
            ),
            floor_colour: hue_to_rgb(factors[0] as f32 / 10.0),
            wall_colour: hue_to_rgb(factors[1] as f32 / 10.0),
            object_colour: hue_to_rgb(factors[2] as f32 / 10.0),
        };
        let plane = SIDE * SIDE;
        let mut colours = Vec::with_capacity(plane);
        let mut surfaces = Vec::with_capacity(plane);
        for row in 0..SIDE {
            for col in 0..SIDE {
                let (colour, surface) = scene.shade(row as f32 + 0.5, col as f32 + 0.5);
                colours.push(colour);
                surfaces.push(surface);
            }
        }
        for row in 0..SIDE {
            for col in 0..SIDE {
                let i = row * SIDE + col;
                let surface = surfaces[i];
                let edge = (row > 0 && surfaces[i - SIDE] != surface)
                    || (row + 1 < SIDE && surfaces[i + SIDE] != surface)
                    || (col > 0 && surfaces[i - 1] != surface)
                    || (col + 1 < SIDE && surfaces[i + 1] != surface);
                let colour = if edge {
                    SUBSAMPLES
                        .iter()
                        .map(|&(dy, dx)| scene.shade(row as f32 + dy, col as f32 + dx).0)
                        .fold(Vec3::new(0.0, 0.0, 0.0), Vec3::add)
                        .scale(1.0 / SUBSAMPLES.len() as f32)
                } else {
                    colours[i]
                };
                out[i] = to_u8(colour.x);
                out[plane + i] = to_u8(colour.y);
                out[2 * plane + i] = to_u8(colour.z);
            }
        }
    }
}

/// Offsets (row, column) inside a pixel of the 4 rotated-grid anti-aliasing samples.
const SUBSAMPLES: [(f32, f32); 4] = [
    (0.125, 0.625),
    (0.375, 0.125),
    (0.625, 0.875),
    (0.875, 0.375),
];

/// Which surface a ray ends on (the anti-aliasing pass compares these between neighbours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Surface {
    Floor { shadowed: bool },
    WallX { shadowed: bool },
    WallZ { shadowed: bool },
    Object,
    Nothing,
}

/// Everything one image depends on.
#[derive(Debug, Clone, Copy)]
struct Scene {
    camera: Camera,
    object: Object,
    floor_colour: Vec3,
    wall_colour: Vec3,
    object_colour: Vec3,
}

impl Scene {
    /// Colour seen through the image point (y, x) (pixel units, y down): the nearest of floor,
    /// walls and object, Lambert-lit by the point light with an ambient term, darkened where the
    /// object blocks the light.
    fn shade(&self, y: f32, x: f32) -> (Vec3, Surface) {
        let o = self.camera.position;
        let d = self.camera.ray(y, x);
        let mut t = f32::INFINITY;
        let mut normal = Vec3::new(0.0, 1.0, 0.0);
        let mut kind = Surface::Nothing;
        if d.y < 0.0 {
            t = -o.y / d.y;
            kind = Surface::Floor { shadowed: false };
        }
        if d.x < 0.0 {
            let tw = (-WALL_DISTANCE - o.x) / d.x;
            if tw < t {
                (t, normal, kind) = (
                    tw,
                    Vec3::new(1.0, 0.0, 0.0),
                    Surface::WallX { shadowed: false },
                );
            }
        }
        if d.z < 0.0 {
            let tw = (-WALL_DISTANCE - o.z) / d.z;
            if tw < t {
                (t, normal, kind) = (
                    tw,
                    Vec3::new(0.0, 0.0, 1.0),
                    Surface::WallZ { shadowed: false },
                );
            }
        }
        if let Some((to, n)) = self.object.hit(o, d)
            && to < t
        {
            (t, normal, kind) = (to, n, Surface::Object);
        }
        let albedo = match kind {
            Surface::Nothing => return (self.wall_colour.scale(AMBIENT), kind),
            Surface::Object => self.object_colour,
            Surface::Floor { .. } => self.floor_colour,
            Surface::WallX { .. } | Surface::WallZ { .. } => self.wall_colour,
        };
        let point = o.add(d.scale(t));
        let to_light = LIGHT.sub(point);
        let distance = to_light.dot(to_light).sqrt();
        let l = to_light.scale(1.0 / distance);
        let mut diffuse = normal.dot(l).max(0.0);
        if kind != Surface::Object && diffuse > 0.0 {
            let start = point.add(normal.scale(EPSILON));
            if self
                .object
                .hit(start, l)
                .is_some_and(|(ts, _)| ts < distance)
            {
                diffuse = 0.0;
                kind = match kind {
                    Surface::Floor { .. } => Surface::Floor { shadowed: true },
                    Surface::WallX { .. } => Surface::WallX { shadowed: true },
                    _ => Surface::WallZ { shadowed: true },
                };
            }
        }
        (albedo.scale(AMBIENT + (1.0 - AMBIENT) * diffuse), kind)
    }
}

impl GroundTruthDataset for Shapes3D {
    fn name(&self) -> &str {
        Self::REGISTRATION.name
    }

    fn factor_space(&self) -> &FactorSpace {
        &self.space
    }

    fn observation_shape(&self) -> ObservationShape {
        ObservationShape {
            channels: 3,
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
