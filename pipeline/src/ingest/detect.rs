//! Layout recognition: which scan format a directory is in, and which directories under a
//! source are scenes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::{IngestOptions, SourceScene};
use crate::error::{Error, Result};

/// A scan layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanFormat {
    /// ScanNet exported frames (`color/`, `depth/`, `pose/`, `intrinsic/`).
    Scannet,
    /// TUM RGB-D (`rgb.txt`, `depth.txt`, `groundtruth.txt`).
    Tum,
    /// 7-Scenes sequence (`frame-NNNNNN.{color.png,depth.png,pose.txt}`).
    SevenScenes,
    /// COLMAP text model (`cameras.txt`, `images.txt`).
    Colmap,
    /// nerfstudio `transforms.json`.
    Nerfstudio,
}

impl ScanFormat {
    /// Every layout, in detection order.
    pub const ALL: [ScanFormat; 5] = [
        ScanFormat::Scannet,
        ScanFormat::Tum,
        ScanFormat::SevenScenes,
        ScanFormat::Colmap,
        ScanFormat::Nerfstudio,
    ];

    /// Name as used on the command line and in `scenes.dataset_format`.
    pub fn name(self) -> &'static str {
        match self {
            ScanFormat::Scannet => "scannet",
            ScanFormat::Tum => "tum",
            ScanFormat::SevenScenes => "sevenscenes",
            ScanFormat::Colmap => "colmap",
            ScanFormat::Nerfstudio => "nerfstudio",
        }
    }

    /// What a directory of this layout contains, for messages.
    pub fn expects(self) -> &'static str {
        match self {
            ScanFormat::Scannet => "color/ and pose/ directories",
            ScanFormat::Tum => "rgb.txt and groundtruth.txt",
            ScanFormat::SevenScenes => "frame-NNNNNN.color.png files",
            ScanFormat::Colmap => "cameras.txt and images.txt (or sparse/0/ with them)",
            ScanFormat::Nerfstudio => "transforms.json",
        }
    }

    /// Whether `dir` is a scene root of this layout.
    pub fn matches(self, dir: &Path) -> bool {
        match self {
            ScanFormat::Scannet => dir.join("color").is_dir() && dir.join("pose").is_dir(),
            ScanFormat::Tum => {
                dir.join("rgb.txt").is_file() && dir.join("groundtruth.txt").is_file()
            }
            ScanFormat::SevenScenes => dir.join("frame-000000.color.png").is_file(),
            ScanFormat::Colmap => super::colmap::model_dir(dir).is_some(),
            ScanFormat::Nerfstudio => dir.join("transforms.json").is_file(),
        }
    }

    /// Lists the scene rooted at `dir`.
    pub fn list(self, dir: &Path, opts: &IngestOptions) -> Result<SourceScene> {
        match self {
            ScanFormat::Scannet => super::scannet::list(dir),
            ScanFormat::Tum => super::tum::list(dir, opts.tum_max_dt_s),
            ScanFormat::SevenScenes => super::sevenscenes::list(dir),
            ScanFormat::Colmap => super::colmap::list(dir),
            ScanFormat::Nerfstudio => super::nerfstudio::list(dir),
        }
    }
}

impl fmt::Display for ScanFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ScanFormat {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        ScanFormat::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown scan layout '{s}'"))
    }
}

/// The layout of `dir`, if it is a scene root of one.
pub fn detect_format(dir: &Path) -> Option<ScanFormat> {
    ScanFormat::ALL.into_iter().find(|f| f.matches(dir))
}

fn sorted_subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The scene roots under `src`: `src` itself when it is one, else its sub-directories that
/// are (one level, then two, e.g. `7scenes/chess/seq-01`).
pub fn scene_roots(format: Option<ScanFormat>, src: &Path) -> Result<Vec<(ScanFormat, PathBuf)>> {
    let is = |d: &Path| match format {
        Some(f) => f.matches(d).then_some(f),
        None => detect_format(d),
    };
    if let Some(f) = is(src) {
        return Ok(vec![(f, src.to_path_buf())]);
    }
    let mut found = Vec::new();
    for child in sorted_subdirs(src) {
        if let Some(f) = is(&child) {
            found.push((f, child));
        } else {
            for grandchild in sorted_subdirs(&child) {
                if let Some(f) = is(&grandchild) {
                    found.push((f, grandchild));
                }
            }
        }
    }
    if found.is_empty() {
        let msg = match format {
            Some(f) => format!(
                "not a {f} scene, and no {f} scenes below it (expected {}): {}",
                f.expects(),
                src.display()
            ),
            None => format!(
                "no known scan layout found (scannet, tum, sevenscenes, colmap, nerfstudio), nor below it: {}",
                src.display()
            ),
        };
        return Err(Error::User(msg));
    }
    Ok(found)
}

/// A scene id from the last `n` components of a path, joined with `-`.
pub(crate) fn scene_id_from(dir: &Path, n: usize) -> String {
    let parts: Vec<String> = dir
        .components()
        .rev()
        .take(n)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.into_iter().rev().collect::<Vec<_>>().join("-")
}
