//! Beam search on the host, a transcription of transformers 5.24.0 `GenerationMixin._beam_search`
//! (generation/utils.py) for one image, as BLIP's `generate` drives it: eos = [SEP] 102,
//! `do_sample=False`, `num_return_sequences=1`, `length_penalty=1.0`, `early_stopping=False`
//! (library defaults; BLIP's generation_config.json sets none of them).
//! See docs/hf-generate-notes.md for the semantics and where each rule comes from.

use super::{GenerateOptions, StepDecoder};

/// HF's "impossible" score: initial score of beams 1.., of empty finished slots, and the penalty
/// that keeps a candidate out of a pool. Exact in f32, and as in f32 torch, `x + NEG` rounds to
/// `NEG` whenever |x| < 32, so such entries tie; see [`top_k`].
const NEG: f32 = -1.0e9;

/// The ids that `BlipForConditionalGeneration.generate(num_beams=opts.num_beams, ...)` returns
/// (prefix included, [SEP] included when a hypothesis ended with it).
///
/// `num_beams` 0 or 1 is HF's greedy decoding, not a one-beam search (the two differ: a beam
/// search keeps going after an [SEP] candidate); 0 is taken as 1.
/// `Error::Generate` where HF raises (empty `prefix`; `max_new_tokens == 0`; a vocabulary under 2
/// tokens for a beam search, where `torch.topk` would get k = 2 * num_beams > num_beams * vocab)
/// and when the decoder returns logits whose length is not `n * vocab_size()`.
pub async fn beam_search<D: StepDecoder>(
    decoder: &mut D,
    prefix: &[u32],
    opts: &GenerateOptions,
    sep: u32,
) -> crate::Result<Vec<u32>> {
    if prefix.is_empty() {
        return Err(err("beam search needs a non-empty prefix (at least the bos token)"));
    }
    if opts.max_new_tokens == 0 {
        // HF's _validate_generated_length: input length >= max_length is an error.
        return Err(err("max_new_tokens must be at least 1"));
    }
    let vocab = decoder.vocab_size();
    if opts.num_beams <= 1 {
        if vocab == 0 {
            return Err(err("decoder has an empty vocabulary"));
        }
        return host_greedy(decoder, prefix, Lengths::new(prefix, opts, sep), vocab).await;
    }
    if vocab < 2 {
        return Err(err("beam search needs a vocabulary of at least 2 tokens"));
    }
    search(decoder, prefix, opts, Lengths::new(prefix, opts, sep), vocab).await
}

fn err(msg: &str) -> crate::Error {
    crate::Error::Generate(msg.to_string())
}

/// Where generation stops: length bounds in total sequence length as HF counts them (prompt
/// included), and the stop token ([SEP], the config's `sep_token_id`).
struct Lengths {
    prompt: usize,
    /// [SEP] is masked while the sequence is shorter than this.
    min: usize,
    max: usize,
    sep: u32,
}

impl Lengths {
    fn new(prefix: &[u32], opts: &GenerateOptions, sep: u32) -> Self {
        let prompt = prefix.len();
        Self {
            prompt,
            // _prepare_generated_length: min_length = min_new_tokens + prompt; the MinLength and
            // MinNewTokensLength processors then mask the same steps.
            min: prompt.saturating_add(opts.min_new_tokens),
            max: prompt.saturating_add(opts.max_new_tokens),
            sep,
        }
    }
}

/// Masks [SEP] (to -inf, without renormalising) the way MinLengthLogitsProcessor does.
fn mask_sep(row: &mut [f32], cur_len: usize, lengths: &Lengths) {
    if cur_len < lengths.min {
        if let Some(x) = row.get_mut(lengths.sep as usize) {
            *x = f32::NEG_INFINITY;
        }
    }
}

fn check_logits(logits: &[f32], rows: usize, vocab: usize) -> crate::Result<()> {
    if logits.len() == rows * vocab {
        Ok(())
    } else {
        Err(crate::Error::Generate(format!(
            "decoder returned {} logits for {rows} hypotheses of vocabulary {vocab}",
            logits.len()
        )))
    }
}

/// `_sample` with `do_sample=False`: processors on the raw logits, then argmax.
async fn host_greedy<D: StepDecoder>(
    decoder: &mut D,
    prefix: &[u32],
    lengths: Lengths,
    vocab: usize,
) -> crate::Result<Vec<u32>> {
    let mut ids = prefix.to_vec();
    let mut input = vec![prefix.to_vec()];
    loop {
        let mut logits = decoder.step(&input, None).await?;
        check_logits(&logits, 1, vocab)?;
        mask_sep(&mut logits, ids.len(), &lengths);
        // torch.argmax returns the first maximal index; top_k keeps that order.
        let next = top_k(&logits, 1)[0] as u32;
        ids.push(next);
        if next == lengths.sep || ids.len() >= lengths.max {
            return Ok(ids);
        }
        input = vec![vec![next]];
    }
}

/// A live beam: the tokens it generated after the prefix and their summed log-probability.
struct Running {
    tokens: Vec<u32>,
    score: f32,
    /// Index of the beam it extends in the previous step's running set (HF's beam_idx).
    parent: usize,
}

/// A slot of HF's `sequences`/`beam_scores`: a finished hypothesis, or a filler (`done: false`)
/// whose score is <= NEG. Fillers are kept because HF keeps them, and they decide the early-stop
/// heuristic's "every slot finished" test.
#[derive(Clone)]
struct Slot {
    tokens: Vec<u32>,
    score: f32,
    done: bool,
}

/// One of the `2 * num_beams` best (beam, token) continuations of a step.
struct Candidate {
    parent: usize,
    token: u32,
    score: f32,
    /// EosTokenCriteria or MaxLengthCriteria fired for the extended sequence.
    hits_stop: bool,
}

async fn search<D: StepDecoder>(
    decoder: &mut D,
    prefix: &[u32],
    opts: &GenerateOptions,
    lengths: Lengths,
    vocab: usize,
) -> crate::Result<Vec<u32>> {
    let n = opts.num_beams;
    // beams_to_keep = max(2, 1 + n_eos) * num_beams with one eos id: enough that n of them
    // survive even if every beam's best continuation is [SEP].
    let keep = 2 * n;

    // Every beam starts as a copy of the prefix; only beam 0 starts at 0 so that step 0 does not
    // pick the same token n times.
    let mut running: Vec<Running> =
        (0..n).map(|i| Running { tokens: Vec::new(), score: if i == 0 { 0.0 } else { NEG }, parent: i }).collect();
    let mut slots = vec![Slot { tokens: Vec::new(), score: NEG, done: false }; n];
    let mut cur_len = lengths.prompt;
    let mut inputs = vec![prefix.to_vec(); n];
    let mut parents: Option<Vec<usize>> = None;
    let mut scores = Vec::with_capacity(n * vocab);

    loop {
        let logits = decoder.step(&inputs, parents.as_deref()).await?;
        check_logits(&logits, n, vocab)?;

        scores.clear();
        for (row, beam) in logits.chunks_exact(vocab).zip(&running) {
            let start = scores.len();
            log_softmax_into(row, &mut scores);
            let row = &mut scores[start..];
            // Processors run on the log-probs, so the masked mass is not redistributed.
            mask_sep(row, cur_len, &lengths);
            for x in row {
                *x += beam.score;
            }
        }

        let candidates: Vec<Candidate> = top_k(&scores, keep)
            .into_iter()
            .map(|i| {
                let token = (i % vocab) as u32;
                Candidate {
                    parent: i / vocab,
                    token,
                    score: scores[i],
                    hits_stop: token == lengths.sep || cur_len + 1 >= lengths.max,
                }
            })
            .collect();
        let extend = |c: &Candidate| {
            let mut tokens = running[c.parent].tokens.clone();
            tokens.push(c.token);
            tokens
        };

        // _get_running_beams_for_next_iteration
        let live_scores: Vec<f32> =
            candidates.iter().map(|c| if c.hits_stop { c.score + NEG } else { c.score }).collect();
        let next: Vec<Running> = top_k(&live_scores, n)
            .into_iter()
            .map(|i| {
                let c = &candidates[i];
                Running { tokens: extend(c), score: live_scores[i], parent: c.parent }
            })
            .collect();

        // _update_finished_beams: only the n best candidates may finish; scores are normalised
        // by the generated length (prompt excluded, this token included) ** length_penalty (1.0).
        let generated = (cur_len + 1 - lengths.prompt) as f32;
        let mut pool = slots.clone();
        pool.extend(candidates.iter().enumerate().map(|(rank, c)| {
            // HF also adds NEG when no improvement is possible, but then the search has already
            // stopped (one image, so no other batch row keeps the loop going).
            let done = c.hits_stop && rank < n;
            let score = c.score / generated;
            Slot { tokens: extend(c), score: if done { score } else { score + NEG }, done }
        }));
        let pool_scores: Vec<f32> = pool.iter().map(|s| s.score).collect();
        slots = top_k(&pool_scores, n).into_iter().map(|i| pool[i].clone()).collect();

        running = next;
        cur_len += 1;

        // _check_early_stop_heuristic with early_stopping=False: the best running beam, normalised
        // by its current generated length, must beat the worst slot for the search to go on.
        let best_running = running[0].score / (cur_len - lengths.prompt) as f32;
        let worst = torch_min(slots.iter().map(|s| s.score));
        let improvable = slots.iter().any(|s| best_running > if s.done { worst } else { NEG });
        // _beam_search_has_unfinished_sequences ("exists_open_beam" is always true when
        // early_stopping is False).
        if !improvable || candidates.iter().all(|c| c.hits_stop) {
            let mut ids = prefix.to_vec();
            ids.extend_from_slice(&slots[0].tokens);
            return Ok(ids);
        }

        inputs = running.iter().map(|b| b.tokens.last().copied().into_iter().collect()).collect();
        parents = Some(running.iter().map(|b| b.parent).collect());
    }
}

/// `torch.log_softmax` in f32 as the CPU kernel orders it: `x - max - log(sum(exp(x - max)))`.
fn log_softmax_into(row: &[f32], out: &mut Vec<f32>) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| if x.is_nan() || x > m { x } else { m });
    let sum: f32 = row.iter().map(|&x| (x - max).exp()).sum();
    let log_sum = sum.ln();
    out.extend(row.iter().map(|&x| x - max - log_sum));
}

/// `torch.min` over the slots' scores: NaN propagates.
fn torch_min(scores: impl Iterator<Item = f32>) -> f32 {
    scores.fold(f32::INFINITY, |m, s| if s.is_nan() || s < m { s } else { m })
}

/// Indices of the `k` largest values, largest first (fewer if `values` is shorter), as
/// `torch.topk(sorted=True)` orders them, with NaN above everything as torch sorts it.
///
/// Assumption: equal values keep the lower index first (stable). torch's CPU topk does not
/// promise any order for ties. The ties that do occur by construction cannot decide the output:
/// `NEG`-level fillers of the finished pool (with finite logits the returned slot is a finished
/// one), and the step-0 continuations of beams 1.., only reached when beam 0 has fewer than
/// 2 * num_beams finite ones. Other ties need bit-identical scores of distinct candidates.
fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let ahead = |a: f32, b: f32| if a.is_nan() { !b.is_nan() } else { a > b };
    let mut best: Vec<usize> = Vec::with_capacity(k + 1);
    for (i, &v) in values.iter().enumerate() {
        let pos = best.partition_point(|&j| !ahead(v, values[j]));
        if pos < k {
            best.insert(pos, i);
            best.truncate(k);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    //! Expected outputs are hand traces of HF's `_beam_search` on a toy decoder whose next-token
    //! distribution depends only on the tokens generated so far. Vocabulary 103 so that [SEP]
    //! is the real 102; only tokens 0..=4 and [SEP] are possible (other logits are -inf). Logits
    //! are ln(p) with sum(p) = 1, so HF's log-probs are ln(p) up to f32 rounding; every decision
    //! below has a margin of at least 0.03.
    //! "x (#r)" = candidate x at rank r of the 2 * num_beams kept; "fin" = finished slots.

    use super::*;

    const E: u32 = 102;
    const BOS: u32 = 30522;
    const VOCAB: usize = 103;

    type Probs = &'static [(u32, f64)];
    /// Next-token distributions keyed by the tokens generated after the prefix.
    type Table = &'static [(&'static [u32], Probs)];
    type Call = (Vec<Vec<u32>>, Option<Vec<usize>>);

    struct Toy {
        rows: Table,
        default: Probs,
        /// What `vocab_size` claims; the rows are always VOCAB long.
        vocab: usize,
        prefix_len: usize,
        histories: Vec<Vec<u32>>,
        calls: Vec<Call>,
    }

    impl Toy {
        fn new(rows: Table, default: Probs) -> Self {
            Self { rows, default, vocab: VOCAB, prefix_len: 0, histories: Vec::new(), calls: Vec::new() }
        }

        fn logits(&self, generated: &[u32]) -> Vec<f32> {
            let probs = self.rows.iter().find(|(h, _)| *h == generated).map_or(self.default, |(_, p)| *p);
            let mut row = vec![f32::NEG_INFINITY; VOCAB];
            for &(t, p) in probs {
                row[t as usize] = p.ln() as f32;
            }
            row
        }
    }

    impl StepDecoder for Toy {
        fn vocab_size(&self) -> usize {
            self.vocab
        }

        async fn step(&mut self, tokens: &[Vec<u32>], parents: Option<&[usize]>) -> crate::Result<Vec<f32>> {
            self.calls.push((tokens.to_vec(), parents.map(<[usize]>::to_vec)));
            assert!(tokens.iter().all(|t| t.len() == tokens[0].len()));
            if self.histories.is_empty() {
                self.prefix_len = tokens[0].len();
                self.histories = tokens.to_vec();
            } else {
                // The cache a real decoder would reorder: hypothesis i continues parents[i].
                self.histories = (0..tokens.len())
                    .map(|i| [self.histories[parents.map_or(i, |p| p[i])].clone(), tokens[i].clone()].concat())
                    .collect();
            }
            Ok(self.histories.iter().flat_map(|h| self.logits(&h[self.prefix_len..])).collect())
        }
    }

    fn opts(num_beams: usize, min_new_tokens: usize, max_new_tokens: usize) -> GenerateOptions {
        GenerateOptions { max_new_tokens, min_new_tokens, num_beams }
    }

    fn run(toy: &mut Toy, prefix: &[u32], opts: &GenerateOptions) -> Vec<u32> {
        pollster::block_on(beam_search(toy, prefix, opts, E)).expect("search succeeds")
    }

    fn run_table(rows: Table, default: Probs, prefix: &[u32], o: &GenerateOptions) -> (Vec<u32>, Vec<Call>) {
        let mut toy = Toy::new(rows, default);
        let ids = run(&mut toy, prefix, o);
        (ids, toy.calls)
    }

    fn rows_of(calls: &[Call]) -> Vec<Vec<Vec<u32>>> {
        calls.iter().map(|(t, _)| t.clone()).collect()
    }

    fn parents_of(calls: &[Call]) -> Vec<Option<Vec<usize>>> {
        calls.iter().map(|(_, p)| p.clone()).collect()
    }

    const LONG_WINS: Table = &[
        (&[], &[(1, 0.5), (E, 0.3), (2, 0.12), (3, 0.05), (4, 0.02), (0, 0.01)]),
        (&[1], &[(3, 0.62), (E, 0.2), (1, 0.1), (2, 0.05), (4, 0.02), (0, 0.01)]),
        (&[2], &[(4, 0.55), (E, 0.25), (1, 0.1), (3, 0.05), (2, 0.04), (0, 0.01)]),
        (&[1, 3], &[(E, 0.45), (4, 0.3), (1, 0.1), (2, 0.08), (3, 0.05), (0, 0.02)]),
        (&[2, 4], &[(E, 0.7), (1, 0.1), (2, 0.08), (3, 0.06), (4, 0.05), (0, 0.01)]),
        (&[1, 3, 4], &[(E, 0.5), (1, 0.2), (2, 0.15), (3, 0.1), (4, 0.04), (0, 0.01)]),
    ];
    const LONG_WINS_DEFAULT: Probs = &[(E, 0.65), (1, 0.1), (2, 0.1), (3, 0.08), (4, 0.05), (0, 0.02)];

    /// num_beams 2: [SEP] at step 0 is beaten by a longer caption with a lower summed log-prob.
    #[test]
    fn early_sep_beaten_by_longer_normalised_score() {
        // step 0: [1] -0.6931 (#0), [E] -1.2040 (#1, fin -1.2040/1), [2] -2.1203 (#2), [3] (#3).
        //   running [1] -0.6931, [2] -2.1203 (parents 0, 0); fin [E] -1.2040, empty.
        // step 1: [1,3] -1.1712 (#0), [1,E] -2.3026 (#1, fin -2.3026/2 = -1.1513), [2,4] -2.7181,
        //   [1,1] -2.9957. fin [1,E] -1.1513, [E] -1.2040: already the longer one wins.
        //   running [1,3], [2,4] (parents 0, 1). best running -1.1712/2 = -0.5856 > -1.2040: go on.
        // step 2: [1,3,E] -1.9697 (#0, fin -0.6566), [1,3,4] -2.3752, [2,4,E] -3.0748 (#2: a
        //   finished candidate past rank n is dropped, though -3.0748/3 = -1.0249 beats -1.1513),
        //   [1,3,1] -3.4738. fin [1,3,E] -0.6566, [1,E] -1.1513. running [1,3,4], [1,3,1]
        //   (parents 0, 0). -2.3752/3 = -0.7917 > -1.1513: go on.
        // step 3: [1,3,4,E] -3.0683 (#0, fin -0.7671), [1,3,1,E] -3.9046 (#1, fin -0.9761),
        //   [1,3,4,1] -3.9846, [1,3,4,2] -4.2723. fin [1,3,E] -0.6566, [1,3,4,E] -0.7671.
        //   -3.9846/4 = -0.9961 <= -0.7671: stop after 4 decoder calls.
        // Unnormalised, [E] (-1.2040) would beat [1,3,E] (-1.9697).
        let (ids, calls) = run_table(LONG_WINS, LONG_WINS_DEFAULT, &[BOS], &opts(2, 0, 8));
        assert_eq!(ids, [BOS, 1, 3, E]);
        assert_eq!(
            rows_of(&calls),
            [vec![vec![BOS]; 2], vec![vec![1], vec![2]], vec![vec![3], vec![4]], vec![vec![4], vec![1]]]
        );
        assert_eq!(parents_of(&calls), [None, Some(vec![0, 0]), Some(vec![0, 1]), Some(vec![0, 0])]);
    }

    const SHORT_WINS: Table = &[
        (&[], &[(E, 0.4), (1, 0.3), (2, 0.2), (3, 0.06), (4, 0.03), (0, 0.01)]),
        (&[1], &[(E, 0.5), (3, 0.3), (1, 0.1), (2, 0.05), (4, 0.04), (0, 0.01)]),
        (&[2], &[(E, 0.35), (4, 0.3), (1, 0.2), (2, 0.1), (3, 0.04), (0, 0.01)]),
        (&[1, 3], &[(4, 0.97), (E, 0.01), (1, 0.01), (2, 0.005), (3, 0.004), (0, 0.001)]),
        (&[1, 3, 4], &[(4, 0.97), (E, 0.01), (1, 0.01), (2, 0.005), (3, 0.004), (0, 0.001)]),
        (&[1, 3, 4, 4], &[(E, 0.97), (4, 0.01), (1, 0.01), (2, 0.005), (3, 0.004), (0, 0.001)]),
    ];
    const SHORT_WINS_DEFAULT: Probs = LONG_WINS_DEFAULT;

    /// num_beams 2: the early [SEP] stays best because the heuristic stops the search.
    #[test]
    fn early_sep_kept_when_heuristic_stops() {
        // step 0: [E] -0.9163 (#0, fin -0.9163), [1] -1.2040, [2] -1.6094, [3] -2.8134.
        // step 1: [1,E] -1.8971 (#0, fin -0.9486), [1,3] -2.4079, [2,E] -2.6593 (#2, dropped),
        //   [2,4] -2.8134. fin [E] -0.9163, [1,E] -0.9486, both finished.
        //   best running -2.4079 / 2 (generated so far, not max length) = -1.2040 <= -0.9486: stop.
        // Going on would have found [1,3,4,4,E] at -2.4993/5 = -0.4999, better than [E].
        let (ids, calls) = run_table(SHORT_WINS, SHORT_WINS_DEFAULT, &[BOS], &opts(2, 0, 6));
        assert_eq!(ids, [BOS, E]);
        assert_eq!(calls.len(), 2);
    }

    const MIN_NEW: Table = &[
        (&[], &[(E, 0.5), (1, 0.3), (2, 0.15), (3, 0.03), (4, 0.015), (0, 0.005)]),
        (&[1], &[(E, 0.9), (3, 0.06), (1, 0.02), (2, 0.01), (4, 0.007), (0, 0.003)]),
        (&[2], &[(E, 0.1), (4, 0.5), (3, 0.2), (1, 0.1), (2, 0.07), (0, 0.03)]),
        (&[2, 4], &[(E, 0.8), (1, 0.1), (2, 0.05), (3, 0.03), (4, 0.015), (0, 0.005)]),
        (&[2, 3], &[(E, 0.6), (1, 0.2), (2, 0.1), (3, 0.05), (4, 0.04), (0, 0.01)]),
    ];
    const MIN_NEW_DEFAULT: Probs = LONG_WINS_DEFAULT;

    /// num_beams 2, min_new_tokens 2 after a 3-token prompt: [SEP] is -inf while fewer than 2
    /// tokens follow the prompt, and the other log-probs are not renormalised.
    #[test]
    fn min_new_tokens_masks_sep_relative_to_prompt() {
        // step 0 (E masked): [1] -1.2040, [2] -1.8971, [3] -3.5066, [4] -4.1997; nothing ends.
        // step 1 (E masked): [2,4] -2.5903, [2,3] -3.5066, [1,3] -4.0174, [2,1] -4.1997.
        //   running [2,4], [2,3], both from beam 1. (Renormalised after masking, [1,3] would be
        //   -1.2040 + ln(0.06/0.1) = -1.7148 and lead.)
        // step 2: [2,4,E] -2.8134 (#0, fin -0.9378), [2,3,E] -4.0174 (#1, fin -1.3391),
        //   [2,4,1] -4.8929, [2,3,1] -5.1160. -4.8929/3 = -1.6310 <= -1.3391: stop.
        let (ids, calls) = run_table(MIN_NEW, MIN_NEW_DEFAULT, &[BOS, 7, 8], &opts(2, 2, 5));
        assert_eq!(ids, [BOS, 7, 8, 2, 4, E]);
        assert_eq!(rows_of(&calls), [vec![vec![BOS, 7, 8]; 2], vec![vec![1], vec![2]], vec![vec![4], vec![3]]]);
        assert_eq!(parents_of(&calls), [None, Some(vec![0, 0]), Some(vec![1, 1])]);
        // Without the mask, step 0's [E] (-0.6931) finishes first and the trace changes.
        let (ids, _) = run_table(MIN_NEW, MIN_NEW_DEFAULT, &[BOS, 7, 8], &opts(2, 0, 5));
        assert_ne!(ids, [BOS, 7, 8, 2, 4, E]);
    }

    const MAX_LEN: Table = &[
        (&[], &[(1, 0.45), (E, 0.35), (2, 0.15), (3, 0.03), (4, 0.015), (0, 0.005)]),
        (&[1], &[(3, 0.34), (4, 0.29), (1, 0.21), (2, 0.13), (E, 0.02), (0, 0.01)]),
        (&[2], &[(2, 0.9), (1, 0.05), (3, 0.03), (E, 0.01), (4, 0.007), (0, 0.003)]),
        (&[1, 3], &[(4, 0.4), (1, 0.3), (2, 0.2), (3, 0.07), (E, 0.02), (0, 0.01)]),
        (&[2, 2], &[(2, 0.9), (1, 0.05), (3, 0.03), (E, 0.01), (4, 0.007), (0, 0.003)]),
        (&[1, 4], &[(1, 0.4), (2, 0.3), (3, 0.2), (4, 0.07), (E, 0.02), (0, 0.01)]),
    ];
    const MAX_LEN_DEFAULT: Probs = &[(1, 0.3), (2, 0.3), (3, 0.2), (4, 0.17), (E, 0.02), (0, 0.01)];

    /// num_beams 2: at max length every kept candidate hits the stopping criteria; the n best
    /// are finished with their normalised score and compete with the earlier [SEP].
    #[test]
    fn max_length_finishes_running_beams() {
        // step 0: [1] -0.7985 (#0), [E] -1.0498 (#1, fin -1.0498), [2] -1.8971, [3] -3.5066.
        //   max_new 1: all four hit max length; fin [1] -0.7985/1, [E] -1.0498 -> [1].
        // step 1: [1,3] -1.8773, [2,2] -2.0025, [1,4] -2.0364, [1,1] -2.3592.
        //   max_new 2: fin [1,3] -0.9387, [2,2] -1.0012 (beat [E] -1.0498) -> [1,3].
        //   otherwise running [1,3], [2,2] (parents 0, 1); one slot empty: go on.
        // step 2 (max_new 3): [2,2,2] -2.1078 (#0, fin -0.7026), [1,3,4] -2.7936 (#1, fin -0.9312),
        //   [1,3,1], [1,3,2] (#2, #3: not finished). -> [2,2,2], where greedy says [1,3,4].
        for (max_new, want) in [(1, vec![BOS, 1]), (2, vec![BOS, 1, 3]), (3, vec![BOS, 2, 2, 2])] {
            let (ids, calls) = run_table(MAX_LEN, MAX_LEN_DEFAULT, &[BOS], &opts(2, 0, max_new));
            assert_eq!(ids, want, "max_new_tokens {max_new}");
            assert_eq!(calls.len(), max_new);
        }
        let (_, calls) = run_table(MAX_LEN, MAX_LEN_DEFAULT, &[BOS], &opts(2, 0, 3));
        assert_eq!(parents_of(&calls), [None, Some(vec![0, 0]), Some(vec![0, 1])]);
    }

    const SEP_THIRD: Table = &[(&[], &[(1, 0.35), (2, 0.33), (E, 0.3), (3, 0.01), (4, 0.006), (0, 0.004)])];
    const SEP_THIRD_DEFAULT: Probs = &[(1, 0.24), (2, 0.23), (3, 0.22), (4, 0.21), (E, 0.05), (0, 0.05)];

    /// num_beams 2: a [SEP] candidate ranked past the first num_beams is neither kept running
    /// nor finished.
    #[test]
    fn sep_ranked_past_num_beams_is_dropped() {
        // step 0: [1] -1.0498, [2] -1.1087, [E] -1.2040 (#2: dropped), [3] -4.6052.
        // step 1 (max length, all hit): [1,1] -2.4769 (#0, fin -1.2385), [1,2] -2.5195 (#1, fin
        //   -1.2597). Had [E] been finished it would win with -1.2040.
        let (ids, calls) = run_table(SEP_THIRD, SEP_THIRD_DEFAULT, &[BOS], &opts(2, 0, 2));
        assert_eq!(ids, [BOS, 1, 1]);
        assert_eq!(calls.len(), 2);
    }

    /// num_beams 0 and 1 follow HF's greedy `_sample`: arg-max of the processed logits, stop at
    /// [SEP] (kept) or max length.
    #[test]
    fn one_beam_is_greedy() {
        for beams in [0, 1] {
            // E masked twice: 1 (0.3), then 3 (0.06); then the default row's E (0.65).
            let (ids, calls) = run_table(MIN_NEW, MIN_NEW_DEFAULT, &[BOS], &opts(beams, 2, 5));
            assert_eq!(ids, [BOS, 1, 3, E]);
            assert_eq!(rows_of(&calls), [vec![vec![BOS]], vec![vec![1]], vec![vec![3]]]);
            let (ids, calls) = run_table(MIN_NEW, MIN_NEW_DEFAULT, &[BOS], &opts(beams, 0, 5));
            assert_eq!((ids, calls.len()), (vec![BOS, E], 1));
            let (ids, _) = run_table(MAX_LEN, MAX_LEN_DEFAULT, &[BOS], &opts(beams, 0, 3));
            assert_eq!(ids, [BOS, 1, 3, 4]);
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let search =
            |toy: &mut Toy, prefix: &[u32], o: GenerateOptions| pollster::block_on(beam_search(toy, prefix, &o, E));
        let mut toy = Toy::new(MAX_LEN, MAX_LEN_DEFAULT);
        assert!(search(&mut toy, &[BOS], opts(2, 0, 0)).is_err());
        assert!(search(&mut toy, &[], opts(2, 0, 3)).is_err());
        assert!(toy.calls.is_empty());
        for beams in [1, 3] {
            let mut toy = Toy { vocab: VOCAB - 1, ..Toy::new(MAX_LEN, MAX_LEN_DEFAULT) };
            assert!(matches!(search(&mut toy, &[BOS], opts(beams, 0, 3)), Err(crate::Error::Generate(_))));
        }
        let mut toy = Toy { vocab: 1, ..Toy::new(MAX_LEN, MAX_LEN_DEFAULT) };
        assert!(search(&mut toy, &[BOS], opts(2, 0, 3)).is_err());
    }
}
