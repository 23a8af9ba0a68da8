//! The self-contained HTML rendering of a [`Document`]: images inlined as data URIs, `code`
//! spans as `<code>`.

use std::fmt::Write as _;

use super::document::{Block, Document};

const HEAD: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>spatialsv demo report</title><style>body{font-family:sans-serif;max-width:980px;margin:2em auto;line-height:1.4}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}td:first-child{text-align:left}img{max-width:100%;border:1px solid #ddd}code{background:#f4f4f4;padding:1px 3px}</style></head><body>\n";

/// The document as one HTML page.
pub fn render(doc: &Document) -> String {
    let mut html = String::from(HEAD);
    for block in &doc.blocks {
        match block {
            Block::Heading(level, text) => {
                let _ = writeln!(html, "<h{level}>{}</h{level}>", inline(text));
            }
            Block::Paragraph(text) => {
                let _ = writeln!(html, "<p>{}</p>", inline(text));
            }
            Block::Item(text) => {
                let _ = writeln!(html, "<p>&bull; {}</p>", inline(text));
            }
            Block::Table { header, rows } => {
                html.push_str("<table><tr>");
                for h in header {
                    let _ = write!(html, "<th>{}</th>", inline(h));
                }
                html.push_str("</tr>\n");
                for row in rows {
                    html.push_str("<tr>");
                    for c in row {
                        let _ = write!(html, "<td>{}</td>", inline(c));
                    }
                    html.push_str("</tr>\n");
                }
                html.push_str("</table>\n");
            }
            Block::Image { caption, png, .. } => {
                let _ = writeln!(
                    html,
                    "<img src=\"data:image/png;base64,{}\" alt=\"{}\">\n<p>{}</p>",
                    base64(png),
                    escape(caption),
                    inline(caption)
                );
            }
        }
    }
    html.push_str("</body></html>\n");
    html
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Escaped text with `code` spans (backticks) as `<code>`.
fn inline(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", escape(part));
        } else {
            out.push_str(&escape(part));
        }
    }
    out
}

/// Standard base64 (RFC 4648, with padding), from the `base64` crate.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
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
    fn blocks_render_as_html_with_code_and_inlined_images() {
        let mut d = Document::default();
        d.heading(2, "A <b>");
        d.table(
            &["step", "command"],
            vec![vec!["x".into(), "`a && b`".into()]],
        );
        d.image("p.png", "cap", b"foo".to_vec());
        let html = render(&d);
        assert!(html.contains("<h2>A &lt;b&gt;</h2>"), "{html}");
        assert!(
            html.contains("<td><code>a &amp;&amp; b</code></td>"),
            "{html}"
        );
        assert!(
            html.contains("src=\"data:image/png;base64,Zm9v\""),
            "{html}"
        );
    }
}
