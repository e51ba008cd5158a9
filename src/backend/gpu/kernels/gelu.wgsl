// Y = gelu(X) elementwise.
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_group(wg, groups) * 256u + li;
    if (i >= p.n) { return; }
    Y[i] = gelu(X[i]);
}
