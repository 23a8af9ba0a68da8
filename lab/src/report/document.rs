//! The report as a document: headings, paragraphs, tables, images and list items, built
//! once and rendered as Markdown ([`super::markdown`]) and as self-contained HTML
//! ([`super::html`]). Text may hold `code` spans in backticks.

/// One block of the report.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A heading of level 1 or 2.
    Heading(u8, String),
    /// A paragraph.
    Paragraph(String),
    /// A list item.
    Item(String),
    /// A table: header cells and rows of cells.
    Table {
        /// Header cells.
        header: Vec<String>,
        /// Rows.
        rows: Vec<Vec<String>>,
    },
    /// An image written beside the Markdown (`report_images/FILE`) and inlined in the HTML,
    /// with its caption.
    Image {
        /// File name under `report_images/`.
        file: String,
        /// What it shows.
        caption: String,
        /// PNG bytes.
        png: Vec<u8>,
    },
}

/// A report: blocks in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
    /// The blocks.
    pub blocks: Vec<Block>,
}

impl Document {
    /// Appends a heading.
    pub fn heading(&mut self, level: u8, text: impl Into<String>) {
        self.blocks.push(Block::Heading(level, text.into()));
    }

    /// Appends a paragraph.
    pub fn paragraph(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Paragraph(text.into()));
    }

    /// Appends a list item.
    pub fn item(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Item(text.into()));
    }

    /// Appends a table.
    pub fn table(&mut self, header: &[&str], rows: Vec<Vec<String>>) {
        self.blocks.push(Block::Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows,
        });
    }

    /// Appends an image.
    pub fn image(&mut self, file: impl Into<String>, caption: impl Into<String>, png: Vec<u8>) {
        self.blocks.push(Block::Image {
            file: file.into(),
            caption: caption.into(),
            png,
        });
    }

    /// The images, for writing beside the Markdown.
    pub fn images(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.blocks.iter().filter_map(|b| match b {
            Block::Image { file, png, .. } => Some((file.as_str(), png.as_slice())),
            _ => None,
        })
    }
}
