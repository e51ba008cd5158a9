//! 4-bit GGUF tensors (Q4_0, Q4_K) decode to exactly what the `gguf` package (llama.cpp's gguf-py)
//! decodes them to. The file and the expected values come from gguf-py itself:
//! tests/fixtures/tools/q4_blocks.py (`--check` regenerates them and compares, a scripts/test.sh
//! stage); the blocks are gguf-py's Q4_0 quantization of smooth values and random blocks of both
//! types (any nibbles, scales and mins, finite f16 headers of both signs).

use edgecap::weights::gguf::GgufFile;
use edgecap::weights::{DType, TensorView};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/gguf");

#[test]
fn q4_tensors_decode_as_gguf_py_does() {
    let bytes = std::fs::read(format!("{DIR}/q4_blocks.gguf")).unwrap();
    let want: Vec<f32> = std::fs::read(format!("{DIR}/q4_blocks.f32"))
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let file = GgufFile::parse(&bytes).unwrap();
    let expect = [
        ("q4_0.quantized", DType::Q4_0, [4, 96]),
        ("q4_0.raw", DType::Q4_0, [3, 64]),
        ("q4_k.raw", DType::Q4_K, [2, 512]),
    ];
    assert!(file.other_tensors().is_empty(), "undecodable tensors: {:?}", file.other_tensors());
    let mut at = 0;
    for (name, dtype, shape) in expect {
        let info = file.tensor(name).unwrap().unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!((info.dtype, info.shape.as_slice()), (dtype, shape.as_slice()), "{name}");
        let view = TensorView { name, shape: &info.shape, dtype: info.dtype, data: file.tensor_data(info) };
        let got = view.to_f32().unwrap();
        let n = got.len();
        for (i, (g, w)) in got.iter().zip(&want[at..at + n]).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "{name}[{i}]: edgecap {g}, gguf-py {w}");
        }
        at += n;
    }
    assert_eq!(at, want.len(), "the reference holds more values than the three tensors");
}

#[test]
fn q4_byte_lengths_need_whole_blocks() {
    assert_eq!(DType::Q4_0.byte_len(64), Some(36));
    assert_eq!(DType::Q4_0.byte_len(48), None);
    assert_eq!(DType::Q4_K.byte_len(512), Some(288));
    assert_eq!(DType::Q4_K.byte_len(128), None);
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Our quantizers against ggml's `quantize_row_q4_0_ref` / `quantize_row_q4_K_ref`, run through
/// ggml's own library by tests/fixtures/tools/ggml_q4_reference.py (`--check` in scripts/test.sh).
#[test]
fn q4_quantizers_write_what_ggml_writes() {
    let x: Vec<f32> =
        read("q4_quant_input.f32").chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    type Quantizer = fn(&[f32], &mut Vec<u8>) -> Result<(), edgecap::weights::q4::Q4Error>;
    let cases: [(&str, Quantizer, usize, usize); 2] = [
        ("q4_quant_ggml.q4_0", edgecap::weights::q4::quantize_q4_0, 32, 18),
        ("q4_quant_ggml.q4_k", edgecap::weights::q4::quantize_q4_k, 256, 144),
    ];
    for (file, quantize, values, bytes) in cases {
        let want = read(file);
        let mut got = Vec::new();
        quantize(&x, &mut got).unwrap();
        assert_eq!(got.len(), want.len(), "{file}: length");
        let bad: Vec<usize> = got
            .chunks_exact(bytes)
            .zip(want.chunks_exact(bytes))
            .enumerate()
            .filter(|(_, (g, w))| g != w)
            .map(|(i, _)| i)
            .collect();
        assert!(
            bad.is_empty(),
            "{file}: {} of {} blocks differ from ggml's, first block {} (values {}..)",
            bad.len(),
            want.len() / bytes,
            bad[0],
            bad[0] * values
        );
    }
}

#[test]
fn q4_quantizers_refuse_partial_blocks_and_non_finite_values() {
    use edgecap::weights::q4::{quantize_q4_0, quantize_q4_k, Q4Error};
    let mut out = Vec::new();
    assert_eq!(quantize_q4_0(&[0.5; 48], &mut out), Err(Q4Error::PartialBlock { len: 48, block: 32 }));
    assert_eq!(quantize_q4_k(&[0.5; 288], &mut out), Err(Q4Error::PartialBlock { len: 288, block: 256 }));
    let mut x = vec![1.0f32; 256];
    x[77] = f32::NAN;
    assert_eq!(quantize_q4_k(&x, &mut out), Err(Q4Error::NonFinite(77)));
    x[77] = f32::INFINITY;
    assert_eq!(quantize_q4_0(&x, &mut out), Err(Q4Error::NonFinite(77)));
    assert!(out.is_empty(), "nothing is written for refused input");
}
