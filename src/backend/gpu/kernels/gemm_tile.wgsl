// The GEMM's tiling for many rows of X (the vision pass, the image's cross-attention K/V, long
// prompts), shared by gemm.wgsl (Q8_0 and f32 weights) and gemm_q4.wgsl (4-bit), which stage
// their operands through `stage_x` and `stage_w`. X is [M, K] (rows x_stride floats apart from
// x_off), W is [N, K].
//
// A workgroup of 128 threads computes a 64×64 tile of Y, each thread a 4×8 block held in eight
// vec4 registers (no arrays: compilers keep function-local arrays in memory, and browsers clamp
// every index into them). K advances 16 at a time through workgroup memory laid out [k][m] and
// [k][n] as vec4s, so the inner loop reads one vec4 of X and two of W per 32 FMAs. Staging
// writes run along m and n across a warp (no bank conflicts), and warps whose rows are all past
// M (the 577th row's tile) skip the arithmetic. Each thread stages 8 values of k of one row of
// the X tile and one row of the W tile.

var<workgroup> As: array<vec4<f32>, 256>; // [16 k][16 quads of m]
var<workgroup> Bs: array<vec4<f32>, 256>; // [16 k][16 quads of n]

fn put_a(k: u32, m: u32, v: f32) { As[k * 16u + m / 4u][m % 4u] = v; }
fn put_b(k: u32, n: u32, v: f32) { Bs[k * 16u + n / 4u][n % 4u] = v; }

// Eight consecutive values of k for W row n.
fn put_b8(k: u32, n: u32, w0: vec4<f32>, w1: vec4<f32>) {
    put_b(k, n, w0.x); put_b(k + 1u, n, w0.y); put_b(k + 2u, n, w0.z); put_b(k + 3u, n, w0.w);
    put_b(k + 4u, n, w1.x); put_b(k + 5u, n, w1.y); put_b(k + 6u, n, w1.z); put_b(k + 7u, n, w1.w);
}

fn store8(m: u32, n: u32, lo: vec4<f32>, hi: vec4<f32>) {
    store(m, n, lo.x); store(m, n + 1u, lo.y); store(m, n + 2u, lo.z); store(m, n + 3u, lo.w);
    store(m, n + 4u, hi.x); store(m, n + 5u, hi.y); store(m, n + 6u, hi.z); store(m, n + 7u, hi.w);
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let m0 = wg.y * 64u; let n0 = wg.x * 64u;
    // Compute layout: 8 threads across n (8 columns each), 16 down m (4 rows each).
    let tx = li % 8u; let ty = li / 8u;
    // Staging layout: thread li stages row (li % 64) of the X and W tiles, k half (li / 64).
    let sr = li % 64u; let sk = (li / 64u) * 8u;
    let live = m0 + ty * 4u < p.m;
    var c00 = vec4<f32>(); var c01 = vec4<f32>(); var c10 = vec4<f32>(); var c11 = vec4<f32>();
    var c20 = vec4<f32>(); var c21 = vec4<f32>(); var c30 = vec4<f32>(); var c31 = vec4<f32>();
    let xm = m0 + sr; let wn = n0 + sr;
    let x_row = p.x_off + min(xm, p.m - 1u) * p.x_stride;
    let w_row = min(wn, p.n - 1u) * p.k;
    for (var k0 = 0u; k0 < p.k; k0 += 16u) {
        stage_x(k0, sk, sr, xm, x_row);
        stage_w(k0 + sk, sk, sr, wn, w_row);
        workgroupBarrier();
        if (live) {
            for (var kk = 0u; kk < 16u; kk++) {
                let a = As[kk * 16u + ty];
                let b0 = Bs[kk * 16u + tx * 2u];
                let b1 = Bs[kk * 16u + tx * 2u + 1u];
                c00 = fma(vec4<f32>(a.x), b0, c00); c01 = fma(vec4<f32>(a.x), b1, c01);
                c10 = fma(vec4<f32>(a.y), b0, c10); c11 = fma(vec4<f32>(a.y), b1, c11);
                c20 = fma(vec4<f32>(a.z), b0, c20); c21 = fma(vec4<f32>(a.z), b1, c21);
                c30 = fma(vec4<f32>(a.w), b0, c30); c31 = fma(vec4<f32>(a.w), b1, c31);
            }
        }
        workgroupBarrier();
    }
    let m = m0 + ty * 4u; let n = n0 + tx * 8u;
    store8(m, n, c00, c01); store8(m + 1u, n, c10, c11); store8(m + 2u, n, c20, c21); store8(m + 3u, n, c30, c31);
}
