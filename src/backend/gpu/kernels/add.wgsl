// Y = A + B with B repeated over A (a bias row, or batch 1 broadcast over beams).
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_group(wg, groups) * 256u + li;
    if (i >= p.n) { return; }
    Y[i] = A[i] + B[i % p.b_len];
}
