//! The CPU backend's kernels against their definitions, natively and in wasm: the int8 GEMM (every
//! path this build and CPU can run) against an f64 evaluation of the Q8_0 block-wise definition,
//! to the bit where the f32 arithmetic is exact and to the bit against the scalar path everywhere;
//! exp, softmax and GELU against libm. Natively `cargo test --test
//! cpu_kernels`; in wasm (SIMD128, as the web build) scripts/test.sh runs the same file under
//! wasm-bindgen-test in headless Chromium:
//!
//!     cargo test --target wasm32-unknown-unknown --no-default-features --test cpu_kernels
//!
//! `EDGECAP_Q8_GEMM` does not matter here: each path is called by name. A path this CPU lacks is
//! named in the output and skipped, unless `EDGECAP_REQUIRE_VNNI=1` (or `EDGECAP_REQUIRE_AVX2=1`)
//! asks for it: then the test fails.

use edgecap::backend::cpu::fast_math::{exp_in_place, gelu, softmax_in_place};
use edgecap::backend::cpu::q8_gemm::{gemv, matmul, Path, Weights};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::*;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test_configure!(run_in_browser);

/// A line of test output: stderr natively, the console (collected by the runner) in wasm.
macro_rules! say {
    ($($t:tt)*) => {{
        #[cfg(target_arch = "wasm32")]
        console_log!($($t)*);
        #[cfg(not(target_arch = "wasm32"))]
        eprintln!($($t)*);
    }};
}

const QK: usize = 32;
const BLOCK_BYTES: usize = 34;

/// (m, k, n, bias): m not a multiple of 4 or 6 (the row tiles), n not a multiple of 8, 16 or 32
/// (the panels), k = 32 × odd, with 35 and 65 blocks crossing the
/// GEMM's 16- and 32-block chunks.
const SHAPES: [(usize, usize, usize, bool); 10] = [
    (1, 32, 1, false),
    (5, 96, 17, true),
    (7, 160, 33, false),
    (13, 288, 40, true),
    (23, 480, 70, true),
    (6, 32, 95, false),
    (25, 224, 8, true),
    (5, 1120, 19, true),
    (3, 2080, 9, false),
    // Several of the few-row loop's tasks (64 weight rows and up each), the last one partial.
    (2, 96, 300, true),
];

fn paths_here() -> Vec<Path> {
    let paths: Vec<Path> = Path::ALL.into_iter().filter(|p| p.runs_here()).collect();
    let skipped: Vec<&str> = Path::ALL.iter().filter(|p| !paths.contains(p)).map(|p| p.name()).collect();
    say!(
        "q8 gemm paths run: {:?}; not on this machine: {skipped:?}",
        paths.iter().map(|p| p.name()).collect::<Vec<_>>()
    );
    // On a machine meant to check a path (a VNNI CPU, say), a missing path must fail the test,
    // not pass with a note: EDGECAP_REQUIRE_VNNI=1 (or EDGECAP_REQUIRE_AVX2=1).
    #[cfg(not(target_arch = "wasm32"))]
    for (var, path) in [("EDGECAP_REQUIRE_VNNI", "vnni"), ("EDGECAP_REQUIRE_AVX2", "avx2")] {
        if std::env::var(var).as_deref() == Ok("1") {
            assert!(paths.iter().any(|p| p.name() == path), "{var}=1 but the {path} path cannot run on this CPU");
        }
    }
    // The web build must run its SIMD loop, not fall back to the portable one unnoticed.
    #[cfg(target_arch = "wasm32")]
    assert!(paths.contains(&Path::Simd128), "wasm built without SIMD128");
    // And the relaxed-SIMD build its own (scripts/test.sh runs this file in both builds).
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        assert!(paths.contains(&Path::Relaxed), "the relaxed-SIMD build lacks its path");
        say!("relaxed SIMD: this engine's dot product is {:?}", edgecap::backend::cpu::q8_gemm::relaxed::form());
    }
    paths
}

/// One Q8_0 block from its scale and values.
fn block(d: f32, q: &[i8]) -> Vec<u8> {
    let mut out = half::f16::from_f32(d).to_le_bytes().to_vec();
    out.extend(q.iter().map(|&v| v as u8));
    out
}

/// The product from its definition: activations quantized per block by a scalar rewrite of ggml's
/// rule (ties to even, as the GEMM rounds), each block's dot product exact in i64, scaled and
/// summed in f64. Also returns Σ|term| + |bias| per output, the scale of the f32 rounding error.
fn reference(x: &[f32], m: usize, k: usize, wq: &[u8], n: usize, bias: Option<&[f32]>) -> (Vec<f64>, Vec<f64>) {
    let nb = k / QK;
    let (mut out, mut mag) = (vec![0f64; m * n], vec![0f64; m * n]);
    for i in 0..m {
        for j in 0..n {
            let (mut sum, mut abs) = (0f64, 0f64);
            for b in 0..nb {
                let xb = &x[i * k + b * QK..i * k + (b + 1) * QK];
                let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
                let da = amax / 127.0;
                let inv = if da > 0.0 { 1.0 / da } else { 0.0 };
                let blk = &wq[(j * nb + b) * BLOCK_BYTES..(j * nb + b + 1) * BLOCK_BYTES];
                let dw = half::f16::from_le_bytes([blk[0], blk[1]]).to_f32();
                let dot: i64 =
                    xb.iter().zip(&blk[2..]).map(|(&v, &w)| (v * inv).round_ties_even() as i64 * w as i8 as i64).sum();
                let term = dot as f64 * dw as f64 * da as f64;
                sum += term;
                abs += term.abs();
            }
            let b = bias.map_or(0.0, |b| b[j] as f64);
            out[i * n + j] = sum + b;
            mag[i * n + j] = abs + b.abs();
        }
    }
    (out, mag)
}

/// Inputs on which the f32 arithmetic is exact, so the result must equal the reference to the
/// bit and any error in a block's integer sum shows: activations are integers × 2^e with ±127 in
/// each block (so d = 2^e and quantization returns those integers), weight scales are powers of
/// two, the bias a multiple of 2⁻¹², and every partial sum stays an integer multiple of 2⁻¹² below
/// 2²⁴ of them (checked on the reference). Weights take the whole int8 range, -128 included, which
/// ggml never writes but a file may hold. Some blocks are all zero on either side.
fn exact_case(
    rng: &mut StdRng,
    m: usize,
    k: usize,
    n: usize,
    with_bias: bool,
) -> (Vec<f32>, Vec<u8>, Option<Vec<f32>>) {
    let mut x = vec![0f32; m * k];
    for blk in x.chunks_mut(QK) {
        if rng.random_bool(0.05) {
            continue;
        }
        let e = rng.random_range(-3..=-1);
        let peak = rng.random_range(0..QK);
        for (i, v) in blk.iter_mut().enumerate() {
            let q = if i == peak {
                if rng.random_bool(0.5) {
                    127
                } else {
                    -127
                }
            } else {
                rng.random_range(-127..=127)
            };
            *v = q as f32 * (e as f32).exp2();
        }
    }
    let mut w = Vec::new();
    for b in 0..n * (k / QK) {
        let q: Vec<i8> = (0..QK).map(|_| rng.random_range(-128..=127)).collect();
        let d = if b == 0 || rng.random_bool(0.05) { 0.0 } else { (rng.random_range(-9..=-8) as f32).exp2() };
        w.extend(block(d, &q));
    }
    let bias = with_bias.then(|| (0..n).map(|_| rng.random_range(-4096..=4096) as f32 / 4096.0).collect());
    (x, w, bias)
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn every_path_is_exact_on_exactly_representable_inputs() {
    exact_on(&paths_here());
}

fn exact_on(paths: &[Path]) {
    let mut rng = StdRng::seed_from_u64(14);
    for &path in paths {
        for &(m, k, n, with_bias) in &SHAPES {
            let (x, w, bias) = exact_case(&mut rng, m, k, n, with_bias);
            let (want, mag) = reference(&x, m, k, &w, n, bias.as_deref());
            assert!(mag.iter().all(|&s| s < (2f64).powi(24 - 12)), "test input leaves f32's exact range");
            let got = matmul(path, &x, m, k, Weights::Q8_0(&w), n, bias.as_deref()).expect("shapes fit");
            for (i, (&g, &e)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g as f64, e, "{} m{m} k{k} n{n} at row {} col {}", path.name(), i / n, i % n);
            }
            // The few-row loop (decoder steps) where the path has one, on the same inputs.
            let few = gemv(path, &x, m, k, &w, n, bias.as_deref());
            assert_eq!(few.is_some(), path.has_gemv(), "{}: gemv", path.name());
            if let Some(got) = few {
                for (i, (&g, &e)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(g as f64, e, "{} gemv m{m} k{k} n{n} at row {} col {}", path.name(), i / n, i % n);
                }
            }
        }
    }
}

/// Q8_0 rows as ggml's reference quantizer writes them.
fn quantize_weights(w: &[f32]) -> Vec<u8> {
    w.chunks(QK)
        .flat_map(|blk| {
            let amax = blk.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let id = if d > 0.0 { 1.0 / d } else { 0.0 };
            block(d, &blk.iter().map(|v| (v * id).round() as i8).collect::<Vec<_>>())
        })
        .collect()
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn every_path_matches_the_definition_and_the_scalar_path_on_model_like_inputs() {
    like_the_definition_on(&paths_here());
}

fn like_the_definition_on(paths: &[Path]) {
    let mut rng = StdRng::seed_from_u64(7);
    for &(m, k, n, with_bias) in &SHAPES {
        let mut x: Vec<f32> = (0..m * k).map(|_| rng.random_range(-3.0..3.0)).collect();
        x[rng.random_range(0..m * k)] = 40.0; // an outlier, as LayerNorm outputs have
        let mut w: Vec<f32> = (0..n * k).map(|_| rng.random_range(-1.0..1.0)).collect();
        w[..QK].iter_mut().for_each(|v| *v = 0.0); // an all-zero block (scale 0)
        let wq = quantize_weights(&w);
        let bias: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let bias = with_bias.then_some(bias.as_slice());
        let (want, mag) = reference(&x, m, k, &wq, n, bias);
        let scalar = matmul(Path::Scalar, &x, m, k, Weights::Q8_0(&wq), n, bias).expect("shapes fit");
        for (i, ((&g, &e), &s)) in scalar.iter().zip(&want).zip(&mag).enumerate() {
            // The integers are the reference's (same quantization rule, exact int32 sums); what
            // differs is f32 rounding: the scale product, the scaled term, and up to nb + 1
            // additions, each off by at most 2⁻²⁴ of a value bounded by Σ|term| + |bias|.
            let tol = (k / QK + 3) as f64 * f64::from(f32::EPSILON) / 2.0 * s;
            assert!((g as f64 - e).abs() <= tol, "m{m} k{k} n{n} at {i}: {g} vs {e} (tolerance {tol})");
        }
        for &path in paths {
            let got = matmul(path, &x, m, k, Weights::Q8_0(&wq), n, bias).expect("shapes fit");
            let same = got.iter().zip(&scalar).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{} differs from the scalar path on m{m} k{k} n{n}", path.name());
            if let Some(got) = gemv(path, &x, m, k, &wq, n, bias) {
                let same = got.iter().zip(&scalar).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{} gemv differs from the scalar GEMM on m{m} k{k} n{n}", path.name());
            }
        }
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn exp_matches_libm() {
    let xs: Vec<f32> = (-100_000..=8_000).map(|i| i as f32 * 1e-3).collect();
    let mut ys = xs.clone();
    exp_in_place(&mut ys);
    let mut worst = 0f64;
    for (&x, &y) in xs.iter().zip(&ys) {
        let e = (x as f64).exp();
        if e < f32::MIN_POSITIVE as f64 {
            // Subnormal results are flushed: zero (or the true tiny value) is right.
            assert!((y as f64) <= e.max(f32::MIN_POSITIVE as f64), "exp({x}) = {y}");
        } else {
            worst = worst.max(((y as f64 - e) / e).abs());
        }
    }
    assert!(worst < 4e-7, "relative error {worst}");
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn softmax_matches_its_definition() {
    for n in [1usize, 5, 16, 17, 33, 577] {
        let row: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.3).collect();
        let mut got = row.clone();
        softmax_in_place(&mut got);
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
        let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
        for (&g, &x) in got.iter().zip(&row) {
            let want = (x as f64 - max).exp() / sum;
            assert!((g as f64 - want).abs() <= 1e-6 * want + 1e-12, "n {n}: {g} vs {want}");
        }
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn gelu_matches_libm_erf() {
    let xs: Vec<f32> = (-12_000..=12_000).map(|i| i as f32 * 1e-3).collect();
    let mut ys = vec![0.0; xs.len()];
    gelu(&xs, &mut ys);
    let worst = xs
        .iter()
        .zip(&ys)
        .map(|(&x, &y)| {
            let x = x as f64;
            (y as f64 - 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))).abs()
        })
        .fold(0.0, f64::max);
    assert!(worst < 2e-6, "absolute error {worst}");
}

/// Rounds half away from zero (candle's `f32::round`) or half to even (our int8 GEMM, ggml's
/// `nearest_int`).
fn round_to(v: f32, even: bool) -> f32 {
    if even {
        v.round_ties_even()
    } else {
        v.round()
    }
}

/// The 4-bit block-wise definitions, in f64 over exact integer block sums: Q4_0 against Q8_0
/// activations (decoder steps: candle's `vec_dot_q4_0_q8_0`, scale stored as f16, ties away from
/// zero; 16 rows and more: our int8 GEMM, f32 scale, ties to even), Q4_K against Q8_K activations
/// (256 values a block, `d = max / -127` of the signed largest value, as ggml's
/// `quantize_row_q8_K` and candle do). Returns each output and the sum of its terms' magnitudes.
fn q4_reference(
    x: &[f32],
    m: usize,
    k: usize,
    w: &[u8],
    n: usize,
    dtype: edgecap::weights::DType,
) -> (Vec<f64>, Vec<f64>) {
    use edgecap::weights::q4::{scale_min, Q4_0_BLOCK_BYTES, Q4_K_BLOCK_BYTES};
    use edgecap::weights::DType;
    let gemm = m >= 16;
    let mut out = vec![0f64; m * n];
    let mut mag = vec![0f64; m * n];
    for r in 0..m {
        let xr = &x[r * k..(r + 1) * k];
        for c in 0..n {
            let (mut acc, mut abs) = (0f64, 0f64);
            if dtype == DType::Q4_0 {
                let row = &w[c * k / 32 * Q4_0_BLOCK_BYTES..(c + 1) * k / 32 * Q4_0_BLOCK_BYTES];
                for (b, blk) in row.chunks_exact(Q4_0_BLOCK_BYTES).enumerate() {
                    let xb = &xr[32 * b..32 * (b + 1)];
                    let amax = xb.iter().fold(0f32, |a, v| a.max(v.abs()));
                    let d = amax / 127.0;
                    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                    let dx = if gemm { d } else { half::f16::from_f32(d).to_f32() };
                    let dw = half::f16::from_le_bytes([blk[0], blk[1]]).to_f32();
                    let mut sumi = 0i64;
                    for j in 0..32 {
                        let q = i64::from(if j < 16 { blk[2 + j] & 15 } else { blk[2 + j - 16] >> 4 }) - 8;
                        sumi += q * round_to(xb[j] * id, gemm).clamp(-127.0, 127.0) as i64;
                    }
                    let t = f64::from(dw) * f64::from(dx) * sumi as f64;
                    acc += t;
                    abs += t.abs();
                }
            } else {
                let row = &w[c * k / 256 * Q4_K_BLOCK_BYTES..(c + 1) * k / 256 * Q4_K_BLOCK_BYTES];
                for (b, blk) in row.chunks_exact(Q4_K_BLOCK_BYTES).enumerate() {
                    let xb = &xr[256 * b..256 * (b + 1)];
                    let (mut amax, mut max) = (0f32, 0f32);
                    for &v in xb {
                        if amax < v.abs() {
                            amax = v.abs();
                            max = v;
                        }
                    }
                    let (iscale, dx) = if amax == 0.0 { (0.0, 0.0) } else { (-127.0 / max, 1.0 / (-127.0 / max)) };
                    let qx: Vec<i64> =
                        xb.iter().map(|&v| round_to(iscale * v, false).clamp(-128.0, 127.0) as i64).collect();
                    let d = half::f16::from_le_bytes([blk[0], blk[1]]).to_f32();
                    let dmin = half::f16::from_le_bytes([blk[2], blk[3]]).to_f32();
                    for s in 0..8 {
                        let (sc, mn) = scale_min(s, &blk[4..16]);
                        let run = &blk[16 + 32 * (s / 2)..16 + 32 * (s / 2 + 1)];
                        let (mut sum_qq, mut sum_q8) = (0i64, 0i64);
                        for l in 0..32 {
                            let q = i64::from(if s % 2 == 0 { run[l] & 15 } else { run[l] >> 4 });
                            sum_qq += q * qx[32 * s + l];
                            sum_q8 += qx[32 * s + l];
                        }
                        let t1 = f64::from(d) * f64::from(sc) * f64::from(dx) * sum_qq as f64;
                        let t2 = f64::from(dmin) * f64::from(mn) * f64::from(dx) * sum_q8 as f64;
                        acc += t1 - t2;
                        abs += t1.abs() + t2.abs();
                    }
                }
            }
            out[r * n + c] = acc;
            mag[r * n + c] = abs;
        }
    }
    (out, mag)
}

/// The CPU backend's 4-bit products (candle's kernels for decoder steps, our int8 GEMM from 16
/// rows) against the block-wise definitions.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn q4_linear_matches_the_block_wise_definition() {
    use edgecap::backend::cpu::CpuBackend;
    use edgecap::backend::Backend;
    use edgecap::weights::q4::{quantize_q4_0, quantize_q4_k};
    use edgecap::weights::{DType, TensorView};
    let mut rng = StdRng::seed_from_u64(44);
    for (dtype, m, n, k) in [
        (DType::Q4_0, 1, 37, 96),
        (DType::Q4_0, 3, 20, 768),
        (DType::Q4_0, 20, 33, 256),
        (DType::Q4_K, 1, 37, 512),
        (DType::Q4_K, 5, 20, 768),
        (DType::Q4_K, 20, 9, 256),
    ] {
        let wv: Vec<f32> = (0..n * k).map(|_| rng.random_range(-1.0f32..1.0) * 0.05).collect();
        let mut w = Vec::new();
        match dtype {
            DType::Q4_0 => quantize_q4_0(&wv, &mut w).unwrap(),
            _ => quantize_q4_k(&wv, &mut w).unwrap(),
        }
        let x: Vec<f32> = (0..m * k).map(|i| rng.random_range(-1.0f32..1.0) * [0.02, 1.0, 9.0][(i / 32) % 3]).collect();
        let b = CpuBackend;
        let shape = [n, k];
        let weight = b.weight(&TensorView { name: "w", shape: &shape, dtype, data: &w }).unwrap();
        let xt = b.upload_f32(&x, &[1, m, k]).unwrap();
        let got = futures_lite_block_on(b.read_f32(&b.linear(&xt, &weight, None).unwrap()));
        let (want, mag) = q4_reference(&x, m, k, &w, n, dtype);
        let worst = got
            .iter()
            .zip(want.iter().zip(&mag))
            .map(|(&g, (&w, &a))| (f64::from(g) - w).abs() / (a + 1e-30))
            .fold(0f64, f64::max);
        say!("{dtype:?} {m}x{n}x{k}: worst |diff| / sum|terms| {worst:.1e}");
        assert!(worst < 1e-5, "{dtype:?} {m}x{n}x{k}: off the block-wise definition by {worst:.2e} of its terms");
    }
}

/// The int8 GEMM on 4-bit weights, every path this machine runs: 16 rows and more (the GEMM's side
/// of [`q4_reference`]), Q4_K wide enough to cross the GEMM's chunks of blocks, a bias; equal to
/// the scalar path to the bit and to the block-wise definition within f32 rounding.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn every_path_takes_4_bit_weights_as_their_definition() {
    use edgecap::weights::q4::{quantize_q4_0, quantize_q4_k};
    use edgecap::weights::DType;
    let mut rng = StdRng::seed_from_u64(45);
    let paths = paths_here();
    for (dtype, m, n, k) in [
        (DType::Q4_0, 17, 35, 96),
        (DType::Q4_0, 21, 19, 1120),
        (DType::Q4_K, 16, 9, 256),
        (DType::Q4_K, 23, 33, 768),
        (DType::Q4_K, 19, 17, 2560),
    ] {
        let wv: Vec<f32> = (0..n * k).map(|_| rng.random_range(-1.0f32..1.0) * 0.05 + 0.01).collect();
        let mut w = Vec::new();
        match dtype {
            DType::Q4_0 => quantize_q4_0(&wv, &mut w).unwrap(),
            _ => quantize_q4_k(&wv, &mut w).unwrap(),
        }
        let weights = if dtype == DType::Q4_0 { Weights::Q4_0(&w) } else { Weights::Q4K(&w) };
        let mut x: Vec<f32> =
            (0..m * k).map(|i| rng.random_range(-1.0f32..1.0) * [0.02, 1.0, 9.0][(i / 32) % 3]).collect();
        x[..256.min(k)].iter_mut().for_each(|v| *v = 0.0); // an all-zero activation block (scale 0)
        let bias: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let (want, mag) = q4_reference(&x, m, k, &w, n, dtype);
        let scalar = matmul(Path::Scalar, &x, m, k, weights, n, Some(&bias)).expect("shapes fit");
        let worst = scalar
            .iter()
            .enumerate()
            .map(|(i, &g)| {
                (f64::from(g) - want[i] - f64::from(bias[i % n])).abs()
                    / (mag[i] + f64::from(bias[i % n].abs()) + 1e-30)
            })
            .fold(0f64, f64::max);
        say!("gemm {dtype:?} {m}x{n}x{k}: worst |diff| / sum|terms| {worst:.1e}");
        assert!(worst < 1e-5, "{dtype:?} {m}x{n}x{k}: off the block-wise definition by {worst:.2e} of its terms");
        for &path in &paths {
            let got = matmul(path, &x, m, k, weights, n, Some(&bias)).expect("shapes fit");
            let same = got.iter().zip(&scalar).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{} differs from the scalar path on {dtype:?} {m}x{n}x{k}", path.name());
        }
    }
}

/// The CPU backend's reads are ready at once; poll the future once.
fn futures_lite_block_on<T>(f: impl std::future::Future<Output = edgecap::Result<T>>) -> T {
    let mut f = std::pin::pin!(f);
    let waker = std::task::Waker::noop();
    match f.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
        std::task::Poll::Ready(v) => v.unwrap(),
        std::task::Poll::Pending => panic!("the CPU backend's read was not ready"),
    }
}
