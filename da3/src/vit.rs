//! The backbone: DINOv2 as Depth Anything 3 uses it (`depth_anything_3/model/dinov2/`).
//!
//! Patch embedding; the position embedding resized to the input grid by bicubic interpolation
//! with the reference's scale-factor offset; from `alt_start` on, odd blocks attend over all
//! views and even ones within each view, the class token replaced by a camera token (learned,
//! or from the camera encoder); 2D RoPE from `rope_start`, QK-norm from `qknorm_start`;
//! LayerScale; for three or more views a reference view chosen before the first alternating
//! block and moved first (the taps are returned in the input's order).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, silu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::config::{Structure, VitSizes};

/// The reference's `THRESH_FOR_REF_SELECTION`: views from which a reference view is chosen.
pub const REF_SELECTION_VIEWS: usize = 3;
/// DINOv2's position-embedding interpolation offset.
pub const INTERPOLATE_OFFSET: f64 = 0.1;
/// Patch size.
pub const PATCH: usize = 14;

/// How the reference view is chosen for three or more views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefViewStrategy {
    /// Always the first.
    First,
    /// The middle one.
    Middle,
    /// The view closest to the median of similarity, norm and variance (the default).
    #[default]
    SaddleBalanced,
    /// The view with the largest similarity range.
    SaddleSimRange,
}

impl std::str::FromStr for RefViewStrategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "first" => Self::First,
            "middle" => Self::Middle,
            "saddle_balanced" => Self::SaddleBalanced,
            "saddle_sim_range" => Self::SaddleSimRange,
            other => {
                return Err(format!(
                    "reference-view strategy '{other}' is not first, middle, saddle_balanced or saddle_sim_range"
                ));
            }
        })
    }
}

/// LayerScale.
#[derive(Module, Debug)]
pub struct LayerScale<B: Backend> {
    gamma: Param<Tensor<B, 1>>,
}

impl<B: Backend> LayerScale<B> {
    fn new(dim: usize, device: &B::Device) -> Self {
        LayerScale {
            gamma: Param::from_tensor(Tensor::ones([dim], device)),
        }
    }
    fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        x * self.gamma.val().unsqueeze()
    }
}

/// The feed-forward: GELU MLP (`fc1`, `fc2`) or SwiGLU (`w12`, `w3`).
#[derive(Module, Debug)]
pub struct Ffn<B: Backend> {
    fc1: Option<Linear<B>>,
    fc2: Option<Linear<B>>,
    w12: Option<Linear<B>>,
    w3: Option<Linear<B>>,
}

impl<B: Backend> Ffn<B> {
    fn mlp(dim: usize, hidden: usize, out: usize, device: &B::Device) -> Self {
        Ffn {
            fc1: Some(LinearConfig::new(dim, hidden).init(device)),
            fc2: Some(LinearConfig::new(hidden, out).init(device)),
            w12: None,
            w3: None,
        }
    }
    fn swiglu(dim: usize, hidden: usize, device: &B::Device) -> Self {
        // SwiGLUFFNFused: the hidden width is 2/3 of the MLP's, rounded up to 8.
        let hidden = (hidden * 2 / 3).div_ceil(8) * 8;
        Ffn {
            fc1: None,
            fc2: None,
            w12: Some(LinearConfig::new(dim, 2 * hidden).init(device)),
            w3: Some(LinearConfig::new(hidden, dim).init(device)),
        }
    }
    fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        match (&self.fc1, &self.fc2, &self.w12, &self.w3) {
            (Some(a), Some(b), _, _) => b.forward(gelu(a.forward(x))),
            (_, _, Some(w12), Some(w3)) => {
                let [x1, x2]: [Tensor<B, D>; 2] = w12
                    .forward(x)
                    .chunk(2, D - 1)
                    .try_into()
                    .unwrap_or_else(|_| unreachable!("chunk(2) gives two"));
                w3.forward(silu(x1) * x2)
            }
            _ => unreachable!("an Ffn is built as one kind"),
        }
    }
}

/// Rotations of 2D RoPE for a sequence: `[tokens, head_dim]` cosines and sines, the first
/// half of each row for the token's y, the second for its x.
#[derive(Debug, Clone)]
pub struct Rope<B: Backend> {
    cos: Tensor<B, 2>,
    sin: Tensor<B, 2>,
}

impl<B: Backend> Rope<B> {
    /// For tokens at `positions` (y, x), heads of `head_dim`, base frequency 100.
    pub fn new(positions: &[(usize, usize)], head_dim: usize, device: &B::Device) -> Self {
        let fd = head_dim / 2;
        let inv: Vec<f32> = (0..fd / 2)
            .map(|j| 1.0 / 100f32.powf((2 * j) as f32 / fd as f32))
            .collect();
        let n = positions.len();
        let (mut cos, mut sin) = (vec![0f32; n * head_dim], vec![0f32; n * head_dim]);
        for (t, &(py, px)) in positions.iter().enumerate() {
            for (half, p) in [(0, py), (1, px)] {
                for j in 0..fd {
                    let a = p as f32 * inv[j % (fd / 2)];
                    cos[t * head_dim + half * fd + j] = a.cos();
                    sin[t * head_dim + half * fd + j] = a.sin();
                }
            }
        }
        Rope {
            cos: Tensor::from_data(TensorData::new(cos, [n, head_dim]), device),
            sin: Tensor::from_data(TensorData::new(sin, [n, head_dim]), device),
        }
    }

    /// Rotates `x` (`[batch, heads, tokens, head_dim]`).
    fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let d = x.dims()[3];
        let q = d / 4;
        let part = |i: usize| x.clone().narrow(3, i * q, q);
        // Within each half, rotate_half: (a, b) -> (-b, a).
        let rotated = Tensor::cat(vec![part(1).neg(), part(0), part(3).neg(), part(2)], 3);
        x * self.cos.clone().unsqueeze::<4>() + rotated * self.sin.clone().unsqueeze::<4>()
    }
}

/// Multi-head self-attention with optional QK-norm and RoPE.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    qkv: Linear<B>,
    proj: Linear<B>,
    q_norm: Option<LayerNorm<B>>,
    k_norm: Option<LayerNorm<B>>,
    num_heads: usize,
}

impl<B: Backend> Attention<B> {
    fn new(dim: usize, heads: usize, qk_norm: bool, device: &B::Device) -> Self {
        let hd = dim / heads;
        Attention {
            qkv: LinearConfig::new(dim, 3 * dim).init(device),
            proj: LinearConfig::new(dim, dim).init(device),
            q_norm: qk_norm.then(|| LayerNormConfig::new(hd).init(device)),
            k_norm: qk_norm.then(|| LayerNormConfig::new(hd).init(device)),
            num_heads: heads,
        }
    }

    fn forward(&self, x: Tensor<B, 3>, rope: Option<&Rope<B>>) -> Tensor<B, 3> {
        let [b, n, c] = x.dims();
        let (h, hd) = (self.num_heads, c / self.num_heads);
        let qkv = self.qkv.forward(x).reshape([b, n, 3, h, hd]);
        let take = |i: usize| {
            qkv.clone()
                .narrow(2, i, 1)
                .reshape([b, n, h, hd])
                .swap_dims(1, 2)
        };
        let (mut q, mut k, v) = (take(0), take(1), take(2));
        if let (Some(qn), Some(kn)) = (&self.q_norm, &self.k_norm) {
            q = qn.forward(q);
            k = kn.forward(k);
        }
        if let Some(r) = rope {
            q = r.apply(q);
            k = r.apply(k);
        }
        let scale = (hd as f64).powf(-0.5);
        let attn = softmax(q.matmul(k.swap_dims(2, 3)).mul_scalar(scale), 3);
        let o = attn.matmul(v).swap_dims(1, 2).reshape([b, n, c]);
        self.proj.forward(o)
    }
}

/// A pre-norm transformer block with LayerScale.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    norm1: LayerNorm<B>,
    attn: Attention<B>,
    ls1: LayerScale<B>,
    norm2: LayerNorm<B>,
    mlp: Ffn<B>,
    ls2: LayerScale<B>,
}

impl<B: Backend> Block<B> {
    /// A block of `dim` with `heads`; norms with `eps` (1e-6 in the backbone, 1e-5 in the
    /// camera encoder).
    pub fn new(
        dim: usize,
        heads: usize,
        qk_norm: bool,
        swiglu: bool,
        eps: f64,
        device: &B::Device,
    ) -> Self {
        Block {
            norm1: LayerNormConfig::new(dim).with_epsilon(eps).init(device),
            attn: Attention::new(dim, heads, qk_norm, device),
            ls1: LayerScale::new(dim, device),
            norm2: LayerNormConfig::new(dim).with_epsilon(eps).init(device),
            mlp: if swiglu {
                Ffn::swiglu(dim, 4 * dim, device)
            } else {
                Ffn::mlp(dim, 4 * dim, dim, device)
            },
            ls2: LayerScale::new(dim, device),
        }
    }

    /// `x`: `[batch, tokens, dim]`.
    pub fn forward(&self, x: Tensor<B, 3>, rope: Option<&Rope<B>>) -> Tensor<B, 3> {
        let x = x.clone()
            + self
                .ls1
                .forward(self.attn.forward(self.norm1.forward(x), rope));
        x.clone() + self.ls2.forward(self.mlp.forward(self.norm2.forward(x)))
    }
}

/// The patch embedding (a 14x14 convolution with stride 14).
#[derive(Module, Debug)]
pub struct PatchEmbed<B: Backend> {
    proj: Conv2d<B>,
}

/// The backbone.
#[derive(Module, Debug)]
pub struct Vit<B: Backend> {
    patch_embed: PatchEmbed<B>,
    cls_token: Param<Tensor<B, 3>>,
    camera_token: Option<Param<Tensor<B, 3>>>,
    pos_embed: Param<Tensor<B, 3>>,
    blocks: Vec<Block<B>>,
    norm: LayerNorm<B>,
    embed_dim: usize,
    num_heads: usize,
    grid: usize,
    out_layers: [usize; 4],
    alt_start: Option<usize>,
    rope_start: Option<usize>,
    cat_token: bool,
}

/// What the backbone gives the heads, per tap: patch features `[b, s, hw, C]` (C = 2D with
/// `cat_token`) and the camera token `[b, s, C]`; and what the tests compare.
#[derive(Debug, Clone)]
pub struct Taps<B: Backend> {
    /// Patch features of the four taps.
    pub feats: Vec<Tensor<B, 4>>,
    /// Camera (class) tokens of the four taps.
    pub cam_tokens: Vec<Tensor<B, 3>>,
    /// Per batch element, the reference view chosen (three or more views).
    pub ref_view: Option<Vec<usize>>,
    /// Block outputs `[b, s, n, D]` (in the reordered view order where a reference view was
    /// chosen), kept only when asked.
    pub blocks: Vec<Tensor<B, 4>>,
}

fn start(v: i64) -> Option<usize> {
    usize::try_from(v).ok()
}

impl<B: Backend> Vit<B> {
    /// Builds the backbone of `structure` (parameters initialised to placeholders; load a
    /// checkpoint next).
    pub fn new(structure: &Structure, v: &VitSizes, device: &B::Device) -> Self {
        let n = &structure.net;
        let d = v.embed_dim;
        let grid = v.img_size / PATCH;
        let qk = start(n.qknorm_start);
        let blocks = (0..v.depth)
            .map(|i| {
                Block::new(
                    d,
                    v.num_heads,
                    qk.is_some_and(|q| i >= q),
                    v.swiglu,
                    1e-6,
                    device,
                )
            })
            .collect();
        let mut out_layers = [0; 4];
        out_layers.copy_from_slice(&n.out_layers);
        Vit {
            patch_embed: PatchEmbed {
                proj: Conv2dConfig::new([3, d], [PATCH, PATCH])
                    .with_stride([PATCH, PATCH])
                    .init(device),
            },
            cls_token: Param::from_tensor(Tensor::zeros([1, 1, d], device)),
            camera_token: start(n.alt_start)
                .map(|_| Param::from_tensor(Tensor::zeros([1, 2, d], device))),
            pos_embed: Param::from_tensor(Tensor::zeros([1, 1 + grid * grid, d], device)),
            blocks,
            norm: LayerNormConfig::new(d).init(device),
            embed_dim: d,
            num_heads: v.num_heads,
            grid,
            out_layers,
            alt_start: start(n.alt_start),
            rope_start: start(n.rope_start),
            cat_token: n.cat_token,
        }
    }

    /// Width.
    pub fn embed_dim(&self) -> usize {
        self.embed_dim
    }

    /// The position embedding for a `gh x gw` patch grid of an `h x w` image, `[1, 1 + gh gw,
    /// D]`: the trained one when the grid and image are square and the same size, otherwise
    /// the patch part resized by bicubic interpolation (A = -0.75, borders clamped) at the
    /// scale factors `(g + 0.1) / M`, as the reference's `interpolate_pos_encoding`.
    pub fn pos_embed_for(&self, gh: usize, gw: usize, h: usize, w: usize) -> Tensor<B, 3> {
        let m = self.grid;
        let pe = self.pos_embed.val();
        if gh * gw == m * m && h == w {
            return pe;
        }
        let d = self.embed_dim;
        let device = pe.device();
        let all: Vec<f32> = pe
            .into_data()
            .convert::<f32>()
            .to_vec()
            .unwrap_or_else(|e| unreachable!("an f32 parameter: {e:?}"));
        let (cls, patch) = all.split_at(d);
        let out = bicubic_grid(patch, m, d, gh, gw, INTERPOLATE_OFFSET);
        let mut v = cls.to_vec();
        v.extend(out);
        Tensor::from_data(TensorData::new(v, [1, 1 + gh * gw, d]), &device)
    }

    /// Tokens before the first block, `[b, s, 1 + hw, D]`.
    pub fn prepare_tokens(&self, x: Tensor<B, 5>) -> Tensor<B, 4> {
        let [b, s, c, h, w] = x.dims();
        let (gh, gw) = (h / PATCH, w / PATCH);
        let p = self
            .patch_embed
            .proj
            .forward(x.reshape([b * s, c, h, w]))
            .flatten::<3>(2, 3)
            .swap_dims(1, 2);
        let cls = self.cls_token.val().expand([b * s, 1, self.embed_dim]);
        let t = Tensor::cat(vec![cls, p], 1) + self.pos_embed_for(gh, gw, h, w);
        t.reshape([b, s, 1 + gh * gw, self.embed_dim])
    }

    /// Runs the blocks on `x` (`[b, s, 3, h, w]`, normalised, h and w multiples of 14),
    /// with camera tokens `[b, s, D]` from the camera encoder when poses are given.
    pub fn forward(
        &self,
        x: Tensor<B, 5>,
        cam_token: Option<Tensor<B, 3>>,
        strategy: RefViewStrategy,
        keep_blocks: bool,
    ) -> Taps<B> {
        let [b, s, _, h, w] = x.dims();
        let (gh, gw) = (h / PATCH, w / PATCH);
        let device = x.device();
        let mut x = self.prepare_tokens(x);
        let n = 1 + gh * gw;
        let d = self.embed_dim;
        let hd = d / self.num_heads;
        let rope = self.rope_start.map(|_| {
            // Frame attention: patches at (y + 1, x + 1), the camera token at (0, 0); global
            // attention: every patch at (1, 1), as the reference's `pos_nodiff`.
            let mut local = vec![(0, 0)];
            let mut global = vec![(0, 0)];
            for y in 0..gh {
                for xx in 0..gw {
                    local.push((y + 1, xx + 1));
                    global.push((1, 1));
                }
            }
            let global: Vec<(usize, usize)> = (0..s).flat_map(|_| global.clone()).collect();
            (
                Rope::new(&local, hd, &device),
                Rope::new(&global, hd, &device),
            )
        });
        let mut local_x = x.clone();
        let mut ref_view: Option<Vec<usize>> = None;
        let mut taps = Taps {
            feats: Vec::new(),
            cam_tokens: Vec::new(),
            ref_view: None,
            blocks: Vec::new(),
        };
        let has_cam = cam_token.is_some();
        let mut cam_token = cam_token;
        let mut outs: Vec<Tensor<B, 4>> = Vec::new();
        for (i, blk) in self.blocks.iter().enumerate() {
            let use_rope = rope
                .as_ref()
                .filter(|_| self.rope_start.is_some_and(|r| i >= r));
            if let Some(a) = self.alt_start
                && i + 1 == a
                && s >= REF_SELECTION_VIEWS
                && !has_cam
            {
                let idx = select_reference_view(&x, strategy);
                x = reorder(x, &idx);
                local_x = reorder(local_x, &idx);
                ref_view = Some(idx);
            }
            if self.alt_start == Some(i) {
                let tokens = match cam_token.take() {
                    Some(t) => t,
                    None => {
                        let ct = self
                            .camera_token
                            .as_ref()
                            .unwrap_or_else(|| unreachable!("alternation has camera tokens"))
                            .val();
                        let reference = ct.clone().narrow(1, 0, 1).expand([b, 1, d]);
                        if s == 1 {
                            reference
                        } else {
                            let others = ct.narrow(1, 1, 1).expand([b, s - 1, d]);
                            Tensor::cat(vec![reference, others], 1)
                        }
                    }
                };
                x = Tensor::cat(vec![tokens.unsqueeze_dim(2), x.narrow(2, 1, n - 1)], 2);
                // The reference writes the tokens in place into the tensor the last frame
                // block returned, which its frame-attention copy shares: with an odd
                // alt_start the next tap's frame half carries them too.
                local_x = x.clone();
            }
            let global = self.alt_start.is_some_and(|a| i >= a) && i % 2 == 1;
            if global {
                let y = blk.forward(x.reshape([b, s * n, d]), use_rope.map(|r| &r.1));
                x = y.reshape([b, s, n, d]);
            } else {
                let y = blk.forward(x.reshape([b * s, n, d]), use_rope.map(|r| &r.0));
                x = y.reshape([b, s, n, d]);
                local_x = x.clone();
            }
            if keep_blocks {
                taps.blocks.push(x.clone());
            }
            if self.out_layers.contains(&i) {
                let mut out = if self.cat_token {
                    Tensor::cat(vec![local_x.clone(), x.clone()], 3)
                } else {
                    x.clone()
                };
                if let Some(idx) = &ref_view {
                    out = restore(out, idx);
                }
                outs.push(out);
            }
        }
        for out in outs {
            let c = out.dims()[3];
            taps.cam_tokens
                .push(out.clone().narrow(2, 0, 1).reshape([b, s, c]));
            let normed = if self.cat_token {
                Tensor::cat(
                    vec![
                        out.clone().narrow(3, 0, d),
                        self.norm.forward(out.narrow(3, d, d)),
                    ],
                    3,
                )
            } else {
                self.norm.forward(out)
            };
            taps.feats.push(normed.narrow(2, 1, n - 1));
        }
        taps.ref_view = ref_view;
        taps
    }
}

/// Per batch element, the reference view of `x` (`[b, s, n, D]`) by `strategy`, from the
/// class tokens, as the reference's `select_reference_view`.
pub fn select_reference_view<B: Backend>(
    x: &Tensor<B, 4>,
    strategy: RefViewStrategy,
) -> Vec<usize> {
    let [b, s, _, d] = x.dims();
    match strategy {
        RefViewStrategy::First => return vec![0; b],
        RefViewStrategy::Middle => return vec![s / 2; b],
        _ => {}
    }
    let cls: Vec<f32> = x
        .clone()
        .narrow(2, 0, 1)
        .into_data()
        .convert::<f32>()
        .to_vec()
        .unwrap_or_else(|e| unreachable!("f32 tokens: {e:?}"));
    (0..b)
        .map(|bi| {
            let tok = |j: usize| &cls[(bi * s + j) * d..(bi * s + j + 1) * d];
            let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>().sqrt();
            let unit: Vec<Vec<f32>> = (0..s)
                .map(|j| {
                    let t = tok(j);
                    let nn = norm(t);
                    t.iter().map(|a| a / nn).collect()
                })
                .collect();
            let dot = |a: &[f32], c: &[f32]| a.iter().zip(c).map(|(p, q)| p * q).sum::<f32>();
            let sim = |i: usize, j: usize| dot(&unit[i], &unit[j]) - if i == j { 1.0 } else { 0.0 };
            match strategy {
                RefViewStrategy::SaddleSimRange => {
                    let range: Vec<f32> = (0..s)
                        .map(|i| {
                            let row: Vec<f32> = (0..s).map(|j| sim(i, j)).collect();
                            let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                            let mn = row.iter().copied().fold(f32::INFINITY, f32::min);
                            mx - mn
                        })
                        .collect();
                    argmax(&range)
                }
                _ => {
                    let sim_score: Vec<f32> = (0..s)
                        .map(|i| (0..s).map(|j| sim(i, j)).sum::<f32>() / (s - 1) as f32)
                        .collect();
                    let feat_norm: Vec<f32> = (0..s).map(|j| norm(tok(j))).collect();
                    let feat_var: Vec<f32> = unit
                        .iter()
                        .map(|u| {
                            let mean = u.iter().sum::<f32>() / d as f32;
                            u.iter().map(|a| (a - mean) * (a - mean)).sum::<f32>() / (d - 1) as f32
                        })
                        .collect();
                    let normalise = |m: &[f32]| -> Vec<f32> {
                        let mn = m.iter().copied().fold(f32::INFINITY, f32::min);
                        let mx = m.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        m.iter().map(|v| (v - mn) / (mx - mn + 1e-8)).collect()
                    };
                    let (a, c, e) = (
                        normalise(&sim_score),
                        normalise(&feat_norm),
                        normalise(&feat_var),
                    );
                    let score: Vec<f32> = (0..s)
                        .map(|j| (a[j] - 0.5).abs() + (c[j] - 0.5).abs() + (e[j] - 0.5).abs())
                        .map(|v| -v)
                        .collect();
                    argmax(&score)
                }
            }
        })
        .collect()
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// Views ordered with `idx[bi]` first, the others in their order.
fn reorder<B: Backend>(x: Tensor<B, 4>, idx: &[usize]) -> Tensor<B, 4> {
    let s = x.dims()[1];
    permute_views(x, idx, |r| {
        std::iter::once(r)
            .chain((0..s).filter(|j| *j != r))
            .collect()
    })
}

/// The inverse of [`reorder`].
fn restore<B: Backend>(x: Tensor<B, 4>, idx: &[usize]) -> Tensor<B, 4> {
    let s = x.dims()[1];
    permute_views(x, idx, |r| {
        (0..s)
            .map(|t| match t.cmp(&r) {
                std::cmp::Ordering::Less => t + 1,
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Greater => t,
            })
            .collect()
    })
}

fn permute_views<B: Backend>(
    x: Tensor<B, 4>,
    idx: &[usize],
    order: impl Fn(usize) -> Vec<usize>,
) -> Tensor<B, 4> {
    let device = x.device();
    let parts: Vec<Tensor<B, 4>> = idx
        .iter()
        .enumerate()
        .map(|(bi, r)| {
            let o: Vec<i64> = order(*r).into_iter().map(|v| v as i64).collect();
            let n = o.len();
            let ix = Tensor::<B, 1, Int>::from_data(TensorData::new(o, [n]), &device);
            x.clone().narrow(0, bi, 1).select(1, ix)
        })
        .collect();
    Tensor::cat(parts, 0)
}

fn cubic1(x: f32, a: f32) -> f32 {
    ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
}

fn cubic2(x: f32, a: f32) -> f32 {
    ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
}

/// Bicubic weights and source indices (clamped) for output `i` at scale `1 / sf`, as
/// PyTorch's `upsample_bicubic2d` with a scale factor and `align_corners = false`.
fn cubic_taps(i: usize, inv_scale: f32, size: usize) -> ([usize; 4], [f32; 4]) {
    let real = inv_scale * (i as f32 + 0.5) - 0.5;
    let f = real.floor();
    let t = real - f;
    let a = -0.75;
    let w = [
        cubic2(t + 1.0, a),
        cubic1(t, a),
        cubic1(1.0 - t, a),
        cubic2(2.0 - t, a),
    ];
    let base = f as i64;
    let idx = [0, 1, 2, 3].map(|k| (base - 1 + k).clamp(0, size as i64 - 1) as usize);
    (idx, w)
}

/// Resizes an `m x m` grid of `d`-vectors (row-major) to `gh x gw` with bicubic interpolation
/// at scale factors `(g + offset) / m`.
pub fn bicubic_grid(
    src: &[f32],
    m: usize,
    d: usize,
    gh: usize,
    gw: usize,
    offset: f64,
) -> Vec<f32> {
    // The reference passes scale factors; PyTorch uses 1 / scale (in double, then float).
    let inv_y = (1.0 / ((gh as f64 + offset) / m as f64)) as f32;
    let inv_x = (1.0 / ((gw as f64 + offset) / m as f64)) as f32;
    let mut out = vec![0f32; gh * gw * d];
    let mut row = vec![0f32; d];
    for oy in 0..gh {
        let (iy, wy) = cubic_taps(oy, inv_y, m);
        for ox in 0..gw {
            let (ix, wx) = cubic_taps(ox, inv_x, m);
            let o = &mut out[(oy * gw + ox) * d..(oy * gw + ox + 1) * d];
            // Per channel: the four taps of a row, then the four rows, in that order.
            for (ky, &sy) in iy.iter().enumerate() {
                row.fill(0.0);
                for (kx, &sx) in ix.iter().enumerate() {
                    let px = &src[(sy * m + sx) * d..(sy * m + sx + 1) * d];
                    for (r, v) in row.iter_mut().zip(px) {
                        *r += v * wx[kx];
                    }
                }
                for (acc, r) in o.iter_mut().zip(&row) {
                    *acc += r * wy[ky];
                }
            }
        }
    }
    out
}
