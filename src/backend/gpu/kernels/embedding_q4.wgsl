// A 4-bit table (Q4_0 or Q4_K, repacked: eight values to a word, an f32 step and offset per 32
// values) for embedding.wgsl.
@group(0) @binding(3) var<storage, read> Wq: array<u32>;
@group(0) @binding(4) var<storage, read> Ws: array<u32>;

fn lookup(e: u32) -> f32 {
    let q = f32((Wq[e / 8u] >> (4u * (e % 8u))) & 15u);
    let block = e / 32u;
    return bitcast<f32>(Ws[2u * block]) * q + bitcast<f32>(Ws[2u * block + 1u]);
}
