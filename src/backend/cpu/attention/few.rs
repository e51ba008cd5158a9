//! Attention for calls with fewer than `KERNEL_MIN_QUERIES` queries (decoder steps: one query per
//! beam against up to 577 cached image keys, or a few dozen causal self-attention keys), reading
//! Q, K and V in place. One query's products read each key and value element once, for one
//! multiply-add: packing them first (the `x86` kernels' transposed copy, or the `gemm` crate's,
//! which it redid per call, per head, and which took most of a decoder step's attention) would
//! double the memory traffic and repay nothing.
//!
//! Scores take eight keys at a time, one 8-lane multiply-add chain per key along d, and the eight
//! chains' lanes summed in one fixed tree; the output is one multiply-add chain per element over
//! the keys in order. The code is 256-bit only and runs as is on AVX-512 machines too, so that
//! they and AVX2 machines get the same products (the softmax's exp aside, see `fast_math`).

use std::arch::x86_64::*;

use super::super::fast_math::softmax_in_place;
use super::x86::Head;

/// Lanes of a vector.
const L: usize = 8;

/// Output vectors per pass over the keys: eight accumulators, a broadcast and a loaded value fit
/// the 16 registers, and a 64-wide head (BLIP's) takes one pass.
const PV_VECS: usize = 8;

/// Whether this CPU runs the kernel.
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Computes the output rows of `h`, all its queries; `scores` is the calling thread's scratch.
///
/// # Safety
/// `available()` must hold; `h`'s pointers must address a valid head: Q rows `0..h.rows`, K and V
/// rows `0..h.sk`, columns `0..h.d` each at stride `h.stride`, and the output rows like Q's,
/// written by no one else meanwhile.
pub(super) unsafe fn head(h: &Head, scores: &mut Vec<f32>) {
    // Whole groups of eight: the last group's scores are stored whole and its extra lanes ignored.
    scores.resize(h.sk.next_multiple_of(L), 0.0);
    // SAFETY: as promised by the caller.
    unsafe { head_avx2(h, scores) }
}

/// # Safety
/// As `head`, with `scores` holding at least `h.sk` rounded up to a multiple of `L` floats.
#[target_feature(enable = "avx2,fma")]
unsafe fn head_avx2(h: &Head, scores: &mut [f32]) {
    let (d, stride) = (h.d, h.stride);
    if d == 0 {
        return;
    }
    let (full, rest) = (d / L, d % L);
    let rest_mask = tail_mask(rest.max(1));
    let scale = _mm256_set1_ps(h.scale);
    for r in 0..h.rows {
        let visible = h.visible(r);
        // SAFETY: query row r < h.rows has d columns (caller's promise).
        let q = unsafe { h.q.add(r * stride) };
        for j0 in (0..visible).step_by(L) {
            // Keys past the visible ones in the last group repeat the last one; their lanes are
            // stored past `visible` and never used.
            let keys: [*const f32; L] = std::array::from_fn(|t| h.k.wrapping_add((j0 + t).min(visible - 1) * stride));
            let mut acc = [_mm256_setzero_ps(); L];
            // SAFETY: q and every key row have d columns; chunks below `full * L` are whole, and
            // the rest is read under its mask.
            unsafe {
                for c in (0..full * L).step_by(L) {
                    let x = _mm256_loadu_ps(q.add(c));
                    for (acc, key) in acc.iter_mut().zip(&keys) {
                        *acc = _mm256_fmadd_ps(x, _mm256_loadu_ps(key.add(c)), *acc);
                    }
                }
                if rest > 0 {
                    let c = full * L;
                    let x = _mm256_maskload_ps(q.add(c), rest_mask);
                    for (acc, key) in acc.iter_mut().zip(&keys) {
                        *acc = _mm256_fmadd_ps(x, _mm256_maskload_ps(key.add(c), rest_mask), *acc);
                    }
                }
            }
            // SAFETY: j0 + L <= sk rounded up to L <= scores.len(), since j0 < visible <= sk.
            unsafe { _mm256_storeu_ps(scores.as_mut_ptr().add(j0), _mm256_mul_ps(scale, sums(acc))) };
        }
        softmax_in_place(&mut scores[..visible]);
        let p = scores.as_ptr();
        for c0 in (0..d).step_by(PV_VECS * L) {
            let cols = (PV_VECS * L).min(d - c0);
            let tail = cols - (cols - 1) / L * L;
            // SAFETY: `visible` probabilities; value rows below visible <= sk and output row r,
            // columns c0 + cols <= d (caller's promise).
            unsafe {
                let (v, out) = (h.v.add(c0), h.out.add(r * stride + c0));
                // Arms past PV_VECS are never taken.
                match cols.div_ceil(L) {
                    1 => pv::<1>(p, visible, v, stride, tail, out),
                    2 => pv::<2>(p, visible, v, stride, tail, out),
                    3 => pv::<3>(p, visible, v, stride, tail, out),
                    4 => pv::<4>(p, visible, v, stride, tail, out),
                    5 => pv::<5>(p, visible, v, stride, tail, out),
                    6 => pv::<6>(p, visible, v, stride, tail, out),
                    7 => pv::<7>(p, visible, v, stride, tail, out),
                    _ => pv::<8>(p, visible, v, stride, tail, out),
                }
            }
        }
    }
}

/// The lane sums of eight vectors, `[Σa[0], …, Σa[7]]`, each in the same tree: adjacent lanes,
/// then pairs, then the two 128-bit halves.
#[target_feature(enable = "avx2,fma")]
fn sums(a: [__m256; L]) -> __m256 {
    let (a01, a23) = (_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    let (a45, a67) = (_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    // Lane i of the low half holds a[i]'s lanes 0..4 summed, of the high half a[i]'s 4..8, for
    // i < 4 here and i - 4 in the second.
    let (a0123, a4567) = (_mm256_hadd_ps(a01, a23), _mm256_hadd_ps(a45, a67));
    let low = _mm256_permute2f128_ps::<0x20>(a0123, a4567);
    let high = _mm256_permute2f128_ps::<0x31>(a0123, a4567);
    _mm256_add_ps(low, high)
}

/// `out[0..cols] = Σ_{j < keys} p[j]·v[j][0..cols]`, each element one multiply-add chain over j
/// from 0; cols = (NV - 1)·L + tail.
///
/// # Safety
/// p: `keys` floats; v: `keys` rows of `cols` floats at stride `stride`; out: `cols` floats.
#[target_feature(enable = "avx2,fma")]
unsafe fn pv<const NV: usize>(p: *const f32, keys: usize, v: *const f32, stride: usize, tail: usize, out: *mut f32) {
    let mask = tail_mask(tail);
    let mut acc = [_mm256_setzero_ps(); NV];
    for j in 0..keys {
        // SAFETY: value row j < keys, its last vector under the mask; probability j < keys.
        unsafe {
            let row = v.add(j * stride);
            let w = _mm256_set1_ps(*p.add(j));
            for (i, acc) in acc.iter_mut().enumerate() {
                let x =
                    if i + 1 < NV { _mm256_loadu_ps(row.add(i * L)) } else { _mm256_maskload_ps(row.add(i * L), mask) };
                *acc = _mm256_fmadd_ps(w, x, *acc);
            }
        }
    }
    for (i, &a) in acc.iter().enumerate() {
        // SAFETY: the output's vector i, the last one under the mask.
        unsafe {
            if i + 1 < NV {
                _mm256_storeu_ps(out.add(i * L), a);
            } else {
                _mm256_maskstore_ps(out.add(i * L), mask, a);
            }
        }
    }
}

/// The first `n` (1..=8) lanes, as sign bits.
#[target_feature(enable = "avx2,fma")]
fn tail_mask(n: usize) -> __m256i {
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
}
