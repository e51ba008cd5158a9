// What the GEMVs (gemv.wgsl, gemv_q4.wgsl) share: Y = gelu?(X · Wᵀ + bias) + residual for
// ROWS ≤ 8 rows of X (decoder steps, beams), each output column one pass over its weight row,
// so the weights are read once per step. COLS columns per workgroup, LANES lanes per column;
// the lanes' partial sums meet in workgroup memory (no subgroups needed, so every adapter runs
// it).
override ROWS: u32 = 1u;
const COLS: u32 = 16u;
const LANES: u32 = 16u;

var<workgroup> red: array<f32, 2048>; // [8 rows][256 lanes]

fn x4(m: u32, kk: u32) -> vec4<f32> {
    let b = p.x_off + m * p.x_stride + kk;
    return vec4<f32>(X[b], X[b + 1u], X[b + 2u], X[b + 3u]);
}

// Sums column n's LANES partial sums (rows 0-3 in lo, 4-7 in hi: vectors, not an array, so they
// stay in registers) and stores its outputs. Every invocation calls it (it has barriers).
fn reduce_store(li: u32, lane: u32, n: u32, lo: vec4<f32>, hi: vec4<f32>) {
    for (var m = 0u; m < ROWS; m++) {
        red[m * 256u + li] = select(hi[m % 4u], lo[m % 4u], m < 4u);
    }
    workgroupBarrier();
    for (var span = LANES / 2u; span > 0u; span >>= 1u) {
        if (lane < span) {
            for (var m = 0u; m < ROWS; m++) { red[m * 256u + li] += red[m * 256u + li + span]; }
        }
        workgroupBarrier();
    }
    if (lane == 0u) {
        for (var m = 0u; m < ROWS; m++) { store(m, n, red[m * 256u + li]); }
    }
}
