//! What each fuzz target does with its input, shared by `fuzz/` (cargo fuzz, libFuzzer) and the
//! regression tests (`tests/fuzz_regressions.rs`), so a saved crash input replays through exactly
//! the code that found it. Each function must return normally for every input: an `Err` is the
//! right answer to a bad file, a panic, abort, hang or huge allocation is a finding.
#![doc(hidden)]

use crate::backend::cpu::CpuBackend;
use crate::config::BlipConfig;
use crate::preprocess::{decode_image, pixel_values, rgb_from_rgba, ResizeMode};
use crate::tokenizer::BlipTokenizer;
use crate::weights::gguf::GgufFile;
use crate::weights::reader::StreamedGguf;
use crate::weights::safetensors::SafetensorsFile;
use crate::Captioner;

/// A GGUF file: parsed in memory and through the streaming reader (the browser's path), every
/// tensor read, then loaded as a model on the CPU backend when it parses.
pub fn gguf(data: &[u8]) {
    if let Ok(file) = GgufFile::parse(data) {
        for info in file.tensors() {
            let _ = file.tensor_data(info);
        }
        let _ = file.get_str(crate::weights::gguf::GGUF_CONFIG_KEY);
    }
    let reader: &[u8] = data;
    if let Ok(streamed) = StreamedGguf::open(&reader, None) {
        let names: Vec<String> = streamed.header().tensors.iter().map(|t| t.name.clone()).collect();
        for name in names {
            let _ = streamed.read(&name);
        }
        let _ = Captioner::load_streamed(CpuBackend, &reader, None);
    }
}

/// A `model.safetensors`: parsed, every tensor viewed and widened to f32, then loaded as a model
/// with [`MICRO_CONFIG`] and [`MICRO_TOKENIZER`], so a file that parses goes on through the
/// loader's name and shape checks.
pub fn safetensors(data: &[u8]) {
    if let Ok(file) = SafetensorsFile::parse(data) {
        let names: Vec<String> = file.names().map(str::to_string).collect();
        for name in names {
            if let Ok(Some(view)) = file.get(&name) {
                let _ = view.to_f32();
            }
        }
        let _ = Captioner::load(CpuBackend, data, Some(MICRO_CONFIG), Some(MICRO_TOKENIZER.as_bytes()));
    }
}

/// `config.json` text; a config that validates must describe a model whose sizes fit in memory
/// arithmetic (no overflow computing tensor shapes from it).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = BlipConfig::from_json(text) {
        let v = &config.vision_config;
        let _ = config.image_tokens(v.image_size);
        let _ = BlipConfig::from_json(&config.to_json()).expect("a config that validated round-trips");
    }
}

/// An image file: decoded, then preprocessed at a small input size in the mode the first byte
/// picks; and the same bytes as an RGBA frame whose size the first four bytes give (the browser's
/// path, where the page hands over camera pixels).
pub fn image(data: &[u8]) {
    let mode = if data.first().is_some_and(|b| b & 1 == 1) { ResizeMode::Crop } else { ResizeMode::Stretch };
    if let Ok(img) = decode_image(data) {
        let _ = pixel_values(&img, 32, mode);
    }
    if data.len() >= 4 {
        let (w, h) = (u16::from_le_bytes([data[0], data[1]]) as u32, u16::from_le_bytes([data[2], data[3]]) as u32);
        if let Ok(img) = rgb_from_rgba(w, h, &data[4..]) {
            let _ = pixel_values(&img, 16, mode);
        }
    }
}

/// Token ids as the decoder could emit them (any u32, out-of-vocabulary ones included) decoded to
/// text, and the same bytes as a prompt when they are UTF-8.
pub fn tokenizer(tokenizer: &BlipTokenizer, data: &[u8]) {
    let ids: Vec<u32> = data.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let _ = tokenizer.decode(&ids);
    // Small ids are the ones the vocabulary holds; the fuzzer finds those faster this way.
    let small: Vec<u32> = data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as u32).collect();
    let _ = tokenizer.decode(&small);
    if let Ok(prompt) = std::str::from_utf8(data) {
        let _ = tokenizer.prefix(Some(prompt));
    }
}

/// The seed model's shapes: every tensor of BLIP at 32 wide and one layer (a few tens of
/// kilobytes, so the fuzzers mutate a whole loadable model thousands of times a second).
pub const MICRO_CONFIG: &str = r#"{"architectures": ["BlipForConditionalGeneration"], "model_type": "blip",
 "text_config": {"vocab_size": 16, "hidden_size": 32, "encoder_hidden_size": 32, "intermediate_size": 64,
   "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 16, "layer_norm_eps": 1e-12,
   "bos_token_id": 5, "sep_token_id": 2, "pad_token_id": 0},
 "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
   "image_size": 16, "patch_size": 8, "layer_norm_eps": 1e-5}}"#;

/// A 16-word tokenizer for [`MICRO_CONFIG`] (bos "[DEC]" = 5, sep "[SEP]" = 2).
pub const MICRO_TOKENIZER: &str = r#"{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
 "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
 "model": {"type": "WordLevel", "unk_token": "[UNK]", "vocab": {"[PAD]": 0, "[UNK]": 1, "[SEP]": 2, "a": 3,
   "dog": 4, "[DEC]": 5, "on": 6, "the": 7, "grass": 8, "with": 9, "ball": 10, "red": 11, "cat": 12,
   "sofa": 13, "of": 14, "picture": 15}}}"#;
