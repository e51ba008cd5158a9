//! The CPU backend as the browser runs it: wasm SIMD, candle's portable kernels and our SIMD128 (or,
//! in the relaxed-SIMD build, relaxed) int8 loops, none of the native AVX-512 ones. Run by
//! scripts/test.sh in both web builds:
//!
//!     cargo test --target wasm32-unknown-unknown --no-default-features --test wasm_cpu
//!
//! (with `wasm-bindgen-test-runner` as the target runner and `webdriver.json` for Chromium; the
//! relaxed-SIMD build adds `+relaxed-simd` to the target features).
#![cfg(target_arch = "wasm32")]

mod common;

use edgecap::backend::cpu::CpuBackend;
use edgecap::preprocess::decode_image;
use edgecap::Captioner;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const MODEL: &[u8] = include_bytes!("fixtures/models/blip-tiny-random/model.safetensors");
const CONFIG: &str = include_str!("fixtures/models/blip-tiny-random/config.json");
const TOKENIZER: &[u8] = include_bytes!("fixtures/models/tokenizer.json");
const IMAGES: [(&str, &[u8]); 3] = [
    ("images/synthetic_160x120.png", include_bytes!("fixtures/images/synthetic_160x120.png")),
    ("images/synthetic_64x64.png", include_bytes!("fixtures/images/synthetic_64x64.png")),
    ("images/synthetic_640x480.png", include_bytes!("fixtures/images/synthetic_640x480.png")),
];
const CASES: &str = include_str!("fixtures/reference/cases.json");

/// The CPU backend as the browser runs it (wasm SIMD, candle's portable kernels: none of the
/// native AVX-512 ones) against Hugging Face on every case of the tiny model. Every greedy and
/// prompt case here has a top-2 margin of at least 4e-3, far above f32 rounding.
#[wasm_bindgen_test]
async fn every_case_captions_like_transformers_on_the_wasm_cpu_backend() {
    let cap = Captioner::load(CpuBackend, MODEL, Some(CONFIG), Some(TOKENIZER)).expect("the model loads on the CPU");
    #[derive(serde::Deserialize)]
    struct File {
        cases: Vec<common::Case>,
    }
    let cases: File = serde_json::from_str(CASES).unwrap();
    let mut compared = 0;
    for case in cases.cases.iter().filter(|c| c.model == "models/blip-tiny-random") {
        let bytes = IMAGES.iter().find(|(name, _)| *name == case.image).expect("image included").1;
        let got =
            cap.caption(&decode_image(bytes).unwrap(), &common::mode_options(&case.mode)).await.expect("captions");
        assert_eq!(got.token_ids, case.token_ids, "{} {}", case.image, case.mode);
        compared += 1;
    }
    assert_eq!(compared, 9, "3 images x greedy, prompt and beam");
    console_log!(
        "wasm CPU ({}): 9 cases identical to HF",
        edgecap::backend::cpu::q8_gemm::selected().map_or("candle", |p| p.name())
    );
}
