//! A panel of consecutive weight rows (output features) repacked from blocks of 32 int8 values and
//! a scale (any of [`Weights`]' formats, decoded here) into the order a
//! path's inner loop streams: for each step of k, the values of every row of the panel side by
//! side, so one load feeds all of the panel's columns. Scales are `[block][column]` f32. Columns past
//! the end of the matrix are zero weights with zero scales, so they add nothing and are never
//! stored.

use super::weights::Weights;
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
        let mut q = [0i8; QK];
        for c in 0..NR {
            for b in 0..nb {
                // Columns past the matrix: zero weights (0x80 once offset) with a zero scale.
                self.scales[b * NR + c] = if c < cols { w.block(first + c, b, nb, &mut q) } else { 0.0 };
                if c >= cols {
                    q = [0; QK];
                }
                for (i, quad) in q.chunks_exact(4).enumerate() {
                    let at = (b * QK / 4 + i) * NR * 4 + c * 4;
                    for (dst, &v) in self.weights[at..at + 4].iter_mut().zip(quad) {
                        *dst = v as u8 ^ FLIP;
                    }
                }
            }
        }
    }
}
