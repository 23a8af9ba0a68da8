//! Objects of a scene: the rows of the `objects` and `object_views` tables, the file a scene
//! directory carries them in (`objects.json`, written by `synth`), the names questions use, and
//! the per-frame statistics of instance (object-id) images. ScanNet's own annotation files
//! (`*.aggregation.json` + `*.segs.json` over the `*_vh_clean_2.ply` mesh) are read by the
//! ingest crate (`scannet.rs`, `ply.rs`).

use spatialsv_schemas::Invalid;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, FixedSizeListBuilder, Float64Builder, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field};
use serde::{Deserialize, Serialize};
use spatialsv_schemas::{Split, object_views_schema, objects_schema};

use crate::error::{Error, Result};
use crate::rows::strings;

/// File name of a scene's objects in its directory (spatialsv's own annotation format).
pub const OBJECTS_FILE: &str = "objects.json";

/// Directory of a ScanNet scene's instance images (`{frame}.png`, 8- or 16-bit, value =
/// object id, 0 = no object), as in ScanNet's 2D export.
pub const INSTANCE_DIR: &str = "instance-filt";

/// One annotated object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneObject {
    /// Id within the scene, as its instance images hold it (> 0).
    pub object_id: i64,
    /// Unique-in-scene name (see [`name_objects`]).
    #[serde(default)]
    pub name: String,
    /// Category word.
    pub category: String,
    /// Colour word.
    #[serde(default)]
    pub colour: Option<String>,
    /// Size word within the category.
    #[serde(default)]
    pub size: Option<String>,
    /// Centre of the axis-aligned world box, metres.
    pub centre: [f64; 3],
    /// Full size of the box along x, y, z, metres.
    pub extent: [f64; 3],
}

/// A scene's objects and where the annotation came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneObjects {
    /// `synthetic` or `scannet_aggregation`.
    pub source: String,
    /// The objects.
    pub objects: Vec<SceneObject>,
}

impl SceneObjects {
    /// Checks ids and boxes: one line naming the object and what is wrong.
    pub fn check(&self) -> std::result::Result<(), Invalid> {
        let mut seen = std::collections::BTreeSet::new();
        for o in &self.objects {
            if o.object_id <= 0 || o.object_id > i64::from(u16::MAX) {
                return Err(Invalid(format!(
                    "object id {} is outside 1..=65535 (instance images are 16-bit, 0 = none)",
                    o.object_id
                )));
            }
            if !seen.insert(o.object_id) {
                return Err(Invalid(format!("object id {} appears twice", o.object_id)));
            }
            if o.centre.iter().chain(&o.extent).any(|v| !v.is_finite())
                || o.extent.iter().any(|v| *v < 0.0)
            {
                return Err(Invalid(format!(
                    "object {} has a box that is not finite or has a negative extent",
                    o.object_id
                )));
            }
            if o.category.trim().is_empty() {
                return Err(Invalid(format!("object {} has no category", o.object_id)));
            }
        }
        Ok(())
    }
}

/// Reads `dir/objects.json` (`None` when absent; a malformed file is a user error naming it).
pub fn read_objects_file(dir: &Path) -> Result<Option<SceneObjects>> {
    let path = dir.join(OBJECTS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("reading", &path)(e)),
    };
    let mut objs: SceneObjects = serde_json::from_str(&text)
        .map_err(|e| Error::bad_input(&path, format!("not a spatialsv objects file ({e})")))?;
    objs.check().map_err(|e| Error::bad_input(&path, e))?;
    name_objects(&mut objs.objects);
    Ok(Some(objs))
}

/// Writes `dir/objects.json`.
pub fn write_objects_file(dir: &Path, objs: &SceneObjects) -> Result<()> {
    let path = dir.join(OBJECTS_FILE);
    let text = serde_json::to_string_pretty(objs).map_err(|e| Error::Internal(e.to_string()))?;
    std::fs::write(&path, text).map_err(Error::io("writing", &path))
}

/// Gives every object the shortest of `category`, `colour category`, `size colour category`
/// that no other object of the scene shares; the full description when none is unique (such
/// objects are never named by a question: [`unique_names`]).
pub fn name_objects(objs: &mut [SceneObject]) {
    let forms = |o: &SceneObject| -> Vec<String> {
        let mut v = vec![o.category.clone()];
        if let Some(c) = &o.colour {
            v.push(format!("{c} {}", o.category));
            if let Some(s) = &o.size {
                v.push(format!("{s} {c} {}", o.category));
            }
        }
        v
    };
    let all: Vec<Vec<String>> = objs.iter().map(forms).collect();
    for (i, o) in objs.iter_mut().enumerate() {
        let mine = &all[i];
        let unique = |level: usize| {
            let name = &mine[level];
            all.iter()
                .enumerate()
                .all(|(j, f)| j == i || f.get(level).is_none_or(|n| n != name))
                // A shorter form of another object must not equal it either.
                && all.iter().enumerate().all(|(j, f)| j == i || !f.contains(name))
        };
        o.name = (0..mine.len())
            .find(|l| unique(*l))
            .map_or_else(|| mine[mine.len() - 1].clone(), |l| mine[l].clone());
    }
}

/// Object ids whose name no other object of the scene has: the ones questions may name.
pub fn unique_names(objs: &[SceneObject]) -> BTreeMap<i64, String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for o in objs {
        *count.entry(o.name.as_str()).or_default() += 1;
    }
    objs.iter()
        .filter(|o| count[o.name.as_str()] == 1)
        .map(|o| (o.object_id, o.name.clone()))
        .collect()
}

/// The colour word of a linear RGB colour (0-1): hue bins, and `grey`, `white` or `black`
/// for weakly saturated colours.
pub fn colour_word(rgb: [f64; 3]) -> &'static str {
    let (max, min) = (
        rgb[0].max(rgb[1]).max(rgb[2]),
        rgb[0].min(rgb[1]).min(rgb[2]),
    );
    let sat = if max > 0.0 { (max - min) / max } else { 0.0 };
    if sat < 0.25 {
        return if max > 0.8 {
            "white"
        } else if max < 0.15 {
            "black"
        } else {
            "grey"
        };
    }
    let d = max - min;
    let h = if max == rgb[0] {
        60.0 * ((rgb[1] - rgb[2]) / d).rem_euclid(6.0)
    } else if max == rgb[1] {
        60.0 * ((rgb[2] - rgb[0]) / d + 2.0)
    } else {
        60.0 * ((rgb[0] - rgb[1]) / d + 4.0)
    };
    match h {
        h if h < 20.0 => "red",
        h if h < 45.0 => "orange",
        h if h < 70.0 => "yellow",
        h if h < 160.0 => "green",
        h if h < 200.0 => "cyan",
        h if h < 260.0 => "blue",
        h if h < 300.0 => "purple",
        h if h < 340.0 => "pink",
        _ => "red",
    }
}

/// One object seen in one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectView {
    /// `objects.object_id`.
    pub object_id: i64,
    /// Pixels showing it.
    pub pixels: i64,
    /// Those pixels over the image's.
    pub fraction: f64,
    /// x0 y0 x1 y1 as fractions of the image size.
    pub bbox: [f64; 4],
    /// Median true depth over its pixels with depth.
    pub depth_median_m: Option<f64>,
}

/// Decodes an instance image (8- or 16-bit grayscale PNG) into raw ids, without the scaling
/// a conversion between bit depths would apply.
pub fn decode_instance(bytes: &[u8]) -> std::result::Result<(u32, u32, Vec<u16>), Invalid> {
    let mut reader =
        image::ImageReader::with_format(std::io::Cursor::new(bytes), image::ImageFormat::Png);
    reader.limits(crate::media::limits());
    let img = reader.decode().map_err(|e| e.to_string())?;
    let (w, h) = (img.width(), img.height());
    let ids = match img {
        image::DynamicImage::ImageLuma8(b) => b.into_raw().into_iter().map(u16::from).collect(),
        image::DynamicImage::ImageLuma16(b) => b.into_raw(),
        other => {
            return Err(Invalid(format!(
                "an instance image must be 8- or 16-bit grayscale, this one is {:?}",
                other.color()
            )));
        }
    };
    Ok((w, h, ids))
}

/// Per-object statistics of one instance image of `w` x `h` ids. `depth` (values, width,
/// height, metres per unit; 0 = invalid) is sampled at the nearest pixel when its size
/// differs. Objects with fewer than `min_pixels` pixels are left out (label noise at edges).
pub fn object_views(
    ids: &[u16],
    w: u32,
    h: u32,
    depth: Option<(&[u16], u32, u32, f64)>,
    min_pixels: usize,
) -> Vec<ObjectView> {
    struct Acc {
        id: u16,
        pixels: usize,
        bbox: [u32; 4],
        /// Raw depth values (> 0) under the object: the median is taken on these and scaled
        /// once, which is the same value as the median of the scaled values (scale > 0).
        depths: Vec<u16>,
    }
    // Objects in order of first sight; `slot` maps an id to its index (a direct table up to
    // the largest id present; `u32::MAX` = not seen yet).
    let mut acc: Vec<Acc> = Vec::new();
    let max_id = ids.iter().copied().max().unwrap_or(0);
    let mut slot: Vec<u32> = vec![u32::MAX; usize::from(max_id) + 1];
    // The nearest depth pixel of each image row and column, once.
    let (depth_rows, depth_cols): (Vec<usize>, Vec<usize>) = match depth {
        Some((_, dw, dh, _)) => (
            (0..h)
                .map(|y| (u64::from(y) * u64::from(dh) / u64::from(h)) as usize * dw as usize)
                .collect(),
            (0..w)
                .map(|x| (u64::from(x) * u64::from(dw) / u64::from(w)) as usize)
                .collect(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    for y in 0..h {
        let row = &ids[(y * w) as usize..((y + 1) * w) as usize];
        for (x, &id) in (0..w).zip(row) {
            if id == 0 {
                continue;
            }
            let s = &mut slot[usize::from(id)];
            if *s == u32::MAX {
                *s = acc.len() as u32;
                acc.push(Acc {
                    id,
                    pixels: 0,
                    bbox: [x, y, x, y],
                    depths: Vec::new(),
                });
            }
            let i = *s as usize;
            let a = &mut acc[i];
            a.pixels += 1;
            a.bbox = [
                a.bbox[0].min(x),
                a.bbox[1].min(y),
                a.bbox[2].max(x),
                a.bbox[3].max(y),
            ];
            if let Some((d, _, _, _)) = depth {
                let v = d[depth_rows[y as usize] + depth_cols[x as usize]];
                if v > 0 {
                    a.depths.push(v);
                }
            }
        }
    }
    acc.sort_unstable_by_key(|a| a.id);
    let total = f64::from(w) * f64::from(h);
    let scale = depth.map_or(1.0, |(_, _, _, s)| s);
    acc.into_iter()
        .filter(|a| a.pixels >= min_pixels.max(1))
        .map(|mut a| {
            let mid = a.depths.len() / 2;
            let median = (!a.depths.is_empty()).then(|| *a.depths.select_nth_unstable(mid).1);
            ObjectView {
                object_id: i64::from(a.id),
                pixels: a.pixels as i64,
                fraction: a.pixels as f64 / total,
                bbox: [
                    f64::from(a.bbox[0]) / f64::from(w),
                    f64::from(a.bbox[1]) / f64::from(h),
                    f64::from(a.bbox[2] + 1) / f64::from(w),
                    f64::from(a.bbox[3] + 1) / f64::from(h),
                ],
                depth_median_m: median.map(|v| f64::from(v) * scale),
            }
        })
        .collect()
}

fn fixed_list(n: i32, rows: impl Iterator<Item = Vec<f64>>) -> ArrayRef {
    let mut b = FixedSizeListBuilder::new(Float64Builder::new(), n)
        .with_field(Arc::new(Field::new("item", DataType::Float64, false)));
    for r in rows {
        b.values().append_slice(&r);
        b.append(true);
    }
    Arc::new(b.finish())
}

/// Builds an `objects` batch for one scene.
pub fn objects_batch(scene_id: &str, split: Split, objs: &SceneObjects) -> Result<RecordBatch> {
    let o = &objs.objects;
    let cols: Vec<ArrayRef> = vec![
        strings(o.iter().map(|_| scene_id)),
        strings(o.iter().map(|_| split.as_str())),
        Arc::new(Int64Array::from_iter_values(o.iter().map(|x| x.object_id))),
        strings(o.iter().map(|x| x.name.as_str())),
        strings(o.iter().map(|x| x.category.as_str())),
        Arc::new(
            o.iter()
                .map(|x| x.colour.as_deref())
                .collect::<arrow::array::StringArray>(),
        ),
        Arc::new(
            o.iter()
                .map(|x| x.size.as_deref())
                .collect::<arrow::array::StringArray>(),
        ),
        fixed_list(3, o.iter().map(|x| x.centre.to_vec())),
        fixed_list(3, o.iter().map(|x| x.extent.to_vec())),
        strings(o.iter().map(|_| objs.source.as_str())),
    ];
    Ok(RecordBatch::try_new(objects_schema(), cols)?)
}

/// Builds an `object_views` batch: `(frame_idx, view)` rows of one scene.
pub fn object_views_batch(
    scene_id: &str,
    split: Split,
    views: &[(i64, ObjectView)],
) -> Result<RecordBatch> {
    let mut depth = Float64Builder::new();
    for (_, v) in views {
        depth.append_option(v.depth_median_m);
    }
    let cols: Vec<ArrayRef> = vec![
        strings(views.iter().map(|_| scene_id)),
        strings(views.iter().map(|_| split.as_str())),
        Arc::new(Int64Array::from_iter_values(views.iter().map(|(f, _)| *f))),
        Arc::new(Int64Array::from_iter_values(
            views.iter().map(|(_, v)| v.object_id),
        )),
        Arc::new(Int64Array::from_iter_values(
            views.iter().map(|(_, v)| v.pixels),
        )),
        Arc::new(arrow::array::Float64Array::from_iter_values(
            views.iter().map(|(_, v)| v.fraction),
        )),
        fixed_list(4, views.iter().map(|(_, v)| v.bbox.to_vec())),
        Arc::new(depth.finish()),
    ];
    Ok(RecordBatch::try_new(object_views_schema(), cols)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(id: i64, category: &str, colour: &str, size: &str) -> SceneObject {
        SceneObject {
            object_id: id,
            name: String::new(),
            category: category.into(),
            colour: Some(colour.into()),
            size: Some(size.into()),
            centre: [0.0; 3],
            extent: [1.0; 3],
        }
    }

    #[test]
    fn names_are_the_shortest_unique_description() {
        let mut objs = vec![
            obj(1, "ball", "red", "small"),
            obj(2, "cabinet", "red", "large"),
            obj(3, "cabinet", "blue", "large"),
            obj(4, "crate", "green", "small"),
            obj(5, "crate", "green", "large"),
            obj(6, "column", "grey", "small"),
            obj(7, "column", "grey", "small"),
        ];
        name_objects(&mut objs);
        let names: Vec<&str> = objs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ball",
                "red cabinet",
                "blue cabinet",
                "small green crate",
                "large green crate",
                "small grey column",
                "small grey column"
            ]
        );
        let unique = unique_names(&objs);
        assert_eq!(unique.len(), 5);
        assert!(!unique.contains_key(&6) && !unique.contains_key(&7));
    }

    #[test]
    fn colour_words() {
        assert_eq!(colour_word([0.8, 0.1, 0.1]), "red");
        assert_eq!(colour_word([0.2, 0.7, 0.2]), "green");
        assert_eq!(colour_word([0.2, 0.3, 0.8]), "blue");
        assert_eq!(colour_word([0.8, 0.8, 0.2]), "yellow");
        assert_eq!(colour_word([0.5, 0.5, 0.55]), "grey");
        assert_eq!(colour_word([0.9, 0.9, 0.85]), "white");
        assert_eq!(colour_word([0.6, 0.2, 0.7]), "purple");
    }

    #[test]
    fn instance_statistics_by_hand() {
        // 4x2 ids: object 3 at (1,0), (2,0), (2,1); object 9 at (0,1) only.
        let ids = [0, 3, 3, 0, 9, 0, 3, 0];
        let depth = [0u16, 1000, 3000, 0, 500, 0, 2000, 0];
        let v = object_views(&ids, 4, 2, Some((&depth, 4, 2, 0.001)), 1);
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].object_id, v[0].pixels), (3, 3));
        assert_eq!(v[0].bbox, [0.25, 0.0, 0.75, 1.0]);
        assert_eq!(v[0].depth_median_m, Some(2.0));
        assert!((v[0].fraction - 3.0 / 8.0).abs() < 1e-12);
        assert_eq!((v[1].object_id, v[1].pixels), (9, 1));
        // A minimum pixel count drops the speck; no depth gives no median.
        let v = object_views(&ids, 4, 2, None, 2);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].depth_median_m, None);
    }

    /// The plain definition: every pixel looked up in a map, every depth scaled, sorted.
    fn object_views_by_definition(
        ids: &[u16],
        w: u32,
        h: u32,
        depth: Option<(&[u16], u32, u32, f64)>,
        min_pixels: usize,
    ) -> Vec<ObjectView> {
        let mut acc: BTreeMap<u16, (usize, [u32; 4], Vec<f64>)> = BTreeMap::new();
        for y in 0..h {
            for x in 0..w {
                let id = ids[(y * w + x) as usize];
                if id == 0 {
                    continue;
                }
                let a = acc.entry(id).or_insert((0, [x, y, x, y], Vec::new()));
                a.0 += 1;
                a.1 = [a.1[0].min(x), a.1[1].min(y), a.1[2].max(x), a.1[3].max(y)];
                if let Some((d, dw, dh, scale)) = depth {
                    let dx = (u64::from(x) * u64::from(dw) / u64::from(w)) as usize;
                    let dy = (u64::from(y) * u64::from(dh) / u64::from(h)) as usize;
                    let v = d[dy * dw as usize + dx];
                    if v > 0 {
                        a.2.push(f64::from(v) * scale);
                    }
                }
            }
        }
        acc.into_iter()
            .filter(|(_, a)| a.0 >= min_pixels.max(1))
            .map(|(id, (pixels, bbox, mut depths))| {
                depths.sort_by(f64::total_cmp);
                ObjectView {
                    object_id: i64::from(id),
                    pixels: pixels as i64,
                    fraction: pixels as f64 / (f64::from(w) * f64::from(h)),
                    bbox: [
                        f64::from(bbox[0]) / f64::from(w),
                        f64::from(bbox[1]) / f64::from(h),
                        f64::from(bbox[2] + 1) / f64::from(w),
                        f64::from(bbox[3] + 1) / f64::from(h),
                    ],
                    depth_median_m: (!depths.is_empty()).then(|| depths[depths.len() / 2]),
                }
            })
            .collect()
    }

    #[test]
    fn instance_statistics_match_their_definition() {
        let mut rng = crate::datagen::SplitMix64::new(7);
        for case in 0..40u32 {
            let (w, h) = (3 + case % 17, 2 + case % 11);
            // Blocky ids (runs along rows, as real masks have) with specks, large ids too.
            let ids: Vec<u16> = (0..w * h)
                .map(|i| match rng.next_u64() % 10 {
                    0 => (rng.next_u64() % 65536) as u16,
                    1..=3 => 0,
                    _ => (1 + (i % w) / 3 + 5 * ((i / w) / 2)) as u16,
                })
                .collect();
            let (dw, dh) = (1 + case % 7 * 3, 1 + case % 5 * 2);
            let depth: Vec<u16> = (0..dw * dh)
                .map(|_| (rng.next_u64() % 4) as u16 * (rng.next_u64() % 5000) as u16)
                .collect();
            for d in [None, Some((depth.as_slice(), dw, dh, 0.001))] {
                for min_pixels in [1, 3] {
                    assert_eq!(
                        object_views(&ids, w, h, d, min_pixels),
                        object_views_by_definition(&ids, w, h, d, min_pixels),
                        "case {case}, {w}x{h}, depth {dw}x{dh}: {}",
                        d.is_some()
                    );
                }
            }
        }
    }

    #[test]
    fn a_bad_objects_file_names_what_is_wrong() {
        let mut objs = SceneObjects {
            source: "synthetic".into(),
            objects: vec![
                obj(1, "ball", "red", "small"),
                obj(1, "crate", "red", "small"),
            ],
        };
        assert!(
            objs.check()
                .unwrap_err()
                .contains("object id 1 appears twice")
        );
        objs.objects[1].object_id = 0;
        assert!(objs.check().unwrap_err().contains("outside 1..=65535"));
        objs.objects[1].object_id = 2;
        objs.objects[1].extent = [f64::NAN, 1.0, 1.0];
        assert!(objs.check().unwrap_err().contains("object 2"));
    }
}
