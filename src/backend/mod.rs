//! The op interface the BLIP graph is written against. A backend owns where tensors live (host
//! memory for the CPU, GPU buffers for wgpu) and how each op runs; the model never touches data.
//!
//! Ops return handles without forcing a read, so a GPU backend can record a whole caption and the
//! only traffic back to the host is `read_ids` (and `read_f32` for beam search and tests). Reads
//! are async because in the browser nothing may block on the GPU.

pub mod cpu;
#[cfg(feature = "gpu")]
pub mod gpu;

use crate::weights::TensorView;
use crate::Result;

/// Where a caption is, for backends that count their work per phase (the GPU's `--stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The vision pass (and the cross-attention K/V) starts.
    Vision,
    /// The vision pass and the cross K/V are recorded; decoding starts.
    Decode,
    /// One decoder step (forward and its arg-max) is recorded.
    Step,
}

/// Activations are f32 `[batch, seq, features]` unless an op says otherwise.
#[allow(async_fn_in_trait)]
pub trait Backend {
    /// f32 values on the device.
    type Tensor: Clone;
    /// u32 token ids on the device, `[batch, seq]`.
    type Ids: Clone;
    /// A matrix `[rows, cols]` used by `linear` (x · Wᵀ) and `embedding` (row gather): Q8_0, F16
    /// or F32 as the file stored it.
    type Weight;
    /// One decoder layer's self-attention keys and values for a batch of sequences.
    type Cache;

    fn name(&self) -> &'static str;

    /// Takes a 2-D weight as the file holds it (the backend may keep it quantized).
    fn weight(&self, t: &TensorView) -> Result<Self::Weight>;
    /// Several 2-D weights with the same columns and type stacked by rows into one (Q, K and V
    /// of a layer; every layer's cross-attention K and V), so one product computes them all.
    /// `parts` yields them one at a time: only one is in host memory at once.
    fn weight_stacked<'a>(
        &self,
        name: &str,
        rows: usize,
        cols: usize,
        parts: &mut dyn Iterator<Item = Result<crate::weights::source::SourceTensor<'a>>>,
    ) -> Result<Self::Weight>;
    /// Takes any tensor as f32 (biases, norms, embeddings that are not gathered).
    fn tensor(&self, t: &TensorView) -> Result<Self::Tensor>;
    fn upload_f32(&self, data: &[f32], shape: &[usize]) -> Result<Self::Tensor>;
    fn ids(&self, ids: &[u32], batch: usize) -> Result<Self::Ids>;

    /// `x · Wᵀ + bias` over the last dimension.
    fn linear(&self, x: &Self::Tensor, w: &Self::Weight, bias: Option<&Self::Tensor>) -> Result<Self::Tensor>;
    /// `gelu?(x · Wᵀ + bias) + residual`: a linear layer with its epilogue (a GPU does it in the
    /// same kernel).
    fn linear_fused(
        &self,
        x: &Self::Tensor,
        w: &Self::Weight,
        bias: Option<&Self::Tensor>,
        gelu: bool,
        residual: Option<&Self::Tensor>,
    ) -> Result<Self::Tensor> {
        let mut y = self.linear(x, w, bias)?;
        if gelu {
            y = self.gelu(&y)?;
        }
        match residual {
            Some(r) => self.add(&y, r),
            None => Ok(y),
        }
    }
    fn layer_norm(&self, x: &Self::Tensor, gamma: &Self::Tensor, beta: &Self::Tensor, eps: f64)
        -> Result<Self::Tensor>;
    /// The exact erf form, as BLIP uses everywhere.
    fn gelu(&self, x: &Self::Tensor) -> Result<Self::Tensor>;
    /// `a + b`; `b` may have batch 1 and is then broadcast over `a`'s batch.
    fn add(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;
    /// Columns `start..start+len` of the last dimension (a GPU may return a view, not a copy).
    fn narrow_last(&self, x: &Self::Tensor, start: usize, len: usize) -> Result<Self::Tensor>;
    /// Multi-head scaled dot-product attention. `q` is `[b, sq, h·d]`, `k`/`v` are `[b or 1, sk, h·d]`
    /// (batch 1 is shared by every query batch: the image's cross-attention K/V under beam search).
    /// With `causal`, query `i` sees keys up to position `sk - sq + i`.
    fn attention(
        &self,
        q: &Self::Tensor,
        k: &Self::Tensor,
        v: &Self::Tensor,
        heads: usize,
        causal: bool,
    ) -> Result<Self::Tensor>;
    /// ViT patch embedding: `pixels` `[3, S, S]` → conv (stride = patch) + bias → prepend `class`
    /// `[1, 1, D]` → add `position` `[1, N+1, D]`. Returns `[1, N+1, D]`.
    fn patch_embed(
        &self,
        pixels: &Self::Tensor,
        weight: &Self::Tensor,
        bias: &Self::Tensor,
        class: &Self::Tensor,
        position: &Self::Tensor,
        patch: usize,
    ) -> Result<Self::Tensor>;
    /// Rows of `table` for each id: `[b, s]` → `[b, s, cols]`, dequantized row by row.
    fn embedding(&self, table: &Self::Weight, ids: &Self::Ids) -> Result<Self::Tensor>;
    /// `[b, s, d]` → `[b, 1, d]`.
    fn last_position(&self, x: &Self::Tensor) -> Result<Self::Tensor>;
    /// An empty self-attention cache for sequences of up to `capacity` positions of `width`
    /// (= heads · head size) features; the batch is that of the first `cached_attention`.
    fn new_cache(&self, capacity: usize, width: usize) -> Result<Self::Cache>;
    /// The decoder's causal self-attention for `s` new positions: `qkv` `[b, s, 3·width]` holds
    /// their queries, keys and values (the fused projection); their keys and values join the
    /// cache, and query `i` attends to every cached position up to its own. Returns `[b, s, width]`.
    fn cached_attention(&self, qkv: &Self::Tensor, cache: &mut Self::Cache, heads: usize) -> Result<Self::Tensor>;
    /// Beam search: sequence `i` continues the cache of sequence `parents[i]`.
    fn reorder_cache(&self, cache: &mut Self::Cache, parents: &[usize]) -> Result<()>;
    /// Arg-max over the last dimension: `[b, 1, V]` → `[b, 1]`; `suppress` is never chosen
    /// (min-length handling). Ties go to the lowest index, as torch does.
    fn argmax(&self, logits: &Self::Tensor, suppress: Option<u32>) -> Result<Self::Ids>;

    async fn read_ids(&self, ids: &Self::Ids) -> Result<Vec<u32>>;
    /// Several id tensors in one read (the GPU maps once for a batch of greedy steps).
    async fn read_ids_many(&self, ids: &[Self::Ids]) -> Result<Vec<Vec<u32>>> {
        let mut out = Vec::with_capacity(ids.len());
        for i in ids {
            out.push(self.read_ids(i).await?);
        }
        Ok(out)
    }
    async fn read_f32(&self, x: &Self::Tensor) -> Result<Vec<f32>>;
    /// Tells the backend where the caption is (for per-phase counters); nothing by default.
    fn mark(&self, _what: Mark) {}
    /// How many greedy steps to record between reads that check for [SEP] (1 = check every step).
    fn steps_per_read(&self) -> usize {
        1
    }
}
