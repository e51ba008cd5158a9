//! The browser face of the library (wasm-bindgen): what the app's worker and other web apps call.
//! It owns no UI: the page (`www/`) does camera, speech and state, the worker (`www/worker.js`)
//! does storage and downloads, and this module loads models and captions frames. The API is
//! documented in docs/web-app.md and pkg/README.md.

mod engine;
mod errors;
mod fetch;
mod hash;
mod reader;

pub use engine::Engine;
pub use hash::Sha256;

use wasm_bindgen::prelude::*;

#[wasm_bindgen(start)]
fn start() {
    // Bugs still panic; in wasm a panic poisons the instance, so at least say where in the console.
    console_error_panic_hook::set_once();
}

/// The size of this module's linear memory in bytes. Wasm memory never shrinks, so after a load
/// this is the load's peak.
#[wasm_bindgen(js_name = wasmMemoryBytes)]
pub fn wasm_memory_bytes() -> f64 {
    wasm_bindgen::memory().unchecked_into::<js_sys::WebAssembly::Memory>().buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as f64
}

/// The WebGPU adapter's description, or `undefined` when `navigator.gpu` is missing or gives none.
#[wasm_bindgen(js_name = webgpuAdapterName)]
pub async fn webgpu_adapter_name() -> Option<String> {
    let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let gpu = js_sys::Reflect::get(&navigator, &"gpu".into()).ok().filter(|g| !g.is_undefined() && !g.is_null())?;
    let request: js_sys::Function = js_sys::Reflect::get(&gpu, &"requestAdapter".into()).ok()?.dyn_into().ok()?;
    let promise: js_sys::Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok().filter(|a| !a.is_null() && !a.is_undefined())?;
    let info = js_sys::Reflect::get(&adapter, &"info".into()).ok();
    let field = |k: &str| {
        info.as_ref()
            .and_then(|i| js_sys::Reflect::get(i, &k.into()).ok())
            .and_then(|v| v.as_string())
            .filter(|s| !s.is_empty())
    };
    Some(field("description").or_else(|| field("architecture")).or_else(|| field("vendor")).unwrap_or_else(|| "WebGPU adapter".into()))
}

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Sync random access to a model file that stays outside wasm memory (OPFS, a File, a buffer). */
export interface ModelReader {
  /** File length in bytes. */
  readonly size: number;
  /** Exactly `length` bytes from `offset`; throw if they are not there. */
  read(offset: number, length: number): Uint8Array;
}

/** One caption. `tokenIds` are as Hugging Face's `generate` returns them ([CLS] first). */
export interface CaptionResult {
  caption: string;
  tokenIds: number[];
  /** Milliseconds from pixels to words (preprocessing, vision pass, decoding). */
  ms: number;
  /** `ms` in parts. On WebGPU `vision` is the time to record the vision pass: the GPU's time shows in `decode`. */
  timingsMs: { preprocess: number; vision: number; decode: number; total: number };
  backend: "webgpu" | "cpu";
}

/** `captionWith`'s options. `minTokens` keeps [SEP] away until that many new tokens exist. */
export interface CaptionOptions {
  /** New tokens at most, 1-512 (default 20). */
  maxTokens?: number;
  /** New tokens at least, 0-maxTokens (default 0); equal to maxTokens, exactly that many. */
  minTokens?: number;
}

/** Every rejection is an Error with one of these codes. */
export type EdgecapErrorCode = "model" | "image" | "device-lost" | "gpu" | "unsupported" | "storage" | "network" | "busy" | "internal";

/** Which compute backend to use: WebGPU, the CPU (wasm SIMD), or WebGPU when there is an adapter. */
export type BackendChoice = "webgpu" | "cpu" | "auto";

/** Called after each tensor (loading) or chunk (downloading). */
export type ProgressCallback = (loaded: number, total: number) => void;
"#;
