//! The written `study spatialsv` document: rows, paired differences, families, text-loss
//! curves.

use std::path::Path;

use spatialsv_trainer::mllm::eval::QaEvalReport;

use super::{Row, StudyOut};
use crate::report::document::Document;
use crate::report::plot::{Axes, COLOURS, Series, curve, plot, smooth};

/// The document of a finished study.
pub(super) fn document(
    s: &StudyOut,
    reports: &[Vec<QaEvalReport>],
    rows: &[Row],
    out: &Path,
) -> Document {
    let mut d = Document::default();
    d.heading(
        1,
        format!(
            "spatialsv study: the SpatialSV regime in miniature, seeds {:?}, {} budget",
            s.seeds,
            if s.quick { "quick" } else { "full" }
        ),
    );
    d.paragraph(format!(
        "One synthetic world per seed, split by room (6 held-out test rooms); questions from `spatialsv qa`; every row trains the same small multimodal model for {} steps (batch {}, lr 1e-3, 48x32 images, 4 views) and is scored on the test rooms' questions: multiple choice by exact match, numbers by mean relative accuracy (MRA). {} training questions in all (rows use {}). Test questions per family: {}.",
        s.steps,
        s.batch,
        s.train_questions,
        if s.max_questions == 0 { "all of their rooms'".to_string() } else { format!("at most {}", s.max_questions) },
        s.test_questions_per_family
            .iter()
            .map(|(f, n)| format!("{f} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    d.heading(2, "Rows (mean and sd over seeds)");
    let pm = |m: (f64, f64)| format!("{:.3} ± {:.3}", m.0, m.1);
    d.table(
        &[
            "row",
            "what",
            "MC accuracy",
            "numeric MRA",
            "blind MC",
            "3D probe AbsRel",
            "MC per seed",
        ],
        s.rows
            .iter()
            .map(|r| {
                vec![
                    format!("`{}`", r.row),
                    r.what.clone(),
                    pm(r.mc),
                    pm(r.numeric),
                    pm(r.blind_mc),
                    pm(r.probe_abs_rel),
                    r.per_seed_mc
                        .iter()
                        .map(|v| format!("{v:.3}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                ]
            })
            .collect(),
    );
    d.heading(2, "Paired differences (row - against, same test questions)");
    d.table(
        &[
            "row",
            "against",
            "would mean",
            "MC diff",
            "95% bootstrap",
            "per seed",
            "numeric MRA diff",
            "95% bootstrap",
        ],
        s.pairs
            .iter()
            .map(|p| {
                vec![
                    format!("`{}`", p.row),
                    format!("`{}`", p.against),
                    p.meaning.clone(),
                    format!("{:+.3}", p.mc_diff),
                    format!("[{:+.3}, {:+.3}]", p.mc_interval.0, p.mc_interval.1),
                    p.per_seed_mc_diff
                        .iter()
                        .map(|v| format!("{v:+.3}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                    format!("{:+.3}", p.numeric_diff),
                    format!(
                        "[{:+.3}, {:+.3}]",
                        p.numeric_interval.0, p.numeric_interval.1
                    ),
                ]
            })
            .collect(),
    );
    d.paragraph("Bootstrap: test questions resampled with replacement within each seed (1000 draws), the statistic the mean over seeds of the mean paired difference; an interval that spans 0 is a tie.");
    d.heading(2, "Per family, first seed");
    let mut fam_rows = Vec::new();
    if let Some(first) = reports.first() {
        let families: Vec<String> = first[0].families.keys().cloned().collect();
        for f in families {
            let mut row = vec![f.clone()];
            if let Some(s0) = first[0].families.get(&f) {
                row.push(s0.measure.clone());
                row.push(format!("{:.3}", s0.most_frequent));
                row.push(crate::report::maybe(s0.chance, 3));
            }
            for r in first {
                row.push(
                    r.families
                        .get(&f)
                        .map_or(String::new(), |x| format!("{:.3}", x.model)),
                );
            }
            fam_rows.push(row);
        }
    }
    let mut header: Vec<&str> = vec!["family", "measure", "most frequent", "chance"];
    header.extend(rows.iter().map(|r| r.name));
    d.table(&header, fam_rows);
    // Text-loss curves of the first seed's rows.
    let series: Vec<Series> = rows
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let c = curve(
                &out.join(format!("seed-{}", s.seeds[0]))
                    .join("runs")
                    .join(r.name),
                "loss/text",
            );
            (
                r.name.to_string(),
                smooth(&c, 10),
                COLOURS[k % COLOURS.len()],
            )
        })
        .collect();
    let axes = Axes {
        title: "Text loss on answer tokens (first seed)",
        x: "step",
        y: "cross-entropy (moving average of 10 steps)",
    };
    if let Ok((png, _)) = plot(&series, axes, 720, 360) {
        d.image(
            "study_text_loss.png",
            "Text loss (answer tokens, moving average of 10 steps) of every row, first seed.",
            png,
        );
    }
    d
}
