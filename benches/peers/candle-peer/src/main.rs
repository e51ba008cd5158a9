//! Benchmark peer: times candle-transformers' `quantized_blip` on a BLIP GGUF so
//! edgecap's numbers have an independent reference on the same machine.
//!
//! candle-peer --model FILE.gguf --runs N [--tokens 20] [--threads T] [--config config.json]
//!
//! Prints one JSON line; see README.md for the fields.

use anyhow::{bail, Context, Result};
use candle_core::{Device, Module, Tensor};
use candle_transformers::models::blip;
use candle_transformers::models::quantized_blip::{BlipForConditionalGeneration, VarBuilder};
use serde_json::{json, Value};
use std::time::Instant;

const PEER: &str = "candle-transformers quantized_blip 0.11.1";
/// `[DEC]`, the token candle's blip example (and HF) starts captions with.
const BOS: u32 = 30522;

struct Args {
    model: String,
    runs: usize,
    tokens: usize,
    threads: Option<usize>,
    config: Option<String>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        model: String::new(),
        runs: 0,
        tokens: 20,
        threads: None,
        config: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => args.model = value()?,
            "--runs" => args.runs = value()?.parse()?,
            "--tokens" => args.tokens = value()?.parse()?,
            "--threads" => args.threads = Some(value()?.parse()?),
            "--config" => args.config = Some(value()?),
            "-h" | "--help" => {
                println!("usage: candle-peer --model FILE.gguf --runs N [--tokens 20] [--threads T] [--config config.json]");
                std::process::exit(0);
            }
            _ => bail!("unknown argument {flag}"),
        }
    }
    if args.model.is_empty() || args.runs == 0 {
        bail!("--model FILE.gguf and --runs N (N >= 1) are required");
    }
    Ok(args)
}

/// BLIP-base (Salesforce/blip-image-captioning-base) shapes, as JSON so that an HF
/// config.json can be merged over it: HF omits fields equal to its class defaults,
/// and those defaults are not all base's (BlipTextConfig defaults to 8 heads).
fn base_config() -> Value {
    json!({
        "projection_dim": 512,
        "image_text_hidden_size": 256,
        "vision_config": {
            "hidden_size": 768, "intermediate_size": 3072, "projection_dim": 512,
            "num_hidden_layers": 12, "num_attention_heads": 12,
            "image_size": 384, "patch_size": 16, "hidden_act": "gelu", "layer_norm_eps": 1e-5
        },
        "text_config": {
            "vocab_size": 30524, "hidden_size": 768, "encoder_hidden_size": 768,
            "intermediate_size": 3072, "projection_dim": 768,
            "num_hidden_layers": 12, "num_attention_heads": 12, "max_position_embeddings": 512,
            "hidden_act": "gelu", "layer_norm_eps": 1e-12, "is_decoder": true
        }
    })
}

fn load_config(path: Option<&str>) -> Result<blip::Config> {
    let mut cfg = base_config();
    if let Some(path) = path {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        let file: Value = serde_json::from_str(&text).with_context(|| format!("parsing {path}"))?;
        for section in ["vision_config", "text_config"] {
            if let Some(Value::Object(fields)) = file.get(section) {
                let dst = cfg[section]
                    .as_object_mut()
                    .expect("base sections are objects");
                for (k, v) in fields {
                    // Only fields candle reads; HF extras (dropouts, token ids) are noise.
                    if dst.contains_key(k) && !v.is_null() {
                        dst.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }
    Ok(serde_json::from_value(cfg)?)
}

/// Deterministic smooth gradient spanning [-1.8, 2.1], roughly the range of a
/// CLIP-normalised photo: we time the model, not image decoding.
fn synthetic_image(size: usize, device: &Device) -> Result<Tensor> {
    let d = (size.max(2) - 1) as f32;
    let mut data = Vec::with_capacity(3 * size * size);
    for c in 0..3 {
        for y in 0..size {
            for x in 0..size {
                let t = 0.5 * x as f32 / d + 0.3 * y as f32 / d + 0.1 * c as f32;
                data.push(-1.8 + 3.9 * t);
            }
        }
    }
    Ok(Tensor::from_vec(data, (1, 3, size, size), device)?)
}

struct Run {
    vision_ms: f64,
    caption_ms: f64,
    ids: Vec<u32>,
}

/// One caption the way candle's blip example decodes: the first step feeds [DEC],
/// each later step only the newest token (the model's own self-attention KV cache
/// holds the rest; cross-attention K/V are recomputed every step by design).
/// Greedy, and exactly `tokens` steps: [SEP] does not stop it, so runs compare.
fn caption(model: &mut BlipForConditionalGeneration, image: &Tensor, tokens: usize) -> Result<Run> {
    let device = image.device();
    let start = Instant::now();
    model.reset_kv_cache();
    let vision_start = Instant::now();
    // candle's CPU backend is eager, so the tensor is computed when this returns.
    let image_embeds = model.vision_model().forward(image)?;
    let vision_ms = ms(vision_start);
    let mut ids = vec![BOS];
    for _ in 0..tokens {
        let input = Tensor::new(&ids[ids.len() - 1..], device)?.unsqueeze(0)?;
        let logits = model.text_decoder().forward(&input, &image_embeds)?;
        let logits = logits.squeeze(0)?;
        let logits = logits.get(logits.dim(0)? - 1)?;
        ids.push(logits.argmax(0)?.to_scalar::<u32>()?);
    }
    let caption_ms = ms(start);
    ids.remove(0);
    Ok(Run {
        vision_ms,
        caption_ms,
        ids,
    })
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn main() -> Result<()> {
    let args = parse_args()?;
    if let Some(t) = args.threads {
        // candle sizes its own pools (and the global rayon pool) from these
        // variables on first use, so they must be set before any tensor work.
        std::env::set_var("RAYON_NUM_THREADS", t.to_string());
        std::env::set_var("CANDLE_NUM_THREADS", t.to_string());
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()?;
    }
    let cfg = load_config(args.config.as_deref())?;
    if args.tokens + 1 > cfg.text_config.max_position_embeddings {
        bail!(
            "--tokens {} needs {} positions, the model has {}",
            args.tokens,
            args.tokens + 1,
            cfg.text_config.max_position_embeddings
        );
    }

    let device = Device::Cpu;
    let vb = VarBuilder::from_gguf(&args.model, &device)
        .with_context(|| format!("loading {}", args.model))?;
    let mut model = BlipForConditionalGeneration::new(&cfg, vb)?;
    let image = synthetic_image(cfg.vision_config.image_size, &device)?;

    caption(&mut model, &image, args.tokens)?; // warm-up: page-in, allocator, pools
    let runs = (0..args.runs)
        .map(|_| caption(&mut model, &image, args.tokens))
        .collect::<Result<Vec<_>>>()?;

    let vision: Vec<f64> = runs.iter().map(|r| round(r.vision_ms)).collect();
    let total: Vec<f64> = runs.iter().map(|r| round(r.caption_ms)).collect();
    let per_token: Vec<f64> = runs
        .iter()
        .map(|r| round((r.caption_ms - r.vision_ms) / args.tokens.max(1) as f64))
        .collect();
    let out = json!({
        "peer": PEER,
        "vision_ms": vision,
        "caption_ms": total,
        "per_token_ms": per_token,
        "tokens": args.tokens,
        "ids": runs.last().map(|r| r.ids.clone()).unwrap_or_default(),
        "threads": candle_core::utils::get_num_threads(),
    });
    println!("{out}");
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
