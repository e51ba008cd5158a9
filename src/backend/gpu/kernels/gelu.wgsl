// Exact-erf GELU, 0.5 · x · (1 + erf(x / √2)). WGSL has no erf: the same rational approximation
// as the CPU backend (Eigen's, clamped to ±4 where erf is ±1 in f32).
// Params: 0 n.
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;

fn erf(v: f32) -> f32 {
    let x = clamp(v, -4.0, 4.0);
    let x2 = x * x;
    var p = x2 * -2.7261423e-10 + 2.7706815e-8;
    p = x2 * p - 2.101024e-6;
    p = x2 * p - 5.6925062e-5;
    p = x2 * p - 7.3499063e-4;
    p = x2 * p - 2.9546001e-3;
    p = x2 * p - 1.6096033e-2;
    var q = x2 * -1.4566071e-5 - 2.1337406e-4;
    q = x2 * q - 1.682827e-3;
    q = x2 * q - 7.373329e-3;
    q = x2 * q - 1.426474e-2;
    return x * p / q;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_group(wg, groups) * 256u + li;
    if (i >= P(0u)) { return; }
    let x = X[i];
    Y[i] = 0.5 * x * (1.0 + erf(x * 0.70710678));
}
