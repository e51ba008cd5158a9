//! Benchmark peer in the browser: candle-transformers' `quantized_blip` (0.11.1) compiled to
//! wasm32 with SIMD128, so edgecap's wasm CPU path has an independent reference on the same
//! GGUF file, the same RGBA frame and the same number of decoder steps.
//! `benches/web/wasm_speed.mjs` drives it in headless Chromium; see README.md.
//!
//! Single-threaded: wasm32-unknown-unknown without atomics has no threads, and candle sizes
//! its pools to one thread there (`threads` says what candle reports).

// Same code generation as edgecap's wasm (the repository's .cargo/config.toml): without
// SIMD128, candle's q8_0 dot products and gemm's kernels fall back to scalar code.
#[cfg(all(target_arch = "wasm32", not(target_feature = "simd128")))]
compile_error!("build for wasm32 with -C target-feature=+simd128 (the repository's .cargo/config.toml sets it)");

use candle_core::quantized::gguf_file;
use candle_core::{Device, Module, Tensor};
use candle_transformers::models::blip;
use candle_transformers::models::quantized_blip::{BlipForConditionalGeneration, VarBuilder};
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use web_time::Instant;

/// Where edgecap's GGUF files keep the Hugging Face config.json text.
const CONFIG_KEY: &str = "blip.hf_config_json";
/// `[DEC]`: BLIP's bos, used when the file's config does not say.
const DEFAULT_BOS: u32 = 30522;
/// CLIP normalisation, as BLIP's preprocessor_config.json (and edgecap) give it.
const MEAN: [f32; 3] = [0.48145466, 0.4578275, 0.40821073];
#[allow(clippy::excessive_precision)]
const STD: [f32; 3] = [0.26862954, 0.26130258, 0.27577711];

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// A BLIP captioning model loaded into candle-transformers' `quantized_blip`.
#[wasm_bindgen]
pub struct CandleBlip {
    model: BlipForConditionalGeneration,
    image_size: usize,
    max_positions: usize,
    bos: u32,
}

#[wasm_bindgen]
impl CandleBlip {
    /// Loads a GGUF file with candle's layout (Hugging Face names, LM head written out:
    /// `edgecap convert --compat candle`). The whole file is copied into wasm memory while
    /// loading, as `VarBuilder::from_gguf_buffer` needs it. The config comes from the file's
    /// `blip.hf_config_json`, merged over BLIP-base's shapes; a file without one is BLIP-base.
    pub fn load(bytes: &[u8]) -> Result<CandleBlip, JsError> {
        let content = gguf_file::Content::read(&mut std::io::Cursor::new(bytes)).map_err(err)?;
        let file_config = match content.metadata.get(CONFIG_KEY) {
            Some(v) => Some(serde_json::from_str::<Value>(v.to_string().map_err(err)?)?),
            None => None,
        };
        drop(content);
        let bos = file_config
            .as_ref()
            .and_then(|c| c["text_config"]["bos_token_id"].as_u64())
            .map_or(DEFAULT_BOS, |b| b as u32);
        let cfg: blip::Config = serde_json::from_value(merged_config(file_config.as_ref()))?;
        let vb = VarBuilder::from_gguf_buffer(bytes, &Device::Cpu).map_err(err)?;
        let model = BlipForConditionalGeneration::new(&cfg, vb).map_err(err)?;
        Ok(CandleBlip {
            model,
            image_size: cfg.vision_config.image_size,
            max_positions: cfg.text_config.max_position_embeddings,
            bos,
        })
    }

    /// The model's input side in pixels (`caption` takes frames of exactly this size).
    #[wasm_bindgen(getter, js_name = imageSize)]
    pub fn image_size(&self) -> usize {
        self.image_size
    }

    /// The thread count candle reports (1 in wasm).
    #[wasm_bindgen(getter)]
    pub fn threads(&self) -> usize {
        candle_core::utils::get_num_threads()
    }

    /// Whether this build has wasm SIMD128 (always true: the build refuses otherwise).
    #[wasm_bindgen(getter)]
    pub fn simd128(&self) -> bool {
        candle_core::utils::with_simd128()
    }

    /// Captions an RGBA frame of `imageSize`² pixels (no resizing here: give the model's size)
    /// with exactly `tokens` greedy decoder steps ([SEP] does not stop it).
    /// Returns `{tokenIds: [bos, ...tokens ids], timingsMs: {preprocess, vision, decode, total}}`.
    /// Steps as candle's own BLIP decoding does them: the first feeds bos, each later one only the
    /// newest token (the self-attention KV cache holds the rest; candle recomputes the
    /// cross-attention K/V from the image embeddings at every step).
    pub fn caption(
        &mut self,
        rgba: &[u8],
        width: u32,
        height: u32,
        tokens: u32,
    ) -> Result<JsValue, JsError> {
        let (w, h, tokens) = (width as usize, height as usize, tokens as usize);
        if w != self.image_size || h != self.image_size {
            return Err(JsError::new(&format!(
                "the frame is {w}x{h}: give {0}x{0} (this harness does not resize)",
                self.image_size
            )));
        }
        if rgba.len() != w * h * 4 {
            return Err(JsError::new(&format!(
                "{} bytes for a {w}x{h} RGBA frame",
                rgba.len()
            )));
        }
        if tokens + 1 > self.max_positions {
            return Err(JsError::new(&format!(
                "{tokens} tokens need more than the model's {} positions",
                self.max_positions
            )));
        }
        let start = Instant::now();
        let image = Tensor::from_vec(normalize_chw(rgba, w * h), (1, 3, h, w), &Device::Cpu)
            .map_err(err)?;
        let preprocessed = Instant::now();
        self.model.reset_kv_cache();
        // candle's CPU backend is eager: the embeddings exist when this returns.
        let embeds = self.model.vision_model().forward(&image).map_err(err)?;
        let vision_done = Instant::now();
        let mut ids = vec![self.bos];
        for _ in 0..tokens {
            let input = Tensor::new(&ids[ids.len() - 1..], &Device::Cpu)
                .and_then(|t| t.unsqueeze(0))
                .map_err(err)?;
            let logits = self
                .model
                .text_decoder()
                .forward(&input, &embeds)
                .map_err(err)?;
            let next = (|| {
                let last = logits.squeeze(0)?;
                let last = last.get(last.dim(0)? - 1)?;
                last.argmax(0)?.to_scalar::<u32>()
            })()
            .map_err(err)?;
            ids.push(next);
        }
        let end = Instant::now();
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        let out = json!({
            "tokenIds": ids,
            "timingsMs": {
                "preprocess": ms(start, preprocessed),
                "vision": ms(preprocessed, vision_done),
                "decode": ms(vision_done, end),
                "total": ms(start, end),
            },
        });
        js_sys::JSON::parse(&out.to_string()).map_err(|_| JsError::new("JSON"))
    }
}

fn err(e: candle_core::Error) -> JsError {
    JsError::new(&e.to_string())
}

/// RGBA bytes → `[3, H, W]` as transformers' BLIP processor computes it: `x / 255` in f64,
/// cast to f32, then `(x - mean) / std` in f32 (edgecap's `normalize_chw` does the same, so
/// both engines see identical pixel values for the same frame).
fn normalize_chw(rgba: &[u8], plane: usize) -> Vec<f32> {
    let mut out = vec![0f32; 3 * plane];
    for c in 0..3 {
        for (dst, px) in out[c * plane..(c + 1) * plane]
            .iter_mut()
            .zip(rgba.chunks_exact(4))
        {
            let x = (f64::from(px[c]) / 255.0) as f32;
            *dst = (x - MEAN[c]) / STD[c];
        }
    }
    out
}

/// BLIP-base's shapes with the file's config.json fields laid over them: Hugging Face omits
/// fields equal to its class defaults, and candle's `Config` wants every field (some, such as
/// `hidden_act` and `is_decoder`, never appear in edgecap's files).
fn merged_config(file: Option<&Value>) -> Value {
    let mut cfg = json!({
        "projection_dim": 512,
        "image_text_hidden_size": 256,
        "vision_config": {
            "hidden_size": 768, "intermediate_size": 3072, "projection_dim": 512,
            "num_hidden_layers": 12, "num_attention_heads": 12,
            "image_size": 384, "patch_size": 16, "hidden_act": "gelu", "layer_norm_eps": 1e-5
        },
        "text_config": {
            "vocab_size": 30524, "hidden_size": 768, "encoder_hidden_size": 768,
            "intermediate_size": 3072, "projection_dim": 768,
            "num_hidden_layers": 12, "num_attention_heads": 12, "max_position_embeddings": 512,
            "hidden_act": "gelu", "layer_norm_eps": 1e-12, "is_decoder": true
        }
    });
    for section in ["vision_config", "text_config"] {
        let Some(Value::Object(fields)) = file.and_then(|f| f.get(section)) else {
            continue;
        };
        let dst = cfg[section].as_object_mut().expect("sections are objects");
        for (k, v) in fields {
            // Only fields candle's Config has; the rest (dropouts, token ids) are not its business.
            if dst.contains_key(k) && !v.is_null() {
                dst.insert(k.clone(), v.clone());
            }
        }
    }
    cfg
}
