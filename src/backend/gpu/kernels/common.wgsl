// Prepended to every kernel, after its generated `struct Params` (see params.rs). Each dispatch's
// parameters sit in a 256-byte slot of one uniform arena, bound with a dynamic offset: WebGPU has
// no push constants, and one uniform buffer per dispatch would mean thousands per caption.
@group(0) @binding(0) var<uniform> p: Params;

// 1-D work of more than 65535 workgroups is spread over y; this undoes that.
fn flat_group(wg: vec3<u32>, groups: vec3<u32>) -> u32 { return wg.y * groups.x + wg.x; }

// Q8_0 matrices are repacked as int8 words (four values to a u32) and f16 scale pairs (two
// blocks of 32 values to a u32, read with unpack2x16float: no f16 feature needed).
fn q8_scale(pair: u32, block: u32) -> f32 {
    let s = unpack2x16float(pair);
    return select(s.x, s.y, (block & 1u) == 1u);
}
// The four int8 values of a word, as f32.
fn q8_unpack(word: u32) -> vec4<f32> {
    let w = bitcast<i32>(word);
    return vec4<f32>(f32((w << 24u) >> 24u), f32((w << 16u) >> 24u), f32((w << 8u) >> 24u), f32(w >> 24u));
}

// The 4-bit linear kernels' formats (`WeightFormat` in mod.rs): Q4_0 or Q4_K, both repacked as
// eight values to a word in order with an f32 step and offset per 32 values.
const FMT_Q4_0: u32 = 2u;
const FMT_Q4: u32 = 3u;

// Values 0-3 and 4-7 of a word of eight 4-bit values.
fn q4_lo(word: u32) -> vec4<f32> {
    return vec4<f32>(f32(word & 15u), f32((word >> 4u) & 15u), f32((word >> 8u) & 15u), f32((word >> 12u) & 15u));
}
fn q4_hi(word: u32) -> vec4<f32> { return q4_lo(word >> 16u); }

// f32 → nearest f16 (ties to even) → f32, with integer operations only (pack2x16float leaves
// the rounding to the implementation). For the non-negative, finite scales of Q8_0 activation
// blocks, as the CPU stores them (half::f16::from_f32).
fn f16_round(x: f32) -> f32 {
    let b = bitcast<u32>(x);
    if ((b >> 23u) >= 113u) {
        // Normal f16 (2^-14 and up): keep 10 mantissa bits, rounding half to even.
        let r = b + 0xFFFu + ((b >> 13u) & 1u);
        return bitcast<f32>(r & 0xFFFFE000u);
    }
    // Subnormal f16: multiples of 2^-24 (the scaling is exact; round() is half to even).
    return round(x * 16777216.0) * 5.9604645e-8;
}

// Rounds half away from zero, as Rust's f32::round does.
fn round_away(v: f32) -> f32 {
    let t = trunc(v);
    return select(t, t + sign(v), abs(v - t) >= 0.5);
}

// Exact-erf GELU, 0.5 · x · (1 + erf(x / √2)). WGSL has no erf: the same rational approximation
// as the CPU backend (Eigen's, clamped to ±4 where erf is ±1 in f32).
fn erf_approx(v: f32) -> f32 {
    let x = clamp(v, -4.0, 4.0);
    let x2 = x * x;
    var a = x2 * -2.7261423e-10 + 2.7706815e-8;
    a = x2 * a - 2.101024e-6;
    a = x2 * a - 5.6925062e-5;
    a = x2 * a - 7.3499063e-4;
    a = x2 * a - 2.9546001e-3;
    a = x2 * a - 1.6096033e-2;
    var b = x2 * -1.4566071e-5 - 2.1337406e-4;
    b = x2 * b - 1.682827e-3;
    b = x2 * b - 7.373329e-3;
    b = x2 * b - 1.426474e-2;
    return x * a / b;
}
fn gelu(x: f32) -> f32 { return 0.5 * x * (1.0 + erf_approx(x * 0.70710678)); }

// Epilogue flags of `Linear` (params.rs `epilogue`).
const HAS_BIAS: u32 = 1u;
const HAS_GELU: u32 = 2u;
const HAS_RESIDUAL: u32 = 4u;

// Below any score (masked keys hold it); a plain literal, since naga cannot fold bitcast.
const NEG_MAX: f32 = -3.0e38;
