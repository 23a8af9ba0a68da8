//! The question families: each turns the geometry of a few views of one scene (poses, true
//! depth, the objects and which view sees which) into questions whose answers are computed,
//! never predicted, and drops the cases too close to ambiguous to answer (`margin`).
//!
//! Conventions: views are numbered from 1 in questions; image points are given as (x, y) in
//! percent of the image width and height from the top-left corner; camera axes are OpenCV's
//! (x right, y down, z forward); the world's z is up (synthetic rooms; ScanNet is z-up too).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use spatialsv_store::datagen::SplitMix64;
use spatialsv_store::geometry::Mat4;
use spatialsv_store::objects::{ObjectView, SceneObject};

/// A question family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// Dominant direction of camera travel between two views (needs poses).
    CameraMotion,
    /// Whether the camera turned left, right or not between two views (needs poses).
    CameraTurn,
    /// Metres the camera moved between two views (numeric; needs poses).
    CameraDistance,
    /// Which of two marked image points is closer to the camera (needs depth).
    PointCloser,
    /// Metric depth at a marked point (numeric; needs depth).
    PointDepth,
    /// Which of two objects is closer to the camera in a view (needs objects).
    ObjectCloser,
    /// Distance between two objects' centres (numeric; needs objects).
    ObjectDistance,
    /// VSI-Bench relative direction: standing at A facing B, is C left, right or behind?
    RelativeDirection,
    /// How many objects of a category the views show (numeric; needs objects).
    ObjectCount,
    /// Which of three objects appears first in the views (needs objects).
    AppearanceOrder,
    /// MindCube-style view-taking: from view k's viewpoint, is A left or right of B?
    ViewTaking,
}

impl Family {
    /// Every family, in a stable order.
    pub const ALL: [Family; 11] = [
        Family::CameraMotion,
        Family::CameraTurn,
        Family::CameraDistance,
        Family::PointCloser,
        Family::PointDepth,
        Family::ObjectCloser,
        Family::ObjectDistance,
        Family::RelativeDirection,
        Family::ObjectCount,
        Family::AppearanceOrder,
        Family::ViewTaking,
    ];

    /// The family's name (the `qa.family` value and the `--families` word).
    pub fn name(self) -> &'static str {
        match self {
            Family::CameraMotion => "camera_motion",
            Family::CameraTurn => "camera_turn",
            Family::CameraDistance => "camera_distance",
            Family::PointCloser => "point_closer",
            Family::PointDepth => "point_depth",
            Family::ObjectCloser => "object_closer",
            Family::ObjectDistance => "object_distance",
            Family::RelativeDirection => "relative_direction",
            Family::ObjectCount => "object_count",
            Family::AppearanceOrder => "appearance_order",
            Family::ViewTaking => "view_taking",
        }
    }

    /// Whether answers are numbers (scored by mean relative accuracy) rather than options.
    pub fn numeric(self) -> bool {
        matches!(
            self,
            Family::CameraDistance
                | Family::PointDepth
                | Family::ObjectDistance
                | Family::ObjectCount
        )
    }

    /// Whether the family needs annotated objects.
    pub fn needs_objects(self) -> bool {
        matches!(
            self,
            Family::ObjectCloser
                | Family::ObjectDistance
                | Family::RelativeDirection
                | Family::ObjectCount
                | Family::AppearanceOrder
                | Family::ViewTaking
        )
    }

    /// Whether answers are one of a fixed set of labels (balanced by capping each label).
    pub fn fixed_options(self) -> bool {
        matches!(
            self,
            Family::CameraMotion
                | Family::CameraTurn
                | Family::PointCloser
                | Family::RelativeDirection
                | Family::ViewTaking
        )
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// As its name (`camera_turn`), as reports write it.
impl serde::Serialize for Family {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Family {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for Family {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Family::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "unknown question family '{s}' (families: {})",
                    names.join(", ")
                )
            })
    }
}

/// True depth of one view in metres (0 = invalid), row-major.
#[derive(Debug, Clone)]
pub struct DepthView {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Metres.
    pub metres: Vec<f32>,
}

impl DepthView {
    /// Depth at (x, y) in percent of the image, when it is valid and the 3x3 neighbourhood
    /// agrees within 5% (not on a depth edge, so a pixel off does not change the answer).
    pub fn at_percent(&self, x: u32, y: u32) -> Option<f64> {
        let (w, h) = (self.width as i64, self.height as i64);
        let px = ((f64::from(x) + 0.5) / 100.0 * w as f64) as i64;
        let py = ((f64::from(y) + 0.5) / 100.0 * h as f64) as i64;
        let mut vals = Vec::with_capacity(9);
        for dy in -1..=1 {
            for dx in -1..=1 {
                let (u, v) = ((px + dx).clamp(0, w - 1), (py + dy).clamp(0, h - 1));
                vals.push(f64::from(self.metres[(v * w + u) as usize]));
            }
        }
        let (lo, hi) = vals
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), d| (a.min(*d), b.max(*d)));
        (lo > 0.0 && hi / lo <= 1.05).then(|| vals[4])
    }
}

/// One view shown with a question.
#[derive(Debug, Clone)]
pub struct ViewGeom {
    /// `frames.frame_idx`.
    pub frame_idx: i64,
    /// Camera-to-world.
    pub pose: Mat4,
    /// True depth.
    pub depth: Option<DepthView>,
    /// The objects this view sees.
    pub objects: Vec<ObjectView>,
}

/// A generated question before it is keyed and stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// Family.
    pub family: Family,
    /// Template used.
    pub template_id: i64,
    /// Text.
    pub question: String,
    /// Options (empty for numeric questions).
    pub options: Vec<String>,
    /// Answer text.
    pub answer: String,
    /// Numeric answer.
    pub numeric: Option<f64>,
    /// Objects named.
    pub object_ids: Vec<i64>,
    /// Distance from ambiguity, in the family's measure.
    pub margin: f64,
}

/// Minimum relative depth difference for "which is closer" questions.
pub const MIN_DEPTH_RATIO: f64 = 0.15;
/// Relative-direction answers within this many degrees of a sector boundary are dropped.
pub const DIRECTION_MARGIN_DEG: f64 = 10.0;
/// Camera travel shorter than this (m) has no direction.
pub const MIN_TRAVEL_M: f64 = 0.15;

fn rot(p: &Mat4) -> [[f64; 3]; 3] {
    [[p[0], p[1], p[2]], [p[4], p[5], p[6]], [p[8], p[9], p[10]]]
}

fn centre(p: &Mat4) -> [f64; 3] {
    [p[3], p[7], p[11]]
}

/// `R^T v`: a world vector in the camera's axes.
fn to_camera(p: &Mat4, v: [f64; 3]) -> [f64; 3] {
    let r = rot(p);
    [0, 1, 2].map(|j| (0..3).map(|i| r[i][j] * v[i]).sum())
}

fn norm(v: [f64; 3]) -> f64 {
    (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// Numbers as answers are written: one decimal.
pub fn metres_text(x: f64) -> String {
    format!("{:.1}", (x * 10.0).round() / 10.0)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The camera's travel from view `a` to view `b` in view `a`'s axes.
pub fn travel(a: &Mat4, b: &Mat4) -> [f64; 3] {
    to_camera(a, sub(centre(b), centre(a)))
}

/// Dominant travel direction and its margin ((|first| - |second|) / |t|), or `None` when the
/// camera barely moved.
pub fn motion_direction(t: [f64; 3]) -> Option<(&'static str, f64)> {
    let n = norm(t);
    if n < MIN_TRAVEL_M {
        return None;
    }
    let mut order = [0usize, 1, 2];
    order.sort_by(|i, j| t[*j].abs().total_cmp(&t[*i].abs()));
    let (k, second) = (order[0], t[order[1]].abs());
    let word = match (k, t[k] > 0.0) {
        (0, true) => "right",
        (0, false) => "left",
        (1, true) => "down",
        (1, false) => "up",
        (2, true) => "forward",
        _ => "backward",
    };
    Some((word, (t[k].abs() - second) / n))
}

/// Turn of the camera from view `a` to view `b`, degrees: positive = to the right (towards
/// `a`'s +x), from `b`'s viewing direction seen in `a`'s axes.
pub fn yaw_deg(a: &Mat4, b: &Mat4) -> f64 {
    let rb = rot(b);
    let forward_b = [rb[0][2], rb[1][2], rb[2][2]];
    let f = to_camera(a, forward_b);
    f[0].atan2(f[2]).to_degrees()
}

/// VSI-Bench relative direction of `c` for an observer at `a` facing `b` (world xy, z up):
/// `left`, `right` or `behind`, with the degrees to the nearest sector boundary (45 and 135
/// degrees from straight ahead). `None` in front (not an option) or when the points nearly
/// coincide.
pub fn relative_direction(a: [f64; 3], b: [f64; 3], c: [f64; 3]) -> Option<(&'static str, f64)> {
    let f = [b[0] - a[0], b[1] - a[1]];
    let v = [c[0] - a[0], c[1] - a[1]];
    if f[0].hypot(f[1]) < 0.3 || v[0].hypot(v[1]) < 0.3 {
        return None;
    }
    // Signed angle from f to v, counter-clockwise (to the left, z up) positive.
    let theta = (f[0] * v[1] - f[1] * v[0])
        .atan2(f[0] * v[0] + f[1] * v[1])
        .to_degrees();
    let a = theta.abs();
    let margin = (a - 45.0).abs().min((a - 135.0).abs());
    let word = if a > 135.0 {
        "behind"
    } else if a > 45.0 {
        if theta > 0.0 { "left" } else { "right" }
    } else {
        return None;
    };
    Some((word, margin))
}

/// Horizontal angle (degrees, positive to the right) of a world point seen from a camera,
/// `None` when it is behind the camera.
pub fn bearing_deg(camera: &Mat4, p: [f64; 3]) -> Option<f64> {
    let q = to_camera(camera, sub(p, centre(camera)));
    (q[2] > 0.2).then(|| q[0].atan2(q[2]).to_degrees())
}

/// Mean relative accuracy (VSI-Bench): the share of thresholds θ in {0.50, 0.55, ..., 0.95}
/// with |pred - truth| / |truth| < 1 - θ.
pub fn mra(pred: f64, truth: f64) -> f64 {
    if !pred.is_finite() {
        return 0.0;
    }
    let rel = (pred - truth).abs() / truth.abs().max(1e-9);
    (0..10)
        .filter(|i| rel < 1.0 - (0.50 + 0.05 * f64::from(*i)))
        .count() as f64
        / 10.0
}

/// What the families see of one set of views.
#[derive(Debug)]
pub struct Scene<'a> {
    /// The views shown, in order.
    pub views: &'a [ViewGeom],
    /// The scene's objects by id.
    pub objects: &'a BTreeMap<i64, SceneObject>,
    /// Objects a question may name (unique names), by id.
    pub nameable: &'a BTreeMap<i64, String>,
}

impl Scene<'_> {
    /// Ids of nameable objects seen in any view, with the first view (0-based) that sees
    /// them.
    fn seen(&self) -> BTreeMap<i64, usize> {
        let mut out = BTreeMap::new();
        for (k, v) in self.views.iter().enumerate() {
            for o in &v.objects {
                if self.nameable.contains_key(&o.object_id) {
                    out.entry(o.object_id).or_insert(k);
                }
            }
        }
        out
    }

    fn name(&self, id: i64) -> &str {
        self.nameable.get(&id).map_or("", String::as_str)
    }

    fn box_centre(&self, id: i64) -> [f64; 3] {
        self.objects.get(&id).map_or([0.0; 3], |o| o.centre)
    }
}

/// Candidate questions of `family` for one set of views (all of them; the caller samples).
/// `rng` orders options and picks points.
pub fn candidates(family: Family, s: &Scene<'_>, rng: &mut SplitMix64) -> Vec<Question> {
    let mut out = Vec::new();
    let n = s.views.len();
    let q = |template_id: i64,
             question: String,
             options: Vec<String>,
             answer: String,
             numeric: Option<f64>,
             object_ids: Vec<i64>,
             margin: f64| Question {
        family,
        template_id,
        question,
        options,
        answer,
        numeric,
        object_ids,
        margin,
    };
    // A numeric question: the answer written to one decimal, margin the value itself.
    let numeric = |text: String, x: f64, objects: Vec<i64>| {
        q(0, text, vec![], metres_text(x), Some(round1(x)), objects, x)
    };
    let shuffled = |mut v: Vec<String>, rng: &mut SplitMix64| {
        for i in (1..v.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
        v
    };
    // Ordered pairs of views, both ways: from view 3 to view 1 is the reverse motion of view
    // 1 to view 3, so a camera that only ever moves one way still gives balanced answers.
    let pairs: Vec<(usize, usize)> = (0..n)
        .flat_map(|a| (0..n).filter(move |b| *b != a).map(move |b| (a, b)))
        .collect();
    match family {
        Family::CameraMotion => {
            for (a, b) in pairs {
                let t = travel(&s.views[a].pose, &s.views[b].pose);
                if let Some((word, margin)) = motion_direction(t).filter(|m| m.1 >= 0.25) {
                    let tid = (rng.next_u64() % 2) as i64;
                    let text = if tid == 0 {
                        format!(
                            "From view {} to view {}, which way did the camera mostly move?",
                            a + 1,
                            b + 1
                        )
                    } else {
                        format!(
                            "From view {} to view {}, in which direction did the camera travel the most?",
                            a + 1,
                            b + 1
                        )
                    };
                    let options = ["forward", "backward", "left", "right", "up", "down"]
                        .map(String::from)
                        .to_vec();
                    out.push(q(tid, text, options, word.into(), None, vec![], margin));
                }
            }
        }
        Family::CameraTurn => {
            for (a, b) in pairs {
                let yaw = yaw_deg(&s.views[a].pose, &s.views[b].pose);
                let (word, margin) = if yaw.abs() < 3.0 {
                    ("no turn", 3.0 - yaw.abs())
                } else if yaw.abs() >= 10.0 {
                    (if yaw > 0.0 { "right" } else { "left" }, yaw.abs() - 10.0)
                } else {
                    continue;
                };
                let text = format!(
                    "From view {} to view {}, did the camera turn left, turn right, or not turn?",
                    a + 1,
                    b + 1
                );
                let options = ["left", "right", "no turn"].map(String::from).to_vec();
                out.push(q(0, text, options, word.into(), None, vec![], margin));
            }
        }
        Family::CameraDistance => {
            for (a, b) in pairs.into_iter().filter(|(a, b)| a < b) {
                let d = norm(travel(&s.views[a].pose, &s.views[b].pose));
                if d < 0.1 {
                    continue;
                }
                let text = format!(
                    "How many metres did the camera move between view {} and view {}?",
                    a + 1,
                    b + 1
                );
                out.push(numeric(text, d, vec![]));
            }
        }
        Family::PointCloser | Family::PointDepth => {
            for (k, v) in s.views.iter().enumerate() {
                let Some(depth) = &v.depth else { continue };
                // Points on a 10 x 10 grid of cell centres, off depth edges.
                let mut points: Vec<(u32, u32, f64)> = Vec::new();
                for gy in 0..10 {
                    for gx in 0..10 {
                        let (x, y) = (5 + 10 * gx, 5 + 10 * gy);
                        if let Some(d) = depth.at_percent(x, y) {
                            points.push((x, y, d));
                        }
                    }
                }
                if family == Family::PointDepth {
                    for (x, y, d) in points {
                        let text = format!(
                            "In view {}, how far from the camera is the point at ({x}, {y}), in metres?",
                            k + 1
                        );
                        out.push(numeric(text, d, vec![]));
                    }
                    continue;
                }
                for i in 0..points.len() {
                    for j in i + 1..points.len() {
                        let (p1, p2) = (points[i], points[j]);
                        let ratio = (p1.2 - p2.2).abs() / p1.2.max(p2.2);
                        if ratio < MIN_DEPTH_RATIO {
                            continue;
                        }
                        // Which point is A is random: the answer is balanced.
                        let (a, b) = if rng.next_u64().is_multiple_of(2) {
                            (p1, p2)
                        } else {
                            (p2, p1)
                        };
                        let text = format!(
                            "In view {}, which point is closer to the camera: A at ({}, {}) or B at ({}, {})?",
                            k + 1,
                            a.0,
                            a.1,
                            b.0,
                            b.1
                        );
                        let answer = if a.2 < b.2 { "A" } else { "B" };
                        out.push(q(
                            0,
                            text,
                            vec!["A".into(), "B".into()],
                            answer.into(),
                            None,
                            vec![],
                            ratio,
                        ));
                    }
                }
            }
        }
        Family::ObjectCloser => {
            for (k, v) in s.views.iter().enumerate() {
                let seen: Vec<(i64, f64)> = v
                    .objects
                    .iter()
                    .filter(|o| s.nameable.contains_key(&o.object_id))
                    .filter_map(|o| o.depth_median_m.map(|d| (o.object_id, d)))
                    .collect();
                for i in 0..seen.len() {
                    for j in i + 1..seen.len() {
                        let ((ia, da), (ib, db)) = (seen[i], seen[j]);
                        let ratio = (da - db).abs() / da.max(db);
                        if ratio < MIN_DEPTH_RATIO {
                            continue;
                        }
                        let options = shuffled(vec![s.name(ia).into(), s.name(ib).into()], rng);
                        let text = format!(
                            "In view {}, which is closer to the camera: the {} or the {}?",
                            k + 1,
                            options[0],
                            options[1]
                        );
                        let answer = s.name(if da < db { ia } else { ib }).to_string();
                        out.push(q(0, text, options, answer, None, vec![ia, ib], ratio));
                    }
                }
            }
        }
        Family::ObjectDistance => {
            let seen: Vec<i64> = s.seen().into_keys().collect();
            for i in 0..seen.len() {
                for j in i + 1..seen.len() {
                    let (a, b) = (seen[i], seen[j]);
                    let d = norm(sub(s.box_centre(a), s.box_centre(b)));
                    if d < 0.3 {
                        continue;
                    }
                    let text = format!(
                        "How far apart are the {} and the {}, in metres?",
                        s.name(a),
                        s.name(b)
                    );
                    out.push(numeric(text, d, vec![a, b]));
                }
            }
        }
        Family::RelativeDirection => {
            let seen: Vec<i64> = s.seen().into_keys().collect();
            for &a in &seen {
                for &b in &seen {
                    for &c in &seen {
                        if a == b || b == c || a == c {
                            continue;
                        }
                        let (pa, pb, pc) = (s.box_centre(a), s.box_centre(b), s.box_centre(c));
                        let Some((word, margin)) = relative_direction(pa, pb, pc) else {
                            continue;
                        };
                        if margin < DIRECTION_MARGIN_DEG {
                            continue;
                        }
                        let text = format!(
                            "If I stand at the {} facing the {}, is the {} to my left, to my right, or behind me?",
                            s.name(a),
                            s.name(b),
                            s.name(c)
                        );
                        let options = ["left", "right", "behind"].map(String::from).to_vec();
                        out.push(q(
                            0,
                            text,
                            options,
                            word.into(),
                            None,
                            vec![a, b, c],
                            margin,
                        ));
                    }
                }
            }
        }
        Family::ObjectCount => {
            // Every object of the category counts, named uniquely or not.
            let mut by_category: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
            for v in s.views {
                for o in &v.objects {
                    if let Some(obj) = s.objects.get(&o.object_id) {
                        by_category
                            .entry(obj.category.as_str())
                            .or_default()
                            .insert(o.object_id);
                    }
                }
            }
            for (category, ids) in by_category {
                let text = format!("How many {category} objects can be seen in these views?");
                let n = ids.len() as f64;
                out.push(q(
                    0,
                    text,
                    vec![],
                    format!("{}", ids.len()),
                    Some(n),
                    ids.into_iter().collect(),
                    1.0,
                ));
            }
        }
        Family::AppearanceOrder => {
            let seen: Vec<(i64, usize)> = s.seen().into_iter().collect();
            for i in 0..seen.len() {
                for j in i + 1..seen.len() {
                    for k in j + 1..seen.len() {
                        let mut three = [seen[i], seen[j], seen[k]];
                        three.sort_by_key(|x| x.1);
                        let gap = three[1].1 - three[0].1;
                        if gap == 0 {
                            continue;
                        }
                        let options = shuffled(
                            three
                                .iter()
                                .map(|(id, _)| s.name(*id).to_string())
                                .collect(),
                            rng,
                        );
                        let text = format!(
                            "Which appears first in these views: the {}, the {}, or the {}?",
                            options[0], options[1], options[2]
                        );
                        out.push(q(
                            0,
                            text,
                            options,
                            s.name(three[0].0).into(),
                            None,
                            three.iter().map(|x| x.0).collect(),
                            gap as f64,
                        ));
                    }
                }
            }
        }
        Family::ViewTaking => {
            let seen: Vec<i64> = s.seen().into_keys().collect();
            for (k, v) in s.views.iter().enumerate() {
                for i in 0..seen.len() {
                    for j in 0..seen.len() {
                        if i == j {
                            continue;
                        }
                        let (a, b) = (seen[i], seen[j]);
                        let (Some(ba), Some(bb)) = (
                            bearing_deg(&v.pose, s.box_centre(a)),
                            bearing_deg(&v.pose, s.box_centre(b)),
                        ) else {
                            continue;
                        };
                        let margin = (ba - bb).abs();
                        if margin < 5.0 {
                            continue;
                        }
                        let text = format!(
                            "From the viewpoint of view {}, is the {} to the left or to the right of the {}?",
                            k + 1,
                            s.name(a),
                            s.name(b)
                        );
                        let word = if ba < bb { "left" } else { "right" };
                        let options = vec!["left".into(), "right".into()];
                        out.push(q(0, text, options, word.into(), None, vec![a, b], margin));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use spatialsv_store::geometry::from_rt;

    /// A camera at `c` looking along world +y (x right = world +x, y down = world -z).
    fn looking_north(c: [f64; 3]) -> Mat4 {
        from_rt(&[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0], c)
    }

    /// The same camera turned right by `deg` (about world z, clockwise from above).
    fn turned(c: [f64; 3], deg: f64) -> Mat4 {
        let (s, co) = deg.to_radians().sin_cos();
        // Columns: camera x, y, z axes in the world.
        let x = [co, -s, 0.0];
        let z = [s, co, 0.0];
        from_rt(&[x[0], 0.0, z[0], x[1], 0.0, z[1], x[2], -1.0, z[2]], c)
    }

    #[test]
    fn camera_motion_directions_and_turns() {
        let a = looking_north([0.0, 0.0, 1.5]);
        let fwd = looking_north([0.1, 1.0, 1.5]);
        let (w, m) = motion_direction(travel(&a, &fwd)).unwrap();
        assert_eq!(w, "forward");
        assert!((m - 0.9 / 1.0049875621).abs() < 1e-6, "{m}");
        let up = looking_north([0.0, 0.0, 2.0]);
        assert_eq!(motion_direction(travel(&a, &up)).unwrap().0, "up");
        let left = looking_north([-0.5, 0.0, 1.5]);
        assert_eq!(motion_direction(travel(&a, &left)).unwrap().0, "left");
        assert!(motion_direction(travel(&a, &looking_north([0.05, 0.0, 1.5]))).is_none());
        assert!((yaw_deg(&a, &turned([0.0; 3], 30.0)) - 30.0).abs() < 1e-9);
        assert!((yaw_deg(&a, &turned([0.0; 3], -12.0)) + 12.0).abs() < 1e-9);
    }

    #[test]
    fn relative_direction_sectors_and_the_ambiguity_drop() {
        let (a, b) = ([0.0, 0.0, 0.0], [0.0, 2.0, 0.0]); // at the origin facing +y
        assert_eq!(
            relative_direction(a, b, [-2.0, 0.5, 0.0]).unwrap().0,
            "left"
        );
        assert_eq!(
            relative_direction(a, b, [2.0, 0.5, 0.0]).unwrap().0,
            "right"
        );
        assert_eq!(
            relative_direction(a, b, [0.2, -2.0, 0.0]).unwrap().0,
            "behind"
        );
        // In front is not an option.
        assert!(relative_direction(a, b, [0.2, 3.0, 0.0]).is_none());
        // 50 degrees to the left: 5 degrees from the 45-degree boundary.
        let c = [-(50f64.to_radians().sin()), 50f64.to_radians().cos(), 0.0];
        let (w, margin) = relative_direction(a, b, c).unwrap();
        assert_eq!(w, "left");
        assert!((margin - 5.0).abs() < 1e-9);
        // The candidate generator drops it (margin < 10 degrees).
        let objects: BTreeMap<i64, SceneObject> = [(1, a), (2, b), (3, c)]
            .into_iter()
            .map(|(id, centre)| {
                (
                    id,
                    SceneObject {
                        object_id: id,
                        name: format!("o{id}"),
                        category: "box".into(),
                        colour: None,
                        size: None,
                        centre,
                        extent: [0.1; 3],
                    },
                )
            })
            .collect();
        let nameable = objects.iter().map(|(k, o)| (*k, o.name.clone())).collect();
        let view = ViewGeom {
            frame_idx: 0,
            pose: looking_north([0.0, -3.0, 1.0]),
            depth: None,
            objects: (1..=3)
                .map(|id| ObjectView {
                    object_id: id,
                    pixels: 100,
                    fraction: 0.01,
                    bbox: [0.0, 0.0, 0.1, 0.1],
                    depth_median_m: Some(id as f64),
                })
                .collect(),
        };
        let views = [view];
        let scene = Scene {
            views: &views,
            objects: &objects,
            nameable: &nameable,
        };
        let qs = candidates(Family::RelativeDirection, &scene, &mut SplitMix64::new(0));
        assert!(
            qs.iter().all(|q| q.object_ids != [1, 2, 3]),
            "an answer within 10 degrees of a boundary was asked"
        );
        for q in &qs {
            assert!(q.margin >= DIRECTION_MARGIN_DEG);
            assert!(q.options.contains(&q.answer));
        }
        // Object closer: 1 at 1 m, 2 at 2 m, 3 at 3 m; all pairs differ by >= 15%.
        let qs = candidates(Family::ObjectCloser, &scene, &mut SplitMix64::new(0));
        assert_eq!(qs.len(), 3);
        let q12 = qs.iter().find(|q| q.object_ids == [1, 2]).unwrap();
        assert_eq!(q12.answer, "o1");
        // Count: three objects of category box.
        let qs = candidates(Family::ObjectCount, &scene, &mut SplitMix64::new(0));
        assert_eq!((qs[0].answer.as_str(), qs[0].numeric), ("3", Some(3.0)));
        // View-taking from a camera looking north at x = 0: o3 (x < 0) is left of o1 (x = 0).
        let qs = candidates(Family::ViewTaking, &scene, &mut SplitMix64::new(0));
        let q31 = qs.iter().find(|q| q.object_ids == [3, 1]).unwrap();
        assert_eq!(q31.answer, "left");
    }

    fn object(id: i64, category: &str, centre: [f64; 3]) -> (i64, SceneObject) {
        (
            id,
            SceneObject {
                object_id: id,
                name: format!("{category} {id}"),
                category: category.into(),
                colour: None,
                size: None,
                centre,
                extent: [0.2; 3],
            },
        )
    }

    fn seen(ids: &[i64]) -> Vec<ObjectView> {
        ids.iter()
            .map(|id| ObjectView {
                object_id: *id,
                pixels: 50,
                fraction: 0.01,
                bbox: [0.0, 0.0, 0.1, 0.1],
                depth_median_m: Some(2.0),
            })
            .collect()
    }

    #[test]
    fn distances_and_appearance_order_by_hand() {
        let objects: BTreeMap<i64, SceneObject> = [
            object(1, "box", [0.0, 0.0, 0.5]),
            object(2, "box", [3.0, 4.0, 0.5]),
            object(3, "ball", [0.1, 0.1, 0.5]),
        ]
        .into_iter()
        .collect();
        let nameable = objects.iter().map(|(k, o)| (*k, o.name.clone())).collect();
        let pose = |x: f64| looking_north([x, -3.0, 1.5]);
        // Views: object 2 first, then 1, then 3; the camera moves 1 m then 0.05 m.
        let views = [
            ViewGeom {
                frame_idx: 0,
                pose: pose(0.0),
                depth: None,
                objects: seen(&[2]),
            },
            ViewGeom {
                frame_idx: 1,
                pose: pose(1.0),
                depth: None,
                objects: seen(&[1, 2]),
            },
            ViewGeom {
                frame_idx: 2,
                pose: pose(1.05),
                depth: None,
                objects: seen(&[3]),
            },
        ];
        let scene = Scene {
            views: &views,
            objects: &objects,
            nameable: &nameable,
        };
        let mut rng = SplitMix64::new(3);
        // Object distance: 1-2 is 5 m; 1-3 (0.14 m) is too close to ask.
        let qs = candidates(Family::ObjectDistance, &scene, &mut rng);
        let q12 = qs.iter().find(|q| q.object_ids == [1, 2]).unwrap();
        assert_eq!((q12.answer.as_str(), q12.numeric), ("5.0", Some(5.0)));
        assert!(qs.iter().all(|q| q.object_ids != [1, 3]));
        // Camera distance: 1.0 m from view 1 to 2; views 2 and 3 (0.05 m) are not asked.
        let qs = candidates(Family::CameraDistance, &scene, &mut rng);
        assert_eq!(qs.len(), 2, "{qs:?}");
        assert!(
            qs.iter()
                .any(|q| q.question.contains("view 1 and view 2") && q.answer == "1.0")
        );
        // Appearance order: object 2 (view 1) before 1 (view 2) before 3 (view 3).
        let qs = candidates(Family::AppearanceOrder, &scene, &mut rng);
        assert_eq!(qs.len(), 1);
        assert_eq!(qs[0].answer, "box 2");
        assert_eq!(qs[0].margin, 1.0);
        let mut opts = qs[0].options.clone();
        opts.sort();
        assert_eq!(opts, ["ball 3", "box 1", "box 2"]);
    }

    #[test]
    fn point_questions_avoid_depth_edges_and_close_calls() {
        // 20x10 depth: left half 2 m, right half 4 m.
        let metres: Vec<f32> = (0..200)
            .map(|i| if i % 20 < 10 { 2.0 } else { 4.0 })
            .collect();
        let d = DepthView {
            width: 20,
            height: 10,
            metres,
        };
        assert_eq!(d.at_percent(25, 50), Some(2.0));
        assert_eq!(d.at_percent(75, 50), Some(4.0));
        assert_eq!(d.at_percent(45, 50), None, "next to the edge");
        let views = [ViewGeom {
            frame_idx: 0,
            pose: looking_north([0.0; 3]),
            depth: Some(d),
            objects: vec![],
        }];
        let (objects, nameable) = (BTreeMap::new(), BTreeMap::new());
        let scene = Scene {
            views: &views,
            objects: &objects,
            nameable: &nameable,
        };
        let qs = candidates(Family::PointCloser, &scene, &mut SplitMix64::new(1));
        assert!(!qs.is_empty());
        let mut answers = BTreeMap::new();
        for q in &qs {
            // Only left-right pairs differ by 15% or more; the left point is closer.
            let nums: Vec<u32> = q
                .question
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|t| t.parse().ok())
                .collect();
            let (ax, bx) = (nums[1], nums[3]);
            assert_ne!(ax < 50, bx < 50, "{}", q.question);
            assert_eq!(q.answer == "A", ax < 50, "{}", q.question);
            *answers.entry(q.answer.clone()).or_insert(0) += 1;
        }
        // A and B are drawn at random: neither dominates.
        let (a, b) = (answers["A"], answers["B"]);
        assert!(a * 3 > b && b * 3 > a, "{answers:?}");
        let qs = candidates(Family::PointDepth, &scene, &mut SplitMix64::new(1));
        assert!(qs.iter().all(|q| q.answer == "2.0" || q.answer == "4.0"));
    }

    #[test]
    fn mean_relative_accuracy_by_hand() {
        assert_eq!(mra(2.0, 2.0), 1.0);
        // 12.5% off: 0.125 < 1 - θ for θ in 0.50..=0.85 (8 of 10).
        assert!((mra(2.25, 2.0) - 0.8).abs() < 1e-12);
        // 35% off: θ in 0.50..=0.60 (3 of 10).
        assert!((mra(1.3, 2.0) - 0.3).abs() < 1e-12);
        // 7% off: every threshold but 0.95 (9 of 10); 2% off: all of them.
        assert!((mra(2.14, 2.0) - 0.9).abs() < 1e-12);
        assert_eq!(mra(2.04, 2.0), 1.0);
        // 50% off or more: nothing.
        assert_eq!(mra(3.0, 2.0), 0.0);
        assert_eq!(mra(f64::NAN, 2.0), 0.0);
    }

    #[test]
    fn family_names_round_trip_and_unknown_ones_are_named() {
        for f in Family::ALL {
            assert_eq!(f.name().parse::<Family>().unwrap(), f);
        }
        let e = "depth_order".parse::<Family>().unwrap_err();
        assert!(e.contains("unknown question family 'depth_order'") && e.contains("camera_motion"));
    }
}
