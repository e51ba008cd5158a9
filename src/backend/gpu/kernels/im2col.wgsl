// Pixels [c, h, w] → patch rows [(h/p)·(w/p), c·p·p] in the conv weight's (c, ky, kx) order, so
// the patch embedding is one GEMM.
@group(0) @binding(1) var<storage, read> px: array<f32>;
@group(0) @binding(2) var<storage, read_write> cols: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let width = p.c * p.p * p.p;
    let gw = p.w / p.p;
    let i = flat_group(wg, groups) * 256u + li;
    if (i >= (p.h / p.p) * gw * width) { return; }
    let row = i / width; let col = i % width;
    let gy = row / gw; let gx = row % gw;
    let ch = col / (p.p * p.p); let ky = (col / p.p) % p.p; let kx = col % p.p;
    cols[i] = px[ch * p.h * p.w + (gy * p.p + ky) * p.w + gx * p.p + kx];
}
