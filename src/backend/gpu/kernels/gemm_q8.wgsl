// Y = X · Wᵀ (+ bias) with W in Q8_0, dequantized as it is staged into workgroup memory: the
// vision pass's 577-row products. X is [M, K] row-major, W is [N, K] (K a multiple of 32).
// Tiles of 64×64 outputs, 4×4 per thread, K in steps of 16 (one int8 word per thread per step).
// Params: 0 M, 1 N, 2 K, 3 has_bias.
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> Wq: array<u32>;
@group(0) @binding(3) var<storage, read> Ws: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> Y: array<f32>;

var<workgroup> As: array<f32, 1024>; // [16 k][64 m]
var<workgroup> Bs: array<f32, 1024>; // [16 k][64 n]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let M = P(0u); let N = P(1u); let K = P(2u);
    let m0 = wg.y * 64u; let n0 = wg.x * 64u;
    var acc: array<array<f32, 4>, 4>;
    for (var k0 = 0u; k0 < K; k0 += 16u) {
        for (var t = 0u; t < 4u; t++) {
            let e = li + t * 256u;
            let mm = e / 16u; let kk = e % 16u;
            let gm = m0 + mm;
            var v = 0.0;
            if (gm < M) { v = X[gm * K + k0 + kk]; }
            As[kk * 64u + mm] = v;
        }
        // Thread li stages word (li % 4) of row n0 + li / 4: 4 consecutive k of one output.
        let nn = li / 4u; let w = li % 4u;
        let gn = n0 + nn;
        if (gn < N) {
            let first = gn * K + k0 + w * 4u;
            let word = Wq[first / 4u];
            let block = first / 32u;
            let s = q8_scale(Ws[block / 2u], block);
            for (var b = 0u; b < 4u; b++) { Bs[(w * 4u + b) * 64u + nn] = s * q8_value(word, b); }
        } else {
            for (var b = 0u; b < 4u; b++) { Bs[(w * 4u + b) * 64u + nn] = 0.0; }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                a[i] = As[kk * 64u + lid.y * 4u + i];
                b[i] = Bs[kk * 64u + lid.x * 4u + i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let gm = m0 + lid.y * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let gn = n0 + lid.x * 4u + j;
            if (gm < M && gn < N) {
                var v = acc[i][j];
                if (P(3u) != 0u) { v += bias[gn]; }
                Y[gm * N + gn] = v;
            }
        }
    }
}
