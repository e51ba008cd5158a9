//! The attention products with our own AVX-512 and AVX2+FMA micro-kernels, for calls with enough
//! queries to repay packing a head's keys. The `gemm` crate used to do them, but on AVX-512 CPUs
//! it only runs its 256-bit kernels and repacks both operands per block of queries (85 ms of a
//! 290 ms vision pass on a Zen 5).
//!
//! Per (batch row, head), the head's keys are packed once, transposed (`[d][sk_pad]`, zero
//! padded), so that a Q·Kᵀ tile broadcasts one query element and loads two vectors of keys per
//! multiply-add; P·V broadcasts a probability and reads the value rows in place. Both ISAs run the
//! same macro-generated code on their own vector width, and every score and output element is
//! one multiply-add chain in a fixed order that no lane width changes: results are bit-identical
//! on AVX-512 and AVX2 machines (the softmax's exp aside, see `fast_math`).

use super::super::fast_math::softmax_rows;
use super::super::shared_out::SharedOut;
use super::{Shape, QUERY_BLOCK};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Isa {
    Avx512,
    Avx2,
}

impl Isa {
    pub(super) fn detect() -> Option<Isa> {
        if std::arch::is_x86_feature_detected!("avx512f") {
            Some(Isa::Avx512)
        } else if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            Some(Isa::Avx2)
        } else {
            None
        }
    }
}

/// Keys are padded to a multiple of this, the AVX-512 key tile (two vectors), which the AVX2
/// tile (two vectors of 8) divides: the packed layout is the same on both.
const KEY_PAD: usize = 32;

/// Rows of a P·V tile, the same on both ISAs: a tile's rows run over the keys up to the last one
/// any of them sees (past a row's own, over zero probabilities), and that count must not depend
/// on the ISA for the results to match bit for bit.
const PV_ROWS: usize = 4;

/// One (batch row, head, run of queries) of an attention call, for these kernels and `few`'s. The
/// pointers address element `[0][0]` of the head in Q (first query of the run), K, V and the
/// output, all with row stride `stride`.
pub(super) struct Head {
    pub q: *const f32,
    pub k: *const f32,
    pub v: *const f32,
    pub out: *mut f32,
    pub stride: usize,
    pub d: usize,
    pub sk: usize,
    pub rows: usize,
    /// Query row r of the run sees keys below `r + offset + 1` (clamped to 0..=sk), or all keys
    /// when `None`.
    pub causal: Option<isize>,
    pub scale: f32,
}

impl Head {
    /// Queries `rows` of batch row `bi`, head `h`, against key batch row `kb`, in an attention call
    /// of shape `s` over `q`, `k`, `v`, writing into `out`.
    #[allow(clippy::too_many_arguments)] // the coordinates of one head in one call
    pub(super) fn at(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: SharedOut,
        s: &Shape,
        bi: usize,
        kb: usize,
        h: usize,
        rows: std::ops::Range<usize>,
        scale: f32,
    ) -> Head {
        let d = s.hd / s.heads;
        let q_at = (bi * s.sq + rows.start) * s.hd + h * d;
        let kv_at = kb * s.sk * s.hd + h * d;
        Head {
            q: q.as_ptr().wrapping_add(q_at),
            k: k.as_ptr().wrapping_add(kv_at),
            v: v.as_ptr().wrapping_add(kv_at),
            out: out.at(q_at),
            stride: s.hd,
            d,
            sk: s.sk,
            rows: rows.len(),
            // Query i sees keys up to sk - sq + i.
            causal: s.causal.then_some(rows.start as isize + s.sk as isize - s.sq as isize),
            scale,
        }
    }
}

impl Head {
    pub(super) fn visible(&self, r: usize) -> usize {
        match self.causal {
            Some(offset) => (r as isize + offset + 1).clamp(0, self.sk as isize) as usize,
            None => self.sk,
        }
    }
}

/// Per-thread buffers, grown to the largest head seen.
#[derive(Default)]
pub(super) struct Scratch {
    kt: Vec<f32>,
    scores: Vec<f32>,
    visible: Vec<usize>,
}

/// # Safety
/// `isa` must have been detected on this CPU; `h`'s pointers must address a valid head: Q rows
/// `0..h.rows`, K and V rows `0..h.sk`, columns `0..h.d` each at stride `h.stride`, and the output
/// rows like Q's, written by no one else meanwhile.
pub(super) unsafe fn head(isa: Isa, h: &Head, scratch: &mut Scratch) {
    let sk_pad = h.sk.next_multiple_of(KEY_PAD);
    scratch.kt.resize(h.d * sk_pad, 0.0);
    scratch.scores.resize(QUERY_BLOCK.min(h.rows) * sk_pad, 0.0);
    // SAFETY: as promised by the caller.
    unsafe {
        match isa {
            Isa::Avx512 => avx512::head(h, scratch, sk_pad),
            Isa::Avx2 => avx2::head(h, scratch, sk_pad),
        }
    }
}

/// The per-head driver and its two micro-kernels, written once over the ISA's vector type `V`
/// (`L` lanes), its tail mask type `M` and these helpers: `zero`, `splat`, `fmadd(a, b, c)` =
/// a·b + c rounded once, `mul`, `load`/`store` (unaligned), `tail_mask(n)` for the first n lanes,
/// and `load_tail`/`store_tail` under such a mask.
macro_rules! kernels {
    ($feature:literal, QK_ROWS = $qk_rows:literal, PV_VECS = $pv_vecs:literal) => {
        /// Query rows per Q·Kᵀ tile: 2 × QK_ROWS accumulators, two key vectors and a broadcast
        /// fill the register file without spilling.
        const QK_ROWS: usize = $qk_rows;
        /// Output vectors per P·V tile row: PV_ROWS × PV_VECS accumulators, PV_VECS value vectors
        /// and a broadcast fit the register file (a 64-wide head in one pass on AVX-512).
        const PV_VECS: usize = $pv_vecs;

        /// # Safety
        /// As `super::head`, with `scratch.kt` holding `h.d × sk_pad` and `scratch.scores`
        /// `min(QUERY_BLOCK, h.rows) × sk_pad` floats.
        #[target_feature(enable = $feature)]
        pub(super) unsafe fn head(h: &super::Head, scratch: &mut super::Scratch, sk_pad: usize) {
            let (d, sk, stride) = (h.d, h.sk, h.stride);
            let kt = &mut scratch.kt[..d * sk_pad];
            // Row by row of K, so that its reads are contiguous.
            for j in 0..sk {
                // SAFETY: key row j < sk has d columns at `k + j·stride` (caller's promise).
                let key = unsafe { std::slice::from_raw_parts(h.k.add(j * stride), d) };
                for (c, &x) in key.iter().enumerate() {
                    kt[c * sk_pad + j] = x;
                }
            }
            for c in 0..d {
                kt[c * sk_pad + sk..(c + 1) * sk_pad].fill(0.0);
            }
            let kt = kt.as_ptr();
            for b0 in (0..h.rows).step_by(super::QUERY_BLOCK) {
                let n = super::QUERY_BLOCK.min(h.rows - b0);
                scratch.visible.clear();
                scratch.visible.extend((b0..b0 + n).map(|r| h.visible(r)));
                let visible = &scratch.visible[..];
                let width = visible.iter().copied().max().unwrap_or(0);
                let scores = scratch.scores.as_mut_ptr();
                // Key tiles outside, so that a tile's packed keys (d × 2 vectors) stay in L1 while
                // the block's query rows pass over them.
                for j0 in (0..width).step_by(2 * L) {
                    for r0 in (0..n).step_by(QK_ROWS) {
                        let rows = QK_ROWS.min(n - r0);
                        if visible[r0..r0 + rows].iter().any(|&v| v > j0) {
                            // SAFETY: query rows b0 + r0.. < h.rows; key tile j0 + 2L <= sk_pad (width
                            // <= sk and KEY_PAD is a multiple of 2L); score rows r0 + rows <= n.
                            unsafe {
                                qk_tile(
                                    h.q.add((b0 + r0) * stride),
                                    stride,
                                    rows,
                                    d,
                                    kt.add(j0),
                                    sk_pad,
                                    h.scale,
                                    scores.add(r0 * sk_pad + j0),
                                    sk_pad,
                                );
                            }
                        }
                    }
                }
                super::softmax_rows(&mut scratch.scores, sk_pad, visible, width);
                let scores = scratch.scores.as_ptr();
                for r0 in (0..n).step_by(PV_ROWS) {
                    let rows = PV_ROWS.min(n - r0);
                    let keys = visible[r0..r0 + rows].iter().copied().max().unwrap_or(0);
                    for c0 in (0..d).step_by(PV_VECS * L) {
                        let cols = (PV_VECS * L).min(d - c0);
                        let tail = cols - (cols - 1) / L * L;
                        // SAFETY: probability rows r0 + rows <= n, each zero from its visible count
                        // to `width` >= keys; value rows below keys <= sk, columns c0 + cols <= d; output
                        // rows b0 + r0 + rows <= h.rows.
                        unsafe {
                            let (p, v) = (scores.add(r0 * sk_pad), h.v.add(c0));
                            let out = h.out.add((b0 + r0) * stride + c0);
                            // Arms past PV_VECS are never taken.
                            match cols.div_ceil(L) {
                                1 => pv_tile::<1>(p, sk_pad, rows, keys, v, stride, tail, out),
                                2 => pv_tile::<2>(p, sk_pad, rows, keys, v, stride, tail, out),
                                3 => pv_tile::<3>(p, sk_pad, rows, keys, v, stride, tail, out),
                                _ => pv_tile::<4>(p, sk_pad, rows, keys, v, stride, tail, out),
                            }
                        }
                    }
                }
            }
        }

        /// `out[r][0..2L] = scale · Σ_c q[r][c]·kt[c][0..2L]` for r < rows (1..=QK_ROWS), each sum
        /// one multiply-add chain over c from 0.
        ///
        /// # Safety
        /// q: `rows` rows of d floats at stride `q_stride`; kt: d rows of 2L floats at stride
        /// `kt_stride`; out: `rows` rows of 2L floats at stride `out_stride`.
        #[target_feature(enable = $feature)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn qk_tile(
            q: *const f32,
            q_stride: usize,
            rows: usize,
            d: usize,
            kt: *const f32,
            kt_stride: usize,
            scale: f32,
            out: *mut f32,
            out_stride: usize,
        ) {
            // Missing rows of a short tile repeat the last one, and are not stored.
            let q: [*const f32; QK_ROWS] = std::array::from_fn(|r| q.wrapping_add(r.min(rows - 1) * q_stride));
            let mut acc = [[zero(); 2]; QK_ROWS];
            for c in 0..d {
                // SAFETY: c < d rows of kt, 2L floats each; q rows have d floats.
                unsafe {
                    let k0 = load(kt.add(c * kt_stride));
                    let k1 = load(kt.add(c * kt_stride + L));
                    for (acc, q) in acc.iter_mut().zip(&q) {
                        let x = splat(*q.add(c));
                        acc[0] = fmadd(x, k0, acc[0]);
                        acc[1] = fmadd(x, k1, acc[1]);
                    }
                }
            }
            let scale = splat(scale);
            for (r, acc) in acc.iter().enumerate().take(rows) {
                // SAFETY: r < rows output rows of 2L floats.
                unsafe {
                    store(out.add(r * out_stride), mul(scale, acc[0]));
                    store(out.add(r * out_stride + L), mul(scale, acc[1]));
                }
            }
        }

        /// `out[r][0..cols] = Σ_{j < keys} p[r][j]·v[j][0..cols]` for r < rows (1..=PV_ROWS), each
        /// element one multiply-add chain over j from 0; cols = (NV - 1)·L + tail.
        ///
        /// # Safety
        /// p: `rows` rows of `keys` floats at stride `p_stride`; v: `keys` rows of `cols` floats at
        /// stride `stride`; out: `rows` rows of `cols` floats at stride `stride`.
        #[target_feature(enable = $feature)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn pv_tile<const NV: usize>(
            p: *const f32,
            p_stride: usize,
            rows: usize,
            keys: usize,
            v: *const f32,
            stride: usize,
            tail: usize,
            out: *mut f32,
        ) {
            // Missing rows of a short tile repeat the last one, and are not stored.
            let p: [*const f32; PV_ROWS] = std::array::from_fn(|r| p.wrapping_add(r.min(rows - 1) * p_stride));
            let mask = tail_mask(tail);
            let mut acc = [[zero(); NV]; PV_ROWS];
            for j in 0..keys {
                // SAFETY: value row j < keys, its last vector masked to `cols`; probability j < keys.
                unsafe {
                    let row = v.add(j * stride);
                    let x: [V; NV] = std::array::from_fn(|i| {
                        if i + 1 < NV {
                            load(row.add(i * L))
                        } else {
                            load_tail(row.add(i * L), mask)
                        }
                    });
                    for (acc, p) in acc.iter_mut().zip(&p) {
                        let w = splat(*p.add(j));
                        for (acc, &x) in acc.iter_mut().zip(&x) {
                            *acc = fmadd(w, x, *acc);
                        }
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate().take(rows) {
                for (i, &a) in acc.iter().enumerate() {
                    // SAFETY: output row r < rows, its last vector masked to `cols`.
                    unsafe {
                        let at = out.add(r * stride + i * L);
                        if i + 1 < NV {
                            store(at, a);
                        } else {
                            store_tail(at, mask, a);
                        }
                    }
                }
            }
        }
    };
}

mod avx512 {
    use std::arch::x86_64::*;

    use super::PV_ROWS;

    type V = __m512;
    type M = __mmask16;
    const L: usize = 16;

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn zero() -> V {
        _mm512_setzero_ps()
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn splat(x: f32) -> V {
        _mm512_set1_ps(x)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn fmadd(a: V, b: V, c: V) -> V {
        _mm512_fmadd_ps(a, b, c)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn mul(a: V, b: V) -> V {
        _mm512_mul_ps(a, b)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn load(p: *const f32) -> V {
        // SAFETY: the caller's 16 floats.
        unsafe { _mm512_loadu_ps(p) }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn store(p: *mut f32, x: V) {
        // SAFETY: the caller's 16 floats.
        unsafe { _mm512_storeu_ps(p, x) }
    }

    /// The first `n` (1..=16) lanes.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn tail_mask(n: usize) -> M {
        (u32::MAX >> (32 - n)) as M
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn load_tail(p: *const f32, m: M) -> V {
        // SAFETY: the caller's floats under the mask; masked-off lanes are not read.
        unsafe { _mm512_maskz_loadu_ps(m, p) }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn store_tail(p: *mut f32, m: M, x: V) {
        // SAFETY: the caller's floats under the mask; masked-off lanes are not written.
        unsafe { _mm512_mask_storeu_ps(p, m, x) }
    }

    kernels!("avx512f", QK_ROWS = 8, PV_VECS = 4);
}

mod avx2 {
    use std::arch::x86_64::*;

    use super::PV_ROWS;

    type V = __m256;
    type M = __m256i;
    const L: usize = 8;

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn zero() -> V {
        _mm256_setzero_ps()
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn splat(x: f32) -> V {
        _mm256_set1_ps(x)
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn fmadd(a: V, b: V, c: V) -> V {
        _mm256_fmadd_ps(a, b, c)
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn mul(a: V, b: V) -> V {
        _mm256_mul_ps(a, b)
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn load(p: *const f32) -> V {
        // SAFETY: the caller's 8 floats.
        unsafe { _mm256_loadu_ps(p) }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn store(p: *mut f32, x: V) {
        // SAFETY: the caller's 8 floats.
        unsafe { _mm256_storeu_ps(p, x) }
    }

    /// The first `n` (1..=8) lanes, as sign bits.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn tail_mask(n: usize) -> M {
        _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn load_tail(p: *const f32, m: M) -> V {
        // SAFETY: the caller's floats under the mask; masked-off lanes are not read.
        unsafe { _mm256_maskload_ps(p, m) }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn store_tail(p: *mut f32, m: M, x: V) {
        // SAFETY: the caller's floats under the mask; masked-off lanes are not written.
        unsafe { _mm256_maskstore_ps(p, m, x) }
    }

    kernels!("avx2,fma", QK_ROWS = 6, PV_VECS = 2);
}
