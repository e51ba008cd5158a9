//! A full-size BLIP with random weights (same shapes, same work as the real checkpoint), built
//! once and cached under `target/bench-models/`.
#![allow(dead_code)]

use std::path::PathBuf;

use edgecap::weights::convert::{convert_to_gguf, ConvertOptions, TargetDType};
use rand::{Rng, SeedableRng};

/// Values of Salesforce/blip-image-captioning-base's config.json (text heads 12).
pub const BLIP_BASE_CONFIG: &str = r#"{
  "architectures": ["BlipForConditionalGeneration"], "model_type": "blip", "tie_word_embeddings": true,
  "text_config": {"vocab_size": 30524, "hidden_size": 768, "encoder_hidden_size": 768, "intermediate_size": 3072,
    "num_hidden_layers": 12, "num_attention_heads": 12, "max_position_embeddings": 512, "layer_norm_eps": 1e-12,
    "bos_token_id": 30522, "sep_token_id": 102, "pad_token_id": 0},
  "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
    "image_size": 384, "patch_size": 16, "layer_norm_eps": 1e-5}
}"#;

/// Every tensor of BlipForConditionalGeneration with its shape, as the checkpoint names them.
pub fn tensor_shapes(c: &edgecap::config::BlipConfig) -> Vec<(String, Vec<usize>)> {
    let (v, t) = (&c.vision_config, &c.text_config);
    let (dv, dt) = (v.hidden_size, t.hidden_size);
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    let linear = |out: &mut Vec<(String, Vec<usize>)>, name: String, o: usize, i: usize| {
        out.push((format!("{name}.weight"), vec![o, i]));
        out.push((format!("{name}.bias"), vec![o]));
    };
    let norm = |out: &mut Vec<(String, Vec<usize>)>, name: String, d: usize| {
        out.push((format!("{name}.weight"), vec![d]));
        out.push((format!("{name}.bias"), vec![d]));
    };
    let e = "vision_model.embeddings";
    let tokens = (v.image_size / v.patch_size).pow(2) + 1;
    out.push((format!("{e}.class_embedding"), vec![1, 1, dv]));
    out.push((format!("{e}.patch_embedding.weight"), vec![dv, 3, v.patch_size, v.patch_size]));
    out.push((format!("{e}.patch_embedding.bias"), vec![dv]));
    out.push((format!("{e}.position_embedding"), vec![1, tokens, dv]));
    for i in 0..v.num_hidden_layers {
        let n = format!("vision_model.encoder.layers.{i}");
        norm(&mut out, format!("{n}.layer_norm1"), dv);
        linear(&mut out, format!("{n}.self_attn.qkv"), 3 * dv, dv);
        linear(&mut out, format!("{n}.self_attn.projection"), dv, dv);
        norm(&mut out, format!("{n}.layer_norm2"), dv);
        linear(&mut out, format!("{n}.mlp.fc1"), v.intermediate_size, dv);
        linear(&mut out, format!("{n}.mlp.fc2"), dv, v.intermediate_size);
    }
    norm(&mut out, "vision_model.post_layernorm".into(), dv);
    let b = "text_decoder.bert";
    out.push((format!("{b}.embeddings.word_embeddings.weight"), vec![t.vocab_size, dt]));
    out.push((format!("{b}.embeddings.position_embeddings.weight"), vec![t.max_position_embeddings, dt]));
    norm(&mut out, format!("{b}.embeddings.LayerNorm"), dt);
    for i in 0..t.num_hidden_layers {
        let n = format!("{b}.encoder.layer.{i}");
        for (part, kv_in) in [("attention", dt), ("crossattention", dv)] {
            linear(&mut out, format!("{n}.{part}.self.query"), dt, dt);
            linear(&mut out, format!("{n}.{part}.self.key"), dt, kv_in);
            linear(&mut out, format!("{n}.{part}.self.value"), dt, kv_in);
            linear(&mut out, format!("{n}.{part}.output.dense"), dt, dt);
            norm(&mut out, format!("{n}.{part}.output.LayerNorm"), dt);
        }
        linear(&mut out, format!("{n}.intermediate.dense"), t.intermediate_size, dt);
        linear(&mut out, format!("{n}.output.dense"), dt, t.intermediate_size);
        norm(&mut out, format!("{n}.output.LayerNorm"), dt);
    }
    linear(&mut out, "text_decoder.cls.predictions.transform.dense".into(), dt, dt);
    norm(&mut out, "text_decoder.cls.predictions.transform.LayerNorm".into(), dt);
    out.push(("text_decoder.cls.predictions.bias".into(), vec![t.vocab_size]));
    out
}

/// f32 safetensors bytes with HF-like init: weights N(0, 0.02), LayerNorm weights 1, biases 0.
pub fn random_safetensors(c: &edgecap::config::BlipConfig, seed: u64) -> Vec<u8> {
    let shapes = tensor_shapes(c);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut header = serde_json::Map::new();
    let mut data: Vec<u8> = Vec::new();
    for (name, shape) in &shapes {
        let n: usize = shape.iter().product();
        let start = data.len();
        let norm_weight = name.ends_with(".weight") && (name.contains("LayerNorm") || name.contains("layer_norm"));
        for _ in 0..n {
            let v: f32 = if norm_weight {
                1.0
            } else if name.ends_with(".bias") {
                0.0
            } else {
                // Box-Muller: N(0, 0.02) without another dependency.
                let (u1, u2): (f32, f32) = (rng.random::<f32>().max(1e-12), rng.random());
                0.02 * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
            };
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut h = serde_json::to_vec(&header).unwrap();
    while !(h.len() + 8).is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&data);
    out
}

/// The repository root: `EDGECAP_ROOT` when set (a bench executable copied to another machine,
/// as `scripts/gpu-device-bench.sh` runs it), else the checkout it was built in, else the current
/// directory.
pub fn root() -> PathBuf {
    if let Some(r) = std::env::var_os("EDGECAP_ROOT") {
        return PathBuf::from(r);
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if built.join("tests/fixtures").is_dir() {
        built
    } else {
        std::env::current_dir().unwrap()
    }
}

pub fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
    target.join("bench-models")
}

/// The random BLIP-base as a q8_0 GGUF that both edgecap and candle's quantized_blip load
/// (`--compat candle`: the tied LM head written out), with the BLIP tokenizer embedded.
pub fn blip_base_q8_0() -> PathBuf {
    let dir = bench_dir();
    let path = dir.join("blip-base-random-q8_0.gguf");
    if path.exists() {
        return path;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let config = edgecap::config::BlipConfig::from_json(BLIP_BASE_CONFIG).unwrap();
    eprintln!("building a random BLIP-base (q8_0) at {} ...", path.display());
    let start = std::time::Instant::now();
    let st = random_safetensors(&config, 0);
    let tokenizer = std::fs::read_to_string(root().join("tests/fixtures/models/tokenizer.json")).unwrap();
    let tmp = path.with_extension("partial");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).unwrap());
    let opts = ConvertOptions { dtype: TargetDType::Q8_0, compat_candle: true };
    convert_to_gguf(&st, BLIP_BASE_CONFIG, Some(&tokenizer), &opts, &mut f, |_, _| {}).unwrap();
    drop(f);
    std::fs::rename(&tmp, &path).unwrap();
    eprintln!("built in {:.1} s", start.elapsed().as_secs_f64());
    path
}
