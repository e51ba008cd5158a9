// Prepended to every kernel. Each dispatch gets up to 32 u32 parameters (f32 ones bit-cast) in a
// 256-byte slot of one uniform arena per command buffer: WebGPU has no push constants, and one
// uniform buffer per dispatch would mean thousands of buffers per caption.
struct Params { v: array<vec4<u32>, 8> }
@group(0) @binding(0) var<uniform> params: Params;

fn P(i: u32) -> u32 { return params.v[i / 4u][i % 4u]; }
fn Pf(i: u32) -> f32 { return bitcast<f32>(P(i)); }

// 1-D work of more than 65535 workgroups is spread over y; this undoes that.
fn flat_group(wg: vec3<u32>, groups: vec3<u32>) -> u32 { return wg.y * groups.x + wg.x; }

// Q8_0 element `i` of a matrix repacked as int8 words + f16 scale pairs (see weights.rs).
fn q8_value(quants: u32, i: u32) -> f32 {
    return f32(extractBits(i32(quants), (i % 4u) * 8u, 8u));
}
fn q8_scale(pair: u32, block: u32) -> f32 {
    let s = unpack2x16float(pair);
    return select(s.x, s.y, (block & 1u) == 1u);
}
