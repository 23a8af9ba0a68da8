//! The structure of a DA3 network, from a checkpoint's `config.json`.
//!
//! A published folder's `config.json` names its preset (`{"model_name": "da3-small"}`); the
//! presets are the reference's `configs/*.yaml` (depth-anything-3 0.1.1), transcribed below.
//! A folder may instead describe its structure in full under `config` (the tiny test models
//! do): the preset's fields plus the backbone sizes a preset name implies.

use serde::Deserialize;

use crate::error::{Da3Error, Result};

/// The backbone (DINOv2 as DA3 uses it).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    /// `vits`, `vitb`, `vitl`, `vitg`, or `custom` (sizes given below).
    pub name: String,
    /// Width (implied by the name unless `custom`).
    #[serde(default)]
    pub embed_dim: Option<usize>,
    /// Blocks.
    #[serde(default)]
    pub depth: Option<usize>,
    /// Attention heads.
    #[serde(default)]
    pub num_heads: Option<usize>,
    /// The image size the position embedding was trained for (518).
    #[serde(default)]
    pub img_size: Option<usize>,
    /// `mlp` or `swiglufused` (the giant).
    #[serde(default)]
    pub ffn_layer: Option<String>,
    /// The four blocks whose outputs feed the head.
    pub out_layers: Vec<usize>,
    /// First block of alternating frame / global attention (-1: none).
    #[serde(default = "minus_one")]
    pub alt_start: i64,
    /// First block with QK-norm (-1: none).
    #[serde(default = "minus_one")]
    pub qknorm_start: i64,
    /// First block with 2D RoPE (-1: none).
    #[serde(default = "minus_one")]
    pub rope_start: i64,
    /// Taps are frame-attention and global features concatenated.
    #[serde(default = "yes")]
    pub cat_token: bool,
    /// Reference's `__object__` entry (which class to build); read and ignored.
    #[serde(default, rename = "__object__")]
    pub object: Option<serde_json::Value>,
}

fn minus_one() -> i64 {
    -1
}

fn yes() -> bool {
    true
}

/// The dual DPT head.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadConfig {
    /// Token width into the head (2x the backbone's with `cat_token`).
    pub dim_in: usize,
    /// Depth channels + confidence (2).
    pub output_dim: usize,
    /// Fusion width.
    pub features: usize,
    /// Per-stage projection widths.
    pub out_channels: Vec<usize>,
    /// Reference's `__object__` entry.
    #[serde(default, rename = "__object__")]
    pub object: Option<serde_json::Value>,
}

/// The camera encoder (known poses -> camera tokens).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CamEncConfig {
    /// Token width (the backbone's).
    pub dim_out: usize,
    /// Reference's `__object__` entry.
    #[serde(default, rename = "__object__")]
    pub object: Option<serde_json::Value>,
}

/// The camera decoder (camera tokens -> pose encoding).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CamDecConfig {
    /// Token width in (the head's).
    pub dim_in: usize,
    /// Reference's `__object__` entry.
    #[serde(default, rename = "__object__")]
    pub object: Option<serde_json::Value>,
}

/// A whole network, as the reference's config describes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Structure {
    /// Backbone.
    pub net: NetConfig,
    /// Head.
    pub head: HeadConfig,
    /// Camera encoder (present with the decoder).
    #[serde(default)]
    pub cam_enc: Option<CamEncConfig>,
    /// Camera decoder.
    #[serde(default)]
    pub cam_dec: Option<CamDecConfig>,
    /// The giant's 3D Gaussian head: not ported (its weights are skipped, said on load).
    #[serde(default)]
    pub gs_head: Option<serde_json::Value>,
    /// The giant's Gaussian adapter (no weights).
    #[serde(default)]
    pub gs_adapter: Option<serde_json::Value>,
    /// Reference's `__object__` entry.
    #[serde(default, rename = "__object__")]
    pub object: Option<serde_json::Value>,
}

/// `config.json` of a checkpoint folder.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// A preset name (`da3-small`, ...), or any name when `config` is given.
    pub model_name: String,
    /// The structure in full (overrides the preset).
    #[serde(default)]
    pub config: Option<Structure>,
}

/// Resolved sizes of the backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VitSizes {
    /// Width.
    pub embed_dim: usize,
    /// Blocks.
    pub depth: usize,
    /// Heads.
    pub num_heads: usize,
    /// Trained image size (position-embedding grid = img_size / 14).
    pub img_size: usize,
    /// SwiGLU feed-forward (the giant) instead of the GELU MLP.
    pub swiglu: bool,
}

/// The licence of a published preset, printed where it is loaded.
pub fn licence(model_name: &str) -> &'static str {
    match model_name {
        "da3-small" | "da3-base" | "da3metric-large" | "da3mono-large" => "Apache-2.0",
        "da3-large" | "da3-giant" | "da3nested-giant-large" => {
            "CC BY-NC 4.0 (non-commercial use only)"
        }
        _ => "unknown (not a published DA3 preset: check the checkpoint's own terms)",
    }
}

fn net(name: &str, out_layers: [usize; 4], alt: i64, cat_token: bool) -> NetConfig {
    NetConfig {
        name: name.into(),
        embed_dim: None,
        depth: None,
        num_heads: None,
        img_size: None,
        ffn_layer: None,
        out_layers: out_layers.to_vec(),
        alt_start: alt,
        qknorm_start: alt,
        rope_start: alt,
        cat_token,
        object: None,
    }
}

fn anyview(
    name: &str,
    layers: [usize; 4],
    alt: i64,
    dim: usize,
    features: usize,
    oc: [usize; 4],
) -> Structure {
    Structure {
        net: net(name, layers, alt, true),
        head: HeadConfig {
            dim_in: 2 * dim,
            output_dim: 2,
            features,
            out_channels: oc.to_vec(),
            object: None,
        },
        cam_enc: Some(CamEncConfig {
            dim_out: dim,
            object: None,
        }),
        cam_dec: Some(CamDecConfig {
            dim_in: 2 * dim,
            object: None,
        }),
        gs_head: None,
        gs_adapter: None,
        object: None,
    }
}

/// The reference's preset of that name (its `configs/NAME.yaml`). The mono, metric and nested
/// presets use the single-output DPT head with a sky map, which is not ported: they are an
/// error that says so.
pub fn preset(model_name: &str) -> Result<Structure> {
    let s = match model_name {
        "da3-small" => anyview("vits", [5, 7, 9, 11], 4, 384, 64, [48, 96, 192, 384]),
        "da3-base" => anyview("vitb", [5, 7, 9, 11], 4, 768, 128, [96, 192, 384, 768]),
        "da3-large" => anyview(
            "vitl",
            [11, 15, 19, 23],
            8,
            1024,
            256,
            [256, 512, 1024, 1024],
        ),
        "da3-giant" => {
            let mut s = anyview(
                "vitg",
                [19, 27, 33, 39],
                13,
                1536,
                256,
                [256, 512, 1024, 1024],
            );
            s.gs_head = Some(serde_json::json!({"output_dim": 38}));
            s.gs_adapter = Some(serde_json::json!({}));
            s
        }
        "da3metric-large" | "da3mono-large" | "da3nested-giant-large" => {
            return Err(Da3Error::Unsupported(format!(
                "{model_name} uses the single DPT head with a sky output (nested: two networks), which spatialsv has not ported; DA3-SMALL, -BASE, -LARGE and -GIANT are supported"
            )));
        }
        other => {
            return Err(Da3Error::BadCheckpoint(format!(
                "model_name '{other}' is not a DA3 preset (da3-small, da3-base, da3-large, da3-giant, da3metric-large, da3mono-large, da3nested-giant-large) and no 'config' describes it"
            )));
        }
    };
    Ok(s)
}

impl Structure {
    /// The backbone's sizes (from its name, or given for `custom`).
    pub fn vit(&self) -> Result<VitSizes> {
        let n = &self.net;
        let (d, depth, heads) = match n.name.as_str() {
            "vits" => (384, 12, 6),
            "vitb" => (768, 12, 12),
            "vitl" => (1024, 24, 16),
            "vitg" => (1536, 40, 24),
            "custom" => {
                let need = |v: Option<usize>, k: &str| {
                    v.ok_or_else(|| {
                        Da3Error::BadCheckpoint(format!("net '{k}' is required with name 'custom'"))
                    })
                };
                (
                    need(n.embed_dim, "embed_dim")?,
                    need(n.depth, "depth")?,
                    need(n.num_heads, "num_heads")?,
                )
            }
            other => {
                return Err(Da3Error::BadCheckpoint(format!(
                    "net name '{other}' is not vits, vitb, vitl, vitg or custom"
                )));
            }
        };
        let embed_dim = n.embed_dim.unwrap_or(d);
        let depth = n.depth.unwrap_or(depth);
        let num_heads = n.num_heads.unwrap_or(heads);
        let swiglu = match n.ffn_layer.as_deref() {
            None => n.name == "vitg",
            Some("mlp") => false,
            Some("swiglu" | "swiglufused") => true,
            Some(other) => {
                return Err(Da3Error::BadCheckpoint(format!(
                    "net ffn_layer '{other}' is not mlp or swiglufused"
                )));
            }
        };
        let v = VitSizes {
            embed_dim,
            depth,
            num_heads,
            img_size: n.img_size.unwrap_or(518),
            swiglu,
        };
        self.check(&v)?;
        Ok(v)
    }

    fn check(&self, v: &VitSizes) -> Result<()> {
        let bad = |m: String| Err(Da3Error::BadCheckpoint(m));
        if v.embed_dim == 0 || v.num_heads == 0 || !v.embed_dim.is_multiple_of(v.num_heads) {
            return bad(format!(
                "embed_dim {} is not a positive multiple of num_heads {}",
                v.embed_dim, v.num_heads
            ));
        }
        if self.net.rope_start >= 0 && !(v.embed_dim / v.num_heads).is_multiple_of(4) {
            return bad(format!(
                "head width {} is not a multiple of 4, which 2D RoPE needs",
                v.embed_dim / v.num_heads
            ));
        }
        if v.img_size < 14 {
            return bad(format!(
                "img_size {} is below one 14-pixel patch",
                v.img_size
            ));
        }
        if self.net.out_layers.len() != 4 || self.net.out_layers.iter().any(|l| *l >= v.depth) {
            return bad(format!(
                "out_layers {:?} must be four blocks below depth {}",
                self.net.out_layers, v.depth
            ));
        }
        if self.net.alt_start == 0 || self.net.alt_start >= v.depth as i64 {
            return bad(format!(
                "alt_start {} must be -1 or within 1..{}",
                self.net.alt_start, v.depth
            ));
        }
        for (k, s) in [
            ("qknorm_start", self.net.qknorm_start),
            ("rope_start", self.net.rope_start),
        ] {
            if s < -1 {
                return bad(format!("{k} {s} must be -1 or a block index"));
            }
        }
        let width = if self.net.cat_token {
            2 * v.embed_dim
        } else {
            v.embed_dim
        };
        if self.head.dim_in != width {
            return bad(format!(
                "head dim_in {} is not the backbone's tap width {width}",
                self.head.dim_in
            ));
        }
        if self.head.out_channels.len() != 4 || self.head.out_channels.contains(&0) {
            return bad(format!(
                "head out_channels {:?} must be four positive widths",
                self.head.out_channels
            ));
        }
        if self.head.output_dim < 2
            || self.head.features < 2
            || !self.head.features.is_multiple_of(2)
        {
            return bad(format!(
                "head output_dim {} / features {} are not a depth+confidence head",
                self.head.output_dim, self.head.features
            ));
        }
        match (&self.cam_dec, &self.cam_enc) {
            (Some(d), Some(e)) => {
                if d.dim_in != width || e.dim_out != v.embed_dim {
                    return bad(format!(
                        "cam_dec dim_in {} / cam_enc dim_out {} do not fit the backbone ({width} / {})",
                        d.dim_in, e.dim_out, v.embed_dim
                    ));
                }
                if !e.dim_out.is_multiple_of(16) {
                    return bad(format!(
                        "cam_enc dim_out {} is not a multiple of its 16 heads",
                        e.dim_out
                    ));
                }
                if self.net.alt_start < 0 {
                    return bad("a camera decoder needs alternating attention (alt_start)".into());
                }
            }
            (None, None) => {}
            _ => {
                return bad("cam_dec and cam_enc come together (the reference builds both)".into());
            }
        }
        Ok(())
    }
}

impl CheckpointConfig {
    /// Parses `config.json`'s text.
    pub fn parse(text: &str) -> Result<CheckpointConfig> {
        serde_json::from_str(text).map_err(|e| Da3Error::BadCheckpoint(format!("config.json: {e}")))
    }

    /// The structure it describes.
    pub fn structure(&self) -> Result<Structure> {
        match &self.config {
            Some(s) => Ok(s.clone()),
            None => preset(&self.model_name),
        }
    }
}
