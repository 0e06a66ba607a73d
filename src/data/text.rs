//! Text for character-level language modelling: the shipped English text
//! (`data/licenses.txt`) or a UTF-8 file of one's own ([`vocabulary`], [`Text::load`]).
//!
//! A file is read in blocks of 1 MiB and decoded as it streams: its bytes are
//! never held whole, and its characters are kept as 16-bit token ids (a
//! vocabulary of at most 65,536 characters), two bytes a character.

use std::io::Read;
use std::path::Path;

use super::Rng;
use crate::error::{Error, Result};

const RAW: &str = include_str!("../../data/licenses.txt");

/// The most distinct characters a text may have (token ids are 16-bit).
pub const MAX_VOCAB: usize = 1 << 16;

/// Bytes read from a file at a time.
const BLOCK: usize = 1 << 20;

/// A text as token ids over its own character vocabulary.
#[derive(Debug, Clone)]
pub struct Text {
    /// Every distinct character, sorted; a token id indexes this.
    pub vocab: Vec<char>,
    /// The text as token ids.
    pub tokens: Vec<u16>,
}

/// A text file of one's own (`--data text:PATH`): where it is, how much of its
/// tail is held out, and its vocabulary (stored with the run, so sampling and
/// evaluation need not read the file again).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TextFile {
    /// The file: its absolute path (as given in runs from before paths were made absolute).
    pub path: String,
    /// The fraction of the text, at its end, held out for evaluation.
    pub eval_frac: f64,
    /// Every distinct character of the file, sorted (token `i` is the `i`-th).
    pub vocab: String,
    /// The file's [`super::fingerprint`] when the run started (`None` in runs
    /// from before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl TextFile {
    /// Reads `path` once to find its vocabulary.
    pub fn scan(path: &str, eval_frac: f64) -> Result<TextFile> {
        check_eval_frac(eval_frac)?;
        super::check_regular(Path::new(path))?;
        let vocab: String = vocabulary(Path::new(path))?.into_iter().collect();
        Ok(TextFile {
            path: path.to_string(),
            eval_frac,
            vocab,
            fingerprint: Some(super::fingerprint(Path::new(path))?),
        })
    }

    /// Loads the file over the stored vocabulary (an error if it has changed:
    /// its fingerprint, or a character not in it) and checks that it has at
    /// least two characters.
    pub fn load(&self) -> Result<Text> {
        super::check_fingerprint(&self.path, self.fingerprint.as_deref())?;
        let vocab: Vec<char> = self.vocab.chars().collect();
        let text = Text::load(Path::new(&self.path), &vocab)?;
        let present = vocabulary_of(&text);
        if present != vocab.len() {
            return Err(Error::invalid(
                &self.path,
                format!(
                    "the file has changed: {present} distinct characters, the run's vocabulary has {}",
                    vocab.len()
                ),
            ));
        }
        Ok(text)
    }
}

/// Distinct token ids that occur in `text`.
fn vocabulary_of(text: &Text) -> usize {
    let mut seen = vec![false; text.vocab.len()];
    text.tokens.iter().for_each(|&t| seen[t as usize] = true);
    seen.iter().filter(|&&s| s).count()
}

/// Checks a held-out fraction (`--eval-frac`): in (0, 1).
pub fn check_eval_frac(f: f64) -> Result<()> {
    if f > 0.0 && f < 1.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            "eval-frac",
            format!("{f} is not between 0 and 1 (exclusive)"),
        ))
    }
}

/// Calls `each` with every character of the UTF-8 file at `path`, in order,
/// reading it in blocks. Errors name the file, and the line and column (in
/// characters, from 1) of an invalid byte sequence or of a character `each`
/// refuses (its message follows).
pub fn for_each_char(path: &Path, mut each: impl FnMut(char) -> std::result::Result<(), String>) -> Result<()> {
    let name = path.display().to_string();
    let io = |source| Error::Io {
        path: name.clone(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut buf = vec![0u8; BLOCK];
    let (mut carry, mut offset) = (0usize, 0u64);
    let (mut line, mut column) = (1u64, 1u64);
    loop {
        let n = loop {
            match file.read(&mut buf[carry..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other.map_err(io)?,
            }
        };
        let (end, eof) = (carry + n, n == 0);
        let mut at = 0usize;
        let mut next_carry = 0usize;
        for chunk in buf[..end].utf8_chunks() {
            for c in chunk.valid().chars() {
                each(c).map_err(|msg| Error::invalid(&name, format!("line {line}, column {column}: {msg}")))?;
                if c == '\n' {
                    line += 1;
                    column = 1;
                } else {
                    column += 1;
                }
            }
            at += chunk.valid().len();
            let bad = chunk.invalid();
            if bad.is_empty() {
                continue;
            }
            if !eof && at + bad.len() == end && bad.len() < 4 {
                // A character cut by the block's end: decoded with the next block.
                next_carry = bad.len();
                break;
            }
            return Err(Error::invalid(
                &name,
                format!(
                    "line {line}, column {column}: invalid UTF-8 (byte 0x{:02x} at byte offset {} of the file)",
                    bad[0],
                    offset + at as u64
                ),
            ));
        }
        if eof {
            return Ok(());
        }
        buf.copy_within(end - next_carry..end, 0);
        offset += (end - next_carry) as u64;
        carry = next_carry;
    }
}

/// Every distinct character of the UTF-8 file at `path`, sorted (one pass, in
/// constant memory). An empty file, a file of one distinct character, or one
/// of more than [`MAX_VOCAB`] is refused.
pub fn vocabulary(path: &Path) -> Result<Vec<char>> {
    let mut ascii = [false; 128];
    let mut other = std::collections::BTreeSet::new();
    for_each_char(path, |c| {
        if c.is_ascii() {
            ascii[c as usize] = true;
        } else {
            other.insert(c);
        }
        Ok(())
    })?;
    let vocab: Vec<char> = (0..128u8)
        .filter(|&b| ascii[b as usize])
        .map(char::from)
        .chain(other)
        .collect();
    let name = path.display().to_string();
    match vocab.len() {
        0 => Err(Error::invalid(name, "line 1, column 1: the file is empty")),
        1 => Err(Error::invalid(
            name,
            format!(
                "the file has one distinct character ({:?}): a model needs at least two",
                vocab[0]
            ),
        )),
        n if n > MAX_VOCAB => Err(Error::invalid(
            name,
            format!("the file has {n} distinct characters, at most {MAX_VOCAB} are supported"),
        )),
        _ => Ok(vocab),
    }
}

impl Text {
    /// The shipped corpus.
    pub fn shipped() -> Text {
        Text::new(RAW)
    }

    /// Tokenizes `text` by character (at most [`MAX_VOCAB`] distinct ones).
    pub fn new(text: &str) -> Text {
        let mut vocab: Vec<char> = text.chars().collect();
        vocab.sort_unstable();
        vocab.dedup();
        assert!(vocab.len() <= MAX_VOCAB, "more than {MAX_VOCAB} distinct characters");
        let tokens = text
            .chars()
            .map(|c| vocab.binary_search(&c).expect("every char is in the vocabulary") as u16)
            .collect();
        Text { vocab, tokens }
    }

    /// Reads the UTF-8 file at `path` as token ids over `vocab` (sorted, at
    /// most [`MAX_VOCAB`] characters), streaming: a character not in `vocab` is
    /// an error naming its line and column.
    pub fn load(path: &Path, vocab: &[char]) -> Result<Text> {
        super::check_regular(path)?;
        if vocab.len() > MAX_VOCAB {
            return Err(Error::invalid(
                "vocab",
                format!("{} characters, at most {MAX_VOCAB} are supported", vocab.len()),
            ));
        }
        let mut ascii = [u16::MAX; 128];
        for (i, &c) in vocab.iter().enumerate().filter(|(_, c)| c.is_ascii()) {
            ascii[c as usize] = i as u16;
        }
        let size = std::fs::metadata(path).map_or(0, |m| m.len() as usize);
        let mut tokens = Vec::with_capacity(size);
        for_each_char(path, |c| {
            let id = if c.is_ascii() && ascii[c as usize] != u16::MAX {
                Some(ascii[c as usize])
            } else {
                vocab.binary_search(&c).ok().map(|i| i as u16)
            };
            match id {
                Some(id) => {
                    tokens.push(id);
                    Ok(())
                }
                None => Err(format!("character {c:?} is not in the model's vocabulary")),
            }
        })?;
        tokens.shrink_to_fit();
        Ok(Text {
            vocab: vocab.to_vec(),
            tokens,
        })
    }

    /// The token ids of `s`; a character not in the vocabulary is an error naming it.
    pub fn encode(&self, s: &str) -> Result<Vec<u32>> {
        s.chars()
            .enumerate()
            .map(|(i, c)| {
                self.vocab.binary_search(&c).map(|id| id as u32).map_err(|_| {
                    Error::invalid(
                        "prompt",
                        format!("character {} ({c:?}) is not in the model's vocabulary", i + 1),
                    )
                })
            })
            .collect()
    }

    /// Entropy of the character frequencies, in nats: the loss of the best model
    /// that ignores context.
    pub fn unigram_entropy(&self) -> f64 {
        let mut counts = vec![0usize; self.vocab.len()];
        self.tokens.iter().for_each(|&t| counts[t as usize] += 1);
        let n = self.tokens.len() as f64;
        counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / n;
                -p * p.ln()
            })
            .sum()
    }

    /// Splits off the last `fraction` of the text for evaluation.
    pub fn split(&self, fraction: f64) -> (Text, Text) {
        self.clone().into_split(fraction)
    }

    /// [`Text::split`] without a copy of the training part: the tail is moved
    /// out, the rest keeps this text's tokens.
    pub fn into_split(mut self, fraction: f64) -> (Text, Text) {
        let cut = ((1.0 - fraction) * self.tokens.len() as f64) as usize;
        let test = Text {
            vocab: self.vocab.clone(),
            tokens: self.tokens.split_off(cut),
        };
        (self, test)
    }

    /// `batch` random windows of `context + 1` tokens: inputs are the first
    /// `context`, targets the last `context` (shifted by one). Row-major `[batch, context]`.
    pub fn batch(&self, batch: usize, context: usize, rng: &mut Rng) -> (Vec<u32>, Vec<u32>) {
        let mut inputs = Vec::with_capacity(batch * context);
        let mut targets = Vec::with_capacity(batch * context);
        for _ in 0..batch {
            let start = rng.below(self.tokens.len() - context - 1);
            inputs.extend(self.tokens[start..start + context].iter().map(|&t| u32::from(t)));
            targets.extend(
                self.tokens[start + 1..start + context + 1]
                    .iter()
                    .map(|&t| u32::from(t)),
            );
        }
        (inputs, targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_text_round_trips() {
        let t = Text::shipped();
        assert!(t.tokens.len() > 100_000);
        assert!(t.vocab.len() < 128, "{}", t.vocab.len());
        let h = t.unigram_entropy();
        assert!(h > 2.5 && h < 3.5, "unigram entropy {h} nats");
        let (x, y) = t.batch(2, 8, &mut Rng::new(1));
        assert_eq!(&x[1..8], &y[..7]);
    }

    fn temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sfnap-text-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn a_file_streams_across_blocks_with_its_own_vocabulary() {
        // Multi-byte characters straddle the 1 MiB block boundaries.
        let text: String = "héllo wörld €\n".repeat(BLOCK / 7);
        let path = temp("big.txt", text.as_bytes());
        let spec = TextFile::scan(path.to_str().unwrap(), 0.1).unwrap();
        let expected = Text::new(&text);
        assert_eq!(spec.vocab.chars().collect::<Vec<_>>(), expected.vocab);
        let loaded = spec.load().unwrap();
        assert_eq!(loaded.tokens, expected.tokens);
        let (train, test) = loaded.into_split(0.1);
        assert_eq!(train.tokens.len() + test.tokens.len(), expected.tokens.len());
        assert_eq!(test.tokens[..], expected.tokens[train.tokens.len()..]);
        assert_eq!(expected.encode("wö").unwrap().len(), 2);
        let m = expected.encode("wx").unwrap_err().to_string();
        assert_eq!(m, "prompt: character 2 ('x') is not in the model's vocabulary");
    }

    #[test]
    fn bad_files_name_line_and_column() {
        let path = temp("bad.txt", b"ab\ncd\xffe");
        let m = vocabulary(&path).unwrap_err().to_string();
        assert!(
            m.ends_with("bad.txt: line 2, column 3: invalid UTF-8 (byte 0xff at byte offset 5 of the file)"),
            "{m}"
        );
        // A cut character at the end of the file is invalid too.
        let path = temp("cut.txt", "ab€".as_bytes().split_last().unwrap().1);
        assert!(vocabulary(&path)
            .unwrap_err()
            .to_string()
            .contains("line 1, column 3: invalid UTF-8"));
        let path = temp("empty.txt", b"");
        assert!(vocabulary(&path)
            .unwrap_err()
            .to_string()
            .ends_with("empty.txt: line 1, column 1: the file is empty"));
        let path = temp("one.txt", b"aaaa");
        assert!(vocabulary(&path)
            .unwrap_err()
            .to_string()
            .contains("one distinct character"));
        let path = temp("other.txt", b"ab\nbz");
        let m = Text::load(&path, &['\n', 'a', 'b']).unwrap_err().to_string();
        assert!(
            m.ends_with("other.txt: line 2, column 2: character 'z' is not in the model's vocabulary"),
            "{m}"
        );
        let e = vocabulary(Path::new("/nonexistent/sfnap.txt")).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}
