// Y = gelu?(X · Wᵀ + bias) + residual for many rows of X (tiling: gemm_tile.wgsl) with 4-bit W
// (Q4_0 or Q4_K, repacked as in gemv_q4.wgsl), dequantized as it is staged; X is quantized as it
// is staged, as the CPU backend quantizes it against these weights (see `stage_x`). A file of
// its own, so the int8 and f32 GEMM stays as small as it was.
override FMT: u32 = FMT_Q4_0;

@group(0) @binding(2) var<storage, read> Wq: array<u32>;

// This thread's X row's current activation block: its scale and inverse scale.
var<private> xd: f32;
var<private> xid: f32;

fn stage_x(k0: u32, sk: u32, sr: u32, xm: u32, x_row: u32) {
    // X is quantized as the CPU backend quantizes it against these weights (Q4_0: 32-blocks,
    // d = amax / 127, in our int8 GEMM from 16 rows on (f32 d, ties to even), in candle's Q8_0
    // below (f16 d, ties away from zero); Q4_K: candle's Q8_K, 256-blocks, d = max / -127 of the
    // signed largest, ties away from zero) and staged as q · d, so both backends multiply the
    // same activations and near-tied logits break alike. The scale is found when a block starts
    // (k0 steps by 16 inside blocks).
    let kb = k0 + sk;
    let qb = select(256u, 32u, FMT == FMT_Q4_0);
    let int8_gemm = FMT == FMT_Q4_0 && p.m >= 16u;
    if (k0 % qb == 0u && xm < p.m) {
        var amax = 0.0; var mx = 0.0;
        for (var j = 0u; j < qb; j++) {
            let v = X[x_row + k0 + j];
            if (amax < abs(v)) { amax = abs(v); mx = v; }
        }
        if (FMT == FMT_Q4_0) {
            let d = amax / 127.0;
            xid = select(0.0, 1.0 / d, d > 0.0);
            xd = select(f16_round(d), d, int8_gemm);
        } else {
            xid = select(-127.0 / mx, 0.0, amax == 0.0);
            xd = select(1.0 / xid, 0.0, amax == 0.0);
        }
    }
    for (var j = 0u; j < 8u; j++) {
        var v = 0.0;
        if (xm < p.m) {
            let t = X[x_row + kb + j] * xid;
            if (int8_gemm) { v = clamp(round(t), -127.0, 127.0) * xd; }
            else { v = clamp(round_away(t), -128.0, 127.0) * xd; }
        }
        put_a(sk + j, sr, v);
    }
}

fn stage_w(kb: u32, sk: u32, sr: u32, wn: u32, w_row: u32) {
    // One word: 8 values of one 32-block, and its step and offset.
    var w0 = vec4<f32>(); var w1 = vec4<f32>();
    if (wn < p.n) {
        let e = w_row + kb;
        let block = e / 32u;
        let step = bitcast<f32>(Ws[2u * block]);
        let offset = vec4<f32>(bitcast<f32>(Ws[2u * block + 1u]));
        let word = Wq[e / 8u];
        w0 = step * q4_lo(word) + offset;
        w1 = step * q4_hi(word) + offset;
    }
    put_b8(sk, sr, w0, w1);
}
