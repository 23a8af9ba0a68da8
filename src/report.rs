//! The demo's report: `report.md` (images beside it) and a self-contained `report.html`
//! (images inlined as data URIs), with the metrics table, pseudo-label quality, loss curves
//! drawn here as PNG, depth/confidence images and links to the PLY point clouds.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use spatialsv_labeler::quality::LabelQuality;
use spatialsv_pipeline::Dataset;
use spatialsv_schemas::{Columns, Table};
use spatialsv_trainer::eval::EvalReport;

use crate::commands::CliError;

/// One step of the demo as it ran.
#[derive(Debug, Clone)]
pub struct Step {
    /// What it did.
    pub name: String,
    /// The equivalent command line.
    pub command: String,
    /// Wall time.
    pub seconds: f64,
    /// Finished by an earlier run.
    pub skipped: bool,
}

/// Everything the report shows.
#[derive(Debug)]
pub struct Report {
    /// Seed of the run.
    pub seed: u64,
    /// `--quick`.
    pub quick: bool,
    /// Teacher training steps.
    pub teacher_steps: usize,
    /// Student and baseline training steps.
    pub student_steps: usize,
    /// Evaluation of each model on the test split.
    pub evals: Vec<(String, EvalReport)>,
    /// Pseudo-label quality.
    pub quality: Option<LabelQuality>,
    /// Scene exported.
    pub scene: String,
    /// Run directories by model.
    pub runs: Vec<(String, PathBuf)>,
    /// Export directories by model.
    pub exports: Vec<(String, PathBuf)>,
    /// Steps with timings.
    pub steps: Vec<Step>,
    /// Total wall time.
    pub seconds: f64,
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(A[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// (step, value) of `name` in a run's metrics, in step order.
fn curve(run: &Path, name: &str) -> Vec<(f64, f64)> {
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
fn smooth(points: &[(f64, f64)], k: usize) -> Vec<(f64, f64)> {
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
/// baseline_labeled, student.
pub const COLOURS: [[u8; 3]; 4] = [
    [31, 119, 180],
    [255, 127, 14],
    [148, 103, 189],
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

fn f(v: f64) -> String {
    format!("{v:.4}")
}

/// Writes `report.md`, `report.html` and the images they show into `out`.
pub fn write_report(out: &Path, r: &Report) -> Result<(), CliError> {
    let img_dir = out.join("report_images");
    std::fs::create_dir_all(&img_dir)
        .map_err(|e| CliError::User(format!("cannot create ({e}): {}", img_dir.display())))?;
    let write = |name: &str, bytes: &[u8]| -> Result<(), CliError> {
        let p = img_dir.join(name);
        std::fs::write(&p, bytes)
            .map_err(|e| CliError::User(format!("cannot write ({e}): {}", p.display())))
    };
    // Loss curves (smoothed total loss) of the three runs, and the depth term alone.
    let mut images: Vec<(String, String, Vec<u8>)> = Vec::new();
    // Curves in COLOURS order: teacher, baseline, baseline_labeled, student.
    for (metric, file, caption) in [
        (
            "loss/total",
            "loss_total.png",
            "Total training loss (moving average of 10 steps)",
        ),
        (
            "loss/depth",
            "loss_depth.png",
            "Confidence-weighted depth loss (moving average of 10 steps)",
        ),
    ] {
        let series: Vec<Series> = r
            .runs
            .iter()
            .zip(COLOURS)
            .map(|((_, dir), c)| (smooth(&curve(dir, metric), 10), c))
            .filter(|(s, _)| !s.is_empty())
            .collect();
        if let Ok((png, [x0, x1, y0, y1])) = plot(&series, 640, 300) {
            write(file, &png)?;
            images.push((
                file.to_string(),
                format!("{caption}, steps {x0:.0} to {x1:.0} left to right, loss {y0:.3} to {y1:.3} bottom to top (grid at quarters): teacher (blue, steps 1-{}); baseline (orange), baseline_labeled (purple) and the semi-supervised student (green), fine-tuned from the teacher for {} steps and counted from their own start. The student's loss includes its pseudo-labelled clips.", r.teacher_steps, r.student_steps),
                png,
            ));
        }
    }
    // Depth / confidence panels of the first frame of the exported scene.
    let mut panels: Vec<(String, String, Vec<u8>)> = Vec::new();
    for (name, dir) in &r.exports {
        let frames = dir.join("frames");
        let mut pngs: Vec<PathBuf> = std::fs::read_dir(&frames)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        pngs.sort_by_key(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<i64>().ok())
                .unwrap_or(i64::MAX)
        });
        if let Some(p) = pngs.first()
            && let Ok(small) = image::open(p)
        {
            // Three times larger, nearest neighbour, so the maps are legible on a page.
            let big = small.resize(
                small.width() * 3,
                small.height() * 3,
                image::imageops::FilterType::Nearest,
            );
            let mut bytes = Vec::new();
            big.write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .map_err(|e| CliError::Other(e.into()))?;
            let file = format!("frame_{name}.png");
            write(&file, &bytes)?;
            panels.push((
                file,
                format!("{name}, {} frame {}: image | true depth | predicted depth | predicted confidence", r.scene, p.file_stem().and_then(|s| s.to_str()).unwrap_or("?")),
                bytes,
            ));
        }
    }

    let mut md = String::new();
    let _ = writeln!(md, "# spatialsv demo report\n");
    let _ = writeln!(
        md,
        "Seed {}, {} budget: teacher {} steps; the semi-supervised student and two supervised-only baselines fine-tuned from the teacher for {} steps each (same schedule and seed). `student`: 1 labeled + 2 pseudo-labelled clips per batch; `baseline`: 3 labeled clips per batch (the same compute); `baseline_labeled`: the student's 1 labeled clip per batch alone. Total time {:.1} min. Everything ran on the synthetic world; metrics are on the held-out `test` scenes, which no model trained on.\n",
        r.seed,
        if r.quick { "quick" } else { "full" },
        r.teacher_steps,
        r.student_steps,
        r.seconds / 60.0
    );
    let _ = writeln!(md, "## Held-out scenes\n");
    let _ = writeln!(
        md,
        "| model | AbsRel | delta1 | AbsRel (scale+shift) | RRA@15 | RTA@15 | AUC@30 | Chamfer (m) |\n|---|---|---|---|---|---|---|---|"
    );
    for (name, e) in &r.evals {
        let o = &e.overall;
        let _ = writeln!(
            md,
            "| {name} | {} | {:.3} | {} | {:.3} | {:.3} | {:.3} | {} |",
            f(o.abs_rel),
            o.delta1,
            f(o.abs_rel_lsq),
            o.rra15,
            o.rta15,
            o.auc30,
            f(o.chamfer)
        );
    }
    if let Some((_, e)) = r.evals.first() {
        let _ = writeln!(
            md,
            "| trivial baselines | {} (training median depth) | | | | | {:.3} (identity motion) | |",
            f(e.overall.baseline_abs_rel),
            e.overall.baseline_auc30
        );
    }
    if let Some((_, st)) = r.evals.iter().find(|(n, _)| n == "student") {
        for (name, e) in r.evals.iter().filter(|(n, _)| n.starts_with("baseline")) {
            let (a, b) = (&st.overall, &e.overall);
            let wins = [
                ("AbsRel", a.abs_rel < b.abs_rel),
                ("delta1", a.delta1 > b.delta1),
                ("AUC@30", a.auc30 > b.auc30),
                ("Chamfer", a.chamfer < b.chamfer),
            ];
            let better: Vec<&str> = wins.iter().filter(|w| w.1).map(|w| w.0).collect();
            let _ = writeln!(
                md,
                "\nstudent against {name}: better on {} of 4 ({})",
                better.len(),
                if better.is_empty() {
                    "none".to_string()
                } else {
                    better.join(", ")
                }
            );
        }
    }
    let _ = writeln!(
        md,
        "\nDepth metrics are median-scaled (scale+shift: least squares); cameras come from the predicted ray maps; Chamfer after Umeyama Sim(3) alignment.\n"
    );
    if let Some(q) = &r.quality {
        let _ = writeln!(md, "## Pseudo-labels against the hidden ground truth\n");
        let _ = writeln!(md, "Pseudo-labels of {}.\n", q.summary());
        let _ = writeln!(
            md,
            "| pixels | count | AbsRel | delta1 |\n|---|---|---|---|"
        );
        for (name, d) in q.depth_rows() {
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {:.3} |",
                d.pixels,
                f(d.abs_rel),
                d.delta1
            );
        }
        let _ = writeln!(
            md,
            "\n| frames | count | rotation error (deg) | direction error (deg) |\n|---|---|---|---|"
        );
        for (name, p) in q.pose_rows() {
            let _ = writeln!(
                md,
                "| {name} | {} | {:.2} | {:.2} |",
                p.frames, p.rotation_deg, p.direction_deg
            );
        }
        for (reason, n) in &q.reject_reasons {
            let _ = writeln!(md, "\nRejected by {reason}: {n} frames.");
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(md, "## Training curves\n");
    for (file, caption, _) in &images {
        let _ = writeln!(md, "![{caption}](report_images/{file})\n\n{caption}\n");
    }
    let _ = writeln!(md, "## What the students believe\n");
    for (file, caption, _) in &panels {
        let _ = writeln!(md, "![{caption}](report_images/{file})\n\n{caption}\n");
    }
    for (name, dir) in &r.exports {
        let _ = writeln!(
            md,
            "- {name}: point clouds `{0}/pred.ply` (Sim(3)-aligned prediction) and `{0}/gt.ply` (truth); trajectories `{0}/trajectory_{{gt,pred}}.txt`",
            dir.display()
        );
    }
    let _ = writeln!(
        md,
        "\n## Steps\n\n| step | time (s) | command |\n|---|---|---|"
    );
    for s in &r.steps {
        let _ = writeln!(
            md,
            "| {} | {} | `{}` |",
            s.name,
            if s.skipped {
                "done earlier".to_string()
            } else {
                format!("{:.1}", s.seconds)
            },
            s.command
        );
    }
    let md_path = out.join("report.md");
    std::fs::write(&md_path, &md)
        .map_err(|e| CliError::User(format!("cannot write ({e}): {}", md_path.display())))?;

    // HTML: the same content, images inlined.
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>spatialsv demo report</title><style>body{font-family:sans-serif;max-width:980px;margin:2em auto;line-height:1.4}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}td:first-child{text-align:left}img{max-width:100%;border:1px solid #ddd}code{background:#f4f4f4;padding:1px 3px}</style></head><body>\n",
    );
    let mut in_table = false;
    for line in md.lines() {
        if line.starts_with('|') {
            if line.starts_with("|---") {
                continue;
            }
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            let tag = if in_table { "td" } else { "th" };
            if !in_table {
                html.push_str("<table>");
                in_table = true;
            }
            html.push_str("<tr>");
            for c in cells {
                let _ = write!(html, "<{tag}>{}</{tag}>", escape(c));
            }
            html.push_str("</tr>\n");
            continue;
        }
        if in_table {
            html.push_str("</table>\n");
            in_table = false;
        }
        if let Some(h) = line.strip_prefix("## ") {
            let _ = writeln!(html, "<h2>{}</h2>", escape(h));
        } else if let Some(h) = line.strip_prefix("# ") {
            let _ = writeln!(html, "<h1>{}</h1>", escape(h));
        } else if let Some(rest) = line.strip_prefix("![") {
            let file = rest
                .rsplit_once("](report_images/")
                .map(|(_, f)| f.trim_end_matches(')'));
            if let Some((_, _, bytes)) = images
                .iter()
                .chain(&panels)
                .find(|(name, _, _)| Some(name.as_str()) == file)
            {
                let _ = writeln!(
                    html,
                    "<img src=\"data:image/png;base64,{}\">",
                    base64(bytes)
                );
            }
        } else if let Some(item) = line.strip_prefix("- ") {
            let _ = writeln!(html, "<p>&bull; {}</p>", escape(item));
        } else if !line.trim().is_empty() {
            let _ = writeln!(html, "<p>{}</p>", escape(line));
        }
    }
    if in_table {
        html.push_str("</table>\n");
    }
    html.push_str("</body></html>\n");
    let html_path = out.join("report.html");
    std::fs::write(&html_path, html)
        .map_err(|e| CliError::User(format!("cannot write ({e}): {}", html_path.display())))?;
    Ok(())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('`', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
    }

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
