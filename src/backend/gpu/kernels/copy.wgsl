// A strided 3-D view copied into a contiguous run: column slices (narrow), the last position,
// KV-cache appends and beam reordering are all this.
// Params: 0 A, 1 B, 2 C (view dims), 3 src_off, 4 sa, 5 sb, 6 sc (strides), 7 dst_off.
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_group(wg, groups) * 256u + li;
    let B = P(1u); let C = P(2u);
    if (i >= P(0u) * B * C) { return; }
    let a = i / (B * C); let b = (i / C) % B; let c = i % C;
    dst[P(7u) + i] = src[P(3u) + a * P(4u) + b * P(5u) + c * P(6u)];
}
