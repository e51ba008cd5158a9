//! A panel of consecutive weight rows (output features) repacked from blocks of 32 int8 values and
//! a scale (any of [`Weights`]' formats, decoded here) into the order a
//! path's inner loop streams: for each step of k, the values of every row of the panel side by
//! side, so one load feeds all of the panel's columns. Scales are `[block][column]` f32. Columns past
//! the end of the matrix are zero weights with zero scales, so they add nothing and are never
//! stored.

use super::weights::Weights;
#[cfg(target_arch = "x86_64")]
use super::BLOCK_BYTES;
use super::QK;

pub(super) trait Panel: Send {
    /// Bytes one block of k takes in the panel (all its columns).
    const BLOCK_BYTES: usize;
    fn new(nb: usize) -> Self;
    /// Rows `first .. first + cols` of `w` (`nb` blocks of 32 each) into this panel.
    fn pack(&mut self, w: &Weights, first: usize, cols: usize, nb: usize);
}

/// For AVX2, SIMD128 and the scalar loop: per pair of k (16 per block), `NR` columns × 2 int16, so
/// a multiply-add of int16 pairs against a broadcast activation pair gives one int32 per column.
pub(super) struct Pairs<const NR: usize> {
    pub weights: Vec<i16>,
    pub scales: Vec<f32>,
}

impl<const NR: usize> Panel for Pairs<NR> {
    const BLOCK_BYTES: usize = QK * NR * 2;

    fn new(nb: usize) -> Self {
        Pairs { weights: vec![0; nb * QK * NR], scales: vec![0.0; nb * NR] }
    }

    fn pack(&mut self, w: &Weights, first: usize, cols: usize, nb: usize) {
        // Per block, column by column: each weight row is read once in order and written into
        // the block's 16 pairs × NR × 2 slab, which stays in L1. (Element by element through
        // `Option`s this loop was an eighth of a vision pass in wasm.)
        if cols < NR {
            // The panel is reused across calls: columns past the matrix must be zero again.
            self.weights.fill(0);
            self.scales.fill(0.0);
        }
        let mut q = [0i8; QK];
        for c in 0..cols {
            for b in 0..nb {
                self.scales[b * NR + c] = w.block(first + c, b, nb, &mut q);
                let slab = &mut self.weights[b * QK * NR..(b + 1) * QK * NR];
                for (p, pair) in q.chunks_exact(2).enumerate() {
                    let at = (p * NR + c) * 2;
                    slab[at] = pair[0] as i16;
                    slab[at + 1] = pair[1] as i16;
                }
            }
        }
    }
}

/// For AVX-512 VNNI and wasm's relaxed SIMD: per quad of k (8 per block), `NR` columns × 4 bytes,
/// each XOR `FLIP`. VNNI's `vpdpbusd` wants one side unsigned, so its panel flips the sign bit
/// (signed → offset by 128), as does relaxed SIMD on engines that read that side unsigned; on
/// engines that read it signed, `FLIP` = 0.
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
pub(super) struct Quads<const NR: usize, const FLIP: u8> {
    pub weights: Vec<u8>,
    pub scales: Vec<f32>,
}

/// Columns of the VNNI panel: two 16-lane registers.
#[cfg(target_arch = "x86_64")]
pub(super) const QUAD_NR: usize = 32;

#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
impl<const NR: usize, const FLIP: u8> Panel for Quads<NR, FLIP> {
    const BLOCK_BYTES: usize = QK * NR;

    fn new(nb: usize) -> Self {
        Quads { weights: vec![0; nb * QK * NR], scales: vec![0.0; nb * NR] }
    }

    fn pack(&mut self, w: &Weights, first: usize, cols: usize, nb: usize) {
        #[cfg(target_arch = "x86_64")]
        if let Weights::Q8_0(bytes) = *w {
            if NR == QUAD_NR && cols == NR && gather::available() && bytes.len() >= (first + NR) * nb * BLOCK_BYTES {
                // SAFETY: AVX-512 F and BW were detected; rows first .. first + 32 lie inside `bytes`
                // (checked), and this panel holds nb blocks of 32 columns.
                unsafe { gather::q8_0(&mut self.weights, &mut self.scales, bytes, first, nb, FLIP) };
                return;
            }
        }
        let mut q = [0i8; QK];
        for c in 0..NR {
            for b in 0..nb {
                // Columns past the matrix: zero weights (0x80 once offset) with a zero scale.
                self.scales[b * NR + c] = if c < cols { w.block(first + c, b, nb, &mut q) } else { 0.0 };
                if c >= cols {
                    q = [0; QK];
                }
                // A quad at a time as one 32-bit word (byte by byte this loop was a tenth of the
                // GEMM's time in a vision pass).
                let flip = u32::from_ne_bytes([FLIP; 4]);
                for (i, quad) in q.chunks_exact(4).enumerate() {
                    let at = (b * QK / 4 + i) * NR * 4 + c * 4;
                    let word = u32::from_ne_bytes([quad[0] as u8, quad[1] as u8, quad[2] as u8, quad[3] as u8]) ^ flip;
                    self.weights[at..at + 4].copy_from_slice(&word.to_ne_bytes());
                }
            }
        }
    }
}

/// The VNNI panel of a full 32-column run of Q8_0 rows with AVX-512 gathers: per block, one
/// gather takes the same 4-byte quad from 16 rows, which is a row of the panel as it stands. (Row
/// by row, block by block, packing was a sixth of the GEMM's time in a vision pass: a tenth of a
/// millisecond per panel, every call, as the model is kept in its file's blocks.)
#[cfg(target_arch = "x86_64")]
mod gather {
    use std::arch::x86_64::*;

    use super::{BLOCK_BYTES, QK, QUAD_NR};

    pub(super) fn available() -> bool {
        use std::sync::OnceLock;
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw")
        })
    }

    /// # Safety
    /// AVX-512 F and BW must be present; `bytes` must hold rows `first .. first + 32` of `nb`
    /// blocks each; `weights` and `scales` must hold `nb` blocks of the 32-column panel.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn q8_0(weights: &mut [u8], scales: &mut [f32], bytes: &[u8], first: usize, nb: usize, flip: u8) {
        let row_bytes = nb * BLOCK_BYTES;
        assert!(weights.len() >= nb * QK * QUAD_NR && scales.len() >= nb * QUAD_NR);
        assert!(bytes.len() >= (first + QUAD_NR) * row_bytes && QUAD_NR * row_bytes < i32::MAX as usize);
        // SAFETY: gathers read 4 bytes at row r (< 32) of the run, block b (< nb), byte offset
        // 0..=30 inside the block: inside `bytes` (asserted); stores write panel rows inside
        // `weights` and `scales` (asserted).
        unsafe {
            let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            let rows = [
                _mm512_mullo_epi32(lanes, _mm512_set1_epi32(row_bytes as i32)),
                _mm512_mullo_epi32(_mm512_add_epi32(lanes, _mm512_set1_epi32(16)), _mm512_set1_epi32(row_bytes as i32)),
            ];
            let flip = _mm512_set1_epi8(flip as i8);
            let base = bytes.as_ptr().add(first * row_bytes);
            for b in 0..nb {
                let block = base.add(b * BLOCK_BYTES);
                for (half, &rows) in rows.iter().enumerate() {
                    // The f16 scale and the block's first two values; the scale is the low half.
                    let head = _mm512_i32gather_epi32::<1>(rows, block.cast());
                    let scale = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(head));
                    _mm512_storeu_ps(scales.as_mut_ptr().add(b * QUAD_NR + half * 16), scale);
                    for quad in 0..QK / 4 {
                        let words = _mm512_i32gather_epi32::<1>(rows, block.add(2 + 4 * quad).cast());
                        let at = (b * QK / 4 + quad) * QUAD_NR * 4 + half * 64;
                        _mm512_storeu_si512(weights.as_mut_ptr().add(at).cast(), _mm512_xor_si512(words, flip));
                    }
                }
            }
        }
    }
}
