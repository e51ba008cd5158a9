//! A q8_0 model against Hugging Face's f32 logits: how often the quantized model's top-1 token
//! agrees with HF's at each step of HF's own greedy caption (teacher forcing, so one early flip
//! does not derail the rest), plus the largest logit error.

mod common;

use common::*;
use edgecap::backend::{cpu::CpuBackend, Backend};
use edgecap::model::SelfKv;
use edgecap::preprocess::{decode_image, pixel_values, ResizeMode};
use edgecap::weights::convert::{convert_to_gguf, ConvertOptions, TargetDType};
use edgecap::Captioner;

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold(0, |best, (i, &x)| if x > v[best] { i } else { best })
}

fn quantized(model: &str, dtype: TargetDType) -> Captioner<CpuBackend> {
    let st = read(&format!("{model}/model.safetensors"));
    let config = String::from_utf8(read(&format!("{model}/config.json"))).unwrap();
    let tok = String::from_utf8(tokenizer_json()).unwrap();
    let mut gguf = Vec::new();
    let opts = ConvertOptions { dtype, compat_candle: false };
    convert_to_gguf(&st, &config, Some(&tok), &opts, &mut gguf, |_, _| {}).unwrap();
    Captioner::load(CpuBackend, &gguf, None, None).unwrap()
}

/// (top-1 agreements, steps, max |logit error|) over HF's greedy path for one reference file.
fn agreement(cap: &Captioner<CpuBackend>, reference_file: &str) -> (usize, usize, f32) {
    let r = reference(reference_file);
    let meta: serde_json::Value =
        serde_json::from_slice(&read(&reference_file.replace(".safetensors", ".json"))).unwrap();
    let ids: Vec<u32> = serde_json::from_value(meta["uncond_ids"].clone()).unwrap();
    let (shape, step_logits) = &r["gen_uncond_step_logits"];
    let (steps, vocab) = (shape[0], shape[1]);
    let b = &cap.backend;
    let size = cap.model.config.vision_config.image_size;
    let img = decode_image(&read(meta["image"].as_str().unwrap())).unwrap();
    let px = pixel_values(&img, size as u32, ResizeMode::Stretch).unwrap();
    let vision = cap.model.vision.forward(b, &b.upload_f32(&px, &[3, size, size]).unwrap(), size).unwrap();
    let cross = cap.model.text.cross_kv(b, &vision).unwrap();
    let mut cache = SelfKv::new(b, &cap.model.text, steps).unwrap();
    let (mut agree, mut max_err) = (0, 0f32);
    for step in 0..steps {
        let input = b.ids(&ids[step..step + 1], 1).unwrap();
        let logits = cap.model.text.forward(b, &input, 1, &mut cache, &cross).unwrap();
        let ours = pollster::block_on(b.read_f32(&logits)).unwrap();
        let theirs = &step_logits[step * vocab..(step + 1) * vocab];
        agree += usize::from(argmax(&ours) == argmax(theirs));
        max_err = max_err.max(max_abs_diff(&ours, theirs));
    }
    (agree, steps, max_err)
}

#[test]
fn f32_gguf_agrees_with_hf_at_every_step() {
    let cap = quantized("models/blip-tiny-random", TargetDType::F32);
    let (agree, steps, err) = agreement(&cap, "reference/tiny_ref.safetensors");
    println!("f32 GGUF: top-1 agreement {agree}/{steps}, max |logit error| {err:.2e}");
    assert_eq!(agree, steps);
    assert!(err <= 1e-4, "f32 logits differ by {err}");
}

#[test]
fn q8_0_top1_agreement_with_hf() {
    let (mut agree, mut steps, mut worst) = (0, 0, 0f32);
    for (model, reference_file) in [
        ("models/blip-tiny-random", "reference/tiny_ref.safetensors"),
        ("models/blip-tiny-random", "reference/tiny_ref_64x64.safetensors"),
        ("models/blip-tiny-random-eos", "reference/tiny_eos_ref.safetensors"),
    ] {
        let cap = quantized(model, TargetDType::Q8_0);
        let (a, s, e) = agreement(&cap, reference_file);
        println!("q8_0 {reference_file}: top-1 agreement {a}/{s}, max |logit error| {e:.3}");
        (agree, steps, worst) = (agree + a, steps + s, worst.max(e));
    }
    let rate = agree as f64 / steps as f64;
    println!("q8_0 overall: top-1 agreement {agree}/{steps} = {:.1}%, max |logit error| {worst:.3}", 100.0 * rate);
    // The tiny random models have top-2 margins of 0.004-0.02, far below a real model's, so
    // some flips are expected; a broken quantized path agrees on almost nothing.
    assert!(rate >= 0.75, "q8_0 top-1 agreement only {:.1}%", 100.0 * rate);
    assert!(worst < 0.5, "q8_0 logits off by {worst}");
}

#[test]
fn f16_gguf_stays_close_to_hf() {
    let cap = quantized("models/blip-tiny-random", TargetDType::F16);
    let (agree, steps, err) = agreement(&cap, "reference/tiny_ref.safetensors");
    println!("f16 GGUF: top-1 agreement {agree}/{steps}, max |logit error| {err:.2e}");
    assert!(agree * 10 >= steps * 9, "f16 top-1 agreement {agree}/{steps}");
    assert!(err < 0.05, "f16 logits differ by {err}");
}

/// The fixture's safetensors rewritten with every float tensor in `dtype` (F16 or BF16), as
/// checkpoints saved in half precision are.
fn half_precision_safetensors(model: &str, dtype: safetensors::Dtype) -> Vec<u8> {
    let bytes = read(&format!("{model}/model.safetensors"));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .filter(|(_, v)| v.dtype() == safetensors::Dtype::F32)
        .map(|(name, v)| {
            let data = v
                .data()
                .chunks_exact(4)
                .flat_map(|c| {
                    let x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    match dtype {
                        safetensors::Dtype::F16 => half::f16::from_f32(x).to_le_bytes(),
                        _ => half::bf16::from_f32(x).to_le_bytes(),
                    }
                })
                .collect();
            (name, v.shape().to_vec(), data)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(n, s, d)| (n.clone(), safetensors::tensor::TensorView::new(dtype, s.clone(), d).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn f16_and_bf16_safetensors_load_and_stay_close_to_hf() {
    let config = String::from_utf8(read("models/blip-tiny-random/config.json")).unwrap();
    for (dtype, tolerance) in [(safetensors::Dtype::F16, 0.05), (safetensors::Dtype::BF16, 0.5)] {
        let st = half_precision_safetensors("models/blip-tiny-random", dtype);
        let cap = Captioner::load(CpuBackend, &st, Some(&config), Some(&tokenizer_json())).unwrap();
        let (agree, steps, err) = agreement(&cap, "reference/tiny_ref.safetensors");
        println!("{dtype:?} safetensors: top-1 agreement {agree}/{steps}, max |logit error| {err:.2e}");
        assert!(err < tolerance, "{dtype:?} logits differ by {err}");
        assert!(agree * 4 >= steps * 3, "{dtype:?} top-1 agreement {agree}/{steps}");
    }
}
