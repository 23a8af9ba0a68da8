//! Loss curves: a run's metrics read back from its dataset, smoothed, and drawn as PNG line
//! plots with `plotters` (axes with ticks and labels, a title and a legend), text in the
//! bundled DejaVu Sans (`assets/fonts/`, its licence beside it), so plots render the same on
//! any machine, fonts installed or not.

use std::path::Path;

use spatialsv_schemas::{Columns, Table};
use spatialsv_store::Dataset;

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

/// One curve to plot: its name in the legend, (x, y) points and an RGB colour.
pub type Series = (String, Vec<(f64, f64)>, [u8; 3]);

/// What a plot shows besides its curves.
#[derive(Debug, Clone, Copy)]
pub struct Axes<'a> {
    /// Title above the plot.
    pub title: &'a str,
    /// Label of the x axis.
    pub x: &'a str,
    /// Label of the y axis.
    pub y: &'a str,
}

/// The bundled font, registered with plotters once.
fn register_font() -> Result<(), String> {
    static ONCE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        plotters::style::register_font(
            "sans-serif",
            plotters::style::FontStyle::Normal,
            include_bytes!("../../../assets/fonts/DejaVuSans.ttf"),
        )
        .map_err(|_| "the bundled font does not load".to_string())
    })
    .clone()
}

/// Colours of the curves, in the order of `Report::runs` (teacher, baseline,
/// baseline_labeled, baseline_strong, student), then more for longer lists (tab10 and one).
pub const COLOURS: [[u8; 3]; 11] = [
    [31, 119, 180],
    [255, 127, 14],
    [148, 103, 189],
    [140, 86, 75],
    [44, 160, 44],
    [214, 39, 40],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
    [31, 31, 120],
];

/// Draws line plots of `series` (x, y) on one set of axes, `w` x `h` pixels, with ticks,
/// axis labels, a title and a legend. Returns PNG bytes and the data range
/// (x min, x max, y min, y max).
pub fn plot(
    series: &[Series],
    axes: Axes<'_>,
    w: u32,
    h: u32,
) -> Result<(Vec<u8>, [f64; 4]), String> {
    use plotters::prelude::*;
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if all.is_empty() {
        return Err("nothing to plot".into());
    }
    register_font()?;
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in &all {
        xmin = xmin.min(*x);
        xmax = xmax.max(*x);
        ymin = ymin.min(*y);
        ymax = ymax.max(*y);
    }
    let range = [xmin, xmax, ymin, ymax];
    if xmax <= xmin {
        xmax = xmin + 1.0;
    }
    if ymax <= ymin {
        ymax = ymin + 1.0;
    }
    let pad = 0.04 * (ymax - ymin);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(axes.title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(56)
            .build_cartesian_2d(xmin..xmax, (ymin - pad)..(ymax + pad))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(axes.x)
            .y_desc(axes.y)
            .label_style(("sans-serif", 12))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| err(&e))?;
        for (name, points, c) in series {
            let colour = RGBColor(c[0], c[1], c[2]);
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(|e| err(&e))?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .label_font(("sans-serif", 12))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    let img = image::RgbImage::from_raw(w, h, buf).ok_or("plot buffer of the wrong size")?;
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| e.to_string())?;
    Ok((bytes, range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_draws_each_series_in_its_colour_with_text() {
        let line: Vec<(f64, f64)> = (0..50).map(|i| (f64::from(i), f64::from(i))).collect();
        let flat: Vec<(f64, f64)> = (0..50).map(|i| (f64::from(i), 10.0)).collect();
        let axes = Axes {
            title: "Loss",
            x: "step",
            y: "loss",
        };
        let series = [
            ("rising".to_string(), line, COLOURS[0]),
            ("flat".to_string(), flat, COLOURS[2]),
        ];
        let (png, range) = plot(&series, axes, 400, 240).unwrap();
        if let Ok(path) = std::env::var("SPATIALSV_PLOT_SAMPLE") {
            // To look at one: SPATIALSV_PLOT_SAMPLE=/tmp/p.png cargo test --bin spatialsv plot
            std::fs::write(path, &png).unwrap();
        }
        assert_eq!(range, [0.0, 49.0, 0.0, 49.0]);
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        let count = |c: [u8; 3]| img.pixels().filter(|p| p.0 == c).count();
        assert!(count(COLOURS[0]) > 100, "{}", count(COLOURS[0]));
        assert!(count(COLOURS[2]) > 100);
        // Text (title, ticks, legend) is drawn: anti-aliased dark grey pixels outside the
        // curves' colours, in the title band above the plot.
        let dark_in_title = (0..img.width())
            .flat_map(|x| (0..18).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|v| *v < 100))
            .count();
        assert!(
            dark_in_title > 20,
            "no title drawn ({dark_in_title} dark pixels)"
        );
        assert!(plot(&[], axes, 10, 10).is_err());
        let s = smooth(&[(0.0, 0.0), (1.0, 3.0), (2.0, 6.0)], 3);
        assert_eq!(s[1].1, 3.0);
        assert_eq!(s[0].1, 1.5);
    }
}
