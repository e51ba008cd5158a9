//! Activations quantized per block of 32, as ggml quantizes the other side of a Q8_0 dot product.
//! One portable routine for every path, so every path multiplies the very same integers.

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

pub(super) struct Activations {
    /// `[m, k]` int8, filled for [`Form::Bytes`].
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub q: Vec<i8>,
    /// `[m, k]` int16, filled for [`Form::Wide`].
    pub wide: Vec<i16>,
    /// `[m, k / 32]` block scales.
    pub d: Vec<f32>,
    /// `[m, k / 32]` sums of each block's int8 values, filled for [`Form::Bytes`].
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub sums: Vec<i32>,
    pub k: usize,
}

impl Activations {
    pub fn quantize(x: &[f32], m: usize, k: usize, form: Form) -> Activations {
        let nb = k / QK;
        let (bytes, wide) = (form == Form::Bytes, form == Form::Wide);
        let mut acts = Activations {
            q: vec![0; if bytes { m * k } else { 0 }],
            wide: vec![0; if wide { m * k } else { 0 }],
            d: vec![0.0; m * nb],
            sums: vec![0; if bytes { m * nb } else { 0 }],
            k,
        };
        let (q, w, s) = (&mut acts.q, &mut acts.wide, &mut acts.sums);
        let rows = x.par_chunks(k).zip(acts.d.par_chunks_mut(nb));
        match form {
            Form::Bytes => rows.zip(q.par_chunks_mut(k)).zip(s.par_chunks_mut(nb)).for_each(|(((x, d), q), s)| {
                for (((x, d), q), s) in x.chunks_exact(QK).zip(d).zip(q.chunks_exact_mut(QK)).zip(s) {
                    let mut block = [0i32; QK];
                    *d = quantize_block(x, &mut block);
                    *s = block.iter().sum();
                    q.iter_mut().zip(block).for_each(|(q, v)| *q = v as i8);
                }
            }),
            Form::Wide => rows.zip(w.par_chunks_mut(k)).for_each(|((x, d), w)| {
                for ((x, d), w) in x.chunks_exact(QK).zip(d).zip(w.chunks_exact_mut(QK)) {
                    let mut block = [0i32; QK];
                    *d = quantize_block(x, &mut block);
                    w.iter_mut().zip(block).for_each(|(w, v)| *w = v as i16);
                }
            }),
        }
        acts
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

#[cfg(test)]
mod tests {
    use super::*;

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
