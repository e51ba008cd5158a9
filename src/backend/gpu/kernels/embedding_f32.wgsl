// Rows of an f32 table for each id (ids past the table give zeros; the host checks its own).
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> W: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_group(wg, groups) * 256u + li;
    if (i >= p.count * p.cols) { return; }
    let id = ids[i / p.cols];
    var v = 0.0;
    if (id < p.rows) { v = W[id * p.cols + i % p.cols]; }
    out[i] = v;
}
