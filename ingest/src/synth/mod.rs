//! The synthetic world: the embedded default dataset, so every command runs on a fresh
//! machine with no downloads.
//!
//! `synth` renders procedural rooms ([`world`]) by CPU ray casting along hand-held-like
//! trajectories and writes:
//! - labeled scans in the ScanNet exported layout (`scans/{train,test}/<id>/color/{i}.jpg`,
//!   `depth/{i}.png` uint16 mm, `pose/{i}.txt` camera-to-world, `intrinsic/`), so they go
//!   through the real importer, with their objects: `objects.json` (names, categories,
//!   colours, sizes, world boxes; [`world::Room::describe`]) and `instance-filt/{i}.png`, the
//!   per-pixel object ids (16-bit, 0 = no object);
//! - unlabeled videos of other rooms, `videos/<id>.mp4` (H.264 through ffmpeg, 30 fps);
//! - the videos' true depth, poses, intrinsics, objects and object-id images in
//!   `groundtruth/<id>/`, which ingestion and training never read: only evaluation does, to
//!   score pseudo-labels honestly;
//! - held-out *video* test rooms (`--test-videos`): `videos_test/<id>.mp4`, and the same rooms
//!   in the ScanNet layout under `scans/test_video/<id>/` with the colour frames *decoded from
//!   that H.264 file* (as `ingest video` stores them) beside the true depth and poses, so the
//!   video domain is scored through the same `eval` path as the scan test rooms;
//! - `world.json`: the options and what was written.
//!
//! Everything is a pure function of `--seed` and the options.

pub mod layout;
pub mod world;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use image::{ImageBuffer, Rgb};
use serde::{Deserialize, Serialize};

use spatialsv_schemas::Split;
use spatialsv_store::datagen::SplitMix64;
use spatialsv_store::geometry::{Mat4, format_matrix4};
use spatialsv_store::media::{DepthImage, encode_png16};
use spatialsv_store::objects::{INSTANCE_DIR, write_objects_file};
use spatialsv_store::progress::Progress;
use spatialsv_store::{Error, Result};
use world::{Room, View, render, trajectory};

pub use layout::{ScanRoom, ScanSet, SynthManifest, TestSet, VideoRoom, WorldLayout};

/// Frame rate of the synthetic videos (and the time step of the scans).
pub const FPS: i64 = 30;

/// What to render.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynthOptions {
    /// Seed of everything.
    pub seed: u64,
    /// Labeled scan scenes, `test_scenes` of them held out as `test`.
    pub scenes: usize,
    /// Of the scan scenes, how many are `test` (0 = a third, at least one when there are two
    /// or more).
    pub test_scenes: usize,
    /// Unlabeled videos, each of its own room.
    pub videos: usize,
    /// Held-out video test rooms (test set B), each of its own room, `frames` long.
    pub test_videos: usize,
    /// Frames per scan scene and per test video.
    pub frames: usize,
    /// Frames per unlabeled video (0 = `frames`).
    pub video_frames: usize,
    /// Also film the test scan rooms as H.264 (`scans/test_h264/<id>/`: the same rooms and
    /// trajectories, colour decoded from the video), to measure the codec's effect on a
    /// model with everything else equal.
    pub codec_check: bool,
    /// Image width (even, for H.264).
    pub width: u32,
    /// Image height (even).
    pub height: u32,
    /// JPEG quality of scan colour images.
    pub jpeg_quality: u8,
}

impl Default for SynthOptions {
    fn default() -> Self {
        Self {
            seed: 0,
            scenes: 6,
            test_scenes: 0,
            videos: 4,
            test_videos: 0,
            frames: 48,
            video_frames: 0,
            codec_check: false,
            width: 160,
            height: 120,
            jpeg_quality: 95,
        }
    }
}

impl SynthOptions {
    /// Test scan scenes.
    pub fn n_test_scenes(&self) -> usize {
        if self.test_scenes > 0 {
            self.test_scenes.min(self.scenes)
        } else if self.scenes >= 2 {
            (self.scenes / 3).max(1)
        } else {
            0
        }
    }

    /// Frames per unlabeled video.
    pub fn frames_per_video(&self) -> usize {
        if self.video_frames > 0 {
            self.video_frames
        } else {
            self.frames
        }
    }
}

/// The intrinsics synth uses for a resolution: ~58 degree horizontal field of view.
pub fn intrinsics_for(width: u32, height: u32) -> [f64; 4] {
    let f = 0.9 * f64::from(width);
    [f, f, f64::from(width) / 2.0, f64::from(height) / 2.0]
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        action: "writing",
        path: path.to_path_buf(),
        source: e,
    }
}

/// The view's object-id buffer as a 16-bit PNG (ScanNet's `instance-filt` convention: value =
/// object id, 0 = no object).
fn instance_png(view: &View, width: u32, height: u32) -> Result<Vec<u8>> {
    encode_png16(&DepthImage {
        width,
        height,
        values: view.object_id.clone(),
    })
    .map_err(|e| Error::Internal(e.to_string()))
}

fn depth_png(view: &View, width: u32, height: u32) -> Result<Vec<u8>> {
    let values = view
        .depth_m
        .iter()
        .map(|d| {
            if *d > 0.0 {
                (f64::from(*d) * 1000.0).round().clamp(1.0, 65535.0) as u16
            } else {
                0
            }
        })
        .collect();
    encode_png16(&DepthImage {
        width,
        height,
        values,
    })
    .map_err(|e| Error::Internal(e.to_string()))
}

fn jpeg(view: &View, width: u32, height: u32, quality: u8) -> Result<Vec<u8>> {
    let img: ImageBuffer<Rgb<u8>, Vec<u8>> = ImageBuffer::from_raw(width, height, view.rgb.clone())
        .ok_or_else(|| Error::Internal("render size".into()))?;
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&img)
        .map_err(|e| Error::Internal(format!("JPEG encoding: {e}")))?;
    Ok(out.into_inner())
}

/// A ScanNet scene's `intrinsic/intrinsic_{color,depth}.txt` (4x4, the colour and depth
/// cameras are the same here).
fn write_intrinsics(dir: &Path, k: [f64; 4]) -> Result<()> {
    let kmat = format!(
        "{} 0 {} 0\n0 {} {} 0\n0 0 1 0\n0 0 0 1\n",
        k[0], k[2], k[1], k[3]
    );
    for name in ["intrinsic_color.txt", "intrinsic_depth.txt"] {
        let p = dir.join("intrinsic").join(name);
        std::fs::write(&p, &kmat).map_err(io(&p))?;
    }
    Ok(())
}

/// A ScanNet scene's `pose/{i}.txt` (camera-to-world, 4x4).
fn write_pose(dir: &Path, i: usize, pose: &Mat4) -> Result<()> {
    let p = dir.join(format!("pose/{i}.txt"));
    std::fs::write(&p, format_matrix4(pose, 9)).map_err(io(&p))
}

/// Writes one scan scene in the ScanNet exported layout.
fn write_scan(
    dir: &Path,
    room: &Room,
    poses: &[Mat4],
    o: &SynthOptions,
    k: [f64; 4],
) -> Result<()> {
    for sub in ["color", "depth", "pose", "intrinsic", INSTANCE_DIR] {
        std::fs::create_dir_all(dir.join(sub)).map_err(io(dir))?;
    }
    write_intrinsics(dir, k)?;
    write_objects_file(dir, &room.describe())?;
    for (i, pose) in poses.iter().enumerate() {
        let view = render(room, pose, k, o.width, o.height);
        let p = dir.join(format!("color/{i}.jpg"));
        std::fs::write(&p, jpeg(&view, o.width, o.height, o.jpeg_quality)?).map_err(io(&p))?;
        let p = dir.join(format!("depth/{i}.png"));
        std::fs::write(&p, depth_png(&view, o.width, o.height)?).map_err(io(&p))?;
        let p = dir.join(format!("{INSTANCE_DIR}/{i}.png"));
        std::fs::write(&p, instance_png(&view, o.width, o.height)?).map_err(io(&p))?;
        write_pose(dir, i, pose)?;
    }
    Ok(())
}

/// Renders a video through ffmpeg (H.264) and writes its ground truth beside.
fn write_video(
    file: &Path,
    gt: &Path,
    room: &Room,
    poses: &[Mat4],
    o: &SynthOptions,
    k: [f64; 4],
) -> Result<()> {
    for sub in ["depth", INSTANCE_DIR] {
        std::fs::create_dir_all(gt.join(sub)).map_err(io(gt))?;
    }
    write_objects_file(gt, &room.describe())?;
    let mut child = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s"])
        .arg(format!("{}x{}", o.width, o.height))
        .args(["-r", &FPS.to_string(), "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-crf", "16"])
        .args(["-pix_fmt", "yuv420p", "-movflags", "+faststart"])
        .arg(file)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::User(format!("cannot run ffmpeg to encode synthetic videos ({e}); install it (Debian/Ubuntu: apt-get install ffmpeg)")))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| Error::Internal("ffmpeg stdin".into()))?;
    let mut pose_lines = String::from(
        "# frame_idx timestamp_ns world_from_camera (16 values, row-major, OpenCV axes, metres)\n",
    );
    for (i, pose) in poses.iter().enumerate() {
        let view = render(room, pose, k, o.width, o.height);
        stdin.write_all(&view.rgb).map_err(io(file))?;
        let p = gt.join(format!("depth/{i}.png"));
        std::fs::write(&p, depth_png(&view, o.width, o.height)?).map_err(io(&p))?;
        let p = gt.join(format!("{INSTANCE_DIR}/{i}.png"));
        std::fs::write(&p, instance_png(&view, o.width, o.height)?).map_err(io(&p))?;
        let ts = i as i64 * 1_000_000_000 / FPS;
        pose_lines.push_str(&format!(
            "{i} {ts} {}\n",
            pose.iter()
                .map(|v| format!("{v:.9}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    drop(stdin);
    let out = child.wait_with_output().map_err(io(file))?;
    if !out.status.success() {
        return Err(Error::Internal(format!(
            "ffmpeg failed to encode {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let p = gt.join("poses.txt");
    std::fs::write(&p, pose_lines).map_err(io(&p))?;
    let p = gt.join("intrinsics.txt");
    std::fs::write(
        &p,
        format!(
            "# fx fy cx cy width height\n{} {} {} {} {} {}\n",
            k[0], k[1], k[2], k[3], o.width, o.height
        ),
    )
    .map_err(io(&p))?;
    Ok(())
}

/// Turns a video's ground-truth directory into a ScanNet-layout scene: colour frames decoded
/// from the H.264 file into JPEG exactly as `ingest video` stores them (its default quality),
/// the true depth beside them, one pose file per frame and the intrinsics.
fn video_as_scan(file: &Path, dir: &Path, poses: &[Mat4], k: [f64; 4]) -> Result<()> {
    for sub in ["color", "pose", "intrinsic"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(io(dir))?;
    }
    let q = crate::video::ffmpeg_jpeg_q(crate::video::VideoOptions::default().jpeg_quality);
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-nostdin", "-i"])
        .arg(file)
        .args([
            "-pix_fmt",
            "yuvj420p",
            "-c:v",
            "mjpeg",
            "-q:v",
            &q.to_string(),
        ])
        .args(["-start_number", "0"])
        .arg(dir.join("color/%d.jpg"))
        .stdin(Stdio::null())
        .output()
        .map_err(io(file))?;
    if !out.status.success() {
        return Err(Error::Internal(format!(
            "ffmpeg failed to decode {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    write_intrinsics(dir, k)?;
    for (i, pose) in poses.iter().enumerate() {
        write_pose(dir, i, pose)?;
    }
    Ok(())
}

/// Renders the synthetic world into `out`.
pub fn synthesize(out: &Path, o: &SynthOptions, progress: &dyn Progress) -> Result<SynthManifest> {
    if o.width < 16 || o.height < 16 || o.width % 2 == 1 || o.height % 2 == 1 {
        return Err(Error::User(format!(
            "--resolution must be even and at least 16x16, got {}x{}",
            o.width, o.height
        )));
    }
    if o.width > 4096 || o.height > 4096 {
        return Err(Error::User(format!(
            "--resolution {}x{} is beyond the 4096x4096 the CPU renderer is meant for",
            o.width, o.height
        )));
    }
    for (flag, n) in [
        ("--frames", o.frames),
        ("--video-frames", o.frames_per_video()),
    ] {
        if !(2..=100_000).contains(&n) {
            return Err(Error::User(format!("{flag} {n} must be in 2..=100000")));
        }
    }
    if o.scenes + o.videos + o.test_videos == 0
        || o.scenes > 10_000
        || o.videos > 10_000
        || o.test_videos > 10_000
    {
        return Err(Error::User(format!(
            "--scenes {}, --videos {} and --test-videos {}: at least one of them, each at most 10000",
            o.scenes, o.videos, o.test_videos
        )));
    }
    if o.test_scenes > o.scenes {
        return Err(Error::User(format!(
            "--test-scenes {} is more than --scenes {}",
            o.test_scenes, o.scenes
        )));
    }
    if o.videos + o.test_videos > 0 || o.codec_check {
        crate::video::check_ffmpeg()?;
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let world = WorldLayout::new(out);
    let k = intrinsics_for(o.width, o.height);
    let n_test = o.n_test_scenes();
    progress.start(
        ((o.scenes + o.test_videos) * o.frames + o.videos * o.frames_per_video()) as u64,
        "frames",
    );
    let mut manifest = SynthManifest {
        options: o.clone(),
        intrinsics: k,
        scans: Vec::new(),
        videos: Vec::new(),
        test_videos: Vec::new(),
    };
    for s in 0..o.scenes {
        // Each scene and video has its own stream of randomness, so changing --videos does
        // not change the scans.
        let mut rng = SplitMix64::new(o.seed.wrapping_mul(1_000_003).wrapping_add(s as u64));
        let room = Room::generate(&mut rng);
        let poses = trajectory(&room, &mut rng, o.frames);
        let (split, set) = if s >= o.scenes - n_test {
            (Split::Test, ScanSet::Test)
        } else {
            (Split::Train, ScanSet::Train)
        };
        let id = format!("synth_scan_{s:03}");
        let rel = set.rel(&id);
        progress.message(&id);
        write_scan(&out.join(&rel), &room, &poses, o, k)?;
        if o.codec_check && split == Split::Test {
            let dir = out.join(ScanSet::TestH264.rel(&id));
            let file = out.join(layout::codec_video_rel(&id));
            std::fs::create_dir_all(world.codec_videos()).map_err(io(out))?;
            write_video(&file, &dir, &room, &poses, o, k)?;
            video_as_scan(&file, &dir, &poses, k)?;
        }
        progress.advance(o.frames as u64);
        manifest.scans.push(ScanRoom {
            id,
            split,
            dir: rel,
        });
    }
    if o.videos > 0 {
        std::fs::create_dir_all(world.videos()).map_err(io(out))?;
    }
    for v in 0..o.videos {
        let mut rng = SplitMix64::new(
            o.seed
                .wrapping_mul(1_000_003)
                .wrapping_add(0x5EED_0000 + v as u64),
        );
        let room = Room::generate(&mut rng);
        let poses = trajectory(&room, &mut rng, o.frames_per_video());
        let id = format!("synth_video_{v:03}");
        let file = layout::video_rel(&id);
        let gt = layout::groundtruth_rel(&id);
        progress.message(&id);
        write_video(&out.join(&file), &out.join(&gt), &room, &poses, o, k)?;
        progress.advance(poses.len() as u64);
        manifest.videos.push(VideoRoom {
            id,
            file,
            truth: gt,
        });
    }
    for v in 0..o.test_videos {
        // A stream of its own: test rooms never coincide with training or unlabeled rooms.
        let mut rng = SplitMix64::new(
            o.seed
                .wrapping_mul(1_000_003)
                .wrapping_add(0x7E57_0000 + v as u64),
        );
        let room = Room::generate(&mut rng);
        let poses = trajectory(&room, &mut rng, o.frames);
        let id = format!("synth_testvideo_{v:03}");
        let file = layout::test_video_rel(&id);
        let scan = ScanSet::TestVideo.rel(&id);
        progress.message(&id);
        std::fs::create_dir_all(world.test_videos()).map_err(io(out))?;
        let gt = out.join(&scan);
        write_video(&out.join(&file), &gt, &room, &poses, o, k)?;
        video_as_scan(&out.join(&file), &gt, &poses, k)?;
        progress.advance(o.frames as u64);
        manifest.test_videos.push(VideoRoom {
            id,
            file,
            truth: scan,
        });
    }
    progress.finish();
    let p = world.manifest_path();
    let json =
        serde_json::to_string_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
    std::fs::write(&p, json).map_err(io(&p))?;
    Ok(manifest)
}

/// The rooms and trajectories of a synth run, regenerated from its options (for tests and
/// evaluation that need the geometry itself).
pub fn scan_geometry(o: &SynthOptions, scene: usize) -> (Room, Vec<Mat4>) {
    let mut rng = SplitMix64::new(o.seed.wrapping_mul(1_000_003).wrapping_add(scene as u64));
    let room = Room::generate(&mut rng);
    let poses = trajectory(&room, &mut rng, o.frames);
    (room, poses)
}
