//! The AVX2 inner loop (x86_64 without AVX-512 VNNI). `vpmaddubsw`, the 8-bit multiply, wants one
//! unsigned side, and neither offset trick stays exact (two products of 255 · 128 overflow its
//! saturating int16 sums); ggml's sign trick does, but costs a `vpsignb` per product register on
//! top of the widening `vpmaddwd`. Widening the panel to int16 once per call instead leaves one
//! `vpmaddwd` (16 products into 8 int32) and one add per register in the inner loop, the same
//! instruction count per product, with simpler code and the scheme SIMD128 uses too.

use std::arch::x86_64::*;
use std::ops::Range;

use super::activations::Activations;
use super::panel::Pairs;
use super::QK;

/// Two 8-column registers per step of k.
pub(super) const NR: usize = 16;
/// 4 rows × 2 int32 sums + 2 weight registers + a broadcast + a product = 12 of 16 registers; the
/// f32 sums are touched once per block and may live on the stack.
pub(super) const MR: usize = 4;

pub(super) fn available() -> bool {
    // FMA and F16C come with every AVX2 CPU; the few-row loop (gemv.rs) uses them.
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
}

/// # Safety
/// AVX2 must be present; `rows` ≤ [`MR`], rows and blocks inside `acts` and `panel`.
pub(super) unsafe fn tile(
    acts: &Activations,
    row0: usize,
    rows: usize,
    panel: &Pairs<NR>,
    blocks: Range<usize>,
    acc: &mut [[f32; NR]; MR],
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match rows {
            1 => rows_of::<1>(acts, row0, panel, blocks, acc),
            2 => rows_of::<2>(acts, row0, panel, blocks, acc),
            3 => rows_of::<3>(acts, row0, panel, blocks, acc),
            _ => rows_of::<MR>(acts, row0, panel, blocks, acc),
        }
    }
}

#[target_feature(enable = "avx2")]
#[allow(clippy::needless_range_loop)] // `r` also offsets the activation rows
unsafe fn rows_of<const R: usize>(
    acts: &Activations,
    row0: usize,
    panel: &Pairs<NR>,
    blocks: Range<usize>,
    acc: &mut [[f32; NR]; MR],
) {
    let (k, nb) = (acts.k, acts.k / QK);
    // SAFETY (whole body): every pointer below is offset within `acts.wide` (rows < row0 + R ≤ m,
    // k-index < nb · 32 = k), `panel.weights` (block < nb, 16 pairs of NR × 2) or `panel.scales`,
    // and `acc`; unaligned loads and stores are used throughout.
    unsafe {
        let a = acts.wide.as_ptr().add(row0 * k);
        let w = panel.weights.as_ptr();
        let mut sum = [[_mm256_setzero_ps(); 2]; R];
        for r in 0..R {
            sum[r] = [_mm256_loadu_ps(acc[r].as_ptr()), _mm256_loadu_ps(acc[r].as_ptr().add(8))];
        }
        for b in blocks {
            // Exact: each int32 lane gathers 32 products of at most 127 · 128.
            let mut dot = [[_mm256_setzero_si256(); 2]; R];
            for p in 0..QK / 2 {
                let wp = w.add((b * QK / 2 + p) * NR * 2);
                let w0 = _mm256_loadu_si256(wp.cast());
                let w1 = _mm256_loadu_si256(wp.add(16).cast());
                for r in 0..R {
                    let x = _mm256_set1_epi32(a.add(r * k + b * QK + 2 * p).cast::<i32>().read_unaligned());
                    dot[r][0] = _mm256_add_epi32(dot[r][0], _mm256_madd_epi16(w0, x));
                    dot[r][1] = _mm256_add_epi32(dot[r][1], _mm256_madd_epi16(w1, x));
                }
            }
            let s0 = _mm256_loadu_ps(panel.scales.as_ptr().add(b * NR));
            let s1 = _mm256_loadu_ps(panel.scales.as_ptr().add(b * NR + 8));
            for r in 0..R {
                let d = _mm256_set1_ps(*acts.d.get_unchecked((row0 + r) * nb + b));
                // Multiply, then add: no FMA, so the rounding matches every other path.
                sum[r][0] =
                    _mm256_add_ps(sum[r][0], _mm256_mul_ps(_mm256_cvtepi32_ps(dot[r][0]), _mm256_mul_ps(s0, d)));
                sum[r][1] =
                    _mm256_add_ps(sum[r][1], _mm256_mul_ps(_mm256_cvtepi32_ps(dot[r][1]), _mm256_mul_ps(s1, d)));
            }
        }
        for r in 0..R {
            _mm256_storeu_ps(acc[r].as_mut_ptr(), sum[r][0]);
            _mm256_storeu_ps(acc[r].as_mut_ptr().add(8), sum[r][1]);
        }
    }
}
