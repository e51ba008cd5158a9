// Rows of an f32 table for each id. Params: 0 ids, 1 cols, 2 rows.
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> W: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let cols = P(1u);
    let i = flat_group(wg, groups) * 256u + li;
    if (i >= P(0u) * cols) { return; }
    let id = ids[i / cols];
    var v = 0.0;
    if (id < P(2u)) { v = W[id * cols + i % cols]; }
    out[i] = v;
}
