// Flash attention for many queries (the vision pass): one workgroup per (16 queries, head,
// batch) walks the keys 16 at a time with an online softmax, so no score matrix is ever stored.
// Q, K and V are read in place from views (the vision QKV output by stride). Four threads share a
// query, each holding 16 of its ≤ 64 dimensions in vec4 registers; their partial dot products
// meet in workgroup memory.
const BQ: u32 = 16u;
const BK: u32 = 16u;

@group(0) @binding(1) var<storage, read> Q: array<f32>;
@group(0) @binding(2) var<storage, read> K: array<f32>;
@group(0) @binding(3) var<storage, read> V: array<f32>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;

var<workgroup> Ks: array<vec4<f32>, 256>; // [BK keys][16 quads of dimensions]
var<workgroup> Vs: array<vec4<f32>, 256>;
var<workgroup> S: array<f32, 1024>; // [BQ queries][BK keys][4 partial sums]

fn q4(base: u32, dim: u32) -> vec4<f32> {
    var v = vec4<f32>();
    if (dim < p.d) { v.x = Q[base + dim]; }
    if (dim + 1u < p.d) { v.y = Q[base + dim + 1u]; }
    if (dim + 2u < p.d) { v.z = Q[base + dim + 2u]; }
    if (dim + 3u < p.d) { v.w = Q[base + dim + 3u]; }
    return v;
}
fn k4(base: u32, dim: u32) -> vec4<f32> {
    var v = vec4<f32>();
    if (dim < p.d) { v.x = K[base + dim]; }
    if (dim + 1u < p.d) { v.y = K[base + dim + 1u]; }
    if (dim + 2u < p.d) { v.z = K[base + dim + 2u]; }
    if (dim + 3u < p.d) { v.w = K[base + dim + 3u]; }
    return v;
}
fn v4(base: u32, dim: u32) -> vec4<f32> {
    var v = vec4<f32>();
    if (dim < p.d) { v.x = V[base + dim]; }
    if (dim + 1u < p.d) { v.y = V[base + dim + 1u]; }
    if (dim + 2u < p.d) { v.z = V[base + dim + 2u]; }
    if (dim + 3u < p.d) { v.w = V[base + dim + 3u]; }
    return v;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let b = wg.z; let h = wg.y;
    let qi = li / 4u; let sub = li % 4u;
    let i = wg.x * BQ + qi;
    let live = i < p.sq;
    let qbase = p.q_off + b * p.q_batch + min(i, p.sq - 1u) * p.q_stride + h * p.d;
    let d0 = sub * 16u;
    let qa = q4(qbase, d0); let qb = q4(qbase, d0 + 4u); let qc = q4(qbase, d0 + 8u); let qd = q4(qbase, d0 + 12u);
    let kbase = p.k_off + b * p.k_batch + h * p.d;
    let vbase = p.v_off + b * p.v_batch + h * p.d;
    // Causal: query i sees keys up to sk - sq + i.
    var last = p.sk - 1u;
    if (p.causal != 0u) { last = min(last, p.sk - p.sq + min(i, p.sq - 1u)); }
    var m = NEG_MAX;
    var l = 0.0;
    var o0 = vec4<f32>(); var o1 = vec4<f32>(); var o2 = vec4<f32>(); var o3 = vec4<f32>();
    for (var k0 = 0u; k0 < p.sk; k0 += BK) {
        for (var t = 0u; t < 4u; t++) {
            let e = li + t * 64u;
            let key = k0 + e / 16u;
            let dim = (e % 16u) * 4u;
            var kv = vec4<f32>();
            var vv = vec4<f32>();
            if (key < p.sk) {
                kv = k4(kbase + key * p.k_stride, dim);
                vv = v4(vbase + key * p.v_stride, dim);
            }
            Ks[e] = kv;
            Vs[e] = vv;
        }
        workgroupBarrier();
        for (var j = 0u; j < BK; j++) {
            let kq = j * 16u + sub * 4u;
            S[(qi * BK + j) * 4u + sub] = dot(qa, Ks[kq]) + dot(qb, Ks[kq + 1u]) + dot(qc, Ks[kq + 2u]) + dot(qd, Ks[kq + 3u]);
        }
        workgroupBarrier();
        var mx = m;
        for (var j = 0u; j < BK; j++) {
            let at = (qi * BK + j) * 4u;
            let s = (S[at] + S[at + 1u] + S[at + 2u] + S[at + 3u]) * p.scale;
            if (k0 + j <= last) { mx = max(mx, s); }
        }
        let corr = exp(m - mx);
        l *= corr; o0 *= corr; o1 *= corr; o2 *= corr; o3 *= corr;
        for (var j = 0u; j < BK; j++) {
            if (k0 + j <= last) {
                let at = (qi * BK + j) * 4u;
                let pj = exp((S[at] + S[at + 1u] + S[at + 2u] + S[at + 3u]) * p.scale - mx);
                l += pj;
                let vq = j * 16u + sub * 4u;
                o0 = fma(vec4<f32>(pj), Vs[vq], o0);
                o1 = fma(vec4<f32>(pj), Vs[vq + 1u], o1);
                o2 = fma(vec4<f32>(pj), Vs[vq + 2u], o2);
                o3 = fma(vec4<f32>(pj), Vs[vq + 3u], o3);
            }
        }
        m = mx;
        workgroupBarrier();
    }
    if (!live) { return; }
    let inv = 1.0 / l;
    let obase = (b * p.sq + i) * p.heads * p.d + h * p.d + d0;
    put4(obase, d0, o0 * inv); put4(obase + 4u, d0 + 4u, o1 * inv);
    put4(obase + 8u, d0 + 8u, o2 * inv); put4(obase + 12u, d0 + 12u, o3 * inv);
}

fn put4(at: u32, dim: u32, v: vec4<f32>) {
    if (dim < p.d) { O[at] = v.x; }
    if (dim + 1u < p.d) { O[at + 1u] = v.y; }
    if (dim + 2u < p.d) { O[at + 2u] = v.z; }
    if (dim + 3u < p.d) { O[at + 3u] = v.w; }
}
