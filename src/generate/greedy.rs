//! Greedy decoding with the arg-max on the device: each step's chosen id feeds the next step's
//! embedding lookup without a host round trip; ids are read back every `steps_per_read` steps
//! only to notice [SEP] (`sep`: the config's `sep_token_id`; BLIP's generate ignores its
//! `eos_token_id`).

use super::GenerateOptions;
use crate::backend::{Backend, Mark};
use crate::model::{CrossKv, SelfKv, TextDecoder};
use crate::Result;

pub async fn greedy<B: Backend>(
    b: &B,
    text: &TextDecoder<B>,
    cross: &CrossKv<B>,
    prefix: &[u32],
    opts: &GenerateOptions,
    sep: u32,
) -> Result<Vec<u32>> {
    let mut out = prefix.to_vec();
    let mut cache = SelfKv::new(b, text, prefix.len() + opts.max_new_tokens)?;
    let mut input = b.ids(prefix, 1)?;
    let mut input_len = prefix.len();
    let mut pending = Vec::new();
    let per_read = b.steps_per_read().max(1);
    for step in 0..opts.max_new_tokens {
        let logits = text.forward(b, &input, input_len, &mut cache, cross)?;
        let suppress = (step < opts.min_new_tokens).then_some(sep);
        input = b.argmax(&logits, suppress)?;
        b.mark(Mark::Step);
        input_len = 1;
        pending.push(input.clone());
        if pending.len() == per_read || step + 1 == opts.max_new_tokens {
            let read = b.read_ids_many(&pending).await?;
            pending.clear();
            for ids in read {
                let id = ids.first().copied().unwrap_or(sep);
                out.push(id);
                if id == sep {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}
