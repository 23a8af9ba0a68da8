//! The whole network (`DepthAnything3Net`) and loading a checkpoint folder into it.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use burn_store::{KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};

use crate::camera::{CameraDec, CameraEnc, cameras_of_pose_encodings};
use crate::config::{CheckpointConfig, Structure};
use crate::dpt::{DualDpt, HeadOut};
use crate::error::{Da3Error, Result};
use crate::vit::{RefViewStrategy, Taps, Vit};

/// The network.
#[derive(Module, Debug)]
pub struct Da3Net<B: Backend> {
    backbone: Vit<B>,
    head: DualDpt<B>,
    cam_dec: Option<CameraDec<B>>,
    cam_enc: Option<CameraEnc<B>>,
}

/// Known cameras for the camera encoder: per view, world-to-camera (row-major 4x4) and
/// intrinsics (3x3) in pixels of the model's input.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownCameras {
    /// World-to-camera.
    pub w2c: Vec<[f32; 16]>,
    /// Intrinsics.
    pub k: Vec<[f32; 9]>,
}

/// The network's outputs for `b` clips of `s` views of `h x w`.
#[derive(Debug, Clone)]
pub struct Output<B: Backend> {
    /// The backbone's taps (and block outputs when asked).
    pub taps: Taps<B>,
    /// The head's maps, `[b s, ...]`.
    pub head: HeadOut<B>,
    /// Pose encoding `[b, s, 9]` (with a camera decoder).
    pub pose_enc: Option<Tensor<B, 3>>,
}

impl<B: Backend> Da3Net<B> {
    /// Builds `structure` with placeholder weights.
    pub fn new(structure: &Structure, device: &B::Device) -> Result<Self> {
        let v = structure.vit()?;
        Ok(Da3Net {
            backbone: Vit::new(structure, &v, device),
            head: DualDpt::new(&structure.head, device),
            cam_dec: structure
                .cam_dec
                .as_ref()
                .map(|c| CameraDec::new(c.dim_in, device)),
            cam_enc: structure
                .cam_enc
                .as_ref()
                .map(|c| CameraEnc::new(c.dim_out, device)),
        })
    }

    /// Whether it predicts cameras.
    pub fn has_cameras(&self) -> bool {
        self.cam_dec.is_some()
    }

    /// The backbone.
    pub fn backbone(&self) -> &Vit<B> {
        &self.backbone
    }

    /// Camera tokens of known cameras (`None` without an encoder).
    pub fn encode_cameras(
        &self,
        cams: &KnownCameras,
        b: usize,
        h: usize,
        w: usize,
        device: &B::Device,
    ) -> Option<Tensor<B, 3>> {
        self.cam_enc
            .as_ref()
            .map(|e| e.forward(&cams.w2c, &cams.k, b, h, w, device))
    }

    /// Runs on `x` (`[b, s, 3, h, w]`, normalised; h, w multiples of 14).
    pub fn forward(
        &self,
        x: Tensor<B, 5>,
        cams: Option<&KnownCameras>,
        strategy: RefViewStrategy,
        keep_blocks: bool,
    ) -> Result<Output<B>> {
        let [b, s, c, h, w] = x.dims();
        if c != 3 || h % 14 != 0 || w % 14 != 0 || h == 0 || w == 0 || s == 0 {
            return Err(Da3Error::BadInput(format!(
                "DA3 takes [b, s, 3, h, w] with h and w positive multiples of 14, got [{b}, {s}, {c}, {h}, {w}]"
            )));
        }
        let device = x.device();
        let cam_token = match cams {
            Some(k) if k.w2c.len() != b * s || k.k.len() != b * s => {
                return Err(Da3Error::BadInput(format!(
                    "{} known cameras for {} views",
                    k.w2c.len(),
                    b * s
                )));
            }
            Some(k) => Some(self.encode_cameras(k, b, h, w, &device).ok_or_else(|| {
                Da3Error::Unsupported("this checkpoint has no camera encoder".into())
            })?),
            None => None,
        };
        let taps = self.backbone.forward(x, cam_token, strategy, keep_blocks);
        let flat: Vec<Tensor<B, 3>> = taps
            .feats
            .iter()
            .map(|f| {
                let [_, _, n, cc] = f.dims();
                f.clone().reshape([b * s, n, cc])
            })
            .collect();
        let head = self.head.forward(&flat, h, w);
        let pose_enc = self
            .cam_dec
            .as_ref()
            .map(|d| d.forward(taps.cam_tokens[3].clone()));
        Ok(Output {
            taps,
            head,
            pose_enc,
        })
    }
}

/// What a prediction gives per view, flattened row-major, at the model's input size.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Views.
    pub views: usize,
    /// Height of the maps.
    pub height: usize,
    /// Width of the maps.
    pub width: usize,
    /// Depth `[s, h, w]` (the teacher's units).
    pub depth: Vec<f32>,
    /// Confidence `[s, h, w]` (>= 1).
    pub conf: Vec<f32>,
    /// World-to-camera `[s, 3, 4]` (world = the reference view's camera).
    pub extrinsics: Option<Vec<f32>>,
    /// Intrinsics `[s, 3, 3]`, pixels of the maps.
    pub intrinsics: Option<Vec<f32>>,
    /// Ray maps `[s, h8, w8, 6]` and their confidence `[s, h8, w8]`, at 8x the patch grid.
    pub rays: Vec<f32>,
    /// Ray confidence.
    pub ray_conf: Vec<f32>,
    /// Size of the ray maps (h8, w8).
    pub ray_size: (usize, usize),
}

fn vec_of<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .to_vec()
        .map_err(|e| Da3Error::Internal(format!("model output: {e:?}")))
}

impl<B: Backend> Da3Net<B> {
    /// Runs on one clip of `s` prepared images (`[s, 3, h, w]` flattened) and returns its
    /// maps and cameras.
    pub fn predict(
        &self,
        images: Vec<f32>,
        s: usize,
        h: usize,
        w: usize,
        strategy: RefViewStrategy,
        device: &B::Device,
    ) -> Result<Prediction> {
        let x = Tensor::<B, 5>::from_data(TensorData::new(images, [1, s, 3, h, w]), device);
        let out = self.forward(x, None, strategy, false)?;
        let (extrinsics, intrinsics) = match &out.pose_enc {
            Some(p) => {
                let (e, k) = cameras_of_pose_encodings(&vec_of(p.clone())?, h, w);
                (Some(e), Some(k))
            }
            None => (None, None),
        };
        let [_, rh, rw, _] = out.head.ray.dims();
        Ok(Prediction {
            views: s,
            height: h,
            width: w,
            depth: vec_of(out.head.depth)?,
            conf: vec_of(out.head.depth_conf)?,
            extrinsics,
            intrinsics,
            rays: vec_of(out.head.ray)?,
            ray_conf: vec_of(out.head.ray_conf)?,
            ray_size: (rh, rw),
        })
    }
}

/// A checkpoint folder loaded: the network, its config, its hash and licence.
#[derive(Debug)]
pub struct Checkpoint<B: Backend> {
    /// The folder.
    pub dir: PathBuf,
    /// Its `config.json`.
    pub config: CheckpointConfig,
    /// The structure built.
    pub structure: Structure,
    /// The network with the checkpoint's weights.
    pub net: Da3Net<B>,
    /// BLAKE3 (hex) of `config.json` and `model.safetensors`, each preceded by its length.
    pub hash: String,
    /// Tensors of the file left aside on purpose (the giant's Gaussian head), with why.
    pub skipped: Vec<String>,
}

/// The remapping of the reference's key names (`model.` + `DepthAnything3Net`'s state dict)
/// onto [`Da3Net`]'s module paths.
pub fn key_remapper() -> KeyRemapper {
    let patterns = [
        (r"^model\.backbone\.pretrained\.", "backbone."),
        (
            r"^model\.head\.scratch\.output_conv2_aux\.\d+\.2\.",
            "head.output_conv2_aux_norm.",
        ),
        (
            r"^model\.head\.scratch\.output_conv2_aux\.(\d+)\.0\.",
            "head.output_conv2_aux.$1.a.",
        ),
        (
            r"^model\.head\.scratch\.output_conv2_aux\.(\d+)\.5\.",
            "head.output_conv2_aux.$1.b.",
        ),
        (
            r"^model\.head\.scratch\.output_conv2\.0\.",
            "head.output_conv2.a.",
        ),
        (
            r"^model\.head\.scratch\.output_conv2\.2\.",
            "head.output_conv2.b.",
        ),
        (r"^model\.head\.scratch\.", "head."),
        (r"^model\.head\.resize_layers\.(\d)\.", "head.resize$1."),
        (r"^model\.head\.", "head."),
        (r"\.resConfUnit(\d)\.", ".res_conf_unit$1."),
        (r"^model\.cam_dec\.backbone\.0\.", "cam_dec.fc1."),
        (r"^model\.cam_dec\.backbone\.2\.", "cam_dec.fc2."),
        (r"^model\.cam_dec\.fc_fov\.0\.", "cam_dec.fc_fov."),
        (r"^model\.cam_dec\.", "cam_dec."),
        (r"^model\.cam_enc\.", "cam_enc."),
        // LayerNorm's weight and bias are burn's gamma and beta.
        (r"(norm\d?)\.weight$", "$1.gamma"),
        (r"(norm\d?)\.bias$", "$1.beta"),
    ];
    KeyRemapper::from_patterns(patterns.to_vec())
        .unwrap_or_else(|e| unreachable!("constant patterns compile: {e}"))
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Da3Error + 'a {
    move |source| Da3Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `dir` looks like a DA3 checkpoint folder (a `config.json` with a `model_name`
/// and a `model.safetensors`), without reading the weights.
pub fn is_checkpoint_dir(dir: &Path) -> bool {
    let cfg = dir.join("config.json");
    dir.join("model.safetensors").is_file()
        && std::fs::read_to_string(&cfg)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|v| v.get("model_name").is_some())
}

/// Loads the checkpoint folder `dir` (`config.json` + `model.safetensors`) with zero missing
/// and zero unused tensors; anything else is one error naming the file and what is wrong.
pub fn load<B: Backend>(dir: &Path, device: &B::Device) -> Result<Checkpoint<B>> {
    let cfg_path = dir.join("config.json");
    let weights = dir.join("model.safetensors");
    if !dir.is_dir() {
        return Err(Da3Error::BadCheckpoint(format!(
            "{}: not a directory (a DA3 checkpoint is a folder with config.json and model.safetensors)",
            dir.display()
        )));
    }
    if !cfg_path.is_file() || !weights.is_file() {
        let what = if dir.join("config.toml").is_file() || dir.join("checkpoints").is_dir() {
            " (it looks like a spatialsv run directory)"
        } else {
            ""
        };
        return Err(Da3Error::BadCheckpoint(format!(
            "{}: not a DA3 checkpoint folder{what}: it needs config.json and model.safetensors",
            dir.display()
        )));
    }
    let text = std::fs::read_to_string(&cfg_path).map_err(io("reading", &cfg_path))?;
    let config = CheckpointConfig::parse(&text)
        .map_err(|e| Da3Error::BadCheckpoint(format!("{}: {e}", cfg_path.display())))?;
    let in_config = |e| match e {
        Da3Error::BadCheckpoint(m) => {
            Da3Error::BadCheckpoint(format!("{}: {m}", cfg_path.display()))
        }
        other => other,
    };
    let structure = config.structure().map_err(in_config)?;
    let mut net = Da3Net::<B>::new(&structure, device).map_err(in_config)?;
    let mut h = blake3::Hasher::new();
    for p in [&cfg_path, &weights] {
        let len = std::fs::metadata(p).map_err(io("reading", p))?.len();
        h.update(&len.to_le_bytes());
        let f = std::fs::File::open(p).map_err(io("reading", p))?;
        h.update_reader(f).map_err(io("reading", p))?;
    }
    let hash = h.finalize().to_hex().to_string();
    let skip_gs = structure.gs_head.is_some();
    let mut store = SafetensorsStore::from_file(&weights)
        .with_from_adapter(PyTorchToBurnAdapter)
        .remap(key_remapper())
        .allow_partial(true)
        .validate(true);
    let result = net.load_from(&mut store).map_err(|e| {
        Da3Error::BadCheckpoint(format!(
            "{}: not a readable safetensors file: {e}",
            weights.display()
        ))
    })?;
    let mut unused: Vec<String> = Vec::new();
    let mut skipped = Vec::new();
    for k in result.unused {
        if skip_gs && (k.starts_with("model.gs_head.") || k.starts_with("model.gs_adapter.")) {
            skipped.push(k);
        } else {
            unused.push(k);
        }
    }
    if let Some(e) = result.errors.first() {
        return Err(Da3Error::BadCheckpoint(format!(
            "{}: {e} ({} tensors wrong in all)",
            weights.display(),
            result.errors.len()
        )));
    }
    if !result.missing.is_empty() {
        let names: Vec<&str> = result
            .missing
            .iter()
            .take(3)
            .map(|(k, _)| k.as_str())
            .collect();
        return Err(Da3Error::BadCheckpoint(format!(
            "{}: {} tensors of the {} structure are missing, e.g. {}",
            weights.display(),
            result.missing.len(),
            config.model_name,
            names.join(", ")
        )));
    }
    if !unused.is_empty() {
        return Err(Da3Error::BadCheckpoint(format!(
            "{}: {} tensors are not part of the {} structure, e.g. {}",
            weights.display(),
            unused.len(),
            config.model_name,
            unused
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(Checkpoint {
        dir: dir.to_path_buf(),
        config,
        structure,
        net,
        hash,
        skipped,
    })
}
