//! Hugging Face safetensors (or any GGUF file we read) → one self-contained GGUF file (weights,
//! config and tokenizer).
//!
//! Quantization policy: every 2-D weight whose rows are whole blocks becomes the quantized type
//! (word and position embeddings included: they are gathered and dequantized per row); the tied
//! LM head is not stored twice; everything else stays F32 (F16 for tensors of rank ≥ 2 with
//! `--dtype f16`). Q4_K needs rows of 256 values; a weight with rows of another multiple of 32
//! (only test models have them) becomes Q4_0, so it stays 4-bit, where llama.cpp would pick a
//! 5-bit type we do not read. A GGUF source is decoded to f32 first, whatever it holds.

use std::io::{self, Write};

use super::gguf::{self, MetaValue, TensorSpec};
use super::prune::{in_scope, PrunePlan, PruneReport, Pruning};
use super::source::WeightSource;
use super::{q4, q8_0, DType, TensorView};
use crate::config::BlipConfig;
use crate::weights::gguf::{GGUF_CONFIG_KEY, GGUF_TOKENIZER_KEY};
use crate::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetDType {
    Q8_0,
    /// ggml's Q4_K (Q4_0 for rows that are not whole 256-value blocks).
    #[allow(non_camel_case_types)] // ggml's name
    Q4_K,
    Q4_0,
    F16,
    F32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvertOptions {
    pub dtype: TargetDType,
    /// Write the tied LM head explicitly, as candle-transformers' quantized_blip expects.
    pub compat_candle: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertReport {
    pub tensors: usize,
    pub bytes: u64,
}

const LM_HEAD: &str = "text_decoder.cls.predictions.decoder.weight";
const LM_HEAD_BIAS: &str = "text_decoder.cls.predictions.decoder.bias";
const WORD_EMBEDDINGS: &str = "text_decoder.bert.embeddings.word_embeddings.weight";

/// llama.cpp's `general.file_type` codes (LLAMA_FTYPE_ALL_F32, MOSTLY_F16, MOSTLY_Q4_0,
/// MOSTLY_Q8_0, MOSTLY_Q4_K_S: every quantized tensor Q4_K).
fn file_type(dtype: TargetDType) -> u32 {
    match dtype {
        TargetDType::F32 => 0,
        TargetDType::F16 => 1,
        TargetDType::Q4_0 => 2,
        TargetDType::Q8_0 => 7,
        TargetDType::Q4_K => 14,
    }
}

/// `position_ids` is `arange`, a buffer the model derives.
fn is_buffer(name: &str) -> bool {
    name.ends_with("position_ids")
}

/// The stored type of one tensor, or `None` to leave it out.
fn plan(name: &str, shape: &[usize], opts: &ConvertOptions, tied: bool) -> Option<DType> {
    // The decoder bias is `predictions.bias` again.
    if is_buffer(name) || name == LM_HEAD_BIAS {
        return None;
    }
    if name == LM_HEAD && tied {
        return None;
    }
    let rows_of = |block: usize| shape.len() == 2 && shape[1].is_multiple_of(block);
    Some(match opts.dtype {
        TargetDType::Q8_0 if rows_of(q8_0::QK8_0) => DType::Q8_0,
        TargetDType::Q4_K if rows_of(q4::QK_K) => DType::Q4_K,
        TargetDType::Q4_K | TargetDType::Q4_0 if rows_of(q4::QK4_0) => DType::Q4_0,
        TargetDType::F16 if shape.len() >= 2 => DType::F16,
        _ => DType::F32,
    })
}

fn encode(view: &TensorView, dtype: DType, prune: Option<&PrunePlan>, out: &mut dyn Write) -> io::Result<()> {
    let mut values = view.to_f32().map_err(|e| io::Error::other(e.to_string()))?;
    if let Some(plan) = prune {
        plan.apply(view.name, &mut values);
    }
    let bytes: Vec<u8> = match dtype {
        DType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::F16 => values.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
        DType::BF16 => values.iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect(),
        DType::Q8_0 => {
            let mut q = Vec::with_capacity(values.len() / q8_0::QK8_0 * q8_0::BLOCK_BYTES);
            q8_0::quantize(&values, &mut q).map_err(|e| io::Error::other(format!("{}: {e}", view.name)))?;
            q
        }
        DType::Q4_0 | DType::Q4_K => {
            let mut q = Vec::new();
            let quantize = if dtype == DType::Q4_0 { q4::quantize_q4_0 } else { q4::quantize_q4_k };
            quantize(&values, &mut q).map_err(|e| io::Error::other(format!("{}: {e}", view.name)))?;
            q
        }
    };
    out.write_all(&bytes)
}

/// Writes the GGUF file to `out` from `weights` (a safetensors or a GGUF file's bytes).
/// `progress(done, total)` is called with source bytes converted.
pub fn convert_to_gguf<W: Write>(
    weights: &[u8],
    config_json: &str,
    tokenizer_json: Option<&str>,
    opts: &ConvertOptions,
    out: &mut W,
    progress: impl FnMut(usize, usize),
) -> Result<ConvertReport> {
    convert_to_gguf_pruned(weights, config_json, tokenizer_json, opts, None, out, progress).map(|(r, _)| r)
}

/// [`convert_to_gguf`] with magnitude pruning of the tensors `pruning.scope` names (see
/// [`super::prune`]) before they are stored; pruned zeros are stored densely.
pub fn convert_to_gguf_pruned<W: Write>(
    weights: &[u8],
    config_json: &str,
    tokenizer_json: Option<&str>,
    opts: &ConvertOptions,
    pruning: Option<&Pruning>,
    out: &mut W,
    mut progress: impl FnMut(usize, usize),
) -> Result<(ConvertReport, Option<PruneReport>)> {
    let config = BlipConfig::from_json(config_json)?;
    let tied = config.text_config.tie_word_embeddings;
    let file = WeightSource::parse(weights)?;
    let mut sources = Vec::new();
    let mut specs = Vec::new();
    for name in file.names() {
        // Integer buffers (the hub's `position_ids`) are not weights; `get` refuses their dtype.
        if is_buffer(&name) {
            continue;
        }
        let t = file.require(&name)?;
        let Some(dtype) = plan(&name, t.shape, opts, tied) else { continue };
        specs.push(TensorSpec { name: name.clone(), shape: t.shape.to_vec(), dtype });
        sources.push(name);
    }
    if opts.compat_candle && tied && !sources.iter().any(|n| n == LM_HEAD) {
        let t = file.require(WORD_EMBEDDINGS)?;
        let dtype = plan(LM_HEAD, t.shape, opts, false).unwrap_or(DType::F32);
        specs.push(TensorSpec { name: LM_HEAD.to_string(), shape: t.shape.to_vec(), dtype });
        sources.push(WORD_EMBEDDINGS.to_string());
    }
    // Ranked over the tensors the file will hold; the explicit LM-head copy is its source again.
    let prune_plan = match pruning {
        Some(p) => {
            let mut tensors = Vec::new();
            for name in &sources {
                let t = file.require(name)?;
                if in_scope(name, t.shape, p.scope)
                    && !tensors.iter().any(|v: &super::source::SourceTensor| v.name == name)
                {
                    tensors.push(t);
                }
            }
            let views: Vec<TensorView> = tensors.iter().map(|t| t.view()).collect();
            Some(PrunePlan::new(&views, p)?)
        }
        None => None,
    };
    let mut metadata = vec![
        ("general.architecture".to_string(), MetaValue::String("blip".into())),
        ("general.file_type".to_string(), MetaValue::U32(file_type(opts.dtype))),
        (GGUF_CONFIG_KEY.to_string(), MetaValue::String(config_json.to_string())),
    ];
    if !matches!(opts.dtype, TargetDType::F32 | TargetDType::F16) {
        metadata.push(("general.quantization_version".to_string(), MetaValue::U32(2)));
    }
    if let Some(t) = tokenizer_json {
        metadata.push((GGUF_TOKENIZER_KEY.to_string(), MetaValue::String(t.to_string())));
    }
    let total: usize = sources.iter().filter_map(|n| file.get(n).ok().flatten()).map(|t| t.data.len()).sum();
    let mut done = 0;
    let mut counter = CountingWriter { inner: out, written: 0 };
    gguf::write(&mut counter, &metadata, &specs, |i, w| {
        let t = file.get(&sources[i]).ok().flatten().ok_or_else(|| io::Error::other("tensor vanished"))?;
        encode(&t.view(), specs[i].dtype, prune_plan.as_ref(), w)?;
        done += t.data.len();
        progress(done, total);
        Ok(())
    })?;
    Ok((ConvertReport { tensors: specs.len(), bytes: counter.written }, prune_plan.map(|p| p.report)))
}

struct CountingWriter<'a, W: Write> {
    inner: &'a mut W,
    written: u64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
