// A strided 3-D view copied into a contiguous run: dense copies of column views, the last
// position of a prefix, and beam reordering of caches.
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_group(wg, groups) * 256u + li;
    if (i >= p.a * p.b * p.c) { return; }
    let a = i / (p.b * p.c); let b = (i / p.c) % p.b; let c = i % p.c;
    dst[p.dst_off + i] = src[p.src_off + a * p.sa + b * p.sb + c * p.sc];
}
