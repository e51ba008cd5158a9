//! The weight formats the GEMM reads, each seen as blocks of 32 int8 values with an f32 scale, the
//! form every panel is packed from. The model keeps its file's blocks; this view decodes them per
//! panel, so 4-bit weights never exist in memory as an int8 copy.
//!
//! - Q8_0: the block itself.
//! - Q4_0: `q - 8` (in -8..=7) with the block's scale: `(q - 8) · d` is exactly the weight.
//! - Q4_K: sub-block `s` of a 256-value block as `q` (in 0..=15) with scale `d · scale[s]`, which
//!   is exact in f32 (an f16 times a 6-bit integer). Its offset `-dmin · min[s]` is not a
//!   multiple of the scale, so it stays out of the integers: [`Weights::offsets`] gives it, and
//!   the GEMM adds `offset · Σ activations` per block after the integer products, as ggml's
//!   `vec_dot_q4_K_q8_K` subtracts `dmin · Σ min · bsum`.

use crate::weights::q4::{scale_min, Q4_0_BLOCK_BYTES, Q4_K_BLOCK_BYTES, QK_K};

use super::{BLOCK_BYTES, QK};

/// Row-major weight matrices in one of ggml's block formats (rows are whole blocks).
#[derive(Clone, Copy, Debug)]
pub enum Weights<'a> {
    Q8_0(&'a [u8]),
    Q4_0(&'a [u8]),
    Q4K(&'a [u8]),
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    half::f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

impl Weights<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Weights::Q8_0(w) | Weights::Q4_0(w) | Weights::Q4K(w) => w,
        }
    }

    /// Values per block of the file's format.
    fn block_values(&self) -> usize {
        match self {
            Weights::Q8_0(_) | Weights::Q4_0(_) => QK,
            Weights::Q4K(_) => QK_K,
        }
    }

    fn block_bytes(&self) -> usize {
        match self {
            Weights::Q8_0(_) => BLOCK_BYTES,
            Weights::Q4_0(_) => Q4_0_BLOCK_BYTES,
            Weights::Q4K(_) => Q4_K_BLOCK_BYTES,
        }
    }

    /// Whether this is `n` whole rows of `k` values.
    pub(super) fn fits(&self, n: usize, k: usize) -> bool {
        let per = self.block_values();
        k > 0 && k.is_multiple_of(per) && self.bytes().len() == n * (k / per) * self.block_bytes()
    }

    /// Block `b` (of 32 values) of row `row` (`nb` such blocks a row): its int8 values into `q`, its
    /// scale returned.
    #[inline]
    pub(super) fn block(&self, row: usize, b: usize, nb: usize, q: &mut [i8; QK]) -> f32 {
        match *self {
            Weights::Q8_0(w) => {
                let blk = &w[(row * nb + b) * BLOCK_BYTES..][..BLOCK_BYTES];
                for (q, &v) in q.iter_mut().zip(&blk[2..]) {
                    *q = v as i8;
                }
                f16_at(blk, 0)
            }
            Weights::Q4_0(w) => {
                let blk = &w[(row * nb + b) * Q4_0_BLOCK_BYTES..][..Q4_0_BLOCK_BYTES];
                let (lo, hi) = q.split_at_mut(QK / 2);
                for ((lo, hi), &v) in lo.iter_mut().zip(hi).zip(&blk[2..]) {
                    *lo = (v & 0x0F) as i8 - 8;
                    *hi = (v >> 4) as i8 - 8;
                }
                f16_at(blk, 0)
            }
            Weights::Q4K(w) => {
                let per = QK_K / QK;
                let blk = &w[(row * nb / per + b / per) * Q4_K_BLOCK_BYTES..][..Q4_K_BLOCK_BYTES];
                let s = b % per;
                let run = &blk[16 + QK * (s / 2)..][..QK];
                let shift = if s.is_multiple_of(2) { 0 } else { 4 };
                for (q, &v) in q.iter_mut().zip(run) {
                    *q = ((v >> shift) & 0x0F) as i8;
                }
                f16_at(blk, 0) * f32::from(scale_min(s, &blk[4..16]).0)
            }
        }
    }

    /// Q4_K only: `[nb][n]` (block-major, so the correction streams whole rows of it) with each
    /// 32-block's `dmin · min`, which its weights subtract.
    pub(super) fn offsets(&self, n: usize, nb: usize) -> Option<Vec<f32>> {
        let Weights::Q4K(w) = *self else { return None };
        let per = QK_K / QK;
        let mut out = vec![0f32; nb * n];
        for (row, blocks) in w.chunks_exact(nb / per * Q4_K_BLOCK_BYTES).enumerate() {
            for (sb, blk) in blocks.chunks_exact(Q4_K_BLOCK_BYTES).enumerate() {
                let dmin = f16_at(blk, 2);
                for s in 0..per {
                    out[(sb * per + s) * n + row] = dmin * f32::from(scale_min(s, &blk[4..16]).1);
                }
            }
        }
        Some(out)
    }
}
