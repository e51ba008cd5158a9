//! One activation row against Q8_0 weights, its output columns shared out among rayon's workers:
//! the decoder steps of the threaded wasm build. candle's quantized matmul spreads a one-row
//! product over its own thread pool, which has no threads in wasm, so there a step ran on one
//! worker while the others waited. Each share is candle's own `k_quants::matmul` over a run of
//! weight rows that starts on a multiple of four, so every output is the dot product candle's
//! single call computes for it (the same four-row groups, the same order), bit for bit.

use candle_core::quantized::k_quants::{self, BlockQ8_0, QK8_0};
use rayon::prelude::*;

use crate::{Error, Result};

/// Output columns per task: a multiple of four (candle's row groups), and enough dot products
/// that handing the task to another worker pays (a BLIP-base MLP product makes 6 or 24 tasks, the
/// LM head's 30524 columns 239).
const COLUMNS_PER_TASK: usize = 128;

/// Products with fewer weights stay whole on one worker. Waking a sleeping Web Worker costs tens
/// to hundreds of microseconds: split, every one of a step's ~75 products measured no faster than
/// one worker (wasm, 2 workers, BLIP-base); split from 2²¹ weights on (the MLP's two products per
/// layer and the LM head: two thirds of a step's weight bytes in 25 hand-overs), 0.91× the time.
pub const MIN_WEIGHTS: usize = 1 << 21;

fn err(message: String) -> Error {
    Error::Backend { backend: "cpu", message }
}

/// `x` (one row of `k`) times the `n` Q8_0 weight rows in `weights` (candle's block bytes,
/// row-major), transposed: `n` outputs.
pub fn matmul(x: &[f32], k: usize, weights: &[u8], n: usize) -> Result<Vec<f32>> {
    if x.len() != k || !k.is_multiple_of(QK8_0) {
        return Err(err(format!("split gemv: {} activations for k = {k} (a multiple of {QK8_0})", x.len())));
    }
    // SAFETY: BlockQ8_0 is a plain #[repr(C)] struct of an f16 and 32 i8, valid for any bytes;
    // align_to returns only the correctly aligned middle, and we refuse anything else.
    let (head, blocks, tail) = unsafe { weights.align_to::<BlockQ8_0>() };
    let per_row = k / QK8_0;
    if !head.is_empty() || !tail.is_empty() || blocks.len() != n * per_row {
        return Err(err(format!(
            "split gemv: {} weight bytes are not {n} aligned rows of {per_row} Q8_0 blocks",
            weights.len()
        )));
    }
    let mut out = vec![0f32; n];
    out.par_chunks_mut(COLUMNS_PER_TASK).enumerate().try_for_each(|(task, dst)| {
        let first = task * COLUMNS_PER_TASK;
        let rows = &blocks[first * per_row..(first + dst.len()) * per_row];
        k_quants::matmul::<BlockQ8_0>((1, k, dst.len()), x, rows, dst).map_err(|e| err(e.to_string()))
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};

    /// Equal to candle's own one-row product, bit for bit, on a pool of 2 and of 3 workers, for
    /// widths with and without a partial task and a tail of 1–3 columns. The reference is one call
    /// of `k_quants::matmul` over every row, which is what `QMatMul` runs in wasm (where this module
    /// is used); natively on AVX-512 VNNI CPUs `QMatMul` takes candle's repacked kernel instead,
    /// which rounds differently (it quantizes the activations its own way).
    #[test]
    fn equals_candles_single_call() {
        let dev = Device::Cpu;
        for &(n, k) in &[(768, 768), (130, 64), (257, 96), (4, 32), (3, 32), (1000, 160)] {
            let w: Vec<f32> =
                (0..n * k).map(|i| ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * (1.0 + (i % 7) as f32)).collect();
            let x: Vec<f32> = (0..k).map(|i| ((i * 104729 % 787) as f32 / 787.0 - 0.5) * 3.0).collect();
            let wt = Tensor::from_vec(w, (n, k), &dev).unwrap();
            let q = QTensor::quantize(&wt, GgmlDType::Q8_0).unwrap();
            let bytes = q.data().unwrap().into_owned();
            // Bytes copied into a Vec<u8> may lose BlockQ8_0's alignment of 2: copy into one that has it.
            let mut aligned = vec![0u16; bytes.len().div_ceil(2)];
            // SAFETY: the u16 buffer holds at least bytes.len() bytes.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), aligned.as_mut_ptr().cast::<u8>(), bytes.len()) };
            // SAFETY: the first bytes.len() bytes of `aligned` were just written.
            let weights = unsafe { std::slice::from_raw_parts(aligned.as_ptr().cast::<u8>(), bytes.len()) };
            // SAFETY: as in `matmul`: plain blocks, the aligned middle only (checked below).
            let (head, blocks, tail) = unsafe { weights.align_to::<BlockQ8_0>() };
            assert!(head.is_empty() && tail.is_empty());
            let mut want = vec![0f32; n];
            k_quants::matmul::<BlockQ8_0>((1, k, n), &x, blocks, &mut want).unwrap();
            for threads in [2, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let got = pool.install(|| matmul(&x, k, weights, n)).unwrap();
                assert_eq!(got.len(), n);
                for (c, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(g.to_bits(), w.to_bits(), "n {n} k {k} threads {threads} column {c}: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn refuses_mismatched_shapes() {
        let w = [0u16; 17 * 4];
        // SAFETY: 136 bytes of zeroes, aligned to 2.
        let bytes = unsafe { std::slice::from_raw_parts(w.as_ptr().cast::<u8>(), 136) };
        assert!(matmul(&[0.0; 32], 32, bytes, 4).is_ok());
        assert!(matmul(&[0.0; 32], 32, bytes, 5).is_err());
        assert!(matmul(&[0.0; 31], 32, bytes, 4).is_err());
        assert!(matmul(&[0.0; 48], 48, bytes, 4).is_err());
    }
}
