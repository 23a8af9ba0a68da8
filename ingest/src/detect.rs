//! Layout recognition: which scan format a directory is in, and which directories under a
//! source are scenes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::{IngestOptions, SourceScene};
use spatialsv_store::{Error, Result};

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

/// How deep below a source the walk looks for scenes and videos.
pub const MAX_DEPTH: usize = 6;

/// What a walk below one source found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Walk {
    /// Scene roots and their layouts, in path order.
    pub scenes: Vec<(ScanFormat, PathBuf)>,
    /// Video files (only when asked for).
    pub videos: Vec<PathBuf>,
    /// Directories not taken, and why.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Walks `src` for scene roots of `format` (any known layout when `None`) at any depth up to
/// `max_depth`, and, with `videos`, for video files outside scenes. A scene root is not
/// walked into; a directory reached again through a symbolic link is walked once; the
/// highest directories with nothing below them are listed in `skipped` with the reason.
pub fn walk(format: Option<ScanFormat>, src: &Path, max_depth: usize, videos: bool) -> Walk {
    let is = |d: &Path| match format {
        Some(f) => f.matches(d).then_some(f),
        None => detect_format(d),
    };
    let mut out = Walk::default();
    let mut seen = std::collections::HashSet::new();
    // Returns how many scenes and videos were found at or below `dir`, and whether the depth
    // limit cut the walk somewhere below it.
    fn visit(
        dir: &Path,
        depth: usize,
        max_depth: usize,
        videos: bool,
        is: &dyn Fn(&Path) -> Option<ScanFormat>,
        seen: &mut std::collections::HashSet<PathBuf>,
        out: &mut Walk,
    ) -> (usize, bool) {
        let real = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        if !seen.insert(real.clone()) {
            out.skipped.push((
                dir.to_path_buf(),
                format!(
                    "the same directory as one already walked ({})",
                    real.display()
                ),
            ));
            return (0, false);
        }
        if let Some(f) = is(dir) {
            out.scenes.push((f, dir.to_path_buf()));
            return (1, false);
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        let (mut found, mut cut) = (0, false);
        for e in entries {
            if e.is_dir() {
                if depth >= max_depth {
                    out.skipped.push((
                        e,
                        format!("deeper than {max_depth} levels below the source (not walked)"),
                    ));
                    cut = true;
                    continue;
                }
                let (n, c) = visit(&e, depth + 1, max_depth, videos, is, seen, out);
                if n == 0 && !c && !out.skipped.iter().any(|(p, _)| p == &e) {
                    out.skipped.push((
                        e,
                        "no known scan layout or video in it or below".to_string(),
                    ));
                }
                found += n;
                cut |= c;
            } else if videos
                && e.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                    super::video::VIDEO_EXTENSIONS.contains(&x.to_ascii_lowercase().as_str())
                })
            {
                out.videos.push(e);
                found += 1;
            }
        }
        (found, cut)
    }
    visit(src, 0, max_depth, videos, &is, &mut seen, &mut out);
    // Only the highest empty directories: drop those below another skipped one.
    let tops: Vec<PathBuf> = out.skipped.iter().map(|(p, _)| p.clone()).collect();
    out.skipped
        .retain(|(p, _)| !tops.iter().any(|t| t != p && p.starts_with(t)));
    out
}

/// The split a folder name stands for: `train`, `val` / `validation`, `test`, or one of them
/// followed by `_` or `-` and more (`test_video`).
pub fn split_of_folder(name: &str) -> Option<spatialsv_schemas::Split> {
    use spatialsv_schemas::Split;
    let n = name.to_ascii_lowercase();
    for (word, split) in [
        ("train", Split::Train),
        ("validation", Split::Val),
        ("val", Split::Val),
        ("test", Split::Test),
    ] {
        if let Some(rest) = n.strip_prefix(word)
            && (rest.is_empty() || rest.starts_with('_') || rest.starts_with('-'))
        {
            return Some(split);
        }
    }
    None
}

/// The split of the deepest `train` / `val` / `test` folder between `src` and `path`
/// (`src` itself not counted), if any.
pub fn split_below(src: &Path, path: &Path) -> Option<spatialsv_schemas::Split> {
    let rel = path.strip_prefix(src).ok()?;
    let parent = if path.is_dir() { rel } else { rel.parent()? };
    parent
        .components()
        .rev()
        .filter_map(|c| c.as_os_str().to_str())
        .find_map(split_of_folder)
}

/// The scene roots under `src` (any depth up to [`MAX_DEPTH`]; see [`walk`]) and the
/// directories skipped as the same as one already walked (symbolic links); an error when
/// there are no scenes.
#[allow(clippy::type_complexity)]
pub fn scene_roots(
    format: Option<ScanFormat>,
    src: &Path,
) -> Result<(Vec<(ScanFormat, PathBuf)>, Vec<(PathBuf, String)>)> {
    let w = walk(format, src, MAX_DEPTH, false);
    let aliases: Vec<(PathBuf, String)> = w
        .skipped
        .into_iter()
        .filter(|(_, why)| why.starts_with("the same directory"))
        .collect();
    let found = w.scenes;
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
    Ok((found, aliases))
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

#[cfg(test)]
mod tests {
    use super::*;
    use spatialsv_schemas::Split;

    fn scannet(dir: &Path) {
        std::fs::create_dir_all(dir.join("color")).unwrap();
        std::fs::create_dir_all(dir.join("pose")).unwrap();
    }

    #[test]
    fn the_walk_finds_scenes_at_any_depth_walks_loops_once_and_says_what_it_skipped() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path();
        scannet(&src.join("site/a/b/train/scene0")); // depth 5
        scannet(&src.join("test_rooms/scene1"));
        std::fs::create_dir_all(src.join("notes/empty")).unwrap();
        std::fs::create_dir_all(src.join("clips")).unwrap();
        std::fs::write(src.join("clips/x.MP4"), b"").unwrap();
        std::fs::write(src.join("clips/readme.txt"), b"").unwrap();
        scannet(&src.join("too/deep/1/2/3/4/5/scene2")); // depth 8
        #[cfg(unix)]
        std::os::unix::fs::symlink(src, src.join("site/loop")).unwrap();

        let w = walk(None, src, MAX_DEPTH, true);
        let roots: Vec<PathBuf> = w.scenes.iter().map(|(_, p)| p.clone()).collect();
        assert_eq!(
            roots,
            vec![
                src.join("site/a/b/train/scene0"),
                src.join("test_rooms/scene1")
            ]
        );
        assert_eq!(w.videos, vec![src.join("clips/x.MP4")]);
        let why = |p: &str| {
            w.skipped
                .iter()
                .find(|(d, _)| d == &src.join(p))
                .map(|(_, r)| r.clone())
                .unwrap_or_else(|| panic!("{p} not skipped: {:?}", w.skipped))
        };
        assert!(why("notes").contains("no known scan layout or video"));
        assert!(why("too/deep/1/2/3/4/5").contains("deeper than 6 levels"));
        #[cfg(unix)]
        assert!(why("site/loop").contains("already walked"));
        // Only the highest empty directory is named.
        assert!(!w.skipped.iter().any(|(d, _)| d == &src.join("notes/empty")));
        // Splits from folders on the way, not from the source itself.
        assert_eq!(split_below(src, &roots[0]), Some(Split::Train));
        assert_eq!(split_below(src, &roots[1]), Some(Split::Test));
        assert_eq!(split_below(&src.join("test_rooms"), &roots[1]), None);
        assert_eq!(split_below(src, &src.join("clips/x.MP4")), None);
        for (name, want) in [
            ("train", Some(Split::Train)),
            ("Validation", Some(Split::Val)),
            ("val-2", Some(Split::Val)),
            ("test_video", Some(Split::Test)),
            ("testing", None),
            ("trainer", None),
        ] {
            assert_eq!(split_of_folder(name), want, "{name}");
        }
        // An explicit layout: the same walk, its scenes only.
        assert_eq!(
            scene_roots(Some(ScanFormat::Scannet), src).unwrap().0.len(),
            2
        );
        assert!(
            scene_roots(Some(ScanFormat::Tum), src)
                .unwrap_err()
                .to_string()
                .contains("no tum scenes below it")
        );
    }
}
