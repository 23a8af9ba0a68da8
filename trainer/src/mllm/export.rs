//! `spatialsv export-mllm`: the dataset's questions and 3D targets for the PyTorch MLLM
//! trainers people already use: LLaVA-style or LLaMA-Factory `sharegpt` conversations (one
//! `<image>` tag per image, images written as files), each sample with `sample_kind` (`qa`,
//! or `spatial_only` for pseudo-labelled video clips without text) and a per-clip
//! `.safetensors` file of its 3D targets, plus the Hugging Face `tokenizer.json`.
//!
//! Targets per clip (`v` views at the export size `h` x `w`), float32 unless said:
//! - `depth` `[v, h, w]`: metres for `qa` samples (true depth), the teacher's normalised units
//!   for `spatial_only` ones; 0 = no target;
//! - `confidence` `[v, h, w]`: 1 for true depth; for pseudo-labels 1 where kept (the stored
//!   per-pixel confidence is not exported);
//! - `keep_mask` `[v, h, w]` uint8: 1 where depth (and points) are targets;
//! - `rays` `[v, 6, h, w]`: origin and unit direction per pixel, first view's camera frame;
//! - `points` `[v, 3, h, w]`: first view's camera frame, same units as `depth`;
//! - `intrinsics` `[v, 4]` float64: fx, fy, cx, cy in pixels of the export size;
//! - `poses` `[v, 4, 4]` float64: camera-to-first-camera (OpenCV axes).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;
use spatialsv_store::geometry::{Mat4, invert_rigid, mul};
use spatialsv_store::progress::Progress;
use spatialsv_store::{Dataset, FrameRef, FrameStore};

use super::data::{QaItem, frames_of, read_qa};
use crate::data::{Augment, ClipSample, Prepared, clip_targets, load_clip};
use crate::error::{Result, TrainError};

/// The export's own tokenizer (word ids) and its Hugging Face `tokenizer.json`.
pub const VOCAB_FILE: &str = "vocab.json";
/// The Hugging Face tokenizer of an export.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Conversation format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// LLaVA: `{"id", "image": [...], "conversations": [{"from": "human"|"gpt", "value"}]}`.
    Llava,
    /// LLaMA-Factory sharegpt: `{"messages": [{"role": "user"|"assistant", "content"}],
    /// "images": [...]}`.
    Sharegpt,
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Conversation format.
    pub format: Format,
    /// Splits whose questions are exported (all when empty).
    pub splits: Vec<spatialsv_schemas::Split>,
    /// Export size of the 3D targets (width, height).
    pub size: (usize, usize),
    /// Also export pseudo-labelled video clips of this many views as `spatial_only` samples
    /// (`None`: none), from the labelling `pseudo_labels` selects.
    pub spatial_only: Option<(usize, spatialsv_store::Selector)>,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportSummary {
    /// Question samples.
    pub qa: usize,
    /// Text-free samples.
    pub spatial_only: usize,
    /// Image files.
    pub images: usize,
    /// Target files.
    pub targets: usize,
}

/// Writes a safetensors file: `(name, dtype, shape, little-endian bytes)` tensors.
pub fn write_safetensors(
    path: &Path,
    tensors: &[(&str, &str, Vec<usize>, Vec<u8>)],
) -> std::io::Result<()> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, dtype, shape, bytes) in tensors {
        header.insert(
            name.to_string(),
            json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + bytes.len()]}),
        );
        offset += bytes.len();
    }
    let mut text = serde_json::Value::Object(header).to_string();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(&(text.len() as u64).to_le_bytes())?;
    f.write_all(text.as_bytes())?;
    for (_, _, _, bytes) in tensors {
        f.write_all(bytes)?;
    }
    f.flush()
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f64s(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The safetensors of one clip's targets.
fn clip_tensors(
    s: &ClipSample,
    k: &[[f64; 4]],
    poses: &[Mat4],
    pseudo: bool,
    (w, h): (usize, usize),
) -> Vec<(&'static str, &'static str, Vec<usize>, Vec<u8>)> {
    let v = k.len();
    let confidence: Vec<f32> = s
        .valid
        .iter()
        .map(|m| if pseudo { *m } else { 1.0 })
        .collect();
    let keep: Vec<u8> = s.valid.iter().map(|m| u8::from(*m > 0.0)).collect();
    let depth: Vec<f32> = s
        .depth
        .iter()
        .zip(&s.valid)
        .map(|(d, m)| if *m > 0.0 { *d } else { 0.0 })
        .collect();
    let first = invert_rigid(&poses[0]);
    let rel: Vec<f64> = poses.iter().flat_map(|p| mul(&first, p)).collect();
    vec![
        ("depth", "F32", vec![v, h, w], f32s(&depth)),
        ("confidence", "F32", vec![v, h, w], f32s(&confidence)),
        ("keep_mask", "U8", vec![v, h, w], keep),
        ("rays", "F32", vec![v, 6, h, w], f32s(&s.rays)),
        ("points", "F32", vec![v, 3, h, w], f32s(&s.points)),
        ("intrinsics", "F64", vec![v, 4], f64s(&k.concat())),
        ("poses", "F64", vec![v, 4, 4], f64s(&rel)),
    ]
}

fn conversation(
    format: Format,
    id: &str,
    images: &[String],
    question: Option<&str>,
    answer: Option<&str>,
) -> serde_json::Value {
    let tags = "<image>".repeat(images.len());
    match format {
        Format::Llava => {
            let conv = match (question, answer) {
                (Some(q), Some(a)) => json!([
                    {"from": "human", "value": format!("{tags}\n{q}")},
                    {"from": "gpt", "value": a}
                ]),
                _ => json!([]),
            };
            json!({"id": id, "image": images, "conversations": conv})
        }
        Format::Sharegpt => {
            let msgs = match (question, answer) {
                (Some(q), Some(a)) => json!([
                    {"role": "user", "content": format!("{tags}{q}")},
                    {"role": "assistant", "content": a}
                ]),
                _ => json!([]),
            };
            json!({"id": id, "images": images, "messages": msgs})
        }
    }
}

/// Exports `ds` into `out` (see the module docs).
pub fn export(
    ds: &Dataset,
    out: &Path,
    opts: &ExportOptions,
    progress: &dyn Progress,
) -> Result<ExportSummary> {
    let manifest = ds.latest()?;
    let store = FrameStore::new(ds.clone(), &manifest, 16);
    let index = store.frame_index()?;
    let all = read_qa(ds, &manifest, None)?;
    let items: Vec<&QaItem> = all
        .iter()
        .filter(|q| opts.splits.is_empty() || opts.splits.contains(&q.split))
        .collect();
    if items.is_empty() && opts.spatial_only.is_none() {
        return Err(TrainError::User(format!(
            "{} has no questions in {} to export (run `spatialsv qa`)",
            ds.location(),
            if opts.splits.is_empty() {
                "any split".to_string()
            } else {
                opts.splits
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )));
    }
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e: std::io::Error| TrainError::Io {
            action: "writing the export",
            path: p.clone(),
            source: e.into(),
        }
    };
    for d in ["images", "targets"] {
        std::fs::create_dir_all(out.join(d)).map_err(io(&out.join(d)))?;
    }
    let (w, h) = opts.size;
    let mut summary = ExportSummary::default();
    let mut written_images: BTreeMap<(String, i64), String> = BTreeMap::new();
    let mut image_file =
        |scene: &str, f: &FrameRef, summary: &mut ExportSummary| -> Result<String> {
            if let Some(p) = written_images.get(&(scene.to_string(), f.frame_idx)) {
                return Ok(p.clone());
            }
            // The stored bytes as they are (video frames have no intrinsics to load).
            let bytes = store.with_image(f, |b| b.to_vec())?;
            let ext = if bytes.starts_with(&[0x89, b'P']) {
                "png"
            } else {
                "jpg"
            };
            let rel = format!("images/{scene}/{}.{ext}", f.frame_idx);
            let path = out.join(&rel);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io(dir))?;
            }
            std::fs::write(&path, &bytes).map_err(io(&path))?;
            summary.images += 1;
            written_images.insert((scene.to_string(), f.frame_idx), rel.clone());
            Ok(rel)
        };
    let mut samples = Vec::new();
    let mut targets_written: BTreeMap<String, String> = BTreeMap::new();
    progress.start(items.len() as u64, "questions");
    for q in &items {
        progress.advance(1);
        let Some(refs) = frames_of(&index, &q.scene_id, &q.frames) else {
            continue;
        };
        let images: Vec<String> = refs
            .iter()
            .map(|f| image_file(&q.scene_id, f, &mut summary))
            .collect::<Result<_>>()?;
        let key = format!(
            "{}_{}",
            q.scene_id,
            q.frames
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join("-")
        );
        let target = match targets_written.get(&key) {
            Some(t) => t.clone(),
            None => {
                let s = load_clip(&store, &refs, w, h, Augment::NONE, 0)?;
                let mut ks = Vec::new();
                let mut poses = Vec::new();
                for f in &refs {
                    let raw = store.load(f)?;
                    let (dk, (dw, dh)) = match &raw.depth {
                        Some((png, _, dk)) => {
                            let d = spatialsv_store::frames::decode_stored_depth(
                                png,
                                format!("frame {}", f.frame_idx),
                            )?;
                            (*dk, (d.width as f64, d.height as f64))
                        }
                        None => (raw.k, (w as f64, h as f64)),
                    };
                    let (sx, sy) = (dw / w as f64, dh / h as f64);
                    ks.push([dk[0] / sx, dk[1] / sy, dk[2] / sx, dk[3] / sy]);
                    poses.push(raw.pose.unwrap_or(spatialsv_store::geometry::IDENTITY));
                }
                let rel = format!("targets/{key}.safetensors");
                let path = out.join(&rel);
                write_safetensors(&path, &clip_tensors(&s, &ks, &poses, false, (w, h)))
                    .map_err(io(&path))?;
                summary.targets += 1;
                targets_written.insert(key, rel.clone());
                rel
            }
        };
        let mut c = conversation(
            opts.format,
            &q.qa_id,
            &images,
            Some(&q.question),
            Some(&q.answer),
        );
        if let Some(o) = c.as_object_mut() {
            o.insert("sample_kind".into(), json!("qa"));
            o.insert("targets_3d".into(), json!(target));
            o.insert("family".into(), json!(q.family));
            o.insert("options".into(), json!(q.options));
            o.insert("answer_numeric".into(), json!(q.numeric));
            o.insert("split".into(), json!(q.split.as_str()));
        }
        samples.push(c);
        summary.qa += 1;
    }
    progress.finish();
    if let Some((views, selector)) = &opts.spatial_only {
        // Pseudo-labels are exported at their own size (the teacher's).
        let (w, h) = super::data::pseudo_label_size(ds, &manifest)?.unwrap_or((w, h));
        let set = crate::pseudo::load_pseudo_set(ds, &manifest, &store, selector, *views, w, h, 0)?;
        // Each stored frame's scene, looked up once.
        let scene_of: BTreeMap<(usize, usize, usize), String> = index
            .iter()
            .map(|((scene, _), (r, _))| ((r.file, r.row_group, r.row), scene.clone()))
            .collect();
        for (n, clip) in set.clips.iter().enumerate() {
            for (c, chunk) in clip.frames.chunks_exact(*views).enumerate() {
                let prepared: Vec<Prepared> = chunk
                    .iter()
                    .map(|f| (Vec::new(), f.depth.clone(), f.k, f.pose))
                    .collect();
                let keep: Vec<Vec<bool>> = chunk.iter().map(|f| f.keep.clone()).collect();
                let mut s = clip_targets(&prepared, Some(&keep), w, h);
                s.images.clear();
                let scene = scene_of
                    .get(&(
                        chunk[0].frame.file,
                        chunk[0].frame.row_group,
                        chunk[0].frame.row,
                    ))
                    .cloned()
                    .unwrap_or_else(|| "unknown".into());
                let images: Vec<String> = chunk
                    .iter()
                    .map(|f| image_file(&scene, &f.frame, &mut summary))
                    .collect::<Result<_>>()?;
                let ks: Vec<[f64; 4]> = chunk.iter().map(|f| f.k).collect();
                let poses: Vec<Mat4> = chunk.iter().map(|f| f.pose).collect();
                let rel = format!("targets/pseudo_{n}_{c}.safetensors");
                let path = out.join(&rel);
                write_safetensors(&path, &clip_tensors(&s, &ks, &poses, true, (w, h)))
                    .map_err(io(&path))?;
                summary.targets += 1;
                let mut conv =
                    conversation(opts.format, &format!("pseudo_{n}_{c}"), &images, None, None);
                if let Some(o) = conv.as_object_mut() {
                    o.insert("sample_kind".into(), json!("spatial_only"));
                    o.insert("targets_3d".into(), json!(rel));
                    o.insert("teacher_hash".into(), json!(set.labelling.teacher));
                }
                samples.push(conv);
                summary.spatial_only += 1;
            }
        }
    }
    let name = match opts.format {
        Format::Llava => "llava.json",
        Format::Sharegpt => "sharegpt.json",
    };
    let path = out.join(name);
    let text =
        serde_json::to_string_pretty(&samples).map_err(|e| TrainError::Internal(e.to_string()))?;
    std::fs::write(&path, text).map_err(io(&path))?;
    // The tokenizer of every question, option and answer of the dataset.
    super::tokenizer_for(&all).save(&out.join(VOCAB_FILE), &out.join(TOKENIZER_FILE))?;
    Ok(summary)
}

/// Where the export of `dir` puts a conversation file.
pub fn conversation_file(dir: &Path, format: Format) -> PathBuf {
    dir.join(match format {
        Format::Llava => "llava.json",
        Format::Sharegpt => "sharegpt.json",
    })
}
