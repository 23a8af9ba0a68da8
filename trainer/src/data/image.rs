//! Images for the model: decoded, resized to the training size, perturbed (colour jitter,
//! blur; seeded per view) and normalised.

use image::imageops::FilterType;
use rayon::prelude::*;
use spatialsv_store::datagen::SplitMix64;

use super::{FrameRef, FrameStore};
use crate::error::{Result, TrainError};

/// Colour and blur perturbations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    /// Max relative change of brightness, contrast and saturation.
    pub colour: f32,
    /// Probability of a 3x3 box blur.
    pub blur: f64,
}

impl Augment {
    /// No perturbation (evaluation).
    pub const NONE: Augment = Augment {
        colour: 0.0,
        blur: 0.0,
    };
}

fn decode_rgb(bytes: &[u8], w: usize, h: usize) -> Result<(Vec<f32>, u32, u32)> {
    let img = image::load_from_memory(bytes)
        .map_err(|e| TrainError::User(format!("undecodable image ({e})")))?;
    let (iw, ih) = (img.width(), img.height());
    let rgb = image::imageops::resize(&img.to_rgb8(), w as u32, h as u32, FilterType::Triangle);
    let mut out = vec![0.0f32; 3 * w * h];
    for (i, p) in rgb.pixels().enumerate() {
        for c in 0..3 {
            out[c * w * h + i] = f32::from(p.0[c]) / 255.0;
        }
    }
    Ok((out, iw, ih))
}

fn augment(img: &mut [f32], hw: usize, a: Augment, rng: &mut SplitMix64) {
    if a.colour > 0.0 {
        let j = |rng: &mut SplitMix64| 1.0 + a.colour * (2.0 * rng.next_f64() as f32 - 1.0);
        let (bright, contrast, sat) = (j(rng), j(rng), j(rng));
        let mean: f32 = img.iter().sum::<f32>() / img.len() as f32;
        for i in 0..hw {
            let grey = (img[i] + img[hw + i] + img[2 * hw + i]) / 3.0;
            for c in 0..3 {
                let v = &mut img[c * hw + i];
                *v = grey + (*v - grey) * sat;
                *v = mean + (*v - mean) * contrast;
                *v = (*v * bright).clamp(0.0, 1.0);
            }
        }
    }
}

fn box_blur(img: &mut [f32], w: usize, h: usize) {
    for c in 0..3 {
        let plane = &mut img[c * w * h..(c + 1) * w * h];
        let src = plane.to_vec();
        for y in 0..h {
            for x in 0..w {
                let (mut s, mut n) = (0.0, 0.0);
                for dy in -1i64..=1 {
                    for dx in -1i64..=1 {
                        let (yy, xx) = (y as i64 + dy, x as i64 + dx);
                        if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w {
                            s += src[yy as usize * w + xx as usize];
                            n += 1.0;
                        }
                    }
                }
                plane[y * w + x] = s / n;
            }
        }
    }
}

/// Decodes, resizes, perturbs (seeded by `seed` and the view `k`) and normalises one image to
/// `[3, h, w]`.
pub(crate) fn prepare_image(
    bytes: &[u8],
    w: usize,
    h: usize,
    aug: Augment,
    seed: u64,
    k: usize,
) -> Result<Vec<f32>> {
    let (mut img, _, _) = decode_rgb(bytes, w, h)?;
    let mut rng = SplitMix64::new(seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    augment(&mut img, w * h, aug, &mut rng);
    if aug.blur > 0.0 && rng.next_f64() < aug.blur {
        box_blur(&mut img, w, h);
    }
    Ok(img.iter().map(|v| (v - 0.45) / 0.25).collect())
}

/// The images of `clip` only (no targets; frames need no depth, pose or intrinsics), as
/// `[v, 3, h, w]` normalised like [`load_clip`]'s: what the labeler feeds its teacher.
pub fn load_images(
    store: &FrameStore,
    clip: &[FrameRef],
    w: usize,
    h: usize,
    aug: Augment,
    seed: u64,
) -> Result<Vec<f32>> {
    let views: Vec<Result<Vec<f32>>> = clip
        .par_iter()
        .enumerate()
        .map(|(k, f)| {
            store
                .with_image(f, |bytes| prepare_image(bytes, w, h, aug, seed, k))?
                .map_err(|e| TrainError::User(format!("frame {}: {e}", f.frame_idx)))
        })
        .collect();
    Ok(views.into_iter().collect::<Result<Vec<_>>>()?.concat())
}

/// Mirrors planar maps left-right in place: every row of `w` values of every plane
/// (`[.., h, w]`: images, depth, masks, point and ray maps) is reversed.
pub fn flip_rows(x: &mut [f32], w: usize) {
    for row in x.chunks_exact_mut(w.max(1)) {
        row.reverse();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flipping_mirrors_every_row_and_twice_is_the_identity() {
        let (w, h) = (4, 2);
        let d: Vec<f32> = (0..w * h).map(|i| i as f32).collect();
        let mut flipped = d.clone();
        flip_rows(&mut flipped, w);
        assert_eq!(flipped, [3.0, 2.0, 1.0, 0.0, 7.0, 6.0, 5.0, 4.0]);
        let mut back = flipped.clone();
        flip_rows(&mut back, w);
        assert_eq!(back, d);
        // A multi-plane image flips every row of every plane.
        let mut img: Vec<f32> = (0..3 * w * h).map(|i| i as f32).collect();
        flip_rows(&mut img, w);
        assert_eq!(img[w * h], (w * h + w - 1) as f32);
    }
}
