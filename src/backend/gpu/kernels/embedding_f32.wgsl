// An f32 table for embedding.wgsl.
@group(0) @binding(3) var<storage, read> W: array<f32>;

fn lookup(e: u32) -> f32 { return W[e]; }
