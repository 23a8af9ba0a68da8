//! The SpatialSV model: 2D visual tokens lifted into explicit 3D outputs.
//!
//! Follows SpatialSV (arXiv 2606.19915; DOMAIN.md section 1) with a VGGT-style trunk:
//!
//! 1. a ViT-style patch encoder per frame (the vision tower): a strided convolution into
//!    `width`-dim tokens plus learned position embeddings;
//! 2. a transformer trunk over all visual tokens of a clip of V frames that alternates
//!    frame-wise attention (tokens of one frame) and global attention (all frames), with a
//!    learned camera token per frame and a learned marker on the first (reference) frame;
//! 3. hidden states tapped from 4 evenly spread trunk layers, each through its own 2-layer
//!    projector into the head width;
//! 4. three task-decoupled DPT-style dense heads fed by all four taps: depth (1 channel),
//!    ray map (6: origin and unit direction) and point map (3, in the first frame's camera
//!    coordinates), each with a confidence channel `c = 1 + exp(x)`.
//!
//! Run the shape tests with `cargo test -p spatialsv-trainer model`.

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::Tensor;
use burn::tensor::activation::{gelu, relu};
use burn::tensor::backend::Backend;

use crate::conv;
use crate::resize::resize;

/// Names of the parts of a forward pass, as [`SpatialSv::forward_marked`] reports them and
/// [`SpatialSvConfig::forward_flops_by_part`] counts them.
pub mod part {
    /// The strided patch convolution, position embeddings and camera tokens.
    pub const EMBED: &str = "encoder: patch embedding";
    /// Frame-wise attention layers (norm, q/k/v/out projections, attention).
    pub const FRAME_ATTENTION: &str = "trunk: frame attention";
    /// Global (clip-wide) attention layers.
    pub const GLOBAL_ATTENTION: &str = "trunk: global attention";
    /// The trunk's MLPs (norm, two linear layers, GELU).
    pub const MLP: &str = "trunk: MLPs";
    /// The four 2-layer projectors from taps to head width.
    pub const PROJECTORS: &str = "projectors";
    /// Every bilinear resize inside the three DPT heads.
    pub const HEAD_RESIZE: &str = "heads: bilinear resizes";
    /// The heads' 1x1 reassemble convolutions.
    pub const HEAD_REASSEMBLE: &str = "heads: reassemble 1x1 convs";
    /// The heads' 3x3 fusion convolutions with their residuals.
    pub const HEAD_FUSE: &str = "heads: fusion 3x3 convs";
    /// The heads' last two convolutions.
    pub const HEAD_OUT: &str = "heads: output convs";
    /// exp, confidences, ray normalisation and reshapes into the prediction.
    pub const OUTPUTS: &str = "outputs: activations";
}

/// Sizes of the model. One type for every preset.
#[derive(Config, Debug, PartialEq)]
pub struct SpatialSvConfig {
    /// Input image height (pixels, a multiple of `patch`).
    #[config(default = 64)]
    pub image_height: usize,
    /// Input image width (pixels, a multiple of `patch`).
    #[config(default = 80)]
    pub image_width: usize,
    /// Patch size of the encoder.
    #[config(default = 8)]
    pub patch: usize,
    /// Token width of the encoder and trunk.
    #[config(default = 64)]
    pub width: usize,
    /// Trunk layers (alternating frame-wise and global attention).
    #[config(default = 4)]
    pub depth: usize,
    /// Attention heads.
    #[config(default = 4)]
    pub heads: usize,
    /// MLP hidden size as a multiple of `width`.
    #[config(default = 2)]
    pub mlp_ratio: usize,
    /// Width of the projectors' outputs and of the dense heads.
    #[config(default = 32)]
    pub head_width: usize,
    /// Most frames per clip.
    #[config(default = 8)]
    pub max_frames: usize,
}

impl SpatialSvConfig {
    /// The tiny preset: trains on a 2-core CPU.
    pub fn tiny() -> Self {
        Self::new()
    }

    /// A small GPU preset.
    pub fn small() -> Self {
        Self::new()
            .with_image_height(224)
            .with_image_width(224)
            .with_patch(14)
            .with_width(384)
            .with_depth(12)
            .with_heads(6)
            .with_mlp_ratio(4)
            .with_head_width(128)
    }

    /// A base GPU preset.
    pub fn base() -> Self {
        Self::small()
            .with_width(768)
            .with_depth(24)
            .with_heads(12)
            .with_head_width(256)
    }

    /// Patch grid (rows, columns).
    pub fn grid(&self) -> (usize, usize) {
        (
            self.image_height / self.patch,
            self.image_width / self.patch,
        )
    }

    /// Trunk layers whose outputs feed the heads: 4 evenly spread, the last included.
    pub fn tap_layers(&self) -> [usize; 4] {
        let d = self.depth.max(4);
        [d / 4 - 1, d / 2 - 1, 3 * d / 4 - 1, d - 1]
    }

    /// Multiply-adds x 2 of one forward pass over a clip of `v` frames, counted layer by
    /// layer (convolutions, projections, attention products, MLPs, heads); elementwise ops,
    /// norms and interpolation are left out. Training costs about three times this.
    pub fn forward_flops(&self, v: usize) -> f64 {
        self.forward_flops_by_part(v).iter().map(|(_, f)| f).sum()
    }

    /// [`Self::forward_flops`] split into the parts that [`SpatialSv::forward_marked`] times,
    /// named alike (parts without counted FLOPs, such as resizes, are absent).
    pub fn forward_flops_by_part(&self, v: usize) -> Vec<(&'static str, f64)> {
        let (gh, gw) = self.grid();
        let n = (gh * gw) as f64;
        let (d, f, vf) = (self.width as f64, self.head_width as f64, v as f64);
        let t = n + 1.0;
        let p = self.patch as f64;
        let embed = vf * 2.0 * 3.0 * p * p * d * n;
        let (mut frame_attn, mut global_attn, mut mlp) = (0.0, 0.0, 0.0);
        for layer in 0..self.depth.max(4) {
            let proj = vf * 4.0 * 2.0 * t * d * d; // q, k, v, out
            mlp += vf * 2.0 * 2.0 * t * d * d * self.mlp_ratio as f64;
            if layer % 2 == 0 {
                frame_attn += proj + vf * 2.0 * 2.0 * t * t * d; // per frame
            } else {
                global_attn += proj + 2.0 * 2.0 * (vf * t) * (vf * t) * d; // across the clip
            }
        }
        let projectors = 4.0 * vf * (2.0 * n * d * d + 2.0 * n * d * f);
        let scales = [16.0 * n, 4.0 * n, n, n / 4.0];
        let pixels = (self.image_height * self.image_width) as f64;
        let (mut reassemble, mut fuse, mut out) = (0.0, 0.0, 0.0);
        for channels in [1.0, 6.0, 3.0] {
            reassemble += vf * scales.iter().map(|s| 2.0 * f * f * s).sum::<f64>();
            fuse += vf * scales.iter().map(|s| 2.0 * 9.0 * f * f * s).sum::<f64>();
            out += vf
                * (2.0 * 9.0 * f * (f / 2.0) * 16.0 * n
                    + 2.0 * (f / 2.0) * (channels + 1.0) * pixels);
        }
        vec![
            (part::EMBED, embed),
            (part::FRAME_ATTENTION, frame_attn),
            (part::GLOBAL_ATTENTION, global_attn),
            (part::MLP, mlp),
            (part::PROJECTORS, projectors),
            (part::HEAD_REASSEMBLE, reassemble),
            (part::HEAD_FUSE, fuse),
            (part::HEAD_OUT, out),
        ]
    }

    /// Builds the model.
    pub fn init<B: Backend>(&self, device: &B::Device) -> SpatialSv<B> {
        let (gh, gw) = self.grid();
        let tokens = gh * gw;
        let d = self.width;
        let blocks = (0..self.depth.max(4))
            .map(|_| Block::new(d, self.heads, self.mlp_ratio, device))
            .collect();
        let projectors = (0..4)
            .map(|_| Projector::new(d, self.head_width, device))
            .collect();
        let small = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        SpatialSv {
            patch_embed: Conv2dConfig::new([3, d], [self.patch, self.patch])
                .with_stride([self.patch, self.patch])
                .init(device),
            pos_embed: small.init([1, tokens, d], device),
            camera_token: small.init([1, 1, d], device),
            reference_marker: small.init([1, 1, d], device),
            blocks,
            projectors,
            depth_head: DptHead::new(self.head_width, 1, device),
            ray_head: DptHead::new(self.head_width, 6, device),
            point_head: DptHead::new(self.head_width, 3, device),
            taps: self.tap_layers(),
            grid: [gh, gw],
            image: [self.image_height, self.image_width],
        }
    }
}

/// One trunk layer: pre-norm attention and MLP with residuals.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    norm1: LayerNorm<B>,
    attn: MultiHeadAttention<B>,
    norm2: LayerNorm<B>,
    fc1: Linear<B>,
    fc2: Linear<B>,
}

impl<B: Backend> Block<B> {
    /// A pre-norm layer of `width` with `heads` heads and an MLP of `mlp_ratio` x `width`.
    pub fn new(width: usize, heads: usize, mlp_ratio: usize, device: &B::Device) -> Self {
        Block {
            norm1: LayerNormConfig::new(width).init(device),
            attn: MultiHeadAttentionConfig::new(width, heads)
                .with_dropout(0.0)
                .init(device),
            norm2: LayerNormConfig::new(width).init(device),
            fc1: LinearConfig::new(width, width * mlp_ratio).init(device),
            fc2: LinearConfig::new(width * mlp_ratio, width).init(device),
        }
    }

    fn forward(&self, x: Tensor<B, 3>, attention: &'static str, mark: Mark<'_>) -> Tensor<B, 3> {
        self.forward_masked(x, None, attention, mark)
    }

    /// [`Self::forward`] with an attention mask (`true` = may not attend), e.g. causal.
    pub fn forward_masked(
        &self,
        x: Tensor<B, 3>,
        mask: Option<Tensor<B, 3, burn::tensor::Bool>>,
        attention: &'static str,
        mark: Mark<'_>,
    ) -> Tensor<B, 3> {
        let input = MhaInput::self_attn(self.norm1.forward(x.clone()));
        let input = match mask {
            Some(m) => input.mask_attn(m),
            None => input,
        };
        let h = self.attn.forward(input).context;
        let x = x + h;
        mark(attention);
        let h = self
            .fc2
            .forward(gelu(self.fc1.forward(self.norm2.forward(x.clone()))));
        let x = x + h;
        mark(part::MLP);
        x
    }
}

impl<B: Backend> Block<B> {
    /// The layer's normalised input, what its attention reads keys and values from: kept for
    /// tokens whose states later tokens attend to (a prefix cache).
    pub fn attention_input(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.norm1.forward(x)
    }

    /// [`Self::forward_masked`] for the tokens `x` that follow a prefix whose
    /// [`Self::attention_input`] at this layer is `prefix` `[b, p, d]`: queries from `x`, keys
    /// and values from the prefix and `x`; `mask` `[b, t, p + t]` (`true` = may not attend).
    /// The same arithmetic as running the whole sequence when the prefix attends only to
    /// itself (causal attention with the prefix first).
    pub fn forward_after(
        &self,
        x: Tensor<B, 3>,
        prefix: Tensor<B, 3>,
        mask: Tensor<B, 3, burn::tensor::Bool>,
    ) -> Tensor<B, 3> {
        let q = self.norm1.forward(x.clone());
        let kv = Tensor::cat(vec![prefix, q.clone()], 1);
        let h = self
            .attn
            .forward(MhaInput::new(q, kv.clone(), kv).mask_attn(mask))
            .context;
        let x = x + h;
        let h = self
            .fc2
            .forward(gelu(self.fc1.forward(self.norm2.forward(x.clone()))));
        x + h
    }
}

/// Called after each part of a forward pass with the part's name (see [`part`]).
pub type Mark<'a> = &'a mut dyn FnMut(&'static str);

/// A tap's 2-layer projector into the head width.
#[derive(Module, Debug)]
pub struct Projector<B: Backend> {
    fc1: Linear<B>,
    fc2: Linear<B>,
}

impl<B: Backend> Projector<B> {
    /// `inp` -> `inp` (GELU) -> `out`.
    pub fn new(inp: usize, out: usize, device: &B::Device) -> Self {
        Projector {
            fc1: LinearConfig::new(inp, inp).init(device),
            fc2: LinearConfig::new(inp, out).init(device),
        }
    }

    /// Applies it to `[n, tokens, inp]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.fc2.forward(gelu(self.fc1.forward(x)))
    }
}

/// A DPT-style dense head: the four taps are reassembled into feature maps at four scales
/// (4x, 2x, 1x and 1/2x the patch grid), fused coarse to fine with residual convolution
/// units, and upsampled to the image resolution; the last convolution gives `channels`
/// values plus one confidence logit per pixel.
#[derive(Module, Debug)]
pub struct DptHead<B: Backend> {
    reassemble: Vec<Conv2d<B>>,
    fuse: Vec<Conv2d<B>>,
    out1: Conv2d<B>,
    out2: Conv2d<B>,
}

fn conv<B: Backend>(cin: usize, cout: usize, k: usize, device: &B::Device) -> Conv2d<B> {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_padding(PaddingConfig2d::Same)
        .init(device)
}

impl<B: Backend> DptHead<B> {
    /// A head of `width` channels predicting `channels` values and a confidence per pixel.
    pub fn new(width: usize, channels: usize, device: &B::Device) -> Self {
        Self {
            reassemble: (0..4).map(|_| conv(width, width, 1, device)).collect(),
            fuse: (0..4).map(|_| conv(width, width, 3, device)).collect(),
            out1: conv(width, width / 2, 3, device),
            out2: conv(width / 2, channels + 1, 1, device),
        }
    }

    /// `taps`: four `[n, head_width, gh, gw]` maps, shallow to deep. Returns
    /// `[n, channels + 1, image_h, image_w]` raw outputs.
    fn forward(&self, taps: &[Tensor<B, 4>; 4], image: [usize; 2], mark: Mark<'_>) -> Tensor<B, 4> {
        let [_, _, gh, gw] = taps[0].dims();
        let sizes = [
            [gh * 4, gw * 4],
            [gh * 2, gw * 2],
            [gh, gw],
            [gh.div_ceil(2), gw.div_ceil(2)],
        ];
        let mut maps: Vec<Tensor<B, 4>> = Vec::with_capacity(4);
        for ((t, conv), size) in taps.iter().zip(&self.reassemble).zip(sizes) {
            let t = resize(t.clone(), size);
            mark(part::HEAD_RESIZE);
            maps.push(conv::forward(conv, t));
            mark(part::HEAD_REASSEMBLE);
        }
        // Coarse to fine: the deepest (smallest) map is upsampled into each finer one.
        let mut fused = relu(conv::forward(&self.fuse[3], maps[3].clone()));
        mark(part::HEAD_FUSE);
        for level in (0..3).rev() {
            let up = resize(fused, sizes[level]);
            mark(part::HEAD_RESIZE);
            let x = up + maps[level].clone();
            fused = x.clone() + relu(conv::forward(&self.fuse[level], x));
            mark(part::HEAD_FUSE);
        }
        let x = relu(conv::forward(&self.out1, fused));
        mark(part::HEAD_OUT);
        let x = resize(x, image);
        mark(part::HEAD_RESIZE);
        let x = conv::forward(&self.out2, x);
        mark(part::HEAD_OUT);
        x
    }
}

/// The model.
#[derive(Module, Debug)]
pub struct SpatialSv<B: Backend> {
    patch_embed: Conv2d<B>,
    pos_embed: Param<Tensor<B, 3>>,
    camera_token: Param<Tensor<B, 3>>,
    reference_marker: Param<Tensor<B, 3>>,
    blocks: Vec<Block<B>>,
    projectors: Vec<Projector<B>>,
    depth_head: DptHead<B>,
    ray_head: DptHead<B>,
    point_head: DptHead<B>,
    taps: [usize; 4],
    grid: [usize; 2],
    image: [usize; 2],
}

/// What the model predicts for a clip of `b` clips of `v` frames at `h` x `w`.
#[derive(Debug, Clone)]
pub struct Prediction<B: Backend> {
    /// Depth, `[b, v, h, w]`, positive (in the normalised scene scale).
    pub depth: Tensor<B, 4>,
    /// Depth confidence, `[b, v, h, w]`, >= 1.
    pub depth_conf: Tensor<B, 4>,
    /// Ray map, `[b, v, 6, h, w]`: origin (3) then unit direction (3), first-camera frame.
    pub rays: Tensor<B, 5>,
    /// Ray confidence, `[b, v, h, w]`.
    pub ray_conf: Tensor<B, 4>,
    /// Point map, `[b, v, 3, h, w]`, first-camera frame.
    pub points: Tensor<B, 5>,
    /// Point confidence, `[b, v, h, w]`.
    pub point_conf: Tensor<B, 4>,
}

/// `c = 1 + exp(x)`, clamped so a wild logit cannot overflow.
fn confidence<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clamp(-20.0, 20.0).exp() + 1.0
}

/// The dense predictions from four projected tap maps (`[b * v, head_width, gh, gw]` each,
/// shallow to deep) through the depth, ray and point heads, with the output activations:
/// shared by [`SpatialSv`] and the multimodal model ([`crate::mllm`]), whose taps come from its
/// language model's hidden states at the visual tokens.
pub fn predict_from_taps<B: Backend>(
    heads: [&DptHead<B>; 3],
    maps: &[Tensor<B, 4>; 4],
    [b, v]: [usize; 2],
    [h, w]: [usize; 2],
    mark: Mark<'_>,
) -> Prediction<B> {
    let image = [h, w];
    let depth_raw = heads[0].forward(maps, image, mark); // [bv, 2, h, w]
    let ray_raw = heads[1].forward(maps, image, mark); // [bv, 7, h, w]
    let point_raw = heads[2].forward(maps, image, mark); // [bv, 4, h, w]

    let depth = depth_raw
        .clone()
        .narrow(1, 0, 1)
        .clamp(-10.0, 10.0)
        .exp()
        .reshape([b, v, h, w]);
    let depth_conf = confidence(depth_raw.narrow(1, 1, 1)).reshape([b, v, h, w]);
    let origin = ray_raw.clone().narrow(1, 0, 3);
    let dir = ray_raw.clone().narrow(1, 3, 3);
    let norm = dir
        .clone()
        .powf_scalar(2.0)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-6);
    let dir = dir / norm;
    let rays = Tensor::cat(vec![origin, dir], 1).reshape([b, v, 6, h, w]);
    let ray_conf = confidence(ray_raw.narrow(1, 6, 1)).reshape([b, v, h, w]);
    let points = point_raw.clone().narrow(1, 0, 3).reshape([b, v, 3, h, w]);
    let point_conf = confidence(point_raw.narrow(1, 3, 1)).reshape([b, v, h, w]);
    mark(part::OUTPUTS);
    Prediction {
        depth,
        depth_conf,
        rays,
        ray_conf,
        points,
        point_conf,
    }
}

impl<B: Backend> SpatialSv<B> {
    /// Runs the model on `images`, `[b, v, 3, h, w]`, normalised to about zero mean and unit
    /// variance; `h` and `w` must be the configured image size.
    pub fn forward(&self, images: Tensor<B, 5>) -> Prediction<B> {
        self.forward_marked(images, &mut |_| {})
    }

    /// [`Self::forward`], calling `mark` with each part's name (see [`part`]) as soon as the
    /// part's operations have been issued. On an eager backend (the CPU's) the time between
    /// two calls is the part's time; the profile bench (`trainer/benches/profile.rs`) uses it.
    pub fn forward_marked(&self, images: Tensor<B, 5>, mark: Mark<'_>) -> Prediction<B> {
        let [b, v, _, h, w] = images.dims();
        let [gh, gw] = self.grid;
        let n = gh * gw;
        let (_, taps) = self.trunk(images, mark);
        let maps: Vec<Tensor<B, 4>> = taps
            .into_iter()
            .zip(&self.projectors)
            .map(|(t, p)| {
                let t = p.forward(t.narrow(1, 1, n)); // drop the camera token
                let [_, _, f] = t.dims();
                t.swap_dims(1, 2).reshape([b * v, f, gh, gw])
            })
            .collect();
        let maps: [Tensor<B, 4>; 4] = [
            maps[0].clone(),
            maps[1].clone(),
            maps[2].clone(),
            maps[3].clone(),
        ];
        mark(part::PROJECTORS);

        predict_from_taps(
            [&self.depth_head, &self.ray_head, &self.point_head],
            &maps,
            [b, v],
            [h, w],
            mark,
        )
    }

    /// The last trunk layer's patch tokens mean-pooled per frame, `[b, v, width]`: the 3D
    /// teacher's features that the multimodal model's optional distillation aligns with.
    pub fn pooled_features(&self, images: Tensor<B, 5>) -> Tensor<B, 3> {
        let [b, v, _, _, _] = images.dims();
        let n = self.grid[0] * self.grid[1];
        let (x, _) = self.trunk(images, &mut |_| {});
        let [_, _, d] = x.dims();
        x.narrow(1, 1, n).mean_dim(1).reshape([b, v, d])
    }

    /// The encoder and the trunk: the last layer's tokens `[b * v, 1 + n, width]` (camera
    /// token first) and the tapped layers' outputs, shallow to deep.
    fn trunk(&self, images: Tensor<B, 5>, mark: Mark<'_>) -> (Tensor<B, 3>, Vec<Tensor<B, 3>>) {
        let [b, v, _, h, w] = images.dims();
        let [gh, gw] = self.grid;
        let n = gh * gw;
        let frames = images.reshape([b * v, 3, h, w]);
        // [b*v, d, gh, gw] -> [b*v, n, d]
        let tokens = conv::forward(&self.patch_embed, frames)
            .flatten::<3>(2, 3)
            .swap_dims(1, 2);
        let [_, _, d] = tokens.dims();
        let tokens = tokens + self.pos_embed.val();
        let camera = self.camera_token.val().expand([b * v, 1, d]);
        let mut x = Tensor::cat(vec![camera, tokens], 1); // [b*v, 1+n, d]
        // Mark every token of the first frame of each clip as the reference.
        let marker = self.reference_marker.val().reshape([1, 1, 1, d]);
        let first = Tensor::<B, 1>::from_floats(
            (0..v)
                .map(|i| if i == 0 { 1.0 } else { 0.0 })
                .collect::<Vec<f32>>()
                .as_slice(),
            &x.device(),
        )
        .reshape([1, v, 1, 1]);
        x = (x.reshape([b, v, 1 + n, d]) + marker * first).reshape([b * v, 1 + n, d]);
        mark(part::EMBED);

        let mut taps = Vec::with_capacity(4);
        for (i, block) in self.blocks.iter().enumerate() {
            x = if i % 2 == 0 {
                block.forward(x, part::FRAME_ATTENTION, mark)
            } else {
                block
                    .forward(x.reshape([b, v * (1 + n), d]), part::GLOBAL_ATTENTION, mark)
                    .reshape([b * v, 1 + n, d])
            };
            if self.taps.contains(&i) {
                taps.push(x.clone());
            }
        }
        (x, taps)
    }

    /// The configured input size (height, width).
    pub fn image_size(&self) -> [usize; 2] {
        self.image
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;

    use super::*;
    use crate::backend::{TrainBackend, default_device};

    #[test]
    fn every_head_has_the_right_shape() {
        let _rng = crate::backend::rng_guard();
        let device = default_device();
        let cfg = SpatialSvConfig::tiny()
            .with_image_height(32)
            .with_image_width(48)
            .with_width(32)
            .with_head_width(16);
        let model = cfg.init::<TrainBackend>(&device);
        let images = Tensor::<TrainBackend, 5>::random(
            [2, 3, 3, 32, 48],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let p = model.forward(images);
        assert_eq!(p.depth.dims(), [2, 3, 32, 48]);
        assert_eq!(p.depth_conf.dims(), [2, 3, 32, 48]);
        assert_eq!(p.rays.dims(), [2, 3, 6, 32, 48]);
        assert_eq!(p.points.dims(), [2, 3, 3, 32, 48]);
        // Confidences are >= 1, depth positive, ray directions unit length.
        assert!(p.depth_conf.clone().min().into_scalar() >= 1.0);
        assert!(p.depth.clone().min().into_scalar() > 0.0);
        let dir_norm = p
            .rays
            .clone()
            .narrow(2, 3, 3)
            .powf_scalar(2.0)
            .sum_dim(2)
            .sqrt();
        let err = (dir_norm - 1.0).abs().max().into_scalar();
        assert!(err < 1e-4, "{err}");
    }

    #[test]
    fn gradients_reach_every_head_and_the_encoder() {
        let _rng = crate::backend::rng_guard();
        let device = default_device();
        let cfg = crate::backend::test_model_config(16, 8);
        let model = cfg.init::<TrainBackend>(&device);
        let images = Tensor::<TrainBackend, 5>::random(
            [1, 2, 3, 16, 16],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let p = model.forward(images);
        let loss = p.depth.sum() + p.rays.sum() + p.points.sum();
        let grads = loss.backward();
        for (name, g) in [
            ("patch_embed", model.patch_embed.weight.grad(&grads)),
            ("depth_head", model.depth_head.out2.weight.grad(&grads)),
            ("ray_head", model.ray_head.out2.weight.grad(&grads)),
            ("point_head", model.point_head.out2.weight.grad(&grads)),
            (
                "camera_token",
                model
                    .camera_token
                    .grad(&grads)
                    .map(|t| t.reshape([1, 1, 1, 16])),
            ),
        ] {
            let g = g.unwrap_or_else(|| panic!("no gradient for {name}"));
            assert!(
                g.abs().sum().into_scalar() > 0.0,
                "zero gradient for {name}"
            );
        }
    }

    #[test]
    fn flop_count_by_hand_for_a_minimal_config() {
        // 8x8 image, patch 8: one token (+ camera token) per frame, width 2, head width 2.
        let cfg = SpatialSvConfig::tiny()
            .with_image_height(8)
            .with_image_width(8)
            .with_width(2)
            .with_head_width(2)
            .with_mlp_ratio(1)
            .with_depth(4);
        let (d, f, t, n) = (2.0, 2.0, 2.0, 1.0);
        let embed = 2.0 * 3.0 * 64.0 * d * n;
        let proj = 8.0 * t * d * d;
        let mlp = 4.0 * t * d * d;
        let frame_attn = 4.0 * t * t * d;
        let global_attn = 4.0 * t * t * d; // one frame: the clip is the frame
        let trunk = 4.0 * (proj + mlp) + 2.0 * frame_attn + 2.0 * global_attn;
        let projectors = 4.0 * (2.0 * n * d * d + 2.0 * n * d * f);
        let scales = 16.0 + 4.0 + 1.0 + 0.25;
        let head = |c: f64| {
            2.0 * f * f * scales
                + 18.0 * f * f * scales
                + 18.0 * f * 1.0 * 16.0
                + 2.0 * 1.0 * (c + 1.0) * 64.0
        };
        let want = embed + trunk + projectors + head(1.0) + head(6.0) + head(3.0);
        assert!(
            (cfg.forward_flops(1) - want).abs() < 1e-6,
            "{} vs {want}",
            cfg.forward_flops(1)
        );
        // Global attention grows quadratically with the clip, the rest linearly.
        assert!(cfg.forward_flops(4) > 4.0 * cfg.forward_flops(1));
    }

    /// Every part the profile times is marked, in the order the pass runs them, and every part
    /// with counted FLOPs is one that is timed; marking changes nothing in the outputs.
    #[test]
    fn marked_forward_names_every_part_and_predicts_the_same() {
        let _rng = crate::backend::rng_guard();
        let device = default_device();
        let cfg = crate::backend::test_model_config(16, 8);
        let model = cfg.init::<crate::Backend>(&device);
        let images = Tensor::<crate::Backend, 5>::random(
            [1, 2, 3, 16, 16],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let mut seen: Vec<&'static str> = Vec::new();
        let marked = model.forward_marked(images.clone(), &mut |p| seen.push(p));
        let plain = model.forward(images);
        let diff: f32 = (marked.depth - plain.depth).abs().max().into_scalar();
        assert_eq!(diff, 0.0);
        assert_eq!(seen.first(), Some(&part::EMBED));
        assert_eq!(seen.last(), Some(&part::OUTPUTS));
        // 4 layers: attention + MLP each; 3 heads x (4 + 4 + 1 resizes/convs ...).
        assert_eq!(seen.iter().filter(|p| **p == part::MLP).count(), 4);
        assert_eq!(seen.iter().filter(|p| **p == part::HEAD_OUT).count(), 6);
        for (name, flops) in cfg.forward_flops_by_part(2) {
            assert!(flops > 0.0, "{name}");
            assert!(seen.contains(&name), "{name} has FLOPs but is never marked");
        }
    }

    #[test]
    fn taps_are_spread_and_include_the_last_layer() {
        assert_eq!(SpatialSvConfig::tiny().tap_layers(), [0, 1, 2, 3]);
        assert_eq!(SpatialSvConfig::small().tap_layers(), [2, 5, 8, 11]);
        assert_eq!(SpatialSvConfig::base().tap_layers(), [5, 11, 17, 23]);
    }
}
