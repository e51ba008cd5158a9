//! The BERT text decoder with cross-attention (`BlipTextLMHeadModel`): post-LN layers of causal
//! self-attention, cross-attention over the image tokens, and an FFN; then the LM head.

use super::{LayerNorm, Linear, Loader};
use crate::backend::Backend;
use crate::config::TextConfig;
use crate::{Error, Result};

/// BERT's self-attention block with Q, K and V stacked into one projection.
struct SelfAttention<B: Backend> {
    qkv: Linear<B>,
    output: Linear<B>,
    output_norm: LayerNorm<B>,
}

/// BERT's cross-attention block; its keys and values are the decoder's stacked `cross_kv`.
struct CrossAttention<B: Backend> {
    query: Linear<B>,
    output: Linear<B>,
    output_norm: LayerNorm<B>,
}

struct TextLayer<B: Backend> {
    self_attention: SelfAttention<B>,
    cross_attention: CrossAttention<B>,
    intermediate: Linear<B>,
    output: Linear<B>,
    output_norm: LayerNorm<B>,
}

pub struct TextDecoder<B: Backend> {
    word_embeddings: B::Weight,
    position_embeddings: B::Weight,
    embeddings_norm: LayerNorm<B>,
    layers: Vec<TextLayer<B>>,
    /// Every layer's cross-attention key and value projections stacked (layer 0's key, layer
    /// 0's value, layer 1's key, …): the image's K/V for the whole decoder is one product.
    cross_kv: Linear<B>,
    transform: Linear<B>,
    transform_norm: LayerNorm<B>,
    /// `None`: tied to the word embeddings (one copy serves both).
    decoder: Option<B::Weight>,
    decoder_bias: B::Tensor,
    heads: usize,
    hidden: usize,
    pub vocab_size: usize,
    pub max_positions: usize,
}

/// The image's keys and values for every layer's cross-attention: computed once per image, reused
/// at every step (and shared by all beams). Each layer's pair is a column range of one tensor.
pub struct CrossKv<B: Backend> {
    layers: Vec<(B::Tensor, B::Tensor)>,
}

/// Self-attention keys and values of the tokens seen so far, per layer.
pub struct SelfKv<B: Backend> {
    layers: Vec<B::Cache>,
    pub len: usize,
}

impl<B: Backend> SelfKv<B> {
    /// Room for `capacity` positions (prompt and generated tokens) in every layer.
    pub fn new(b: &B, text: &TextDecoder<B>, capacity: usize) -> Result<Self> {
        let layers = (0..text.layers.len()).map(|_| b.new_cache(capacity, text.hidden)).collect::<Result<Vec<_>>>()?;
        Ok(Self { layers, len: 0 })
    }

    /// Beam search: hypothesis `i` continues the cache of hypothesis `parents[i]`.
    pub fn reorder(&mut self, b: &B, parents: &[usize]) -> Result<()> {
        for cache in &mut self.layers {
            b.reorder_cache(cache, parents)?;
        }
        Ok(())
    }
}

impl<B: Backend> SelfAttention<B> {
    /// `l` at `…layer.{i}.attention`.
    fn load(l: &Loader<B>, d: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            qkv: l.pp("self").linear_stacked("qkv", &["query", "key", "value"], d, d)?,
            output: l.linear("output.dense", d, d)?,
            output_norm: l.layer_norm("output.LayerNorm", d, eps)?,
        })
    }
}

impl<B: Backend> CrossAttention<B> {
    /// `l` at `…layer.{i}.crossattention`; its key and value are stacked for all layers at once.
    fn load(l: &Loader<B>, d: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            query: l.linear("self.query", d, d)?,
            output: l.linear("output.dense", d, d)?,
            output_norm: l.layer_norm("output.LayerNorm", d, eps)?,
        })
    }
}

/// BERT's post-LN block end: `LayerNorm(dense(attention) + x)`.
fn finish<B: Backend>(
    b: &B,
    output: &Linear<B>,
    norm: &LayerNorm<B>,
    attn: &B::Tensor,
    x: &B::Tensor,
) -> Result<B::Tensor> {
    norm.forward(b, &output.forward_add(b, attn, x)?)
}

impl<B: Backend> TextDecoder<B> {
    pub(crate) fn load(l: &Loader<B>, c: &TextConfig) -> Result<Self> {
        let (d, eps) = (c.hidden_size, c.layer_norm_eps);
        let td = l.pp("text_decoder");
        let bert = td.pp("bert");
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let n = bert.pp(format_args!("encoder.layer.{i}"));
                Ok(TextLayer {
                    self_attention: SelfAttention::load(&n.pp("attention"), d, eps)?,
                    cross_attention: CrossAttention::load(&n.pp("crossattention"), d, eps)?,
                    intermediate: n.linear("intermediate.dense", c.intermediate_size, d)?,
                    output: n.linear("output.dense", d, c.intermediate_size)?,
                    output_norm: n.layer_norm("output.LayerNorm", d, eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let cross_parts: Vec<String> = (0..c.num_hidden_layers)
            .flat_map(|i| ["key", "value"].map(|p| format!("bert.encoder.layer.{i}.crossattention.self.{p}")))
            .collect();
        let cross_kv = td.linear_stacked("cross_kv", &cross_parts, d, c.encoder_hidden_size)?;
        let head = td.pp("cls.predictions");
        let decoder =
            if c.tie_word_embeddings { None } else { Some(head.weight("decoder.weight", c.vocab_size, d)?) };
        // The hub's files carry the bias twice (`bias` and the tied `decoder.bias`); either will do.
        let bias_name = if head.has("bias")? { "bias" } else { "decoder.bias" };
        let embeddings = bert.pp("embeddings");
        Ok(Self {
            word_embeddings: embeddings.weight("word_embeddings.weight", c.vocab_size, d)?,
            position_embeddings: embeddings.weight("position_embeddings.weight", c.max_position_embeddings, d)?,
            embeddings_norm: embeddings.layer_norm("LayerNorm", d, eps)?,
            layers,
            cross_kv,
            transform: head.linear("transform.dense", d, d)?,
            transform_norm: head.layer_norm("transform.LayerNorm", d, eps)?,
            decoder,
            decoder_bias: head.tensor(bias_name, &[c.vocab_size])?,
            heads: c.num_attention_heads,
            hidden: d,
            vocab_size: c.vocab_size,
            max_positions: c.max_position_embeddings,
        })
    }

    pub fn layers(&self) -> usize {
        self.layers.len()
    }

    /// Projects the image tokens `[1, N, Dv]` to every layer's cross-attention keys and values.
    pub fn cross_kv(&self, b: &B, image: &B::Tensor) -> Result<CrossKv<B>> {
        let kv = self.cross_kv.forward(b, image)?;
        let d = self.hidden;
        let layers = (0..self.layers.len())
            .map(|i| Ok((b.narrow_last(&kv, 2 * i * d, d)?, b.narrow_last(&kv, (2 * i + 1) * d, d)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(CrossKv { layers })
    }

    /// Runs `ids` `[batch, s]` at positions `cache.len..cache.len + s`, extends the cache, and
    /// returns the logits of the last position, `[batch, 1, vocab]`.
    pub fn forward(
        &self,
        b: &B,
        ids: &B::Ids,
        s: usize,
        cache: &mut SelfKv<B>,
        cross: &CrossKv<B>,
    ) -> Result<B::Tensor> {
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
            let attn = b.cached_attention(&a.qkv.forward(b, &x)?, &mut cache.layers[i], self.heads)?;
            x = finish(b, &a.output, &a.output_norm, &attn, &x)?;

            let c = &layer.cross_attention;
            let (ck, cv) = &cross.layers[i];
            let attn = b.attention(&c.query.forward(b, &x)?, ck, cv, self.heads, false)?;
            x = finish(b, &c.output, &c.output_norm, &attn, &x)?;

            let h = layer.intermediate.forward_gelu(b, &x)?;
            x = layer.output_norm.forward(b, &layer.output.forward_add(b, &h, &x)?)?;
        }
        cache.len += s;
        let last = b.last_position(&x)?;
        let h = self.transform_norm.forward(b, &self.transform.forward_gelu(b, &last)?)?;
        let head = self.decoder.as_ref().unwrap_or(&self.word_embeddings);
        b.linear(&h, head, Some(&self.decoder_bias))
    }
}
