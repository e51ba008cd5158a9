//! Inputs the fuzzers (`fuzz/`, cargo fuzz) found, replayed through the same target functions
//! on every `cargo test`, plus the micro model that seeds the model-loading fuzzers.
//!
//! A file in `fuzz/regressions/<target>/` is an input that once crashed, hung or over-allocated;
//! the test passes when every such input now returns normally (an error is fine).

mod common;
#[path = "../benches/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};

use common::*;
use edgecap::backend::cpu::CpuBackend;
use edgecap::fuzz_targets::{self, MICRO_CONFIG, MICRO_TOKENIZER};
use edgecap::preprocess::Rgb8;
use edgecap::tokenizer::BlipTokenizer;
use edgecap::weights::convert::{convert_to_gguf, ConvertOptions, TargetDType};
use edgecap::{CaptionOptions, Captioner};

const TARGETS: [&str; 5] = ["gguf", "safetensors", "config", "image", "tokenizer"];

fn regressions(target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

fn replay(target: &str, data: &[u8]) {
    match target {
        "gguf" => fuzz_targets::gguf(data),
        "safetensors" => fuzz_targets::safetensors(data),
        "config" => fuzz_targets::config(data),
        "image" => fuzz_targets::image(data),
        "tokenizer" => {
            let tokenizer = BlipTokenizer::from_json(&tokenizer_json(), 30522, 102).unwrap();
            fuzz_targets::tokenizer(&tokenizer, data)
        }
        _ => unreachable!("{target}"),
    }
}

#[test]
fn every_saved_fuzz_finding_now_returns_normally() {
    let mut replayed = 0;
    for target in TARGETS {
        for path in regressions(target) {
            let data = std::fs::read(&path).unwrap();
            // A panic here names the file through the test's output.
            eprintln!("replaying {}", path.display());
            replay(target, &data);
            replayed += 1;
        }
    }
    eprintln!("{replayed} saved inputs replayed");
}

#[test]
fn fixture_inputs_pass_through_every_target() {
    // The seeds themselves: valid files must stay valid through the targets (no false alarms).
    fuzz_targets::gguf(&micro_model(TargetDType::Q8_0));
    let config = edgecap::config::BlipConfig::from_json(MICRO_CONFIG).unwrap();
    fuzz_targets::safetensors(&support::random_safetensors(&config, 7));
    fuzz_targets::config(&read("models/blip-tiny-random/config.json"));
    fuzz_targets::image(&read("images/synthetic_64x64.png"));
    replay("tokenizer", &[0x1e, 0x77, 0, 0, 0xd2, 0x07, 0, 0, 102, 0, 0, 0]);
}

// ---------------------------------------------------------------------------------------------
// The micro model (fuzz_targets::MICRO_CONFIG with random weights), the seed of the
// model-loading fuzzers.

fn micro_model(dtype: TargetDType) -> Vec<u8> {
    let config = edgecap::config::BlipConfig::from_json(MICRO_CONFIG).unwrap();
    let st = support::random_safetensors(&config, 7);
    let mut out = Vec::new();
    let opts = ConvertOptions { dtype, compat_candle: false };
    convert_to_gguf(&st, MICRO_CONFIG, Some(MICRO_TOKENIZER), &opts, &mut out, |_, _| {}).unwrap();
    out
}

#[test]
fn the_micro_seed_model_loads_and_captions() {
    let bytes = micro_model(TargetDType::Q8_0);
    assert!(bytes.len() < 64 << 10, "micro model is {} bytes", bytes.len());
    let cap = Captioner::load(CpuBackend, &bytes, None, None).expect("micro model loads");
    let image = Rgb8::new(16, 16, (0..16 * 16 * 3).map(|i| (i * 7 % 256) as u8).collect()).unwrap();
    let out = pollster::block_on(cap.caption(&image, &CaptionOptions::default())).expect("micro model captions");
    assert_eq!(out.token_ids[0], 5, "starts with bos");
    assert!(out.token_ids.len() >= 2 && out.token_ids.iter().all(|&t| t < 16), "{:?}", out.token_ids);

    // `EDGECAP_FUZZ_SEEDS=DIR cargo test --test fuzz_regressions` writes the seed files there
    // (fuzz/seed.sh does this).
    if let Some(dir) = std::env::var_os("EDGECAP_FUZZ_SEEDS") {
        write_seeds(Path::new(&dir), &bytes);
    }
}

fn write_seeds(dir: &Path, q8: &[u8]) {
    let put = |target: &str, name: &str, data: &[u8]| {
        let d = dir.join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), data).unwrap();
    };
    put("gguf", "micro-q8_0.gguf", q8);
    put("gguf", "micro-f32.gguf", &micro_model(TargetDType::F32));
    put("gguf", "micro-f16.gguf", &micro_model(TargetDType::F16));
    let config = edgecap::config::BlipConfig::from_json(MICRO_CONFIG).unwrap();
    put("safetensors", "micro.safetensors", &support::random_safetensors(&config, 7));
    put("config", "micro.json", MICRO_CONFIG.as_bytes());
    put("config", "blip-base.json", support::BLIP_BASE_CONFIG.as_bytes());
}

#[test]
fn tokenizer_json_that_tokenizers_would_panic_on_is_an_error() {
    // The gguf target's first finding: a syntax error inside "decoder" made `tokenizers` panic
    // ("Helper") instead of returning an error.
    let bad_decoder = MICRO_TOKENIZER.replace(r#""decoder": null"#, r#""decoder": {"type": "WordPiece", "prefix": ]}"#);
    assert!(BlipTokenizer::from_json(bad_decoder.as_bytes(), 5, 2).is_err());
    // `tokenizers` also `expect`s a Precompiled normalizer's character map to parse.
    let precompiled = MICRO_TOKENIZER.replace(
        r#""normalizer": null"#,
        r#""normalizer": {"type": "Precompiled", "precompiled_charsmap": "not base64 at all"}"#,
    );
    assert!(BlipTokenizer::from_json(precompiled.as_bytes(), 5, 2).is_err());
    assert!(BlipTokenizer::from_json(MICRO_TOKENIZER.as_bytes(), 5, 2).is_ok());
}
