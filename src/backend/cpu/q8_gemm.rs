//! Q8_0 weights × f32 activations for many rows at once (the vision pass: 577 tokens per layer),
//! on AVX-512 VNNI (x86_64 only; elsewhere candle's kernels do all Q8_0 products).
//!
//! candle's quantized matmul is a dot product per (row, column) pair: every weight block is read
//! again for each activation row and each block pair pays its own scale conversion, which caps it
//! near a third of what the int8 units can do on these shapes. Here a panel of 32 weight rows is
//! repacked into VNNI order (4 consecutive k of 32 outputs per 64-byte register pair) in a small
//! per-thread scratch and then multiplied against every activation row from L1. The repack is per
//! call, so the model is still stored once, in its file's Q8_0 blocks, which the decoder's
//! single-token steps keep using through candle.
//!
//! Numerics follow ggml's Q8_0 × Q8_0 dot product: activations are quantized per block of 32
//! (d = max|x| / 127, q = round(x / d)), products are exact in int32 within a block, and each
//! block's sum is scaled by d_weight · d_activation. Two differences, both toward accuracy: the
//! activation scale stays f32 (ggml rounds it to f16), and rounding is to nearest even.

use rayon::prelude::*;

/// Bytes of one Q8_0 block: an f16 scale and 32 int8 values.
const BLOCK_BYTES: usize = 34;
const QK: usize = 32;
/// Weight rows (output features) per packed panel: two 16-lane registers.
const NR: usize = 32;
/// Activation rows per micro-tile: 6 × 2 accumulators + 6 × 2 block sums + 3 = 27 of 32 registers.
const MR: usize = 6;

/// Whether this CPU can run [`matmul`].
pub fn available() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
    })
}

/// `x · Wᵀ (+ bias)`: `x` is `[m, k]` f32, `w` is `n` rows of `k / 32` Q8_0 blocks, the result is
/// `[m, n]`. Returns `None` when [`available`] is false or the shapes do not fit, so the caller can
/// take another path.
pub fn matmul(x: &[f32], m: usize, k: usize, w: &[u8], n: usize, bias: Option<&[f32]>) -> Option<Vec<f32>> {
    let nb = k / QK;
    if !available() || !k.is_multiple_of(QK) || k == 0 || x.len() != m * k || w.len() != n * nb * BLOCK_BYTES
        || bias.is_some_and(|b| b.len() != n)
    {
        return None;
    }
    {
        let acts = quantize_activations(x, m, k);
        let mut out = vec![0f32; m * n];
        let out_ptr = SharedOut(out.as_mut_ptr());
        let panels = n.div_ceil(NR);
        (0..panels).into_par_iter().for_each_init(
            || Panel { weights: vec![0u8; k * NR], scales: vec![0f32; nb * NR] },
            |panel, p| {
                let cols = NR.min(n - p * NR);
                panel.pack(w, p * NR, cols, nb);
                let bias = bias.map(|b| &b[p * NR..p * NR + cols]);
                // SAFETY: features checked by `available`; every index stays inside `acts`,
                // `panel` and `out` by construction of their lengths above; panels write
                // disjoint columns of `out`, so the threads never touch the same element.
                unsafe { panel_product(&acts, panel, out_ptr.at(p * NR), n, cols, bias) };
            },
        );
        Some(out)
    }
}

/// Activations quantized per block of 32: int8 values, their f32 scale, and 128 × their sum (the
/// weights enter the VNNI instruction as unsigned bytes offset by 128; this undoes the offset).
struct Activations {
    q: Vec<i8>,
    d: Vec<f32>,
    offset: Vec<i32>,
    m: usize,
    k: usize,
}

#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: the pointer is only written through at disjoint column ranges per panel (see matmul).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}
impl SharedOut {
    fn at(self, col: usize) -> SharedOut {
        SharedOut(self.0.wrapping_add(col))
    }
}

/// One panel of 32 weight rows in VNNI order: for block b and quad q (k = 32b + 4q .. +4), 128
/// bytes hold those 4 bytes of each of the 32 rows, XOR 0x80 (signed → offset unsigned).
struct Panel {
    weights: Vec<u8>,
    scales: Vec<f32>,
}

impl Panel {
    fn pack(&mut self, w: &[u8], first_row: usize, cols: usize, nb: usize) {
        let row_bytes = nb * BLOCK_BYTES;
        for c in 0..NR {
            if c >= cols {
                // Zero weights (0x80 after the offset) and zero scales: padding columns add nothing.
                for b in 0..nb {
                    self.scales[b * NR + c] = 0.0;
                    for q in 0..QK / 4 {
                        let at = (b * 8 + q) * NR * 4 + c * 4;
                        self.weights[at..at + 4].copy_from_slice(&[0x80; 4]);
                    }
                }
                continue;
            }
            let row = &w[(first_row + c) * row_bytes..(first_row + c + 1) * row_bytes];
            for (b, block) in row.chunks_exact(BLOCK_BYTES).enumerate() {
                self.scales[b * NR + c] = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
                for (q, quad) in block[2..].chunks_exact(4).enumerate() {
                    let word = u32::from_le_bytes([quad[0], quad[1], quad[2], quad[3]]) ^ 0x8080_8080;
                    let at = (b * 8 + q) * NR * 4 + c * 4;
                    self.weights[at..at + 4].copy_from_slice(&word.to_le_bytes());
                }
            }
        }
    }
}

fn quantize_activations(x: &[f32], m: usize, k: usize) -> Activations {
    let nb = k / QK;
    let mut acts = Activations { q: vec![0i8; m * k], d: vec![0f32; m * nb], offset: vec![0i32; m * nb], m, k };
    acts.q
        .par_chunks_mut(k)
        .zip(acts.d.par_chunks_mut(nb))
        .zip(acts.offset.par_chunks_mut(nb))
        .zip(x.par_chunks(k))
        // SAFETY: callers reach this only after `available()`.
        .for_each(|(((q, d), offset), row)| unsafe { quantize_row(row, q, d, offset) });
    acts
}

#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantize_row(row: &[f32], q: &mut [i8], d: &mut [f32], offset: &mut [i32]) {
    use std::arch::x86_64::*;
    for ((src, dst), (d, offset)) in row.chunks_exact(QK).zip(q.chunks_exact_mut(QK)).zip(d.iter_mut().zip(offset.iter_mut())) {
        let x0 = _mm512_loadu_ps(src.as_ptr());
        let x1 = _mm512_loadu_ps(src.as_ptr().add(16));
        let amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
        let scale = amax / 127.0;
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        let vinv = _mm512_set1_ps(inv);
        // Default MXCSR rounding: to nearest, ties to even.
        let q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, vinv));
        let q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, vinv));
        _mm_storeu_si128(dst.as_mut_ptr().cast(), _mm512_cvtsepi32_epi8(q0));
        _mm_storeu_si128(dst.as_mut_ptr().add(16).cast(), _mm512_cvtsepi32_epi8(q1));
        *d = scale;
        *offset = 128 * _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    }
}

/// Every activation row against one packed panel, in micro-tiles of `MR` rows.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn panel_product(acts: &Activations, panel: &Panel, out: SharedOut, ldo: usize, cols: usize, bias: Option<&[f32]>) {
    let mut row = 0;
    while row + MR <= acts.m {
        tile::<MR>(acts, row, panel, out, ldo, cols, bias);
        row += MR;
    }
    match acts.m - row {
        1 => tile::<1>(acts, row, panel, out, ldo, cols, bias),
        2 => tile::<2>(acts, row, panel, out, ldo, cols, bias),
        3 => tile::<3>(acts, row, panel, out, ldo, cols, bias),
        4 => tile::<4>(acts, row, panel, out, ldo, cols, bias),
        5 => tile::<5>(acts, row, panel, out, ldo, cols, bias),
        _ => {}
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
#[allow(clippy::needless_range_loop)] // `r` also offsets the activation rows
unsafe fn tile<const R: usize>(
    acts: &Activations,
    row0: usize,
    panel: &Panel,
    out: SharedOut,
    ldo: usize,
    cols: usize,
    bias: Option<&[f32]>,
) {
    use std::arch::x86_64::*;
    let (k, nb) = (acts.k, acts.k / QK);
    let q = acts.q.as_ptr().add(row0 * k);
    let w = panel.weights.as_ptr();
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    for b in 0..nb {
        let mut dot = [[_mm512_setzero_si512(); 2]; R];
        for quad in 0..QK / 4 {
            let wp = w.add((b * 8 + quad) * NR * 4);
            let w0 = _mm512_loadu_si512(wp.cast());
            let w1 = _mm512_loadu_si512(wp.add(64).cast());
            for r in 0..R {
                let a = _mm512_set1_epi32(q.add(r * k + b * QK + quad * 4).cast::<i32>().read_unaligned());
                dot[r][0] = _mm512_dpbusd_epi32(dot[r][0], w0, a);
                dot[r][1] = _mm512_dpbusd_epi32(dot[r][1], w1, a);
            }
        }
        let s0 = _mm512_loadu_ps(panel.scales.as_ptr().add(b * NR));
        let s1 = _mm512_loadu_ps(panel.scales.as_ptr().add(b * NR + 16));
        for r in 0..R {
            let i = (row0 + r) * nb + b;
            let offset = _mm512_set1_epi32(*acts.offset.get_unchecked(i));
            let d = _mm512_set1_ps(*acts.d.get_unchecked(i));
            let f0 = _mm512_cvtepi32_ps(_mm512_sub_epi32(dot[r][0], offset));
            let f1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(dot[r][1], offset));
            acc[r][0] = _mm512_fmadd_ps(f0, _mm512_mul_ps(s0, d), acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(f1, _mm512_mul_ps(s1, d), acc[r][1]);
        }
    }
    let (lo_mask, hi_mask) = {
        let bits = if cols >= 32 { u32::MAX } else { (1u32 << cols) - 1 };
        (bits as u16, (bits >> 16) as u16)
    };
    let (b0, b1) = match bias {
        Some(bias) => (
            _mm512_maskz_loadu_ps(lo_mask, bias.as_ptr()),
            _mm512_maskz_loadu_ps(hi_mask, bias.as_ptr().wrapping_add(16)),
        ),
        None => (_mm512_setzero_ps(), _mm512_setzero_ps()),
    };
    for (r, acc) in acc.iter().enumerate() {
        let dst = out.0.add((row0 + r) * ldo);
        _mm512_mask_storeu_ps(dst, lo_mask, _mm512_add_ps(acc[0], b0));
        _mm512_mask_storeu_ps(dst.wrapping_add(16), hi_mask, _mm512_add_ps(acc[1], b1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Q8_0 rows exactly as ggml's reference quantizer writes them.
    fn quantize_weights(w: &[f32], k: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for block in w.chunks(QK) {
            let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let id = if d > 0.0 { 1.0 / d } else { 0.0 };
            out.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
            out.extend(block.iter().map(|v| (v * id).round() as i8 as u8));
        }
        assert_eq!(out.len(), w.len() / k * (k / QK) * BLOCK_BYTES);
        out
    }

    /// The same product computed from its definition in f64, with the activations quantized by a
    /// scalar rewrite of ggml's rule (ties to even, as the kernel rounds).
    fn reference(x: &[f32], m: usize, k: usize, wq: &[u8], n: usize, bias: Option<&[f32]>) -> Vec<f64> {
        let nb = k / QK;
        let mut out = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut sum = 0f64;
                for b in 0..nb {
                    let xb = &x[i * k + b * QK..i * k + (b + 1) * QK];
                    let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let da = amax / 127.0;
                    let inv = if da > 0.0 { 1.0 / da } else { 0.0 };
                    let block = &wq[(j * nb + b) * BLOCK_BYTES..(j * nb + b + 1) * BLOCK_BYTES];
                    let dw = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
                    let dot: i64 = xb
                        .iter()
                        .zip(&block[2..])
                        .map(|(&v, &w)| (v * inv).round_ties_even() as i64 * w as i8 as i64)
                        .sum();
                    sum += dot as f64 * dw as f64 * da as f64;
                }
                out[i * n + j] = sum + bias.map_or(0.0, |b| b[j] as f64);
            }
        }
        out
    }

    #[test]
    fn matches_the_blockwise_definition_on_awkward_shapes() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512 VNNI");
            return;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // Rows not a multiple of the 6-row tile, outputs not a multiple of the 32-wide panel.
        for &(m, k, n, with_bias) in &[(1, 32, 1, false), (7, 64, 33, true), (13, 96, 70, false), (6, 160, 32, true), (20, 32, 95, true)] {
            let x: Vec<f32> = (0..m * k).map(|_| rng.random_range(-3.0..3.0)).collect();
            let mut w: Vec<f32> = (0..n * k).map(|_| rng.random_range(-1.0..1.0)).collect();
            w[..QK].iter_mut().for_each(|v| *v = 0.0); // an all-zero block (scale 0)
            let wq = quantize_weights(&w, k);
            let bias: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let bias = with_bias.then_some(bias.as_slice());
            let got = matmul(&x, m, k, &wq, n, bias).expect("shapes fit");
            let want = reference(&x, m, k, &wq, n, bias);
            for (idx, (&g, &e)) in got.iter().zip(&want).enumerate() {
                // f32 accumulation of per-block products against an f64 sum.
                assert!((g as f64 - e).abs() <= 1e-5 * (1.0 + e.abs()), "m{m} k{k} n{n} at {idx}: {g} vs {e}");
            }
        }
    }

    #[test]
    fn refuses_shapes_it_cannot_take() {
        assert!(matmul(&[0.0; 20], 1, 20, &[0; 34], 1, None).is_none());
        assert!(matmul(&[0.0; 32], 1, 32, &[0; 33], 1, None).is_none());
        assert!(matmul(&[0.0; 32], 1, 32, &[0; 34], 1, Some(&[0.0; 2])).is_none());
    }
}
