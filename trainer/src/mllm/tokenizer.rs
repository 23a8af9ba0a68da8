//! A word-level tokenizer over the question generator's closed vocabulary, saved with every
//! run (`vocab.json`) and also as a Hugging Face `tokenizer.json` (a `WordLevel` model with a
//! `Lowercase` normaliser and a whitespace-then-regex pre-tokeniser), so a PyTorch trainer
//! using the `tokenizers` library gets the same ids.
//!
//! Words: the text is lowercased, split on whitespace, and each piece split into decimal
//! numbers (`2.5`), runs of word characters (`cabinet`, `15`) and single other characters
//! (`?`, `,`, `(`), the regex `\d+\.\d+|\w+|[^\w\s]` applied left to right.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// Padding (id 0).
pub const PAD: &str = "<pad>";
/// Start of the text (id 1).
pub const BOS: &str = "<bos>";
/// Between question and answer (id 2).
pub const ANSWER: &str = "<answer>";
/// End of the answer (id 3).
pub const EOS: &str = "<eos>";
/// Unknown word (id 4): never produced by [`Tokenizer::encode`], which refuses unknown words;
/// present because Hugging Face's `WordLevel` needs one.
pub const UNK: &str = "<unk>";
const SPECIAL: [&str; 5] = [PAD, BOS, ANSWER, EOS, UNK];

/// The regex of the pre-tokeniser, as Hugging Face's `Split` gets it.
pub const WORD_PATTERN: &str = r"\d+\.\d+|\w+|[^\w\s]";

/// The words of `text` (see the module docs).
pub fn words(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    for piece in lower.split_whitespace() {
        let c: Vec<char> = piece.chars().collect();
        let word = |ch: char| ch.is_alphanumeric() || ch == '_';
        let mut i = 0;
        while i < c.len() {
            if c[i].is_ascii_digit() {
                let mut j = i;
                while j < c.len() && c[j].is_ascii_digit() {
                    j += 1;
                }
                if j + 1 < c.len() && c[j] == '.' && c[j + 1].is_ascii_digit() {
                    let mut k = j + 1;
                    while k < c.len() && c[k].is_ascii_digit() {
                        k += 1;
                    }
                    out.push(c[i..k].iter().collect());
                    i = k;
                    continue;
                }
            }
            if word(c[i]) {
                let mut j = i;
                while j < c.len() && word(c[j]) {
                    j += 1;
                }
                out.push(c[i..j].iter().collect());
                i = j;
            } else {
                out.push(c[i].to_string());
                i += 1;
            }
        }
    }
    out
}

/// Word ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tokenizer {
    /// Words by id: the special tokens first, then the vocabulary sorted.
    pub words: Vec<String>,
    #[serde(skip)]
    ids: HashMap<String, usize>,
}

impl Tokenizer {
    /// A tokenizer over every word of `texts` (sorted, so the ids do not depend on order).
    pub fn build<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut set = std::collections::BTreeSet::new();
        for t in texts {
            set.extend(words(t));
        }
        let mut all: Vec<String> = SPECIAL.iter().map(|s| s.to_string()).collect();
        all.extend(set.into_iter().filter(|w| !SPECIAL.contains(&w.as_str())));
        Self::from_words(all)
    }

    fn from_words(words: Vec<String>) -> Self {
        let ids = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i))
            .collect();
        Self { words, ids }
    }

    /// Vocabulary size.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether only the special tokens are known.
    pub fn is_empty(&self) -> bool {
        self.words.len() <= SPECIAL.len()
    }

    /// The id of a special token or word.
    pub fn id(&self, word: &str) -> Option<usize> {
        self.ids.get(word).copied()
    }

    /// Ids of `text`; the words it does not know, when any.
    pub fn encode(&self, text: &str) -> std::result::Result<Vec<usize>, Vec<String>> {
        let mut ids = Vec::new();
        let mut unknown = Vec::new();
        for w in words(text) {
            match self.ids.get(&w) {
                Some(i) => ids.push(*i),
                None if !unknown.contains(&w) => unknown.push(w),
                None => {}
            }
        }
        if unknown.is_empty() {
            Ok(ids)
        } else {
            Err(unknown)
        }
    }

    /// Text of `ids`, special tokens left out, words joined by spaces.
    pub fn decode(&self, ids: &[usize]) -> String {
        ids.iter()
            .filter(|i| **i >= SPECIAL.len())
            .filter_map(|i| self.words.get(*i))
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Writes this tokenizer to `vocab` and its Hugging Face form to `hf` (a run directory's
    /// or an export's `vocab.json` and `tokenizer.json`).
    pub fn save(&self, vocab: &Path, hf: &Path) -> Result<()> {
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |e: std::io::Error| TrainError::Io {
                action: "writing the tokenizer",
                path: p.clone(),
                source: e.into(),
            }
        };
        let json =
            serde_json::to_string_pretty(self).map_err(|e| TrainError::Internal(e.to_string()))?;
        std::fs::write(vocab, json).map_err(io(vocab))?;
        let json = serde_json::to_string_pretty(&self.hugging_face())
            .map_err(|e| TrainError::Internal(e.to_string()))?;
        std::fs::write(hf, json).map_err(io(hf))
    }

    /// Reads a tokenizer written by [`Tokenizer::save`] to `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let path = path.to_path_buf();
        let text = std::fs::read_to_string(&path).map_err(|e| TrainError::Io {
            action: "reading the tokenizer",
            path: path.clone(),
            source: e.into(),
        })?;
        let t: Tokenizer = serde_json::from_str(&text)
            .map_err(|e| TrainError::corrupt(&path, "unreadable tokenizer", e))?;
        if t.words.len() < SPECIAL.len() || t.words[..SPECIAL.len()] != SPECIAL {
            return Err(TrainError::corrupt(
                &path,
                "unreadable tokenizer",
                "the special tokens are not the first five words",
            ));
        }
        Ok(Self::from_words(t.words))
    }

    /// The Hugging Face `tokenizers` JSON of this vocabulary.
    pub fn hugging_face(&self) -> serde_json::Value {
        let vocab: serde_json::Map<String, serde_json::Value> = self
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), serde_json::Value::from(i)))
            .collect();
        let added: Vec<serde_json::Value> = SPECIAL
            .iter()
            .enumerate()
            .map(|(i, w)| {
                serde_json::json!({
                    "id": i, "content": w, "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": true
                })
            })
            .collect();
        serde_json::json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": {"type": "Lowercase"},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "WhitespaceSplit"},
                {"type": "Split", "pattern": {"Regex": WORD_PATTERN}, "behavior": "Isolated", "invert": false}
            ]},
            "post_processor": null,
            "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": UNK}
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_the_pattern() {
        assert_eq!(
            words("In view 2, which point is closer: A at (15, 85) or B? It is 2.5 m."),
            [
                "in", "view", "2", ",", "which", "point", "is", "closer", ":", "a", "at", "(",
                "15", ",", "85", ")", "or", "b", "?", "it", "is", "2.5", "m", "."
            ]
        );
        assert_eq!(
            words("1.2.3 12.ab no_turn"),
            ["1.2", ".", "3", "12", ".", "ab", "no_turn"]
        );
    }

    #[test]
    fn round_trip_and_unknown_words_are_named() {
        let t = Tokenizer::build([
            "Which is closer: the red cabinet or the ball?",
            "2.5",
            "red cabinet",
        ]);
        assert_eq!(&t.words[..5], SPECIAL);
        let ids = t
            .encode("which is closer: the ball or the red cabinet?")
            .unwrap();
        assert_eq!(
            t.decode(&ids),
            "which is closer : the ball or the red cabinet ?"
        );
        assert_eq!(t.decode(&t.encode("2.5").unwrap()), "2.5");
        // Specials are not text.
        let eos = t.id(EOS).unwrap();
        assert_eq!(t.decode(&[t.id(BOS).unwrap(), ids[0], eos]), "which");
        assert_eq!(
            t.encode("which sofa is closer, the green sofa?")
                .unwrap_err(),
            ["sofa", ",", "green"]
        );
        // Saved and loaded: the same ids; the Hugging Face file maps every word to its id.
        let dir = tempfile::tempdir().unwrap();
        let (vocab, hf) = (
            dir.path().join("vocab.json"),
            dir.path().join("tokenizer.json"),
        );
        t.save(&vocab, &hf).unwrap();
        let back = Tokenizer::load(&vocab).unwrap();
        assert_eq!(
            back.encode("the red ball").unwrap(),
            t.encode("the red ball").unwrap()
        );
        let hf: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&hf).unwrap()).unwrap();
        assert_eq!(hf["model"]["vocab"]["cabinet"], t.id("cabinet").unwrap());
        assert_eq!(hf["model"]["type"], "WordLevel");
    }
}
