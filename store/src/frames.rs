//! Random access to the frames of one dataset version: the read side that training,
//! evaluation, export and labelling share. An index of every frame (scene, frame index ->
//! data file, row group, row; built from one scan of the metadata columns) and a bounded
//! cache of decoded row groups, so a random clip costs one row-group read at most.
//!
//! Splits come from the `scenes` table: a scene's frames are used only for its split.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, RecordBatch};
use spatialsv_schemas::{Columns, Split, Table};

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::geometry::Mat4;
use crate::manifest::Manifest;
use crate::media::DepthImage;

/// Where a frame is: data file, row group, row within the row group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef {
    /// Index into the manifest's frames files.
    pub file: usize,
    /// Row group within the file.
    pub row_group: usize,
    /// Row within the row group.
    pub row: usize,
    /// `frames.frame_idx`.
    pub frame_idx: i64,
}

/// Decodes the stored 16-bit depth PNG of the frame named `at` (`scene frame N`). A stored
/// depth that does not decode is a damaged dataset file (exit code 1), wherever it is met.
pub fn decode_stored_depth(png: &[u8], at: impl std::fmt::Display) -> Result<DepthImage> {
    crate::media::decode_png16(png).map_err(|e| Error::Corrupt {
        path: at.to_string().into(),
        message: format!("stored depth does not decode ({e})"),
    })
}

/// A frame as stored.
#[derive(Debug, Clone)]
pub struct RawFrame {
    /// Encoded colour image.
    pub image: Vec<u8>,
    /// Colour intrinsics at the stored size.
    pub k: [f64; 4],
    /// 16-bit PNG depth, its metres per unit and its intrinsics.
    pub depth: Option<(Vec<u8>, f64, [f64; 4])>,
    /// Camera-to-world.
    pub pose: Option<Mat4>,
}

const FRAME_COLUMNS: [&str; 13] = [
    "image",
    "fx",
    "fy",
    "cx",
    "cy",
    "depth",
    "depth_scale_m",
    "depth_fx",
    "depth_fy",
    "depth_cx",
    "depth_cy",
    "world_from_camera",
    "frame_idx",
];

/// Decoded row groups by (file, row group), and their insertion order for eviction.
type RowGroupCache = (
    HashMap<(usize, usize), Arc<RecordBatch>>,
    VecDeque<(usize, usize)>,
);

/// Random access to the frames of one dataset version.
pub struct FrameStore {
    ds: Dataset,
    files: Vec<String>,
    cache: Mutex<RowGroupCache>,
    capacity: usize,
    /// The frame index, built on first use (one scan of the frames' metadata columns).
    index: Mutex<Option<Arc<FrameIndex>>>,
}

impl std::fmt::Debug for FrameStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameStore")
            .field("files", &self.files.len())
            .finish_non_exhaustive()
    }
}

/// The labeled frames of one split, by scene, in capture order.
pub type SceneFrames = BTreeMap<String, Vec<FrameRef>>;

/// Every frame by (scene id, frame index): where it is and whether it has depth and pose.
pub type FrameIndex = BTreeMap<(String, i64), (FrameRef, bool)>;

impl FrameStore {
    /// Frames of `manifest`, keeping at most `cache_row_groups` decoded row groups in memory.
    pub fn new(ds: Dataset, manifest: &Manifest, cache_row_groups: usize) -> Self {
        let files = manifest
            .tables
            .get(Table::Frames.name())
            .map(|t| t.files.iter().map(|f| f.path.clone()).collect())
            .unwrap_or_default();
        Self {
            ds,
            files,
            cache: Mutex::new((HashMap::new(), VecDeque::new())),
            capacity: cache_row_groups.max(1),
            index: Mutex::new(None),
        }
    }

    /// The scene ids of `split` (from the `scenes` table).
    fn scenes_of_split(&self, manifest: &Manifest, split: Split) -> Result<BTreeSet<String>> {
        let scenes = self
            .ds
            .read_table(manifest, Table::Scenes, Some(&["scene_id", "split"]))?;
        let mut in_split = BTreeSet::new();
        for b in &scenes {
            let c = Columns::new(Table::Scenes, b)?;
            let (ids, splits) = (c.strings("scene_id")?, c.strings("split")?);
            for r in 0..b.num_rows() {
                if splits.value(r) == split.as_str() {
                    in_split.insert(ids.value(r).to_string());
                }
            }
        }
        Ok(in_split)
    }

    /// Every frame, by (scene id, frame index), with whether it is labeled (depth and pose).
    /// Built once per store and shared.
    pub fn frame_index(&self) -> Result<Arc<FrameIndex>> {
        if let Ok(cached) = self.index.lock()
            && let Some(index) = cached.as_ref()
        {
            return Ok(index.clone());
        }
        let index = Arc::new(self.build_frame_index()?);
        if let Ok(mut cached) = self.index.lock() {
            *cached = Some(index.clone());
        }
        Ok(index)
    }

    fn build_frame_index(&self) -> Result<FrameIndex> {
        let mut out = FrameIndex::new();
        for (file, path) in self.files.iter().enumerate() {
            let rg_rows = self.ds.row_group_rows(path)?;
            let cols = [
                "scene_id",
                "frame_idx",
                "depth_scale_m",
                "world_from_camera",
            ];
            let batches = self
                .ds
                .read_row_groups(Table::Frames, path, None, Some(&cols))?;
            let mut global = 0usize;
            let (mut rg, mut rg_start) = (0usize, 0usize);
            for b in &batches {
                let c = Columns::new(Table::Frames, b)?;
                let (scene, idx) = (c.strings("scene_id")?, c.i64s("frame_idx")?);
                let (scale, pose) = (c.f64s("depth_scale_m")?, c.poses("world_from_camera")?);
                for r in 0..b.num_rows() {
                    while rg < rg_rows.len() && global >= rg_start + rg_rows[rg] {
                        rg_start += rg_rows[rg];
                        rg += 1;
                    }
                    let labeled = !scale.is_null(r) && !pose.is_null(r);
                    let f = FrameRef {
                        file,
                        row_group: rg,
                        row: global - rg_start,
                        frame_idx: idx.value(r),
                    };
                    out.insert((scene.value(r).to_string(), idx.value(r)), (f, labeled));
                    global += 1;
                }
            }
        }
        Ok(out)
    }

    /// The frames with depth and pose of the scenes of `split` (split taken from `scenes`).
    pub fn labeled_scenes(&self, manifest: &Manifest, split: Split) -> Result<SceneFrames> {
        let in_split = self.scenes_of_split(manifest, split)?;
        let mut out: SceneFrames = BTreeMap::new();
        for ((scene, _), (f, labeled)) in self.frame_index()?.iter() {
            if *labeled && in_split.contains(scene) {
                out.entry(scene.clone()).or_default().push(*f);
            }
        }
        for frames in out.values_mut() {
            frames.sort_by_key(|f| f.frame_idx);
        }
        Ok(out)
    }

    /// The decoded row group `rg` of frames file `file` (cached).
    fn row_group(&self, file: usize, rg: usize) -> Result<Arc<RecordBatch>> {
        if let Ok(cache) = self.cache.lock()
            && let Some(b) = cache.0.get(&(file, rg))
        {
            return Ok(b.clone());
        }
        let path = self
            .files
            .get(file)
            .ok_or_else(|| Error::Internal(format!("no frames file {file}")))?;
        let batches =
            self.ds
                .read_row_groups(Table::Frames, path, Some(vec![rg]), Some(&FRAME_COLUMNS))?;
        let schema = batches.first().map(|b| b.schema()).ok_or_else(|| {
            Error::corrupt(
                format!("{}/{path}", self.ds.location()),
                format!("row group {rg} is empty"),
            )
        })?;
        let batch = Arc::new(arrow::compute::concat_batches(&schema, &batches)?);
        if let Ok(mut cache) = self.cache.lock() {
            cache.0.insert((file, rg), batch.clone());
            cache.1.push_back((file, rg));
            while cache.1.len() > self.capacity {
                if let Some(old) = cache.1.pop_front() {
                    cache.0.remove(&old);
                }
            }
        }
        Ok(batch)
    }

    /// Calls `f` with the encoded colour image of a frame, without copying it.
    pub fn with_image<T>(&self, frame: &FrameRef, f: impl FnOnce(&[u8]) -> T) -> Result<T> {
        let b = self.row_group(frame.file, frame.row_group)?;
        let c = Columns::new(Table::Frames, &b)?;
        Ok(f(c.binaries("image")?.value(frame.row)))
    }

    /// Reads one frame.
    pub fn load(&self, f: &FrameRef) -> Result<RawFrame> {
        let b = self.row_group(f.file, f.row_group)?;
        let c = Columns::new(Table::Frames, &b)?;
        let r = f.row;
        let f64_at = |name: &str| -> Result<Option<f64>> {
            let col = c.f64s(name)?;
            Ok((!col.is_null(r)).then(|| col.value(r)))
        };
        let k = [f64_at("fx")?, f64_at("fy")?, f64_at("cx")?, f64_at("cy")?];
        let k = match k {
            [Some(a), Some(b), Some(c), Some(d)] => [a, b, c, d],
            _ => {
                return Err(Error::User(format!(
                    "frame {} has no intrinsics",
                    f.frame_idx
                )));
            }
        };
        let image = c.binaries("image")?.value(r).to_vec();
        let depth_col = c.binaries("depth")?;
        let depth = if depth_col.is_null(r) {
            None
        } else {
            let dk = [
                f64_at("depth_fx")?,
                f64_at("depth_fy")?,
                f64_at("depth_cx")?,
                f64_at("depth_cy")?,
            ];
            let dk = match dk {
                [Some(a), Some(b), Some(c), Some(d)] => [a, b, c, d],
                _ => k,
            };
            Some((
                depth_col.value(r).to_vec(),
                f64_at("depth_scale_m")?.unwrap_or(0.001),
                dk,
            ))
        };
        Ok(RawFrame {
            image,
            k,
            depth,
            pose: c.poses("world_from_camera")?.get(r),
        })
    }
}
