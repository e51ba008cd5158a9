//! Turning per-step logits into token ids: greedy (on the device) and beam search (on the host).

pub mod beam;
pub mod greedy;

/// What the caller asks of one caption.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Tokens generated after the bos/prompt prefix, at most.
    pub max_new_tokens: usize,
    /// [SEP] is suppressed until this many tokens have been generated.
    pub min_new_tokens: usize,
    /// 1 = greedy.
    pub num_beams: usize,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self { max_new_tokens: 20, min_new_tokens: 0, num_beams: 1 }
    }
}

/// The decoder as beam search sees it: a batch of `n` hypotheses advanced one step at a time.
///
/// `step(tokens, parents)`: every hypothesis `i` appends `tokens[i]` (all rows have the same
/// length: the whole prefix on the first call, one token after that) and continues the cached
/// state of hypothesis `parents[i]` from the previous call (`None` = keep order). Returns the
/// logits of the last position of every hypothesis, row-major `[n, vocab]`.
#[allow(async_fn_in_trait)]
pub trait StepDecoder {
    fn vocab_size(&self) -> usize;
    async fn step(&mut self, tokens: &[Vec<u32>], parents: Option<&[usize]>) -> crate::Result<Vec<f32>>;
}
