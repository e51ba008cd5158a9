// Flash-decoding, first half: for ≤ 8 queries (decoder steps, beams) the keys are split into
// chunks of 64, one workgroup per (chunk, head, batch), so the 577 image keys of a cross-attention
// occupy many workgroups instead of one. Each writes, per query, its chunk's max score, sum of
// exponentials and unnormalised output; attention_merge.wgsl combines them.
// Partials: [batch][head][query][split][2 + d].
@group(0) @binding(1) var<storage, read> Q: array<f32>;
@group(0) @binding(2) var<storage, read> K: array<f32>;
@group(0) @binding(3) var<storage, read> V: array<f32>;
@group(0) @binding(4) var<storage, read_write> part: array<f32>;

var<workgroup> Qs: array<f32, 512>; // [8 queries][64 dims]
var<workgroup> P: array<f32, 512>;  // [8 queries][64 keys]: scores, then exponentials
var<workgroup> stat: array<f32, 16>; // [8 queries][max, sum]

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let split = wg.x; let h = wg.y; let b = wg.z;
    for (var e = li; e < p.sq * 64u; e += 64u) {
        let i = e / 64u; let dim = e % 64u;
        var v = 0.0;
        if (dim < p.d) { v = Q[p.q_off + b * p.q_batch + i * p.q_stride + h * p.d + dim]; }
        Qs[e] = v;
    }
    workgroupBarrier();
    // Thread li scores key j against every query.
    let j = split * p.chunk + li;
    let kbase = p.k_off + b * p.k_batch + min(j, p.sk - 1u) * p.k_stride + h * p.d;
    for (var i = 0u; i < p.sq; i++) {
        var visible = j < p.sk;
        if (p.causal != 0u) { visible = visible && j <= p.sk - p.sq + i; }
        var s = NEG_MAX;
        if (visible) {
            var acc = 0.0;
            for (var dim = 0u; dim < p.d; dim++) { acc = fma(Qs[i * 64u + dim], K[kbase + dim], acc); }
            s = acc * p.scale;
        }
        P[i * 64u + li] = s;
    }
    workgroupBarrier();
    if (li < p.sq) {
        var m = NEG_MAX;
        for (var t = 0u; t < 64u; t++) { m = max(m, P[li * 64u + t]); }
        var l = 0.0;
        for (var t = 0u; t < 64u; t++) {
            let s = P[li * 64u + t];
            if (s > NEG_MAX) { l += exp(s - m); }
        }
        stat[li * 2u] = m;
        stat[li * 2u + 1u] = l;
    }
    workgroupBarrier();
    for (var i = 0u; i < p.sq; i++) {
        let s = P[i * 64u + li];
        P[i * 64u + li] = select(0.0, exp(s - stat[i * 2u]), s > NEG_MAX);
    }
    workgroupBarrier();
    // Thread li now owns output dimension li.
    let width = 2u + p.d;
    let keys = min(p.chunk, p.sk - min(p.sk, split * p.chunk));
    let vbase = p.v_off + b * p.v_batch + split * p.chunk * p.v_stride + h * p.d + li;
    for (var i = 0u; i < p.sq; i++) {
        let at = (((b * p.heads + h) * p.sq + i) * p.splits + split) * width;
        if (li < p.d) {
            var o = 0.0;
            for (var t = 0u; t < keys; t++) { o = fma(P[i * 64u + t], V[vbase + t * p.v_stride], o); }
            part[at + 2u + li] = o;
        }
        if (li == 0u) {
            part[at] = stat[i * 2u];
            part[at + 1u] = stat[i * 2u + 1u];
        }
    }
}
