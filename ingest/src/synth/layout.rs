//! The layout of a synthetic world on disk (`spatialsv synth --out DIR`) and its manifest,
//! typed: the one place that names its folders, and which rooms are which test set.
//!
//! ```text
//! DIR/world.json                 the manifest ([`SynthManifest`])
//! DIR/scans/train/<id>/          labeled scan rooms (ScanNet layout)
//! DIR/scans/test/<id>/           test set A: held-out scan rooms
//! DIR/scans/test_video/<id>/     test set B: held-out video rooms, decoded, with their truth
//! DIR/scans/test_h264/<id>/      test scan rooms through H.264 (`--codec-check`)
//! DIR/videos/<id>.mp4            unlabeled videos (training data without labels)
//! DIR/videos_test/<id>.mp4       test set B as H.264 (ingested from scans/test_video)
//! DIR/videos_codec/<id>.mp4      test scan rooms as H.264 (`--codec-check`)
//! DIR/groundtruth/<id>/          the unlabeled videos' hidden truth: never ingested
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use spatialsv_schemas::Split;
use spatialsv_store::{Error, Result};

use super::SynthOptions;

const MANIFEST: &str = "world.json";
const SCANS: &str = "scans";
const VIDEOS: &str = "videos";
const VIDEOS_TEST: &str = "videos_test";
const VIDEOS_CODEC: &str = "videos_codec";
const GROUNDTRUTH: &str = "groundtruth";

/// A synthetic world's folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldLayout {
    root: PathBuf,
}

/// Which scan rooms of a world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanSet {
    /// Labeled training rooms.
    Train,
    /// Test set A.
    Test,
    /// Test set B, decoded from its videos, with its truth.
    TestVideo,
    /// Test set A's rooms through H.264.
    TestH264,
}

impl ScanSet {
    /// The folder of scan room `id`, relative to the world.
    pub fn rel(self, id: &str) -> String {
        format!("{SCANS}/{}/{id}", self.folder())
    }

    fn folder(self) -> &'static str {
        match self {
            ScanSet::Train => "train",
            ScanSet::Test => "test",
            ScanSet::TestVideo => "test_video",
            ScanSet::TestH264 => "test_h264",
        }
    }
}

impl WorldLayout {
    /// The world at `root`.
    pub fn new(root: impl Into<PathBuf>) -> WorldLayout {
        WorldLayout { root: root.into() }
    }

    /// Its folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `world.json`.
    pub fn manifest_path(&self) -> PathBuf {
        self.root.join(MANIFEST)
    }

    /// Whether `dir` holds a synthetic world (its manifest).
    pub fn is_world(dir: &Path) -> bool {
        WorldLayout::new(dir).manifest_path().is_file()
    }

    /// The folder of all scan rooms.
    pub fn scans_root(&self) -> PathBuf {
        self.root.join(SCANS)
    }

    /// The folder of one set of scan rooms.
    pub fn scans(&self, set: ScanSet) -> PathBuf {
        self.scans_root().join(set.folder())
    }

    /// The unlabeled videos.
    pub fn videos(&self) -> PathBuf {
        self.root.join(VIDEOS)
    }

    /// Test set B as H.264 files.
    pub fn test_videos(&self) -> PathBuf {
        self.root.join(VIDEOS_TEST)
    }

    /// Test set A as H.264 files (`--codec-check`).
    pub fn codec_videos(&self) -> PathBuf {
        self.root.join(VIDEOS_CODEC)
    }

    /// The unlabeled videos' hidden ground truth.
    pub fn groundtruth(&self) -> PathBuf {
        self.root.join(GROUNDTRUTH)
    }

    /// Reads the world's manifest.
    pub fn read_manifest(&self) -> Result<SynthManifest> {
        let path = self.manifest_path();
        let text = std::fs::read_to_string(&path).map_err(Error::io("reading", &path))?;
        serde_json::from_str(&text).map_err(|e| Error::corrupt(&path, e))
    }
}

/// The file of unlabeled video `id`, relative to the world.
pub fn video_rel(id: &str) -> String {
    format!("{VIDEOS}/{id}.mp4")
}

/// The hidden truth of unlabeled video `id`, relative to the world.
pub fn groundtruth_rel(id: &str) -> String {
    format!("{GROUNDTRUTH}/{id}")
}

/// The H.264 file of test video room `id`, relative to the world.
pub fn test_video_rel(id: &str) -> String {
    format!("{VIDEOS_TEST}/{id}.mp4")
}

/// The H.264 file of test scan room `id` (`--codec-check`), relative to the world.
pub fn codec_video_rel(id: &str) -> String {
    format!("{VIDEOS_CODEC}/{id}.mp4")
}

/// A scan room of a world.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "(String, String, String)",
    into = "(String, String, String)"
)]
pub struct ScanRoom {
    /// Scene id.
    pub id: String,
    /// Its split.
    pub split: Split,
    /// Its folder, relative to the world.
    pub dir: String,
}

impl TryFrom<(String, String, String)> for ScanRoom {
    type Error = String;

    fn try_from((id, split, dir): (String, String, String)) -> std::result::Result<Self, String> {
        Ok(ScanRoom {
            split: split.parse().map_err(|e| format!("scan room {id}: {e}"))?,
            id,
            dir,
        })
    }
}

impl From<ScanRoom> for (String, String, String) {
    fn from(r: ScanRoom) -> Self {
        (r.id, r.split.to_string(), r.dir)
    }
}

/// A video room of a world.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(String, String, String)", into = "(String, String, String)")]
pub struct VideoRoom {
    /// Scene id.
    pub id: String,
    /// Its video file, relative to the world.
    pub file: String,
    /// Its truth (an unlabeled video's hidden ground truth, a test room's ScanNet-layout
    /// folder), relative to the world.
    pub truth: String,
}

impl From<(String, String, String)> for VideoRoom {
    fn from((id, file, truth): (String, String, String)) -> Self {
        VideoRoom { id, file, truth }
    }
}

impl From<VideoRoom> for (String, String, String) {
    fn from(r: VideoRoom) -> Self {
        (r.id, r.file, r.truth)
    }
}

/// What `synth` wrote (`world.json`; rooms are stored as `[id, split or file, folder]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthManifest {
    /// The options used.
    pub options: SynthOptions,
    /// Pinhole intrinsics of every camera, fx fy cx cy.
    pub intrinsics: [f64; 4],
    /// Scan rooms.
    pub scans: Vec<ScanRoom>,
    /// Unlabeled videos, with their hidden truth.
    pub videos: Vec<VideoRoom>,
    /// Held-out video test rooms, with the ScanNet-layout folder of their decoded frames.
    #[serde(default)]
    pub test_videos: Vec<VideoRoom>,
}

/// The held-out test sets of a world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TestSet {
    /// Held-out scan rooms.
    A,
    /// Held-out video rooms.
    B,
}

impl TestSet {
    /// Both, in report order.
    pub const ALL: [TestSet; 2] = [TestSet::A, TestSet::B];

    /// Its letter.
    pub fn letter(self) -> char {
        match self {
            TestSet::A => 'A',
            TestSet::B => 'B',
        }
    }
}

impl std::fmt::Display for TestSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.letter())
    }
}

/// As its letter (how study files have always written it).
impl Serialize for TestSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.letter().serialize(s)
    }
}

impl SynthManifest {
    /// What `spatialsv synth` prints: the rooms and videos rendered into `out` in `seconds`.
    pub fn summary(&self, seconds: f64, out: &Path) -> String {
        let o = &self.options;
        let train = self
            .scans
            .iter()
            .filter(|s| s.split == Split::Train)
            .count();
        format!(
            "rendered {} scan scenes ({train} train, {} test) of {} frames, {} unlabeled videos of {} frames and {} test videos at {}x{} in {seconds:.1}s into {}",
            self.scans.len(),
            self.scans.len() - train,
            o.frames,
            self.videos.len(),
            o.frames_per_video(),
            self.test_videos.len(),
            o.width,
            o.height,
            out.display()
        )
    }

    /// The test set a scene of the world's test split belongs to: B for the video test
    /// rooms, A for the others.
    pub fn test_set(&self, scene: &str) -> TestSet {
        if self.test_videos.iter().any(|v| v.id == scene) {
            TestSet::B
        } else {
            TestSet::A
        }
    }

    /// The folders of the scan rooms of `split`.
    pub fn scan_dirs(&self, world: &WorldLayout, split: Split) -> Vec<PathBuf> {
        self.scans
            .iter()
            .filter(|s| s.split == split)
            .map(|s| world.root().join(&s.dir))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_round_trip_in_the_stored_tuple_form_and_name_their_test_sets() {
        let world = WorldLayout::new("/w");
        let m = SynthManifest {
            options: SynthOptions::default(),
            intrinsics: [1.0, 2.0, 3.0, 4.0],
            scans: vec![
                ScanRoom {
                    id: "synth_scan_000".into(),
                    split: Split::Train,
                    dir: ScanSet::Train.rel("synth_scan_000"),
                },
                ScanRoom {
                    id: "synth_scan_001".into(),
                    split: Split::Test,
                    dir: ScanSet::Test.rel("synth_scan_001"),
                },
            ],
            videos: vec![VideoRoom {
                id: "synth_video_000".into(),
                file: video_rel("synth_video_000"),
                truth: groundtruth_rel("synth_video_000"),
            }],
            test_videos: vec![VideoRoom {
                id: "synth_testvideo_000".into(),
                file: test_video_rel("synth_testvideo_000"),
                truth: ScanSet::TestVideo.rel("synth_testvideo_000"),
            }],
        };
        let json = serde_json::to_value(&m).unwrap();
        // Stored as it always was: [id, split, folder] and [id, file, truth].
        assert_eq!(
            json["scans"][1],
            serde_json::json!(["synth_scan_001", "test", "scans/test/synth_scan_001"])
        );
        assert_eq!(
            json["videos"][0],
            serde_json::json!([
                "synth_video_000",
                "videos/synth_video_000.mp4",
                "groundtruth/synth_video_000"
            ])
        );
        let back: SynthManifest = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, m);
        // A world written before test videos existed reads with none.
        let mut old = json;
        old.as_object_mut().unwrap().remove("test_videos");
        let old: SynthManifest = serde_json::from_value(old).unwrap();
        assert!(old.test_videos.is_empty());
        // Test sets come from the manifest, not from scene-id prefixes.
        assert_eq!(m.test_set("synth_testvideo_000"), TestSet::B);
        assert_eq!(m.test_set("synth_scan_001"), TestSet::A);
        assert_eq!(
            m.scan_dirs(&world, Split::Test),
            vec![PathBuf::from("/w/scans/test/synth_scan_001")]
        );
        assert_eq!(
            world.scans(ScanSet::TestVideo),
            PathBuf::from("/w/scans/test_video")
        );
        assert_eq!(serde_json::to_value(TestSet::B).unwrap(), "B");
        // A split that is not one is refused with the room named.
        let bad = serde_json::json!(["r", "sideways", "scans/x"]);
        let err = serde_json::from_value::<ScanRoom>(bad).unwrap_err();
        assert!(err.to_string().contains("scan room r"), "{err}");
    }
}
