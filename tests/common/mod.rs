//! Shared by the integration tests: fixture paths, the HF reference tensors, model loading.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use edgecap::backend::cpu::CpuBackend;
use edgecap::Captioner;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn read(rel: &str) -> Vec<u8> {
    let p = fixtures().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn tokenizer_json() -> Vec<u8> {
    read("models/tokenizer.json")
}

/// A fixture model from its Hugging Face folder (config.json + model.safetensors).
pub fn hf_model(dir: &str) -> Captioner<CpuBackend> {
    let weights = read(&format!("{dir}/model.safetensors"));
    let config = String::from_utf8(read(&format!("{dir}/config.json"))).unwrap();
    Captioner::load(CpuBackend, &weights, Some(&config), Some(&tokenizer_json())).expect("fixture model loads")
}

/// Vision tokens and the decoder's step-0 logits for one fixture image, straight from the model
/// API, on whichever backend `cap` runs.
pub fn vision_and_step0<B: edgecap::backend::Backend>(cap: &Captioner<B>, image: &str) -> (Vec<f32>, Vec<f32>) {
    use edgecap::preprocess::{decode_image, pixel_values, ResizeMode};
    let b = &cap.backend;
    let img = decode_image(&read(image)).unwrap();
    let size = cap.model.config.vision_config.image_size;
    let px = pixel_values(&img, size as u32, ResizeMode::Stretch).unwrap();
    let vision = cap.model.vision.forward(b, &b.upload_f32(&px, &[3, size, size]).unwrap(), size).unwrap();
    let cross = cap.model.text.cross_kv(b, &vision).unwrap();
    let mut cache = edgecap::model::SelfKv::new(b, &cap.model.text, 1).unwrap();
    let ids = b.ids(&[30522], 1).unwrap();
    let logits = cap.model.text.forward(b, &ids, 1, &mut cache, &cross).unwrap();
    (pollster::block_on(b.read_f32(&vision)).unwrap(), pollster::block_on(b.read_f32(&logits)).unwrap())
}

/// Reference tensors written by Hugging Face transformers: name → (shape, f32 values).
pub fn reference(rel: &str) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = read(rel);
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("reference parses");
    st.tensors()
        .into_iter()
        .filter(|(_, v)| v.dtype() == safetensors::Dtype::F32)
        .map(|(name, v)| {
            let vals = v.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            (name, (v.shape().to_vec(), vals))
        })
        .collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[derive(Debug, serde::Deserialize)]
pub struct Case {
    pub model: String,
    pub image: String,
    pub mode: String,
    pub token_ids: Vec<u32>,
    pub caption: String,
    pub min_margin: Option<f64>,
}

pub fn cases() -> Vec<Case> {
    #[derive(serde::Deserialize)]
    struct File {
        cases: Vec<Case>,
    }
    let f: File = serde_json::from_slice(&read("reference/cases.json")).expect("cases.json parses");
    f.cases
}

/// The generate arguments each mode of cases.json was made with.
pub fn mode_options(mode: &str) -> edgecap::CaptionOptions {
    use edgecap::generate::GenerateOptions;
    let mut o = edgecap::CaptionOptions::default();
    match mode {
        "greedy" => o.generate = GenerateOptions { max_new_tokens: 20, min_new_tokens: 0, num_beams: 1 },
        "prompt" => {
            o.generate = GenerateOptions { max_new_tokens: 20, min_new_tokens: 0, num_beams: 1 };
            o.prompt = Some("a picture of".into());
        }
        "beam3" => o.generate = GenerateOptions { max_new_tokens: 20, min_new_tokens: 5, num_beams: 3 },
        other => panic!("unknown mode {other}"),
    }
    o
}

/// A fresh folder under the system temp dir, named after `label`; removed on drop.
#[cfg(not(target_arch = "wasm32"))]
pub fn temp_dir(label: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("edgecap-test-{label}-")).tempdir().expect("a temporary folder")
}

/// A PNG whose header claims `width`x`height` 8-bit RGB pixels and whose one data chunk is
/// `idat` (hand-made images that a decoder must refuse or survive).
#[cfg(not(target_arch = "wasm32"))]
pub fn png_claiming(width: u32, height: u32, idat: &[u8]) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(data);
        let crc = crc32fast::hash(&out[start..]);
        out.extend(crc.to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", idat);
    chunk(&mut out, b"IEND", &[]);
    out
}
