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
    let expect = [("q4_0.quantized", DType::Q4_0, [4, 96]), ("q4_0.raw", DType::Q4_0, [3, 64]), ("q4_k.raw", DType::Q4_K, [2, 512])];
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
