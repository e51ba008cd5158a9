//! A few activation rows (a decoder step: one row per beam) against Q8_0 weights read straight from
//! the file's blocks, for x86_64 with AVX2 or AVX-512 VNNI. With one row the weights are used once,
//! so a step is a stream of its ~130 MB of weights: the GEMM's repack would cost more than the
//! product, and what matters is reading at memory speed on every core. Eight weight rows are taken
//! at a time; each block's eight integer sums are reduced into one vector, whose lanes are those
//! rows, so the scale step is the GEMM's own (`acc + f32(dot) · (d_weight · d_activation)`, blocks in
//! order, bias last): the result is the GEMM's to the bit, whichever of the two runs.
//!
//! The rows are shared out among rayon's threads in runs of [`ROWS_PER_TASK`] and up, and the next
//! group's rows are prefetched as a group is read (12 GB/s from memory without, 26–29 with, on a
//! 2-core Zen 5). candle's one-row product, used before, ran on candle's own pool, whose threads
//! spin a while after each call: on two cores they took one from the rayon work between products.

use std::arch::x86_64::*;

use rayon::prelude::*;

use super::activations::Activations;
use super::{BLOCK_BYTES, QK};

/// Weight rows per call of the inner loop: one 256-bit register of sums per row, eight rows' sums
/// reduced into one register.
const GROUP: usize = 8;

/// At least this many weight rows per task: 64 rows of k = 768 are 52 KB of blocks, several
/// microseconds of streaming, which repays a hand-over to another thread.
const ROWS_PER_TASK: usize = 64;

/// How the block's 32 int8 × int8 products are summed into eight int32 lanes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Dot {
    /// `vpdpbusd` (AVX-512 VNNI on 256-bit registers): weights offset to unsigned bytes by XOR
    /// 0x80, so each lane holds `Σ (w + 128) · a`; 128 · Σa is taken out after the reduction.
    Vnni,
    /// AVX2: `|w|` times `a` with `w`'s sign (`vpmaddubsw`, never saturating: |w| ≤ 128 and
    /// |a| ≤ 127 keep each pair within ±32512), pairs widened to int32 by `vpmaddwd`.
    Avx2,
}

/// `x` (`m` rows of `k`) times the `n` Q8_0 rows of `w`, transposed, plus `bias`: `[m, n]`.
/// The caller has checked the shapes and that `dot`'s instructions exist.
///
/// # Safety
/// AVX2 and FMA, and for [`Dot::Vnni`] AVX-512 F, BW, VL and VNNI, must be present; `w` holds
/// `n` rows of `k / 32` blocks, `x` `m · k` values, `bias` `n` values.
pub(super) unsafe fn matmul(
    dot: Dot,
    x: &[f32],
    m: usize,
    k: usize,
    w: &[u8],
    n: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let acts = Activations::quantize(x, m, k, super::activations::Form::Bytes, super::activations::Scheme::Q8_0);
    let row_bytes = k / QK * BLOCK_BYTES;
    // Output `[m, n]` is filled per task as `[n-run][m]` first (a task owns whole weight rows),
    // then transposed: m is a handful of rows, so the copy is nothing next to the weights.
    let mut by_row = vec![0f32; n * m];
    let per_task = ROWS_PER_TASK.max(n.div_ceil(rayon::current_num_threads() * 4)).next_multiple_of(GROUP);
    by_row.par_chunks_mut(per_task * m).enumerate().for_each(|(task, out)| {
        let first = task * per_task;
        let rows = out.len() / m;
        for g in (0..rows).step_by(GROUP) {
            let count = GROUP.min(rows - g);
            let w = &w[(first + g) * row_bytes..(first + g + count) * row_bytes];
            for i in 0..m {
                let mut sums = [0f32; GROUP];
                // SAFETY: features vouched for by the caller; `w` holds `count` rows of
                // `row_bytes`, `acts` row `i` exists.
                unsafe {
                    match dot {
                        Dot::Vnni => group_vnni(&acts, i, w, count, row_bytes, &mut sums),
                        Dot::Avx2 => group_avx2(&acts, i, w, count, row_bytes, &mut sums),
                    }
                }
                for (r, &s) in sums[..count].iter().enumerate() {
                    let b = bias.map_or(0.0, |b| b[first + g + r]);
                    // Bias last, added once, as the GEMM adds it.
                    out[(g + r) * m + i] = if bias.is_some() { s + b } else { s };
                }
            }
        }
    });
    let mut out = vec![0f32; m * n];
    for (j, col) in by_row.chunks_exact(m).enumerate() {
        for (i, &v) in col.iter().enumerate() {
            out[i * n + j] = v;
        }
    }
    out
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn group_vnni(acts: &Activations, i: usize, w: &[u8], count: usize, row_bytes: usize, out: &mut [f32; GROUP]) {
    // SAFETY: forwarded from `matmul`'s caller; `group` is inlined here with these features.
    unsafe { group::<true>(acts, i, w, count, row_bytes, out) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn group_avx2(acts: &Activations, i: usize, w: &[u8], count: usize, row_bytes: usize, out: &mut [f32; GROUP]) {
    // SAFETY: forwarded from `matmul`'s caller.
    unsafe { group::<false>(acts, i, w, count, row_bytes, out) }
}

/// Activation row `i` against `count` (≤ 8) weight rows of `w`: their eight outputs before bias.
/// Missing rows (a partial last group) read row 0 again and are dropped by the caller.
#[inline(always)]
unsafe fn group<const VNNI: bool>(
    acts: &Activations,
    i: usize,
    w: &[u8],
    count: usize,
    row_bytes: usize,
    out: &mut [f32; GROUP],
) {
    let nb = acts.k / QK;
    // SAFETY (whole body): row r < count starts at r · row_bytes inside `w`; block b < nb of it
    // at b · 34 holds a 2-byte scale and 32 values; `acts` has nb blocks of row i. The scale gather
    // reads 4 bytes at a block's start (scale and two values), inside the block.
    unsafe {
        let starts: [i32; GROUP] = std::array::from_fn(|r| (if r < count { r * row_bytes } else { 0 }) as i32);
        let offsets = _mm256_loadu_si256(starts.as_ptr().cast());
        let rows: [*const u8; GROUP] = std::array::from_fn(|r| w.as_ptr().add(starts[r] as usize));
        let q = acts.q.as_ptr().add(i * acts.k);
        let flip = _mm256_set1_epi8(-128);
        // The same block of the next group's rows: the group after this one is the next stretch
        // of memory. (Half a group ahead measured slower than none; a group, 20% faster than none:
        // 4.8 against 6.0 ms for a BLIP-base step's products from memory.)
        let ahead = GROUP * row_bytes;
        let low16 = _mm256_set1_epi32(0xffff);
        let mut acc = _mm256_setzero_ps();
        for b in 0..nb {
            let a = _mm256_loadu_si256(q.add(b * QK).cast());
            let at = b * BLOCK_BYTES + 2;
            let mut d = [_mm256_setzero_si256(); GROUP];
            for r in 0..GROUP {
                _mm_prefetch::<_MM_HINT_T0>(rows[r].wrapping_add(at + ahead).cast());
                let v = _mm256_loadu_si256(rows[r].add(at).cast());
                d[r] = if VNNI {
                    _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_xor_si256(v, flip), a)
                } else {
                    let pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(a, v));
                    _mm256_madd_epi16(pairs, _mm256_set1_epi16(1))
                };
            }
            // Eight rows' eight partial sums into one register of eight totals (integer adds:
            // the order does not matter).
            let h01 = _mm256_hadd_epi32(d[0], d[1]);
            let h23 = _mm256_hadd_epi32(d[2], d[3]);
            let h45 = _mm256_hadd_epi32(d[4], d[5]);
            let h67 = _mm256_hadd_epi32(d[6], d[7]);
            let lo = _mm256_hadd_epi32(h01, h23);
            let hi = _mm256_hadd_epi32(h45, h67);
            let mut dots =
                _mm256_add_epi32(_mm256_permute2x128_si256::<0x20>(lo, hi), _mm256_permute2x128_si256::<0x31>(lo, hi));
            if VNNI {
                dots = _mm256_sub_epi32(dots, _mm256_set1_epi32(128 * *acts.sums.get_unchecked(i * nb + b)));
            }
            // The eight rows' f16 scales: 32-bit gathers at each block's start, low halves packed.
            let raw =
                _mm256_and_si256(_mm256_i32gather_epi32::<1>(w.as_ptr().add(b * BLOCK_BYTES).cast(), offsets), low16);
            let packed = _mm256_permute4x64_epi64::<0b1000>(_mm256_packus_epi32(raw, raw));
            let scales = _mm256_cvtph_ps(_mm256_castsi256_si128(packed));
            let da = _mm256_set1_ps(*acts.d.get_unchecked(i * nb + b));
            // Multiply, then add: no FMA, as every GEMM path rounds.
            acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_cvtepi32_ps(dots), _mm256_mul_ps(scales, da)));
        }
        _mm256_storeu_ps(out.as_mut_ptr(), acc);
    }
}
