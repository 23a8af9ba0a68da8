//! Samples of the multimodal model: questions from the `qa` table with their views and true
//! 3D targets, text-free samples (the other rooms' true 3D, or the teacher's pseudo-labels of
//! unlabeled videos), and their batch: images, token rows with next-token targets weighted
//! on the answer only, and the 3D targets.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use spatialsv_qa::Family;
use spatialsv_schemas::{Columns, Split, Table};
use spatialsv_store::media::nearest_source;
use spatialsv_store::{Dataset, FrameIndex, FrameRef, Manifest};

use super::tokenizer::{ANSWER, BOS, EOS, Tokenizer};
use crate::data::ClipSample;
use crate::error::{Result, TrainError};

/// One row of the `qa` table.
#[derive(Debug, Clone, PartialEq)]
pub struct QaItem {
    /// Key.
    pub qa_id: String,
    /// Scene.
    pub scene_id: String,
    /// Split.
    pub split: Split,
    /// Views shown.
    pub frames: Vec<i64>,
    /// Family.
    pub family: Family,
    /// Question text.
    pub question: String,
    /// Options.
    pub options: Vec<String>,
    /// Answer text.
    pub answer: String,
    /// Numeric answer.
    pub numeric: Option<f64>,
}

/// Every `qa` row of `split` (all splits when `None`), ordered by key.
pub fn read_qa(ds: &Dataset, manifest: &Manifest, split: Option<Split>) -> Result<Vec<QaItem>> {
    let mut out = Vec::new();
    for b in ds.read_table(manifest, Table::Qa, None)? {
        let c = Columns::new(Table::Qa, &b)?;
        let s = |n: &str| c.strings(n);
        let (id, scene, sp, family, q, a) = (
            s("qa_id")?,
            s("scene_id")?,
            s("split")?,
            s("family")?,
            s("question")?,
            s("answer")?,
        );
        let numeric = c.f64s("answer_numeric")?;
        let (frames, options) = (c.lists("frame_indices")?, c.lists("options")?);
        for r in 0..b.num_rows() {
            if split.is_some_and(|want| sp.value(r) != want.as_str()) {
                continue;
            }
            let bad = |what: &str, e: String| {
                TrainError::corrupt(
                    format!("{}/qa", ds.location()),
                    &format!("question {}: unreadable {what}", id.value(r)),
                    e,
                )
            };
            out.push(QaItem {
                qa_id: id.value(r).to_string(),
                scene_id: scene.value(r).to_string(),
                split: sp.value(r).parse().map_err(|e| bad("split", e))?,
                frames: frames
                    .value(r)
                    .as_primitive::<Int64Type>()
                    .values()
                    .to_vec(),
                family: family.value(r).parse().map_err(|e| bad("family", e))?,
                question: q.value(r).to_string(),
                options: options
                    .value(r)
                    .as_string::<i32>()
                    .iter()
                    .map(|o| o.unwrap_or_default().to_string())
                    .collect(),
                answer: a.value(r).to_string(),
                numeric: (!numeric.is_null(r)).then(|| numeric.value(r)),
            });
        }
    }
    out.sort_by(|a, b| a.qa_id.cmp(&b.qa_id));
    Ok(out)
}

/// The stored frames of an item's views (`None` when one is missing or unlabeled).
pub fn frames_of(index: &FrameIndex, scene: &str, frames: &[i64]) -> Option<Vec<FrameRef>> {
    frames
        .iter()
        .map(|f| {
            index
                .get(&(scene.to_string(), *f))
                .filter(|(_, labeled)| *labeled)
                .map(|(r, _)| *r)
        })
        .collect()
}

/// A sample's text as ids: `<bos> question <answer>`, then (for training) `answer <eos>`.
pub fn encode_item(tok: &Tokenizer, item: &QaItem) -> Result<(Vec<usize>, Vec<usize>)> {
    let q = tok.encode(&item.question).map_err(|w| unknown_words(&w))?;
    let a = tok.encode(&item.answer).map_err(|w| unknown_words(&w))?;
    let id = |t: &str| tok.id(t).unwrap_or(0);
    let mut prompt = vec![id(BOS)];
    prompt.extend(q);
    prompt.push(id(ANSWER));
    let mut answer = a;
    answer.push(id(EOS));
    Ok((prompt, answer))
}

/// The one-line error of words the model's vocabulary lacks.
pub fn unknown_words(words: &[String]) -> TrainError {
    TrainError::User(format!(
        "the question uses words the model's vocabulary does not have: {}",
        words.join(", ")
    ))
}

/// A training sample: its clip (images and 3D targets) and, for questions, its text ids.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Views and targets.
    pub clip: ClipSample,
    /// `(prompt, answer)` ids; `None` for a text-free sample.
    pub text: Option<(Vec<usize>, Vec<usize>)>,
}

/// Token rows of a batch: `[b, t]` inputs, next-token targets and weights (1 where the next
/// token is an answer token or the end of the answer), `t` the longest row (at least 1).
pub fn text_rows(
    samples: &[Option<(Vec<usize>, Vec<usize>)>],
    pad: usize,
) -> (Vec<i64>, Vec<i64>, Vec<f32>, usize) {
    let t = samples
        .iter()
        .map(|s| s.as_ref().map_or(1, |(p, a)| p.len() + a.len()))
        .max()
        .unwrap_or(1)
        .max(1);
    let b = samples.len();
    let (mut tokens, mut targets, mut weights) = (
        vec![pad as i64; b * t],
        vec![pad as i64; b * t],
        vec![0.0f32; b * t],
    );
    for (r, s) in samples.iter().enumerate() {
        let Some((p, a)) = s else { continue };
        let row: Vec<usize> = p.iter().chain(a).copied().collect();
        for (i, id) in row.iter().enumerate() {
            tokens[r * t + i] = *id as i64;
            if i + 1 < row.len() {
                targets[r * t + i] = row[i + 1] as i64;
                // Position i predicts token i + 1: weighted when that is part of the answer.
                if i + 1 >= p.len() {
                    weights[r * t + i] = 1.0;
                }
            }
        }
    }
    (tokens, targets, weights, t)
}

/// Next-token cross-entropy averaged over the weighted positions (the answer tokens), 0
/// when none is weighted.
pub fn text_loss<B: Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    weights: Tensor<B, 2>,
) -> Tensor<B, 1> {
    let logp = log_softmax(logits, 2);
    let picked: Tensor<B, 2> = logp
        .gather(2, targets.unsqueeze_dim::<3>(2))
        .squeeze_dim::<2>(2);
    let n = weights.clone().sum().clamp_min(1.0);
    (picked * weights).sum().neg() / n
}

/// Int tensor `[b, t]` of ids.
pub fn ids_tensor<B: Backend>(
    ids: Vec<i64>,
    b: usize,
    t: usize,
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    Tensor::from_data(TensorData::new(ids, [b, t]), device)
}

/// The training rooms whose questions are used: the first `round(share * n)` (at least one)
/// of the split's scenes ordered by a hash of their ids, so the same rooms for every seed.
pub fn qa_rooms(scenes: &[String], share: f64) -> Vec<String> {
    let mut by_hash: Vec<(String, String)> = scenes
        .iter()
        .map(|s| (blake3::hash(s.as_bytes()).to_hex().to_string(), s.clone()))
        .collect();
    by_hash.sort();
    let n = ((scenes.len() as f64 * share).round() as usize).clamp(1, scenes.len().max(1));
    by_hash.into_iter().take(n).map(|(_, s)| s).collect()
}

/// Questions per family of `items`.
pub fn per_family(items: &[QaItem]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i.family.to_string()).or_default() += 1;
    }
    m
}

/// A clip resampled from `from` (width, height) to `to` by nearest neighbour, every plane
/// alike (images, depth, masks, point and ray maps): pseudo-labels are stored at the teacher's
/// image size, the multimodal model may train at another.
pub fn resize_clip(s: &ClipSample, from: (usize, usize), to: (usize, usize)) -> ClipSample {
    if from == to {
        return s.clone();
    }
    let ((w0, h0), (w, h)) = (from, to);
    let (sx, sy) = (w0 as f64 / w as f64, h0 as f64 / h as f64);
    let src: Vec<usize> = (0..h)
        .flat_map(|y| {
            let row = nearest_source(y, sy, h0 as u32) as usize * w0;
            (0..w).map(move |x| row + nearest_source(x, sx, w0 as u32) as usize)
        })
        .collect();
    let planes = |v: &[f32]| -> Vec<f32> {
        v.chunks_exact(w0 * h0)
            .flat_map(|plane| src.iter().map(move |i| plane[*i]))
            .collect()
    };
    ClipSample {
        images: planes(&s.images),
        depth: planes(&s.depth),
        points: planes(&s.points),
        rays: planes(&s.rays),
        valid: planes(&s.valid),
        geometry: planes(&s.geometry),
        pseudo: s.pseudo,
    }
}

/// The image size of a dataset's pseudo-labels (the most common one).
pub fn pseudo_label_size(ds: &Dataset, manifest: &Manifest) -> Result<Option<(usize, usize)>> {
    let mut count: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for b in ds.read_table(manifest, Table::PseudoLabels, Some(&["width", "height"]))? {
        let c = Columns::new(Table::PseudoLabels, &b)?;
        let (w, h) = (c.i32s("width")?, c.i32s("height")?);
        for r in 0..b.num_rows() {
            *count
                .entry((w.value(r) as usize, h.value(r) as usize))
                .or_default() += 1;
        }
    }
    Ok(count.into_iter().max_by_key(|x| x.1).map(|x| x.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend as B, default_device};

    #[test]
    fn the_text_loss_is_cross_entropy_on_answer_tokens_only() {
        // Two rows: prompt [1, 5, 2] and answer [6, 3]; a text-free row.
        let (tokens, targets, weights, t) =
            text_rows(&[Some((vec![1, 5, 2], vec![6, 3])), None], 0);
        assert_eq!(t, 5);
        assert_eq!(&tokens[..5], &[1, 5, 2, 6, 3]);
        assert_eq!(&targets[..5], &[5, 2, 6, 3, 0]);
        // Position 2 (<answer>) predicts 6, position 3 predicts <eos>: only they count.
        assert_eq!(&weights[..5], &[0.0, 0.0, 1.0, 1.0, 0.0]);
        assert!(weights[5..].iter().all(|w| *w == 0.0));
        let device = default_device();
        // Logits favouring the right token by 2 nats at position 2, uniform at position 3.
        let vocab = 7;
        let mut l = vec![0.0f32; 2 * 5 * vocab];
        l[2 * vocab + 6] = 2.0;
        // Padding positions are garbage: they must not matter.
        l[4 * vocab] = 100.0;
        l[(5 + 1) * vocab + 3] = -50.0;
        let logits = Tensor::<B, 3>::from_data(TensorData::new(l, [2, 5, vocab]), &device);
        let loss = text_loss(
            logits,
            ids_tensor::<B>(targets, 2, 5, &device),
            Tensor::from_data(TensorData::new(weights, [2, 5]), &device),
        )
        .into_scalar();
        let p2 = -(2.0f32.exp() / (2.0f32.exp() + 6.0)).ln();
        let p3 = (7.0f32).ln();
        assert!(
            (loss - (p2 + p3) / 2.0).abs() < 1e-5,
            "{loss} vs {}",
            (p2 + p3) / 2.0
        );
    }

    #[test]
    fn clips_resize_by_nearest_neighbour() {
        // One view, 4x2, planes numbered by pixel; to 2x1 picks pixels (1, 1) and (3, 1)
        // (column centres 0.5 and 1.5 map to 1.0 and 3.0, the row centre 0.5 to 1.0).
        let plane: Vec<f32> = (0..8).map(|i| i as f32).collect();
        let s = ClipSample {
            images: [plane.clone(), plane.clone(), plane.clone()].concat(),
            depth: plane.clone(),
            points: [plane.clone(), plane.clone(), plane.clone()].concat(),
            rays: (0..6).flat_map(|_| plane.clone()).collect(),
            valid: plane.clone(),
            geometry: plane.clone(),
            pseudo: true,
        };
        let r = resize_clip(&s, (4, 2), (2, 1));
        assert_eq!(r.depth, vec![5.0, 7.0]);
        assert_eq!(r.rays.len(), 12);
        assert_eq!(&r.images[2..4], &[5.0, 7.0]);
        assert!(r.pseudo);
    }

    #[test]
    fn qa_rooms_are_a_fixed_share() {
        let scenes: Vec<String> = (0..4).map(|i| format!("s{i}")).collect();
        let half = qa_rooms(&scenes, 0.5);
        assert_eq!(half.len(), 2);
        assert_eq!(qa_rooms(&scenes, 0.5), half);
        assert_eq!(qa_rooms(&scenes, 1.0).len(), 4);
        assert_eq!(qa_rooms(&scenes, 0.1).len(), 1);
    }
}
