//! [`Invalid`]: a value that fails a check, and why.

use std::fmt;

/// A value that fails a check, with why in one line. It does not say where the value came
/// from: the caller adds the file, row or key (and decides whose fault it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl Invalid {
    /// Whether the reason mentions `text`.
    pub fn contains(&self, text: &str) -> bool {
        self.0.contains(text)
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

impl From<&str> for Invalid {
    fn from(why: &str) -> Self {
        Invalid(why.to_string())
    }
}

impl From<String> for Invalid {
    fn from(why: String) -> Self {
        Invalid(why)
    }
}
