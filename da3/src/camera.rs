//! The camera decoder and encoder (`cam_dec.py`, `cam_enc.py`) and the VGGT-style pose
//! encoding they speak (`utils/transform.py`): translation, quaternion (x, y, z, w), field of
//! view (vertical, horizontal).

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, relu};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::vit::Block;

/// Camera tokens -> pose encoding `[b, s, 9]`.
#[derive(Module, Debug)]
pub struct CameraDec<B: Backend> {
    fc1: Linear<B>,
    fc2: Linear<B>,
    fc_t: Linear<B>,
    fc_qvec: Linear<B>,
    fc_fov: Linear<B>,
}

impl<B: Backend> CameraDec<B> {
    /// A decoder from `dim` wide tokens.
    pub fn new(dim: usize, device: &B::Device) -> Self {
        CameraDec {
            fc1: LinearConfig::new(dim, dim).init(device),
            fc2: LinearConfig::new(dim, dim).init(device),
            fc_t: LinearConfig::new(dim, 3).init(device),
            fc_qvec: LinearConfig::new(dim, 4).init(device),
            fc_fov: LinearConfig::new(dim, 2).init(device),
        }
    }

    /// `tokens`: `[b, s, dim]`.
    pub fn forward(&self, tokens: Tensor<B, 3>) -> Tensor<B, 3> {
        let f = relu(self.fc2.forward(relu(self.fc1.forward(tokens))));
        Tensor::cat(
            vec![
                self.fc_t.forward(f.clone()),
                self.fc_qvec.forward(f.clone()),
                relu(self.fc_fov.forward(f)),
            ],
            2,
        )
    }
}

/// The encoder's input MLP (9 -> dim/2, GELU, -> dim).
#[derive(Module, Debug)]
pub struct PoseBranch<B: Backend> {
    fc1: Linear<B>,
    fc2: Linear<B>,
}

/// Known cameras -> camera tokens `[b, s, dim]` (four transformer blocks over the views).
#[derive(Module, Debug)]
pub struct CameraEnc<B: Backend> {
    pose_branch: PoseBranch<B>,
    token_norm: LayerNorm<B>,
    trunk: Vec<Block<B>>,
    trunk_norm: LayerNorm<B>,
}

impl<B: Backend> CameraEnc<B> {
    /// An encoder to `dim` wide tokens (16 heads, 4 blocks, as the reference's defaults).
    pub fn new(dim: usize, device: &B::Device) -> Self {
        CameraEnc {
            pose_branch: PoseBranch {
                fc1: LinearConfig::new(9, dim / 2).init(device),
                fc2: LinearConfig::new(dim / 2, dim).init(device),
            },
            token_norm: LayerNormConfig::new(dim).init(device),
            trunk: (0..4)
                .map(|_| Block::new(dim, 16, false, false, 1e-5, device))
                .collect(),
            trunk_norm: LayerNormConfig::new(dim).init(device),
        }
    }

    /// Tokens for `b x s` cameras: world-to-camera `w2c` (row-major 4x4 each) and
    /// intrinsics `k` (3x3 each) of `h x w` images.
    pub fn forward(
        &self,
        w2c: &[[f32; 16]],
        k: &[[f32; 9]],
        b: usize,
        h: usize,
        w: usize,
        device: &B::Device,
    ) -> Tensor<B, 3> {
        let s = w2c.len() / b.max(1);
        let enc: Vec<f32> = w2c
            .iter()
            .zip(k)
            .flat_map(|(e, k)| extri_intri_to_pose_encoding(&affine_inverse(e), k, h, w))
            .collect();
        let x = Tensor::<B, 3>::from_data(TensorData::new(enc, [b, s, 9]), device);
        let x = self
            .pose_branch
            .fc2
            .forward(gelu(self.pose_branch.fc1.forward(x)));
        let x = self.token_norm.forward(x);
        let x = self.trunk.iter().fold(x, |x, blk| blk.forward(x, None));
        self.trunk_norm.forward(x)
    }
}

/// `[R^T | -R^T t]` of a rigid 4x4 (the last row kept).
pub fn affine_inverse(m: &[f32; 16]) -> [f32; 16] {
    let mut o = [0f32; 16];
    for r in 0..3 {
        for c in 0..3 {
            o[r * 4 + c] = m[c * 4 + r];
        }
        o[r * 4 + 3] = -(0..3).map(|c| m[c * 4 + r] * m[c * 4 + 3]).sum::<f32>();
    }
    o[12..].copy_from_slice(&m[12..]);
    o
}

/// Rotation (row-major 3x3) of a quaternion `(x, y, z, w)`, not necessarily unit.
pub fn quat_to_mat(q: [f32; 4]) -> [f32; 9] {
    let [i, j, k, r] = q;
    let two_s = 2.0 / (q.iter().map(|v| v * v).sum::<f32>());
    [
        1.0 - two_s * (j * j + k * k),
        two_s * (i * j - k * r),
        two_s * (i * k + j * r),
        two_s * (i * j + k * r),
        1.0 - two_s * (i * i + k * k),
        two_s * (j * k - i * r),
        two_s * (i * k - j * r),
        two_s * (j * k + i * r),
        1.0 - two_s * (i * i + j * j),
    ]
}

/// Quaternion `(x, y, z, w)`, `w >= 0`, of a rotation (row-major 3x3), as the reference's
/// `mat_to_quat` (the best-conditioned of four candidates).
pub fn mat_to_quat(m: [f32; 9]) -> [f32; 4] {
    let [m00, m01, m02, m10, m11, m12, m20, m21, m22] = m;
    let sq = |v: f32| if v > 0.0 { v.sqrt() } else { 0.0 };
    let q_abs = [
        sq(1.0 + m00 + m11 + m22),
        sq(1.0 + m00 - m11 - m22),
        sq(1.0 - m00 + m11 - m22),
        sq(1.0 - m00 - m11 + m22),
    ];
    let cand = [
        [q_abs[0] * q_abs[0], m21 - m12, m02 - m20, m10 - m01],
        [m21 - m12, q_abs[1] * q_abs[1], m10 + m01, m02 + m20],
        [m02 - m20, m10 + m01, q_abs[2] * q_abs[2], m12 + m21],
        [m10 - m01, m20 + m02, m21 + m12, q_abs[3] * q_abs[3]],
    ];
    let mut best = 0;
    for i in 1..4 {
        if q_abs[i] > q_abs[best] {
            best = i;
        }
    }
    let den = 2.0 * q_abs[best].max(0.1);
    let rijk = cand[best].map(|v| v / den);
    let q = [rijk[1], rijk[2], rijk[3], rijk[0]];
    if q[3] < 0.0 { q.map(|v| -v) } else { q }
}

/// The pose encoding of a camera-to-world `c2w` (row-major 4x4 or 3x4 in the first 12) with
/// intrinsics `k` of an `h x w` image.
pub fn extri_intri_to_pose_encoding(c2w: &[f32; 16], k: &[f32; 9], h: usize, w: usize) -> [f32; 9] {
    let r = [
        c2w[0], c2w[1], c2w[2], c2w[4], c2w[5], c2w[6], c2w[8], c2w[9], c2w[10],
    ];
    let q = mat_to_quat(r);
    let fov_h = 2.0 * ((h as f32 / 2.0) / k[4]).atan();
    let fov_w = 2.0 * ((w as f32 / 2.0) / k[0]).atan();
    [
        c2w[3], c2w[7], c2w[11], q[0], q[1], q[2], q[3], fov_h, fov_w,
    ]
}

/// A pose encoding as world-to-camera extrinsics (row-major 3x4) and intrinsics (3x3) for an
/// `h x w` image, as the reference's `pose_encoding_to_extri_intri` then `affine_inverse`.
pub fn pose_encoding_to_cameras(p: &[f32], h: usize, w: usize) -> ([f32; 12], [f32; 9]) {
    let r = quat_to_mat([p[3], p[4], p[5], p[6]]);
    let mut c2w = [0f32; 16];
    for row in 0..3 {
        c2w[row * 4..row * 4 + 3].copy_from_slice(&r[row * 3..row * 3 + 3]);
        c2w[row * 4 + 3] = p[row];
    }
    let inv = affine_inverse(&c2w);
    let mut ext = [0f32; 12];
    ext.copy_from_slice(&inv[..12]);
    let fy = (h as f32 / 2.0) / (p[7] / 2.0).tan().max(1e-6);
    let fx = (w as f32 / 2.0) / (p[8] / 2.0).tan().max(1e-6);
    let k = [
        fx,
        0.0,
        w as f32 / 2.0,
        0.0,
        fy,
        h as f32 / 2.0,
        0.0,
        0.0,
        1.0,
    ];
    (ext, k)
}

/// [`pose_encoding_to_cameras`] for every view of `p` (`[.., 9]` flattened): world-to-camera
/// `[.., 3, 4]` and intrinsics `[.., 3, 3]`, flattened.
pub fn cameras_of_pose_encodings(p: &[f32], h: usize, w: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut e, mut k) = (Vec::new(), Vec::new());
    for v in p.chunks(9) {
        let (ext, kk) = pose_encoding_to_cameras(v, h, w);
        e.extend(ext);
        k.extend(kk);
    }
    (e, k)
}
