//! The small multimodal model: a per-frame vision tower, a connector with a frame-index
//! embedding, and a causal language model over `[visual tokens][question][answer]`, with
//! SpatialSV's visual supervision: hidden states at the visual-token positions of 4 spread
//! language-model layers, each through a 2-layer projector, into the same DPT depth, ray and
//! point heads as the 3D model ([`crate::model::predict_from_taps`]).
//!
//! Attention is causal over the whole sequence, so the visual tokens never see the text: a
//! text-free sample's 3D predictions are exactly those of the same views with any question
//! after them (tested), and text-free samples simply carry no text loss.

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor};

use crate::model::{Block, DptHead, Prediction, Projector, part, predict_from_taps};

/// Sizes of the multimodal model (saved as `mllm.json` in the run).
#[derive(Config, Debug, PartialEq)]
pub struct MllmModelConfig {
    /// Image height.
    pub image_height: usize,
    /// Image width.
    pub image_width: usize,
    /// Patch size.
    pub patch: usize,
    /// Vision tower width.
    pub vision_width: usize,
    /// Vision tower layers.
    pub vision_layers: usize,
    /// Language model width.
    pub width: usize,
    /// Language model layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Head width (projectors and DPT heads).
    pub head_width: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Most views per sample.
    pub max_views: usize,
    /// Longest text.
    pub max_text: usize,
    /// Width of the 3D teacher's features (the distillation projection's output).
    #[config(default = 64)]
    pub teacher_width: usize,
}

impl MllmModelConfig {
    /// Patch grid (rows, columns).
    pub fn grid(&self) -> [usize; 2] {
        [
            self.image_height / self.patch,
            self.image_width / self.patch,
        ]
    }

    /// The four tapped language-model layers, evenly spread, the last included.
    pub fn tap_layers(&self) -> [usize; 4] {
        let d = self.layers.max(4);
        [d / 4 - 1, d / 2 - 1, 3 * d / 4 - 1, d - 1]
    }

    /// Multiply-adds x 2 of one forward pass of `b` samples of `v` views and `t` text tokens,
    /// 3D heads included when `heads`: projections, attention products, MLPs, convolutions
    /// (as [`crate::model::SpatialSvConfig::forward_flops`] counts them).
    pub fn forward_flops(&self, v: usize, t: usize, heads: bool) -> f64 {
        let [gh, gw] = self.grid();
        let n = (gh * gw) as f64;
        let (dv, d, f) = (
            self.vision_width as f64,
            self.width as f64,
            self.head_width as f64,
        );
        let vf = v as f64;
        let p = self.patch as f64;
        let mut flops = vf * 2.0 * 3.0 * p * p * dv * n;
        // Vision layers: frame attention over n tokens; MLP ratio 2.
        flops += self.vision_layers as f64
            * vf
            * (4.0 * 2.0 * n * dv * dv + 2.0 * 2.0 * n * n * dv + 2.0 * 2.0 * n * dv * dv * 2.0);
        flops += vf * n * 2.0 * dv * d; // connector
        let l = vf * n + t as f64;
        flops += self.layers as f64
            * (4.0 * 2.0 * l * d * d + 2.0 * 2.0 * l * l * d + 2.0 * 2.0 * l * d * d * 2.0);
        flops += t as f64 * 2.0 * d * self.vocab as f64;
        if heads {
            flops += 4.0 * vf * (2.0 * n * d * d + 2.0 * n * d * f);
            let scales = [16.0 * n, 4.0 * n, n, n / 4.0];
            let pixels = (self.image_height * self.image_width) as f64;
            for channels in [1.0, 6.0, 3.0] {
                flops += vf * scales.iter().map(|s| 2.0 * f * f * s).sum::<f64>();
                flops += vf * scales.iter().map(|s| 2.0 * 9.0 * f * f * s).sum::<f64>();
                flops += vf
                    * (2.0 * 9.0 * f * (f / 2.0) * 16.0 * n
                        + 2.0 * (f / 2.0) * (channels + 1.0) * pixels);
            }
        }
        flops
    }

    /// Builds the model.
    pub fn init<B: Backend>(&self, device: &B::Device) -> SpatialMllm<B> {
        let [gh, gw] = self.grid();
        let small = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let (dv, d) = (self.vision_width, self.width);
        SpatialMllm {
            patch_embed: Conv2dConfig::new([3, dv], [self.patch, self.patch])
                .with_stride([self.patch, self.patch])
                .init(device),
            pos_embed: small.init([1, gh * gw, dv], device),
            vision: (0..self.vision_layers)
                .map(|_| Block::new(dv, self.heads, 2, device))
                .collect(),
            connector: LinearConfig::new(dv, d).init(device),
            frame_embed: small.init([self.max_views, d], device),
            token_embed: EmbeddingConfig::new(self.vocab, d).init(device),
            text_pos: small.init([self.max_text, d], device),
            layers: (0..self.layers.max(4))
                .map(|_| Block::new(d, self.heads, 2, device))
                .collect(),
            norm: LayerNormConfig::new(d).init(device),
            lm_head: LinearConfig::new(d, self.vocab).init(device),
            projectors: (0..4)
                .map(|_| Projector::new(d, self.head_width, device))
                .collect(),
            depth_head: DptHead::new(self.head_width, 1, device),
            ray_head: DptHead::new(self.head_width, 6, device),
            point_head: DptHead::new(self.head_width, 3, device),
            distill: LinearConfig::new(d, self.teacher_width).init(device),
            taps: self.tap_layers(),
            grid: [gh, gw],
            image: [self.image_height, self.image_width],
        }
    }
}

/// The multimodal model.
#[derive(Module, Debug)]
pub struct SpatialMllm<B: Backend> {
    patch_embed: Conv2d<B>,
    pos_embed: Param<Tensor<B, 3>>,
    vision: Vec<Block<B>>,
    connector: Linear<B>,
    frame_embed: Param<Tensor<B, 2>>,
    token_embed: Embedding<B>,
    text_pos: Param<Tensor<B, 2>>,
    layers: Vec<Block<B>>,
    norm: LayerNorm<B>,
    lm_head: Linear<B>,
    projectors: Vec<Projector<B>>,
    depth_head: DptHead<B>,
    ray_head: DptHead<B>,
    point_head: DptHead<B>,
    distill: Linear<B>,
    taps: [usize; 4],
    grid: [usize; 2],
    image: [usize; 2],
}

/// What one forward pass gives.
#[derive(Debug, Clone)]
pub struct MllmOutput<B: Backend> {
    /// Next-token logits at the text positions, `[b, t, vocab]`.
    pub logits: Tensor<B, 3>,
    /// The taps' 3D predictions (when asked for).
    pub prediction: Option<Prediction<B>>,
    /// The last layer's visual hidden states mean-pooled per view and projected to the 3D
    /// teacher's width, `[b, v, teacher_width]` (for distillation).
    pub pooled: Tensor<B, 3>,
}

/// The visual tokens' states as the language model's layers see them, computed once and
/// attended to by every text continuation ([`SpatialMllm::visual_prefix`]).
#[derive(Debug, Clone)]
pub struct VisualPrefix<B: Backend> {
    /// Per layer, the normalised input of the visual tokens `[b, v*n, d]`.
    inputs: Vec<Tensor<B, 3>>,
}

impl<B: Backend> VisualPrefix<B> {
    /// The same prefix for `b` continuations (from a prefix of batch 1).
    pub fn repeat(&self, b: usize) -> VisualPrefix<B> {
        VisualPrefix {
            inputs: self
                .inputs
                .iter()
                .map(|x| x.clone().repeat_dim(0, b))
                .collect(),
        }
    }
}

/// `true` above the diagonal: position i may not attend to j > i.
fn causal_mask<B: Backend>(b: usize, l: usize, device: &B::Device) -> Tensor<B, 3, Bool> {
    burn::nn::attention::generate_autoregressive_mask::<B>(b, l, device)
}

impl<B: Backend> SpatialMllm<B> {
    /// Runs the model on `images` `[b, v, 3, h, w]` (normalised) followed by `tokens`
    /// `[b, t]`; the 3D heads run when `predict_3d`.
    pub fn forward(
        &self,
        images: Tensor<B, 5>,
        tokens: Tensor<B, 2, Int>,
        predict_3d: bool,
    ) -> MllmOutput<B> {
        let v = images.dims()[1];
        self.forward_visual(self.visual_tokens(images), v, tokens, predict_3d)
    }

    /// The visual tokens of `images` `[b, v, 3, h, w]`: the vision tower per frame, the
    /// connector and the frame-index embedding, `[b, v * n, width]`. They depend on the
    /// images alone, so decoding computes them once per clip (`forward_visual`).
    pub fn visual_tokens(&self, images: Tensor<B, 5>) -> Tensor<B, 3> {
        let [b, v, _, h, w] = images.dims();
        let n = self.grid[0] * self.grid[1];
        // Vision tower: per frame.
        let mut x = self
            .patch_embed
            .forward(images.reshape([b * v, 3, h, w]))
            .flatten::<3>(2, 3)
            .swap_dims(1, 2)
            + self.pos_embed.val();
        let mark: crate::model::Mark<'_> = &mut |_| {};
        for block in &self.vision {
            x = block.forward_masked(x, None, part::FRAME_ATTENTION, mark);
        }
        // Connector with the frame index.
        let x = self.connector.forward(x); // [b*v, n, d]
        let [_, _, d] = x.dims();
        let frame = self.frame_embed.val().narrow(0, 0, v).reshape([1, v, 1, d]);
        (x.reshape([b, v, n, d]) + frame).reshape([b, v * n, d])
    }

    /// The language model's layers over the visual tokens alone (from `visual_tokens`). The
    /// visual tokens come first and attend causally among themselves, so their states do not
    /// depend on the text that follows: [`Self::text_logits`] continues from this prefix
    /// with the same result as [`Self::forward_visual`], at the cost of the text tokens only.
    pub fn visual_prefix(&self, visual: Tensor<B, 3>) -> VisualPrefix<B> {
        let [b, vn, _] = visual.dims();
        let mask = causal_mask::<B>(b, vn, &visual.device());
        let mark: crate::model::Mark<'_> = &mut |_| {};
        let mut x = visual;
        let mut inputs = Vec::with_capacity(self.layers.len());
        for block in &self.layers {
            inputs.push(block.attention_input(x.clone()));
            x = block.forward_masked(x, Some(mask.clone()), part::GLOBAL_ATTENTION, mark);
        }
        VisualPrefix { inputs }
    }

    /// The logits `[b, t, vocab]` of `tokens` `[b, t]` after a visual prefix of the same
    /// batch: equal to `forward_visual(..).logits` up to float rounding (tested).
    pub fn text_logits(&self, prefix: &VisualPrefix<B>, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [b, t] = tokens.dims();
        let device = tokens.device();
        let d = self.text_pos.val().dims()[1];
        let p = prefix.inputs.first().map_or(0, |x| x.dims()[1]);
        let mut x = self.token_embed.forward(tokens)
            + self.text_pos.val().narrow(0, 0, t).reshape([1, t, d]);
        // Text position j attends to the whole prefix and to text positions up to j.
        let mask = Tensor::cat(
            vec![
                Tensor::<B, 3, Int>::zeros([b, t, p], &device).bool(),
                causal_mask::<B>(b, t, &device),
            ],
            2,
        );
        for (block, input) in self.layers.iter().zip(&prefix.inputs) {
            x = block.forward_after(x, input.clone(), mask.clone());
        }
        self.lm_head.forward(self.norm.forward(x))
    }

    /// The language model and heads over `visual` tokens of `v` views (from
    /// `visual_tokens`) followed by `tokens` `[b, t]`: exactly `forward`.
    pub fn forward_visual(
        &self,
        visual: Tensor<B, 3>,
        v: usize,
        tokens: Tensor<B, 2, Int>,
        predict_3d: bool,
    ) -> MllmOutput<B> {
        let [b, vn, d] = visual.dims();
        let [_, t] = tokens.dims();
        let [gh, gw] = self.grid;
        let [h, w] = self.image;
        let n = gh * gw;
        debug_assert_eq!(vn, v * n, "visual tokens of {v} views");
        let device = visual.device();
        let mark: crate::model::Mark<'_> = &mut |_| {};
        // Text.
        let text = self.token_embed.forward(tokens)
            + self.text_pos.val().narrow(0, 0, t).reshape([1, t, d]);
        let l = v * n + t;
        let mut x = Tensor::cat(vec![visual, text], 1);
        let mask = causal_mask::<B>(b, l, &device);
        let mut taps = Vec::with_capacity(4);
        for (i, block) in self.layers.iter().enumerate() {
            x = block.forward_masked(x, Some(mask.clone()), part::GLOBAL_ATTENTION, mark);
            if predict_3d && self.taps.contains(&i) {
                taps.push(x.clone().narrow(1, 0, v * n));
            }
        }
        let x = self.norm.forward(x);
        let pooled = self.distill.forward(
            x.clone()
                .narrow(1, 0, v * n)
                .reshape([b, v, n, d])
                .mean_dim(2)
                .reshape([b, v, d]),
        );
        let logits = self.lm_head.forward(x.narrow(1, v * n, t));
        let prediction = predict_3d.then(|| {
            let maps: Vec<Tensor<B, 4>> = taps
                .into_iter()
                .zip(&self.projectors)
                .map(|(tap, p)| {
                    let y = p.forward(tap.reshape([b * v, n, d])); // [b*v, n, f]
                    let [_, _, f] = y.dims();
                    y.swap_dims(1, 2).reshape([b * v, f, gh, gw])
                })
                .collect();
            let maps = [
                maps[0].clone(),
                maps[1].clone(),
                maps[2].clone(),
                maps[3].clone(),
            ];
            predict_from_taps(
                [&self.depth_head, &self.ray_head, &self.point_head],
                &maps,
                [b, v],
                [h, w],
                &mut |_| {},
            )
        });
        MllmOutput {
            logits,
            prediction,
            pooled,
        }
    }

    /// The configured input size (height, width).
    pub fn image_size(&self) -> [usize; 2] {
        self.image
    }

    /// The model with its vision tower (patch embedding, position embedding, vision layers)
    /// frozen.
    pub fn freeze_vision(mut self) -> Self {
        self.patch_embed = self.patch_embed.no_grad();
        self.pos_embed = self.pos_embed.set_require_grad(false);
        self.vision = self.vision.into_iter().map(|b| b.no_grad()).collect();
        self
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, TensorData};

    use super::*;
    use crate::backend::{Backend as B, default_device};

    pub(crate) fn tiny() -> MllmModelConfig {
        MllmModelConfig::new(16, 16, 8, 16, 1, 16, 4, 2, 8, 12, 4, 10).with_teacher_width(10)
    }

    #[test]
    fn text_after_a_visual_prefix_gives_the_full_forwards_logits() {
        let device = default_device();
        let m = tiny().init::<B>(&device);
        let images =
            Tensor::<B, 5>::random([1, 3, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
        let tokens = Tensor::<B, 2, Int>::from_data(
            TensorData::new(vec![1i64, 5, 6, 2, 7, 3, 1, 8, 9, 2, 0, 0], [2, 6]),
            &device,
        );
        let visual = m.visual_tokens(images);
        let full = m
            .forward_visual(visual.clone().repeat_dim(0, 2), 3, tokens.clone(), false)
            .logits
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let prefix = m.visual_prefix(visual).repeat(2);
        let cached = m
            .text_logits(&prefix, tokens)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert_eq!(full.len(), cached.len());
        let worst = full
            .iter()
            .zip(&cached)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "largest difference {worst}");
    }

    #[test]
    fn shapes_and_text_never_changes_the_visual_part() {
        let device = default_device();
        let m = tiny().init::<B>(&device);
        let images =
            Tensor::<B, 5>::random([2, 3, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
        let a = Tensor::<B, 2, Int>::from_data(
            TensorData::new(vec![1i64, 5, 6, 2, 7, 3, 1, 8, 9, 2, 0, 0], [2, 6]),
            &device,
        );
        let out = m.forward(images.clone(), a, true);
        assert_eq!(out.logits.dims(), [2, 6, 12]);
        assert_eq!(out.pooled.dims(), [2, 3, 10]);
        let p = out.prediction.unwrap();
        assert_eq!(p.depth.dims(), [2, 3, 16, 16]);
        assert_eq!(p.rays.dims(), [2, 3, 6, 16, 16]);
        // Other text after the same views (and none at all): the same 3D and pooled features,
        // and the same logits at the positions before the first change (causal attention).
        let b = Tensor::<B, 2, Int>::from_data(
            TensorData::new(vec![1i64, 5, 6, 11, 10, 4, 0, 0, 0, 0, 0, 0], [2, 6]),
            &device,
        );
        let out_b = m.forward(images.clone(), b, true);
        let pb = out_b.prediction.unwrap();
        let diff = |x: Tensor<B, 4>, y: Tensor<B, 4>| (x - y).abs().max().into_scalar();
        assert!(diff(p.depth.clone(), pb.depth) < 1e-5);
        assert!(
            (out.pooled.clone() - out_b.pooled)
                .abs()
                .max()
                .into_scalar()
                < 1e-5
        );
        let first3 = |l: Tensor<B, 3>| l.narrow(0, 0, 1).narrow(1, 0, 3);
        assert!(
            (first3(out.logits.clone()) - first3(out_b.logits.clone()))
                .abs()
                .max()
                .into_scalar()
                < 1e-5
        );
        let later = |l: Tensor<B, 3>| l.narrow(0, 0, 1).narrow(1, 3, 1);
        assert!(
            (later(out.logits) - later(out_b.logits))
                .abs()
                .max()
                .into_scalar()
                > 1e-6,
            "a later token changed nothing: not attending to text?"
        );
        let empty = Tensor::<B, 2, Int>::zeros([2, 1], &device);
        let pe = m.forward(images, empty, true).prediction.unwrap();
        assert!(diff(p.depth, pe.depth) < 1e-5);
    }

    #[test]
    fn one_clips_visual_tokens_serve_every_prompt() {
        // Decoding computes the visual tokens of a clip once and repeats them for each
        // question: the logits must be those of a batch of the same images.
        let device = default_device();
        let m = tiny().init::<B>(&device);
        let one =
            Tensor::<B, 5>::random([1, 2, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
        let tokens = Tensor::<B, 2, Int>::from_data(
            TensorData::new(vec![1i64, 5, 6, 2, 1, 8, 9, 2], [2, 4]),
            &device,
        );
        let direct = m.forward(one.clone().repeat_dim(0, 2), tokens.clone(), true);
        let visual = m.visual_tokens(one).repeat_dim(0, 2);
        let cached = m.forward_visual(visual, 2, tokens, true);
        let d = (direct.logits - cached.logits).abs().max().into_scalar();
        assert!(d < 1e-5, "logits differ by {d}");
        let (pd, pc) = (direct.prediction.unwrap(), cached.prediction.unwrap());
        assert!((pd.points - pc.points).abs().max().into_scalar() < 1e-5);
    }
}
