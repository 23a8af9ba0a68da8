//! Losses of the VGGT / DUSt3R family (DOMAIN.md section 4).
//!
//! - Confidence-aware regression per pixel: `c * ||y - m|| - alpha * log c` (alpha 0.2), for
//!   depth, ray maps and point maps, over valid pixels only.
//! - A multi-scale depth-gradient term: L1 of x/y finite differences of the residual at scales
//!   1, 1/2, 1/4 (average pooling of residual and mask), weighted by `c` the same way.
//! - A point-normal term: normals from neighbour cross products, `1 - cos(n_pred, n_gt)`.
//! - Targets normalised by the mean distance of the valid points to the first camera's origin,
//!   so scenes of any scale train together ([`normalize_targets`]).
//!
//! Each term is returned separately ([`LossTerms`]) so it can be logged.

use burn::config::Config;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use burn::tensor::module::avg_pool2d;

/// Weights of the loss terms.
#[derive(Config, Debug, PartialEq)]
pub struct LossConfig {
    /// Weight of `-log c` in the confidence-aware terms.
    #[config(default = 0.2)]
    pub alpha: f64,
    /// Scales of the depth-gradient term (1 = full resolution only).
    #[config(default = 3)]
    pub gradient_scales: usize,
    /// Weight of the depth term.
    #[config(default = 1.0)]
    pub depth: f64,
    /// Weight of the depth-gradient term.
    #[config(default = 1.0)]
    pub depth_gradient: f64,
    /// Weight of the ray-map term.
    #[config(default = 1.0)]
    pub rays: f64,
    /// Weight of the point-map term.
    #[config(default = 1.0)]
    pub points: f64,
    /// Weight of the point-normal term.
    #[config(default = 0.5)]
    pub normals: f64,
    /// Share of each pseudo-labelled clip's valid pixels, largest depth error first, left
    /// out of the loss (Depth Anything v2); labeled clips are never trimmed.
    #[config(default = 0.0)]
    pub trim_fraction: f64,
}

/// The loss terms of one step, each a scalar tensor.
#[derive(Debug, Clone)]
pub struct LossTerms<B: Backend> {
    /// Confidence-aware depth regression.
    pub depth: Tensor<B, 1>,
    /// Multi-scale depth gradient.
    pub depth_gradient: Tensor<B, 1>,
    /// Confidence-aware ray-map regression.
    pub rays: Tensor<B, 1>,
    /// Confidence-aware point-map regression.
    pub points: Tensor<B, 1>,
    /// Point-normal term.
    pub normals: Tensor<B, 1>,
    /// Weighted sum.
    pub total: Tensor<B, 1>,
}

impl<B: Backend> LossTerms<B> {
    /// (name, value) of every term, for logging.
    pub fn named(&self) -> [(&'static str, Tensor<B, 1>); 6] {
        [
            ("loss/depth", self.depth.clone()),
            ("loss/depth_gradient", self.depth_gradient.clone()),
            ("loss/rays", self.rays.clone()),
            ("loss/points", self.points.clone()),
            ("loss/normals", self.normals.clone()),
            ("loss/total", self.total.clone()),
        ]
    }
}

/// Mean of `values` over the pixels where `mask` is 1 (0 when none is).
fn masked_mean<B: Backend, const D: usize>(
    values: Tensor<B, D>,
    mask: Tensor<B, D>,
) -> Tensor<B, 1> {
    let count = mask.clone().sum().clamp_min(1.0);
    (values * mask).sum() / count
}

/// Confidence-aware regression. `err`: per-pixel error `||y - m||`, `[b, v, h, w]`; `conf`
/// the predicted confidence (>= 1); `mask` 1 for valid pixels.
pub fn confidence_regression<B: Backend>(
    err: Tensor<B, 4>,
    conf: Tensor<B, 4>,
    mask: Tensor<B, 4>,
    alpha: f64,
) -> Tensor<B, 1> {
    let per_pixel = conf.clone() * err - conf.log() * alpha;
    masked_mean(per_pixel, mask)
}

/// Euclidean norm over the channel axis (2) of `[b, v, c, h, w]`.
pub fn channel_norm<B: Backend>(x: Tensor<B, 5>) -> Tensor<B, 4> {
    let [b, v, _, h, w] = x.dims();
    (x.powf_scalar(2.0).sum_dim(2) + 1e-12)
        .sqrt()
        .reshape([b, v, h, w])
}

/// Multi-scale gradient term on the depth residual.
pub fn depth_gradient_loss<B: Backend>(
    pred: Tensor<B, 4>,
    target: Tensor<B, 4>,
    conf: Tensor<B, 4>,
    mask: Tensor<B, 4>,
    scales: usize,
    alpha: f64,
) -> Tensor<B, 1> {
    let [b, v, h, w] = pred.dims();
    let residual = ((pred - target) * mask.clone()).reshape([b * v, 1, h, w]);
    let mut mask = mask.reshape([b * v, 1, h, w]);
    let mut conf = conf.reshape([b * v, 1, h, w]);
    let mut residual = residual;
    let mut total: Option<Tensor<B, 1>> = None;
    for s in 0..scales.max(1) {
        if s > 0 {
            let [_, _, hh, ww] = residual.dims();
            if hh < 4 || ww < 4 {
                break;
            }
            let pool = |x: Tensor<B, 4>| avg_pool2d(x, [2, 2], [2, 2], [0, 0], true, false);
            // Average residual over valid pixels only; a cell is valid if any pixel is.
            let m = pool(mask.clone());
            residual = pool(residual) / m.clone().clamp_min(1e-6);
            conf = pool(conf);
            mask = m.greater_elem(0.0).float();
        }
        let [_, _, hh, ww] = residual.dims();
        let dx = residual.clone().narrow(3, 1, ww - 1) - residual.clone().narrow(3, 0, ww - 1);
        let mx = mask.clone().narrow(3, 1, ww - 1) * mask.clone().narrow(3, 0, ww - 1);
        let cx = conf.clone().narrow(3, 0, ww - 1);
        let dy = residual.clone().narrow(2, 1, hh - 1) - residual.clone().narrow(2, 0, hh - 1);
        let my = mask.clone().narrow(2, 1, hh - 1) * mask.clone().narrow(2, 0, hh - 1);
        let cy = conf.clone().narrow(2, 0, hh - 1);
        let term = masked_mean(cx.clone() * dx.abs() - cx.log() * alpha, mx)
            + masked_mean(cy.clone() * dy.abs() - cy.log() * alpha, my);
        total = Some(match total {
            None => term,
            Some(t) => t + term,
        });
    }
    total.unwrap_or_else(|| Tensor::zeros([1], &residual.device()))
}

/// Unit normals of a point map `[b, v, 3, h, w]` from neighbour cross products, on the
/// `(h-1) x (w-1)` grid, with a validity mask (all three pixels valid, non-degenerate).
fn normals<B: Backend>(points: Tensor<B, 5>, mask: Tensor<B, 4>) -> (Tensor<B, 5>, Tensor<B, 4>) {
    let [_, _, _, h, w] = points.dims();
    let p = points.clone().narrow(3, 0, h - 1).narrow(4, 0, w - 1);
    let px = points.clone().narrow(3, 0, h - 1).narrow(4, 1, w - 1) - p.clone();
    let py = points.narrow(3, 1, h - 1).narrow(4, 0, w - 1) - p;
    let c = |t: &Tensor<B, 5>, i: usize| t.clone().narrow(2, i, 1);
    let n = Tensor::cat(
        vec![
            c(&px, 1) * c(&py, 2) - c(&px, 2) * c(&py, 1),
            c(&px, 2) * c(&py, 0) - c(&px, 0) * c(&py, 2),
            c(&px, 0) * c(&py, 1) - c(&px, 1) * c(&py, 0),
        ],
        2,
    );
    let len = (n.clone().powf_scalar(2.0).sum_dim(2) + 1e-20).sqrt();
    let m = mask.clone().narrow(2, 0, h - 1).narrow(3, 0, w - 1)
        * mask.clone().narrow(2, 0, h - 1).narrow(3, 1, w - 1)
        * mask.narrow(2, 1, h - 1).narrow(3, 0, w - 1);
    let [b, v, _, hh, ww] = len.dims();
    let nondegenerate = len
        .clone()
        .greater_elem(1e-9)
        .float()
        .reshape([b, v, hh, ww]);
    (n / len, m * nondegenerate)
}

/// `1 - cos(n_pred, n_gt)` averaged over valid pixels.
pub fn normal_loss<B: Backend>(
    pred: Tensor<B, 5>,
    target: Tensor<B, 5>,
    mask: Tensor<B, 4>,
) -> Tensor<B, 1> {
    let (np, mp) = normals(pred, mask.clone());
    let (nt, mt) = normals(target, mask);
    let [b, v, _, h, w] = np.dims();
    let cos = (np * nt).sum_dim(2).reshape([b, v, h, w]);
    masked_mean(cos.neg() + 1.0, mp * mt)
}

/// Targets of one batch, already normalised (see [`normalize_targets`]).
#[derive(Debug, Clone)]
pub struct Targets<B: Backend> {
    /// z-depth, `[b, v, h, w]`.
    pub depth: Tensor<B, 4>,
    /// Ray map, `[b, v, 6, h, w]` (origin, unit direction), first-camera frame.
    pub rays: Tensor<B, 5>,
    /// Point map, `[b, v, 3, h, w]`, first-camera frame.
    pub points: Tensor<B, 5>,
    /// 1 where depth is a target, `[b, v, h, w]`.
    pub mask: Tensor<B, 4>,
    /// 1 where the point map is a target (valid depth of this clip's own geometry).
    pub point_mask: Tensor<B, 4>,
    /// 1 where the ray map is a target.
    pub ray_mask: Tensor<B, 4>,
    /// Per clip: pseudo-labelled (its largest per-pixel losses may be trimmed).
    pub pseudo: Vec<bool>,
}

impl<B: Backend> Targets<B> {
    /// Targets of labeled clips: depth valid where `mask`, points where depth, rays
    /// everywhere.
    pub fn labeled(
        depth: Tensor<B, 4>,
        rays: Tensor<B, 5>,
        points: Tensor<B, 5>,
        mask: Tensor<B, 4>,
    ) -> Self {
        let b = mask.dims()[0];
        Targets {
            depth,
            rays,
            points,
            point_mask: mask.clone(),
            ray_mask: mask.clone().ones_like(),
            mask,
            pseudo: vec![false; b],
        }
    }
}

/// Divides depth, points and ray origins by the mean distance of the valid points to the
/// first camera's origin, per clip (VGGT). Returns the scales `[b]` too.
pub fn normalize_targets<B: Backend>(t: Targets<B>) -> (Targets<B>, Tensor<B, 1>) {
    let [b, v, _, h, w] = t.points.dims();
    let dist = channel_norm(t.points.clone()) * t.point_mask.clone();
    let count = t.point_mask.clone().reshape([b, v * h * w]).sum_dim(1);
    // A clip without point targets (pseudo-labels supervising depth only, already
    // normalised) keeps scale 1.
    let empty = count.clone().lower_elem(0.5).float();
    let scale =
        (dist.reshape([b, v * h * w]).sum_dim(1) / count.clamp_min(1.0) + empty).clamp_min(1e-6); // [b, 1]
    let s4 = scale.clone().reshape([b, 1, 1, 1]);
    let s5 = scale.clone().reshape([b, 1, 1, 1, 1]);
    let origin = t.rays.clone().narrow(2, 0, 3) / s5.clone();
    let dir = t.rays.narrow(2, 3, 3);
    (
        Targets {
            depth: t.depth / s4,
            rays: Tensor::cat(vec![origin, dir], 2),
            points: t.points / s5,
            mask: t.mask,
            point_mask: t.point_mask,
            ray_mask: t.ray_mask,
            pseudo: t.pseudo,
        },
        scale.reshape([b]),
    )
}

/// A `[b, v, h, w]` mask that drops, in each pseudo-labelled clip, the `fraction` of its
/// valid pixels with the largest `err` (computed without gradient); `None` when nothing is
/// trimmed.
pub fn trim_mask<B: Backend>(
    err: &Tensor<B, 4>,
    mask: &Tensor<B, 4>,
    pseudo: &[bool],
    fraction: f64,
) -> Option<Tensor<B, 4>> {
    if fraction <= 0.0 || !pseudo.iter().any(|p| *p) {
        return None;
    }
    let dims = err.dims();
    let per = dims[1] * dims[2] * dims[3];
    let e = err
        .clone()
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .ok()?;
    let m = mask
        .clone()
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .ok()?;
    let mut keep = vec![1.0f32; e.len()];
    for (b, is_pseudo) in pseudo.iter().enumerate().take(dims[0]) {
        if !is_pseudo {
            continue;
        }
        let range = b * per..(b + 1) * per;
        let mut valid: Vec<f32> = range
            .clone()
            .filter(|i| m[*i] > 0.0)
            .map(|i| e[i])
            .collect();
        let drop = (valid.len() as f64 * fraction).floor() as usize;
        if drop == 0 {
            continue;
        }
        valid.sort_by(f32::total_cmp);
        let limit = valid[valid.len() - drop - 1];
        // Ties at the limit are kept; strictly larger errors are dropped.
        for i in range {
            if e[i] > limit {
                keep[i] = 0.0;
            }
        }
    }
    Some(Tensor::from_data(
        burn::tensor::TensorData::new(keep, dims),
        &err.device(),
    ))
}

/// All terms for a prediction against normalised targets.
pub fn spatial_loss<B: Backend>(
    cfg: &LossConfig,
    p: &crate::model::Prediction<B>,
    t: &Targets<B>,
) -> LossTerms<B> {
    let a = cfg.alpha;
    let depth_err = (p.depth.clone() - t.depth.clone()).abs();
    // Pseudo-labelled clips: drop the pixels with the largest depth errors (DAv2).
    let (mask, point_mask) = match trim_mask(&depth_err, &t.mask, &t.pseudo, cfg.trim_fraction) {
        Some(trim) => (t.mask.clone() * trim.clone(), t.point_mask.clone() * trim),
        None => (t.mask.clone(), t.point_mask.clone()),
    };
    let depth = confidence_regression(depth_err, p.depth_conf.clone(), mask.clone(), a);
    let depth_gradient = depth_gradient_loss(
        p.depth.clone(),
        t.depth.clone(),
        p.depth_conf.clone(),
        mask,
        cfg.gradient_scales,
        a,
    );
    // Rays are defined for every pixel, valid depth or not.
    let rays = confidence_regression(
        channel_norm(p.rays.clone() - t.rays.clone()),
        p.ray_conf.clone(),
        t.ray_mask.clone(),
        a,
    );
    let points = confidence_regression(
        channel_norm(p.points.clone() - t.points.clone()),
        p.point_conf.clone(),
        point_mask.clone(),
        a,
    );
    let normals = normal_loss(p.points.clone(), t.points.clone(), point_mask);
    let total = depth.clone() * cfg.depth
        + depth_gradient.clone() * cfg.depth_gradient
        + rays.clone() * cfg.rays
        + points.clone() * cfg.points
        + normals.clone() * cfg.normals;
    LossTerms {
        depth,
        depth_gradient,
        rays,
        points,
        normals,
        total,
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;

    use super::*;
    use crate::backend::{Backend as B, default_device};

    fn t4(v: &[f32], shape: [usize; 4]) -> Tensor<B, 4> {
        Tensor::from_data(TensorData::new(v.to_vec(), shape), &default_device())
    }

    fn scalar(t: Tensor<B, 1>) -> f32 {
        t.into_scalar()
    }

    #[test]
    fn confidence_regression_by_hand() {
        // Two valid pixels (errors 1 and 3, confidences 2 and 1) and one masked pixel.
        let err = t4(&[1.0, 3.0, 100.0], [1, 1, 1, 3]);
        let conf = t4(&[2.0, 1.0, 5.0], [1, 1, 1, 3]);
        let mask = t4(&[1.0, 1.0, 0.0], [1, 1, 1, 3]);
        let got = scalar(confidence_regression(err, conf, mask, 0.2));
        let want = ((2.0 * 1.0 - 0.2 * 2f32.ln()) + (1.0 * 3.0 - 0.0)) / 2.0;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn gradient_term_ignores_a_constant_offset_and_sees_a_ramp() {
        let target = t4(
            &(0..64)
                .map(|i| 1.0 + (i % 8) as f32 * 0.1)
                .collect::<Vec<_>>(),
            [1, 1, 8, 8],
        );
        let mask = target.ones_like();
        let conf = target.ones_like();
        let offset = target.clone() + 5.0;
        let flat = scalar(depth_gradient_loss(
            offset,
            target.clone(),
            conf.clone(),
            mask.clone(),
            3,
            0.2,
        ));
        assert!(flat.abs() < 1e-5, "{flat}");
        // A prediction that doubles the slope along x has residual slope 0.1 per pixel.
        let steeper = t4(
            &(0..64)
                .map(|i| 1.0 + (i % 8) as f32 * 0.2)
                .collect::<Vec<_>>(),
            [1, 1, 8, 8],
        );
        let g = scalar(depth_gradient_loss(steeper, target, conf, mask, 1, 0.2));
        // x differences: 0.1 everywhere; y differences: 0.
        assert!((g - 0.1).abs() < 1e-4, "{g}");
    }

    fn plane(nx: f32, ny: f32, nz: f32) -> Tensor<B, 5> {
        // Points of the plane nx*x + ny*y + nz*z = 1 over a 4x4 grid of (x, y) in front of
        // the camera (nz != 0).
        let mut v = vec![0.0f32; 3 * 16];
        for i in 0..4 {
            for j in 0..4 {
                let (x, y) = (j as f32 * 0.1, i as f32 * 0.1);
                let z = (1.0 - nx * x - ny * y) / nz;
                v[i * 4 + j] = x;
                v[16 + i * 4 + j] = y;
                v[32 + i * 4 + j] = z;
            }
        }
        Tensor::from_data(TensorData::new(v, [1, 1, 3, 4, 4]), &default_device())
    }

    #[test]
    fn normal_term_by_hand() {
        let mask = t4(&[1.0; 16], [1, 1, 4, 4]);
        let a = plane(0.0, 0.0, 1.0);
        assert!(scalar(normal_loss(a.clone(), a.clone(), mask.clone())).abs() < 1e-5);
        // A plane tilted by 60 degrees: 1 - cos 60 = 0.5.
        let tilted = plane(3f32.sqrt(), 0.0, 1.0);
        let got = scalar(normal_loss(tilted, a, mask));
        assert!((got - 0.5).abs() < 1e-4, "{got}");
    }

    #[test]
    fn targets_are_scaled_to_unit_mean_distance() {
        let points = plane(0.0, 0.0, 0.5) * 3.0; // z = 6, mean distance ~6.1
        let mask = t4(&[1.0; 16], [1, 1, 4, 4]);
        let depth = points.clone().narrow(2, 2, 1).reshape([1, 1, 4, 4]);
        let rays = Tensor::cat(
            vec![points.clone() * 0.0 + 2.0, points.clone() * 0.0 + 1.0],
            2,
        );
        let (t, scale) = normalize_targets(Targets::labeled(depth, rays, points, mask.clone()));
        let mean = scalar(masked_mean(channel_norm(t.points.clone()), mask));
        assert!((mean - 1.0).abs() < 1e-5, "{mean}");
        let s = scale.into_scalar();
        assert!((scalar(t.depth.max().reshape([1])) - 6.0 / s).abs() < 1e-4);
        // Origins scale, directions do not.
        assert!((scalar(t.rays.clone().narrow(2, 0, 1).max().reshape([1])) - 2.0 / s).abs() < 1e-5);
        assert!((scalar(t.rays.narrow(2, 3, 1).max().reshape([1])) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn trimming_drops_the_largest_errors_of_pseudo_clips_only() {
        // Two clips of 10 pixels; errors 0..9 in each; clip 1 is pseudo-labelled.
        let err: Vec<f32> = (0..20).map(|i| (i % 10) as f32).collect();
        let e = t4(&err, [2, 1, 1, 10]);
        let mut m = vec![1.0f32; 20];
        m[19] = 0.0; // an invalid pixel is not counted (and not dropped)
        let mask = t4(&m, [2, 1, 1, 10]);
        let keep = trim_mask(&e, &mask, &[false, true], 0.25)
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        // Clip 0 untouched; clip 1 has 9 valid pixels, floor(0.25 * 9) = 2 dropped: 7 and 8
        // (9 is invalid, so it is over the limit too but already masked).
        assert!(keep[..10].iter().all(|k| *k == 1.0));
        assert_eq!(&keep[10..17], &[1.0; 7]);
        assert_eq!(&keep[17..19], &[0.0, 0.0]);
        assert!(trim_mask(&e, &mask, &[false, false], 0.25).is_none());
        assert!(trim_mask(&e, &mask, &[true, true], 0.0).is_none());
    }
}
