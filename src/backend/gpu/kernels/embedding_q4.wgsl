// Rows of a 4-bit table (Q4_0 or Q4_K, repacked: eight values to a word, an f32 step and offset
// per 32 values) for each id, dequantized as gathered. Ids past the table give zeros.
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
        let q = f32((Wq[e / 8u] >> (4u * (e % 8u))) & 15u);
        let block = e / 32u;
        v = bitcast<f32>(Ws[2u * block]) * q + bitcast<f32>(Ws[2u * block + 1u]);
    }
    out[i] = v;
}
