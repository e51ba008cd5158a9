//! GPU speed of the wgpu backend: vision pass, per-token decode and a 20-token caption, submits
//! and readbacks per caption, and the GFLOP/s of the vision GEMM shapes. Prints figures; asserts
//! nothing.
//!
//!     cargo bench --bench gpu_speed            # RUNS=5 for more runs
//!
//! On a hardware GPU it uses the full-size random BLIP-base q8_0 (same shapes and work as the
//! real model; never a real caption). On a software adapter (lavapipe, SwiftShader) a full-size
//! pass takes minutes, so it uses the tiny fixture model and small GEMMs unless FULL=1.

mod support;

use std::path::PathBuf;
use std::time::Instant;

use edgecap::backend::gpu::GpuBackend;
use edgecap::backend::Backend;
use edgecap::generate::GenerateOptions;
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

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let runs: usize = std::env::var("RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let gpu = match pollster::block_on(GpuBackend::new()) {
        Ok(g) => g,
        Err(e) => {
            println!("no GPU: {e}");
            return;
        }
    };
    let adapter = gpu.adapter().clone();
    println!("adapter: {} ({}, {})", adapter.name, adapter.backend, adapter.device_type);
    let full = adapter.device_type != "Cpu" || std::env::var("FULL").is_ok_and(|v| v == "1");
    let t = Instant::now();
    let cap = if full {
        let path = support::blip_base_q8_0();
        println!("model: {} (random weights, BLIP-base shapes, q8_0)", path.display());
        Captioner::load(gpu, &std::fs::read(&path).unwrap(), None, None).unwrap()
    } else {
        let dir = root.join("tests/fixtures/models/blip-tiny-random");
        println!("model: tiny fixture {} (software adapter: tiny shapes only; FULL=1 for BLIP-base)", dir.display());
        let read = |p: PathBuf| std::fs::read(p).unwrap();
        let config = String::from_utf8(read(dir.join("config.json"))).unwrap();
        let tok = read(root.join("tests/fixtures/models/tokenizer.json"));
        Captioner::load(gpu, &read(dir.join("model.safetensors")), Some(&config), Some(&tok)).unwrap()
    };
    println!("load: {:.0} ms", ms(t));
    let b = &cap.backend;
    let v = &cap.model.config.vision_config;
    let size = v.image_size;
    let px = vec![0.1f32; 3 * size * size];
    let opts = CaptionOptions {
        generate: GenerateOptions { max_new_tokens: TOKENS, min_new_tokens: TOKENS, num_beams: 1 },
        ..Default::default()
    };
    let vision = || {
        let t = Instant::now();
        let x = cap.model.vision.forward(b, &b.upload_f32(&px, &[3, size, size]).unwrap(), size).unwrap();
        let _kv = cap.model.text.cross_kv(b, &x).unwrap();
        pollster::block_on(b.finish()).unwrap();
        ms(t)
    };
    let caption = || {
        let before = b.stats();
        let t = Instant::now();
        let (ids, _) = pollster::block_on(cap.caption_pixels(&px, size, &opts)).unwrap();
        let elapsed = ms(t);
        assert_eq!(ids.len(), TOKENS + 1, "forced {TOKENS} tokens");
        let after = b.stats();
        (elapsed, after.submits - before.submits, after.readbacks - before.readbacks)
    };
    vision();
    caption();
    let (mut vs, mut cs) = (Vec::new(), Vec::new());
    let mut io = (0, 0);
    for run in 0..runs {
        vs.push(vision());
        let (c, submits, reads) = caption();
        cs.push(c);
        io = (submits, reads);
        println!("run {run}: vision + cross K/V {:.2} ms, caption {:.2} ms", vs[run], c);
    }
    let (vm, cm) = (median(&vs), median(&cs));
    let tokens = (size / v.patch_size).pow(2) + 1;
    let (d, i, layers) = (v.hidden_size, v.intermediate_size, v.num_hidden_layers);
    let vision_flops = layers as f64 * (2.0 * tokens as f64 * (4 * d * d + 2 * d * i) as f64 + 4.0 * (tokens * tokens * d) as f64);
    println!("\nmedians over {runs} runs, {TOKENS} forced tokens, {size}x{size} input, adapter {}:", adapter.name);
    println!("  vision + cross K/V {vm:.2} ms ({:.1} GFLOP/s over the whole vision pass)", vision_flops / vm / 1e6);
    println!("  per token          {:.2} ms", (cm - vm) / TOKENS as f64);
    println!("  caption            {cm:.2} ms");
    println!("  per caption: {} submits, {} readbacks", io.0, io.1);
    let shapes: &[(usize, usize, usize, usize)] = if full {
        &[(577, 2304, 768, 10), (577, 3072, 768, 10), (577, 768, 3072, 10)]
    } else {
        &[(65, 192, 64, 4), (65, 64, 256, 4)]
    };
    for &(m, n, k, reps) in shapes {
        println!("  Q8_0 GEMM {m}x{n}x{k}: {:.1} GFLOP/s", gemm_gflops(b, m, n, k, reps));
    }
}
