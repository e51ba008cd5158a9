// Flash-decoding, second half: one workgroup per (query, head, batch) rescales every chunk's
// partial softmax to the global maximum and normalises. Thread t owns output dimension t.
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = wg.x; let h = wg.y; let b = wg.z;
    if (li >= p.d) { return; }
    let width = 2u + p.d;
    let base = ((b * p.heads + h) * p.sq + i) * p.splits * width;
    var m = NEG_MAX;
    for (var s = 0u; s < p.splits; s++) { m = max(m, part[base + s * width]); }
    var l = 0.0;
    var o = 0.0;
    for (var s = 0u; s < p.splits; s++) {
        let at = base + s * width;
        let w = select(0.0, exp(part[at] - m), part[at] > NEG_MAX);
        l = fma(part[at + 1u], w, l);
        o = fma(part[at + 2u + li], w, o);
    }
    O[(b * p.sq + i) * p.heads * p.d + h * p.d + li] = o / l;
}
