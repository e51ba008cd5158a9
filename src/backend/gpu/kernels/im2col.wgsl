// Pixels [c, h, w] → patch rows [(h/p)·(w/p), c·p·p] in the conv weight's (c, ky, kx) order, so the
// patch embedding is one GEMM.
// Params: 0 c, 1 h, 2 w, 3 p.
@group(0) @binding(1) var<storage, read> px: array<f32>;
@group(0) @binding(2) var<storage, read_write> cols: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let c = P(0u); let h = P(1u); let w = P(2u); let p = P(3u);
    let width = c * p * p;
    let gw = w / p;
    let i = flat_group(wg, groups) * 256u + li;
    if (i >= (h / p) * gw * width) { return; }
    let row = i / width; let col = i % width;
    let gy = row / gw; let gx = row % gw;
    let ch = col / (p * p); let ky = (col / p) % p; let kx = col % p;
    cols[i] = px[ch * h * w + (gy * p + ky) * w + gx * p + kx];
}
