//! Vectorisable exp and erf-GELU for the CPU backend's hot loops (softmax over 577×577 scores per
//! head, GELU over 577×3072 per layer), where libm's scalar calls were a tenth of a vision pass.
//! Both stay within a few f32 ulps of the exact functions (checked against libm in the tests).

/// `e^x` for every element, in place. Cephes' expf: range reduction by ln 2, degree-6 polynomial,
/// scale by 2^n through the exponent bits.
pub fn exp_in_place(v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: both features were just detected.
            return unsafe { exp_avx2(v) };
        }
    }
    v.iter_mut().for_each(|x| *x = exp(*x));
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
    dst.iter_mut().zip(src).for_each(|(d, &x)| *d = gelu_one(x));
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
    if underflow { 0.0 } else { scaled }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm() {
        let xs: Vec<f32> = (-100_000..=8_000).map(|i| i as f32 * 1e-3).collect();
        let mut ys = xs.clone();
        exp_in_place(&mut ys);
        let mut worst = 0f64;
        for (&x, &y) in xs.iter().zip(&ys) {
            let e = (x as f64).exp();
            if e < f32::MIN_POSITIVE as f64 {
                // Subnormal results are flushed: zero (or the true tiny value) is right.
                assert!((y as f64) <= e.max(f32::MIN_POSITIVE as f64), "exp({x}) = {y}");
            } else {
                worst = worst.max(((y as f64 - e) / e).abs());
            }
        }
        assert!(worst < 4e-7, "relative error {worst}");
    }

    #[test]
    fn gelu_matches_libm_erf() {
        let xs: Vec<f32> = (-12_000..=12_000).map(|i| i as f32 * 1e-3).collect();
        let mut ys = vec![0.0; xs.len()];
        gelu(&xs, &mut ys);
        let worst = xs
            .iter()
            .zip(&ys)
            .map(|(&x, &y)| {
                let x = x as f64;
                (y as f64 - 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))).abs()
            })
            .fold(0.0, f64::max);
        assert!(worst < 2e-6, "absolute error {worst}");
    }
}
