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
/// `initThreadPool(n)` in JS: starts `n` Web Workers for rayon (the threaded build only).
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

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
    wasm_bindgen::memory()
        .unchecked_into::<js_sys::WebAssembly::Memory>()
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length() as f64
}

/// The WebGPU adapter's description, or `undefined` when `navigator.gpu` is missing or gives none.
#[wasm_bindgen(js_name = webgpuAdapterName)]
pub async fn webgpu_adapter_name() -> Option<String> {
    webgpu_adapter_info().await.map(|info| info.name())
}

/// What the browser's `GPUAdapterInfo` says (each field may be empty: browsers hide what they like).
#[derive(Debug, Clone, Default)]
pub(crate) struct WebGpuAdapterInfo {
    pub vendor: String,
    pub architecture: String,
    pub description: String,
}

impl WebGpuAdapterInfo {
    /// The most specific name the browser gives.
    pub fn name(&self) -> String {
        [&self.description, &self.architecture, &self.vendor]
            .into_iter()
            .find(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| "WebGPU adapter".into())
    }

    /// An Apple GPU (Safari on iPhone, iPad and Mac reports vendor "apple"). wgpu's adapter
    /// summary has no PCI vendor id in the browser, so this is how the engine knows.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))] // only the GPU backend asks
    pub fn is_apple(&self) -> bool {
        self.vendor.eq_ignore_ascii_case("apple")
    }
}

/// The adapter `navigator.gpu.requestAdapter()` gives, or `None` where there is no WebGPU or no
/// adapter. (wgpu asks for a high-performance one; that can differ only on a Mac with two GPUs,
/// neither of them Apple's, so whether the GPU is Apple's does not.)
pub(crate) async fn webgpu_adapter_info() -> Option<WebGpuAdapterInfo> {
    let get =
        |o: &JsValue, k: &str| js_sys::Reflect::get(o, &k.into()).ok().filter(|v| !v.is_undefined() && !v.is_null());
    let navigator = get(&js_sys::global(), "navigator")?;
    let gpu = get(&navigator, "gpu")?;
    let request: js_sys::Function = get(&gpu, "requestAdapter")?.dyn_into().ok()?;
    let promise: js_sys::Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
    let adapter =
        wasm_bindgen_futures::JsFuture::from(promise).await.ok().filter(|a| !a.is_null() && !a.is_undefined())?;
    let info = get(&adapter, "info");
    let field = |k: &str| info.as_ref().and_then(|i| get(i, k)).and_then(|v| v.as_string()).unwrap_or_default();
    Some(WebGpuAdapterInfo {
        vendor: field("vendor"),
        architecture: field("architecture"),
        description: field("description"),
    })
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

/** `load`'s GPU settings (ignored on the CPU; wrong values are refused with code "unsupported"). */
export interface LoadOptions {
  /** Dispatches per command buffer at most, 1-4096; 0 or absent: the engine's default for the
   *  adapter (256 on Apple GPUs, whose WebGPU fails on very large command buffers; no bound elsewhere). */
  submitEvery?: number;
  /** "adapter" (default): the adapter's own limits. "default": the WebGPU spec's default limits,
   *  what every WebGPU device guarantees (proves the kernels fit the smallest device). */
  gpuLimits?: GpuLimitsChoice;
}

/** Which device limits the WebGPU device is opened with. */
export type GpuLimitsChoice = "adapter" | "default";

/** Called after each tensor (loading) or chunk (downloading). */
export type ProgressCallback = (loaded: number, total: number) => void;
"#;
