// Softmax of each score row in place, one row per workgroup. Rows are (batch·head, query); with
// causal masking query i sees keys up to offset + i, and the rest of its row becomes 0.
// Params: 0 rows, 1 sk, 2 sq, 3 causal, 4 offset (keys before the first query).
@group(0) @binding(1) var<storage, read_write> S: array<f32>;

var<workgroup> red: array<f32, 256>;

fn reduce(v: f32, li: u32, take_max: bool) -> f32 {
    red[li] = v;
    workgroupBarrier();
    for (var span = 128u; span > 0u; span >>= 1u) {
        if (li < span) {
            red[li] = select(red[li] + red[li + span], max(red[li], red[li + span]), take_max);
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row = flat_group(wg, groups);
    if (row >= P(0u)) { return; }
    let sk = P(1u);
    var visible = sk;
    if (P(3u) != 0u) { visible = min(sk, P(4u) + row % P(2u) + 1u); }
    let base = row * sk;
    var m = bitcast<f32>(0xff7fffffu); // -f32::MAX (Tint rejects the rounded decimal literal)
    for (var j = li; j < visible; j += 256u) { m = max(m, S[base + j]); }
    m = reduce(m, li, true);
    var s = 0.0;
    for (var j = li; j < visible; j += 256u) { s += exp(S[base + j] - m); }
    let inv = 1.0 / reduce(s, li, false);
    for (var j = li; j < sk; j += 256u) {
        S[base + j] = select(0.0, exp(S[base + j] - m) * inv, j < visible);
    }
}
