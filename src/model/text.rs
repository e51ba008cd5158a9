//! The BERT text decoder with cross-attention (`BlipTextLMHeadModel`): post-LN layers of causal
//! self-attention, cross-attention over the image tokens, and an FFN; then the LM head.

use super::{LayerNorm, Linear, Loader};
use crate::backend::Backend;
use crate::config::TextConfig;
use crate::{Error, Result};

struct Attention<B: Backend> {
    query: Linear<B>,
    key: Linear<B>,
    value: Linear<B>,
    output: Linear<B>,
    output_norm: LayerNorm<B>,
}

struct TextLayer<B: Backend> {
    self_attention: Attention<B>,
    cross_attention: Attention<B>,
    intermediate: Linear<B>,
    output: Linear<B>,
    output_norm: LayerNorm<B>,
}

pub struct TextDecoder<B: Backend> {
    word_embeddings: B::Weight,
    position_embeddings: B::Weight,
    embeddings_norm: LayerNorm<B>,
    layers: Vec<TextLayer<B>>,
    transform: Linear<B>,
    transform_norm: LayerNorm<B>,
    /// `None`: tied to the word embeddings (one copy serves both).
    decoder: Option<B::Weight>,
    decoder_bias: B::Tensor,
    heads: usize,
    pub vocab_size: usize,
    pub max_positions: usize,
}

/// The image's keys and values for every layer's cross-attention: computed once per image, reused
/// at every step (and shared by all beams).
pub struct CrossKv<B: Backend> {
    layers: Vec<(B::Tensor, B::Tensor)>,
}

/// Self-attention keys and values of the tokens seen so far, per layer.
pub struct SelfKv<B: Backend> {
    layers: Vec<Option<(B::Tensor, B::Tensor)>>,
    pub len: usize,
}

impl<B: Backend> SelfKv<B> {
    pub fn new(layers: usize) -> Self {
        Self { layers: (0..layers).map(|_| None).collect(), len: 0 }
    }

    /// Beam search: hypothesis `i` continues the cache of hypothesis `parents[i]`.
    pub fn reorder(&mut self, b: &B, parents: &[usize]) -> Result<()> {
        for (k, v) in self.layers.iter_mut().flatten() {
            *k = b.select_batch(k, parents)?;
            *v = b.select_batch(v, parents)?;
        }
        Ok(())
    }
}

impl<B: Backend> Attention<B> {
    fn load(l: &Loader<B>, prefix: &str, d: usize, kv_in: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            query: l.linear(&format!("{prefix}.self.query"), d, d)?,
            key: l.linear(&format!("{prefix}.self.key"), d, kv_in)?,
            value: l.linear(&format!("{prefix}.self.value"), d, kv_in)?,
            output: l.linear(&format!("{prefix}.output.dense"), d, d)?,
            output_norm: l.layer_norm(&format!("{prefix}.output.LayerNorm"), d, eps)?,
        })
    }

    /// BERT's post-LN block: `LayerNorm(dense(attention) + x)`.
    fn finish(&self, b: &B, attn: &B::Tensor, x: &B::Tensor) -> Result<B::Tensor> {
        let h = self.output.forward(b, attn)?;
        self.output_norm.forward(b, &b.add(&h, x)?)
    }
}

impl<B: Backend> TextDecoder<B> {
    pub(crate) fn load(l: &Loader<B>, c: &TextConfig) -> Result<Self> {
        let (d, eps) = (c.hidden_size, c.layer_norm_eps);
        let bert = "text_decoder.bert";
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let n = format!("{bert}.encoder.layer.{i}");
                Ok(TextLayer {
                    self_attention: Attention::load(l, &format!("{n}.attention"), d, d, eps)?,
                    cross_attention: Attention::load(l, &format!("{n}.crossattention"), d, c.encoder_hidden_size, eps)?,
                    intermediate: l.linear(&format!("{n}.intermediate.dense"), c.intermediate_size, d)?,
                    output: l.linear(&format!("{n}.output.dense"), d, c.intermediate_size)?,
                    output_norm: l.layer_norm(&format!("{n}.output.LayerNorm"), d, eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let head = "text_decoder.cls.predictions";
        let decoder = if c.tie_word_embeddings {
            None
        } else {
            Some(l.weight(&format!("{head}.decoder.weight"), c.vocab_size, d)?)
        };
        // The hub's files carry the bias twice (`bias` and the tied `decoder.bias`); either will do.
        let bias_name =
            if l.has(&format!("{head}.bias"))? { format!("{head}.bias") } else { format!("{head}.decoder.bias") };
        Ok(Self {
            word_embeddings: l.weight(&format!("{bert}.embeddings.word_embeddings.weight"), c.vocab_size, d)?,
            position_embeddings: l.weight(
                &format!("{bert}.embeddings.position_embeddings.weight"),
                c.max_position_embeddings,
                d,
            )?,
            embeddings_norm: l.layer_norm(&format!("{bert}.embeddings.LayerNorm"), d, eps)?,
            layers,
            transform: l.linear(&format!("{head}.transform.dense"), d, d)?,
            transform_norm: l.layer_norm(&format!("{head}.transform.LayerNorm"), d, eps)?,
            decoder,
            decoder_bias: l.tensor(&bias_name, &[c.vocab_size])?,
            heads: c.num_attention_heads,
            vocab_size: c.vocab_size,
            max_positions: c.max_position_embeddings,
        })
    }

    pub fn layers(&self) -> usize {
        self.layers.len()
    }

    /// Projects the image tokens `[1, N, Dv]` to every layer's cross-attention keys and values.
    pub fn cross_kv(&self, b: &B, image: &B::Tensor) -> Result<CrossKv<B>> {
        let layers = self
            .layers
            .iter()
            .map(|l| Ok((l.cross_attention.key.forward(b, image)?, l.cross_attention.value.forward(b, image)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(CrossKv { layers })
    }

    /// Runs `ids` `[batch, s]` at positions `cache.len..cache.len + s`, extends the cache, and
    /// returns the logits of the last position, `[batch, 1, vocab]`.
    pub fn forward(&self, b: &B, ids: &B::Ids, s: usize, cache: &mut SelfKv<B>, cross: &CrossKv<B>) -> Result<B::Tensor> {
        let start = cache.len;
        if start + s > self.max_positions {
            return Err(Error::Generate(format!(
                "sequence of {} tokens exceeds the model's {} positions",
                start + s,
                self.max_positions
            )));
        }
        let positions: Vec<u32> = (start..start + s).map(|p| p as u32).collect();
        let pos = b.embedding(&self.position_embeddings, &b.ids(&positions, 1)?)?;
        let words = b.embedding(&self.word_embeddings, ids)?;
        let mut x = self.embeddings_norm.forward(b, &b.add(&words, &pos)?)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let a = &layer.self_attention;
            let (k, v) = (a.key.forward(b, &x)?, a.value.forward(b, &x)?);
            let (k, v) = match &cache.layers[i] {
                Some((ck, cv)) => (b.append_seq(Some(ck), &k)?, b.append_seq(Some(cv), &v)?),
                None => (k, v),
            };
            let attn = b.attention(&a.query.forward(b, &x)?, &k, &v, self.heads, true)?;
            cache.layers[i] = Some((k, v));
            x = a.finish(b, &attn, &x)?;

            let c = &layer.cross_attention;
            let (ck, cv) = &cross.layers[i];
            let attn = b.attention(&c.query.forward(b, &x)?, ck, cv, self.heads, false)?;
            x = c.finish(b, &attn, &x)?;

            let h = layer.output.forward(b, &b.gelu(&layer.intermediate.forward(b, &x)?)?)?;
            x = layer.output_norm.forward(b, &b.add(&h, &x)?)?;
        }
        cache.len += s;
        let last = b.last_position(&x)?;
        let h = self.transform_norm.forward(b, &b.gelu(&self.transform.forward(b, &last)?)?)?;
        let head = self.decoder.as_ref().unwrap_or(&self.word_embeddings);
        b.linear(&h, head, Some(&self.decoder_bias))
    }
}
