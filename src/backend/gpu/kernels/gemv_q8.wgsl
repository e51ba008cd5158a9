// Y = X · Wᵀ (+ bias) for up to 8 rows of X (decoder steps, beams) with W in Q8_0: each output
// column is one pass over its weight row, so the weights are read once per step. 4 columns per
// workgroup, 64 lanes per column, summed through workgroup memory (no subgroups needed).
// Params: 0 M (≤ 8), 1 N, 2 K, 3 has_bias.
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> Wq: array<u32>;
@group(0) @binding(3) var<storage, read> Ws: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> Y: array<f32>;

var<workgroup> red: array<f32, 2048>; // [8 rows][256 lanes]

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let M = P(0u); let N = P(1u); let K = P(2u);
    let lane = li % 64u;
    let n = flat_group(wg, groups) * 4u + li / 64u;
    let words = K / 4u;
    var acc: array<f32, 8>;
    if (n < N) {
        for (var w = lane; w < words; w += 64u) {
            let word = Wq[n * words + w];
            let block = (n * K + w * 4u) / 32u;
            let s = q8_scale(Ws[block / 2u], block);
            let q = vec4<f32>(q8_value(word, 0u), q8_value(word, 1u), q8_value(word, 2u), q8_value(word, 3u));
            for (var m = 0u; m < M; m++) {
                let x = m * K + w * 4u;
                acc[m] += s * dot(q, vec4<f32>(X[x], X[x + 1u], X[x + 2u], X[x + 3u]));
            }
        }
    }
    for (var m = 0u; m < M; m++) { red[m * 256u + li] = acc[m]; }
    workgroupBarrier();
    for (var span = 32u; span > 0u; span >>= 1u) {
        if (lane < span) {
            for (var m = 0u; m < M; m++) { red[m * 256u + li] += red[m * 256u + li + span]; }
        }
        workgroupBarrier();
    }
    if (lane == 0u && n < N) {
        for (var m = 0u; m < M; m++) {
            var v = red[m * 256u + li];
            if (P(3u) != 0u) { v += bias[n]; }
            Y[m * N + n] = v;
        }
    }
}
