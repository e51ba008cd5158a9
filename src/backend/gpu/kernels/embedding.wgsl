// Rows of a table for each id (a gather), the table's format supplied by embedding_{f32,q8,q4}.wgsl
// as `lookup(e)`: element e of the row-major table, dequantized as gathered (a quantized table is
// never expanded). Ids past the table give zeros; the host checks its own ids.
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_group(wg, groups) * 256u + li;
    if (i >= p.count * p.cols) { return; }
    let id = ids[i / p.cols];
    var v = 0.0;
    if (id < p.rows) { v = lookup(id * p.cols + i % p.cols); }
    out[i] = v;
}
