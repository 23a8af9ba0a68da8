//! Typed TOML configs. Every stage has one config type (fields documented, defaults in one
//! place, unknown keys refused); files in `configs/` override the defaults, and the resolved
//! config is saved beside every artifact.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Parses `text` (from `origin`, for messages) into `T`, refusing unknown keys with one line
/// that names the file, the line and the key.
pub fn parse_toml<T: DeserializeOwned>(text: &str, origin: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let msg = e.message().replace('\n', " ");
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .map(|l| format!(" (line {l})"))
            .unwrap_or_default();
        Error::User(format!("bad config{line}: {msg}: {origin}"))
    })
}

/// Reads and parses a TOML config file.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::User(format!("cannot read config ({e}): {}", path.display())))?;
    parse_toml(&text, &path.display().to_string())
}

/// The resolved config as TOML, for saving beside artifacts.
pub fn to_toml<T: Serialize>(config: &T) -> Result<String> {
    toml::to_string_pretty(config).map_err(|e| Error::Internal(format!("serialising config: {e}")))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Demo {
        /// A documented field.
        steps: u32,
        rate: f64,
    }

    impl Default for Demo {
        fn default() -> Self {
            Self {
                steps: 10,
                rate: 0.5,
            }
        }
    }

    #[test]
    fn defaults_fill_missing_keys() {
        let d: Demo = parse_toml("steps = 3\n", "t.toml").unwrap();
        assert_eq!(
            d,
            Demo {
                steps: 3,
                rate: 0.5
            }
        );
        let round: Demo = parse_toml(&to_toml(&d).unwrap(), "round").unwrap();
        assert_eq!(round, d);
    }

    #[test]
    fn unknown_key_names_key_line_and_file() {
        let err = parse_toml::<Demo>("steps = 3\nrat = 0.1\n", "configs/x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `rat`"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        assert!(err.ends_with("configs/x.toml"), "{err}");
        assert!(!err.contains('\n'));
    }
}
