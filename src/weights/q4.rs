//! ggml's 4-bit block formats. Every value decodes exactly as ggml's `dequantize_row_q4_0` /
//! `dequantize_row_q4_K` and gguf-py's `dequantize` compute it (float32, multiply then subtract,
//! no fused multiply-add), so a file written by either tool loads to the same numbers here; and
//! the quantizers write the bytes ggml's reference quantizers (`quantize_row_q4_0_ref`,
//! `quantize_row_q4_K_ref`, what `llama-quantize` uses without an importance matrix) write, so a
//! file we convert is the file ggml would make (tests/q4_gguf.rs holds both to ggml's own library).
//!
//! - **Q4_0**: 32 values in 18 bytes: an f16 scale `d`, then 16 bytes of nibbles; byte `j` holds
//!   value `j` (low nibble) and value `j + 16` (high nibble); each decodes to `(q - 8) · d`.
//! - **Q4_K**: 256 values in 144 bytes: f16 `d` and `dmin`, 12 bytes packing eight 6-bit scales
//!   and eight 6-bit mins (ggml's `get_scale_min_k4`), then 128 bytes of nibbles. Sub-block `s`
//!   (32 values) decodes to `d·scale[s] · q − dmin·min[s]`; each 32-byte run of nibbles holds
//!   sub-block `2i` in its low nibbles and `2i + 1` in its high ones.

use half::f16;

/// Values per Q4_0 block.
pub const QK4_0: usize = 32;
/// Bytes per Q4_0 block.
pub const Q4_0_BLOCK_BYTES: usize = 2 + QK4_0 / 2;
/// Values per Q4_K block (ggml's `QK_K`).
pub const QK_K: usize = 256;
/// Bytes per Q4_K block.
pub const Q4_K_BLOCK_BYTES: usize = 2 + 2 + 12 + QK_K / 2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Q4Error {
    #[error("input of {len} values is not a whole number of {block}-value blocks")]
    PartialBlock { len: usize, block: usize },
    #[error("input value at index {0} is not finite")]
    NonFinite(usize),
}

fn check(src: &[f32], block: usize) -> Result<(), Q4Error> {
    if !src.len().is_multiple_of(block) {
        return Err(Q4Error::PartialBlock { len: src.len(), block });
    }
    match src.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(Q4Error::NonFinite(i)),
        None => Ok(()),
    }
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// Decodes whole Q4_0 blocks from `src` into `dst` (one block per 32 outputs).
pub fn dequantize_q4_0(src: &[u8], dst: &mut [f32]) {
    for (block, out) in src.chunks_exact(Q4_0_BLOCK_BYTES).zip(dst.chunks_exact_mut(QK4_0)) {
        let d = f16_at(block, 0);
        let qs = &block[2..];
        for j in 0..QK4_0 / 2 {
            out[j] = (i32::from(qs[j] & 0x0F) - 8) as f32 * d;
            out[j + QK4_0 / 2] = (i32::from(qs[j] >> 4) - 8) as f32 * d;
        }
    }
}

/// Appends the Q4_0 encoding of `src` (whole blocks of finite values) to `dst`, byte for byte as
/// ggml's `quantize_row_q4_0_ref` (and gguf-py's `quantize`): the scale is the value of largest
/// magnitude over -8, so that value lands exactly on quant 0, and each value is truncated after
/// adding 8.5 (round half up, then clipped to 15).
pub fn quantize_q4_0(src: &[f32], dst: &mut Vec<u8>) -> Result<(), Q4Error> {
    check(src, QK4_0)?;
    dst.reserve(src.len() / QK4_0 * Q4_0_BLOCK_BYTES);
    for x in src.chunks_exact(QK4_0) {
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in x {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        dst.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        // `as i8` truncates toward zero like C's (int8_t) cast; x·id + 8.5 lies in [0, 16.5].
        let q = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
        dst.extend((0..QK4_0 / 2).map(|j| q(x[j]) | (q(x[j + QK4_0 / 2]) << 4)));
    }
    Ok(())
}

/// ggml's `nearest_int`: round half to even by adding 1.5·2²³ and reading the low mantissa bits
/// (valid for |v| ≤ 2²² − 1, which every caller's values are).
fn nearest_int(v: f32) -> i32 {
    let bits = (v + 12_582_912.0).to_bits() as i32;
    (bits & 0x007f_ffff) - 0x0040_0000
}

/// ggml's `make_qkx2_quants` for one 32-value sub-block with `nmax` = 15: the scale and min
/// (returned as `(scale, -min)`) that minimise the weighted squared error over a search of
/// 21 candidate scales, with `l` the quants of the best. Float operations are in ggml's order.
fn fit_scale_min(x: &[f32; 32], w: &[f32; 32], l: &mut [u8; 32]) -> (f32, f32) {
    const NMAX: i32 = 15;
    const RMIN: f32 = -1.0;
    const RDELTA: f32 = 0.1;
    const NSTEP: i32 = 20;
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = w[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..32 {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l.fill(0);
        return (0.0, -min);
    }
    let mut iscale = NMAX as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for i in 0..32 {
        l[i] = nearest_int(iscale * (x[i] - min)).clamp(0, NMAX) as u8;
        let diff = scale * f32::from(l[i]) + min - x[i];
        best_error += w[i] * (diff * diff);
    }
    let mut aux = [0u8; 32];
    for is in 0..=NSTEP {
        iscale = (RMIN + RDELTA * is as f32 + NMAX as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..32 {
            let q = nearest_int(iscale * (x[i] - min)).clamp(0, NMAX);
            aux[i] = q as u8;
            let q = q as f32;
            sum_l += w[i] * q;
            sum_l2 += w[i] * q * q;
            sum_xl += w[i] * q * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut error = 0f32;
            for i in 0..32 {
                let diff = this_scale * f32::from(aux[i]) + this_min - x[i];
                error += w[i] * (diff * diff);
            }
            if error < best_error {
                *l = aux;
                best_error = error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Appends the Q4_K encoding of `src` (whole 256-value blocks of finite values) to `dst`, byte for
/// byte as ggml's `quantize_row_q4_K_ref`: each sub-block's scale and min come from the weighted
/// search of [`fit_scale_min`] (weights `rms + |x|`), are quantized to 6 bits against the block's
/// largest, and the values are then requantized against the 6-bit scale and min as stored.
pub fn quantize_q4_k(src: &[f32], dst: &mut Vec<u8>) -> Result<(), Q4Error> {
    check(src, QK_K)?;
    dst.reserve(src.len() / QK_K * Q4_K_BLOCK_BYTES);
    for x in src.chunks_exact(QK_K) {
        let mut l = [[0u8; 32]; 8];
        let (mut scales, mut mins) = ([0f32; 8], [0f32; 8]);
        let (mut max_scale, mut max_min) = (0f32, 0f32);
        for j in 0..8 {
            let sub: &[f32; 32] = x[32 * j..32 * (j + 1)].try_into().expect("32 values");
            let mut sum_x2 = 0f32;
            for &v in sub {
                sum_x2 += v * v;
            }
            let av_x = (sum_x2 / 32.0).sqrt();
            let w: [f32; 32] = std::array::from_fn(|i| av_x + sub[i].abs());
            (scales[j], mins[j]) = fit_scale_min(sub, &w, &mut l[j]);
            if scales[j] > max_scale {
                max_scale = scales[j];
            }
            if mins[j] > max_min {
                max_min = mins[j];
            }
        }
        let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
        let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
        let mut packed = [0u8; 12];
        for j in 0..8 {
            // C stores nearest_int into a uint8_t (mod 256) before clipping to 63.
            let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
            let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
            if j < 4 {
                packed[j] = ls;
                packed[j + 4] = lm;
            } else {
                packed[j + 4] = (ls & 0x0F) | ((lm & 0x0F) << 4);
                packed[j - 4] |= (ls >> 4) << 6;
                packed[j] |= (lm >> 4) << 6;
            }
        }
        let d = f16::from_f32(max_scale / 63.0);
        let dmin = f16::from_f32(max_min / 63.0);
        for (j, lj) in l.iter_mut().enumerate() {
            let (sc, m) = scale_min(j, &packed);
            let step = d.to_f32() * f32::from(sc);
            // A zero step keeps the search's quants, as ggml does.
            if step == 0.0 {
                continue;
            }
            let offset = dmin.to_f32() * f32::from(m);
            for (q, &v) in lj.iter_mut().zip(&x[32 * j..32 * (j + 1)]) {
                *q = nearest_int((v + offset) / step).clamp(0, 15) as u8;
            }
        }
        dst.extend_from_slice(&d.to_le_bytes());
        dst.extend_from_slice(&dmin.to_le_bytes());
        dst.extend_from_slice(&packed);
        for pair in l.chunks_exact(2) {
            dst.extend((0..32).map(|i| pair[0][i] | (pair[1][i] << 4)));
        }
    }
    Ok(())
}

/// Sub-block `j`'s 6-bit scale and min (ggml's `get_scale_min_k4`).
pub fn scale_min(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// Decodes whole Q4_K blocks from `src` into `dst` (one block per 256 outputs).
pub fn dequantize_q4_k(src: &[u8], dst: &mut [f32]) {
    for (block, out) in src.chunks_exact(Q4_K_BLOCK_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f16_at(block, 0);
        let dmin = f16_at(block, 2);
        let scales = &block[4..16];
        let qs = &block[16..];
        for i in 0..QK_K / 64 {
            let q = &qs[32 * i..32 * (i + 1)];
            let (sc0, m0) = scale_min(2 * i, scales);
            let (sc1, m1) = scale_min(2 * i + 1, scales);
            let (d0, min0) = (d * f32::from(sc0), dmin * f32::from(m0));
            let (d1, min1) = (d * f32::from(sc1), dmin * f32::from(m1));
            let out = &mut out[64 * i..64 * (i + 1)];
            for l in 0..32 {
                out[l] = d0 * f32::from(q[l] & 0x0F) - min0;
                out[l + 32] = d1 * f32::from(q[l] >> 4) - min1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_0_by_hand() {
        // d = 0.5; byte j = (hi << 4) | lo with lo = j, hi = 15 - j.
        let mut block = f16::from_f32(0.5).to_le_bytes().to_vec();
        block.extend((0..16u8).map(|j| ((15 - j) << 4) | j));
        let mut out = [0f32; 32];
        dequantize_q4_0(&block, &mut out);
        for j in 0..16 {
            assert_eq!(out[j], (j as f32 - 8.0) * 0.5);
            assert_eq!(out[j + 16], ((15 - j) as f32 - 8.0) * 0.5);
        }
    }

    #[test]
    fn q4_k_scales_and_mins_by_hand() {
        // Sub-blocks 0..3 take the low 6 bits of bytes 0..3 (scales) and 4..7 (mins); 4..7 take
        // nibbles of bytes 8..11 plus the top two bits of bytes 0..3 and 4..7.
        let scales: [u8; 12] = [0xC1, 0x42, 0x03, 0x84, 0x05, 0x46, 0x87, 0xC8, 0x9A, 0xAB, 0xBC, 0xCD];
        assert_eq!(scale_min(0, &scales), (1, 5));
        assert_eq!(scale_min(3, &scales), (4, 8));
        // j = 4: scale = (0x9A & 0xF) | ((0xC1 >> 6) << 4) = 0xA | 0x30; min = (0x9A >> 4) | ((0x05 >> 6) << 4) = 9.
        assert_eq!(scale_min(4, &scales), (0x3A, 9));
        // j = 7: scale = (0xCD & 0xF) | ((0x84 >> 6) << 4) = 0xD | 0x20; min = 0xC | ((0xC8 >> 6) << 4) = 0xC | 0x30.
        assert_eq!(scale_min(7, &scales), (0x2D, 0x3C));
        let mut block = Vec::new();
        block.extend(f16::from_f32(0.25).to_le_bytes());
        block.extend(f16::from_f32(2.0).to_le_bytes());
        block.extend(scales);
        block.extend((0..128u32).map(|i| (i * 37 % 256) as u8));
        let mut out = [0f32; 256];
        dequantize_q4_k(&block, &mut out);
        // Value 64 + 33 is sub-block 3 (high nibbles of the second run), l = 1.
        let q = ((32 + 1) * 37 % 256) >> 4;
        assert_eq!(out[97], 0.25 * 4.0 * q as f32 - 2.0 * 8.0);
    }
}
