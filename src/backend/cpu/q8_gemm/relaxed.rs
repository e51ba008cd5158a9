//! The relaxed-SIMD inner loop (the wasm build made with `+relaxed-simd`, served to browsers that
//! validate it): `i32x4.relaxed_dot_i8x16_i7x16_add_s` multiplies 4 int8 by 4 int7 and adds them
//! to an int32 lane, 16 products per instruction against 8 for `i32x4.dot_i16x8_s`, on int8
//! panels of half the bytes.
//!
//! Its result is defined only while the second operand's top bit is clear; past that, engines
//! differ, each in a fixed way: V8 on x86 with AVX-VNNI lowers it to `vpdpbusd` (that operand
//! unsigned), ARM's `sdot` reads it signed, and `pmaddubsw` (x86 without AVX-VNNI) reads it
//! unsigned but saturates pairs of products to int16. A probe of every int8 × byte product, once
//! per process ([`form`]), finds which of these this engine does:
//! - [`Form::Unsigned`]: the weights offset to unsigned bytes (XOR 0x80) against the signed
//!   activations, 128 × the activation block's sum taken back out: the AVX-512 VNNI scheme.
//! - [`Form::Signed`]: the weights and activations as they are.
//! - [`Form::Neither`]: the SIMD128 loop. An exact product there would take two dot products per
//!   16 (activations split into 7-bit positive and negative parts), and where the engine lowers
//!   each to five instructions that measured 1.7× slower than SIMD128's loop.
//!
//! Both forms are exact, so they give the integers every other path does, bit for bit.
//!
//! 16 registers on x86 hosts: 4 rows × 2 int32 sums + 2 weight registers + a broadcast.

use core::arch::wasm32::*;
use std::ops::Range;

use super::activations::Activations;
use super::panel::Quads;
use super::QK;

/// Two 4-column registers per quad of k.
pub(super) const NR: usize = 8;
pub(super) const MR: usize = 4;
/// Signed weights, as the files hold them, for [`Form::Signed`].
pub(super) type Packed = Quads<NR, 0>;
/// Weights offset to unsigned bytes, for [`Form::Unsigned`].
pub(super) type Offset = Quads<NR, 0x80>;

/// How this engine's relaxed dot product reads its second operand's top bit (see the module).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Unsigned,
    Signed,
    Neither,
}

/// This engine's form, probed once.
pub fn form() -> Form {
    use std::sync::OnceLock;
    static FORM: OnceLock<Form> = OnceLock::new();
    *FORM.get_or_init(probe)
}

/// Every int8 `a` against every byte `b`, four equal products per lane (so a saturating pair sum
/// shows), then mixed lanes: which reading of `b` gives every result exactly.
fn probe() -> Form {
    use std::hint::black_box;
    let (mut unsigned, mut signed) = (true, true);
    let dot = |a: [i8; 16], b: [u8; 16]| -> [i32; 4] {
        let mut out = [0i32; 4];
        // SAFETY: 16-byte loads from and a store into 16-byte arrays; wasm needs no alignment.
        unsafe {
            let (a, b) = (v128_load(a.as_ptr().cast()), v128_load(b.as_ptr().cast()));
            let r = i32x4_relaxed_dot_i8x16_i7x16_add(black_box(a), black_box(b), black_box(i32x4_splat(0)));
            v128_store(out.as_mut_ptr().cast(), r);
        }
        out
    };
    let mut check = |a: [i8; 16], b: [u8; 16]| {
        for (lane, &got) in dot(a, b).iter().enumerate() {
            let (mut u, mut s) = (0i32, 0i32);
            for i in 4 * lane..4 * lane + 4 {
                u += i32::from(a[i]) * i32::from(b[i]);
                s += i32::from(a[i]) * i32::from(b[i] as i8);
            }
            unsigned &= got == u;
            signed &= got == s;
        }
    };
    for a in i8::MIN..=i8::MAX {
        for b in u8::MIN..=u8::MAX {
            check([a; 16], [b; 16]);
        }
    }
    let mut seed = 0x9e37_79b9_u32;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for _ in 0..4096 {
        check(std::array::from_fn(|_| next() as i8), std::array::from_fn(|_| next() as u8));
    }
    if unsigned {
        Form::Unsigned
    } else if signed {
        Form::Signed
    } else {
        Form::Neither
    }
}

/// [`Form::Unsigned`] and [`Form::Signed`]: one product per step; `acts` made as `Form::Bytes`.
///
/// # Safety
/// `rows` ≤ [`MR`], rows and blocks inside `acts` and `panel`; the engine reads the weights as
/// `FLIP` says (its [`form`]).
pub(super) unsafe fn tile_direct<const FLIP: u8>(
    acts: &Activations,
    row0: usize,
    rows: usize,
    panel: &Quads<NR, FLIP>,
    blocks: Range<usize>,
    acc: &mut [[f32; NR]; MR],
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match rows {
            1 => direct::<1, FLIP>(acts, row0, panel, blocks, acc),
            2 => direct::<2, FLIP>(acts, row0, panel, blocks, acc),
            3 => direct::<3, FLIP>(acts, row0, panel, blocks, acc),
            _ => direct::<MR, FLIP>(acts, row0, panel, blocks, acc),
        }
    }
}

#[allow(clippy::needless_range_loop)] // `r` also offsets the activation rows
unsafe fn direct<const R: usize, const FLIP: u8>(
    acts: &Activations,
    row0: usize,
    panel: &Quads<NR, FLIP>,
    blocks: Range<usize>,
    acc: &mut [[f32; NR]; MR],
) {
    let (k, nb) = (acts.k, acts.k / QK);
    // SAFETY (whole body): every pointer below is offset within `acts.q` (rows < row0 + R ≤ m,
    // k-index < k), `panel.weights` (block < nb, 8 quads of NR × 4 bytes), `panel.scales`,
    // `acts.sums` / `acts.d` (index < m · nb) or `acc`; wasm needs no alignment.
    unsafe {
        let q = acts.q.as_ptr().add(row0 * k);
        let w = panel.weights.as_ptr();
        let mut sum = [[f32x4_splat(0.0); 2]; R];
        for r in 0..R {
            sum[r] = [v128_load(acc[r].as_ptr().cast()), v128_load(acc[r].as_ptr().add(4).cast())];
        }
        for b in blocks {
            // Exact: each int32 lane gathers 32 products of at most 128 · 255.
            let mut dot = [[i32x4_splat(0); 2]; R];
            for quad in 0..QK / 4 {
                let wp = w.add((b * QK / 4 + quad) * NR * 4);
                let w0 = v128_load(wp.cast());
                let w1 = v128_load(wp.add(16).cast());
                for r in 0..R {
                    let x = v128_load32_splat(q.add(r * k + b * QK + quad * 4).cast());
                    dot[r][0] = i32x4_relaxed_dot_i8x16_i7x16_add(x, w0, dot[r][0]);
                    dot[r][1] = i32x4_relaxed_dot_i8x16_i7x16_add(x, w1, dot[r][1]);
                }
            }
            let s0 = v128_load(panel.scales.as_ptr().add(b * NR).cast());
            let s1 = v128_load(panel.scales.as_ptr().add(b * NR + 4).cast());
            for r in 0..R {
                let i = (row0 + r) * nb + b;
                if FLIP != 0 {
                    let offset = i32x4_splat(128 * *acts.sums.get_unchecked(i));
                    dot[r] = [i32x4_sub(dot[r][0], offset), i32x4_sub(dot[r][1], offset)];
                }
                let d = f32x4_splat(*acts.d.get_unchecked(i));
                // Multiply, then add (no fused form in SIMD128): the rounding of every other path.
                sum[r][0] = f32x4_add(sum[r][0], f32x4_mul(f32x4_convert_i32x4(dot[r][0]), f32x4_mul(s0, d)));
                sum[r][1] = f32x4_add(sum[r][1], f32x4_mul(f32x4_convert_i32x4(dot[r][1]), f32x4_mul(s1, d)));
            }
        }
        for r in 0..R {
            v128_store(acc[r].as_mut_ptr().cast(), sum[r][0]);
            v128_store(acc[r].as_mut_ptr().add(4).cast(), sum[r][1]);
        }
    }
}
