//! `spatialsv eval --qa`: the multimodal model's answers scored as the benchmarks score them
//! (exact match of the option; mean relative accuracy for numbers), per family and overall,
//! beside chance, the most-frequent-answer baseline (from the train split) and a blind run of
//! the same model with the images zeroed; plus the 3D probe of the same model (depth AbsRel,
//! pose AUC@30 and Chamfer of its taps' predictions on each question's views), and accuracy
//! binned by that per-clip depth quality, to check "better 3D lifting goes with better
//! answers".

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use spatialsv_qa::{Family, mra};
use spatialsv_schemas::Split;
use spatialsv_store::progress::Progress;
use spatialsv_store::{Dataset, FrameStore};

use super::data::{QaItem, encode_item, frames_of, read_qa};
use super::model::SpatialMllm;
use super::tokenizer::{EOS, PAD, Tokenizer, words};
use super::{LoadedMllm, load_mllm};
use crate::backend::{Backend as Inner, default_device};
use crate::data::{Augment, load_clip};
use crate::error::{Result, TrainError};

/// Answers of the model to `prompts` (ids ending with `<answer>`) about `images`
/// `[b, v, 3, h, w]` (or `[1, v, 3, h, w]`: one clip every prompt asks about), decoded
/// greedily up to `<eos>` or `max_new` tokens. The visual tokens and the language model's
/// states over them are computed once per clip ([`SpatialMllm::visual_prefix`]); each
/// decoding step runs the text tokens only.
pub fn answer(
    model: &SpatialMllm<Inner>,
    tok: &Tokenizer,
    images: Tensor<Inner, 5>,
    prompts: &[Vec<usize>],
    max_new: usize,
) -> Vec<Vec<usize>> {
    let b = prompts.len();
    let device = images.device();
    // The visual tokens' states once; every decoding step runs the text tokens only.
    let visual = model.visual_tokens(images);
    let clips = visual.dims()[0];
    let mut prefix = model.visual_prefix(visual);
    if clips == 1 && b > 1 {
        prefix = prefix.repeat(b);
    }
    let (pad, eos) = (tok.id(PAD).unwrap_or(0), tok.id(EOS).unwrap_or(3));
    let mut rows: Vec<Vec<usize>> = prompts.to_vec();
    let mut done = vec![false; b];
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); b];
    for _ in 0..max_new {
        let t = rows.iter().map(Vec::len).max().unwrap_or(1);
        let mut ids = vec![pad as i64; b * t];
        for (r, row) in rows.iter().enumerate() {
            for (i, id) in row.iter().enumerate() {
                ids[r * t + i] = *id as i64;
            }
        }
        let tokens = Tensor::<Inner, 2, Int>::from_data(TensorData::new(ids, [b, t]), &device);
        let logits = model.text_logits(&prefix, tokens);
        let [_, _, vocab] = logits.dims();
        let l = logits.into_data().to_vec::<f32>().unwrap_or_default();
        for r in 0..b {
            if done[r] {
                continue;
            }
            let at = r * t * vocab + (rows[r].len() - 1) * vocab;
            let next = l[at..at + vocab]
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(eos, |(i, _)| i);
            if next == eos {
                done[r] = true;
            } else {
                out[r].push(next);
                rows[r].push(next);
            }
        }
        if done.iter().all(|d| *d) {
            break;
        }
    }
    out
}

/// Whether a decoded answer is right: the same words as the answer option, or for numbers
/// its mean relative accuracy.
pub fn score(item: &QaItem, predicted: &str) -> f64 {
    match item.numeric {
        Some(truth) => predicted
            .trim()
            .parse::<f64>()
            .map_or(0.0, |p| mra(p, truth)),
        None => f64::from(u8::from(words(predicted) == words(&item.answer))),
    }
}

/// Scores of one family (or of all multiple-choice / all numeric questions).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FamilyScore {
    /// Questions.
    pub questions: usize,
    /// `accuracy` (multiple choice) or `mra` (numeric).
    pub measure: String,
    /// The model.
    pub model: f64,
    /// The same model with the images zeroed.
    pub blind: f64,
    /// The most frequent training answer (for numbers, the training median).
    pub most_frequent: f64,
    /// Chance (multiple choice: one over the options); absent for numbers.
    pub chance: Option<f64>,
}

/// The 3D probe of the model's taps over the evaluated clips.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// Clips scored.
    pub clips: usize,
    /// Depth AbsRel after median scaling.
    pub abs_rel: f64,
    /// Pose AUC@30 from the predicted ray maps.
    pub auc30: Option<f64>,
    /// Chamfer (m) after Sim(3) alignment.
    pub chamfer: f64,
}

/// Accuracy of the multiple-choice questions whose clip's depth AbsRel is in a range.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QualityBin {
    /// AbsRel range of the bin, [low, high].
    pub abs_rel: [f64; 2],
    /// Multiple-choice questions in it.
    pub questions: usize,
    /// Their accuracy.
    pub accuracy: f64,
}

/// What `eval --qa` reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QaEvalReport {
    /// Split evaluated.
    pub split: String,
    /// Per family.
    pub families: BTreeMap<String, FamilyScore>,
    /// All multiple-choice questions.
    pub multiple_choice: FamilyScore,
    /// All numeric questions.
    pub numeric: FamilyScore,
    /// The taps' 3D.
    pub probe: Probe,
    /// Multiple-choice accuracy by tercile of per-clip depth AbsRel (best third first).
    pub by_depth_quality: Vec<QualityBin>,
    /// Questions skipped (views missing or of another count than the model's), with why.
    pub skipped: usize,
    /// Every scored question: key, family, and the model's score (1/0, or its MRA), for
    /// paired comparisons of runs on the same questions.
    pub per_question: Vec<(String, Family, f64)>,
}

/// The most-frequent-answer baseline's prediction for `item`, from the train split's
/// answers: the most common answer of the family (for name options: the option at the most
/// common position; for numbers: the median).
fn most_frequent(train: &[QaItem]) -> impl Fn(&QaItem) -> String + '_ {
    let mut by_family: BTreeMap<Family, BTreeMap<String, usize>> = BTreeMap::new();
    let mut numbers: BTreeMap<Family, Vec<f64>> = BTreeMap::new();
    for q in train {
        let key = if q.numeric.is_some() {
            numbers
                .entry(q.family)
                .or_default()
                .push(q.numeric.unwrap_or(0.0));
            continue;
        } else if q.family.fixed_options() {
            q.answer.clone()
        } else {
            format!(
                "#{}",
                q.options.iter().position(|o| *o == q.answer).unwrap_or(0)
            )
        };
        *by_family
            .entry(q.family)
            .or_default()
            .entry(key)
            .or_default() += 1;
    }
    let top: BTreeMap<Family, String> = by_family
        .into_iter()
        .filter_map(|(f, m)| m.into_iter().max_by_key(|x| x.1).map(|(k, _)| (f, k)))
        .collect();
    let medians: BTreeMap<Family, f64> = numbers
        .into_iter()
        .map(|(f, mut v)| {
            v.sort_by(f64::total_cmp);
            (f, v[v.len() / 2])
        })
        .collect();
    move |item: &QaItem| {
        if item.numeric.is_some() {
            return medians
                .get(&item.family)
                .map_or(String::new(), |m| format!("{m}"));
        }
        match top.get(&item.family) {
            Some(k) if k.starts_with('#') => {
                let i: usize = k[1..].parse().unwrap_or(0);
                item.options.get(i).cloned().unwrap_or_default()
            }
            Some(k) => k.clone(),
            None => String::new(),
        }
    }
}

/// Evaluates the multimodal run in `run_dir` on the questions of `split` of `dataset`.
pub fn evaluate_qa(
    dataset: &Dataset,
    run_dir: &Path,
    split: Split,
    progress: &dyn Progress,
) -> Result<QaEvalReport> {
    let LoadedMllm {
        model,
        sizes,
        tokenizer: tok,
        config,
    } = load_mllm(&crate::run::RunDir::new(run_dir))?;
    let manifest = dataset.latest()?;
    let store = FrameStore::new(dataset.clone(), &manifest, config.cache_row_groups);
    let index = store.frame_index()?;
    let all = read_qa(dataset, &manifest, None)?;
    let train: Vec<QaItem> = all
        .iter()
        .filter(|q| q.split == Split::Train)
        .cloned()
        .collect();
    let items: Vec<QaItem> = all.into_iter().filter(|q| q.split == split).collect();
    if items.is_empty() {
        return Err(TrainError::User(format!(
            "the {split} split of {} has no questions (run `spatialsv qa`)",
            dataset.location()
        )));
    }
    let baseline = most_frequent(&train);
    let (v, h, w) = (config.views, sizes.image_height, sizes.image_width);
    let device = default_device();
    let mut report = QaEvalReport {
        split: split.to_string(),
        ..QaEvalReport::default()
    };
    // Group questions by their views: each clip is loaded and probed once.
    let mut by_clip: BTreeMap<(String, Vec<i64>), Vec<QaItem>> = BTreeMap::new();
    for q in items {
        if q.frames.len() != v {
            report.skipped += 1;
            continue;
        }
        by_clip
            .entry((q.scene_id.clone(), q.frames.clone()))
            .or_default()
            .push(q);
    }
    struct Scored {
        qa_id: String,
        family: Family,
        numeric: bool,
        model: f64,
        blind: f64,
        most_frequent: f64,
        chance: Option<f64>,
        clip_abs_rel: Option<f64>,
    }
    let mut scored: Vec<Scored> = Vec::new();
    let (mut probe_sum, mut probe_auc, mut probe_n, mut auc_n) = ([0.0f64; 2], 0.0, 0usize, 0usize);
    progress.start(by_clip.len() as u64, "clips");
    for ((scene, frames), qs) in &by_clip {
        progress.advance(1);
        let Some(refs) = frames_of(&index, scene, frames) else {
            report.skipped += qs.len();
            continue;
        };
        let clip = load_clip(&store, &refs, w, h, Augment::NONE, 0)?;
        let one = Tensor::<Inner, 5>::from_data(
            TensorData::new(clip.images.clone(), [1, v, 3, h, w]),
            &device,
        );
        // The probe: the taps' 3D on these views (no text needed: causal attention).
        let p = model
            .forward(
                one.clone(),
                Tensor::<Inner, 2, Int>::zeros([1, 1], &device),
                true,
            )
            .prediction;
        let mut clip_abs_rel = None;
        if let Some(p) = p {
            let vec4 = |t: Tensor<Inner, 4>| t.into_data().to_vec::<f32>().unwrap_or_default();
            let vec5 = |t: Tensor<Inner, 5>| t.into_data().to_vec::<f32>().unwrap_or_default();
            let gt_poses = crate::eval::relative_poses(&store, &refs)?;
            if let Some(s) = crate::eval::score_clip(
                &vec4(p.depth),
                &vec5(p.rays),
                &vec5(p.points),
                &clip.depth,
                &clip.points,
                &gt_poses,
                1.0,
                v,
                h,
                w,
            ) {
                probe_sum[0] += s.abs_rel;
                probe_sum[1] += s.chamfer;
                probe_n += 1;
                if let Some(a) = s.auc30 {
                    probe_auc += a;
                    auc_n += 1;
                }
                clip_abs_rel = Some(s.abs_rel);
            }
        }
        let prompts: Vec<Vec<usize>> = qs
            .iter()
            .map(|q| encode_item(&tok, q).map(|(p, _)| p))
            .collect::<Result<_>>()?;
        let said = answer(&model, &tok, one.clone(), &prompts, 6);
        let blind = answer(&model, &tok, one.zeros_like(), &prompts, 6);
        for ((q, a), b) in qs.iter().zip(&said).zip(&blind) {
            scored.push(Scored {
                qa_id: q.qa_id.clone(),
                family: q.family,
                numeric: q.numeric.is_some(),
                model: score(q, &tok.decode(a)),
                blind: score(q, &tok.decode(b)),
                most_frequent: score(q, &baseline(q)),
                chance: (q.numeric.is_none() && !q.options.is_empty())
                    .then(|| 1.0 / q.options.len() as f64),
                clip_abs_rel,
            });
        }
    }
    progress.finish();
    if scored.is_empty() {
        return Err(TrainError::User(format!(
            "no question of the {split} split of {} has {v} labeled views to show the model",
            dataset.location()
        )));
    }
    let summarise = |rows: &[&Scored], measure: &str| -> FamilyScore {
        let n = rows.len().max(1) as f64;
        let mean = |f: &dyn Fn(&Scored) -> f64| rows.iter().map(|r| f(r)).sum::<f64>() / n;
        let chances: Vec<f64> = rows.iter().filter_map(|r| r.chance).collect();
        FamilyScore {
            questions: rows.len(),
            measure: measure.into(),
            model: mean(&|r| r.model),
            blind: mean(&|r| r.blind),
            most_frequent: mean(&|r| r.most_frequent),
            chance: (!chances.is_empty())
                .then(|| chances.iter().sum::<f64>() / chances.len() as f64),
        }
    };
    let mut families: BTreeMap<String, Vec<&Scored>> = BTreeMap::new();
    for s in &scored {
        families.entry(s.family.to_string()).or_default().push(s);
    }
    for (f, rows) in &families {
        let measure = if rows[0].numeric { "mra" } else { "accuracy" };
        report.families.insert(f.clone(), summarise(rows, measure));
    }
    report.per_question = scored
        .iter()
        .map(|s| (s.qa_id.clone(), s.family, s.model))
        .collect();
    let mc: Vec<&Scored> = scored.iter().filter(|s| !s.numeric).collect();
    let num: Vec<&Scored> = scored.iter().filter(|s| s.numeric).collect();
    report.multiple_choice = summarise(&mc, "accuracy");
    report.numeric = summarise(&num, "mra");
    report.probe = Probe {
        clips: probe_n,
        abs_rel: probe_sum[0] / probe_n.max(1) as f64,
        auc30: (auc_n > 0).then(|| probe_auc / auc_n as f64),
        chamfer: probe_sum[1] / probe_n.max(1) as f64,
    };
    // Terciles of per-clip depth quality over the multiple-choice questions.
    let mut with_q: Vec<(f64, f64)> = mc
        .iter()
        .filter_map(|s| s.clip_abs_rel.map(|a| (a, s.model)))
        .collect();
    with_q.sort_by(|a, b| a.0.total_cmp(&b.0));
    if with_q.len() >= 3 {
        for k in 0..3 {
            let part = &with_q[k * with_q.len() / 3..(k + 1) * with_q.len() / 3];
            if part.is_empty() {
                continue;
            }
            report.by_depth_quality.push(QualityBin {
                abs_rel: [part[0].0, part[part.len() - 1].0],
                questions: part.len(),
                accuracy: part.iter().map(|x| x.1).sum::<f64>() / part.len() as f64,
            });
        }
    }
    Ok(report)
}

/// What `ask` gets back: the answer and the model's 3D lifting of the views.
#[derive(Debug, Clone)]
pub struct Asked {
    /// The decoded answer.
    pub answer: String,
    /// The normalised images `[v, 3, h, w]`.
    pub images: Vec<f32>,
    /// The taps' depth `[v, h, w]` (normalised units).
    pub depth: Vec<f32>,
    /// The taps' point map `[v, 3, h, w]`, first view's camera frame (normalised units).
    pub points: Vec<f32>,
    /// Views, height, width.
    pub size: [usize; 3],
}

/// Asks a loaded run `question` about the views `refs` of `store`: the greedy answer, and
/// the 3D its taps lift from those views. Unknown words are a user error naming them.
pub fn ask(
    run: &LoadedMllm,
    store: &FrameStore,
    refs: &[spatialsv_store::FrameRef],
    question: &str,
) -> Result<Asked> {
    let tok = &run.tokenizer;
    let ids = tok
        .encode(question)
        .map_err(|w| super::data::unknown_words(&w))?;
    if refs.is_empty() || refs.len() > run.sizes.max_views {
        return Err(TrainError::User(format!(
            "{} views given; this model takes 1 to {}",
            refs.len(),
            run.sizes.max_views
        )));
    }
    let (v, h, w) = (refs.len(), run.sizes.image_height, run.sizes.image_width);
    let images = crate::data::load_images(store, refs, w, h, Augment::NONE, 0)?;
    let device = default_device();
    let t =
        Tensor::<Inner, 5>::from_data(TensorData::new(images.clone(), [1, v, 3, h, w]), &device);
    let mut prompt = vec![tok.id(super::tokenizer::BOS).unwrap_or(1)];
    prompt.extend(ids);
    prompt.push(tok.id(super::tokenizer::ANSWER).unwrap_or(2));
    let said = answer(&run.model, tok, t.clone(), &[prompt], 6);
    let p = run
        .model
        .forward(t, Tensor::<Inner, 2, Int>::zeros([1, 1], &device), true)
        .prediction
        .ok_or_else(|| TrainError::Internal("no 3D prediction".into()))?;
    Ok(Asked {
        answer: tok.decode(&said[0]),
        images,
        depth: p.depth.into_data().to_vec::<f32>().unwrap_or_default(),
        points: p.points.into_data().to_vec::<f32>().unwrap_or_default(),
        size: [v, h, w],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(family: &str, answer: &str, options: &[&str], numeric: Option<f64>) -> QaItem {
        QaItem {
            qa_id: String::new(),
            scene_id: "s".into(),
            split: Split::Train,
            frames: vec![],
            family: family.parse().unwrap(),
            question: String::new(),
            options: options.iter().map(|o| o.to_string()).collect(),
            answer: answer.into(),
            numeric,
        }
    }

    #[test]
    fn answers_are_scored_like_the_benchmarks() {
        let mc = item(
            "object_closer",
            "red cabinet",
            &["ball", "red cabinet"],
            None,
        );
        assert_eq!(score(&mc, "red cabinet"), 1.0);
        assert_eq!(score(&mc, "Red  Cabinet"), 1.0);
        assert_eq!(score(&mc, "ball"), 0.0);
        let num = item("object_distance", "2.0", &[], Some(2.0));
        assert!((score(&num, "2.25") - 0.8).abs() < 1e-12);
        assert_eq!(score(&num, "left"), 0.0);
    }

    #[test]
    fn the_most_frequent_baseline_uses_labels_positions_and_medians() {
        let train = vec![
            item("camera_turn", "left", &["left", "right", "no turn"], None),
            item("camera_turn", "left", &["left", "right", "no turn"], None),
            item("camera_turn", "right", &["left", "right", "no turn"], None),
            item("object_closer", "b", &["a", "b"], None),
            item("object_closer", "d", &["c", "d"], None),
            item("object_distance", "1.0", &[], Some(1.0)),
            item("object_distance", "3.0", &[], Some(3.0)),
            item("object_distance", "2.0", &[], Some(2.0)),
        ];
        let f = most_frequent(&train);
        assert_eq!(
            f(&item(
                "camera_turn",
                "x",
                &["left", "right", "no turn"],
                None
            )),
            "left"
        );
        // Name options: the second option was right most often.
        assert_eq!(f(&item("object_closer", "x", &["e", "f"], None)), "f");
        assert_eq!(f(&item("object_distance", "x", &[], Some(9.0))), "2");
    }
}
