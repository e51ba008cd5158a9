// Rows of a Q8_0 table for each id, dequantized as gathered (the table is never expanded).
// Ids past the table give zeros; the host checks its own ids.
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> Wq: array<u32>;
@group(0) @binding(3) var<storage, read> Ws: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_group(wg, groups) * 256u + li;
    if (i >= p.count * p.cols) { return; }
    let id = ids[i / p.cols];
    var v = 0.0;
    if (id < p.rows) {
        let e = id * p.cols + i % p.cols;
        let block = e / 32u;
        v = q8_scale(Ws[block / 2u], block) * q8_unpack(Wq[e / 4u])[e % 4u];
    }
    out[i] = v;
}
