//! Every kind of malformed model file and image, through the `edgecap` binary as a user runs it:
//! exit status 1, nothing on stdout, one `edgecap: ...` line on stderr, never a panic, abort or
//! out-of-memory. And odd but valid images (1x1, 16-bit, grey+alpha, very tall) caption.
//!
//! The model files are built here byte by byte by a GGUF writer of this file's own (not the
//! crate's), from the micro model (`fuzz_targets::MICRO_CONFIG`, random weights), so each file
//! differs from a loadable one in exactly the field under test.

mod common;
#[macro_use]
#[path = "common/binary.rs"]
mod binary;
#[path = "../benches/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};

use binary::{edgecap, Run};
use common::*;
use edgecap::fuzz_targets::{MICRO_CONFIG, MICRO_TOKENIZER};
use edgecap::weights::convert::{convert_to_gguf, ConvertOptions, TargetDType};
use edgecap::weights::gguf::{GgufFile, MetaValue};

const CONFIG_KEY: &str = "blip.hf_config_json";
const TOKENIZER_KEY: &str = "tokenizer.huggingface.json";

impl Run {
    fn no_panic(&self) {
        for sign in ["panicked", "RUST_BACKTRACE", "memory allocation of", "Aborted", "SIGSEGV"] {
            assert!(!self.stderr.contains(sign), "{}: {sign}\n{}", self.what, self.stderr);
        }
    }

    /// Exit 1, nothing on stdout, exactly one `edgecap: ` line that mentions `what` (any
    /// wording when empty).
    fn fails_cleanly(&self, mentions: &str) {
        self.no_panic();
        assert_eq!(self.code, Some(1), "{}\nstdout: {}\nstderr: {}", self.what, self.stdout, self.stderr);
        assert_eq!(self.stdout, "", "{}", self.what);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}: stderr is not one line:\n{}", self.what, self.stderr);
        assert!(lines[0].starts_with("edgecap: "), "{}: {}", self.what, lines[0]);
        assert!(
            lines[0].to_lowercase().contains(&mentions.to_lowercase()),
            "{}: {:?} does not mention {mentions:?}",
            self.what,
            lines[0]
        );
    }

    fn token_ids(&self) -> Vec<u32> {
        self.no_panic();
        assert_eq!(self.code, Some(0), "{}\nstderr: {}", self.what, self.stderr);
        let line: serde_json::Value = serde_json::from_str(self.stdout.trim()).unwrap();
        line["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()
    }
}

fn caption_with(model: &Path, image: &Path, backend: &str) -> Run {
    // Mesa's Vulkan driver complains on stderr without a runtime folder; that is not our line.
    let runtime = std::env::temp_dir().join(format!("edgecap-xdg-{}", std::process::id()));
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let args = argv!["caption", "--backend", backend, "--json", "--model", model, image];
    binary::edgecap_with_env(args, &[("XDG_RUNTIME_DIR", runtime.to_str().unwrap())])
}

fn caption(model: &Path, image: &Path) -> Run {
    caption_with(model, image, "cpu")
}

// ---------------------------------------------------------------------------------------------
// GGUF, written by hand

/// A GGUF v3 file as plain fields, so each test spoils exactly one.
#[derive(Clone)]
struct RawGguf {
    magic: [u8; 4],
    version: u32,
    /// `None`: the real count.
    tensor_count: Option<u64>,
    kv_count: Option<u64>,
    kvs: Vec<(String, Kv)>,
    tensors: Vec<RawTensor>,
    data: Vec<u8>,
}

#[derive(Clone)]
enum Kv {
    Str(String),
    U32(u32),
    /// A string whose stated length is not its real one.
    StrLen(u64, String),
    /// An array of u32 with a stated count.
    U32Array(u64, Vec<u32>),
}

#[derive(Clone)]
struct RawTensor {
    name: String,
    /// ggml order: fastest-varying first.
    dims: Vec<u64>,
    ggml_type: u32,
    /// Relative to the data section.
    offset: u64,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

impl RawGguf {
    /// The micro model, re-serialised field by field.
    fn micro(dtype: TargetDType) -> Self {
        let bytes = micro_gguf(dtype);
        let file = GgufFile::parse(&bytes).unwrap();
        let data_offset = file.header().data_offset;
        let tensors = file
            .tensors()
            .iter()
            .map(|t| {
                let ggml_type = match t.dtype {
                    edgecap::weights::DType::F32 => 0,
                    edgecap::weights::DType::F16 => 1,
                    edgecap::weights::DType::Q8_0 => 8,
                    other => panic!("{other:?}"),
                };
                RawTensor {
                    name: t.name.clone(),
                    dims: t.shape.iter().rev().map(|&d| d as u64).collect(),
                    ggml_type,
                    offset: t.offset - data_offset,
                }
            })
            .collect();
        let kvs = file
            .metadata()
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    MetaValue::String(s) => Kv::Str(s.clone()),
                    MetaValue::U32(v) => Kv::U32(*v),
                    other => panic!("{key}: {other:?}"),
                };
                (key.clone(), value)
            })
            .collect();
        let data = bytes[data_offset as usize..].to_vec();
        RawGguf { magic: *b"GGUF", version: 3, tensor_count: None, kv_count: None, kvs, tensors, data }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = self.magic.to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend(self.tensor_count.unwrap_or(self.tensors.len() as u64).to_le_bytes());
        out.extend(self.kv_count.unwrap_or(self.kvs.len() as u64).to_le_bytes());
        for (key, value) in &self.kvs {
            put_str(&mut out, key);
            match value {
                Kv::Str(s) => {
                    out.extend(8u32.to_le_bytes());
                    put_str(&mut out, s);
                }
                Kv::U32(v) => {
                    out.extend(4u32.to_le_bytes());
                    out.extend(v.to_le_bytes());
                }
                Kv::StrLen(len, s) => {
                    out.extend(8u32.to_le_bytes());
                    out.extend(len.to_le_bytes());
                    out.extend(s.as_bytes());
                }
                Kv::U32Array(n, values) => {
                    out.extend(9u32.to_le_bytes());
                    out.extend(4u32.to_le_bytes());
                    out.extend(n.to_le_bytes());
                    for v in values {
                        out.extend(v.to_le_bytes());
                    }
                }
            }
        }
        for t in &self.tensors {
            put_str(&mut out, &t.name);
            out.extend((t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(t.ggml_type.to_le_bytes());
            out.extend(t.offset.to_le_bytes());
        }
        while !out.len().is_multiple_of(32) {
            out.push(0);
        }
        out.extend(&self.data);
        out
    }

    fn tensor(&mut self, name: &str) -> &mut RawTensor {
        self.tensors.iter_mut().find(|t| t.name == name).unwrap_or_else(|| panic!("no tensor {name}"))
    }

    fn kv(&mut self, key: &str) -> &mut Kv {
        &mut self.kvs.iter_mut().find(|(k, _)| k == key).unwrap_or_else(|| panic!("no key {key}")).1
    }

    fn config(&mut self, edit: impl FnOnce(&mut serde_json::Value)) {
        let Kv::Str(text) = self.kv(CONFIG_KEY) else { unreachable!() };
        let mut value: serde_json::Value = serde_json::from_str(text).unwrap();
        edit(&mut value);
        *text = value.to_string();
    }
}

fn micro_gguf(dtype: TargetDType) -> Vec<u8> {
    let config = edgecap::config::BlipConfig::from_json(MICRO_CONFIG).unwrap();
    let st = support::random_safetensors(&config, 7);
    let mut out = Vec::new();
    convert_to_gguf(
        &st,
        MICRO_CONFIG,
        Some(MICRO_TOKENIZER),
        &ConvertOptions { dtype, compat_candle: false },
        &mut out,
        |_, _| {},
    )
    .unwrap();
    out
}

struct Files {
    tmp: tempfile::TempDir,
    image: PathBuf,
}

impl Files {
    fn new(label: &str) -> Self {
        let tmp = temp_dir(label);
        // The micro model's input is 16x16; any image is resized to it.
        let image = tmp.path().join("image.png");
        std::fs::write(&image, read("images/synthetic_64x64.png")).unwrap();
        Files { tmp, image }
    }

    fn model(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.tmp.path().join(format!("{name}.gguf"));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// The CLI refuses `bytes` as a model, with a line that mentions `mentions`.
    fn refuses(&self, name: &str, bytes: &[u8], mentions: &str) {
        caption(&self.model(name, bytes), &self.image).fails_cleanly(mentions);
    }
}

#[test]
fn the_hand_written_micro_model_loads_and_captions() {
    // Otherwise every refusal below could be for a reason other than the one spoiled.
    let f = Files::new("micro-ok");
    for dtype in [TargetDType::Q8_0, TargetDType::F32] {
        let raw = RawGguf::micro(dtype);
        assert_eq!(raw.bytes(), micro_gguf(dtype), "our writer reproduces the converted file");
        let ids = caption(&f.model("micro", &raw.bytes()), &f.image).token_ids();
        assert_eq!(ids[0], 5);
    }
}

#[test]
fn a_model_truncated_anywhere_is_refused() {
    let f = Files::new("truncated");
    let bytes = RawGguf::micro(TargetDType::Q8_0).bytes();
    let data_offset = GgufFile::parse(&bytes).unwrap().header().data_offset as usize;
    // Every byte of the fixed header, points through the metadata and tensor infos, and the data.
    let mut cuts: Vec<usize> = (0..=24).collect();
    cuts.extend((25..data_offset).step_by(data_offset / 40));
    cuts.extend((data_offset..bytes.len()).step_by((bytes.len() - data_offset) / 10));
    cuts.push(bytes.len() - 1);
    for cut in &cuts {
        f.refuses(&format!("cut-{cut}"), &bytes[..*cut], "");
    }
    eprintln!("{} truncations refused", cuts.len());
}

#[test]
fn wrong_magic_or_version_is_refused() {
    let f = Files::new("magic");
    let raw = RawGguf::micro(TargetDType::Q8_0);
    for (name, magic) in [("ggml", *b"ggml"), ("zeros", [0; 4]), ("lower", *b"gguf")] {
        f.refuses(name, &RawGguf { magic, ..raw.clone() }.bytes(), "");
    }
    // Version 2 is the same layout as 3 (3 added big-endian files) and loads.
    for version in [0, 1, 4, u32::MAX] {
        f.refuses(&format!("v{version}"), &RawGguf { version, ..raw.clone() }.bytes(), "version");
    }
}

#[test]
fn absurd_counts_lengths_and_dims_are_refused_without_allocating() {
    let f = Files::new("absurd");
    let raw = RawGguf::micro(TargetDType::Q8_0);
    for count in [1 << 40, 1 << 60, u64::MAX] {
        f.refuses(&format!("tensors-{count}"), &RawGguf { tensor_count: Some(count), ..raw.clone() }.bytes(), "");
        f.refuses(&format!("kvs-{count}"), &RawGguf { kv_count: Some(count), ..raw.clone() }.bytes(), "");
    }
    let mut long_string = raw.clone();
    long_string.kvs.push(("general.name".into(), Kv::StrLen(1 << 50, "micro".into())));
    f.refuses("string-length", &long_string.bytes(), "");
    let mut long_array = raw.clone();
    long_array.kvs.push(("general.ids".into(), Kv::U32Array(u64::MAX / 4, vec![1, 2, 3])));
    f.refuses("array-length", &long_array.bytes(), "");
    let mut long_key = raw.clone();
    long_key.kvs.insert(0, ("x".repeat(100), Kv::U32(1)));
    let mut key_bytes = long_key.bytes();
    key_bytes[24..32].copy_from_slice(&(1u64 << 55).to_le_bytes()); // the first key's length
    f.refuses("key-length", &key_bytes, "");

    let name = "vision_model.post_layernorm.weight";
    for (label, dims) in [
        ("huge-dims", vec![1 << 31, 1 << 31, 1 << 31, 1 << 31]),
        ("overflowing-dims", vec![u64::MAX, 2]),
        ("five-dims", vec![2, 2, 2, 2, 2]),
        ("zero-dim", vec![0]),
    ] {
        let mut spoiled = raw.clone();
        spoiled.tensor(name).dims = dims;
        f.refuses(label, &spoiled.bytes(), "");
    }
}

#[test]
fn offsets_past_the_end_are_refused() {
    let f = Files::new("offsets");
    let raw = RawGguf::micro(TargetDType::Q8_0);
    let last = raw.tensors.last().unwrap().name.clone();
    for (label, offset) in [("far", 1u64 << 40), ("max", u64::MAX - 31), ("just-past", raw.data.len() as u64)] {
        let mut spoiled = raw.clone();
        spoiled.tensor(&last).offset = offset;
        f.refuses(label, &spoiled.bytes(), "");
    }
    let mut misaligned = raw.clone();
    misaligned.tensor(&last).offset += 1;
    f.refuses("misaligned", &misaligned.bytes(), "");
}

#[test]
fn wrong_dtypes_are_refused() {
    let f = Files::new("dtypes");
    let raw = RawGguf::micro(TargetDType::Q8_0);
    let weight = "vision_model.encoder.layers.0.mlp.fc1.weight";
    // Unknown type ids, a ggml type we do not decode (Q5_K), one we decode whose size the data
    // does not fit (Q4_K), and an integer type (I32).
    // The data no longer fits the type's size, or the type is one no BLIP weight has.
    for (label, ty, mentions) in
        [("unknown", 77, ""), ("max", u32::MAX, ""), ("q5_k", 13, ""), ("q4_k", 12, ""), ("i32", 26, "")]
    {
        let mut spoiled = raw.clone();
        spoiled.tensor(weight).ggml_type = ty;
        f.refuses(label, &spoiled.bytes(), mentions);
    }
    // Same byte size, so the layout holds and the loader meets the type: I32 for an f32 weight.
    let mut f32_raw = RawGguf::micro(TargetDType::F32);
    f32_raw.tensor(weight).ggml_type = 26;
    f.refuses("i32-same-size", &f32_raw.bytes(), weight);
}

#[test]
fn missing_tensors_and_shapes_unlike_the_config_are_refused() {
    let f = Files::new("tensors");
    let raw = RawGguf::micro(TargetDType::F32);
    let name = "text_decoder.bert.encoder.layer.0.crossattention.self.key.weight";
    let mut missing = raw.clone();
    missing.tensors.retain(|t| t.name != name);
    f.refuses("missing", &missing.bytes(), name);

    // The same bytes under a transposed shape (64x32 read as 32x64) and a different shape.
    let fc1 = "vision_model.encoder.layers.0.mlp.fc1.weight";
    let mut transposed = raw.clone();
    transposed.tensor(fc1).dims.reverse();
    f.refuses("transposed", &transposed.bytes(), fc1);
    let mut reshaped = raw.clone();
    reshaped.tensor(fc1).dims = vec![16, 128];
    f.refuses("reshaped", &reshaped.bytes(), fc1);

    // A config wider than the tensors in the file.
    let mut wider = raw.clone();
    wider.config(|c| c["text_config"]["intermediate_size"] = 128.into());
    f.refuses("wider-config", &wider.bytes(), "");
}

#[test]
fn configs_that_are_not_json_or_impossible_are_refused() {
    let f = Files::new("configs");
    let raw = RawGguf::micro(TargetDType::Q8_0);
    let mut not_json = raw.clone();
    *not_json.kv(CONFIG_KEY) = Kv::Str("{ not json".into());
    f.refuses("not-json", &not_json.bytes(), "json");
    let mut not_text = raw.clone();
    *not_text.kv(CONFIG_KEY) = Kv::U32(7);
    f.refuses("not-a-string", &not_text.bytes(), "config");
    let mut no_config = raw.clone();
    no_config.kvs.retain(|(k, _)| k != CONFIG_KEY);
    f.refuses("no-config", &no_config.bytes(), "config");

    type Edit = fn(&mut serde_json::Value);
    let impossible: [(&str, Edit); 8] = [
        ("zero-heads", |c| c["vision_config"]["num_attention_heads"] = 0.into()),
        ("indivisible-heads", |c| c["text_config"]["num_attention_heads"] = 3.into()),
        ("zero-image", |c| c["vision_config"]["image_size"] = 0.into()),
        ("patch-not-dividing", |c| c["vision_config"]["image_size"] = 17.into()),
        ("huge-hidden", |c| c["vision_config"]["hidden_size"] = (1u64 << 40).into()),
        ("bos-outside-vocab", |c| c["text_config"]["bos_token_id"] = 99.into()),
        ("negative", |c| c["text_config"]["vocab_size"] = (-16).into()),
        ("string-size", |c| c["text_config"]["hidden_size"] = "32".into()),
    ];
    for (label, edit) in impossible {
        let mut spoiled = raw.clone();
        spoiled.config(edit);
        f.refuses(label, &spoiled.bytes(), "config");
    }
    let mut bad_tokenizer = raw.clone();
    *bad_tokenizer.kv(TOKENIZER_KEY) = Kv::Str("{\"model\": 5}".into());
    f.refuses("bad-tokenizer", &bad_tokenizer.bytes(), "tokenizer");
}

#[test]
fn model_errors_on_the_gpu_backend_are_the_same_one_line() {
    // The GPU loader streams tensors to buffers: its refusals must be as clean (lavapipe here).
    let f = Files::new("gpu");
    let raw = RawGguf::micro(TargetDType::Q8_0);
    let bytes = raw.bytes();
    let mut reshaped = raw.clone();
    reshaped.tensor("vision_model.encoder.layers.0.mlp.fc1.weight").dims = vec![16, 128];
    for (label, bytes) in [("cut", bytes[..bytes.len() / 2].to_vec()), ("reshaped", reshaped.bytes())] {
        let run = caption_with(&f.model(label, &bytes), &f.image, "gpu");
        if run.lacks_a_gpu_and_may_skip() {
            return;
        }
        run.fails_cleanly("");
    }
}

// ---------------------------------------------------------------------------------------------
// Images

/// A PNG whose header claims `width`x`height` 8-bit RGB, with a few bytes of image data.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    // zlib stream of a few zero bytes (stored block): far fewer than the image needs.
    common::png_claiming(width, height, &[0x78, 0x01, 0x01, 0x04, 0x00, 0xfb, 0xff, 0, 0, 0, 0, 0, 0x04, 0x00, 0x01])
}

/// A GIF whose screen and frame claim `width`x`height`.
fn gif_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend(width.to_le_bytes());
    out.extend(height.to_le_bytes());
    out.extend([0x80, 0, 0, 0, 0, 0, 255, 255, 255]); // 2-entry global palette
    out.extend([0x2c, 0, 0, 0, 0]);
    out.extend(width.to_le_bytes());
    out.extend(height.to_le_bytes());
    out.extend([0, 2, 2, 0x4c, 0x01, 0, 0x3b]);
    out
}

fn hf_caption(dir: &Path, image: &Path) -> Run {
    edgecap(argv![
        "caption",
        "--backend",
        "cpu",
        "--json",
        "--model",
        fixture_path("models/blip-tiny-random"),
        "--tokenizer",
        fixture_path("models/tokenizer.json"),
        dir.join(image)
    ])
}

fn fixture_path(rel: &str) -> PathBuf {
    fixtures().join(rel)
}

#[test]
fn bad_images_are_refused_with_one_line() {
    let tmp = temp_dir("bad-images");
    let png = read("images/synthetic_160x120.png");
    let jpeg = {
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    };
    let encode = |format| {
        let mut out = std::io::Cursor::new(Vec::new());
        image::load_from_memory(&png).unwrap().to_rgb8().write_to(&mut out, format).unwrap();
        out.into_inner()
    };
    let (gif, webp) = (encode(image::ImageFormat::Gif), encode(image::ImageFormat::WebP));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.png", vec![], "decode"),
        ("text.jpg", b"just some text, not a picture\n".to_vec(), "decode"),
        ("html.png", b"<!doctype html><title>404</title>".to_vec(), "decode"),
        ("truncated.png", png[..png.len() / 3].to_vec(), "decode"),
        ("signature-only.png", png[..8].to_vec(), "decode"),
        ("truncated.jpg", jpeg[..jpeg.len() / 2].to_vec(), "truncated"),
        ("no-end.jpg", jpeg[..jpeg.len() - 2].to_vec(), "truncated"),
        ("truncated.gif", gif[..gif.len() / 2].to_vec(), ""),
        ("truncated.webp", webp[..webp.len() / 2].to_vec(), ""),
        ("zero-width.png", png_claiming(0, 100), ""),
        ("zero-height.gif", gif_claiming(100, 0), ""),
        // Decompression bombs: a few bytes that claim billions of pixels.
        ("bomb.png", png_claiming(100_000, 100_000), "too large"),
        ("bomb-wide.png", png_claiming(1 << 31, 1), "too large"),
        ("bomb.gif", gif_claiming(65_535, 65_535), "too large"),
    ];
    for (name, bytes, mentions) in &cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let run = hf_caption(tmp.path(), Path::new(name));
        run.fails_cleanly(mentions);
        assert!(run.stderr.contains(&*path.to_string_lossy()), "{}: the line names the file: {}", run.what, run.stderr);
    }
}

#[test]
fn input_sizes_the_model_cannot_take_are_refused_as_image_sizes() {
    // The tiny model's patch is 8: 70 leaves a partial patch.
    let run = edgecap(argv![
        "caption",
        "--backend",
        "cpu",
        "--json",
        "--image-size",
        "70",
        "--model",
        fixture_path("models/blip-tiny-random"),
        "--tokenizer",
        fixture_path("models/tokenizer.json"),
        fixture_path("images/synthetic_64x64.png")
    ]);
    run.fails_cleanly("image size: 70 is not a multiple of the patch size 8");
}

#[test]
fn odd_but_valid_images_caption() {
    use image::{ImageBuffer, Luma, LumaA, Rgb};
    let tmp = temp_dir("odd-images");
    let base = image::load_from_memory(&read("images/synthetic_64x64.png")).unwrap().to_rgb8();
    let save = |name: &str, img: image::DynamicImage| {
        img.save(tmp.path().join(name)).unwrap();
        hf_caption(tmp.path(), Path::new(name)).token_ids()
    };

    // 16-bit RGB whose values are the 8-bit ones times 257: PIL keeps the high byte, so it is the
    // same picture and must give the same caption.
    let wide: ImageBuffer<Rgb<u16>, Vec<u16>> =
        ImageBuffer::from_fn(64, 64, |x, y| Rgb(base.get_pixel(x, y).0.map(|v| v as u16 * 257)));
    assert_eq!(save("rgb16.png", wide.into()), save("rgb8.png", base.clone().into()), "16-bit = 8-bit");

    // Grey with alpha: PIL's convert("RGB") drops the alpha, so it captions as the grey image.
    let grey = image::DynamicImage::ImageRgb8(base.clone()).to_luma8();
    let grey_alpha: ImageBuffer<LumaA<u8>, Vec<u8>> =
        ImageBuffer::from_fn(64, 64, |x, y| LumaA([grey.get_pixel(x, y).0[0], (x * 4) as u8]));
    assert_eq!(save("grey-alpha.png", grey_alpha.into()), save("grey.png", grey.clone().into()), "alpha dropped");
    // 16-bit grey opens in PIL as mode "I;16", whose RGB conversion clips at 255: v * 257 is 255
    // for every v > 0.
    let grey16: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_fn(64, 64, |x, y| Luma([grey.get_pixel(x, y).0[0] as u16 * 257]));
    let clipped: ImageBuffer<Luma<u8>, Vec<u8>> =
        ImageBuffer::from_fn(64, 64, |x, y| Luma([if grey.get_pixel(x, y).0[0] > 0 { 255 } else { 0 }]));
    assert_eq!(save("grey16.png", grey16.into()), save("clipped.png", clipped.into()), "16-bit grey clips as PIL's");

    // 1x1, a very tall strip and a very wide one: preprocessing stretches them to the input size.
    let ids = save("1x1.png", ImageBuffer::from_pixel(1, 1, Rgb([200u8, 30, 30])).into());
    assert_eq!(ids[0], 30522);
    let tall: ImageBuffer<Rgb<u8>, Vec<u8>> =
        ImageBuffer::from_fn(3, 20_000, |x, y| Rgb([(y % 251) as u8, x as u8 * 80, 128]));
    assert!(save("tall.png", tall.into()).len() > 1);
    let wide: ImageBuffer<Rgb<u8>, Vec<u8>> =
        ImageBuffer::from_fn(20_000, 2, |x, y| Rgb([(x % 251) as u8, y as u8 * 80, 40]));
    assert!(save("wide.png", wide.into()).len() > 1);
}
