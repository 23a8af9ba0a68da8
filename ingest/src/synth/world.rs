//! Procedural indoor rooms and a CPU ray caster.
//!
//! World frame: metres, z up, the floor at z = 0; a room is the inside of an axis-aligned box
//! holding furniture-like oriented boxes, spheres and vertical cylinders. Surfaces carry
//! procedural textures (tiles, wood grain, value noise) and are lit by ceiling point lights
//! with shadows plus ambient light.

use spatialsv_store::datagen::SplitMix64;
use spatialsv_store::geometry::{Intrinsics, Mat4, from_rt, rotate, transform_point};

/// A surface texture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Texture {
    /// Flat colour with a little noise.
    Plain,
    /// Square tiles of the given size (m), alternating with a darker shade.
    Tiles(f64),
    /// Wood-like stripes along the object's x axis.
    Grain,
    /// Blotchy value noise of the given scale (m).
    Blotches(f64),
}

/// Surface appearance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Material {
    /// Base colour, linear 0-1.
    pub albedo: [f64; 3],
    /// Pattern.
    pub texture: Texture,
}

/// A solid.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Box rotated about z by `yaw` radians.
    Box {
        /// Centre.
        centre: [f64; 3],
        /// Half extents.
        half: [f64; 3],
        /// Rotation about z.
        yaw: f64,
    },
    /// Sphere.
    Sphere {
        /// Centre.
        centre: [f64; 3],
        /// Radius.
        radius: f64,
    },
    /// Vertical cylinder from `z0` to `z1`.
    Cylinder {
        /// Axis position (x, y).
        axis: [f64; 2],
        /// Radius.
        radius: f64,
        /// Bottom.
        z0: f64,
        /// Top.
        z1: f64,
    },
}

/// A solid with its material.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Geometry.
    pub shape: Shape,
    /// Appearance.
    pub material: Material,
}

/// A point light.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Light {
    /// Position.
    pub position: [f64; 3],
    /// Intensity.
    pub intensity: f64,
}

/// One room.
#[derive(Debug, Clone, PartialEq)]
pub struct Room {
    /// Inner size (x, y, z) of the room box, metres; the box spans [0, size].
    pub size: [f64; 3],
    /// Floor, ceiling, and the four walls' materials.
    pub floor: Material,
    /// Ceiling material.
    pub ceiling: Material,
    /// Wall materials (x = 0, x = max, y = 0, y = max).
    pub walls: [Material; 4],
    /// Furniture and other primitives.
    pub objects: Vec<Object>,
    /// Lights.
    pub lights: Vec<Light>,
    /// Seed of the texture noise.
    pub noise_seed: u64,
}

/// A ray hit.
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    /// Ray parameter.
    pub t: f64,
    /// Surface normal (unit, facing the ray).
    pub normal: [f64; 3],
    /// Material.
    pub material: Material,
    /// Point in the object's own frame, for textures.
    pub local: [f64; 3],
    /// Index into [`Room::objects`] of the object hit; `None` for the room's walls, floor and
    /// ceiling.
    pub object: Option<usize>,
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn add(a: [f64; 3], b: [f64; 3], s: f64) -> [f64; 3] {
    [a[0] + b[0] * s, a[1] + b[1] * s, a[2] + b[2] * s]
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

fn rot_z(v: [f64; 3], a: f64) -> [f64; 3] {
    let (s, c) = a.sin_cos();
    [c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]]
}

fn rand_in(rng: &mut SplitMix64, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.next_f64()
}

/// Hash-based lattice value noise in [0, 1), trilinear.
fn value_noise(p: [f64; 3], seed: u64) -> f64 {
    let h = |x: i64, y: i64, z: i64| {
        let mut r = SplitMix64::new(
            seed ^ (x as u64).wrapping_mul(0x9E37_79B9)
                ^ (y as u64).wrapping_mul(0x85EB_CA6B)
                ^ (z as u64).wrapping_mul(0xC2B2_AE35),
        );
        r.next_f64()
    };
    let f = p.map(f64::floor);
    let t = [p[0] - f[0], p[1] - f[1], p[2] - f[2]].map(|v| v * v * (3.0 - 2.0 * v));
    let (x, y, z) = (f[0] as i64, f[1] as i64, f[2] as i64);
    let mut acc = 0.0;
    for dz in 0..2 {
        for dy in 0..2 {
            for dx in 0..2 {
                let w = (if dx == 1 { t[0] } else { 1.0 - t[0] })
                    * (if dy == 1 { t[1] } else { 1.0 - t[1] })
                    * (if dz == 1 { t[2] } else { 1.0 - t[2] });
                acc += w * h(x + dx, y + dy, z + dz);
            }
        }
    }
    acc
}

impl Material {
    fn colour(&self, local: [f64; 3], seed: u64) -> [f64; 3] {
        let fine = value_noise(local.map(|v| v * 20.0), seed);
        let shade = match self.texture {
            Texture::Plain => 0.92 + 0.16 * fine,
            Texture::Tiles(s) => {
                let (i, j) = ((local[0] / s).floor() as i64, (local[1] / s).floor() as i64);
                let grout =
                    ((local[0] / s).fract().abs() < 0.04) || ((local[1] / s).fract().abs() < 0.04);
                let base = if grout {
                    0.55
                } else if (i + j).rem_euclid(2) == 0 {
                    1.0
                } else {
                    0.72
                };
                base * (0.9 + 0.2 * fine)
            }
            Texture::Grain => {
                let g = value_noise([local[0] * 1.5, local[1] * 25.0, local[2] * 25.0], seed ^ 7);
                0.75 + 0.35 * (g * 12.0).sin().abs() * 0.8 + 0.1 * fine
            }
            Texture::Blotches(s) => {
                0.65 + 0.6 * value_noise(local.map(|v| v / s), seed ^ 11) + 0.05 * fine
            }
        };
        self.albedo.map(|c| (c * shade).clamp(0.0, 1.0))
    }
}

impl Shape {
    /// Nearest hit with t in (t_min, t_max).
    fn intersect(
        &self,
        o: [f64; 3],
        d: [f64; 3],
        t_min: f64,
        t_max: f64,
    ) -> Option<(f64, [f64; 3], [f64; 3])> {
        match *self {
            Shape::Box { centre, half, yaw } => {
                let lo = rot_z(sub(o, centre), -yaw);
                let ld = rot_z(d, -yaw);
                let (mut t0, mut t1, mut axis, mut sign) = (t_min, t_max, 0, 1.0);
                for a in 0..3 {
                    if ld[a].abs() < 1e-12 {
                        if lo[a].abs() > half[a] {
                            return None;
                        }
                        continue;
                    }
                    let inv = 1.0 / ld[a];
                    let (mut ta, mut tb) = ((-half[a] - lo[a]) * inv, (half[a] - lo[a]) * inv);
                    let mut s = -1.0;
                    if ta > tb {
                        std::mem::swap(&mut ta, &mut tb);
                        s = 1.0;
                    }
                    if ta > t0 {
                        t0 = ta;
                        axis = a;
                        sign = s;
                    }
                    t1 = t1.min(tb);
                    if t0 > t1 {
                        return None;
                    }
                }
                if t0 <= t_min {
                    return None;
                }
                let mut n = [0.0; 3];
                n[axis] = sign;
                Some((t0, rot_z(n, yaw), add(lo, ld, t0)))
            }
            Shape::Sphere { centre, radius } => {
                let oc = sub(o, centre);
                let (a, b, c) = (dot(d, d), dot(oc, d), dot(oc, oc) - radius * radius);
                let disc = b * b - a * c;
                if disc < 0.0 {
                    return None;
                }
                let t = (-b - disc.sqrt()) / a;
                if t <= t_min || t >= t_max {
                    return None;
                }
                let p = add(o, d, t);
                let n = sub(p, centre).map(|v| v / radius);
                Some((t, n, sub(p, centre)))
            }
            Shape::Cylinder {
                axis,
                radius,
                z0,
                z1,
            } => {
                let mut best: Option<(f64, [f64; 3], [f64; 3])> = None;
                let (ox, oy) = (o[0] - axis[0], o[1] - axis[1]);
                let a = d[0] * d[0] + d[1] * d[1];
                if a > 1e-12 {
                    let b = ox * d[0] + oy * d[1];
                    let c = ox * ox + oy * oy - radius * radius;
                    let disc = b * b - a * c;
                    if disc >= 0.0 {
                        let t = (-b - disc.sqrt()) / a;
                        let z = o[2] + t * d[2];
                        if t > t_min && t < t_max && z >= z0 && z <= z1 {
                            let n = [(ox + t * d[0]) / radius, (oy + t * d[1]) / radius, 0.0];
                            best = Some((t, n, [ox + t * d[0], oy + t * d[1], z]));
                        }
                    }
                }
                for (zc, nz) in [(z1, 1.0), (z0, -1.0)] {
                    if d[2].abs() > 1e-12 {
                        let t = (zc - o[2]) / d[2];
                        let (x, y) = (ox + t * d[0], oy + t * d[1]);
                        if t > t_min
                            && t < t_max
                            && x * x + y * y <= radius * radius
                            && best.is_none_or(|b| t < b.0)
                        {
                            best = Some((t, [0.0, 0.0, nz], [x, y, zc]));
                        }
                    }
                }
                best
            }
        }
    }

    /// Unsigned distance from `p` to the surface.
    fn surface_distance(&self, p: [f64; 3]) -> f64 {
        match *self {
            Shape::Box { centre, half, yaw } => {
                let l = rot_z(sub(p, centre), -yaw);
                let q = [
                    l[0].abs() - half[0],
                    l[1].abs() - half[1],
                    l[2].abs() - half[2],
                ];
                let outside = norm(q.map(|v| v.max(0.0)));
                let inside = q[0].max(q[1]).max(q[2]).min(0.0);
                (outside + inside).abs()
            }
            Shape::Sphere { centre, radius } => (norm(sub(p, centre)) - radius).abs(),
            Shape::Cylinder {
                axis,
                radius,
                z0,
                z1,
            } => {
                let r = ((p[0] - axis[0]).powi(2) + (p[1] - axis[1]).powi(2)).sqrt() - radius;
                let h = (p[2] - (z0 + z1) / 2.0).abs() - (z1 - z0) / 2.0;
                let outside = (r.max(0.0).powi(2) + h.max(0.0).powi(2)).sqrt();
                (outside + r.max(h).min(0.0)).abs()
            }
        }
    }
}

impl Room {
    /// A random furnished room.
    pub fn generate(rng: &mut SplitMix64) -> Room {
        let size = [
            rand_in(rng, 3.5, 6.0),
            rand_in(rng, 3.0, 5.5),
            rand_in(rng, 2.4, 3.0),
        ];
        fn palette(rng: &mut SplitMix64, lo: f64) -> [f64; 3] {
            [
                rand_in(rng, lo, 0.85),
                rand_in(rng, lo, 0.85),
                rand_in(rng, lo, 0.85),
            ]
        }
        let floor = Material {
            albedo: palette(rng, 0.3),
            texture: Texture::Tiles(rand_in(rng, 0.3, 0.6)),
        };
        let ceiling = Material {
            albedo: [0.92, 0.92, 0.9],
            texture: Texture::Plain,
        };
        let walls = [0, 1, 2, 3].map(|i| Material {
            albedo: palette(rng, 0.3),
            texture: if i % 2 == 0 {
                Texture::Blotches(0.4)
            } else {
                Texture::Plain
            },
        });
        let mut objects = Vec::new();
        // Furniture along the walls, leaving the middle free for the camera.
        let n = 4 + (rng.next_u64() % 4) as usize;
        for k in 0..n {
            let wall = k % 4;
            let half = [
                rand_in(rng, 0.2, 0.6),
                rand_in(rng, 0.2, 0.45),
                rand_in(rng, 0.2, 0.9),
            ];
            let along = rand_in(rng, 0.2, 0.8);
            let (x, y) = match wall {
                0 => (half[1] + 0.05, along * size[1]),
                1 => (size[0] - half[1] - 0.05, along * size[1]),
                2 => (along * size[0], half[1] + 0.05),
                _ => (along * size[0], size[1] - half[1] - 0.05),
            };
            let yaw = if wall < 2 {
                std::f64::consts::FRAC_PI_2
            } else {
                0.0
            } + rand_in(rng, -0.15, 0.15);
            let texture = if rng.next_f64() < 0.5 {
                Texture::Grain
            } else {
                Texture::Blotches(0.15)
            };
            objects.push(Object {
                shape: Shape::Box {
                    centre: [x, y, half[2]],
                    half,
                    yaw,
                },
                material: Material {
                    albedo: palette(rng, 0.2),
                    texture,
                },
            });
        }
        // A couple of round things.
        for _ in 0..2 {
            let c = [
                rand_in(rng, 0.6, size[0] - 0.6),
                rand_in(rng, 0.6, size[1] - 0.6),
            ];
            if rng.next_f64() < 0.5 {
                let r = rand_in(rng, 0.12, 0.3);
                objects.push(Object {
                    shape: Shape::Sphere {
                        centre: [c[0], c[1], r],
                        radius: r,
                    },
                    material: Material {
                        albedo: palette(rng, 0.2),
                        texture: Texture::Tiles(0.08),
                    },
                });
            } else {
                objects.push(Object {
                    shape: Shape::Cylinder {
                        axis: c,
                        radius: rand_in(rng, 0.08, 0.2),
                        z0: 0.0,
                        z1: rand_in(rng, 0.4, 1.2),
                    },
                    material: Material {
                        albedo: palette(rng, 0.2),
                        texture: Texture::Blotches(0.1),
                    },
                });
            }
        }
        let lights = vec![
            Light {
                position: [size[0] * 0.3, size[1] * 0.4, size[2] - 0.15],
                intensity: rand_in(rng, 0.9, 1.4),
            },
            Light {
                position: [size[0] * 0.7, size[1] * 0.6, size[2] - 0.15],
                intensity: rand_in(rng, 0.4, 1.0),
            },
        ];
        Room {
            size,
            floor,
            ceiling,
            walls,
            objects,
            lights,
            noise_seed: rng.next_u64(),
        }
    }

    /// The room's objects as annotations: `object_id` = index + 1 (as in the object-id buffer
    /// of [`render`]), a category from the shape (boxes by height: `cabinet` from 1.3 m,
    /// `chest` from 0.8 m, else `crate`; spheres `ball`; cylinders `column`), the colour word
    /// of the base colour, a size word within the category, and the axis-aligned world box.
    /// Derived from the geometry alone: it draws no random numbers, so a seed's world is the
    /// same with or without it.
    pub fn describe(&self) -> spatialsv_store::objects::SceneObjects {
        use spatialsv_store::objects::{SceneObject, SceneObjects, colour_word, name_objects};
        let size_word = |x: f64, small: f64, large: f64| {
            if x < small {
                "small"
            } else if x > large {
                "large"
            } else {
                "medium"
            }
        };
        let mut objects: Vec<SceneObject> = self
            .objects
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let (category, size, centre, extent) = match o.shape {
                    Shape::Box { centre, half, yaw } => {
                        let (s, c) = (yaw.sin().abs(), yaw.cos().abs());
                        let height = 2.0 * half[2];
                        let category = if height >= 1.3 {
                            "cabinet"
                        } else if height >= 0.8 {
                            "chest"
                        } else {
                            "crate"
                        };
                        let footprint = 4.0 * half[0] * half[1];
                        (
                            category,
                            size_word(footprint, 0.35, 0.7),
                            centre,
                            [
                                2.0 * (c * half[0] + s * half[1]),
                                2.0 * (s * half[0] + c * half[1]),
                                height,
                            ],
                        )
                    }
                    Shape::Sphere { centre, radius } => (
                        "ball",
                        size_word(radius, 0.18, 0.24),
                        centre,
                        [2.0 * radius; 3],
                    ),
                    Shape::Cylinder {
                        axis,
                        radius,
                        z0,
                        z1,
                    } => (
                        "column",
                        size_word(z1 - z0, 0.65, 0.95),
                        [axis[0], axis[1], (z0 + z1) / 2.0],
                        [2.0 * radius, 2.0 * radius, z1 - z0],
                    ),
                };
                SceneObject {
                    object_id: i as i64 + 1,
                    name: String::new(),
                    category: category.into(),
                    colour: Some(colour_word(o.material.albedo).into()),
                    size: Some(size.into()),
                    centre,
                    extent,
                }
            })
            .collect();
        name_objects(&mut objects);
        SceneObjects {
            source: "synthetic".into(),
            objects,
        }
    }

    /// Nearest hit of the ray `o + t d` (t > 1e-6), the room's inner walls included.
    pub fn intersect(&self, o: [f64; 3], d: [f64; 3]) -> Option<Hit> {
        // Inside the room box: the exit point is the wall hit.
        let mut best: Option<Hit> = None;
        let mut t_exit = f64::INFINITY;
        let mut wall = (0, 0.0);
        for a in 0..3 {
            if d[a].abs() < 1e-12 {
                continue;
            }
            let bound = if d[a] > 0.0 { self.size[a] } else { 0.0 };
            let t = (bound - o[a]) / d[a];
            if t > 1e-6 && t < t_exit {
                t_exit = t;
                wall = (a, if d[a] > 0.0 { -1.0 } else { 1.0 });
            }
        }
        if t_exit.is_finite() {
            let p = add(o, d, t_exit);
            let mut normal = [0.0; 3];
            normal[wall.0] = wall.1;
            let (material, local) = match (wall.0, wall.1 > 0.0) {
                (2, true) => (self.floor, [p[0], p[1], 0.0]),
                (2, false) => (self.ceiling, [p[0], p[1], 0.0]),
                (0, true) => (self.walls[0], [p[1], p[2], 0.0]),
                (0, false) => (self.walls[1], [p[1], p[2], 0.0]),
                (1, true) => (self.walls[2], [p[0], p[2], 0.0]),
                _ => (self.walls[3], [p[0], p[2], 0.0]),
            };
            best = Some(Hit {
                t: t_exit,
                normal,
                material,
                local,
                object: None,
            });
        }
        for (i, obj) in self.objects.iter().enumerate() {
            let limit = best.map_or(f64::INFINITY, |b| b.t);
            if let Some((t, n, local)) = obj.shape.intersect(o, d, 1e-6, limit) {
                let n = if dot(n, d) > 0.0 { n.map(|v| -v) } else { n };
                best = Some(Hit {
                    t,
                    normal: n,
                    material: obj.material,
                    local,
                    object: Some(i),
                });
            }
        }
        best
    }

    /// Whether anything blocks the segment from `p` to `q`.
    fn occluded(&self, p: [f64; 3], q: [f64; 3]) -> bool {
        let d = sub(q, p);
        self.objects
            .iter()
            .any(|o| o.shape.intersect(p, d, 1e-4, 1.0 - 1e-4).is_some())
    }

    /// Shaded colour (0-1) of a hit seen along `d`.
    pub fn shade(&self, o: [f64; 3], d: [f64; 3], hit: &Hit) -> [f64; 3] {
        let p = add(o, d, hit.t);
        let p_off = add(p, hit.normal, 1e-4);
        let mut light = 0.12;
        for l in &self.lights {
            let to = sub(l.position, p_off);
            let dist = norm(to);
            let cos = dot(hit.normal, to) / dist;
            if cos > 0.0 && !self.occluded(p_off, l.position) {
                light += l.intensity * cos / (1.0 + 0.35 * dist * dist);
            }
        }
        hit.material
            .colour(hit.local, self.noise_seed)
            .map(|c| (c * light).clamp(0.0, 1.0))
    }

    /// Distance from `p` to the nearest surface (walls included): ~0 for points on geometry.
    pub fn surface_distance(&self, p: [f64; 3]) -> f64 {
        let walls = (0..3)
            .flat_map(|a| [p[a].abs(), (self.size[a] - p[a]).abs()])
            .fold(f64::INFINITY, f64::min);
        self.objects
            .iter()
            .map(|o| o.shape.surface_distance(p))
            .fold(walls, f64::min)
    }

    /// Whether `p` is inside free space with `margin` to every surface.
    pub fn is_free(&self, p: [f64; 3], margin: f64) -> bool {
        (0..3).all(|a| p[a] > margin && p[a] < self.size[a] - margin)
            && self.surface_distance(p) > margin
    }
}

/// A rendered view: linear RGB 0-255, z-depth in metres and the object-id buffer.
#[derive(Debug, Clone)]
pub struct View {
    /// Row-major RGB bytes.
    pub rgb: Vec<u8>,
    /// Row-major z-depth, metres (0 where nothing was hit).
    pub depth_m: Vec<f32>,
    /// Row-major object ids: `i + 1` where the pixel sees `room.objects[i]` (the `object_id`
    /// of [`Room::describe`]), 0 for walls, floor, ceiling and nothing.
    pub object_id: Vec<u16>,
}

/// Renders `room` from `world_from_camera` (OpenCV axes) with pinhole `k`.
pub fn render(room: &Room, world_from_camera: &Mat4, k: [f64; 4], width: u32, height: u32) -> View {
    use rayon::prelude::*;
    let origin = transform_point(world_from_camera, [0.0, 0.0, 0.0]);
    let k = Intrinsics::from_k(k);
    let rows: Vec<(Vec<u8>, Vec<f32>, Vec<u16>)> = (0..height)
        .into_par_iter()
        .map(|v| {
            let mut rgb = Vec::with_capacity(width as usize * 3);
            let mut depth = Vec::with_capacity(width as usize);
            let mut ids = Vec::with_capacity(width as usize);
            for u in 0..width {
                // Camera ray with z = 1, so the hit parameter t is the z-depth.
                let c = k.unproject(f64::from(u) + 0.5, f64::from(v) + 0.5, 1.0);
                let d = rotate(world_from_camera, c);
                match room.intersect(origin, d) {
                    Some(hit) => {
                        let col = room.shade(origin, d, &hit);
                        // Gamma for display.
                        rgb.extend(col.map(|c| (c.powf(1.0 / 2.2) * 255.0).round() as u8));
                        depth.push(hit.t as f32);
                        ids.push(hit.object.map_or(0, |i| i as u16 + 1));
                    }
                    None => {
                        rgb.extend([0, 0, 0]);
                        depth.push(0.0);
                        ids.push(0);
                    }
                }
            }
            (rgb, depth, ids)
        })
        .collect();
    let mut view = View {
        rgb: Vec::new(),
        depth_m: Vec::new(),
        object_id: Vec::new(),
    };
    for (rgb, d, ids) in rows {
        view.rgb.extend(rgb);
        view.depth_m.extend(d);
        view.object_id.extend(ids);
    }
    view
}

/// A smooth hand-held-like trajectory: the camera drifts around an ellipse in the middle of
/// the room at eye height, looking at a slowly wandering target, with small shake and roll.
pub fn trajectory(room: &Room, rng: &mut SplitMix64, frames: usize) -> Vec<Mat4> {
    let c = [room.size[0] / 2.0, room.size[1] / 2.0];
    let (ax, ay) = (
        room.size[0] * rand_in(rng, 0.12, 0.22),
        room.size[1] * rand_in(rng, 0.12, 0.22),
    );
    let phase = rand_in(rng, 0.0, std::f64::consts::TAU);
    let sweep = rand_in(rng, 0.5, 1.0) * std::f64::consts::PI;
    let eye = rand_in(rng, 1.2, 1.6);
    let shake: Vec<f64> = (0..6)
        .map(|_| rand_in(rng, 0.0, std::f64::consts::TAU))
        .collect();
    (0..frames)
        .map(|i| {
            let s = i as f64 / frames.max(2) as f64;
            let a = phase + sweep * s;
            let j = |k: usize, f: f64| (f * s * std::f64::consts::TAU + shake[k]).sin();
            let pos = [
                c[0] + ax * a.cos() + 0.02 * j(0, 7.0),
                c[1] + ay * a.sin() + 0.02 * j(1, 9.0),
                eye + 0.05 * (2.0 * a).sin() + 0.015 * j(2, 11.0),
            ];
            // Look across the room (through the middle, towards the far walls and furniture),
            // panning slowly.
            let look = a + std::f64::consts::PI + 0.5 * (1.3 * a).sin();
            let target = [
                pos[0] + look.cos(),
                pos[1] + look.sin(),
                pos[2] - 0.15 + 0.1 * (0.7 * a).sin(),
            ];
            let f = {
                let v = sub(target, pos);
                let n = norm(v);
                v.map(|x| x / n)
            };
            let right = {
                let v = [f[1], -f[0], 0.0]; // f x up, up = +z
                let n = norm(v);
                v.map(|x| x / n)
            };
            let down = [
                f[1] * right[2] - f[2] * right[1],
                f[2] * right[0] - f[0] * right[2],
                f[0] * right[1] - f[1] * right[0],
            ];
            let roll = 0.03 * j(3, 5.0);
            let (sr, cr) = roll.sin_cos();
            let x = [0, 1, 2].map(|k| cr * right[k] + sr * down[k]);
            let y = [0, 1, 2].map(|k| -sr * right[k] + cr * down[k]);
            // Columns: the camera's x (right), y (down) and z (forward) axes in the world.
            from_rt(&[x[0], y[0], f[0], x[1], y[1], f[1], x[2], y[2], f[2]], pos)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rays_hit_surfaces_at_their_depth() {
        let mut rng = SplitMix64::new(3);
        let room = Room::generate(&mut rng);
        let poses = trajectory(&room, &mut rng, 5);
        for p in &poses {
            spatialsv_schemas::check_pose(p).unwrap();
            assert!(
                room.is_free([p[3], p[7], p[11]], 0.1),
                "camera inside geometry"
            );
        }
        let k = [40.0, 40.0, 24.0, 18.0];
        let view = render(&room, &poses[0], k, 48, 36);
        assert!(view.depth_m.iter().all(|d| *d > 0.0));
        // The object-id buffer names the object each pixel's depth lands on (0: the room).
        let objects = room.describe().objects;
        assert_eq!(objects.len(), room.objects.len());
        assert!(view.object_id.iter().any(|i| *i > 0), "no object in view");
        for (idx, id) in view.object_id.iter().enumerate() {
            let (u, v) = ((idx % 48) as f64 + 0.5, (idx / 48) as f64 + 0.5);
            let z = f64::from(view.depth_m[idx]);
            let p = transform_point(&poses[0], Intrinsics::from_k(k).unproject(u, v, z));
            if *id > 0 {
                let o = &objects[*id as usize - 1];
                assert!(
                    (0..3).all(|a| (p[a] - o.centre[a]).abs() <= o.extent[a] / 2.0 + 1e-3),
                    "pixel {idx} of object {id} lies outside its box"
                );
                assert!(room.objects[*id as usize - 1].shape.surface_distance(p) < 1e-4);
            }
        }
        // Unprojecting any pixel's depth lands on a surface.
        for (idx, d) in view.depth_m.iter().enumerate().step_by(37) {
            let (u, v) = ((idx % 48) as f64 + 0.5, (idx / 48) as f64 + 0.5);
            let z = f64::from(*d);
            let p = transform_point(&poses[0], Intrinsics::from_k(k).unproject(u, v, z));
            assert!(
                room.surface_distance(p) < 1e-4,
                "{}",
                room.surface_distance(p)
            );
        }
    }
}
