//! The one geometry of spatialsv: rigid transforms, quaternions, angles and pinhole
//! intrinsics, used by ingestion, SQL functions, the labeller's filters, the trainer's
//! metrics and exports, and the synthetic world.
//!
//! Two forms of a pose:
//! - [`Mat4`], the stored form: 16 `f64`, a row-major 4x4 `[R t; 0 1]`, exactly as in the
//!   tables (`frames.world_from_camera`, `pseudo_labels.reference_from_camera`);
//! - [`Rigid`], the computing form on nalgebra: a rotation matrix and a translation.
//!   [`Rigid::from_row_major`] and [`Rigid::to_row_major`] are the one conversion.
//!
//! Frames are in the names: a variable `a_from_b` maps coordinates in frame `b` to frame `a`
//! (`world_from_camera` is camera-to-world), so `a_from_b.compose(&b_from_c)` is `a_from_c`.
//! Camera axes follow OpenCV (x right, y down, z forward).

use nalgebra::{Matrix3, Vector3};
use spatialsv_schemas::Invalid;

/// A row-major 4x4 matrix: the stored form of a pose.
pub type Mat4 = [f64; 16];

/// A rigid transform between two frames named by the variable holding it
/// (`world_from_camera`). Kept as a rotation matrix rather than a unit quaternion, so that
/// metrics on predicted, slightly non-orthonormal rotations measure what was predicted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rigid {
    /// Rotation block `R`.
    pub rotation: Matrix3<f64>,
    /// Translation `t` (the origin of the source frame, in the target frame).
    pub translation: Vector3<f64>,
}

impl Rigid {
    /// The identity transform.
    pub fn identity() -> Self {
        Self {
            rotation: Matrix3::identity(),
            translation: Vector3::zeros(),
        }
    }

    /// From the stored row-major 16 values (the bottom row is not read).
    pub fn from_row_major(m: &Mat4) -> Self {
        Self {
            rotation: Matrix3::new(m[0], m[1], m[2], m[4], m[5], m[6], m[8], m[9], m[10]),
            translation: Vector3::new(m[3], m[7], m[11]),
        }
    }

    /// To the stored row-major 16 values (inverse of [`Rigid::from_row_major`]).
    pub fn to_row_major(&self) -> Mat4 {
        let (r, t) = (&self.rotation, &self.translation);
        [
            r[(0, 0)],
            r[(0, 1)],
            r[(0, 2)],
            t[0],
            r[(1, 0)],
            r[(1, 1)],
            r[(1, 2)],
            t[1],
            r[(2, 0)],
            r[(2, 1)],
            r[(2, 2)],
            t[2],
            0.0,
            0.0,
            0.0,
            1.0,
        ]
    }

    /// `b_from_a` of `a_from_b`: `[R^T, -R^T t]` (exact for a rotation).
    pub fn inverse(&self) -> Self {
        let rt = self.rotation.transpose();
        Self {
            rotation: rt,
            translation: -(rt * self.translation),
        }
    }

    /// `a_from_c` of `self = a_from_b` and `b_from_c`.
    pub fn compose(&self, b_from_c: &Rigid) -> Self {
        Self {
            rotation: self.rotation * b_from_c.rotation,
            translation: self.rotation * b_from_c.translation + self.translation,
        }
    }

    /// Maps a point of the source frame into the target frame.
    pub fn apply(&self, p: &Vector3<f64>) -> Vector3<f64> {
        self.rotation * p + self.translation
    }

    /// Angle of the rotation, degrees in [0, 180].
    pub fn rotation_angle_deg(&self) -> f64 {
        rotation_angle_deg(&self.rotation)
    }

    /// Unit quaternion (w, x, y, z) of the rotation.
    pub fn quat_wxyz(&self) -> [f64; 4] {
        let r = &self.rotation;
        quat_wxyz_from_rotation(&[
            r[(0, 0)],
            r[(0, 1)],
            r[(0, 2)],
            r[(1, 0)],
            r[(1, 1)],
            r[(1, 2)],
            r[(2, 0)],
            r[(2, 1)],
            r[(2, 2)],
        ])
    }
}

/// Pinhole intrinsics in pixels of the image they belong to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Intrinsics {
    /// Focal length x.
    pub fx: f64,
    /// Focal length y.
    pub fy: f64,
    /// Principal point x.
    pub cx: f64,
    /// Principal point y.
    pub cy: f64,
}

impl Intrinsics {
    /// From `[fx, fy, cx, cy]`, the order of the tables' columns.
    pub fn from_k(k: [f64; 4]) -> Self {
        Self {
            fx: k[0],
            fy: k[1],
            cx: k[2],
            cy: k[3],
        }
    }

    /// `[fx, fy, cx, cy]`.
    pub fn k(&self) -> [f64; 4] {
        [self.fx, self.fy, self.cx, self.cy]
    }

    /// Pixel (u, v) of a camera-frame point; `None` behind or on the camera plane.
    pub fn project(&self, p: [f64; 3]) -> Option<(f64, f64)> {
        (p[2] > 1e-9).then(|| {
            (
                self.fx * p[0] / p[2] + self.cx,
                self.fy * p[1] / p[2] + self.cy,
            )
        })
    }

    /// The camera-frame point at pixel (u, v) with z-depth `z`.
    pub fn unproject(&self, u: f64, v: f64, z: f64) -> [f64; 3] {
        [(u - self.cx) / self.fx * z, (v - self.cy) / self.fy * z, z]
    }
}

/// Angle of a rotation matrix, degrees in [0, 180]: `acos((trace - 1) / 2)`, clamped against
/// rounding.
pub fn rotation_angle_deg(r: &Matrix3<f64>) -> f64 {
    ((r.trace() - 1.0) / 2.0)
        .clamp(-1.0, 1.0)
        .acos()
        .to_degrees()
}

/// Angle of the relative rotation `R_a^T R_b` between two stored poses, degrees.
pub fn relative_rotation_deg(a: &Mat4, b: &Mat4) -> f64 {
    let (ra, rb) = (Rigid::from_row_major(a), Rigid::from_row_major(b));
    rotation_angle_deg(&(ra.rotation.transpose() * rb.rotation))
}

/// Angle between two vectors, degrees in [0, 180]; `None` when either is shorter than
/// `min_norm` (a zero vector has no direction: the caller decides what that means).
pub fn vector_angle_deg(a: &Vector3<f64>, b: &Vector3<f64>, min_norm: f64) -> Option<f64> {
    let (na, nb) = (a.norm(), b.norm());
    if !(na >= min_norm && nb >= min_norm && na > 0.0 && nb > 0.0) {
        return None;
    }
    Some((a.dot(b) / (na * nb)).clamp(-1.0, 1.0).acos().to_degrees())
}

/// The stored pose of a rotation by `deg` degrees about `axis` (right-handed; need not be
/// unit length) followed by the translation `t`: `[R(axis, deg) t; 0 1]`.
pub fn from_axis_angle_deg(axis: [f64; 3], deg: f64, t: [f64; 3]) -> Mat4 {
    let axis = nalgebra::Unit::new_normalize(Vector3::from(axis));
    let r = nalgebra::Rotation3::from_axis_angle(&axis, deg.to_radians());
    Rigid {
        rotation: *r.matrix(),
        translation: Vector3::from(t),
    }
    .to_row_major()
}

/// Translation of a stored pose.
pub fn translation(m: &Mat4) -> Vector3<f64> {
    Vector3::new(m[3], m[7], m[11])
}

/// Optical axis (camera +z) of a stored camera-to-world pose, in world coordinates.
pub fn optical_axis(m: &Mat4) -> Vector3<f64> {
    Vector3::new(m[2], m[6], m[10])
}

/// The identity.
pub const IDENTITY: Mat4 = [
    1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0,
];

/// `a * b`.
pub fn mul(a: &Mat4, b: &Mat4) -> Mat4 {
    let mut out = [0.0; 16];
    for i in 0..4 {
        for j in 0..4 {
            out[i * 4 + j] = (0..4).map(|k| a[i * 4 + k] * b[k * 4 + j]).sum();
        }
    }
    out
}

/// Inverse of a rigid transform `[R t; 0 1]`: `[R^T, -R^T t; 0 1]`.
pub fn invert_rigid(m: &Mat4) -> Mat4 {
    let r = |i: usize, j: usize| m[i * 4 + j];
    let t = [m[3], m[7], m[11]];
    let mut out = IDENTITY;
    for i in 0..3 {
        for j in 0..3 {
            out[i * 4 + j] = r(j, i);
        }
        out[i * 4 + 3] = -(0..3).map(|k| r(k, i) * t[k]).sum::<f64>();
    }
    out
}

/// Applies `m` to a point.
pub fn transform_point(m: &Mat4, p: [f64; 3]) -> [f64; 3] {
    let mut out = [0.0; 3];
    for (i, o) in out.iter_mut().enumerate() {
        *o = m[i * 4] * p[0] + m[i * 4 + 1] * p[1] + m[i * 4 + 2] * p[2] + m[i * 4 + 3];
    }
    out
}

/// Applies the rotation block of `m` to a direction (no translation).
pub fn rotate(m: &Mat4, v: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|r| m[r * 4] * v[0] + m[r * 4 + 1] * v[1] + m[r * 4 + 2] * v[2])
}

/// Rotation matrix (row-major 3x3) of a unit quaternion given scalar first. The quaternion is
/// normalised first; `None` if it has zero or non-finite norm.
pub fn rotation_from_quat_wxyz(w: f64, x: f64, y: f64, z: f64) -> Option<[f64; 9]> {
    let n = (w * w + x * x + y * y + z * z).sqrt();
    if !(n.is_finite() && n > 1e-12) {
        return None;
    }
    let (w, x, y, z) = (w / n, x / n, y / n, z / n);
    Some([
        1.0 - 2.0 * (y * y + z * z),
        2.0 * (x * y - w * z),
        2.0 * (x * z + w * y),
        2.0 * (x * y + w * z),
        1.0 - 2.0 * (x * x + z * z),
        2.0 * (y * z - w * x),
        2.0 * (x * z - w * y),
        2.0 * (y * z + w * x),
        1.0 - 2.0 * (x * x + y * y),
    ])
}

/// Unit quaternion (w, x, y, z) of a rotation matrix (row-major 3x3).
pub fn quat_wxyz_from_rotation(r: &[f64; 9]) -> [f64; 4] {
    let m = |i: usize, j: usize| r[i * 3 + j];
    let trace = m(0, 0) + m(1, 1) + m(2, 2);
    let q = if trace > 0.0 {
        let s = (trace + 1.0).sqrt() * 2.0;
        [
            0.25 * s,
            (m(2, 1) - m(1, 2)) / s,
            (m(0, 2) - m(2, 0)) / s,
            (m(1, 0) - m(0, 1)) / s,
        ]
    } else if m(0, 0) > m(1, 1) && m(0, 0) > m(2, 2) {
        let s = (1.0 + m(0, 0) - m(1, 1) - m(2, 2)).sqrt() * 2.0;
        [
            (m(2, 1) - m(1, 2)) / s,
            0.25 * s,
            (m(0, 1) + m(1, 0)) / s,
            (m(0, 2) + m(2, 0)) / s,
        ]
    } else if m(1, 1) > m(2, 2) {
        let s = (1.0 + m(1, 1) - m(0, 0) - m(2, 2)).sqrt() * 2.0;
        [
            (m(0, 2) - m(2, 0)) / s,
            (m(0, 1) + m(1, 0)) / s,
            0.25 * s,
            (m(1, 2) + m(2, 1)) / s,
        ]
    } else {
        let s = (1.0 + m(2, 2) - m(0, 0) - m(1, 1)).sqrt() * 2.0;
        [
            (m(1, 0) - m(0, 1)) / s,
            (m(0, 2) + m(2, 0)) / s,
            (m(1, 2) + m(2, 1)) / s,
            0.25 * s,
        ]
    };
    let n = q.iter().map(|v| v * v).sum::<f64>().sqrt();
    q.map(|v| v / n)
}

/// `[R t; 0 1]` from a row-major 3x3 rotation and a translation.
pub fn from_rt(r: &[f64; 9], t: [f64; 3]) -> Mat4 {
    [
        r[0], r[1], r[2], t[0], r[3], r[4], r[5], t[1], r[6], r[7], r[8], t[2], 0.0, 0.0, 0.0, 1.0,
    ]
}

/// The rotation block of `m`.
pub fn rotation(m: &Mat4) -> [f64; 9] {
    [m[0], m[1], m[2], m[4], m[5], m[6], m[8], m[9], m[10]]
}

/// Converts a camera-to-world pose in OpenGL camera axes (x right, y up, looking down -z;
/// nerfstudio, Blender) to OpenCV axes (x right, y down, looking down +z): flip y and z.
pub fn opengl_to_opencv(world_from_camera_gl: &Mat4) -> Mat4 {
    const FLIP: Mat4 = [
        1.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0,
    ];
    mul(world_from_camera_gl, &FLIP)
}

/// Spherical interpolation between unit quaternions (w, x, y, z) at `t` in [0, 1].
pub fn slerp(a: [f64; 4], b: [f64; 4], t: f64) -> [f64; 4] {
    let mut b = b;
    let mut dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    if dot < 0.0 {
        b = b.map(|v| -v);
        dot = -dot;
    }
    if dot > 0.9995 {
        let q: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x + t * (y - x)).collect();
        let n = q.iter().map(|v| v * v).sum::<f64>().sqrt();
        return [q[0] / n, q[1] / n, q[2] / n, q[3] / n];
    }
    let theta = dot.clamp(-1.0, 1.0).acos();
    let (sa, sb) = (
        ((1.0 - t) * theta).sin() / theta.sin(),
        (t * theta).sin() / theta.sin(),
    );
    [
        sa * a[0] + sb * b[0],
        sa * a[1] + sb * b[1],
        sa * a[2] + sb * b[2],
        sa * a[3] + sb * b[3],
    ]
}

/// Parses whitespace-separated numbers of a 4x4 matrix text file (ScanNet, 7-Scenes poses and
/// intrinsics). Accepts `inf`, `-inf` and `nan` as numbers so that broken poses are reported as
/// non-finite rather than as unreadable.
pub fn parse_matrix4(text: &str) -> Result<Mat4, Invalid> {
    let values: Vec<f64> = text
        .split_whitespace()
        .map(|t| {
            t.parse::<f64>()
                .map_err(|_| format!("'{t}' is not a number"))
        })
        .collect::<Result<_, _>>()?;
    if values.len() != 16 {
        return Err(Invalid(format!(
            "expected 16 numbers (a 4x4 matrix), found {}",
            values.len()
        )));
    }
    let mut m = [0.0; 16];
    m.copy_from_slice(&values);
    Ok(m)
}

/// Writes a 4x4 matrix as text, one row per line (the inverse of [`parse_matrix4`]).
pub fn format_matrix4(m: &Mat4, decimals: usize) -> String {
    let mut out = String::new();
    for row in m.chunks(4) {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:.decimals$}")).collect();
        out.push_str(&cells.join(" "));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// A random rigid pose from a (non-degenerate) quaternion and a translation.
        fn pose() -> impl Strategy<Value = Mat4> {
            (
                prop::array::uniform4(-1.0f64..1.0),
                prop::array::uniform3(-50.0f64..50.0),
            )
                .prop_filter("degenerate quaternion", |(q, _)| {
                    q.iter().map(|v| v * v).sum::<f64>() > 1e-3
                })
                .prop_map(|(q, t)| {
                    from_rt(&rotation_from_quat_wxyz(q[0], q[1], q[2], q[3]).unwrap(), t)
                })
        }

        fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
            a.iter().zip(b).all(|(x, y)| (x - y).abs() < tol)
        }

        proptest! {
            /// The stored row-major form and the computing form convert both ways exactly,
            /// and every stored pose is a valid table pose.
            #[test]
            fn row_major_round_trips(m in pose()) {
                prop_assert_eq!(Rigid::from_row_major(&m).to_row_major(), m);
                prop_assert!(spatialsv_schemas::check_pose(&m).is_ok());
            }

            /// Quaternion -> rotation -> quaternion gives the same rotation.
            #[test]
            fn quaternions_round_trip(m in pose()) {
                let q = Rigid::from_row_major(&m).quat_wxyz();
                let r = rotation_from_quat_wxyz(q[0], q[1], q[2], q[3]).unwrap();
                prop_assert!(close(&r, &rotation(&m), 1e-9));
                prop_assert!((q.iter().map(|v| v * v).sum::<f64>() - 1.0).abs() < 1e-9);
            }

            /// a_from_b composed with its inverse is the identity; the relative rotation
            /// between a pose and itself composed with b is b's angle.
            #[test]
            fn inverse_and_composition(a in pose(), b in pose()) {
                let (ra, rb) = (Rigid::from_row_major(&a), Rigid::from_row_major(&b));
                prop_assert!(close(&ra.compose(&ra.inverse()).to_row_major(), &IDENTITY, 1e-9));
                prop_assert!(close(&invert_rigid(&invert_rigid(&a)), &a, 1e-9));
                let ab = mul(&a, &b);
                prop_assert!((relative_rotation_deg(&a, &ab) - rb.rotation_angle_deg()).abs() < 1e-6);
            }
        }
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
    }

    #[test]
    fn quaternion_round_trip_and_known_rotation() {
        // 90 degrees about z: x axis goes to y.
        let s = std::f64::consts::FRAC_1_SQRT_2;
        let r = rotation_from_quat_wxyz(s, 0.0, 0.0, s).unwrap();
        assert!(close(&r, &[0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]));
        let q = quat_wxyz_from_rotation(&r);
        assert!(close(&q, &[s, 0.0, 0.0, s]) || close(&q, &[-s, 0.0, 0.0, -s]));
        assert!(rotation_from_quat_wxyz(0.0, 0.0, 0.0, 0.0).is_none());
    }

    #[test]
    fn rigid_inverse() {
        let r = rotation_from_quat_wxyz(0.9, 0.1, -0.3, 0.2).unwrap();
        let m = from_rt(&r, [1.0, -2.0, 0.5]);
        assert!(close(&mul(&m, &invert_rigid(&m)), &IDENTITY));
        let p = transform_point(&m, [0.3, 0.2, 0.1]);
        assert!(close(
            &transform_point(&invert_rigid(&m), p),
            &[0.3, 0.2, 0.1]
        ));
    }

    #[test]
    fn opengl_camera_looks_down_minus_z() {
        // An OpenGL camera at the origin with identity rotation looks down world -z; in OpenCV
        // axes its +z (forward) column must therefore be world -z, and its +y (down) world -y.
        let cv = opengl_to_opencv(&IDENTITY);
        assert_eq!([cv[2], cv[6], cv[10]], [0.0, 0.0, -1.0]);
        assert_eq!([cv[1], cv[5], cv[9]], [0.0, -1.0, 0.0]);
    }

    #[test]
    fn slerp_halfway() {
        let a = [1.0, 0.0, 0.0, 0.0];
        let s = std::f64::consts::FRAC_1_SQRT_2;
        let b = [s, 0.0, 0.0, s]; // 90 deg about z
        let h = slerp(a, b, 0.5);
        let want = [
            (22.5f64).to_radians().cos(),
            0.0,
            0.0,
            (22.5f64).to_radians().sin(),
        ];
        assert!(close(&h, &want), "{h:?}");
    }

    #[test]
    fn rigid_matches_the_row_major_helpers() {
        let r = rotation_from_quat_wxyz(0.9, 0.1, -0.3, 0.2).unwrap();
        let a = from_rt(&r, [1.0, -2.0, 0.5]);
        let b = from_rt(
            &rotation_from_quat_wxyz(0.2, 0.7, 0.1, -0.4).unwrap(),
            [0.3, 0.1, -1.0],
        );
        let (ra, rb) = (Rigid::from_row_major(&a), Rigid::from_row_major(&b));
        assert_eq!(Rigid::from_row_major(&ra.to_row_major()), ra);
        assert!(close(&ra.compose(&rb).to_row_major(), &mul(&a, &b)));
        assert!(close(&ra.inverse().to_row_major(), &invert_rigid(&a)));
        let p = ra.apply(&Vector3::new(0.3, 0.2, 0.1));
        assert!(close(p.as_slice(), &transform_point(&a, [0.3, 0.2, 0.1])));
        let q = ra.quat_wxyz();
        assert!(close(
            &from_rt(
                &rotation_from_quat_wxyz(q[0], q[1], q[2], q[3]).unwrap(),
                [1.0, -2.0, 0.5]
            ),
            &a
        ));
        // Relative rotation: of a pose with itself 0, symmetric, equal to the composed one.
        assert!(relative_rotation_deg(&a, &a) < 1e-6);
        let ab = relative_rotation_deg(&a, &b);
        assert!((ab - relative_rotation_deg(&b, &a)).abs() < 1e-9);
        assert!((ab - ra.inverse().compose(&rb).rotation_angle_deg()).abs() < 1e-9);
    }

    #[test]
    fn angles_of_known_rotations_and_degenerate_vectors() {
        let s = std::f64::consts::FRAC_1_SQRT_2;
        let z90 = Rigid::from_row_major(&from_rt(
            &rotation_from_quat_wxyz(s, 0.0, 0.0, s).unwrap(),
            [0.0; 3],
        ));
        assert!((z90.rotation_angle_deg() - 90.0).abs() < 1e-9);
        let x = Vector3::new(1.0, 0.0, 0.0);
        let y = Vector3::new(0.0, 2.0, 0.0);
        assert!((vector_angle_deg(&x, &y, 0.0).unwrap() - 90.0).abs() < 1e-12);
        assert!((vector_angle_deg(&x, &-x, 0.0).unwrap() - 180.0).abs() < 1e-12);
        // One rule for degenerate input everywhere: no direction, no angle.
        assert_eq!(vector_angle_deg(&x, &Vector3::zeros(), 0.0), None);
        assert_eq!(vector_angle_deg(&x, &(y * 1e-6), 1e-4), None);
    }

    #[test]
    fn axis_angle_poses() {
        let (s, c) = 30f64.to_radians().sin_cos();
        let yaw = from_axis_angle_deg([0.0, 1.0, 0.0], 30.0, [1.0, 2.0, 3.0]);
        assert!(close(
            &yaw,
            &[
                c, 0.0, s, 1.0, 0.0, 1.0, 0.0, 2.0, -s, 0.0, c, 3.0, 0.0, 0.0, 0.0, 1.0
            ]
        ));
        let roll = from_axis_angle_deg([0.0, 0.0, 2.0], 30.0, [0.0; 3]);
        assert!(close(
            &roll,
            &[
                c, -s, 0.0, 0.0, s, c, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0
            ]
        ));
    }

    #[test]
    fn intrinsics_project_what_they_unproject() {
        let k = Intrinsics::from_k([500.0, 480.0, 320.0, 240.0]);
        assert_eq!(Intrinsics::from_k(k.k()), k);
        let p = k.unproject(100.5, 37.25, 2.5);
        let (u, v) = k.project(p).unwrap();
        assert!((u - 100.5).abs() < 1e-9 && (v - 37.25).abs() < 1e-9);
        assert_eq!(k.project([0.0, 0.0, 0.0]), None);
        assert_eq!(k.project([0.0, 0.0, -1.0]), None);
    }

    #[test]
    fn matrix_text_with_infinities() {
        let m = parse_matrix4(
            "-inf -inf -inf -inf\n-inf -inf -inf -inf\n-inf -inf -inf -inf\n-inf -inf -inf -inf\n",
        )
        .unwrap();
        assert!(m.iter().all(|v| v.is_infinite()));
        assert!(parse_matrix4("1 2 3").unwrap_err().contains("found 3"));
        let m = from_rt(
            &rotation_from_quat_wxyz(0.9, 0.1, -0.3, 0.2).unwrap(),
            [1.0, -2.0, 0.5],
        );
        let back = parse_matrix4(&format_matrix4(&m, 12)).unwrap();
        assert!(close(&back, &m));
    }
}
