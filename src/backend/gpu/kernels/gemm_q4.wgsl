// Y = gelu?(X · Wᵀ + bias) + residual for many rows of X with 4-bit W (Q4_0 or Q4_K, repacked
// as in gemv_q4.wgsl), the tiling of gemm.wgsl: a 64×64 tile per workgroup of 128 threads, K
// through workgroup memory 16 at a time. W is dequantized as it is staged; X is quantized as it
// is staged, as the CPU backend quantizes it against these weights (see below). A file of its
// own, so the int8 and f32 GEMM stays as small as it was.
override FMT: u32 = FMT_Q4_0;

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
    var xd = 0.0; var xid = 0.0; // this thread's X row's current activation block (4-bit weights)
    for (var k0 = 0u; k0 < p.k; k0 += 16u) {
        let kb = k0 + sk;
        {
            // X is quantized as the CPU backend quantizes it against these weights (Q4_0:
            // 32-blocks, d = amax / 127, in our int8 GEMM from 16 rows on (f32 d, ties to even),
            // in candle's Q8_0 below (f16 d, ties away from zero); Q4_K: candle's Q8_K,
            // 256-blocks, d = max / -127 of the signed largest, ties away from zero) and staged
            // as q · d, so both backends multiply the same activations and near-tied logits break
            // alike. The scale is found when a block starts (k0 steps by 16 inside blocks).
            let qb = select(256u, 32u, FMT == FMT_Q4_0);
            let int8_gemm = FMT == FMT_Q4_0 && p.m >= 16u;
            if (k0 % qb == 0u && xm < p.m) {
                var amax = 0.0; var mx = 0.0;
                for (var j = 0u; j < qb; j++) {
                    let v = X[x_row + k0 + j];
                    if (amax < abs(v)) { amax = abs(v); mx = v; }
                }
                if (FMT == FMT_Q4_0) {
                    let d = amax / 127.0;
                    xid = select(0.0, 1.0 / d, d > 0.0);
                    xd = select(f16_round(d), d, int8_gemm);
                } else {
                    xid = select(-127.0 / mx, 0.0, amax == 0.0);
                    xd = select(1.0 / xid, 0.0, amax == 0.0);
                }
            }
            for (var j = 0u; j < 8u; j++) {
                var v = 0.0;
                if (xm < p.m) {
                    let t = X[x_row + kb + j] * xid;
                    if (int8_gemm) { v = clamp(round(t), -127.0, 127.0) * xd; }
                    else { v = clamp(round_away(t), -128.0, 127.0) * xd; }
                }
                put_a(sk + j, sr, v);
            }
        }
        {
            // One word: 8 values of one 32-block, and its step and offset.
            var w0 = vec4<f32>(); var w1 = vec4<f32>();
            if (wn < p.n) {
                let e = w_row + kb;
                let block = e / 32u;
                let step = bitcast<f32>(Ws[2u * block]);
                let offset = vec4<f32>(bitcast<f32>(Ws[2u * block + 1u]));
                let word = Wq[e / 8u];
                w0 = step * q4_lo(word) + offset;
                w1 = step * q4_hi(word) + offset;
            }
            put_b(sk, sr, w0.x); put_b(sk + 1u, sr, w0.y); put_b(sk + 2u, sr, w0.z); put_b(sk + 3u, sr, w0.w);
            put_b(sk + 4u, sr, w1.x); put_b(sk + 5u, sr, w1.y); put_b(sk + 6u, sr, w1.z); put_b(sk + 7u, sr, w1.w);
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
