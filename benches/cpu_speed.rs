//! CPU speed of a full-size BLIP-base (random weights, q8_0) next to candle-transformers'
//! quantized_blip on the same GGUF file, in one run, interleaved. Prints figures; asserts nothing.
//!
//!     cargo bench --bench cpu_speed            # RUNS=5 for more runs
//!
//! The candle side is `bench/candle-peer` (a separate crate so the tests never build
//! candle-transformers); it is built on first use.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use edgecap::backend::{cpu::CpuBackend, Backend};
use edgecap::generate::GenerateOptions;
use edgecap::preprocess::{decode_image, pixel_values, ResizeMode};
use edgecap::{CaptionOptions, Captioner};

// The CLI's allocator, so the figures are the ones a user gets.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TOKENS: usize = 20;

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn candle_peer(root: &Path) -> Option<PathBuf> {
    let manifest = root.join("bench/candle-peer/Cargo.toml");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .status()
        .ok()?;
    let bin = root.join("bench/candle-peer/target/release/candle-peer");
    (status.success() && bin.exists()).then_some(bin)
}

struct PeerRun {
    vision_ms: f64,
    caption_ms: f64,
}

fn run_peer(bin: &Path, model: &Path) -> Option<PeerRun> {
    let out = Command::new(bin).arg("--model").arg(model).args(["--runs", "1", "--tokens", &TOKENS.to_string()]).output().ok()?;
    if !out.status.success() {
        eprintln!("candle-peer failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.lines().last()?).ok()?;
    Some(PeerRun { vision_ms: v["vision_ms"][0].as_f64()?, caption_ms: v["caption_ms"][0].as_f64()? })
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let runs: usize = std::env::var("RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let model_path = support::blip_base_q8_0();
    let size_mb = std::fs::metadata(&model_path).map(|m| m.len() as f64 / 1e6).unwrap_or(0.0);
    println!("model: {} ({size_mb:.1} MB, random weights, BLIP-base shapes)", model_path.display());
    println!("machine: {} threads available", std::thread::available_parallelism().map_or(0, |n| n.get()));

    let bytes = std::fs::read(&model_path).unwrap();
    let t = Instant::now();
    let cap = Captioner::load(CpuBackend, &bytes, None, None).unwrap();
    drop(bytes);
    println!("edgecap load: {:.0} ms", t.elapsed().as_secs_f64() * 1e3);

    let img = decode_image(&std::fs::read(root.join("tests/fixtures/images/synthetic_384x384.png")).unwrap()).unwrap();
    let px = pixel_values(&img, 384, ResizeMode::Stretch).unwrap();
    let opts = CaptionOptions {
        generate: GenerateOptions { max_new_tokens: TOKENS, min_new_tokens: TOKENS, num_beams: 1 },
        ..Default::default()
    };
    let b = &cap.backend;
    let ours = |vision: &mut Vec<f64>, caption: &mut Vec<f64>| {
        let t = Instant::now();
        let x = cap.model.vision.forward(b, &b.upload_f32(&px, &[3, 384, 384]).unwrap(), 384).unwrap();
        let _ = pollster::block_on(b.read_f32(&x)).unwrap();
        vision.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let (ids, _) = pollster::block_on(cap.caption_pixels(&px, 384, &opts)).unwrap();
        caption.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(ids.len(), TOKENS + 1, "forced {TOKENS} tokens");
    };
    let peer = candle_peer(&root);
    if peer.is_none() {
        println!("candle-peer: not available (cargo build --release --manifest-path bench/candle-peer/Cargo.toml)");
    }
    // Warm-up, then interleaved runs so both see the same machine state.
    ours(&mut Vec::new(), &mut Vec::new());
    let (mut ev, mut ec, mut cv, mut cc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        ours(&mut ev, &mut ec);
        let mut line = format!("run {run}: edgecap vision {:.0} ms caption {:.0} ms", ev[run], ec[run]);
        if let Some(p) = peer.as_deref().and_then(|bin| run_peer(bin, &model_path)) {
            line += &format!(" | candle vision {:.0} ms caption {:.0} ms", p.vision_ms, p.caption_ms);
            cv.push(p.vision_ms);
            cc.push(p.caption_ms);
        }
        println!("{line}");
    }
    let per_token = |vision: f64, caption: f64| (caption - vision) / TOKENS as f64;
    let (v, c) = (median(&ev), median(&ec));
    println!("\nmedians over {runs} runs, {TOKENS}-token greedy caption, 384x384 input:");
    println!("  edgecap (cpu, q8_0):           vision {v:8.0} ms   per token {:6.1} ms   caption {c:8.0} ms", per_token(v, c));
    if !cc.is_empty() {
        let (pv, pc) = (median(&cv), median(&cc));
        println!("  candle quantized_blip (q8_0): vision {pv:8.0} ms   per token {:6.1} ms   caption {pc:8.0} ms", per_token(pv, pc));
        println!("  edgecap speed-up: vision {:.2}x, caption {:.2}x", pv / v, pc / c);
    }
}
