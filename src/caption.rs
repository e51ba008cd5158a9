//! The whole captioner: model file → loaded model, image → caption. Front ends (CLI, web) call
//! only this.

use web_time::Instant;

use crate::backend::{Backend, Mark};
use crate::config::BlipConfig;
use crate::generate::{beam::beam_search, greedy::greedy, GenerateOptions, StepDecoder};
use crate::model::{Blip, CrossKv, SelfKv, TextDecoder};
use crate::preprocess::{pixel_values, ResizeMode, Rgb8};
use crate::tokenizer::BlipTokenizer;
use crate::weights::gguf::{GGUF_CONFIG_KEY, GGUF_TOKENIZER_KEY};
use crate::weights::reader::ByteReader;
use crate::weights::source::WeightSource;
use crate::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaptionOptions {
    pub generate: GenerateOptions,
    pub prompt: Option<String>,
    /// Input side in pixels; `None` = the model's own (384 for BLIP-base).
    pub image_size: Option<usize>,
    pub resize: ResizeMode,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Timings {
    pub preprocess: f64,
    pub vision: f64,
    pub decode: f64,
    pub total: f64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Caption {
    pub caption: String,
    /// As Hugging Face's `generate` returns them: bos and prompt included.
    pub token_ids: Vec<u32>,
    pub timings_ms: Timings,
}

pub struct Captioner<B: Backend> {
    pub backend: B,
    pub model: Blip<B>,
    pub tokenizer: BlipTokenizer,
}

impl<B: Backend> Captioner<B> {
    /// Loads a model from one file's bytes (GGUF or safetensors). `config_json` and
    /// `tokenizer_json` override what a GGUF file carries; a safetensors file needs both.
    pub fn load(backend: B, weights: &[u8], config_json: Option<&str>, tokenizer_json: Option<&[u8]>) -> Result<Self> {
        Self::from_source(backend, &WeightSource::parse(weights)?, config_json, tokenizer_json)
    }

    /// Loads a GGUF file through `reader`, one tensor in memory at a time (the browser's way:
    /// the file stays in storage). `progress(loaded, total)` hears of each tensor.
    pub fn load_streamed(backend: B, reader: &dyn ByteReader, progress: Option<&dyn Fn(u64, u64)>) -> Result<Self> {
        Self::from_source(backend, &WeightSource::streamed(reader, progress)?, None, None)
    }

    pub fn from_source(
        backend: B,
        source: &WeightSource,
        config_json: Option<&str>,
        tokenizer_json: Option<&[u8]>,
    ) -> Result<Self> {
        let config_text = config_json
            .or(source.metadata_str(GGUF_CONFIG_KEY))
            .ok_or_else(|| Error::config("the model file carries no BLIP config: give config.json (--config)"))?;
        let config = BlipConfig::from_json(config_text)?;
        let tokenizer_json =
            tokenizer_json.or(source.metadata_str(GGUF_TOKENIZER_KEY).map(str::as_bytes)).ok_or_else(|| {
                Error::Tokenizer("the model file carries no tokenizer: give tokenizer.json (--tokenizer)".into())
            })?;
        let tokenizer =
            BlipTokenizer::from_json(tokenizer_json, config.text_config.bos_token_id, config.text_config.sep_token_id)?;
        let model = Blip::load(&backend, config, source)?;
        Ok(Self { backend, model, tokenizer })
    }

    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    pub fn image_size(&self, opts: &CaptionOptions) -> usize {
        opts.image_size.unwrap_or(self.model.config.vision_config.image_size)
    }

    pub async fn caption(&self, image: &Rgb8, opts: &CaptionOptions) -> Result<Caption> {
        let start = Instant::now();
        let size = self.image_size(opts);
        if size > crate::MAX_INPUT_SIZE {
            return Err(Error::ImageSize(format!("{size} is above the limit of {}", crate::MAX_INPUT_SIZE)));
        }
        let pixels = pixel_values(image, size as u32, opts.resize)?;
        let preprocessed = Instant::now();
        let (ids, vision_ms) = self.caption_pixels(&pixels, size, opts).await?;
        let caption = self.tokenizer.decode(&ids)?;
        let end = Instant::now();
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        let decode = ms(preprocessed, end) - vision_ms;
        Ok(Caption {
            caption,
            token_ids: ids,
            timings_ms: Timings {
                preprocess: ms(start, preprocessed),
                vision: vision_ms,
                decode,
                total: ms(start, end),
            },
        })
    }

    /// Normalised pixels `[3, size, size]` → token ids, and the time the vision pass took (ms).
    pub async fn caption_pixels(&self, pixels: &[f32], size: usize, opts: &CaptionOptions) -> Result<(Vec<u32>, f64)> {
        let b = &self.backend;
        let start = Instant::now();
        b.mark(Mark::Vision);
        let image = self.model.vision.forward(b, &b.upload_f32(pixels, &[3, size, size])?, size)?;
        let cross = self.model.text.cross_kv(b, &image)?;
        b.mark(Mark::Decode);
        let vision_ms = (Instant::now() - start).as_secs_f64() * 1e3;
        let prefix = self.tokenizer.prefix(opts.prompt.as_deref())?;
        let positions = self.model.text.max_positions;
        if prefix.len() > positions {
            return Err(Error::Generate(format!("the prompt is longer than the model's {positions} positions")));
        }
        let mut gen = opts.generate.clone();
        // Positions past the table do not exist: stop there, as a shorter max_new_tokens would.
        gen.max_new_tokens = gen.max_new_tokens.min(positions - prefix.len());
        let ids = if gen.num_beams > 1 {
            let cache = SelfKv::new(b, &self.model.text, prefix.len() + gen.max_new_tokens)?;
            let mut session = BeamSession { b, text: &self.model.text, cross: &cross, cache };
            beam_search(&mut session, &prefix, &gen, self.model.config.text_config.sep_token_id).await?
        } else {
            greedy(b, &self.model.text, &cross, &prefix, &gen, self.model.config.text_config.sep_token_id).await?
        };
        Ok((ids, vision_ms))
    }
}

/// The decoder as beam search drives it: logits come back to the host every step.
struct BeamSession<'a, B: Backend> {
    b: &'a B,
    text: &'a TextDecoder<B>,
    cross: &'a CrossKv<B>,
    cache: SelfKv<B>,
}

impl<B: Backend> StepDecoder for BeamSession<'_, B> {
    fn vocab_size(&self) -> usize {
        self.text.vocab_size
    }

    async fn step(&mut self, tokens: &[Vec<u32>], parents: Option<&[usize]>) -> Result<Vec<f32>> {
        if let Some(parents) = parents {
            self.cache.reorder(self.b, parents)?;
        }
        let s = tokens.first().map_or(0, Vec::len);
        let flat: Vec<u32> = tokens.iter().flatten().copied().collect();
        let ids = self.b.ids(&flat, tokens.len())?;
        let logits = self.text.forward(self.b, &ids, s, &mut self.cache, self.cross)?;
        self.b.read_f32(&logits).await
    }
}
