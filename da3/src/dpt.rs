//! The dual DPT head (`depth_anything_3/model/dualdpt.py`): depth + confidence at the input
//! resolution, ray map (6 channels) + confidence at 8x the patch grid, from four taps.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Tensor, TensorData};

use crate::config::HeadConfig;
use crate::vit::PATCH;

fn conv<B: Backend>(
    cin: usize,
    cout: usize,
    k: usize,
    bias: bool,
    device: &B::Device,
) -> Conv2d<B> {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
        .with_bias(bias)
        .init(device)
}

/// Bilinear resize with `align_corners = true`.
fn resize<B: Backend>(x: Tensor<B, 4>, h: usize, w: usize) -> Tensor<B, 4> {
    interpolate(
        x,
        [h, w],
        InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(true),
    )
}

/// `ResidualConvUnit`: x + conv2(relu(conv1(relu(x)))).
#[derive(Module, Debug)]
pub struct ResidualConvUnit<B: Backend> {
    conv1: Conv2d<B>,
    conv2: Conv2d<B>,
}

impl<B: Backend> ResidualConvUnit<B> {
    fn new(f: usize, device: &B::Device) -> Self {
        ResidualConvUnit {
            conv1: conv(f, f, 3, true, device),
            conv2: conv(f, f, 3, true, device),
        }
    }
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.conv2
            .forward(relu(self.conv1.forward(relu(x.clone()))))
            + x
    }
}

/// `FeatureFusionBlock`: (top + rcu1(lateral)) -> rcu2 -> bilinear resize -> 1x1 conv.
#[derive(Module, Debug)]
pub struct FusionBlock<B: Backend> {
    res_conf_unit1: Option<ResidualConvUnit<B>>,
    res_conf_unit2: ResidualConvUnit<B>,
    out_conv: Conv2d<B>,
}

impl<B: Backend> FusionBlock<B> {
    fn new(f: usize, residual: bool, device: &B::Device) -> Self {
        FusionBlock {
            res_conf_unit1: residual.then(|| ResidualConvUnit::new(f, device)),
            res_conf_unit2: ResidualConvUnit::new(f, device),
            out_conv: conv(f, f, 1, true, device),
        }
    }
    /// Upsamples to `size`, or 2x without.
    fn forward(
        &self,
        top: Tensor<B, 4>,
        lateral: Option<Tensor<B, 4>>,
        size: Option<[usize; 2]>,
    ) -> Tensor<B, 4> {
        let mut y = top;
        if let (Some(u), Some(l)) = (&self.res_conf_unit1, lateral) {
            y = y + u.forward(l);
        }
        let y = self.res_conf_unit2.forward(y);
        let [_, _, h, w] = y.dims();
        let [oh, ow] = size.unwrap_or([2 * h, 2 * w]);
        self.out_conv.forward(resize(y, oh, ow))
    }
}

/// The main head's last stage: 3x3 conv, ReLU, 1x1 conv.
#[derive(Module, Debug)]
pub struct OutConv2<B: Backend> {
    a: Conv2d<B>,
    b: Conv2d<B>,
}

/// The ray head's last stage: 3x3 conv, LayerNorm over channels (shared by every level),
/// ReLU, 1x1 conv to 7 channels.
#[derive(Module, Debug)]
pub struct AuxOut<B: Backend> {
    a: Conv2d<B>,
    b: Conv2d<B>,
}

/// What the head predicts for `bs` views of `h x w`.
#[derive(Debug, Clone)]
pub struct HeadOut<B: Backend> {
    /// Depth `[bs, h, w]`.
    pub depth: Tensor<B, 3>,
    /// Depth confidence `[bs, h, w]` (1 + exp).
    pub depth_conf: Tensor<B, 3>,
    /// Ray map `[bs, 8 gh, 8 gw, 6]` (channels last, as the reference returns it).
    pub ray: Tensor<B, 4>,
    /// Ray confidence `[bs, 8 gh, 8 gw]`.
    pub ray_conf: Tensor<B, 3>,
}

/// The dual DPT head.
#[derive(Module, Debug)]
pub struct DualDpt<B: Backend> {
    norm: LayerNorm<B>,
    projects: Vec<Conv2d<B>>,
    resize0: ConvTranspose2d<B>,
    resize1: ConvTranspose2d<B>,
    resize3: Conv2d<B>,
    layer1_rn: Conv2d<B>,
    layer2_rn: Conv2d<B>,
    layer3_rn: Conv2d<B>,
    layer4_rn: Conv2d<B>,
    refinenet1: FusionBlock<B>,
    refinenet2: FusionBlock<B>,
    refinenet3: FusionBlock<B>,
    refinenet4: FusionBlock<B>,
    output_conv1: Conv2d<B>,
    output_conv2: OutConv2<B>,
    refinenet1_aux: FusionBlock<B>,
    refinenet2_aux: FusionBlock<B>,
    refinenet3_aux: FusionBlock<B>,
    refinenet4_aux: FusionBlock<B>,
    output_conv1_aux: Vec<Vec<Conv2d<B>>>,
    output_conv2_aux: Vec<AuxOut<B>>,
    output_conv2_aux_norm: LayerNorm<B>,
}

/// The reference's `_add_pos_embed`: a sinusoidal embedding of a UV grid normalised by the
/// image diagonal, times 0.1, for `c` channels over `h x w`. Its first `c / 2` channels depend
/// on x only and the rest on y only, so it is returned per axis: `[c / 2, w]` and `[c / 2, h]`
/// (channel-major), each channel `sin` then `cos` of the coordinate times 100^(-j / (c / 4)).
pub fn uv_pos_embed_axes(
    c: usize,
    h: usize,
    w: usize,
    img_w: usize,
    img_h: usize,
) -> (Vec<f32>, Vec<f32>) {
    let aspect = img_w as f64 / img_h as f64;
    let diag = (aspect * aspect + 1.0).sqrt();
    let (span_x, span_y) = (aspect / diag, 1.0 / diag);
    let lin = |span: f64, n: usize| -> Vec<f32> {
        let start = (-span * (n as f64 - 1.0) / n as f64) as f32;
        let end = (span * (n as f64 - 1.0) / n as f64) as f32;
        if n == 1 {
            return vec![start];
        }
        // torch.linspace: from the start for the first half, from the end for the rest.
        let step = (end - start) / (n - 1) as f32;
        (0..n)
            .map(|i| {
                if i < n / 2 {
                    start + step * i as f32
                } else {
                    end - step * (n - 1 - i) as f32
                }
            })
            .collect()
    };
    let quarter = c / 4;
    let omega: Vec<f32> = (0..quarter)
        .map(|j| 1.0 / 100f32.powf(j as f32 / quarter as f32))
        .collect();
    let axis = |coords: Vec<f32>| -> Vec<f32> {
        let n = coords.len();
        let mut out = vec![0f32; 2 * quarter * n];
        for (i, p) in coords.iter().enumerate() {
            for j in 0..quarter {
                let a = p * omega[j];
                out[j * n + i] = a.sin() * 0.1;
                out[(quarter + j) * n + i] = a.cos() * 0.1;
            }
        }
        out
    };
    (axis(lin(span_x, w)), axis(lin(span_y, h)))
}

/// `x` plus the UV embedding, built per axis and broadcast over the other.
fn add_pe<B: Backend>(x: Tensor<B, 4>, img_w: usize, img_h: usize) -> Tensor<B, 4> {
    let [_, c, h, w] = x.dims();
    let (px, py) = uv_pos_embed_axes(c, h, w, img_w, img_h);
    let device = x.device();
    let half = c / 2;
    let ex =
        Tensor::<B, 3>::from_data(TensorData::new(px, [half, 1, w]), &device).expand([half, h, w]);
    let ey =
        Tensor::<B, 3>::from_data(TensorData::new(py, [half, h, 1]), &device).expand([half, h, w]);
    x + Tensor::cat(vec![ex, ey], 0).unsqueeze::<4>()
}

impl<B: Backend> DualDpt<B> {
    /// The head of `cfg`.
    pub fn new(cfg: &HeadConfig, device: &B::Device) -> Self {
        let oc = &cfg.out_channels;
        let f = cfg.features;
        let levels = 4;
        DualDpt {
            norm: LayerNormConfig::new(cfg.dim_in).init(device),
            projects: oc
                .iter()
                .map(|o| conv(cfg.dim_in, *o, 1, true, device))
                .collect(),
            resize0: ConvTranspose2dConfig::new([oc[0], oc[0]], [4, 4])
                .with_stride([4, 4])
                .init(device),
            resize1: ConvTranspose2dConfig::new([oc[1], oc[1]], [2, 2])
                .with_stride([2, 2])
                .init(device),
            resize3: Conv2dConfig::new([oc[3], oc[3]], [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            layer1_rn: conv(oc[0], f, 3, false, device),
            layer2_rn: conv(oc[1], f, 3, false, device),
            layer3_rn: conv(oc[2], f, 3, false, device),
            layer4_rn: conv(oc[3], f, 3, false, device),
            refinenet1: FusionBlock::new(f, true, device),
            refinenet2: FusionBlock::new(f, true, device),
            refinenet3: FusionBlock::new(f, true, device),
            refinenet4: FusionBlock::new(f, false, device),
            output_conv1: conv(f, f / 2, 3, true, device),
            output_conv2: OutConv2 {
                a: conv(f / 2, 32, 3, true, device),
                b: conv(32, cfg.output_dim, 1, true, device),
            },
            refinenet1_aux: FusionBlock::new(f, true, device),
            refinenet2_aux: FusionBlock::new(f, true, device),
            refinenet3_aux: FusionBlock::new(f, true, device),
            refinenet4_aux: FusionBlock::new(f, false, device),
            output_conv1_aux: (0..levels)
                .map(|_| {
                    vec![
                        conv(f, f / 2, 3, true, device),
                        conv(f / 2, f, 3, true, device),
                        conv(f, f / 2, 3, true, device),
                        conv(f / 2, f, 3, true, device),
                        conv(f, f / 2, 3, true, device),
                    ]
                })
                .collect(),
            output_conv2_aux: (0..levels)
                .map(|_| AuxOut {
                    a: conv(f / 2, 32, 3, true, device),
                    b: conv(32, 7, 1, true, device),
                })
                .collect(),
            output_conv2_aux_norm: LayerNormConfig::new(32).init(device),
        }
    }

    /// Runs on the taps (`[bs, hw, C]` each) of `h x w` images.
    pub fn forward(&self, feats: &[Tensor<B, 3>], h: usize, w: usize) -> HeadOut<B> {
        let (ph, pw) = (h / PATCH, w / PATCH);
        let stages: Vec<Tensor<B, 4>> = feats
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let [bs, _, c] = f.dims();
                let x = self
                    .norm
                    .forward(f.clone())
                    .swap_dims(1, 2)
                    .reshape([bs, c, ph, pw]);
                let x = add_pe(self.projects[i].forward(x), w, h);
                match i {
                    0 => self.resize0.forward(x),
                    1 => self.resize1.forward(x),
                    2 => x,
                    _ => self.resize3.forward(x),
                }
            })
            .collect();
        let [s1, s2, s3, s4]: [Tensor<B, 4>; 4] = stages
            .try_into()
            .unwrap_or_else(|_| unreachable!("four taps, four stages"));
        let l1 = self.layer1_rn.forward(s1);
        let l2 = self.layer2_rn.forward(s2);
        let l3 = self.layer3_rn.forward(s3);
        let l4 = self.layer4_rn.forward(s4);
        let size = |t: &Tensor<B, 4>| {
            let d = t.dims();
            Some([d[2], d[3]])
        };
        let out = self.refinenet4.forward(l4.clone(), None, size(&l3));
        let aux = self.refinenet4_aux.forward(l4, None, size(&l3));
        let out = self.refinenet3.forward(out, Some(l3.clone()), size(&l2));
        let aux = self.refinenet3_aux.forward(aux, Some(l3), size(&l2));
        let out = self.refinenet2.forward(out, Some(l2.clone()), size(&l1));
        let aux = self.refinenet2_aux.forward(aux, Some(l2), size(&l1));
        let out = self.refinenet1.forward(out, Some(l1.clone()), None);
        let aux = self.refinenet1_aux.forward(aux, Some(l1), None);
        let out = self.output_conv1.forward(out);
        // Only the last level of the ray head is returned; the reference computes the
        // others and drops them.
        let last = self.output_conv1_aux.len() - 1;
        let aux = self.output_conv1_aux[last]
            .iter()
            .fold(aux, |x, c| c.forward(x));

        let main = add_pe(resize(out, ph * PATCH, pw * PATCH), w, h);
        let main = self
            .output_conv2
            .b
            .forward(relu(self.output_conv2.a.forward(main)));
        let [bs, oc, mh, mw] = main.dims();
        let depth = main.clone().narrow(1, 0, 1).exp().reshape([bs, mh, mw]);
        let depth_conf = main
            .narrow(1, oc - 1, 1)
            .exp()
            .add_scalar(1.0)
            .reshape([bs, mh, mw]);

        let a = add_pe(aux, w, h);
        let head = &self.output_conv2_aux[last];
        let a = head.a.forward(a).permute([0, 2, 3, 1]);
        let a = relu(self.output_conv2_aux_norm.forward(a)).permute([0, 3, 1, 2]);
        let a = head.b.forward(a).permute([0, 2, 3, 1]);
        let [_, ah, aw, _] = a.dims();
        let ray = a.clone().narrow(3, 0, 6);
        let ray_conf = a
            .narrow(3, 6, 1)
            .exp()
            .add_scalar(1.0)
            .reshape([bs, ah, aw]);
        HeadOut {
            depth,
            depth_conf,
            ray,
            ray_conf,
        }
    }
}
