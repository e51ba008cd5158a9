//! Do the CPU and GPU backends caption a model alike? Greedy ids on both; where they part, the
//! caption is replayed on both with the CPU's ids (teacher forcing) up to that step, and the
//! parting passes only as a near tie the two float implementations may break differently: the
//! CPU's top-2 gap there is at most twice the largest logit difference between the backends, and
//! that difference is small against the logits (≤ 5% of the largest). Anything else fails: a
//! decisive step chosen differently, or logits that disagree by more than float noise.
//!
//!     cargo run --release --example backend_agreement -- MODEL CONFIG.json TOKENIZER.json IMAGE...
//!
//! scripts/test.sh runs it on 4-bit models where exact id equality would rest on luck: quantized
//! activations turn float noise into whole quantization steps now and then, and random weights
//! leave near ties in most captions.

use std::process::ExitCode;

use edgecap::backend::{cpu::CpuBackend, gpu::GpuBackend, Backend};
use edgecap::model::SelfKv;
use edgecap::preprocess::{decode_image, pixel_values, ResizeMode};
use edgecap::{CaptionOptions, Captioner};

/// Logits of each step, fed `ids` (the first is the prefix's only id).
fn replay<B: Backend>(cap: &Captioner<B>, px: &[f32], size: usize, ids: &[u32]) -> edgecap::Result<Vec<Vec<f32>>> {
    let b = &cap.backend;
    let image = cap.model.vision.forward(b, &b.upload_f32(px, &[3, size, size])?, size)?;
    let cross = cap.model.text.cross_kv(b, &image)?;
    let mut cache = SelfKv::new(b, &cap.model.text, ids.len())?;
    let mut out = Vec::new();
    for &id in ids {
        let logits = cap.model.text.forward(b, &b.ids(&[id], 1)?, 1, &mut cache, &cross)?;
        out.push(pollster::block_on(b.read_f32(&logits))?);
    }
    Ok(out)
}

fn top2(l: &[f32]) -> (usize, f32) {
    let (mut best, mut second) = ((0, f32::MIN), f32::MIN);
    for (i, &v) in l.iter().enumerate() {
        if v > best.1 {
            second = best.1;
            best = (i, v);
        } else if v > second {
            second = v;
        }
    }
    (best.0, best.1 - second)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, config, tokenizer, images @ ..] = args.as_slice() else {
        eprintln!("usage: backend_agreement MODEL CONFIG.json TOKENIZER.json IMAGE...");
        return ExitCode::from(2);
    };
    match check(model, config, tokenizer, images) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{model}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(model: &str, config: &str, tokenizer: &str, images: &[String]) -> Result<bool, Box<dyn std::error::Error>> {
    let bytes = std::fs::read(model)?;
    let config = std::fs::read_to_string(config)?;
    let tokenizer = std::fs::read(tokenizer)?;
    let cpu = Captioner::load(CpuBackend, &bytes, Some(&config), Some(&tokenizer))?;
    let gpu = Captioner::load(pollster::block_on(GpuBackend::new())?, &bytes, Some(&config), Some(&tokenizer))?;
    let size = cpu.model.config.vision_config.image_size;
    let opts = CaptionOptions::default();
    let mut all_ok = true;
    for image in images {
        let px = pixel_values(&decode_image(&std::fs::read(image)?)?, size as u32, ResizeMode::Stretch)?;
        let (c, _) = pollster::block_on(cpu.caption_pixels(&px, size, &opts))?;
        let (g, _) = pollster::block_on(gpu.caption_pixels(&px, size, &opts))?;
        let Some(step) =
            c.iter().zip(&g).position(|(a, b)| a != b).or((c.len() != g.len()).then(|| c.len().min(g.len())))
        else {
            println!("{model} {image}: the same {} ids", c.len());
            continue;
        };
        // Step `step` (an index into the ids) was chosen from the logits after ids[..step].
        let lc = replay(&cpu, &px, size, &c[..step])?;
        let lg = replay(&gpu, &px, size, &c[..step])?;
        let (l1, l2) = (&lc[step - 1], &lg[step - 1]);
        let diff = l1.iter().zip(l2).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        let scale = l1.iter().fold(0f32, |m, v| m.max(v.abs()));
        let (_, gap) = top2(l1);
        let tie = gap <= 2.0 * diff && diff <= 0.05 * scale;
        println!(
            "{model} {image}: {} at id {step} of {}: cpu top-2 gap {gap:.3}, largest logit difference {diff:.3} of {scale:.1}",
            if tie { "a near tie parts the backends" } else { "FAILED: the backends part" },
            c.len().max(g.len())
        );
        all_ok &= tie;
    }
    Ok(all_ok)
}
