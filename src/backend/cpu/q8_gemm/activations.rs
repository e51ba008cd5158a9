//! Activations quantized as ggml quantizes the other side of a dot product: per block of 32 against
//! Q8_0 and Q4_0 weights, per block of 256 (Q8_K) against Q4_K. One portable routine for every
//! path, so every path multiplies the very same integers.

use rayon::prelude::*;

use super::QK;

/// The integer form a path's inner loop reads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// int8 values and per-block sums (VNNI: the sums undo the weights' unsigned offset).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Bytes,
    /// int16 values (AVX2, SIMD128, scalar): a row's consecutive pair is one 32-bit broadcast.
    Wide,
}

/// How values become integers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Scheme {
    /// Q8_0: per 32, `d = max|x| / 127`, ties to even (see [`quantize_block`]).
    Q8_0,
    /// Q8_K, as candle's `BlockQ8K::from_float` (what its Q4_K dot product and the GPU's Q4_K
    /// kernels quantize with, so all three multiply the same integers): per 256, `iscale = -127 /
    /// x` of the value of largest magnitude, `q = round(iscale · x)` with ties away from zero,
    /// `d = 1 / iscale`. Each 32-block carries its 256-block's `d` and its own sum.
    Q8K,
}

pub(super) struct Activations {
    /// `[m, k]` int8, filled for [`Form::Bytes`].
    #[cfg_attr(not(any(target_arch = "x86_64", target_feature = "relaxed-simd")), allow(dead_code))]
    pub q: Vec<i8>,
    /// `[m, k]` int16, filled for [`Form::Wide`].
    pub wide: Vec<i16>,
    /// `[m, k / 32]` block scales.
    pub d: Vec<f32>,
    /// `[m, k / 32]` sums of each block's int8 values, filled for [`Form::Bytes`] and [`Scheme::Q8K`].
    pub sums: Vec<i32>,
    pub k: usize,
}

impl Activations {
    /// `x` is `[m, k]`; with [`Scheme::Q8K`], k must be whole blocks of 256.
    pub fn quantize(x: &[f32], m: usize, k: usize, form: Form, scheme: Scheme) -> Activations {
        let nb = k / QK;
        let (bytes, wide) = (form == Form::Bytes, form == Form::Wide);
        let mut acts = Activations {
            q: vec![0; if bytes { m * k } else { 0 }],
            wide: vec![0; if wide { m * k } else { 0 }],
            d: vec![0.0; m * nb],
            sums: vec![0; if bytes || scheme == Scheme::Q8K { m * nb } else { 0 }],
            k,
        };
        let (q, w, s) = (&mut acts.q, &mut acts.wide, &mut acts.sums);
        if scheme == Scheme::Q8K {
            let out = if bytes { Out::Bytes(q) } else { Out::Wide(w) };
            quantize_q8k(x, k, out, &mut acts.d, s);
            return acts;
        }
        let rows = x.par_chunks(k).zip(acts.d.par_chunks_mut(nb));
        #[cfg(target_arch = "x86_64")]
        let avx512 = avx512::available();
        match form {
            Form::Bytes => rows.zip(q.par_chunks_mut(k)).zip(s.par_chunks_mut(nb)).for_each(|(((x, d), q), s)| {
                for (((x, d), q), s) in x.chunks_exact(QK).zip(d).zip(q.chunks_exact_mut(QK)).zip(s) {
                    #[cfg(target_arch = "x86_64")]
                    if avx512 {
                        // SAFETY: AVX-512 F and BW were detected; both slices hold one block.
                        (*d, *s) = unsafe { avx512::quantize_block_bytes(x, q) };
                        continue;
                    }
                    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
                    {
                        (*d, *s) = simd128::quantize_block_bytes(x, q);
                        continue;
                    }
                    #[allow(unreachable_code)]
                    let mut block = [0i32; QK];
                    *d = quantize_block(x, &mut block);
                    *s = block.iter().sum();
                    q.iter_mut().zip(block).for_each(|(q, v)| *q = v as i8);
                }
            }),
            Form::Wide => rows.zip(w.par_chunks_mut(k)).for_each(|((x, d), w)| {
                for ((x, d), w) in x.chunks_exact(QK).zip(d).zip(w.chunks_exact_mut(QK)) {
                    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
                    {
                        *d = simd128::quantize_block_wide(x, w);
                        continue;
                    }
                    #[allow(unreachable_code)]
                    let mut block = [0i32; QK];
                    *d = quantize_block(x, &mut block);
                    w.iter_mut().zip(block).for_each(|(w, v)| *w = v as i16);
                }
            }),
        }
        acts
    }
}

enum Out<'a> {
    Bytes(&'a mut [i8]),
    Wide(&'a mut [i16]),
}

/// The integer types a path reads; values are already inside -128..=127.
trait Narrow: Copy + Send {
    fn narrow(v: i32) -> Self;
}

impl Narrow for i8 {
    fn narrow(v: i32) -> Self {
        v as i8
    }
}

impl Narrow for i16 {
    fn narrow(v: i32) -> Self {
        v as i16
    }
}

/// [`Scheme::Q8K`] over whole rows.
fn quantize_q8k(x: &[f32], k: usize, out: Out, d: &mut [f32], sums: &mut [i32]) {
    let nb = k / QK;
    let rows = x.par_chunks(k).zip(d.par_chunks_mut(nb)).zip(sums.par_chunks_mut(nb));
    match out {
        Out::Bytes(q) => rows.zip(q.par_chunks_mut(k)).for_each(|(((x, d), s), q)| q8k_row(x, d, s, q)),
        Out::Wide(w) => rows.zip(w.par_chunks_mut(k)).for_each(|(((x, d), s), w)| q8k_row(x, d, s, w)),
    }
}

fn q8k_row<T: Narrow>(x: &[f32], d: &mut [f32], sums: &mut [i32], out: &mut [T]) {
    const QK_K: usize = crate::weights::q4::QK_K;
    let per = QK_K / QK;
    let chunks = x.chunks_exact(QK_K).zip(out.chunks_exact_mut(QK_K));
    for ((x, out), (d, sums)) in chunks.zip(d.chunks_exact_mut(per).zip(sums.chunks_exact_mut(per))) {
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in x {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let iscale = if amax == 0.0 { 0.0 } else { -127.0 / max };
        d.fill(if amax == 0.0 { 0.0 } else { 1.0 / iscale });
        for ((x, out), sum) in x.chunks_exact(QK).zip(out.chunks_exact_mut(QK)).zip(sums.iter_mut()) {
            let mut s = 0;
            for (&v, out) in x.iter().zip(out) {
                let q = round_away(iscale * v).clamp(-128, 127);
                s += q;
                *out = T::narrow(q);
            }
            *sum = s;
        }
    }
}

/// `f32::round` (ties away from zero, as candle's `nearest_int`) then `as i32`, for every input:
/// ties to even by [`round_small`] (no libm call: `round` and `trunc` are calls on baseline x86_64
/// and `round` in wasm), moved away from zero at exact halves. Far values (never met: |v| ≤ 127
/// here unless a scale is not finite) take the standard library's way.
fn round_away(v: f32) -> i32 {
    if v.abs() < 4_194_304.0 {
        let even = round_small(v);
        let diff = v - even as f32; // exact: both lie within 2^22 and at most a half apart
        if diff == 0.5 && v > 0.0 {
            even + 1
        } else if diff == -0.5 && v < 0.0 {
            even - 1
        } else {
            even
        }
    } else {
        v.round() as i32
    }
}

/// ggml's rule (d = max|x| / 127, q = round(x / d)) with rounding to nearest even; returns d.
/// Values are clamped to ±127, which only non-finite input can reach, so that no loop ever sees
/// -128 on this side (the AVX2 and SIMD128 pair sums rely on it staying below 2¹⁵).
fn quantize_block(x: &[f32], q: &mut [i32; QK]) -> f32 {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
    for (q, &v) in q.iter_mut().zip(x) {
        *q = round_small(v * inv).clamp(-127, 127);
    }
    d
}

/// Round to nearest, ties to even, for |v| < 2²²: adding 1.5 · 2²³ leaves no fraction bits, so the
/// FPU's default rounding does the work and the integer is read off the mantissa. Portable and
/// vectorisable, unlike `round_ties_even`, which is a libm call on x86 without SSE4.1.
fn round_small(v: f32) -> i32 {
    const MAGIC: f32 = 12_582_912.0;
    // Wrapping: only NaN or ±∞ inputs get far from zero, and those are clamped afterwards.
    ((v + MAGIC).to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32)
}

/// [`quantize_block`] to int8 on AVX-512, with the block's sum: the same operations on the same
/// values (the scalar loop stays scalar on baseline x86_64, and quantizing was a twentieth of a
/// vision pass).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::QK;

    pub fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw")
    }

    /// # Safety
    /// AVX-512 F and BW must be present; `x` and `q` hold one block of [`QK`] values.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub unsafe fn quantize_block_bytes(x: &[f32], q: &mut [i8]) -> (f32, i32) {
        assert!(x.len() == QK && q.len() == QK);
        // SAFETY: two loads of 16 f32 inside `x`, two stores of 16 i8 inside `q` (lengths asserted).
        unsafe {
            let v = [_mm512_loadu_ps(x.as_ptr()), _mm512_loadu_ps(x.as_ptr().add(16))];
            // max(|x|, m) keeps m when x is NaN, as the scalar fold's f32::max does.
            let abs = |v| _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(i32::MAX)));
            let amax = _mm512_max_ps(abs(v[1]), _mm512_max_ps(abs(v[0]), _mm512_setzero_ps()));
            let amax = _mm512_reduce_max_ps(amax);
            let d = amax / 127.0;
            let inv = _mm512_set1_ps(if d > 0.0 { 1.0 / d } else { 0.0 });
            let magic = _mm512_set1_ps(12_582_912.0);
            let round = |v| {
                let q = _mm512_sub_epi32(
                    _mm512_castps_si512(_mm512_add_ps(_mm512_mul_ps(v, inv), magic)),
                    _mm512_set1_epi32(12_582_912f32.to_bits() as i32),
                );
                _mm512_min_epi32(_mm512_set1_epi32(127), _mm512_max_epi32(_mm512_set1_epi32(-127), q))
            };
            let (lo, hi) = (round(v[0]), round(v[1]));
            _mm_storeu_si128(q.as_mut_ptr().cast(), _mm512_cvtepi32_epi8(lo));
            _mm_storeu_si128(q.as_mut_ptr().add(16).cast(), _mm512_cvtepi32_epi8(hi));
            (d, _mm512_reduce_add_epi32(_mm512_add_epi32(lo, hi)))
        }
    }
}

/// [`quantize_block`] for the int16 form on four lanes: the same operations on the same values
/// (the scalar loop calls `fmaxf` per value in wasm, where `f32::max` is not one instruction).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use core::arch::wasm32::*;

    use super::QK;

    /// `x` and `w` hold one block of [`QK`] values.
    pub fn quantize_block_wide(x: &[f32], w: &mut [i16]) -> f32 {
        assert!(x.len() == QK && w.len() == QK);
        // SAFETY: every load reads 4 f32 inside `x`, every store writes 8 i16 inside `w` (checked
        // lengths); wasm needs no alignment.
        unsafe {
            let lanes: [v128; QK / 4] = std::array::from_fn(|i| v128_load(x.as_ptr().add(4 * i).cast()));
            // max(0, |x|) as the scalar fold: pmax never picks a NaN over a number on its left.
            let mut amax = f32x4_splat(0.0);
            for &v in &lanes {
                amax = f32x4_pmax(amax, f32x4_abs(v));
            }
            let amax = [
                f32x4_extract_lane::<0>(amax),
                f32x4_extract_lane::<1>(amax),
                f32x4_extract_lane::<2>(amax),
                f32x4_extract_lane::<3>(amax),
            ]
            .into_iter()
            .fold(0f32, f32::max);
            let d = amax / 127.0;
            let inv = f32x4_splat(if d > 0.0 { 1.0 / d } else { 0.0 });
            let magic = f32x4_splat(12_582_912.0);
            let (lo, hi) = (i32x4_splat(-127), i32x4_splat(127));
            let round = |v: v128| {
                let q = i32x4_sub(f32x4_add(f32x4_mul(v, inv), magic), i32x4_splat(12_582_912f32.to_bits() as i32));
                i32x4_min(hi, i32x4_max(lo, q))
            };
            for i in 0..QK / 8 {
                let pair = i16x8_narrow_i32x4(round(lanes[2 * i]), round(lanes[2 * i + 1]));
                v128_store(w.as_mut_ptr().add(8 * i).cast(), pair);
            }
            d
        }
    }

    /// The same block as int8, and its sum.
    #[cfg(target_feature = "relaxed-simd")]
    pub fn quantize_block_bytes(x: &[f32], q: &mut [i8]) -> (f32, i32) {
        assert!(q.len() == QK);
        let mut wide = [0i16; QK];
        let d = quantize_block_wide(x, &mut wide);
        // SAFETY: loads of 8 i16 inside `wide`, stores of 16 i8 inside `q` (checked length).
        unsafe {
            for i in 0..QK / 16 {
                // Exact: the values lie in -127..=127.
                let lo = v128_load(wide.as_ptr().add(16 * i).cast());
                let hi = v128_load(wide.as_ptr().add(16 * i + 8).cast());
                v128_store(q.as_mut_ptr().add(16 * i).cast(), i8x16_narrow_i16x8(lo, hi));
            }
        }
        (d, wide.iter().map(|&v| i32::from(v)).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_away_from_zero_like_the_standard_library() {
        for i in -300_000..300_000 {
            let v = i as f32 / 1024.0;
            assert_eq!(round_away(v), v.round() as i32, "{v}");
        }
        let edges = [
            0.5f32,
            1.5,
            2.5,
            3.5,
            -0.5,
            -2.5,
            -3.5,
            0.49999997,
            -0.49999997,
            126.5,
            -127.5,
            4194303.5,
            4194304.5,
            8388607.5,
            1e9,
            -1e-30,
            0.0,
            -0.0,
        ];
        for v in edges.into_iter().chain([f32::INFINITY, f32::NEG_INFINITY, f32::NAN]) {
            assert_eq!(round_away(v), v.round() as i32, "{v}");
        }
    }

    #[test]
    fn rounds_to_nearest_even_like_the_standard_library() {
        for i in -300_000..300_000 {
            let v = i as f32 / 1024.0;
            assert_eq!(round_small(v), v.round_ties_even() as i32, "{v}");
        }
        for v in [0.5f32, 1.5, 2.5, -0.5, -1.5, 126.5, -126.5, 127.49999, 0.49999997] {
            assert_eq!(round_small(v), v.round_ties_even() as i32, "{v}");
        }
    }
}
