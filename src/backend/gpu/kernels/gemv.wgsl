// GEMV (shared part: gemv_reduce.wgsl) with Q8_0 weights (override Q8: lanes read 16 int8
// weights, a vec4<u32>, at a time, so a 768-wide row is three loads per lane) or f32 ones.
override Q8: bool = true;

@group(0) @binding(2) var<storage, read> Wq: array<vec4<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let lane = li % LANES;
    let n = flat_group(wg, groups) * COLS + li / LANES;
    // Rows 0-3 in lo, 4-7 in hi: vectors, not an array, so they stay in registers.
    var lo = vec4<f32>();
    var hi = vec4<f32>();
    if (n < p.n) {
        if (Q8) {
            // 16 values per step: a vec4<u32> of quants, half a Q8_0 block (one scale).
            let steps = p.k / 16u;
            for (var s = lane; s < steps; s += LANES) {
                let q = Wq[(n * p.k) / 16u + s];
                let block = (n * p.k + s * 16u) / 32u;
                let sc = q8_scale(Ws[block / 2u], block);
                let w0 = q8_unpack(q.x); let w1 = q8_unpack(q.y); let w2 = q8_unpack(q.z); let w3 = q8_unpack(q.w);
                for (var m = 0u; m < ROWS; m++) {
                    let kk = s * 16u;
                    let v = sc * (dot(w0, x4(m, kk)) + dot(w1, x4(m, kk + 4u)) + dot(w2, x4(m, kk + 8u)) + dot(w3, x4(m, kk + 12u)));
                    if (m < 4u) { lo[m] += v; } else { hi[m - 4u] += v; }
                }
            }
        } else {
            // f32 weights (test models, f16 files widened): one value of the row per lane step.
            for (var kk = lane; kk < p.k; kk += LANES) {
                let e = n * p.k + kk;
                let w = bitcast<f32>(Wq[e / 4u][e % 4u]);
                for (var m = 0u; m < ROWS; m++) {
                    let v = w * X[p.x_off + m * p.x_stride + kk];
                    if (m < 4u) { lo[m] += v; } else { hi[m - 4u] += v; }
                }
            }
        }
    }
    reduce_store(li, lane, n, lo, hi);
}
