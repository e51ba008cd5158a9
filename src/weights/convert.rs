//! Hugging Face safetensors → one self-contained GGUF file (weights, config and tokenizer).
//!
//! Quantization policy: every 2-D weight whose rows are a multiple of 32 becomes Q8_0 (word and
//! position embeddings included: they are gathered and dequantized per row); the tied LM head is
//! not stored twice; everything else stays F32 (F16 for tensors of rank ≥ 2 with `--dtype f16`).

use std::io::{self, Write};

use super::gguf::{self, MetaValue, TensorSpec};
use super::prune::{in_scope, PrunePlan, PruneReport, Pruning};
use super::safetensors::SafetensorsFile;
use super::{q8_0, DType, TensorView};
use crate::caption::{GGUF_CONFIG_KEY, GGUF_TOKENIZER_KEY};
use crate::config::BlipConfig;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetDType {
    Q8_0,
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

/// llama.cpp's `general.file_type` codes (LLAMA_FTYPE_ALL_F32, MOSTLY_F16, MOSTLY_Q8_0).
fn file_type(dtype: TargetDType) -> u32 {
    match dtype {
        TargetDType::F32 => 0,
        TargetDType::F16 => 1,
        TargetDType::Q8_0 => 7,
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
    Some(match opts.dtype {
        TargetDType::Q8_0 if shape.len() == 2 && shape[1].is_multiple_of(q8_0::QK8_0) => DType::Q8_0,
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
        // `plan` never picks them: 4-bit files are read, not written, so far.
        DType::Q4_0 | DType::Q4_K => return Err(io::Error::other(format!("{}: writing {dtype:?} is not supported", view.name))),
    };
    out.write_all(&bytes)
}

/// Writes the GGUF file to `out`. `progress(done, total)` is called with source bytes converted.
pub fn convert_to_gguf<W: Write>(
    safetensors: &[u8],
    config_json: &str,
    tokenizer_json: Option<&str>,
    opts: &ConvertOptions,
    out: &mut W,
    progress: impl FnMut(usize, usize),
) -> Result<ConvertReport> {
    convert_to_gguf_pruned(safetensors, config_json, tokenizer_json, opts, None, out, progress).map(|(r, _)| r)
}

/// [`convert_to_gguf`] with magnitude pruning of the tensors `pruning.scope` names (see
/// [`super::prune`]) before they are stored; pruned zeros are stored densely.
pub fn convert_to_gguf_pruned<W: Write>(
    safetensors: &[u8],
    config_json: &str,
    tokenizer_json: Option<&str>,
    opts: &ConvertOptions,
    pruning: Option<&Pruning>,
    out: &mut W,
    mut progress: impl FnMut(usize, usize),
) -> Result<(ConvertReport, Option<PruneReport>)> {
    let config = BlipConfig::from_json(config_json)?;
    let tied = config.text_config.tie_word_embeddings;
    let file = SafetensorsFile::parse(safetensors)?;
    let mut sources = Vec::new();
    let mut specs = Vec::new();
    for name in file.names() {
        // Integer buffers (the hub's `position_ids`) are not weights; `get` refuses their dtype.
        if is_buffer(name) {
            continue;
        }
        let view = file.get(name)?.ok_or_else(|| Error::model(format!("tensor {name} vanished")))?;
        let Some(dtype) = plan(name, view.shape, opts, tied) else { continue };
        specs.push(TensorSpec { name: name.to_string(), shape: view.shape.to_vec(), dtype });
        sources.push(name.to_string());
    }
    if opts.compat_candle && tied && !sources.iter().any(|n| n == LM_HEAD) {
        let view = file.require_view(WORD_EMBEDDINGS)?;
        let dtype = plan(LM_HEAD, view.shape, opts, false).unwrap_or(DType::F32);
        specs.push(TensorSpec { name: LM_HEAD.to_string(), shape: view.shape.to_vec(), dtype });
        sources.push(WORD_EMBEDDINGS.to_string());
    }
    // Ranked over the tensors the file will hold; the explicit LM-head copy is its source again.
    let prune_plan = match pruning {
        Some(p) => {
            let mut views = Vec::new();
            for name in &sources {
                let view = file.require_view(name)?;
                if in_scope(name, view.shape, p.scope) && !views.iter().any(|v: &TensorView| v.name == name) {
                    views.push(view);
                }
            }
            Some(PrunePlan::new(&views, p)?)
        }
        None => None,
    };
    let mut metadata = vec![
        ("general.architecture".to_string(), MetaValue::String("blip".into())),
        ("general.file_type".to_string(), MetaValue::U32(file_type(opts.dtype))),
        (GGUF_CONFIG_KEY.to_string(), MetaValue::String(config_json.to_string())),
    ];
    if opts.dtype == TargetDType::Q8_0 {
        metadata.push(("general.quantization_version".to_string(), MetaValue::U32(2)));
    }
    if let Some(t) = tokenizer_json {
        metadata.push((GGUF_TOKENIZER_KEY.to_string(), MetaValue::String(t.to_string())));
    }
    let total: usize = sources.iter().filter_map(|n| file.get(n).ok().flatten()).map(|v| v.data.len()).sum();
    let mut done = 0;
    let mut counter = CountingWriter { inner: out, written: 0 };
    gguf::write(&mut counter, &metadata, &specs, |i, w| {
        let view = file.get(&sources[i]).ok().flatten().ok_or_else(|| io::Error::other("tensor vanished"))?;
        encode(&view, specs[i].dtype, prune_plan.as_ref(), w)?;
        done += view.data.len();
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
