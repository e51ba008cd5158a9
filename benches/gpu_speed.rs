//! GPU speed of the wgpu backend: vision pass (with the decoder's cross-attention K/V), per-token
//! decode and a 20-token caption; the achieved GFLOP/s of the vision pass and GB/s of a decoder
//! step; the backend's per-caption counters; then, where the adapter has timestamp queries, a
//! per-kernel GPU-time table from a separate profiled run. Prints figures; asserts nothing.
//!
//!     cargo bench --bench gpu_speed
//!
//! Environment:
//! - `RUNS=N`: timed runs (default 3); medians are printed.
//! - `FULL=1`: the full-size model on a software adapter too (see below).
//! - `SUBMIT_EVERY=N`: at most N dispatches per command buffer (`GpuOptions::submit_every`).
//! - `GPU_LIMITS=default`: request WebGPU's default limits instead of the adapter's
//!   (`GpuLimits::Default`); with `SUBMIT_EVERY=64` roughly what an iPhone's WebGPU allows.
//! - `PROFILE=0`: skip the profiled run.
//! - `ACCOUNTING=1`: only print how the vision FLOPs and decoder-step bytes are counted (no GPU).
//!
//! On a hardware GPU it uses the full-size random BLIP-base q8_0 (same shapes and work as the
//! real model; never a real caption), built once under `target/bench-models/` (or
//! `$CARGO_TARGET_DIR/bench-models/`). On a software adapter (lavapipe, SwiftShader) a full-size
//! pass takes minutes, so it uses the tiny fixture model and small GEMMs unless FULL=1.

mod support;

use std::path::PathBuf;
use std::time::Instant;

use edgecap::backend::gpu::{GpuBackend, GpuLimits, GpuOptions};
use edgecap::backend::Backend;
use edgecap::config::BlipConfig;
use edgecap::generate::GenerateOptions;
use edgecap::weights::gguf::GgufFile;
use edgecap::weights::safetensors::SafetensorsFile;
use edgecap::weights::{q8_0, DType, TensorView};
use edgecap::{CaptionOptions, Captioner};

const TOKENS: usize = 20;

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        f64::NAN
    } else {
        (s[(s.len() - 1) / 2] + s[s.len() / 2]) / 2.0
    }
}

/// `x` with at least three significant digits (tiny models give fractions of a GFLOP).
fn sig(x: f64) -> String {
    let decimals =
        if x == 0.0 || !x.is_finite() { 1 } else { (2 - x.abs().log10().floor() as i32).clamp(1, 6) as usize };
    format!("{x:.decimals$}")
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// GFLOP/s of `x[m, k] · W[n, k]ᵀ` with a Q8_0 W, `reps` products per submit.
fn gemm_gflops(b: &GpuBackend, m: usize, n: usize, k: usize, reps: usize) -> f64 {
    let w: Vec<f32> = (0..n * k).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.05).collect();
    let mut q = Vec::new();
    q8_0::quantize(&w, &mut q).unwrap();
    let w = b.weight(&TensorView { name: "w", shape: &[n, k], dtype: DType::Q8_0, data: &q }).unwrap();
    let x = b.upload_f32(&vec![0.5; m * k], &[1, m, k]).unwrap();
    let run = || {
        let t = Instant::now();
        for _ in 0..reps {
            let _ = b.linear(&x, &w, None).unwrap();
        }
        pollster::block_on(b.finish()).unwrap();
        t.elapsed().as_secs_f64()
    };
    run(); // pipelines compiled, buffers pooled
    let s = (0..3).map(|_| run()).fold(f64::INFINITY, f64::min);
    2.0 * (m * n * k * reps) as f64 / s / 1e9
}

/// The model as the bench loads it: file bytes, plus config and tokenizer for a safetensors file.
struct ModelFile {
    bytes: Vec<u8>,
    config: Option<String>,
    tokenizer: Option<Vec<u8>>,
}

impl ModelFile {
    fn load(&self, gpu: GpuBackend) -> edgecap::Result<Captioner<GpuBackend>> {
        Captioner::load(gpu, &self.bytes, self.config.as_deref(), self.tokenizer.as_deref())
    }

    /// (name, shape, dtype) of every tensor in the file.
    fn tensors(&self) -> Vec<(String, Vec<usize>, DType)> {
        if self.bytes.starts_with(b"GGUF") {
            let g = GgufFile::parse(&self.bytes).unwrap();
            g.tensors().iter().map(|t| (t.name.clone(), t.shape.clone(), t.dtype)).collect()
        } else {
            let s = SafetensorsFile::parse(&self.bytes).unwrap();
            let names: Vec<String> = s.names().map(str::to_string).collect();
            names
                .into_iter()
                .map(|n| {
                    let v = s.get(&n).unwrap().unwrap();
                    (n, v.shape.to_vec(), v.dtype)
                })
                .collect()
        }
    }
}

/// FLOPs of one vision pass plus the decoder's cross-attention K/V projections (what `vision()`
/// times): patch embedding as a GEMM, each layer's QKV, projection, fc1 and fc2 GEMMs, attention's
/// QKᵀ and PV, and for each text layer the K and V projections of the image tokens.
fn vision_flops(c: &BlipConfig, size: usize) -> (f64, String) {
    let (v, t) = (&c.vision_config, &c.text_config);
    let patches = (size / v.patch_size).pow(2);
    let tokens = patches + 1;
    let (d, i, layers) = (v.hidden_size as f64, v.intermediate_size as f64, v.num_hidden_layers as f64);
    let (n, tk) = (patches as f64, tokens as f64);
    let patch_k = (3 * v.patch_size * v.patch_size) as f64;
    let patch = 2.0 * n * patch_k * d;
    let gemms = layers * 2.0 * tk * (4.0 * d * d + 2.0 * d * i);
    let attention = layers * 4.0 * tk * tk * d;
    let cross = 2.0 * tk * d * (2.0 * t.hidden_size as f64 * t.num_hidden_layers as f64);
    let total = patch + gemms + attention + cross;
    let g = |x: f64| sig(x / 1e9);
    let how = format!(
        "patch embedding 2*{patches}*{patch_k}*{d} = {} GFLOP; {layers} layers x 2*{tokens}*(4*{d}^2 + 2*{d}*{i}) = {}; \
         attention {layers} x 4*{tokens}^2*{d} = {}; cross K/V 2*{tokens}*{d}*(2*{}*{}) = {}; total {} GFLOP",
        g(patch),
        g(gemms),
        g(attention),
        t.hidden_size,
        t.num_hidden_layers,
        g(cross),
        g(total)
    );
    (total, how)
}

/// Bytes a decoder step reads: every text-decoder weight it uses (Q8_0 at 34 bytes per 32
/// values, f32 at 4 bytes per value), the word and position embeddings as one gathered row each,
/// the word-embedding matrix once more in full as the tied LM head, plus every layer's cross K/V
/// (f32). Left out: the cross-attention key/value weights (used once per caption, in the vision
/// part), the file's untied copy of the LM head when the model ties it (`--compat candle`), the
/// duplicate LM-head bias, the self-attention K/V cache (a few hundred KB at 20 tokens) and
/// activations.
fn decoder_step_bytes(file: &ModelFile, c: &BlipConfig, size: usize) -> (f64, String) {
    let t = &c.text_config;
    let bytes_of = |shape: &[usize], dtype: DType| -> f64 {
        let n: usize = shape.iter().product();
        match dtype {
            DType::Q8_0 => n as f64 * 34.0 / 32.0,
            other => other.byte_len(n).unwrap_or(4 * n) as f64,
        }
    };
    let tensors = file.tensors();
    let has_bias = tensors.iter().any(|(n, _, _)| n == "text_decoder.cls.predictions.bias");
    let (mut q8, mut f32b, mut other, mut gathered, mut head) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut nq8, mut nf32) = (0, 0);
    for (name, shape, dtype) in &tensors {
        if !name.starts_with("text_decoder.") {
            continue;
        }
        let cross_kv_weight =
            name.contains(".crossattention.self.key.") || name.contains(".crossattention.self.value.");
        let unused_head = t.tie_word_embeddings && name == "text_decoder.cls.predictions.decoder.weight";
        let duplicate_bias = has_bias && name == "text_decoder.cls.predictions.decoder.bias";
        if cross_kv_weight || unused_head || duplicate_bias {
            continue;
        }
        let full = bytes_of(shape, *dtype);
        if name.ends_with("embeddings.word_embeddings.weight")
            || name.ends_with("embeddings.position_embeddings.weight")
        {
            gathered += full / shape[0] as f64;
            if name.ends_with("word_embeddings.weight") && t.tie_word_embeddings {
                head += full;
            }
            continue;
        }
        match dtype {
            DType::Q8_0 => {
                q8 += full;
                nq8 += 1
            }
            DType::F32 => {
                f32b += full;
                nf32 += 1
            }
            _ => other += full,
        }
    }
    let tokens = (size / c.vision_config.patch_size).pow(2) + 1;
    let cross = (2 * tokens * t.hidden_size * 4 * t.num_hidden_layers) as f64;
    let total = q8 + f32b + other + gathered + head + cross;
    let mb = |x: f64| x / 1e6;
    let how = format!(
        "from the model file: {nq8} Q8_0 decoder weights (rows*cols*34/32) {:.2} MB + {nf32} f32 tensors (4 B/value) {:.2} MB{} \
         + tied LM head (word embeddings, {}) {:.2} MB + one word and one position embedding row {:.3} MB \
         + cross K/V reads 2*{tokens}*{}*4*{} B = {:.2} MB; total {:.2} MB \
         (cross-attention K/V weights and the self-attention cache not counted)",
        mb(q8),
        mb(f32b),
        if other > 0.0 { format!(" + other dtypes {:.2} MB", mb(other)) } else { String::new() },
        tensors
            .iter()
            .find(|(n, _, _)| n == "text_decoder.bert.embeddings.word_embeddings.weight")
            .map_or("?".into(), |(_, _, d)| format!("{d:?}")),
        mb(head),
        mb(gathered),
        t.hidden_size,
        t.num_hidden_layers,
        mb(cross),
        mb(total)
    );
    (total, how)
}

fn options(profile: bool) -> GpuOptions {
    let limits = match std::env::var("GPU_LIMITS").as_deref() {
        Ok("default") => GpuLimits::Default,
        Ok("adapter") | Err(_) => GpuLimits::Adapter,
        Ok(other) => panic!("GPU_LIMITS={other}: expected default or adapter"),
    };
    let submit_every = std::env::var("SUBMIT_EVERY")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| v.parse().unwrap_or_else(|_| panic!("SUBMIT_EVERY={v}: expected a number of dispatches")));
    GpuOptions { limits, submit_every, checked: false, profile }
}

fn model_file(root: &std::path::Path, full: bool) -> ModelFile {
    if full {
        let path = support::blip_base_q8_0();
        println!("model: {} (random weights, BLIP-base shapes, q8_0)", path.display());
        ModelFile { bytes: std::fs::read(&path).unwrap(), config: None, tokenizer: None }
    } else {
        let dir = root.join("tests/fixtures/models/blip-tiny-random");
        println!("model: tiny fixture {} (software adapter: tiny shapes only; FULL=1 for BLIP-base)", dir.display());
        let read = |p: PathBuf| std::fs::read(p).unwrap();
        ModelFile {
            bytes: read(dir.join("model.safetensors")),
            config: Some(String::from_utf8(read(dir.join("config.json"))).unwrap()),
            tokenizer: Some(read(root.join("tests/fixtures/models/tokenizer.json"))),
        }
    }
}

fn main() {
    let root = support::root();
    let runs: usize = std::env::var("RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    if std::env::var("ACCOUNTING").is_ok_and(|v| v == "1") {
        // The FLOP and byte counts alone, without a GPU (the tiny model, or BLIP-base with FULL=1).
        let file = model_file(&root, std::env::var("FULL").is_ok_and(|v| v == "1"));
        let config = match &file.config {
            Some(json) => BlipConfig::from_json(json).unwrap(),
            None => BlipConfig::from_json(
                GgufFile::parse(&file.bytes).unwrap().get_str(edgecap::weights::gguf::GGUF_CONFIG_KEY).unwrap(),
            )
            .unwrap(),
        };
        let size = config.vision_config.image_size;
        println!("vision FLOPs: {}", vision_flops(&config, size).1);
        println!("decoder step bytes: {}", decoder_step_bytes(&file, &config, size).1);
        return;
    }
    let gpu = match pollster::block_on(GpuBackend::with_options(options(false))) {
        Ok(g) => g,
        Err(e) => {
            println!("no GPU: {e}");
            return;
        }
    };
    let adapter = gpu.adapter().clone();
    println!("adapter: {} ({}, {})", adapter.name, adapter.backend, adapter.device_type);
    println!(
        "options: GPU_LIMITS={} SUBMIT_EVERY={}",
        std::env::var("GPU_LIMITS").unwrap_or_else(|_| "adapter".into()),
        std::env::var("SUBMIT_EVERY").unwrap_or_else(|_| "none".into())
    );
    let full = adapter.device_type != "Cpu" || std::env::var("FULL").is_ok_and(|v| v == "1");
    let t = Instant::now();
    let file = model_file(&root, full);
    let cap = file.load(gpu).unwrap();
    println!("load: {:.0} ms", ms(t));
    let config = cap.model.config.clone();
    let size = config.vision_config.image_size;
    let px = vec![0.1f32; 3 * size * size];
    let opts = CaptionOptions {
        generate: GenerateOptions { max_new_tokens: TOKENS, min_new_tokens: TOKENS, num_beams: 1 },
        ..Default::default()
    };
    let vision = |cap: &Captioner<GpuBackend>| {
        let b = &cap.backend;
        let t = Instant::now();
        let x = cap.model.vision.forward(b, &b.upload_f32(&px, &[3, size, size]).unwrap(), size).unwrap();
        let _kv = cap.model.text.cross_kv(b, &x).unwrap();
        pollster::block_on(b.finish()).unwrap();
        ms(t)
    };
    let caption = |cap: &Captioner<GpuBackend>| {
        let b = &cap.backend;
        let before = b.stats();
        let t = Instant::now();
        let (ids, _) = pollster::block_on(cap.caption_pixels(&px, size, &opts)).unwrap();
        let elapsed = ms(t);
        assert_eq!(ids.len(), TOKENS + 1, "forced {TOKENS} tokens");
        let after = b.stats();
        (elapsed, after.submits - before.submits, after.readbacks - before.readbacks)
    };
    vision(&cap);
    caption(&cap);
    let (mut vs, mut cs) = (Vec::new(), Vec::new());
    let mut io = (0, 0);
    for run in 0..runs {
        vs.push(vision(&cap));
        let (c, submits, reads) = caption(&cap);
        cs.push(c);
        io = (submits, reads);
        println!("run {run}: vision + cross K/V {:.2} ms, caption {:.2} ms", vs[run], c);
    }
    // The last timed call was a caption, so these describe one caption.
    let stats = cap.backend.caption_stats();
    let (vm, cm) = (median(&vs), median(&cs));
    let token_ms = (cm - vm) / TOKENS as f64;
    let (flops, flops_how) = vision_flops(&config, size);
    let (step_bytes, bytes_how) = decoder_step_bytes(&file, &config, size);
    println!("\nmedians over {runs} runs, {TOKENS} forced tokens, {size}x{size} input, adapter {}:", adapter.name);
    println!("  vision ms (vision + cross K/V)  {vm:.2}");
    println!("  ms per token                    {token_ms:.3}");
    println!("  20-token caption ms             {cm:.2}");
    println!("  vision GFLOP/s                  {}", sig(flops / vm / 1e6));
    println!("  decoder step GB/s               {}", sig(step_bytes / token_ms / 1e6));
    println!("  vision FLOPs: {flops_how}");
    println!("  decoder step bytes: {bytes_how}");
    println!("  per caption (stats() before/after): {} submits, {} readbacks", io.0, io.1);
    println!(
        "  caption_stats(): vision pass {} dispatches; last decoder step {} dispatches, {} buffer copies, \
         {} bind groups created; since the backend opened {} submits, at most {} dispatches in one submit",
        stats.vision_dispatches,
        stats.token_dispatches,
        stats.token_buffer_copies,
        stats.token_bind_groups_created,
        stats.submits,
        stats.max_dispatches_per_submit
    );
    // Machine-readable summary (scripts/gpu-device-bench.sh reads this line).
    println!(
        "SUMMARY vision_ms={vm:.3} token_ms={token_ms:.4} caption_ms={cm:.3} vision_gflops={} step_gbps={} \
         vision_gflop={} step_mb={} adapter={:?}",
        sig(flops / vm / 1e6),
        sig(step_bytes / token_ms / 1e6),
        sig(flops / 1e9),
        sig(step_bytes / 1e6),
        adapter.name
    );
    let shapes: &[(usize, usize, usize, usize)] = if full {
        &[(577, 2304, 768, 10), (577, 3072, 768, 10), (577, 768, 3072, 10)]
    } else {
        &[(65, 192, 64, 4), (65, 64, 256, 4)]
    };
    for &(m, n, k, reps) in shapes {
        println!("  Q8_0 GEMM {m}x{n}x{k}: {:.1} GFLOP/s", gemm_gflops(&cap.backend, m, n, k, reps));
    }

    if std::env::var("PROFILE").is_ok_and(|v| v == "0") {
        return;
    }
    // Per-kernel GPU time. Timestamp queries make the recorder wait for every submit to read
    // them back, which changes the timing, so the figures above come from a backend opened
    // without profiling and the table from a second, profiled backend. The first is dropped
    // before the second opens, so the model is on the GPU once (phone-sized GPUs, GPU_LIMITS).
    drop(cap);
    let gpu = match pollster::block_on(GpuBackend::with_options(options(true))) {
        Ok(g) => g,
        Err(e) => {
            println!("\nprofiled backend: {e}");
            return;
        }
    };
    if !gpu.profiling() {
        println!("\nper-kernel GPU time: unavailable (adapter {} lacks TIMESTAMP_QUERY_INSIDE_PASSES)", adapter.name);
        return;
    }
    let cap = match file.load(gpu) {
        Ok(c) => c,
        Err(e) => {
            println!("\nper-kernel GPU time: the profiled backend failed to load the model: {e}");
            return;
        }
    };
    caption(&cap); // warm-up: pipelines, bind groups, pooled buffers
    let _ = cap.backend.kernel_times(); // drop the warm-up's totals
    let (wall, _, _) = caption(&cap);
    let mut times = cap.backend.kernel_times();
    times.sort_by(|a, b| b.2.total_cmp(&a.2));
    let total_ns: f64 = times.iter().map(|t| t.2).sum();
    let dispatches: u64 = times.iter().map(|t| t.1).sum();
    println!(
        "\nper-kernel GPU time, one profiled {TOKENS}-token caption (separate backend; wall {wall:.2} ms with profiling, \
         GPU {:.2} ms in {dispatches} dispatches):",
        total_ns / 1e6
    );
    println!("  {:<28} {:>10} {:>10} {:>7} {:>10}", "kernel", "dispatches", "total ms", "%", "mean µs");
    for (name, n, ns) in &times {
        println!(
            "  {name:<28} {n:>10} {:>10.3} {:>6.1}% {:>10.2}",
            ns / 1e6,
            100.0 * ns / total_ns.max(1e-9),
            ns / 1e3 / (*n).max(1) as f64
        );
    }
}
