//! ggml's Q8_0 block format: every 32 consecutive values of a row become one block of 34 bytes,
//! an f16 scale `d` (little-endian) followed by 32 `i8` quants, each value decoding to `d * q`.

use half::f16;

/// Values per block.
pub const QK8_0: usize = 32;
/// Bytes per block: the f16 scale and the 32 quants.
pub const BLOCK_BYTES: usize = 34;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Q8Error {
    #[error("Q8_0 input of {0} values is not a whole number of {QK8_0}-value blocks")]
    PartialBlock(usize),
    #[error("Q8_0 input value at index {0} is not finite")]
    NonFinite(usize),
}

/// Appends the Q8_0 encoding of `src` to `dst`; on error nothing is appended.
///
/// `src` must hold whole blocks (a multiple of [`QK8_0`] values) of finite numbers: ggml and
/// gguf-py turn infinities and NaNs into meaningless quants, so they are refused here instead.
pub fn quantize(src: &[f32], dst: &mut Vec<u8>) -> Result<(), Q8Error> {
    if !src.len().is_multiple_of(QK8_0) {
        return Err(Q8Error::PartialBlock(src.len()));
    }
    if let Some(index) = src.iter().position(|x| !x.is_finite()) {
        return Err(Q8Error::NonFinite(index));
    }
    dst.reserve(src.len() / QK8_0 * BLOCK_BYTES);
    for block in src.chunks_exact(QK8_0) {
        quantize_block(block, dst);
    }
    Ok(())
}

// Byte-identical to ggml's `quantize_row_q8_0_ref` and to gguf-py 0.19's `Q8_0.quantize_blocks`:
// both compute amax, d = amax / 127, id = 1 / d and x * id in float32, and both round half away
// from zero (C `roundf`; gguf-py's `np_roundf`, deliberately not `np.round`, which rounds half to
// even). Rust's `f32::round` also rounds half away from zero, so the two references agree at
// exact ties and so do we; the fixture test pins this against gguf-py.
fn quantize_block(block: &[f32], dst: &mut Vec<u8>) {
    let amax = block.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let d = amax / 127.0;
    let id = if d == 0.0 { 0.0 } else { 1.0 / d };
    // For amax below about 3.7e-37, 1 / d overflows to infinity and both references cast inf or
    // NaN to int8, which is undefined; numpy yields 0 there. Writing 0 matches it and loses
    // nothing, as such a d rounds to 0 in f16 anyway.
    let id = if id.is_finite() { id } else { 0.0 };
    dst.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    // |x * id| <= 127 up to rounding, so the saturating cast never clips a real value.
    dst.extend(block.iter().map(|&x| (x * id).round() as i8 as u8));
}

/// Decodes Q8_0 blocks from `src` into `dst`.
///
/// Callers size `dst` as `src.len() / BLOCK_BYTES * QK8_0` (see `DType::byte_len`); with other
/// sizes only the whole blocks both sides have room for are decoded and the rest of `dst` is
/// left untouched.
pub fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (block, out) in src.chunks_exact(BLOCK_BYTES).zip(dst.chunks_exact_mut(QK8_0)) {
        let (scale, quants) = block.split_at(2);
        let d = f16::from_le_bytes([scale[0], scale[1]]).to_f32();
        for (y, &q) in out.iter_mut().zip(quants) {
            *y = f32::from(q as i8) * d;
        }
    }
}
