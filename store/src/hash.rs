//! Content hashes: BLAKE3 digests as the hex strings the tables store ([`Digest`], with the
//! short form messages show), the labelling a pseudo-label belongs to ([`Labelling`]) and
//! how a user names one ([`Selector`]), and fixed-width keys derived from a hash.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A BLAKE3 digest as lowercase hex (64 characters when we made it; a stored value is kept
/// as read). Identifies a teacher, a labelling config, a data file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Digest(String);

impl Digest {
    /// Characters of the short form ([`Digest::short`]): what messages and reports print.
    pub const SHORT: usize = 12;

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(blake3::hash(bytes).to_hex().to_string())
    }

    /// The digest a hasher has accumulated.
    pub fn finish(h: &blake3::Hasher) -> Digest {
        Digest(h.finalize().to_hex().to_string())
    }

    /// A digest as stored in a table or a file.
    pub fn from_stored(hex: impl Into<String>) -> Digest {
        Digest(hex.into())
    }

    /// The whole hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first [`Digest::SHORT`] characters (all of a shorter stored value).
    pub fn short(&self) -> &str {
        self.prefix(Digest::SHORT)
    }

    /// The first `chars` characters (all of a shorter value): a prefix that names it.
    pub fn prefix(&self, chars: usize) -> &str {
        first_chars(&self.0, chars)
    }

    /// Whether the hex starts with `prefix` (how users name a digest).
    pub fn starts_with(&self, prefix: &str) -> bool {
        self.0.starts_with(prefix)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The short form of a hex digest held as a string: its first [`Digest::SHORT`] characters,
/// or all of a shorter one (never a panic on a short or non-ASCII value).
pub fn short(hex: &str) -> &str {
    first_chars(hex, Digest::SHORT)
}

/// The first `n` characters of `s` (all of a shorter one), cut at a character boundary.
fn first_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The first 8 bytes of the BLAKE3 hash of `data`, little-endian: a seeded draw or a bucket.
pub fn prefix_u64(data: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&blake3::hash(data).as_bytes()[..8]);
    u64::from_le_bytes(b)
}

/// The first 8 bytes of what `h` has accumulated, little-endian.
pub fn hasher_u64(h: &blake3::Hasher) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.finalize().as_bytes()[..8]);
    u64::from_le_bytes(b)
}

/// The first `chars` hex characters (at most 64) of the BLAKE3 hash of `data`: a name part.
pub fn hex_prefix(data: &[u8], chars: usize) -> String {
    let hex = blake3::hash(data).to_hex();
    hex[..chars.min(hex.len())].to_string()
}

/// The first 16 bytes of the BLAKE3 hash of `data`: a key that does not collide in practice.
pub fn prefix_16(data: &[u8]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b.copy_from_slice(&blake3::hash(data).as_bytes()[..16]);
    b
}

/// Which labelling a pseudo-label belongs to: the teacher that made it and the labelling
/// config it was made with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labelling {
    /// The teacher's digest (weights and model config; an ensemble's members in order).
    pub teacher: Digest,
    /// The resolved labelling config's digest.
    pub config: Digest,
}

/// As the pair `[teacher, config]` (how reports have always written it).
impl Serialize for Labelling {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.teacher, &self.config).serialize(s)
    }
}

impl fmt::Display for Labelling {
    /// `teacher 0123456789ab config 0123456789ab`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "teacher {} config {}",
            self.teacher.short(),
            self.config.short()
        )
    }
}

/// How a user names a labelling (`pseudo_labels` in the training configs, `--labels`):
/// `latest` (or empty) for the most recently committed one, a teacher-hash prefix (its newest
/// config), or `TEACHER:CONFIG` prefixes (either may be empty: `:765c7f` is the newest
/// labelling whose config hash starts with 765c7f).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Selector {
    /// The most recently committed labelling.
    #[default]
    Latest,
    /// The newest labelling whose hashes start with these prefixes (`None`: any).
    Prefix {
        /// Teacher-hash prefix.
        teacher: Option<String>,
        /// Config-hash prefix.
        config: Option<String>,
    },
}

impl Selector {
    /// Whether `l` is one this selector names (ignoring which is newest).
    pub fn matches(&self, l: &Labelling) -> bool {
        self.matches_hashes(l.teacher.as_str(), l.config.as_str())
    }

    /// [`Selector::matches`] on the stored hex of a labelling's teacher and config.
    pub fn matches_hashes(&self, teacher_hex: &str, config_hex: &str) -> bool {
        match self {
            Selector::Latest => true,
            Selector::Prefix { teacher, config } => {
                teacher
                    .as_deref()
                    .is_none_or(|p| teacher_hex.starts_with(p))
                    && config.as_deref().is_none_or(|p| config_hex.starts_with(p))
            }
        }
    }
}

impl FromStr for Selector {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Selector, Self::Err> {
        Ok(match s {
            "" | "latest" => Selector::Latest,
            s => match s.split_once(':') {
                Some((t, c)) => Selector::Prefix {
                    teacher: Some(t.to_string()),
                    config: Some(c.to_string()),
                },
                None => Selector::Prefix {
                    teacher: Some(s.to_string()),
                    config: None,
                },
            },
        })
    }
}

impl fmt::Display for Selector {
    /// The text [`Selector::from_str`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Latest => f.write_str("latest"),
            Selector::Prefix {
                teacher,
                config: None,
            } => f.write_str(teacher.as_deref().unwrap_or("")),
            Selector::Prefix { teacher, config } => write!(
                f,
                "{}:{}",
                teacher.as_deref().unwrap_or(""),
                config.as_deref().unwrap_or("")
            ),
        }
    }
}

impl Serialize for Selector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Selector, D::Error> {
        let s = String::deserialize(d)?;
        Ok(s.parse().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms_never_panic_and_digests_are_blake3_hex() {
        let d = Digest::of(b"abc");
        assert_eq!(d.as_str().len(), 64);
        assert_eq!(d.short(), &d.as_str()[..12]);
        assert_eq!(short("abc"), "abc");
        assert_eq!(short(""), "");
        // Multi-byte characters are cut at a character boundary.
        assert_eq!(short("ééééééééééééé"), "éééééééééééé");
        assert_eq!(
            Digest::finish(blake3::Hasher::new().update(b"abc")),
            Digest::of(b"abc")
        );
        assert_eq!(prefix_u64(b"x").to_le_bytes(), prefix_16(b"x")[..8]);
    }

    #[test]
    fn selectors_round_trip_and_match_by_prefix() {
        for text in ["latest", "abc", "abc:12", ":12", "abc:"] {
            let s: Selector = text.parse().unwrap();
            assert_eq!(s.to_string(), text);
        }
        assert_eq!("".parse::<Selector>().unwrap(), Selector::Latest);
        let l = Labelling {
            teacher: Digest::from_stored("abcdef"),
            config: Digest::from_stored("123456"),
        };
        assert!("abc".parse::<Selector>().unwrap().matches(&l));
        assert!(":123".parse::<Selector>().unwrap().matches(&l));
        assert!(!"abd:123".parse::<Selector>().unwrap().matches(&l));
        assert!(!"abc:124".parse::<Selector>().unwrap().matches(&l));
        assert_eq!(l.to_string(), "teacher abcdef config 123456");
    }
}
