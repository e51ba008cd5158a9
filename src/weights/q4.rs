//! ggml's 4-bit block formats, read only: every value decodes exactly as ggml's
//! `dequantize_row_q4_0` / `dequantize_row_q4_K` and gguf-py's `dequantize` compute it (float32,
//! multiply then subtract, no fused multiply-add), so a file written by either tool loads to the
//! same numbers here.
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

/// Sub-block `j`'s 6-bit scale and min (ggml's `get_scale_min_k4`).
fn scale_min(j: usize, q: &[u8]) -> (u8, u8) {
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
        let q = (32 + 1) * 37 % 256 >> 4;
        assert_eq!(out[97], 0.25 * 4.0 * q as f32 - 2.0 * 8.0);
    }
}
