//! The labelling config (`configs/label.toml`): teacher windows and every filter threshold.

use serde::{Deserialize, Serialize};
use spatialsv_schemas::Invalid;

/// How the teacher sees a clip and what the filters keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabelConfig {
    /// Frames per teacher window; 0 = the teacher's training clip length.
    pub clip_len: usize,
    /// Frames between consecutive frames of a window (windows interleave so every frame of a
    /// clip is labelled exactly once).
    pub frame_gap: usize,
    /// Windows per forward pass.
    pub batch_size: usize,
    /// Commit after this many ingested clips.
    pub commit_every: usize,
    /// Per-pixel confidence filter.
    pub confidence: ConfidenceFilter,
    /// Multi-view geometric consistency inside a window.
    pub geometric: GeometricFilter,
    /// Pose-cycle closure.
    pub camera: CameraFilter,
    /// Frame acceptance.
    pub acceptance: AcceptanceFilter,
    /// Many passes fused into each label (instead of one window per frame).
    pub fusion: Fusion,
}

impl Default for LabelConfig {
    fn default() -> Self {
        Self {
            clip_len: 0,
            frame_gap: 2,
            batch_size: 4,
            commit_every: 16,
            confidence: ConfidenceFilter::default(),
            geometric: GeometricFilter::default(),
            camera: CameraFilter::default(),
            acceptance: AcceptanceFilter::default(),
            fusion: Fusion::default(),
        }
    }
}

/// Fused labels ([`crate::fusion`]): the teacher runs on windows at every start position and
/// at each of `gaps`, over a whole video (segments of at most `max_segment` frames), with
/// horizontally flipped copies when `flips`; per frame, the passes' depth is scale-aligned and
/// median-fused, their cameras pose-graph fused. The spread across passes is the confidence;
/// pixels whose spread exceeds `max_spread` are dropped (the `geometric` filter's round trip
/// is not run: it is the single-pass check). `camera` thresholds apply to each frame's pose
/// residuals against its passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Fusion {
    /// Off: one window per frame, as `frame_gap` interleaves them.
    pub enabled: bool,
    /// Frame gaps of the windows (gap 1 is always among them).
    pub gaps: Vec<usize>,
    /// Also run every window on its horizontally flipped images (depth only).
    pub flips: bool,
    /// Largest spread across passes kept (about a relative standard deviation of depth).
    pub max_spread: f32,
    /// Longest run of frames fused as one (one reference frame per segment).
    pub max_segment: usize,
}

impl Default for Fusion {
    fn default() -> Self {
        Self {
            enabled: false,
            gaps: vec![1, 2],
            flips: true,
            max_spread: 0.05,
            max_segment: 256,
        }
    }
}

/// Per-pixel confidence: keep `c >= threshold` (`absolute`) or drop the `percentile`% least
/// confident pixels of each image (`percentile`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfidenceFilter {
    /// `absolute` or `percentile`.
    pub mode: ConfidenceMode,
    /// Smallest kept confidence (`absolute`; c = 1 + exp(x) >= 1).
    pub threshold: f32,
    /// Percentage of each image's pixels dropped, least confident first (`percentile`).
    pub percentile: f32,
}

impl Default for ConfidenceFilter {
    fn default() -> Self {
        Self {
            mode: ConfidenceMode::Percentile,
            threshold: 2.0,
            percentile: 20.0,
        }
    }
}

/// How [`ConfidenceFilter`] thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfidenceMode {
    /// A fixed confidence.
    Absolute,
    /// A per-image percentile.
    Percentile,
}

/// MVSNet-style fusion check: reproject a pixel's depth into another view of the window and
/// back; the view agrees when the round trip lands within `max_reprojection_px` and the depth
/// differs by less than `max_relative_depth`. A pixel is kept when `min_views` views agree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeometricFilter {
    /// Off keeps every pixel the confidence filter kept.
    pub enabled: bool,
    /// Largest round-trip reprojection error, pixels of the label map.
    pub max_reprojection_px: f64,
    /// Largest relative depth difference after the round trip.
    pub max_relative_depth: f64,
    /// Views that must agree; 0 = min(3, window length - 1).
    pub min_views: usize,
}

impl Default for GeometricFilter {
    fn default() -> Self {
        Self {
            enabled: true,
            max_reprojection_px: 1.0,
            max_relative_depth: 0.01,
            min_views: 0,
        }
    }
}

impl GeometricFilter {
    /// Views that must agree in a window of `v` frames.
    pub fn views_needed(&self, v: usize) -> usize {
        if self.min_views > 0 {
            self.min_views
        } else {
            v.saturating_sub(1).clamp(1, 3)
        }
    }
}

/// Pose-cycle closure: the teacher is run once per window frame as the reference; relative
/// poses from different runs, composed around every frame triplet (pair for 2-frame windows),
/// must return to the identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraFilter {
    /// Off: every frame counts as consistent and the teacher runs once per window.
    pub enabled: bool,
    /// Largest rotation closure error, degrees.
    pub max_rotation_deg: f64,
    /// Largest translation-direction closure error, degrees.
    pub max_direction_deg: f64,
}

impl CameraFilter {
    /// Whether a frame with these camera errors passes (always, when the filter is off).
    pub fn consistent(&self, rotation_deg: f64, direction_deg: f64) -> bool {
        !self.enabled
            || (rotation_deg <= self.max_rotation_deg && direction_deg <= self.max_direction_deg)
    }
}

impl Default for CameraFilter {
    fn default() -> Self {
        Self {
            enabled: true,
            max_rotation_deg: 20.0,
            max_direction_deg: 10.0,
        }
    }
}

/// A frame is accepted (its depth is used) when enough of its pixels survive; with
/// `require_cameras`, only when its pose cycles close too. Either way `camera_consistent` is
/// stored, and a student supervises cameras only from windows whose cycles all close.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcceptanceFilter {
    /// Smallest fraction of the frame's pixels kept by the pixel filters.
    pub min_kept_fraction: f64,
    /// Reject frames whose pose cycles do not close.
    pub require_cameras: bool,
}

impl Default for AcceptanceFilter {
    fn default() -> Self {
        Self {
            min_kept_fraction: 0.1,
            require_cameras: false,
        }
    }
}

impl LabelConfig {
    /// Checks ranges; the message names the key.
    pub fn validate(&self) -> Result<(), Invalid> {
        let bad = |key: &str, v: &dyn std::fmt::Display, want: &str| {
            Err(Invalid(format!(
                "label config: {key} = {v} is invalid ({want})"
            )))
        };
        for (key, v, lo, hi) in [
            ("clip_len", self.clip_len, 0, 1024),
            ("frame_gap", self.frame_gap, 1, 1 << 20),
            ("batch_size", self.batch_size, 1, 4096),
            ("commit_every", self.commit_every, 1, usize::MAX),
            ("geometric.min_views", self.geometric.min_views, 0, 1024),
        ] {
            if !(lo..=hi).contains(&v) {
                return bad(key, &v, &format!("must be in {lo}..={hi}"));
            }
        }
        let c = &self.confidence;
        if !c.threshold.is_finite() {
            return bad("confidence.threshold", &c.threshold, "a finite number");
        }
        if !(0.0..100.0).contains(&c.percentile) {
            return bad("confidence.percentile", &c.percentile, "in [0, 100)");
        }
        let g = &self.geometric;
        for (key, v) in [
            ("geometric.max_reprojection_px", g.max_reprojection_px),
            ("geometric.max_relative_depth", g.max_relative_depth),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(key, &v, "a finite number > 0");
            }
        }
        for (key, v) in [
            ("camera.max_rotation_deg", self.camera.max_rotation_deg),
            ("camera.max_direction_deg", self.camera.max_direction_deg),
        ] {
            if !(v.is_finite() && (0.0..=180.0).contains(&v)) {
                return bad(key, &v, "degrees in [0, 180]");
            }
        }
        let fu = &self.fusion;
        if !(fu.max_spread.is_finite() && fu.max_spread > 0.0) {
            return bad("fusion.max_spread", &fu.max_spread, "a finite number > 0");
        }
        if !(2..=100_000).contains(&fu.max_segment) {
            return bad(
                "fusion.max_segment",
                &fu.max_segment,
                "must be in 2..=100000",
            );
        }
        if fu.gaps.iter().any(|g| !(1..=1024).contains(g)) {
            return bad(
                "fusion.gaps",
                &format!("{:?}", fu.gaps),
                "each gap in 1..=1024",
            );
        }
        let f = self.acceptance.min_kept_fraction;
        if !(0.0..=1.0).contains(&f) {
            return bad("acceptance.min_kept_fraction", &f, "a fraction in [0, 1]");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn configs_label_toml_lists_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/label.toml");
        let parsed: LabelConfig = spatialsv_store::load_toml(&path).unwrap();
        assert_eq!(parsed, LabelConfig::default());
        parsed.validate().unwrap();
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut c = LabelConfig::default();
        c.confidence.percentile = 120.0;
        assert!(c.validate().unwrap_err().contains("confidence.percentile"));
        type Break = fn(&mut LabelConfig);
        let cases: Vec<(Break, &str)> = vec![
            (|c| c.batch_size = 0, "batch_size = 0"),
            (|c| c.commit_every = 0, "commit_every = 0"),
            (|c| c.clip_len = 5000, "clip_len = 5000"),
            (
                |c| c.confidence.threshold = f32::NAN,
                "confidence.threshold = NaN",
            ),
            (
                |c| c.geometric.max_reprojection_px = 0.0,
                "geometric.max_reprojection_px = 0",
            ),
            (
                |c| c.camera.max_rotation_deg = -1.0,
                "camera.max_rotation_deg = -1",
            ),
            (
                |c| c.acceptance.min_kept_fraction = f64::NAN,
                "acceptance.min_kept_fraction = NaN",
            ),
        ];
        for (break_it, key) in cases {
            let mut c = LabelConfig::default();
            break_it(&mut c);
            let err = c.validate().unwrap_err();
            assert!(
                err.0
                    .starts_with(&format!("label config: {key} is invalid")),
                "{err}"
            );
        }
        let err = spatialsv_store::parse_toml::<LabelConfig>(
            "[confidence]\nmode = \"median\"\n",
            "x.toml",
        )
        .unwrap_err();
        assert!(err.to_string().contains("x.toml"), "{err}");
        assert_eq!(GeometricFilter::default().views_needed(3), 2);
        assert_eq!(GeometricFilter::default().views_needed(8), 3);
        assert_eq!(GeometricFilter::default().views_needed(2), 1);
    }
}
