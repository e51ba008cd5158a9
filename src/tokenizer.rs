//! The BLIP tokenizer (BERT uncased WordPiece + `[DEC]` as bos), through the `tokenizers` crate.

use crate::{Error, Result};

pub struct BlipTokenizer {
    inner: tokenizers::Tokenizer,
    bos: u32,
    /// BERT's [CLS] (the tokenizer's own id, absent from BLIP's config) and [SEP] (the config's
    /// `sep_token_id`): BLIP's prompt handling rewrites both.
    cls: Option<u32>,
    sep: u32,
}

impl BlipTokenizer {
    /// `bos` and `sep`: the text config's `bos_token_id` and `sep_token_id`.
    pub fn from_json(json: &[u8], bos: u32, sep: u32) -> Result<Self> {
        check_json(json)?;
        let inner = tokenizers::Tokenizer::from_bytes(json).map_err(|e| Error::Tokenizer(e.to_string()))?;
        let cls = inner.token_to_id("[CLS]");
        Ok(Self { inner, bos, cls, sep })
    }

    /// The generation prefix: `[bos]`, or for a prompt what HF's BLIP builds from the processor's
    /// `[CLS] … [SEP]`: [CLS] replaced by bos and the trailing [SEP] dropped.
    pub fn prefix(&self, prompt: Option<&str>) -> Result<Vec<u32>> {
        let Some(prompt) = prompt.filter(|p| !p.trim().is_empty()) else { return Ok(vec![self.bos]) };
        let enc = self.inner.encode(prompt, true).map_err(|e| Error::Tokenizer(e.to_string()))?;
        let mut ids = enc.get_ids().to_vec();
        if ids.first().is_some_and(|&id| Some(id) == self.cls) {
            ids[0] = self.bos;
        } else {
            ids.insert(0, self.bos);
        }
        if ids.last() == Some(&self.sep) {
            ids.pop();
        }
        Ok(ids)
    }

    /// Text of the ids with special tokens skipped, as `processor.decode(..., skip_special_tokens=True)`.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, true).map_err(|e| Error::Tokenizer(e.to_string()))
    }
}

/// What `tokenizers` would panic on instead of failing (found by fuzzing, `fuzz/regressions/`):
/// a syntax error inside the `decoder` object (it `expect`s the nested parse), and a
/// `Precompiled` normalizer whose character map does not parse. A panic in wasm ends the app, so
/// both are refused here first. BERT's tokenizer, BLIP's, has no `Precompiled` normalizer (that is
/// SentencePiece's).
fn check_json(json: &[u8]) -> Result<()> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| Error::Tokenizer(format!("tokenizer.json is not valid JSON: {e}")))?;
    let mut stack = vec![&value];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Object(map) => {
                if map.get("type").and_then(|t| t.as_str()) == Some("Precompiled") {
                    return Err(Error::Tokenizer(
                        "tokenizer.json has a Precompiled normalizer, which BLIP's tokenizer never has".into(),
                    ));
                }
                stack.extend(map.values());
            }
            serde_json::Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    Ok(())
}
