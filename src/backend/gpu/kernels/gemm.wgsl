// Y = gelu?(X · Wᵀ + bias) + residual for many rows of X (the vision pass, the image's
// cross-attention K/V, long prompts). X is [M, K] (rows x_stride floats apart from x_off), W is
// [N, K]: Q8_0 (override Q8) dequantized once as it is staged, or f32 values read as u32 bits.
//
// A workgroup of 128 threads computes a 64×64 tile of Y, each thread a 4×8 block held in eight
// vec4 registers (no arrays: compilers keep function-local arrays in memory, and browsers clamp
// every index into them). K advances 16 at a time through workgroup memory laid out [k][m] and
// [k][n] as vec4s, so the inner loop reads one vec4 of X and two of W per 32 FMAs. Staging
// writes run along m and n across a warp (no bank conflicts), and warps whose rows are all past
// M (the 577th row's tile) skip the arithmetic.
override Q8: bool = true;

@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> Wq: array<u32>;
@group(0) @binding(3) var<storage, read> Ws: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> residual: array<f32>;
@group(0) @binding(6) var<storage, read_write> Y: array<f32>;

var<workgroup> As: array<vec4<f32>, 256>; // [16 k][16 quads of m]
var<workgroup> Bs: array<vec4<f32>, 256>; // [16 k][16 quads of n]

fn put_a(k: u32, m: u32, v: f32) { As[k * 16u + m / 4u][m % 4u] = v; }
fn put_b(k: u32, n: u32, v: f32) { Bs[k * 16u + n / 4u][n % 4u] = v; }

fn store(m: u32, n: u32, v: f32) {
    if (m >= p.m || n >= p.n) { return; }
    var y = v;
    if ((p.flags & HAS_BIAS) != 0u) { y += bias[n]; }
    if ((p.flags & HAS_GELU) != 0u) { y = gelu(y); }
    if ((p.flags & HAS_RESIDUAL) != 0u) { y += residual[m * p.n + n]; }
    Y[m * p.n + n] = y;
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
        let kb = k0 + sk;
        for (var j = 0u; j < 8u; j++) {
            var v = 0.0;
            if (xm < p.m && kb + j < p.k) { v = X[x_row + kb + j]; }
            put_a(sk + j, sr, v);
        }
        if (Q8) {
            // Two int8 words (8 values of one 32-block) and their scale.
            var w0 = vec4<f32>(); var w1 = vec4<f32>();
            if (wn < p.n) {
                let e = w_row + kb;
                let block = e / 32u;
                let s = q8_scale(Ws[block / 2u], block);
                w0 = s * q8_unpack(Wq[e / 4u]);
                w1 = s * q8_unpack(Wq[e / 4u + 1u]);
            }
            put_b(sk, sr, w0.x); put_b(sk + 1u, sr, w0.y); put_b(sk + 2u, sr, w0.z); put_b(sk + 3u, sr, w0.w);
            put_b(sk + 4u, sr, w1.x); put_b(sk + 5u, sr, w1.y); put_b(sk + 6u, sr, w1.z); put_b(sk + 7u, sr, w1.w);
        } else {
            for (var j = 0u; j < 8u; j++) {
                var v = 0.0;
                if (wn < p.n && kb + j < p.k) { v = bitcast<f32>(Wq[w_row + kb + j]); }
                put_b(sk + j, sr, v);
            }
        }
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
