//! Quantized weights (Q8_0, and Q4_0 / Q4_K seen as int8 blocks: [`Weights`]) × f32 activations
//! for many rows at once (the vision pass: 577 tokens per layer; the image's cross-attention keys
//! and values), one structure on every target with an inner loop per instruction set.
//!
//! candle's quantized matmul is a dot product per (row, column) pair: every weight block is read
//! again for each activation row and each block pair pays its own scale conversion. Here a panel
//! of weight rows is repacked once per call, in a small per-thread scratch, into the order its
//! inner loop streams, and multiplied against every activation row while a chunk of it sits in L1.
//! The repack is per call, so the model is still stored once, in its file's blocks, which the
//! decoder's single-token steps keep using through candle.
//!
//! Numerics follow ggml's Q8_0 × Q8_0 dot product: activations are quantized per block of 32
//! (d = max|x| / 127, q = round(x / d)), products are exact in int32 within a block, and each
//! block's sum is scaled by d_weight · d_activation. Two differences, both toward accuracy: the
//! activation scale stays f32 (ggml rounds it to f16), and rounding is to nearest even. Against
//! Q4_K the activations are quantized as ggml's Q8_K (per 256, ties away from zero) and the
//! weights' offsets are applied after the integer sums, as `vec_dot_q4_K_q8_K` does.
//!
//! Every path performs the same f32 operations in the same order (per block:
//! `acc + f32(dot) · (d_weight · d_activation)`, blocks in order, bias added last, no fused
//! multiply-add), so all of them give bit-identical results, not merely close ones: a caption does
//! not depend on which CPU or browser made it. The tests hold every path this machine can run to
//! that, and to an f64 evaluation of the block-wise definition.

mod activations;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod gemv;
mod panel;
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
pub mod relaxed;
mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod vnni;
mod weights;

use std::ops::Range;

use rayon::prelude::*;

use activations::{Activations, Form, Scheme};
use panel::Panel;

use super::shared_out::SharedOut;
pub use weights::Weights;

/// Bytes of one Q8_0 block: an f16 scale and 32 int8 values.
const BLOCK_BYTES: usize = 34;
const QK: usize = 32;
/// Bytes of packed panel per pass over the activation rows: that slice of the panel stays in L1
/// while every row tile streams past it. Each further pass stores and reloads the partial sums of
/// every output, so the slice is as large as L1 comfortably holds next to a row tile (16 to 32
/// blocks: one pass for k = 768, three to six for k = 3072).
const CHUNK_BYTES: usize = 16 * 1024;

/// One instruction set's inner loop. Each has its own panel order and tile size; what they compute
/// is the same to the bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Portable Rust; the reference the others are held to, and the fallback where no SIMD loop
    /// exists (wasm built without SIMD128, x86 without AVX2).
    Scalar,
    /// x86_64 with AVX2: int8 widened to int16, `vpmaddwd` against a broadcast activation pair.
    Avx2,
    /// x86_64 with AVX-512 VNNI: `vpdpbusd` on weights offset to unsigned bytes.
    Vnni,
    /// wasm32 built with SIMD128 (the web build is): `i32x4.dot_i16x8_s`, the same scheme as AVX2.
    Simd128,
    /// wasm32 built with relaxed SIMD too (the second web build, for browsers that validate it):
    /// `i32x4.relaxed_dot_i8x16_i7x16_add_s` on int8 panels where the engine's dot product is
    /// exact on int8 × byte one way or the other, else the SIMD128 loop.
    Relaxed,
}

impl Path {
    pub const ALL: [Path; 5] = [Path::Scalar, Path::Avx2, Path::Vnni, Path::Simd128, Path::Relaxed];

    pub fn name(self) -> &'static str {
        match self {
            Path::Scalar => "scalar",
            Path::Avx2 => "avx2",
            Path::Vnni => "vnni",
            Path::Simd128 => "simd128",
            Path::Relaxed => "relaxed",
        }
    }

    /// Whether this build, on this CPU, can run the path.
    pub fn runs_here(self) -> bool {
        match self {
            Path::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => avx2::available(),
            #[cfg(target_arch = "x86_64")]
            Path::Vnni => vnni::available(),
            Path::Simd128 => cfg!(all(target_arch = "wasm32", target_feature = "simd128")),
            Path::Relaxed => cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd")),
            #[cfg(not(target_arch = "x86_64"))]
            Path::Avx2 | Path::Vnni => false,
        }
    }

    /// Whether [`gemv`] has a loop for this path (else decoder steps use candle's dot products).
    pub fn has_gemv(self) -> bool {
        matches!(self, Path::Vnni | Path::Avx2)
    }

    /// The fastest path here, or `None` where candle's kernels should keep the product: on aarch64
    /// candle has a NEON int8 dot product and we have no NEON loop yet, so our scalar loop would
    /// be a step back there.
    fn best_here() -> Option<Path> {
        if cfg!(target_arch = "aarch64") {
            return None;
        }
        [Path::Vnni, Path::Avx2, Path::Relaxed, Path::Simd128]
            .into_iter()
            .find(|p| p.runs_here())
            .or(Some(Path::Scalar))
    }

    /// `EDGECAP_Q8_GEMM`: a path name, `candle` (candle's kernels, as before this GEMM existed),
    /// or empty for the default. `Err` says why a value cannot be honoured.
    fn parse(value: &str) -> Result<Option<Option<Path>>, String> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        if value.eq_ignore_ascii_case("candle") {
            return Ok(Some(None));
        }
        let path = Path::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(value))
            .ok_or_else(|| format!("unknown value {value:?} (scalar, avx2, vnni, simd128, relaxed or candle)"))?;
        if !path.runs_here() {
            return Err(format!("{value} cannot run on this CPU or build"));
        }
        Ok(Some(Some(path)))
    }
}

/// The path many-row Q8_0 products take in this process, `None` for candle's kernels. Natively
/// `EDGECAP_Q8_GEMM=scalar|avx2|vnni|candle` forces one (for benchmarks and for checking a path on
/// a machine that would not pick it); it is read once. A value that cannot be honoured is reported
/// on stderr and the default is used, so a typo never stops a caption.
pub fn selected() -> Option<Path> {
    use std::sync::OnceLock;
    static SELECTED: OnceLock<Option<Path>> = OnceLock::new();
    *SELECTED.get_or_init(|| {
        let forced = std::env::var("EDGECAP_Q8_GEMM").ok().map(|v| Path::parse(&v));
        match forced {
            Some(Ok(Some(choice))) => choice,
            Some(Err(why)) => {
                let best = Path::best_here();
                eprintln!("EDGECAP_Q8_GEMM: {why}; using {}", best.map_or("candle", Path::name));
                best
            }
            None | Some(Ok(None)) => Path::best_here(),
        }
    })
}

/// `x · Wᵀ (+ bias)` on `path`: `x` is `[m, k]` f32, `w` is `n` rows of `k` values, the result is
/// `[m, n]`. Q4_K's activations are quantized per 256 as its dot products want; the others' per 32.
/// Returns `None` when the path cannot run here or the shapes do not fit, so the caller can take
/// another way.
pub fn matmul(
    path: Path,
    x: &[f32],
    m: usize,
    k: usize,
    w: Weights,
    n: usize,
    bias: Option<&[f32]>,
) -> Option<Vec<f32>> {
    if !path.runs_here() || !w.fits(n, k) || x.len() != m * k || bias.is_some_and(|b| b.len() != n) {
        return None;
    }
    let offsets = w.offsets(n, k / QK);
    let scheme = if offsets.is_some() { Scheme::Q8K } else { Scheme::Q8_0 };
    // With offsets the bias waits until they are in: the same order of additions on every path.
    let shape = Shape { m, k, n, w, bias: bias.filter(|_| offsets.is_none()) };
    let mut out = match path {
        Path::Scalar => {
            let acts = Activations::quantize(x, m, k, Form::Wide, scheme);
            // SAFETY: the scalar tile needs no target feature.
            let out = unsafe {
                drive::<panel::Pairs<{ scalar::NR }>, { scalar::NR }, { scalar::MR }>(&acts, &shape, scalar::tile)
            };
            (out, acts)
        }
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => {
            let acts = Activations::quantize(x, m, k, Form::Wide, scheme);
            // SAFETY: `runs_here` checked AVX2 above.
            let out =
                unsafe { drive::<panel::Pairs<{ avx2::NR }>, { avx2::NR }, { avx2::MR }>(&acts, &shape, avx2::tile) };
            (out, acts)
        }
        #[cfg(target_arch = "x86_64")]
        Path::Vnni => {
            let acts = Activations::quantize(x, m, k, Form::Bytes, scheme);
            // SAFETY: `runs_here` checked AVX-512 F/BW/VNNI above.
            let out = unsafe { drive::<vnni::Packed, { vnni::NR }, { vnni::MR }>(&acts, &shape, vnni::tile) };
            (out, acts)
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Path::Simd128 => {
            let acts = Activations::quantize(x, m, k, Form::Wide, scheme);
            // SAFETY: this module is compiled only with SIMD128 enabled.
            let out = unsafe {
                drive::<panel::Pairs<{ simd128::NR }>, { simd128::NR }, { simd128::MR }>(&acts, &shape, simd128::tile)
            };
            (out, acts)
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
        Path::Relaxed => {
            use relaxed::{Form as Reads, MR, NR};
            let reads = relaxed::form();
            let form = if reads == Reads::Neither { Form::Wide } else { Form::Bytes };
            let acts = Activations::quantize(x, m, k, form, scheme);
            // SAFETY: this module is compiled only with relaxed SIMD (and SIMD128) enabled; each
            // tile is the one for how this engine reads the dot product (probed).
            let out = unsafe {
                match reads {
                    Reads::Unsigned => drive::<relaxed::Offset, NR, MR>(&acts, &shape, relaxed::tile_direct::<0x80>),
                    Reads::Signed => drive::<relaxed::Packed, NR, MR>(&acts, &shape, relaxed::tile_direct::<0>),
                    Reads::Neither => drive::<panel::Pairs<{ simd128::NR }>, { simd128::NR }, { simd128::MR }>(
                        &acts,
                        &shape,
                        simd128::tile,
                    ),
                }
            };
            (out, acts)
        }
        #[allow(unreachable_patterns)] // paths compiled out on this target; `runs_here` refused them
        _ => return None,
    };
    if let Some(offsets) = offsets {
        subtract_offsets(&mut out.0, &out.1, &offsets, n, bias);
    }
    Some(out.0)
}

/// `x · Wᵀ (+ bias)` for a few activation rows (decoder steps) against Q8_0 weights `w` read in
/// place, `[m, n]`: the same numbers [`matmul`] gives, bit for bit, without its per-call repack.
/// `None` where `path` has no such loop (only AVX2 and VNNI have one; elsewhere candle's dot
/// products keep these products) or the shapes do not fit.
pub fn gemv(path: Path, x: &[f32], m: usize, k: usize, w: &[u8], n: usize, bias: Option<&[f32]>) -> Option<Vec<f32>> {
    if m == 0 || !path.runs_here() || !Weights::Q8_0(w).fits(n, k) || x.len() != m * k {
        return None;
    }
    if bias.is_some_and(|b| b.len() != n) {
        return None;
    }
    match path {
        // SAFETY: `runs_here` checked the path's features (AVX2 with FMA and F16C; VNNI with
        // AVX-512 VL too), `fits` the weight bytes, and the lengths of `x` and `bias` are checked.
        #[cfg(target_arch = "x86_64")]
        Path::Vnni => Some(unsafe { gemv::matmul(gemv::Dot::Vnni, x, m, k, w, n, bias) }),
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => Some(unsafe { gemv::matmul(gemv::Dot::Avx2, x, m, k, w, n, bias) }),
        _ => None,
    }
}

/// Q4_K's offsets: each output less `Σ_blocks offset · d_activation · Σ activation integers`
/// (ggml's `dmin · Σ min · bsum`), then plus the bias. A rank-(k / 32) update, so `[nb][n]` rows of
/// offsets are streamed against each output row: lanes run across outputs, not along a sum.
fn subtract_offsets(out: &mut [f32], acts: &Activations, offsets: &[f32], n: usize, bias: Option<&[f32]>) {
    let nb = acts.k / QK;
    out.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
        for b in 0..nb {
            let a = acts.d[i * nb + b] * acts.sums[i * nb + b] as f32;
            if a != 0.0 {
                for (y, &o) in row.iter_mut().zip(&offsets[b * n..(b + 1) * n]) {
                    *y -= o * a;
                }
            }
        }
        if let Some(bias) = bias {
            for (y, &b) in row.iter_mut().zip(bias) {
                *y += b;
            }
        }
    });
}

struct Shape<'a> {
    m: usize,
    k: usize,
    n: usize,
    w: Weights<'a>,
    bias: Option<&'a [f32]>,
}

/// One path's inner loop: activation rows `row0 .. row0 + rows` (`rows` ≤ `MR`) against `blocks`
/// of a packed panel, adding each block's scaled sum into `acc` (rows × panel columns), blocks in
/// order. Unsafe because the loop may need CPU features the caller has to vouch for.
type TileFn<P, const NR: usize, const MR: usize> =
    unsafe fn(&Activations, usize, usize, &P, Range<usize>, &mut [[f32; NR]; MR]);

/// Panels of `NR` weight rows in parallel; for each, the blocks in chunks of [`CHUNK_BYTES`] and the
/// activation rows in tiles of `MR`. Partial sums of earlier chunks wait in `out` as f32, which is
/// exact, so chunking changes no result.
///
/// # Safety
/// `tile`'s CPU features must be present.
unsafe fn drive<P: Panel, const NR: usize, const MR: usize>(
    acts: &Activations,
    s: &Shape,
    tile: TileFn<P, NR, MR>,
) -> Vec<f32> {
    let nb = s.k / QK;
    let mut out = vec![0f32; s.m * s.n];
    let shared = SharedOut::new(&mut out);
    (0..s.n.div_ceil(NR)).into_par_iter().for_each_init(
        || P::new(nb),
        |panel, p| {
            let col0 = p * NR;
            let cols = NR.min(s.n - col0);
            panel.pack(&s.w, col0, cols, nb);
            let chunk_blocks = (CHUNK_BYTES / P::BLOCK_BYTES).max(1);
            for chunk in (0..nb).step_by(chunk_blocks) {
                let blocks = chunk..nb.min(chunk + chunk_blocks);
                let last = blocks.end == nb;
                for row0 in (0..s.m).step_by(MR) {
                    let rows = MR.min(s.m - row0);
                    let mut acc = [[0f32; NR]; MR];
                    if chunk > 0 {
                        for (r, acc) in acc.iter_mut().enumerate().take(rows) {
                            // SAFETY: row `row0 + r` < m, columns `col0 .. col0 + cols` ≤ n, inside
                            // `out`; this panel's columns are touched by this thread only.
                            acc[..cols].copy_from_slice(unsafe { shared.slice((row0 + r) * s.n + col0, cols) });
                        }
                    }
                    // SAFETY: the caller vouches for the features; the tile reads rows below
                    // `row0 + rows` ≤ m and blocks below nb, all inside `acts` and `panel`.
                    unsafe { tile(acts, row0, rows, panel, blocks.clone(), &mut acc) };
                    for (r, acc) in acc.iter().enumerate().take(rows) {
                        // SAFETY: as above.
                        let dst = unsafe { shared.slice((row0 + r) * s.n + col0, cols) };
                        match s.bias.filter(|_| last) {
                            Some(bias) => {
                                for ((d, &a), &b) in dst.iter_mut().zip(acc).zip(&bias[col0..]) {
                                    *d = a + b;
                                }
                            }
                            None => dst.copy_from_slice(&acc[..cols]),
                        }
                    }
                }
            }
        },
    );
    out
}
