// GEMV (shared part: gemv_reduce.wgsl) with 4-bit W (Q4_0 or Q4_K, repacked: eight values to a
// word, an f32 step and offset per 32 values; see weights.rs): a lane reads a whole 32-value
// block (a vec4<u32>) a step. Activations meet the weights
// quantized as the CPU backend (candle, after ggml) quantizes them, so each block's integer sums
// are the CPU's: Q8_0 blocks of 32 for Q4_0 (override FMT = FMT_Q4_0), Q8_K blocks of 256 for
// Q4_K (FMT_Q4; their scales computed once per workgroup). A file of its own, so the int8 and
// f32 kernels stay as small as they were (shader compile time matters on phones and SwiftShader).
override FMT: u32 = FMT_Q4_0;

@group(0) @binding(2) var<storage, read> Wq: array<vec4<u32>>;

// Q8_K of each row's 256-blocks: 1/d and d ([row][block], up to 256 entries: the host checks).
var<workgroup> k_iscale: array<f32, 256>;
var<workgroup> k_d: array<f32, 256>;

// Four activations as Q8_0 quants (integers in f32; every partial sum of a block's products
// stays below 2^24, so the dot products are exact).
fn qx(x: vec4<f32>, id: f32) -> vec4<f32> {
    return vec4<f32>(round_away(x.x * id), round_away(x.y * id), round_away(x.z * id), round_away(x.w * id));
}

// Four activations as Q8_K quants.
fn qk(x: vec4<f32>, id: f32) -> vec4<f32> {
    return clamp(vec4<f32>(round_away(x.x * id), round_away(x.y * id), round_away(x.z * id), round_away(x.w * id)), vec4<f32>(-128.0), vec4<f32>(127.0));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let lane = li % LANES;
    let n = flat_group(wg, groups) * COLS + li / LANES;
    if (FMT == FMT_Q4) {
        // ggml's quantize_row_q8_K: the value of largest magnitude (the first, if tied) sets
        // iscale = -127 / max, and d = 1 / iscale.
        let nsb = p.k / 256u;
        if (li < ROWS * nsb) {
            let base = p.x_off + (li / nsb) * p.x_stride + (li % nsb) * 256u;
            var amax = 0.0; var mx = 0.0;
            for (var j = 0u; j < 256u; j++) {
                let v = X[base + j];
                if (amax < abs(v)) { amax = abs(v); mx = v; }
            }
            let iscale = select(-127.0 / mx, 0.0, amax == 0.0);
            k_iscale[li] = iscale;
            k_d[li] = select(1.0 / iscale, 0.0, amax == 0.0);
        }
        workgroupBarrier();
    }
    // Rows 0-3 in lo, 4-7 in hi: vectors, not an array, so they stay in registers.
    var lo = vec4<f32>();
    var hi = vec4<f32>();
    if (n < p.n) {
        {
            let blocks = p.k / 32u;
            for (var s = lane; s < blocks; s += LANES) {
                let q = Wq[(n * p.k) / 32u + s];
                let block = (n * p.k) / 32u + s;
                let step = bitcast<f32>(Ws[2u * block]);
                let offset = bitcast<f32>(Ws[2u * block + 1u]);
                let w0 = q4_lo(q.x); let w1 = q4_hi(q.x); let w2 = q4_lo(q.y); let w3 = q4_hi(q.y);
                let w4 = q4_lo(q.z); let w5 = q4_hi(q.z); let w6 = q4_lo(q.w); let w7 = q4_hi(q.w);
                for (var m = 0u; m < ROWS; m++) {
                    let kk = s * 32u;
                    let x0 = x4(m, kk); let x1 = x4(m, kk + 4u); let x2 = x4(m, kk + 8u); let x3 = x4(m, kk + 12u);
                    let x4_ = x4(m, kk + 16u); let x5 = x4(m, kk + 20u); let x6 = x4(m, kk + 24u); let x7 = x4(m, kk + 28u);
                    var v = 0.0;
                    if (FMT == FMT_Q4_0) {
                        // Q8_0 of the activations: d = amax / 127 (stored as f16), q = round(x / d).
                        let a = max(max(max(abs(x0), abs(x1)), max(abs(x2), abs(x3))), max(max(abs(x4_), abs(x5)), max(abs(x6), abs(x7))));
                        let d = max(max(a.x, a.y), max(a.z, a.w)) / 127.0;
                        let id = select(0.0, 1.0 / d, d != 0.0);
                        let e8 = vec4<f32>(8.0);
                        let sumi = dot(w0 - e8, qx(x0, id)) + dot(w1 - e8, qx(x1, id)) + dot(w2 - e8, qx(x2, id)) + dot(w3 - e8, qx(x3, id))
                            + dot(w4 - e8, qx(x4_, id)) + dot(w5 - e8, qx(x5, id)) + dot(w6 - e8, qx(x6, id)) + dot(w7 - e8, qx(x7, id));
                        v = (step * f16_round(d)) * sumi;
                    } else {
                        let e = m * (p.k / 256u) + s / 8u;
                        let id = k_iscale[e];
                        let q0 = qk(x0, id); let q1 = qk(x1, id); let q2 = qk(x2, id); let q3 = qk(x3, id);
                        let q4 = qk(x4_, id); let q5 = qk(x5, id); let q6 = qk(x6, id); let q7 = qk(x7, id);
                        let sq = dot(w0, q0) + dot(w1, q1) + dot(w2, q2) + dot(w3, q3) + dot(w4, q4) + dot(w5, q5) + dot(w6, q6) + dot(w7, q7);
                        let sx = dot(q0 + q1 + q2 + q3 + q4 + q5 + q6 + q7, vec4<f32>(1.0));
                        v = (step * k_d[e]) * sq + (offset * k_d[e]) * sx;
                    }
                    if (m < 4u) { lo[m] += v; } else { hi[m - 4u] += v; }
                }
            }
        }
    }
    reduce_store(li, lane, n, lo, hi);
}
