//! Vectorisable exp and erf-GELU for the CPU backend's hot loops (softmax over 577×577 scores per
//! head, GELU over 577×3072 per layer), where libm's scalar calls were a tenth of a vision pass.
//! Both stay within a few f32 ulps of the exact functions (checked against libm by tests/cpu_kernels.rs,
//! natively and in wasm).

/// `e^x` for every element, in place. Cephes' expf: range reduction by ln 2, degree-6 polynomial,
/// scale by 2^n through the exponent bits.
pub fn exp_in_place(v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was just detected.
            return unsafe { avx512::exp_in_place(v) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: both features were just detected.
            return unsafe { exp_avx2(v) };
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd128::exp_in_place(v);
    #[allow(unreachable_code)]
    v.iter_mut().for_each(|x| *x = exp(*x));
}

/// Softmax of a row in place: `e^(x - max) / Σ`. An empty row stays empty.
pub fn softmax_in_place(v: &mut [f32]) {
    if v.is_empty() {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was just detected.
            return unsafe { avx512::softmax_in_place(v) };
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd128::softmax_in_place(v);
    #[allow(unreachable_code)]
    exp_minus_max(v);
    let inv = 1.0 / v.iter().sum::<f32>();
    v.iter_mut().for_each(|x| *x *= inv);
}

/// Softmax's numerators `e^(x - max)` in place, as `softmax_in_place` computes them on x86_64 (wasm's
/// SIMD128 softmax has its own).
fn exp_minus_max(v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was just detected.
            return unsafe { avx512::exp_minus_max(v) };
        }
    }
    let max = v.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    v.iter_mut().for_each(|x| *x -= max);
    exp_in_place(v);
}

/// Softmax of several rows of `scores` (row `r` at `r * stride`) over their first `visible[r]`
/// entries, each row bit for bit what `softmax_in_place` gives it, then zeros up to `width`
/// (`visible[r] <= width <= stride`). A row's in-order sum is one long chain of dependent adds (577
/// of them per vision row, about 5 % of a vision pass); here eight rows are summed side by side, so
/// eight chains overlap and each keeps its order. x86_64 only: wasm's softmax sums four partial sums.
#[cfg(target_arch = "x86_64")]
pub(crate) fn softmax_rows(scores: &mut [f32], stride: usize, visible: &[usize], width: usize) {
    const ROWS: usize = 8;
    for (r, &n) in visible.iter().enumerate() {
        let row = &mut scores[r * stride..][..width];
        if n > 0 {
            exp_minus_max(&mut row[..n]);
        }
        row[n..].fill(0.0);
    }
    for (g, group) in visible.chunks(ROWS).enumerate() {
        let row = |i: usize| &scores[(g * ROWS + i) * stride..][..width];
        // The zeros past a row's visible entries leave its sum's bits alone: the sum starts at +0
        // and every term is an exponential, never negative, so it is never -0.
        let mut sums = [0f32; ROWS];
        if group.len() == ROWS {
            let rows: [&[f32]; ROWS] = std::array::from_fn(row);
            for j in 0..width {
                for (s, row) in sums.iter_mut().zip(&rows) {
                    *s += row[j];
                }
            }
        } else {
            for (i, s) in sums.iter_mut().enumerate().take(group.len()) {
                *s = row(i).iter().sum();
            }
        }
        for (i, &n) in group.iter().enumerate() {
            // An empty row stays zeros, as softmax_in_place leaves it empty.
            if n > 0 {
                let inv = 1.0 / sums[i];
                scores[(g * ROWS + i) * stride..][..n].iter_mut().for_each(|x| *x *= inv);
            }
        }
    }
}

/// Exact-erf GELU, `0.5·x·(1 + erf(x/√2))`, for every element.
pub fn gelu(src: &[f32], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: both features were just detected.
            return unsafe { gelu_avx2(src, dst) };
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd128::gelu(src, dst);
    #[allow(unreachable_code)]
    dst.iter_mut().zip(src).for_each(|(d, &x)| *d = gelu_one(x));
}

/// [`gelu`] over `v` in place, with the same results: a small copy at a time feeds the two-slice
/// routine (the copy stays in L1).
pub fn gelu_in_place(v: &mut [f32]) {
    let mut src = [0f32; 256];
    for chunk in v.chunks_mut(src.len()) {
        let src = &mut src[..chunk.len()];
        src.copy_from_slice(chunk);
        gelu(src, chunk);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_avx2(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x = exp(*x));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gelu_avx2(src: &[f32], dst: &mut [f32]) {
    dst.iter_mut().zip(src).for_each(|(d, &x)| *d = gelu_one(x));
}

/// The same Cephes expf written with AVX-512 intrinsics: LLVM does not vectorise the scalar form
/// well (the clamp and flush), and softmax over 12 × 577 × 577 scores per layer is hot.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn exp16(x: __m512) -> __m512 {
        let flush = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(-87.336_54));
        let x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.336_54)), _mm512_set1_ps(88.7));
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(_mm512_fmadd_ps(
            x,
            _mm512_set1_ps(std::f32::consts::LOG2_E),
            _mm512_set1_ps(0.5),
        ));
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
        let r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.121_944_4e-4), r);
        let mut p = _mm512_set1_ps(1.987_569_1e-4);
        for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0));
        _mm512_maskz_mov_ps(!flush, _mm512_scalef_ps(y, n))
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn exp_in_place(v: &mut [f32]) {
        // SAFETY: the caller checked avx512f; every load and store stays inside `v` (the tail masked).
        unsafe {
            let mut chunks = v.chunks_exact_mut(16);
            for c in &mut chunks {
                _mm512_storeu_ps(c.as_mut_ptr(), exp16(_mm512_loadu_ps(c.as_ptr())));
            }
            let rest = chunks.into_remainder();
            let mask = ((1u32 << rest.len()) - 1) as u16;
            let x = _mm512_maskz_loadu_ps(mask, rest.as_ptr());
            _mm512_mask_storeu_ps(rest.as_mut_ptr(), mask, exp16(x));
        }
    }

    /// `e^(x - max)` in place: softmax's numerators.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn exp_minus_max(v: &mut [f32]) {
        // SAFETY: the caller checked avx512f; `p.add(i)` for i < full and the masked tail at `full` stay
        // inside `v`.
        unsafe {
            let n = v.len();
            let full = n / 16 * 16;
            let tail = ((1u32 << (n - full)) - 1) as u16;
            let p = v.as_mut_ptr();
            let mut vmax = _mm512_set1_ps(f32::NEG_INFINITY);
            for i in (0..full).step_by(16) {
                vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(p.add(i)));
            }
            vmax = _mm512_mask_max_ps(vmax, tail, vmax, _mm512_maskz_loadu_ps(tail, p.add(full)));
            let vmax = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
            for i in (0..full).step_by(16) {
                _mm512_storeu_ps(p.add(i), exp16(_mm512_sub_ps(_mm512_loadu_ps(p.add(i)), vmax)));
            }
            let e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, p.add(full)), vmax));
            _mm512_mask_storeu_ps(p.add(full), tail, e);
        }
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn softmax_in_place(v: &mut [f32]) {
        // SAFETY: the caller checked avx512f; `p.add(i)` for i < full and the masked tail at `full` stay
        // inside `v`.
        unsafe {
            exp_minus_max(v);
            let n = v.len();
            let full = n / 16 * 16;
            let tail = ((1u32 << (n - full)) - 1) as u16;
            let p = v.as_mut_ptr();
            // Summed in order, as the portable path sums: sixteen partial sums are faster, but
            // their rounding moved the CPU backend's results off those of AVX2 machines and of
            // the GPU backend (a near-tie among beams of a tiny random model flipped,
            // tests/gpu.rs `four_bit_models_caption_alike_on_cpu_and_gpu_in_every_case`).
            let inv = _mm512_set1_ps(1.0 / std::slice::from_raw_parts(p, n).iter().sum::<f32>());
            for i in (0..full).step_by(16) {
                _mm512_storeu_ps(p.add(i), _mm512_mul_ps(_mm512_loadu_ps(p.add(i)), inv));
            }
            _mm512_mask_storeu_ps(p.add(full), tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, p.add(full)), inv));
        }
    }
}

/// The scalar functions below on four lanes for wasm: LLVM leaves their loops scalar there (the
/// clamp, the flush and the float-to-int conversion do not vectorise), and GELU and softmax were a
/// fifth of a vision pass in the browser. Same operations in the same order as the scalar forms
/// (SIMD128 has no fused multiply-add), so every lane gives the scalar function's result exactly.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use core::arch::wasm32::*;

    #[inline(always)]
    fn splat(c: f32) -> v128 {
        f32x4_splat(c)
    }

    /// `x.clamp(lo, hi)` for non-NaN lanes; `pmin`/`pmax` are the single-instruction forms.
    #[inline(always)]
    fn clamp(x: v128, lo: f32, hi: f32) -> v128 {
        f32x4_pmin(splat(hi), f32x4_pmax(splat(lo), x))
    }

    #[inline(always)]
    fn exp4(x: v128) -> v128 {
        let underflow = f32x4_lt(x, splat(-87.336_54));
        let x = clamp(x, -87.336_54, 88.7);
        let n = f32x4_floor(f32x4_add(f32x4_mul(x, splat(std::f32::consts::LOG2_E)), splat(0.5)));
        let r = f32x4_add(f32x4_sub(x, f32x4_mul(n, splat(0.693_359_4))), f32x4_mul(n, splat(2.121_944_4e-4)));
        let mut p = f32x4_add(f32x4_mul(splat(1.987_569_1e-4), r), splat(1.398_199_9e-3));
        for c in [8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
            p = f32x4_add(f32x4_mul(p, r), splat(c));
        }
        let y = f32x4_add(f32x4_add(f32x4_mul(f32x4_mul(p, r), r), r), splat(1.0));
        let bits = i32x4_shl(i32x4_add(i32x4_trunc_sat_f32x4(n), i32x4_splat(127)), 23);
        v128_andnot(f32x4_mul(y, bits), underflow)
    }

    #[inline(always)]
    fn gelu4(x: v128) -> v128 {
        let e = clamp(f32x4_mul(x, splat(std::f32::consts::FRAC_1_SQRT_2)), -4.0, 4.0);
        let x2 = f32x4_mul(e, e);
        let mut p = f32x4_add(f32x4_mul(x2, splat(-2.726_142_3e-10)), splat(2.770_681_4e-8));
        for c in [-2.101_024e-6, -5.692_506_4e-5, -7.349_906_3e-4, -2.954_600_1e-3, -1.609_603_3e-2] {
            p = f32x4_add(f32x4_mul(x2, p), splat(c));
        }
        let mut q = f32x4_add(f32x4_mul(x2, splat(-1.456_607_2e-5)), splat(-2.133_740_6e-4));
        for c in [-1.682_827e-3, -7.373_329e-3, -1.426_474e-2] {
            q = f32x4_add(f32x4_mul(x2, q), splat(c));
        }
        let erf = f32x4_div(f32x4_mul(e, p), q);
        f32x4_mul(f32x4_mul(splat(0.5), x), f32x4_add(splat(1.0), erf))
    }

    pub fn exp_in_place(v: &mut [f32]) {
        let mut chunks = v.chunks_exact_mut(4);
        for c in &mut chunks {
            // SAFETY: four f32; wasm loads and stores need no alignment.
            unsafe { v128_store(c.as_mut_ptr().cast(), exp4(v128_load(c.as_ptr().cast()))) };
        }
        chunks.into_remainder().iter_mut().for_each(|x| *x = super::exp(*x));
    }

    pub fn gelu(src: &[f32], dst: &mut [f32]) {
        let (mut s, mut d) = (src.chunks_exact(4), dst.chunks_exact_mut(4));
        for (s, d) in (&mut s).zip(&mut d) {
            // SAFETY: four f32 each.
            unsafe { v128_store(d.as_mut_ptr().cast(), gelu4(v128_load(s.as_ptr().cast()))) };
        }
        d.into_remainder().iter_mut().zip(s.remainder()).for_each(|(d, &x)| *d = super::gelu_one(x));
    }

    pub fn softmax_in_place(v: &mut [f32]) {
        let (body, tail) = v.split_at_mut(v.len() / 4 * 4);
        let mut vmax = splat(f32::NEG_INFINITY);
        for c in body.chunks_exact(4) {
            // SAFETY: four f32.
            vmax = f32x4_pmax(vmax, unsafe { v128_load(c.as_ptr().cast()) });
        }
        let lanes = [
            f32x4_extract_lane::<0>(vmax),
            f32x4_extract_lane::<1>(vmax),
            f32x4_extract_lane::<2>(vmax),
            f32x4_extract_lane::<3>(vmax),
        ];
        let max = lanes.iter().chain(tail.iter()).fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        let (vmax, mut vsum) = (splat(max), splat(0.0));
        for c in body.chunks_exact_mut(4) {
            // SAFETY: four f32.
            unsafe {
                let e = exp4(f32x4_sub(v128_load(c.as_ptr().cast()), vmax));
                vsum = f32x4_add(vsum, e);
                v128_store(c.as_mut_ptr().cast(), e);
            }
        }
        let mut sum = (f32x4_extract_lane::<0>(vsum) + f32x4_extract_lane::<1>(vsum))
            + (f32x4_extract_lane::<2>(vsum) + f32x4_extract_lane::<3>(vsum));
        for x in tail.iter_mut() {
            *x = super::exp(*x - max);
            sum += *x;
        }
        let inv = splat(1.0 / sum);
        for c in body.chunks_exact_mut(4) {
            // SAFETY: four f32.
            unsafe { v128_store(c.as_mut_ptr().cast(), f32x4_mul(v128_load(c.as_ptr().cast()), inv)) };
        }
        let inv = 1.0 / sum;
        tail.iter_mut().for_each(|x| *x *= inv);
    }
}

#[inline(always)]
fn exp(x: f32) -> f32 {
    // Below ln(f32::MIN_POSITIVE) the result would be subnormal: flush to zero.
    let underflow = x < -87.336_54;
    let x = x.clamp(-87.336_54, 88.7);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 0.166_666_65) * r
        + 0.5;
    let y = p * r * r + r + 1.0;
    let scaled = y * f32::from_bits(((n as i32 + 127) as u32) << 23);
    if underflow {
        0.0
    } else {
        scaled
    }
}

#[inline(always)]
fn gelu_one(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// Rational approximation of erf on [-4, 4] (±1 beyond, as in f32), Eigen's `generic_fast_erf`.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p - 2.101_024e-6;
    p = x2 * p - 5.692_506_4e-5;
    p = x2 * p - 7.349_906_3e-4;
    p = x2 * p - 2.954_600_1e-3;
    p = x2 * p - 1.609_603_3e-2;
    let mut q = x2 * -1.456_607_2e-5 - 2.133_740_6e-4;
    q = x2 * q - 1.682_827e-3;
    q = x2 * q - 7.373_329e-3;
    q = x2 * q - 1.426_474e-2;
    x * p / q
}
