//! Loading a GGUF through a `ByteReader` (the browser's way: tensor by tensor from storage) gives
//! the same model as loading the bytes in memory, reads every byte of tensor data once, and
//! refuses damaged files with an error instead of reading past them.

mod common;

use std::cell::{Cell, RefCell};

use common::*;
use edgecap::backend::cpu::CpuBackend;
use edgecap::preprocess::decode_image;
use edgecap::weights::convert::{convert_to_gguf, ConvertOptions, TargetDType};
use edgecap::weights::reader::ByteReader;
use edgecap::{Captioner, Result};

fn tiny_gguf(dtype: TargetDType) -> Vec<u8> {
    let model = "models/blip-tiny-random";
    let st = read(&format!("{model}/model.safetensors"));
    let config = String::from_utf8(read(&format!("{model}/config.json"))).unwrap();
    let tok = String::from_utf8(tokenizer_json()).unwrap();
    let mut gguf = Vec::new();
    convert_to_gguf(&st, &config, Some(&tok), &ConvertOptions { dtype, compat_candle: false }, &mut gguf, |_, _| {})
        .unwrap();
    gguf
}

/// Counts what is read, and the largest single read.
struct Counting<'a> {
    bytes: &'a [u8],
    total: Cell<u64>,
    largest: Cell<usize>,
}

impl ByteReader for Counting<'_> {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.total.set(self.total.get() + buf.len() as u64);
        self.largest.set(self.largest.get().max(buf.len()));
        self.bytes.read_at(offset, buf)
    }
}

#[test]
fn streamed_q8_0_model_captions_like_the_in_memory_one() {
    let gguf = tiny_gguf(TargetDType::Q8_0);
    let reader = Counting { bytes: &gguf, total: Cell::new(0), largest: Cell::new(0) };
    let seen = RefCell::new(Vec::new());
    let progress = |loaded: u64, total: u64| seen.borrow_mut().push((loaded, total));
    let streamed = Captioner::load_streamed(CpuBackend, &reader, Some(&progress)).unwrap();
    let in_memory = Captioner::load(CpuBackend, &gguf, None, None).unwrap();

    let header = edgecap::weights::gguf::parse_header(&gguf).unwrap();
    let data: u64 = header.tensors.iter().map(|t| t.size as u64).sum();
    let seen = seen.into_inner();
    assert_eq!(seen.len(), header.tensors.len(), "one progress report per tensor");
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "progress only grows");
    assert_eq!(seen.last().copied(), Some((data, data)), "progress ends at the data size");
    // The header prefix (one read, the file being under 1 MB) plus each tensor once.
    let header_read = gguf.len().min(1 << 20) as u64;
    assert_eq!(reader.total.get(), header_read + data, "every tensor read exactly once");

    for image in ["images/synthetic_160x120.png", "images/synthetic_640x480.png"] {
        let img = decode_image(&read(image)).unwrap();
        for mode in ["greedy", "prompt", "beam3"] {
            let opts = mode_options(mode);
            let a = pollster::block_on(streamed.caption(&img, &opts)).unwrap();
            let b = pollster::block_on(in_memory.caption(&img, &opts)).unwrap();
            assert_eq!(a.token_ids, b.token_ids, "{image} {mode}");
        }
    }
}

#[test]
fn streamed_f32_model_captions_like_transformers() {
    let gguf = tiny_gguf(TargetDType::F32);
    let cap = Captioner::load_streamed(CpuBackend, &gguf.as_slice(), None).unwrap();
    let mut compared = 0;
    for case in cases().iter().filter(|c| c.model == "models/blip-tiny-random") {
        let img = decode_image(&read(&case.image)).unwrap();
        let got = pollster::block_on(cap.caption(&img, &mode_options(&case.mode))).unwrap();
        assert_eq!(got.token_ids, case.token_ids, "{} {}", case.image, case.mode);
        compared += 1;
    }
    assert_eq!(compared, 9);
}

#[test]
fn damaged_files_are_refused_with_an_error() {
    let gguf = tiny_gguf(TargetDType::Q8_0);
    let header = edgecap::weights::gguf::parse_header(&gguf).unwrap();
    let err = |bytes: &[u8]| match Captioner::load_streamed(CpuBackend, &bytes, None) {
        Ok(_) => panic!("a damaged file of {} bytes loaded", bytes.len()),
        Err(e) => e.to_string(),
    };
    // Cut inside the header, inside the tensor data, and one byte short of the end.
    for cut in [0, 3, 100, header.data_offset as usize - 1, header.data_offset as usize + 1000, gguf.len() - 1] {
        let e = err(&gguf[..cut]);
        assert!(
            e.contains("truncated")
                || e.contains("too short")
                || e.contains("past the end")
                || e.contains("out of bounds")
                || e.contains("end"),
            "cut at {cut}: {e}"
        );
    }
    let mut bad_magic = gguf.clone();
    bad_magic[0] = b'X';
    assert!(err(&bad_magic).contains("magic"));
}
