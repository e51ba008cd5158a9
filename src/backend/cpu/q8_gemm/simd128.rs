//! The wasm SIMD128 inner loop (compiled when the build enables `simd128`, as the web build does):
//! `i32x4.dot_i16x8_s` multiplies int16 pairs and adds each pair into an int32 lane, the AVX2
//! scheme on 4-lane registers. It beats `i16x8.extmul` + `i32x4.extadd_pairwise` on 8-bit data
//! (5 instructions per 16 products against 4 here), and the int16 panel costs one widening per
//! weight per call. Relaxed SIMD's 8-bit dot product would halve the multiplies but is not in
//! every browser we target; it belongs to a second build chosen by feature detection.
//!
//! Engines map v128 to 16 registers on x86 hosts (32 on ARM): 4 rows × 2 int32 sums + 2 weight
//! registers + a broadcast + a product fit; the f32 sums are touched once per block.

use core::arch::wasm32::*;
use std::ops::Range;

use super::activations::Activations;
use super::panel::Pairs;
use super::QK;

/// Two 4-column registers per step of k.
pub(super) const NR: usize = 8;
pub(super) const MR: usize = 4;

/// # Safety
/// `rows` ≤ [`MR`], rows and blocks inside `acts` and `panel`.
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
    // k-index < k), `panel.weights` (block < nb, 16 pairs of NR × 2), `panel.scales` or `acc`;
    // wasm loads and stores have no alignment requirement.
    unsafe {
        let a = acts.wide.as_ptr().add(row0 * k);
        let w = panel.weights.as_ptr();
        let mut sum = [[f32x4_splat(0.0); 2]; R];
        for r in 0..R {
            sum[r] = [v128_load(acc[r].as_ptr().cast()), v128_load(acc[r].as_ptr().add(4).cast())];
        }
        for b in blocks {
            // Exact: each int32 lane gathers 32 products of at most 127 · 128.
            let mut dot = [[i32x4_splat(0); 2]; R];
            for p in 0..QK / 2 {
                let wp = w.add((b * QK / 2 + p) * NR * 2);
                let w0 = v128_load(wp.cast());
                let w1 = v128_load(wp.add(8).cast());
                for r in 0..R {
                    let x = v128_load32_splat(a.add(r * k + b * QK + 2 * p).cast());
                    dot[r][0] = i32x4_add(dot[r][0], i32x4_dot_i16x8(w0, x));
                    dot[r][1] = i32x4_add(dot[r][1], i32x4_dot_i16x8(w1, x));
                }
            }
            let s0 = v128_load(panel.scales.as_ptr().add(b * NR).cast());
            let s1 = v128_load(panel.scales.as_ptr().add(b * NR + 4).cast());
            for r in 0..R {
                let d = f32x4_splat(*acts.d.get_unchecked((row0 + r) * nb + b));
                // Multiply, then add (no fused form in SIMD128): the rounding of every other path.
                sum[r][0] = f32x4_add(sum[r][0], f32x4_mul(f32x4_convert_i32x4(dot[r][0]), f32x4_mul(s0, d)));
                sum[r][1] = f32x4_add(sum[r][1], f32x4_mul(f32x4_convert_i32x4(dot[r][1]), f32x4_mul(s1, d)));
            }
        }
        for r in 0..R {
            v128_store(acc[r].as_mut_ptr().cast(), sum[r][0]);
            v128_store(acc[r].as_mut_ptr().add(4).cast(), sum[r][1]);
        }
    }
}
