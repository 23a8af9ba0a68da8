//! Spatial questions from 3D data (`spatialsv qa`): the `qa` table.
//!
//! Every labeled scene (true depth and poses) is cut into *clips* of `views` frames spread
//! over the whole scene (clip `c` holds frames `c, c + s, c + 2s, ...` with `s = frames /
//! views`), so a clip shows a room from across its trajectory, as VSI-Bench's videos do. For
//! each clip and family ([`families`]) every candidate question is computed from geometry;
//! `per_clip` of them are drawn with a seeded generator; then each fixed-option family is
//! balanced per split by capping every answer at the median answer count. Rows are keyed
//! (`qa_id`: a hash of the generator version, scene, views, family, template and text), so
//! running it again with the same options adds nothing.

pub mod families;

use std::collections::BTreeMap;

use arrow::array::{ArrayRef, Float64Builder, Int64Array, ListBuilder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field};
use spatialsv_schemas::{Columns, Split, Table, qa_schema};
use std::sync::Arc;

pub use families::{DepthView, Family, Question, ViewGeom, mra};
use spatialsv_store::datagen::SplitMix64;
use spatialsv_store::frames::{FrameRef, FrameStore};
use spatialsv_store::objects::{ObjectView, SceneObject, unique_names};
use spatialsv_store::progress::Progress;
use spatialsv_store::{Dataset, WriteOptions};
use spatialsv_store::{Error, Result};

/// Version of the templates and rules; part of every key.
pub const GENERATOR_VERSION: &str = "1";

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct QaOptions {
    /// Questions per clip and family (at most).
    pub per_clip: usize,
    /// Families to generate (all when empty).
    pub families: Vec<Family>,
    /// Seed of every draw.
    pub seed: u64,
    /// Views per clip.
    pub views: usize,
    /// How the commit is written.
    pub write: WriteOptions,
}

impl Default for QaOptions {
    fn default() -> Self {
        Self {
            per_clip: 4,
            families: Vec::new(),
            seed: 0,
            views: 4,
            write: WriteOptions::default(),
        }
    }
}

/// One stored question.
#[derive(Debug, Clone, PartialEq)]
pub struct QaRow {
    /// Key.
    pub qa_id: String,
    /// Scene.
    pub scene_id: String,
    /// Split of the scene.
    pub split: Split,
    /// Views shown.
    pub frame_indices: Vec<i64>,
    /// The question.
    pub q: Question,
    /// `gt` or `pseudo:{teacher}`.
    pub source: String,
}

/// What a run did ([`QaReport::lines`] is what `spatialsv qa` prints).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QaReport {
    /// Dataset version after the commit.
    pub version: u64,
    /// Scenes used.
    pub scenes: usize,
    /// Clips used.
    pub clips: usize,
    /// Questions kept, by (split, family).
    pub kept: BTreeMap<(String, String), usize>,
    /// Rows newly committed.
    pub added: usize,
    /// Rows already present (same key).
    pub duplicates: usize,
    /// Families not generated, with the reason.
    pub skipped: Vec<(Family, String)>,
    /// Share of the most frequent answer ([`answer_key`]), by (split, family), after
    /// balancing.
    pub top_answer_share: BTreeMap<(String, String), f64>,
}

impl QaReport {
    /// What `spatialsv qa` prints for this run into the dataset at `location`: families not
    /// generated and why, questions per split and family with the top answer's share, and the
    /// totals with the version.
    pub fn lines(&self, location: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .skipped
            .iter()
            .map(|(family, why)| format!("{family}: not generated ({why})"))
            .collect();
        out.push(format!(
            "{:<8} {:<20} {:>9} {:>11}",
            "split", "family", "questions", "top answer"
        ));
        for ((split, family), n) in &self.kept {
            let top = self
                .top_answer_share
                .get(&(split.clone(), family.clone()))
                .copied()
                .unwrap_or(0.0);
            out.push(format!(
                "{split:<8} {family:<20} {n:>9} {:>10.0}%",
                top * 100.0
            ));
        }
        out.push(format!(
            "{} scenes, {} clips: {} questions added, {} already present; dataset {location} is at version {}",
            self.scenes, self.clips, self.added, self.duplicates, self.version
        ));
        out
    }
}

/// The frames of a clip: `views` frames spread over the scene (see the module docs); a scene
/// shorter than `views` is one clip of all its frames.
pub fn clips(n_frames: usize, views: usize) -> Vec<Vec<usize>> {
    let views = views.max(1);
    if n_frames == 0 {
        return Vec::new();
    }
    if n_frames < views {
        return vec![(0..n_frames).collect()];
    }
    let stride = n_frames / views;
    (0..stride)
        .map(|c| (0..views).map(|k| c + k * stride).collect())
        .collect()
}

fn hash_seed(parts: &[&str], seed: u64) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    spatialsv_store::hash::hasher_u64(&h)
}

/// The key of a question.
pub fn qa_id(scene: &str, frames: &[i64], q: &Question) -> String {
    let mut h = blake3::Hasher::new();
    for part in [GENERATOR_VERSION, scene, q.family.name()] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    for f in frames {
        h.update(&f.to_le_bytes());
    }
    h.update(&q.template_id.to_le_bytes());
    h.update(q.question.as_bytes());
    spatialsv_store::Digest::finish(&h).prefix(32).to_string()
}

/// Objects of every scene, by scene and id.
pub fn read_objects(
    ds: &Dataset,
    manifest: &spatialsv_store::Manifest,
) -> Result<BTreeMap<String, BTreeMap<i64, SceneObject>>> {
    let mut out: BTreeMap<String, BTreeMap<i64, SceneObject>> = BTreeMap::new();
    for b in ds.read_table(manifest, Table::Objects, None)? {
        let c = Columns::new(Table::Objects, &b)?;
        let (scene, id, name, cat) = (
            c.strings("scene_id")?,
            c.i64s("object_id")?,
            c.strings("name")?,
            c.strings("category")?,
        );
        let (colour, size) = (c.strings("colour")?, c.strings("size")?);
        let (centre, extent) = (c.vectors("centre")?, c.vectors("extent")?);
        for r in 0..b.num_rows() {
            let v3 = |v: Vec<f64>| [0, 1, 2].map(|i| v.get(i).copied().unwrap_or(0.0));
            let opt = |a: &arrow::array::StringArray| {
                use arrow::array::Array;
                (!a.is_null(r)).then(|| a.value(r).to_string())
            };
            out.entry(scene.value(r).to_string()).or_default().insert(
                id.value(r),
                SceneObject {
                    object_id: id.value(r),
                    name: name.value(r).to_string(),
                    category: cat.value(r).to_string(),
                    colour: opt(colour),
                    size: opt(size),
                    centre: v3(centre.get(r)),
                    extent: v3(extent.get(r)),
                },
            );
        }
    }
    Ok(out)
}

/// Object sightings by (scene, frame).
fn read_object_views(
    ds: &Dataset,
    manifest: &spatialsv_store::Manifest,
) -> Result<BTreeMap<(String, i64), Vec<ObjectView>>> {
    use arrow::array::Array;
    let mut out: BTreeMap<(String, i64), Vec<ObjectView>> = BTreeMap::new();
    for b in ds.read_table(manifest, Table::ObjectViews, None)? {
        let c = Columns::new(Table::ObjectViews, &b)?;
        let (scene, frame, id, pixels, fraction, bbox, depth) = (
            c.strings("scene_id")?,
            c.i64s("frame_idx")?,
            c.i64s("object_id")?,
            c.i64s("pixels")?,
            c.f64s("fraction")?,
            c.vectors("bbox")?,
            c.f64s("depth_median_m")?,
        );
        for r in 0..b.num_rows() {
            let bb = bbox.get(r);
            out.entry((scene.value(r).to_string(), frame.value(r)))
                .or_default()
                .push(ObjectView {
                    object_id: id.value(r),
                    pixels: pixels.value(r),
                    fraction: fraction.value(r),
                    bbox: [0, 1, 2, 3].map(|i| bb.get(i).copied().unwrap_or(0.0)),
                    depth_median_m: (!depth.is_null(r)).then(|| depth.value(r)),
                });
        }
    }
    for v in out.values_mut() {
        v.sort_by_key(|o| o.object_id);
    }
    Ok(out)
}

/// The geometry of one stored frame: pose, true depth in metres, its objects.
fn view_geom(
    store: &FrameStore,
    scene: &str,
    f: &FrameRef,
    sightings: &BTreeMap<(String, i64), Vec<ObjectView>>,
) -> Result<ViewGeom> {
    let raw = store.load(f)?;
    let depth = match &raw.depth {
        None => None,
        Some((png, scale, _)) => {
            let d = spatialsv_store::frames::decode_stored_depth(
                png,
                format!("{scene} frame {}", f.frame_idx),
            )?;
            Some(DepthView {
                width: d.width,
                height: d.height,
                metres: d
                    .values
                    .iter()
                    .map(|v| (f64::from(*v) * scale) as f32)
                    .collect(),
            })
        }
    };
    Ok(ViewGeom {
        frame_idx: f.frame_idx,
        pose: raw.pose.unwrap_or(spatialsv_store::geometry::IDENTITY),
        depth,
        objects: sightings
            .get(&(scene.to_string(), f.frame_idx))
            .cloned()
            .unwrap_or_default(),
    })
}

/// Caps every answer of each fixed-option family (per split) at the median answer count, so no
/// answer dominates; which rows go is drawn with `seed`.
fn balance(rows: Vec<QaRow>, seed: u64) -> Vec<QaRow> {
    let mut groups: BTreeMap<(&str, Family), Vec<QaRow>> = BTreeMap::new();
    for r in rows {
        groups
            .entry((r.split.as_str(), r.q.family))
            .or_default()
            .push(r);
    }
    let mut out = Vec::new();
    for ((split, family), mut group) in groups {
        if !family.fixed_options() {
            out.extend(group);
            continue;
        }
        let mut rng = SplitMix64::new(hash_seed(&[split, family.name()], seed));
        for i in (1..group.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            group.swap(i, j);
        }
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for r in &group {
            *counts.entry(r.q.answer.clone()).or_default() += 1;
        }
        let mut sizes: Vec<usize> = counts.values().copied().collect();
        sizes.sort_unstable();
        let cap = sizes[(sizes.len() - 1) / 2].max(1);
        let mut taken: BTreeMap<String, usize> = BTreeMap::new();
        for r in group {
            let t = taken.entry(r.q.answer.clone()).or_default();
            if *t < cap {
                *t += 1;
                out.push(r);
            }
        }
    }
    out
}

/// What "the same answer" means for the most-frequent-answer share: the label for
/// fixed-option families, the option's position where options are names (object families),
/// the value for numeric ones.
pub fn answer_key(q: &Question) -> String {
    if q.family.fixed_options() || q.options.is_empty() {
        q.answer.clone()
    } else {
        let at = q.options.iter().position(|o| *o == q.answer).unwrap_or(0);
        format!("option {}", at + 1)
    }
}

/// Builds a `qa` batch.
pub fn qa_batch(rows: &[QaRow]) -> Result<RecordBatch> {
    let item = |dt: DataType| Arc::new(Field::new("item", dt, false));
    let mut frames =
        ListBuilder::new(arrow::array::Int64Builder::new()).with_field(item(DataType::Int64));
    let mut options = ListBuilder::new(StringBuilder::new()).with_field(item(DataType::Utf8));
    let mut objects =
        ListBuilder::new(arrow::array::Int64Builder::new()).with_field(item(DataType::Int64));
    let mut numeric = Float64Builder::new();
    for r in rows {
        frames.values().append_slice(&r.frame_indices);
        frames.append(true);
        for o in &r.q.options {
            options.values().append_value(o);
        }
        options.append(true);
        objects.values().append_slice(&r.q.object_ids);
        objects.append(true);
        numeric.append_option(r.q.numeric);
    }
    let s = |f: &dyn Fn(&QaRow) -> &str| -> ArrayRef {
        Arc::new(arrow::array::StringArray::from_iter_values(
            rows.iter().map(f),
        ))
    };
    let cols: Vec<ArrayRef> = vec![
        s(&|r| r.qa_id.as_str()),
        s(&|r| r.scene_id.as_str()),
        s(&|r| r.split.as_str()),
        Arc::new(frames.finish()),
        s(&|r| r.q.family.name()),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.q.template_id),
        )),
        s(&|r| r.q.question.as_str()),
        Arc::new(options.finish()),
        s(&|r| r.q.answer.as_str()),
        Arc::new(numeric.finish()),
        Arc::new(objects.finish()),
        Arc::new(arrow::array::Float64Array::from_iter_values(
            rows.iter().map(|r| r.q.margin),
        )),
        s(&|r| r.source.as_str()),
        s(&|_| GENERATOR_VERSION),
    ];
    Ok(RecordBatch::try_new(qa_schema(), cols)?)
}

/// Generates questions for every labeled scene of `ds` and commits them to its `qa` table.
pub fn generate(ds: &Dataset, opts: &QaOptions, progress: &dyn Progress) -> Result<QaReport> {
    if opts.per_clip == 0 || opts.views == 0 {
        return Err(Error::User(format!(
            "--per-clip {} and --views {} must be at least 1",
            opts.per_clip, opts.views
        )));
    }
    let manifest = ds.latest()?;
    let store = FrameStore::new(ds.clone(), &manifest, 64);
    let objects = read_objects(ds, &manifest)?;
    let sightings = read_object_views(ds, &manifest)?;
    let mut report = QaReport::default();
    let mut families: Vec<Family> = if opts.families.is_empty() {
        Family::ALL.to_vec()
    } else {
        opts.families.clone()
    };
    if objects.is_empty() {
        for f in families.iter().filter(|f| f.needs_objects()) {
            report.skipped.push((
                *f,
                format!(
                    "{} has no objects table rows (no annotated objects)",
                    ds.location()
                ),
            ));
        }
        families.retain(|f| !f.needs_objects());
        if families.is_empty() {
            return Err(Error::User(format!(
                "every requested question family needs annotated objects and {} has none (families without objects: camera_motion, camera_turn, camera_distance, point_closer, point_depth)",
                ds.location()
            )));
        }
    }
    let mut work: Vec<(Split, String, Vec<FrameRef>)> = Vec::new();
    for split in Split::ALL {
        for (scene, frames) in store.labeled_scenes(&manifest, *split)? {
            work.push((*split, scene, frames));
        }
    }
    if work.is_empty() {
        return Err(Error::User(format!(
            "{} has no labeled scenes (frames with depth and pose) to ask about",
            ds.location()
        )));
    }
    let no_objects = BTreeMap::new();
    progress.start(work.len() as u64, "scenes");
    let mut rows = Vec::new();
    for (split, scene, frames) in &work {
        progress.message(scene);
        let scene_objects = objects.get(scene).unwrap_or(&no_objects);
        let list: Vec<SceneObject> = scene_objects.values().cloned().collect();
        let nameable = unique_names(&list);
        for clip in clips(frames.len(), opts.views) {
            let views: Vec<ViewGeom> = clip
                .iter()
                .map(|i| view_geom(&store, scene, &frames[*i], &sightings))
                .collect::<Result<_>>()?;
            let frame_indices: Vec<i64> = views.iter().map(|v| v.frame_idx).collect();
            let geometry = families::Scene {
                views: &views,
                objects: scene_objects,
                nameable: &nameable,
            };
            let clip_key = format!("{frame_indices:?}");
            for family in &families {
                let mut rng =
                    SplitMix64::new(hash_seed(&[scene, &clip_key, family.name()], opts.seed));
                let mut cands = families::candidates(*family, &geometry, &mut rng);
                // Draw per_clip without replacement.
                for i in 0..cands.len().min(opts.per_clip) {
                    let j = i + (rng.next_u64() % (cands.len() - i) as u64) as usize;
                    cands.swap(i, j);
                }
                cands.truncate(opts.per_clip);
                for q in cands {
                    rows.push(QaRow {
                        qa_id: qa_id(scene, &frame_indices, &q),
                        scene_id: scene.clone(),
                        split: *split,
                        frame_indices: frame_indices.clone(),
                        q,
                        source: "gt".into(),
                    });
                }
            }
            report.clips += 1;
        }
        report.scenes += 1;
        progress.advance(1);
    }
    progress.finish();
    let rows = balance(rows, opts.seed);
    let mut answers: BTreeMap<(String, String), BTreeMap<String, usize>> = BTreeMap::new();
    for r in &rows {
        let k = (r.split.to_string(), r.q.family.name().to_string());
        *report.kept.entry(k.clone()).or_default() += 1;
        *answers
            .entry(k)
            .or_default()
            .entry(answer_key(&r.q))
            .or_default() += 1;
    }
    for (k, a) in answers {
        let total: usize = a.values().sum();
        let top = a.values().copied().max().unwrap_or(0);
        report
            .top_answer_share
            .insert(k, top as f64 / total.max(1) as f64);
    }
    if rows.is_empty() {
        return Err(Error::User(format!(
            "no question could be asked about {}: every candidate was too close to ambiguous or the scenes are too short",
            ds.location()
        )));
    }
    let (added, out) = ds.commit_retrying("qa", &opts.write, |tx| {
        let mut added = 0;
        for chunk in rows.chunks(4096) {
            added += tx.append(Table::Qa, qa_batch(chunk)?)?;
        }
        Ok(added)
    })?;
    report.added = added;
    report.duplicates = rows.len() - added;
    report.version = out.version;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_spread_over_the_scene() {
        assert_eq!(
            clips(9, 4),
            vec![vec![0, 2, 4, 6], vec![1, 3, 5, 7]],
            "frame 8 is left out"
        );
        assert_eq!(clips(3, 4), vec![vec![0, 1, 2]]);
        assert!(clips(0, 4).is_empty());
    }
}
