//! The reference's preprocessing (`depth_anything_3.utils.io.input_processor.InputProcessor`):
//! a boundary resize to the processing resolution keeping the aspect ratio, sizes made
//! multiples of the patch (a small resize or a centre crop), then ToTensor and the ImageNet
//! normalisation; a batch of different sizes is centre-cropped to the smallest.
//!
//! The reference resizes with OpenCV (`cv2.resize`, 8-bit RGB): `INTER_AREA` when shrinking,
//! `INTER_CUBIC` when growing. Area is OpenCV's own code (`resizeArea_` and its integer-scale
//! fast path), ported here operation for operation in the same float order, and is identical.
//! Cubic goes through Intel IPP in the opencv-python wheels (Keys' kernel, a = -0.75, border
//! replicated), whose code is not public: this is the same kernel, separable in f32, and
//! matches it exactly where the scale is a simple fraction (the 3.5x golden) and otherwise on
//! all but about 1 in 100 000 values, which differ by one level where the exact value lies
//! within 1e-5 of a half level (docs/da3.md).

use image::RgbImage;

use crate::error::{Da3Error, Result};

/// The patch size every DA3 backbone uses: input sizes are multiples of it.
pub const PATCH: u32 = 14;

/// The reference's default processing resolution.
pub const DEFAULT_PROCESS_RES: u32 = 504;

/// ImageNet mean and standard deviation, per RGB channel.
pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// See [`MEAN`].
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The reference's `process_res_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResizeMethod {
    /// The longest side to the resolution, then each side to its nearest patch multiple by a
    /// small resize (the reference's default).
    #[default]
    UpperBoundResize,
    /// The longest side to the resolution, then a centre crop to patch multiples.
    UpperBoundCrop,
    /// The shortest side to the resolution, then a small resize.
    LowerBoundResize,
    /// The shortest side to the resolution, then a centre crop.
    LowerBoundCrop,
}

impl ResizeMethod {
    /// Every method, in the reference's order.
    pub const ALL: [ResizeMethod; 4] = [
        ResizeMethod::UpperBoundResize,
        ResizeMethod::UpperBoundCrop,
        ResizeMethod::LowerBoundResize,
        ResizeMethod::LowerBoundCrop,
    ];

    /// The reference's name.
    pub fn name(self) -> &'static str {
        match self {
            ResizeMethod::UpperBoundResize => "upper_bound_resize",
            ResizeMethod::UpperBoundCrop => "upper_bound_crop",
            ResizeMethod::LowerBoundResize => "lower_bound_resize",
            ResizeMethod::LowerBoundCrop => "lower_bound_crop",
        }
    }

    fn upper(self) -> bool {
        matches!(
            self,
            ResizeMethod::UpperBoundResize | ResizeMethod::UpperBoundCrop
        )
    }

    fn crops(self) -> bool {
        matches!(
            self,
            ResizeMethod::UpperBoundCrop | ResizeMethod::LowerBoundCrop
        )
    }
}

impl std::str::FromStr for ResizeMethod {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        ResizeMethod::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown resize method '{s}' (one of {})",
                    ResizeMethod::ALL.map(|m| m.name()).join(", ")
                )
            })
    }
}

impl std::fmt::Display for ResizeMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the model's input sits on the original image: its pixel `(u, v)` is pixel
/// `(u + offset.0, v + offset.1)` of the original resized to `resize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// `(W', H')`.
    pub resize: (u32, u32),
    /// `(x0, y0)`, cropped pixels on the left and top.
    pub offset: (u32, u32),
}

/// One image as the reference prepares it, before normalisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The 8-bit image the model sees (its size a multiple of [`PATCH`]).
    pub image: RgbImage,
    /// Where it sits on the original.
    pub placement: Placement,
}

/// A batch ready for the network.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `[s, 3, h, w]` flattened, normalised.
    pub images: Vec<f32>,
    /// Views.
    pub views: usize,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
    /// Per view, where its input sits on its original image.
    pub placements: Vec<Placement>,
}

fn saturate_u8(x: f32) -> u8 {
    // Half to even, as OpenCV's `cvRound` on SSE2.
    x.round_ties_even().clamp(0.0, 255.0) as u8
}

/// `cv2.resize(img, (w, h), interpolation=INTER_AREA)` for shrinking (both scales >= 1).
pub fn resize_area(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (sw, sh) = img.dimensions();
    if (sw, sh) == (w, h) {
        return img.clone();
    }
    let scale_x = 1.0 / (f64::from(w) / f64::from(sw));
    let scale_y = 1.0 / (f64::from(h) / f64::from(sh));
    let (ix, iy) = (scale_x.round() as i64, scale_y.round() as i64);
    let fast =
        (scale_x - ix as f64).abs() < f64::EPSILON && (scale_y - iy as f64).abs() < f64::EPSILON;
    if fast {
        return area_fast(img, w, h, ix as u32, iy as u32);
    }
    let cn = 3usize;
    let xtab = area_tab(sw as usize, w as usize, cn, scale_x);
    let ytab = area_tab(sh as usize, h as usize, 1, scale_y);
    let src = img.as_raw();
    let (dw, sws) = (w as usize * cn, sw as usize * cn);
    let mut out = vec![0u8; dw * h as usize];
    let mut buf = vec![0f32; dw];
    let mut sum = vec![0f32; dw];
    let mut prev_dy = ytab.first().map_or(0, |t| t.di);
    for t in &ytab {
        let row = &src[t.si * sws..(t.si + 1) * sws];
        buf.iter_mut().for_each(|b| *b = 0.0);
        for x in &xtab {
            for c in 0..cn {
                buf[x.di + c] += f32::from(row[x.si + c]) * x.alpha;
            }
        }
        if t.di != prev_dy {
            store_row(&sum, &mut out[prev_dy * dw..(prev_dy + 1) * dw]);
            for (s, b) in sum.iter_mut().zip(&buf) {
                *s = t.alpha * b;
            }
            prev_dy = t.di;
        } else {
            for (s, b) in sum.iter_mut().zip(&buf) {
                *s += t.alpha * b;
            }
        }
    }
    store_row(&sum, &mut out[prev_dy * dw..(prev_dy + 1) * dw]);
    RgbImage::from_raw(w, h, out).unwrap_or_else(|| RgbImage::new(w, h))
}

fn store_row(sum: &[f32], dst: &mut [u8]) {
    for (d, s) in dst.iter_mut().zip(sum) {
        *d = saturate_u8(*s);
    }
}

struct AreaTab {
    si: usize,
    di: usize,
    alpha: f32,
}

/// OpenCV's `computeResizeAreaTab`.
fn area_tab(ssize: usize, dsize: usize, cn: usize, scale: f64) -> Vec<AreaTab> {
    let mut tab = Vec::with_capacity(ssize * 2);
    for dx in 0..dsize {
        let fsx1 = dx as f64 * scale;
        let fsx2 = fsx1 + scale;
        let cell = scale.min(ssize as f64 - fsx1);
        let mut sx1 = fsx1.ceil() as i64;
        let mut sx2 = fsx2.floor() as i64;
        sx2 = sx2.min(ssize as i64 - 1);
        sx1 = sx1.min(sx2);
        if sx1 as f64 - fsx1 > 1e-3 {
            tab.push(AreaTab {
                di: dx * cn,
                si: (sx1 - 1) as usize * cn,
                alpha: ((sx1 as f64 - fsx1) / cell) as f32,
            });
        }
        for sx in sx1..sx2 {
            tab.push(AreaTab {
                di: dx * cn,
                si: sx as usize * cn,
                alpha: (1.0 / cell) as f32,
            });
        }
        if fsx2 - sx2 as f64 > 1e-3 {
            tab.push(AreaTab {
                di: dx * cn,
                si: sx2 as usize * cn,
                alpha: ((fsx2 - sx2 as f64).min(1.0).min(cell) / cell) as f32,
            });
        }
    }
    tab
}

/// OpenCV's integer-scale area path: `(sum + 2) >> 2` for 2x2, otherwise the sum times the
/// f32 reciprocal of the area, rounded half to even.
fn area_fast(img: &RgbImage, w: u32, h: u32, sx: u32, sy: u32) -> RgbImage {
    let src = img.as_raw();
    let sws = img.width() as usize * 3;
    let area = sx * sy;
    let inv = 1.0f32 / area as f32;
    let mut out = RgbImage::new(w, h);
    for (y, row) in out.as_mut().chunks_exact_mut(w as usize * 3).enumerate() {
        for (x, px) in row.chunks_exact_mut(3).enumerate() {
            for (c, v) in px.iter_mut().enumerate() {
                let mut s = 0u32;
                for dy in 0..sy as usize {
                    let r = (y * sy as usize + dy) * sws;
                    for dx in 0..sx as usize {
                        s += u32::from(src[r + (x * sx as usize + dx) * 3 + c]);
                    }
                }
                *v = if sx == 2 && sy == 2 {
                    ((s + 2) >> 2) as u8
                } else {
                    saturate_u8(s as f32 * inv)
                };
            }
        }
    }
    out
}

/// Keys' cubic kernel weights and clamped source indices for one axis, as `cv2.resize` maps
/// pixel centres: `x = (d + 0.5) * scale - 0.5`.
fn cubic_axis(src: u32, dst: u32) -> Vec<([usize; 4], [f32; 4])> {
    const A: f64 = -0.75;
    let k = |t: f64| {
        let t = t.abs();
        if t <= 1.0 {
            ((A + 2.0) * t - (A + 3.0)) * t * t + 1.0
        } else if t < 2.0 {
            ((A * t - 5.0 * A) * t + 8.0 * A) * t - 4.0 * A
        } else {
            0.0
        }
    };
    let scale = f64::from(src) / f64::from(dst);
    (0..dst)
        .map(|d| {
            let x = (f64::from(d) + 0.5) * scale - 0.5;
            let s = x.floor();
            let f = x - s;
            let idx =
                [-1.0, 0.0, 1.0, 2.0].map(|o| (s + o).clamp(0.0, f64::from(src - 1)) as usize);
            let w = [k(f + 1.0), k(f), k(1.0 - f), k(2.0 - f)].map(|v| v as f32);
            (idx, w)
        })
        .collect()
}

/// `cv2.resize(img, (w, h), interpolation=INTER_CUBIC)` (see the module notes on exactness).
pub fn resize_cubic(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (sw, sh) = img.dimensions();
    if (sw, sh) == (w, h) {
        return img.clone();
    }
    let xs = cubic_axis(sw, w);
    let ys = cubic_axis(sh, h);
    let src = img.as_raw();
    let (sws, dws) = (sw as usize * 3, w as usize * 3);
    // Horizontal pass over every source row, in f32.
    let mut tmp = vec![0f32; sh as usize * dws];
    for (y, trow) in tmp.chunks_exact_mut(dws).enumerate() {
        let row = &src[y * sws..(y + 1) * sws];
        for (x, (idx, wt)) in xs.iter().enumerate() {
            for c in 0..3 {
                let mut acc = f32::from(row[idx[0] * 3 + c]) * wt[0];
                for k in 1..4 {
                    acc += f32::from(row[idx[k] * 3 + c]) * wt[k];
                }
                trow[x * 3 + c] = acc;
            }
        }
    }
    let mut out = vec![0u8; h as usize * dws];
    for (y, (idx, wt)) in ys.iter().enumerate() {
        let orow = &mut out[y * dws..(y + 1) * dws];
        for (i, o) in orow.iter_mut().enumerate() {
            let mut acc = tmp[idx[0] * dws + i] * wt[0];
            for k in 1..4 {
                acc += tmp[idx[k] * dws + i] * wt[k];
            }
            *o = saturate_u8(acc);
        }
    }
    RgbImage::from_raw(w, h, out).unwrap_or_else(|| RgbImage::new(w, h))
}

/// Python's `round` (half to even) of a non-negative f64, as an integer of at least 1.
fn py_round(x: f64) -> u32 {
    (x.round_ties_even() as u32).max(1)
}

fn nearest_multiple(x: u32, p: u32) -> u32 {
    let down = (x / p) * p;
    let up = down + p;
    if up - x <= x - down { up } else { down }
}

/// `cv2.resize` as the reference picks it: cubic when either side grows, else area.
pub fn resize_to(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    if w > img.width() || h > img.height() {
        resize_cubic(img, w, h)
    } else {
        resize_area(img, w, h)
    }
}

/// The size (w, h) [`prepare`] gives an image of `stored` (w, h), without its pixels; `None`
/// where it would fail.
pub fn output_size(
    stored: (u32, u32),
    process_res: u32,
    method: ResizeMethod,
) -> Option<(u32, u32)> {
    let (w0, h0) = stored;
    if w0 == 0 || h0 == 0 || !(PATCH..=8192).contains(&process_res) {
        return None;
    }
    let bound = if method.upper() {
        w0.max(h0)
    } else {
        w0.min(h0)
    };
    let (w1, h1) = if bound == process_res {
        (w0, h0)
    } else {
        let scale = f64::from(process_res) / f64::from(bound);
        (
            py_round(f64::from(w0) * scale),
            py_round(f64::from(h0) * scale),
        )
    };
    let (w, h) = if method.crops() {
        ((w1 / PATCH) * PATCH, (h1 / PATCH) * PATCH)
    } else {
        (nearest_multiple(w1, PATCH), nearest_multiple(h1, PATCH))
    };
    (w > 0 && h > 0).then_some((w, h))
}

/// One image as the reference's `_process_one` prepares it.
pub fn prepare(img: &RgbImage, process_res: u32, method: ResizeMethod) -> Result<Prepared> {
    let (w0, h0) = img.dimensions();
    if w0 == 0 || h0 == 0 {
        return Err(Da3Error::BadInput("an image of zero size".into()));
    }
    if !(PATCH..=8192).contains(&process_res) {
        return Err(Da3Error::BadInput(format!(
            "process_res {process_res} is out of range ({PATCH}..=8192)"
        )));
    }
    let bound = if method.upper() {
        w0.max(h0)
    } else {
        w0.min(h0)
    };
    let mut cur = img.clone();
    if bound != process_res {
        let scale = f64::from(process_res) / f64::from(bound);
        let (nw, nh) = (
            py_round(f64::from(w0) * scale),
            py_round(f64::from(h0) * scale),
        );
        cur = if scale > 1.0 {
            resize_cubic(img, nw, nh)
        } else {
            resize_area(img, nw, nh)
        };
    }
    let (w1, h1) = cur.dimensions();
    if method.crops() {
        let (nw, nh) = ((w1 / PATCH) * PATCH, (h1 / PATCH) * PATCH);
        if nw == 0 || nh == 0 {
            return Err(Da3Error::BadInput(format!(
                "an image of {w0}x{h0} is smaller than one {PATCH}-pixel patch at process_res {process_res}"
            )));
        }
        let (left, top) = ((w1 - nw) / 2, (h1 - nh) / 2);
        let image = image::imageops::crop_imm(&cur, left, top, nw, nh).to_image();
        Ok(Prepared {
            image,
            placement: Placement {
                resize: (w1, h1),
                offset: (left, top),
            },
        })
    } else {
        let (nw, nh) = (
            nearest_multiple(w1, PATCH).max(1),
            nearest_multiple(h1, PATCH).max(1),
        );
        if nw == 0 || nh == 0 {
            return Err(Da3Error::BadInput(format!(
                "an image of {w0}x{h0} is smaller than one {PATCH}-pixel patch at process_res {process_res}"
            )));
        }
        let image = if (nw, nh) == (w1, h1) {
            cur
        } else if nw > w1 || nh > h1 {
            resize_cubic(&cur, nw, nh)
        } else {
            resize_area(&cur, nw, nh)
        };
        Ok(Prepared {
            image,
            placement: Placement {
                resize: (nw, nh),
                offset: (0, 0),
            },
        })
    }
}

/// ToTensor and the ImageNet normalisation, `[3, h, w]` flattened, in the reference's f32
/// operations (`x / 255`, then `(x - mean) / std`).
pub fn normalise(img: &RgbImage) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let hw = (w * h) as usize;
    let mut out = vec![0f32; 3 * hw];
    for (p, px) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * hw + p] = (f32::from(px[c]) / 255.0 - MEAN[c]) / STD[c];
        }
    }
    out
}

/// The reference's `InputProcessor` on a list of images: each prepared, then all centre-cropped
/// to the smallest height and width when their sizes differ, normalised and stacked.
pub fn prepare_batch(images: &[RgbImage], process_res: u32, method: ResizeMethod) -> Result<Batch> {
    if images.is_empty() {
        return Err(Da3Error::BadInput("no images".into()));
    }
    let mut prepared = images
        .iter()
        .map(|i| prepare(i, process_res, method))
        .collect::<Result<Vec<_>>>()?;
    let min_w = prepared.iter().map(|p| p.image.width()).min().unwrap_or(0);
    let min_h = prepared.iter().map(|p| p.image.height()).min().unwrap_or(0);
    for p in &mut prepared {
        let (w, h) = p.image.dimensions();
        if (w, h) != (min_w, min_h) {
            // torchvision's CenterCrop: int(round((h - ch) / 2.0)).
            let top = (f64::from(h - min_h) / 2.0).round_ties_even() as u32;
            let left = (f64::from(w - min_w) / 2.0).round_ties_even() as u32;
            p.image = image::imageops::crop_imm(&p.image, left, top, min_w, min_h).to_image();
            p.placement.offset.0 += left;
            p.placement.offset.1 += top;
        }
    }
    let mut out = Vec::with_capacity(prepared.len() * 3 * (min_w * min_h) as usize);
    for p in &prepared {
        out.extend(normalise(&p.image));
    }
    Ok(Batch {
        images: out,
        views: prepared.len(),
        height: min_h as usize,
        width: min_w as usize,
        placements: prepared.iter().map(|p| p.placement).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_reference_rules() {
        let img = RgbImage::new(741, 500);
        let p = prepare(&img, 504, ResizeMethod::UpperBoundResize).unwrap();
        assert_eq!(p.image.dimensions(), (504, 336));
        for m in ResizeMethod::ALL {
            let p = prepare(&img, 504, m).unwrap();
            assert_eq!(output_size((741, 500), 504, m), Some(p.image.dimensions()));
        }
        assert_eq!(output_size((30, 5), 14, ResizeMethod::UpperBoundCrop), None);
        let p = prepare(&img, 504, ResizeMethod::UpperBoundCrop).unwrap();
        assert_eq!(p.image.dimensions(), (504, 336));
        assert_eq!(p.placement.resize, (504, 340));
        assert_eq!(p.placement.offset, (0, 2));
        let p = prepare(&img, 504, ResizeMethod::LowerBoundResize).unwrap();
        assert_eq!(p.image.dimensions(), (742, 504));
        let p = prepare(&img, 504, ResizeMethod::LowerBoundCrop).unwrap();
        assert_eq!(p.image.dimensions(), (742, 504));
        assert_eq!(p.placement.offset, (2, 0));
        assert!(prepare(&RgbImage::new(30, 5), 14, ResizeMethod::UpperBoundCrop).is_err());
        assert!(prepare(&img, 0, ResizeMethod::UpperBoundResize).is_err());
        assert_eq!("lower_bound_crop".parse(), Ok(ResizeMethod::LowerBoundCrop));
        assert!("nearest".parse::<ResizeMethod>().is_err());
    }

    #[test]
    fn area_of_a_constant_image_is_that_constant() {
        let img = RgbImage::from_pixel(37, 23, image::Rgb([200, 7, 99]));
        for (w, h) in [(20, 11), (18, 11), (37, 20), (12, 23)] {
            let out = resize_area(&img, w, h);
            assert!(out.pixels().all(|p| p.0 == [200, 7, 99]), "{w}x{h}");
        }
        let out = resize_cubic(&img, 80, 51);
        assert!(out.pixels().all(|p| p.0 == [200, 7, 99]));
    }

    #[test]
    fn batches_of_different_sizes_are_centre_cropped() {
        let a = RgbImage::new(741, 500);
        let b = RgbImage::new(500, 500);
        let batch = prepare_batch(&[a, b], 504, ResizeMethod::UpperBoundResize).unwrap();
        assert_eq!((batch.height, batch.width), (336, 504));
        assert_eq!(batch.placements[1].offset, (0, 84));
        assert_eq!(batch.images.len(), 2 * 3 * 336 * 504);
    }
}
