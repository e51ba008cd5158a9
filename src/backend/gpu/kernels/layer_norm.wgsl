// One row per workgroup: mean, then the variance of the deviations (two passes, as stable as
// torch's), then (x - mean) / sqrt(var + eps) · gamma + beta.
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;

var<workgroup> red: array<f32, 256>;

fn sum_all(v: f32, li: u32) -> f32 {
    red[li] = v;
    workgroupBarrier();
    for (var span = 128u; span > 0u; span >>= 1u) {
        if (li < span) { red[li] += red[li + span]; }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row = flat_group(wg, groups);
    if (row >= p.rows) { return; }
    let n = p.n;
    let base = row * n;
    var s = 0.0;
    for (var i = li; i < n; i += 256u) { s += X[base + i]; }
    let mean = sum_all(s, li) / f32(n);
    var q = 0.0;
    for (var i = li; i < n; i += 256u) { let d = X[base + i] - mean; q += d * d; }
    let inv = inverseSqrt(sum_all(q, li) / f32(n) + p.eps);
    for (var i = li; i < n; i += 256u) { Y[base + i] = (X[base + i] - mean) * inv * gamma[i] + beta[i]; }
}
