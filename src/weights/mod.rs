//! Model file formats. Each format hands tensors out one at a time, by their Hugging Face name,
//! as raw little-endian bytes: the backend decides how to store them.

pub mod convert;
pub mod gguf;
pub mod prune;
pub mod q4;
pub mod q8_0;

/// Element types a tensor can arrive in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    BF16,
    /// ggml's Q8_0: blocks of 32 int8 with one f16 scale (34 bytes), along the last dimension.
    Q8_0,
    /// ggml's Q4_0: blocks of 32 4-bit values with one f16 scale (18 bytes) (`q4`). Kept 4-bit by
    /// both backends.
    Q4_0,
    /// ggml's Q4_K: blocks of 256 4-bit values in eight scaled sub-blocks (144 bytes) (`q4`).
    /// Kept 4-bit by both backends.
    #[allow(non_camel_case_types)] // ggml's name
    Q4_K,
}

pub mod reader;
pub mod safetensors;
pub mod source;

impl DType {
    /// Bytes needed for `elements` values, or None when the count does not fit the format.
    pub fn byte_len(self, elements: usize) -> Option<usize> {
        match self {
            DType::F32 => elements.checked_mul(4),
            DType::F16 | DType::BF16 => elements.checked_mul(2),
            DType::Q8_0 => elements.is_multiple_of(q8_0::QK8_0).then(|| elements / q8_0::QK8_0 * q8_0::BLOCK_BYTES),
            DType::Q4_0 => elements.is_multiple_of(q4::QK4_0).then(|| elements / q4::QK4_0 * q4::Q4_0_BLOCK_BYTES),
            DType::Q4_K => elements.is_multiple_of(q4::QK_K).then(|| elements / q4::QK_K * q4::Q4_K_BLOCK_BYTES),
        }
    }
}

/// One tensor as a file holds it: row-major shape (PyTorch order), raw little-endian bytes.
#[derive(Debug, Clone, Copy)]
pub struct TensorView<'a> {
    pub name: &'a str,
    pub shape: &'a [usize],
    pub dtype: DType,
    pub data: &'a [u8],
}

impl TensorView<'_> {
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Every value as f32, whatever the stored type (used for small tensors and for conversion).
    pub fn to_f32(&self) -> crate::Result<Vec<f32>> {
        let n = self.elements();
        if self.dtype.byte_len(n) != Some(self.data.len()) {
            return Err(crate::Error::model(format!(
                "tensor {} has {} bytes, expected {:?} for {:?} {:?}",
                self.name,
                self.data.len(),
                self.dtype.byte_len(n),
                self.dtype,
                self.shape
            )));
        }
        let mut out = vec![0f32; n];
        match self.dtype {
            DType::F32 => {
                for (o, c) in out.iter_mut().zip(self.data.chunks_exact(4)) {
                    *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            DType::F16 => {
                for (o, c) in out.iter_mut().zip(self.data.chunks_exact(2)) {
                    *o = half::f16::from_le_bytes([c[0], c[1]]).to_f32();
                }
            }
            DType::BF16 => {
                for (o, c) in out.iter_mut().zip(self.data.chunks_exact(2)) {
                    *o = half::bf16::from_le_bytes([c[0], c[1]]).to_f32();
                }
            }
            DType::Q8_0 => q8_0::dequantize(self.data, &mut out),
            DType::Q4_0 => q4::dequantize_q4_0(self.data, &mut out),
            DType::Q4_K => q4::dequantize_q4_k(self.data, &mut out),
        }
        Ok(out)
    }
}
