// Y = gelu?(X · Wᵀ + bias) + residual for many rows of X (tiling: gemm_tile.wgsl), W in Q8_0
// (override Q8) dequantized once as it is staged, or f32 values read as u32 bits.
override Q8: bool = true;

@group(0) @binding(2) var<storage, read> Wq: array<u32>;

fn stage_x(k0: u32, sk: u32, sr: u32, xm: u32, x_row: u32) {
    let kb = k0 + sk;
    for (var j = 0u; j < 8u; j++) {
        var v = 0.0;
        if (xm < p.m && kb + j < p.k) { v = X[x_row + kb + j]; }
        put_a(sk + j, sr, v);
    }
}

fn stage_w(kb: u32, sk: u32, sr: u32, wn: u32, w_row: u32) {
    if (Q8) {
        // Two int8 words (8 values of one 32-block) and their scale.
        var w0 = vec4<f32>(); var w1 = vec4<f32>();
        if (wn < p.n) {
            let e = w_row + kb;
            let block = e / 32u;
            let s = q8_scale(Ws[block / 2u], block);
            w0 = s * q8_unpack(Wq[e / 4u]);
            w1 = s * q8_unpack(Wq[e / 4u + 1u]);
        }
        put_b8(sk, sr, w0, w1);
    } else {
        for (var j = 0u; j < 8u; j++) {
            var v = 0.0;
            if (wn < p.n && kb + j < p.k) { v = bitcast<f32>(Wq[w_row + kb + j]); }
            put_b(sk + j, sr, v);
        }
    }
}
