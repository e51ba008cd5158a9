// C[z] = alpha · A[z] · B[z] (+ bias), any strides: linear layers with f32 weights (B = Wᵀ read in
// place), patch embedding, and attention's Q·Kᵀ and P·V per (batch, head) as z = b · heads + h.
// Tiles of 64×64 outputs, 4×4 per thread, K in steps of 16 through workgroup memory.
// Params: 0 M, 1 N, 2 K, 3 heads, 4 a_off, 5 a_rs, 6 a_cs, 7 a_batch, 8 a_head, 9 b_off, 10 b_rs,
// 11 b_cs, 12 b_batch, 13 b_head, 14 c_rs, 15 c_batch, 16 c_head, 17 alpha, 18 has_bias, 19 z0,
// 20 c_off. Offsets may wrap (u32 arithmetic) so that a chunk of z starts at index 0.
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;

var<workgroup> As: array<f32, 1024>; // [16 k][64 m]
var<workgroup> Bs: array<f32, 1024>; // [16 k][64 n]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let M = P(0u); let N = P(1u); let K = P(2u); let heads = P(3u);
    let z = wg.z + P(19u);
    let zb = z / heads; let zh = z % heads;
    let a_base = P(4u) + zb * P(7u) + zh * P(8u);
    let b_base = P(9u) + zb * P(12u) + zh * P(13u);
    let c_base = P(20u) + zb * P(15u) + zh * P(16u);
    let m0 = wg.y * 64u; let n0 = wg.x * 64u;
    var acc: array<array<f32, 4>, 4>;
    for (var k0 = 0u; k0 < K; k0 += 16u) {
        for (var t = 0u; t < 4u; t++) {
            let e = li + t * 256u;
            let mm = e / 16u; let kk = e % 16u;
            let gm = m0 + mm; let gk = k0 + kk;
            var v = 0.0;
            if (gm < M && gk < K) { v = A[a_base + gm * P(5u) + gk * P(6u)]; }
            As[kk * 64u + mm] = v;
            let kb = e / 64u; let nn = e % 64u;
            let gkb = k0 + kb; let gn = n0 + nn;
            var w = 0.0;
            if (gkb < K && gn < N) { w = B[b_base + gkb * P(10u) + gn * P(11u)]; }
            Bs[kb * 64u + nn] = w;
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
    let alpha = Pf(17u);
    for (var i = 0u; i < 4u; i++) {
        let gm = m0 + lid.y * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let gn = n0 + lid.x * 4u + j;
            if (gm < M && gn < N) {
                var v = acc[i][j] * alpha;
                if (P(18u) != 0u) { v += bias[gn]; }
                C[c_base + gm * P(14u) + gn] = v;
            }
        }
    }
}
