//! A small English text for character-level language modelling (`data/licenses.txt`).

use super::Rng;

const RAW: &str = include_str!("../../data/licenses.txt");

/// A text as token ids over its own character vocabulary.
#[derive(Debug, Clone)]
pub struct Text {
    /// Every distinct character, sorted; a token id indexes this.
    pub vocab: Vec<char>,
    /// The text as token ids.
    pub tokens: Vec<u32>,
}

impl Text {
    /// The shipped corpus.
    pub fn shipped() -> Text {
        Text::new(RAW)
    }

    /// Tokenizes `text` by character.
    pub fn new(text: &str) -> Text {
        let mut vocab: Vec<char> = text.chars().collect();
        vocab.sort_unstable();
        vocab.dedup();
        let tokens = text
            .chars()
            .map(|c| vocab.binary_search(&c).expect("every char is in the vocabulary") as u32)
            .collect();
        Text { vocab, tokens }
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
        let cut = ((1.0 - fraction) * self.tokens.len() as f64) as usize;
        let part = |tokens: &[u32]| Text {
            vocab: self.vocab.clone(),
            tokens: tokens.to_vec(),
        };
        (part(&self.tokens[..cut]), part(&self.tokens[cut..]))
    }

    /// `batch` random windows of `context + 1` tokens: inputs are the first
    /// `context`, targets the last `context` (shifted by one). Row-major `[batch, context]`.
    pub fn batch(&self, batch: usize, context: usize, rng: &mut Rng) -> (Vec<u32>, Vec<u32>) {
        let mut inputs = Vec::with_capacity(batch * context);
        let mut targets = Vec::with_capacity(batch * context);
        for _ in 0..batch {
            let start = rng.below(self.tokens.len() - context - 1);
            inputs.extend_from_slice(&self.tokens[start..start + context]);
            targets.extend_from_slice(&self.tokens[start + 1..start + context + 1]);
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
}
