//! The GPU backend in a browser: WebGPU through wgpu's `webgpu` backend, in headless Chromium
//! (SwiftShader) under wasm-bindgen-test, captioning a fixture image with every decoding mode
//! and comparing with Hugging Face's token ids. Run by scripts/test.sh:
//!
//!     cargo test --target wasm32-unknown-unknown --no-default-features --features gpu --test wasm_gpu
//!
//! (with `wasm-bindgen-test-runner` as the target runner and `webdriver.json` for Chromium).
#![cfg(all(target_arch = "wasm32", feature = "gpu"))]

mod common;

use edgecap::backend::cpu::CpuBackend;
use edgecap::backend::gpu::GpuBackend;
use edgecap::preprocess::decode_image;
use edgecap::Captioner;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const MODEL: &[u8] = include_bytes!("fixtures/models/blip-tiny-random/model.safetensors");
const CONFIG: &str = include_str!("fixtures/models/blip-tiny-random/config.json");
const TOKENIZER: &[u8] = include_bytes!("fixtures/models/tokenizer.json");
const IMAGE: &[u8] = include_bytes!("fixtures/images/synthetic_160x120.png");
const IMAGES: [(&str, &[u8]); 3] = [
    ("images/synthetic_160x120.png", IMAGE),
    ("images/synthetic_64x64.png", include_bytes!("fixtures/images/synthetic_64x64.png")),
    ("images/synthetic_640x480.png", include_bytes!("fixtures/images/synthetic_640x480.png")),
];
const CASES: &str = include_str!("fixtures/reference/cases.json");

#[wasm_bindgen_test]
async fn a_fixture_image_captions_like_transformers_on_webgpu() {
    let gpu = GpuBackend::new().await.expect("the browser gives a WebGPU adapter");
    web_sys_log(&format!("adapter: {:?}", gpu.adapter()));
    let cap = captions_the_fixture_like_transformers(gpu).await;
    let stats = cap.backend.stats();
    web_sys_log(&format!("3 captions: {stats:?}"));
}

/// The same with the WebGPU spec's default limits and command buffers of at most 64 dispatches
/// (what the app does on an iPhone).
#[wasm_bindgen_test]
async fn spec_default_limits_and_64_dispatch_submits_caption_the_same() {
    use edgecap::backend::gpu::{GpuLimits, GpuOptions};
    let gpu = GpuBackend::with_options(GpuOptions {
        limits: GpuLimits::Default,
        submit_every: Some(64),
        ..Default::default()
    })
    .await
    .expect("the browser gives a WebGPU device with the default limits");
    let cap = captions_the_fixture_like_transformers(gpu).await;
    let stats = cap.backend.stats();
    assert!(stats.max_dispatches_per_submit <= 64, "{stats:?}");
    web_sys_log(&format!("default limits, submits of 64: {stats:?}"));
}

/// Loads the tiny model on `gpu` and checks its greedy, prompt and beam captions of the fixture
/// image against Hugging Face's token ids.
async fn captions_the_fixture_like_transformers(gpu: GpuBackend) -> Captioner<GpuBackend> {
    let cap = Captioner::load(gpu, MODEL, Some(CONFIG), Some(TOKENIZER)).expect("the model loads on WebGPU");
    let image = decode_image(IMAGE).unwrap();
    #[derive(serde::Deserialize)]
    struct File {
        cases: Vec<common::Case>,
    }
    let cases: File = serde_json::from_str(CASES).unwrap();
    let mut compared = 0;
    for case in
        cases.cases.iter().filter(|c| c.model == "models/blip-tiny-random" && c.image == "images/synthetic_160x120.png")
    {
        let got = cap.caption(&image, &common::mode_options(&case.mode)).await.expect("captions");
        assert_eq!(got.token_ids, case.token_ids, "{}", case.mode);
        compared += 1;
    }
    assert_eq!(compared, 3, "greedy, prompt and beam cases");
    cap
}

/// 4-bit weights on a browser's WebGPU: the tiny model converted to Q4_0 here, in wasm, and its
/// greedy caption of the fixture image on WebGPU against the wasm CPU backend's on the same file
/// (the 4-bit kernels quantize activations as the CPU does, so the ids must agree; natively
/// tests/gpu.rs takes every fixture case). One case: SwiftShader takes about a minute a caption.
#[wasm_bindgen_test]
async fn a_four_bit_model_captions_alike_on_webgpu_and_the_wasm_cpu() {
    use edgecap::weights::convert::{convert_to_gguf, ConvertOptions, TargetDType};
    let tokenizer = std::str::from_utf8(TOKENIZER).unwrap();
    let mut gguf = Vec::new();
    let opts = ConvertOptions { dtype: TargetDType::Q4_0, compat_candle: false };
    convert_to_gguf(MODEL, CONFIG, Some(tokenizer), &opts, &mut gguf, |_, _| {}).expect("converts to Q4_0");
    let image = decode_image(IMAGE).unwrap();
    let greedy = common::mode_options("greedy");
    let cpu = Captioner::load(CpuBackend, &gguf, None, None).expect("the 4-bit model loads on the CPU");
    let want = cpu.caption(&image, &greedy).await.expect("captions on the CPU");
    let gpu = GpuBackend::new().await.expect("the browser gives a WebGPU adapter");
    let gpu = Captioner::load(gpu, &gguf, None, None).expect("the 4-bit model loads on WebGPU");
    let got = gpu.caption(&image, &greedy).await.expect("captions on WebGPU");
    assert_eq!(got.token_ids, want.token_ids, "q4_0 greedy: WebGPU against the wasm CPU backend");
    web_sys_log(&format!("q4_0 on WebGPU: the wasm CPU backend's {} ids", want.token_ids.len()));
}

fn web_sys_log(message: &str) {
    wasm_bindgen_test::console_log!("{message}");
}
