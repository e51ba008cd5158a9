// A Q8_0 table for embedding.wgsl.
@group(0) @binding(3) var<storage, read> Wq: array<u32>;
@group(0) @binding(4) var<storage, read> Ws: array<u32>;

fn lookup(e: u32) -> f32 {
    let block = e / 32u;
    return q8_scale(Ws[block / 2u], block) * q8_unpack(Wq[e / 4u])[e % 4u];
}
