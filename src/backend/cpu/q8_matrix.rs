//! A Q8_0 matrix kept quantized in host memory, with the two ways the CPU uses it: an int8 GEMV
//! for the decoder's few-row steps (memory-bound: reading 1 byte per weight instead of 4 is the
//! win) and a dequantized f32 copy for many-row GEMMs (compute-bound: the f32 GEMM is faster
//! than any int8 code we could write, and one dequantization is amortised over hundreds of rows).

use rayon::prelude::*;

use crate::weights::q8_0::{BLOCK_BYTES, QK8_0};
use crate::{Error, Result};

pub struct Q8Matrix {
    pub rows: usize,
    pub cols: usize,
    /// `rows * cols` quants, row-major.
    quants: Vec<i8>,
    /// One scale per block of 32 along a row: `rows * cols / 32`.
    scales: Vec<f32>,
}

impl Q8Matrix {
    /// Splits ggml's interleaved 34-byte blocks into quants and f32 scales so the inner loops
    /// read plain contiguous arrays.
    pub fn from_blocks(rows: usize, cols: usize, blocks: &[u8]) -> Result<Self> {
        let n_blocks = rows
            .checked_mul(cols)
            .filter(|n| cols % QK8_0 == 0 && n / QK8_0 * BLOCK_BYTES == blocks.len())
            .map(|n| n / QK8_0)
            .ok_or_else(|| Error::model(format!("Q8_0 matrix {rows}x{cols} does not match {} bytes", blocks.len())))?;
        let mut quants = Vec::with_capacity(n_blocks * QK8_0);
        let mut scales = Vec::with_capacity(n_blocks);
        for block in blocks.chunks_exact(BLOCK_BYTES) {
            scales.push(half::f16::from_le_bytes([block[0], block[1]]).to_f32());
            quants.extend(block[2..].iter().map(|&b| b as i8));
        }
        Ok(Self { rows, cols, quants, scales })
    }

    fn row(&self, r: usize) -> (&[i8], &[f32]) {
        let bpr = self.cols / QK8_0;
        (&self.quants[r * self.cols..(r + 1) * self.cols], &self.scales[r * bpr..(r + 1) * bpr])
    }

    /// Row `r` as f32 into `out` (embedding lookup).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let (q, s) = self.row(r);
        for ((o, qb), &d) in out.chunks_exact_mut(QK8_0).zip(q.chunks_exact(QK8_0)).zip(s) {
            for (o, &q) in o.iter_mut().zip(qb) {
                *o = q as f32 * d;
            }
        }
    }

    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.cols];
        out.par_chunks_mut(self.cols).enumerate().for_each(|(r, o)| self.dequantize_row(r, o));
        out
    }

    /// `y[m, rows] = x[m, cols] · selfᵀ`, every row of `x` against each weight row while that row
    /// is in cache.
    pub fn gemv(&self, x: &[f32], m: usize) -> Vec<f32> {
        let mut y = vec![0f32; m * self.rows];
        // Output is written transposed ([rows, m]) so each task owns a contiguous slice.
        let mut yt = vec![0f32; self.rows * m];
        const ROWS_PER_TASK: usize = 32;
        yt.par_chunks_mut(ROWS_PER_TASK * m).enumerate().for_each(|(task, out)| {
            for (i, o) in out.chunks_exact_mut(m).enumerate() {
                let (q, s) = self.row(task * ROWS_PER_TASK + i);
                for (mi, o) in o.iter_mut().enumerate() {
                    *o = dot(q, s, &x[mi * self.cols..(mi + 1) * self.cols]);
                }
            }
        });
        for r in 0..self.rows {
            for mi in 0..m {
                y[mi * self.rows + r] = yt[r * m + mi];
            }
        }
        y
    }
}

fn dot(q: &[i8], s: &[f32], x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { dot_avx2(q, s, x) };
        }
    }
    dot_portable(q, s, x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(q: &[i8], s: &[f32], x: &[f32]) -> f32 {
    // Same body, compiled with 8-wide vectors.
    dot_portable(q, s, x)
}

/// Eight independent partial sums per block let the compiler keep them in one vector register.
#[inline(always)]
fn dot_portable(q: &[i8], s: &[f32], x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    for ((qb, &d), xb) in q.chunks_exact(QK8_0).zip(s).zip(x.chunks_exact(QK8_0)) {
        let mut part = [0f32; 8];
        for (qc, xc) in qb.chunks_exact(8).zip(xb.chunks_exact(8)) {
            for l in 0..8 {
                part[l] += qc[l] as f32 * xc[l];
            }
        }
        for l in 0..8 {
            acc[l] += part[l] * d;
        }
    }
    acc.iter().sum()
}
