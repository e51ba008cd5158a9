// Y = gelu?(X · Wᵀ + bias) + residual for ROWS ≤ 8 rows of X (decoder steps, beams): each
// output column is one pass over its weight row, so the weights are read once per step. COLS
// columns per workgroup, LANES lanes per column; Q8_0 lanes read 16 int8 weights (a vec4<u32>)
// at a time, so a 768-wide row is three loads per lane. Partial sums meet in workgroup memory
// (no subgroups needed, so every adapter runs it).
override ROWS: u32 = 1u;
override Q8: bool = true;
const COLS: u32 = 16u;
const LANES: u32 = 16u;

@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> Wq: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> Ws: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> residual: array<f32>;
@group(0) @binding(6) var<storage, read_write> Y: array<f32>;

var<workgroup> red: array<f32, 2048>; // [8 rows][256 lanes]

fn x4(m: u32, kk: u32) -> vec4<f32> {
    let b = p.x_off + m * p.x_stride + kk;
    return vec4<f32>(X[b], X[b + 1u], X[b + 2u], X[b + 3u]);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let lane = li % LANES;
    let n = flat_group(wg, groups) * COLS + li / LANES;
    // Rows 0-3 in lo, 4-7 in hi: vectors, not an array, so they stay in registers.
    var lo = vec4<f32>();
    var hi = vec4<f32>();
    if (n < p.n) {
        if (Q8) {
            // 16 values per step: a vec4<u32> of quants, half a Q8_0 block (one scale).
            let steps = p.k / 16u;
            for (var s = lane; s < steps; s += LANES) {
                let q = Wq[(n * p.k) / 16u + s];
                let block = (n * p.k + s * 16u) / 32u;
                let sc = q8_scale(Ws[block / 2u], block);
                let w0 = q8_unpack(q.x); let w1 = q8_unpack(q.y); let w2 = q8_unpack(q.z); let w3 = q8_unpack(q.w);
                for (var m = 0u; m < ROWS; m++) {
                    let kk = s * 16u;
                    let v = sc * (dot(w0, x4(m, kk)) + dot(w1, x4(m, kk + 4u)) + dot(w2, x4(m, kk + 8u)) + dot(w3, x4(m, kk + 12u)));
                    if (m < 4u) { lo[m] += v; } else { hi[m - 4u] += v; }
                }
            }
        } else {
            // f32 weights (test models, f16 files widened): one value of the row per lane step.
            for (var kk = lane; kk < p.k; kk += LANES) {
                let e = n * p.k + kk;
                let w = bitcast<f32>(Wq[e / 4u][e % 4u]);
                for (var m = 0u; m < ROWS; m++) {
                    let v = w * X[p.x_off + m * p.x_stride + kk];
                    if (m < 4u) { lo[m] += v; } else { hi[m - 4u] += v; }
                }
            }
        }
    }
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
    if (lane == 0u && n < p.n) {
        for (var m = 0u; m < ROWS; m++) {
            var y = red[m * 256u + li];
            if ((p.flags & HAS_BIAS) != 0u) { y += bias[n]; }
            if ((p.flags & HAS_GELU) != 0u) { y = gelu(y); }
            if ((p.flags & HAS_RESIDUAL) != 0u) { y += residual[m * p.n + n]; }
            Y[m * p.n + n] = y;
        }
    }
}
