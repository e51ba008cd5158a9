//! GGUF reader and writer (version 3; version 2 files read too), following llama.cpp's gguf-py
//! package (`constants.py`, `gguf_reader.py`, `gguf_writer.py`).
//!
//! Layout, all little-endian: magic `GGUF`, u32 version, u64 tensor count, u64 metadata count,
//! the metadata key/values, the tensor infos, zero padding up to `alignment` (32 unless the u32
//! `general.alignment` says otherwise), then the data section. Each tensor's data starts at an
//! aligned offset into the data section.
//!
//! Input is untrusted (a download in wasm, where a panic kills the app; fuzzed natively), so
//! reading never panics, uses checked arithmetic and never reserves memory for a count the
//! remaining input could not hold.
//!
//! Streaming: tensor data must lie in the order the tensor infos list it, without overlap (ggml
//! demands the same), so [`parse_header`] can run on the first chunk(s) of a download and each
//! tensor can be taken with [`TensorInfo::data`] as soon as the bytes up to its end have arrived.

use std::collections::HashSet;
use std::fmt;
use std::io::{self, Read, Write};

use crate::weights::DType;

const MAGIC: &[u8; 4] = b"GGUF";
/// The version [`write()`] produces.
pub const VERSION: u32 = 3;
/// Data alignment when the metadata has no `general.alignment`.
pub const DEFAULT_ALIGNMENT: u32 = 32;
/// The metadata key that overrides [`DEFAULT_ALIGNMENT`]; its value must be a u32 power of two.
pub const ALIGNMENT_KEY: &str = "general.alignment";
/// Metadata keys under which our files carry what a Hugging Face folder keeps beside the weights.
pub const GGUF_CONFIG_KEY: &str = "blip.hf_config_json";
pub const GGUF_TOKENIZER_KEY: &str = "tokenizer.huggingface.json";
/// ggml tensors have at most four dimensions.
pub const MAX_DIMS: usize = 4;
// Arrays of arrays recurse; bounding the depth keeps a crafted file from overflowing the stack.
const MAX_NESTING: usize = 16;
// Upper bound on up-front reservations; vectors still grow to whatever the input really holds.
const MAX_PREALLOC: usize = 1 << 16;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    #[error("GGUF data truncated: need at least {needed} bytes, have {available}")]
    Truncated { needed: u64, available: u64 },
    #[error("not a GGUF file: magic is {0:02x?}, expected \"GGUF\"")]
    BadMagic([u8; 4]),
    #[error("big-endian GGUF files are not supported")]
    BigEndian,
    #[error("unsupported GGUF version {0} (supported: 2 and 3)")]
    UnsupportedVersion(u32),
    #[error("invalid UTF-8 in the string at byte {offset}")]
    InvalidUtf8 { offset: u64 },
    #[error("metadata key {key:?} has unknown value type {type_id}")]
    UnknownValueType { key: String, type_id: u32 },
    #[error("metadata key {key:?} nests arrays deeper than {MAX_NESTING} levels")]
    NestingTooDeep { key: String },
    #[error("duplicate metadata key {0:?}")]
    DuplicateKey(String),
    #[error("{ALIGNMENT_KEY} must be a u32 power of two, got {0}")]
    BadAlignment(String),
    #[error("duplicate tensor name {0:?}")]
    DuplicateTensor(String),
    #[error("tensor {tensor:?} has {n_dims} dimensions, at most {MAX_DIMS} are supported")]
    TooManyDims { tensor: String, n_dims: usize },
    #[error("tensor {tensor:?} has unknown ggml type {type_id}")]
    UnknownGgmlType { tensor: String, type_id: u32 },
    #[error("tensor {tensor:?} has rows of {row} values, not a multiple of the {ggml_type} block size {block}")]
    PartialBlock { tensor: String, row: usize, ggml_type: GgmlType, block: usize },
    #[error("tensor {tensor:?} is too large to address on this platform")]
    TooLarge { tensor: String },
    #[error("tensor {tensor:?} data offset {offset} is not a multiple of the alignment {alignment}")]
    Misaligned { tensor: String, offset: u64, alignment: u32 },
    #[error(
        "tensor {tensor:?} data offset {offset} overlaps or precedes the previous tensor, which ends at {previous_end}"
    )]
    OutOfOrder { tensor: String, offset: u64, previous_end: u64 },
    #[error("tensor {tensor:?} data ends at byte {end} but the file has {len} bytes")]
    DataOutOfBounds { tensor: String, end: u64, len: u64 },
    #[error("tensor {tensor:?} has ggml type {ggml_type}, which is not supported")]
    UnsupportedDtype { tensor: String, ggml_type: GgmlType },
    #[error("tensor #{index} ({tensor:?}) was given {written} bytes of data, expected {expected}")]
    DataSizeMismatch { index: usize, tensor: String, expected: u64, written: u64 },
    #[error("I/O error while writing GGUF: {0}")]
    Io(#[from] io::Error),
}

type Result<T, E = GgufError> = std::result::Result<T, E>;

/// A ggml tensor type the format knows the block layout of (gguf-py's `GGML_QUANT_SIZES`).
/// Only those with a [`DType`] can be decoded; the others can still be listed and skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GgmlType {
    id: u32,
    name: &'static str,
    block_size: usize,
    type_size: usize,
}

const fn ggml(id: u32, name: &'static str, block_size: usize, type_size: usize) -> GgmlType {
    GgmlType { id, name, block_size, type_size }
}

const QK_K: usize = 256;

impl GgmlType {
    pub const F32: Self = ggml(0, "F32", 1, 4);
    pub const F16: Self = ggml(1, "F16", 1, 2);
    pub const Q8_0: Self = ggml(8, "Q8_0", 32, 34);
    pub const Q4_0: Self = ggml(2, "Q4_0", 32, 2 + 16);
    pub const Q4_K: Self = ggml(12, "Q4_K", QK_K, 2 + 2 + QK_K / 2 + 12);
    pub const BF16: Self = ggml(30, "BF16", 1, 2);

    const KNOWN: [Self; 34] = [
        Self::F32,
        Self::F16,
        Self::Q4_0,
        ggml(3, "Q4_1", 32, 2 + 2 + 16),
        ggml(6, "Q5_0", 32, 2 + 4 + 16),
        ggml(7, "Q5_1", 32, 2 + 2 + 4 + 16),
        Self::Q8_0,
        ggml(9, "Q8_1", 32, 4 + 4 + 32),
        ggml(10, "Q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4),
        ggml(11, "Q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12),
        Self::Q4_K,
        ggml(13, "Q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12),
        ggml(14, "Q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16),
        ggml(15, "Q8_K", QK_K, 4 + QK_K + QK_K / 8),
        ggml(16, "IQ2_XXS", QK_K, 2 + QK_K / 4),
        ggml(17, "IQ2_XS", QK_K, 2 + QK_K / 4 + QK_K / 32),
        ggml(18, "IQ3_XXS", QK_K, 2 + QK_K / 4 + QK_K / 8),
        ggml(19, "IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16),
        ggml(20, "IQ4_NL", 32, 2 + 16),
        ggml(21, "IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4),
        ggml(22, "IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 16),
        ggml(23, "IQ4_XS", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64),
        ggml(24, "I8", 1, 1),
        ggml(25, "I16", 1, 2),
        ggml(26, "I32", 1, 4),
        ggml(27, "I64", 1, 8),
        ggml(28, "F64", 1, 8),
        ggml(29, "IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32),
        Self::BF16,
        ggml(34, "TQ1_0", QK_K, 2 + 4 * 13),
        ggml(35, "TQ2_0", QK_K, 2 + 64),
        ggml(39, "MXFP4", 32, 1 + 16),
        ggml(40, "NVFP4", 64, 4 + 32),
        ggml(41, "Q1_0", 128, 2 + 16),
    ];

    pub fn from_id(id: u32) -> Option<Self> {
        Self::KNOWN.iter().copied().find(|t| t.id == id)
    }

    pub fn id(self) -> u32 {
        self.id
    }

    pub fn name(self) -> &'static str {
        self.name
    }

    /// Values per block, along the last (row-major) dimension.
    pub fn block_size(self) -> usize {
        self.block_size
    }

    /// Bytes per block.
    pub fn type_size(self) -> usize {
        self.type_size
    }

    /// The element type this crate decodes it as, if any.
    pub fn dtype(self) -> Option<DType> {
        match self {
            Self::F32 => Some(DType::F32),
            Self::F16 => Some(DType::F16),
            Self::BF16 => Some(DType::BF16),
            Self::Q8_0 => Some(DType::Q8_0),
            Self::Q4_0 => Some(DType::Q4_0),
            Self::Q4_K => Some(DType::Q4_K),
            _ => None,
        }
    }
}

impl From<DType> for GgmlType {
    fn from(dtype: DType) -> Self {
        match dtype {
            DType::F32 => Self::F32,
            DType::F16 => Self::F16,
            DType::BF16 => Self::BF16,
            DType::Q8_0 => Self::Q8_0,
            DType::Q4_0 => Self::Q4_0,
            DType::Q4_K => Self::Q4_K,
        }
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// Metadata value type ids (gguf-py's `GGUFValueType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    fn from_id(id: u32) -> Option<Self> {
        use ValueType::*;
        [U8, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64].into_iter().find(|t| *t as u32 == id)
    }

    /// The fewest bytes one value of this type occupies in a file.
    fn min_encoded_size(self) -> usize {
        match self {
            Self::U8 | Self::I8 | Self::Bool => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::U64 | Self::I64 | Self::F64 | Self::String => 8,
            Self::Array => 4 + 8,
        }
    }
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(MetaArray),
}

/// A homogeneous metadata array; the inner arrays of [`MetaArray::Array`] may differ in type.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<MetaArray>),
}

impl MetaValue {
    fn value_type(&self) -> ValueType {
        match self {
            Self::U8(_) => ValueType::U8,
            Self::I8(_) => ValueType::I8,
            Self::U16(_) => ValueType::U16,
            Self::I16(_) => ValueType::I16,
            Self::U32(_) => ValueType::U32,
            Self::I32(_) => ValueType::I32,
            Self::U64(_) => ValueType::U64,
            Self::I64(_) => ValueType::I64,
            Self::F32(_) => ValueType::F32,
            Self::F64(_) => ValueType::F64,
            Self::Bool(_) => ValueType::Bool,
            Self::String(_) => ValueType::String,
            Self::Array(_) => ValueType::Array,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Self::U32(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_f32(&self) -> Option<f32> {
        match self {
            Self::F32(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(v) => Some(*v),
            _ => None,
        }
    }

    /// Any integer type holding a non-negative value: converters differ in which integer type
    /// they pick for counts and sizes (gguf-py's default for a Python int is i32).
    pub fn as_uint(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => Some(v),
            Self::I8(v) => u64::try_from(v).ok(),
            Self::I16(v) => u64::try_from(v).ok(),
            Self::I32(v) => u64::try_from(v).ok(),
            Self::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// F32 or F64, widened.
    pub fn as_float(&self) -> Option<f64> {
        match *self {
            Self::F32(v) => Some(v.into()),
            Self::F64(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&MetaArray> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_str_array(&self) -> Option<&[String]> {
        match self.as_array()? {
            MetaArray::String(v) => Some(v),
            _ => None,
        }
    }
}

impl MetaArray {
    fn elem_type(&self) -> ValueType {
        match self {
            Self::U8(_) => ValueType::U8,
            Self::I8(_) => ValueType::I8,
            Self::U16(_) => ValueType::U16,
            Self::I16(_) => ValueType::I16,
            Self::U32(_) => ValueType::U32,
            Self::I32(_) => ValueType::I32,
            Self::U64(_) => ValueType::U64,
            Self::I64(_) => ValueType::I64,
            Self::F32(_) => ValueType::F32,
            Self::F64(_) => ValueType::F64,
            Self::Bool(_) => ValueType::Bool,
            Self::String(_) => ValueType::String,
            Self::Array(_) => ValueType::Array,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::I8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::I16(v) => v.len(),
            Self::U32(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::U64(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::F64(v) => v.len(),
            Self::Bool(v) => v.len(),
            Self::String(v) => v.len(),
            Self::Array(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Levels of arrays, counting this one.
    fn depth(&self) -> usize {
        match self {
            Self::Array(v) => 1 + v.iter().map(Self::depth).max().unwrap_or(0),
            _ => 1,
        }
    }
}

/// A tensor this crate can decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// Row-major (PyTorch) order: ggml's dimensions reversed.
    pub shape: Vec<usize>,
    pub dtype: DType,
    /// Absolute position of the first data byte in the file.
    pub offset: u64,
    /// Data bytes.
    pub size: usize,
}

impl TensorInfo {
    /// This tensor's bytes, once `file_prefix` (the file from its first byte) reaches its end.
    pub fn data<'b>(&self, file_prefix: &'b [u8]) -> Option<&'b [u8]> {
        byte_range(file_prefix, self.offset, self.size)
    }
}

/// A tensor of a ggml type this crate cannot decode, listed so that callers can report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub ggml_type: GgmlType,
    pub offset: u64,
    pub size: usize,
}

fn byte_range(bytes: &[u8], offset: u64, size: usize) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    bytes.get(start..start.checked_add(size)?)
}

/// Everything before the data section.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub version: u32,
    pub alignment: u32,
    /// In file order.
    pub metadata: Vec<(String, MetaValue)>,
    /// Decodable tensors, in file order, which is also data order.
    pub tensors: Vec<TensorInfo>,
    /// Tensors of other ggml types, in file order.
    pub other_tensors: Vec<OtherTensor>,
    /// Absolute offset of the data section.
    pub data_offset: u64,
    /// Absolute end of the last tensor's data: the file length needed to read every tensor.
    pub data_end: u64,
}

impl Header {
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The named tensor: `Ok(None)` when the file has no such tensor, an error when it has
    /// one of a ggml type this crate cannot decode.
    pub fn tensor(&self, name: &str) -> Result<Option<&TensorInfo>> {
        if let Some(info) = self.tensors.iter().find(|t| t.name == name) {
            return Ok(Some(info));
        }
        match self.other_tensors.iter().find(|t| t.name == name) {
            Some(other) => Err(GgufError::UnsupportedDtype { tensor: other.name.clone(), ggml_type: other.ggml_type }),
            None => Ok(None),
        }
    }

    /// (name, offset, size) of every tensor, decodable or not.
    fn extents(&self) -> impl Iterator<Item = (&str, u64, usize)> {
        let decodable = self.tensors.iter().map(|t| (t.name.as_str(), t.offset, t.size));
        let other = self.other_tensors.iter().map(|t| (t.name.as_str(), t.offset, t.size));
        decodable.chain(other)
    }
}

/// A whole GGUF file held in memory (an mmap natively, the downloaded bytes in wasm).
#[derive(Debug, Clone)]
pub struct GgufFile<'a> {
    bytes: &'a [u8],
    header: Header,
}

impl<'a> GgufFile<'a> {
    /// Parses the header and checks that every tensor's data lies inside `bytes`.
    /// Padding after the last tensor may be missing.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let header = parse_header(bytes)?;
        let len = bytes.len() as u64;
        for (name, offset, size) in header.extents() {
            let end = offset.saturating_add(size as u64);
            if end > len {
                return Err(GgufError::DataOutOfBounds { tensor: name.to_owned(), end, len });
            }
        }
        Ok(Self { bytes, header })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn metadata(&self) -> &[(String, MetaValue)] {
        &self.header.metadata
    }

    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.header.get(key)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    pub fn get_u32(&self, key: &str) -> Option<u32> {
        self.get(key)?.as_u32()
    }

    /// See [`MetaValue::as_uint`].
    pub fn get_uint(&self, key: &str) -> Option<u64> {
        self.get(key)?.as_uint()
    }

    pub fn get_f32(&self, key: &str) -> Option<f32> {
        self.get(key)?.as_f32()
    }

    /// See [`MetaValue::as_float`].
    pub fn get_float(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_float()
    }

    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }

    pub fn get_str_array(&self, key: &str) -> Option<&[String]> {
        self.get(key)?.as_str_array()
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.header.tensors
    }

    pub fn other_tensors(&self) -> &[OtherTensor] {
        &self.header.other_tensors
    }

    /// See [`Header::tensor`].
    pub fn tensor(&self, name: &str) -> Result<Option<&TensorInfo>> {
        self.header.tensor(name)
    }

    /// The tensor's raw little-endian bytes. `info` must come from this file (otherwise the
    /// result is empty).
    pub fn tensor_data(&self, info: &TensorInfo) -> &'a [u8] {
        info.data(self.bytes).unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Parses everything up to the data section from `bytes`, a prefix of the file.
///
/// Fails with [`GgufError::Truncated`] while the prefix is too short; its `needed` is a lower
/// bound on the prefix length to retry with. Tensor data is not checked against the input: see
/// [`Header::data_end`] and [`TensorInfo::data`].
pub fn parse_header(bytes: &[u8]) -> Result<Header> {
    let mut c = Cursor { bytes, pos: 0 };
    let version = read_preamble(&mut c)?;
    let n_tensors = c.u64()?;
    let n_kv = c.u64()?;
    let metadata = read_metadata(&mut c, n_kv)?;
    let alignment = alignment_of(&metadata)?;
    let raw = c.many(n_tensors, RawTensor::MIN_ENCODED_SIZE, read_tensor_info)?;
    // Slices are shorter than 2^63 bytes, so adding under 2^32 of padding cannot overflow.
    let data_offset = c.pos as u64 + padding_for(c.pos as u64, alignment);
    let mut header = Header {
        version,
        alignment,
        metadata,
        tensors: Vec::new(),
        other_tensors: Vec::new(),
        data_offset,
        data_end: data_offset,
    };
    place_tensors(&mut header, raw)?;
    Ok(header)
}

fn read_preamble(c: &mut Cursor) -> Result<u32> {
    let magic = c.array::<4>()?;
    if &magic != MAGIC {
        return Err(GgufError::BadMagic(magic));
    }
    // Version 1 used 32-bit counts and lengths; 2 and 3 differ only in that 3 allows big-endian.
    match c.u32()? {
        version @ (2 | 3) => Ok(version),
        version if matches!(version.swap_bytes(), 2 | 3) => Err(GgufError::BigEndian),
        version => Err(GgufError::UnsupportedVersion(version)),
    }
}

fn read_metadata(c: &mut Cursor, n_kv: u64) -> Result<Vec<(String, MetaValue)>> {
    let min_kv_size = 8 + 4 + 1; // key length, value type, smallest value
    let metadata = c.many(n_kv, min_kv_size, |c| {
        let key = c.string()?;
        let ty = read_value_type(c, &key)?;
        let value = read_value(c, ty, &key)?;
        Ok((key, value))
    })?;
    if let Some(key) = first_duplicate(metadata.iter().map(|(k, _)| k.as_str())) {
        return Err(GgufError::DuplicateKey(key.to_owned()));
    }
    Ok(metadata)
}

fn read_value_type(c: &mut Cursor, key: &str) -> Result<ValueType> {
    let type_id = c.u32()?;
    ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType { key: key.to_owned(), type_id })
}

fn read_value(c: &mut Cursor, ty: ValueType, key: &str) -> Result<MetaValue> {
    Ok(match ty {
        ValueType::U8 => MetaValue::U8(c.scalar()?),
        ValueType::I8 => MetaValue::I8(c.scalar()?),
        ValueType::U16 => MetaValue::U16(c.scalar()?),
        ValueType::I16 => MetaValue::I16(c.scalar()?),
        ValueType::U32 => MetaValue::U32(c.scalar()?),
        ValueType::I32 => MetaValue::I32(c.scalar()?),
        ValueType::U64 => MetaValue::U64(c.scalar()?),
        ValueType::I64 => MetaValue::I64(c.scalar()?),
        ValueType::F32 => MetaValue::F32(c.scalar()?),
        ValueType::F64 => MetaValue::F64(c.scalar()?),
        ValueType::Bool => MetaValue::Bool(c.bool()?),
        ValueType::String => MetaValue::String(c.string()?),
        ValueType::Array => MetaValue::Array(read_array(c, key, 1)?),
    })
}

fn read_array(c: &mut Cursor, key: &str, depth: usize) -> Result<MetaArray> {
    if depth > MAX_NESTING {
        return Err(GgufError::NestingTooDeep { key: key.to_owned() });
    }
    let ty = read_value_type(c, key)?;
    let n = c.u64()?;
    let min = ty.min_encoded_size();
    Ok(match ty {
        ValueType::U8 => MetaArray::U8(c.many(n, min, Cursor::scalar)?),
        ValueType::I8 => MetaArray::I8(c.many(n, min, Cursor::scalar)?),
        ValueType::U16 => MetaArray::U16(c.many(n, min, Cursor::scalar)?),
        ValueType::I16 => MetaArray::I16(c.many(n, min, Cursor::scalar)?),
        ValueType::U32 => MetaArray::U32(c.many(n, min, Cursor::scalar)?),
        ValueType::I32 => MetaArray::I32(c.many(n, min, Cursor::scalar)?),
        ValueType::U64 => MetaArray::U64(c.many(n, min, Cursor::scalar)?),
        ValueType::I64 => MetaArray::I64(c.many(n, min, Cursor::scalar)?),
        ValueType::F32 => MetaArray::F32(c.many(n, min, Cursor::scalar)?),
        ValueType::F64 => MetaArray::F64(c.many(n, min, Cursor::scalar)?),
        ValueType::Bool => MetaArray::Bool(c.many(n, min, Cursor::bool)?),
        ValueType::String => MetaArray::String(c.many(n, min, Cursor::string)?),
        ValueType::Array => MetaArray::Array(c.many(n, min, |c| read_array(c, key, depth + 1))?),
    })
}

/// A tensor info as stored, before it is checked against the layout.
struct RawTensor {
    name: String,
    /// Row-major, as read (not yet checked to fit a usize).
    shape: Vec<u64>,
    type_id: u32,
    /// Relative to the data section.
    offset: u64,
}

impl RawTensor {
    const MIN_ENCODED_SIZE: usize = 8 + 4 + 4 + 8; // name length, n_dims, type, offset
}

fn read_tensor_info(c: &mut Cursor) -> Result<RawTensor> {
    let name = c.string()?;
    let n_dims = c.u32()? as usize;
    if n_dims > MAX_DIMS {
        return Err(GgufError::TooManyDims { tensor: name, n_dims });
    }
    let mut shape = (0..n_dims).map(|_| c.u64()).collect::<Result<Vec<_>>>()?;
    // ggml lists the fastest-varying dimension first.
    shape.reverse();
    let type_id = c.u32()?;
    let offset = c.u64()?;
    Ok(RawTensor { name, shape, type_id, offset })
}

/// Resolves types and sizes, checks the layout and sorts tensors into the header's lists.
fn place_tensors(header: &mut Header, raw: Vec<RawTensor>) -> Result<()> {
    if let Some(name) = first_duplicate(raw.iter().map(|t| t.name.as_str())) {
        return Err(GgufError::DuplicateTensor(name.to_owned()));
    }
    let alignment = u64::from(header.alignment);
    let mut previous_end = 0u64;
    for RawTensor { name, shape, type_id, offset } in raw {
        let Some(ggml_type) = GgmlType::from_id(type_id) else {
            return Err(GgufError::UnknownGgmlType { tensor: name, type_id });
        };
        let too_large = || GgufError::TooLarge { tensor: name.clone() };
        let shape = shape.iter().map(|&d| usize::try_from(d).map_err(|_| too_large())).collect::<Result<Vec<_>>>()?;
        let size = tensor_nbytes(&name, &shape, ggml_type)?;
        if offset % alignment != 0 {
            return Err(GgufError::Misaligned { tensor: name, offset, alignment: header.alignment });
        }
        if offset < previous_end {
            return Err(GgufError::OutOfOrder { tensor: name, offset, previous_end });
        }
        previous_end = offset.checked_add(size as u64).ok_or_else(too_large)?;
        header.data_end = header.data_offset.checked_add(previous_end).ok_or_else(too_large)?;
        let offset = header.data_offset + offset; // cannot overflow: data_end did not
        match ggml_type.dtype() {
            Some(dtype) => header.tensors.push(TensorInfo { name, shape, dtype, offset, size }),
            None => header.other_tensors.push(OtherTensor { name, shape, ggml_type, offset, size }),
        }
    }
    Ok(())
}

/// Data bytes of a row-major tensor, checking ggml's constraints.
fn tensor_nbytes(name: &str, shape: &[usize], ggml_type: GgmlType) -> Result<usize> {
    if shape.len() > MAX_DIMS {
        return Err(GgufError::TooManyDims { tensor: name.to_owned(), n_dims: shape.len() });
    }
    let row = shape.last().copied().unwrap_or(1);
    let block = ggml_type.block_size();
    if row % block != 0 {
        return Err(GgufError::PartialBlock { tensor: name.to_owned(), row, ggml_type, block });
    }
    let too_large = || GgufError::TooLarge { tensor: name.to_owned() };
    let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or_else(too_large)?;
    (elements / block).checked_mul(ggml_type.type_size()).ok_or_else(too_large)
}

fn alignment_of(metadata: &[(String, MetaValue)]) -> Result<u32> {
    match metadata.iter().find(|(k, _)| k == ALIGNMENT_KEY).map(|(_, v)| v) {
        None => Ok(DEFAULT_ALIGNMENT),
        Some(MetaValue::U32(a)) if a.is_power_of_two() => Ok(*a),
        Some(MetaValue::Array(a)) => Err(GgufError::BadAlignment(format!("an array of {}", a.len()))),
        Some(other) => Err(GgufError::BadAlignment(format!("{other:?}"))),
    }
}

/// Zero bytes that bring `len` to a multiple of `alignment` (a power of two).
fn padding_for(len: u64, alignment: u32) -> u64 {
    let alignment = u64::from(alignment);
    (alignment - len % alignment) % alignment
}

fn align_up(len: u64, alignment: u32) -> Option<u64> {
    len.checked_add(padding_for(len, alignment))
}

fn first_duplicate<'s>(mut names: impl Iterator<Item = &'s str>) -> Option<&'s str> {
    let mut seen = HashSet::new();
    names.find(|name| !seen.insert(*name))
}

/// Little-endian reads over the input, each checked against its end.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    fn truncated(&self, n: u64) -> GgufError {
        GgufError::Truncated { needed: (self.pos as u64).saturating_add(n), available: self.bytes.len() as u64 }
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let slice = usize::try_from(n).ok().and_then(|n| self.remaining().get(..n)).ok_or_else(|| self.truncated(n))?;
        self.pos += slice.len();
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let array = *self.remaining().first_chunk::<N>().ok_or_else(|| self.truncated(N as u64))?;
        self.pos += N;
        Ok(array)
    }

    fn scalar<T: Scalar>(&mut self) -> Result<T> {
        T::read(self)
    }

    fn u32(&mut self) -> Result<u32> {
        self.scalar()
    }

    fn u64(&mut self) -> Result<u64> {
        self.scalar()
    }

    // gguf-py reads any non-zero byte as true.
    fn bool(&mut self) -> Result<bool> {
        Ok(self.scalar::<u8>()? != 0)
    }

    fn string(&mut self) -> Result<String> {
        let len = self.u64()?;
        let offset = self.pos as u64;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::InvalidUtf8 { offset })
    }

    /// Reads `n` items of at least `min_size` bytes each. Reserves only what the remaining
    /// input could hold, so a forged count fails as truncation instead of exhausting memory.
    fn many<T>(&mut self, n: u64, min_size: usize, mut read: impl FnMut(&mut Self) -> Result<T>) -> Result<Vec<T>> {
        let fits = self.remaining().len() / min_size;
        let capacity = usize::try_from(n).unwrap_or(usize::MAX).min(fits).min(MAX_PREALLOC);
        let mut items = Vec::with_capacity(capacity);
        for _ in 0..n {
            items.push(read(self)?);
        }
        Ok(items)
    }
}

/// Fixed-size little-endian numbers.
trait Scalar: Sized {
    fn read(c: &mut Cursor) -> Result<Self>;
    fn put(&self, out: &mut Vec<u8>);
}

macro_rules! impl_scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            fn read(c: &mut Cursor) -> Result<Self> {
                c.array().map(<$t>::from_le_bytes)
            }
            fn put(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}

impl_scalar!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

// ---------------------------------------------------------------------------------------------
// Writing

/// A tensor for [`write()`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    /// Row-major (PyTorch) order.
    pub shape: Vec<usize>,
    pub dtype: DType,
}

impl TensorSpec {
    /// The exact number of data bytes [`write()`] expects for this tensor; fails when the shape
    /// is invalid for the type (too many dimensions, a Q8_0 row that is not whole blocks).
    pub fn nbytes(&self) -> Result<usize> {
        tensor_nbytes(&self.name, &self.shape, self.dtype.into())
    }
}

/// Writes a GGUF v3 file: the header first, then the data of each tensor in `tensors` order,
/// each produced by `write_data(index, sink)` and padded to the alignment (32, or the u32
/// `general.alignment` in `metadata`). `write_data` must write exactly
/// [`TensorSpec::nbytes`] little-endian bytes; anything else is an error.
///
/// The output matches gguf-py's `GGUFWriter` byte for byte given the same metadata (in the
/// same order) and tensors.
pub fn write<W: Write>(
    w: &mut W,
    metadata: &[(String, MetaValue)],
    tensors: &[TensorSpec],
    mut write_data: impl FnMut(usize, &mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    let alignment = alignment_of(metadata)?;
    check_metadata(metadata)?;
    if let Some(name) = first_duplicate(tensors.iter().map(|t| t.name.as_str())) {
        return Err(GgufError::DuplicateTensor(name.to_owned()));
    }
    let sizes = tensors.iter().map(TensorSpec::nbytes).collect::<Result<Vec<_>>>()?;
    w.write_all(&encode_header(metadata, tensors, &sizes, alignment)?)?;
    for (index, (spec, &size)) in tensors.iter().zip(&sizes).enumerate() {
        let mut sink = CountingWriter { inner: &mut *w, written: 0 };
        write_data(index, &mut sink)?;
        let (expected, written) = (size as u64, sink.written);
        if written != expected {
            let tensor = spec.name.clone();
            return Err(GgufError::DataSizeMismatch { index, tensor, expected, written });
        }
        write_padding(w, expected, alignment)?;
    }
    Ok(())
}

/// Refuses what the reader would refuse, so a written file always reads back.
fn check_metadata(metadata: &[(String, MetaValue)]) -> Result<()> {
    if let Some(key) = first_duplicate(metadata.iter().map(|(k, _)| k.as_str())) {
        return Err(GgufError::DuplicateKey(key.to_owned()));
    }
    let too_deep = metadata.iter().find(|(_, v)| v.as_array().is_some_and(|a| a.depth() > MAX_NESTING));
    match too_deep {
        Some((key, _)) => Err(GgufError::NestingTooDeep { key: key.clone() }),
        None => Ok(()),
    }
}

fn encode_header(
    metadata: &[(String, MetaValue)],
    tensors: &[TensorSpec],
    sizes: &[usize],
    alignment: u32,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    VERSION.put(&mut out);
    (tensors.len() as u64).put(&mut out);
    (metadata.len() as u64).put(&mut out);
    for (key, value) in metadata {
        put_str(&mut out, key);
        (value.value_type() as u32).put(&mut out);
        put_value(&mut out, value);
    }
    let mut offset = 0u64;
    for (spec, &size) in tensors.iter().zip(sizes) {
        put_str(&mut out, &spec.name);
        (spec.shape.len() as u32).put(&mut out);
        for &dim in spec.shape.iter().rev() {
            (dim as u64).put(&mut out);
        }
        GgmlType::from(spec.dtype).id().put(&mut out);
        offset.put(&mut out);
        let too_large = || GgufError::TooLarge { tensor: spec.name.clone() };
        offset =
            align_up(size as u64, alignment).and_then(|padded| offset.checked_add(padded)).ok_or_else(too_large)?;
    }
    let padding = padding_for(out.len() as u64, alignment) as usize;
    out.resize(out.len() + padding, 0);
    Ok(out)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    (s.len() as u64).put(out);
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, value: &MetaValue) {
    match value {
        MetaValue::U8(v) => v.put(out),
        MetaValue::I8(v) => v.put(out),
        MetaValue::U16(v) => v.put(out),
        MetaValue::I16(v) => v.put(out),
        MetaValue::U32(v) => v.put(out),
        MetaValue::I32(v) => v.put(out),
        MetaValue::U64(v) => v.put(out),
        MetaValue::I64(v) => v.put(out),
        MetaValue::F32(v) => v.put(out),
        MetaValue::F64(v) => v.put(out),
        MetaValue::Bool(v) => out.push(u8::from(*v)),
        MetaValue::String(s) => put_str(out, s),
        MetaValue::Array(a) => put_array(out, a),
    }
}

fn put_array(out: &mut Vec<u8>, array: &MetaArray) {
    fn put_all<T: Scalar>(out: &mut Vec<u8>, items: &[T]) {
        items.iter().for_each(|item| item.put(out));
    }
    (array.elem_type() as u32).put(out);
    (array.len() as u64).put(out);
    match array {
        MetaArray::U8(v) => out.extend_from_slice(v),
        MetaArray::I8(v) => put_all(out, v),
        MetaArray::U16(v) => put_all(out, v),
        MetaArray::I16(v) => put_all(out, v),
        MetaArray::U32(v) => put_all(out, v),
        MetaArray::I32(v) => put_all(out, v),
        MetaArray::U64(v) => put_all(out, v),
        MetaArray::I64(v) => put_all(out, v),
        MetaArray::F32(v) => put_all(out, v),
        MetaArray::F64(v) => put_all(out, v),
        MetaArray::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
        MetaArray::String(v) => v.iter().for_each(|s| put_str(out, s)),
        MetaArray::Array(v) => v.iter().for_each(|a| put_array(out, a)),
    }
}

fn write_padding(w: &mut impl Write, len: u64, alignment: u32) -> io::Result<()> {
    io::copy(&mut io::repeat(0).take(padding_for(len, alignment)), w).map(drop)
}

/// Counts what the caller's `write_data` writes, to check it against the tensor's size.
struct CountingWriter<'w, W> {
    inner: &'w mut W,
    written: u64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written = self.written.saturating_add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
