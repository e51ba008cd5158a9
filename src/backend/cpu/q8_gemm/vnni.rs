//! The AVX-512 VNNI inner loop: `vpdpbusd` multiplies 4 unsigned by 4 signed bytes and adds them
//! to an int32 lane, 64 products per instruction. The weights enter offset to unsigned (XOR 0x80
//! in the panel), and 128 × the activation block's sum takes the offset back out, exactly.

use std::arch::x86_64::*;
use std::ops::Range;

use super::activations::Activations;
use super::panel::{Quads, QUAD_NR};
use super::QK;

pub(super) const NR: usize = QUAD_NR;
/// Weights offset to unsigned bytes.
pub(super) type Packed = Quads<NR, 0x80>;
/// 8 rows × 2 int32 sums + 2 weight registers + a broadcast, with room for the scale step: the
/// f32 sums live in `acc` (L1), not in registers. (Held in registers, 6 rows' sums and dots made
/// LLVM spill them to the stack anyway, once per block.)
pub(super) const MR: usize = 8;

pub(super) fn available() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
            // For the few-row loop (gemv.rs), which runs VNNI on 256-bit registers.
            && std::arch::is_x86_feature_detected!("avx512vl")
            && super::avx2::available()
    })
}

/// # Safety
/// AVX-512 F, BW and VNNI must be present; `rows` ≤ [`MR`], rows and blocks inside `acts` and
/// `panel`.
pub(super) unsafe fn tile(
    acts: &Activations,
    row0: usize,
    rows: usize,
    panel: &Packed,
    blocks: Range<usize>,
    acc: &mut [[f32; NR]; MR],
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match rows {
            1 => rows_of::<1>(acts, row0, panel, blocks, acc),
            2 => rows_of::<2>(acts, row0, panel, blocks, acc),
            3 => rows_of::<3>(acts, row0, panel, blocks, acc),
            4 => rows_of::<4>(acts, row0, panel, blocks, acc),
            5 => rows_of::<5>(acts, row0, panel, blocks, acc),
            6 => rows_of::<6>(acts, row0, panel, blocks, acc),
            7 => rows_of::<7>(acts, row0, panel, blocks, acc),
            _ => rows_of::<MR>(acts, row0, panel, blocks, acc),
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(clippy::needless_range_loop)] // `r` also offsets the activation rows
unsafe fn rows_of<const R: usize>(
    acts: &Activations,
    row0: usize,
    panel: &Packed,
    blocks: Range<usize>,
    acc: &mut [[f32; NR]; MR],
) {
    let (k, nb) = (acts.k, acts.k / QK);
    // SAFETY (whole body): every pointer below is offset within `acts.q` (rows < row0 + R ≤ m,
    // k-index < k), `panel.weights` (block < nb, 8 quads of 32 × 4 bytes), `panel.scales`,
    // `acts.sums`/`acts.d` (index < m · nb) or `acc`; loads and stores are unaligned.
    unsafe {
        let q = acts.q.as_ptr().add(row0 * k);
        let w = panel.weights.as_ptr();
        for b in blocks {
            // The sums start at -128 · Σ activations, which takes the weights' offset back out
            // exactly (all of it is int32 arithmetic).
            let mut dot = [[_mm512_setzero_si512(); 2]; R];
            for (r, dot) in dot.iter_mut().enumerate() {
                let offset = _mm512_set1_epi32(-128 * *acts.sums.get_unchecked((row0 + r) * nb + b));
                *dot = [offset, offset];
            }
            for quad in 0..QK / 4 {
                let wp = w.add((b * QK / 4 + quad) * NR * 4);
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
                let d = _mm512_set1_ps(*acts.d.get_unchecked((row0 + r) * nb + b));
                let f0 = _mm512_cvtepi32_ps(dot[r][0]);
                let f1 = _mm512_cvtepi32_ps(dot[r][1]);
                let p = acc[r].as_mut_ptr();
                // Multiply, then add: no FMA, so the rounding matches every other path.
                _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), _mm512_mul_ps(f0, _mm512_mul_ps(s0, d))));
                _mm512_storeu_ps(
                    p.add(16),
                    _mm512_add_ps(_mm512_loadu_ps(p.add(16)), _mm512_mul_ps(f1, _mm512_mul_ps(s1, d))),
                );
            }
        }
    }
}
