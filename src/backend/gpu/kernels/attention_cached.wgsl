// The decoder's self-attention over its cache, one workgroup per (head, batch): the new
// positions' keys and values are copied from the fused QKV projection into the cache (written in
// place: no per-step reallocation), then each new query attends causally to every cached
// position. Cache: [batch][2][heads][capacity][d]; qkv: [batch, s, 3·heads·d].
const MAX_KEYS: u32 = 1024u;

@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> cache: array<f32>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;

var<workgroup> Qs: array<f32, 64>;
var<workgroup> Sc: array<f32, MAX_KEYS>;
var<workgroup> stat: array<f32, 2>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let h = wg.x; let b = wg.y;
    let width = p.heads * p.d;
    let kc = ((b * 2u) * p.heads + h) * p.capacity * p.d;
    let vc = ((b * 2u + 1u) * p.heads + h) * p.capacity * p.d;
    for (var e = li; e < p.s * p.d; e += 64u) {
        let i = e / p.d; let dim = e % p.d;
        let row = (b * p.s + i) * 3u * width + h * p.d + dim;
        cache[kc + (p.len + i) * p.d + dim] = qkv[row + width];
        cache[vc + (p.len + i) * p.d + dim] = qkv[row + 2u * width];
    }
    storageBarrier();
    workgroupBarrier();
    for (var i = 0u; i < p.s; i++) {
        let row = (b * p.s + i) * 3u * width + h * p.d;
        if (li < p.d) { Qs[li] = qkv[row + li]; }
        workgroupBarrier();
        let keys = min(p.len + i + 1u, MAX_KEYS);
        for (var j = li; j < keys; j += 64u) {
            var acc = 0.0;
            for (var dim = 0u; dim < p.d; dim++) { acc = fma(Qs[dim], cache[kc + j * p.d + dim], acc); }
            Sc[j] = acc * p.scale;
        }
        workgroupBarrier();
        if (li == 0u) {
            var m = NEG_MAX;
            for (var j = 0u; j < keys; j++) { m = max(m, Sc[j]); }
            var l = 0.0;
            for (var j = 0u; j < keys; j++) { l += exp(Sc[j] - m); }
            stat[0] = m;
            stat[1] = l;
        }
        workgroupBarrier();
        if (li < p.d) {
            var o = 0.0;
            for (var j = 0u; j < keys; j++) { o = fma(exp(Sc[j] - stat[0]), cache[vc + j * p.d + li], o); }
            O[(b * p.s + i) * width + h * p.d + li] = o / stat[1];
        }
        workgroupBarrier();
    }
}
