// Image tokens: the class embedding, then the patch embeddings, plus position embeddings.
@group(0) @binding(1) var<storage, read> patches: array<f32>;
@group(0) @binding(2) var<storage, read> class_emb: array<f32>;
@group(0) @binding(3) var<storage, read> pos: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_group(wg, groups) * 256u + li;
    if (i >= (p.patches + 1u) * p.d) { return; }
    var v = class_emb[i % p.d];
    if (i >= p.d) { v = patches[i - p.d]; }
    out[i] = v + pos[i];
}
