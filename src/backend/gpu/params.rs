//! Each kernel's uniform parameters, declared once: `params!` makes the `#[repr(C)]` Rust struct
//! the backend fills *and* the WGSL `struct Params` the kernel reads, from the same field list.
//! A kernel and its caller therefore cannot disagree on order or type, and the caller names
//! every field (a struct literal), so a swapped argument is a compile error, not a wrong caption.
//!
//! Fields are 4-byte scalars (u32, i32, f32) only: no padding, so bytemuck can cast them, and the
//! WGSL uniform layout is the C layout.

/// What a dispatch hands its kernel through binding 0.
pub(super) trait Params: bytemuck::Pod {
    /// `struct Params { … }` as WGSL, prepended to the kernel's source.
    const WGSL: &'static str;
}

macro_rules! params {
    ($($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ident),* $(,)? })*) => {$(
        $(#[$doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub(super) struct $name { $($(#[$fdoc])* pub $field: $ty),* }
        impl Params for $name {
            const WGSL: &'static str = concat!("struct Params {\n", $("    ", stringify!($field), ": ", stringify!($ty), ",\n",)* "}\n");
        }
    )*};
}

/// Bits of [`Linear::flags`]: what the epilogue adds to `X · Wᵀ`.
pub(super) mod epilogue {
    pub const BIAS: u32 = 1;
    /// Exact-erf GELU of `X · Wᵀ + bias` (before the residual).
    pub const GELU: u32 = 2;
    pub const RESIDUAL: u32 = 4;
}

params! {
    /// `Y = gelu?(X · Wᵀ + bias) + residual` for the GEMM (many rows) and GEMV (≤ 8 rows) kernels.
    /// X rows are `x_stride` floats apart from `x_off` (a column view of a wider tensor is read in
    /// place); Y and the residual are dense `[m, n]`.
    Linear { m: u32, n: u32, k: u32, x_off: u32, x_stride: u32, flags: u32 }

    /// Scaled dot-product attention over views: element (batch b, position i, column c) of Q is
    /// `q[q_off + b·q_batch + i·q_stride + c]`, likewise K and V (`k_batch = 0`: one set of keys
    /// shared by every query batch). Head `h` is columns `h·d .. (h+1)·d`. The output is dense
    /// `[batch, sq, heads·d]`. With `causal`, query i sees keys up to `sk - sq + i`.
    Attention {
        batch: u32, heads: u32, sq: u32, sk: u32, d: u32,
        q_off: u32, q_stride: u32, q_batch: u32,
        k_off: u32, k_stride: u32, k_batch: u32,
        v_off: u32, v_stride: u32, v_batch: u32,
        causal: u32, scale: f32,
        /// Keys per workgroup (flash-decoding's split) and how many splits there are.
        chunk: u32, splits: u32,
    }

    /// The decoder's self-attention over its cache (`[batch][2][heads][capacity][d]`: keys, then
    /// values, each head's positions contiguous). The `s` new positions' Q, K, V come from the
    /// fused projection `qkv` `[batch, s, 3·heads·d]`; their K and V are written into the cache at
    /// `len ..`, then each new query attends causally to positions `0 ..= len + i`.
    CachedAttention { batch: u32, heads: u32, s: u32, len: u32, capacity: u32, d: u32, scale: f32 }

    /// Row-wise LayerNorm of `rows` × `n`.
    LayerNorm { rows: u32, n: u32, eps: f32 }

    /// Elementwise over `n` values; `b_len` is the period of the broadcast operand (add).
    Elementwise { n: u32, b_len: u32 }

    /// A strided 3-D view `[a, b, c]` of `src` copied into a contiguous run of `dst`.
    Copy { a: u32, b: u32, c: u32, src_off: u32, sa: u32, sb: u32, sc: u32, dst_off: u32 }

    /// Arg-max per row of `rows` × `vocab`; `suppress` is never chosen (0xffffffff: none).
    Argmax { rows: u32, vocab: u32, suppress: u32 }

    /// Rows of a table gathered by id: `count` ids, `cols` columns, `rows` rows in the table.
    Embedding { count: u32, cols: u32, rows: u32 }

    /// Pixels `[c, h, w]` → patch rows in the conv weight's (c, ky, kx) order.
    Im2col { c: u32, h: u32, w: u32, p: u32 }

    /// Class token, then the patches, plus position embeddings.
    PatchFinish { patches: u32, d: u32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wgsl_struct_lists_the_rust_fields_in_order() {
        assert_eq!(LayerNorm::WGSL, "struct Params {\n    rows: u32,\n    n: u32,\n    eps: f32,\n}\n");
        assert_eq!(std::mem::size_of::<Attention>(), 18 * 4);
    }
}
