//! GGUF reader/writer and Q8_0 tests. Reference data comes from llama.cpp's `gguf` Python
//! package through tests/fixtures/tools/*.py; running these tests does not need Python.

use std::io;

use edgecap::weights::{gguf::*, q8_0, DType};
use half::f16;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/gguf/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn f32_from_le(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn f32_to_le(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn quantized(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    q8_0::quantize(values, &mut out).unwrap();
    out
}

/// xorshift64*: deterministic test data without a dependency.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Q8_0

#[test]
fn q8_0_matches_gguf_py_byte_for_byte() {
    let input = f32_from_le(&fixture("q8_0_input.f32"));
    let expected = fixture("q8_0_expected.bin");
    let got = quantized(&input);
    assert_eq!(got.len(), expected.len());
    let blocks = got.chunks(q8_0::BLOCK_BYTES).zip(expected.chunks(q8_0::BLOCK_BYTES));
    for (i, (got, want)) in blocks.enumerate() {
        let block = &input[i * q8_0::QK8_0..][..q8_0::QK8_0];
        assert_eq!(got, want, "block {i} of q8_0_input.f32: {block:?}");
    }
}

/// ggml's `quantize_row_q8_0_ref`, transcribed: amax = max |x|, d = amax / 127,
/// id = d ? 1 / d : 0, q = roundf(x * id), d stored as f16. `None` where the C code casts
/// inf or NaN to int8 (undefined behaviour).
fn q8_0_c_reference(block: &[f32]) -> Option<Vec<u8>> {
    let amax = block.iter().map(|x| x.abs()).fold(0.0f32, f32::max);
    let d = amax / ((1 << 7) - 1) as f32;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    if id.is_infinite() {
        return None;
    }
    let mut out = f16::from_f32(d).to_le_bytes().to_vec();
    out.extend(block.iter().map(|&x| (x * id).round() as i8 as u8));
    Some(out)
}

#[test]
fn q8_0_matches_the_c_reference_formula() {
    let mut data = f32_from_le(&fixture("q8_0_input.f32"));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for block in 0..3000 {
        let scale = 10f32.powi(block % 40 - 20);
        data.extend((0..32).map(|_| rng.unit() * scale));
    }
    for e in -6..6 {
        // d = 2^e exactly, so every (k + 0.5) * d is an exact tie.
        let d = 2f32.powi(e);
        data.extend((0..31).map(|k| (k as f32 - 15.5) * d));
        data.push(127.0 * d);
    }
    let got = quantized(&data);
    let blocks = data.chunks(q8_0::QK8_0).zip(got.chunks(q8_0::BLOCK_BYTES));
    let mut checked = 0;
    for (i, (block, bytes)) in blocks.enumerate() {
        if let Some(want) = q8_0_c_reference(block) {
            assert_eq!(bytes, want, "block {i}: {block:?}");
            checked += 1;
        }
    }
    assert!(checked > 3000);
}

#[test]
fn q8_0_rounds_exact_ties_away_from_zero() {
    // max |x| = 127 makes d and 1/d exactly 1, so x * id is x itself.
    let mut block = [0.0f32; 32];
    block[..8].copy_from_slice(&[0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, 127.0]);
    let out = quantized(&block);
    assert_eq!(out[..2], f16::ONE.to_le_bytes());
    let q: Vec<i8> = out[2..10].iter().map(|&b| b as i8).collect();
    assert_eq!(q, [1, 2, 3, -1, -2, -3, 127, 127]);
}

#[test]
fn q8_0_writes_zero_quants_when_the_scale_underflows() {
    // 1/d overflows to inf; gguf-py (numpy) produces 0 here, as the fixture also pins.
    let block = [1e-38f32; 32];
    assert_eq!(quantized(&block), [0u8; 34]);
    assert_eq!(quantized(&[0.0; 32]), [0u8; 34]);
}

#[test]
fn q8_0_dequantize_is_scale_times_quant() {
    let bytes = fixture("q8_0_expected.bin");
    let mut values = vec![0.0f32; bytes.len() / q8_0::BLOCK_BYTES * q8_0::QK8_0];
    q8_0::dequantize(&bytes, &mut values);
    let blocks = bytes.chunks(q8_0::BLOCK_BYTES).zip(values.chunks(q8_0::QK8_0));
    for (block, values) in blocks {
        let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
        for (&q, &v) in block[2..].iter().zip(values) {
            let want = f32::from(q as i8) * d;
            assert!(v.to_bits() == want.to_bits() || (v.is_nan() && want.is_nan()));
        }
    }
}

#[test]
fn q8_0_round_trip_error_is_within_half_a_step() {
    let mut rng = Rng(7);
    let data: Vec<f32> = (0..32 * 64).map(|_| rng.unit() * 3.0).collect();
    let mut back = vec![0.0; data.len()];
    q8_0::dequantize(&quantized(&data), &mut back);
    for (block, back) in data.chunks(32).zip(back.chunks(32)) {
        let d = block.iter().fold(0.0f32, |m, x| m.max(x.abs())) / 127.0;
        for (x, y) in block.iter().zip(back) {
            // Half a step, plus what storing d as f16 costs at |q| <= 127.
            assert!((x - y).abs() <= d * (0.5 + 127.0 / 2048.0), "{x} vs {y}");
        }
    }
}

#[test]
fn q8_0_refuses_partial_blocks_and_non_finite_values() {
    let mut out = vec![1u8];
    let err = q8_0::quantize(&[0.0; 33], &mut out);
    assert_eq!(err, Err(q8_0::Q8Error::PartialBlock(33)));
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut block = [0.0f32; 64];
        block[37] = bad;
        assert_eq!(q8_0::quantize(&block, &mut out), Err(q8_0::Q8Error::NonFinite(37)));
    }
    assert_eq!(out, [1], "nothing appended on error");
}

#[test]
fn q8_0_dequantize_with_mismatched_sizes_decodes_what_fits() {
    let block = quantized(&[-127.0; 32]); // d = 1 exactly
    let mut src = block.clone();
    src.push(9);
    let mut dst = [7.0f32; 40];
    q8_0::dequantize(&src, &mut dst);
    assert_eq!(dst[..32], [-127.0; 32]);
    assert_eq!(dst[32..], [7.0; 8]);
    q8_0::dequantize(&block, &mut [0.0; 31]);
}

// ---------------------------------------------------------------------------------------------
// The file written by gguf-py (tests/fixtures/tools/check_gguf_py.py --write); keep in step.

/// The script's `values()`: rationals computed in f64 and rounded to f32.
fn rationals(n: i64, mul: i64, modulus: i64, div: f64) -> Vec<f32> {
    (0..n).map(|i| (((i * mul) % modulus - modulus / 2) as f64 / div) as f32).collect()
}

fn s(v: &str) -> MetaValue {
    MetaValue::String(v.to_owned())
}

fn py_metadata() -> Vec<(String, MetaValue)> {
    let strings = ["[CLS]", "hello", "", "\u{2713}"].map(String::from).to_vec();
    let nested = vec![MetaArray::I32(vec![1, 2]), MetaArray::I32(vec![3])];
    [
        ("general.architecture", s("blip")),
        ("general.alignment", MetaValue::U32(64)),
        ("test.u8", MetaValue::U8(200)),
        ("test.i8", MetaValue::I8(-100)),
        ("test.u16", MetaValue::U16(60000)),
        ("test.i16", MetaValue::I16(-30000)),
        ("test.u32", MetaValue::U32(4_000_000_000)),
        ("test.i32", MetaValue::I32(-2_000_000_000)),
        ("test.u64", MetaValue::U64((1 << 63) + 5)),
        ("test.i64", MetaValue::I64(-(1 << 62))),
        ("test.f32", MetaValue::F32(1.5)),
        ("test.f64", MetaValue::F64(-2.25e-300)),
        ("test.bool", MetaValue::Bool(true)),
        ("test.string", s("h\u{e9}llo w\u{f6}rld \u{2713}")),
        ("test.array.str", MetaValue::Array(MetaArray::String(strings))),
        ("test.array.u8", MetaValue::Array(MetaArray::U8(vec![0, 255, 7]))),
        ("test.array.i32", MetaValue::Array(MetaArray::I32(vec![1, -2, 3]))),
        ("test.array.u64", MetaValue::Array(MetaArray::U64(vec![0, u64::MAX]))),
        ("test.array.f32", MetaValue::Array(MetaArray::F32(vec![0.5, -1.25, 3.0]))),
        ("test.array.bool", MetaValue::Array(MetaArray::Bool(vec![true, false, true]))),
        ("test.array.nested", MetaValue::Array(MetaArray::Array(nested))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn spec(name: &str, shape: &[usize], dtype: DType) -> TensorSpec {
    TensorSpec { name: name.to_owned(), shape: shape.to_vec(), dtype }
}

fn py_tensors() -> Vec<(TensorSpec, Vec<u8>)> {
    let f16_bytes = rationals(7, 3, 11, 2.0).iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect();
    let bf16_bytes = rationals(6, 1, 6, 0.5).iter().flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes()).collect();
    vec![
        (spec("f32.odd", &[3, 5], DType::F32), f32_to_le(&rationals(15, 7, 31, 4.0))),
        (spec("f16.vec", &[7], DType::F16), f16_bytes),
        (spec("bf16.mat", &[2, 3], DType::BF16), bf16_bytes),
        (spec("q8.mat", &[2, 64], DType::Q8_0), quantized(&rationals(128, 37, 101, 7.0))),
        (spec("q8.3d", &[2, 1, 32], DType::Q8_0), quantized(&rationals(64, 53, 67, 3.0))),
    ]
}

fn write_file(metadata: &[(String, MetaValue)], tensors: &[(TensorSpec, Vec<u8>)]) -> Result<Vec<u8>, GgufError> {
    let specs: Vec<TensorSpec> = tensors.iter().map(|(spec, _)| spec.clone()).collect();
    let mut out = Vec::new();
    write(&mut out, metadata, &specs, |i, w| w.write_all(&tensors[i].1))?;
    Ok(out)
}

fn assert_tensors(file: &GgufFile, tensors: &[(TensorSpec, Vec<u8>)]) {
    assert_eq!(file.tensors().len(), tensors.len());
    for (info, (spec, data)) in file.tensors().iter().zip(tensors) {
        assert_eq!((&info.name, &info.shape, info.dtype), (&spec.name, &spec.shape, spec.dtype));
        assert_eq!(info.size, data.len(), "{}", info.name);
        assert_eq!(info.offset % u64::from(file.header().alignment), 0, "{}", info.name);
        assert_eq!(file.tensor_data(info), data, "{}", info.name);
        assert_eq!(file.tensor(&spec.name).unwrap(), Some(info));
    }
}

#[test]
fn reads_the_file_written_by_gguf_py() {
    let bytes = fixture("py_written.gguf");
    let file = GgufFile::parse(&bytes).unwrap();
    assert_eq!(file.header().version, 3);
    assert_eq!(file.header().alignment, 64);
    assert_eq!(file.metadata(), py_metadata());
    assert_tensors(&file, &py_tensors());
    assert!(file.other_tensors().is_empty());

    assert_eq!(file.get_str("general.architecture"), Some("blip"));
    assert_eq!(file.get_u32("general.alignment"), Some(64));
    assert_eq!(file.get_u32("test.u16"), None, "typed getters are strict");
    assert_eq!(file.get_uint("test.u16"), Some(60000));
    assert_eq!(file.get_uint("test.i32"), None, "negative");
    assert_eq!(file.get_f32("test.f32"), Some(1.5));
    assert_eq!(file.get_float("test.f64"), Some(-2.25e-300));
    assert_eq!(file.get_bool("test.bool"), Some(true));
    assert_eq!(file.get_str_array("test.array.str").map(<[_]>::len), Some(4));
    assert_eq!(file.get("absent"), None);
    assert_eq!(file.tensor("absent").unwrap(), None);
}

/// Also leaves our output where CI runs `check_gguf_py.py` on it.
#[test]
fn writer_matches_gguf_py_byte_for_byte() {
    let ours = write_file(&py_metadata(), &py_tensors()).unwrap();
    let path = format!("{}/edgecap_written.gguf", env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(&path, &ours).unwrap();
    let theirs = fixture("py_written.gguf");
    let first_difference = ours.iter().zip(&theirs).position(|(a, b)| a != b);
    assert_eq!(first_difference, None);
    assert_eq!(ours.len(), theirs.len());
}

// ---------------------------------------------------------------------------------------------
// Round trips through our own writer

fn every_metadata_type() -> Vec<(String, MetaValue)> {
    let deep = MetaArray::Array(vec![
        MetaArray::Array(vec![MetaArray::F64(vec![1.0, -0.0]), MetaArray::String(vec![])]),
        MetaArray::Array(vec![]),
        MetaArray::Bool(vec![false]),
    ]);
    let values = [
        MetaValue::U8(u8::MAX),
        MetaValue::I8(i8::MIN),
        MetaValue::U16(u16::MAX),
        MetaValue::I16(i16::MIN),
        MetaValue::U32(u32::MAX),
        MetaValue::I32(i32::MIN),
        MetaValue::U64(u64::MAX),
        MetaValue::I64(i64::MIN),
        MetaValue::F32(f32::MIN_POSITIVE),
        MetaValue::F64(std::f64::consts::PI),
        MetaValue::Bool(false),
        s(""),
        s("\u{1f600} multi\nline"),
        MetaValue::Array(MetaArray::U8(vec![])),
        MetaValue::Array(MetaArray::I8(vec![-1, 1])),
        MetaValue::Array(MetaArray::U16(vec![1, 2, 3])),
        MetaValue::Array(MetaArray::I16(vec![-7])),
        MetaValue::Array(MetaArray::U32(vec![u32::MAX])),
        MetaValue::Array(MetaArray::I32(vec![])),
        MetaValue::Array(MetaArray::U64(vec![1 << 40])),
        MetaValue::Array(MetaArray::I64(vec![-(1 << 40), 0])),
        MetaValue::Array(MetaArray::F32(vec![f32::INFINITY, -0.5])),
        MetaValue::Array(MetaArray::F64(vec![1e300])),
        MetaValue::Array(MetaArray::Bool(vec![true, true])),
        MetaValue::Array(MetaArray::String(vec!["a".into(), "".into(), "\u{e9}".into()])),
        MetaValue::Array(deep),
    ];
    values.into_iter().enumerate().map(|(i, v)| (format!("key.{i}"), v)).collect()
}

fn odd_tensors(rng: &mut Rng) -> Vec<(TensorSpec, Vec<u8>)> {
    let mut tensor = |name: &str, shape: &[usize], dtype: DType| {
        let spec = spec(name, shape, dtype);
        let data = if dtype == DType::Q8_0 {
            let n = shape.iter().product::<usize>();
            quantized(&(0..n).map(|_| rng.unit()).collect::<Vec<_>>())
        } else {
            rng.bytes(spec.nbytes().unwrap())
        };
        (spec, data)
    };
    vec![
        tensor("one", &[1], DType::F32),
        tensor("scalar", &[], DType::F32),
        tensor("four.dims", &[3, 1, 2, 5], DType::F32),
        tensor("empty", &[0, 4], DType::F32),
        tensor("half", &[5, 3], DType::F16),
        tensor("brain", &[1, 7], DType::BF16),
        tensor("q8.rows", &[3, 96], DType::Q8_0),
        tensor("q8.one.block", &[32], DType::Q8_0),
        tensor("\u{e9}t\u{e9}", &[2], DType::F16),
    ]
}

#[test]
fn round_trips_every_metadata_type_dtype_and_alignment() {
    let mut rng = Rng(42);
    for alignment in [None, Some(1), Some(8), Some(128)] {
        let mut metadata = every_metadata_type();
        if let Some(a) = alignment {
            metadata.insert(3, (ALIGNMENT_KEY.to_owned(), MetaValue::U32(a)));
        }
        let tensors = odd_tensors(&mut rng);
        let bytes = write_file(&metadata, &tensors).unwrap();
        let file = GgufFile::parse(&bytes).unwrap();
        let header = file.header();
        assert_eq!(header.alignment, alignment.unwrap_or(DEFAULT_ALIGNMENT));
        assert_eq!(header.version, VERSION);
        assert_eq!(file.metadata(), metadata);
        assert_tensors(&file, &tensors);
        assert_eq!(header.data_offset % u64::from(header.alignment), 0);
        let padded_end = header.data_end.next_multiple_of(u64::from(header.alignment));
        assert_eq!(bytes.len() as u64, padded_end, "every tensor is padded");
    }
}

#[test]
fn tensor_nbytes_follow_the_ggml_block_layout() {
    assert_eq!(spec("q", &[3, 64], DType::Q8_0).nbytes().unwrap(), 3 * 2 * 34);
    assert_eq!(spec("h", &[5, 3], DType::F16).nbytes().unwrap(), 30);
    assert_eq!(spec("b", &[4], DType::BF16).nbytes().unwrap(), 8);
    assert_eq!(spec("f", &[], DType::F32).nbytes().unwrap(), 4);
    assert_eq!(GgmlType::from_id(12).map(|t| (t.name(), t.block_size(), t.type_size())), Some(("Q4_K", 256, 144)));
    assert_eq!(GgmlType::from_id(4), None, "Q4_2 was removed from ggml");
    for dtype in [DType::F32, DType::F16, DType::BF16, DType::Q8_0] {
        assert_eq!(GgmlType::from(dtype).dtype(), Some(dtype));
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming and truncation

/// A file whose last tensor ends exactly on the alignment, so any truncation loses data.
fn tight_file() -> Vec<u8> {
    let mut rng = Rng(3);
    let metadata = vec![
        ("general.architecture".to_owned(), s("blip")),
        ("tokens".to_owned(), MetaValue::Array(MetaArray::String(vec!["[PAD]".into(), "a".into()]))),
    ];
    let tensors = vec![
        (spec("w", &[2, 32], DType::Q8_0), quantized(&[0.25; 64])),
        (spec("b", &[3], DType::F16), rng.bytes(6)),
        (spec("last", &[16], DType::F32), rng.bytes(64)),
    ];
    let bytes = write_file(&metadata, &tensors).unwrap();
    assert_eq!(GgufFile::parse(&bytes).unwrap().header().data_end, bytes.len() as u64);
    bytes
}

#[test]
fn parse_header_works_on_a_prefix_and_asks_for_what_it_needs() {
    let bytes = tight_file();
    let file = GgufFile::parse(&bytes).unwrap();
    let header_len = (0..=bytes.len()).find(|&n| parse_header(&bytes[..n]).is_ok()).unwrap();
    assert!(header_len as u64 <= file.header().data_offset);
    for n in 0..header_len {
        match parse_header(&bytes[..n]) {
            Err(GgufError::Truncated { needed, available }) => {
                assert_eq!(available, n as u64);
                assert!(needed > n as u64 && needed <= header_len as u64, "{n}: {needed}");
            }
            other => panic!("prefix of {n} bytes: {other:?}"),
        }
    }
    let header = parse_header(&bytes[..header_len]).unwrap();
    assert_eq!(&header, file.header());
    let mut previous_end = header.data_offset;
    for info in &header.tensors {
        assert!(info.offset >= previous_end, "tensors are stored in list order");
        let end = (info.offset as usize) + info.size;
        assert_eq!(info.data(&bytes[..end - 1]), None);
        assert_eq!(info.data(&bytes[..end]), Some(file.tensor_data(info)));
        previous_end = end as u64;
    }
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = tight_file();
    for n in 0..bytes.len() {
        match GgufFile::parse(&bytes[..n]) {
            Err(GgufError::Truncated { .. } | GgufError::DataOutOfBounds { .. }) => {}
            other => panic!("prefix of {n} bytes: {other:?}"),
        }
    }
}

#[test]
fn padding_after_the_last_tensor_may_be_missing() {
    let bytes = fixture("py_written.gguf");
    let end = GgufFile::parse(&bytes).unwrap().header().data_end as usize;
    assert!(end < bytes.len());
    assert!(GgufFile::parse(&bytes[..end]).is_ok());
    assert!(matches!(GgufFile::parse(&bytes[..end - 1]), Err(GgufError::DataOutOfBounds { .. })));
}

#[test]
fn random_corruption_never_panics() {
    let original = fixture("py_written.gguf");
    let header_len = GgufFile::parse(&original).unwrap().header().data_offset as usize;
    let mut rng = Rng(0xdead_beef);
    for _ in 0..20_000 {
        let mut bytes = original.clone();
        for _ in 0..=rng.below(4) {
            let at = rng.below(header_len);
            bytes[at] = match rng.below(4) {
                0 => 0xff,
                1 => 0,
                _ => rng.next_u64() as u8,
            };
        }
        bytes.truncate(bytes.len() - rng.below(64));
        if let Ok(file) = GgufFile::parse(&bytes) {
            for info in file.tensors() {
                assert_eq!(file.tensor_data(info).len(), info.size);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-made corrupt files

/// Raw GGUF bytes, field by field.
struct Raw(Vec<u8>);

impl Raw {
    fn new(version: u32, n_tensors: u64, n_kv: u64) -> Self {
        let mut raw = Raw(b"GGUF".to_vec());
        raw.u32(version).u64(n_tensors).u64(n_kv);
        raw
    }

    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    /// A tensor info; `ggml_dims` fastest-varying first, as stored.
    fn tensor(&mut self, name: &str, ggml_dims: &[u64], type_id: u32, offset: u64) -> &mut Self {
        self.str(name).u32(ggml_dims.len() as u32);
        for &d in ggml_dims {
            self.u64(d);
        }
        self.u32(type_id).u64(offset)
    }

    /// Pads to 32 and appends `len` data bytes.
    fn with_data(&self, len: usize) -> Vec<u8> {
        let mut bytes = self.0.clone();
        bytes.resize(bytes.len().next_multiple_of(32) + len, 0);
        bytes
    }
}

fn parse(bytes: &[u8]) -> Result<GgufFile<'_>, GgufError> {
    GgufFile::parse(bytes)
}

/// A file with one tensor and `data_len` bytes of data.
fn one_tensor(ggml_dims: &[u64], type_id: u32, offset: u64, data_len: usize) -> Vec<u8> {
    Raw::new(3, 1, 0).tensor("w", ggml_dims, type_id, offset).with_data(data_len)
}

#[test]
fn refuses_wrong_magic_and_versions() {
    assert!(matches!(parse(b"GGUG\x03\0\0\0"), Err(GgufError::BadMagic(m)) if &m == b"GGUG"));
    assert!(matches!(parse(b"GG"), Err(GgufError::Truncated { needed: 4, available: 2 })));
    for version in [0, 1, 4, 99] {
        let bytes = Raw::new(version, 0, 0).0;
        assert!(matches!(parse(&bytes), Err(GgufError::UnsupportedVersion(v)) if v == version));
    }
    let big_endian = Raw::new(3u32.swap_bytes(), 0, 0).0;
    assert!(matches!(parse(&big_endian), Err(GgufError::BigEndian)));
    let v2 = Raw::new(2, 0, 0).0;
    assert_eq!(parse(&v2).unwrap().header().version, 2);
}

#[test]
fn refuses_counts_and_lengths_the_input_cannot_hold() {
    let huge_key = Raw::new(3, 0, 1).u64(1 << 60).0.clone();
    assert!(matches!(parse(&huge_key), Err(GgufError::Truncated { needed, .. }) if needed > 1 << 60));
    let huge_kv_count = Raw::new(3, 0, 1 << 40).0;
    assert!(matches!(parse(&huge_kv_count), Err(GgufError::Truncated { .. })));
    let huge_tensor_count = Raw::new(3, 1 << 40, 0).0;
    assert!(matches!(parse(&huge_tensor_count), Err(GgufError::Truncated { .. })));
    let all_ones = Raw::new(3, u64::MAX, u64::MAX).0;
    assert!(matches!(parse(&all_ones), Err(GgufError::Truncated { .. })));
    for elem_type in 0..=12 {
        let huge_array = Raw::new(3, 0, 1).str("a").u32(9).u32(elem_type).u64(1 << 50).0.clone();
        assert!(matches!(parse(&huge_array), Err(GgufError::Truncated { .. })), "{elem_type}");
    }
    let huge_name = Raw::new(3, 1, 0).u64(u64::MAX).0.clone();
    assert!(matches!(parse(&huge_name), Err(GgufError::Truncated { needed: u64::MAX, .. })));
}

#[test]
fn refuses_bad_metadata() {
    let unknown = Raw::new(3, 0, 1).str("k").u32(13).0.clone();
    let err = parse(&unknown).unwrap_err();
    assert!(matches!(&err, GgufError::UnknownValueType { key, type_id: 13 } if key == "k"));
    let unknown_elem = Raw::new(3, 0, 1).str("k").u32(9).u32(77).u64(0).0.clone();
    assert!(matches!(parse(&unknown_elem), Err(GgufError::UnknownValueType { type_id: 77, .. })));

    let mut bad_utf8 = Raw::new(3, 0, 1);
    bad_utf8.u64(2).0.extend_from_slice(&[0xc3, 0x28]);
    bad_utf8.u32(0).0.push(0);
    assert!(matches!(parse(&bad_utf8.0), Err(GgufError::InvalidUtf8 { offset: 32 })));

    let mut duplicate = Raw::new(3, 0, 2);
    duplicate.str("k").u32(4).u32(1).str("k").u32(4).u32(2);
    assert!(matches!(parse(&duplicate.0), Err(GgufError::DuplicateKey(k)) if k == "k"));

    for (type_id, value) in [(4u32, 48u64), (4, 0), (10, 32)] {
        let mut raw = Raw::new(3, 0, 1);
        raw.str(ALIGNMENT_KEY).u32(type_id);
        match type_id {
            4 => raw.u32(value as u32),
            _ => raw.u64(value),
        };
        assert!(matches!(parse(&raw.0), Err(GgufError::BadAlignment(_))), "{type_id} {value}");
    }
}

/// `levels` arrays, each the only element of the one before.
fn nested_arrays(levels: usize) -> Vec<u8> {
    let mut raw = Raw::new(3, 0, 1);
    raw.str("deep").u32(9);
    for _ in 1..levels {
        raw.u32(9).u64(1);
    }
    raw.u32(0).u64(0);
    raw.0
}

#[test]
fn bounds_array_nesting() {
    assert!(parse(&nested_arrays(16)).is_ok());
    let err = parse(&nested_arrays(17)).unwrap_err();
    assert!(matches!(&err, GgufError::NestingTooDeep { key } if key == "deep"));
    assert!(matches!(parse(&nested_arrays(100_000)), Err(GgufError::NestingTooDeep { .. })));
}

#[test]
fn refuses_bad_tensor_infos() {
    let five_dims = one_tensor(&[1, 1, 1, 1, 1], 0, 0, 4);
    assert!(matches!(parse(&five_dims), Err(GgufError::TooManyDims { n_dims: 5, .. })));
    let too_many_elements = one_tensor(&[1 << 32, 1 << 32, 2], 0, 0, 0);
    assert!(matches!(parse(&too_many_elements), Err(GgufError::TooLarge { .. })));
    let too_many_bytes = one_tensor(&[1 << 62], 0, 0, 0);
    assert!(matches!(parse(&too_many_bytes), Err(GgufError::TooLarge { .. })));
    let end_overflows = one_tensor(&[8], 0, u64::MAX - 31, 0);
    assert!(matches!(parse(&end_overflows), Err(GgufError::TooLarge { .. })));

    let err = parse(&one_tensor(&[4], 99, 0, 16)).unwrap_err();
    assert!(matches!(&err, GgufError::UnknownGgmlType { tensor, type_id: 99 } if tensor == "w"));
    assert_eq!(err.to_string(), "tensor \"w\" has unknown ggml type 99");

    let partial_q8 = one_tensor(&[48], 8, 0, 64);
    assert!(matches!(parse(&partial_q8), Err(GgufError::PartialBlock { row: 48, block: 32, .. })));
    let partial_q4k = one_tensor(&[100], 12, 0, 64);
    assert!(matches!(parse(&partial_q4k), Err(GgufError::PartialBlock { block: 256, .. })));
}

#[test]
fn refuses_bad_tensor_offsets() {
    let past_end = one_tensor(&[8], 0, 1024, 32);
    assert!(parse_header(&past_end).is_ok(), "the header alone is fine");
    let err = parse(&past_end).unwrap_err();
    assert!(matches!(err, GgufError::DataOutOfBounds { end, len, .. } if end > len));

    let misaligned = one_tensor(&[8], 0, 4, 64);
    assert!(matches!(parse(&misaligned), Err(GgufError::Misaligned { offset: 4, alignment: 32, .. })));

    let two = |first: u64, second: u64| {
        Raw::new(3, 2, 0).tensor("a", &[16], 0, first).tensor("b", &[16], 0, second).with_data(256)
    };
    assert!(parse(&two(0, 64)).is_ok());
    assert!(matches!(parse(&two(0, 32)), Err(GgufError::OutOfOrder { previous_end: 64, .. })));
    assert!(matches!(parse(&two(64, 0)), Err(GgufError::OutOfOrder { .. })));

    let duplicate = Raw::new(3, 2, 0).tensor("a", &[8], 0, 0).tensor("a", &[8], 0, 32).with_data(64);
    assert!(matches!(parse(&duplicate), Err(GgufError::DuplicateTensor(n)) if n == "a"));
}

#[test]
fn lists_tensors_of_other_ggml_types() {
    // Q5_K (id 13): listed, not decoded (Q4_0 and Q4_K are: tests/q4_gguf.rs).
    let bytes = Raw::new(3, 2, 0).tensor("q5", &[256, 2], 13, 0).tensor("f", &[4], 0, 352).with_data(352 + 16);
    let file = parse(&bytes).unwrap();
    let [other] = file.other_tensors() else { panic!("{:?}", file.other_tensors()) };
    assert_eq!((other.name.as_str(), other.shape.as_slice()), ("q5", &[2, 256][..]));
    assert_eq!((other.ggml_type.name(), other.size), ("Q5_K", 2 * 176));
    let err = file.tensor("q5").unwrap_err();
    assert_eq!(err.to_string(), "tensor \"q5\" has ggml type Q5_K, which is not supported");
    let f = file.tensor("f").unwrap().unwrap();
    assert_eq!(file.tensor_data(f).len(), 16);
}

#[test]
fn tensor_data_of_a_foreign_info_is_empty() {
    let bytes = fixture("py_written.gguf");
    let file = parse(&bytes).unwrap();
    let mut info = file.tensors()[0].clone();
    info.offset = u64::MAX;
    assert!(file.tensor_data(&info).is_empty());
}

#[test]
fn errors_are_one_line() {
    let errors = [
        parse(b"GG").unwrap_err(),
        parse(&one_tensor(&[48], 8, 0, 64)).unwrap_err(),
        parse(&nested_arrays(17)).unwrap_err(),
        parse(&Raw::new(7, 0, 0).0).unwrap_err(),
    ];
    for err in errors {
        let message = err.to_string();
        assert!(!message.is_empty() && !message.contains('\n'), "{message:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Writer errors

#[test]
fn writer_checks_the_data_it_is_given() {
    let tensors = [spec("a", &[4], DType::F32), spec("b", &[2], DType::F16)];
    for (len, written) in [(3, 3), (5, 5)] {
        let result = write(&mut Vec::new(), &[], &tensors, |i, w| w.write_all(&vec![0; [16, len][i]]));
        let expected_err = GgufError::DataSizeMismatch { index: 1, tensor: "b".into(), expected: 4, written };
        assert_eq!(result.unwrap_err().to_string(), expected_err.to_string());
    }
    let failing = write(&mut Vec::new(), &[], &tensors, |_, _| Err(io::Error::other("disk full")));
    assert!(matches!(failing, Err(GgufError::Io(e)) if e.to_string() == "disk full"));
}

#[test]
fn writer_refuses_what_the_reader_would_refuse() {
    let ok = |name: &str| (name.to_owned(), MetaValue::U8(1));
    let try_write = |metadata: &[(String, MetaValue)], tensors: &[TensorSpec]| {
        write(&mut Vec::new(), metadata, tensors, |i, w| w.write_all(&vec![0; tensors[i].nbytes().unwrap()]))
    };
    let q8 = spec("q", &[2, 48], DType::Q8_0);
    assert!(matches!(try_write(&[], &[q8]), Err(GgufError::PartialBlock { row: 48, .. })));
    let five = spec("five", &[1, 1, 1, 1, 1], DType::F32);
    assert!(matches!(try_write(&[], &[five]), Err(GgufError::TooManyDims { n_dims: 5, .. })));
    let twice = [spec("t", &[1], DType::F32), spec("t", &[2], DType::F32)];
    assert!(matches!(try_write(&[], &twice), Err(GgufError::DuplicateTensor(_))));
    assert!(matches!(try_write(&[ok("k"), ok("k")], &[]), Err(GgufError::DuplicateKey(_))));
    for bad in [MetaValue::U32(48), MetaValue::U32(0), MetaValue::U64(32)] {
        let metadata = [(ALIGNMENT_KEY.to_owned(), bad)];
        assert!(matches!(try_write(&metadata, &[]), Err(GgufError::BadAlignment(_))));
    }
    let deep = (0..16).fold(MetaArray::U8(vec![]), |inner, _| MetaArray::Array(vec![inner]));
    let metadata = [("deep".to_owned(), MetaValue::Array(deep))];
    assert!(matches!(try_write(&metadata, &[]), Err(GgufError::NestingTooDeep { .. })));
}
