//! CPU speed of a full-size BLIP-base (random weights, q8_0) next to candle-transformers'
//! quantized_blip on the same GGUF file and Hugging Face transformers (PyTorch fp32, the same
//! weights dequantized), in one run, interleaved. Prints figures; asserts nothing but that every
//! side made the forced number of tokens.
//!
//!     cargo bench --bench cpu_speed            # RUNS=5 for more runs
//!
//! The candle side is `benches/peers/candle-peer` (a separate crate so the tests never build
//! candle-transformers); it is built on first use. The HF side is `benches/peers/hf-peer/hf_peer.py`,
//! run by `target/hf-venv/bin/python` (or `EDGECAP_HF_PYTHON`) when that has torch and
//! transformers; otherwise it is skipped. It is started once, before the timed runs, and times
//! one run per request, so its start-up and model build are not timed.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use edgecap::backend::{cpu::CpuBackend, Backend};
use edgecap::generate::GenerateOptions;
use edgecap::preprocess::{decode_image, pixel_values, ResizeMode};
use edgecap::{CaptionOptions, Captioner};

// The CLI's allocator, so the figures are the ones a user gets.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TOKENS: usize = 20;
const IMAGE: &str = "tests/fixtures/images/synthetic_384x384.png";

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
    let manifest = root.join("benches/peers/candle-peer/Cargo.toml");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .status()
        .ok()?;
    let bin = root.join("benches/peers/candle-peer/target/release/candle-peer");
    (status.success() && bin.exists()).then_some(bin)
}

struct PeerRun {
    vision_ms: f64,
    caption_ms: f64,
}

/// One run from a peer's JSON line (candle-peer's format: arrays of one run each), checking
/// that it generated exactly `TOKENS` tokens.
fn parse_peer_line(who: &str, line: &str) -> Option<PeerRun> {
    let v: serde_json::Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{who}: unreadable output ({e}): {line}");
            return None;
        }
    };
    let ids = v["ids"].as_array().map_or(0, Vec::len);
    assert_eq!(ids, TOKENS, "{who} made {ids} tokens, not the forced {TOKENS}");
    Some(PeerRun { vision_ms: v["vision_ms"][0].as_f64()?, caption_ms: v["caption_ms"][0].as_f64()? })
}

fn run_candle(bin: &Path, model: &Path) -> Option<PeerRun> {
    let out = Command::new(bin)
        .arg("--model")
        .arg(model)
        .args(["--runs", "1", "--tokens", &TOKENS.to_string()])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("candle-peer failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    parse_peer_line("candle-peer", String::from_utf8_lossy(&out.stdout).lines().last()?)
}

/// The Python that runs the HF peer: `EDGECAP_HF_PYTHON`, else `target/hf-venv/bin/python`;
/// `Err(why)` when there is none with torch and transformers.
fn hf_python(root: &Path) -> Result<PathBuf, String> {
    let python = std::env::var_os("EDGECAP_HF_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/hf-venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import torch, transformers"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(python)
    } else {
        Err(format!("no torch + transformers in {}", python.display()))
    }
}

/// The HF peer, started once: it builds the model, warms up, says it is ready, then times one
/// run per "run" line.
struct HfPeer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    name: String,
}

impl HfPeer {
    fn start(python: &Path, root: &Path, model: &Path) -> Result<HfPeer, String> {
        let mut child = Command::new(python)
            .arg(root.join("benches/peers/hf-peer/hf_peer.py"))
            .arg("--model")
            .arg(model)
            .arg("--image")
            .arg(root.join(IMAGE))
            .args(["--serve", "--tokens", &TOKENS.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).map_err(|e| e.to_string())?;
        let ready: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(_) => {
                let _ = child.wait();
                return Err(format!("it did not start (said {:?})", line.trim()));
            }
        };
        let name = ready["peer"].as_str().unwrap_or("transformers").to_string();
        println!(
            "HF peer ready: {name}, {} threads, load {:.0} ms",
            ready["threads"],
            ready["load_ms"].as_f64().unwrap_or(f64::NAN)
        );
        Ok(HfPeer { child, stdin, stdout, name })
    }

    fn run(&mut self) -> Option<PeerRun> {
        writeln!(self.stdin, "run").ok()?;
        self.stdin.flush().ok()?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line).ok()? == 0 {
            eprintln!("HF peer exited");
            return None;
        }
        parse_peer_line("HF peer", line.trim())
    }
}

impl Drop for HfPeer {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}

#[derive(Default)]
struct Side {
    vision: Vec<f64>,
    caption: Vec<f64>,
}

impl Side {
    fn push(&mut self, r: &PeerRun) {
        self.vision.push(r.vision_ms);
        self.caption.push(r.caption_ms);
    }
    /// (vision, per token, caption) medians; per token = (caption - vision) / tokens.
    fn medians(&self) -> (f64, f64, f64) {
        let (v, c) = (median(&self.vision), median(&self.caption));
        (v, (c - v) / TOKENS as f64, c)
    }
}

/// The CPU's name as Linux reports it (figures differ a lot between CPUs of the same family name).
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "(model unknown)".into())
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let runs: usize = std::env::var("RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let model_path = support::blip_base_q8_0();
    let size_mb = std::fs::metadata(&model_path).map(|m| m.len() as f64 / 1e6).unwrap_or(0.0);
    println!("model: {} ({size_mb:.1} MB, random weights, BLIP-base shapes)", model_path.display());
    println!(
        "machine: {} threads available, CPU {}; edgecap's int8 GEMM path: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        edgecap::backend::cpu::q8_gemm::selected().map_or("candle", |p| p.name())
    );

    let bytes = std::fs::read(&model_path).unwrap();
    let t = Instant::now();
    let cap = Captioner::load(CpuBackend, &bytes, None, None).unwrap();
    drop(bytes);
    println!("edgecap load: {:.0} ms", t.elapsed().as_secs_f64() * 1e3);

    let img = decode_image(&std::fs::read(root.join(IMAGE)).unwrap()).unwrap();
    let px = pixel_values(&img, 384, ResizeMode::Stretch).unwrap();
    let opts = CaptionOptions {
        generate: GenerateOptions { max_new_tokens: TOKENS, min_new_tokens: TOKENS, num_beams: 1 },
        ..Default::default()
    };
    let b = &cap.backend;
    // On a thread of the CPU backend's pool, as the CLI runs its captions.
    let ours = |side: &mut Side| {
        let (run, ids) = edgecap::backend::cpu::on_pool(|| {
            let t = Instant::now();
            let x = cap.model.vision.forward(b, &b.upload_f32(&px, &[3, 384, 384]).unwrap(), 384).unwrap();
            let _ = pollster::block_on(b.read_f32(&x)).unwrap();
            let vision_ms = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            let (ids, _) = pollster::block_on(cap.caption_pixels(&px, 384, &opts)).unwrap();
            (PeerRun { vision_ms, caption_ms: t.elapsed().as_secs_f64() * 1e3 }, ids)
        });
        side.push(&run);
        assert_eq!(ids.len(), TOKENS + 1, "forced {TOKENS} tokens");
    };
    let candle = candle_peer(&root);
    if candle.is_none() {
        println!(
            "candle-peer: not available (cargo build --release --manifest-path benches/peers/candle-peer/Cargo.toml)"
        );
    }
    // Started (model built, warmed up) before anything is timed.
    let mut hf = match hf_python(&root) {
        Ok(python) => HfPeer::start(&python, &root, &model_path)
            .map_err(|e| println!("HF transformers: failed to start: {e}"))
            .ok(),
        Err(why) => {
            println!("HF transformers: skipped (not installed) - {why}; see benches/peers/hf-peer/README.md");
            None
        }
    };
    // Warm-up, then interleaved runs so all sides see the same machine state.
    ours(&mut Side::default());
    let (mut e, mut c, mut h) = (Side::default(), Side::default(), Side::default());
    for run in 0..runs {
        ours(&mut e);
        let mut line = format!("run {run}: edgecap vision {:.0} ms caption {:.0} ms", e.vision[run], e.caption[run]);
        if let Some(p) = candle.as_deref().and_then(|bin| run_candle(bin, &model_path)) {
            line += &format!(" | candle vision {:.0} ms caption {:.0} ms", p.vision_ms, p.caption_ms);
            c.push(&p);
        }
        if let Some(p) = hf.as_mut().and_then(HfPeer::run) {
            line += &format!(" | HF vision {:.0} ms caption {:.0} ms", p.vision_ms, p.caption_ms);
            h.push(&p);
        }
        println!("{line}");
    }
    let hf_name = hf.as_ref().map(|p| p.name.clone());
    drop(hf);

    let (ev, et, ec) = e.medians();
    println!("\nmedians over {runs} runs, {TOKENS}-token greedy caption (forced), 384x384 input:");
    let row = |name: &str, (v, t, c): (f64, f64, f64), n: usize| {
        println!("  {name:<32} vision {v:8.0} ms   per token {t:7.1} ms   caption {c:8.0} ms   ({n} runs)")
    };
    row("edgecap (cpu, q8_0)", e.medians(), e.caption.len());
    if !c.caption.is_empty() {
        row("candle quantized_blip (q8_0)", c.medians(), c.caption.len());
    }
    if !h.caption.is_empty() {
        row("HF transformers (fp32)", h.medians(), h.caption.len());
    }
    let ratio = |name: &str, side: &Side, target: f64| {
        if side.caption.is_empty() {
            return;
        }
        let (v, t, c) = side.medians();
        let verdict = if c / ec >= target { "met" } else { "NOT met" };
        println!(
            "  edgecap vs {name:<7} vision {:5.2}x   per token {:5.2}x   caption {:5.2}x   (target caption >= {target}x: {verdict})",
            v / ev,
            t / et,
            c / ec
        );
    };
    println!("\nedgecap speed-up (peer time / edgecap time; > 1 means edgecap is faster):");
    // Issue 14's targets: 5x candle and 3x PyTorch fp32, on every x86 box.
    ratio("candle", &c, 5.0);
    ratio("HF", &h, 3.0);
    if c.caption.is_empty() {
        println!("  edgecap vs candle: no candle figures");
    }
    match hf_name {
        Some(name) if !h.caption.is_empty() => println!("\nHF peer: {name}, weights dequantized from the same GGUF"),
        Some(_) => println!("  edgecap vs HF: the HF peer gave no figures"),
        None => println!("  edgecap vs HF: skipped (HF transformers not installed)"),
    }
}
