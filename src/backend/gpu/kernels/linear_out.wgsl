// What every linear kernel (GEMM and GEMV, any weight format) shares: X in, the weight scales,
// the bias and residual, Y out, and the epilogue. Binding 2, the weights' quants, is declared by
// each kernel: its element type is the kernel's own.
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read> Ws: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> residual: array<f32>;
@group(0) @binding(6) var<storage, read_write> Y: array<f32>;

// Y[m, n] = gelu?(v + bias[n]) + residual[m, n], for outputs inside Y.
fn store(m: u32, n: u32, v: f32) {
    if (m >= p.m || n >= p.n) { return; }
    var y = v;
    if ((p.flags & HAS_BIAS) != 0u) { y += bias[n]; }
    if ((p.flags & HAS_GELU) != 0u) { y = gelu(y); }
    if ((p.flags & HAS_RESIDUAL) != 0u) { y += residual[m * p.n + n]; }
    Y[m * p.n + n] = y;
}
