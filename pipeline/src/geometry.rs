//! Small rigid-body geometry on row-major 4x4 `f64` matrices, enough to normalise every
//! source convention into `world_from_camera` (camera-to-world, OpenCV axes, metres).

/// A row-major 4x4 matrix.
pub type Mat4 = [f64; 16];

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
pub fn parse_matrix4(text: &str) -> Result<Mat4, String> {
    let values: Vec<f64> = text
        .split_whitespace()
        .map(|t| {
            t.parse::<f64>()
                .map_err(|_| format!("'{t}' is not a number"))
        })
        .collect::<Result<_, _>>()?;
    if values.len() != 16 {
        return Err(format!(
            "expected 16 numbers (a 4x4 matrix), found {}",
            values.len()
        ));
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
