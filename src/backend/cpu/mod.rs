//! The op interface on candle-core: f32 tensors in host memory, candle's GEMM (the `gemm` crate,
//! SIMD picked at run time, threads through rayon) for f32 products, our int8 panel GEMM for Q8_0
//! (and Q4_0) weights against many activation rows (`q8_gemm`: AVX-512 VNNI, AVX2, wasm SIMD128,
//! wasm relaxed SIMD or portable loops) and, on x86, our few-row loop for decoder steps on Q8_0
//! (`q8_gemm::gemv`, the GEMM's results to the bit), candle's quantized matmul (ggml's block dot
//! products) for the few-row products elsewhere (wasm, aarch64, 4-bit weights), our attention
//! kernels on x86 (`attention`), and plain slice loops where a fused pass beats a chain of candle
//! ops (norms, softmax, the GELU and residual epilogues done in place). In the threaded wasm build
//! one-row products are split among rayon's workers (`split_gemv`). Natively, captions run on a
//! thread of the backend's rayon pool ([`on_pool`]).

mod attention;
// Public for tests/cpu_kernels.rs, which checks them natively and in wasm.
pub mod fast_math;
pub mod q8_gemm;
mod shared_out;
#[cfg_attr(not(feature = "threads"), allow(dead_code))] // used by the threaded wasm build; tested natively
mod split_gemv;

use std::borrow::Cow;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{DType as CDType, Device, Module, Storage, Tensor, D};
use rayon::prelude::*;

use super::Backend;
use crate::weights::{DType, TensorView};
use crate::{Error, Result};

#[derive(Debug, Default, Clone, Copy)]
pub struct CpuBackend;

/// From this many activation rows on, quantized products (Q8_0, Q4_0, Q4_K) go through our panel
/// GEMM (the vision pass); below it (decoder steps, beams, short prompts) the weights are used too
/// few times to repay a repack, and they are read in their blocks: by our few-row loop for Q8_0 on
/// x86, else by candle's dot products. (A few-row SIMD128 loop of ours that kept the GEMM's exact
/// block sums was tried in wasm: 25 ms per decoder step against candle's 20.5, so candle keeps
/// these there.)
const GEMM_MIN_ROWS: usize = 16;

/// Elements per task of an element-wise op: below this a hand-over to another thread costs more
/// than the work (a decoder step's 768-wide rows stay on one).
const ADD_CHUNK: usize = 1 << 15;

pub enum CpuWeight {
    F32(Tensor),
    /// Stays quantized in memory (Q8_0, Q4_0 or Q4_K): matmuls run on the blocks, embedding rows
    /// are dequantized as they are gathered.
    Quant {
        matrix: Arc<QTensor>,
        matmul: QMatMul,
        dtype: DType,
        rows: usize,
        cols: usize,
    },
}

impl CpuWeight {
    fn rows_cols(&self) -> (usize, usize) {
        match self {
            CpuWeight::F32(t) => (t.dims()[0], t.dims()[1]),
            CpuWeight::Quant { rows, cols, .. } => (*rows, *cols),
        }
    }
}

/// candle's name for a block type we keep quantized.
fn ggml_dtype(dtype: DType) -> Option<GgmlDType> {
    match dtype {
        DType::Q8_0 => Some(GgmlDType::Q8_0),
        DType::Q4_0 => Some(GgmlDType::Q4_0),
        DType::Q4_K => Some(GgmlDType::Q4K),
        _ => None,
    }
}

fn err(e: candle_core::Error) -> Error {
    Error::Backend { backend: "cpu", message: e.to_string() }
}

fn shape_err(message: String) -> Error {
    Error::Backend { backend: "cpu", message }
}

/// Runs `f` on the contiguous f32 data of `t` without copying it.
fn with_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous().map_err(err)?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else { return Err(shape_err("tensor is not on the CPU".into())) };
    let data = cpu.as_slice::<f32>().map_err(err)?;
    let (start, end) = layout.contiguous_offsets().ok_or_else(|| shape_err("tensor not contiguous".into()))?;
    Ok(f(&data[start..end]))
}

fn from_vec(data: Vec<f32>, dims: &[usize]) -> Result<Tensor> {
    Tensor::from_vec(data, dims, &Device::Cpu).map_err(err)
}

/// Runs `f` (captions on this backend) on a thread of a rayon pool, natively. Each of the backend's
/// parallel ops then starts on that thread and wakes only the others; called from a thread outside
/// the pool, every op (some 150 per decoder step) would wake the pool's threads and put the caller
/// to sleep until they finish: a BLIP-base decoder step took 8 ms that way, against 7 ms here
/// (2-core Zen 5). The pool is made on first use, with a thread per core, as rayon's global one.
#[cfg(not(target_arch = "wasm32"))]
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use std::sync::OnceLock;
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    match POOL.get_or_init(|| rayon::ThreadPoolBuilder::new().thread_name(|i| format!("edgecap-cpu-{i}")).build().ok())
    {
        Some(pool) => pool.install(f),
        // No threads to be had: the caller's thread does the work, as it would have anyway.
        None => f(),
    }
}

/// A linear layer's output: ours as a host vector, or candle's tensor.
enum Product {
    Host(Vec<f32>),
    Tensor(Tensor),
}

/// A decoder layer's self-attention keys and values so far, `[b, len, width]` each.
#[derive(Default)]
pub struct CpuCache {
    kv: Option<(Tensor, Tensor)>,
}

impl Backend for CpuBackend {
    type Tensor = Tensor;
    type Ids = Tensor;
    type Weight = CpuWeight;
    type Cache = CpuCache;

    fn name(&self) -> &'static str {
        "cpu"
    }

    fn weight(&self, t: &TensorView) -> Result<CpuWeight> {
        let &[rows, cols] = t.shape else {
            return Err(Error::model(format!("{} should be 2-D, has shape {:?}", t.name, t.shape)));
        };
        let Some(ggml) = ggml_dtype(t.dtype) else { return Ok(CpuWeight::F32(self.tensor(t)?)) };
        // Blocks run along rows: a row must be whole blocks (byte_len alone would accept a
        // matrix whose blocks straddle rows).
        if !cols.is_multiple_of(ggml.block_size()) || t.dtype.byte_len(rows * cols) != Some(t.data.len()) {
            return Err(Error::model(format!("{}: {:?} data does not match shape {:?}", t.name, t.dtype, t.shape)));
        }
        let storage = QStorage::from_data(Cow::Borrowed(t.data), &Device::Cpu, ggml)
            .and_then(|s| QTensor::new(s, (rows, cols)))
            .map_err(|e| Error::model(format!("{}: {e}", t.name)))?;
        let matrix = Arc::new(storage);
        let matmul = QMatMul::from_arc(matrix.clone()).map_err(err)?;
        Ok(CpuWeight::Quant { matrix, matmul, dtype: t.dtype, rows, cols })
    }

    fn weight_stacked<'a>(
        &self,
        name: &str,
        rows: usize,
        cols: usize,
        parts: &mut dyn Iterator<Item = Result<crate::weights::source::SourceTensor<'a>>>,
    ) -> Result<CpuWeight> {
        // Quantized rows stay quantized when every part has the same block type (blocks never
        // straddle rows); anything else is widened to f32. Only one form is held: wasm memory
        // never shrinks, so a second copy would stay for good.
        let (mut blocks, mut f32s, mut stacked) = (Vec::new(), Vec::new(), 0);
        let mut kept: Option<DType> = None;
        let mut first = true;
        for part in parts {
            let part = part?;
            let v = part.view();
            let &[r, c] = v.shape else {
                return Err(Error::model(format!("{} should be 2-D, has shape {:?}", v.name, v.shape)));
            };
            if c != cols {
                return Err(Error::model(format!("{}: {c} columns where {name} stacks {cols}", v.name)));
            }
            stacked += r;
            if first && ggml_dtype(v.dtype).is_some() {
                kept = Some(v.dtype);
            }
            first = false;
            if kept == Some(v.dtype) {
                if v.dtype.byte_len(r * c) != Some(v.data.len()) {
                    return Err(Error::model(format!(
                        "{}: {:?} data does not match shape {:?}",
                        v.name, v.dtype, v.shape
                    )));
                }
                blocks.extend_from_slice(v.data);
                continue;
            }
            if let Some(dtype) = kept.take() {
                // The first part of another type: what came before is widened too.
                let before = blocks.len() / dtype.byte_len(cols).unwrap_or(usize::MAX).max(1);
                let shape = [before, cols];
                f32s = TensorView { name, shape: &shape, dtype, data: &blocks }.to_f32()?;
                blocks = Vec::new();
            }
            f32s.extend(v.to_f32()?);
        }
        if stacked != rows {
            return Err(Error::model(format!("{name}: parts stack to {stacked} rows, expected {rows}")));
        }
        let shape = [rows, cols];
        if let Some(dtype) = kept {
            return self.weight(&TensorView { name, shape: &shape, dtype, data: &blocks });
        }
        Ok(CpuWeight::F32(from_vec(f32s, &shape)?))
    }

    fn tensor(&self, t: &TensorView) -> Result<Tensor> {
        from_vec(t.to_f32()?, t.shape)
    }

    fn upload_f32(&self, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        from_vec(data.to_vec(), shape)
    }

    fn ids(&self, ids: &[u32], batch: usize) -> Result<Tensor> {
        if batch == 0 || !ids.len().is_multiple_of(batch) {
            return Err(shape_err(format!("{} ids do not split into {batch} rows", ids.len())));
        }
        Tensor::from_vec(ids.to_vec(), (batch, ids.len() / batch), &Device::Cpu).map_err(err)
    }

    fn linear(&self, x: &Tensor, w: &CpuWeight, bias: Option<&Tensor>) -> Result<Tensor> {
        let (y, dims) = self.product(x, w, bias)?;
        match y {
            Product::Host(y) => from_vec(y, &dims),
            Product::Tensor(y) => y.reshape(dims).map_err(err),
        }
    }

    fn linear_fused(
        &self,
        x: &Tensor,
        w: &CpuWeight,
        bias: Option<&Tensor>,
        gelu: bool,
        residual: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (y, dims) = self.product(x, w, bias)?;
        let mut y = match y {
            Product::Host(y) => y,
            Product::Tensor(y) => {
                let mut y = y.reshape(dims).map_err(err)?;
                if gelu {
                    y = self.gelu(&y)?;
                }
                return match residual {
                    Some(r) => self.add(&y, r),
                    None => Ok(y),
                };
            }
        };
        // The epilogue in place on the product we own: the vision pass's GELU and residual sums
        // otherwise each took a fresh activation-sized buffer per layer (allocated, zeroed, written).
        // A residual of the product's own shape is added here; any other goes through `add`.
        let (here, later) = match residual {
            Some(r) if r.dims() == dims.as_slice() => (Some(r), None),
            other => (None, other),
        };
        let apply = |y: &mut [f32], r: Option<&[f32]>| {
            y.par_chunks_mut(ADD_CHUNK).enumerate().for_each(|(t, chunk)| {
                if gelu {
                    fast_math::gelu_in_place(chunk);
                }
                if let Some(r) = r {
                    for (y, &r) in chunk.iter_mut().zip(&r[t * ADD_CHUNK..]) {
                        *y += r;
                    }
                }
            })
        };
        match here {
            Some(r) => with_slice(r, |r| apply(&mut y, Some(r)))?,
            None => apply(&mut y, None),
        }
        let y = from_vec(y, &dims)?;
        match later {
            Some(r) => self.add(&y, r),
            None => Ok(y),
        }
    }

    fn layer_norm(&self, x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
        let n = x.dim(D::Minus1).map_err(err)?;
        let (g, b) = (
            gamma.flatten_all().map_err(err)?.to_vec1::<f32>().map_err(err)?,
            beta.flatten_all().map_err(err)?.to_vec1::<f32>().map_err(err)?,
        );
        if g.len() != n || b.len() != n {
            return Err(shape_err(format!("layer_norm over {n} features with {} weights", g.len())));
        }
        let out = with_slice(x, |data| {
            let mut out = vec![0f32; data.len()];
            out.par_chunks_mut(n).zip(data.par_chunks(n)).for_each(|(o, row)| layer_norm_row(row, &g, &b, eps, o));
            out
        })?;
        from_vec(out, x.dims())
    }

    fn gelu(&self, x: &Tensor) -> Result<Tensor> {
        let out = with_slice(x, |data| {
            let mut out = vec![0f32; data.len()];
            out.par_chunks_mut(4096).zip(data.par_chunks(4096)).for_each(|(o, d)| fast_math::gelu(d, o));
            out
        })?;
        from_vec(out, x.dims())
    }

    fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        // Residual sums (same shape) and a row added to every row, on rayon's threads: candle's
        // parallel element-wise ops run on its own pool, whose threads then spin a while,
        // on two cores taking one from the next rayon op. Anything else goes to candle.
        let (n, width) = (a.elem_count(), b.elem_count());
        let same = a.dims() == b.dims();
        let row = b.dims().iter().rev().skip(1).all(|&d| d == 1) && a.dim(D::Minus1).ok() == Some(width);
        if !(same || row) || width == 0 {
            return a.broadcast_add(b).map_err(err);
        }
        // Whole rows of `b` per task when it is one row, so it lines up with each.
        let chunk = if same { ADD_CHUNK } else { (ADD_CHUNK / width).max(1) * width };
        let out = with_slice(a, |a| {
            with_slice(b, |b| {
                let mut out = vec![0f32; n];
                out.par_chunks_mut(chunk).zip(a.par_chunks(chunk)).enumerate().for_each(|(t, (o, a))| {
                    let b = if same { &b[t * chunk..t * chunk + o.len()] } else { b };
                    for (o, a) in o.chunks_mut(b.len()).zip(a.chunks(b.len())) {
                        for ((o, &x), &y) in o.iter_mut().zip(a).zip(b) {
                            *o = x + y;
                        }
                    }
                });
                out
            })
        })??;
        from_vec(out, a.dims())
    }

    fn narrow_last(&self, x: &Tensor, start: usize, len: usize) -> Result<Tensor> {
        x.narrow(D::Minus1, start, len).map_err(err)?.contiguous().map_err(err)
    }

    fn attention(&self, q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Result<Tensor> {
        let (b, sq, hd) = q.dims3().map_err(err)?;
        let (bk, sk, _) = k.dims3().map_err(err)?;
        if heads == 0 || hd % heads != 0 || k.dims() != v.dims() || k.dim(2).map_err(err)? != hd {
            return Err(shape_err(format!(
                "attention: q {:?} k {:?} v {:?} heads {heads}",
                q.dims(),
                k.dims(),
                v.dims()
            )));
        }
        // Keys of batch 1 are shared by every query row (the image's cross-attention K/V under
        // beam search) and read in place, never copied per row.
        if bk != b && bk != 1 {
            return Err(shape_err(format!("attention: query batch {b} with key batch {bk}")));
        }
        let shape = attention::Shape { batch: b, key_batch: bk, sq, sk, hd, heads, causal };
        let out = with_slice(q, |q| with_slice(k, |k| with_slice(v, |v| attention::attention(q, k, v, &shape))))???;
        from_vec(out, &[b, sq, hd])
    }

    fn patch_embed(
        &self,
        pixels: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        class: &Tensor,
        position: &Tensor,
        patch: usize,
    ) -> Result<Tensor> {
        let (c, h, w) = pixels.dims3().map_err(err)?;
        let dim = weight.dim(0).map_err(err)?;
        if patch == 0 || h % patch != 0 || w % patch != 0 || weight.dims() != [dim, c, patch, patch] {
            return Err(shape_err(format!(
                "patch_embed: pixels {:?}, weight {:?}, patch {patch}",
                pixels.dims(),
                weight.dims()
            )));
        }
        let (gh, gw) = (h / patch, w / patch);
        let cols = with_slice(pixels, |px| im2col(px, c, h, w, patch))?;
        let cols = from_vec(cols, &[gh * gw, c * patch * patch])?;
        let wm = weight.reshape((dim, c * patch * patch)).map_err(err)?;
        let patches = cols.matmul(&wm.t().map_err(err)?).and_then(|p| p.broadcast_add(bias)).map_err(err)?;
        let class = class.reshape((1, dim)).map_err(err)?;
        let tokens = Tensor::cat(&[&class, &patches], 0).map_err(err)?;
        let position = position.reshape((gh * gw + 1, dim)).map_err(err)?;
        (tokens + position).and_then(|t| t.unsqueeze(0)).map_err(err)
    }

    fn embedding(&self, table: &CpuWeight, ids: &Tensor) -> Result<Tensor> {
        let (b, s) = ids.dims2().map_err(err)?;
        let (rows, cols) = table.rows_cols();
        let idx = ids.flatten_all().and_then(|t| t.to_vec1::<u32>()).map_err(err)?;
        if let Some(bad) = idx.iter().find(|&&i| i as usize >= rows) {
            return Err(shape_err(format!("token id {bad} outside the embedding table of {rows} rows")));
        }
        let flat = ids.flatten_all().map_err(err)?;
        let out = match table {
            CpuWeight::F32(t) => t.index_select(&flat, 0).map_err(err)?,
            CpuWeight::Quant { matrix, .. } => matrix.embedding(&flat).map_err(err)?,
        };
        out.reshape((b, s, cols)).map_err(err)
    }

    fn last_position(&self, x: &Tensor) -> Result<Tensor> {
        let s = x.dim(1).map_err(err)?;
        x.narrow(1, s - 1, 1).and_then(|t| t.contiguous()).map_err(err)
    }

    fn new_cache(&self, _capacity: usize, _width: usize) -> Result<CpuCache> {
        Ok(CpuCache::default())
    }

    fn cached_attention(&self, qkv: &Tensor, cache: &mut CpuCache, heads: usize) -> Result<Tensor> {
        let width = qkv.dim(D::Minus1).map_err(err)? / 3;
        let (q, k, v) = (
            self.narrow_last(qkv, 0, width)?,
            self.narrow_last(qkv, width, width)?,
            self.narrow_last(qkv, 2 * width, width)?,
        );
        let (k, v) = match cache.kv.take() {
            Some((ck, cv)) => (Tensor::cat(&[&ck, &k], 1).map_err(err)?, Tensor::cat(&[&cv, &v], 1).map_err(err)?),
            None => (k, v),
        };
        let out = self.attention(&q, &k, &v, heads, true)?;
        cache.kv = Some((k, v));
        Ok(out)
    }

    fn reorder_cache(&self, cache: &mut CpuCache, parents: &[usize]) -> Result<()> {
        if let Some((k, v)) = cache.kv.take() {
            cache.kv = Some((self.select_batch(&k, parents)?, self.select_batch(&v, parents)?));
        }
        Ok(())
    }

    fn argmax(&self, logits: &Tensor, suppress: Option<u32>) -> Result<Tensor> {
        let v = logits.dim(D::Minus1).map_err(err)?;
        let b = logits.dims().first().copied().unwrap_or(1);
        let ids = with_slice(logits, |l| l.chunks(v).map(|row| argmax_row(row, suppress)).collect::<Vec<u32>>())?;
        Tensor::from_vec(ids, (b, 1), &Device::Cpu).map_err(err)
    }

    async fn read_ids(&self, ids: &Tensor) -> Result<Vec<u32>> {
        ids.to_dtype(CDType::U32).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1::<u32>()).map_err(err)
    }

    async fn read_f32(&self, x: &Tensor) -> Result<Vec<f32>> {
        with_slice(x, <[f32]>::to_vec)
    }
}

impl CpuBackend {
    /// `x · Wᵀ + bias` as a host vector where one of our kernels made it (so an epilogue can work in
    /// place), else as candle's tensor; with the output's dimensions.
    fn product(&self, x: &Tensor, w: &CpuWeight, bias: Option<&Tensor>) -> Result<(Product, Vec<usize>)> {
        let dims = x.dims().to_vec();
        let (rows, cols) = w.rows_cols();
        let k = *dims.last().unwrap_or(&0);
        if k != cols {
            return Err(shape_err(format!("linear: input has {k} features, weight expects {cols}")));
        }
        let m = dims.iter().product::<usize>() / k.max(1);
        let x2 = x.reshape((m, k)).map_err(err)?;
        let gemm = q8_gemm::selected().filter(|_| m >= GEMM_MIN_ROWS);
        let few_rows = q8_gemm::selected().filter(|p| m < GEMM_MIN_ROWS && p.has_gemv());
        let y = match (w, gemm) {
            (CpuWeight::Quant { matrix, dtype, .. }, Some(path)) => {
                let data = matrix.data().map_err(err)?;
                let weights = match dtype {
                    DType::Q8_0 => q8_gemm::Weights::Q8_0(&data),
                    DType::Q4_0 => q8_gemm::Weights::Q4_0(&data),
                    DType::Q4_K => q8_gemm::Weights::Q4K(&data),
                    other => return Err(shape_err(format!("linear: no int8 GEMM for {other:?} weights"))),
                };
                let bias = bias.map(|b| b.flatten_all().and_then(|b| b.to_vec1::<f32>())).transpose().map_err(err)?;
                let y = with_slice(&x2, |x| q8_gemm::matmul(path, x, m, k, weights, rows, bias.as_deref()))?
                    .ok_or_else(|| {
                        shape_err(format!("linear: int8 GEMM ({}) refused [{m}, {k}] x [{rows}, {cols}]", path.name()))
                    })?;
                Product::Host(y)
            }
            // Decoder steps natively: the weights streamed once, at memory speed, on rayon's threads.
            (CpuWeight::Quant { matrix, dtype: DType::Q8_0, .. }, None) if few_rows.is_some() => {
                let path = few_rows.expect("guarded");
                let data = matrix.data().map_err(err)?;
                let bias = bias.map(|b| b.flatten_all().and_then(|b| b.to_vec1::<f32>())).transpose().map_err(err)?;
                let y = with_slice(&x2, |x| q8_gemm::gemv(path, x, m, k, &data, rows, bias.as_deref()))?.ok_or_else(
                    || shape_err(format!("linear: int8 GEMV ({}) refused [{m}, {k}] x [{rows}, {cols}]", path.name())),
                )?;
                Product::Host(y)
            }
            // Decoder steps on the threaded wasm build: candle's one-row product has no threads there.
            #[cfg(feature = "threads")]
            (CpuWeight::Quant { matrix, dtype: DType::Q8_0, .. }, None)
                if m == 1 && rows * k >= split_gemv::MIN_WEIGHTS && rayon::current_num_threads() > 1 =>
            {
                let data = matrix.data().map_err(err)?;
                let y = from_vec(with_slice(&x2, |x| split_gemv::matmul(x, k, &data, rows))??, &[1, rows])?;
                Product::Tensor(match bias {
                    Some(b) => y.broadcast_add(b).map_err(err)?,
                    None => y,
                })
            }
            _ => {
                let y = match w {
                    CpuWeight::F32(w) => x2.matmul(&w.t().map_err(err)?).map_err(err)?,
                    CpuWeight::Quant { matmul, .. } => matmul.forward(&x2).map_err(err)?,
                };
                Product::Tensor(match bias {
                    Some(b) => y.broadcast_add(b).map_err(err)?,
                    None => y,
                })
            }
        };
        let mut out_dims = dims;
        *out_dims.last_mut().expect("non-empty") = rows;
        Ok((y, out_dims))
    }

    /// Batch rows in the given order (beam reordering of caches).
    fn select_batch(&self, x: &Tensor, rows: &[usize]) -> Result<Tensor> {
        let b = x.dim(0).map_err(err)?;
        if rows.iter().any(|&r| r >= b) {
            return Err(shape_err(format!("select_batch: rows {rows:?} outside batch {b}")));
        }
        let idx: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        let idx = Tensor::from_vec(idx, rows.len(), &Device::Cpu).map_err(err)?;
        x.index_select(&idx, 0).map_err(err)
    }
}

fn layer_norm_row(x: &[f32], g: &[f32], b: &[f32], eps: f64, out: &mut [f32]) {
    let n = x.len() as f64;
    let mean = sum_f64(x, |v| v) / n;
    let var = sum_f64(x, |v| (v - mean) * (v - mean)) / n;
    let inv = 1.0 / (var + eps).sqrt();
    for (((o, &v), &g), &b) in out.iter_mut().zip(x).zip(g).zip(b) {
        *o = ((v as f64 - mean) * inv) as f32 * g + b;
    }
}

/// `Σ f(x)` in f64 over eight interleaved partial sums, combined pairwise: one long chain of
/// dependent additions per row was a twentieth of a vision pass. The order is fixed, so every
/// target computes the same sum.
#[inline(always)]
fn sum_f64(x: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0f64; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v as f64);
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += f(v as f64);
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

fn argmax_row(row: &[f32], suppress: Option<u32>) -> u32 {
    let mut best: Option<(u32, f32)> = None;
    for (i, &v) in row.iter().enumerate() {
        let i = i as u32;
        if Some(i) != suppress && best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map_or(0, |(i, _)| i)
}

/// `[c, h, w]` pixels → `[patches, c·p·p]` rows in the conv weight's (c, ky, kx) order.
fn im2col(px: &[f32], c: usize, h: usize, w: usize, p: usize) -> Vec<f32> {
    let (gh, gw) = (h / p, w / p);
    let mut out = Vec::with_capacity(gh * gw * c * p * p);
    for gy in 0..gh {
        for gx in 0..gw {
            for ch in 0..c {
                for ky in 0..p {
                    let start = ch * h * w + (gy * p + ky) * w + gx * p;
                    out.extend_from_slice(&px[start..start + p]);
                }
            }
        }
    }
    out
}
