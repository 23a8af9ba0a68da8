//! The Markdown rendering of a [`Document`] (images referenced under `report_images/`).

use std::fmt::Write as _;

use super::document::{Block, Document};

/// The document as Markdown.
pub fn render(doc: &Document) -> String {
    let mut md = String::new();
    for block in &doc.blocks {
        match block {
            Block::Heading(level, text) => {
                let _ = writeln!(md, "{} {text}\n", "#".repeat(usize::from(*level)));
            }
            Block::Paragraph(text) => {
                let _ = writeln!(md, "{text}\n");
            }
            Block::Item(text) => {
                let _ = writeln!(md, "- {text}");
            }
            Block::Table { header, rows } => {
                let _ = writeln!(md, "| {} |", header.join(" | "));
                let _ = writeln!(md, "|{}", "---|".repeat(header.len()));
                for row in rows {
                    let _ = writeln!(md, "| {} |", row.join(" | "));
                }
                md.push('\n');
            }
            Block::Image { file, caption, .. } => {
                let _ = writeln!(md, "![{caption}](report_images/{file})\n\n{caption}\n");
            }
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_render_as_markdown() {
        let mut d = Document::default();
        d.heading(1, "Title");
        d.paragraph("Some `code`.");
        d.table(&["a", "b"], vec![vec!["1".into(), "2".into()]]);
        d.item("one");
        d.image("x.png", "A plot", vec![1, 2]);
        assert_eq!(
            render(&d),
            "# Title\n\nSome `code`.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- one\n![A plot](report_images/x.png)\n\nA plot\n\n"
        );
    }
}
