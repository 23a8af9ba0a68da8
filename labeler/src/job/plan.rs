//! Work planning: which clips this shard labels (BLAKE3 of the clip id mod N), which are
//! done already (resumption), and the interleaved teacher windows that label every frame
//! exactly once.

use std::collections::HashSet;
use std::str::FromStr;

use arrow::array::AsArray;
use spatialsv_schemas::{Columns, Split, Table};
use spatialsv_store::Dataset;
use spatialsv_store::{FrameRef, FrameStore};

use crate::error::{LabelError, Result};

/// This process's share of the work: clips whose id hashes to `index` modulo `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// K, from 0.
    pub index: usize,
    /// N.
    pub count: usize,
}

impl Shard {
    /// All the work.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Whether `clip_id` belongs to this shard.
    pub fn owns(&self, clip_id: &str) -> bool {
        shard_of(clip_id, self.count) == self.index
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("--shard '{s}' is not K/N with 0 <= K < N (e.g. 0/4)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// This process's shard from a `--shard` value: `K/N`; `slurm` (an array task:
    /// `SLURM_ARRAY_TASK_ID` less `SLURM_ARRAY_TASK_MIN`, of `SLURM_ARRAY_TASK_COUNT`); or
    /// `k8s/N` (a Kubernetes Indexed Job: `JOB_COMPLETION_INDEX`, of N). `env` reads the
    /// environment (a parameter so tests need not change the process's). A bad value or a
    /// missing variable is the user's error, naming both.
    pub fn resolve(spec: &str, env: impl Fn(&str) -> Option<String>) -> Result<Shard> {
        Self::resolve_spec(spec, env).map_err(LabelError::User)
    }

    fn resolve_spec(
        spec: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> std::result::Result<Shard, String> {
        let var = |name: &str| -> std::result::Result<usize, String> {
            let v = env(name).ok_or_else(|| {
                format!("--shard {spec}: {name} is not set (is this running as a {spec} task?)")
            })?;
            v.trim()
                .parse()
                .map_err(|_| format!("--shard {spec}: {name}='{v}' is not a whole number"))
        };
        let (index, count, from) = if spec == "slurm" {
            let id = var("SLURM_ARRAY_TASK_ID")?;
            let min = match env("SLURM_ARRAY_TASK_MIN") {
                Some(_) => var("SLURM_ARRAY_TASK_MIN")?,
                None => 0,
            };
            let count = var("SLURM_ARRAY_TASK_COUNT")?;
            let index = id.checked_sub(min).ok_or_else(|| {
                format!(
                    "--shard slurm: SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}"
                )
            })?;
            (
                index,
                count,
                "SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT",
            )
        } else if let Some(n) = spec.strip_prefix("k8s") {
            let n = n.strip_prefix('/').unwrap_or("");
            let count: usize = n.trim().parse().map_err(|_| {
                format!(
                    "--shard {spec}: give the job's completions as k8s/N (e.g. k8s/4); the \
                     index comes from JOB_COMPLETION_INDEX"
                )
            })?;
            (var("JOB_COMPLETION_INDEX")?, count, "JOB_COMPLETION_INDEX")
        } else {
            return spec.parse();
        };
        if count == 0 || index >= count {
            return Err(format!(
                "--shard {spec}: shard {index} of {count} ({from}) is not 0 <= K < N; use a \
                 contiguous array (e.g. --array=0-3) with one task per shard"
            ));
        }
        Ok(Shard { index, count })
    }
}

/// The shard (of `n`) a clip belongs to: its id's BLAKE3, first 8 bytes, modulo `n`. Stable
/// across runs, machines and dataset growth.
pub fn shard_of(clip_id: &str, n: usize) -> usize {
    (spatialsv_store::hash::prefix_u64(clip_id.as_bytes()) % n.max(1) as u64) as usize
}

/// Teacher windows over `n` frames of a clip (positions into the clip's frames): blocks of
/// `len * gap` frames, each cut into `gap` interleaved windows of `len` frames `gap` apart;
/// a last, shorter block of `m` frames uses gap `ceil(m / len)`. Every position appears in
/// exactly one window and no window is longer than `len`.
pub fn windows(n: usize, len: usize, gap: usize) -> Vec<Vec<usize>> {
    let (len, gap) = (len.max(1), gap.max(1));
    let mut out = Vec::new();
    let mut start = 0;
    while start < n {
        let m = (len * gap).min(n - start);
        let g = m.div_ceil(len);
        for o in 0..g {
            let w: Vec<usize> = (start + o..start + m).step_by(g).collect();
            if !w.is_empty() {
                out.push(w);
            }
        }
        start += m;
    }
    out
}

/// A clip to label: its id, scene, split and frames in order.
#[derive(Debug, Clone)]
pub(crate) struct Work {
    pub(crate) clip_id: String,
    pub(crate) scene_id: String,
    pub(crate) split: Split,
    pub(crate) frames: Vec<FrameRef>,
}

/// A window of one work item.
#[derive(Debug, Clone)]
pub(super) struct Window {
    pub(super) work: usize,
    pub(super) frames: Vec<FrameRef>,
}

/// Clips of unlabeled frames, sorted by id.
pub(crate) fn work_list(ds: &Dataset, store: &FrameStore) -> Result<Vec<Work>> {
    let m = ds.latest()?;
    let index = store.frame_index()?;
    let batches = ds.read_table(
        &m,
        Table::Clips,
        Some(&["clip_id", "scene_id", "split", "frame_indices"]),
    )?;
    let mut out = Vec::new();
    for b in &batches {
        let c = Columns::new(Table::Clips, b)?;
        let (ids, scenes, splits) = (
            c.strings("clip_id")?,
            c.strings("scene_id")?,
            c.strings("split")?,
        );
        let lists = c.lists("frame_indices")?;
        for r in 0..b.num_rows() {
            let scene = scenes.value(r).to_string();
            let idx = lists.value(r);
            let Some(idx) = idx.as_primitive_opt::<arrow::datatypes::Int64Type>() else {
                return Err(LabelError::Internal(
                    "clips.frame_indices is not Int64".into(),
                ));
            };
            let mut frames: Vec<FrameRef> = idx
                .values()
                .iter()
                .filter_map(|i| match index.get(&(scene.clone(), *i)) {
                    Some((f, false)) => Some(*f),
                    _ => None,
                })
                .collect();
            frames.sort_by_key(|f| f.frame_idx);
            frames.dedup_by_key(|f| f.frame_idx);
            if frames.is_empty() {
                continue;
            }
            out.push(Work {
                clip_id: ids.value(r).to_string(),
                scene_id: scene,
                split: splits.value(r).parse().map_err(LabelError::User)?,
                frames,
            });
        }
    }
    out.sort_by(|a, b| a.clip_id.cmp(&b.clip_id));
    out.dedup_by(|a, b| a.clip_id == b.clip_id);
    Ok(out)
}

/// (scene, frame) already labelled by this teacher and config.
pub(crate) fn already_labeled(
    ds: &Dataset,
    teacher: &str,
    config: &str,
) -> Result<HashSet<(String, i64)>> {
    let m = ds.latest()?;
    let batches = ds.read_table(
        &m,
        Table::PseudoLabels,
        Some(&["scene_id", "frame_idx", "teacher_hash", "config_hash"]),
    )?;
    let mut done = HashSet::new();
    for b in &batches {
        let cols = Columns::new(Table::PseudoLabels, b)?;
        let (s, t, c) = (
            cols.strings("scene_id")?,
            cols.strings("teacher_hash")?,
            cols.strings("config_hash")?,
        );
        let f = cols.i64s("frame_idx")?;
        for r in 0..b.num_rows() {
            if t.value(r) == teacher && c.value(r) == config {
                done.insert((s.value(r).to_string(), f.value(r)));
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn shards_come_from_the_scheduler_environment() {
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        assert_eq!(
            Shard::resolve("slurm", env(&slurm)).ok(),
            Some(Shard { index: 2, count: 4 })
        );
        let k8s = [("JOB_COMPLETION_INDEX", "3")];
        assert_eq!(
            Shard::resolve("k8s/4", env(&k8s)).ok(),
            Some(Shard { index: 3, count: 4 })
        );
        assert_eq!(
            Shard::resolve("1/2", env(&[])).ok(),
            Some(Shard { index: 1, count: 2 })
        );
        let e = Shard::resolve("slurm", env(&[])).unwrap_err().to_string();
        assert!(e.contains("SLURM_ARRAY_TASK_ID is not set"), "{e}");
        let e = Shard::resolve("k8s", env(&k8s)).unwrap_err().to_string();
        assert!(e.contains("k8s/N"), "{e}");
        let e = Shard::resolve("k8s/3", env(&k8s)).unwrap_err().to_string();
        assert!(e.contains("shard 3 of 3"), "{e}");
        let bad = [("JOB_COMPLETION_INDEX", "x")];
        let e = Shard::resolve("k8s/3", env(&bad)).unwrap_err().to_string();
        assert!(e.contains("'x' is not a whole number"), "{e}");
    }

    proptest! {
        /// Every frame of a clip is labelled exactly once, by a window of at most `len`
        /// frames in capture order, whatever the clip length, window length and gap.
        #[test]
        fn windows_label_every_frame_exactly_once(n in 0usize..200, len in 0usize..10, gap in 0usize..6) {
            let ws = windows(n, len, gap);
            let mut seen = vec![0u32; n];
            for w in &ws {
                prop_assert!(!w.is_empty());
                prop_assert!(w.len() <= len.max(1), "{w:?} longer than {len}");
                prop_assert!(w.windows(2).all(|p| p[0] < p[1]), "{w:?} not in order");
                for &i in w {
                    seen[i] += 1;
                }
            }
            prop_assert!(seen.iter().all(|c| *c == 1), "{seen:?}");
        }

        /// The shards of N are a partition of the clips: each clip has exactly one owner,
        /// stable across calls; K/N round-trips through its text form.
        #[test]
        fn shards_partition_the_clips(ids in proptest::collection::vec("[a-z0-9_/]{1,24}", 1..60), n in 1usize..12) {
            for id in &ids {
                let owners: Vec<usize> = (0..n)
                    .filter(|k| Shard { index: *k, count: n }.owns(id))
                    .collect();
                prop_assert_eq!(owners.len(), 1);
                prop_assert_eq!(owners[0], shard_of(id, n));
            }
            for k in 0..n {
                let s: Shard = format!("{k}/{n}").parse().unwrap();
                prop_assert_eq!(s, Shard { index: k, count: n });
            }
            let past_the_end = format!("{n}/{n}");
            prop_assert!(past_the_end.parse::<Shard>().is_err());
        }
    }
}
