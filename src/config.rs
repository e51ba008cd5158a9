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
    /// Only "gelu" (the exact erf form, HF's default for BLIP) is implemented.
    #[serde(default = "default_act")]
    pub hidden_act: String,
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
    /// Only "gelu", as for the vision tower.
    #[serde(default = "default_act")]
    pub hidden_act: String,
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
fn default_act() -> String {
    "gelu".into()
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
        // encoder_hidden_size is overwritten below with the vision width, as HF does.
        let text_defaults = serde_json::json!({
            "vocab_size": 30524, "hidden_size": 768, "encoder_hidden_size": 0, "intermediate_size": 3072,
            "num_hidden_layers": 12, "num_attention_heads": 8, "max_position_embeddings": 512,
        });
        let vision_defaults = serde_json::json!({
            "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
            "image_size": 384, "patch_size": 16,
        });
        fill_defaults(&mut value, "text_config", text_defaults);
        fill_defaults(&mut value, "vision_config", vision_defaults);
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
        if v.patch_size == 0
            || v.image_size == 0
            || v.image_size > MAX_IMAGE
            || !v.image_size.is_multiple_of(v.patch_size)
        {
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
        for (name, act) in [("vision", &v.hidden_act), ("text", &t.hidden_act)] {
            if act != "gelu" {
                return Err(Error::config(format!(
                    "{name} hidden_act \"{act}\" is not supported: edgecap implements BLIP's \"gelu\" (exact erf form) only"
                )));
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
    if heads == 0 || hidden == 0 || !hidden.is_multiple_of(heads) {
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

/// Fills the fields a checkpoint may leave out of one section with the transformers class
/// defaults (`BlipTextConfig`, `BlipVisionConfig`).
fn fill_defaults(value: &mut serde_json::Value, section: &str, defaults: serde_json::Value) {
    let Some(obj) = value.as_object_mut() else { return };
    let part = obj.entry(section).or_insert_with(|| serde_json::json!({}));
    let Some(part) = part.as_object_mut() else { return };
    for (k, v) in defaults.as_object().into_iter().flatten() {
        part.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blip_large_fills_defaults_and_feeds_vision_width_to_cross_attention() {
        // The shape of Salesforce/blip-image-captioning-large's config.json: fields equal to the
        // class defaults are left out.
        let c = BlipConfig::from_json(
            r#"{"text_config": {"num_attention_heads": 12},
                "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                                  "num_attention_heads": 16}}"#,
        )
        .unwrap();
        assert_eq!(c.text_config.encoder_hidden_size, 1024);
        assert_eq!(
            (c.text_config.hidden_size, c.text_config.vocab_size, c.text_config.num_hidden_layers),
            (768, 30524, 12)
        );
        assert_eq!((c.vision_config.image_size, c.vision_config.patch_size), (384, 16));
        assert_eq!(c.image_tokens(384), 577);
        assert!(c.text_config.tie_word_embeddings);
        assert_eq!((c.text_config.bos_token_id, c.text_config.sep_token_id), (30522, 102));
    }

    #[test]
    fn impossible_configs_are_refused_with_the_reason() {
        for (json, needle) in [
            (r#"{"text_config": {"num_attention_heads": 0}}"#, "num_attention_heads"),
            (r#"{"vision_config": {"hidden_size": 770}}"#, "not divisible"),
            (r#"{"vision_config": {"image_size": 100}}"#, "multiple of patch_size"),
            (r#"{"text_config": {"vocab_size": 50}}"#, "outside vocab"),
            (r#"{"text_config": {"num_hidden_layers": 0}}"#, "out of range"),
            ("not json", "JSON"),
            (r#"{"text_config": 5}"#, "not a BLIP config"),
            (r#"{"vision_config": {"hidden_act": "relu"}}"#, "vision hidden_act \"relu\" is not supported"),
            (r#"{"text_config": {"hidden_act": "gelu_new"}}"#, "text hidden_act \"gelu_new\" is not supported"),
        ] {
            let e = BlipConfig::from_json(json).unwrap_err().to_string();
            assert!(e.contains(needle), "{json}: {e}");
        }
    }
}
