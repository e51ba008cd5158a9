// Index of the largest logit per row, ties to the lowest index (as torch.argmax), never the
// suppressed id: the next token, written where the next step's embedding lookup reads it.
@group(0) @binding(1) var<storage, read> L: array<f32>;
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;

const NONE: u32 = 0xffffffffu;
var<workgroup> best_v: array<f32, 256>;
var<workgroup> best_i: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row = flat_group(wg, groups);
    if (row >= p.rows) { return; }
    let v = p.vocab;
    var bv = 0.0;
    var bi = NONE;
    for (var j = li; j < v; j += 256u) {
        let x = L[row * v + j];
        if (j != p.suppress && (bi == NONE || x > bv)) { bv = x; bi = j; }
    }
    best_v[li] = bv;
    best_i[li] = bi;
    workgroupBarrier();
    for (var span = 128u; span > 0u; span >>= 1u) {
        if (li < span) {
            let ov = best_v[li + span];
            let oi = best_i[li + span];
            let mine = best_i[li];
            if (oi != NONE && (mine == NONE || ov > best_v[li] || (ov == best_v[li] && oi < mine))) {
                best_v[li] = ov;
                best_i[li] = oi;
            }
        }
        workgroupBarrier();
    }
    if (li == 0u) { ids[row] = select(best_i[0], 0u, best_i[0] == NONE); }
}
