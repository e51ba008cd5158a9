//! `Engine`: a loaded model on one backend, captioning RGBA frames.

use std::cell::Cell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use super::errors::js_error;
use super::reader::{JsBytes, JsReader, ModelReader};
use crate::backend::cpu::CpuBackend;
#[cfg(feature = "gpu")]
use crate::backend::gpu::{default_submit_every, AdapterSummary, GpuBackend, GpuLimits, GpuOptions};
use crate::preprocess::rgb_from_rgba;
use crate::weights::reader::ByteReader;
use crate::{Caption, CaptionOptions, Captioner};

enum Model {
    Cpu(Captioner<CpuBackend>),
    #[cfg(feature = "gpu")]
    Gpu(Captioner<GpuBackend>),
}

struct Inner {
    model: Model,
    /// One caption at a time: the GPU recorder and the CPU threads are not shared.
    busy: Cell<bool>,
}

/// A BLIP model loaded on WebGPU or the CPU.
#[wasm_bindgen]
pub struct Engine {
    inner: Rc<Inner>,
    adapter: String,
    /// What the GPU backend was opened with (`None` on the CPU).
    gpu: Option<GpuSettings>,
}

/// `load`'s options (`LoadOptions` in TypeScript).
#[cfg_attr(not(feature = "gpu"), allow(dead_code))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct LoadOptions {
    /// `None`: the default for the adapter.
    submit_every: Option<usize>,
    default_limits: bool,
}

/// The GPU backend's effective settings, reported by `submitEvery` and `gpuLimits`.
#[cfg_attr(not(feature = "gpu"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GpuSettings {
    submit_every: Option<usize>,
    default_limits: bool,
}

/// Most dispatches per command buffer `submitEvery` takes (the GPU recorder's parameter arena
/// holds 4096 anyway).
const MAX_SUBMIT_EVERY: u32 = 4096;
/// Apple's PCI vendor id, which wgpu reports natively and `default_submit_every` looks for.
#[cfg(feature = "gpu")]
const APPLE_VENDOR_ID: u32 = 0x106b;

#[wasm_bindgen]
impl Engine {
    /// Loads a GGUF model through `reader`, one tensor in wasm memory at a time.
    /// `backend`: "webgpu", "cpu" or "auto" (WebGPU when the browser gives an adapter).
    /// `options`: `{submitEvery?, gpuLimits?}` for the GPU (see `LoadOptions`).
    pub async fn load(
        reader: ModelReader,
        #[wasm_bindgen(unchecked_param_type = "BackendChoice")] backend: String,
        #[wasm_bindgen(js_name = onProgress, unchecked_optional_param_type = "ProgressCallback")] on_progress: Option<
            js_sys::Function,
        >,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<js_sys::Object>,
    ) -> Result<Engine, JsValue> {
        let options = load_options(options.as_ref())?;
        Self::load_from(&JsReader(reader), &backend, on_progress, options).await
    }

    /// Loads a GGUF model held in a `Uint8Array`, copying one tensor at a time into wasm memory.
    #[wasm_bindgen(js_name = fromBytes)]
    pub async fn from_bytes(
        bytes: js_sys::Uint8Array,
        #[wasm_bindgen(unchecked_param_type = "BackendChoice")] backend: String,
        #[wasm_bindgen(js_name = onProgress, unchecked_optional_param_type = "ProgressCallback")] on_progress: Option<
            js_sys::Function,
        >,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<js_sys::Object>,
    ) -> Result<Engine, JsValue> {
        let options = load_options(options.as_ref())?;
        Self::load_from(&JsBytes(bytes), &backend, on_progress, options).await
    }

    /// Downloads a GGUF model (`onProgress` hears of the bytes as they arrive, then of the
    /// tensors as they load) and loads it. Nothing is stored: the app's worker keeps its model
    /// in the origin's private storage instead.
    #[wasm_bindgen(js_name = fromUrl)]
    pub async fn from_url(
        url: String,
        #[wasm_bindgen(unchecked_param_type = "BackendChoice")] backend: String,
        #[wasm_bindgen(js_name = onProgress, unchecked_optional_param_type = "ProgressCallback")] on_progress: Option<
            js_sys::Function,
        >,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<js_sys::Object>,
    ) -> Result<Engine, JsValue> {
        let options = load_options(options.as_ref())?;
        let bytes = super::fetch::download(&url, on_progress.as_ref()).await?;
        Self::load_from(&JsBytes(bytes), &backend, on_progress, options).await
    }

    /// "webgpu" or "cpu".
    #[wasm_bindgen(getter, unchecked_return_type = "\"webgpu\" | \"cpu\"")]
    pub fn backend(&self) -> String {
        backend_name(&self.inner.model).into()
    }

    /// The adapter's description (WebGPU), or "cpu (wasm simd128)".
    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> String {
        self.adapter.clone()
    }

    /// On WebGPU, the most dispatches one command buffer carries before it is submitted
    /// (`undefined`: no bound but the recorder's own, or the CPU).
    #[wasm_bindgen(getter, js_name = submitEvery)]
    pub fn submit_every(&self) -> Option<u32> {
        self.gpu.and_then(|g| g.submit_every).map(|n| n.min(u32::MAX as usize) as u32)
    }

    /// On WebGPU, the device limits it was opened with: "adapter" (the adapter's own) or "default"
    /// (the WebGPU spec's defaults); `undefined` on the CPU.
    #[wasm_bindgen(getter, js_name = gpuLimits, unchecked_return_type = "GpuLimitsChoice | undefined")]
    pub fn gpu_limits(&self) -> Option<String> {
        self.gpu.map(|g| if g.default_limits { "default" } else { "adapter" }.to_string())
    }

    /// True for a model smaller than BLIP-base (vision width under 768): only the tiny
    /// random-weight test models are, and their words are noise. The app says so.
    #[wasm_bindgen(getter, js_name = isTestModel)]
    pub fn is_test_model(&self) -> bool {
        let config = match &self.inner.model {
            Model::Cpu(c) => &c.model.config,
            #[cfg(feature = "gpu")]
            Model::Gpu(c) => &c.model.config,
        };
        config.vision_config.hidden_size < 768
    }

    /// Captions RGBA pixels (`width * height * 4` bytes, row by row, as `ImageData.data`).
    #[wasm_bindgen(unchecked_return_type = "Promise<CaptionResult>")]
    pub fn caption(&self, rgba: &[u8], width: u32, height: u32) -> js_sys::Promise {
        self.caption_opts(rgba, width, height, Ok(CaptionOptions::default()))
    }

    /// `caption` with generation options: `{maxTokens, minTokens}` (defaults 20 and 0; missing
    /// fields keep them). `minTokens` keeps [SEP] away until that many tokens exist, so
    /// `minTokens == maxTokens` forces exactly that many (the speed benchmarks do this).
    #[wasm_bindgen(js_name = captionWith, unchecked_return_type = "Promise<CaptionResult>")]
    pub fn caption_with(
        &self,
        rgba: &[u8],
        width: u32,
        height: u32,
        #[wasm_bindgen(unchecked_optional_param_type = "CaptionOptions")] options: Option<js_sys::Object>,
    ) -> js_sys::Promise {
        self.caption_opts(rgba, width, height, caption_options(options.as_ref()))
    }

    /// Captions an `ImageData` (a canvas's pixels).
    #[wasm_bindgen(js_name = captionImageData, unchecked_return_type = "Promise<CaptionResult>")]
    pub fn caption_image_data(&self, image: web_sys::ImageData) -> js_sys::Promise {
        self.caption(&image.data(), image.width(), image.height())
    }

    /// Resolves once a tiny GPU round trip has come back, or rejects with code "device-lost" when
    /// the device cannot do one (lost while or right after loading). Resolves at once on the CPU.
    #[wasm_bindgen(js_name = checkDevice, unchecked_return_type = "Promise<void>")]
    pub fn check_device(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            if inner.busy.replace(true) {
                return Err(js_error("busy", "a caption is running on this engine"));
            }
            let result = round_trip(&inner.model).await;
            inner.busy.set(false);
            // As after a failed caption: a device that fails this will not caption either.
            result.map(|()| JsValue::UNDEFINED).map_err(|e| js_error("device-lost", e))
        })
    }

    /// Test hook: destroys the GPU device as a driver reset or a backgrounded tab would, so the
    /// next caption fails with code "device-lost". Does nothing on the CPU.
    #[wasm_bindgen(js_name = loseDevice)]
    pub fn lose_device(&self) {
        #[cfg(feature = "gpu")]
        if let Model::Gpu(c) = &self.inner.model {
            c.backend.simulate_device_loss();
        }
    }
}

impl Engine {
    fn caption_opts(
        &self,
        rgba: &[u8],
        width: u32,
        height: u32,
        opts: Result<CaptionOptions, JsValue>,
    ) -> js_sys::Promise {
        let image = rgb_from_rgba(width, height, rgba);
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let opts = opts?;
            let image = image.map_err(crate::Error::from)?;
            if inner.busy.replace(true) {
                return Err(js_error("busy", "a caption is already running on this engine"));
            }
            let result = caption_on(&inner.model, &image, &opts).await;
            inner.busy.set(false);
            match result {
                Ok(c) => Ok(result_object(&c, backend_name(&inner.model))),
                // GPU errors are sticky (see backend/gpu/device.rs): whether the device was lost
                // or failed validation, it will not caption again, so the caller reloads on the CPU.
                Err(e @ crate::Error::Backend { .. }) if backend_name(&inner.model) == "webgpu" => {
                    Err(js_error("device-lost", e))
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    async fn load_from(
        reader: &dyn ByteReader,
        backend: &str,
        on_progress: Option<js_sys::Function>,
        options: LoadOptions,
    ) -> Result<Engine, JsValue> {
        let report = |loaded: u64, total: u64| {
            if let Some(f) = &on_progress {
                let _ = f.call2(&JsValue::NULL, &(loaded as f64).into(), &(total as f64).into());
            }
        };
        let progress: &dyn Fn(u64, u64) = &report;
        let want_gpu = match backend {
            "cpu" => false,
            "webgpu" => true,
            "auto" => super::webgpu_adapter_info().await.is_some(),
            other => {
                return Err(js_error("unsupported", format!("unknown backend {other:?}: use webgpu, cpu or auto")))
            }
        };
        let (model, adapter, gpu) = if want_gpu {
            let (model, adapter, settings) = Self::load_gpu(reader, progress, options).await?;
            (model, adapter, Some(settings))
        } else {
            (Model::Cpu(Captioner::load_streamed(CpuBackend, reader, Some(progress))?), cpu_description(), None)
        };
        Ok(Engine { inner: Rc::new(Inner { model, busy: Cell::new(false) }), adapter, gpu })
    }

    #[cfg(feature = "gpu")]
    async fn load_gpu(
        reader: &dyn ByteReader,
        progress: &dyn Fn(u64, u64),
        options: LoadOptions,
    ) -> Result<(Model, String, GpuSettings), JsValue> {
        // The spec's `GPUAdapterInfo` is all the browser tells: wgpu's summary has neither the
        // name nor a PCI vendor id in wasm.
        let info = super::webgpu_adapter_info().await.unwrap_or_default();
        let submit_every = options.submit_every.or_else(|| if info.is_apple() { apple_submit_every() } else { None });
        let limits = if options.default_limits { GpuLimits::Default } else { GpuLimits::Adapter };
        let gpu = GpuBackend::with_options(GpuOptions { limits, submit_every, ..GpuOptions::default() })
            .await
            .map_err(|e| js_error("unsupported", format!("WebGPU: {e}")))?;
        let mut adapter = gpu.adapter().name.clone();
        if adapter.is_empty() {
            adapter = info.name();
        }
        let settings = GpuSettings { submit_every: gpu.submit_every(), default_limits: options.default_limits };
        let cap = Captioner::load_streamed(gpu, reader, Some(progress))?;
        Ok((Model::Gpu(cap), adapter, settings))
    }

    #[cfg(not(feature = "gpu"))]
    async fn load_gpu(
        _: &dyn ByteReader,
        _: &dyn Fn(u64, u64),
        _: LoadOptions,
    ) -> Result<(Model, String, GpuSettings), JsValue> {
        Err(js_error("unsupported", "this build has no WebGPU backend"))
    }
}

/// The backend's default for an Apple GPU, for the browser, where wgpu's adapter summary carries
/// no vendor id and the engine learns "apple" from `GPUAdapterInfo.vendor` instead
/// (docs/web-app.md, "Command-buffer size on iOS").
#[cfg(feature = "gpu")]
fn apple_submit_every() -> Option<usize> {
    default_submit_every(&AdapterSummary {
        name: String::new(),
        backend: "browserwebgpu".into(),
        device_type: String::new(),
        vendor: APPLE_VENDOR_ID,
    })
}

/// `{submitEvery?, gpuLimits?}` → options; `undefined`/`null` keeps the defaults. Wrong values are
/// refused (code "unsupported") rather than guessed at.
fn load_options(js: Option<&js_sys::Object>) -> Result<LoadOptions, JsValue> {
    let mut opts = LoadOptions::default();
    let Some(js) = js else { return Ok(opts) };
    if !js.is_object() {
        return Err(js_error(
            "unsupported",
            "load: options must be an object such as {submitEvery: 256, gpuLimits: \"adapter\"}",
        ));
    }
    let field = |name: &str| -> Result<Option<JsValue>, JsValue> {
        let v = js_sys::Reflect::get(js, &name.into())?;
        Ok((!v.is_undefined() && !v.is_null()).then_some(v))
    };
    if let Some(v) = field("submitEvery")? {
        match v.as_f64() {
            Some(n) if n.fract() == 0.0 && (0.0..=f64::from(MAX_SUBMIT_EVERY)).contains(&n) => {
                opts.submit_every = (n > 0.0).then_some(n as usize);
            }
            _ => {
                return Err(js_error(
                    "unsupported",
                    format!("load: submitEvery must be a whole number from 0 (the default for the adapter) to {MAX_SUBMIT_EVERY}"),
                ))
            }
        }
    }
    if let Some(v) = field("gpuLimits")? {
        opts.default_limits = match v.as_string().as_deref() {
            Some("adapter") => false,
            Some("default") => true,
            _ => return Err(js_error("unsupported", "load: gpuLimits must be \"adapter\" or \"default\"")),
        };
    }
    Ok(opts)
}

fn backend_name(model: &Model) -> &'static str {
    match model {
        Model::Cpu(_) => "cpu",
        #[cfg(feature = "gpu")]
        Model::Gpu(_) => "webgpu",
    }
}

/// The CLI's defaults (greedy, 20 new tokens, stretch to the model's size) unless `captionWith`
/// changed the token counts, so the app and `edgecap caption` agree on the same frame.
async fn caption_on(model: &Model, image: &crate::preprocess::Rgb8, opts: &CaptionOptions) -> crate::Result<Caption> {
    match model {
        #[cfg(feature = "threads")]
        Model::Cpu(c) => on_pool(|| c.caption(image, opts)),
        #[cfg(not(feature = "threads"))]
        Model::Cpu(c) => c.caption(image, opts).await,
        #[cfg(feature = "gpu")]
        Model::Gpu(c) => c.caption(image, opts).await,
    }
}

/// Runs a CPU caption start to end on one of rayon's workers (`rayon::scope` called from outside
/// the pool moves its body there and blocks this thread until it is done), so the parallel ops
/// inside it are work stealing among the pool's workers rather than one hand-over from this
/// thread and back per op. The CPU backend's futures never wait, so one poll finishes the caption.
#[cfg(feature = "threads")]
fn on_pool<F: std::future::Future<Output = crate::Result<Caption>>>(
    make: impl FnOnce() -> F + Send,
) -> crate::Result<Caption> {
    use std::task::{Context, Poll, Waker};
    rayon::scope(|_| {
        let mut caption = std::pin::pin!(make());
        match caption.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(r) => r,
            Poll::Pending => {
                Err(crate::Error::Backend { backend: "cpu", message: "a CPU caption waited on something".into() })
            }
        }
    })
}

/// One submit and readback on the GPU (nothing on the CPU).
async fn round_trip(model: &Model) -> crate::Result<()> {
    match model {
        Model::Cpu(_) => Ok(()),
        #[cfg(feature = "gpu")]
        Model::Gpu(c) => c.backend.finish().await,
    }
}

/// Most new tokens `captionWith` takes (BLIP-base has 512 positions; the engine also stops at the
/// model's own limit).
const MAX_TOKENS: u32 = 512;

/// `{maxTokens?, minTokens?}` → options; `undefined`/`null` keeps the defaults. Wrong values are
/// refused (code "unsupported") rather than rounded.
fn caption_options(js: Option<&js_sys::Object>) -> Result<CaptionOptions, JsValue> {
    let mut opts = CaptionOptions::default();
    let Some(js) = js else { return Ok(opts) };
    // wasm-bindgen does not check that the argument is an object.
    if !js.is_object() {
        return Err(js_error(
            "unsupported",
            "captionWith: options must be an object such as {maxTokens: 20, minTokens: 0}",
        ));
    }
    let field = |name: &str, low: u32| -> Result<Option<usize>, JsValue> {
        let v = js_sys::Reflect::get(js, &name.into())?;
        if v.is_undefined() {
            return Ok(None);
        }
        match v.as_f64() {
            Some(n) if n.fract() == 0.0 && (f64::from(low)..=f64::from(MAX_TOKENS)).contains(&n) => {
                Ok(Some(n as usize))
            }
            _ => Err(js_error(
                "unsupported",
                format!("captionWith: {name} must be a whole number from {low} to {MAX_TOKENS}"),
            )),
        }
    };
    let gen = &mut opts.generate;
    if let Some(n) = field("maxTokens", 1)? {
        gen.max_new_tokens = n;
    }
    if let Some(n) = field("minTokens", 0)? {
        gen.min_new_tokens = n;
    }
    if gen.min_new_tokens > gen.max_new_tokens {
        return Err(js_error(
            "unsupported",
            format!("captionWith: minTokens ({}) is above maxTokens ({})", gen.min_new_tokens, gen.max_new_tokens),
        ));
    }
    Ok(opts)
}

fn result_object(c: &Caption, backend: &str) -> JsValue {
    let o = js_sys::Object::new();
    let set = |k: &str, v: JsValue| {
        let _ = js_sys::Reflect::set(&o, &k.into(), &v);
    };
    set("caption", c.caption.as_str().into());
    set("tokenIds", c.token_ids.iter().map(|&i| JsValue::from(i)).collect::<js_sys::Array>().into());
    set("ms", c.timings_ms.total.into());
    let t = &c.timings_ms;
    let timings = js_sys::Object::new();
    for (k, v) in [("preprocess", t.preprocess), ("vision", t.vision), ("decode", t.decode), ("total", t.total)] {
        let _ = js_sys::Reflect::set(&timings, &k.into(), &v.into());
    }
    set("timingsMs", timings.into());
    set("backend", backend.into());
    o.into()
}

/// "cpu (wasm simd128)" (or "relaxed simd" and how this engine reads its dot product, in the build
/// made with it), with the thread count in the threaded build.
fn cpu_description() -> String {
    #[cfg(target_feature = "relaxed-simd")]
    let isa = match crate::backend::cpu::q8_gemm::relaxed::form() {
        crate::backend::cpu::q8_gemm::relaxed::Form::Unsigned => "wasm relaxed simd, unsigned dot",
        crate::backend::cpu::q8_gemm::relaxed::Form::Signed => "wasm relaxed simd, signed dot",
        crate::backend::cpu::q8_gemm::relaxed::Form::Neither => "wasm relaxed simd build, simd128 dot",
    };
    #[cfg(not(target_feature = "relaxed-simd"))]
    let isa = "wasm simd128";
    if cfg!(feature = "threads") {
        format!("cpu ({isa}, {} threads)", rayon::current_num_threads())
    } else {
        format!("cpu ({isa})")
    }
}
