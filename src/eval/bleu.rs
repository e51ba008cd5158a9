//! Corpus BLEU-1..4 as nltk's `corpus_bleu` computes it (nltk 3.10, no smoothing), on captions
//! normalised the way caption benchmarks usually are: lowercased, ASCII punctuation deleted,
//! split on whitespace.
//!
//! nltk's details kept here on purpose, because they move the figures:
//! - clipped n-gram counts are summed over the corpus before dividing (micro average);
//! - a hypothesis shorter than n still adds 1 to the n-gram denominator (`max(1, count)`);
//! - the reference length is the closest one to the hypothesis, the shorter one on a tie;
//! - an order with no match makes the score 0 (nltk returns `exp(log(2.2e-308) / n)`-sized
//!   numbers, below 1e-77; we return exactly 0);
//! - an empty hypothesis corpus has a brevity penalty of 0.

use std::collections::HashMap;

/// Lowercase, delete ASCII punctuation (Python's `string.punctuation`), split on whitespace.
pub fn normalise(text: &str) -> Vec<String> {
    let kept: String = text.to_lowercase().chars().filter(|c| !c.is_ascii_punctuation()).collect();
    kept.split_whitespace().map(str::to_string).collect()
}

/// BLEU-1..4 of one corpus, each on a 0–1 scale.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Bleu {
    pub bleu1: f64,
    pub bleu2: f64,
    pub bleu3: f64,
    pub bleu4: f64,
}

impl Bleu {
    pub fn get(&self, n: usize) -> f64 {
        [self.bleu1, self.bleu2, self.bleu3, self.bleu4][n - 1]
    }
}

/// The sums corpus BLEU is made of; fed one (hypothesis, references) pair at a time.
#[derive(Debug, Clone, Default)]
pub struct BleuStats {
    /// Clipped matches and hypothesis n-grams for n = 1..=4.
    matches: [u64; 4],
    totals: [u64; 4],
    hyp_len: u64,
    ref_len: u64,
    segments: usize,
}

fn ngram_counts(tokens: &[String], n: usize) -> HashMap<&[String], u64> {
    let mut counts = HashMap::new();
    if tokens.len() >= n {
        for g in tokens.windows(n) {
            *counts.entry(g).or_insert(0) += 1;
        }
    }
    counts
}

impl BleuStats {
    /// Adds one tokenised hypothesis and its tokenised references (at least one).
    pub fn add(&mut self, hypothesis: &[String], references: &[Vec<String>]) {
        assert!(!references.is_empty(), "BLEU needs at least one reference per hypothesis");
        for n in 1..=4 {
            let hyp = ngram_counts(hypothesis, n);
            let mut max_ref: HashMap<&[String], u64> = HashMap::new();
            for r in references {
                for (g, c) in ngram_counts(r, n) {
                    if hyp.contains_key(g) {
                        let m = max_ref.entry(g).or_insert(0);
                        *m = (*m).max(c);
                    }
                }
            }
            let clipped: u64 = hyp.iter().map(|(g, &c)| c.min(max_ref.get(g).copied().unwrap_or(0))).sum();
            let count: u64 = hyp.values().sum();
            self.matches[n - 1] += clipped;
            self.totals[n - 1] += count.max(1);
        }
        let h = hypothesis.len() as u64;
        let closest = references.iter().map(|r| r.len() as u64).min_by_key(|&r| (r.abs_diff(h), r)).unwrap_or(0);
        self.hyp_len += h;
        self.ref_len += closest;
        self.segments += 1;
    }

    /// Adds raw caption texts, normalised with [`normalise`].
    pub fn add_text(&mut self, hypothesis: &str, references: &[impl AsRef<str>]) {
        let refs: Vec<Vec<String>> = references.iter().map(|r| normalise(r.as_ref())).collect();
        self.add(&normalise(hypothesis), &refs);
    }

    pub fn segments(&self) -> usize {
        self.segments
    }

    fn brevity_penalty(&self) -> f64 {
        if self.hyp_len > self.ref_len {
            1.0
        } else if self.hyp_len == 0 {
            0.0
        } else {
            (1.0 - self.ref_len as f64 / self.hyp_len as f64).exp()
        }
    }

    /// BLEU-n with uniform weights 1/n over orders 1..=n.
    pub fn bleu_n(&self, n: usize) -> f64 {
        assert!((1..=4).contains(&n), "BLEU order {n} is not 1..4");
        if self.matches[..n].contains(&0) {
            return 0.0;
        }
        let w = 1.0 / n as f64;
        let log_sum: f64 = (0..n).map(|i| w * (self.matches[i] as f64 / self.totals[i] as f64).ln()).sum();
        self.brevity_penalty() * log_sum.exp()
    }

    pub fn scores(&self) -> Bleu {
        Bleu { bleu1: self.bleu_n(1), bleu2: self.bleu_n(2), bleu3: self.bleu_n(3), bleu4: self.bleu_n(4) }
    }
}

/// Corpus BLEU of raw caption texts: `hypotheses[i]` against `references[i]`.
pub fn corpus_bleu(hypotheses: &[impl AsRef<str>], references: &[Vec<String>]) -> Bleu {
    let mut s = BleuStats::default();
    for (h, r) in hypotheses.iter().zip(references) {
        s.add_text(h.as_ref(), r);
    }
    s.scores()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn normalise_deletes_ascii_punctuation_only() {
        assert_eq!(normalise("A dog's ball, RED!  Café—naïve"), toks("a dogs ball red café—naïve"));
        assert_eq!(normalise(" ... "), Vec::<String>::new());
    }

    #[test]
    fn short_hypothesis_counts_one_in_each_higher_denominator() {
        // nltk: max(1, 0) for orders the hypothesis is too short for.
        let mut s = BleuStats::default();
        s.add(&toks("a"), &[toks("a b c")]);
        assert_eq!(s.totals, [1, 1, 1, 1]);
        assert_eq!(s.matches, [1, 0, 0, 0]);
        assert_eq!(s.bleu_n(2), 0.0);
    }

    #[test]
    fn closest_reference_length_ties_to_the_shorter() {
        let mut s = BleuStats::default();
        s.add(&toks("a b c"), &[toks("a b c d"), toks("a b")]);
        assert_eq!(s.ref_len, 2);
    }

    #[test]
    fn empty_corpus_scores_zero() {
        assert_eq!(BleuStats::default().scores().bleu1, 0.0);
    }
}
