//! The BLIP config as Hugging Face writes it in `config.json` (`BlipForConditionalGeneration`).

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub image_size: usize,
    pub patch_size: usize,
    #[serde(default = "default_vision_eps")]
    pub layer_norm_eps: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub encoder_hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_text_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_bos")]
    pub bos_token_id: u32,
    #[serde(default = "default_sep")]
    pub sep_token_id: u32,
    #[serde(default)]
    pub pad_token_id: u32,
    /// The LM head shares the word-embedding matrix (HF's default for BLIP).
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlipConfig {
    pub vision_config: VisionConfig,
    pub text_config: TextConfig,
}

fn default_vision_eps() -> f64 {
    1e-5
}
fn default_text_eps() -> f64 {
    1e-12
}
fn default_true() -> bool {
    true
}
fn default_bos() -> u32 {
    30522
}
fn default_sep() -> u32 {
    102
}

/// Enough to refuse absurd sizes early: BLIP-large is 1024 wide, 24 layers.
const MAX_HIDDEN: usize = 8192;
const MAX_LAYERS: usize = 256;
const MAX_VOCAB: usize = 1 << 20;
const MAX_POSITIONS: usize = 1 << 16;
const MAX_IMAGE: usize = 4096;

impl BlipConfig {
    /// Parses `config.json`. Hugging Face's BLIP-base file leaves `encoder_hidden_size` and other
    /// text fields at their class defaults; those are filled in the way `BlipTextConfig` does.
    pub fn from_json(text: &str) -> Result<Self> {
        let mut value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::config(format!("not valid JSON: {e}")))?;
        fill_text_defaults(&mut value);
        fill_vision_defaults(&mut value);
        let mut config: BlipConfig =
            serde_json::from_value(value).map_err(|e| Error::config(format!("not a BLIP config: {e}")))?;
        // As `BlipConfig.__init__` does: the decoder attends to whatever the vision tower emits.
        config.text_config.encoder_hidden_size = config.vision_config.hidden_size;
        config.validate()?;
        Ok(config)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("config serialises")
    }

    pub fn validate(&self) -> Result<()> {
        let v = &self.vision_config;
        let t = &self.text_config;
        check_dims("vision", v.hidden_size, v.num_attention_heads, v.num_hidden_layers, v.intermediate_size)?;
        check_dims("text", t.hidden_size, t.num_attention_heads, t.num_hidden_layers, t.intermediate_size)?;
        if v.patch_size == 0 || v.image_size == 0 || v.image_size > MAX_IMAGE || v.image_size % v.patch_size != 0 {
            return Err(Error::config(format!(
                "vision image_size {} must be a positive multiple of patch_size {} (at most {MAX_IMAGE})",
                v.image_size, v.patch_size
            )));
        }
        if t.vocab_size == 0 || t.vocab_size > MAX_VOCAB {
            return Err(Error::config(format!("text vocab_size {} out of range", t.vocab_size)));
        }
        if t.max_position_embeddings == 0 || t.max_position_embeddings > MAX_POSITIONS {
            return Err(Error::config(format!(
                "text max_position_embeddings {} out of range",
                t.max_position_embeddings
            )));
        }
        if t.encoder_hidden_size != v.hidden_size {
            return Err(Error::config(format!(
                "text encoder_hidden_size {} differs from vision hidden_size {}",
                t.encoder_hidden_size, v.hidden_size
            )));
        }
        for (name, id) in [("bos", t.bos_token_id), ("sep", t.sep_token_id)] {
            if id as usize >= t.vocab_size {
                return Err(Error::config(format!("{name} token {id} outside vocab {}", t.vocab_size)));
            }
        }
        if !(v.layer_norm_eps > 0.0 && t.layer_norm_eps > 0.0) {
            return Err(Error::config("layer_norm_eps must be positive"));
        }
        Ok(())
    }

    /// Image tokens the decoder attends to at a given input size (CLS included).
    pub fn image_tokens(&self, image_size: usize) -> usize {
        let side = image_size / self.vision_config.patch_size;
        side * side + 1
    }
}

fn check_dims(part: &str, hidden: usize, heads: usize, layers: usize, ffn: usize) -> Result<()> {
    if heads == 0 || hidden == 0 || hidden % heads != 0 {
        return Err(Error::config(format!(
            "{part} hidden_size {hidden} is not divisible by num_attention_heads {heads}"
        )));
    }
    if hidden > MAX_HIDDEN || ffn == 0 || ffn > 8 * MAX_HIDDEN || layers == 0 || layers > MAX_LAYERS {
        return Err(Error::config(format!(
            "{part} sizes out of range (hidden {hidden}, intermediate {ffn}, layers {layers})"
        )));
    }
    Ok(())
}

/// `BlipTextConfig`'s defaults (transformers), for fields a checkpoint may leave out.
fn fill_text_defaults(value: &mut serde_json::Value) {
    let Some(obj) = value.as_object_mut() else { return };
    let text = obj.entry("text_config").or_insert_with(|| serde_json::json!({}));
    let Some(text) = text.as_object_mut() else { return };
    let defaults = serde_json::json!({
        "vocab_size": 30524, "hidden_size": 768, "encoder_hidden_size": 0, "intermediate_size": 3072,
        "num_hidden_layers": 12, "num_attention_heads": 8, "max_position_embeddings": 512,
    });
    for (k, v) in defaults.as_object().into_iter().flatten() {
        text.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

/// `BlipVisionConfig`'s defaults (transformers).
fn fill_vision_defaults(value: &mut serde_json::Value) {
    let Some(obj) = value.as_object_mut() else { return };
    let vision = obj.entry("vision_config").or_insert_with(|| serde_json::json!({}));
    let Some(vision) = vision.as_object_mut() else { return };
    let defaults = serde_json::json!({
        "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
        "image_size": 384, "patch_size": 16,
    });
    for (k, v) in defaults.as_object().into_iter().flatten() {
        vision.entry(k.clone()).or_insert_with(|| v.clone());
    }
}
