//! A long walk: N consecutive captions of changing camera-sized frames on one loaded model, with
//! the process's resident memory (and on the GPU, the activation buffers the pool ever created)
//! sampled after the first 10 captions and at the end. Prints figures; exits 1 when memory grew.
//!
//!     cargo bench --bench long_run                         # 1000 captions, CPU then GPU, tiny model
//!     CAPTIONS=200 BACKENDS=gpu MODEL=base cargo bench --bench long_run
//!
//! MODEL=tiny is the fixture model (fast, same code paths); MODEL=base is the full-size random
//! BLIP-base q8_0 (never a real caption). BACKENDS: cpu, gpu or cpu,gpu.

mod support;

use std::path::PathBuf;
use std::time::Instant;

use edgecap::backend::Backend;
use edgecap::preprocess::Rgb8;
use edgecap::{CaptionOptions, Captioner};

// The CLI's allocator, so the memory figures are the ones a user's process shows.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Growth allowed between caption 10 and the last one: allocator noise, not a leak. A leak of
/// even one activation (≥ 100 KB) per caption would pass this within the first few hundred.
const TOLERANCE_BYTES: u64 = 8 << 20;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

/// A 640x480 frame that differs from the last, as a camera's would: the fixture picture shifted.
fn frame(base: &Rgb8, i: usize) -> Rgb8 {
    let (w, h) = (640u32, 480u32);
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let sx = (x + i as u32 * 7) % base.width;
            let sy = (y + i as u32 * 3) % base.height;
            let p = ((sy * base.width + sx) * 3) as usize;
            data.extend_from_slice(&base.data[p..p + 3]);
        }
    }
    Rgb8::new(w, h, data).unwrap()
}

struct Report {
    backend: &'static str,
    captions: usize,
    rss_start: u64,
    rss_end: u64,
    buffers_start: Option<usize>,
    buffers_end: Option<usize>,
    median_ms: f64,
    seconds: f64,
}

fn run<B: Backend>(cap: &Captioner<B>, base: &Rgb8, n: usize, buffers: impl Fn(&B) -> Option<usize>) -> Report {
    let opts = CaptionOptions::default();
    let (mut times, mut rss_start, mut buffers_start) = (Vec::with_capacity(n), 0, None);
    let t0 = Instant::now();
    let warm = 10.min(n.saturating_sub(1));
    for i in 0..n {
        let f = frame(base, i);
        let t = Instant::now();
        let out = pollster::block_on(cap.caption(&f, &opts)).expect("caption");
        times.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(out.token_ids.len() > 1, "caption {i} produced no tokens");
        if i + 1 == warm {
            rss_start = rss_bytes();
            buffers_start = buffers(&cap.backend);
        }
        if n >= 10 && (i + 1) % (n / 10) == 0 {
            println!("  {:>5} captions  RSS {:7.1} MiB  {:.1} s", i + 1, mib(rss_bytes()), t0.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    Report {
        backend: cap.backend_name(),
        captions: n,
        rss_start,
        rss_end: rss_bytes(),
        buffers_start,
        buffers_end: buffers(&cap.backend),
        median_ms: times[times.len() / 2],
        seconds: t0.elapsed().as_secs_f64(),
    }
}

fn load<B: Backend>(backend: B, model: &str, root: &std::path::Path) -> Captioner<B> {
    let read = |p: PathBuf| std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    if model == "base" {
        Captioner::load(backend, &read(support::blip_base_q8_0()), None, None).unwrap()
    } else {
        let dir = root.join("tests/fixtures/models/blip-tiny-random");
        let config = String::from_utf8(read(dir.join("config.json"))).unwrap();
        let tokenizer = read(root.join("tests/fixtures/models/tokenizer.json"));
        Captioner::load(backend, &read(dir.join("model.safetensors")), Some(&config), Some(&tokenizer)).unwrap()
    }
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let n: usize = std::env::var("CAPTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let backends = std::env::var("BACKENDS").unwrap_or_else(|_| "cpu,gpu".into());
    let model = std::env::var("MODEL").unwrap_or_else(|_| "tiny".into());
    let base = edgecap::preprocess::decode_image(
        &std::fs::read(root.join("tests/fixtures/images/synthetic_640x480.png")).unwrap(),
    )
    .unwrap();
    println!("long run: {n} captions per backend, model {model}, 640x480 frames that change every caption");
    let mut reports = Vec::new();
    for backend in backends.split(',') {
        let rss_before_load = rss_bytes();
        match backend {
            "cpu" => {
                let cap = load(edgecap::backend::cpu::CpuBackend, &model, &root);
                println!("cpu: model loaded, RSS {:.1} MiB (was {:.1})", mib(rss_bytes()), mib(rss_before_load));
                reports.push(run(&cap, &base, n, |_| None));
            }
            #[cfg(feature = "gpu")]
            "gpu" => {
                let gpu = match pollster::block_on(edgecap::backend::gpu::GpuBackend::new()) {
                    Ok(g) => g,
                    Err(e) => {
                        println!("gpu: skipped ({e})");
                        continue;
                    }
                };
                println!("gpu: adapter {} ({})", gpu.adapter().name, gpu.adapter().device_type);
                let cap = load(gpu, &model, &root);
                println!("gpu: model loaded, RSS {:.1} MiB (was {:.1})", mib(rss_bytes()), mib(rss_before_load));
                reports.push(run(&cap, &base, n, |b| Some(b.stats().buffers_created)));
            }
            other => panic!("unknown backend {other:?} (cpu or gpu)"),
        }
    }
    let mut grew = false;
    println!("\n{n} consecutive captions, memory after caption 10 -> after the last:");
    for r in &reports {
        let growth = r.rss_end as i64 - r.rss_start as i64;
        let buffers = match (r.buffers_start, r.buffers_end) {
            (Some(a), Some(b)) => format!(", GPU activation buffers created {a} -> {b}"),
            _ => String::new(),
        };
        let flat = growth <= TOLERANCE_BYTES as i64 && r.buffers_start == r.buffers_end;
        grew |= !flat;
        println!(
            "  {:<4} {} captions in {:.0} s (median {:.1} ms): RSS {:.1} -> {:.1} MiB ({:+.2} MiB){buffers}: {}",
            r.backend,
            r.captions,
            r.seconds,
            r.median_ms,
            mib(r.rss_start),
            mib(r.rss_end),
            growth as f64 / (1 << 20) as f64,
            if flat { "flat" } else { "GREW" }
        );
    }
    if grew {
        std::process::exit(1);
    }
}
