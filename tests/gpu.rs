//! The wgpu backend against the CPU backend, op by op on awkward shapes, and the whole model
//! against Hugging Face's references for the tiny fixtures. Here it runs on whatever adapter wgpu
//! finds (Mesa's lavapipe in CI). With no adapter the tests say so and pass, unless
//! `EDGECAP_REQUIRE_GPU=1` (set by scripts/test.sh), where a missing adapter is a failure.
#![cfg(feature = "gpu")]

mod common;

use common::*;
use edgecap::backend::cpu::CpuBackend;
use edgecap::backend::gpu::GpuBackend;
use edgecap::backend::Backend;
use edgecap::preprocess::decode_image;
use edgecap::weights::{q8_0, DType, TensorView};
use edgecap::Captioner;

fn gpu() -> Option<GpuBackend> {
    match pollster::block_on(GpuBackend::new()) {
        Ok(b) => {
            eprintln!("GPU adapter: {:?}", b.adapter());
            Some(b)
        }
        Err(e) if std::env::var("EDGECAP_REQUIRE_GPU").is_ok_and(|v| v == "1") => {
            panic!("EDGECAP_REQUIRE_GPU=1 but {e}")
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A weight as the file would hold it: Q8_0 (or 4-bit) blocks, or (for the CPU reference) those
/// blocks dequantized to f32, so both sides multiply the same numbers.
struct Matrix {
    shape: [usize; 2],
    q8: Option<Vec<u8>>,
    dtype: DType,
    f32: Vec<u8>,
}

impl Matrix {
    fn new(rows: usize, cols: usize, seed: u64, quantize: bool) -> Self {
        Self::of(rows, cols, seed, if quantize { DType::Q8_0 } else { DType::F32 })
    }

    fn of(rows: usize, cols: usize, seed: u64, dtype: DType) -> Self {
        let v = values(rows * cols, seed);
        let mut q = Vec::new();
        match dtype {
            DType::F32 => return Self { shape: [rows, cols], q8: None, dtype, f32: f32_bytes(&v) },
            DType::Q8_0 => q8_0::quantize(&v, &mut q).unwrap(),
            DType::Q4_0 => edgecap::weights::q4::quantize_q4_0(&v, &mut q).unwrap(),
            DType::Q4_K => edgecap::weights::q4::quantize_q4_k(&v, &mut q).unwrap(),
            other => panic!("{other:?}"),
        }
        let shape = [rows, cols];
        let deq = TensorView { name: "w", shape: &shape, dtype, data: &q }.to_f32().unwrap();
        Self { shape, q8: Some(q), dtype, f32: f32_bytes(&deq) }
    }

    fn view(&self, as_stored: bool) -> TensorView<'_> {
        match (&self.q8, as_stored) {
            (Some(q), true) => TensorView { name: "w", shape: &self.shape, dtype: self.dtype, data: q },
            _ => TensorView { name: "w", shape: &self.shape, dtype: DType::F32, data: &self.f32 },
        }
    }
}

/// Every op on shapes that are not multiples of the kernels' tiles; returns named outputs.
fn ops<B: Backend>(b: &B, stored: bool) -> Vec<(String, Vec<f32>)> {
    let read = |t: &B::Tensor| pollster::block_on(b.read_f32(t)).unwrap();
    let mut out = Vec::new();
    // Q8_0 linear: GEMV (1 and 3 rows) and GEMM (70 rows); N = 33 and 70, K = 64 and 96.
    for (m, n, k, seed) in [(1, 33, 64, 1), (3, 70, 96, 2), (70, 33, 96, 3), (70, 70, 64, 4)] {
        let w = Matrix::new(n, k, seed, true);
        let w = b.weight(&w.view(stored)).unwrap();
        let x = b.upload_f32(&values(m * k, seed + 10), &[1, m, k]).unwrap();
        let bias = b.upload_f32(&values(n, seed + 20), &[n]).unwrap();
        out.push((format!("linear q8 {m}x{n}x{k}"), read(&b.linear(&x, &w, Some(&bias)).unwrap())));
        out.push((format!("linear q8 {m}x{n}x{k} no bias"), read(&b.linear(&x, &w, None).unwrap())));
    }
    // 4-bit tables (4-bit products: q4_matches_the_cpu_backend below).
    for dtype in [DType::Q4_0, DType::Q4_K] {
        let t = Matrix::of(50, 256, 61, dtype);
        let t = b.weight(&t.view(stored)).unwrap();
        let ids = b.ids(&[3, 49, 0, 17, 3, 8], 2).unwrap();
        out.push((format!("embedding {dtype:?}"), read(&b.embedding(&t, &ids).unwrap())));
    }
    // f32 weights with K not a multiple of 32 (the tiny models' vision width is 48).
    for (m, n, k, seed) in [(1, 37, 48, 5), (70, 65, 48, 6)] {
        let w = Matrix::new(n, k, seed, false);
        let w = b.weight(&w.view(stored)).unwrap();
        let x = b.upload_f32(&values(m * k, seed + 10), &[1, m, k]).unwrap();
        let bias = b.upload_f32(&values(n, seed + 20), &[n]).unwrap();
        out.push((format!("linear f32 {m}x{n}x{k}"), read(&b.linear(&x, &w, Some(&bias)).unwrap())));
    }
    let x = b.upload_f32(&values(5 * 77, 30).iter().map(|v| v * 3.0 + 0.5).collect::<Vec<_>>(), &[1, 5, 77]).unwrap();
    let g = b.upload_f32(&values(77, 31), &[77]).unwrap();
    let beta = b.upload_f32(&values(77, 32), &[77]).unwrap();
    out.push(("layer_norm".into(), read(&b.layer_norm(&x, &g, &beta, 1e-12).unwrap())));
    let wide = b.upload_f32(&values(3 * 700, 33).iter().map(|v| v * 6.0).collect::<Vec<_>>(), &[3, 1, 700]).unwrap();
    out.push(("gelu".into(), read(&b.gelu(&wide).unwrap())));
    let row = b.upload_f32(&values(700, 34), &[1, 1, 700]).unwrap();
    out.push(("add broadcast".into(), read(&b.add(&wide, &row).unwrap())));
    out.push(("add bias".into(), read(&b.add(&wide, &b.upload_f32(&values(700, 35), &[700]).unwrap()).unwrap())));
    out.push(("narrow_last".into(), read(&b.narrow_last(&wide, 129, 301).unwrap())));
    // A view goes through ops that need dense data.
    out.push(("gelu of a view".into(), read(&b.gelu(&b.narrow_last(&wide, 3, 500).unwrap()).unwrap())));
    out.push(("last_position".into(), read(&b.last_position(&x).unwrap())));
    // Attention: vision-like (non-causal, 70 positions), decoder self-attention (causal, a query
    // block after a cache), and beams sharing one image's keys.
    for (bq, bk, sq, sk, heads, causal, seed) in [
        (1, 1, 70, 70, 3, false, 40),
        (2, 2, 3, 7, 2, true, 41),
        (3, 1, 1, 70, 4, false, 42),
        (1, 1, 6, 6, 1, true, 43),
    ] {
        let hd = 24;
        let q = b.upload_f32(&values(bq * sq * hd, seed), &[bq, sq, hd]).unwrap();
        let k = b
            .upload_f32(&values(bk * sk * hd, seed + 1).iter().map(|v| v * 4.0).collect::<Vec<_>>(), &[bk, sk, hd])
            .unwrap();
        let v = b.upload_f32(&values(bk * sk * hd, seed + 2), &[bk, sk, hd]).unwrap();
        out.push((
            format!("attention b{bq} bk{bk} sq{sq} sk{sk} h{heads} causal {causal}"),
            read(&b.attention(&q, &k, &v, heads, causal).unwrap()),
        ));
    }
    // Patch embedding: 3×24×16 pixels, patch 8, 10 features.
    let px = b.upload_f32(&values(3 * 24 * 16, 50), &[3, 24, 16]).unwrap();
    let pw = Matrix::new(10, 3 * 8 * 8, 51, false);
    let pw = b.tensor(&TensorView { name: "conv", shape: &[10, 3, 8, 8], dtype: DType::F32, data: &pw.f32 }).unwrap();
    let pb = b.upload_f32(&values(10, 52), &[10]).unwrap();
    let class = b.upload_f32(&values(10, 53), &[1, 1, 10]).unwrap();
    let pos = b.upload_f32(&values(7 * 10, 54), &[1, 7, 10]).unwrap();
    out.push(("patch_embed".into(), read(&b.patch_embed(&px, &pw, &pb, &class, &pos, 8).unwrap())));
    // Embedding gathers from Q8_0 and f32 tables.
    for quantize in [true, false] {
        let t = Matrix::new(50, 64, 60, quantize);
        let t = b.weight(&t.view(stored)).unwrap();
        let ids = b.ids(&[3, 49, 0, 17, 3, 8], 2).unwrap();
        out.push((format!("embedding q8 {quantize}"), read(&b.embedding(&t, &ids).unwrap())));
    }
    // Linear layers with their epilogues (GELU, a residual), GEMV and GEMM, Q8_0 and f32.
    for (m, n, k, quantize, seed) in [
        (1, 70, 64, true, 80),
        (5, 33, 96, true, 81),
        (70, 70, 64, true, 82),
        (3, 37, 48, false, 83),
        (70, 65, 48, false, 84),
    ] {
        let w = Matrix::new(n, k, seed, quantize);
        let w = b.weight(&w.view(stored)).unwrap();
        let x = b.upload_f32(&values(m * k, seed + 10), &[1, m, k]).unwrap();
        let bias = b.upload_f32(&values(n, seed + 20), &[n]).unwrap();
        let res = b.upload_f32(&values(m * n, seed + 30), &[1, m, n]).unwrap();
        let g = b.linear_fused(&x, &w, Some(&bias), true, None).unwrap();
        out.push((format!("linear+gelu {m}x{n}x{k} q8 {quantize}"), read(&g)));
        let r = b.linear_fused(&x, &w, Some(&bias), false, Some(&res)).unwrap();
        out.push((format!("linear+residual {m}x{n}x{k} q8 {quantize}"), read(&r)));
    }
    // Attention on column views of one fused QKV tensor (as the vision pass reads it), head size
    // 64 (BLIP's), and flash-decoding over more keys than one workgroup takes.
    for (b_, sq, sk, heads, d, seed) in [(1, 37, 37, 2, 64, 90), (1, 1, 200, 3, 64, 91), (2, 4, 150, 2, 12, 92)] {
        let hd = heads * d;
        let qkv = b.upload_f32(&values(b_ * sk * 3 * hd, seed), &[b_, sk, 3 * hd]).unwrap();
        let (k, v) = (b.narrow_last(&qkv, hd, hd).unwrap(), b.narrow_last(&qkv, 2 * hd, hd).unwrap());
        let q = b.upload_f32(&values(b_ * sq * hd, seed + 1), &[b_, sq, hd]).unwrap();
        let q = if sq == sk { b.narrow_last(&qkv, 0, hd).unwrap() } else { q };
        out.push((
            format!("attention on views b{b_} sq{sq} sk{sk} h{heads} d{d}"),
            read(&b.attention(&q, &k, &v, heads, false).unwrap()),
        ));
    }
    // The decoder's cached self-attention: a 3-position prompt, two single steps, beams
    // reordered in between (as beam search does).
    let (heads, width) = (2, 24);
    let mut cache = b.new_cache(8, width).unwrap();
    for (step, s) in [3usize, 1, 1].into_iter().enumerate() {
        let qkv = b.upload_f32(&values(2 * s * 3 * width, 100 + step as u64), &[2, s, 3 * width]).unwrap();
        out.push((
            format!("cached attention step {step}"),
            read(&b.cached_attention(&qkv, &mut cache, heads).unwrap()),
        ));
        if step == 1 {
            b.reorder_cache(&mut cache, &[1, 1]).unwrap();
        }
    }
    out
}

/// 4-bit products quantize their activations on both backends as ggml does (Q4_0: Q8_0 blocks,
/// by candle's vec_dot_q4_0_q8_0 or from 16 rows our int8 GEMM on the CPU; Q4_K: candle's Q8_K),
/// the GPU kernels mirroring the CPU's choice, so the integer block sums are the same and only f32
/// sums differ in order. Rows 1-8 take the GEMV kernel, more the GEMM; 12 rows is a GEMM on the
/// GPU and candle on the CPU.
#[test]
fn q4_matches_the_cpu_backend() {
    let Some(g) = gpu() else { return };
    for (dtype, m, n, k, seed) in [
        (DType::Q4_0, 1, 33, 96, 1u64),
        (DType::Q4_0, 3, 70, 768, 2),
        (DType::Q4_0, 8, 17, 64, 3),
        (DType::Q4_0, 4, 256, 256, 11),
        (DType::Q4_0, 65, 768, 256, 13),
        (DType::Q4_0, 65, 256, 512, 14),
        (DType::Q4_0, 4, 30, 512, 12),
        (DType::Q4_0, 12, 20, 128, 4),
        (DType::Q4_0, 70, 70, 96, 5),
        (DType::Q4_0, 20, 33, 256, 6),
        (DType::Q4_K, 1, 33, 512, 7),
        (DType::Q4_K, 5, 70, 768, 8),
        (DType::Q4_K, 12, 9, 256, 9),
        (DType::Q4_K, 70, 33, 512, 10),
    ] {
        let w = Matrix::of(n, k, seed, dtype);
        // Activations of a few magnitudes per block, zeros and ties of the Q8_0 rounding included.
        let mut xv: Vec<f32> =
            values(m * k, seed + 10).iter().enumerate().map(|(i, v)| v * [0.01, 1.0, 30.0][(i / 32) % 3]).collect();
        xv[..32].fill(0.0);
        xv[40] = 127.0;
        xv[41] = 0.5;
        let cpu = q4_outputs(&CpuBackend, &w, &xv, (m, n, k), seed);
        let gpu = q4_outputs(&g, &w, &xv, (m, n, k), seed);
        let scale = cpu.iter().fold(1f32, |a, v| a.max(v.abs()));
        let d = max_abs_diff(&cpu, &gpu);
        println!("{dtype:?} {m}x{n}x{k}: max|diff| {d:.2e} (scale {scale:.1})");
        assert!(d <= 1e-5 * scale, "{dtype:?} {m}x{n}x{k}: GPU differs from CPU by {d}");
    }
}

/// A plain product and one with bias, residual and (for even seeds) GELU.
fn q4_outputs<B: Backend>(b: &B, w: &Matrix, x: &[f32], (m, n, k): (usize, usize, usize), seed: u64) -> Vec<f32> {
    let read = |t: &B::Tensor| pollster::block_on(b.read_f32(t)).unwrap();
    let w = b.weight(&w.view(true)).unwrap();
    let x = b.upload_f32(x, &[1, m, k]).unwrap();
    let bias = b.upload_f32(&values(n, seed + 20), &[n]).unwrap();
    let res = b.upload_f32(&values(m * n, seed + 30), &[1, m, n]).unwrap();
    let mut y = read(&b.linear(&x, &w, None).unwrap());
    y.extend(read(&b.linear_fused(&x, &w, Some(&bias), seed.is_multiple_of(2), Some(&res)).unwrap()));
    y
}

fn ids_of<B: Backend>(b: &B) -> Vec<Vec<u32>> {
    // Ties (index 2 and 5 hold the maximum) go to the lowest index; a suppressed id is skipped.
    let mut logits = values(2 * 1000, 70);
    logits[2] = 5.0;
    logits[5] = 5.0;
    logits[1000 + 999] = 7.0;
    let l = b.upload_f32(&logits, &[2, 1, 1000]).unwrap();
    let plain = b.argmax(&l, None).unwrap();
    let suppressed = b.argmax(&l, Some(999)).unwrap();
    pollster::block_on(b.read_ids_many(&[plain, suppressed])).unwrap()
}

#[test]
fn every_op_matches_the_cpu_backend() {
    let Some(g) = gpu() else { return };
    let want = ops(&CpuBackend, false);
    let got = ops(&g, true);
    assert_eq!(want.len(), got.len());
    for ((name, w), (_, o)) in want.iter().zip(&got) {
        assert_eq!(w.len(), o.len(), "{name}: lengths");
        let scale = w.iter().fold(1f32, |m, v| m.max(v.abs()));
        let d = max_abs_diff(w, o);
        println!("{name}: max|diff| {d:.2e} (scale {scale:.1})");
        assert!(d <= 2e-5 * scale, "{name}: GPU differs from CPU by {d}");
    }
    let ids = ids_of(&g);
    assert_eq!(ids, ids_of(&CpuBackend));
    assert_eq!(ids[0][0], 2, "ties go to the lowest index");
    assert_eq!(ids[1][1], ids_of(&CpuBackend)[1][1]);
    assert_ne!(ids[1][1], 999, "suppressed id chosen");
}

fn gpu_model(g: GpuBackend, dir: &str) -> Captioner<GpuBackend> {
    let weights = read(&format!("{dir}/model.safetensors"));
    let config = String::from_utf8(read(&format!("{dir}/config.json"))).unwrap();
    Captioner::load(g, &weights, Some(&config), Some(&tokenizer_json())).expect("fixture model loads on the GPU")
}

#[test]
fn vision_states_and_step0_logits_match_hf() {
    for (reference_file, model) in [
        ("reference/tiny_ref.safetensors", "models/blip-tiny-random"),
        ("reference/tiny_eos_ref.safetensors", "models/blip-tiny-random-eos"),
    ] {
        let Some(g) = gpu() else { return };
        let cap = gpu_model(g, model);
        let r = reference(reference_file);
        let meta: serde_json::Value =
            serde_json::from_slice(&read(&reference_file.replace(".safetensors", ".json"))).unwrap();
        let (vision, logits) = vision_and_step0(&cap, meta["image"].as_str().unwrap());
        let dv = max_abs_diff(&vision, &r["vision_last_hidden_state"].1);
        let dl = max_abs_diff(&logits, &r["step0_logits"].1);
        println!("{reference_file} on the GPU: vision max|diff| {dv:.2e}, step-0 logits max|diff| {dl:.2e}");
        assert!(dv <= 1e-3, "vision last hidden state differs by {dv}");
        assert!(dl <= 1e-3, "step-0 logits differ by {dl}");
    }
}

#[test]
fn every_case_gives_hf_token_ids_on_the_gpu() {
    let mut checked = 0;
    let mut models = std::collections::HashMap::new();
    for case in cases() {
        // Greedy and prompt cases whose top-2 margin is under 1e-3 at some step may flip on any
        // change of summation order; beam cases are checked whole.
        if case.mode != "beam3" && case.min_margin.is_some_and(|m| m < 1e-3) {
            println!("not compared (margin {:?}): {} {} {}", case.min_margin, case.model, case.image, case.mode);
            continue;
        }
        if !models.contains_key(&case.model) {
            let Some(g) = gpu() else { return };
            models.insert(case.model.clone(), gpu_model(g, &case.model));
        }
        let cap = &models[&case.model];
        let img = decode_image(&read(&case.image)).unwrap();
        let got = pollster::block_on(cap.caption(&img, &mode_options(&case.mode))).unwrap();
        assert_eq!(got.token_ids, case.token_ids, "{} {} {}", case.model, case.image, case.mode);
        checked += 1;
    }
    println!("{checked} cases identical to HF on the GPU");
    assert!(checked >= 12, "only {checked} cases compared");
}

#[test]
fn buffers_are_reused_across_captions_and_reads_are_few() {
    let Some(g) = gpu() else { return };
    let cap = gpu_model(g, "models/blip-tiny-random");
    let img = decode_image(&read("images/synthetic_160x120.png")).unwrap();
    let opts = mode_options("greedy");
    pollster::block_on(cap.caption(&img, &opts)).unwrap();
    let first = cap.backend.stats();
    for _ in 0..3 {
        pollster::block_on(cap.caption(&img, &opts)).unwrap();
    }
    let after = cap.backend.stats();
    println!("first caption {first:?}; after three more {after:?}");
    assert_eq!(after.buffers_created, first.buffers_created, "captions after the first allocated buffers");
    // Only the pixels are copied in per caption; position ids and the prefix are uploaded once.
    assert_eq!(after.uploads - first.uploads, 3, "host uploads in three captions");
    // 20 greedy steps read five at a time: four readbacks, four submits per caption at most.
    assert!(
        (after.readbacks - first.readbacks) / 3 <= 4,
        "{} readbacks per caption",
        (after.readbacks - first.readbacks) / 3
    );
    assert!((after.submits - first.submits) / 3 <= 4, "{} submits per caption", (after.submits - first.submits) / 3);
}

#[test]
fn a_lost_device_is_an_error_not_a_panic() {
    let Some(g) = gpu() else { return };
    let cap = gpu_model(g, "models/blip-tiny-random");
    let img = decode_image(&read("images/synthetic_64x64.png")).unwrap();
    cap.backend.simulate_device_loss();
    let result = pollster::block_on(cap.caption(&img, &mode_options("greedy")));
    let err = result.expect_err("a caption on a destroyed device cannot succeed");
    println!("after device loss: {err}");
    assert!(err.to_string().contains("gpu"), "{err}");
}

/// Dropping a model frees its GPU memory at once: every buffer (weights, activations, staging,
/// the parameter arena) is destroyed, then the device, whether the device was healthy or lost.
/// (In the browser wgpu never destroys a dropped buffer; the garbage collector would, much later.)
#[test]
fn dropping_a_model_destroys_every_buffer_and_the_device() {
    for lose in [false, true] {
        let Some(g) = gpu() else { return };
        let memory = g.memory();
        let cap = gpu_model(g, "models/blip-tiny-random");
        let img = decode_image(&read("images/synthetic_64x64.png")).unwrap();
        let first = pollster::block_on(cap.caption(&img, &mode_options("greedy")));
        if lose {
            cap.backend.simulate_device_loss();
            assert!(pollster::block_on(cap.caption(&img, &mode_options("beam3"))).is_err());
        } else {
            first.unwrap();
        }
        let (buffers, bytes) = (memory.live_buffers(), memory.live_bytes());
        println!("device lost: {lose}; before the drop {buffers} live buffers, {bytes} bytes");
        assert!(buffers > 10 && bytes > 100_000, "{buffers} buffers, {bytes} bytes");
        assert!(!memory.device_destroyed());
        drop(cap);
        assert_eq!((memory.live_buffers(), memory.live_bytes()), (0, 0), "after the drop (device lost: {lose})");
        assert!(memory.device_destroyed());
    }
}

/// wgpu's shader runtime checks (index clamping, loop bounding) change no result: the kernels
/// bound their own accesses, which is what lets native builds turn the checks off.
#[test]
fn runtime_checks_on_and_off_give_the_same_results() {
    use edgecap::backend::gpu::GpuOptions;
    let Some(_) = gpu() else { return };
    let open = |checked| {
        let g = pollster::block_on(GpuBackend::with_options(GpuOptions { checked, ..Default::default() })).unwrap();
        gpu_model(g, "models/blip-tiny-random")
    };
    let (on, off) = (open(true), open(false));
    let (v_on, l_on) = vision_and_step0(&on, "images/synthetic_160x120.png");
    let (v_off, l_off) = vision_and_step0(&off, "images/synthetic_160x120.png");
    assert_eq!(v_on, v_off, "vision states");
    assert_eq!(l_on, l_off, "step-0 logits");
    let ops_on = ops(&on.backend, true);
    let ops_off = ops(&off.backend, true);
    for ((name, a), (_, b)) in ops_on.iter().zip(&ops_off) {
        assert_eq!(a, b, "{name}");
    }
}

/// Under the WebGPU spec's default limits (what the smallest device guarantees) with submits of
/// 16 dispatches, every op and every case is as with the adapter's own limits.
#[test]
fn spec_default_limits_and_small_submits_change_nothing() {
    use edgecap::backend::gpu::{GpuLimits, GpuOptions};
    let Some(_) = gpu() else { return };
    let small = pollster::block_on(GpuBackend::with_options(GpuOptions {
        limits: GpuLimits::Default,
        submit_every: Some(16),
        ..Default::default()
    }))
    .unwrap();
    let want = ops(&CpuBackend, false);
    let got = ops(&small, true);
    for ((name, w), (_, o)) in want.iter().zip(&got) {
        let scale = w.iter().fold(1f32, |m, v| m.max(v.abs()));
        assert!(max_abs_diff(w, o) <= 2e-5 * scale, "{name}");
    }
    assert!(small.stats().max_dispatches_per_submit <= 16, "{:?}", small.stats());
    let cap = gpu_model(small, "models/blip-tiny-random");
    let img = decode_image(&read("images/synthetic_160x120.png")).unwrap();
    let default = gpu_model(gpu().unwrap(), "models/blip-tiny-random");
    for mode in ["greedy", "prompt", "beam3"] {
        let a = pollster::block_on(cap.caption(&img, &mode_options(mode))).unwrap();
        let b = pollster::block_on(default.caption(&img, &mode_options(mode))).unwrap();
        assert_eq!(a.token_ids, b.token_ids, "{mode}");
    }
    assert!(cap.backend.stats().max_dispatches_per_submit <= 16);
}

/// Every fixture case (each tiny model, image and decoding mode) on a 4-bit copy of its model
/// (our converter, `--dtype q4_0`: the tiny models' rows of 32 and 64 values cannot take Q4_K;
/// scripts/test.sh does Q4_K on a 256-wide model): the CPU and the GPU backend give the same ids.
#[test]
fn four_bit_models_caption_alike_on_cpu_and_gpu_in_every_case() {
    use edgecap::weights::convert::{convert_to_gguf, ConvertOptions, TargetDType};
    if gpu().is_none() {
        return;
    }
    let mut models = std::collections::HashMap::new();
    let mut checked = 0;
    for case in cases() {
        let (cpu, gpu) = models.entry(case.model.clone()).or_insert_with(|| {
            let st = read(&format!("{}/model.safetensors", case.model));
            let config = String::from_utf8(read(&format!("{}/config.json", case.model))).unwrap();
            let tok = String::from_utf8(tokenizer_json()).unwrap();
            let mut gguf = Vec::new();
            convert_to_gguf(
                &st,
                &config,
                Some(&tok),
                &ConvertOptions { dtype: TargetDType::Q4_0, compat_candle: false },
                &mut gguf,
                |_, _| {},
            )
            .unwrap();
            let cpu = Captioner::load(CpuBackend, &gguf, None, None).unwrap();
            let gpu = Captioner::load(gpu().unwrap(), &gguf, None, None).unwrap();
            (cpu, gpu)
        });
        let img = decode_image(&read(&case.image)).unwrap();
        let opts = mode_options(&case.mode);
        let want = pollster::block_on(cpu.caption(&img, &opts)).unwrap();
        let got = pollster::block_on(gpu.caption(&img, &opts)).unwrap();
        assert_eq!(got.token_ids, want.token_ids, "q4_0 {} {} {}", case.model, case.image, case.mode);
        checked += 1;
    }
    println!("{checked} fixture cases: the same ids on cpu and gpu with q4_0 weights");
    assert!(checked >= 12, "only {checked} cases");
}
