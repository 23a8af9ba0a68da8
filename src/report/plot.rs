//! Loss curves: a run's metrics read back from its dataset, smoothed, and drawn as PNG line
//! plots (no plotting dependency: frame, quarter grid, 2-pixel lines).

use std::path::Path;

use spatialsv_pipeline::Dataset;
use spatialsv_schemas::{Columns, Table};

/// (step, value) of `name` in a run's metrics, in step order.
pub fn curve(run: &Path, name: &str) -> Vec<(f64, f64)> {
    let Ok(ds) = Dataset::open(run) else {
        return Vec::new();
    };
    let Ok(m) = ds.latest() else {
        return Vec::new();
    };
    let Ok(batches) = ds.read_table(&m, Table::Metrics, Some(&["step", "name", "value"])) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for b in &batches {
        let Ok(c) = Columns::new(Table::Metrics, b) else {
            return Vec::new();
        };
        let (Ok(step), Ok(names), Ok(values)) =
            (c.i64s("step"), c.strings("name"), c.f64s("value"))
        else {
            return Vec::new();
        };
        for r in 0..b.num_rows() {
            if names.value(r) == name {
                out.push((step.value(r) as f64, values.value(r)));
            }
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// Moving average over `k` points.
pub fn smooth(points: &[(f64, f64)], k: usize) -> Vec<(f64, f64)> {
    (0..points.len())
        .map(|i| {
            let lo = i.saturating_sub(k / 2);
            let hi = (i + k / 2 + 1).min(points.len());
            let mean = points[lo..hi].iter().map(|p| p.1).sum::<f64>() / (hi - lo) as f64;
            (points[i].0, mean)
        })
        .collect()
}

/// One curve to plot: (x, y) points and an RGB colour.
pub type Series = (Vec<(f64, f64)>, [u8; 3]);

/// Colours of the curves, in the order of `Report::runs`: teacher, baseline,
/// baseline_labeled, baseline_strong, student.
pub const COLOURS: [[u8; 3]; 5] = [
    [31, 119, 180],
    [255, 127, 14],
    [148, 103, 189],
    [140, 86, 75],
    [44, 160, 44],
];

/// Draws line plots of `series` (x, y) on one set of axes, `w` x `h` pixels: a frame, light
/// grid lines at the quarter marks, and the series as 2-pixel lines. Returns PNG bytes.
pub fn plot(series: &[Series], w: u32, h: u32) -> Result<(Vec<u8>, [f64; 4]), String> {
    let mut img = image::RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
    let (x0, y0, x1, y1) = (40.0, 10.0, f64::from(w) - 10.0, f64::from(h) - 30.0);
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.0.iter().copied()).collect();
    if all.is_empty() {
        return Err("nothing to plot".into());
    }
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in &all {
        xmin = xmin.min(*x);
        xmax = xmax.max(*x);
        ymin = ymin.min(*y);
        ymax = ymax.max(*y);
    }
    if xmax <= xmin {
        xmax = xmin + 1.0;
    }
    if ymax <= ymin {
        ymax = ymin + 1.0;
    }
    let to_px = |x: f64, y: f64| {
        (
            x0 + (x - xmin) / (xmax - xmin) * (x1 - x0),
            y1 - (y - ymin) / (ymax - ymin) * (y1 - y0),
        )
    };
    let put = |img: &mut image::RgbImage, x: f64, y: f64, c: [u8; 3]| {
        let (xi, yi) = (x.round() as i64, y.round() as i64);
        if xi >= 0 && yi >= 0 && (xi as u32) < w && (yi as u32) < h {
            img.put_pixel(xi as u32, yi as u32, image::Rgb(c));
        }
    };
    for q in 0..=4 {
        let t = f64::from(q) / 4.0;
        let (gx, gy) = (x0 + t * (x1 - x0), y0 + t * (y1 - y0));
        let grey = if q == 0 || q == 4 {
            [0, 0, 0]
        } else {
            [225, 225, 225]
        };
        for k in 0..=((x1 - x0) as i64) {
            put(&mut img, x0 + k as f64, gy, grey);
        }
        for k in 0..=((y1 - y0) as i64) {
            put(&mut img, gx, y0 + k as f64, grey);
        }
    }
    for (points, colour) in series {
        for pair in points.windows(2) {
            let (a, b) = (to_px(pair[0].0, pair[0].1), to_px(pair[1].0, pair[1].1));
            let n = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
            for k in 0..=n {
                let t = k as f64 / n as f64;
                let (x, y) = (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
                put(&mut img, x, y, *colour);
                put(&mut img, x, y + 1.0, *colour);
            }
        }
    }
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| e.to_string())?;
    Ok((bytes, [xmin, xmax, ymin, ymax]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_draws_each_series_in_its_colour() {
        let line: Vec<(f64, f64)> = (0..50).map(|i| (f64::from(i), f64::from(i))).collect();
        let flat: Vec<(f64, f64)> = (0..50).map(|i| (f64::from(i), 10.0)).collect();
        let (png, range) = plot(&[(line, COLOURS[0]), (flat, COLOURS[2])], 200, 100).unwrap();
        assert_eq!(range, [0.0, 49.0, 0.0, 49.0]);
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        let count = |c: [u8; 3]| img.pixels().filter(|p| p.0 == c).count();
        assert!(count(COLOURS[0]) > 100, "{}", count(COLOURS[0]));
        assert!(count(COLOURS[2]) > 100);
        assert!(plot(&[], 10, 10).is_err());
        let s = smooth(&[(0.0, 0.0), (1.0, 3.0), (2.0, 6.0)], 3);
        assert_eq!(s[1].1, 3.0);
        assert_eq!(s[0].1, 1.5);
    }
}
